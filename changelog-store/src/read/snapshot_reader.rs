//! [`SnapshotReader`]: reads of one pinned snapshot. The file plan is resolved once and
//! Parquet footers are cached, so repeated point lookups cost only the row groups that
//! may hold the key: row groups pruned by the `_KEY_` column statistics, then, with the
//! page index our writer adds for single-column integer keys, only the pages whose key
//! range holds the key are decoded (a few thousand rows instead of a row group).

use crate::data::arrow_conv::{self, from_batch, kv_schema};
use crate::data::reader::KvBatchReader;
use crate::data::sort_key::{KeyForm, OwnedKey, SortKeys};
use crate::error::{Error, Result};
use crate::lsm::merge::compare;
use crate::manifest_io::ManifestIo;
use crate::merge::{merge_function, merge_group};
use crate::paths::TablePaths;
use crate::read::scan::{self, BucketFiles, KeyRange};
use crate::row::{Datum, Key, KeyValue, Row};
use crate::spec::snapshot::Snapshot;
use crate::table_info::TableInfo;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, BooleanArray, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Reads of one snapshot (`None` snapshot: an empty table).
pub struct SnapshotReader {
    info: Arc<TableInfo>,
    paths: TablePaths,
    snapshot: Option<Snapshot>,
    buckets: Vec<BucketFiles>,
    footers: Mutex<HashMap<PathBuf, ArrowReaderMetadata>>,
}

impl SnapshotReader {
    pub fn new(info: Arc<TableInfo>, paths: TablePaths, io: &ManifestIo, snapshot: Option<Snapshot>) -> Result<Self> {
        let buckets = match &snapshot {
            Some(s) => scan::plan(&info, io, s)?,
            None => Vec::new(),
        };
        Ok(SnapshotReader { info, paths, snapshot, buckets, footers: Mutex::new(HashMap::new()) })
    }

