//! Helpers of the end-to-end tests. They talk to the real broker and catalogs
//! that `tests/run.sh` starts; run outside it they fail with a message saying
//! so (never a silent skip).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use futures::TryStreamExt;
use lakehouse::catalog::{SqlCatalog, TableName};
use lakehouse::config::CatalogConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the integration tests through tests/run.sh, which starts the broker and catalogs"
        )
    })
}

/// The broker started by tests/run.sh.
pub fn broker() -> String {
    env("LAKEHOUSE_TEST_BROKER")
}

/// Directory of the release binaries.
pub fn bin(name: &str) -> PathBuf {
    Path::new(&env("LAKEHOUSE_BIN_DIR")).join(name)
}

/// A name unique to this test run (topics are never deleted: tansu's SQL
/// engines delete all topics when one is deleted).
pub fn unique(prefix: &str) -> String {
    let (a, _) = uuid::Uuid::new_v4().as_u64_pair();
    format!("{prefix}{:08x}", a as u32)
}

/// A lake in a temp dir: SQLite catalog (or PostgreSQL URL) + warehouse.
pub struct Lake {
    pub dir: tempfile::TempDir,
    pub catalog: CatalogConfig,
}

impl Lake {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = CatalogConfig {
            name: "lakehouse".into(),
            url: format!("sqlite://{}", dir.path().join("catalog.db").display()),
            warehouse: dir.path().join("warehouse").display().to_string(),
        };
        Self { dir, catalog }
    }

    pub fn postgres() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = CatalogConfig {
            // A catalog name per test keeps tests in one database apart.
            name: unique("lakehouse_"),
            url: env("LAKEHOUSE_TEST_PG_URL"),
            warehouse: dir.path().join("warehouse").display().to_string(),
        };
        Self { dir, catalog }
    }

    pub async fn connect(&self) -> SqlCatalog {
        SqlCatalog::connect(&self.catalog).await.unwrap()
    }

    /// SQLAlchemy URL for pyiceberg.
    pub fn sqlalchemy_url(&self) -> String {
        if let Some(path) = self.catalog.url.strip_prefix("sqlite://") {
            format!("sqlite:///{path}")
        } else {
            self.catalog.url.replacen("postgres://", "postgresql+psycopg2://", 1)
        }
    }

    /// Writes a worker config for `topics` / `pattern` and returns its path. The
    /// consumer group is `<group>-<random>`: a test never meets members another test
    /// or an earlier run on the same broker left in a group of the same name.
    pub fn config(&self, group: &str, topics: &[String], pattern: Option<&str>, extra: &str) -> PathBuf {
        self.config_on(&broker(), group, topics, pattern, extra)
    }

    /// [`Lake::config`] for another broker (Apache Kafka, see `tests/tests/apache_kafka.rs`).
    pub fn config_on(
        &self,
        broker: &str,
        group: &str,
        topics: &[String],
        pattern: Option<&str>,
        extra: &str,
    ) -> PathBuf {
        let path = self.dir.path().join(format!("{group}.toml"));
        let group = unique(&format!("{group}-"));
        let topics_toml: Vec<String> = topics.iter().map(|t| format!("{t:?}")).collect();
        let text = format!(
            "[catalog]\nname = {:?}\nurl = {:?}\nwarehouse = {:?}\n\n[kafka]\nbrokers = {:?}\ngroup_id = {:?}\ntopics = [{}]\ntopic_pattern = {:?}\nsession_timeout = \"6s\"\n\n[bronze]\ncommit_interval = \"1s\"\n\n[telemetry]\nlisten = \"\"\n{extra}\n",
            self.catalog.name,
            self.catalog.url,
            self.catalog.warehouse,
            broker,
            &group,
            topics_toml.join(", "),
            pattern.unwrap_or(""),
        );
        // LAKEHOUSE_TEST_KAFKA_DEBUG=cgrp,metadata,... turns on librdkafka's debug
        // log in every ingestor a test starts (group-join problems).
        let text = match std::env::var("LAKEHOUSE_TEST_KAFKA_DEBUG") {
            Ok(contexts) if !contexts.is_empty() => format!("{text}\n[kafka.properties]\ndebug = {contexts:?}\n"),
            _ => text,
        };
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&broker(), topic, partitions).await
}

