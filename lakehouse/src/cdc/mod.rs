//! Decoding of change-data-capture payloads.

pub mod debezium;

pub use debezium::{decode, Decoded, EventKind, Position};
