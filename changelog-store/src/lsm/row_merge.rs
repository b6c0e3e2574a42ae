//! Streaming k-way merge of sorted runs for the row-wise merge engines (partial-update,
//! aggregation, first-row, deduplicate with `sequence.field`): each run is read a batch
//! at a time, so a compaction holds a few batches per run, not its whole input, as rows.
//! The records of one key are gathered from every run, put in [`compare`] order and
//! folded with the table's merge function, as [`super::merge::merge_sorted`] does for a
//! write buffer.

use crate::data::arrow_conv::{from_batch, kv_schema};
use crate::data::reader::KvBatchReader;
use crate::error::Result;
use crate::lsm::columnar::group_runs;
use crate::lsm::levels::FileRef;
use crate::lsm::merge::compare;
use crate::merge::MergeFunction;
use crate::row::{Key, KeyValue};
use crate::table_info::TableInfo;
use crate::write::file_cache::CachedFile;
use arrow_schema::SchemaRef;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Records decoded into rows at a time from a cached file.
const CHUNK_ROWS: usize = 8192;

/// A file of a run: decoded in memory, or on disk.
pub enum RowPart {
    Cached(Arc<CachedFile>),
    File(PathBuf),
}

/// The sorted runs of `files` ([`group_runs`]); `cached` gives a file's decoded
/// content, if the writer has it.
pub fn row_runs_of(
    dir: &Path,
    files: &[FileRef],
    cached: impl Fn(&FileRef) -> Option<Arc<CachedFile>>,
) -> Vec<Vec<RowPart>> {
    group_runs(files, |f| cached(f).map_or_else(|| RowPart::File(dir.join(&f.meta.file_name)), RowPart::Cached))
}

/// Read position in one run.
struct RowCursor<'a> {
    parts: std::vec::IntoIter<RowPart>,
    reader: Option<KvBatchReader<'a>>,
    /// A cached part and the offset of its next chunk.
    cached: Option<(Arc<CachedFile>, usize)>,
    buf: VecDeque<KeyValue>,
}

impl<'a> RowCursor<'a> {
    /// The next record of the run, decoding more when the buffer is empty.
    fn peek(&mut self, info: &'a TableInfo, schema: &SchemaRef) -> Result<Option<&KeyValue>> {
        while self.buf.is_empty() {
            if let Some((file, at)) = self.cached.as_mut() {
                let rows = file.batch.num_rows();
                if *at >= rows {
                    self.cached = None;
                    continue;
                }
                let len = CHUNK_ROWS.min(rows - *at);
                let mut out = Vec::with_capacity(len);
                from_batch(info, &file.batch.slice(*at, len), &mut out)?;
                *at += len;
                self.buf.extend(out);
            } else if let Some(reader) = self.reader.as_mut() {
                match reader.next_batch()? {
                    Some(b) => {
                        let mut out = Vec::with_capacity(b.num_rows());
                        from_batch(info, &b, &mut out)?;
                        self.buf.extend(out);
                    }
                    None => self.reader = None,
                }
            } else {
                match self.parts.next() {
                    None => return Ok(None),
                    Some(RowPart::Cached(file)) => self.cached = Some((file, 0)),
                    Some(RowPart::File(path)) => self.reader = Some(KvBatchReader::open(info, schema.clone(), &path)?),
                }
            }
        }
        Ok(self.buf.front())
    }
}

/// Merges `runs` (each sorted by key) and hands every key's merged record to `emit`, in
/// key order. Retractions are emitted too (they shadow older data); callers drop them
/// when nothing older lies below.
pub fn merge_row_runs(
    info: &TableInfo,
    runs: Vec<Vec<RowPart>>,
    merge: &mut dyn MergeFunction,
    mut emit: impl FnMut(KeyValue) -> Result<()>,
) -> Result<()> {
    let schema = kv_schema(info);
    let mut cursors: Vec<RowCursor<'_>> = runs
        .into_iter()
        .map(|parts| RowCursor { parts: parts.into_iter(), reader: None, cached: None, buf: VecDeque::new() })
        .collect();
    loop {
        let mut min: Option<Key> = None;
        for c in cursors.iter_mut() {
            if let Some(kv) = c.peek(info, &schema)?
                && min.as_ref().is_none_or(|m| kv.key < *m)
            {
                min = Some(kv.key.clone());
            }
        }
        let Some(key) = min else {
            return Ok(());
        };
        let mut group = Vec::new();
        for c in cursors.iter_mut() {
            while c.peek(info, &schema)?.is_some_and(|kv| kv.key == key) {
                group.extend(c.buf.pop_front());
            }
        }
        group.sort_by(|a, b| compare(info, a, b));
        merge.reset();
        for kv in group {
            merge.add(kv)?;
        }
        if let Some(r) = merge.result() {
            emit(r)?;
        }
    }
}
