//! Decoding of change-data-capture payloads.

pub mod debezium;

pub use debezium::{Decoded, EventKind, Position, decode};
