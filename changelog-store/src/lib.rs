//! # changelog-store
//!
//! A primary-key LSM store that writes Apache Paimon's on-disk format, so Paimon
//! readers (pypaimon, Java) read what it writes and it reads what they write.
//!
//! ## Layout (`<warehouse>/<db>.db/<table>/`)
//! - `schema/schema-N` — `TableSchema` JSON ([`spec::schema`]).
//! - `snapshot/snapshot-N`, `snapshot/LATEST`, `snapshot/EARLIEST` ([`spec::snapshot`]).
//! - `manifest/manifest-list-*`, `manifest/manifest-*` — Avro, zstd ([`spec::manifest`]).
//! - `[k=v/]bucket-N/data-*.parquet`, `changelog-*.parquet` — zstd Parquet with
//!   `_KEY_<pk>`, `_SEQUENCE_NUMBER`, `_VALUE_KIND` and the columns, with Paimon field
//!   ids ([`data::arrow_conv`]). Buckets by Paimon's hash ([`spec::binary_row::bucket`]).
//!
//! ## How the layers compose
//! [`TableWrite`] routes rows to per-bucket writers: a write buffer (bounded by
//! `write-buffer-size`) flushed as level-0 sorted runs, the changelog producer
//! (`input`/`lookup`), and universal compaction into levels >= 1 ([`lsm`]).
//! `prepare_commit` returns [`commit::CommitMessage`]s; a [`commit::Committer`]
//! publishes them as APPEND / COMPACT snapshots with create-if-absent, idempotently
//! per `(commitUser, commitIdentifier)`, carrying the caller's `properties`.
//! Reads ([`Table::scan`], [`Table::lookup`], [`Table::scan_range`]) merge the files
//! of a snapshot with the table's merge engine ([`merge`]).
//!
//! ## Entry points for the `lakehouse` CLI
//! - create: [`Table::create`] / [`Table::create_in_warehouse`] with a [`TableSpec`]
//! - open: [`Table::open`]
//! - write: [`Table::new_write`] → [`TableWrite::write_json`] / [`TableWrite::write`] /
//!   [`TableWrite::write_batch`] (Arrow batches, columns checked against the table),
//!   then [`TableWrite::prepare_commit`] and
//!   [`Table::new_committer`]`(user).commit(identifier, messages, properties)`
//! - read: [`Table::scan`] / [`Table::lookup`] / [`Table::scan_range`] with [`ReadAt`]
//!   (latest, snapshot id, timestamp); [`Table::row_to_json`]
//! - changelog: [`Table::changes_since`]
//! - snapshots: [`Table::snapshots`]
//! - compact: [`Table::compact`]; expire: [`Table::expire`]; consumers:
//!   [`Table::register_consumer`], [`Table::consumer`], [`Table::remove_consumer`]
//!
//! ```no_run
//! use changelog_store::{ReadAt, RowKind, Table, TableSpec};
//! use std::collections::BTreeMap;
//! # fn main() -> changelog_store::Result<()> {
//! let spec = TableSpec {
//!     columns: vec![("id".into(), "BIGINT".into()), ("name".into(), "STRING".into())],
//!     primary_keys: vec!["id".into()],
//!     partition_keys: vec![],
//!     options: BTreeMap::from([("bucket".to_string(), "2".to_string())]),
//! };
//! let table = Table::create_in_warehouse(std::path::Path::new("/tmp/wh"), "db", "t", spec)?;
//! let mut write = table.new_write()?;
//! write.write_json(&serde_json::json!({"id": 1, "name": "a"}), RowKind::Insert)?;
//! let messages = write.prepare_commit()?;
//! let props = BTreeMap::from([("source.position".to_string(), "42".to_string())]);
//! table.new_committer("silver-refiner").commit(1, messages, Some(props))?;
//! let rows = table.scan(ReadAt::Latest)?;
//! # let _ = rows; Ok(()) }
//! ```
//!
//! ## Known limits (as of this version)
//! - Types: BOOLEAN, TINYINT..BIGINT, FLOAT, DOUBLE, DECIMAL(1..38, s), CHAR/VARCHAR/STRING,
//!   BINARY/BYTES, DATE, TIMESTAMP(0..6) with or without local time zone. No nested types;
//!   schema evolution adds nullable columns ([`Table::add_columns`]) and widens value columns
//!   losslessly ([`Table::widen_columns`]); no renames, drops or narrowing.
//! - `first-row` writers compact level 0 up before each commit (Java Paimon's batch scan of
//!   such a table skips level 0), whether or not they wait for other compactions.
//! - Manifest-list partition stats are real min/max/null counts ([`spec::partition_stats`]);
//!   file value stats are written empty (as pypaimon does): readers do no value pruning.
//! - `count` is not a Paimon aggregator: it is stored as `sum` of per-row ones
//!   (`fields.<f>.changelog-store.count` = true). pypaimon 2.1.0 refuses `-U`/`-D`
//!   records on aggregation tables, so retractions are readable by it only once compacted.
//! - `sequence.field` is rejected with partial-update and first-row; with it, deletes
//!   are kept through compaction so late smaller-sequence records stay shadowed.
//! - `deduplicate` tables (with or without `sequence.field`) flush, compact and scan
//!   column-wise ([`lsm::columnar`]) with bounded memory. The other merge engines merge
//!   row-wise and cache decoded files per bucket for lookups and compaction, within the
//!   `lookup.cache-max-memory-size` budget (or one shared by a worker's writers).
//! - Point lookups ([`SnapshotReader::lookup`]) prune by file key range, row-group key
//!   statistics and, for a single BIGINT key, the key column's page index, then decode
//!   the candidate pages (4096 rows) of every overlapping file: milliseconds, not
//!   microseconds. No bloom filter or key index per file yet.
//! - `file.compression.per.level` (e.g. `0:lz4`) is honoured; `lz4` is written as
//!   Parquet LZ4_RAW.
//!
//! ## Rules callers must follow
//! - One writer per bucket at a time (sequence numbers are per bucket, as in Paimon).
//!   A commit of new files for a bucket that another commit user wrote to after the
//!   writer's base snapshot fails with a conflict: start a new `TableWrite` and redo.
//! - A changelog consumer registers a consumer id ([`Table::register_consumer`]) and
//!   advances it with its progress; reading from an expired snapshot fails with
//!   [`Error::SnapshotExpired`] rather than skipping the lost changes.
//! - After a failed commit, drop the `TableWrite` and start a new one from the table.
//! - Commit identifiers of a commit user must increase.

pub mod clock;
pub mod commit;
pub mod consumer;
pub mod data;
pub mod decimal;
pub mod error;
pub mod expire;
pub mod fs;
pub mod lsm;
pub mod manifest_io;
pub mod merge;
pub mod options;
pub mod paths;
pub mod read;
pub mod row;
pub mod snapshot_manager;
pub mod spec;
pub mod table;
pub mod table_info;
pub mod verify;
pub mod write;

pub use commit::{CommitMessage, CommitOutcome, Committer};
pub use decimal::Decimal;
pub use error::{Error, ErrorKind, Result};
pub use read::scan::KeyRange;
pub use read::snapshot_reader::SnapshotReader;
pub use row::{Datum, KeyValue, Row, RowKind};
pub use table::{ReadAt, Table, TableSpec};
pub use write::TableWrite;
