//! The aggregator's [`Stage`]: new snapshots of each source's Silver
//! changelog → groups added to and retracted from in memory → per Gold
//! table, one state commit and one Iceberg RowDelta ([`crate::sink`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use changelog_store::Table;
use changelog_store::read::changelog_reader::SnapshotChangeBatches;
use lakehouse::catalog::{CatalogError, SqlCatalog, TableName};
use lakehouse::telemetry::names;
use lakehouse::worker::{Pending, Stage, TableCommit};

use crate::config::Config;
use crate::features::{FEATURE_DATE, Features};
use crate::rollup::{AggError, Aggregation};
use crate::sink::{GoldTable, Layout, SinkError, keyed_state_spec, state_spec};
use crate::spec::{self, GoldDef, SpecError, WINDOW, WINDOW_START};
use crate::wide::Wide;

/// State snapshot property (and Gold summary key) prefix: the Silver store
/// snapshot consumed, per source entity.
pub const SILVER_POSITION_PREFIX: &str = "lakehouse.gold.silver-snapshot.";
/// Silver store snapshot property with the batch's newest source event time
/// (`silver_refiner::stage::NEWEST_EVENT_KEY`).
const SILVER_NEWEST_EVENT_KEY: &str = "lakehouse.silver.newest-event-ms";
/// Silver store snapshot property of a compaction's relocation
/// (`silver_refiner::materialize::REWRITE_KEY`): rows moved to new Silver
/// files, their values unchanged, so nothing for Gold.
const SILVER_REWRITE_KEY: &str = "lakehouse.silver.rewrite";

#[derive(Debug, thiserror::Error)]
pub enum GoldError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Aggregate(#[from] AggError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("gold.{table}: Silver changelog of {entity}: {source}")]
    Source { table: String, entity: String, source: changelog_store::Error },
    #[error("gold.{table}: {message}")]
    Invalid { table: String, message: String },
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    pub changes: u64,
    pub retractions: u64,
    pub late: u64,
    pub gold_rows_written: u64,
    pub gold_rows_deleted: u64,
    pub commits: u64,
    /// Silver store commit → visible in Gold, over this run's Gold commits (ms).
    pub silver_to_gold_p50_ms: Option<u64>,
    pub silver_to_gold_p99_ms: Option<u64>,
    pub silver_to_gold_max_ms: Option<u64>,
    /// Source event time → visible in Gold, per Silver snapshot consumed (its
    /// newest event), over this run's Gold commits (ms).
    pub freshness_p50_ms: Option<u64>,
    pub freshness_p99_ms: Option<u64>,
    pub freshness_max_ms: Option<u64>,
}

/// One changelog a Gold table reads.
struct Source {
    /// Silver entity, or a keyed Gold table.
    entity: String,
    table: Table,
    /// The snapshot committed (in the state) as consumed; 0 = none.
    position: i64,
    /// The snapshot the in-flight batch reads up to.
    upto: i64,
}

enum Model {
    Rollup(Aggregation),
    Wide(Wide),
    Features(Features),
}

impl Model {
    /// The columns of source `source` (index into the table's sources) the model reads.
    fn source_columns(&self, source: usize) -> Vec<String> {
        match self {
            Model::Rollup(agg) => agg.source_columns(),
            Model::Wide(w) => w.source_columns(source),
            Model::Features(f) => f.source_columns(),
        }
    }

    /// Whether the model reads its sources at the state's position on start
    /// (so the consumer registration keeps that snapshot from expiry).
    fn reads_at_start(&self) -> bool {
        match self {
            Model::Rollup(agg) => agg.counts_values(),
            Model::Wide(_) | Model::Features(_) => true,
        }
    }
}

/// One Gold table, ready: its sources, its model, its sink.
struct Ready {
    name: String,
    model: Model,
    sink: GoldTable,
    sources: Vec<Source>,
    work: usize,
    newest_ms: Option<i64>,
    /// Commit time of the oldest Silver snapshot in the batch (ms since the epoch).
    oldest_silver_ms: Option<i64>,
    /// Newest source event time of each snapshot in the batch (ms since the epoch).
    event_ms: Vec<i64>,
    last_poll: Option<Instant>,
    /// When the table's compaction was last looked at.
    last_compaction: Instant,
}

