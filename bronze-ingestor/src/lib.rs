//! bronze-ingestor: Kafka topics → Bronze Iceberg tables, raw and verbatim
//! with audit columns, exactly once. The binary (`main.rs`) parses flags,
//! loads [`Config`], starts telemetry and calls [`run`].

pub mod config;
pub mod ingestor;
pub mod membership;
pub mod routes;
pub mod rows;
pub mod schema;

pub use config::Config;
pub use ingestor::{RunOptions, RunSummary, run};
