//! The row refiner: a compiled contract applied to Debezium row images.

pub(crate) mod checks;
mod refiner;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod fixture_tests;

pub use refiner::{RefinedRow, Refiner};
