//! The writer of one (partition, bucket): write buffer, level-0 flushes, changelog
//! production and universal compaction.

use crate::clock::SharedClock;
use crate::commit::CommitMessage;
use crate::data::arrow_conv::{from_batch, kv_schema, to_batch};
use crate::data::sort_key::{KeyForm, SortKeys};
use crate::data::writer::{BATCH_ROWS, FileSpec, RollingWriter, write_kv_batch};
use crate::error::{Error, Result};
use crate::fs;
use crate::lsm::columnar::{self, Policy};
use crate::lsm::compaction::{self, CompactUnit};
use crate::lsm::levels::{FileRef, Levels};
use crate::lsm::merge::{compare, merge_sorted};
use crate::lsm::row_merge;
use crate::merge::{MergeFunction, merge_function};
use crate::options::{ChangelogProducer, MergeEngine};
use crate::row::{Datum, KeyValue, RowKind};
use crate::spec::manifest::{DataFileMeta, FILE_SOURCE_APPEND, FILE_SOURCE_COMPACT};
use crate::table_info::TableInfo;
use crate::write::batch_cache::{BatchBudget, BatchCache};
use crate::write::changelog::{self, diff};
use crate::write::file_cache::{CachedFile, FileBudget, FileCache};
use crate::write::write_buffer::WriteBuffer;
use arrow_array::RecordBatch;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Writer state of one bucket.
pub struct BucketWriter {
    info: Arc<TableInfo>,
    partition: Vec<Datum>,
    bucket: i32,
    dir: PathBuf,
    levels: Levels,
    next_seq: i64,
    buffer: WriteBuffer,
    pending: CommitMessage,
    cache: FileCache,
    /// Level-0 files of columnar tables still in memory, for the compaction that takes them.
    batches: BatchCache,
    merge: Box<dyn MergeFunction>,
    clock: SharedClock,
    /// Write-only mode: never compact (a dedicated compactor does it).
    write_only: bool,
    /// No changelog for what is flushed while set ([`TableWrite::set_changelog`]).
    changelog_off: bool,
    /// The compaction running in the background, if any (one per bucket at a time).
    running: Option<std::thread::JoinHandle<Result<CompactOutput>>>,
}

/// Memory budgets shared by the bucket writers of one table write: by default its
/// own, from the table's options; a process writing many tables can share one set
/// across their writes ([`TableWrite::with_budgets`](crate::TableWrite::with_budgets)),
/// so that its memory does not grow with the number of tables. A writer over the decoded
/// files' budget evicts its own files and idle writers' ([`FileBudget`]); the batches'
/// budget refuses what does not fit.
#[derive(Debug, Clone)]
pub struct Budgets {
    /// Batches kept for the compaction that takes a file ([`BatchCache`]).
    pub batches: Arc<BatchBudget>,
    /// Decoded files kept for lookups and row-wise compactions ([`FileCache`],
    /// `lookup.cache-max-memory-size`).
    pub files: Arc<FileBudget>,
}

impl Budgets {
    /// At most `batches` bytes of written files kept for compaction and `files` bytes
    /// of decoded files kept for lookups.
    pub fn new(batches: usize, files: usize) -> Self {
        Budgets { batches: BatchBudget::new(batches), files: FileBudget::new(files) }
    }

    /// `mib` MiB in all, half for each cache (a worker's `*_cache_mib` setting).
    pub fn halves_of_mib(mib: usize) -> Self {
        let half = mib.saturating_mul(1 << 20) / 2;
        Self::new(half, half)
    }
}

/// What a background compaction hands back.
pub struct CompactOutput {
    unit: CompactUnit,
    outputs: Vec<DataFileMeta>,
    /// The merged records as written, for the decoded-file cache (row-wise engines
    /// only, while they are few).
    records: Option<RecordBatch>,
    /// The merged batches of a small single-file output (columnar engines only), for the
    /// compaction that takes the file next.
    batches: Option<Vec<arrow_array::RecordBatch>>,
}

