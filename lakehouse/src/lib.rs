//! What the lakehouse workers share: the configuration core, Kafka
//! consumption (group membership through librdkafka, the record fetcher), CDC
//! decoding, the SQL catalog and the Iceberg commit layer, telemetry and
//! shutdown. Each stage's own logic lives in its crate (`bronze-ingestor`,
//! `silver-refiner`, `gold-aggregator`); the admin CLI and the event
//! generator are outside the workers' dependency graph (`admin/`, `generator/`).

#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod catalog;
pub mod cdc;
pub mod config;
pub mod error;
pub mod kafka;
pub mod md5x;
pub mod shutdown;
pub mod table;
pub mod telemetry;
pub mod worker;

pub use error::ErrorKind;
