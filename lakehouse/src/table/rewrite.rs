//! Compaction: data files whose rows are mostly deleted are rewritten with
//! their position deletes applied, the delete files that only pointed into
//! them are dropped, and a partition's small files are merged — Iceberg's
//! `RewriteDataFiles` (bin-packing, size-tiered).
//!
//! Silver and Gold commit a RowDelta per interval: new rows in new data files
//! and a position delete for every row they replace, so delete files pile up
//! and every reader merges them on each scan; and every interval adds a small
//! file per partition it touches, which readers open one by one. A rewrite
//! has three steps:
//!
//! 1. [`plan`] reads the head's live files (manifests, and every position
//!    delete file once) and picks the data files whose deleted fraction is at
//!    least `delete-ratio-threshold` or that at least `delete-file-threshold`
//!    delete files point into ([`CompactionPolicy`], table properties named
//!    after `RewriteDataFiles`' options); then, per partition, the files under
//!    `min-file-size-bytes` once at least `min-input-files` of them go
//!    together ([`small_file_group`]: a merged file waits until the small
//!    files beside it add up to its size);
//! 2. [`RewritePlan::write`] reads each picked file through FileIO, drops its
//!    deleted rows, and writes the rest into new data files per partition
//!    (zstd, the table's current schema, rolling at
//!    `write.target-file-size-bytes`). Every new row knows where it came from
//!    ([`RewrittenFile::sources`]): a worker whose index maps keys to row
//!    locations (Silver's and Gold's changelog stores) moves its index to the
//!    new locations before the commit;
//! 3. [`Rewritten::operation`] is an [`Operation::Rewrite`] for
//!    [`Committer::commit`](crate::table::commit::Committer::commit), which
//!    publishes a `replace` snapshot like any other commit (position check,
//!    compare-and-swap, maintenance). On every head it tries, the commit
//!    checks that the rewritten data files and dropped delete files are still
//!    live, and that no delete file committed after the plan's base points
//!    into a rewritten file (Java's `validateNoNewDeletesForDataFiles`):
//!    such a delete would be lost with the old file, so the rewrite is fenced
//!    instead of rebased. A rewrite changes no row and moves no position: the
//!    `lakehouse.*` keys stay where they are in the ancestry (readers walk it),
//!    and incremental readers skip `replace` snapshots.
//!
//! ```no_run
//! # use lakehouse::catalog::LoadedTable;
//! # use lakehouse::table::commit::Committer;
//! # use lakehouse::table::rewrite::{CompactionPolicy, plan};
//! # async fn f(committer: Committer, head: LoadedTable) -> Result<(), Box<dyn std::error::Error>> {
//! let file_io = committer.catalog().file_io().clone();
//! let policy = CompactionPolicy::from_properties(head.metadata.properties())?;
//! if let Some(plan) = plan(&file_io, &head.metadata, &policy).await? {
//!     let rewritten = plan.write(&file_io, &head.metadata, &policy).await?;
//!     // (an indexed table moves its index to `rewritten.outputs[..].sources` here)
//!     let check = |_: &iceberg::spec::TableMetadata| Ok(std::collections::HashMap::new());
//!     committer.commit(&head, rewritten.operation(), &check).await?;
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;
use iceberg::io::FileIO;
use iceberg::spec::{DataContentType, DataFile, ManifestStatus, Struct, TableMetadata};

use crate::error::ErrorKind;
use crate::table::commit::{Operation, manifests_of};
use crate::table::incremental::read_data_file;
use crate::table::writer::{Codec, DataFileWriter};

