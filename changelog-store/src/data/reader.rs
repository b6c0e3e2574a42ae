//! Reads key/value Parquet files (ours or other Paimon writers') back into [`KeyValue`]s.

use crate::data::arrow_conv::{KEY_FIELD_PREFIX, from_batch};
use crate::error::{Error, Result};
use crate::row::KeyValue;
use crate::table_info::TableInfo;
use arrow_array::BooleanArray;
use arrow_schema::ArrowError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use std::path::Path;

/// Reads every record of a data or changelog file, in file order.
pub fn read_kv_file(info: &TableInfo, path: &Path) -> Result<Vec<KeyValue>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let pq = |source| Error::Parquet { op: "reading", path: path.to_path_buf(), source };
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?.with_batch_size(8192).build().map_err(pq)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| Error::Arrow { op: "decoding a data file", source })?;
        from_batch(info, &batch, &mut out).map_err(|e| match e {
            Error::Corrupt { message, .. } => Error::corrupt(path, message),
            other => other,
        })?;
    }
    Ok(out)
}

/// Reads a whole key/value file in `projected`'s layout (a
/// [`projected_kv_schema`](crate::data::arrow_conv::projected_kv_schema)): the
/// columns it leaves out are not decoded. A column the file holds in another type
/// (written before a schema change) makes it read the whole file in `full`'s layout
/// and convert, as [`KvBatchReader`] does, then project.
pub fn read_projected(
    info: &TableInfo,
    full: &arrow_schema::SchemaRef,
    projected: &arrow_schema::SchemaRef,
    path: &Path,
) -> Result<arrow_array::RecordBatch> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let pq = |source| Error::Parquet { op: "reading", path: path.to_path_buf(), source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?.with_batch_size(8192);
    let roots: Vec<usize> = builder
        .parquet_schema()
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| projected.column_with_name(f.name()).is_some())
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build().map_err(pq)?;
    let file_schema = arrow_array::RecordBatchReader::schema(&reader);
    let parts = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Error::Arrow { op: "decoding a data file", source })?;
    let raw = arrow_select::concat::concat_batches(&file_schema, &parts)
        .map_err(|source| Error::Arrow { op: "concatenating a data file's batches", source })?;
    let with_path = |e: Error| match e {
        Error::Corrupt { message, .. } => Error::corrupt(path, message),
        other => other,
    };
    if let Some(batch) = crate::data::arrow_conv::reorder_batch(projected, &raw).map_err(with_path)? {
        return Ok(batch);
    }
    // A column in another type: converted as a whole read converts it.
    let whole = KvBatchReader::open(info, full.clone(), path)?.read_to_batch()?;
    projected
        .fields()
        .iter()
        .map(|f| full.index_of(f.name()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .and_then(|i| whole.project(&i))
        .map_err(|source| Error::Arrow { op: "projecting a data file's columns", source })
}

/// Streams the batches of a key/value file in the [`kv_schema`](crate::data::arrow_conv::kv_schema)
/// layout (see [`normalize_batch`](crate::data::arrow_conv::normalize_batch)).
pub struct KvBatchReader<'a> {
    info: &'a TableInfo,
    schema: arrow_schema::SchemaRef,
    path: std::path::PathBuf,
    inner: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
}

impl<'a> KvBatchReader<'a> {
    pub fn open(info: &'a TableInfo, schema: arrow_schema::SchemaRef, path: &Path) -> Result<Self> {
        Self::open_row_groups(info, schema, path, None)
    }

    /// Opens the file reading only `row_groups` (all when `None`).
    pub fn open_row_groups(
        info: &'a TableInfo,
        schema: arrow_schema::SchemaRef,
        path: &Path,
        row_groups: Option<Vec<usize>>,
    ) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let pq = |source| Error::Parquet { op: "reading", path: path.to_path_buf(), source };
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?.with_batch_size(8192);
        if let Some(rg) = row_groups {
            builder = builder.with_row_groups(rg);
        }
        Ok(KvBatchReader { info, schema, path: path.to_path_buf(), inner: builder.build().map_err(pq)? })
    }

    /// Opens the file reading only the rows whose key `keep` accepts. The key columns
    /// (`_KEY_*`) are decoded first, for every row; the other columns only for the rows
    /// kept. `keep` is called with the key columns of each batch, in key order, in file
    /// order, and returns which of its rows to keep.
    pub fn open_filtered<F>(
        info: &'a TableInfo,
        schema: arrow_schema::SchemaRef,
        path: &Path,
        mut keep: F,
    ) -> Result<Self>
    where
        F: FnMut(&[arrow_array::ArrayRef]) -> std::result::Result<BooleanArray, ArrowError> + Send + 'static,
    {
        let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let pq = |source| Error::Parquet { op: "reading", path: path.to_path_buf(), source };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?.with_batch_size(8192);
        let names: Vec<String> = info.key_names.iter().map(|k| format!("{KEY_FIELD_PREFIX}{k}")).collect();
        let leaves = {
            let descr = builder.parquet_schema();
            let find = |name: &str| (0..descr.num_columns()).find(|&i| descr.column(i).path().string() == name);
            names
                .iter()
                .map(|n| find(n).ok_or_else(|| Error::corrupt(path, format!("missing column `{n}`"))))
                .collect::<Result<Vec<_>>>()?
        };
        let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
        let predicate = ArrowPredicateFn::new(mask, move |batch: arrow_array::RecordBatch| {
            let keys = names
                .iter()
                .map(|n| batch.column_by_name(n).cloned())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ArrowError::SchemaError("key column missing from the filter's batch".into()))?;
            keep(&keys)
        });
        let inner = builder.with_row_filter(RowFilter::new(vec![Box::new(predicate)])).build().map_err(pq)?;
        Ok(KvBatchReader { info, schema, path: path.to_path_buf(), inner })
    }

    /// Opens the file with already loaded metadata, reading `row_groups` and, within
    /// them, only the rows of `selection` (pages outside it are skipped when the
    /// metadata holds the offset index).
    pub fn open_selected(
        info: &'a TableInfo,
        schema: arrow_schema::SchemaRef,
        path: &Path,
        metadata: parquet::arrow::arrow_reader::ArrowReaderMetadata,
        row_groups: Vec<usize>,
        selection: Option<parquet::arrow::arrow_reader::RowSelection>,
    ) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata)
            .with_batch_size(8192)
            .with_row_groups(row_groups);
        if let Some(s) = selection {
            builder = builder.with_row_selection(s);
        }
        let inner =
            builder.build().map_err(|source| Error::Parquet { op: "reading", path: path.to_path_buf(), source })?;
        Ok(KvBatchReader { info, schema, path: path.to_path_buf(), inner })
    }

    /// Every remaining row as one batch.
    pub fn read_to_batch(mut self) -> Result<arrow_array::RecordBatch> {
        let mut parts = Vec::new();
        while let Some(b) = self.next_batch()? {
            parts.push(b);
        }
        arrow_select::concat::concat_batches(&self.schema, &parts)
            .map_err(|source| Error::Arrow { op: "concatenating a data file's batches", source })
    }

    /// The next batch, `None` at the end of the file.
    pub fn next_batch(&mut self) -> Result<Option<arrow_array::RecordBatch>> {
        match self.inner.next() {
            None => Ok(None),
            Some(Err(source)) => Err(Error::Arrow { op: "decoding a data file", source }),
            Some(Ok(b)) => {
                crate::data::arrow_conv::normalize_batch(self.info, &self.schema, &b).map(Some).map_err(|e| match e {
                    Error::Corrupt { message, .. } => Error::corrupt(&self.path, message),
                    other => other,
                })
            }
        }
    }
}
