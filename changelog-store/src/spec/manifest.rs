//! Manifest files (`manifest/manifest-*`, Avro records of `ManifestEntry`) and
//! manifest lists (`manifest/manifest-list-*`, Avro records of `ManifestFileMeta`).

use crate::error::{Error, Result};
use crate::spec::avro_schemas::{manifest_entry_schema, manifest_file_meta_schema};
use crate::spec::avro_value::{Fields, opt, strings};
use apache_avro::types::Value;
use apache_avro::{Codec, Reader, Schema, Writer};
use std::path::Path;
use std::sync::OnceLock;

/// `_VERSION` of manifest entries and manifest file metas written by current Paimon.
pub const MANIFEST_VERSION: i32 = 2;

/// `_FILE_SOURCE`: the file was written by a writer (0) or by compaction (1).
pub const FILE_SOURCE_APPEND: i32 = 0;
pub const FILE_SOURCE_COMPACT: i32 = 1;

/// Paimon's `SimpleStats`: serialized BinaryRows of min and max values plus null counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleStats {
    pub min_values: Vec<u8>,
    pub max_values: Vec<u8>,
    pub null_counts: Option<Vec<Option<i64>>>,
}

impl SimpleStats {
    /// Stats over no columns (arity-0 rows, empty null counts).
    pub fn empty() -> Self {
        let empty = crate::spec::binary_row::serialize_empty();
        SimpleStats { min_values: empty.clone(), max_values: empty, null_counts: Some(Vec::new()) }
    }

    fn to_avro(&self) -> Value {
        Value::Record(vec![
            ("_MIN_VALUES".into(), Value::Bytes(self.min_values.clone())),
            ("_MAX_VALUES".into(), Value::Bytes(self.max_values.clone())),
            (
                "_NULL_COUNTS".into(),
                opt(self.null_counts.as_ref(), |v| {
                    Value::Array(v.iter().map(|c| opt(c.as_ref(), |c| Value::Long(*c))).collect())
                }),
            ),
        ])
    }

    fn from_avro(mut f: Fields<'_>) -> Result<Self> {
        Ok(SimpleStats {
            min_values: f.bytes("_MIN_VALUES")?,
            max_values: f.bytes("_MAX_VALUES")?,
            null_counts: f.opt_longs("_NULL_COUNTS")?,
        })
    }
}

/// Paimon's `DataFileMeta`: one data or changelog file of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileMeta {
    pub file_name: String,
    pub file_size: i64,
    pub row_count: i64,
    /// Serialized BinaryRow of the smallest / largest trimmed primary key.
    pub min_key: Vec<u8>,
    pub max_key: Vec<u8>,
    pub key_stats: SimpleStats,
    pub value_stats: SimpleStats,
    pub min_sequence_number: i64,
    pub max_sequence_number: i64,
    pub schema_id: i64,
    pub level: i32,
    pub extra_files: Vec<String>,
    pub creation_time_millis: Option<i64>,
    pub delete_row_count: Option<i64>,
    pub embedded_index: Option<Vec<u8>>,
    pub file_source: Option<i32>,
    pub value_stats_cols: Option<Vec<String>>,
    pub external_path: Option<String>,
    pub first_row_id: Option<i64>,
    pub write_cols: Option<Vec<String>>,
    pub write_cols_sequences: Option<Vec<i64>>,
}

