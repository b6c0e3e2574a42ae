//! Key/value data and changelog files (Parquet).

pub mod arrow_conv;
pub mod reader;
pub mod writer;
