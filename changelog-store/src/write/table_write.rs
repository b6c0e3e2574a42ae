//! Routes rows to bucket writers and collects their commit messages.

use crate::clock::SharedClock;
use crate::commit::CommitMessage;
use crate::data::arrow_conv;
use crate::error::{Error, Result};
use crate::manifest_io::ManifestIo;
use crate::merge::is_count_field;
use crate::options::MergeEngine;
use crate::paths::TablePaths;
use crate::row::{Datum, Row, RowKind};
use crate::snapshot_manager::SnapshotManager;
use crate::spec::manifest::DataFileMeta;
use crate::spec::types::{DataType, TypeRoot};
use crate::table_info::TableInfo;
use crate::write::batch_cache::BatchBudget;
use crate::write::bucket_writer::{BucketWriter, Budgets};
use crate::write::file_cache::FileBudget;
use arrow_array::{Array, ArrayRef};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type BucketId = (Vec<u8>, i32);

/// Writes rows of one table. One `TableWrite` per bucket set at a time: Paimon's
/// single-writer-per-bucket rule (sequence numbers are per bucket).
pub struct TableWrite {
    info: Arc<TableInfo>,
    paths: TablePaths,
    clock: SharedClock,
    writers: BTreeMap<BucketId, BucketWriter>,
    /// Live files of the snapshot this writer started from, by bucket.
    restored: HashMap<BucketId, (Vec<Datum>, Vec<DataFileMeta>)>,
    count_fields: Vec<usize>,
    /// Ids of the bucket writers of an unpartitioned table, by bucket.
    unpartitioned: Vec<Option<BucketId>>,
    buffered: usize,
    /// Memory for batches kept for compaction (half of `write-buffer-size`) and for
    /// decoded files (`lookup.cache-max-memory-size`), shared by the bucket writers.
    budgets: Budgets,
    compact_on_commit: bool,
    wait_compaction: bool,
    /// Whether flushes write the changelog ([`TableWrite::set_changelog`]).
    changelog: bool,
    /// The snapshot `restored` was read from (0: none yet); stamped on every message.
    base_snapshot: i64,
}