/// Per source changelog, the columns the open tables reading it use.
type SourceColumns = HashMap<PathBuf, Vec<String>>;

fn source_columns(entries: &[Entry]) -> SourceColumns {
    let mut columns = SourceColumns::new();
    for r in entries.iter().filter_map(|e| if let Entry::Ready(r) = e { Some(r) } else { None }) {
        for (si, s) in r.sources.iter().enumerate() {
            let used = columns.entry(s.table.path().to_path_buf()).or_default();
            for c in r.model.source_columns(si) {
                if !used.contains(&c) {
                    used.push(c);
                }
            }
        }
    }
    columns
}

/// The source snapshots read in one pass over the tables, shared by the Gold
/// tables reading the same source: a Silver snapshot that three tables consume
/// is decoded once, not three times, and only in the columns those tables use.
/// Dropped after the pass.
struct Reads<'a> {
    columns: &'a SourceColumns,
    read: HashMap<(PathBuf, i64), Arc<SnapshotChangeBatches>>,
}

impl<'a> Reads<'a> {
    fn new(columns: &'a SourceColumns) -> Self {
        Reads { columns, read: HashMap::new() }
    }

    fn get(&mut self, table: &Table, snapshot: i64) -> Result<Arc<SnapshotChangeBatches>, changelog_store::Error> {
        let key = (table.path().to_path_buf(), snapshot);
        if let Some(hit) = self.read.get(&key) {
            return Ok(hit.clone());
        }
        let read = Arc::new(match self.columns.get(&key.0) {
            Some(columns) => table.change_batches_projected(snapshot, columns)?,
            None => table.change_batches(snapshot)?,
        });
        self.read.insert(key, read.clone());
        Ok(read)
    }
}

/// Which part of a commit round a Gold table commits in (see
/// [`Aggregator::commit_all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reads Silver only.
    Silver,
    /// Reads a keyed Gold table's state.
    Gold,
}

/// What one table's commit did, for the run's summary.
struct Committed {
    commit: Option<TableCommit>,
    written: u64,
    deleted: u64,
    /// Oldest Silver snapshot of the batch → visible in Gold (ms).
    silver_delay_ms: Option<u64>,
    /// Each Silver snapshot's newest source event → visible in Gold (ms).
    freshness_ms: Vec<u64>,
}

impl Ready {
    fn behind(&self) -> bool {
        self.sources.iter().any(|s| s.upto != s.position)
    }

    fn phase(&self, keyed: &HashSet<String>) -> Phase {
        if self.sources.iter().any(|s| keyed.contains(&s.entity)) { Phase::Gold } else { Phase::Silver }
    }

