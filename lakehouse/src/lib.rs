//! Shared library of the streaming lakehouse workers and the `lakehouse`
//! admin CLI: configuration, Kafka consumption, CDC decoding, Iceberg table
//! operations and the commit protocol, telemetry and shutdown.

pub mod bronze;
pub mod catalog;
pub mod cdc;
pub mod cli;
pub mod config;
pub mod error;
pub mod generate;
pub mod kafka;
pub mod md5x;
pub mod shutdown;
pub mod table;
pub mod telemetry;

pub use config::Config;
pub use error::ErrorKind;
