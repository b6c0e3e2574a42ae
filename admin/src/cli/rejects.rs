//! `lakehouse rejects list|replay <entity>`: what `silver._rejects` holds for an
//! entity, and replaying it through the current contract (silver-refiner's
//! [`silver_refiner::replay`]). Both read the refiner's config (`--config`):
//! the catalog, the Silver namespace, the contracts and the store root.

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};
use silver_refiner::rejects::RejectRow;

#[derive(Args, Clone, Debug)]
pub struct RejectsArgs {
    #[command(subcommand)]
    pub command: RejectsCommand,
}

#[derive(Subcommand, Clone, Debug)]
pub enum RejectsCommand {
    /// Rejected records of an entity, newest first: rule, column, reason, Bronze and
    /// Kafka coordinates, contract version, time.
    List {
        entity: String,
        /// Only this rule (parse, type, not_null, allowed, min, ...).
        #[arg(long, env = "LAKEHOUSE_REJECTS_RULE")]
        rule: Option<String>,
        /// Only rejects on this contract column.
        #[arg(long, env = "LAKEHOUSE_REJECTS_COLUMN")]
        column: Option<String>,
        /// Only rejects made under this contract version.
        #[arg(long, env = "LAKEHOUSE_REJECTS_CONTRACT_VERSION")]
        contract_version: Option<i32>,
        /// Only rejects made at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long, env = "LAKEHOUSE_REJECTS_SINCE")]
        since: Option<String>,
        /// Only rejects of this Bronze snapshot.
        #[arg(long, env = "LAKEHOUSE_REJECTS_BRONZE_SNAPSHOT")]
        bronze_snapshot: Option<i64>,
        /// At most this many rows (0 = all).
        #[arg(long, default_value_t = 50, env = "LAKEHOUSE_REJECTS_LIMIT")]
        limit: usize,
        /// Show the raw Bronze value too.
        #[arg(long)]
        raw: bool,
        /// JSON Lines, one reject per line (every field).
        #[arg(long)]
        json: bool,
    },
    /// Run the entity's rejects through the current contract and upsert those that now
    /// pass through the store into Silver, exactly once (see README "Replaying rejects").
    Replay {
        entity: String,
        /// Report what would be applied, commit nothing.
        #[arg(long)]
        dry_run: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn silver_config(
    config: Option<&Path>,
    catalog_url: Option<&str>,
    warehouse: Option<&str>,
) -> anyhow::Result<silver_refiner::Config> {
    let mut c = silver_refiner::Config::load(config).context("loading the silver-refiner configuration")?;
    if let Some(u) = catalog_url {
        c.catalog.url = u.to_string();
    }
    if let Some(w) = warehouse {
        c.catalog.warehouse = w.to_string();
    }
    Ok(c)
}

pub async fn run(
    args: RejectsArgs,
    config: Option<&Path>,
    catalog_url: Option<&str>,
    warehouse: Option<&str>,
) -> anyhow::Result<()> {
    let config = silver_config(config, catalog_url, warehouse)?;
    match args.command {
        RejectsCommand::List { entity, rule, column, contract_version, since, bronze_snapshot, limit, raw, json } => {
            let since_us = since
                .as_deref()
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s)
                        .map(|t| t.timestamp_micros())
                        .with_context(|| format!("--since {s:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let catalog = lakehouse::catalog::SqlCatalog::connect(&config.catalog).await?;
            let (all, _) = silver_refiner::rejects::read_all(&catalog, &config.silver.namespace).await?;
            let mut rows: Vec<RejectRow> = all
                .into_iter()
                .map(|(_, r)| r)
                .filter(|r| r.entity == entity)
                .filter(|r| rule.as_ref().is_none_or(|x| &r.rule == x))
                .filter(|r| column.as_ref().is_none_or(|x| r.column.as_ref() == Some(x)))
                .filter(|r| contract_version.is_none_or(|v| r.contract_version == v))
                .filter(|r| since_us.is_none_or(|t| r.rejected_at_us >= t))
                .filter(|r| bronze_snapshot.is_none_or(|s| r.bronze_snapshot_id == s))
                .collect();
            rows.sort_by(|a, b| {
                (b.rejected_at_us, &b.kafka_topic, b.kafka_partition, b.kafka_offset).cmp(&(
                    a.rejected_at_us,
                    &a.kafka_topic,
                    a.kafka_partition,
                    a.kafka_offset,
                ))
            });
            let total = rows.len();
            if limit > 0 {
                rows.truncate(limit);
            }
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print!("{}", render(&rows, raw));
                eprintln!("{} of {total} matching rejects of {entity}", rows.len());
            }
            Ok(())
        }
        RejectsCommand::Replay { entity, dry_run, json } => {
            let report = silver_refiner::replay::replay(&config, &entity, dry_run).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else if report.up_to_date {
                println!(
                    "{entity}: nothing to replay ({} rejects, all replayed with contract version {} already)",
                    report.rejects, report.contract_version
                );
            } else {
                println!(
                    "{entity}: {} rejects, {} considered with contract version {}: {} keys pass ({} upserted, {} \
                     deleted, {} superseded by newer states), still rejected {:?}, missing in Bronze {}{}{}",
                    report.rejects,
                    report.considered,
                    report.contract_version,
                    report.passing,
                    report.upserted,
                    report.deleted,
                    report.superseded,
                    report.still_rejected,
                    report.missing_in_bronze,
                    match (report.widened.is_empty(), report.need_widening) {
                        (false, _) => format!(", columns widened first {:?}", report.widened),
                        (true, 0) => String::new(),
                        (true, n) => format!(", {n} pass once their columns are widened (the replay widens them)"),
                    },
                    match (dry_run, report.store_snapshot, report.silver_snapshot) {
                        (true, _, _) => " (dry run: nothing committed)".to_string(),
                        (false, Some(s), Some(i)) => format!("; store snapshot {s}, Silver snapshot {i}"),
                        (false, Some(s), None) => format!("; store snapshot {s}"),
                        _ => String::new(),
                    }
                );
            }
            Ok(())
        }
    }
}

fn render(rows: &[RejectRow], raw: bool) -> String {
    let mut out = String::new();
    for r in rows {
        let at = chrono::DateTime::from_timestamp_micros(r.rejected_at_us)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_else(|| r.rejected_at_us.to_string());
        let coords = format!(
            "{}/{}/{}",
            r.kafka_topic.as_deref().unwrap_or("?"),
            r.kafka_partition.map_or("?".into(), |p| p.to_string()),
            r.kafka_offset.map_or("?".into(), |o| o.to_string())
        );
        out.push_str(&format!(
            "{at}  {:<11} {:<14} v{:<3} {} snapshot {}  {coords}\n    {}\n",
            r.rule,
            r.column.as_deref().unwrap_or("-"),
            r.contract_version,
            r.bronze_table,
            r.bronze_snapshot_id,
            r.reason
        ));
        if raw {
            out.push_str(&format!("    raw: {}\n", r.raw_value.as_deref().unwrap_or("(null)")));
        }
    }
    if rows.is_empty() {
        out.push_str("(no rejects)\n");
    }
    out
}