    /// Applies the new snapshots (at most `max` per source) of the sources
    /// `which` selects to the model. Returns how much work it added.
    fn read_sources(
        &mut self,
        max: usize,
        which: impl Fn(&Source) -> bool,
        summary: &mut RunSummary,
        reads: &mut Reads<'_>,
    ) -> Result<usize, GoldError> {
        let mut added = 0;
        let table = self.name.clone();
        let (mut read, mut apply, mut snapshots) = (Duration::ZERO, Duration::ZERO, 0);
        for (si, src) in self.sources.iter_mut().enumerate() {
            if !which(src) {
                continue;
            }
            let source_err = |source| GoldError::Source { table: table.clone(), entity: src.entity.clone(), source };
            if src.table.has_newer_schema() {
                // Silver added or widened columns: Gold's types do not change
                // (see `scalar::output_type`), but the new files are read with the new schema.
                src.table = Table::open(src.table.path()).map_err(source_err)?;
                tracing::info!(table = %table, entity = %src.entity, schema_id = src.table.schema().id,
                    "the source's schema changed; reopened it");
            }
            let Some(latest) = src.table.latest_snapshot_id().map_err(source_err)? else { continue };
            let last = latest.min(src.upto + max as i64);
            for n in src.upto + 1..=last {
                let t = Instant::now();
                let changes = reads.get(&src.table, n).map_err(source_err)?;
                read += t.elapsed();
                snapshots += 1;
                let t = Instant::now();
                // Compactions (of Silver, or of a keyed Gold table read here)
                // only move rows between files: their values are unchanged.
                if changes
                    .properties
                    .as_ref()
                    .is_some_and(|p| p.contains_key(SILVER_REWRITE_KEY) || p.contains_key(crate::sink::REWRITE_KEY))
                {
                    src.upto = n;
                    self.work += 1;
                    added += 1;
                    continue;
                }
                self.oldest_silver_ms.get_or_insert(changes.time_millis);
                let newest = changes.properties.as_ref().and_then(|p| p.get(SILVER_NEWEST_EVENT_KEY));
                if let Some(ms) = newest.and_then(|ms| ms.parse::<i64>().ok()) {
                    self.newest_ms = Some(self.newest_ms.map_or(ms, |m| m.max(ms)));
                    self.event_ms.push(ms);
                }
                for b in &changes.batches {
                    let (changes, retractions, late) = match &mut self.model {
                        Model::Rollup(agg) => {
                            let a = agg.apply(b)?;
                            (a.changes, a.retractions, a.late)
                        }
                        Model::Wide(w) => {
                            let a = w.apply(si, b)?;
                            (a.changes, a.retractions, 0)
                        }
                        Model::Features(f) => {
                            let a = f.apply(b)?;
                            (a.changes, a.retractions, 0)
                        }
                    };
                    metrics::counter!(names::GOLD_CHANGES, "table" => table.clone()).increment(changes);
                    metrics::counter!(names::GOLD_RETRACTIONS, "table" => table.clone()).increment(retractions);
                    metrics::counter!(names::GOLD_LATE_EVENTS, "table" => table.clone()).increment(late);
                    summary.changes += changes;
                    summary.retractions += retractions;
                    summary.late += late;
                    self.work += changes as usize;
                    added += changes as usize;
                }
                apply += t.elapsed();
                src.upto = n;
                self.work += 1;
                added += 1;
            }
        }
        if snapshots > 0 {
            tracing::debug!(table = %table, snapshots, changes = added, read_ms = read.as_millis() as u64,
                apply_ms = apply.as_millis() as u64, "read the sources");
        }
        Ok(added)
    }

