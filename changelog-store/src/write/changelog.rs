//! Changelog production at flush time (`changelog-producer` = `lookup`): the record each
//! flushed key had before the flush is looked up in the bucket's files, and the
//! difference is emitted as `-U/+U`, `+I` or `-D`.
//!
//! Either way, files the decoded-file cache cannot hold are read with a filter on their
//! key columns ([`lookup_file`]).
//!
//! `deduplicate` tables do it column-wise ([`columnar_changelog`]): the newest earlier
//! record of each key is found by searching files newest first (level 0 newest first,
//! then levels 1, 2, …), as Paimon's `LookupLevels` does, and the changelog is gathered
//! from the flushed batch and the rows found. With `sequence.field` every overlapping
//! file is searched, since a record in an older file may carry a larger sequence value.
//! The other merge engines fold every earlier record of a key with their merge
//! function, row-wise ([`diff`]).

use crate::data::arrow_conv::kv_schema;
use crate::data::arrow_conv::{datum_at, key_at};
use crate::data::gather::gather_batch;
use crate::data::reader::KvBatchReader;
use crate::data::sort_key::{KeyForm, OwnedKey, SortKeys};
use crate::error::Result;
use crate::lsm::columnar::{arrow_err, is_add, seq_field_keys, seqs_and_kinds};
use crate::lsm::levels::{FileRef, Levels};
use crate::row::{Key, KeyValue, RowKind};
use crate::table_info::TableInfo;
use crate::write::file_cache::CachedFile;
use crate::write::file_cache::FileCache;
use arrow_array::{ArrayRef, BooleanArray, Int8Array, Int64Array, RecordBatch};
use arrow_buffer::BooleanBufferBuilder;
use arrow_schema::ArrowError;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Emits `-U/+U`, `+I` or `-D` for one key from its visible value before and after.
pub fn diff(before: Option<&KeyValue>, after: Option<&KeyValue>, row_deduplicate: bool, out: &mut Vec<KeyValue>) {
    let visible = |kv: Option<&KeyValue>| kv.filter(|k| k.kind.is_add()).cloned();
    match (visible(before), visible(after)) {
        (None, None) => {}
        (None, Some(a)) => out.push(KeyValue { kind: RowKind::Insert, ..a }),
        (Some(b), None) => {
            let seq = after.map_or(b.seq, |a| a.seq);
            out.push(KeyValue { kind: RowKind::Delete, seq, ..b })
        }
        (Some(b), Some(a)) => {
            if row_deduplicate && b.value == a.value {
                return;
            }
            out.push(KeyValue { kind: RowKind::UpdateBefore, seq: a.seq, ..b });
            out.push(KeyValue { kind: RowKind::UpdateAfter, ..a });
        }
    }
}

/// The files of `levels` whose key range overlaps `lo..=hi`, newest first: level 0
/// newest first, then levels 1, 2, …
pub fn overlapping<'a>(levels: &'a Levels, lo: &Key, hi: &Key) -> Vec<&'a FileRef> {
    levels.all_files().filter(|f| f.overlaps(Some(lo), Some(hi))).collect()
}

/// Calls `hit(k, rows)` for every key `k` of `probe` (ascending, distinct) that `file`
/// (ascending) holds, with the range of the file's rows holding it. Files written by
/// others may hold several records of one key.
pub fn for_each_match(file: &SortKeys, probe: &SortKeys, mut hit: impl FnMut(usize, Range<usize>)) {
    let rows = file.len();
    // The keys ascend: each search starts where the previous one ended.
    let mut from = 0;
    for k in 0..probe.len() {
        // Binary search for the first row not below key k.
        let (mut lo, mut hi) = (from, rows);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if file.cmp_rows(mid, probe, k).is_lt() { lo = mid + 1 } else { hi = mid }
        }
        from = lo;
        let mut end = lo;
        while end < rows && file.cmp_rows(end, probe, k).is_eq() {
            end += 1;
        }
        if end > lo {
            hit(k, lo..end);
        }
    }
}

