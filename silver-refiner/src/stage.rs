//! The refiner's [`Stage`]: new Bronze snapshots of every entity → refined
//! changes (newest per key) and rejects → rejects commit, store commit,
//! Silver RowDelta ([`crate::materialize`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::SchemaRef;
use lakehouse::catalog::{CatalogError, SqlCatalog, TableName};
use lakehouse::table::incremental::{
    Increment, IncrementalError, data_file_batches, increment_of, increments, snapshots_after,
};
use lakehouse::telemetry::names;
use lakehouse::worker::{Pending, Stage, TableCommit};

use crate::arrow::key_batch;
use crate::config::Config;
use crate::contract::{ColumnType, Contract, ContractError, Contracts};
use crate::envelope::{Change, Control, change_of, source_seq};
use crate::lineage;
use crate::materialize::{MaterializeError, Materializer};
use crate::position::BronzePosition;
use crate::refine::{RefinedRow, Refiner};
use crate::rejects::{RejectRow, Rejects, RejectsError};
use crate::value::Value;

/// Store snapshot property (and Silver summary key): the Bronze position
/// consumed ([`BronzePosition`]).
pub const BRONZE_POSITION_KEY: &str = "lakehouse.silver.bronze-snapshot";
/// Store snapshot property: the newest source event time (ms since the epoch)
/// of the batch, which downstream stages measure freshness from.
pub const NEWEST_EVENT_KEY: &str = "lakehouse.silver.newest-event-ms";
/// Store snapshot property: the source order (`<seq>:<kafka offset>`) of the
/// newest truncate applied to the entity. A change older than it is dropped
/// even when it arrives in a later batch: the truncate deleted the keys the
/// store had (their delete records keep the truncate's `_seq`), but a key the
/// store did not have at the time has no delete record to shadow a late
/// change of it.
pub const TRUNCATED_KEY: &str = "lakehouse.silver.truncated-at";

#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Incremental(#[from] IncrementalError),
    #[error(transparent)]
    Materialize(#[from] MaterializeError),
    #[error(transparent)]
    Rejects(#[from] RejectsError),
    #[error("entity {entity}: {message}")]
    Entity { entity: String, message: String },
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    pub bronze_rows: u64,
    pub upserted: u64,
    pub deleted: u64,
    pub rejected: u64,
    pub commits: u64,
    /// Bronze commit → visible in Silver over this run's commits (from the
    /// oldest Bronze snapshot of each batch), in milliseconds.
    pub bronze_to_silver_p50_ms: Option<u64>,
    pub bronze_to_silver_p99_ms: Option<u64>,
    pub bronze_to_silver_max_ms: Option<u64>,
}

/// Where a change came from.
#[derive(Debug, Clone)]
pub(crate) struct Lineage {
    pub(crate) seq: i64,
    pub(crate) bronze_snapshot: i64,
    /// Shared by the rows of a batch (see [`Shared`]).
    pub(crate) topic: Option<Arc<str>>,
    pub(crate) partition: Option<i32>,
    pub(crate) offset: Option<i64>,
    pub(crate) op: Option<Arc<str>>,
    pub(crate) record_hash: Option<String>,
}

impl Lineage {
    /// Source order, the Kafka offset breaking ties.
    pub(crate) fn order(&self) -> (i64, i64) {
        (self.seq, self.offset.unwrap_or(i64::MIN))
    }
}

pub(crate) use crate::changes::{Changes, Shared};

pub(crate) enum Pend {
    Upsert(RefinedRow, Lineage),
    Delete(Vec<Value>, Lineage),
}

impl Pend {
    pub(crate) fn lineage(&self) -> &Lineage {
        match self {
            Pend::Upsert(_, l) | Pend::Delete(_, l) => l,
        }
    }
}

pub(crate) struct Entity {
    pub(crate) refiner: Refiner,
    pub(crate) name: String,
    version: i32,
    pub(crate) bronze: TableName,
    pub(crate) materializer: Materializer,
    schema: SchemaRef,
    /// The Bronze position committed (to the store) as consumed.
    pub(crate) position: Option<BronzePosition>,
    /// The store property holding `position` (per shard when sharded).
    position_key: String,
    shard: Option<crate::shard::Shard>,
    /// The Bronze position the in-flight batch reads up to.
    upto: Option<BronzePosition>,
    /// Newest change per key (the key's `Debug` form).
    pub(crate) changes: Changes,
    /// Changes in the last batch: the next one's map is sized for as many
    /// up front (growing it by doubling was 5% of the refiner's CPU, most of
    /// it the kernel zeroing the new tables' pages).
    last_batch: usize,
    truncate: Option<Lineage>,
    /// The source order of the newest truncate committed ([`TRUNCATED_KEY`]).
    pub(crate) truncated: Option<(i64, i64)>,
    rejects: Vec<RejectRow>,
    /// Bronze rows and snapshots in the batch (what the batch policy counts).
    work: usize,
    bronze_rows: u64,
    /// Newest source event time (ms) in the batch, for freshness.
    newest_ms: Option<i64>,
    /// Commit time (ms) of the oldest Bronze snapshot in the batch, for lag.
    oldest_bronze_ms: Option<i64>,
    last_poll: Option<Instant>,
    /// When compaction was last looked at (the refiner runs it between its commits).
    last_compaction: Instant,
    /// Unknown source columns schema evolution cannot add (they stay in `_extra`).
    refused: std::collections::HashSet<String>,
}

/// Who evolved an entity's schema: this refiner, or another refiner of the
/// entity whose evolution this one follows (counted and logged once, by the
/// refiner that made it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evolved {
    Here,
    Elsewhere,
}

/// How far [`Entity::take`] got through a Bronze batch.
enum Taken {
    /// Every row from the start row on: how many.
    Done(usize),
    /// Row `at` brings source columns to add (`evolve = "add-columns"`) or
    /// columns to widen (`"widen-types"`) first; the rows before it are taken.
    Evolve { at: usize, columns: Vec<(String, ColumnType)>, widen: Vec<(String, ColumnType)> },
}

/// Columns of Bronze the refiner reads.
pub(crate) const BRONZE_COLUMNS: &[&str] = &[
    "key",
    "value",
    "op",
    "ts_ms",
    "source_ts_ms",
    "source_position",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "record_hash",
];