    /// Commits the batch: the changed Gold rows, the state and the Silver
    /// positions consumed; then registers the positions with the sources.
    async fn commit(&mut self) -> Result<Committed, GoldError> {
        let mut props: BTreeMap<String, String> = self
            .sources
            .iter()
            .map(|s| (format!("{SILVER_POSITION_PREFIX}{}", s.entity), s.upto.to_string()))
            .collect();
        // Passed on, so that a Gold table reading this one measures freshness too.
        if let Some(ms) = self.newest_ms {
            props.insert(SILVER_NEWEST_EVENT_KEY.to_string(), ms.to_string());
        }
        let started = Instant::now();
        let (golded, written) = match &mut self.model {
            Model::Rollup(agg) => {
                let (live, gone) = agg.take_touched();
                let rows = agg.gold_rows(&live)?;
                (self.sink.apply(&live, &rows, &gone, props).await?, live.len() as u64)
            }
            Model::Wide(w) => {
                let c = w.take_changes()?;
                (self.sink.apply_keyed(&c.rows, &c.partitions, Some(c.gone), props).await?, c.rows.num_rows() as u64)
            }
            Model::Features(f) => {
                let c = f.take_changes()?;
                (self.sink.apply_keyed(&c.rows, &c.partitions, Some(c.gone), props).await?, c.rows.num_rows() as u64)
            }
        };
        tracing::debug!(table = %self.name, rows = written, ms = started.elapsed().as_millis() as u64, "table commit");
        let keep_read_snapshot = self.model.reads_at_start();
        for s in &self.sources {
            s.table
                .register_consumer(&consumer_id(&self.name), consumer_next(s.upto, keep_read_snapshot))
                .map_err(|source| GoldError::Source { table: self.name.clone(), entity: s.entity.clone(), source })?;
        }
        let table = self.name.clone();
        let working_set = match &self.model {
            Model::Rollup(agg) => agg.groups.len(),
            Model::Wide(w) => w.len(),
            Model::Features(f) => f.events(),
        };
        metrics::gauge!(names::GOLD_WORKING_SET, "table" => table.clone()).set(working_set as f64);
        metrics::counter!(names::GOLD_ROWS, "table" => table.clone(), "outcome" => "written").increment(written);
        metrics::counter!(names::GOLD_ROWS, "table" => table, "outcome" => "deleted").increment(golded.deleted);
        let mut out = Committed {
            commit: None,
            written,
            deleted: golded.deleted,
            silver_delay_ms: None,
            freshness_ms: Vec::new(),
        };
        if let Some(mut c) = golded.commit {
            c.newest_event_ms = self.newest_ms;
            let now = chrono::Utc::now().timestamp_millis();
            if let Some(t) = self.oldest_silver_ms {
                let delay = (now - t).max(0) as u64;
                metrics::histogram!(names::GOLD_BEHIND_SILVER, "table" => self.name.clone())
                    .record(delay as f64 / 1000.0);
                out.silver_delay_ms = Some(delay);
            }
            for t in self.event_ms.drain(..) {
                let fresh = (now - t).max(0) as u64;
                metrics::histogram!(names::GOLD_FRESHNESS, "table" => self.name.clone()).record(fresh as f64 / 1000.0);
                out.freshness_ms.push(fresh);
            }
            out.commit = Some(c);
        }
        self.event_ms.clear();
        for s in &mut self.sources {
            s.position = s.upto;
        }
        self.work = 0;
        self.newest_ms = None;
        self.oldest_silver_ms = None;
        Ok(out)
    }
}

enum Entry {
    /// A source has no changelog yet (Silver has not started the entity, or
    /// the wide table read has not opened).
    Waiting {
        def: GoldDef,
        logged: bool,
    },
    Ready(Box<Ready>),
    /// Taken out for a commit task (only inside [`Aggregator::commit_all`]).
    Committing,
}

pub struct Aggregator {
    config: Config,
    catalog: SqlCatalog,
    entries: Vec<Entry>,
    /// Gold tables other Gold tables may read (their state table is the changelog).
    keyed: HashSet<String>,
    /// The state writers' cache memory, shared by every table.
    budgets: changelog_store::write::Budgets,
    /// What the open tables read of each source (set when a table opens).
    columns: SourceColumns,
    since: Option<Instant>,
    /// Silver commit → Gold commit delays of this run (ms), for the summary.
    delays: Vec<u64>,
    /// Source event → Gold commit delays of this run (ms), for the summary.
    freshness: Vec<u64>,
    summary: RunSummary,
}

impl Aggregator {
    /// Loads the Gold definitions; opens every Gold table whose sources exist
    /// (the others when their sources appear) and brings it up to its state.
    pub async fn start(config: Config) -> Result<Self, GoldError> {
        let defs = spec::load(&config.gold.tables)?;
        let catalog = SqlCatalog::connect(&config.catalog).await?;
        catalog.create_namespace_if_absent(&config.gold.namespace).await?;
        let keyed = keyed_tables(&defs);
        let entries = defs.into_iter().map(|def| Entry::Waiting { def, logged: false }).collect();
        let budgets = config.gold.state_budgets();
        let mut me = Aggregator {
            config,
            catalog,
            entries,
            keyed,
            budgets,
            columns: SourceColumns::new(),
            since: None,
            delays: Vec::new(),
            freshness: Vec::new(),
            summary: RunSummary::default(),
        };
        me.open_waiting().await?;
        tracing::info!(tables = me.entries.len(), "gold-aggregator started");
        Ok(me)
    }

