//! Columnar merging for tables whose records of one key fold to "the newest wins"
//! (`deduplicate`): the write buffer is sorted and deduplicated once at flush, and sorted
//! runs are k-way merged straight from Arrow batches. Rows are never materialized as
//! [`Datum`](crate::row::Datum)s; output batches are gathered with `interleave`/`take`.
//!
//! With `sequence.field`, "newest" means the largest sequence-field value, then the
//! largest system sequence number (the order of [`super::merge::compare`]); the
//! sequence fields compare as memcomparable bytes ([`seq_field_keys`]), in which a null
//! sorts first as [`Datum::Null`](crate::row::Datum) does.
//!
//! Other merge engines go through [`super::merge::merge_sorted`] on [`KeyValue`](crate::row::KeyValue)s.

use crate::data::arrow_conv::kv_schema;
use crate::data::gather::gather_batch;
use crate::data::reader::KvBatchReader;
use crate::data::sort_key::{KeyForm, OwnedKey, SortKeys};
use crate::error::{Error, Result};
use crate::lsm::levels::FileRef;
use crate::options::MergeEngine;
use crate::row::RowKind;
use crate::table_info::TableInfo;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int8Type, Int64Type};
use arrow_buffer::ScalarBuffer;
use arrow_schema::SchemaRef;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// Rows per merged output batch.
const OUT_ROWS: usize = 8192;
/// Batches kept alive for the pending output before it is gathered early.
const MAX_PINNED: usize = 64;

/// Whether this table's records merge column-wise (see the module docs).
pub fn is_columnar(info: &TableInfo) -> bool {
    info.options.merge_engine == MergeEngine::Deduplicate
}

/// The sequence-field values of the rows of a key/value batch, in comparable form;
/// `None` for a table without `sequence.field`.
pub fn seq_field_keys(info: &TableInfo, batch: &RecordBatch) -> Result<Option<SortKeys>> {
    let first = info.key_types.len() + 2;
    let columns: Vec<arrow_array::ArrayRef> =
        info.sequence_indices.iter().map(|&i| batch.column(first + i).clone()).collect();
    seq_keys(&columns)
}

/// [`seq_field_keys`] of the sequence-field columns themselves (in the order of
/// `sequence.field`); `None` when there are none.
pub fn seq_keys(columns: &[arrow_array::ArrayRef]) -> Result<Option<SortKeys>> {
    if columns.is_empty() {
        return Ok(None);
    }
    SortKeys::new(KeyForm::Bytes, columns).map(Some)
}

/// Orders two records of one key by their sequence-field values (`Equal` without
/// `sequence.field`).
fn cmp_seq_fields(a: Option<&SortKeys>, i: usize, b: Option<&SortKeys>, j: usize) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp_rows(i, b, j),
        _ => Ordering::Equal,
    }
}

/// What survives of one key's records.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `ignore-delete`: retractions never win.
    pub ignore_delete: bool,
    /// The winner is dropped when it is a retraction (nothing older lies below).
    pub drop_delete: bool,
}

pub(crate) fn is_add(kind: i8) -> bool {
    RowKind::from_byte(kind).is_some_and(RowKind::is_add)
}

pub(crate) fn arrow_err(op: &'static str) -> impl FnOnce(arrow_schema::ArrowError) -> Error {
    move |source| Error::Arrow { op, source }
}

fn key_columns(info: &TableInfo, batch: &RecordBatch) -> Vec<arrow_array::ArrayRef> {
    batch.columns()[..info.key_types.len()].to_vec()
}

pub(crate) fn seqs_and_kinds(info: &TableInfo, batch: &RecordBatch) -> Result<(ScalarBuffer<i64>, ScalarBuffer<i8>)> {
    let arity = info.key_types.len();
    let seqs = batch
        .column(arity)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::corrupt("<data file>", "_SEQUENCE_NUMBER is not BIGINT"))?;
    let kinds = batch
        .column(arity + 1)
        .as_primitive_opt::<Int8Type>()
        .ok_or_else(|| Error::corrupt("<data file>", "_VALUE_KIND is not TINYINT"))?;
    Ok((seqs.values().clone(), kinds.values().clone()))
}

/// Sorts a write-buffer batch (arrival order = sequence order) by key and keeps one
/// record per key: the newest (the newest add with `ignore-delete`). Retractions stay:
/// they shadow older data in lower levels.
pub fn sort_dedupe(info: &TableInfo, batch: &RecordBatch) -> Result<RecordBatch> {
    let keys = SortKeys::new(KeyForm::of(&info.key_types), &key_columns(info, batch))?;
    let (_, kinds) = seqs_and_kinds(info, batch)?;
    let seq_fields = seq_field_keys(info, batch)?;
    let out = dedupe_order(info, &keys, seq_fields.as_ref(), &kinds);
    if out.len() == batch.num_rows() && out.windows(2).all(|w| w[0] < w[1]) {
        return Ok(batch.clone());
    }
    let refs: Vec<(usize, usize)> = out.iter().map(|&r| (0, r as usize)).collect();
    gather_batch(&[batch], &refs).map_err(arrow_err("gathering the sorted write buffer"))
}