/// Table property: compaction runs (automatically and by hand) unless `false`.
pub const ENABLED: &str = "lakehouse.compaction.enabled";
/// Table property: a worker compacts the table by itself between its commits
/// unless `false` (then only `lakehouse compact` does). Default true.
pub const AUTO: &str = "lakehouse.compaction.auto";
/// Table property (`RewriteDataFiles`' `delete-ratio-threshold`): a data file
/// whose deleted fraction of rows is at least this is rewritten. Default 0.3.
pub const DELETE_RATIO_THRESHOLD: &str = "lakehouse.compaction.delete-ratio-threshold";
/// Table property (`RewriteDataFiles`' `delete-file-threshold`): a data file
/// that at least this many delete files point into is rewritten. Default 10.
pub const DELETE_FILE_THRESHOLD: &str = "lakehouse.compaction.delete-file-threshold";
/// Table property (`RewriteDataFiles`' `max-file-group-size-bytes`): at most
/// this many bytes of data files are rewritten in one run (the rest waits for
/// the next one; a rewrite holds its live rows in memory). Default 256 MiB.
pub const MAX_FILE_GROUP_SIZE_BYTES: &str = "lakehouse.compaction.max-file-group-size-bytes";
/// Iceberg's table property for the size data files roll at. Default 128 MiB.
pub const TARGET_FILE_SIZE_BYTES: &str = "write.target-file-size-bytes";
/// Table property (`RewriteDataFiles`' `min-file-size-bytes`): a data file
/// smaller than this is small, and a partition's small files are merged
/// ([`small_file_group`]). Default 75% of the target file size; 0 turns
/// merging off (then only deletes make a file worth rewriting).
pub const MIN_FILE_SIZE_BYTES: &str = "lakehouse.compaction.min-file-size-bytes";
/// Table property (`RewriteDataFiles`' `min-input-files`): a partition's small
/// files are merged once at least this many can go into one group. Default 5.
pub const MIN_INPUT_FILES: &str = "lakehouse.compaction.min-input-files";

/// When a table's data files are rewritten (from its properties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    pub enabled: bool,
    /// Whether the table's worker runs it by itself ([`AUTO`]).
    pub auto: bool,
    pub delete_ratio_threshold: f64,
    pub delete_file_threshold: usize,
    pub max_group_bytes: u64,
    pub target_file_size: usize,
    /// Data files under this size are small (0: none is).
    pub min_file_size: u64,
    /// Small files are merged once a partition has this many to merge.
    pub min_input_files: usize,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            auto: true,
            delete_ratio_threshold: 0.3,
            delete_file_threshold: 10,
            max_group_bytes: 256 << 20,
            target_file_size: 128 << 20,
            min_file_size: 96 << 20,
            min_input_files: 5,
        }
    }
}

impl CompactionPolicy {
    pub fn from_properties(props: &HashMap<String, String>) -> Result<Self, RewriteError> {
        fn get<T: std::str::FromStr>(
            props: &HashMap<String, String>,
            key: &str,
            default: T,
        ) -> Result<T, RewriteError> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| RewriteError::Policy {
                    message: format!("table property {key} = {v:?} does not parse"),
                }),
            }
        }
        let d = Self::default();
        let target_file_size = get(props, TARGET_FILE_SIZE_BYTES, d.target_file_size)?;
        let p = Self {
            enabled: get(props, ENABLED, d.enabled)?,
            auto: get(props, AUTO, d.auto)?,
            delete_ratio_threshold: get(props, DELETE_RATIO_THRESHOLD, d.delete_ratio_threshold)?,
            delete_file_threshold: get(props, DELETE_FILE_THRESHOLD, d.delete_file_threshold)?,
            max_group_bytes: get(props, MAX_FILE_GROUP_SIZE_BYTES, d.max_group_bytes)?,
            target_file_size,
            // Iceberg's default: three quarters of the target size.
            min_file_size: get(props, MIN_FILE_SIZE_BYTES, target_file_size as u64 / 4 * 3)?,
            min_input_files: get(props, MIN_INPUT_FILES, d.min_input_files)?,
        };
        if p.min_input_files < 2 {
            return Err(RewriteError::Policy { message: format!("{MIN_INPUT_FILES} must be at least 2") });
        }
        if !(p.delete_ratio_threshold > 0.0 && p.delete_ratio_threshold <= 1.0) {
            return Err(RewriteError::Policy { message: format!("{DELETE_RATIO_THRESHOLD} must be in (0, 1]") });
        }
        if p.delete_file_threshold == 0 || p.max_group_bytes == 0 {
            return Err(RewriteError::Policy {
                message: format!("{DELETE_FILE_THRESHOLD} and {MAX_FILE_GROUP_SIZE_BYTES} must be positive"),
            });
        }
        Ok(p)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("compaction policy: {message}")]
    Policy { message: String },
    #[error("compaction of {table}: {what}: {source}")]
    Iceberg { table: String, what: String, source: Box<iceberg::Error> },
    #[error("compaction of {table}: {message}")]
    Invalid { table: String, message: String },
}

impl RewriteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RewriteError::Policy { .. } => ErrorKind::Config,
            RewriteError::Iceberg { .. } => ErrorKind::Transient,
            RewriteError::Invalid { .. } => ErrorKind::Data,
        }
    }
}

