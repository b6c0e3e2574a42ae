//! Key/value data and changelog files (Parquet).

pub mod arrow_conv;
pub mod gather;
pub mod reader;
pub mod sink;
pub mod sort_key;
pub mod writer;