/// The changelog of a flush of a `deduplicate` table, or `None` when nothing visible
/// changed. `flushed` is the flushed key/value batch: sorted, one record per key. With
/// `sequence.field`, a flushed record whose sequence value is below the key's current
/// record's changes nothing (it loses the merge).
///
/// A file in the decoded-file cache is searched there. Any other file is decoded whole
/// (and cached) only while it fits in the room the cache has left; a file that does not
/// is read with a filter on its key columns, so that only the rows of flushed keys are
/// decoded beyond the keys. Only the rows found are kept while the files are searched:
/// memory stays bounded by the cache and the flush, however large the table.
pub fn columnar_changelog(
    info: &TableInfo,
    levels: &Levels,
    cache: &mut FileCache,
    dir: &Path,
    flushed: &RecordBatch,
) -> Result<Option<RecordBatch>> {
    let n = flushed.num_rows();
    if n == 0 {
        return Ok(None);
    }
    let arity = info.key_types.len();
    let ignore_delete = info.options.ignore_delete;
    let form = KeyForm::of(&info.key_types);
    let probe = Arc::new(SortKeys::new(form, &flushed.columns()[..arity])?);
    let probe_seq = seq_field_keys(info, flushed)?;
    let files = overlapping(levels, &key_at(info, flushed, 0)?, &key_at(info, flushed, n - 1)?);
    // Per flushed key: not found yet (None), absent or deleted (Some(None)), or row `.1`
    // of source `.0` (sources: the flushed batch, then the rows found in each file).
    let mut before: Vec<Option<Option<(usize, usize)>>> = vec![None; n];
    // With `sequence.field`: the sequence values and number of the record in `before`.
    let mut held: Vec<Option<(OwnedKey, i64)>> = vec![None; if probe_seq.is_some() { n } else { 0 }];
    let mut unresolved = n;
    let mut found: Vec<RecordBatch> = Vec::new();
    for f in files {
        // Without `sequence.field` the newest file holding a key decides it.
        if unresolved == 0 && probe_seq.is_none() {
            break;
        }
        let file = lookup_file(info, cache, dir, f, flushed, &probe)?;
        let (seqs, kinds) = seqs_and_kinds(info, &file.batch)?;
        let file_seq = seq_field_keys(info, &file.batch)?;
        let source = found.len() + 1;
        let mut rows: Vec<(usize, usize)> = Vec::new();
        for_each_match(&file.keys, &probe, |k, range| {
            if before[k].is_some() && file_seq.is_none() {
                return;
            }
            // With `ignore-delete` a retraction is no record at all: look further down.
            let candidates = range.filter(|&r| !ignore_delete || is_add(kinds[r]));
            let newest = match &file_seq {
                None => candidates.max_by_key(|&r| seqs[r]),
                Some(fs) => candidates.max_by(|&a, &b| fs.cmp_rows(a, fs, b).then(seqs[a].cmp(&seqs[b]))),
            };
            let Some(r) = newest else { return };
            if let Some(fs) = &file_seq {
                let newer = match &held[k] {
                    None => true,
                    Some((value, seq)) => fs.cmp_owned(r, value).then(seqs[r].cmp(seq)).is_gt(),
                };
                if !newer {
                    return;
                }
                let mut value = OwnedKey::Int(0);
                fs.copy_into(r, &mut value);
                held[k] = Some((value, seqs[r]));
            }
            if before[k].is_none() {
                unresolved -= 1;
            }
            before[k] = Some(is_add(kinds[r]).then(|| {
                rows.push((0, r));
                (source, rows.len() - 1)
            }));
        });
        if !rows.is_empty() {
            found.push(gather_batch(&[&file.batch], &rows).map_err(arrow_err("gathering looked-up rows"))?);
        }
    }

    let (seqs, kinds) = seqs_and_kinds(info, flushed)?;
    let mut sources: Vec<&RecordBatch> = vec![flushed];
    sources.extend(found.iter());
    let mut refs = Vec::new();
    let (mut out_seqs, mut out_kinds) = (Vec::new(), Vec::new());
    let mut emit = |at: (usize, usize), kind: RowKind, seq: i64| {
        refs.push(at);
        out_kinds.push(kind.to_byte());
        out_seqs.push(seq);
    };
    for (k, before) in before.into_iter().enumerate() {
        let (after, seq) = (is_add(kinds[k]), seqs[k]);
        if ignore_delete && !after {
            // The retraction is ignored: the key keeps its value.
            continue;
        }
        if let (Some(ps), Some(Some((value, _)))) = (&probe_seq, held.get(k)) {
            if ps.cmp_owned(k, value).is_lt() {
                // An older record by sequence value: the key keeps its record.
                continue;
            }
        }
        match (before.flatten(), after) {
            (None, false) => {}
            (None, true) => emit((0, k), RowKind::Insert, seq),
            (Some(b), false) => emit(b, RowKind::Delete, seq),
            (Some(b), true) => {
                if info.options.changelog_row_deduplicate && same_values(info, sources[b.0], b.1, flushed, k)? {
                    continue;
                }
                emit(b, RowKind::UpdateBefore, seq);
                emit((0, k), RowKind::UpdateAfter, seq);
            }
        }
    }
    if refs.is_empty() {
        return Ok(None);
    }
    let gathered = gather_batch(&sources, &refs).map_err(arrow_err("gathering the changelog"))?;
    let mut columns = gathered.columns().to_vec();
    columns[arity] = Arc::new(Int64Array::from(out_seqs)) as ArrayRef;
    columns[arity + 1] = Arc::new(Int8Array::from(out_kinds)) as ArrayRef;
    RecordBatch::try_new(gathered.schema(), columns).map(Some).map_err(arrow_err("building the changelog"))
}

