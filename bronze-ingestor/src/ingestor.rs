//! The bronze-ingestor loop.
//!
//! librdkafka keeps this member in the consumer group; a fetch thread
//! ([`lakehouse::kafka::fetcher`]) reads the assigned partitions from the
//! positions this loop gives it. One consumer thread decodes the fetched
//! batches into Arrow builders, and at each flush writes Parquet files and
//! commits one snapshot per table carrying the next offset of every partition
//! it covers. Rebalances run inside librdkafka's poll on the same thread, so
//! they never interleave with a flush.
//!
//! Exactly-once rests on three rules:
//! 1. on every assignment the consumer is positioned at the offsets found in
//!    the tables' snapshot ancestry (never at Kafka group offsets);
//! 2. a commit only goes through if the table's offsets for the batch's
//!    partitions are still the ones the batch started from (checked against
//!    every head the commit layer tries), otherwise the batch is discarded and
//!    the consumer re-seeks;
//! 3. data files become visible only through that single atomic commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use iceberg::spec::{Literal, Struct};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::membership::{self, Ownership, Watchdog};
use super::routes::Router;
use super::rows::{Message, RowsBuilder, headers_json};
use super::schema;
use crate::config::Config;
use lakehouse::ErrorKind;
use lakehouse::catalog::{CatalogError, LoadedTable, SqlCatalog, TableName};
use lakehouse::kafka::fetcher::{self, Chunk, Fetcher};
use lakehouse::kafka::topic_id::{self, TopicIds};
use lakehouse::table::commit::{CommitError, Committer, Operation};
use lakehouse::table::create::load_or_create;
use lakehouse::table::position::{
    Offsets, PositionError, committed_offsets, committed_topic_ids, fence_offsets, fence_topic_ids,
};
use lakehouse::table::writer::DataFileWriter;
use lakehouse::telemetry::{Health, names};
use lakehouse::worker::{self, BatchPolicy, Control, Pending, Stage, TableCommit};

const LAYER: &str = "bronze";
/// Rows per Arrow batch inside one (table, day) buffer. Small enough that
/// a chunk's buffers (~8 MiB of values) come from the heap, not from fresh,
/// page-faulted mmap regions (glibc maps allocations above 32 MiB).
const CHUNK_ROWS: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("writing data files for {table}: {source}")]
    Write { table: TableName, source: iceberg::Error },
    #[error("consumer thread failed: {0}")]
    Thread(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("kafka data: {0}")]
    Fetch(String),
    #[error(transparent)]
    Position(#[from] PositionError),
    #[error("asking the brokers for topic ids: {0}")]
    TopicIds(String),
    #[error("kafka authentication: {0}")]
    Auth(String),
}

impl IngestError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Kafka(_) | IngestError::Write { .. } => ErrorKind::Transient,
            IngestError::Catalog(e) => e.kind(),
            IngestError::Commit(e) => e.kind(),
            IngestError::Thread(_) => ErrorKind::Internal,
            IngestError::Config(_) => ErrorKind::Config,
            IngestError::Fetch(_) => ErrorKind::Internal,
            IngestError::Position(_) => ErrorKind::Data,
            IngestError::TopicIds(_) => ErrorKind::Transient,
            IngestError::Auth(_) => ErrorKind::Config,
        }
    }
}

/// Knobs of one run that are not configuration (tests, demo, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once every assigned partition has been at its end, fully
    /// committed, for this long.
    pub exit_when_idle: Option<Duration>,
    /// Liveness for `/health`.
    pub health: Health,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    pub records: u64,
    pub commits: u64,
    pub fenced: u64,
    pub decode_errors: u64,
    /// Seconds from the first consumed record to the last committed snapshot.
    pub busy_seconds: f64,
    /// Freshness of Bronze's commits: from the newest Kafka timestamp of a
    /// table's batch to its commit (the producer's clock: create time for
    /// Debezium and most producers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_to_bronze_p50_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_to_bronze_p99_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_to_bronze_max_ms: Option<u64>,
    #[serde(skip)]
    first_record: Option<Instant>,
    /// One sample per table commit (capped), for the percentiles above.
    #[serde(skip)]
    delays: Vec<u64>,
}

type Tp = (String, i32);

/// Assignment state shared between the rebalance callback and the loop.
#[derive(Debug, Default)]
struct Assignment {
    /// Bumped on every rebalance; the loop discards its batch when it changes.
    epoch: u64,
    /// The partitions the group gave this member.
    partitions: Vec<Tp>,
}

struct IngestContext {
    assignment: Arc<Mutex<Assignment>>,
}

impl ClientContext for IngestContext {}

impl ConsumerContext for IngestContext {
    /// Only records the assignment: positions are read from the tables by the
    /// loop (retrying until the catalog answers), never inside librdkafka's
    /// callback. librdkafka itself is given nothing to fetch: the group
    /// membership is its, the fetching ours.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let partitions: Vec<Tp> = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = consumer.assign(&TopicPartitionList::new()) {
                    tracing::error!(error = %e, "assign failed");
                }
                tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
            }
            _ => {
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::warn!(?err, "rebalance error; unassigning");
                }
                let _ = consumer.unassign();
                tracing::info!("partitions revoked");
                Vec::new()
            }
        };
        let mut a = self.assignment.lock().expect("assignment lock");
        a.epoch += 1;
        a.partitions = partitions;
    }
}