pub struct Refinery {
    config: Config,
    catalog: SqlCatalog,
    entities: Vec<Entity>,
    rejects: Rejects,
    since: Option<Instant>,
    pub summary: RunSummary,
    /// Bronze commit → Silver commit delays of this run (ms), for the summary.
    delays: Vec<u64>,
    /// Polls so far: where the next one starts among the entities.
    rotation: usize,
}

impl Refinery {
    /// Loads the contracts, opens (creating where absent) every entity's
    /// store and Silver tables, and brings Silver up to the store.
    pub async fn start(config: Config) -> Result<Self, RefineError> {
        let contracts = if config.silver.contracts.is_dir() {
            Contracts::from_dir(&config.silver.contracts)?
        } else {
            Contracts::from_file(&config.silver.contracts)?
        };
        let catalog = SqlCatalog::connect(&config.catalog).await?;
        catalog.create_namespace_if_absent(&config.silver.namespace).await?;
        let rejects = Rejects::open(catalog.clone(), &config.silver.namespace).await?;
        let mut entities = Vec::new();
        let budgets = config.silver.store_budgets();
        for contract in contracts.into_vec() {
            entities.push(Self::open_entity(&config, &catalog, contract, None, Some(&budgets)).await?);
        }
        tracing::info!(entities = entities.len(), "silver-refiner started");
        Ok(Self {
            config,
            catalog,
            entities,
            rejects,
            since: None,
            summary: RunSummary::default(),
            delays: Vec::new(),
            rotation: 0,
        })
    }

    /// Opens one entity's store and Silver tables (creating them where absent)
    /// under `commit_user`, and brings Silver up to the store. Its store writer
    /// takes its cache memory from `budgets` (shared by the entities of one
    /// refiner), else from the store table's options.
    pub(crate) async fn open_entity(
        config: &Config,
        catalog: &SqlCatalog,
        mut contract: Contract,
        commit_user: Option<String>,
        budgets: Option<&changelog_store::write::Budgets>,
    ) -> Result<Entity, RefineError> {
        let name = contract.name().to_string();
        let invalid = |message: String| RefineError::Entity { entity: name.clone(), message };
        let bronze: TableName = contract.source().parse().map_err(|e| invalid(format!("source: {e}")))?;
        let mut schema = lineage::silver_schema(&contract);
        let types: BTreeMap<String, ColumnType> =
            contract.columns().iter().map(|c| (c.name().to_string(), c.ty())).collect();
        let key: Vec<String> = contract.key_columns().map(|c| c.name().to_string()).collect();
        let store_path = config.silver.store.join(format!("{}.db", config.silver.namespace)).join(&name);
        let shard = config.silver.shard();
        let position_key = match shard {
            Some(s) => format!("{BRONZE_POSITION_KEY}.{}", s.suffix()),
            None => BRONZE_POSITION_KEY.to_string(),
        };
        if shard.is_some() {
            for c in contract.key_columns() {
                if !matches!(
                    c.ty(),
                    ColumnType::Boolean
                        | ColumnType::Int
                        | ColumnType::Long
                        | ColumnType::Date
                        | ColumnType::Time
                        | ColumnType::String
                        | ColumnType::Uuid
                        | ColumnType::Binary
                ) {
                    return Err(invalid(format!(
                        "sharding by a {} key column ({}) is not supported",
                        c.ty(),
                        c.name()
                    )));
                }
            }
        }
        let mut materializer = Materializer::open(
            catalog.clone(),
            TableName::new(config.silver.namespace.clone(), name.clone()),
            schema.clone(),
            &types,
            &key,
            contract.partition(),
            config.silver.buckets,
            store_path,
            commit_user.unwrap_or_else(|| match shard {
                Some(s) => format!("silver-refiner-{name}-{}", s.suffix()),
                None => format!("silver-refiner-{name}"),
            }),
        )
        .await?;
        if let Some(b) = budgets {
            materializer.share_memory(b.clone());
        }
        // Schema evolution done earlier, by this refiner or another: the Silver
        // table's added columns come back into the contract, and its wider types
        // win over the contract's narrower ones (the store gets both, should a
        // crash have come in between).
        let (added, widened) =
            evolution_beyond(&contract, materializer.head().metadata.current_schema()).map_err(&invalid)?;
        if !added.is_empty() {
            let columns: Vec<(String, ColumnType)> = added.iter().map(|(n, t, _)| (n.clone(), *t)).collect();
            materializer.add_columns(&columns).await?;
            contract = contract.with_added_columns(&added)?;
            schema = lineage::silver_schema(&contract);
            materializer.set_silver_schema(schema.clone());
            tracing::info!(entity = %name, columns = ?columns, "columns added by schema evolution");
        }
        if !widened.is_empty() {
            materializer.widen_columns(&widened).await?;
            contract = contract.with_widened_columns(&widened)?;
            schema = lineage::silver_schema(&contract);
            materializer.set_silver_schema(schema.clone());
            tracing::info!(entity = %name, columns = ?widened, "columns widened by schema evolution");
        }
        let recovered = materializer.recover().await?;
        // Store snapshots that change nothing in Silver (a batch of rejects only)
        // are passed over without a commit; only the others were missing.
        let missing = recovered.iter().filter(|s| s.commit.is_some()).count();
        if missing > 0 {
            tracing::warn!(entity = %name, snapshots = missing, "Silver was behind the store; caught up");
        }
        if let Some(s) = shard {
            let buckets = materializer.store().info().options.bucket;
            if buckets < s.count as i32 {
                return Err(invalid(format!(
                    "shard {s} of a store table with {buckets} buckets: it needs at least {}",
                    s.count
                )));
            }
        }
        // The newest store snapshot carrying this refiner's position (other
        // shards' and replays' snapshots may follow it).
        let snapshots =
            materializer.store().snapshots().map_err(|e| invalid(format!("listing store snapshots: {e}")))?;
        let position = snapshots
            .iter()
            .rev()
            .find_map(|s| s.properties.as_ref().and_then(|p| p.get(&position_key).cloned()))
            .map(|v| BronzePosition::parse(&v).ok_or_else(|| invalid(format!("unreadable {position_key} {v:?}"))))
            .transpose()?;
        let truncated = match snapshots
            .iter()
            .rev()
            .find_map(|s| s.properties.as_ref().and_then(|p| p.get(TRUNCATED_KEY).cloned()))
        {
            None => None,
            Some(v) => Some(parse_order(&v).ok_or_else(|| invalid(format!("unreadable {TRUNCATED_KEY} {v:?}")))?),
        };
        tracing::info!(entity = %name, bronze = %bronze, position = %position.map_or("none".into(), |p| p.encode()), truncated = ?truncated,
            "positioned at the store's Bronze snapshot");
        Ok(Entity {
            version: contract.version() as i32,
            refiner: Refiner::new(contract),
            name,
            bronze,
            materializer,
            schema,
            position,
            position_key,
            shard,
            upto: None,
            changes: Changes::default(),
            last_batch: 0,
            truncate: None,
            truncated,
            rejects: Vec::new(),
            work: 0,
            bronze_rows: 0,
            newest_ms: None,
            oldest_bronze_ms: None,
            last_poll: None,
            last_compaction: Instant::now(),
            refused: std::collections::HashSet::new(),
        })
    }

