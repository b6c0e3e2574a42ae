//! Writes key/value records to rolling zstd Parquet files and describes them as
//! [`DataFileMeta`] (min/max key, key stats, sequence range, delete count).

use crate::data::arrow_conv::{self, kv_schema};
use crate::data::sink::DataFileSink;
use crate::data::sort_key::{KeyForm, SortKeys};
use crate::error::{Error, Result};
use crate::fs;
use crate::row::{Datum, Key, RowKind};
use crate::spec::binary_row;
use crate::spec::manifest::{DataFileMeta, SimpleStats};
use crate::table_info::TableInfo;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int8Type, Int64Type};
use arrow_schema::DataType;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

/// Rows per batch handed to the Parquet writer.
pub const BATCH_ROWS: usize = 8192;

/// What kind of file is being written.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// `data` or `changelog`.
    pub prefix: &'static str,
    pub level: i32,
    pub file_source: i32,
    /// Roll to a new file after about this many bytes.
    pub target_size: u64,
}

/// Parquet codec for a Paimon compression name. `lz4` is written as Parquet's LZ4_RAW
/// (what pyarrow writes for `lz4` and Java Parquet >= 1.13 reads); unknown names fall
/// back to zstd.
fn compression(name: &str, zstd_level: i32) -> Compression {
    match name {
        "none" | "uncompressed" => Compression::UNCOMPRESSED,
        "snappy" => Compression::SNAPPY,
        "lz4" | "lz4_raw" => Compression::LZ4_RAW,
        _ => Compression::ZSTD(ZstdLevel::try_new(zstd_level).unwrap_or_default()),
    }
}

/// Rows per row group: small enough that a point lookup decodes little, big enough
/// for good compression.
const ROW_GROUP_ROWS: usize = 32 * 1024;

/// Rows per data page (at most): the unit a point lookup decodes.
const PAGE_ROWS: usize = 4096;

static DATA_BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Bytes of every data and changelog file this process wrote (their sizes), for
/// write-amplification measurements.
pub fn data_bytes_written() -> u64 {
    DATA_BYTES_WRITTEN.load(AtomicOrdering::Relaxed)
}

/// Parquet settings: the compression of the file's level, statistics only on the key columns
/// (point lookups skip row groups with them; value stats are not kept in the metadata
/// either). Dictionaries are off unless `parquet.enable.dictionary` = true: on
/// high-cardinality columns the writer builds one, overflows and falls back, which cost
/// a quarter of the write CPU in the store benchmark, while zstd still catches repeats.
fn writer_properties(info: &TableInfo, schema: &SchemaRef, level: i32) -> WriterProperties {
    let dictionary =
        info.options.raw.get("parquet.enable.dictionary").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut b = WriterProperties::builder()
        .set_compression(compression(info.options.compression_for_level(level), info.options.file_zstd_level))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(dictionary)
        .set_write_batch_size(PAGE_ROWS)
        .set_data_page_row_count_limit(PAGE_ROWS);
    let first_value = arrow_conv::first_value_column(info);
    for (i, f) in schema.fields().iter().enumerate() {
        let path = ColumnPath::from(f.name().as_str());
        if i < first_value {
            // Keys and sequence numbers are (nearly) unique: a dictionary only costs.
            b = b.set_column_dictionary_enabled(path.clone(), false);
        }
        if i >= first_value && matches!(f.data_type(), DataType::Utf8 | DataType::Binary) {
            // Lengths delta-packed apart from the bytes: zstd then sees only the values
            // (no 4-byte length before each one), which makes it about three times
            // faster on short strings and the file smaller. Readers: parquet-mr,
            // Paimon's vectorized reader, Arrow (pyarrow, pypaimon), DuckDB all decode it.
            //
            // DELTA_LENGTH_BYTE_ARRAY only on required columns: Java Paimon 1.3.1's
            // vectorized reader mis-decodes it in a page that holds nulls (it moves to the
            // next length for a null but not past any bytes, so values shift and the last
            // ones read as ""; tests/tests/java_readers.rs), and nullable value columns hold
            // nulls in every delete record. Nullable columns get DELTA_BYTE_ARRAY (prefix +
            // suffix coding, read correctly there): store bench at 1M rows, 2 runs each,
            // per CPU-second: 361k-377k with the first, 294k-304k with this, 241k-258k PLAIN.
            let encoding = if f.is_nullable() { Encoding::DELTA_BYTE_ARRAY } else { Encoding::DELTA_LENGTH_BYTE_ARRAY };
            b = b.set_column_encoding(path.clone(), encoding);
        }
        if i < info.key_indices.len() {
            // Page statistics give the key column a column index: point lookups decode
            // only the pages (PAGE_ROWS rows) whose key range holds the key.
            b = b.set_column_statistics_enabled(path, EnabledStatistics::Page);
        }
    }
    b.build()
}

