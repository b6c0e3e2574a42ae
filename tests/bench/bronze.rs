//! Helpers of `tests/bench.sh bronze` (figures, not tests):
//!
//! - `drain`: what a bare rdkafka consumer drains from the same topics;
//! - `fetch`: what the native fetcher (bronze-ingestor's data path) drains
//!   from the same topics, per CPU-second beside `drain`'s (`vs_rdkafka`);
//! - `limit`: the in-process limit — decode + Arrow + Parquet encode of the
//!   same events with no Kafka and no commit.
//!
//! Each prints one JSON object on stdout.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bronze_ingestor::rows::{Message, RowsBuilder};
use bronze_ingestor::schema;
use iceberg::spec::{Literal, Struct};
use lakehouse::config::ValueFormat;
use lakehouse::kafka::RdCluster;
use lakehouse::kafka::fetcher::{Event, FetchSettings, Fetcher, Start};
use lakehouse::table::create::load_or_create;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;

/// User + system CPU seconds of this process so far (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn consumer(brokers: &str, group: &str, pattern: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("queued.max.messages.kbytes", "32768")
        .create()
        .unwrap();
    c.subscribe(&[pattern]).unwrap();
    c
}

struct Owned {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| -> String {
        let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("missing {name}"));
        args[i + 1].clone()
    };
    let brokers = get("--brokers");
    let pattern = get("--pattern");
    let events: u64 = get("--events").parse().unwrap();
    match args.get(1).map(String::as_str) {
        Some("drain") => {
            let c = consumer(&brokers, &format!("bench-drain-{}", std::process::id()), &pattern);
            let (mut n, mut bytes) = (0u64, 0u64);
            let mut started = None;
            let deadline = Instant::now() + Duration::from_secs(600);
            let cpu0 = cpu_seconds();
            while n < events && Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    started.get_or_insert_with(Instant::now);
                    n += 1;
                    bytes += (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
                }
            }
            let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
            println!(
                "{}",
                serde_json::json!({"events": n, "bytes": bytes, "seconds": secs, "cpu_seconds": cpu_seconds() - cpu0})
            );
        }
        Some("limit") => {
            let out = get("--out");
            let c = consumer(&brokers, &format!("bench-limit-{}", std::process::id()), &pattern);
            let mut msgs = Vec::with_capacity(events as usize);
            let deadline = Instant::now() + Duration::from_secs(600);
            while (msgs.len() as u64) < events && Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    msgs.push(Owned {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp_ms: m.timestamp().to_millis(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                }
            }
            drop(c);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let catalog = lakehouse::catalog::SqlCatalog::connect(&lakehouse::config::CatalogConfig {
                    name: "bench".into(),
                    url: format!("sqlite://{out}/catalog.db"),
                    warehouse: format!("{out}/warehouse"),
                })
                .await
                .unwrap();
                let table =
                    load_or_create(&catalog, &"bronze.limit".parse().unwrap(), &schema::table_spec(90)).await.unwrap();
                let writer = schema::data_file_writer(catalog.file_io().clone(), 128 << 20);
                let arrow = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema::schema()).unwrap());
                let bytes: usize = msgs
                    .iter()
                    .map(|m| m.key.as_ref().map_or(0, Vec::len) + m.value.as_ref().map_or(0, Vec::len))
                    .sum();
                let cpu0 = cpu_seconds();
                let started = Instant::now();
                // Same shape as the ingestor: 64k-row chunks, one write per ~100k-event batch.
                let mut files = 0;
                for chunk in msgs.chunks(100_000) {
                    let mut b = RowsBuilder::with_capacity(arrow.clone(), 65_536, 65_536 * 512);
                    let mut batches = Vec::new();
                    for m in chunk {
                        b.append(
                            &Message {
                                topic: &m.topic,
                                partition: m.partition,
                                offset: m.offset,
                                timestamp_ms: m.timestamp_ms,
                                key: m.key.as_deref(),
                                value: m.value.as_deref(),
                                headers_json: None,
                            },
                            ValueFormat::Debezium,
                            "bench",
                            1_764_000_000_000_000,
                        );
                        if b.rows() >= 65_536 {
                            batches.push(b.finish());
                            b = RowsBuilder::with_capacity(arrow.clone(), 65_536, 65_536 * 512);
                        }
                    }
                    batches.push(b.finish());
                    let part = Struct::from_iter([Some(Literal::date(20_419))]);
                    files += writer.write(&table.metadata, part, &batches).await.unwrap().len();
                }
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{}",
                    serde_json::json!({"events": msgs.len(), "bytes": bytes, "seconds": secs,
                                       "cpu_seconds": cpu_seconds() - cpu0, "files": files})
                );
            });
        }
        Some("fetch") => {
            // The native fetcher (what bronze-ingestor reads with) draining every
            // partition of the topics from offset 0, records walked as the
            // ingestor walks them; librdkafka serves only the metadata.
            let topics = get("--topics");
            let meta: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
            let mut starts = Vec::new();
            for t in topics.split(',') {
                let md = meta.fetch_metadata(Some(t), Duration::from_secs(10)).unwrap();
                for p in md.topics()[0].partitions() {
                    starts.push(Start { topic: t.to_string(), partition: p.id(), offset: Some(0) });
                }
            }
            let settings = FetchSettings { max_wait_ms: 10, ..Default::default() };
            let cpu0 = cpu_seconds();
            let fetcher = Fetcher::spawn(settings, std::sync::Arc::new(RdCluster(std::sync::Arc::new(meta)))).unwrap();
            fetcher.assign(1, starts);
            let (mut n, mut bytes) = (0u64, 0u64);
            let mut started = None;
            while n < events {
                match fetcher.recv_timeout(Duration::from_secs(30)) {
                    None => panic!("the fetcher read nothing for 30 s after {n} of {events} records"),
                    Some(Event::Fatal(m)) => panic!("fetcher: {m}"),
                    Some(Event::Data(chunks)) => {
                        started.get_or_insert_with(Instant::now);
                        for c in chunks {
                            for r in c.records() {
                                let r = r.unwrap();
                                n += 1;
                                bytes += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
                            }
                        }
                    }
                }
            }
            let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
            let cpu = cpu_seconds() - cpu0;
            drop(fetcher);
            println!("{}", serde_json::json!({"events": n, "bytes": bytes, "seconds": secs, "cpu_seconds": cpu}));
        }
        _ => {
            eprintln!(
                "usage: bench-bronze drain|limit|fetch --brokers B --pattern P --events N [--out DIR] [--topics T,…]"
            );
            std::process::exit(2);
        }
    }
}
