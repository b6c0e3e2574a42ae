//! silver-refiner: Bronze → typed, validated, deduplicated Silver tables
//! through the changelog store, exactly once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use silver_refiner::{Config, RunOptions};

/// mimalloc returns freed memory to the system (docs/benchmarks.md, Gold memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    lakehouse::allocator::tune();
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
    let telemetry = config.telemetry.clone();
    lakehouse::worker::run_service("silver-refiner", &telemetry, summary_json, move |health, shutdown| {
        silver_refiner::run(config, RunOptions { exit_when_idle, health }, shutdown)
    })
}
