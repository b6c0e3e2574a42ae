//! `lakehouse rejects replay <entity>`: the entity's rejected records run
//! through the *current* contract again; those that now pass are upserted
//! (or deleted) through the same store → Silver path as the refiner's.
//!
//! - **Source order is kept.** A replayed record is taken from its Bronze row
//!   (found by its Kafka coordinates), so it carries its original `_seq` and
//!   lineage; per key only the newest replayed change counts. A replayed record
//!   never overwrites a newer state of its key: the store's `sequence.field`
//!   refuses an older version of a live key, and a key deleted (or truncated)
//!   by a newer Bronze record is left deleted — the replay reads the entity's
//!   Bronze table once (key, position and offset columns; values only of rows
//!   without a usable message key) to know each key's newest applied change.
//!   Bronze records that are rejects themselves never count as a state.
//! - **Exactly once.** The store commit — and so the Silver commit that
//!   materialises it — carries `lakehouse.silver.replay` =
//!   `{"rejects_snapshot", "contract_version", "replay_id"}`: the head of
//!   `silver._rejects` the replay read and the contract version it applied. A
//!   replay that finds the same contract version recorded considers only the
//!   rejects added after that snapshot, so a repeated (or crashed-and-repeated)
//!   replay applies nothing twice; a new contract version reconsiders every
//!   reject (applying one again is idempotent: same key, same `_seq`).
//!   Records that still fail stay in `silver._rejects` as they are; nothing is
//!   written there again.
//! - **Beside a live refiner.** The replay commits under its own store commit
//!   user (`lakehouse-replay-<entity>`). The store refuses a commit when
//!   another commit user wrote to the same buckets since the commit's base (the
//!   loser retries: the replay is re-run, the refiner re-reads its batch), and
//!   Silver commits are ordered by the catalog's compare-and-swap check (each
//!   store snapshot only on a head that has the newest earlier one; see
//!   [`crate::materialize`]). The replay carries the store's current Bronze
//!   position forward, so the refiner's position never moves back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, Int64Array, StringArray};
use lakehouse::catalog::SqlCatalog;
use lakehouse::table::incremental::{increments, read_data_file};
use lakehouse::table::position::newest_in_ancestry;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::contract::Contracts;
use crate::envelope::{Change, change_of, source_seq};
use crate::rejects;
use crate::stage::{BRONZE_COLUMNS, BRONZE_POSITION_KEY, Entity, Evolved, Lineage, Pend, RefineError, Refinery};

/// Store snapshot property and Silver summary key of a replay.
pub const REPLAY_KEY: &str = "lakehouse.silver.replay";

/// What a replay recorded in its commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayMark {
    /// The `silver._rejects` snapshot the replay read up to.
    pub rejects_snapshot: i64,
    /// The contract version the rejects were run through.
    pub contract_version: u32,
    pub replay_id: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    pub entity: String,
    pub contract_version: u32,
    /// Rejects of the entity in `silver._rejects`.
    pub rejects: u64,
    /// Rejects this replay ran through the contract (the others were replayed
    /// before with this contract version).
    pub considered: u64,
    /// Considered rejects whose Bronze row was not found (Bronze retention).
    pub missing_in_bronze: u64,
    /// Changes that now pass, newest per key.
    pub passing: u64,
    pub upserted: u64,
    pub deleted: u64,
    /// Passing changes left out because a newer state of their key exists.
    pub superseded: u64,
    /// Columns the replay widened first (`evolve = "widen-types"`): name and
    /// new type, for values only a wider column holds.
    pub widened: Vec<(String, String)>,
    /// Dry run: rejects that pass once their columns are widened (which a dry
    /// run does not do; they are not in `passing`).
    pub need_widening: u64,
    /// Still failing, by rule (they stay in `silver._rejects`).
    pub still_rejected: BTreeMap<String, u64>,
    /// The store snapshot committed, if any.
    pub store_snapshot: Option<i64>,
    /// The Silver snapshot committed, if any.
    pub silver_snapshot: Option<i64>,
    /// Nothing to do: the rejects were replayed with this contract version already.
    pub up_to_date: bool,
    pub dry_run: bool,
}

