//! silver-refiner: Bronze → Silver. [`run`] drives the [`Refinery`] stage on the
//! shared worker skeleton: new Bronze snapshots → contract → changelog store →
//! Silver RowDelta ([`materialize`]); rejects to `silver._rejects`.
//!
//! The pieces:
//!
//! - [`contract`]: per-entity contracts in TOML ([`Contract`], [`Contracts`]),
//!   validated on load with errors naming the entity and the column;
//! - [`connect`]: Kafka Connect schema blocks as Debezium's JsonConverter writes them;
//! - [`decode`]: Debezium values (every `io.debezium.time.*`,
//!   `org.apache.kafka.connect.data.*` and `io.debezium.data.*` logical type,
//!   decimals as base64, text or doubles) → typed [`Value`]s, with or without
//!   the schema block;
//! - [`refine`]: [`Refiner::refine`] a row image into a [`RefinedRow`] or a
//!   [`Reject`] (rule, column, reason); unknown source fields go to `_extra`;
//!   [`Refiner::key_of`] for deletes;
//! - [`arrow`]: [`BatchBuilder`] turns refined rows into Arrow record batches
//!   with the contract's schema and Iceberg field ids.
//!
//! ```
//! use silver_refiner::{Contract, Refiner, Value};
//!
//! let contract = Contract::from_toml_str(r#"
//!     name = "customers"
//!     version = 1
//!     source = "bronze.customers"
//!     key = "id"
//!     [[column]]
//!     name = "id"
//!     type = "long"
//!     [[column]]
//!     name = "email"
//!     type = "string"
//!     trim = true
//!     case = "lower"
//! "#)?;
//! let refiner = Refiner::new(contract);
//! let after = serde_json::json!({"id": 1004, "email": " AnneK@noanswer.org ", "middle_name": "L"});
//! let row = refiner.refine(after.as_object().expect("an object"), None)?;
//! assert_eq!(row.values, [Value::Long(1004), Value::String("annek@noanswer.org".into())]);
//! assert_eq!(row.extra.as_deref(), Some(r#"{"middle_name":"L"}"#));
//! let mut batch = refiner.batch_builder(1);
//! batch.append(&row)?;
//! assert_eq!(batch.finish()?.num_rows(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod arrow;
mod changes;
pub mod compact;
pub mod config;
pub mod connect;
pub mod contract;
mod decimal;
pub mod decode;
pub mod envelope;
pub mod failpoint;
#[cfg(test)]
mod fixtures;
pub mod infer;
pub mod lineage;
pub mod materialize;
pub mod position;
pub mod refine;
mod reject;
pub mod rejects;
pub mod replay;
pub mod shard;
pub mod stage;
mod value;

pub use arrow::{BatchBuilder, BatchError};
pub use config::Config;
pub use connect::{ConnectSchema, ConnectType, Logical, SchemaError};
pub use contract::{ColumnType, Contract, ContractError, Contracts};
pub use refine::{RefinedRow, Refiner};
pub use reject::{Reject, Rule};
pub use stage::{RefineError, Refinery, RunSummary};
pub use value::Value;

/// Knobs of one run that are not configuration (tests, demo, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once every entity is refined up to its Bronze head, for this long.
    pub exit_when_idle: Option<std::time::Duration>,
    pub health: lakehouse::telemetry::Health,
}

/// Runs silver-refiner until `shutdown` (or idle, with `exit_when_idle`).
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<RunSummary, RefineError> {
    let policy =
        lakehouse::worker::BatchPolicy::new(config.silver.commit_interval, config.silver.max_batch_records, usize::MAX)
            .with_poll_wait(config.silver.poll_interval.min(std::time::Duration::from_millis(200)));
    let control = lakehouse::worker::Control {
        layer: "silver",
        shutdown,
        shutdown_timeout: config.shutdown.timeout,
        health: options.health,
        exit_when_idle: options.exit_when_idle,
    };
    let mut refinery = Refinery::start(config).await?;
    lakehouse::worker::drive(&mut refinery, &policy, &control).await?;
    Ok(refinery.summary())
}