    async fn open_waiting(&mut self) -> Result<(), GoldError> {
        for i in 0..self.entries.len() {
            let Entry::Waiting { def, logged } = &mut self.entries[i] else { continue };
            // A source exists once its store table opens (its creator writes
            // the directory before the schema file).
            let missing =
                def.sources().into_iter().find(|s| Table::open(source_path(&self.config, &self.keyed, s)).is_err());
            if let Some(m) = missing {
                if !*logged {
                    tracing::info!(table = %def.name(), source = %m, path = %source_path(&self.config, &self.keyed, &m).display(),
                        "waiting for the source's changelog to exist");
                    *logged = true;
                }
                continue;
            }
            let ready = open(&self.config, &self.catalog, &self.keyed, def.clone(), &self.budgets).await?;
            self.entries[i] = Entry::Ready(Box::new(ready));
            self.columns = source_columns(&self.entries);
        }
        Ok(())
    }

    async fn poll(&mut self, wait: Duration) -> Result<usize, GoldError> {
        if self.entries.iter().any(|e| matches!(e, Entry::Waiting { .. })) {
            self.open_waiting().await?;
        }
        let gold = &self.config.gold;
        let mut added = 0;
        let mut reads = Reads::new(&self.columns);
        for entry in &mut self.entries {
            let Entry::Ready(r) = entry else { continue };
            if r.last_poll.is_some_and(|t| t.elapsed() < gold.poll_interval) || r.work >= gold.max_batch_changes {
                continue;
            }
            r.last_poll = Some(Instant::now());
            added += r.read_sources(gold.max_snapshots_per_poll, |_| true, &mut self.summary, &mut reads)?;
        }
        if added > 0 {
            self.since.get_or_insert_with(Instant::now);
        } else {
            tokio::time::sleep(wait).await;
        }
        Ok(added)
    }

