//! The aggregator's [`Stage`]: new snapshots of each source's Silver
//! changelog → groups added to and retracted from in memory → per Gold
//! table, one state commit and one Iceberg RowDelta ([`crate::sink`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use changelog_store::Table;
use lakehouse::catalog::{CatalogError, SqlCatalog, TableName};
use lakehouse::telemetry::names;
use lakehouse::worker::{Pending, Stage, TableCommit};

use crate::config::Config;
use crate::rollup::{AggError, Aggregation};
use crate::sink::{GoldTable, SinkError};
use crate::spec::{self, Rollup, SpecError};

/// State snapshot property (and Gold summary key) prefix: the Silver store
/// snapshot consumed, per source entity.
pub const SILVER_POSITION_PREFIX: &str = "lakehouse.gold.silver-snapshot.";
/// Silver store snapshot property with the batch's newest source event time
/// (`silver_refiner::stage::NEWEST_EVENT_KEY`).
const SILVER_NEWEST_EVENT_KEY: &str = "lakehouse.silver.newest-event-ms";

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
}

/// One Gold table, ready: its source, its groups, its sink.
struct Ready {
    agg: Aggregation,
    sink: GoldTable,
    source: Table,
    /// The source snapshot committed (in the state) as consumed; 0 = none.
    position: i64,
    /// The source snapshot the in-flight batch reads up to.
    upto: i64,
    work: usize,
    newest_ms: Option<i64>,
    /// Commit time of the oldest Silver snapshot in the batch (ms since the epoch).
    oldest_silver_ms: Option<i64>,
    last_poll: Option<Instant>,
}

enum Entry {
    /// The source entity has no store table yet (Silver has not started it).
    Waiting {
        rollup: Rollup,
        logged: bool,
    },
    Ready(Box<Ready>),
}

pub struct Aggregator {
    config: Config,
    catalog: SqlCatalog,
    entries: Vec<Entry>,
    since: Option<Instant>,
    /// Silver commit → Gold commit delays of this run (ms), for the summary.
    delays: Vec<u64>,
    summary: RunSummary,
}

impl Aggregator {
    /// Loads the Gold definitions; opens every Gold table whose source exists
    /// (the others when their source appears) and brings it up to its state.
    pub async fn start(config: Config) -> Result<Self, GoldError> {
        let rollups = spec::load(&config.gold.tables)?;
        let catalog = SqlCatalog::connect(&config.catalog).await?;
        catalog.create_namespace_if_absent(&config.gold.namespace).await?;
        let entries = rollups.into_iter().map(|rollup| Entry::Waiting { rollup, logged: false }).collect();
        let mut me =
            Aggregator { config, catalog, entries, since: None, delays: Vec::new(), summary: RunSummary::default() };
        me.open_waiting().await?;
        tracing::info!(tables = me.entries.len(), "gold-aggregator started");
        Ok(me)
    }

    async fn open_waiting(&mut self) -> Result<(), GoldError> {
        for entry in &mut self.entries {
            let Entry::Waiting { rollup, logged } = entry else { continue };
            let path = self.config.gold.silver_table(&rollup.source);
            if !path.join("schema").exists() {
                if !*logged {
                    tracing::info!(table = %rollup.name, source = %rollup.source, path = %path.display(),
                        "waiting for the Silver entity's changelog to exist");
                    *logged = true;
                }
                continue;
            }
            let ready = open(&self.config, &self.catalog, rollup.clone()).await?;
            *entry = Entry::Ready(Box::new(ready));
        }
        Ok(())
    }

    async fn poll(&mut self, wait: Duration) -> Result<usize, GoldError> {
        if self.entries.iter().any(|e| matches!(e, Entry::Waiting { .. })) {
            self.open_waiting().await?;
        }
        let gold = &self.config.gold;
        let mut added = 0;
        for entry in &mut self.entries {
            let Entry::Ready(r) = entry else { continue };
            if r.last_poll.is_some_and(|t| t.elapsed() < gold.poll_interval) || r.work >= gold.max_batch_changes {
                continue;
            }
            r.last_poll = Some(Instant::now());
            let (table, entity) = (r.agg.spec.name.clone(), r.agg.spec.source.clone());
            let source_err = |source| GoldError::Source { table: table.clone(), entity: entity.clone(), source };
            let Some(latest) = r.source.latest_snapshot().map_err(source_err)? else { continue };
            let last = latest.id.min(r.upto + gold.max_snapshots_per_poll as i64);
            for n in r.upto + 1..=last {
                let changes = r.source.change_batches(n).map_err(source_err)?;
                r.oldest_silver_ms.get_or_insert(changes.time_millis);
                let newest = changes.properties.as_ref().and_then(|p| p.get(SILVER_NEWEST_EVENT_KEY));
                if let Some(ms) = newest.and_then(|ms| ms.parse::<i64>().ok()) {
                    r.newest_ms = Some(r.newest_ms.map_or(ms, |m| m.max(ms)));
                }
                for b in &changes.batches {
                    let a = r.agg.apply(b)?;
                    metrics::counter!(names::GOLD_CHANGES, "table" => table.clone()).increment(a.changes);
                    metrics::counter!(names::GOLD_RETRACTIONS, "table" => table.clone()).increment(a.retractions);
                    metrics::counter!(names::GOLD_LATE_EVENTS, "table" => table.clone()).increment(a.late);
                    self.summary.changes += a.changes;
                    self.summary.retractions += a.retractions;
                    self.summary.late += a.late;
                    r.work += a.changes as usize;
                    added += a.changes as usize;
                }
                r.upto = n;
                r.work += 1;
                added += 1;
            }
        }
        if added > 0 {
            self.since.get_or_insert_with(Instant::now);
        } else {
            tokio::time::sleep(wait).await;
        }
        Ok(added)
    }

