//! bronze-ingestor: Kafka topics → Bronze Iceberg tables, exactly once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bronze_ingestor::Config;
use bronze_ingestor::{self as bronze, RunOptions};
use clap::{Parser, Subcommand};

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
    let telemetry = config.telemetry.clone();
    lakehouse::worker::run_service("bronze-ingestor", &telemetry, summary_json, move |health, shutdown| {
        bronze::run(config, RunOptions { exit_when_idle, health }, shutdown)
    })
}