/// The batches a compaction writes, kept for the writer's caches while they are few:
/// at most an eighth of `write-buffer-size` (the small lower-level runs that are merged
/// again soon). Past that, none are kept.
struct Kept {
    limit: usize,
    bytes: usize,
    batches: Option<Vec<RecordBatch>>,
}

impl Kept {
    fn new(info: &TableInfo) -> Self {
        let limit = usize::try_from(info.options.write_buffer_size / 8).unwrap_or(usize::MAX);
        Kept { limit, bytes: 0, batches: Some(Vec::new()) }
    }

    fn push(&mut self, batch: RecordBatch) {
        self.bytes += batch.get_array_memory_size();
        match self.batches.as_mut() {
            Some(k) if self.bytes <= self.limit => k.push(batch),
            _ => self.batches = None,
        }
    }
}

/// Merges the unit's files and writes the result; runs on a background thread.
fn compact_files(
    info: &TableInfo,
    dir: &std::path::Path,
    unit: CompactUnit,
    inputs: Vec<Option<Arc<CachedFile>>>,
    batches: HashMap<String, Vec<arrow_array::RecordBatch>>,
    now_millis: i64,
) -> Result<CompactOutput> {
    let spec = FileSpec {
        prefix: "data",
        level: unit.output_level,
        file_source: FILE_SOURCE_COMPACT,
        target_size: info.options.target_file_size,
    };
    // With `sequence.field`, a delete must outlive compaction: a record with a
    // smaller sequence value may still arrive and must stay shadowed by it.
    let drop_delete = unit.drop_delete && info.sequence_indices.is_empty();
    if columnar::is_columnar(info) {
        let policy = Policy { ignore_delete: info.options.ignore_delete, drop_delete };
        let mut writer = RollingWriter::new(info, dir, spec, now_millis)?;
        let runs = columnar::runs_of(dir, &unit.files, |f| batches.get(&f.meta.file_name).cloned());
        let mut kept = Kept::new(info);
        columnar::merge_runs(info, runs, policy, |b| {
            writer.write(&b)?;
            kept.push(b);
            Ok(())
        })?;
        let outputs = writer.finish()?;
        let batches = if outputs.len() == 1 { kept.batches } else { None };
        return Ok(CompactOutput { unit, outputs, records: None, batches });
    }
    let cached: HashMap<&str, Arc<CachedFile>> =
        unit.files.iter().zip(inputs).filter_map(|(f, c)| c.map(|c| (f.meta.file_name.as_str(), c))).collect();
    let runs = row_merge::row_runs_of(dir, &unit.files, |f| cached.get(f.meta.file_name.as_str()).cloned());
    let mut merge = merge_function(info)?;
    let mut writer = RollingWriter::new(info, dir, spec, now_millis)?;
    let schema = writer.schema().clone();
    let mut kept = Kept::new(info);
    let mut chunk: Vec<KeyValue> = Vec::with_capacity(BATCH_ROWS);
    let mut write_chunk = |chunk: &mut Vec<KeyValue>, writer: &mut RollingWriter<'_>| -> Result<()> {
        let batch = to_batch(info, &schema, chunk)?;
        chunk.clear();
        writer.write(&batch)?;
        kept.push(batch);
        Ok(())
    };
    row_merge::merge_row_runs(info, runs, merge.as_mut(), |r| {
        if drop_delete && !r.kind.is_add() {
            return Ok(());
        }
        chunk.push(r);
        if chunk.len() >= BATCH_ROWS {
            write_chunk(&mut chunk, &mut writer)?;
        }
        Ok(())
    })?;
    if !chunk.is_empty() {
        write_chunk(&mut chunk, &mut writer)?;
    }
    let outputs = writer.finish()?;
    let kept = kept
        .batches
        .map(|k| arrow_select::concat::concat_batches(&schema, &k))
        .transpose()
        .map_err(|source| Error::Arrow { op: "concatenating compacted batches", source })?;
    Ok(CompactOutput { unit, outputs, records: kept, batches: None })
}