    /// One commit round. Tables reading Silver only commit first, side by
    /// side (each its own task: their writes, fsyncs and catalog swaps
    /// overlap); then the tables reading a keyed Gold table read what that
    /// table just committed and commit in the same round, so a rollup over a
    /// wide table is one round behind Silver, not two.
    async fn commit_all(&mut self) -> Result<Vec<TableCommit>, GoldError> {
        let mut done = Vec::new();
        let mut first_error = None;
        for phase in [Phase::Silver, Phase::Gold] {
            if phase == Phase::Gold {
                let keyed = &self.keyed;
                let max = self.config.gold.max_snapshots_per_poll;
                let mut reads = Reads::new(&self.columns);
                for entry in &mut self.entries {
                    let Entry::Ready(r) = entry else { continue };
                    if r.phase(keyed) == Phase::Gold {
                        r.read_sources(max, |s| keyed.contains(&s.entity), &mut self.summary, &mut reads)?;
                    }
                }
            }
            let mut tasks = Vec::new();
            for (i, entry) in self.entries.iter_mut().enumerate() {
                let Entry::Ready(r) = entry else { continue };
                if r.phase(&self.keyed) != phase || !r.behind() {
                    continue;
                }
                let Entry::Ready(mut r) = std::mem::replace(entry, Entry::Committing) else { unreachable!() };
                tasks.push((
                    i,
                    tokio::spawn(async move {
                        let outcome = r.commit().await;
                        (r, outcome)
                    }),
                ));
            }
            for (i, task) in tasks {
                let (r, outcome) = match task.await {
                    Ok(v) => v,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                };
                match outcome {
                    Ok(c) => {
                        self.summary.gold_rows_written += c.written;
                        self.summary.gold_rows_deleted += c.deleted;
                        if let Some(commit) = c.commit {
                            if let Some(delay) = c.silver_delay_ms
                                && self.delays.len() < 1_000_000
                            {
                                self.delays.push(delay);
                            }
                            let room = 1_000_000usize.saturating_sub(self.freshness.len());
                            self.freshness.extend(c.freshness_ms.into_iter().take(room));
                            self.summary.commits += 1;
                            done.push(commit);
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
                self.entries[i] = Entry::Ready(r);
            }
            if let Some(e) = first_error.take() {
                return Err(e);
            }
        }
        self.since = None;
        self.maybe_compact().await;
        Ok(done)
    }

    /// Compacts, after a commit round, the one Gold table whose compaction
    /// was looked at longest ago, once `gold.compaction_interval` has passed
    /// for it (one table per round spreads the cost over rounds). A compaction
    /// rewrites one group (`lakehouse.compaction.max-file-group-size-bytes`);
    /// a table that had one stays due, so the rest follows group by group in
    /// the next rounds, after tables due longer. Tables with
    /// `lakehouse.compaction.auto = false` are compacted by hand only. A failed
    /// compaction is logged and tried again an interval later: what it
    /// committed to the state is materialised by the table's next commit.
    async fn maybe_compact(&mut self) {
        let interval = self.config.gold.compaction_interval;
        if interval.is_zero() {
            return;
        }
        let due = self
            .entries
            .iter_mut()
            .filter_map(|e| if let Entry::Ready(r) = e { Some(r) } else { None })
            .filter(|r| r.last_compaction.elapsed() >= interval)
            .min_by_key(|r| r.last_compaction);
        let Some(r) = due else { return };
        r.last_compaction = Instant::now();
        let props = r.sink.head().metadata.properties();
        if props.get(lakehouse::table::rewrite::AUTO).is_some_and(|v| v.trim() == "false") {
            return;
        }
        match r.sink.compact().await {
            // Still due: the next group (if any) goes in a later round.
            Ok(Some(_)) => r.last_compaction = Instant::now().checked_sub(interval).unwrap_or(r.last_compaction),
            Ok(None) => {}
            Err(err) => tracing::warn!(table = %r.name, error = %err, "compaction failed; tried again next interval"),
        }
    }

    /// What the run did, with the Silver→Gold delay percentiles of its commits.
    pub fn summary(&self) -> RunSummary {
        let mut summary = self.summary.clone();
        use lakehouse::worker::percentiles;
        (summary.silver_to_gold_p50_ms, summary.silver_to_gold_p99_ms, summary.silver_to_gold_max_ms) =
            percentiles(&self.delays);
        (summary.freshness_p50_ms, summary.freshness_p99_ms, summary.freshness_max_ms) = percentiles(&self.freshness);
        summary
    }

    async fn is_caught_up(&mut self) -> Result<bool, GoldError> {
        for entry in &self.entries {
            let Entry::Ready(r) = entry else { return Ok(false) };
            for s in &r.sources {
                let latest = s.table.latest_snapshot_id().map_err(|source| GoldError::Source {
                    table: r.name.clone(),
                    entity: s.entity.clone(),
                    source,
                })?;
                if latest.is_some_and(|l| l != s.position) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// The Paimon consumer id Gold table `name` holds on its sources' changelogs,
/// so that expiry keeps every snapshot it has not read.
pub fn consumer_id(name: &str) -> String {
    format!("gold-{name}")
}

/// The next snapshot a consumer at `position` registers: keyed tables also
/// keep the snapshot they read up to (a restart scans their sources there).
fn consumer_next(position: i64, keep_read_snapshot: bool) -> i64 {
    if keep_read_snapshot { position.max(1) } else { position + 1 }
}

/// Where the changelog of source `name` lives: a keyed Gold table's state
/// table, else the Silver entity's store table.
fn source_path(config: &Config, keyed: &HashSet<String>, name: &str) -> std::path::PathBuf {
    if keyed.contains(name) { config.gold.state_table(name) } else { config.gold.silver_table(name) }
}

/// The Gold tables other tables may read as a source (wide tables: their
/// state is keyed like a Silver entity).
fn keyed_tables(defs: &[GoldDef]) -> HashSet<String> {
    defs.iter().filter(|d| matches!(d, GoldDef::Wide(_))).map(|d| d.name().to_string()).collect()
}

/// Compacts Gold table `name` once, by hand (`lakehouse compact gold.<name>`),
/// under its own state commit user: safe beside a running aggregator (see
/// [`crate::sink`]). `None` when nothing passes the thresholds or another
/// writer got in first.
pub async fn compact(config: &Config, name: &str) -> Result<Option<crate::sink::Compacted>, GoldError> {
    let defs = spec::load(&config.gold.tables)?;
    let keyed = keyed_tables(&defs);
    let def = defs.into_iter().find(|d| d.name() == name).ok_or_else(|| GoldError::Invalid {
        table: name.to_string(),
        message: format!("no such table in {}", config.gold.tables.display()),
    })?;
    let catalog = SqlCatalog::connect(&config.catalog).await?;
    let (_, _, mut sink) = bind(config, &catalog, &keyed, def, format!("lakehouse-compact-{name}")).await?;
    Ok(sink.compact().await?)
}

async fn open(
    config: &Config,
    catalog: &SqlCatalog,
    keyed: &HashSet<String>,
    def: GoldDef,
    budgets: &changelog_store::write::Budgets,
) -> Result<Ready, GoldError> {
    let name = def.name().to_string();
    let commit_user = format!("gold-aggregator-{name}");
    let (mut sources, mut model, mut sink) = bind(config, catalog, keyed, def, commit_user).await?;
    sink.share_memory(budgets.clone());
    let invalid = |message: String| GoldError::Invalid { table: name.clone(), message };
    let recovered = sink.recover().await?;
    if !recovered.is_empty() {
        tracing::warn!(table = %name, snapshots = recovered.len(), "Gold was behind its state; caught up");
    }
    // Positions, then the model as of them.
    let (groups, state_rows, props) = match &model {
        Model::Rollup(_) => {
            let (groups, props) = sink.load()?;
            (Some(groups), Vec::new(), props)
        }
        _ => {
            let (rows, props) = sink.scan_state()?;
            (None, rows, props)
        }
    };
    let has_state = groups.as_ref().is_some_and(|g| !g.is_empty()) || state_rows.iter().any(|b| b.num_rows() > 0);
    for s in &mut sources {
        let key = format!("{SILVER_POSITION_PREFIX}{}", s.entity);
        s.position = match props.get(&key) {
            Some(v) => v.parse::<i64>().map_err(|_| invalid(format!("unreadable {key} {v:?}")))?,
            None if !has_state => 0,
            None => {
                return Err(invalid(format!(
                    "the state has rows but no {key}: refusing to re-read the changelog from the start"
                )));
            }
        };
        s.upto = s.position;
    }
    let scan = |s: &Source| -> Result<Vec<arrow_array::RecordBatch>, GoldError> {
        if s.position == 0 {
            return Ok(Vec::new());
        }
        s.table.scan_batches(changelog_store::ReadAt::Snapshot(s.position)).map_err(|source| GoldError::Source {
            table: name.clone(),
            entity: s.entity.clone(),
            source,
        })
    };
    match &mut model {
        // Per-value counts (min, max, count_distinct) are not in the state:
        // rebuilt from the source at the state's position, checked against it.
        Model::Rollup(agg) if agg.counts_values() => {
            let started = Instant::now();
            let rows = scan(&sources[0])?;
            agg.rebuild(groups.unwrap_or_default(), &rows)?;
            tracing::info!(table = %name, groups = agg.groups.len(), ms = started.elapsed().as_millis() as u64,
                "rebuilt the groups from the source at the state's position");
        }
        Model::Rollup(agg) => agg.restore(groups.unwrap_or_default()),
        Model::Wide(w) => {
            let mut dims = HashMap::new();
            for (i, s) in sources.iter().enumerate().skip(1) {
                dims.insert(i, scan(s)?);
            }
            w.restore(&state_rows, &dims)?;
        }
        Model::Features(f) => f.restore(&state_rows, &scan(&sources[0])?)?,
    }
    let keep_read_snapshot = model.reads_at_start();
    for s in &sources {
        s.table
            .register_consumer(&consumer_id(&name), consumer_next(s.position, keep_read_snapshot))
            .map_err(|source| GoldError::Source { table: name.clone(), entity: s.entity.clone(), source })?;
    }
    let positions: Vec<String> = sources.iter().map(|s| format!("{}@{}", s.entity, s.position)).collect();
    tracing::info!(table = %name, positions = ?positions, "positioned at the state's source snapshots");
    Ok(Ready {
        name,
        model,
        sink,
        sources,
        work: 0,
        newest_ms: None,
        oldest_silver_ms: None,
        event_ms: Vec::new(),
        last_poll: None,
        last_compaction: Instant::now(),
    })
}

/// Table `def`'s sources, model (bound to its sources' schemas, empty) and
/// sink (its Gold table, created where absent, and state table), committing
/// to the state as `commit_user`.
async fn bind(
    config: &Config,
    catalog: &SqlCatalog,
    keyed: &HashSet<String>,
    def: GoldDef,
    commit_user: String,
) -> Result<(Vec<Source>, Model, GoldTable), GoldError> {
    let name = def.name().to_string();
    let mut sources = Vec::new();
    for entity in def.sources() {
        let table = Table::open(source_path(config, keyed, &entity)).map_err(|source| GoldError::Source {
            table: name.clone(),
            entity: entity.clone(),
            source,
        })?;
        sources.push(Source { entity, table, position: 0, upto: 0 });
    }
    let schemas: Vec<(arrow_schema::Schema, Vec<String>)> = sources
        .iter()
        .map(|s| {
            let schema = changelog_store::data::arrow_conv::row_schema(s.table.info());
            (schema.as_ref().clone(), s.table.info().schema.primary_keys.clone())
        })
        .collect();
    let gold = TableName::new(config.gold.namespace.clone(), name.clone());
    let state_path = config.gold.state_table(&name);
    let invalid = |message: String| GoldError::Invalid { table: name.clone(), message };
    let (model, sink) = match def {
        GoldDef::Rollup(rollup) => {
            let agg = Aggregation::bind(rollup.clone(), &schemas[0].0)?;
            let sort_by = [WINDOW.to_string(), WINDOW_START.to_string()].into_iter().chain(rollup.group_by.clone());
            let sink = GoldTable::open(
                catalog.clone(),
                gold,
                agg.schema(),
                Layout::Windowed(rollup.partition),
                sort_by.collect(),
                state_path,
                state_spec(config.gold.buckets),
                commit_user,
            )
            .await?;
            (Model::Rollup(agg), sink)
        }
        GoldDef::Wide(spec) => {
            let partition = spec.partition;
            let column = spec.partition_by.clone();
            let wide = Wide::bind(spec, &schemas)?;
            let state = keyed_state_spec(wide.schema(), wide.key(), config.gold.buckets).map_err(&invalid)?;
            let layout = Layout::Keyed { column, partition };
            let sort_by = wide.key().to_vec();
            let sink =
                GoldTable::open(catalog.clone(), gold, wide.schema(), layout, sort_by, state_path, state, commit_user)
                    .await?;
            (Model::Wide(wide), sink)
        }
        GoldDef::Features(spec) => {
            let layout = Layout::Keyed { column: FEATURE_DATE.into(), partition: spec.partition };
            let features = Features::bind(spec, &schemas[0].0)?;
            let state = keyed_state_spec(features.schema(), &features.key(), config.gold.buckets).map_err(&invalid)?;
            let sink = GoldTable::open(
                catalog.clone(),
                gold,
                features.schema(),
                layout,
                features.key(),
                state_path,
                state,
                commit_user,
            )
            .await?;
            (Model::Features(features), sink)
        }
    };
    Ok((sources, model, sink))
}

impl Stage for Aggregator {
    type Error = GoldError;

    async fn fill(&mut self, wait: Duration) -> Result<usize, GoldError> {
        self.poll(wait).await
    }

    fn pending(&self) -> Pending {
        let records = self.entries.iter().map(|e| if let Entry::Ready(r) = e { r.work } else { 0 }).sum();
        Pending { records, bytes: 0, since: self.since }
    }

    async fn commit(&mut self) -> Result<Vec<TableCommit>, GoldError> {
        self.commit_all().await
    }

    async fn caught_up(&mut self) -> Result<bool, GoldError> {
        self.is_caught_up().await
    }
}
