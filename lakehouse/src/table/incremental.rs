//! Incremental reads: the data files that the snapshots committed after a
//! position added, oldest snapshot first — what Silver consumes of Bronze.
//! Only manifests a snapshot added are opened, and only their `ADDED`
//! entries kept, so the cost follows the new data, never the table's size.
//!
//! Read from the start (`after = None`) of a table whose oldest snapshots were
//! expired, the first snapshot left stands for everything before it too: its
//! increment is every live data file it has (added by it or carried as
//! existing), so nothing committed before the expiry is missed.

use std::collections::HashSet;

use arrow_array::RecordBatch;
use bytes::Bytes;
use iceberg::io::FileIO;
use iceberg::spec::{DataContentType, DataFile, ManifestContentType, ManifestStatus, Snapshot, TableMetadata};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::table::commit::manifests_of;

/// Why an incremental read cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    #[error(
        "table at {location}: snapshot {after} (the position consumed up to) is not an ancestor of the current \
         snapshot: it was expired or the table was rolled back past it; refusing to guess what was consumed"
    )]
    PositionNotInHistory { location: String, after: i64 },
    #[error("reading {what}: {source}")]
    Iceberg { what: String, source: iceberg::Error },
    #[error("reading data file {path}: {source}")]
    Parquet { path: String, source: parquet::errors::ParquetError },
}

/// One snapshot after the position, with the data files it added.
#[derive(Debug, Clone)]
pub struct Increment {
    pub snapshot: Snapshot,
    pub files: Vec<DataFile>,
    /// Whether `files` are every live file of the snapshot, not only the ones
    /// it added (the oldest snapshot left of a table read from its start).
    pub whole: bool,
}

/// The snapshots after `after` (exclusive; `None` = from the first) up to the
/// current one, oldest first.
pub fn snapshots_after(metadata: &TableMetadata, after: Option<i64>) -> Result<Vec<Snapshot>, IncrementalError> {
    let mut chain = Vec::new();
    let mut cursor = metadata.current_snapshot().cloned();
    let mut found = after.is_none();
    while let Some(s) = cursor {
        if Some(s.snapshot_id()) == after {
            found = true;
            break;
        }
        cursor = s.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id).cloned());
        chain.push(s.as_ref().clone());
    }
    if !found {
        let after = after.expect("None is always found");
        // An empty table is only fine if nothing was consumed.
        return Err(IncrementalError::PositionNotInHistory { location: metadata.location().to_string(), after });
    }
    chain.reverse();
    Ok(chain)
}

/// The data files each snapshot after `after` added (at most `max_snapshots`
/// snapshots, oldest first). Snapshots that added no data (deletes, rewrites)
/// come back with no files so the position still moves past them; so do
/// rewrites (`replace` snapshots), whose data files hold rows already read.
pub async fn increments(
    file_io: &FileIO,
    metadata: &TableMetadata,
    after: Option<i64>,
    max_snapshots: usize,
) -> Result<Vec<Increment>, IncrementalError> {
    let snapshots = snapshots_after(metadata, after)?;
    let mut out = Vec::new();
    for (i, snapshot) in snapshots.into_iter().take(max_snapshots.max(1)).enumerate() {
        // The oldest snapshot left of a table read from its start: all its live files.
        let whole = i == 0 && after.is_none() && snapshot.parent_snapshot_id().is_some();
        out.push(increment_of(file_io, metadata, snapshot, whole).await?);
    }
    Ok(out)
}

/// The increment of one snapshot, the same [`increments`] gives for it: the
/// data files it added (every live one when `whole`), in a fixed order (the
/// snapshot's manifest list, then each manifest's entries), so that a reader
/// can resume inside it by row count.
pub async fn increment_of(
    file_io: &FileIO,
    metadata: &TableMetadata,
    snapshot: Snapshot,
    whole: bool,
) -> Result<Increment, IncrementalError> {
    let id = snapshot.snapshot_id();
    // A rewrite (compaction) re-adds rows earlier snapshots added: nothing new.
    if !whole && snapshot.summary().operation == iceberg::spec::Operation::Replace {
        return Ok(Increment { snapshot, files: Vec::new(), whole });
    }
    let what = |w: &str| format!("{w} of snapshot {id}");
    let manifests = manifests_of(file_io, metadata, &snapshot)
        .await
        .map_err(|source| IncrementalError::Iceberg { what: what("the manifest list"), source })?;
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for m in manifests.iter().filter(|m| {
        m.content == ManifestContentType::Data && (whole || (m.added_snapshot_id == id && m.has_added_files()))
    }) {
        let manifest = m
            .load_manifest(file_io)
            .await
            .map_err(|source| IncrementalError::Iceberg { what: what(&m.manifest_path), source })?;
        for e in manifest.entries() {
            let added_here = e.status() == ManifestStatus::Added && e.snapshot_id().is_none_or(|s| s == id);
            if (added_here || (whole && e.is_alive()))
                && e.data_file().content_type() == DataContentType::Data
                && seen.insert(e.data_file().file_path().to_string())
            {
                files.push(e.data_file().clone());
            }
        }
    }
    Ok(Increment { snapshot, files, whole })
}

/// Reads a whole Parquet data file through the storage layer, keeping only
/// the named columns (all of them when `columns` is empty).
pub async fn read_data_file(
    file_io: &FileIO,
    path: &str,
    columns: &[&str],
) -> Result<Vec<RecordBatch>, IncrementalError> {
    data_file_batches(file_io, path, columns, 0, usize::MAX).await?.collect()
}

/// Rows `offset..offset + limit` of a Parquet data file (fewer at its end),
/// keeping only the named columns (all of them when `columns` is empty), one
/// batch (at most 8192 rows) at a time: the file's bytes are read whole, its
/// rows decoded as the batches are taken, so a reader that consumes each batch
/// before the next holds one decoded batch. The rows before `offset` are
/// skipped with Parquet's row selection.
pub async fn data_file_batches(
    file_io: &FileIO,
    path: &str,
    columns: &[&str],
    offset: usize,
    limit: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, IncrementalError>> + use<>, IncrementalError> {
    let ice = |source| IncrementalError::Iceberg { what: path.to_string(), source };
    let bytes: Bytes = file_io.new_input(path).map_err(ice)?.read().await.map_err(ice)?;
    let perr = |source| IncrementalError::Parquet { path: path.to_string(), source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(perr)?;
    let builder = if columns.is_empty() {
        builder
    } else {
        let schema = builder.parquet_schema();
        let indices: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| columns.contains(&schema.column(i).path().parts()[0].as_str()))
            .collect();
        let mask = ProjectionMask::leaves(schema, indices);
        builder.with_projection(mask)
    };
    let builder = if offset > 0 { builder.with_offset(offset) } else { builder };
    let builder = if limit < usize::MAX { builder.with_limit(limit) } else { builder };
    let reader = builder.with_batch_size(8192).build().map_err(perr)?;
    let path = path.to_string();
    Ok(reader.map(move |b| {
        b.map_err(|e| IncrementalError::Parquet {
            path: path.clone(),
            source: parquet::errors::ParquetError::ArrowError(e.to_string()),
        })
    }))
}