impl BucketWriter {
    /// A writer continuing from `files`, the bucket's live files in the latest snapshot.
    pub fn new(
        info: Arc<TableInfo>,
        dir: PathBuf,
        partition: Vec<Datum>,
        bucket: i32,
        files: Vec<DataFileMeta>,
        clock: SharedClock,
        budgets: Budgets,
    ) -> Result<Self> {
        let refs = files.into_iter().map(|m| FileRef::new(&info, m)).collect::<Result<Vec<_>>>()?;
        let levels = Levels::new(info.options.num_levels, refs)?;
        let next_seq = levels.max_sequence_number() + 1;
        Ok(BucketWriter {
            buffer: WriteBuffer::new(&info),
            merge: merge_function(&info)?,
            pending: CommitMessage { partition: partition.clone(), bucket, ..Default::default() },
            info,
            partition,
            bucket,
            dir,
            levels,
            next_seq,
            cache: FileCache::new(budgets.files),
            batches: BatchCache::new(budgets.batches),
            clock,
            write_only: false,
            changelog_off: false,
            running: None,
        })
    }

    /// Turns off compaction, including the write stall at the stop trigger.
    pub fn set_write_only(&mut self, write_only: bool) {
        self.write_only = write_only;
    }

    /// Whether flushes write the table's changelog (default true).
    pub fn set_changelog(&mut self, on: bool) {
        self.changelog_off = !on;
    }

    /// The changelog producer for the next flush.
    fn producer(&self) -> ChangelogProducer {
        if self.changelog_off { ChangelogProducer::None } else { self.info.options.changelog_producer }
    }

    pub fn buffer_bytes(&self) -> usize {
        self.buffer.bytes()
    }

    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// Buffers one record (a full row in schema order); assigns the next sequence
    /// number of the bucket. Returns the bytes the buffer grew by.
    pub fn write(&mut self, kind: RowKind, value: &[Datum]) -> usize {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.buffer.push(value, seq, kind)
    }

    /// Buffers rows `rows` of `columns` (type-checked value columns), in that order,
    /// with kind `kind(row)`; returns the bytes charged to the buffer.
    pub fn write_batch(
        &mut self,
        columns: &[arrow_array::ArrayRef],
        rows: &[u32],
        kind: impl Fn(u32) -> RowKind,
    ) -> Result<usize> {
        let added = self.buffer.push_batch(columns, rows, self.next_seq, rows.iter().map(|&r| kind(r)))?;
        self.next_seq += rows.len() as i64;
        Ok(added)
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    fn spec(&self, prefix: &'static str, level: i32, source: i32) -> FileSpec {
        FileSpec { prefix, level, file_source: source, target_size: self.info.options.target_file_size }
    }

    /// Writes the buffer as a level-0 sorted run (plus changelog files), stalls into a
    /// compaction when the bucket reaches `num-sorted-run.stop-trigger` runs.
    pub fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if columnar::is_columnar(&self.info) {
            let input = self.info.options.changelog_producer == ChangelogProducer::Input;
            let (merged, raw) = self.buffer.take_sorted(&self.info, input)?;
            self.flush_columnar(merged, raw)?;
        } else {
            let raw = self.buffer.take(&self.info)?;
            self.flush_rows(raw)?;
        }
        if !self.write_only {
            self.finish_compaction(false)?;
            if self.levels.number_of_sorted_runs() >= self.info.options.stop_trigger {
                // Write stall: wait for the running compaction, then compact in line.
                tracing::debug!(bucket = self.bucket, "write stall at num-sorted-run.stop-trigger");
                self.finish_compaction(true)?;
                self.compact(false)?;
            } else {
                self.start_compaction()?;
            }
        }
        Ok(())
    }

