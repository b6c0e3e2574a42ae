//! Reading a snapshot: which files, and the merged rows they hold.

use crate::data::reader::read_kv_file;
use crate::error::Result;
use crate::lsm::levels::FileRef;
use crate::lsm::merge::merge_sorted;
use crate::manifest_io::ManifestIo;
use crate::merge::merge_function;
use crate::paths::TablePaths;
use crate::row::{Datum, Key, Row};
use crate::spec::snapshot::Snapshot;
use crate::table_info::TableInfo;
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
        KeyRange {
            lower: Some(key.clone()),
            upper: Some(key),
        }
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
            .or_insert_with(|| BucketFiles {
                partition,
                bucket: e.bucket,
                files: Vec::new(),
            })
            .files
            .push(f);
    }
    Ok(groups.into_values().collect())
}

/// Reads the merged, visible rows of one bucket within `range`, in key order.
pub fn read_bucket(
    info: &TableInfo,
    paths: &TablePaths,
    bucket: &BucketFiles,
    range: &KeyRange,
) -> Result<Vec<Row>> {
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