/// What a lookup of the keys `probe` of the batch `flushed` searches in the file `f`:
/// the cached file; else the whole file, decoded and cached, while it fits in the room the
/// cache has left (estimated at the flushed batch's bytes per row); else only its records
/// whose key is one of `probe`, read with a filter on the key columns.
pub fn lookup_file(
    info: &TableInfo,
    cache: &mut FileCache,
    dir: &Path,
    f: &FileRef,
    flushed: &RecordBatch,
    probe: &Arc<SortKeys>,
) -> Result<Arc<CachedFile>> {
    let name = &f.meta.file_name;
    if let Some(file) = cache.hit(name) {
        return Ok(file);
    }
    let bytes_per_row = flushed.get_array_memory_size() / flushed.num_rows().max(1);
    let whole = usize::try_from(f.meta.row_count).unwrap_or(usize::MAX).saturating_mul(bytes_per_row);
    // Kept whole only if it fits in what the budget has left: a file that would push
    // others out is probed for the keys instead (a flush probes every file of the
    // bucket in turn, and evicting to fit each would decode every file every time).
    if whole <= cache.room() {
        return cache.get(info, dir, name);
    }
    Ok(Arc::new(read_matching(info, &dir.join(name), KeyForm::of(&info.key_types), probe.clone())?))
}

/// The records of the file at `path` whose key is one of `probe` (ascending), decoding
/// the other columns only for them.
fn read_matching(info: &TableInfo, path: &Path, form: KeyForm, probe: Arc<SortKeys>) -> Result<CachedFile> {
    // The file ascends too: one cursor into the probe keys serves the whole file.
    let mut at = 0;
    let keep = move |keys: &[ArrayRef]| {
        let keys = SortKeys::new(form, keys).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
        let mut mask = BooleanBufferBuilder::new(keys.len());
        for i in 0..keys.len() {
            while at < probe.len() && probe.cmp_rows(at, &keys, i).is_lt() {
                at += 1;
            }
            mask.append(at < probe.len() && probe.cmp_rows(at, &keys, i).is_eq());
        }
        Ok(BooleanArray::new(mask.finish(), None))
    };
    CachedFile::new(info, KvBatchReader::open_filtered(info, kv_schema(info), path, keep)?.read_to_batch()?)
}

/// Whether row `i` of `a` and row `j` of `b` (key/value batches) hold the same values.
fn same_values(info: &TableInfo, a: &RecordBatch, i: usize, b: &RecordBatch, j: usize) -> Result<bool> {
    let first = info.key_types.len() + 2;
    for (c, ty) in info.value_types.iter().enumerate() {
        if datum_at(a.column(first + c), ty, i)? != datum_at(b.column(first + c), ty, j)? {
            return Ok(false);
        }
    }
    Ok(true)
}
