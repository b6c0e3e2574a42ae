//! Writes key/value records to rolling zstd Parquet files and describes them as
//! [`DataFileMeta`] (min/max key, key stats, sequence range, delete count).

use crate::data::arrow_conv::{kv_schema, to_batch};
use crate::error::{Error, Result};
use crate::fs;
use crate::row::{Datum, KeyValue};
use crate::spec::binary_row;
use crate::spec::manifest::{DataFileMeta, SimpleStats};
use crate::table_info::TableInfo;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::path::Path;

const BATCH_ROWS: usize = 4096;

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

fn compression(name: &str) -> Compression {
    match name {
        "none" | "uncompressed" => Compression::UNCOMPRESSED,
        "snappy" => Compression::SNAPPY,
        _ => Compression::ZSTD(ZstdLevel::default()),
    }
}

/// Writes `records` (sorted by key for data files) into one or more files in `dir`.
pub fn write_kv_files(
    info: &TableInfo,
    dir: &Path,
    records: &[KeyValue],
    spec: FileSpec,
    now_millis: i64,
) -> Result<Vec<DataFileMeta>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(dir)?;
    let schema = kv_schema(info);
    let props = WriterProperties::builder()
        .set_compression(compression(&info.options.file_compression))
        .build();
    let mut metas = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let name = format!("{}-{}-0.parquet", spec.prefix, uuid::Uuid::new_v4());
        let path = dir.join(&name);
        let pq = |source| Error::Parquet {
            op: "writing",
            path: path.clone(),
            source,
        };
        let mut buf: Vec<u8> = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props.clone())).map_err(pq)?;
        let mut end = start;
        while end < records.len() {
            let chunk_end = (end + BATCH_ROWS).min(records.len());
            let batch = to_batch(info, &schema, &records[end..chunk_end])?;
            writer.write(&batch).map_err(pq)?;
            end = chunk_end;
            let size = writer.bytes_written() + writer.in_progress_size();
            if size as u64 >= spec.target_size {
                break;
            }
        }
        writer.close().map_err(pq)?;
        fs::write_new(&path, &buf)?;
        metas.push(describe(info, &records[start..end], name, buf.len() as i64, spec, now_millis));
        start = end;
    }
    Ok(metas)
}

fn describe(
    info: &TableInfo,
    records: &[KeyValue],
    file_name: String,
    file_size: i64,
    spec: FileSpec,
    now_millis: i64,
) -> DataFileMeta {
    let arity = info.key_types.len();
    let mut mins: Vec<&Datum> = Vec::with_capacity(arity);
    let mut maxs: Vec<&Datum> = Vec::with_capacity(arity);
    let mut nulls = vec![0i64; arity];
    let mut min_key = &records[0].key;
    let mut max_key = &records[0].key;
    let (mut min_seq, mut max_seq, mut deletes) = (i64::MAX, i64::MIN, 0i64);
    for r in records {
        if r.key < *min_key {
            min_key = &r.key;
        }
        if r.key > *max_key {
            max_key = &r.key;
        }
        min_seq = min_seq.min(r.seq);
        max_seq = max_seq.max(r.seq);
        if !r.kind.is_add() {
            deletes += 1;
        }
        for (i, d) in r.key.iter().enumerate() {
            if d.is_null() {
                nulls[i] += 1;
                continue;
            }
            if mins.len() <= i {
                mins.push(d);
                maxs.push(d);
            } else {
                if mins[i].is_null() || d < mins[i] {
                    mins[i] = d;
                }
                if d > maxs[i] {
                    maxs[i] = d;
                }
            }
        }
    }
    let null = Datum::Null;
    while mins.len() < arity {
        mins.push(&null);
        maxs.push(&null);
    }
    DataFileMeta {
        file_name,
        file_size,
        row_count: records.len() as i64,
        min_key: info.serialize_key(min_key),
        max_key: info.serialize_key(max_key),
        key_stats: SimpleStats {
            min_values: binary_row::serialize(&info.key_types, &mins),
            max_values: binary_row::serialize(&info.key_types, &maxs),
            null_counts: Some(nulls.into_iter().map(Some).collect()),
        },
        value_stats: SimpleStats::empty(),
        min_sequence_number: min_seq,
        max_sequence_number: max_seq,
        schema_id: info.schema.id,
        level: spec.level,
        extra_files: Vec::new(),
        creation_time_millis: Some(now_millis),
        delete_row_count: Some(deletes),
        embedded_index: None,
        file_source: Some(spec.file_source),
        value_stats_cols: Some(Vec::new()),
        external_path: None,
        first_row_id: None,
        write_cols: None,
        write_cols_sequences: None,
    }
}
