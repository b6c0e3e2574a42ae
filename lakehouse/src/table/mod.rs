//! Iceberg table operations owned by the project.
//!
//! How the layers compose:
//!
//! 1. [`writer::DataFileWriter`] turns Arrow batches into Parquet data files
//!    (through iceberg-rust's Parquet writer, so column statistics and field
//!    ids are right) and returns their [`iceberg::spec::DataFile`] entries.
//! 2. [`commit::Committer`] turns those entries into one new snapshot: it writes
//!    a manifest, a manifest list and a metadata file with iceberg-rust's public
//!    spec types, then publishes with the catalog's compare-and-swap.
//!    Before every attempt it runs the caller's [`commit::PositionCheck`]
//!    against the table head, so a writer whose position is stale is fenced
//!    instead of rebased.
//! 3. [`position`] reads and writes the consumed-up-to position that every
//!    commit carries in its snapshot summary.

pub mod commit;
pub mod create;
pub mod durable;
pub mod incremental;
pub mod position;

pub mod writer;
