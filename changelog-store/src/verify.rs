//! Consistency check of a snapshot's file metadata against the files themselves.
//!
//! Paimon readers trust `DataFileMeta`: wrong levels, key ranges, row counts or
//! `_DELETE_ROW_COUNT` make them skip merging and return duplicates. This re-derives
//! every field from the data and reports the first mismatch.

use crate::data::reader::read_kv_file;
use crate::error::{Error, Result};
use crate::lsm::levels::Levels;
use crate::paths::TablePaths;
use crate::read::scan::BucketFiles;
use crate::table_info::TableInfo;

/// Checks every file of `buckets`; returns a description of the first problem.
pub fn verify_buckets(info: &TableInfo, paths: &TablePaths, buckets: &[BucketFiles]) -> Result<()> {
    for b in buckets {
        let dir = paths.bucket_dir(&info.partition_spec(&b.partition), b.bucket);
        let bad = |file: &str, m: String| Error::corrupt(dir.join(file), m);
        for f in &b.files {
            let name = &f.meta.file_name;
            let records = read_kv_file(info, &dir.join(name))?;
            if records.len() as i64 != f.meta.row_count {
                return Err(bad(name, format!("row count {} but {} rows", f.meta.row_count, records.len())));
            }
            if records.is_empty() {
                continue;
            }
            if records.windows(2).any(|w| w[0].key >= w[1].key) {
                return Err(bad(name, "keys not strictly increasing".into()));
            }
            if records[0].key != f.min_key || records[records.len() - 1].key != f.max_key {
                return Err(bad(name, "min/max key do not match the data".into()));
            }
            let deletes = records.iter().filter(|r| !r.kind.is_add()).count() as i64;
            if f.meta.delete_row_count.unwrap_or(0) != deletes {
                return Err(bad(name, format!("_DELETE_ROW_COUNT {:?} but {deletes}", f.meta.delete_row_count)));
            }
            let min_seq = records.iter().map(|r| r.seq).min().unwrap_or(0);
            let max_seq = records.iter().map(|r| r.seq).max().unwrap_or(0);
            if (min_seq, max_seq) != (f.meta.min_sequence_number, f.meta.max_sequence_number) {
                return Err(bad(name, "sequence number range does not match the data".into()));
            }
            let size = crate::fs::file_size(&dir.join(name))?;
            if size as i64 != f.meta.file_size {
                return Err(bad(name, format!("file size {} but {size} on disk", f.meta.file_size)));
            }
        }
        let levels = Levels::new(info.options.num_levels, b.files.clone())?;
        levels.check_non_overlapping().map_err(|m| Error::corrupt(&dir, format!("bucket {}: {m}", b.bucket)))?;
    }
    Ok(())
}