    async fn poll(&mut self, wait: Duration) -> Result<usize, RefineError> {
        let mut added = 0;
        let poll_interval = self.config.silver.poll_interval;
        let max_snapshots = self.config.silver.max_snapshots_per_poll;
        let max_work = self.config.silver.max_batch_records;
        // `max_batch_records` bounds the whole batch (every entity together): it is
        // what the refiner holds in memory until the commit.
        let mut total: usize = self.entities.iter().map(|e| e.work).sum();
        // Each poll starts at the next entity: with a backlog larger than a
        // batch, the first entity would otherwise take every batch until it is
        // caught up, and the others' freshness would wait for it.
        let n = self.entities.len();
        let start = self.rotation % n.max(1);
        self.rotation = self.rotation.wrapping_add(1);
        for i in 0..n {
            let e = &mut self.entities[(start + i) % n];
            if e.last_poll.is_some_and(|t| t.elapsed() < poll_interval) || total >= max_work {
                continue;
            }
            e.last_poll = Some(Instant::now());
            let Some(table) = self.catalog.load_table(&e.bronze).await? else { continue };
            // Lag behind Bronze: what is committed there and not yet in Silver.
            if let Ok(mut behind) = snapshots_after(&table.metadata, e.position.map(|p| p.snapshot)) {
                if let Some(p) = e.position.filter(|p| p.complete().is_none())
                    && let Some(s) = table.metadata.snapshot_by_id(p.snapshot)
                {
                    behind.insert(0, s.as_ref().clone()); // partly consumed
                }
                let age_ms =
                    behind.first().map_or(0, |s| (chrono::Utc::now().timestamp_millis() - s.timestamp_ms()).max(0));
                metrics::gauge!(names::SILVER_LAG_SNAPSHOTS, "entity" => e.name.clone()).set(behind.len() as f64);
                metrics::gauge!(names::SILVER_LAG_SECONDS, "entity" => e.name.clone()).set(age_ms as f64 / 1000.0);
            }
            let from = e.upto.or(e.position);
            let (incs, mut skip) =
                pending_increments(self.catalog.file_io(), &table.metadata, from, max_snapshots).await?;
            for inc in incs {
                if total >= max_work {
                    break; // the rest is read after the commit
                }
                let snapshot = inc.snapshot.snapshot_id();
                let before = e.work;
                // Rows of this increment consumed, by earlier batches and this one.
                let mut consumed = std::mem::take(&mut skip);
                let mut to_skip = consumed;
                let mut complete = true;
                for f in &inc.files {
                    let count = f.record_count();
                    if to_skip >= count {
                        to_skip -= count;
                        continue;
                    }
                    let budget = max_work.saturating_sub(total + (e.work - before));
                    if budget == 0 {
                        complete = false;
                        break;
                    }
                    let wanted = (count - to_skip) as usize;
                    let limit = budget.min(wanted);
                    let batches = data_file_batches(
                        self.catalog.file_io(),
                        f.file_path(),
                        BRONZE_COLUMNS,
                        to_skip as usize,
                        limit,
                    )
                    .await?;
                    // One decoded batch at a time: a file's range is up to the
                    // batch cap in rows, and taking a batch turns it into changes.
                    let mut read = 0usize;
                    let mut first_row = consumed;
                    for b in batches {
                        let b = b?;
                        let mut from = 0;
                        loop {
                            match e.take(&b, snapshot, first_row, from) {
                                Taken::Done(n) => {
                                    added += n;
                                    break;
                                }
                                Taken::Evolve { at, columns, widen } => {
                                    added += at - from;
                                    e.widen(widen, Evolved::Here).await?;
                                    e.evolve(columns, Evolved::Here).await?;
                                    from = at;
                                }
                            }
                        }
                        first_row += b.num_rows() as u64;
                        read += b.num_rows();
                    }
                    if read != limit {
                        return Err(RefineError::Entity {
                            entity: e.name.clone(),
                            message: format!(
                                "Bronze data file {} has fewer rows than its manifest's record count {count} \
                                 (read {read} from row {to_skip}); refusing to guess the position",
                                f.file_path()
                            ),
                        });
                    }
                    consumed += read as u64;
                    to_skip = 0;
                    if limit < wanted {
                        complete = false;
                        break;
                    }
                }
                let ts = inc.snapshot.timestamp_ms();
                e.oldest_bronze_ms = Some(e.oldest_bronze_ms.map_or(ts, |o| o.min(ts)));
                if complete {
                    e.upto = Some(BronzePosition::after(snapshot));
                    e.work += 1;
                    added += 1;
                } else {
                    // The batch is full inside this snapshot: the next one goes on from here.
                    e.upto = Some(BronzePosition::within(snapshot, consumed, inc.whole));
                }
                total += e.work - before;
                if !complete {
                    break;
                }
            }
        }
        if added > 0 {
            self.since.get_or_insert_with(Instant::now);
        } else {
            tokio::time::sleep(wait).await;
        }
        Ok(added)
    }