/// Positions read for a set of partitions.
#[derive(Debug, Default)]
struct Positions {
    /// The committed next offset of each partition whose table answered.
    found: HashMap<Tp, Option<i64>>,
    /// Partitions of tables that have snapshots but no position for this
    /// group: never consumed (that would start at the log start and duplicate
    /// the table), re-checked until an operator acts.
    refused: Vec<Tp>,
    /// The topic id recorded with the offsets, per topic of `found` (`None`: none recorded).
    recorded_ids: HashMap<String, Option<String>>,
}

/// What this member knows of a topic's id.
#[derive(Debug, Clone, Default)]
struct TopicIdState {
    /// Recorded with the table's offsets when this member positioned itself
    /// (what its commits fence on).
    recorded: Option<String>,
    /// The broker's current id (what its commits record); `None` if the broker gives none.
    current: Option<String>,
}

/// How long partitions of a table without a position wait before it is read again.
const REFUSED_RECHECK: Duration = Duration::from_secs(30);

/// The committed next offset of each partition, from its table's ancestry
/// (or its properties). An unreadable position is an error: never guessed around.
async fn table_positions(
    catalog: &SqlCatalog,
    router: &Router,
    group: &str,
    retention_days: u32,
    tps: &[Tp],
) -> Result<Positions, IngestError> {
    let mut by_table: BTreeMap<TableName, Vec<Tp>> = BTreeMap::new();
    for tp in tps {
        by_table.entry(router.route(&tp.0).table.clone()).or_default().push(tp.clone());
    }
    let mut out = Positions::default();
    for (table, tps) in by_table {
        let t = load_or_create(catalog, &table, &schema::table_spec(retention_days)).await?;
        match committed_offsets(&t.metadata, group) {
            Ok(committed) => {
                metrics::gauge!(names::POSITION_MISSING, "table" => table.to_string()).set(0.0);
                let ids = committed_topic_ids(&t.metadata, group)?;
                for (topic, _) in &tps {
                    out.recorded_ids.insert(topic.clone(), ids.get(topic).cloned());
                }
                for tp in tps {
                    let next = committed.get(&tp).copied();
                    out.found.insert(tp, next);
                }
            }
            Err(e @ PositionError::Missing { .. }) => {
                metrics::gauge!(names::POSITION_MISSING, "table" => table.to_string()).set(1.0);
                tracing::error!(
                    table = %table, partitions = ?tps, error = %e,
                    "not consuming these partitions: the table has no committed position"
                );
                out.refused.extend(tps);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// How far this member fetched a partition since it was positioned.
#[derive(Debug, Clone, Copy)]
struct Fetched {
    /// The offset after everything fetched, transaction markers and aborted data included.
    end: i64,
    /// The offset after the last data record fetched.
    data_end: i64,
}

impl Default for Fetched {
    fn default() -> Self {
        Self { end: i64::MIN, data_end: i64::MIN }
    }
}

/// Whether a partition is consumed to its end: committed up to the high watermark,
/// or fetched up to it by this member with every data record committed. The second
/// case is a transactional topic: its last offsets are transaction markers (or aborted
/// data), which never become rows, so the committed position stays below the high
/// watermark until the next transaction's data is committed.
fn partition_caught_up(committed: i64, high: i64, fetched: Option<Fetched>) -> bool {
    committed >= high || fetched.is_some_and(|f| f.end >= high && f.data_end <= committed)
}

/// Rows of one table in the current batch.
struct TableBatch {
    /// day (days since epoch) → builder and finished chunks
    days: BTreeMap<i32, (RowsBuilder, Vec<RecordBatch>)>,
    /// next offset after the last buffered message, per partition
    advanced: Offsets,
    newest_timestamp_ms: Option<i64>,
    rows: usize,
}

#[derive(Default)]
struct Batch {
    tables: BTreeMap<TableName, TableBatch>,
    /// When the first row arrived.
    since: Option<Instant>,
    rows: usize,
    bytes: usize,
}

impl Batch {
    fn new() -> Self {
        Self::default()
    }
    fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

/// Runs bronze-ingestor until `shutdown` (or idle, with `exit_when_idle`).
///
/// The loop is the shared worker skeleton ([`lakehouse::worker::drive`]) on a
/// thread of its own: librdkafka's poll and the fetcher's channel block, and
/// rebalance callbacks run inside that poll, so never during a commit.
pub async fn run(config: Config, options: RunOptions, shutdown: CancellationToken) -> Result<RunSummary, IngestError> {
    let catalog = SqlCatalog::connect(&config.catalog).await?;
    let handle = Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bronze-consumer".into())
        .spawn(move || {
            let policy = BatchPolicy::new(
                config.bronze.commit_interval,
                config.bronze.max_batch_records,
                config.bronze.max_batch_bytes,
            );
            let control = Control {
                layer: LAYER,
                shutdown,
                shutdown_timeout: config.shutdown.timeout,
                health: options.health,
                exit_when_idle: options.exit_when_idle,
            };
            let result = handle.block_on(async move {
                let mut stage = ConsumerLoop::start(config, catalog)?;
                worker::drive(&mut stage, &policy, &control).await?;
                let mut summary = stage.summary.clone();
                (summary.kafka_to_bronze_p50_ms, summary.kafka_to_bronze_p99_ms, summary.kafka_to_bronze_max_ms) =
                    worker::percentiles(&summary.delays);
                Ok(summary)
            });
            let _ = tx.send(result);
        })
        .map_err(|e| IngestError::Thread(e.to_string()))?;
    rx.await.map_err(|_| IngestError::Thread("consumer thread ended without a result".into()))?
}

struct ConsumerLoop {
    config: Config,
    consumer: Arc<BaseConsumer<IngestContext>>,
    fetcher: Fetcher,
    /// Bumped at every re-positioning of the fetcher; older data is dropped.
    fetch_epoch: u64,
    router: Arc<Router>,
    committer: Committer,
    writer: DataFileWriter,
    arrow_schema: SchemaRef,
    assignment: Arc<Mutex<Assignment>>,
    tables: HashMap<TableName, LoadedTable>,
    summary: RunSummary,
    // loop state
    batch: Batch,
    epoch: u64,
    base: HashMap<Tp, Option<i64>>,
    /// How far this member fetched each assigned partition (for the idle check).
    fetched: HashMap<Tp, Fetched>,
    /// Assigned partitions whose table positions are not read yet, and when to try.
    pending: Vec<Tp>,
    pending_retry: Option<Instant>,
    /// Records and bytes consumed per topic since the last publish.
    consumed: HashMap<String, (u64, u64)>,
    /// Cached wall clock (µs) and how many messages used it.
    clock_us: i64,
    clock_uses: u32,
    /// `kafka.topic_pattern`, compiled (for the idle check).
    topic_pattern: Option<regex::Regex>,
    /// Lineage properties added to every commit (writer id).
    commit_properties: HashMap<String, String>,
    /// Topic ids of the positioned topics.
    topic_ids: HashMap<String, TopicIdState>,
    /// Partitions of re-created topics an operator accepted: fetched from the
    /// new log start while `base` (what commits fence on) keeps the old offsets
    /// until the first commit replaces them.
    start_override: HashMap<Tp, Option<i64>>,
    /// TLS and SASL of the native Kafka connections.
    security: lakehouse::kafka::security::Security,
    /// Rejoins the group when this member is left without partitions.
    watchdog: Watchdog,
}

type GroupConsumer = Arc<BaseConsumer<IngestContext>>;

/// A new group member (librdkafka consumer, subscribed) and the fetch thread
/// reading what the group assigns it.
fn join_group(config: &Config, assignment: &Arc<Mutex<Assignment>>) -> Result<(GroupConsumer, Fetcher), IngestError> {
    let context = IngestContext { assignment: assignment.clone() };
    let consumer: BaseConsumer<IngestContext> =
        lakehouse::kafka::consumer_config(&config.kafka).create_with_context(context)?;
    let mut subscriptions: Vec<&str> = config.kafka.topics.iter().map(String::as_str).collect();
    if !config.kafka.topic_pattern.is_empty() {
        subscriptions.push(&config.kafka.topic_pattern);
    }
    consumer.subscribe(&subscriptions)?;
    tracing::info!(topics = ?subscriptions, group = %config.kafka.group_id, "subscribed");
    let consumer = Arc::new(consumer);
    let settings = lakehouse::kafka::fetch_settings(&config.kafka).map_err(IngestError::Config)?;
    let fetcher = Fetcher::spawn(settings, Arc::new(lakehouse::kafka::RdCluster(consumer.clone())))
        .map_err(|e| IngestError::Thread(e.to_string()))?;
    Ok((consumer, fetcher))
}

impl ConsumerLoop {
    fn start(config: Config, catalog: SqlCatalog) -> Result<Self, IngestError> {
        let settings = lakehouse::kafka::fetch_settings(&config.kafka).map_err(IngestError::Config)?;
        let security = settings.security.clone();
        // Wrong credentials stop the worker here with the broker's answer,
        // instead of a member that never gets data.
        if security.sasl.is_some() || security.tls.is_some() {
            match lakehouse::kafka::transport::check_brokers(&config.kafka.brokers, &security, &settings.client_id) {
                Ok(broker) => {
                    tracing::info!(%broker, protocol = security.protocol(), "broker connection authenticated")
                }
                Err(e) if e.is_auth() => return Err(IngestError::Auth(e.to_string())),
                Err(e) => tracing::warn!(error = %e, "no broker reachable yet; librdkafka keeps trying"),
            }
        }
        let router = Arc::new(Router::new(&config.bronze));
        let assignment = Arc::new(Mutex::new(Assignment::default()));
        let (consumer, fetcher) = join_group(&config, &assignment)?;
        let writer = schema::data_file_writer(catalog.file_io().clone(), config.bronze.target_file_size_bytes);
        let arrow_schema = Arc::new(
            iceberg::arrow::schema_to_arrow_schema(&schema::schema()).expect("the Bronze schema converts to Arrow"),
        );
        let watchdog = Watchdog::new(config.kafka.session_timeout, Instant::now());
        Ok(Self {
            consumer,
            fetcher,
            fetch_epoch: 0,
            router,
            committer: Committer::new(catalog),
            writer,
            arrow_schema,
            assignment,
            tables: HashMap::new(),
            summary: RunSummary::default(),
            batch: Batch::new(),
            epoch: 0,
            base: HashMap::new(),
            fetched: HashMap::new(),
            pending: Vec::new(),
            pending_retry: None,
            consumed: HashMap::new(),
            clock_us: 0,
            clock_uses: 0,
            topic_pattern: (!config.kafka.topic_pattern.is_empty())
                .then(|| regex::Regex::new(&config.kafka.topic_pattern))
                .transpose()
                .map_err(|e| IngestError::Config(format!("kafka.topic_pattern is not a valid regex: {e}")))?,
            commit_properties: HashMap::from([
                ("lakehouse.writer".to_string(), writer_id()),
                ("lakehouse.worker".to_string(), "bronze-ingestor".to_string()),
            ]),
            topic_ids: HashMap::new(),
            start_override: HashMap::new(),
            security,
            watchdog,
            config,
        })
    }

    /// Group events, rebalances, positions, then one wait on the fetcher;
    /// what it hands over goes into the in-flight batch.
    async fn fill_batch(&mut self, wait: Duration) -> Result<usize, IngestError> {
        // Group events (rebalances run inside this poll); librdkafka is
        // given no partitions to fetch, so no messages come from it.
        while let Some(polled) = self.consumer.poll(Duration::ZERO) {
            if let Err(e) = polled {
                metrics::counter!(names::CONSUME_ERRORS, "kind" => "poll").increment(1);
                tracing::warn!(error = %e, "consumer group error");
            }
        }
        self.sync_epoch();
        self.heal_membership()?;
        self.resolve_pending().await?;
        let mut added = 0;
        match self.fetcher.recv_timeout(wait) {
            None => {}
            Some(fetcher::Event::Fatal(m)) => return Err(IngestError::Fetch(m)),
            Some(fetcher::Event::Data(chunks)) => {
                let mut batch = std::mem::take(&mut self.batch);
                for chunk in &chunks {
                    if chunk.epoch == self.fetch_epoch {
                        match self.append_chunk(&mut batch, chunk) {
                            Ok(n) => added += n,
                            Err(e) => {
                                self.batch = batch;
                                return Err(e);
                            }
                        }
                    }
                }
                self.batch = batch;
            }
        }
        if added > 0 {
            self.batch.since.get_or_insert_with(Instant::now);
        }
        Ok(added)
    }

    /// Rejoins the group as a new member when this one has held no partition
    /// past the session timeout while some subscribed partition is owned by
    /// nobody (see [`crate::membership`]).
    fn heal_membership(&mut self) -> Result<(), IngestError> {
        let now = Instant::now();
        let holding = !self.assignment.lock().expect("assignment lock").partitions.is_empty();
        self.watchdog.observe(holding, now);
        if !self.watchdog.should_check(now) {
            return Ok(());
        }
        let group = self.config.kafka.group_id.clone();
        let verdict = self.group_ownership();
        let rejoin = match &verdict {
            Ownership::Complete => {
                tracing::info!(%group, "holding no partitions: every subscribed partition is owned by another member");
                false
            }
            Ownership::Unowned(tps) if tps.is_empty() => false,
            Ownership::Unreachable(why) => {
                tracing::warn!(%group, reason = %why, "holding no partitions; the cluster does not answer, not rejoining");
                false
            }
            Ownership::Unowned(tps) => {
                metrics::counter!(names::KAFKA_REJOINS, "reason" => "unowned").increment(1);
                tracing::warn!(
                    %group, unowned = ?tps, session_timeout_s = self.config.kafka.session_timeout.as_secs_f64(),
                    rejoins = self.watchdog.rejoins() + 1,
                    "holding no partitions past the session timeout while partitions are owned by nobody; \
                     leaving the group and joining again as a new member"
                );
                true
            }
            Ownership::Unknown(why) => {
                metrics::counter!(names::KAFKA_REJOINS, "reason" => "unknown").increment(1);
                tracing::warn!(
                    %group, reason = %why, rejoins = self.watchdog.rejoins() + 1,
                    "holding no partitions past the session timeout and the coordinator does not say who owns them; \
                     leaving the group and joining again as a new member"
                );
                true
            }
        };
        if rejoin {
            let (consumer, fetcher) = join_group(&self.config, &self.assignment)?;
            // The old fetch thread first (it holds the old consumer), then the
            // old member, which leaves the group as it closes.
            drop(std::mem::replace(&mut self.fetcher, fetcher));
            drop(std::mem::replace(&mut self.consumer, consumer));
            self.fetch_epoch += 1;
        }
        self.watchdog.checked(rejoin, Instant::now());
        Ok(())
    }

    /// Who owns the subscribed partitions, according to the group coordinator.
    fn group_ownership(&self) -> Ownership {
        let metadata = match self.consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(m) => m,
            // No broker answers: a new member would not fare better.
            Err(e) => return Ownership::Unreachable(format!("metadata: {e}")),
        };
        let mut subscribed = std::collections::BTreeSet::new();
        for topic in metadata.topics() {
            let name = topic.name();
            if self.config.kafka.topics.iter().any(|t| t == name)
                || self.topic_pattern.as_ref().is_some_and(|re| re.is_match(name))
            {
                subscribed.extend(topic.partitions().iter().map(|p| (name.to_string(), p.id())));
            }
        }
        if subscribed.is_empty() {
            return Ownership::Unowned(Vec::new()); // nothing to own yet: nothing to heal
        }
        let groups = match self.consumer.fetch_group_list(Some(&self.config.kafka.group_id), Duration::from_secs(5)) {
            Ok(g) => g,
            Err(e) => return Ownership::Unknown(format!("DescribeGroups: {e}")),
        };
        let Some(info) = groups.groups().iter().find(|g| g.name() == self.config.kafka.group_id) else {
            return Ownership::Unknown("the group is not listed".into());
        };
        membership::ownership(&subscribed, info.members().iter().map(|m| m.assignment().map(<[u8]>::to_vec)))
    }

    /// Adopts a new assignment made by a rebalance: the batch belongs to the old one.
    fn sync_epoch(&mut self) {
        let a = self.assignment.lock().expect("assignment lock");
        if a.epoch != self.epoch {
            if !self.batch.is_empty() {
                tracing::info!(rows = self.batch.rows, "rebalance: discarding uncommitted batch");
            }
            self.batch = Batch::new();
            self.epoch = a.epoch;
            self.pending = a.partitions.clone();
            drop(a);
            // Stop fetching the old assignment now; positions come next.
            self.base.clear();
            self.start_override.clear();
            self.position_fetcher();
            self.pending_retry = None;
        }
    }

    /// Reads the table positions of newly assigned partitions and starts
    /// fetching them. Without positions nothing is consumed: retried every
    /// second until the catalog answers (never positioned from Kafka). An
    /// unreadable position stops the worker.
    async fn resolve_pending(&mut self) -> Result<(), IngestError> {
        if self.pending.is_empty() || self.pending_retry.is_some_and(|t| t > Instant::now()) {
            return Ok(());
        }
        let positions = table_positions(
            self.committer.catalog(),
            &self.router,
            &self.config.kafka.group_id,
            self.config.bronze.retention_days,
            &self.pending,
        )
        .await;
        let positions = match positions {
            Ok(p) => self.check_topic_ids(p),
            Err(e) => Err(e),
        };
        match positions {
            Ok(Positions { found, refused, .. }) => {
                tracing::info!(partitions = ?found, "assigned; positioned at committed table offsets");
                self.base.extend(found);
                self.pending = refused;
                self.pending_retry = (!self.pending.is_empty()).then(|| Instant::now() + REFUSED_RECHECK);
                self.position_fetcher();
                Ok(())
            }
            Err(IngestError::Catalog(e)) => {
                tracing::error!(error = %e, "cannot read committed offsets from tables; not consuming; retrying in 1 s");
                self.pending_retry = Some(Instant::now() + Duration::from_secs(1));
                Ok(())
            }
            Err(IngestError::TopicIds(e)) => {
                tracing::error!(error = %e, "cannot read topic ids from the brokers; not consuming; retrying in 1 s");
                self.pending_retry = Some(Instant::now() + Duration::from_secs(1));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Compares each positioned topic's current id with the one recorded with
    /// its offsets. A topic deleted and created again has a new id, and its
    /// recorded offsets belong to the old log: its partitions move from `found`
    /// to `refused` (logged, `lakehouse_topic_id_mismatch` = 1) unless the
    /// operator accepted that exact id (`bronze.accept_recreated_topics`), in
    /// which case they are fetched from the new log start.
    fn check_topic_ids(&mut self, mut p: Positions) -> Result<Positions, IngestError> {
        let topics: std::collections::BTreeSet<String> = p.found.keys().map(|tp| tp.0.clone()).collect();
        if topics.is_empty() {
            return Ok(p);
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let answer = topic_id::topic_ids(
            &self.config.kafka.brokers,
            &self.security,
            "lakehouse",
            &names,
            Duration::from_secs(5),
        )
        .map_err(IngestError::TopicIds)?;
        let current = match answer {
            TopicIds::Known(ids) => ids,
            TopicIds::Unsupported => {
                tracing::warn!(
                    "the broker serves no Metadata v12: topic ids cannot be checked, so a topic deleted and \
                     re-created under the same name would not be noticed"
                );
                HashMap::new()
            }
        };
        for topic in topics {
            let recorded = p.recorded_ids.get(&topic).cloned().flatten();
            let now = current.get(&topic).map(ToString::to_string);
            let tps: Vec<Tp> = p.found.keys().filter(|tp| tp.0 == topic).cloned().collect();
            for tp in &tps {
                self.start_override.remove(tp);
            }
            if let (Some(r), Some(c)) = (&recorded, &now)
                && r != c
            {
                if self.config.bronze.accepts_recreated(&topic, c) {
                    tracing::warn!(
                        %topic, recorded_topic_id = %r, topic_id = %c,
                        "topic was re-created and bronze.accept_recreated_topics accepts its new id: \
                         consuming it from its log start"
                    );
                    for tp in &tps {
                        self.start_override.insert(tp.clone(), None);
                    }
                } else {
                    metrics::gauge!(names::TOPIC_ID_MISMATCH, "topic" => topic.clone()).set(1.0);
                    tracing::error!(
                        %topic, recorded_topic_id = %r, topic_id = %c, partitions = ?tps,
                        "not consuming this topic: it was deleted and created again (its topic id changed), and \
                         the table's offsets belong to the old topic. To read the new topic from its log start, \
                         add \"{topic}:{c}\" to bronze.accept_recreated_topics and restart"
                    );
                    for tp in tps {
                        p.found.remove(&tp);
                        p.refused.push(tp);
                    }
                    continue;
                }
            }
            metrics::gauge!(names::TOPIC_ID_MISMATCH, "topic" => topic.clone()).set(0.0);
            self.topic_ids.insert(topic, TopicIdState { recorded, current: now });
        }
        Ok(p)
    }

    /// Points the fetcher at `base` under a new epoch; what was fetched before no
    /// longer counts for the idle check.
    fn position_fetcher(&mut self) {
        self.fetch_epoch += 1;
        self.fetched.clear();
        let starts = self
            .base
            .iter()
            .map(|(tp, next)| fetcher::Start {
                topic: tp.0.clone(),
                partition: tp.1,
                offset: self.start_override.get(tp).copied().unwrap_or(*next),
            })
            .collect();
        self.fetcher.assign(self.fetch_epoch, starts);
    }

    /// Appends the records of one partition's fetched batches; returns how many.
    fn append_chunk(&mut self, batch: &mut Batch, chunk: &Chunk) -> Result<usize, IngestError> {
        let topic: &str = &chunk.topic;
        let tp: Tp = (topic.to_string(), chunk.partition);
        let Some(&committed) = self.base.get(&tp) else {
            return Ok(0); // not (any longer) ours
        };
        if chunk.high_watermark >= 0 {
            let lag = (chunk.high_watermark - committed.unwrap_or(0)).max(0) as f64;
            metrics::gauge!(names::CONSUMER_LAG, "topic" => tp.0.clone(), "partition" => tp.1.to_string()).set(lag);
        }
        let seen = self.fetched.entry(tp.clone()).or_default();
        seen.end = seen.end.max(chunk.next_offset);
        let route = self.router.route(topic);
        if chunk.batches.is_empty() {
            // Only markers, aborted data or empty batches: a partition already in
            // this batch moves past them with it (they never become rows).
            if let Some(at) = batch.tables.get_mut(&route.table).and_then(|tb| tb.advanced.get_mut(&tp)) {
                *at = (*at).max(chunk.next_offset);
            }
            return Ok(0);
        }
        let tb = batch.tables.entry(route.table.clone()).or_insert_with(|| TableBatch {
            days: BTreeMap::new(),
            advanced: Offsets::new(),
            newest_timestamp_ms: None,
            rows: 0,
        });
        // Dedupe against what this batch already holds of the partition.
        let mut next = tb.advanced.get(&tp).copied().unwrap_or(chunk.from_offset).max(chunk.from_offset);
        let (mut rows, mut bytes, mut kv_bytes, mut decode_errors) = (0usize, 0usize, 0u64, 0u64);
        let mut newest = tb.newest_timestamp_ms;
        for record in chunk.records() {
            let r = record.map_err(|e| {
                IngestError::Fetch(format!(
                    "corrupt record batch in {topic}/{} after offset {next}: {e}",
                    chunk.partition
                ))
            })?;
            if r.offset < next {
                continue;
            }
            next = r.offset + 1;
            // The wall clock is read once per 256 messages (≈ every few ms
            // under load): ingestion_timestamp is the consume time to that precision.
            if self.clock_uses == 0 {
                self.clock_us = chrono::Utc::now().timestamp_micros();
            }
            self.clock_uses = (self.clock_uses + 1) % 256;
            let ingestion_us = self.clock_us;
            let day = ingestion_us.div_euclid(86_400_000_000) as i32;
            let headers_json = if r.has_headers() {
                let h = r.headers().map_err(|e| {
                    IngestError::Fetch(format!(
                        "corrupt headers in {topic}/{} at offset {}: {e}",
                        chunk.partition, r.offset
                    ))
                })?;
                headers_json(h.iter().map(|(k, v)| (k.as_ref(), *v)))
            } else {
                None
            };
            let msg = Message {
                topic,
                partition: chunk.partition,
                offset: r.offset,
                timestamp_ms: r.timestamp_ms,
                key: r.key,
                value: r.value,
                headers_json,
            };
            let schema = &self.arrow_schema;
            let (builder, chunks) = tb.days.entry(day).or_insert_with(|| {
                (RowsBuilder::with_capacity(schema.clone(), CHUNK_ROWS, CHUNK_ROWS * 512), Vec::new())
            });
            let before = builder.bytes();
            let appended = builder.append(&msg, route.format, &route.source_system, ingestion_us);
            bytes += builder.bytes() - before;
            if builder.rows() >= CHUNK_ROWS {
                let value_bytes = builder.bytes();
                chunks.push(builder.finish());
                *builder = RowsBuilder::with_capacity(schema.clone(), CHUNK_ROWS, value_bytes + value_bytes / 8);
            }
            if appended.decode_error {
                decode_errors += 1;
            }
            if let Some(ts) = r.timestamp_ms {
                newest = Some(newest.map_or(ts, |t| t.max(ts)));
            }
            kv_bytes += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
            rows += 1;
        }
        if rows == 0 {
            // Batches without a usable record (the empty batches a log cleaner
            // keeps for idempotent producers, records delivered before): no
            // table entry is made for them, so a flush never meets an empty one.
            match tb.advanced.get_mut(&tp) {
                Some(at) => *at = (*at).max(chunk.next_offset),
                None if tb.rows == 0 => {
                    batch.tables.remove(&route.table);
                }
                None => {}
            }
            return Ok(0);
        }
        // Data up to the last record (markers, aborted data and empty batches
        // after it move `next_offset` only).
        if let Some(seen) = self.fetched.get_mut(&tp) {
            seen.data_end = seen.data_end.max(next);
        }
        // The position moves past everything fetched, not just the last record.
        tb.advanced.insert(tp, next.max(chunk.next_offset));
        tb.rows += rows;
        tb.newest_timestamp_ms = newest;
        batch.rows += rows;
        batch.bytes += bytes;
        if decode_errors > 0 {
            self.summary.decode_errors += decode_errors;
            metrics::counter!(names::DECODE_ERRORS, "topic" => topic.to_string()).increment(decode_errors);
        }
        let counts = self.consumed.entry(topic.to_string()).or_default();
        counts.0 += rows as u64;
        counts.1 += kv_bytes;
        self.summary.records += rows as u64;
        self.summary.first_record.get_or_insert_with(Instant::now);
        Ok(rows)
    }

    /// Publishes the per-topic consume counters (kept out of the per-message path).
    fn publish_consumed(&mut self) {
        for (topic, (records, bytes)) in self.consumed.drain() {
            metrics::counter!(names::RECORDS_CONSUMED, "topic" => topic.clone()).increment(records);
            metrics::counter!(names::BYTES_CONSUMED, "topic" => topic).increment(bytes);
        }
    }

    /// Writes and commits every table of the batch; the batch is empty afterwards.
    async fn commit_batch(&mut self) -> Result<Vec<TableCommit>, IngestError> {
        self.publish_consumed();
        let tables = std::mem::take(&mut self.batch).tables;
        let mut done_tables = Vec::with_capacity(tables.len());
        let group = self.config.kafka.group_id.clone();
        let mut committed_tpl = TopicPartitionList::new();
        for (name, tb) in tables {
            if tb.rows == 0 {
                // Never reached (entries are made for rows only), and never a
                // commit error that would fail every restart if it were.
                debug_assert!(false, "empty table entry for {name}");
                continue;
            }
            let started = Instant::now();
            let head = match self.tables.get(&name) {
                Some(t) => t.clone(),
                None => {
                    load_or_create(
                        self.committer.catalog(),
                        &name,
                        &schema::table_spec(self.config.bronze.retention_days),
                    )
                    .await?
                }
            };
            let mut files = Vec::new();
            for (day, (mut builder, mut chunks)) in tb.days {
                if builder.rows() > 0 {
                    chunks.push(builder.finish());
                }
                let partition = Struct::from_iter([Some(Literal::date(day))]);
                let written = self
                    .writer
                    .write(&head.metadata, partition, &chunks)
                    .await
                    .map_err(|source| IngestError::Write { table: name.clone(), source })?;
                files.extend(written);
            }
            let write_secs = started.elapsed().as_secs_f64();
            metrics::histogram!(names::WRITE_DURATION, "layer" => LAYER, "operation" => "write_files")
                .record(write_secs);

            let mut expected: BTreeMap<Tp, Option<i64>> = BTreeMap::new();
            for tp in tb.advanced.keys() {
                expected.insert(tp.clone(), self.base.get(tp).copied().flatten());
            }
            let mut expected_ids: BTreeMap<String, Option<String>> = BTreeMap::new();
            let mut current_ids = lakehouse::table::position::TopicIds::new();
            for (topic, _) in tb.advanced.keys() {
                if let Some(state) = self.topic_ids.get(topic) {
                    expected_ids.insert(topic.clone(), state.recorded.clone());
                    if let Some(id) = &state.current {
                        current_ids.insert(topic.clone(), id.clone());
                    }
                }
            }
            let group_ref = group.as_str();
            let extra = &self.commit_properties;
            let advanced = &tb.advanced;
            let expected = &expected;
            let (expected_ids, ids) = (&expected_ids, &current_ids);
            let check = move |head: &iceberg::spec::TableMetadata| {
                let mut props = fence_offsets(head, group_ref, expected, advanced, extra)?;
                if !ids.is_empty() {
                    let (key, value) = fence_topic_ids(head, group_ref, expected_ids, ids)?;
                    props.insert(key, value);
                }
                Ok(props)
            };
            let commit_started = Instant::now();
            match self.committer.commit(&head, Operation::Append { files }, &check).await {
                Ok(done) => {
                    metrics::histogram!(names::WRITE_DURATION, "layer" => LAYER, "operation" => "commit")
                        .record(commit_started.elapsed().as_secs_f64());
                    for (topic, id) in &current_ids {
                        if let Some(state) = self.topic_ids.get_mut(topic) {
                            state.recorded = Some(id.clone());
                        }
                    }
                    for (tp, next) in &tb.advanced {
                        self.start_override.remove(tp);
                        self.base.insert(tp.clone(), Some(*next));
                        let _ = committed_tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(*next));
                    }
                    self.summary.commits += 1;
                    if let Some(ts) = tb.newest_timestamp_ms
                        && self.summary.delays.len() < 1_000_000
                    {
                        self.summary.delays.push((chrono::Utc::now().timestamp_millis() - ts).max(0) as u64);
                    }
                    if let Some(first) = self.summary.first_record {
                        self.summary.busy_seconds = first.elapsed().as_secs_f64();
                    }
                    self.tables.insert(name.clone(), done.table.clone());
                    done_tables.push(TableCommit {
                        table: done.table,
                        snapshot_id: done.snapshot_id,
                        rows: tb.rows as u64,
                        conflicts: done.conflicts,
                        duration: started.elapsed(),
                        newest_event_ms: tb.newest_timestamp_ms,
                    });
                }
                Err(CommitError::Fenced { table, reason }) => {
                    self.summary.fenced += 1;
                    metrics::counter!(names::COMMITS_FENCED, "table" => table.clone()).increment(1);
                    tracing::warn!(%table, %reason, "fenced: another writer is past this batch; discarding it and re-seeking");
                    self.tables.remove(&name);
                    self.reseek().await?;
                    // The rest of this batch was read from the same stale positions.
                    return Ok(done_tables);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if committed_tpl.count() > 0 {
            // Group offsets are for lag monitoring only; the table is the truth.
            if let Err(e) = self.consumer.commit(&committed_tpl, CommitMode::Async) {
                tracing::debug!(error = %e, "group offset commit failed (monitoring only)");
            }
        }
        Ok(done_tables)
    }

    /// Re-positions every assigned partition at its table's committed offset.
    /// If that is impossible right now (the member was just kicked out of the
    /// group, the catalog is unreachable), nothing is consumed until the next
    /// assignment, which positions from the tables again.
    async fn reseek(&mut self) -> Result<(), IngestError> {
        let tps: Vec<Tp> = self.base.keys().cloned().collect();
        let positions = table_positions(
            self.committer.catalog(),
            &self.router,
            &self.config.kafka.group_id,
            self.config.bronze.retention_days,
            &tps,
        )
        .await;
        self.start_override.clear();
        let positions = match positions {
            Ok(p) => self.check_topic_ids(p),
            Err(e) => Err(e),
        };
        match positions {
            Ok(Positions { found, refused, .. }) => {
                self.base = found;
                self.pending = refused;
                self.pending_retry = (!self.pending.is_empty()).then(|| Instant::now() + REFUSED_RECHECK);
            }
            Err(e @ (IngestError::Catalog(_) | IngestError::TopicIds(_))) => {
                tracing::warn!(error = %e, "cannot re-seek after a fence; consuming nothing until the tables answer");
                self.base.clear();
                self.pending = tps;
                self.pending_retry = Some(Instant::now() + Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
        self.position_fetcher();
        Ok(())
    }

    /// Whether every partition of every subscribed topic is committed up to
    /// its high watermark, in the tables (not just this member's assignment:
    /// partitions held by a dead member count too).
    async fn is_caught_up(&self) -> Result<bool, IngestError> {
        if !self.start_override.is_empty() {
            return Ok(false); // a re-created topic's new log is not committed yet
        }
        let metadata = self.consumer.fetch_metadata(None, Duration::from_secs(5))?;
        let mut by_table: BTreeMap<TableName, Vec<(String, i32)>> = BTreeMap::new();
        for topic in metadata.topics() {
            let name = topic.name();
            let wanted = self.config.kafka.topics.iter().any(|t| t == name)
                || self.topic_pattern.as_ref().is_some_and(|re| re.is_match(name));
            if wanted {
                let table = self.router.route(name).table.clone();
                by_table
                    .entry(table)
                    .or_default()
                    .extend(topic.partitions().iter().map(|p| (name.to_string(), p.id())));
            }
        }
        if by_table.is_empty() {
            return Ok(false);
        }
        let catalog = self.committer.catalog().clone();
        let group = self.config.kafka.group_id.clone();
        for (table, tps) in by_table {
            let Some(t) = catalog.load_table(&table).await? else { return Ok(false) };
            let committed = committed_offsets(&t.metadata, &group)?;
            for (topic, partition) in tps {
                let (low, high) = self.consumer.fetch_watermarks(&topic, partition, Duration::from_secs(5))?;
                let tp = (topic, partition);
                let at = committed.get(&tp).copied().unwrap_or(low.max(0));
                if !partition_caught_up(at, high, self.fetched.get(&tp).copied()) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// `<host>-<pid>-<random>`: which process made a commit.
fn writer_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let (a, _) = uuid::Uuid::new_v4().as_u64_pair();
    format!("{host}-{}-{:08x}", std::process::id(), a as u32)
}

impl Stage for ConsumerLoop {
    type Error = IngestError;

    async fn fill(&mut self, wait: Duration) -> Result<usize, IngestError> {
        self.fill_batch(wait).await
    }

    fn pending(&self) -> Pending {
        Pending { records: self.batch.rows, bytes: self.batch.bytes, since: self.batch.since }
    }

    async fn commit(&mut self) -> Result<Vec<TableCommit>, IngestError> {
        self.commit_batch().await
    }

    async fn caught_up(&mut self) -> Result<bool, IngestError> {
        self.is_caught_up().await
    }
}

#[cfg(test)]
mod tests {
    use super::{Fetched, partition_caught_up};

    #[test]
    fn idle_check_passes_trailing_markers_only() {
        // Committed to the end, whatever was fetched.
        assert!(partition_caught_up(10, 10, None));
        assert!(partition_caught_up(10, 10, Some(Fetched { end: 3, data_end: 3 })));
        // Below the end and nothing fetched (another member's partition): not idle.
        assert!(!partition_caught_up(9, 10, None));
        // Data up to 9 committed, offset 9 is a commit marker fetched past: idle.
        assert!(partition_caught_up(9, 10, Some(Fetched { end: 10, data_end: 9 })));
        // Only markers fetched since positioning (no data at all): idle.
        assert!(partition_caught_up(9, 10, Some(Fetched { end: 10, data_end: i64::MIN })));
        // Fetched data not committed yet: not idle.
        assert!(!partition_caught_up(9, 10, Some(Fetched { end: 10, data_end: 10 })));
        // Not fetched up to the end yet: not idle.
        assert!(!partition_caught_up(8, 10, Some(Fetched { end: 9, data_end: 8 })));
    }
}