type Coordinates = (Option<String>, Option<i32>, Option<i64>);

/// Replays the rejects of `entity` through its contract in `config`.
pub async fn replay(config: &Config, entity: &str, dry_run: bool) -> Result<ReplayReport, RefineError> {
    let fail = |message: String| RefineError::Entity { entity: entity.to_string(), message };
    let contracts = if config.silver.contracts.is_dir() {
        Contracts::from_dir(&config.silver.contracts)?
    } else {
        Contracts::from_file(&config.silver.contracts)?
    };
    let contract = contracts.get(entity).cloned().ok_or_else(|| {
        let known: Vec<&str> = contracts.iter().map(|c| c.name()).collect();
        fail(format!(
            "no contract for this entity in {} (it has: {})",
            config.silver.contracts.display(),
            known.join(", ")
        ))
    })?;
    let version = contract.version();
    let catalog = SqlCatalog::connect(&config.catalog).await?;
    let mut e =
        Refinery::open_entity(config, &catalog, contract, Some(format!("lakehouse-replay-{entity}")), None).await?;
    let mut report = ReplayReport { entity: entity.into(), contract_version: version, dry_run, ..Default::default() };

    let (all, head) = rejects::read_all(&catalog, &config.silver.namespace).await?;
    let Some(head) = head else {
        report.up_to_date = true;
        return Ok(report);
    };
    let previous: Option<ReplayMark> = newest_in_ancestry(&e.materializer.head().metadata, REPLAY_KEY)
        .map(|(_, v)| serde_json::from_str(v).map_err(|err| fail(format!("unreadable {REPLAY_KEY} {v:?}: {err}"))))
        .transpose()?;
    let after = previous.as_ref().filter(|m| m.contract_version == version).map(|m| m.rejects_snapshot);
    let mut rejected: HashSet<Coordinates> = HashSet::new();
    let mut candidates: HashSet<Coordinates> = HashSet::new();
    for (snapshot, r) in all.into_iter().filter(|(_, r)| r.entity == entity) {
        report.rejects += 1;
        let c = (r.kafka_topic, r.kafka_partition, r.kafka_offset);
        if after.is_none_or(|a| snapshot > a) {
            candidates.insert(c.clone());
        }
        rejected.insert(c);
    }
    report.considered = candidates.len() as u64;
    if after == Some(head) || candidates.is_empty() {
        report.up_to_date = after == Some(head);
        return Ok(report);
    }

    // One pass over Bronze: the candidates' changes, and each key's newest applied change.
    let bronze = catalog.require_table(&e.bronze).await?;
    let mut seen = Seen::default();
    let mut found = 0u64;
    for inc in increments(catalog.file_io(), &bronze.metadata, None, usize::MAX).await? {
        let snapshot = inc.snapshot.snapshot_id();
        for f in &inc.files {
            for b in read_data_file(catalog.file_io(), f.file_path(), BRONZE_COLUMNS).await? {
                found += take_bronze(&mut e, &b, snapshot, &candidates, &rejected, &mut seen, &mut report);
            }
        }
    }
    report.missing_in_bronze = report.considered.saturating_sub(found);
    let Seen { newest, truncated, to_widen } = seen;
    widen_for(&mut e, to_widen, dry_run, &mut report).await?;

    // Newest passing change per key, unless a newer applied state of the key exists.
    let changes = std::mem::take(&mut e.changes);
    let mut kept = crate::stage::Changes::default();
    for (k, change) in changes.into_entries() {
        report.passing += 1;
        let order = change.lineage().order();
        let newer = newest.get(&k).is_some_and(|n| *n > order) || truncated.is_some_and(|t| t > order);
        if newer {
            report.superseded += 1;
        } else {
            kept.insert(k, change);
        }
    }
    let (upserts, deletes) = e.batches(kept)?;
    report.upserted = upserts.num_rows() as u64;
    report.deleted = deletes.num_rows() as u64;
    if dry_run || (upserts.num_rows() == 0 && deletes.num_rows() == 0) {
        return Ok(report);
    }
    let mark =
        ReplayMark { rejects_snapshot: head, contract_version: version, replay_id: uuid::Uuid::new_v4().to_string() };
    let mut props = BTreeMap::from([(
        REPLAY_KEY.to_string(),
        serde_json::to_string(&mark).map_err(|err| fail(format!("encoding the replay mark: {err}")))?,
    )]);
    // The refiner's Bronze position, carried forward unchanged.
    if let Some(p) = e.materializer.store_position()?.and_then(|p| p.get(BRONZE_POSITION_KEY).cloned()) {
        props.insert(BRONZE_POSITION_KEY.to_string(), p);
    }
    let done = e.materializer.apply(upserts, &deletes, props).await?;
    report.store_snapshot = Some(done.store_snapshot);
    report.silver_snapshot = done.commit.map(|c| c.snapshot_id);
    tracing::info!(entity, replay_id = %mark.replay_id, upserted = report.upserted, deleted = report.deleted,
        superseded = report.superseded, "rejects replayed");
    Ok(report)
}

