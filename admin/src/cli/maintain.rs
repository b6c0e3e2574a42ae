//! Table maintenance: expire snapshots (and delete what only they reached),
//! list and remove registered consumers, set and unset table properties.
//! The workers do the first on every commit by the table's `history.expire.*`
//! properties; these commands do it on demand, with other bounds.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use lakehouse::catalog::{SqlCatalog, TableName};
use lakehouse::table::commit::Committer;
use lakehouse::table::consumer;
use lakehouse::table::retention::RetentionPolicy;
use lakehouse::table::writer::Codec;

/// `lakehouse expire`: snapshots older than `older_than` (default: the table's
/// `history.expire.max-snapshot-age-ms`), keeping the newest `retain_last`
/// (default: `history.expire.min-snapshots-to-keep`) and everything a position
/// or a registered consumer needs.
pub async fn expire(
    catalog: &SqlCatalog,
    name: &TableName,
    older_than: Option<Duration>,
    retain_last: Option<usize>,
    dry_run: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let head = catalog.require_table(name).await?;
    let policy = RetentionPolicy::from_properties(head.metadata.properties()).map_err(anyhow::Error::msg)?;
    let age_ms = older_than.map_or(policy.max_snapshot_age_ms, |d| d.as_millis() as i64);
    let cutoff = chrono::Utc::now().timestamp_millis() - age_ms;
    let keep = retain_last.unwrap_or(policy.min_snapshots_to_keep).max(1);
    let (plan, cleaned) = Committer::new(catalog.clone()).expire(&head, cutoff, keep, dry_run).await?;
    if as_json {
        let kept: HashMap<String, &Vec<String>> = plan.kept.iter().map(|(k, v)| (k.to_string(), v)).collect();
        let v = json!({"table": name.to_string(), "dry_run": dry_run, "expired": plan.expire, "kept": kept, "deleted": cleaned});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let verb = if dry_run { "would expire" } else { "expired" };
    println!(
        "{name}: {verb} {} snapshot(s) older than {}",
        plan.expire.len(),
        humantime::format_duration(Duration::from_millis(age_ms as u64))
    );
    for (id, why) in &plan.kept {
        println!("  kept {id}: {}", why.join("; "));
    }
    if !dry_run {
        println!(
            "  deleted {} manifest list(s), {} manifest(s), {} data/delete file(s), {} metadata file(s)",
            cleaned.manifest_lists, cleaned.manifests, cleaned.content_files, cleaned.metadata_files
        );
    }
    Ok(())
}

/// `lakehouse consumers`: the registered consumers, or remove one.
pub async fn consumers(
    catalog: &SqlCatalog,
    name: &TableName,
    remove: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    if let Some(id) = remove {
        let removed = consumer::unregister(catalog, name, id).await?;
        anyhow::ensure!(removed, "{name} has no consumer {id:?}");
        println!("{name}: consumer {id} removed");
        return Ok(());
    }
    let head = catalog.require_table(name).await?;
    let list = consumer::consumers(&head.metadata).map_err(anyhow::Error::msg)?;
    if as_json {
        let v: HashMap<&String, String> = list.iter().map(|(k, p)| (k, p.encode())).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (id, p) in list {
            println!("{id}\t{}", p.encode());
        }
    }
    Ok(())
}

/// `lakehouse properties`: set `key=value` pairs and remove keys.
pub async fn properties(
    catalog: &SqlCatalog,
    name: &TableName,
    set: &[String],
    unset: &[String],
) -> anyhow::Result<()> {
    let mut head = catalog.require_table(name).await?;
    let committer = Committer::new(catalog.clone());
    let mut pairs = HashMap::new();
    for kv in set {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--set {kv:?} is not key=value"))?;
        pairs.insert(k.trim().to_string(), v.trim().to_string());
    }
    // The codec properties are checked before anything is committed: a codec
    // the writers refuse would stop every commit to the table.
    let mut after = head.metadata.properties().clone();
    after.extend(pairs.clone());
    after.retain(|k, _| !unset.contains(k));
    Codec::of_table(&after)
        .and_then(|_| Codec::of_table_deletes(&after))
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if !pairs.is_empty() {
        head = committer.set_properties(&head, pairs).await?;
    }
    if !unset.is_empty() {
        head = committer.remove_properties(&head, unset.to_vec()).await?;
    }
    let mut props: Vec<_> = head.metadata.properties().iter().collect();
    props.sort();
    for (k, v) in props {
        println!("{k}={v}");
    }
    Ok(())
}
