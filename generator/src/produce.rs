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

use super::model::{Generator, Op, TABLES, with_schema};

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
}

#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct Truth {
    pub seed: u64,
    pub events: u64,
    pub with_schema: bool,
    pub topics: BTreeMap<String, TopicTruth>,
}

/// Folds a value's MD5 into the truth checksum.
pub fn md5_sum64(acc: u64, value: &[u8]) -> u64 {
    let d = Md5::digest(value);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    acc.wrapping_add(u64::from_be_bytes(first))
}

struct Delivery {
    failed: AtomicU64,
    delivered: AtomicU64,
}

impl ClientContext for Delivery {}
impl ProducerContext for Delivery {
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
    let context = Delivery { failed: AtomicU64::new(0), delivered: AtomicU64::new(0) };
    let producer: ThreadedProducer<Delivery> = crate::producer_config(&args.brokers).create_with_context(context)?;
    let mut generator = Generator::new(args.seed);
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
    for i in 0..args.events {
        if args.rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / args.rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let e = generator.next_event();
        let topic = &topics[e.table];
        key_buf.clear();
        value_buf.clear();
        let key = if args.with_schema { with_schema(e.table, e.key, true) } else { e.key };
        serde_json::to_writer(&mut key_buf, &key)?;
        let value = e.value.map(|v| if args.with_schema { with_schema(e.table, v, false) } else { v });
        if let Some(v) = &value {
            serde_json::to_writer(&mut value_buf, v)?;
        }
        let t = truth.get_mut(topic).expect("every topic has an entry");
        t.messages += 1;
        t.bytes += (key_buf.len() + value_buf.len()) as u64;
        match e.op {
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
        }
        if value.is_some() {
            t.value_md5_sum64 = md5_sum64(t.value_md5_sum64, &value_buf);
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
        if i % 1024 == 0 {
            bar.set_position(i);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    bar.finish_with_message("done");
    let failed = producer.context().failed.load(Ordering::Relaxed);
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    if failed > 0 || delivered != args.events {
        anyhow::bail!("{failed} messages failed delivery, {delivered} of {} delivered", args.events);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("produced {} events in {secs:.1}s ({:.0} events/s)", args.events, args.events as f64 / secs);
    Ok(Truth { seed: args.seed, events: args.events, with_schema: args.with_schema, topics: truth })
}
