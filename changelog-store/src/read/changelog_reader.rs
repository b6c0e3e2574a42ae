//! Streams the changes of snapshots from an id onward.
//!
//! With `changelog-producer` `input` or `lookup` the changes are the snapshot's
//! changelog files; with `none` they are the records of the level-0 files an APPEND
//! snapshot added (as Paimon's streaming read does), which are already merged per
//! commit and carry `+I`/`+U`/`-D` kinds but no `-U` before-images.

use crate::data::arrow_conv::{kv_schema, projected_kv_schema, rows_of, value_batch};
use crate::data::gather::gather_batch;
use crate::data::reader::{KvBatchReader, read_projected};
use crate::error::{Error, Result};
use crate::lsm::columnar::{arrow_err, seqs_and_kinds};
use crate::manifest_io::ManifestIo;
use crate::options::ChangelogProducer;
use crate::paths::TablePaths;
use crate::row::{Row, RowKind};
use crate::snapshot_manager::SnapshotManager;
use crate::spec::manifest::{FileKind, ManifestEntry};
use crate::spec::snapshot::{CommitKind, Snapshot};
use crate::table_info::TableInfo;
use arrow_array::{Int8Array, RecordBatch};
use std::collections::BTreeMap;

/// One change record.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: RowKind,
    pub row: Row,
}

/// The changes of one snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotChanges {
    pub snapshot_id: i64,
    pub commit_kind: CommitKind,
    pub time_millis: i64,
    pub properties: Option<BTreeMap<String, String>>,
    pub changes: Vec<Change>,
}

/// Changes as Arrow: `rows` in the table's columns
/// ([`row_schema`](crate::data::arrow_conv::row_schema)), `kinds` the kind of each row
/// as Paimon stores it in `_VALUE_KIND` (`RowKind::to_byte`: 0 `+I`, 1 `-U`, 2 `+U`, 3 `-D`).
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub kinds: Int8Array,
    pub rows: RecordBatch,
}

/// The changes of one snapshot as Arrow batches (one per file read), the form a
/// column-wise consumer (Gold's aggregations) takes them in.
#[derive(Debug, Clone)]
pub struct SnapshotChangeBatches {
    pub snapshot_id: i64,
    pub commit_kind: CommitKind,
    pub time_millis: i64,
    pub properties: Option<BTreeMap<String, String>>,
    pub batches: Vec<ChangeBatch>,
}

/// Reads the files `entries` adds, each in production order: by sequence number, ties
/// (a `-U` and its `+U`) in file order. With `columns`, only those value columns.
fn read_entries(
    info: &TableInfo,
    paths: &TablePaths,
    entries: &[ManifestEntry],
    columns: Option<&[String]>,
) -> Result<Vec<ChangeBatch>> {
    let schema = kv_schema(info);
    let projected = columns.map(|c| projected_kv_schema(info, c));
    let kind_column = info.key_types.len() + 1;
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.kind == FileKind::Add) {
        let partition = info.deserialize_partition(&e.partition)?;
        let path = paths.bucket_dir(&info.partition_spec(&partition), e.bucket).join(&e.file.file_name);
        let batch = match &projected {
            Some(p) => read_projected(info, &schema, p, &path)?,
            None => KvBatchReader::open(info, schema.clone(), &path)?.read_to_batch()?,
        };
        let (seqs, kinds) = seqs_and_kinds(info, &batch)?;
        if let Some(bad) = kinds.iter().find(|&&k| RowKind::from_byte(k).is_none()) {
            return Err(Error::corrupt(&path, format!("bad _VALUE_KIND {bad}")));
        }
        // Changelog files are in production order already; data files are key-sorted.
        let batch = if seqs.windows(2).all(|w| w[0] <= w[1]) {
            batch
        } else {
            let mut order: Vec<usize> = (0..seqs.len()).collect();
            order.sort_by_key(|&i| seqs[i]);
            let refs: Vec<(usize, usize)> = order.into_iter().map(|i| (0, i)).collect();
            gather_batch(&[&batch], &refs).map_err(arrow_err("ordering changes by sequence number"))?
        };
        let kinds = batch.column(kind_column).as_any().downcast_ref::<Int8Array>().cloned();
        let kinds = kinds.ok_or_else(|| Error::corrupt(&path, "_VALUE_KIND is not TINYINT"))?;
        out.push(ChangeBatch { kinds, rows: value_batch(info, &batch)? });
    }
    Ok(out)
}

