//! The store table of an entity, and Silver batches cast to its rows.

use std::collections::BTreeMap;
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
    fn every_contract_type_has_a_store_type() {
        assert_eq!(paimon_type(ColumnType::Decimal { precision: 12, scale: 2 }), "DECIMAL(12, 2)");
        assert_eq!(paimon_type(ColumnType::TimestampTz), "TIMESTAMP(6) WITH LOCAL TIME ZONE");
        assert_eq!(paimon_type(ColumnType::Timestamp), "TIMESTAMP(6)");
        assert_eq!(paimon_type(ColumnType::Time), "BIGINT");
        assert_eq!(paimon_type(ColumnType::Uuid), "BYTES");
    }
}