/// A candidate whose value only a wider column holds: its Bronze key and value,
/// where it came from, and the columns it needs widened.
type ToWiden = (Option<String>, Option<String>, Lineage, Vec<(String, crate::contract::ColumnType)>);

/// What the pass over Bronze gathers besides the candidates' changes.
#[derive(Default)]
struct Seen {
    /// Each key's newest applied change (source order).
    newest: HashMap<String, (i64, i64)>,
    /// The newest truncate applied.
    truncated: Option<(i64, i64)>,
    /// Candidates that need a column widened first.
    to_widen: Vec<ToWiden>,
}

/// Candidates with values only a wider column holds (`widen-types`; the
/// refiner widens on a live event the same way): the columns one of them needs
/// are widened in Silver and the store, then every one is read again with the
/// wider contract — until none needs more (each round widens a column for
/// good, so a few rounds at most). A dry run widens nothing and counts them.
async fn widen_for(
    e: &mut Entity,
    mut pending: Vec<ToWiden>,
    dry_run: bool,
    report: &mut ReplayReport,
) -> Result<(), RefineError> {
    if dry_run {
        report.need_widening = pending.len() as u64;
        return Ok(());
    }
    for _round in 0..16 {
        let Some((_, _, _, columns)) = pending.first() else { return Ok(()) };
        let columns = columns.clone();
        e.widen(columns.clone(), Evolved::Here).await?;
        report.widened.extend(columns.iter().map(|(n, t)| (n.clone(), t.to_string())));
        pending = pending
            .into_iter()
            .filter_map(|(key, value, lineage, _)| take_candidate(e, key.as_deref(), value.as_deref(), lineage, report))
            .collect();
    }
    // Not reached while widening makes progress; should it not, they stay rejected.
    *report.still_rejected.entry(crate::reject::Rule::TypeChange.to_string()).or_default() += pending.len() as u64;
    Ok(())
}

/// One candidate through the contract: a passing change is offered to `e`, a
/// failing one counted by rule; one whose value only a wider column holds is
/// returned, to be widened for (it would otherwise be written with null there).
fn take_candidate(
    e: &mut Entity,
    key: Option<&str>,
    value: Option<&str>,
    lineage: Lineage,
    report: &mut ReplayReport,
) -> Option<ToWiden> {
    match change_of(&e.refiner, key, value) {
        Ok(Change::Upsert(row)) if !row.widenable.is_empty() => {
            return Some((key.map(str::to_string), value.map(str::to_string), lineage, row.widenable));
        }
        Ok(Change::Upsert(row)) => {
            let k = format!("{:?}", e.refiner.row_key(&row));
            e.offer(k, Pend::Upsert(row, lineage));
        }
        Ok(Change::Delete(k)) => {
            let key = format!("{k:?}");
            e.offer(key, Pend::Delete(k, lineage));
        }
        Ok(Change::Truncate | Change::Nothing | Change::Control(_)) => {}
        Err(r) => *report.still_rejected.entry(r.rule.to_string()).or_default() += 1,
    }
    None
}