    /// The snapshot read (`None` for a table without snapshots).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub fn buckets(&self) -> &[BucketFiles] {
        &self.buckets
    }

    /// Every visible row as batches of the table columns, per bucket in key order.
    pub fn scan_batches(&self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for b in &self.buckets {
            out.extend(scan::read_bucket_batches(&self.info, &self.paths, b, &KeyRange::all())?);
        }
        Ok(out)
    }

    /// Every visible row, per bucket in key order.
    pub fn scan(&self) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for b in self.scan_batches()? {
            rows.extend(arrow_conv::rows_of(&self.info, &b)?);
        }
        Ok(rows)
    }

    /// The visible row with this primary key (values in `primary-key` order).
    pub fn lookup(&self, primary_key: &[Datum]) -> Result<Option<Row>> {
        let info = &self.info;
        let pk = &info.schema.primary_keys;
        if primary_key.len() != pk.len() {
            return Err(Error::InvalidValue {
                column: "<primary key>".into(),
                message: format!("{} values for primary key {pk:?}", primary_key.len()),
            });
        }
        let mut probe: Row = vec![Datum::Null; info.schema.fields.len()];
        for (name, v) in pk.iter().zip(primary_key.iter()) {
            let i = info
                .schema
                .field_index(name)
                .ok_or_else(|| Error::InvalidSchema(format!("unknown key column `{name}`")))?;
            probe[i] = v.clone();
        }
        let key: Key = info.key_of(&probe);
        let partition = info.partition_of(&probe);
        let bucket_known = info.bucket_key_indices == info.key_indices;
        let bucket = info.bucket_of(&probe);
        let mut found = Vec::new();
        for b in &self.buckets {
            if b.partition != partition || (bucket_known && b.bucket != bucket) {
                continue;
            }
            let dir = self.paths.bucket_dir(&info.partition_spec(&b.partition), b.bucket);
            for f in &b.files {
                if f.overlaps(Some(&key), Some(&key)) {
                    self.probe_file(&dir.join(&f.meta.file_name), &key, &mut found)?;
                }
            }
            if bucket_known {
                break;
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        found.sort_by(|a, b| compare(info, a, b));
        let mut merge = merge_function(info)?;
        Ok(merge_group(merge.as_mut(), found)?.filter(|kv| kv.kind.is_add()).map(|kv| kv.value))
    }

    fn footer(&self, path: &PathBuf) -> Result<ArrowReaderMetadata> {
        let mut cache = self.footers.lock().map_err(|_| Error::Unsupported("footer cache lock poisoned".into()))?;
        if let Some(m) = cache.get(path) {
            return Ok(m.clone());
        }
        let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let meta = ArrowReaderMetadata::load(
            &file,
            ArrowReaderOptions::new().with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional),
        )
        .map_err(|source| Error::Parquet { op: "reading the footer of", path: path.clone(), source })?;
        cache.insert(path.clone(), meta.clone());
        Ok(meta)
    }

    /// Row groups whose `_KEY_` statistics may contain `key` (all if unknown), and the
    /// row ranges inside them (relative to the selected row groups) whose pages may hold
    /// it, when the file has a page index for the key column.
    fn candidates(&self, meta: &ArrowReaderMetadata, key: &Key) -> (Vec<usize>, Option<RowSelection>) {
        let md = meta.metadata();
        let row_groups = self.candidate_row_groups(meta, key);
        let (Some(col), [Datum::Long(k)]) = (self.int_key_column(meta), key.as_slice()) else {
            return (row_groups, None);
        };
        let (Some(column_index), Some(offset_index)) = (md.column_index(), md.offset_index()) else {
            return (row_groups, None);
        };
        let mut kept = Vec::new();
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        let mut base = 0usize;
        for rg in row_groups {
            let rows = md.row_group(rg).num_rows() as usize;
            let pages =
                match (column_index.get(rg).and_then(|c| c.get(col)), offset_index.get(rg).and_then(|c| c.get(col))) {
                    (Some(ColumnIndexMetaData::INT64(index)), Some(offsets)) => {
                        let locations = offsets.page_locations();
                        let mut hits = Vec::new();
                        for (p, loc) in locations.iter().enumerate() {
                            let may_hold = match (index.min_value(p), index.max_value(p)) {
                                (Some(lo), Some(hi)) => lo <= k && k <= hi,
                                _ => true,
                            };
                            if may_hold {
                                let start = loc.first_row_index as usize;
                                let end = locations.get(p + 1).map_or(rows, |n| n.first_row_index as usize);
                                hits.push(base + start..base + end);
                            }
                        }
                        Some(hits)
                    }
                    _ => None,
                };
            match pages {
                Some(hits) if hits.is_empty() => continue,
                Some(hits) => ranges.extend(hits),
                None => ranges.push(base..base + rows),
            }
            kept.push(rg);
            base += rows;
        }
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), base);
        (kept, Some(selection))
    }

    /// Index of the `_KEY_` column of a single BIGINT primary key, if that is the key.
    fn int_key_column(&self, meta: &ArrowReaderMetadata) -> Option<usize> {
        if self.info.key_names.len() != 1 || KeyForm::of(&self.info.key_types) != KeyForm::Int {
            return None;
        }
        let name = format!("{}{}", arrow_conv::KEY_FIELD_PREFIX, self.info.key_names[0]);
        meta.metadata().file_metadata().schema_descr().columns().iter().position(|c| c.name() == name)
    }

    /// Row groups whose `_KEY_` statistics may contain `key` (all if unknown).
    fn candidate_row_groups(&self, meta: &ArrowReaderMetadata, key: &Key) -> Vec<usize> {
        let md = meta.metadata();
        let all: Vec<usize> = (0..md.num_row_groups()).collect();
        let (KeyForm::Int, [Datum::Long(_) | Datum::Int(_)]) = (KeyForm::of(&self.info.key_types), key.as_slice())
        else {
            return all;
        };
        let k = match key[0] {
            Datum::Long(v) => v,
            Datum::Int(v) => v as i64,
            _ => return all,
        };
        let Some(col) = md
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == format!("{}{}", arrow_conv::KEY_FIELD_PREFIX, self.info.key_names[0]))
        else {
            return all;
        };
        all.into_iter()
            .filter(|&rg| match md.row_group(rg).column(col).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(lo), Some(hi)) => *lo <= k && k <= *hi,
                    _ => true,
                },
                Some(Statistics::Int32(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(lo), Some(hi)) => (*lo as i64) <= k && k <= (*hi as i64),
                    _ => true,
                },
                _ => true,
            })
            .collect()
    }

    /// For a single BIGINT key: the rows holding it, as a selection over the kept row
    /// groups, found by decoding the key column alone over the candidate pages
    /// (`selection`). `None` when the key is not a single BIGINT.
    fn key_rows(
        &self,
        path: &PathBuf,
        meta: &ArrowReaderMetadata,
        row_groups: &[usize],
        selection: Option<&RowSelection>,
        key: &Key,
    ) -> Result<Option<RowSelection>> {
        let (Some(col), [Datum::Long(k)]) = (self.int_key_column(meta), key.as_slice()) else {
            return Ok(None);
        };
        let mask = ProjectionMask::leaves(meta.metadata().file_metadata().schema_descr(), [col]);
        let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_batch_size(8192)
            .with_row_groups(row_groups.to_vec())
            .with_projection(mask);
        if let Some(sel) = selection {
            builder = builder.with_row_selection(sel.clone());
        }
        let reader =
            builder.build().map_err(|source| Error::Parquet { op: "reading keys of", path: path.clone(), source })?;
        // One filter per batch of the rows read, true where the key matches.
        let mut filters = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|source| Error::Arrow { op: "decoding keys of a data file", source })?;
            let keys = batch.column(0).as_primitive_opt::<Int64Type>().ok_or_else(|| {
                Error::corrupt(path, format!("key column is {}, not BIGINT", batch.column(0).data_type()))
            })?;
            filters.push(keys.iter().map(|v| Some(v == Some(*k))).collect::<BooleanArray>());
        }
        let read: usize = filters.iter().map(|f| f.len()).sum();
        let hits = RowSelection::from_filters(&filters);
        match selection {
            None => Ok(Some(hits)),
            // `hits` is relative to the rows `sel` selected; compose into file positions.
            Some(sel) if sel.row_count() == read => Ok(Some(sel.and_then(&hits))),
            Some(_) => Err(Error::corrupt(path, "the key column returned another number of rows than selected")),
        }
    }

    fn probe_file(&self, path: &PathBuf, key: &Key, out: &mut Vec<KeyValue>) -> Result<()> {
        let info = &self.info;
        let meta = self.footer(path)?;
        let (row_groups, mut selection) = self.candidates(&meta, key);
        if row_groups.is_empty() {
            return Ok(());
        }
        // Two phases for a BIGINT key: the key column alone finds the rows, then every
        // column is decoded for those rows only. Files that do not hold the key (most
        // of those a lookup opens) cost one column instead of all of them.
        if let Some(rows) = self.key_rows(path, &meta, &row_groups, selection.as_ref(), key)? {
            if !rows.selects_any() {
                return Ok(());
            }
            selection = Some(rows);
        }
        let mut reader = KvBatchReader::open_selected(info, kv_schema(info), path, meta, row_groups, selection)?;
        let form = KeyForm::of(&info.key_types);
        let probe_cols = arrow_conv::key_columns_of(info, key);
        let probe = SortKeys::new(form, &probe_cols)?;
        let mut owned = OwnedKey::Int(0);
        probe.copy_into(0, &mut owned);
        while let Some(batch) = reader.next_batch()? {
            let keys = SortKeys::new(form, &batch.columns()[..info.key_types.len()])?;
            let hits: Vec<bool> = (0..keys.len()).map(|r| keys.eq_owned(r, &owned)).collect();
            if !hits.iter().any(|h| *h) {
                continue;
            }
            let mask = arrow_array::BooleanArray::from(hits);
            let matched = arrow_select::filter::filter_record_batch(&batch, &mask)
                .map_err(|source| Error::Arrow { op: "filtering a point lookup", source })?;
            if matched.num_rows() > 0 && matched.column(0).len() > 0 {
                from_batch(info, &matched, out)?;
            }
        }
        Ok(())
    }
}
