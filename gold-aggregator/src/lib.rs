//! gold-aggregator: Silver changelog → Gold. [`run`] drives the [`Aggregator`]
//! stage on the shared worker skeleton: each Gold table reads the changelog
//! store's `+I/-U/+U/-D` of its Silver entity from the snapshot its last
//! commit recorded, adds and retracts contributions per (window, group), and
//! commits the changed groups as one Iceberg RowDelta per interval
//! ([`sink`]).
//!
//! The pieces:
//!
//! - [`spec`]: Gold table definitions in TOML (`[[rollup]]`), validated on load;
//! - [`window`]: day / ISO week / month windows in a time zone ([`tz`]: named zones
//!   with daylight saving from the system's tz database);
//! - [`wide`]: denormalized tables, a fact joined with its dimensions (SCD1);
//! - [`features`]: point-in-time ML feature tables;
//! - [`filter`]: row filters (`status != 'cancelled' and total >= 0`);
//! - [`accum`]: accumulators exact under retraction (per-value counts for
//!   `min`, `max`, `count_distinct`);
//! - [`rollup`]: one rollup's groups in memory and their Gold rows;
//! - [`sink`]: the Gold Iceberg table and its state table in the changelog store.

pub mod accum;
pub mod config;
pub mod features;
pub mod filter;
pub mod rollup;
pub mod scalar;
pub mod sink;
pub mod spec;
pub mod stage;
pub mod tz;
pub mod wide;
pub mod window;

pub use config::Config;
pub use stage::{Aggregator, GoldError, RunSummary};

/// Knobs of one run that are not configuration (tests, demo, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once every Gold table is up to its Silver changelog, for this long.
    pub exit_when_idle: Option<std::time::Duration>,
    pub health: lakehouse::telemetry::Health,
}

/// Runs gold-aggregator until `shutdown` (or idle, with `exit_when_idle`).
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<RunSummary, GoldError> {
    let policy =
        lakehouse::worker::BatchPolicy::new(config.gold.commit_interval, config.gold.max_batch_changes, usize::MAX)
            .with_poll_wait(config.gold.poll_interval.min(std::time::Duration::from_millis(200)));
    let control = lakehouse::worker::Control {
        layer: "gold",
        shutdown,
        shutdown_timeout: config.shutdown.timeout,
        health: options.health,
        exit_when_idle: options.exit_when_idle,
    };
    let mut aggregator = Aggregator::start(config).await?;
    lakehouse::worker::drive(&mut aggregator, &policy, &control).await?;
    Ok(aggregator.summary())
}