pub async fn create_topic_on(broker: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = lakehouse_generator::producer_config(broker).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let r = admin.create_topics([&NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &opts).await.unwrap();
    for x in r {
        x.unwrap();
    }
}

/// Produces `(key, value)` messages in order to one partition of `topic`.
pub async fn produce(topic: &str, partition: i32, messages: &[(Option<Vec<u8>>, Option<Vec<u8>>)]) {
    let producer: FutureProducer = lakehouse_generator::producer_config(&broker()).create().unwrap();
    for (k, v) in messages {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).partition(partition);
        if let Some(k) = k {
            r = r.key(k.as_slice());
        }
        if let Some(v) = v {
            r = r.payload(v.as_slice());
        }
        producer.send(r, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
    }
}

/// Runs `bronze-ingestor --config <config> run --exit-when-idle <idle>` to completion.
/// Runs silver-refiner on `config` until it is idle for 1 s (its log appended
/// to `log`); fails the test if it fails.
pub fn refine_until_idle(config: &Path, log: &Path) {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let status = Command::new(bin("silver-refiner"))
        .arg("--config")
        .arg(config)
        .args(["run", "--exit-when-idle", "1s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .status()
        .unwrap();
    assert!(status.success(), "silver-refiner failed; log:\n{}", std::fs::read_to_string(log).unwrap());
}

pub fn ingest_until_idle(config: &Path, idle: &str) -> std::process::Output {
    // Never hang the suite: a run that does not finish in 3 minutes is killed
    // and reported with its log.
    let log = config.with_extension(format!("{}.log", unique("run-")));
    let mut child = spawn_ingestor(config, &log, Some(idle));
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bronze-ingestor did not reach idle in 180 s; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read(&log).unwrap_or_default();
    assert!(status.success(), "bronze-ingestor failed: {}", String::from_utf8_lossy(&stderr));
    std::process::Output { status, stdout: Vec::new(), stderr }
}

/// Starts the ingestor in the background (stderr to `log`).
/// Waits out the session of an ingestor that was just killed (`session_timeout` in
/// [`Lake::config`] is 6 s) before another member of its group joins.
///
/// tansu 0.6.0's group coordinator does not do what Apache Kafka does when a member
/// joins while a dead member's session is still live: it answers the newcomer with the
/// existing generation, the dead member as leader and an empty assignment, and no
/// rebalance follows, so the newcomer idles with no partitions (seen with librdkafka's
/// `cgrp` debug log: `JoinGroup response: GenerationId 1, LeaderId <dead member>`,
/// `SyncGroup response: Success (0 bytes of MemberState data)`, then plain heartbeats).
/// Joining after the session has expired gets a proper assignment (8 of 8 runs against 2
/// of 8 without the wait). Apache Kafka needs no such wait; this is about the test broker.
pub fn wait_out_dead_members() {
    std::thread::sleep(Duration::from_secs(8));
}

/// A running ingestor; killed (SIGKILL) when dropped, so a failing test leaves
/// no process behind.
pub struct Ingestor(pub Child);

impl std::ops::Deref for Ingestor {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Ingestor {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Ingestor {
    fn drop(&mut self) {
        // Ok without a signal once the child has been waited for.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn_ingestor(config: &Path, log: &Path, idle: Option<&str>) -> Ingestor {
    let mut c = Command::new(bin("bronze-ingestor"));
    c.arg("--config").arg(config).arg("run");
    if let Some(idle) = idle {
        c.args(["--exit-when-idle", idle]);
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Ingestor(c.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

/// Every row of a table at its current snapshot.
pub async fn scan_all(catalog: &SqlCatalog, table: &TableName) -> Vec<RecordBatch> {
    let t = catalog.require_table(table).await.unwrap();
    if t.metadata.current_snapshot_id().is_none() {
        return vec![];
    }
    let table = t.to_table(catalog.file_io()).unwrap();
    table.scan().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap()
}

/// One Bronze row, the columns the tests look at.
#[derive(Debug, Clone, PartialEq)]
pub struct BronzeRow {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub op: Option<String>,
    pub event_kind: String,
    pub decode_error: Option<String>,
    pub record_hash: Option<String>,
    pub source_file: String,
}

fn str_at(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = b.column_by_name(name).unwrap();
    (!c.is_null(i)).then(|| c.as_string::<i32>().value(i).to_string())
}

pub fn bronze_rows(batches: &[RecordBatch]) -> Vec<BronzeRow> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            out.push(BronzeRow {
                topic: str_at(b, "kafka_topic", i).unwrap(),
                partition: b.column_by_name("kafka_partition").unwrap().as_primitive::<Int32Type>().value(i),
                offset: b.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>().value(i),
                key: str_at(b, "key", i),
                value: str_at(b, "value", i),
                op: str_at(b, "op", i),
                event_kind: str_at(b, "event_kind", i).unwrap(),
                decode_error: str_at(b, "decode_error", i),
                record_hash: str_at(b, "record_hash", i),
                source_file: str_at(b, "source_file", i).unwrap(),
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    out
}

/// Rows of every Bronze table of the lake.
pub async fn all_bronze_rows(catalog: &SqlCatalog) -> BTreeMap<TableName, Vec<BronzeRow>> {
    let mut out = BTreeMap::new();
    for t in catalog.list_tables(Some("bronze")).await.unwrap() {
        let rows = bronze_rows(&scan_all(catalog, &t).await);
        out.insert(t, rows);
    }
    out
}

/// Asserts each (topic, partition, offset) appears exactly once and returns the count per topic.
pub fn assert_exactly_once(rows: &[BronzeRow]) -> BTreeMap<String, u64> {
    let mut seen = std::collections::HashSet::new();
    let mut per_topic = BTreeMap::new();
    for r in rows {
        assert!(seen.insert((r.topic.clone(), r.partition, r.offset)), "duplicate row for {}", r.source_file);
        *per_topic.entry(r.topic.clone()).or_insert(0) += 1;
    }
    per_topic
}

/// Runs `lakehouse generate` for `events` events under a unique topic prefix.
pub fn generate(prefix: &str, events: u64, seed: u64, truth: &Path, extra: &[&str]) -> lakehouse_generator::Truth {
    generate_on(&broker(), prefix, events, seed, truth, extra)
}

/// [`generate`] into another broker.
pub fn generate_on(
    broker: &str,
    prefix: &str,
    events: u64,
    seed: u64,
    truth: &Path,
    extra: &[&str],
) -> lakehouse_generator::Truth {
    let out = Command::new(bin("lakehouse"))
        .args(["generate", "--brokers", broker, "--topic-prefix", prefix, "--quiet"])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .arg("--truth")
        .arg(truth)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "generate failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap()
}

/// Checks Bronze against the generator's ground truth: per topic, message
/// count and the MD5 checksum of the values.
pub fn assert_matches_truth(rows: &[BronzeRow], truth: &lakehouse_generator::Truth) {
    use md5::{Digest, Md5};
    let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in rows {
        let e = sums.entry(r.topic.clone()).or_insert((0, 0));
        e.0 += 1;
        if let Some(v) = &r.value {
            let hash = r.record_hash.as_deref().unwrap();
            assert_eq!(hash, format!("{:x}", Md5::digest(v.as_bytes())), "record_hash of {}", r.source_file);
            e.1 = lakehouse_generator::md5_sum64(e.1, v.as_bytes());
        }
    }
    for (topic, t) in &truth.topics {
        let (n, sum) = sums.get(topic).copied().unwrap_or((0, 0));
        assert_eq!(n, t.messages, "message count of {topic}");
        assert_eq!(sum, t.value_md5_sum64, "value checksum of {topic}");
    }
}

/// Bronze rows of `from..to` offsets of `topic` partition 0, each value `{"n": offset}`.
pub fn json_rows(topic: &str, from: i64, to: i64) -> RecordBatch {
    let arrow =
        std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(&bronze_ingestor::schema::schema()).unwrap());
    let mut b = bronze_ingestor::rows::RowsBuilder::new(arrow);
    for offset in from..to {
        let value = format!("{{\"n\":{offset}}}");
        let msg = bronze_ingestor::rows::Message {
            topic,
            partition: 0,
            offset,
            timestamp_ms: None,
            key: None,
            value: Some(value.as_bytes()),
            headers_json: None,
        };
        b.append(&msg, lakehouse::config::ValueFormat::Json, "test", 1_764_000_000_000_000);
    }
    b.finish()
}

/// Reads a Silver table with pyiceberg and DuckDB (`tests/interop/silver_read.py`):
/// its rows sorted by `key`, DuckDB's count and distinct keys, partitions and delete files.
pub fn pyiceberg_silver(lake: &Lake, table: &str, key: &str) -> serde_json::Value {
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("LAKEHOUSE_TEST_PYTHON (set by tests/run.sh)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/silver_read.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--uri", &lake.sqlalchemy_url(), "--name", &lake.catalog.name, "--table", table, "--key", key])
        .output()
        .unwrap();
    assert!(out.status.success(), "pyiceberg read of {table} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.trim_ascii()).unwrap()
}

/// Days since 1970-01-01 of an ISO `YYYY-MM-DD` date (as pyiceberg prints dates).
pub fn iso_days(date: &str) -> i64 {
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().unwrap());
    let (y, m, d) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    // Days from civil (proleptic Gregorian).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