/// A data file picked for rewriting, with the positions deleted in it.
#[derive(Debug, Clone)]
struct Picked {
    file: DataFile,
    deleted: BTreeSet<i64>,
}

/// What [`plan`] chose on one head.
#[derive(Debug, Clone)]
pub struct RewritePlan {
    base_snapshot_id: i64,
    base_sequence_number: i64,
    picked: Vec<Picked>,
    /// Delete files every row of which points into a picked file.
    removed_deletes: Vec<DataFile>,
}

impl RewritePlan {
    /// The snapshot the plan was made on.
    pub fn base_snapshot_id(&self) -> i64 {
        self.base_snapshot_id
    }

    pub fn data_files(&self) -> usize {
        self.picked.len()
    }

    /// Reads the picked files with their deletes applied and writes the live
    /// rows into new data files (one run of files per partition).
    pub async fn write(
        &self,
        file_io: &FileIO,
        metadata: &TableMetadata,
        policy: &CompactionPolicy,
    ) -> Result<Rewritten, RewriteError> {
        let started = Instant::now();
        let table = metadata.location().to_string();
        let ice = |what: String| {
            let table = table.clone();
            move |source| RewriteError::Iceberg { table: table.clone(), what, source: Box::new(source) }
        };
        let arrow: SchemaRef = Arc::new(
            iceberg::arrow::schema_to_arrow_schema(metadata.current_schema())
                .map_err(ice("converting the schema".into()))?,
        );
        let writer =
            DataFileWriter::new(file_io.clone(), Codec::Zstd(Codec::ZSTD_DEFAULT_LEVEL), policy.target_file_size);
        // Picked files by partition, in plan order.
        let mut by_partition: Vec<(Struct, Vec<&Picked>)> = Vec::new();
        for p in &self.picked {
            match by_partition.iter_mut().find(|(s, _)| s == p.file.partition()) {
                Some((_, v)) => v.push(p),
                None => by_partition.push((p.file.partition().clone(), vec![p])),
            }
        }
        let mut outputs = Vec::new();
        let mut stats = RewriteStats {
            data_files_rewritten: self.picked.len(),
            delete_files_removed: self.removed_deletes.len(),
            ..RewriteStats::default()
        };
        for (partition, files) in by_partition {
            let mut batches = Vec::new();
            let mut sources: Vec<(Arc<str>, i64)> = Vec::new();
            for p in files {
                let path = p.file.file_path();
                stats.bytes_read += p.file.file_size_in_bytes();
                let read = read_data_file(file_io, path, &[]).await.map_err(|e| RewriteError::Invalid {
                    table: table.clone(),
                    message: format!("reading data file {path}: {e}"),
                })?;
                let shared: Arc<str> = Arc::from(path);
                let mut offset = 0i64;
                let mut rows = 0u64;
                for b in read {
                    let n = b.num_rows() as i64;
                    let keep: Vec<u32> =
                        (0..n).filter(|i| !p.deleted.contains(&(offset + i))).map(|i| i as u32).collect();
                    sources.extend(keep.iter().map(|i| (shared.clone(), offset + i64::from(*i))));
                    if !keep.is_empty() {
                        let live = arrow_select::take::take_record_batch(&b, &UInt32Array::from(keep))
                            .map_err(|e| invalid(&table, format!("dropping deleted rows of {path}: {e}")))?;
                        batches.push(project(&live, &arrow).map_err(|m| invalid(&table, format!("{path}: {m}")))?);
                    }
                    offset += n;
                    rows += b.num_rows() as u64;
                }
                if rows != p.file.record_count() {
                    return Err(invalid(
                        &table,
                        format!("data file {path} has {rows} rows, its manifest entry says {}", p.file.record_count()),
                    ));
                }
                stats.rows_dropped += p.deleted.len() as u64;
            }
            if batches.is_empty() {
                continue; // every row of these files was deleted
            }
            let mut all = arrow_select::concat::concat_batches(&arrow, &batches)
                .map_err(|e| invalid(&table, format!("joining live rows: {e}")))?;
            drop(batches);
            // The table's sort order holds in the new files as it did in each old one.
            if let Some(order) = sort_indices(metadata, &all).map_err(|m| invalid(&table, m))? {
                all = arrow_select::take::take_record_batch(&all, &order)
                    .map_err(|e| invalid(&table, format!("sorting live rows: {e}")))?;
                sources = order.values().iter().map(|i| sources[*i as usize].clone()).collect();
            }
            let files = writer
                .write(metadata, partition.clone(), std::slice::from_ref(&all))
                .await
                .map_err(ice("writing data files".into()))?;
            let mut at = 0usize;
            for f in files {
                let n = f.record_count() as usize;
                if at + n > all.num_rows() {
                    return Err(invalid(&table, "the writer wrote more rows than it was given".into()));
                }
                stats.bytes_written += f.file_size_in_bytes();
                stats.rows_kept += n as u64;
                outputs.push(RewrittenFile { rows: all.slice(at, n), sources: sources[at..at + n].to_vec(), file: f });
                at += n;
            }
            if at != all.num_rows() {
                return Err(invalid(&table, "the writer wrote fewer rows than it was given".into()));
            }
        }
        crate::table::durable::sync_all(outputs.iter().map(|o| o.file.file_path().to_string()))
            .await
            .map_err(|e| invalid(&table, format!("syncing rewritten data files: {e}")))?;
        stats.duration = started.elapsed();
        Ok(Rewritten {
            base_snapshot_id: self.base_snapshot_id,
            base_sequence_number: self.base_sequence_number,
            outputs,
            removed_data: self.picked.iter().map(|p| p.file.clone()).collect(),
            removed_deletes: self.removed_deletes.clone(),
            stats,
        })
    }
}