/// Facts about the file being written, gathered batch by batch.
#[derive(Default)]
struct FileStats {
    rows: i64,
    min_seq: i64,
    max_seq: i64,
    deletes: i64,
    min_key: Option<Key>,
    max_key: Option<Key>,
    col_min: Vec<Option<Datum>>,
    col_max: Vec<Option<Datum>>,
    nulls: Vec<i64>,
}

impl FileStats {
    fn new(arity: usize) -> Self {
        FileStats {
            min_seq: i64::MAX,
            max_seq: i64::MIN,
            col_min: vec![None; arity],
            col_max: vec![None; arity],
            nulls: vec![0; arity],
            ..Default::default()
        }
    }

    fn add(&mut self, info: &TableInfo, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let arity = info.key_types.len();
        let seq_col = batch.column(arity).as_primitive_opt::<Int64Type>();
        let kind_col = batch.column(arity + 1).as_primitive_opt::<Int8Type>();
        let (Some(seqs), Some(kinds)) = (seq_col, kind_col) else {
            return Err(Error::Unsupported("key/value batch without sequence or kind column".into()));
        };
        for &s in seqs.values() {
            self.min_seq = self.min_seq.min(s);
            self.max_seq = self.max_seq.max(s);
        }
        self.deletes +=
            kinds.values().iter().filter(|k| RowKind::from_byte(**k).is_some_and(|k| !k.is_add())).count() as i64;
        self.rows += n as i64;
        let key_cols: Vec<_> = batch.columns()[..arity].to_vec();
        let keys = SortKeys::new(KeyForm::of(&info.key_types), &key_cols)?;
        if let Some((lo, hi)) = keys.min_max() {
            let lo = arrow_conv::key_at(info, batch, lo)?;
            let hi = arrow_conv::key_at(info, batch, hi)?;
            if self.min_key.as_ref().is_none_or(|m| lo < *m) {
                self.min_key = Some(lo);
            }
            if self.max_key.as_ref().is_none_or(|m| hi > *m) {
                self.max_key = Some(hi);
            }
        }
        for (c, col) in key_cols.iter().enumerate() {
            self.nulls[c] += col.null_count() as i64;
            let single = SortKeys::new(KeyForm::of(&info.key_types[c..=c]), std::slice::from_ref(col))?;
            if let Some((lo, hi)) = single.min_max() {
                let lo = arrow_conv::datum_at(col, &info.key_types[c], lo)?;
                let hi = arrow_conv::datum_at(col, &info.key_types[c], hi)?;
                if !lo.is_null() && self.col_min[c].as_ref().is_none_or(|m| lo < *m) {
                    self.col_min[c] = Some(lo);
                }
                if !hi.is_null() && self.col_max[c].as_ref().is_none_or(|m| hi > *m) {
                    self.col_max[c] = Some(hi);
                }
            }
        }
        Ok(())
    }
}

struct OpenFile {
    name: String,
    path: PathBuf,
    writer: ArrowWriter<DataFileSink>,
    stats: FileStats,
}

/// Writes sorted key/value batches into files of about `target_size` bytes, rolling
/// to a new file between batches. Files are fsynced when closed: they must be durable
/// before a snapshot that names them is published.
pub struct RollingWriter<'a> {
    info: &'a TableInfo,
    dir: &'a Path,
    spec: FileSpec,
    now_millis: i64,
    schema: SchemaRef,
    props: WriterProperties,
    current: Option<OpenFile>,
    metas: Vec<DataFileMeta>,
}

