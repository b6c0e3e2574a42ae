//! Decoding of change-data-capture payloads.

pub mod debezium;
mod scan;

pub use debezium::{Decoded, EventKind, Position, decode, decode_str};
pub use scan::{object_members, plain_string};