/// Row order of `rows` under the table's default sort order; `None` when it
/// is unsorted, or sorts by a transform other than identity (then the rows
/// keep their file order).
fn sort_indices(metadata: &TableMetadata, rows: &RecordBatch) -> Result<Option<UInt32Array>, String> {
    use iceberg::spec::{NullOrder, SortDirection, Transform};
    let order = metadata.default_sort_order();
    if order.fields.is_empty() || rows.num_rows() < 2 {
        return Ok(None);
    }
    let schema = metadata.current_schema();
    let mut columns = Vec::with_capacity(order.fields.len());
    for f in &order.fields {
        let name = match (f.transform, schema.field_by_id(f.source_id)) {
            (Transform::Identity, Some(field)) => field.name.clone(),
            _ => return Ok(None),
        };
        let Some(values) = rows.column_by_name(&name) else { return Ok(None) };
        let options = arrow_ord::sort::SortOptions {
            descending: f.direction == SortDirection::Descending,
            nulls_first: f.null_order == NullOrder::First,
        };
        columns.push(arrow_ord::sort::SortColumn { values: values.clone(), options: Some(options) });
    }
    arrow_ord::sort::lexsort_to_indices(&columns, None).map(Some).map_err(|e| format!("sorting live rows: {e}"))
}

fn invalid(table: &str, message: String) -> RewriteError {
    RewriteError::Invalid { table: table.to_string(), message }
}

/// `batch` (read from a file written with some schema of the table) in the
/// table's current Arrow schema: columns matched by Iceberg field id (by name
/// where a file carries no ids), cast where a type was widened, missing
/// columns (added after the file was written) null.
fn project(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let id_of = |f: &arrow_schema::Field| f.metadata().get(parquet::arrow::PARQUET_FIELD_ID_META_KEY).cloned();
    let by_id: HashMap<String, usize> =
        batch.schema().fields().iter().enumerate().filter_map(|(i, f)| id_of(f).map(|id| (id, i))).collect();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let found = match id_of(f) {
            Some(id) => by_id.get(&id).map(|i| batch.column(*i).clone()),
            None => batch.column_by_name(f.name()).cloned(),
        }
        .or_else(|| if by_id.is_empty() { batch.column_by_name(f.name()).cloned() } else { None });
        let col = match found {
            Some(c) if c.data_type() == f.data_type() => c,
            Some(c) => arrow_cast::cast(&c, f.data_type())
                .map_err(|e| format!("column {} as {}: {e}", f.name(), f.data_type()))?,
            None => arrow_array::new_null_array(f.data_type(), batch.num_rows()),
        };
        columns.push(col);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| format!("rows in the current schema: {e}"))
}

/// One new data file of a rewrite.
#[derive(Debug, Clone)]
pub struct RewrittenFile {
    pub file: DataFile,
    /// Its rows, in file order (the table's current Arrow schema).
    pub rows: RecordBatch,
    /// Where row `i` of the file lived before: `(old data file, position)`.
    pub sources: Vec<(Arc<str>, i64)>,
}