impl DataFileMeta {
    fn to_avro(&self) -> Value {
        Value::Record(vec![
            ("_FILE_NAME".into(), Value::String(self.file_name.clone())),
            ("_FILE_SIZE".into(), Value::Long(self.file_size)),
            ("_ROW_COUNT".into(), Value::Long(self.row_count)),
            ("_MIN_KEY".into(), Value::Bytes(self.min_key.clone())),
            ("_MAX_KEY".into(), Value::Bytes(self.max_key.clone())),
            ("_KEY_STATS".into(), self.key_stats.to_avro()),
            ("_VALUE_STATS".into(), self.value_stats.to_avro()),
            ("_MIN_SEQUENCE_NUMBER".into(), Value::Long(self.min_sequence_number)),
            ("_MAX_SEQUENCE_NUMBER".into(), Value::Long(self.max_sequence_number)),
            ("_SCHEMA_ID".into(), Value::Long(self.schema_id)),
            ("_LEVEL".into(), Value::Int(self.level)),
            ("_EXTRA_FILES".into(), strings(&self.extra_files)),
            ("_CREATION_TIME".into(), opt(self.creation_time_millis, Value::TimestampMillis)),
            ("_DELETE_ROW_COUNT".into(), opt(self.delete_row_count, Value::Long)),
            ("_EMBEDDED_FILE_INDEX".into(), opt(self.embedded_index.clone(), Value::Bytes)),
            ("_FILE_SOURCE".into(), opt(self.file_source, Value::Int)),
            ("_VALUE_STATS_COLS".into(), opt(self.value_stats_cols.as_deref(), strings)),
            ("_EXTERNAL_PATH".into(), opt(self.external_path.clone(), Value::String)),
            ("_FIRST_ROW_ID".into(), opt(self.first_row_id, Value::Long)),
            ("_WRITE_COLS".into(), opt(self.write_cols.as_deref(), strings)),
            (
                "_WRITE_COLS_SEQUENCES".into(),
                opt(self.write_cols_sequences.as_ref(), |v| Value::Array(v.iter().map(|x| Value::Long(*x)).collect())),
            ),
        ])
    }

    fn from_avro(mut f: Fields<'_>) -> Result<Self> {
        Ok(DataFileMeta {
            file_name: f.string("_FILE_NAME")?,
            file_size: f.long("_FILE_SIZE")?,
            row_count: f.long("_ROW_COUNT")?,
            min_key: f.bytes("_MIN_KEY")?,
            max_key: f.bytes("_MAX_KEY")?,
            key_stats: SimpleStats::from_avro(f.record("_KEY_STATS")?)?,
            value_stats: SimpleStats::from_avro(f.record("_VALUE_STATS")?)?,
            min_sequence_number: f.long("_MIN_SEQUENCE_NUMBER")?,
            max_sequence_number: f.long("_MAX_SEQUENCE_NUMBER")?,
            schema_id: f.long("_SCHEMA_ID")?,
            level: f.int("_LEVEL")?,
            extra_files: f.opt_strings("_EXTRA_FILES")?.unwrap_or_default(),
            creation_time_millis: f.opt_long("_CREATION_TIME")?,
            delete_row_count: f.opt_long("_DELETE_ROW_COUNT")?,
            embedded_index: f.opt_bytes("_EMBEDDED_FILE_INDEX")?,
            file_source: f.opt_int("_FILE_SOURCE")?,
            value_stats_cols: f.opt_strings("_VALUE_STATS_COLS")?,
            external_path: f.opt_string("_EXTERNAL_PATH")?,
            first_row_id: f.opt_long("_FIRST_ROW_ID")?,
            write_cols: f.opt_strings("_WRITE_COLS")?,
            write_cols_sequences: f
                .opt_longs("_WRITE_COLS_SEQUENCES")?
                .map(|v| v.into_iter().map(|x| x.unwrap_or_default()).collect()),
        })
    }
}

/// `_KIND` of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Add,
    Delete,
}

/// One `ManifestEntry`: a file added to or deleted from a (partition, bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub kind: FileKind,
    /// Serialized BinaryRow of the partition values.
    pub partition: Vec<u8>,
    pub bucket: i32,
    pub total_buckets: i32,
    pub file: DataFileMeta,
}

impl ManifestEntry {
    /// Identity of the file this entry talks about (Paimon's `FileEntry.Identifier`, simplified).
    pub fn identifier(&self) -> (Vec<u8>, i32, i32, String) {
        (self.partition.clone(), self.bucket, self.file.level, self.file.file_name.clone())
    }

    fn to_avro(&self) -> Value {
        Value::Record(vec![
            ("_VERSION".into(), Value::Int(MANIFEST_VERSION)),
            (
                "_KIND".into(),
                Value::Int(match self.kind {
                    FileKind::Add => 0,
                    FileKind::Delete => 1,
                }),
            ),
            ("_PARTITION".into(), Value::Bytes(self.partition.clone())),
            ("_BUCKET".into(), Value::Int(self.bucket)),
            ("_TOTAL_BUCKETS".into(), Value::Int(self.total_buckets)),
            ("_FILE".into(), self.file.to_avro()),
        ])
    }

