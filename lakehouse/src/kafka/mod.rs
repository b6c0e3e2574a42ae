//! Kafka client settings shared by the workers and tools.

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

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

/// Producer settings for the load generator and tests.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("compression.type", "none")
        .set("acks", "all");
    c
}
