//! `lakehouse generate`: Debezium change events for a small commerce schema
//! (customers, products, orders, order_items), deterministic for a seed.
//!
//! Creates, updates (with `before`), deletes each followed by a tombstone,
//! keyed by primary key, in the JSON converter's format with or without
//! schemas. A ground-truth file records exactly what was produced.

mod model;
mod produce;

pub use model::{Delivery, Event, Faults, Generator, Op, TABLES, with_schema};
pub use produce::{GenerateArgs, TopicTruth, Truth, md5_sum64, run};

/// Producer settings for the load generator and tests.
pub fn producer_config(brokers: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("compression.type", "none")
        .set("acks", "all");
    c
}
