//! Reading a snapshot: which files, and the merged rows they hold.

use crate::data::arrow_conv;
use crate::data::reader::read_kv_file;
use crate::error::Result;
use crate::lsm::columnar::{self, Policy};
use crate::lsm::levels::FileRef;
use crate::lsm::merge::merge_sorted;
use crate::manifest_io::ManifestIo;
use crate::merge::merge_function;
use crate::paths::TablePaths;
use crate::row::{Datum, Key, KeyValue, Row, RowKind};
use crate::spec::snapshot::Snapshot;
use crate::table_info::TableInfo;
use arrow_array::{BooleanArray, RecordBatch};
use std::collections::BTreeMap;

/// Key bounds of a read (inclusive; `None` is unbounded), on the trimmed primary key.
#[derive(Debug, Clone, Default)]
pub struct KeyRange {
    pub lower: Option<Key>,
    pub upper: Option<Key>,
}

impl KeyRange {
    pub fn all() -> Self {
        KeyRange::default()
    }

    pub fn point(key: Key) -> Self {
        KeyRange { lower: Some(key.clone()), upper: Some(key) }
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.lower.as_ref().is_none_or(|l| key >= l) && self.upper.as_ref().is_none_or(|u| key <= u)
    }
}

/// Files of one (partition, bucket) in a snapshot.
#[derive(Debug, Clone)]
pub struct BucketFiles {
    pub partition: Vec<Datum>,
    pub bucket: i32,
    pub files: Vec<FileRef>,
}

/// Groups a snapshot's live files by (partition, bucket).
pub fn plan(info: &TableInfo, io: &ManifestIo, snapshot: &Snapshot) -> Result<Vec<BucketFiles>> {
    let mut groups: BTreeMap<(Vec<u8>, i32), BucketFiles> = BTreeMap::new();
    for e in io.live_entries(snapshot)? {
        let partition = info.deserialize_partition(&e.partition)?;
        let f = FileRef::new(info, e.file)?;
        groups
            .entry((e.partition, e.bucket))
            .or_insert_with(|| BucketFiles { partition, bucket: e.bucket, files: Vec::new() })
            .files
            .push(f);
    }
    Ok(groups.into_values().collect())
}

/// Reads the merged, visible rows of one bucket within `range`, in key order.
pub fn read_bucket(info: &TableInfo, paths: &TablePaths, bucket: &BucketFiles, range: &KeyRange) -> Result<Vec<Row>> {
    if columnar::is_columnar(info) {
        let mut rows = Vec::new();
        for b in read_bucket_batches(info, paths, bucket, range)? {
            rows.extend(arrow_conv::rows_of(info, &b)?);
        }
        return Ok(rows);
    }
    let dir = paths.bucket_dir(&info.partition_spec(&bucket.partition), bucket.bucket);
    let mut records = Vec::new();
    for f in &bucket.files {
        if !f.overlaps(range.lower.as_ref(), range.upper.as_ref()) {
            continue;
        }
        let mut rs = read_kv_file(info, &dir.join(&f.meta.file_name))?;
        rs.retain(|r| range.contains(&r.key));
        records.extend(rs);
    }
    let mut merge = merge_function(info)?;
    Ok(merge_sorted(info, records, merge.as_mut())?
        .into_iter()
        .filter(|kv| kv.kind.is_add())
        .map(|kv| kv.value)
        .collect())
}

/// Reads the merged, visible rows of one bucket within `range` as batches of the table
/// columns, in key order. Column-wise for `deduplicate` tables; otherwise through rows.
pub fn read_bucket_batches(
    info: &TableInfo,
    paths: &TablePaths,
    bucket: &BucketFiles,
    range: &KeyRange,
) -> Result<Vec<RecordBatch>> {
    if !columnar::is_columnar(info) {
        let rows = read_bucket(info, paths, bucket, range)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let records: Vec<KeyValue> = rows
            .into_iter()
            .map(|value| KeyValue { key: info.key_of(&value), seq: 0, kind: RowKind::Insert, value })
            .collect();
        let kv = arrow_conv::to_batch(info, &arrow_conv::kv_schema(info), &records)?;
        return Ok(vec![arrow_conv::value_batch(info, &kv)?]);
    }
    let dir = paths.bucket_dir(&info.partition_spec(&bucket.partition), bucket.bucket);
    let files: Vec<FileRef> =
        bucket.files.iter().filter(|f| f.overlaps(range.lower.as_ref(), range.upper.as_ref())).cloned().collect();
    let policy = Policy { ignore_delete: info.options.ignore_delete, drop_delete: true };
    let bounded = range.lower.is_some() || range.upper.is_some();
    let mut out = Vec::new();
    columnar::merge_runs(info, columnar::runs_of(&dir, &files, |_| None), policy, |b| {
        let b = if bounded { filter_range(info, &b, range)? } else { b };
        if b.num_rows() > 0 {
            out.push(arrow_conv::value_batch(info, &b)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Keeps the rows of a key/value batch whose key lies in `range`.
fn filter_range(info: &TableInfo, batch: &RecordBatch, range: &KeyRange) -> Result<RecordBatch> {
    let mut keep = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        keep.push(range.contains(&arrow_conv::key_at(info, batch, r)?));
    }
    arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(keep))
        .map_err(|source| crate::error::Error::Arrow { op: "filtering rows by key range", source })
}
