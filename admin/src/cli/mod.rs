//! The `lakehouse` admin CLI.

mod compact;
mod inspect;
mod maintain;
mod rejects;
mod render;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lakehouse::config::{CatalogConfig, ConfigError, WorkerConfig};

#[derive(Parser)]
#[command(name = "lakehouse", version, about = "Admin CLI of the streaming lakehouse")]
pub struct Cli {
    /// TOML config file (defaults are embedded; LAKEHOUSE_* env vars override).
    #[arg(long, short, env = "LAKEHOUSE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Catalog URL, overriding the config (sqlite://<file> or postgres://...).
    #[arg(long, env = "LAKEHOUSE_CATALOG_URL", global = true)]
    catalog_url: Option<String>,
    /// Warehouse path or URL, overriding the config.
    #[arg(long, env = "LAKEHOUSE_WAREHOUSE", global = true)]
    warehouse: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List tables (all namespaces, or one).
    Tables {
        namespace: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Schema, partitioning, properties and current snapshot of a table.
    Describe {
        /// <namespace>.<table>
        table: String,
        #[arg(long)]
        json: bool,
    },
    /// Snapshot history with summaries.
    Snapshots {
        table: String,
        #[arg(long)]
        json: bool,
    },
    /// Read rows, at the current snapshot or in the past.
    Scan {
        table: String,
        #[arg(long, conflicts_with = "as_of")]
        snapshot_id: Option<i64>,
        /// RFC 3339 timestamp or milliseconds since the epoch: the snapshot current at that time.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only these columns (comma separated).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Expire snapshots now and delete the files only they reached (the workers
    /// also do it on every commit, by the table's history.expire.* properties).
    Expire {
        table: String,
        /// Expire snapshots older than this (default: history.expire.max-snapshot-age-ms).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Always keep the newest N snapshots (default: history.expire.min-snapshots-to-keep).
        #[arg(long)]
        retain_last: Option<usize>,
        /// Print what would expire and why the rest is kept; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Rewrite data files whose deleted fraction passes the table's thresholds
    /// (lakehouse.compaction.* properties) with their position deletes applied,
    /// and drop the delete files they needed, in one `replace` snapshot: one group
    /// of at most `lakehouse.compaction.max-file-group-size-bytes` per run (the
    /// report says how many delete files are left). Silver and Gold tables go
    /// through their worker's store (reads its `--config`).
    Compact {
        table: String,
        /// Print what would be rewritten; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Downstream consumers registered on a table (expiry keeps what they have not read).
    Consumers {
        table: String,
        /// Remove this consumer's registration (a consumer that is gone for good).
        #[arg(long)]
        remove: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show table properties; --set key=value and --unset key change them.
    Properties {
        table: String,
        #[arg(long)]
        set: Vec<String>,
        #[arg(long)]
        unset: Vec<String>,
    },
    /// Produce Debezium change events for a small commerce schema.
    Generate(lakehouse_generator::GenerateArgs),
    /// Changelog-store tables (Paimon layout under a warehouse directory): create,
    /// write, scan, changelog, snapshots, compact, expire, remove-orphan-files.
    Store(store::StoreArgs),
    /// Records silver-refiner rejected (`silver._rejects`): list them, replay them
    /// through the current contract. Reads the refiner's config (`--config`).
    Rejects(rejects::RejectsArgs),
    /// Entity contracts: `infer bronze.<entity>` writes a starting contract (TOML) to
    /// stdout from the Debezium schema blocks in Bronze.
    Contract {
        #[command(subcommand)]
        command: ContractCommand,
    },
}

#[derive(Subcommand)]
enum ContractCommand {
    /// A starting contract from the Debezium `schema` blocks of a Bronze table's newest files.
    Infer {
        /// The Bronze table, `<namespace>.<table>` (e.g. bronze.orders).
        table: String,
        /// Entity name (default: the table name).
        #[arg(long, env = "LAKEHOUSE_INFER_ENTITY")]
        entity: Option<String>,
        /// Read the newest files until this many rows.
        #[arg(long, default_value_t = 10_000, env = "LAKEHOUSE_INFER_MAX_ROWS")]
        max_rows: usize,
    },
}

/// Entry point of the `lakehouse` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    lakehouse::telemetry::init_logging("text");
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lakehouse: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What admin commands read of a worker's config file: the catalog section
/// (the workers' own sections in the same file are theirs to check).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminConfig {
    catalog: CatalogConfig,
}

impl WorkerConfig for AdminConfig {
    const SECTIONS: &'static [&'static str] = &["catalog"];
    fn defaults() -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

fn admin_config(cli: &Cli) -> anyhow::Result<CatalogConfig> {
    let mut catalog = lakehouse::config::load::<AdminConfig>(cli.config.as_deref())?.catalog;
    if let Some(u) = &cli.catalog_url {
        catalog.url = u.clone();
    }
    if let Some(w) = &cli.warehouse {
        catalog.warehouse = w.clone();
    }
    Ok(catalog)
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    if let Command::Generate(args) = &cli.command {
        return lakehouse_generator::run(args.clone()).await;
    }
    if let Command::Store(args) = &cli.command {
        return store::run(args.clone());
    }
    if let Command::Rejects(args) = &cli.command {
        return rejects::run(args.clone(), cli.config.as_deref(), cli.catalog_url.as_deref(), cli.warehouse.as_deref())
            .await;
    }
    let catalog = lakehouse::catalog::SqlCatalog::connect(&admin_config(&cli)?).await?;
    match cli.command {
        Command::Tables { namespace, json } => inspect::tables(&catalog, namespace.as_deref(), json).await,
        Command::Describe { table, json } => inspect::describe(&catalog, &table.parse()?, json).await,
        Command::Snapshots { table, json } => inspect::snapshots(&catalog, &table.parse()?, json).await,
        Command::Scan { table, snapshot_id, as_of, limit, columns, json } => {
            inspect::scan(&catalog, &table.parse()?, snapshot_id, as_of.as_deref(), limit, &columns, json).await
        }
        Command::Expire { table, older_than, retain_last, dry_run, json } => {
            maintain::expire(&catalog, &table.parse()?, older_than, retain_last, dry_run, json).await
        }
        Command::Compact { table, dry_run, json } => {
            let sources = compact::Sources {
                config: cli.config.as_deref(),
                catalog_url: cli.catalog_url.as_deref(),
                warehouse: cli.warehouse.as_deref(),
            };
            compact::compact(&catalog, &table.parse()?, &sources, dry_run, json).await
        }
        Command::Consumers { table, remove, json } => {
            maintain::consumers(&catalog, &table.parse()?, remove.as_deref(), json).await
        }
        Command::Properties { table, set, unset } => {
            maintain::properties(&catalog, &table.parse()?, &set, &unset).await
        }
        Command::Generate(_) => unreachable!("handled above"),
        Command::Contract { command: ContractCommand::Infer { table, entity, max_rows } } => {
            let name: lakehouse::catalog::TableName = table.parse()?;
            let inference = silver_refiner::infer::from_bronze(&catalog, &name, max_rows).await?;
            let entity = entity.unwrap_or_else(|| name.name.clone());
            let toml = inference.to_toml(&entity, &name.to_string()).map_err(anyhow::Error::msg)?;
            print!("{toml}");
            Ok(())
        }
        Command::Store(_) | Command::Rejects(_) => unreachable!("handled above"),
    }
}
