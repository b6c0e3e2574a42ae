//! Producing the generated stream to Kafka, with a progress bar and a
//! ground-truth file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use serde::Serialize;

use super::model::{Delivery, Event, Faults, Generator, Op, TABLES, with_schema};

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    #[arg(long, env = "LAKEHOUSE_KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topics are `<prefix>.public.<table>` (Debezium's naming).
    #[arg(long, default_value = "commerce")]
    pub topic_prefix: String,
    /// Number of messages to produce (tombstones included).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Messages per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Use the JSON converter's schema envelope (`{"schema","payload"}`).
    #[arg(long)]
    pub with_schema: bool,
    /// Partitions per topic when creating topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Where to write the ground-truth JSON.
    #[arg(long, default_value = ".lakehouse/generated-truth.json")]
    pub truth: PathBuf,
    /// No progress bar (logs only).
    #[arg(long)]
    pub quiet: bool,
    /// Share (0..1) of bad records: malformed JSON, a wrong JSON type, a rule
    /// violation, an unknown op. Counted by rule in the truth file.
    #[arg(long, default_value_t = 0.0, env = "LAKEHOUSE_GENERATE_BAD_SHARE")]
    pub bad_share: f64,
    /// Share (0..1) of duplicated deliveries of an earlier change of a live key.
    #[arg(long, default_value_t = 0.0, env = "LAKEHOUSE_GENERATE_DUPLICATE_SHARE")]
    pub duplicate_share: f64,
    /// Share (0..1) of changes delivered late, after a newer change of the same key.
    #[arg(long, default_value_t = 0.0, env = "LAKEHOUSE_GENERATE_OUT_OF_ORDER_SHARE")]
    pub out_of_order_share: f64,
    /// Stamp each change's source time (`ts_ms`) with the wall clock instead
    /// of the seed's logical clock (for freshness measurements).
    #[arg(long, env = "LAKEHOUSE_GENERATE_WALL_CLOCK")]
    pub wall_clock: bool,
    /// Business dates follow the source clock: orders dated the day they are
    /// created (2% up to 30 days late), updates keep an order's customer and
    /// date. Without it, order dates spread over 2026 and updates move orders
    /// between dates and customers (Gold's stress case).
    #[arg(long, env = "LAKEHOUSE_GENERATE_LIVE_DATES")]
    pub live_dates: bool,
    /// Write the expected final state (every live row, per table) into the truth file.
    #[arg(long, env = "LAKEHOUSE_GENERATE_TRUTH_STATE")]
    pub truth_state: bool,
}

/// What was produced, per topic.
#[derive(Debug, Default, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct TopicTruth {
    pub messages: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub tombstones: u64,
    pub bytes: u64,
    /// Wrapping sum of the first 8 bytes (big-endian) of each value's MD5:
    /// order-independent, and a duplicate or a loss changes it.
    pub value_md5_sum64: u64,
    /// Live rows at the end (creates − deletes).
    pub live_rows: u64,
    /// Bad records (counted in `messages`, not in creates/updates).
    #[serde(default)]
    pub bad: u64,
    /// Second deliveries of an earlier change (not in creates/updates).
    #[serde(default)]
    pub duplicates: u64,
    /// Changes delivered after a newer change of their key (in creates/updates).
    #[serde(default)]
    pub late: u64,
}

#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct Truth {
    pub seed: u64,
    pub events: u64,
    pub with_schema: bool,
    pub topics: BTreeMap<String, TopicTruth>,
    /// Bad records by table and by the rule the commerce contracts reject them with.
    #[serde(default)]
    pub rejects: BTreeMap<String, BTreeMap<String, u64>>,
    /// With `--truth-state`: the expected final state, table → live rows (`after` images) by id.
    #[serde(default)]
    pub state: Option<BTreeMap<String, Vec<serde_json::Value>>>,
}

/// Folds a value's MD5 into the truth checksum.
pub fn md5_sum64(acc: u64, value: &[u8]) -> u64 {
    let d = Md5::digest(value);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    acc.wrapping_add(u64::from_be_bytes(first))
}

struct DeliveryCount {
    failed: AtomicU64,
    delivered: AtomicU64,
}

