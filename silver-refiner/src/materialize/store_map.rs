//! The store table of an entity, and Silver batches cast to its rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;

use crate::contract::ColumnType;

/// Store column: the Silver data file a row lives in.
pub const SILVER_FILE: &str = "_silver_file";
/// Store column: the row's 0-based position in that file.
pub const SILVER_POS: &str = "_silver_pos";

/// Paimon type of a contract column type. Types Paimon (or this store) lacks
/// are kept losslessly: `time` as microseconds (BIGINT), `uuid` as its 16 bytes.
/// `timestamptz` is an instant, `TIMESTAMP(6) WITH LOCAL TIME ZONE` (entity tables
/// created before the store had it keep their `TIMESTAMP(6)`, UTC wall-clock time).
pub fn paimon_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Boolean => "BOOLEAN".into(),
        ColumnType::Int => "INT".into(),
        ColumnType::Long | ColumnType::Time => "BIGINT".into(),
        ColumnType::Float => "FLOAT".into(),
        ColumnType::Double => "DOUBLE".into(),
        ColumnType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
        ColumnType::Date => "DATE".into(),
        ColumnType::Timestamp => "TIMESTAMP(6)".into(),
        ColumnType::TimestampTz => "TIMESTAMP(6) WITH LOCAL TIME ZONE".into(),
        ColumnType::String => "STRING".into(),
        ColumnType::Uuid | ColumnType::Binary => "BYTES".into(),
    }
}

/// The `_silver_file` value of the Silver data file at `path`: the path relative
/// to the table's `location` (`data/<partition>/<file>.parquet`), or the full path
/// of a file elsewhere. Relative, the column holds about half the bytes: it is
/// repeated on every store row, and buffered, flushed and looked up with it.
pub fn store_path<'a>(location: &str, path: &'a str) -> &'a str {
    path.strip_prefix(location.trim_end_matches('/')).and_then(|rest| rest.strip_prefix('/')).unwrap_or(path)
}

/// The full path of a `_silver_file` value. Stores written before values were
/// relative hold full paths, which are returned as they are.
pub fn silver_path(location: &str, stored: &str) -> String {
    if stored.starts_with('/') || stored.contains("://") {
        stored.to_string()
    } else {
        format!("{}/{stored}", location.trim_end_matches('/'))
    }
}

/// The Silver data files named by the store rows of one store snapshot, numbered
/// in the order met. A file is known by its [`store_path`] form, so that a full
/// path (of this snapshot's new files, or of a store written before values were
/// relative) and a relative one name the same file; its full path is built once.
pub struct SilverFiles<'a> {
    location: &'a str,
    numbers: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    paths: Vec<Arc<str>>,
}

impl<'a> SilverFiles<'a> {
    pub fn new(location: &'a str) -> Self {
        SilverFiles { location, numbers: HashMap::default(), paths: Vec::new() }
    }

    /// The number of the file a `_silver_file` value (or a full path) names.
    pub fn number(&mut self, value: &str) -> u32 {
        let key = store_path(self.location, value);
        if let Some(n) = self.numbers.get(key) {
            return *n;
        }
        let n = self.paths.len() as u32;
        self.paths.push(Arc::from(silver_path(self.location, key)));
        self.numbers.insert(key.into(), n);
        n
    }

    /// The full path of file `n`.
    pub fn path(&self, n: u32) -> &Arc<str> {
        &self.paths[n as usize]
    }
}

/// The store table for a Silver schema: its columns (key columns NOT NULL,
/// all others nullable so that a delete carries the key alone), the two
/// location columns, primary key, and the options that make it Silver's index.
pub fn store_spec(
    silver: &SchemaRef,
    types: &BTreeMap<String, ColumnType>,
    key: &[String],
    buckets: usize,
) -> Result<changelog_store::TableSpec, String> {
    let mut columns = Vec::new();
    for f in silver.fields() {
        let ty = match types.get(f.name()) {
            Some(t) => paimon_type(*t),
            None => changelog_store::data::arrow_conv::paimon_type_of(f.data_type())
                .ok_or_else(|| format!("column {} of type {} has no store type", f.name(), f.data_type()))?,
        };
        let ty = if key.contains(f.name()) { format!("{ty} NOT NULL") } else { ty };
        columns.push((f.name().clone(), ty));
    }
    columns.push((SILVER_FILE.into(), "STRING".into()));
    columns.push((SILVER_POS.into(), "BIGINT".into()));
    let options = BTreeMap::from([
        ("bucket".to_string(), buckets.max(1).to_string()),
        ("merge-engine".to_string(), "deduplicate".to_string()),
        ("sequence.field".to_string(), crate::lineage::SEQ.to_string()),
        ("changelog-producer".to_string(), "lookup".to_string()),
        // The refiner keeps one writer per entity across commits: its cache of
        // decoded files for the lookup changelog is capped per entity. (A running
        // refiner shares one budget over its entities instead: `silver.store_cache_mib`.)
        ("lookup.cache-max-memory-size".to_string(), "64 mb".to_string()),
        // Level-0 files (each batch's flush and its changelog) are compacted soon:
        // LZ4 (Parquet LZ4_RAW) spends a fraction of zstd's CPU on them. zstd was
        // 6% of the refiner's CPU at the flush alone (docs/benchmarks.md).
        ("file.compression.per.level".to_string(), "0:lz4".to_string()),
    ]);
    Ok(changelog_store::TableSpec { columns, primary_keys: key.to_vec(), partition_keys: Vec::new(), options })
}