/// What a rewrite did, for metrics and logs.
#[derive(Debug, Clone, Default)]
pub struct RewriteStats {
    pub data_files_rewritten: usize,
    pub delete_files_removed: usize,
    pub rows_kept: u64,
    pub rows_dropped: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub duration: Duration,
}

impl RewriteStats {
    /// Counts a committed compaction of `table` in the `lakehouse_compaction_*`
    /// metrics and logs it (`at`: the index snapshot that recorded it).
    pub fn record(&self, layer: &'static str, table: &str, at: i64, snapshot_id: i64) {
        use crate::telemetry::names;
        let table = table.to_string();
        metrics::counter!(names::COMPACTIONS, "layer" => layer, "table" => table.clone()).increment(1);
        metrics::counter!(names::COMPACTION_FILES, "layer" => layer, "table" => table.clone(), "content" => "data")
            .increment(self.data_files_rewritten as u64);
        metrics::counter!(names::COMPACTION_FILES, "layer" => layer, "table" => table.clone(), "content" => "deletes")
            .increment(self.delete_files_removed as u64);
        metrics::counter!(names::COMPACTION_BYTES, "layer" => layer, "table" => table.clone(), "direction" => "read")
            .increment(self.bytes_read);
        metrics::counter!(names::COMPACTION_BYTES, "layer" => layer, "table" => table.clone(), "direction" => "written")
            .increment(self.bytes_written);
        metrics::histogram!(names::COMPACTION_DURATION, "layer" => layer, "table" => table.clone())
            .record(self.duration.as_secs_f64());
        tracing::info!(layer, table = %table, index_snapshot = at, snapshot_id,
            data_files = self.data_files_rewritten, delete_files = self.delete_files_removed,
            rows_kept = self.rows_kept, rows_dropped = self.rows_dropped,
            bytes_read = self.bytes_read, bytes_written = self.bytes_written,
            ms = self.duration.as_millis() as u64, "table compacted");
    }
}

/// A written rewrite, ready to commit.
#[derive(Debug, Clone)]
pub struct Rewritten {
    base_snapshot_id: i64,
    base_sequence_number: i64,
    pub outputs: Vec<RewrittenFile>,
    pub removed_data: Vec<DataFile>,
    pub removed_deletes: Vec<DataFile>,
    pub stats: RewriteStats,
}

impl Rewritten {
    pub fn base_snapshot_id(&self) -> i64 {
        self.base_snapshot_id
    }

    /// The commit of this rewrite.
    pub fn operation(&self) -> Operation {
        Operation::Rewrite(RewriteFiles {
            added: self.outputs.iter().map(|o| o.file.clone()).collect(),
            removed_data: self.removed_data.iter().map(|f| f.file_path().to_string()).collect(),
            removed_deletes: self.removed_deletes.iter().map(|f| f.file_path().to_string()).collect(),
            base_sequence_number: self.base_sequence_number,
        })
    }
}

/// The files of a rewrite commit ([`Operation::Rewrite`]): serialisable, so a
/// worker can record it (in its own store, before the commit) and commit it
/// again after a crash.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteFiles {
    pub added: Vec<DataFile>,
    pub removed_data: Vec<String>,
    pub removed_deletes: Vec<String>,
    /// Delete files with a data sequence number above this were committed
    /// after the plan: none of them may point into a removed data file.
    pub base_sequence_number: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Encoded {
    added: String,
    removed_data: Vec<String>,
    removed_deletes: Vec<String>,
    base_sequence_number: i64,
}

impl RewriteFiles {
    /// JSON (the added files as [`crate::table::data_files::encode`] writes them).
    pub fn encode(&self, metadata: &TableMetadata) -> iceberg::Result<String> {
        let e = Encoded {
            added: crate::table::data_files::encode(metadata, &self.added)?,
            removed_data: self.removed_data.clone(),
            removed_deletes: self.removed_deletes.clone(),
            base_sequence_number: self.base_sequence_number,
        };
        serde_json::to_string(&e).map_err(|e| iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()))
    }

    pub fn decode(metadata: &TableMetadata, json: &str) -> Result<Self, String> {
        let e: Encoded = serde_json::from_str(json).map_err(|e| format!("rewrite record: {e}"))?;
        Ok(Self {
            added: crate::table::data_files::decode(metadata, &e.added)?,
            removed_data: e.removed_data,
            removed_deletes: e.removed_deletes,
            base_sequence_number: e.base_sequence_number,
        })
    }
}

