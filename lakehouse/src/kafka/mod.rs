//! Kafka client settings shared by the workers and tools, and the data path
//! of the consumers ([`fetcher`] over [`wire`]).

pub mod fetcher;
pub mod security;
pub mod topic_id;
pub mod transport;
pub mod wire;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::config::KafkaConfig;

/// Fetch settings from the Kafka config; the librdkafka property names
/// (`fetch.max.bytes`, `max.partition.fetch.bytes`, `isolation.level`,
/// `client.id`) in `kafka.properties` apply to the fetcher too.
pub fn fetch_settings(k: &KafkaConfig) -> Result<fetcher::FetchSettings, String> {
    let mut s = fetcher::FetchSettings {
        max_wait_ms: k.fetch_wait_max_ms as i32,
        security: security::Security::from_properties(&k.properties)?,
        ..Default::default()
    };
    let int = |key: &str, v: &str| {
        v.parse::<i32>().map_err(|_| format!("kafka.properties.\"{key}\" = {v:?} is not an integer"))
    };
    for (key, v) in &k.properties {
        match key.as_str() {
            "fetch.max.bytes" => s.max_bytes = int(key, v)?,
            "max.partition.fetch.bytes" => s.partition_max_bytes = int(key, v)?,
            "client.id" => s.client_id = v.clone(),
            "isolation.level" => {
                s.read_committed = match v.as_str() {
                    "read_committed" => true,
                    "read_uncommitted" => false,
                    _ => {
                        return Err(format!(
                            "kafka.properties.\"isolation.level\" = {v:?}: read_committed or read_uncommitted"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// [`fetcher::Cluster`] answered by librdkafka's metadata and watermark queries.
pub struct RdCluster<C: ConsumerContext + 'static>(pub std::sync::Arc<BaseConsumer<C>>);

impl<C: ConsumerContext + 'static> fetcher::Cluster for RdCluster<C> {
    fn leaders(&self, topic: &str) -> Result<std::collections::HashMap<i32, String>, String> {
        let md = self.0.fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(|e| e.to_string())?;
        let t =
            md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("topic {topic} not in metadata"))?;
        if let Some(e) = t.error() {
            return Err(format!("topic {topic}: {e:?}"));
        }
        let brokers: std::collections::HashMap<i32, String> =
            md.brokers().iter().map(|b| (b.id(), format!("{}:{}", b.host(), b.port()))).collect();
        // Partitions without a leader (or one not among the brokers) are left out.
        Ok(t.partitions().iter().filter_map(|p| Some((p.id(), brokers.get(&p.leader())?.clone()))).collect())
    }

    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), String> {
        self.0.fetch_watermarks(topic, partition, Duration::from_secs(5)).map_err(|e| e.to_string())
    }
}

/// Consumer settings for exactly-once ingestion: no auto commit, no auto
/// offset store (positions live in the table commits), a bounded prefetch
/// queue. Idle detection uses cached watermarks, not EOF events.
pub fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "roundrobin")
        .set("fetch.wait.max.ms", k.fetch_wait_max_ms.to_string())
        .set("session.timeout.ms", k.session_timeout.as_millis().to_string())
        .set("queued.max.messages.kbytes", "32768")
        .set("fetch.max.bytes", "16777216")
        .set("max.partition.fetch.bytes", "4194304");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c
}
