//! On-disk formats of Apache Paimon: schema and snapshot JSON, Avro manifests,
//! BinaryRow encoding and the bucket hash.

pub(crate) mod avro_schemas;
pub(crate) mod avro_value;
pub mod binary_row;
pub mod manifest;
pub mod partition_stats;
pub mod schema;
pub mod snapshot;
pub mod types;