/// The rows of a write buffer (keys, sequence-field values and kinds in arrival order)
/// that [`sort_dedupe`] keeps, in key order: per key, the record with the largest
/// sequence-field value, the last to arrive among equals.
pub fn dedupe_order(info: &TableInfo, keys: &SortKeys, seq_fields: Option<&SortKeys>, kinds: &[i8]) -> Vec<u32> {
    let idx = keys.sorted_indices();
    let mut out: Vec<u32> = Vec::with_capacity(idx.len());
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && keys.cmp_rows(idx[j] as usize, keys, idx[i] as usize) == Ordering::Equal {
            j += 1;
        }
        // `idx` is stable: within a key, arrival order.
        let mut winner: Option<u32> = None;
        for &r in &idx[i..j] {
            if info.options.ignore_delete && !is_add(kinds[r as usize]) {
                continue;
            }
            let newer =
                winner.is_none_or(|w| cmp_seq_fields(seq_fields, r as usize, seq_fields, w as usize) != Ordering::Less);
            if newer {
                winner = Some(r);
            }
        }
        if let Some(w) = winner {
            out.push(w);
        }
        i = j;
    }
    out
}

/// One sorted run to merge: its parts in key order (one part for a level-0 run).
pub struct Run {
    pub parts: Vec<RunPart>,
}

/// A file of a run, read from disk or, when the writer still holds what it wrote there
/// (a level-0 flush, see [`crate::write::batch_cache`]), taken from memory.
pub enum RunPart {
    File(PathBuf),
    Batches(Vec<RecordBatch>),
}

/// Groups files into sorted runs: every level-0 file alone, each level >= 1 as one run
/// ordered by min key; `part` turns each file into what the merge reads.
pub fn group_runs<P>(files: &[FileRef], part: impl Fn(&FileRef) -> P) -> Vec<Vec<P>> {
    let mut runs: Vec<Vec<P>> = Vec::new();
    let mut upper: std::collections::BTreeMap<i32, Vec<&FileRef>> = std::collections::BTreeMap::new();
    for f in files {
        if f.level() == 0 {
            runs.push(vec![part(f)]);
        } else {
            upper.entry(f.level()).or_default().push(f);
        }
    }
    for (_, mut level) in upper {
        level.sort_by(|a, b| a.min_key.cmp(&b.min_key));
        runs.push(level.into_iter().map(&part).collect());
    }
    runs
}

/// [`group_runs`] for the columnar merge. `cached` gives the in-memory content of a
/// file, if any.
pub fn runs_of(dir: &Path, files: &[FileRef], cached: impl Fn(&FileRef) -> Option<Vec<RecordBatch>>) -> Vec<Run> {
    let part = |f: &FileRef| cached(f).map_or_else(|| RunPart::File(dir.join(&f.meta.file_name)), RunPart::Batches);
    group_runs(files, part).into_iter().map(|parts| Run { parts }).collect()
}

/// Read position in one run.
struct Cursor<'a> {
    parts: std::vec::IntoIter<RunPart>,
    reader: Option<KvBatchReader<'a>>,
    /// The rest of an in-memory part: its batches, and the offset of the next slice
    /// of the first one.
    memory: Option<(std::collections::VecDeque<RecordBatch>, usize)>,
    batch: RecordBatch,
    keys: SortKeys,
    /// The sequence-field values of `batch` (`sequence.field` tables).
    seq_fields: Option<SortKeys>,
    seqs: ScalarBuffer<i64>,
    kinds: ScalarBuffer<i8>,
    pos: usize,
    /// Index of `batch` in the pinned batches.
    slot: usize,
}

