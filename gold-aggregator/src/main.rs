//! gold-aggregator: Silver changelog → incremental rollups in Gold, exactly once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gold_aggregator::{Config, RunOptions};

/// mimalloc returns freed memory to the system: glibc's arenas kept about twice
/// the live heap (docs/benchmarks.md, Gold memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Silver changelog → Gold rollups, exact under retraction, exactly once")]
struct Cli {
    /// TOML config file (defaults are embedded; LAKEHOUSE_* env vars override).
    #[arg(long, short, env = "LAKEHOUSE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Aggregate until SIGTERM / ctrl-c (the default).
    Run {
        /// Exit once every Gold table is up to its Silver changelog and nothing new
        /// arrived for this long (e.g. "5s"). For demos and batch runs.
        #[arg(long, env = "LAKEHOUSE_EXIT_WHEN_IDLE", value_parser = humantime::parse_duration)]
        exit_when_idle: Option<Duration>,
        /// Write a JSON summary of the run here on exit.
        #[arg(long, env = "LAKEHOUSE_SUMMARY_JSON")]
        summary_json: Option<PathBuf>,
    },
    /// Check a configuration and its Gold definitions, then exit (0 = valid).
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
        let checked = Config::load(file.as_deref().or(cli.config.as_deref()))
            .map_err(|e| format!("invalid configuration: {e}"))
            .and_then(|c| {
                gold_aggregator::spec::load(&c.gold.tables).map_err(|e| format!("invalid Gold definition: {e}"))
            });
        return match checked {
            Ok(tables) => {
                println!("configuration is valid ({} Gold tables)", tables.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    let Command::Run { exit_when_idle, summary_json } = command else { unreachable!("validate returned above") };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gold-aggregator: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = config.telemetry.clone();
    lakehouse::worker::run_service("gold-aggregator", &telemetry, summary_json, move |health, shutdown| {
        gold_aggregator::run(config, RunOptions { exit_when_idle, health }, shutdown)
    })
}
