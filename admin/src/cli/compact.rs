//! `lakehouse compact <namespace>.<table>`: rewrites the data files whose
//! deleted fraction passes the table's thresholds (`lakehouse.compaction.*`
//! properties, see `lakehouse::table::rewrite`) and drops the delete files
//! they applied, in one `replace` snapshot.
//!
//! A Silver table (`lakehouse.layer = silver`, or commits carrying a store
//! snapshot) is compacted through
//! silver-refiner's materializer, which moves the changelog store's key →
//! row-location index with the rows (the command then reads the refiner's
//! config, `--config`, for the store root and the contracts). A Gold table
//! (commits carrying `lakehouse.gold.state-snapshot`) has the same kind of
//! index in gold-aggregator's state tables and is compacted through its sink
//! (the aggregator's config for the state root and the table definitions).
//! Other tables (no index) are rewritten directly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use lakehouse::catalog::{SqlCatalog, TableName};
use lakehouse::table::commit::{Committer, Fenced};
use lakehouse::table::position::newest_in_ancestry;
use lakehouse::table::rewrite::{CompactionPolicy, RewriteStats, delete_file_count, plan};

/// Where the command gets its configuration from.
pub struct Sources<'a> {
    pub config: Option<&'a Path>,
    pub catalog_url: Option<&'a str>,
    pub warehouse: Option<&'a str>,
}

pub async fn compact(
    catalog: &SqlCatalog,
    name: &TableName,
    sources: &Sources<'_>,
    dry_run: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let head = catalog.require_table(name).await?;
    let file_io = catalog.file_io();
    // Which index (if any) maps the table's keys to row locations: Silver's
    // store, Gold's state (its tables carry no layer property, their commits
    // carry the state snapshot).
    let indexed_by = |key: &str| newest_in_ancestry(&head.metadata, key).is_some();
    let layer = match head.metadata.properties().get("lakehouse.layer").map(String::as_str) {
        Some("silver") => "silver",
        _ if indexed_by("lakehouse.silver.store-snapshot") => "silver",
        Some("gold") => "gold",
        _ if indexed_by("lakehouse.gold.state-snapshot") => "gold",
        _ => "",
    };
    let policy = CompactionPolicy::from_properties(head.metadata.properties())?;
    let before = delete_file_count(file_io, &head.metadata).await?;
    let planned = plan(file_io, &head.metadata, &policy).await?;
    if dry_run || planned.is_none() {
        let files = planned.as_ref().map_or(0, |p| p.data_files());
        report(name, as_json, dry_run, before, before, files, None, None);
        return Ok(());
    }
    let (stats, snapshot_id) = match layer {
        "silver" => {
            let config = super::rejects::silver_config(sources.config, sources.catalog_url, sources.warehouse)?;
            if config.silver.namespace != name.namespace {
                anyhow::bail!(
                    "{name} is a Silver table but the refiner config's namespace is {:?} (pass its --config)",
                    config.silver.namespace
                );
            }
            match silver_refiner::compact::compact(&config, &name.name)
                .await
                .with_context(|| format!("compacting {name} through the refiner's store"))?
            {
                Some(c) => (Some(c.stats), Some(c.snapshot_id)),
                None => (None, None),
            }
        }
        "gold" => {
            let config = gold_config(sources)?;
            if config.gold.namespace != name.namespace {
                anyhow::bail!(
                    "{name} is a Gold table but the aggregator config's namespace is {:?} (pass its --config)",
                    config.gold.namespace
                );
            }
            match gold_aggregator::stage::compact(&config, &name.name)
                .await
                .with_context(|| format!("compacting {name} through the aggregator's state"))?
            {
                Some(c) => (Some(c.stats), Some(c.snapshot_id)),
                None => (None, None),
            }
        }
        _ => {
            let planned = planned.expect("checked above");
            let rewritten = planned.write(file_io, &head.metadata, &policy).await?;
            let keep = |_: &iceberg::spec::TableMetadata| Ok::<_, Fenced>(HashMap::new());
            let done = Committer::new(catalog.clone()).commit(&head, rewritten.operation(), &keep).await?;
            (Some(rewritten.stats), Some(done.snapshot_id))
        }
    };
    let now = catalog.require_table(name).await?;
    let after = delete_file_count(file_io, &now.metadata).await?;
    let files = stats.as_ref().map_or(0, |s| s.data_files_rewritten);
    report(name, as_json, false, before, after, files, stats, snapshot_id);
    Ok(())
}

/// gold-aggregator's configuration, with the command line's catalog overrides.
fn gold_config(sources: &Sources<'_>) -> anyhow::Result<gold_aggregator::Config> {
    let mut c = gold_aggregator::Config::load(sources.config).context("loading the gold-aggregator configuration")?;
    if let Some(u) = sources.catalog_url {
        c.catalog.url = u.to_string();
    }
    if let Some(w) = sources.warehouse {
        c.catalog.warehouse = w.to_string();
    }
    Ok(c)
}

#[allow(clippy::too_many_arguments)]
fn report(
    name: &TableName,
    as_json: bool,
    dry_run: bool,
    before: (usize, usize),
    after: (usize, usize),
    files: usize,
    stats: Option<RewriteStats>,
    snapshot_id: Option<i64>,
) {
    if as_json {
        let s = stats.as_ref();
        let v = json!({
            "table": name.to_string(), "dry_run": dry_run, "snapshot_id": snapshot_id,
            "data_files_rewritten": files,
            "delete_files_removed": s.map(|s| s.delete_files_removed),
            "rows_kept": s.map(|s| s.rows_kept), "rows_dropped": s.map(|s| s.rows_dropped),
            "bytes_read": s.map(|s| s.bytes_read), "bytes_written": s.map(|s| s.bytes_written),
            "data_files_before": before.0, "delete_files_before": before.1,
            "data_files_after": after.0, "delete_files_after": after.1,
        });
        println!("{v}");
        return;
    }
    match (dry_run, stats, snapshot_id) {
        (true, _, _) => println!(
            "{name}: would rewrite {files} data files ({} data files, {} delete files now)",
            before.0, before.1
        ),
        (false, Some(s), Some(id)) => println!(
            "{name}: rewrote {} data files ({} rows kept, {} deleted rows dropped, {} → {} bytes), removed {} delete \
             files in snapshot {id}; delete files {} → {}",
            s.data_files_rewritten,
            s.rows_kept,
            s.rows_dropped,
            s.bytes_read,
            s.bytes_written,
            s.delete_files_removed,
            before.1,
            after.1
        ),
        _ => println!("{name}: nothing to compact ({} data files, {} delete files)", before.0, before.1),
    }
}