    /// One commit round: every entity's rejects (one shared table, so one
    /// entity after the other), then every entity's store commit and Silver
    /// RowDelta side by side, each in its own task, so that their writes,
    /// fsyncs and catalog swaps overlap instead of adding up.
    async fn commit_all(&mut self) -> Result<Vec<TableCommit>, RefineError> {
        let mut done = Vec::new();
        for e in &mut self.entities {
            let Some(upto) = e.upto else { continue };
            let rows = std::mem::take(&mut e.rejects);
            let bronze =
                if rows.is_empty() { None } else { self.catalog.load_table(&e.bronze).await?.map(|t| t.metadata) };
            // Counted as committed (by `commit`, per rule): a batch read again
            // after a crash does not count the rejects already in twice.
            if let Some(c) = self.rejects.commit(&e.name, upto, &rows, bronze).await? {
                self.summary.rejected += c.rows;
                done.push(c);
            }
        }
        let mut tasks = Vec::new();
        for mut e in std::mem::take(&mut self.entities) {
            let catalog = self.catalog.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = e.commit(&catalog).await;
                (e, outcome)
            }));
        }
        let mut first_error = None;
        for task in tasks {
            let (e, outcome) = match task.await {
                Ok(v) => v,
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            };
            self.entities.push(e);
            match outcome {
                Ok(c) => {
                    self.summary.upserted += c.upserted;
                    self.summary.deleted += c.deleted;
                    self.summary.bronze_rows += c.bronze_rows;
                    if let Some(delay) = c.delay_ms
                        && self.delays.len() < 1_000_000
                    {
                        self.delays.push(delay);
                    }
                    self.summary.commits += c.silver_commits;
                    done.extend(c.commits);
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        self.since = None;
        self.maybe_compact().await;
        Ok(done)
    }

    /// Compacts, after a commit round, the one entity whose compaction was
    /// looked at longest ago, once `silver.compaction_interval` has passed for
    /// it. One entity per round spreads the cost over rounds: all four at once
    /// held Silver up for 9.5 s every minute in the Gold benchmark at 20k
    /// events/s.
    async fn maybe_compact(&mut self) {
        let interval = self.config.silver.compaction_interval;
        if interval.is_zero() {
            return;
        }
        let due = self
            .entities
            .iter_mut()
            .filter(|e| e.last_compaction.elapsed() >= interval)
            .min_by_key(|e| e.last_compaction);
        if let Some(e) = due {
            e.compact(interval).await;
        }
    }

    /// What the run did, with the Bronze→Silver delay percentiles of its commits.
    pub fn summary(&self) -> RunSummary {
        let mut summary = self.summary.clone();
        (summary.bronze_to_silver_p50_ms, summary.bronze_to_silver_p99_ms, summary.bronze_to_silver_max_ms) =
            lakehouse::worker::percentiles(&self.delays);
        summary
    }

    async fn is_caught_up(&mut self) -> Result<bool, RefineError> {
        for e in &self.entities {
            let head = self.catalog.load_table(&e.bronze).await?;
            let current = head.and_then(|t| t.metadata.current_snapshot_id());
            if current.is_some() && current != e.position.and_then(|p| p.complete()) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The increments still to read from position `from` (at most
/// `max_snapshots` snapshots), and how many rows of the first one are read
/// already (a position inside a snapshot: that snapshot comes first again).
async fn pending_increments(
    file_io: &iceberg::io::FileIO,
    metadata: &iceberg::spec::TableMetadata,
    from: Option<BronzePosition>,
    max_snapshots: usize,
) -> Result<(Vec<Increment>, u64), IncrementalError> {
    let Some(p) = from.filter(|p| p.complete().is_none()) else {
        return Ok((increments(file_io, metadata, from.map(|p| p.snapshot), max_snapshots).await?, 0));
    };
    let not_in_history =
        || IncrementalError::PositionNotInHistory { location: metadata.location().to_string(), after: p.snapshot };
    // The snapshot must still be in the current ancestry (not rolled back
    // past): `increments` checks it, or, reading no further, this walk.
    let rest = if max_snapshots > 1 {
        increments(file_io, metadata, Some(p.snapshot), max_snapshots - 1).await?
    } else {
        snapshots_after(metadata, Some(p.snapshot))?;
        Vec::new()
    };
    let snapshot = metadata.snapshot_by_id(p.snapshot).ok_or_else(not_in_history)?;
    let mut out = vec![increment_of(file_io, metadata, snapshot.as_ref().clone(), p.whole).await?];
    out.extend(rest);
    Ok((out, p.rows.unwrap_or(0)))
}

/// Another writer (a `lakehouse rejects replay`) committed to the same store
/// buckets since this batch's write began.
fn is_store_conflict(e: &MaterializeError) -> bool {
    matches!(e, MaterializeError::Store { source: changelog_store::Error::Conflict { .. }, .. })
}

/// What one entity's commit did ([`Entity::commit`]).
#[derive(Default)]
struct EntityCommit {
    commits: Vec<TableCommit>,
    /// 1 when the batch's changes made a Silver commit (a truncate's own
    /// commit, also in `commits`, is not counted).
    silver_commits: u64,
    upserted: u64,
    deleted: u64,
    bronze_rows: u64,
    /// Oldest Bronze commit of the batch → visible in Silver (ms).
    delay_ms: Option<u64>,
}

impl Entity {
    /// Commits the in-flight batch (its truncate first, if any) to the store
    /// and Silver and advances the entity's position.
    /// A store conflict discards the batch (read again from the committed
    /// position) and is not an error.
    async fn commit(&mut self, catalog: &SqlCatalog) -> Result<EntityCommit, RefineError> {
        let mut out = EntityCommit::default();
        let Some(upto) = self.upto else { return Ok(out) };
        self.follow_evolution(catalog).await?;
        let mut position = BTreeMap::from([(self.position_key.clone(), upto.encode())]);
        if let Some(ms) = self.newest_ms {
            // Gold measures end-to-end freshness from it.
            position.insert(NEWEST_EVENT_KEY.to_string(), ms.to_string());
        }
        let truncated = self.truncate.as_ref().map(Lineage::order).max(self.truncated);
        if let Some(t) = truncated {
            position.insert(TRUNCATED_KEY.to_string(), format_order(t));
        }
        if let Some(t) = self.truncate.take() {
            let keys = self.store_keys()?;
            let deletes = self.deletes_batch(&keys, t.seq)?;
            let mut before = BTreeMap::new();
            if let Some(p) = self.position {
                before.insert(self.position_key.clone(), p.encode());
            }
            before.insert(TRUNCATED_KEY.to_string(), format_order(t.order()));
            let empty = RecordBatch::new_empty(self.schema.clone());
            let s = match self.materializer.apply(empty, &deletes, before).await {
                Err(err) if is_store_conflict(&err) || self.evolved_meanwhile(&err) => {
                    self.discard(&err);
                    return Ok(out);
                }
                other => other?,
            };
            tracing::info!(entity = %self.name, rows = keys.num_rows(), "truncate: every row of the entity deleted");
            out.deleted += s.deleted;
            out.commits.extend(s.commit);
        }
        let changes = std::mem::take(&mut self.changes);
        self.last_batch = changes.len();
        let (upserts, deletes) = self.batches(changes)?;
        let upserted = upserts.num_rows() as u64;
        let silvered = match self.materializer.apply(upserts, &deletes, position).await {
            Err(err) if is_store_conflict(&err) || self.evolved_meanwhile(&err) => {
                self.discard(&err);
                return Ok(out);
            }
            other => other?,
        };
        out.upserted += upserted;
        out.deleted += silvered.deleted;
        out.bronze_rows += self.bronze_rows;
        metrics::counter!(names::SILVER_ROWS, "entity" => self.name.clone(), "outcome" => "upserted")
            .increment(upserted);
        metrics::counter!(names::SILVER_ROWS, "entity" => self.name.clone(), "outcome" => "deleted")
            .increment(silvered.deleted);
        if let Some(mut c) = silvered.commit {
            // Freshness: source event time → visible in Silver.
            c.newest_event_ms = self.newest_ms;
            if let Some(t) = self.oldest_bronze_ms {
                let delay = (chrono::Utc::now().timestamp_millis() - t).max(0) as u64;
                metrics::histogram!(names::BRONZE_TO_SILVER, "entity" => self.name.clone())
                    .record(delay as f64 / 1000.0);
                out.delay_ms = Some(delay);
            }
            out.silver_commits += 1;
            out.commits.push(c);
        }
        self.newest_ms = None;
        self.oldest_bronze_ms = None;
        self.position = Some(upto);
        self.truncated = truncated;
        // Bronze expiry keeps every snapshot this refiner has not read
        // (lakehouse::table::consumer); a snapshot read in part is not read.
        if let Some(done) = upto.complete() {
            let consumer =
                format!("silver-refiner.{}{}", self.name, self.position_key.trim_start_matches(BRONZE_POSITION_KEY));
            lakehouse::table::consumer::advance(catalog, &self.bronze, &consumer, done).await;
        }
        self.upto = None;
        self.work = 0;
        self.bronze_rows = 0;
        Ok(out)
    }

    /// Compacts the entity's Silver table (between this refiner's commits, so
    /// no commit of its own races it). With shards, shard 1 compacts for all
    /// of them. A failed compaction is logged and left to the next interval:
    /// what it committed to the store is materialised by the next commit.
    /// One compaction rewrites one group of files; an entity that had one to
    /// rewrite stays due (`interval` is its compaction interval).
    async fn compact(&mut self, interval: Duration) {
        self.last_compaction = Instant::now();
        if self.shard.is_some_and(|s| !s.records_rejects()) {
            return;
        }
        let props = self.materializer.head().metadata.properties();
        if props.get(lakehouse::table::rewrite::AUTO).is_some_and(|v| v.trim() == "false") {
            return; // compacted by hand only
        }
        match self.materializer.compact().await {
            // Still due: the next group (if any) goes in a later round.
            Ok(Some(_)) => self.last_compaction = Instant::now().checked_sub(interval).unwrap_or(self.last_compaction),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(entity = %self.name, error = %err, "compaction failed; tried again next interval")
            }
        }
    }

    /// Whether `err` is this refiner's store handle refusing a file of a schema
    /// another refiner published after [`Entity::follow_evolution`] looked (a
    /// race of milliseconds). It comes from reading the store's files for the
    /// flush, before the store commit: the batch is discarded like a store
    /// conflict, and the next commit follows the evolution first.
    fn evolved_meanwhile(&self, err: &MaterializeError) -> bool {
        matches!(err, MaterializeError::Store { source: changelog_store::Error::InvalidSchema(_), .. })
            && self.materializer.store().has_newer_schema()
    }

    /// Drops the in-flight batch after a store conflict: the next poll reads
    /// the same Bronze snapshots again from the committed position (its rejects
    /// are in already and are not added twice; the data files it wrote stay
    /// unreferenced, for orphan cleanup).
    fn discard(&mut self, why: &MaterializeError) {
        tracing::warn!(entity = %self.name, error = %why, position = ?self.position.map(|p| p.encode()),
            "another writer committed to the store; the batch is discarded and read again");
        self.changes.clear();
        self.truncate = None;
        self.upto = None;
        self.work = 0;
        self.bronze_rows = 0;
        self.newest_ms = None;
        self.oldest_bronze_ms = None;
    }

    /// Takes the rows of one Bronze batch from row `from` on into the in-flight
    /// changes, stopping before a row whose unknown columns are to be added first.
    /// The batch's first row is row `first_row` of the snapshot's increment.
    fn take(&mut self, b: &RecordBatch, snapshot: i64, first_row: u64, from: usize) -> Taken {
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
        let evolving = self.refiner.contract().evolve().any();
        let mut shared = Shared::default();
        for i in from..b.num_rows() {
            if let Some(t) = long_at(&source_ts, i).or(long_at(&ts, i)) {
                self.newest_ms = Some(self.newest_ms.map_or(t, |n| n.max(t)));
            }
            let lineage = Lineage {
                seq: source_seq(str_at(&position, i), long_at(&source_ts, i), long_at(&ts, i)),
                bronze_snapshot: snapshot,
                topic: str_at(&topic, i).map(|t| shared.get(t)),
                partition: partition.as_ref().filter(|c| c.is_valid(i)).map(|c| c.value(i)),
                offset: long_at(&offset, i),
                op: str_at(&op, i).map(|o| shared.get(o)),
                record_hash: str_at(&hash, i).map(str::to_string),
            };
            match change_of(&self.refiner, str_at(&key, i), str_at(&value, i)) {
                Ok(Change::Upsert(row)) => {
                    if evolving {
                        let columns: Vec<(String, ColumnType)> = match self.refiner.contract().evolve().add_columns {
                            true => row.evolvable.iter().filter(|(n, _)| !self.refused.contains(n)).cloned().collect(),
                            false => Vec::new(),
                        };
                        if !columns.is_empty() || !row.widenable.is_empty() {
                            let taken = i - from;
                            self.work += taken;
                            self.bronze_rows += taken as u64;
                            return Taken::Evolve { at: i, columns, widen: row.widenable };
                        }
                    }
                    for c in &row.extra_columns {
                        metrics::counter!(names::SILVER_UNKNOWN_FIELDS, "entity" => self.name.clone(), "column" => c.clone())
                            .increment(1);
                    }
                    if !self.owns(self.refiner.row_key(&row)) {
                        continue;
                    }
                    let k = format!("{:?}", self.refiner.row_key(&row));
                    self.offer(k, Pend::Upsert(row, lineage));
                }
                Ok(Change::Delete(key)) => {
                    if !self.owns(key.iter()) {
                        continue;
                    }
                    // The same `Debug` form as `row_key`'s `Vec<&Value>` gives.
                    let k = format!("{key:?}");
                    self.offer(k, Pend::Delete(key, lineage));
                }
                Ok(Change::Truncate) => {
                    if self.truncate.as_ref().is_none_or(|t| t.order() <= lineage.order()) {
                        let cut = lineage.order();
                        self.changes.retain(|_, p| p.lineage().order() > cut);
                        self.truncate = Some(lineage);
                    }
                }
                Ok(Change::Nothing) => {}
                Ok(Change::Control(control)) => {
                    metrics::counter!(names::SILVER_CONTROL_EVENTS, "entity" => self.name.clone(), "kind" => control.kind())
                        .increment(1);
                    if let Control::SchemaChange { ddl } = &control {
                        let ddl: Option<String> = ddl.as_deref().map(|d| d.chars().take(300).collect());
                        tracing::info!(entity = %self.name, bronze = %self.bronze, offset = ?lineage.offset, ddl = ?ddl,
                            "a Debezium schema change event in the entity's Bronze table: it describes no row; skipped");
                    }
                }
                Err(_) if self.shard.is_some_and(|s| !s.records_rejects()) => {}
                Err(r) => self.rejects.push(RejectRow {
                    entity: self.name.clone(),
                    rule: r.rule.to_string(),
                    column: r.column,
                    reason: r.reason,
                    raw_value: str_at(&value, i).map(str::to_string),
                    bronze_table: self.bronze.to_string(),
                    bronze_snapshot_id: snapshot,
                    bronze_row: Some(first_row + i as u64),
                    kafka_topic: lineage.topic.as_deref().map(str::to_string),
                    kafka_partition: lineage.partition,
                    kafka_offset: lineage.offset,
                    contract_version: self.version,
                    rejected_at_us: chrono::Utc::now().timestamp_micros(),
                }),
            }
        }
        let taken = b.num_rows() - from;
        self.work += taken;
        self.bronze_rows += taken as u64;
        Taken::Done(taken)
    }

    /// Schema evolution (`evolve = "add-columns"`): adds `columns` to the Silver
    /// table and the store, and refines with them from now on. Changes already
    /// in the batch read null in them (their events did not carry a typed value;
    /// what they carried stays in their `_extra`). A column whose name would
    /// collide with Silver's own columns is refused and stays in `_extra`.
    async fn evolve(&mut self, columns: Vec<(String, ColumnType)>, by: Evolved) -> Result<(), RefineError> {
        let mut usable = Vec::new();
        for (name, ty) in columns {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let taken = self.schema.field_with_name(&name).is_ok()
                || [crate::materialize::SILVER_FILE, crate::materialize::SILVER_POS].contains(&name.as_str());
            if !valid || taken {
                tracing::warn!(entity = %self.name, column = %name,
                    "unknown source column not added to Silver (its name is not a plain identifier or is Silver's own); it stays in _extra");
                self.refused.insert(name);
            } else {
                usable.push((name, ty));
            }
        }
        if usable.is_empty() {
            return Ok(());
        }
        let ids = self.materializer.add_columns(&usable).await?;
        let added: Vec<(String, ColumnType, i32)> =
            usable.iter().zip(&ids).map(|((n, t), (_, id))| (n.clone(), *t, *id)).collect();
        let contract = self.refiner.contract().with_added_columns(&added)?;
        let width = contract.columns().len();
        self.refiner = Refiner::new(contract);
        self.schema = lineage::silver_schema(self.refiner.contract());
        self.materializer.set_silver_schema(self.schema.clone());
        for p in self.changes.values_mut() {
            if let Pend::Upsert(row, _) = p {
                row.values.resize(width, Value::Null);
            }
        }
        if by == Evolved::Here {
            metrics::counter!(names::SILVER_COLUMNS_ADDED, "entity" => self.name.clone()).increment(added.len() as u64);
            tracing::info!(entity = %self.name, columns = ?added, "schema evolution: source columns added to Silver and the store");
        } else {
            tracing::info!(entity = %self.name, columns = ?added, "schema evolution by another refiner of the entity: refining with its added columns");
        }
        Ok(())
    }

    /// Schema evolution (`evolve = "widen-types"`): widens `columns` in the
    /// Silver table and the store (Iceberg type promotion, the same field id;
    /// Paimon `schema-<N+1>`) and refines with the wider types from now on.
    /// Changes already in the batch carry their values over in the wider type.
    pub(crate) async fn widen(&mut self, columns: Vec<(String, ColumnType)>, by: Evolved) -> Result<(), RefineError> {
        if columns.is_empty() {
            return Ok(());
        }
        let before: Vec<(String, ColumnType)> = columns
            .iter()
            .filter_map(|(n, _)| self.refiner.contract().column(n).map(|c| (n.clone(), c.ty())))
            .collect();
        // The contract checks the change before any table is touched.
        let contract = self.refiner.contract().with_widened_columns(&columns)?;
        self.materializer.widen_columns(&columns).await?;
        let at: Vec<(usize, ColumnType)> = columns
            .iter()
            .filter_map(|(n, t)| contract.columns().iter().position(|c| &c.name == n).map(|i| (i, *t)))
            .collect();
        self.refiner = Refiner::new(contract);
        self.schema = lineage::silver_schema(self.refiner.contract());
        self.materializer.set_silver_schema(self.schema.clone());
        for p in self.changes.values_mut() {
            if let Pend::Upsert(row, _) = p {
                for &(i, t) in &at {
                    if let Some(v) = row.values.get_mut(i) {
                        *v = std::mem::replace(v, Value::Null).widened(t);
                    }
                }
            }
        }
        if by == Evolved::Here {
            metrics::counter!(names::SILVER_COLUMNS_WIDENED, "entity" => self.name.clone())
                .increment(columns.len() as u64);
            tracing::info!(entity = %self.name, from = ?before, to = ?columns,
                "schema evolution: source types grew; columns widened in Silver and the store");
        } else {
            tracing::info!(entity = %self.name, from = ?before, to = ?columns,
                "schema evolution by another refiner of the entity: refining with its wider types");
        }
        Ok(())
    }

    /// Schema evolution another refiner of this entity did (a sibling shard
    /// that met the source's new or wider column first, or whose keys alone
    /// carry it): once the store holds a schema newer than this refiner's
    /// handle, the Silver table's added and widened columns are taken as if this
    /// refiner had evolved them (both tables have them already, so neither
    /// changes; a store a crash left behind Silver gets them), the in-flight
    /// changes carried over, and the store reopened. Without it this refiner
    /// would read the sibling's wider store files through its narrower handle
    /// and stop. One existence check when nothing changed.
    async fn follow_evolution(&mut self, catalog: &SqlCatalog) -> Result<(), RefineError> {
        if !self.materializer.store().has_newer_schema() {
            return Ok(());
        }
        let silver = catalog.require_table(&self.materializer.head().name).await?;
        let (added, widened) = evolution_beyond(self.refiner.contract(), silver.metadata.current_schema())
            .map_err(|message| RefineError::Entity { entity: self.name.clone(), message })?;
        self.widen(widened, Evolved::Elsewhere).await?;
        self.evolve(added.into_iter().map(|(n, t, _)| (n, t)).collect(), Evolved::Elsewhere).await?;
        if self.materializer.store().has_newer_schema() {
            self.materializer.reopen_store()?;
        }
        Ok(())
    }

    /// Whether this refiner owns the store bucket of `key` (always, unsharded).
    fn owns<'v>(&self, key: impl IntoIterator<Item = &'v Value>) -> bool {
        let Some(shard) = self.shard else { return true };
        let datums: Result<Vec<_>, _> = key.into_iter().map(crate::shard::datum).collect();
        match datums {
            Ok(d) => shard.owns_bucket(self.materializer.store().info().bucket_of_key(&d)),
            // Checked at open: every key column type has a datum.
            Err(_) => shard.records_rejects(),
        }
    }

    /// Keeps the newest change of a key (source order, then Kafka offset).
    pub(crate) fn offer(&mut self, key: String, change: Pend) {
        if self.truncate.as_ref().is_some_and(|t| t.order() > change.lineage().order()) {
            return; // older than a truncate in this batch
        }
        if self.truncated.is_some_and(|t| t > change.lineage().order()) {
            return; // older than a truncate committed before (a late delivery)
        }
        if self.changes.capacity() == 0 {
            self.changes.reserve(self.last_batch);
        }
        match self.changes.get(&key) {
            Some(old) if old.lineage().order() > change.lineage().order() => {}
            _ => {
                self.changes.insert(key, change);
            }
        }
    }

    /// The batch's upserts (Silver schema) and deletes (key columns + `_seq`).
    pub(crate) fn batches(&self, changes: Changes) -> Result<(RecordBatch, RecordBatch), RefineError> {
        let invalid = |message: String| RefineError::Entity { entity: self.name.clone(), message };
        let mut builder = self.refiner.batch_builder(changes.len());
        let mut lineages = Vec::new();
        let mut deletes = Vec::new();
        let mut delete_seqs = Vec::new();
        for change in changes.into_values() {
            match change {
                Pend::Upsert(row, l) => {
                    builder.append(&row).map_err(|e| invalid(e.to_string()))?;
                    lineages.push(l);
                }
                Pend::Delete(key, l) => {
                    deletes.push(key);
                    delete_seqs.push(l.seq);
                }
            }
        }
        let base = builder.finish().map_err(|e| invalid(e.to_string()))?;
        let upserts = with_lineage(&base, &self.schema, &lineages).map_err(invalid)?;
        let keys = key_batch(self.refiner.contract(), &deletes).map_err(|e| invalid(e.to_string()))?;
        let deletes = with_seq(&keys, &self.schema, &delete_seqs).map_err(invalid)?;
        Ok((upserts, deletes))
    }

    /// Every key in the store now, as a key batch (for a truncate).
    fn store_keys(&self) -> Result<RecordBatch, RefineError> {
        let invalid = |message: String| RefineError::Entity { entity: self.name.clone(), message };
        let batches = self
            .materializer
            .store()
            .scan_batches(changelog_store::ReadAt::Latest)
            .map_err(|e| invalid(format!("scanning the store for a truncate: {e}")))?;
        let key_fields: Vec<_> =
            self.refiner.contract().key_columns().map(|c| self.schema.field_with_name(c.name()).cloned()).collect();
        let key_fields = key_fields.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| invalid(e.to_string()))?;
        let schema = Arc::new(arrow_schema::Schema::new(key_fields));
        let mut parts = Vec::new();
        for b in batches {
            let cols: Result<Vec<ArrayRef>, String> = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b.column_by_name(f.name()).ok_or_else(|| format!("store has no column {}", f.name()))?;
                    arrow_cast::cast(c, f.data_type()).map_err(|e| e.to_string())
                })
                .collect();
            let part =
                RecordBatch::try_new(schema.clone(), cols.map_err(&invalid)?).map_err(|e| invalid(e.to_string()))?;
            // A shard truncates the keys of its own buckets.
            let part = match self.shard {
                None => part,
                Some(shard) => {
                    let info = self.materializer.store().info();
                    let mask: Result<Vec<bool>, String> = (0..part.num_rows())
                        .map(|i| crate::shard::datums_at(&part, i).map(|d| shard.owns_bucket(info.bucket_of_key(&d))))
                        .collect();
                    let mask = arrow_array::BooleanArray::from(mask.map_err(&invalid)?);
                    arrow_select::filter::filter_record_batch(&part, &mask).map_err(|e| invalid(e.to_string()))?
                }
            };
            parts.push(part);
        }
        arrow_select_concat(&schema, &parts).map_err(invalid)
    }

    fn deletes_batch(&self, keys: &RecordBatch, seq: i64) -> Result<RecordBatch, RefineError> {
        let seqs = vec![seq; keys.num_rows()];
        with_seq(keys, &self.schema, &seqs)
            .map_err(|message| RefineError::Entity { entity: self.name.clone(), message })
    }
}

