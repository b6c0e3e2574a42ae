//! Iceberg table operations owned by the project.
//!
//! How the layers compose:
//!
//! 1. [`writer::DataFileWriter`] turns Arrow batches into Parquet data files
//!    (through iceberg-rust's Parquet writer, so column statistics and field
//!    ids are right) and returns their [`iceberg::spec::DataFile`] entries.
//! 2. [`position_delete::PositionDeleteWriter`] turns `(data file path, row
//!    position)` pairs into Parquet position-delete files, one partition per
//!    file, and returns their entries (content `position deletes`). Silver and
//!    Gold express an upsert as a new row in a data file plus a position
//!    delete of the row it replaces.
//! 3. [`commit::Committer`] turns those entries into one new snapshot: it writes
//!    the manifests of the [`commit::Operation`] (`Append`: a data manifest;
//!    `RowDelta`: a data manifest and/or a delete manifest), a manifest list
//!    carrying the head's manifests forward and a metadata file with
//!    iceberg-rust's public spec types, then publishes with the catalog's
//!    compare-and-swap. Before every attempt it runs the caller's
//!    [`commit::PositionCheck`] against the table head, so a writer whose
//!    position is stale is fenced instead of rebased.
//! 4. Maintenance rides on every commit: [`merge`] merges carried manifests,
//!    [`retention`] decides which snapshots may expire (never one a position
//!    or a registered [`consumer`] needs), [`cleanup`] deletes the files only
//!    expired snapshots reached, after the commit is published.
//! 5. [`rewrite`] compacts: data files whose rows are mostly deleted are
//!    rewritten with their deletes applied, and the delete files only they
//!    needed are dropped, in one `replace` snapshot ([`commit::Operation::Rewrite`]).
//! 6. [`position`] reads and writes the consumed-up-to position that every
//!    commit carries in its snapshot summary.
//!
//! An upsert of Silver or Gold, end to end:
//!
//! ```no_run
//! # use std::collections::HashMap;
//! # use lakehouse::catalog::LoadedTable;
//! # use lakehouse::table::commit::{Committer, Operation};
//! # use lakehouse::table::position_delete::{PositionDeleteWriter, ReferencedFile};
//! # use lakehouse::table::writer::DataFileWriter;
//! # async fn f(committer: Committer, head: LoadedTable, data: DataFileWriter,
//! #            new_rows: Vec<arrow_array::RecordBatch>, old_file: iceberg::spec::DataFile)
//! #            -> Result<(), Box<dyn std::error::Error>> {
//! let file_io = committer.catalog().file_io().clone();
//! let partition = old_file.partition().clone();
//! let data_files = data.write(&head.metadata, partition, &new_rows).await?;
//! // Rows 3 and 7 of `old_file` are replaced by the new rows.
//! let replaced = vec![(old_file.file_path().to_string(), 3), (old_file.file_path().to_string(), 7)];
//! let delete_files =
//!     PositionDeleteWriter::new(file_io).write(&head.metadata, &[ReferencedFile::from(&old_file)], replaced).await?;
//! let check = |_: &iceberg::spec::TableMetadata| Ok(HashMap::new());
//! committer.commit(&head, Operation::RowDelta { data_files, delete_files }, &check).await?;
//! # Ok(()) }
//! ```

pub mod cleanup;
pub mod clock;
pub mod commit;
pub mod consumer;
pub mod create;
pub mod data_files;
pub mod durable;
pub mod fault;
pub mod incremental;
pub mod merge;
pub mod position;
pub mod position_delete;
pub mod retention;
pub mod rewrite;
mod rewrite_commit;

pub mod writer;

#[cfg(test)]
mod maintenance_tests;
#[cfg(test)]
mod rewrite_tests;
#[cfg(test)]
mod row_delta_tests;
