//! silver-refiner: Bronze → typed, validated, deduplicated Silver tables
//! through the changelog store, exactly once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lakehouse::telemetry::{self, Health};
use silver_refiner::{Config, RunOptions};

#[derive(Parser)]
#[command(version, about = "Bronze → Silver: contracts, changelog store, Iceberg row deltas, exactly once")]
struct Cli {
    /// TOML config file (defaults are embedded; LAKEHOUSE_* env vars override).
    #[arg(long, short, env = "LAKEHOUSE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Refine until SIGTERM / ctrl-c (the default).
    Run {
        /// Exit once every entity is refined up to its Bronze head and nothing new
        /// arrived for this long (e.g. "5s"). For demos and batch runs.
        #[arg(long, env = "LAKEHOUSE_EXIT_WHEN_IDLE", value_parser = humantime::parse_duration)]
        exit_when_idle: Option<Duration>,
        /// Write a JSON summary of the run here on exit.
        #[arg(long, env = "LAKEHOUSE_SUMMARY_JSON")]
        summary_json: Option<PathBuf>,
    },
    /// Check a configuration and its contracts, then exit (0 = valid).
    Validate {
        /// Config file to check (overrides --config).
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run { exit_when_idle: None, summary_json: None });
    if let Command::Validate { file } = &command {
        let config = match Config::load(file.as_deref().or(cli.config.as_deref())) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("invalid configuration: {e}");
                return ExitCode::from(2);
            }
        };
        let contracts = if config.silver.contracts.is_dir() {
            silver_refiner::Contracts::from_dir(&config.silver.contracts)
        } else {
            silver_refiner::Contracts::from_file(&config.silver.contracts)
        };
        return match contracts {
            Ok(c) => {
                println!("configuration is valid ({} entity contracts)", c.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid contract: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Command::Run { exit_when_idle, summary_json } = command else { unreachable!("validate returned above") };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("silver-refiner: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.telemetry.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("silver-refiner: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = lakehouse::shutdown::on_signals();
        let health = Health::default();
        let handle = telemetry::install_metrics();
        if !config.telemetry.listen.is_empty() {
            match telemetry::serve(&config.telemetry.listen, handle, health.clone(), shutdown.clone()).await {
                Ok(addr) => tracing::info!(%addr, "serving /metrics and /health"),
                Err(e) => {
                    tracing::error!(listen = %config.telemetry.listen, error = %e, "cannot bind metrics listener");
                    return ExitCode::FAILURE;
                }
            }
        }
        let result = silver_refiner::run(config, RunOptions { exit_when_idle, health }, shutdown.clone()).await;
        shutdown.cancel();
        match result {
            Ok(s) => {
                tracing::info!(
                    bronze_rows = s.bronze_rows,
                    upserted = s.upserted,
                    deleted = s.deleted,
                    rejected = s.rejected,
                    commits = s.commits,
                    "stopped"
                );
                if let Some(path) = summary_json {
                    let json = serde_json::to_vec_pretty(&s).expect("the summary serializes");
                    if let Err(e) = std::fs::write(&path, json) {
                        tracing::error!(path = %path.display(), error = %e, "cannot write the run summary");
                        return ExitCode::FAILURE;
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "silver-refiner failed");
                ExitCode::FAILURE
            }
        }
    })
}