/// A Silver batch as store rows: each column cast to the store's Arrow type,
/// plus the location columns (`locations[i]` = file and position of row i, or
/// none for a delete).
pub fn to_store_batch(
    silver: &RecordBatch,
    store_schema: &SchemaRef,
    locations: &[Option<(Arc<str>, i64)>],
) -> Result<RecordBatch, String> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(store_schema.fields().len());
    for f in store_schema.fields() {
        let col: ArrayRef = match f.name().as_str() {
            SILVER_FILE => {
                Arc::new(locations.iter().map(|l| l.as_ref().map(|(p, _)| p.as_ref())).collect::<StringArray>())
            }
            SILVER_POS => Arc::new(locations.iter().map(|l| l.as_ref().map(|(_, pos)| *pos)).collect::<Int64Array>()),
            name => {
                let src =
                    silver.column_by_name(name).ok_or_else(|| format!("the Silver batch has no column {name}"))?;
                arrow_cast::cast(src, f.data_type())
                    .map_err(|e| format!("column {name}: {} → {}: {e}", src.data_type(), f.data_type()))?
            }
        };
        columns.push(col);
    }
    RecordBatch::try_new(store_schema.clone(), columns).map_err(|e| format!("building the store batch: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silver_files_are_stored_relative_and_read_back_whole() {
        let loc = "file:///lake/warehouse/silver/orders";
        let file = "file:///lake/warehouse/silver/orders/data/order_date_month=679/a-00000.parquet";
        assert_eq!(store_path(loc, file), "data/order_date_month=679/a-00000.parquet");
        assert_eq!(store_path(&format!("{loc}/"), file), "data/order_date_month=679/a-00000.parquet");
        // Not under the location (or only by a name's prefix): kept whole.
        assert_eq!(store_path(loc, "s3://other/x.parquet"), "s3://other/x.parquet");
        let sibling = "file:///lake/warehouse/silver/orders2/data/a.parquet";
        assert_eq!(store_path(loc, sibling), sibling);
        assert_eq!(silver_path(loc, store_path(loc, file)), file);
        assert_eq!(silver_path(loc, "/abs/x.parquet"), "/abs/x.parquet");
        assert_eq!(silver_path(loc, sibling), sibling);

        // A full path (an older store's value, or a new file's entry) and the
        // relative value name one file.
        let mut files = SilverFiles::new(loc);
        let a = files.number("data/order_date_month=679/a-00000.parquet");
        let b = files.number("data/order_date_month=679/b-00000.parquet");
        assert_ne!(a, b);
        assert_eq!(files.number(file), a);
        assert_eq!(files.number("data/order_date_month=679/b-00000.parquet"), b);
        assert_eq!(files.path(a).as_ref(), file);
        assert_eq!(files.number(sibling), 2);
        assert_eq!(files.path(2).as_ref(), sibling);
    }

    #[test]
    fn every_contract_type_has_a_store_type() {
        assert_eq!(paimon_type(ColumnType::Decimal { precision: 12, scale: 2 }), "DECIMAL(12, 2)");
        assert_eq!(paimon_type(ColumnType::TimestampTz), "TIMESTAMP(6) WITH LOCAL TIME ZONE");
        assert_eq!(paimon_type(ColumnType::Timestamp), "TIMESTAMP(6)");
        assert_eq!(paimon_type(ColumnType::Time), "BIGINT");
        assert_eq!(paimon_type(ColumnType::Uuid), "BYTES");
    }
}