/// Changes of one snapshot as Arrow batches (none for COMPACT snapshots).
///
/// With `changelog-producer` `input` or `lookup` the changes are the snapshot's
/// changelog files; with `none`, the level-0 files an APPEND snapshot added. With
/// `columns`, the batches hold only those of the table's columns (in schema order;
/// names the table lacks are left out): the others are not decoded.
pub fn snapshot_change_batches(
    info: &TableInfo,
    paths: &TablePaths,
    io: &ManifestIo,
    snapshot: &Snapshot,
    columns: Option<&[String]>,
) -> Result<SnapshotChangeBatches> {
    let entries = match info.options.changelog_producer {
        ChangelogProducer::None if snapshot.commit_kind == CommitKind::Append => io.delta_entries(snapshot)?,
        ChangelogProducer::None => Vec::new(),
        ChangelogProducer::Input | ChangelogProducer::Lookup => io.changelog_entries(snapshot)?,
    };
    Ok(SnapshotChangeBatches {
        snapshot_id: snapshot.id,
        commit_kind: snapshot.commit_kind,
        time_millis: snapshot.time_millis,
        properties: snapshot.properties.clone(),
        batches: read_entries(info, paths, &entries, columns)?,
    })
}

/// Changes of one snapshot as rows (see [`snapshot_change_batches`]).
pub fn snapshot_changes(
    info: &TableInfo,
    paths: &TablePaths,
    io: &ManifestIo,
    snapshot: &Snapshot,
) -> Result<SnapshotChanges> {
    let SnapshotChangeBatches { snapshot_id, commit_kind, time_millis, properties, batches } =
        snapshot_change_batches(info, paths, io, snapshot, None)?;
    let mut changes = Vec::new();
    for b in batches {
        for (&k, row) in b.kinds.values().iter().zip(rows_of(info, &b.rows)?) {
            let kind = RowKind::from_byte(k).ok_or_else(|| Error::corrupt("<changelog>", format!("bad kind {k}")))?;
            changes.push(Change { kind, row });
        }
    }
    Ok(SnapshotChanges { snapshot_id, commit_kind, time_millis, properties, changes })
}

/// Ids of the snapshots from `from` to the latest (empty if `from` is past the latest).
///
/// A `from` older than the earliest retained snapshot is refused with
/// [`Error::SnapshotExpired`], as Paimon's streaming read refuses it
/// (`OutOfRangeException`): the changes of the expired snapshots are gone, and
/// starting later would hand the consumer a changelog with a silent hole.
pub fn ids_since(snapshots: &SnapshotManager, from: i64) -> Result<std::ops::RangeInclusive<i64>> {
    let Some(latest) = snapshots.latest_id()? else {
        // No snapshot yet: an empty range.
        return Ok(from.max(1)..=from.max(1) - 1);
    };
    if let Some(earliest) = snapshots.earliest_id()? {
        check_not_expired(snapshots, from, earliest)?;
    }
    Ok(from..=latest)
}

fn check_not_expired(snapshots: &SnapshotManager, requested: i64, earliest: i64) -> Result<()> {
    if requested < earliest {
        return Err(Error::SnapshotExpired { table: snapshots.paths().root().to_path_buf(), requested, earliest });
    }
    Ok(())
}

/// Snapshot `id` for a changelog reader: [`Error::SnapshotExpired`] if it was expired
/// (also when expiry removed it after the caller listed the ids),
/// [`Error::SnapshotNotFound`] if it was never committed.
pub fn snapshot_to_read(snapshots: &SnapshotManager, id: i64) -> Result<Snapshot> {
    if let Some(s) = snapshots.try_snapshot(id)? {
        return Ok(s);
    }
    if let Some(earliest) = snapshots.earliest_id()? {
        check_not_expired(snapshots, id, earliest)?;
    }
    Err(Error::SnapshotNotFound { table: snapshots.paths().root().to_path_buf(), id })
}

/// Changes of every snapshot with id >= `from` up to the latest, in order.
/// [`Error::SnapshotExpired`] if `from` (or a snapshot after it, expired meanwhile)
/// is no longer retained.
pub fn changes_since(
    info: &TableInfo,
    paths: &TablePaths,
    io: &ManifestIo,
    snapshots: &SnapshotManager,
    from: i64,
) -> Result<Vec<SnapshotChanges>> {
    let mut out = Vec::new();
    for id in ids_since(snapshots, from)? {
        let s = snapshot_to_read(snapshots, id)?;
        out.push(snapshot_changes(info, paths, io, &s)?);
    }
    Ok(out)
}