/// The contract type of an Iceberg primitive Silver writes.
/// What schema evolution did to the Silver table (current schema `silver`)
/// beyond `contract`: the columns it added (name, type, field id) and the
/// contract's columns it widened (name, wider type). A contract type the
/// table's type is not a widening of is refused rather than narrowed.
#[allow(clippy::type_complexity)]
fn evolution_beyond(
    contract: &Contract,
    silver: &iceberg::spec::Schema,
) -> Result<(Vec<(String, ColumnType, i32)>, Vec<(String, ColumnType)>), String> {
    let type_of = |f: &iceberg::spec::NestedField| match &*f.field_type {
        iceberg::spec::Type::Primitive(p) => column_type_of(p),
        _ => None,
    };
    let first_added = lineage::first_added_id(contract);
    let mut added = Vec::new();
    for f in silver.as_struct().fields() {
        if f.id < first_added || contract.column(&f.name).is_some() {
            continue;
        }
        let ty = type_of(f)
            .ok_or_else(|| format!("added column {} has type {}, not one Silver writes", f.name, f.field_type))?;
        added.push((f.name.clone(), ty, f.id));
    }
    let mut widened = Vec::new();
    for c in contract.columns() {
        let Some(f) = silver.field_by_id(c.field_id()) else { continue };
        match type_of(f) {
            Some(t) if t == c.ty() => {}
            Some(t) if c.ty().widens_to(t) => widened.push((c.name().to_string(), t)),
            _ => {
                return Err(format!(
                    "column {} is {} in the contract but {} in the Silver table, which the contract's type cannot become",
                    c.name(),
                    c.ty(),
                    f.field_type
                ));
            }
        }
    }
    Ok((added, widened))
}