    /// Level-0 flush for `deduplicate` tables: `merged` is the buffer sorted and
    /// deduplicated column-wise, `raw` the buffer in arrival order (`input` changelog).
    fn flush_columnar(
        &mut self,
        merged: arrow_array::RecordBatch,
        raw: Option<arrow_array::RecordBatch>,
    ) -> Result<()> {
        let files =
            write_kv_batch(&self.info, &self.dir, &merged, self.spec("data", 0, FILE_SOURCE_APPEND), self.now())?;
        let changelog = match self.producer() {
            ChangelogProducer::None => None,
            ChangelogProducer::Input => {
                Some(raw.ok_or_else(|| Error::Unsupported("input changelog without the arrival-order buffer".into()))?)
            }
            ChangelogProducer::Lookup => {
                changelog::columnar_changelog(&self.info, &self.levels, &mut self.cache, &self.dir, &merged)?
            }
        };
        if let Some(changelog) = changelog {
            self.write_changelog(&changelog)?;
        }
        // Write-only writers never compact: nothing would take the batch.
        if let ([only], false) = (files.as_slice(), self.write_only) {
            self.batches.insert(&only.file_name, vec![merged.clone()], 100);
        }
        // The next flushes look their keys up in this file first (it is the newest).
        let lookup = self.info.options.changelog_producer == ChangelogProducer::Lookup;
        self.install(files.clone(), lookup.then_some(merged))?;
        self.pending.new_files.extend(files);
        Ok(())
    }

    /// Level-0 flush for the other merge engines: merge row-wise with the merge function.
    fn flush_rows(&mut self, raw: arrow_array::RecordBatch) -> Result<()> {
        let mut records = Vec::with_capacity(raw.num_rows());
        from_batch(&self.info, &raw, &mut records)?;
        let producer = self.producer();
        let input_changelog = if producer == ChangelogProducer::Input { records.clone() } else { Vec::new() };
        let mut merged = merge_sorted(&self.info, records, self.merge.as_mut())?;
        let mut batch = to_batch(&self.info, &kv_schema(&self.info), &merged)?;
        let first_row = self.info.options.merge_engine == MergeEngine::FirstRow;
        if first_row {
            // A key already in the bucket keeps its first row: the later ones are not
            // written at all, so no two files hold a key. Java Paimon relies on that: its
            // batch scan of a first-row table reads the files of levels >= 1 without merging.
            let existing = self.lookup_all(&merged, &batch)?;
            if existing.iter().any(Option::is_some) {
                merged = merged.into_iter().zip(existing).filter(|(_, e)| e.is_none()).map(|(m, _)| m).collect();
                batch = to_batch(&self.info, &kv_schema(&self.info), &merged)?;
            }
            if merged.is_empty() {
                return Ok(());
            }
        }
        let changelog = match producer {
            ChangelogProducer::None => Vec::new(),
            ChangelogProducer::Input => input_changelog,
            // What is left of a first-row flush is new keys only: each an insert.
            ChangelogProducer::Lookup if first_row => {
                let mut out = Vec::with_capacity(merged.len());
                for m in &merged {
                    diff(None, Some(m), self.info.options.changelog_row_deduplicate, &mut out);
                }
                out
            }
            ChangelogProducer::Lookup => self.lookup_changelog(&merged, &batch)?,
        };
        let files =
            write_kv_batch(&self.info, &self.dir, &batch, self.spec("data", 0, FILE_SOURCE_APPEND), self.now())?;
        self.install(files.clone(), Some(batch))?;
        self.pending.new_files.extend(files);
        if changelog.is_empty() {
            return Ok(());
        }
        self.write_changelog(&to_batch(&self.info, &kv_schema(&self.info), &changelog)?)
    }

    /// Writes a flush's changelog (a key/value batch) as changelog files of this commit.
    fn write_changelog(&mut self, changelog: &RecordBatch) -> Result<()> {
        let spec = self.spec("changelog", 0, FILE_SOURCE_APPEND);
        let files = write_kv_batch(&self.info, &self.dir, changelog, spec, self.now())?;
        self.pending.changelog_files.extend(files);
        Ok(())
    }

    /// Adds freshly written files to the levels, and their records (the batch they were
    /// written from, when given) to the decoded-file cache. Without records, lookups read
    /// the files when needed.
    fn install(&mut self, files: Vec<DataFileMeta>, records: Option<RecordBatch>) -> Result<()> {
        let mut offset = 0;
        for meta in files {
            if let Some(all) = records.as_ref() {
                let n = (meta.row_count as usize).min(all.num_rows() - offset);
                let file = CachedFile::new(&self.info, all.slice(offset, n))?;
                self.cache.insert(&meta.file_name, Arc::new(file));
                offset += n;
            }
            self.levels.add(FileRef::new(&self.info, meta)?)?;
        }
        Ok(())
    }

