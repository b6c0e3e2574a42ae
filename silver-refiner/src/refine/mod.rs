//! The row refiner: a compiled contract applied to Debezium row images.

pub(crate) mod checks;
#[cfg(test)]
mod fixture_tests;
mod refiner;
#[cfg(test)]
mod tests;

pub use refiner::{RefinedRow, Refiner};
