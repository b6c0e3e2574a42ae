//! Kafka topics → Bronze Iceberg tables, exactly once.

pub mod ingestor;
pub mod routes;
pub mod rows;
pub mod schema;

pub use ingestor::{RunOptions, RunSummary, run};