    /// The current merged record of the key of each of `merged` (sorted, distinct keys;
    /// `batch` holds the same records) in this bucket's files (not the buffer). Each file
    /// whose key range overlaps is searched once for all the keys
    /// ([`changelog::lookup_file`]: from the cache, or read with a key filter), so a flush
    /// costs in proportion to the files, not files × keys.
    fn lookup_all(&mut self, merged: &[KeyValue], batch: &RecordBatch) -> Result<Vec<Option<KeyValue>>> {
        let mut found: Vec<Vec<KeyValue>> = vec![Vec::new(); merged.len()];
        let (Some(first), Some(last)) = (merged.first(), merged.last()) else {
            return Ok(Vec::new());
        };
        let candidates = changelog::overlapping(&self.levels, &first.key, &last.key);
        if candidates.is_empty() {
            return Ok(vec![None; merged.len()]);
        }
        let arity = self.info.key_types.len();
        let probe = Arc::new(SortKeys::new(KeyForm::of(&self.info.key_types), &batch.columns()[..arity])?);
        for f in candidates {
            let file = changelog::lookup_file(&self.info, &mut self.cache, &self.dir, f, batch, &probe)?;
            let mut result = Ok(());
            changelog::for_each_match(&file.keys, &probe, |k, rows| {
                if result.is_ok() {
                    result = from_batch(&self.info, &file.batch.slice(rows.start, rows.len()), &mut found[k]);
                }
            });
            result?;
        }
        found
            .into_iter()
            .map(|mut group| {
                if group.is_empty() {
                    return Ok(None);
                }
                group.sort_by(|a, b| compare(&self.info, a, b));
                crate::merge::merge_group(self.merge.as_mut(), group)
            })
            .collect()
    }

    /// The changelog of a flush: `merged` are its records, `batch` the same as written.
    fn lookup_changelog(&mut self, merged: &[KeyValue], batch: &RecordBatch) -> Result<Vec<KeyValue>> {
        let mut out = Vec::new();
        let dedup = self.info.options.changelog_row_deduplicate;
        let befores = self.lookup_all(merged, batch)?;
        for (m, before) in merged.iter().zip(befores) {
            let mut group = match &before {
                None => vec![m.clone()],
                Some(b) => vec![b.clone(), m.clone()],
            };
            group.sort_by(|a, b| compare(&self.info, a, b));
            let after = crate::merge::merge_group(self.merge.as_mut(), group)?;
            diff(before.as_ref(), after.as_ref(), dedup, &mut out);
        }
        Ok(out)
    }

