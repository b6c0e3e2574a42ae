//! Debezium row values → typed [`crate::Value`]s, with and without the
//! JsonConverter `schema` block. The reading rules (which source types a
//! column accepts, how bare JSON is read, time zones) are documented at the
//! top of `decode/read.rs`.

mod read;
mod scalar;
mod temporal;
#[cfg(test)]
mod tests;

pub use read::ReadOptions;
pub(crate) use read::{read, read_decimal_parts};
pub(crate) use scalar::decimal_value;
pub(crate) use temporal::check_format;