impl<'a> Cursor<'a> {
    /// Moves to the next non-empty batch; `false` when the run is exhausted.
    fn load_next(&mut self, info: &'a TableInfo, schema: &SchemaRef, pinned: &mut Vec<RecordBatch>) -> Result<bool> {
        loop {
            if self.reader.is_none() && self.memory.is_none() {
                match self.parts.next() {
                    None => return Ok(false),
                    Some(RunPart::File(path)) => self.reader = Some(KvBatchReader::open(info, schema.clone(), &path)?),
                    Some(RunPart::Batches(b)) => self.memory = Some((b.into(), 0)),
                }
            }
            let next = if let Some((batches, offset)) = self.memory.as_mut() {
                while batches.front().is_some_and(|b| *offset >= b.num_rows()) {
                    batches.pop_front();
                    *offset = 0;
                }
                batches.front().map(|b| {
                    let len = OUT_ROWS.min(b.num_rows() - *offset);
                    let slice = b.slice(*offset, len);
                    *offset += len;
                    slice
                })
            } else {
                match self.reader.as_mut() {
                    Some(r) => r.next_batch()?,
                    None => None,
                }
            };
            match next {
                None => {
                    self.reader = None;
                    self.memory = None;
                }
                Some(b) if b.num_rows() == 0 => {}
                Some(b) => {
                    self.keys = SortKeys::new(KeyForm::of(&info.key_types), &key_columns(info, &b))?;
                    self.seq_fields = seq_field_keys(info, &b)?;
                    (self.seqs, self.kinds) = seqs_and_kinds(info, &b)?;
                    self.pos = 0;
                    pinned.push(b.clone());
                    self.slot = pinned.len() - 1;
                    self.batch = b;
                    return Ok(true);
                }
            }
        }
    }

    /// Key, then sequence-field values, then system sequence number: within one key
    /// the record that wins comes last.
    fn cmp(&self, other: &Cursor<'_>) -> Ordering {
        self.keys
            .cmp_rows(self.pos, &other.keys, other.pos)
            .then_with(|| cmp_seq_fields(self.seq_fields.as_ref(), self.pos, other.seq_fields.as_ref(), other.pos))
            .then_with(|| self.seqs[self.pos].cmp(&other.seqs[other.pos]))
    }
}

/// Merges sorted runs into key-ordered batches (one record per key, per `policy`),
/// handing each output batch to `sink`. Memory is bounded by a few batches per run.
pub fn merge_runs(
    info: &TableInfo,
    runs: Vec<Run>,
    policy: Policy,
    mut sink: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let schema = kv_schema(info);
    let mut pinned: Vec<RecordBatch> = Vec::new();
    let mut cursors: Vec<Cursor<'_>> = Vec::with_capacity(runs.len());
    for run in runs {
        let mut c = Cursor {
            parts: run.parts.into_iter(),
            reader: None,
            memory: None,
            batch: RecordBatch::new_empty(schema.clone()),
            keys: SortKeys::Int(Vec::new()),
            seq_fields: None,
            seqs: ScalarBuffer::from(Vec::<i64>::new()),
            kinds: ScalarBuffer::from(Vec::<i8>::new()),
            pos: 0,
            slot: 0,
        };
        if c.load_next(info, &schema, &mut pinned)? {
            cursors.push(c);
        }
    }
    let mut pending: Vec<(usize, usize)> = Vec::with_capacity(OUT_ROWS);
    let mut group_key = OwnedKey::Int(0);
    let mut in_group = false;
    let mut winner: Option<(usize, usize, i8)> = None;

    let emit = |winner: Option<(usize, usize, i8)>, pending: &mut Vec<(usize, usize)>| {
        if let Some((slot, row, kind)) = winner {
            if !(policy.drop_delete && !is_add(kind)) {
                pending.push((slot, row));
            }
        }
    };
    let gather = |pinned: &[RecordBatch], pending: &[(usize, usize)]| -> Result<RecordBatch> {
        let refs: Vec<&RecordBatch> = pinned.iter().collect();
        gather_batch(&refs, pending).map_err(arrow_err("gathering merged rows"))
    };

    loop {
        let mut best: Option<usize> = None;
        for ci in 0..cursors.len() {
            best = match best {
                Some(b) if cursors[ci].cmp(&cursors[b]) != Ordering::Less => Some(b),
                _ => Some(ci),
            };
        }
        let Some(b) = best else { break };
        let same = {
            let c = &cursors[b];
            in_group && c.keys.eq_owned(c.pos, &group_key)
        };
        if !same {
            if in_group {
                emit(winner.take(), &mut pending);
                if pending.len() >= OUT_ROWS || pinned.len() >= MAX_PINNED {
                    if !pending.is_empty() {
                        sink(gather(&pinned, &pending)?)?;
                        pending.clear();
                    }
                    pinned.clear();
                    for c in cursors.iter_mut() {
                        pinned.push(c.batch.clone());
                        c.slot = pinned.len() - 1;
                    }
                }
            }
            let c = &cursors[b];
            c.keys.copy_into(c.pos, &mut group_key);
            in_group = true;
        }
        let c = &mut cursors[b];
        let kind = c.kinds[c.pos];
        if !policy.ignore_delete || is_add(kind) {
            winner = Some((c.slot, c.pos, kind));
        }
        c.pos += 1;
        if c.pos == c.batch.num_rows() && !c.load_next(info, &schema, &mut pinned)? {
            cursors.swap_remove(b);
        }
    }
    if in_group {
        emit(winner.take(), &mut pending);
    }
    if !pending.is_empty() {
        sink(gather(&pinned, &pending)?)?;
    }
    Ok(())
}