impl<'a> RollingWriter<'a> {
    pub fn new(info: &'a TableInfo, dir: &'a Path, spec: FileSpec, now_millis: i64) -> Result<Self> {
        fs::create_dir_all(dir)?;
        let schema = kv_schema(info);
        let props = writer_properties(info, &schema, spec.level);
        Ok(RollingWriter { info, dir, spec, now_millis, schema, props, current: None, metas: Vec::new() })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn open(&self) -> Result<OpenFile> {
        let name = format!("{}-{}-0.parquet", self.spec.prefix, uuid::Uuid::new_v4());
        let path = self.dir.join(&name);
        let sink = DataFileSink::create_new(&path).map_err(|e| Error::io("creating", &path, e))?;
        let writer = ArrowWriter::try_new(sink, self.schema.clone(), Some(self.props.clone()))
            .map_err(|source| Error::Parquet { op: "opening a writer for", path: path.clone(), source })?;
        Ok(OpenFile { name, path, writer, stats: FileStats::new(self.info.key_types.len()) })
    }

    /// Appends a batch in the [`kv_schema`] layout (rows in key order for data files).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut f = match self.current.take() {
            Some(f) => f,
            None => self.open()?,
        };
        f.stats.add(self.info, batch)?;
        f.writer.write(batch).map_err(|source| Error::Parquet { op: "writing", path: f.path.clone(), source })?;
        let size = f.writer.bytes_written() + f.writer.in_progress_size();
        if size as u64 >= self.spec.target_size {
            self.close_file(f)?;
        } else {
            self.current = Some(f);
        }
        Ok(())
    }

    /// Writes `batch` in slices of `rows`, so files can roll inside it.
    pub fn write_sliced(&mut self, batch: &RecordBatch, rows: usize) -> Result<()> {
        let mut start = 0;
        while start < batch.num_rows() {
            let len = rows.min(batch.num_rows() - start);
            self.write(&batch.slice(start, len))?;
            start += len;
        }
        Ok(())
    }

    fn close_file(&mut self, f: OpenFile) -> Result<()> {
        let pq = |source| Error::Parquet { op: "finishing", path: f.path.clone(), source };
        let sink = f.writer.into_inner().map_err(pq)?;
        let size = sink.finish().map_err(|e| Error::io("writing", &f.path, e))?;
        DATA_BYTES_WRITTEN.fetch_add(size, AtomicOrdering::Relaxed);
        self.metas.push(describe(self.info, f.stats, f.name, size as i64, self.spec, self.now_millis));
        Ok(())
    }

    /// Closes the open file and returns the metadata of every file written.
    pub fn finish(mut self) -> Result<Vec<DataFileMeta>> {
        if let Some(f) = self.current.take() {
            self.close_file(f)?;
        }
        Ok(self.metas)
    }
}

/// Writes a key/value batch (sorted by key for data files) into one or more files.
pub fn write_kv_batch(
    info: &TableInfo,
    dir: &Path,
    batch: &RecordBatch,
    spec: FileSpec,
    now_millis: i64,
) -> Result<Vec<DataFileMeta>> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let mut w = RollingWriter::new(info, dir, spec, now_millis)?;
    w.write_sliced(batch, BATCH_ROWS)?;
    w.finish()
}

fn describe(
    info: &TableInfo,
    stats: FileStats,
    file_name: String,
    file_size: i64,
    spec: FileSpec,
    now_millis: i64,
) -> DataFileMeta {
    let null = Datum::Null;
    let empty: Key = Vec::new();
    let mins: Vec<&Datum> = stats.col_min.iter().map(|d| d.as_ref().unwrap_or(&null)).collect();
    let maxs: Vec<&Datum> = stats.col_max.iter().map(|d| d.as_ref().unwrap_or(&null)).collect();
    DataFileMeta {
        file_name,
        file_size,
        row_count: stats.rows,
        min_key: info.serialize_key(stats.min_key.as_ref().unwrap_or(&empty)),
        max_key: info.serialize_key(stats.max_key.as_ref().unwrap_or(&empty)),
        key_stats: SimpleStats {
            min_values: binary_row::serialize(&info.key_types, &mins),
            max_values: binary_row::serialize(&info.key_types, &maxs),
            null_counts: Some(stats.nulls.into_iter().map(Some).collect()),
        },
        value_stats: SimpleStats::empty(),
        min_sequence_number: stats.min_seq,
        max_sequence_number: stats.max_seq,
        schema_id: info.schema.id,
        level: spec.level,
        extra_files: Vec::new(),
        creation_time_millis: Some(now_millis),
        delete_row_count: Some(stats.deletes),
        embedded_index: None,
        file_source: Some(spec.file_source),
        value_stats_cols: Some(Vec::new()),
        external_path: None,
        first_row_id: None,
        write_cols: None,
        write_cols_sequences: None,
    }
}