impl TableWrite {
    /// A writer continuing from the latest snapshot.
    pub fn new(info: Arc<TableInfo>, paths: TablePaths, clock: SharedClock) -> Result<Self> {
        let snapshots = SnapshotManager::new(paths.clone());
        let mut restored: HashMap<BucketId, (Vec<Datum>, Vec<DataFileMeta>)> = HashMap::new();
        let latest = snapshots.latest()?;
        let base_snapshot = latest.as_ref().map_or(0, |s| s.id);
        if let Some(latest) = latest {
            let io = ManifestIo::new(paths.clone(), info.options.manifest_compression.clone(), info.schema.id);
            for e in io.live_entries(&latest)? {
                let partition = info.deserialize_partition(&e.partition)?;
                restored
                    .entry((e.partition.clone(), e.bucket))
                    .or_insert_with(|| (partition, Vec::new()))
                    .1
                    .push(e.file);
            }
        }
        let write_only = info.options.raw.get("write-only").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let count_fields = info
            .schema
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                info.options.merge_engine == MergeEngine::Aggregation
                    && !info.schema.primary_keys.contains(&f.name)
                    && is_count_field(&info, &f.name)
            })
            .map(|(i, _)| i)
            .collect();
        let batch_budget = BatchBudget::new(usize::try_from(info.options.write_buffer_size / 2).unwrap_or(usize::MAX));
        let budgets = Budgets {
            batches: batch_budget,
            files: FileBudget::new(usize::try_from(info.options.lookup_cache_max_memory_size).unwrap_or(usize::MAX)),
        };
        Ok(TableWrite {
            budgets,
            info,
            paths,
            clock,
            writers: BTreeMap::new(),
            restored,
            count_fields,
            unpartitioned: Vec::new(),
            buffered: 0,
            compact_on_commit: !write_only,
            wait_compaction: false,
            changelog: true,
            base_snapshot,
        })
    }

    /// Whether this writer compacts (default: true unless the table option
    /// `write-only` is set). Off means no compaction at all, not even the write stall
    /// at the stop trigger: a dedicated compactor ([`crate::Table::compact`]) takes over.
    #[must_use]
    pub fn with_compaction(mut self, enabled: bool) -> Self {
        self.compact_on_commit = enabled;
        self
    }

    /// Takes its memory from `budgets` instead of its own (see [`Budgets`]). Bucket
    /// writers opened before the call keep the budgets they started with.
    #[must_use]
    pub fn with_budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// Whether `prepare_commit` waits for compactions (default false: compactions run
    /// in background threads and their results ride along with a later commit).
    #[must_use]
    pub fn with_wait_compaction(mut self, wait: bool) -> Self {
        self.wait_compaction = wait;
        self
    }

    /// Whether what is written until the next change of this setting produces the
    /// table's changelog (`changelog-producer`; default true). Off, its snapshots carry
    /// data files only, and a changelog reader sees nothing of them: for writes that
    /// change no value a reader cares about, such as a worker moving the row-location
    /// columns after rewriting its table's files, where the `lookup` producer would
    /// look every moved key up for a changelog nobody reads. Call it with the write
    /// buffer empty (right after [`TableWrite::prepare_commit`]).
    pub fn set_changelog(&mut self, on: bool) {
        self.changelog = on;
        for w in self.writers.values_mut() {
            w.set_changelog(on);
        }
    }

    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    fn check_kind(&self, kind: RowKind) -> Result<()> {
        if kind.is_add() || self.info.options.ignore_delete {
            return Ok(());
        }
        match self.info.options.merge_engine {
            MergeEngine::PartialUpdate | MergeEngine::FirstRow => Err(Error::Unsupported(format!(
                "{} records on a {:?} table; set `ignore-delete` = true to drop them",
                kind.short_string(),
                self.info.options.merge_engine
            ))),
            _ => Ok(()),
        }
    }

    /// Writes one row with its kind (`+I`/`+U` upsert, `-U`/`-D` retract or delete).
    pub fn write(&mut self, row: Row, kind: RowKind) -> Result<()> {
        self.write_row(&row, kind)
    }

    /// Like [`TableWrite::write`], borrowing the row: the values are copied into the
    /// write buffer, so a caller can reuse one row for many writes.
    pub fn write_row(&mut self, row: &[Datum], kind: RowKind) -> Result<()> {
        self.info.check_row(row)?;
        self.check_kind(kind)?;
        if !kind.is_add() && self.info.options.ignore_delete {
            return Ok(());
        }
        if !self.count_fields.is_empty() {
            let mut owned = row.to_vec();
            for &i in &self.count_fields {
                let one = !owned[i].is_null();
                owned[i] = match self.info.value_types[i].root {
                    TypeRoot::BigInt => Datum::Long(i64::from(one)),
                    _ => Datum::Int(i32::from(one)),
                };
            }
            return self.route(&owned, kind);
        }
        self.route(row, kind)
    }

    fn route(&mut self, row: &[Datum], kind: RowKind) -> Result<()> {
        let bucket = self.info.bucket_of(row);
        let grown = if self.info.partition_indices.is_empty() {
            self.unpartitioned_writer(bucket)?.write(kind, row)
        } else {
            let partition = self.info.partition_of(row);
            let id = (self.info.serialize_partition(&partition), bucket);
            self.writer(id, partition, bucket)?.write(kind, row)
        };
        self.buffered += grown;
        if self.buffered as u64 >= self.info.options.write_buffer_size {
            self.flush()?;
        }
        Ok(())
    }

    /// The writer of `bucket` of an unpartitioned table, without building its id.
    fn unpartitioned_writer(&mut self, bucket: i32) -> Result<&mut BucketWriter> {
        let slot = bucket as usize;
        if self.unpartitioned.len() <= slot {
            self.unpartitioned.resize(slot + 1, None);
        }
        if self.unpartitioned[slot].is_none() {
            let id = (self.info.serialize_partition(&[]), bucket);
            self.writer(id.clone(), Vec::new(), bucket)?;
            self.unpartitioned[slot] = Some(id);
        }
        match &self.unpartitioned[slot] {
            Some(id) => self.writers.get_mut(id).ok_or_else(|| Error::Unsupported("bucket writer vanished".into())),
            None => Err(Error::Unsupported("bucket writer vanished".into())),
        }
    }

    /// Arrow schema of the rows [`TableWrite::write_batch`] takes.
    pub fn row_schema(&self) -> arrow_schema::SchemaRef {
        arrow_conv::row_schema(&self.info)
    }

    /// Writes every row of `batch` with its kind: `kinds` holds one kind per row, or a
    /// single kind for all of them. `batch` has the table's columns, by name, with the
    /// Arrow types of [`TableWrite::row_schema`] (field metadata and nullability flags
    /// are not compared; NOT NULL columns must hold no null).
    ///
    /// Each bucket's write buffer keeps its rows as Arrow arrays (the batch itself when
    /// all rows go to one bucket) until the next flush gathers them, once, in key order.
    /// The buffer bound is checked after the batch, so one batch may go over it. A batch
    /// that fails a check writes nothing.
    pub fn write_batch(&mut self, batch: &arrow_array::RecordBatch, kinds: &[RowKind]) -> Result<()> {
        let n = batch.num_rows();
        if kinds.len() != n && kinds.len() != 1 {
            return Err(Error::value("<row kind>", format!("{} row kinds for a batch of {n} rows", kinds.len())));
        }
        let columns = self.batch_columns(batch)?;
        let mut checked: Option<RowKind> = None;
        for &k in kinds {
            if checked != Some(k) {
                self.check_kind(k)?;
                checked = Some(k);
            }
        }
        if n == 0 {
            return Ok(());
        }
        let kind_of = |r: u32| if kinds.len() == 1 { kinds[0] } else { kinds[r as usize] };
        if !self.count_fields.is_empty() {
            // Aggregation `count` fields are rewritten per row.
            for (r, row) in arrow_conv::rows_of_columns(&self.info, &columns)?.iter().enumerate() {
                self.write_row(row, kind_of(r as u32))?;
            }
            return Ok(());
        }
        let skip_retractions = self.info.options.ignore_delete;
        let bucket_cols: Vec<(&ArrayRef, &DataType)> =
            self.info.bucket_key_indices.iter().map(|&i| (&columns[i], &self.info.value_types[i])).collect();
        let partition_cols: Vec<(&ArrayRef, &DataType)> =
            self.info.partition_indices.iter().map(|&i| (&columns[i], &self.info.value_types[i])).collect();
        // Rows by destination, in arrival order; destinations in order of first row.
        let mut groups: Vec<(BucketId, Vec<Datum>, Vec<u32>)> = Vec::new();
        let mut group_of: HashMap<BucketId, usize> = HashMap::new();
        let mut by_bucket: Vec<Option<usize>> = Vec::new();
        let mut key: Vec<Datum> = Vec::with_capacity(bucket_cols.len());
        for r in 0..n {
            if skip_retractions && !kind_of(r as u32).is_add() {
                continue;
            }
            key.clear();
            for (c, t) in &bucket_cols {
                key.push(arrow_conv::datum_at(c, t, r)?);
            }
            let bucket = self.info.bucket_of_key(&key);
            let g = if partition_cols.is_empty() {
                let slot = usize::try_from(bucket).unwrap_or(0);
                if by_bucket.len() <= slot {
                    by_bucket.resize(slot + 1, None);
                }
                match by_bucket[slot] {
                    Some(g) => g,
                    None => {
                        groups.push(((Vec::new(), bucket), Vec::new(), Vec::new()));
                        by_bucket[slot] = Some(groups.len() - 1);
                        groups.len() - 1
                    }
                }
            } else {
                let partition =
                    partition_cols.iter().map(|(c, t)| arrow_conv::datum_at(c, t, r)).collect::<Result<Vec<_>>>()?;
                let id = (self.info.serialize_partition(&partition), bucket);
                match group_of.get(&id) {
                    Some(&g) => g,
                    None => {
                        group_of.insert(id.clone(), groups.len());
                        groups.push((id, partition, Vec::new()));
                        groups.len() - 1
                    }
                }
            };
            groups[g].2.push(r as u32);
        }
        // Open every destination first, so that a failure buffers nothing.
        let mut dests: Vec<(BucketId, Vec<u32>)> = Vec::with_capacity(groups.len());
        for ((partition_bytes, bucket), partition, rows) in groups {
            let id = if self.info.partition_indices.is_empty() {
                self.unpartitioned_writer(bucket)?;
                self.unpartitioned[bucket as usize].clone()
            } else {
                self.writer((partition_bytes.clone(), bucket), partition, bucket)?;
                Some((partition_bytes, bucket))
            };
            dests.push((id.ok_or_else(|| Error::Unsupported("bucket writer vanished".into()))?, rows));
        }
        for (id, rows) in dests {
            if let Some(writer) = self.writers.get_mut(&id) {
                self.buffered += writer.write_batch(&columns, &rows, kind_of)?;
            }
        }
        if self.buffered as u64 >= self.info.options.write_buffer_size {
            self.flush()?;
        }
        Ok(())
    }

    /// The value columns of `batch` in schema order, checked against the table.
    fn batch_columns(&self, batch: &arrow_array::RecordBatch) -> Result<Vec<ArrayRef>> {
        for f in batch.schema().fields() {
            if self.info.schema.field_index(f.name()).is_none() {
                return Err(Error::value(f.name(), "no such column"));
            }
        }
        self.info
            .schema
            .fields
            .iter()
            .map(|f| {
                let col =
                    batch.column_by_name(&f.name).ok_or_else(|| Error::value(&f.name, "missing from the batch"))?;
                let want = arrow_conv::arrow_type(&f.data_type);
                let col = arrow_conv::retag_zone(col.clone(), &want);
                if col.data_type() != &want {
                    return Err(Error::value(
                        &f.name,
                        format!("Arrow type {} does not fit {} (expected {want})", col.data_type(), f.data_type),
                    ));
                }
                if !f.data_type.nullable && col.null_count() > 0 {
                    let row = (0..col.len()).find(|&r| col.is_null(r)).unwrap_or(0);
                    return Err(Error::value(&f.name, format!("null in a NOT NULL column (row {row} of the batch)")));
                }
                Ok(col)
            })
            .collect()
    }

    /// Writes a JSON object (`{"column": value, ...}`; missing columns are null).
    pub fn write_json(&mut self, object: &serde_json::Value, kind: RowKind) -> Result<()> {
        let row = self.row_from_json(object)?;
        self.write(row, kind)
    }

    /// Converts a JSON object into a row of this table.
    pub fn row_from_json(&self, object: &serde_json::Value) -> Result<Row> {
        let map = object.as_object().ok_or_else(|| Error::InvalidValue {
            column: "<row>".into(),
            message: format!("expected a JSON object, got {object}"),
        })?;
        for k in map.keys() {
            if self.info.schema.field_index(k).is_none() {
                return Err(Error::value(k, "no such column"));
            }
        }
        self.info
            .schema
            .fields
            .iter()
            .map(|f| Datum::from_json(&f.name, &f.data_type, map.get(&f.name).unwrap_or(&serde_json::Value::Null)))
            .collect()
    }

    fn writer(&mut self, id: BucketId, partition: Vec<Datum>, bucket: i32) -> Result<&mut BucketWriter> {
        if !self.writers.contains_key(&id) {
            let files = self.restored.remove(&id).map(|(_, f)| f).unwrap_or_default();
            let dir = self.paths.bucket_dir(&self.info.partition_spec(&partition), bucket);
            let mut w = BucketWriter::new(
                self.info.clone(),
                dir,
                partition,
                bucket,
                files,
                self.clock.clone(),
                self.budgets.clone(),
            )?;
            w.set_write_only(!self.compact_on_commit);
            w.set_changelog(self.changelog);
            self.writers.insert(id.clone(), w);
        }
        self.writers.get_mut(&id).ok_or_else(|| Error::Unsupported("bucket writer vanished".into()))
    }

    /// Flushes every bucket's write buffer to level-0 files.
    pub fn flush(&mut self) -> Result<()> {
        for w in self.writers.values_mut() {
            w.flush()?;
        }
        self.buffered = 0;
        Ok(())
    }

    /// Phase one of a commit: flush, compact if triggered, and return what to commit.
    pub fn prepare_commit(&mut self) -> Result<Vec<CommitMessage>> {
        let mut out = Vec::new();
        for w in self.writers.values_mut() {
            let m = w.prepare_commit(self.compact_on_commit, self.wait_compaction)?;
            if !m.is_empty() {
                out.push(m);
            }
        }
        self.buffered = 0;
        Ok(self.stamped(out))
    }

    fn open_all_buckets(&mut self) -> Result<()> {
        let ids: Vec<(BucketId, Vec<Datum>)> =
            self.restored.iter().map(|(id, (p, _))| (id.clone(), p.clone())).collect();
        for (id, partition) in ids {
            let bucket = id.1;
            self.writer(id, partition, bucket)?;
        }
        Ok(())
    }

    /// Universal compaction (if triggered) of every bucket of the table.
    pub fn full_compact_candidates(&mut self) -> Result<Vec<CommitMessage>> {
        self.open_all_buckets()?;
        let mut out = Vec::new();
        for w in self.writers.values_mut() {
            let m = w.prepare_commit(true, true)?;
            if !m.is_empty() {
                out.push(m);
            }
        }
        Ok(self.stamped(out))
    }

    /// Full compaction of every bucket of the table (including ones not written to).
    pub fn full_compact(&mut self) -> Result<Vec<CommitMessage>> {
        self.open_all_buckets()?;
        let mut out = Vec::new();
        for w in self.writers.values_mut() {
            let m = w.full_compact()?;
            if !m.is_empty() {
                out.push(m);
            }
        }
        Ok(self.stamped(out))
    }

    /// The snapshot this writer's view of the table was read from (0: empty table).
    pub fn base_snapshot(&self) -> i64 {
        self.base_snapshot
    }

    fn stamped(&self, mut messages: Vec<CommitMessage>) -> Vec<CommitMessage> {
        for m in &mut messages {
            m.base_snapshot = Some(self.base_snapshot);
        }
        messages
    }
}