fn column_type_of(p: &iceberg::spec::PrimitiveType) -> Option<ColumnType> {
    use iceberg::spec::PrimitiveType as P;
    Some(match p {
        P::Boolean => ColumnType::Boolean,
        P::Int => ColumnType::Int,
        P::Long => ColumnType::Long,
        P::Float => ColumnType::Float,
        P::Double => ColumnType::Double,
        P::Decimal { precision, scale } => {
            ColumnType::Decimal { precision: u8::try_from(*precision).ok()?, scale: u8::try_from(*scale).ok()? }
        }
        P::Date => ColumnType::Date,
        P::Time => ColumnType::Time,
        P::Timestamp => ColumnType::Timestamp,
        P::Timestamptz => ColumnType::TimestampTz,
        P::String => ColumnType::String,
        P::Uuid | P::Fixed(16) => ColumnType::Uuid,
        P::Binary => ColumnType::Binary,
        _ => return None,
    })
}

/// `<seq>:<offset>` of a source order ([`TRUNCATED_KEY`]).
fn format_order((seq, offset): (i64, i64)) -> String {
    format!("{seq}:{offset}")
}

fn parse_order(v: &str) -> Option<(i64, i64)> {
    let (seq, offset) = v.split_once(':')?;
    Some((seq.parse().ok()?, offset.parse().ok()?))
}

