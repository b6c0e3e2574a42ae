//! Downstream consumers registered on a table, so that snapshot expiry keeps
//! what they have not read yet.
//!
//! A worker that reads a table incrementally (silver-refiner reads Bronze from
//! the Bronze snapshot its last commit recorded) registers itself in the
//! table's properties: `lakehouse.consumer.<id>` = the snapshot id it consumed
//! up to, or `earliest` before it consumed anything. Expiry
//! ([`crate::table::retention`]) keeps that snapshot and every later snapshot
//! of the current ancestry, whatever their age.
//!
//! A registration may lag the consumer's real position (it is written after
//! the consumer's own commit, at most every [`REGISTER_EVERY`] per table and
//! consumer in one process): that only keeps more. It must never be ahead,
//! which is why only the consumer writes it, after committing its position.
//! A consumer that is gone for good keeps history forever: remove it with
//! `lakehouse consumers <table> --remove <id>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use iceberg::spec::TableMetadata;

use crate::catalog::{SqlCatalog, TableName};
use crate::table::commit::{CommitError, Committer};

/// Property prefix of consumer registrations.
pub const CONSUMER_PREFIX: &str = "lakehouse.consumer.";

/// How often one process rewrites one registration at most.
pub const REGISTER_EVERY: Duration = Duration::from_secs(30);

/// Where a registered consumer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerPosition {
    /// Nothing consumed yet: every snapshot is needed.
    Earliest,
    /// Consumed up to and including this snapshot; it and its descendants are needed.
    Snapshot(i64),
}

impl ConsumerPosition {
    pub fn encode(&self) -> String {
        match self {
            ConsumerPosition::Earliest => "earliest".to_string(),
            ConsumerPosition::Snapshot(id) => id.to_string(),
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "earliest" => Some(ConsumerPosition::Earliest),
            v => v.parse().ok().map(ConsumerPosition::Snapshot),
        }
    }
}

/// Property key of consumer `id`.
pub fn consumer_key(id: &str) -> String {
    format!("{CONSUMER_PREFIX}{id}")
}

/// The registered consumers of a table. An unreadable registration is an
/// error: expiry must not guess what a consumer needs.
pub fn consumers(metadata: &TableMetadata) -> Result<BTreeMap<String, ConsumerPosition>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in metadata.properties() {
        let Some(id) = k.strip_prefix(CONSUMER_PREFIX) else { continue };
        let pos = ConsumerPosition::parse(v).ok_or_else(|| {
            format!("table property {k} = {v:?} is not a snapshot id or \"earliest\" (a consumer registration)")
        })?;
        out.insert(id.to_string(), pos);
    }
    Ok(out)
}

fn last_written() -> &'static Mutex<HashMap<(String, String), Instant>> {
    static LAST: OnceLock<Mutex<HashMap<(String, String), Instant>>> = OnceLock::new();
    LAST.get_or_init(Default::default)
}

/// Registers (or advances) consumer `id` of `table` at `position`, a property
/// commit on the table. Skipped when the table already says so, or when this
/// process wrote this registration less than [`REGISTER_EVERY`] ago (the
/// lagging value keeps more, never less). Returns whether it wrote.
pub async fn register(
    catalog: &SqlCatalog,
    table: &TableName,
    id: &str,
    position: ConsumerPosition,
) -> Result<bool, CommitError> {
    let slot = (table.to_string(), id.to_string());
    if last_written().lock().expect("registration lock").get(&slot).is_some_and(|t| t.elapsed() < REGISTER_EVERY) {
        return Ok(false);
    }
    let key = consumer_key(id);
    let value = position.encode();
    let head = catalog
        .require_table(table)
        .await
        .map_err(|source| CommitError::Catalog { table: table.to_string(), source })?;
    if head.metadata.properties().get(&key) == Some(&value) {
        return Ok(false);
    }
    let props = HashMap::from([(key, value)]);
    Committer::new(catalog.clone()).set_properties(&head, props).await?;
    last_written().lock().expect("registration lock").insert(slot, Instant::now());
    tracing::debug!(table = %table, consumer = id, position = %position.encode(), "consumer registered");
    Ok(true)
}

/// [`register`] for a worker's loop: a failure is logged, not returned (the
/// registration lags a little more, which only keeps more history).
pub async fn advance(catalog: &SqlCatalog, table: &TableName, id: &str, snapshot_id: i64) {
    if let Err(e) = register(catalog, table, id, ConsumerPosition::Snapshot(snapshot_id)).await {
        tracing::warn!(table = %table, consumer = id, snapshot_id, error = %e, "cannot register the consumer position");
    }
}

/// Removes consumer `id` of `table`; returns whether it was registered.
pub async fn unregister(catalog: &SqlCatalog, table: &TableName, id: &str) -> Result<bool, CommitError> {
    let head = catalog
        .require_table(table)
        .await
        .map_err(|source| CommitError::Catalog { table: table.to_string(), source })?;
    let key = consumer_key(id);
    if !head.metadata.properties().contains_key(&key) {
        return Ok(false);
    }
    Committer::new(catalog.clone()).remove_properties(&head, vec![key]).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        for p in [ConsumerPosition::Earliest, ConsumerPosition::Snapshot(42)] {
            assert_eq!(ConsumerPosition::parse(&p.encode()), Some(p));
        }
        assert_eq!(ConsumerPosition::parse("latest"), None);
        assert_eq!(consumer_key("silver-orders"), "lakehouse.consumer.silver-orders");
    }
}
