//! bronze-ingestor: Kafka topics → Bronze Iceberg tables, exactly once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bronze_ingestor::Config;
use bronze_ingestor::{self as bronze, RunOptions};
use clap::{Parser, Subcommand};
use lakehouse::telemetry::{self, Health};

#[derive(Parser)]
#[command(version, about = "Kafka topics → Bronze Iceberg tables, exactly once")]
struct Cli {
    /// TOML config file (defaults are embedded; LAKEHOUSE_* env vars override).
    #[arg(long, short, env = "LAKEHOUSE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume and commit until SIGTERM / ctrl-c (the default).
    Run {
        /// Exit once all assigned partitions are consumed and committed and
        /// nothing new arrived for this long (e.g. "5s"). For demos and batch runs.
        #[arg(long, env = "LAKEHOUSE_EXIT_WHEN_IDLE", value_parser = humantime::parse_duration)]
        exit_when_idle: Option<Duration>,
        /// Write a JSON summary of the run here on exit (records, commits, busy seconds).
        #[arg(long, env = "LAKEHOUSE_SUMMARY_JSON")]
        summary_json: Option<PathBuf>,
    },
    /// Check a configuration and exit (0 = valid).
    Validate {
        /// Config file to check (overrides --config).
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run { exit_when_idle: None, summary_json: None });
    if let Command::Validate { file } = &command {
        return match Config::load(file.as_deref().or(cli.config.as_deref())) {
            Ok(_) => {
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid configuration: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Command::Run { exit_when_idle, summary_json } = command else { unreachable!("validate returned above") };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bronze-ingestor: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.telemetry.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bronze-ingestor: cannot start runtime: {e}");
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
        let result = bronze::run(config, RunOptions { exit_when_idle, health }, shutdown.clone()).await;
        shutdown.cancel();
        match result {
            Ok(s) => {
                tracing::info!(
                    records = s.records,
                    commits = s.commits,
                    fenced = s.fenced,
                    decode_errors = s.decode_errors,
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
                tracing::error!(error = %e, kind = ?e.kind(), "bronze-ingestor failed");
                ExitCode::FAILURE
            }
        }
    })
}