/// Picks what to rewrite on `metadata`'s current snapshot; `None` when no
/// data file passes a threshold (or compaction is off).
pub async fn plan(
    file_io: &FileIO,
    metadata: &TableMetadata,
    policy: &CompactionPolicy,
) -> Result<Option<RewritePlan>, RewriteError> {
    let table = metadata.location().to_string();
    let Some(snapshot) = metadata.current_snapshot() else { return Ok(None) };
    if !policy.enabled {
        return Ok(None);
    }
    let ice = |what: String| {
        let table = table.clone();
        move |source| RewriteError::Iceberg { table: table.clone(), what, source: Box::new(source) }
    };
    // Data files, and whether each was written with the current partition spec
    // (only those are merged).
    let mut data: Vec<(DataFile, bool)> = Vec::new();
    let mut deletes: Vec<DataFile> = Vec::new();
    for m in manifests_of(file_io, metadata, snapshot).await.map_err(ice("reading the manifest list".into()))? {
        let manifest = m.load_manifest(file_io).await.map_err(ice(format!("reading manifest {}", m.manifest_path)))?;
        let current = m.partition_spec_id == metadata.default_partition_spec_id();
        for e in manifest.entries() {
            if e.status() == ManifestStatus::Deleted {
                continue;
            }
            match e.data_file().content_type() {
                DataContentType::Data => data.push((e.data_file().clone(), current)),
                DataContentType::PositionDeletes => deletes.push(e.data_file().clone()),
                DataContentType::EqualityDeletes => {
                    return Err(invalid(&table, "equality delete files are not supported".into()));
                }
            }
        }
    }
    // Which positions each delete file removes, by data file.
    let live: HashSet<String> = data.iter().map(|(f, _)| f.file_path().to_string()).collect();
    let mut deleted: HashMap<String, BTreeSet<i64>> = HashMap::new();
    let mut delete_files_of: HashMap<String, usize> = HashMap::new();
    let mut targets_of: Vec<BTreeSet<String>> = Vec::with_capacity(deletes.len());
    for d in &deletes {
        let batches = read_data_file(file_io, d.file_path(), &["file_path", "pos"])
            .await
            .map_err(|e| invalid(&table, format!("reading delete file {}: {e}", d.file_path())))?;
        let mut targets = BTreeSet::new();
        for b in &batches {
            let (Some(path), Some(pos)) = (b.column_by_name("file_path"), b.column_by_name("pos")) else {
                return Err(invalid(&table, format!("delete file {} has no file_path/pos", d.file_path())));
            };
            let path = path.as_string::<i32>();
            let pos = pos.as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                if path.is_null(i) || pos.is_null(i) {
                    continue;
                }
                let p = path.value(i);
                if !targets.contains(p) {
                    targets.insert(p.to_string());
                }
                if live.contains(p) {
                    deleted.entry(p.to_string()).or_default().insert(pos.value(i));
                }
            }
        }
        for t in &targets {
            *delete_files_of.entry(t.clone()).or_default() += 1;
        }
        targets_of.push(targets);
    }
    // Most-deleted first, up to the group size.
    let mut candidates: Vec<(f64, DataFile)> = Vec::new();
    let mut rest: Vec<(DataFile, bool)> = Vec::new();
    for (f, current) in data {
        let n = deleted.get(f.file_path()).map_or(0, BTreeSet::len) as f64;
        let ratio = if f.record_count() == 0 { 1.0 } else { n / f.record_count() as f64 };
        let files = delete_files_of.get(f.file_path()).copied().unwrap_or(0);
        if n > 0.0 && (ratio >= policy.delete_ratio_threshold || files >= policy.delete_file_threshold) {
            candidates.push((ratio, f));
        } else {
            rest.push((f, current));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.file_path().cmp(b.1.file_path())));
    let mut picked = Vec::new();
    let mut bytes = 0u64;
    for (_, f) in candidates {
        if !picked.is_empty() && bytes + f.file_size_in_bytes() > policy.max_group_bytes {
            continue;
        }
        bytes += f.file_size_in_bytes();
        let d = deleted.remove(f.file_path()).unwrap_or_default();
        picked.push(Picked { file: f, deleted: d });
    }
    // Then the small files, partition by partition (most small files first),
    // in what is left of the group size.
    if policy.min_file_size > 0 {
        let mut small: HashMap<Struct, Vec<DataFile>> = HashMap::new();
        for (f, current) in rest {
            if current && f.file_size_in_bytes() < policy.min_file_size {
                small.entry(f.partition().clone()).or_default().push(f);
            }
        }
        let mut partitions: Vec<(String, Vec<DataFile>)> = small
            .into_values()
            .map(|v| (v.iter().map(|f| f.file_path()).min().unwrap_or_default().to_string(), v))
            .collect();
        partitions.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        // What the deletes already rewrite in a partition goes into its output too.
        let mut forced: HashMap<Struct, (u64, usize)> = HashMap::new();
        for p in &picked {
            let f = forced.entry(p.file.partition().clone()).or_default();
            f.0 += p.file.file_size_in_bytes();
            f.1 += 1;
        }
        for (_, files) in partitions {
            let sizes: Vec<u64> = files.iter().map(DataFile::file_size_in_bytes).collect();
            let with = forced.get(files[0].partition()).copied().unwrap_or_default();
            let budget = policy.max_group_bytes.saturating_sub(bytes);
            for i in small_file_group(&sizes, with, policy.min_input_files, budget) {
                bytes += sizes[i];
                let d = deleted.remove(files[i].file_path()).unwrap_or_default();
                picked.push(Picked { file: files[i].clone(), deleted: d });
            }
        }
    }
    if picked.is_empty() {
        return Ok(None);
    }
    // A delete file goes when nothing it points at stays live.
    let gone: HashSet<&str> = picked.iter().map(|p| p.file.file_path()).collect();
    let removed_deletes = deletes
        .iter()
        .zip(&targets_of)
        .filter(|(_, targets)| targets.iter().all(|t| gone.contains(t.as_str()) || !live.contains(t)))
        .map(|(d, _)| d.clone())
        .collect();
    Ok(Some(RewritePlan {
        base_snapshot_id: snapshot.snapshot_id(),
        base_sequence_number: snapshot.sequence_number(),
        picked,
        removed_deletes,
    }))
}

