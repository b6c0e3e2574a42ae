//! The worker skeleton every stage drives: read input since the last committed
//! position → transform into an in-flight batch → write files → one atomic
//! commit per table that carries the new position.
//!
//! How the pieces compose:
//!
//! - A stage (Bronze's consumer, Silver's refiner, Gold's aggregator)
//!   implements [`Stage`]: [`Stage::fill`] moves input into its in-flight batch
//!   (Kafka records, the data files of new upstream snapshots, changelog
//!   records), [`Stage::commit`] writes the batch's files and commits them
//!   through [`crate::table::commit::Committer`] with a position check (the
//!   fence), re-positioning itself when it finds it was fenced.
//! - [`BatchPolicy`] says when a batch is due (age, records, bytes).
//! - [`drive`] is the loop: health beats, the batch policy, commit metrics per
//!   table and layer, graceful shutdown (the in-flight batch is committed
//!   within a bound or abandoned whole, never half-visible), and the
//!   exit-when-idle mode used by demos, tests and benchmarks.
//!
//! ```ignore
//! let mut stage = MyStage::start(config).await?;
//! let policy = BatchPolicy::new(config.commit_interval, config.max_batch_records, config.max_batch_bytes);
//! worker::drive(&mut stage, &policy, &Control::new("silver", shutdown, health)).await?;
//! ```

mod driver;
mod policy;
mod service;

pub use driver::{Control, Stage, TableCommit, drive, record_table_gauges};
pub use policy::{BatchPolicy, Pending};
pub use service::run_service;

/// The median, 99th percentile and maximum of `samples` (milliseconds, in
/// any order), as the workers' run summaries report their delays; `None`s
/// when there are none.
pub fn percentiles(samples: &[u64]) -> (Option<u64>, Option<u64>, Option<u64>) {
    let mut d = samples.to_vec();
    d.sort_unstable();
    let at = |q: f64| d.get(((d.len().max(1) - 1) as f64 * q).round() as usize).copied();
    (at(0.5), at(0.99), d.last().copied())
}