    fn from_avro(v: Value, path: &Path) -> Result<Self> {
        let mut f = Fields::new(v, path)?;
        let kind = match f.int("_KIND")? {
            0 => FileKind::Add,
            1 => FileKind::Delete,
            k => return Err(Error::corrupt(path, format!("unknown manifest entry kind {k}"))),
        };
        Ok(ManifestEntry {
            kind,
            partition: f.bytes("_PARTITION")?,
            bucket: f.int("_BUCKET")?,
            total_buckets: f.int("_TOTAL_BUCKETS")?,
            file: DataFileMeta::from_avro(f.record("_FILE")?)?,
        })
    }
}

/// One `ManifestFileMeta` record of a manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFileMeta {
    pub file_name: String,
    pub file_size: i64,
    pub num_added_files: i64,
    pub num_deleted_files: i64,
    pub partition_stats: SimpleStats,
    pub schema_id: i64,
    pub min_bucket: Option<i32>,
    pub max_bucket: Option<i32>,
    pub min_level: Option<i32>,
    pub max_level: Option<i32>,
    pub total_buckets: Option<i32>,
}

impl ManifestFileMeta {
    fn to_avro(&self) -> Value {
        Value::Record(vec![
            ("_VERSION".into(), Value::Int(MANIFEST_VERSION)),
            ("_FILE_NAME".into(), Value::String(self.file_name.clone())),
            ("_FILE_SIZE".into(), Value::Long(self.file_size)),
            ("_NUM_ADDED_FILES".into(), Value::Long(self.num_added_files)),
            ("_NUM_DELETED_FILES".into(), Value::Long(self.num_deleted_files)),
            ("_PARTITION_STATS".into(), self.partition_stats.to_avro()),
            ("_SCHEMA_ID".into(), Value::Long(self.schema_id)),
            ("_MIN_BUCKET".into(), opt(self.min_bucket, Value::Int)),
            ("_MAX_BUCKET".into(), opt(self.max_bucket, Value::Int)),
            ("_MIN_LEVEL".into(), opt(self.min_level, Value::Int)),
            ("_MAX_LEVEL".into(), opt(self.max_level, Value::Int)),
            ("_MIN_ROW_ID".into(), opt(None::<i64>, Value::Long)),
            ("_MAX_ROW_ID".into(), opt(None::<i64>, Value::Long)),
            ("_TOTAL_BUCKETS".into(), opt(self.total_buckets, Value::Int)),
            ("_EXTRA_FILES".into(), opt(None::<&[String]>, strings)),
        ])
    }

    fn from_avro(v: Value, path: &Path) -> Result<Self> {
        let mut f = Fields::new(v, path)?;
        Ok(ManifestFileMeta {
            file_name: f.string("_FILE_NAME")?,
            file_size: f.long("_FILE_SIZE")?,
            num_added_files: f.long("_NUM_ADDED_FILES")?,
            num_deleted_files: f.long("_NUM_DELETED_FILES")?,
            partition_stats: SimpleStats::from_avro(f.record("_PARTITION_STATS")?)?,
            schema_id: f.long("_SCHEMA_ID")?,
            min_bucket: f.opt_int("_MIN_BUCKET")?,
            max_bucket: f.opt_int("_MAX_BUCKET")?,
            min_level: f.opt_int("_MIN_LEVEL")?,
            max_level: f.opt_int("_MAX_LEVEL")?,
            total_buckets: f.opt_int("_TOTAL_BUCKETS")?,
        })
    }
}

fn entry_schema() -> Result<&'static Schema> {
    static S: OnceLock<std::result::Result<Schema, String>> = OnceLock::new();
    S.get_or_init(|| Schema::parse_str(&manifest_entry_schema()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Unsupported(format!("manifest entry Avro schema does not parse: {e}")))
}

fn file_meta_schema() -> Result<&'static Schema> {
    static S: OnceLock<std::result::Result<Schema, String>> = OnceLock::new();
    S.get_or_init(|| Schema::parse_str(&manifest_file_meta_schema()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Unsupported(format!("manifest list Avro schema does not parse: {e}")))
}