/// Which of one partition's small files to merge (indices into `sizes`, the
/// files' sizes); none when fewer than `min_input_files` go together.
/// `forced` is what the partition's rewrite holds already (bytes and files
/// picked for their deletes), which the merged file holds too. The smallest
/// first, within `budget` bytes; then the largest is left out while it is
/// bigger than all the others together. That makes merging size-tiered: a
/// merged file is rewritten only once the small files beside it add up to
/// its size, so a row is rewritten O(log n) times while its partition gains n
/// small files (merging all of them every time would rewrite it O(n) times),
/// a partition keeps O(log n) small files, and a second run right after a
/// first finds nothing to merge.
pub fn small_file_group(sizes: &[u64], forced: (u64, usize), min_input_files: usize, budget: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (sizes[i], i));
    let mut total = forced.0;
    let budget = budget.saturating_add(forced.0);
    let mut n = 0;
    for &i in &order {
        if total + sizes[i] > budget {
            break;
        }
        total += sizes[i];
        n += 1;
    }
    while n >= 1 && sizes[order[n - 1]] > total - sizes[order[n - 1]] {
        total -= sizes[order[n - 1]];
        n -= 1;
    }
    if n + forced.1 < min_input_files.max(2) {
        return Vec::new();
    }
    order.truncate(n);
    order
}

/// How many of the table's live data files have deletes, and how many delete
/// files it has: what `lakehouse compact --dry-run` and the tests look at.
pub async fn delete_file_count(file_io: &FileIO, metadata: &TableMetadata) -> Result<(usize, usize), RewriteError> {
    let table = metadata.location().to_string();
    let Some(snapshot) = metadata.current_snapshot() else { return Ok((0, 0)) };
    let ice = |source| RewriteError::Iceberg {
        table: table.clone(),
        what: "reading manifests".into(),
        source: Box::new(source),
    };
    let mut counts = BTreeMap::new();
    for m in manifests_of(file_io, metadata, snapshot).await.map_err(ice)? {
        for e in m.load_manifest(file_io).await.map_err(ice)?.entries() {
            if e.status() != ManifestStatus::Deleted {
                *counts.entry(e.data_file().content_type() == DataContentType::Data).or_insert(0usize) += 1;
            }
        }
    }
    Ok((counts.get(&true).copied().unwrap_or(0), counts.get(&false).copied().unwrap_or(0)))
}