fn arrow_select_concat(schema: &SchemaRef, parts: &[RecordBatch]) -> Result<RecordBatch, String> {
    if parts.is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    arrow_select::concat::concat_batches(schema, parts).map_err(|e| e.to_string())
}

/// `keys` with a `_seq` column.
fn with_seq(keys: &RecordBatch, silver: &SchemaRef, seqs: &[i64]) -> Result<RecordBatch, String> {
    let mut fields: Vec<_> = keys.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(silver.field_with_name(lineage::SEQ).map_err(|e| e.to_string())?.clone());
    let mut columns = keys.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(seqs.to_vec())));
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// The Silver batch of `silver`'s columns (field-id order): the contract
/// batch `base`'s columns by name, and the lineage columns.
fn with_lineage(base: &RecordBatch, silver: &SchemaRef, l: &[Lineage]) -> Result<RecordBatch, String> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut columns = Vec::with_capacity(silver.fields().len());
    for f in silver.fields() {
        if let Some(c) = base.column_by_name(f.name()) {
            columns.push(c.clone());
            continue;
        }
        let col: ArrayRef = match f.name().as_str() {
            lineage::SEQ => Arc::new(l.iter().map(|x| x.seq).collect::<Int64Array>()),
            lineage::BRONZE_SNAPSHOT => Arc::new(l.iter().map(|x| Some(x.bronze_snapshot)).collect::<Int64Array>()),
            lineage::KAFKA_TOPIC => Arc::new(l.iter().map(|x| x.topic.as_deref()).collect::<StringArray>()),
            lineage::KAFKA_PARTITION => Arc::new(l.iter().map(|x| x.partition).collect::<Int32Array>()),
            lineage::KAFKA_OFFSET => Arc::new(l.iter().map(|x| x.offset).collect::<Int64Array>()),
            lineage::SOURCE_OP => Arc::new(l.iter().map(|x| x.op.as_deref()).collect::<StringArray>()),
            lineage::RECORD_HASH => Arc::new(l.iter().map(|x| x.record_hash.as_deref()).collect::<StringArray>()),
            lineage::REFINED_AT => {
                Arc::new(TimestampMicrosecondArray::from(vec![now; l.len()]).with_timezone("+00:00"))
            }
            other => return Err(format!("unknown lineage column {other}")),
        };
        columns.push(col);
    }
    RecordBatch::try_new(silver.clone(), columns).map_err(|e| format!("building the Silver batch: {e}"))
}

impl Stage for Refinery {
    type Error = RefineError;

    async fn fill(&mut self, wait: Duration) -> Result<usize, RefineError> {
        self.poll(wait).await
    }

    fn pending(&self) -> Pending {
        let records = self.entities.iter().map(|e| e.work).sum();
        Pending { records, bytes: 0, since: self.since }
    }

    async fn commit(&mut self) -> Result<Vec<TableCommit>, RefineError> {
        self.commit_all().await
    }

    async fn caught_up(&mut self) -> Result<bool, RefineError> {
        self.is_caught_up().await
    }
}