/// Avro codec for `manifest.compression` (`zstd` by default, as Paimon).
pub fn codec_for(name: &str) -> Codec {
    match name {
        "none" | "null" => Codec::Null,
        "snappy" => Codec::Snappy,
        "deflate" => Codec::Deflate(Default::default()),
        _ => Codec::Zstandard(apache_avro::ZstandardSettings::new(1)),
    }
}

fn encode(schema: &Schema, codec: Codec, values: Vec<Value>, path: &Path) -> Result<Vec<u8>> {
    let avro =
        |source: apache_avro::Error| Error::Avro { op: "encoding", path: path.to_path_buf(), source: Box::new(source) };
    let mut writer = Writer::with_codec(schema, Vec::new(), codec);
    for v in values {
        writer.append(v).map_err(avro)?;
    }
    writer.into_inner().map_err(avro)
}

fn decode(bytes: &[u8], path: &Path) -> Result<Vec<Value>> {
    let avro =
        |source: apache_avro::Error| Error::Avro { op: "decoding", path: path.to_path_buf(), source: Box::new(source) };
    let reader = Reader::new(bytes).map_err(avro)?;
    reader.map(|r| r.map_err(avro)).collect()
}

pub fn encode_manifest(entries: &[ManifestEntry], codec: Codec, path: &Path) -> Result<Vec<u8>> {
    encode(entry_schema()?, codec, entries.iter().map(ManifestEntry::to_avro).collect(), path)
}

pub fn decode_manifest(bytes: &[u8], path: &Path) -> Result<Vec<ManifestEntry>> {
    decode(bytes, path)?.into_iter().map(|v| ManifestEntry::from_avro(v, path)).collect()
}

pub fn encode_manifest_list(metas: &[ManifestFileMeta], codec: Codec, path: &Path) -> Result<Vec<u8>> {
    encode(file_meta_schema()?, codec, metas.iter().map(ManifestFileMeta::to_avro).collect(), path)
}

pub fn decode_manifest_list(bytes: &[u8], path: &Path) -> Result<Vec<ManifestFileMeta>> {
    decode(bytes, path)?.into_iter().map(|v| ManifestFileMeta::from_avro(v, path)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file() -> DataFileMeta {
        DataFileMeta {
            file_name: "data-x-0.parquet".into(),
            file_size: 10,
            row_count: 2,
            min_key: vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            max_key: vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0],
            key_stats: SimpleStats::empty(),
            value_stats: SimpleStats::empty(),
            min_sequence_number: 0,
            max_sequence_number: 1,
            schema_id: 0,
            level: 0,
            extra_files: vec![],
            creation_time_millis: Some(1_700_000_000_000),
            delete_row_count: Some(0),
            embedded_index: None,
            file_source: Some(FILE_SOURCE_APPEND),
            value_stats_cols: Some(vec![]),
            external_path: None,
            first_row_id: None,
            write_cols: None,
            write_cols_sequences: None,
        }
    }

    #[test]
    fn manifest_round_trip() {
        let entry = ManifestEntry {
            kind: FileKind::Add,
            partition: crate::spec::binary_row::serialize_empty(),
            bucket: 1,
            total_buckets: 2,
            file: sample_file(),
        };
        let p = Path::new("manifest-test");
        let bytes = encode_manifest(&[entry.clone()], codec_for("zstd"), p).expect("encodes");
        assert_eq!(decode_manifest(&bytes, p).expect("decodes"), vec![entry]);
    }

    #[test]
    fn manifest_list_round_trip() {
        let meta = ManifestFileMeta {
            file_name: "manifest-x-0".into(),
            file_size: 100,
            num_added_files: 2,
            num_deleted_files: 0,
            partition_stats: SimpleStats::empty(),
            schema_id: 0,
            min_bucket: Some(0),
            max_bucket: Some(1),
            min_level: Some(0),
            max_level: Some(0),
            total_buckets: Some(2),
        };
        let p = Path::new("manifest-list-test");
        let bytes = encode_manifest_list(&[meta.clone()], codec_for("zstd"), p).expect("encodes");
        assert_eq!(decode_manifest_list(&bytes, p).expect("decodes"), vec![meta]);
    }
}