/// One Bronze batch: candidates become pending changes of `e` (or still-failing
/// counts, or candidates to widen for); other rows that are not rejects raise
/// their key's newest order. Returns the candidates found.
fn take_bronze(
    e: &mut Entity,
    b: &arrow_array::RecordBatch,
    snapshot: i64,
    candidates: &HashSet<Coordinates>,
    rejected: &HashSet<Coordinates>,
    seen: &mut Seen,
    report: &mut ReplayReport,
) -> u64 {
    let Seen { newest, truncated, to_widen } = seen;
    let s = |name: &str| b.column_by_name(name).map(|c| c.as_string::<i32>().clone());
    let l = |name: &str| b.column_by_name(name).map(|c| c.as_primitive::<Int64Type>().clone());
    let (key, value, op, position, topic, hash) =
        (s("key"), s("value"), s("op"), s("source_position"), s("kafka_topic"), s("record_hash"));
    let (ts, source_ts, offset) = (l("ts_ms"), l("source_ts_ms"), l("kafka_offset"));
    let partition = b.column_by_name("kafka_partition").map(|c| c.as_primitive::<Int32Type>().clone());
    fn str_at(c: &Option<StringArray>, i: usize) -> Option<&str> {
        c.as_ref().filter(|c| c.is_valid(i)).map(|c| c.value(i))
    }
    fn long_at(c: &Option<Int64Array>, i: usize) -> Option<i64> {
        c.as_ref().filter(|c| c.is_valid(i)).map(|c| c.value(i))
    }
    let mut found = 0;
    for i in 0..b.num_rows() {
        let coords: Coordinates = (
            str_at(&topic, i).map(str::to_string),
            partition.as_ref().filter(|c| c.is_valid(i)).map(|c| c.value(i)),
            long_at(&offset, i),
        );
        let lineage = Lineage {
            seq: source_seq(str_at(&position, i), long_at(&source_ts, i), long_at(&ts, i)),
            bronze_snapshot: snapshot,
            topic: coords.0.as_deref().map(Arc::from),
            partition: coords.1,
            offset: coords.2,
            op: str_at(&op, i).map(Arc::from),
            record_hash: str_at(&hash, i).map(str::to_string),
        };
        if candidates.contains(&coords) {
            found += 1;
            // A value only a wider column holds: widened for after the pass.
            to_widen.extend(take_candidate(e, str_at(&key, i), str_at(&value, i), lineage, report));
            continue;
        }
        if rejected.contains(&coords) || str_at(&value, i).is_none() {
            continue; // a reject is no state; a tombstone changes nothing
        }
        let order = lineage.order();
        if str_at(&op, i) == Some("t") {
            *truncated = Some(truncated.map_or(order, |t| t.max(order)));
            continue;
        }
        // The key: from the message key when it reads as one, else from the value.
        let from_key = str_at(&key, i)
            .and_then(|k| serde_json::from_str::<serde_json::Value>(k).ok())
            .and_then(|k| e.refiner.key_of_message_key(&k).ok())
            .map(|k| format!("{k:?}"));
        let k = match from_key {
            Some(k) => Some(k),
            None => match change_of(&e.refiner, str_at(&key, i), str_at(&value, i)) {
                Ok(Change::Upsert(row)) => Some(format!("{:?}", e.refiner.row_key(&row))),
                Ok(Change::Delete(k)) => Some(format!("{k:?}")),
                Ok(Change::Truncate) => {
                    *truncated = Some(truncated.map_or(order, |t| t.max(order)));
                    None
                }
                _ => None,
            },
        };
        if let Some(k) = k {
            let n = newest.entry(k).or_insert(order);
            *n = (*n).max(order);
        }
    }
    found
}