    async fn commit_all(&mut self) -> Result<Vec<TableCommit>, GoldError> {
        let mut done = Vec::new();
        for entry in &mut self.entries {
            let Entry::Ready(r) = entry else { continue };
            if r.upto == r.position {
                continue;
            }
            let (live, gone) = r.agg.take_touched();
            let rows = r.agg.gold_rows(&live)?;
            let key = format!("{SILVER_POSITION_PREFIX}{}", r.agg.spec.source);
            let props = BTreeMap::from([(key, r.upto.to_string())]);
            let golded = r.sink.apply(&live, &rows, &gone, props).await?;
            let consumer = consumer_id(&r.agg.spec.name);
            r.source.register_consumer(&consumer, r.upto + 1).map_err(|source| GoldError::Source {
                table: r.agg.spec.name.clone(),
                entity: r.agg.spec.source.clone(),
                source,
            })?;
            let table = r.agg.spec.name.clone();
            metrics::counter!(names::GOLD_ROWS, "table" => table.clone(), "outcome" => "written")
                .increment(live.len() as u64);
            metrics::counter!(names::GOLD_ROWS, "table" => table, "outcome" => "deleted").increment(golded.deleted);
            self.summary.gold_rows_written += live.len() as u64;
            self.summary.gold_rows_deleted += golded.deleted;
            if let Some(mut c) = golded.commit {
                c.newest_event_ms = r.newest_ms;
                if let Some(t) = r.oldest_silver_ms {
                    let delay = (chrono::Utc::now().timestamp_millis() - t).max(0) as u64;
                    metrics::histogram!(names::GOLD_BEHIND_SILVER, "table" => r.agg.spec.name.clone())
                        .record(delay as f64 / 1000.0);
                    if self.delays.len() < 1_000_000 {
                        self.delays.push(delay);
                    }
                }
                self.summary.commits += 1;
                done.push(c);
            }
            r.position = r.upto;
            r.work = 0;
            r.newest_ms = None;
            r.oldest_silver_ms = None;
        }
        self.since = None;
        Ok(done)
    }

    /// What the run did, with the Silver→Gold delay percentiles of its commits.
    pub fn summary(&self) -> RunSummary {
        let mut summary = self.summary.clone();
        let mut d = self.delays.clone();
        d.sort_unstable();
        if !d.is_empty() {
            let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
            summary.silver_to_gold_p50_ms = Some(at(0.5));
            summary.silver_to_gold_p99_ms = Some(at(0.99));
            summary.silver_to_gold_max_ms = d.last().copied();
        }
        summary
    }

    async fn is_caught_up(&mut self) -> Result<bool, GoldError> {
        for entry in &self.entries {
            let Entry::Ready(r) = entry else { return Ok(false) };
            let latest = r.source.latest_snapshot().map_err(|source| GoldError::Source {
                table: r.agg.spec.name.clone(),
                entity: r.agg.spec.source.clone(),
                source,
            })?;
            if latest.is_some_and(|s| s.id != r.position) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The Paimon consumer id Gold table `name` holds on its source's changelog,
/// so that expiry keeps every snapshot it has not read.
pub fn consumer_id(name: &str) -> String {
    format!("gold-{name}")
}

async fn open(config: &Config, catalog: &SqlCatalog, rollup: Rollup) -> Result<Ready, GoldError> {
    let name = rollup.name.clone();
    let source_err = |source| GoldError::Source { table: name.clone(), entity: rollup.source.clone(), source };
    let source = Table::open(config.gold.silver_table(&rollup.source)).map_err(source_err)?;
    let schema = changelog_store::data::arrow_conv::row_schema(source.info());
    let mut agg = Aggregation::bind(rollup.clone(), &schema)?;
    let mut sink = GoldTable::open(
        catalog.clone(),
        TableName::new(config.gold.namespace.clone(), name.clone()),
        agg.schema(),
        rollup.partition,
        config.gold.state_table(&name),
        config.gold.buckets,
        format!("gold-aggregator-{name}"),
    )
    .await?;
    let recovered = sink.recover().await?;
    if !recovered.is_empty() {
        tracing::warn!(table = %name, snapshots = recovered.len(), "Gold was behind its state; caught up");
    }
    let (groups, props) = sink.load()?;
    let key = format!("{SILVER_POSITION_PREFIX}{}", rollup.source);
    let position = match props.get(&key) {
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| GoldError::Invalid { table: name.clone(), message: format!("unreadable {key} {v:?}") })?,
        None if groups.is_empty() => 0,
        None => {
            return Err(GoldError::Invalid {
                table: name.clone(),
                message: format!("the state has groups but no {key}: refusing to re-read the changelog from the start"),
            });
        }
    };
    source.register_consumer(&consumer_id(&name), position + 1).map_err(source_err)?;
    tracing::info!(table = %name, source = %rollup.source, position, groups = groups.len(),
        "positioned at the state's Silver snapshot");
    agg.restore(groups);
    Ok(Ready {
        agg,
        sink,
        source,
        position,
        upto: position,
        work: 0,
        newest_ms: None,
        oldest_silver_ms: None,
        last_poll: None,
    })
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