    /// Starts a universal compaction in the background if one is picked and none runs.
    pub fn start_compaction(&mut self) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let Some(unit) = compaction::pick(&self.levels, &self.info.options) else {
            return Ok(());
        };
        let inputs = self.cached_inputs(&unit);
        let batches = self.cached_batches(&unit);
        let (info, dir, now) = (self.info.clone(), self.dir.clone(), self.now());
        let handle = std::thread::Builder::new()
            .name(format!("compact-bucket-{}", self.bucket))
            .spawn(move || compact_files(&info, &dir, unit, inputs, batches, now))
            .map_err(|e| crate::error::Error::io("spawning compaction thread", &self.dir, e))?;
        self.running = Some(handle);
        Ok(())
    }

    /// Applies the background compaction's result if it is done (or waits when `wait`).
    pub fn finish_compaction(&mut self, wait: bool) -> Result<()> {
        let done = self.running.as_ref().is_some_and(|h| wait || h.is_finished());
        if !done {
            return Ok(());
        }
        let Some(handle) = self.running.take() else {
            return Ok(());
        };
        let out =
            handle.join().map_err(|_| crate::error::Error::Unsupported("compaction thread panicked".into()))??;
        self.apply_compaction(out)
    }

    fn cached_inputs(&self, unit: &CompactUnit) -> Vec<Option<Arc<CachedFile>>> {
        unit.files.iter().map(|f| self.cache.peek(&f.meta.file_name)).collect()
    }

    fn cached_batches(&self, unit: &CompactUnit) -> HashMap<String, Vec<arrow_array::RecordBatch>> {
        unit.files
            .iter()
            .filter_map(|f| self.batches.get(&f.meta.file_name).map(|b| (f.meta.file_name.clone(), b)))
            .collect()
    }

    /// Runs one compaction in line if universal compaction picks one (or a full one if
    /// `full`). Returns whether anything was compacted.
    pub fn compact(&mut self, full: bool) -> Result<bool> {
        self.finish_compaction(true)?;
        let unit =
            if full { compaction::full(&self.levels) } else { compaction::pick(&self.levels, &self.info.options) };
        let Some(unit) = unit else {
            return Ok(false);
        };
        if full && unit.files.len() == 1 && unit.files[0].level() == unit.output_level {
            let only = &unit.files[0];
            if only.meta.delete_row_count.unwrap_or(0) == 0 {
                return Ok(false);
            }
        }
        self.compact_unit(unit)?;
        Ok(true)
    }

    /// Compacts in line so that no level-0 file is left ([`compaction::pick_up_level0`]).
    fn compact_up_level0(&mut self) -> Result<()> {
        self.finish_compaction(true)?;
        if let Some(unit) = compaction::pick_up_level0(&self.levels, &self.info.options) {
            self.compact_unit(unit)?;
        }
        debug_assert!(self.levels.sorted_runs().first().is_none_or(|r| r.level > 0));
        Ok(())
    }

    fn compact_unit(&mut self, unit: CompactUnit) -> Result<()> {
        let inputs = self.cached_inputs(&unit);
        let batches = self.cached_batches(&unit);
        let out = compact_files(&self.info, &self.dir, unit, inputs, batches, self.now())?;
        self.apply_compaction(out)
    }

    fn apply_compaction(&mut self, out: CompactOutput) -> Result<()> {
        let CompactOutput { unit, outputs, records, batches } = out;
        tracing::debug!(
            bucket = self.bucket,
            inputs = unit.files.len(),
            outputs = outputs.len(),
            level = unit.output_level,
            "compacted"
        );
        for f in &unit.files {
            self.levels.remove(&f.meta.file_name, f.level());
            let pos = self.pending.compact_after.iter().position(|m| m.file_name == f.meta.file_name);
            match pos {
                // Produced and consumed before any commit: nobody can reference it.
                Some(i) => {
                    self.pending.compact_after.remove(i);
                    let _ = fs::delete(&self.dir.join(&f.meta.file_name));
                }
                None => self.pending.compact_before.push(f.meta.clone()),
            }
        }
        if let (Some(batches), [only]) = (batches, outputs.as_slice()) {
            self.batches.insert(&only.file_name, batches, 50);
        }
        self.install(outputs.clone(), records)?;
        self.pending.compact_after.extend(outputs);
        let live: std::collections::HashSet<&str> =
            self.levels.all_files().map(|f| f.meta.file_name.as_str()).collect();
        self.cache.retain(&live);
        self.batches.retain(&live);
        Ok(())
    }

    /// Flushes, compacts if triggered and hands over everything written since the last call.
    /// With `wait_compaction` the running compaction is finished (and a triggered one
    /// run) before returning, so the message holds every compaction result.
    pub fn prepare_commit(&mut self, compact: bool, wait_compaction: bool) -> Result<CommitMessage> {
        self.flush()?;
        if compact {
            if self.info.options.merge_engine == MergeEngine::FirstRow {
                // As Paimon's first-row writers do: Java's batch scan of such a table skips
                // level 0, so a commit must not leave rows there.
                self.compact_up_level0()?;
            } else if wait_compaction {
                self.compact(false)?;
            } else {
                self.finish_compaction(false)?;
                self.start_compaction()?;
            }
        }
        Ok(std::mem::replace(
            &mut self.pending,
            CommitMessage { partition: self.partition.clone(), bucket: self.bucket, ..Default::default() },
        ))
    }

    /// Full compaction of the bucket (for the `compact` command).
    pub fn full_compact(&mut self) -> Result<CommitMessage> {
        self.flush()?;
        self.compact(true)?;
        self.prepare_commit(false, true)
    }
}
