//! Reads key/value Parquet files (ours or other Paimon writers') back into [`KeyValue`]s.

use crate::data::arrow_conv::from_batch;
use crate::error::{Error, Result};
use crate::row::KeyValue;
use crate::table_info::TableInfo;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

/// Reads every record of a data or changelog file, in file order.
pub fn read_kv_file(info: &TableInfo, path: &Path) -> Result<Vec<KeyValue>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let pq = |source| Error::Parquet {
        op: "reading",
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .with_batch_size(8192)
        .build()
        .map_err(pq)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| Error::Arrow {
            op: "decoding a data file",
            source,
        })?;
        from_batch(info, &batch, &mut out).map_err(|e| match e {
            Error::Corrupt { message, .. } => Error::corrupt(path, message),
            other => other,
        })?;
    }
    Ok(out)
}