impl ClientContext for DeliveryCount {}
impl ProducerContext for DeliveryCount {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                tracing::error!(error = %e, "delivery failed");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

async fn create_topics(brokers: &str, topics: &[String], partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = crate::producer_config(brokers).create()?;
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics(new.iter(), &opts).await? {
        match r {
            Ok(t) => tracing::info!(topic = %t, partitions, "created topic"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic = %t, "topic exists"),
            Err((t, e)) => anyhow::bail!("cannot create topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Produces the stream and writes the truth file.
pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let topics: Vec<String> = TABLES.iter().map(|t| format!("{}.public.{t}", args.topic_prefix)).collect();
    create_topics(&args.brokers, &topics, args.partitions).await?;
    let args2 = args.clone();
    let truth = tokio::task::spawn_blocking(move || produce(&args2, &topics)).await??;
    if let Some(dir) = args.truth.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.truth, serde_json::to_vec_pretty(&truth)?)?;
    eprintln!("ground truth written to {}", args.truth.display());
    Ok(())
}

fn produce(args: &GenerateArgs, topics: &[String]) -> anyhow::Result<Truth> {
    let context = DeliveryCount { failed: AtomicU64::new(0), delivered: AtomicU64::new(0) };
    let producer: ThreadedProducer<DeliveryCount> =
        crate::producer_config(&args.brokers).create_with_context(context)?;
    for (name, share) in
        [("bad", args.bad_share), ("duplicate", args.duplicate_share), ("out-of-order", args.out_of_order_share)]
    {
        if !(0.0..=1.0).contains(&share) {
            anyhow::bail!("--{name}-share {share} is not a share between 0 and 1");
        }
    }
    if args.bad_share + args.duplicate_share > 1.0 {
        anyhow::bail!("--bad-share plus --duplicate-share is more than 1");
    }
    let faults = Faults { bad: args.bad_share, duplicate: args.duplicate_share, out_of_order: args.out_of_order_share };
    let mut generator = Generator::with_faults(args.seed, faults);
    if args.wall_clock {
        generator = generator.with_wall_clock();
    }
    if args.live_dates {
        generator = generator.with_live_dates();
    }
    let mut truth: BTreeMap<String, TopicTruth> = topics.iter().map(|t| (t.clone(), TopicTruth::default())).collect();
    let bar = if args.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(args.events) };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .expect("template is valid"),
    );
    let started = Instant::now();
    let mut key_buf = Vec::with_capacity(256);
    let mut value_buf = Vec::with_capacity(2048);
    let mut sent = 0u64;
    let mut held_back: Vec<Event> = Vec::new();
    for i in 0..args.events + 1 {
        if i == args.events {
            // Changes still held back for late delivery go out last.
            held_back = generator.drain();
            break;
        }
        if args.rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / args.rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let e = generator.next_event();
        send(&producer, args, topics, &mut truth, &mut key_buf, &mut value_buf, e)?;
        sent += 1;
        if i % 1024 == 0 {
            bar.set_position(i);
        }
    }
    for e in held_back {
        send(&producer, args, topics, &mut truth, &mut key_buf, &mut value_buf, e)?;
        sent += 1;
    }
    producer.flush(Duration::from_secs(120))?;
    bar.finish_with_message("done");
    let failed = producer.context().failed.load(Ordering::Relaxed);
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    if failed > 0 || delivered != sent {
        anyhow::bail!("{failed} messages failed delivery, {delivered} of {sent} delivered");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("produced {sent} events in {secs:.1}s ({:.0} events/s)", sent as f64 / secs);
    let rejects = generator
        .expected_rejects()
        .iter()
        .map(|(t, r)| (t.to_string(), r.iter().map(|(rule, n)| (rule.to_string(), *n)).collect()))
        .collect();
    let state =
        args.truth_state.then(|| generator.live_rows().into_iter().map(|(t, rows)| (t.to_string(), rows)).collect());
    Ok(Truth { seed: args.seed, events: sent, with_schema: args.with_schema, topics: truth, rejects, state })
}

/// Produces one message and counts it in the truth.
fn send(
    producer: &ThreadedProducer<DeliveryCount>,
    args: &GenerateArgs,
    topics: &[String],
    truth: &mut BTreeMap<String, TopicTruth>,
    key_buf: &mut Vec<u8>,
    value_buf: &mut Vec<u8>,
    e: Event,
) -> anyhow::Result<()> {
    {
        let topic = &topics[e.table];
        key_buf.clear();
        value_buf.clear();
        let key = if args.with_schema { with_schema(e.table, e.key, true) } else { e.key };
        serde_json::to_writer(&mut *key_buf, &key)?;
        let value = e.value.map(|v| if args.with_schema { with_schema(e.table, v, false) } else { v });
        if let Some(raw) = &e.raw {
            value_buf.extend_from_slice(raw.as_bytes());
        } else if let Some(v) = &value {
            serde_json::to_writer(&mut *value_buf, v)?;
        }
        let t = truth.get_mut(topic).expect("every topic has an entry");
        t.messages += 1;
        t.bytes += (key_buf.len() + value_buf.len()) as u64;
        match (e.delivery, e.op) {
            (Delivery::Duplicate, _) => t.duplicates += 1,
            (_, Op::Bad) => t.bad += 1,
            (delivery, op) => {
                if delivery == Delivery::Late {
                    t.late += 1;
                }
                match op {
                    Op::Create => {
                        t.creates += 1;
                        t.live_rows += 1;
                    }
                    Op::Update => t.updates += 1,
                    Op::Delete => {
                        t.deletes += 1;
                        t.live_rows -= 1;
                    }
                    Op::Tombstone => t.tombstones += 1,
                    Op::Bad => {}
                }
            }
        }
        if value.is_some() {
            t.value_md5_sum64 = md5_sum64(t.value_md5_sum64, value_buf);
        }
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).key(&key_buf[..]);
            if value.is_some() {
                record = record.payload(&value_buf[..]);
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => anyhow::bail!("cannot produce to {topic}: {e}"),
            }
        }
    }
    Ok(())
}
