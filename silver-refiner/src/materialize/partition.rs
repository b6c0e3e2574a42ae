//! Silver's partitioning by a business date: the partition spec a contract
//! asks for, and the partition of rows as the table's spec computes it.
//!
//! A Silver table has at most one partition field, `day` or `month` of a
//! date / timestamp / timestamptz column (`<column>_day`, `<column>_month`).
//! Rows are split by it when written (one or more data files per partition
//! value, the partition tuple in each `DataFile`), and a position delete goes
//! into the partition of the data file it points into. The partition of a row
//! Silver already holds is computed from that row's values as the store's
//! `-U`/`-D` records carry them, with the same transform function the writer
//! used, so the two always agree — no Iceberg scan, no path parsing.
//!
//! The spec is read from the table, not from the contract: a table created
//! before its contract declared a partition stays as it was created (iceberg
//! 0.10.1 has no partition-spec evolution, and the commit layer writes every
//! manifest with the default spec).

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use iceberg::spec::{
    Literal, Schema, Struct, TableMetadata, Transform as IcebergTransform, UnboundPartitionField, UnboundPartitionSpec,
};
use iceberg::transform::{BoxedTransformFunction, create_transform_function};

use crate::contract::{Partition, Transform};

/// First partition field id, as Java Iceberg numbers them.
const FIRST_PARTITION_FIELD_ID: i32 = 1000;

/// The partition spec of a new Silver table (unpartitioned without a partition).
pub fn partition_spec(schema: &Schema, partition: Option<&Partition>) -> Result<UnboundPartitionSpec, String> {
    let Some(p) = partition else { return Ok(UnboundPartitionSpec::builder().with_spec_id(0).build()) };
    let source = schema
        .field_by_name(&p.column)
        .ok_or_else(|| format!("partition column `{}` is not in the Silver schema", p.column))?;
    let (transform, suffix) = match p.transform {
        Transform::Day => (IcebergTransform::Day, "day"),
        Transform::Month => (IcebergTransform::Month, "month"),
    };
    UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_fields([UnboundPartitionField {
            source_id: source.id,
            field_id: Some(FIRST_PARTITION_FIELD_ID),
            name: format!("{}_{suffix}", p.column),
            transform,
        }])
        .map(|b| b.build())
        .map_err(|e| format!("partition `{}` of `{}`: {e}", suffix, p.column))
}

/// Computes the partition of rows by a table's default spec.
pub struct Partitioner {
    /// The source column and its transform; `None` for an unpartitioned table.
    field: Option<(String, BoxedTransformFunction)>,
}

impl std::fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partitioner").field("column", &self.field.as_ref().map(|(c, _)| c)).finish()
    }
}

/// One row's partition value: the transform's result (days or months since
/// the epoch), `None` when the business date is null.
pub type PartitionKey = Option<i32>;

impl Partitioner {
    pub fn new(metadata: &TableMetadata) -> Result<Self, String> {
        let spec = metadata.default_partition_spec();
        let fields = spec.fields();
        match fields {
            [] => Ok(Self { field: None }),
            [f] => {
                let schema = metadata.current_schema();
                let source = schema
                    .field_by_id(f.source_id)
                    .ok_or_else(|| format!("partition field {} has no source column {}", f.name, f.source_id))?;
                if !matches!(f.transform, IcebergTransform::Day | IcebergTransform::Month) {
                    return Err(format!("partition field {}: only day and month transforms are written", f.name));
                }
                let function = create_transform_function(&f.transform).map_err(|e| e.to_string())?;
                Ok(Self { field: Some((source.name.clone(), function)) })
            }
            more => Err(format!("{} partition fields; Silver writes one (a business date)", more.len())),
        }
    }

    pub fn is_partitioned(&self) -> bool {
        self.field.is_some()
    }

    /// The column the partition is computed from (`None` when unpartitioned).
    pub fn source_column(&self) -> Option<&str> {
        self.field.as_ref().map(|(c, _)| c.as_str())
    }

    /// The partition key of every row of `batch` (all `None` when unpartitioned).
    pub fn keys(&self, batch: &RecordBatch) -> Result<Vec<PartitionKey>, String> {
        let Some((column, function)) = &self.field else { return Ok(vec![None; batch.num_rows()]) };
        let source: &ArrayRef =
            batch.column_by_name(column).ok_or_else(|| format!("no partition column `{column}` in the batch"))?;
        let out = function
            .transform(source.clone())
            .map_err(|e| format!("partition transform of `{column}` ({}): {e}", source.data_type()))?;
        Ok(match out.data_type() {
            DataType::Date32 => {
                let a = out.as_primitive::<Date32Type>();
                (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect()
            }
            DataType::Int32 => {
                let a = out.as_primitive::<Int32Type>();
                (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect()
            }
            other => return Err(format!("partition transform of `{column}` gave {other}")),
        })
    }

    /// The partition tuple of a key, as the `DataFile` carries it.
    pub fn tuple(&self, key: PartitionKey) -> Struct {
        match &self.field {
            None => Struct::empty(),
            Some(_) => Struct::from_iter([key.map(Literal::int)]),
        }
    }

    /// Row indices of `batch` grouped by partition, groups in key order, rows
    /// in batch order within a group.
    pub fn groups(&self, batch: &RecordBatch) -> Result<Vec<(PartitionKey, Vec<u32>)>, String> {
        let mut groups: BTreeMap<PartitionKey, Vec<u32>> = BTreeMap::new();
        for (i, k) in self.keys(batch)?.into_iter().enumerate() {
            groups.entry(k).or_default().push(i as u32);
        }
        Ok(groups.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{Date32Array, Int64Array, TimestampMicrosecondArray};
    use iceberg::spec::{
        FormatVersion, NestedField, PrimitiveType, SortOrder, TableMetadataBuilder, Type as IcebergType,
    };

    use super::*;

    fn metadata(column: &str, ty: PrimitiveType, transform: Transform) -> TableMetadata {
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", IcebergType::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, column, IcebergType::Primitive(ty)).into(),
            ])
            .build()
            .expect("schema");
        let spec = partition_spec(&schema, Some(&Partition { column: column.into(), transform })).expect("spec");
        TableMetadataBuilder::new(
            schema,
            spec,
            SortOrder::unsorted_order(),
            "/tmp/t".into(),
            FormatVersion::V2,
            HashMap::new(),
        )
        .expect("builder")
        .build()
        .expect("metadata")
        .metadata
    }

    #[test]
    fn month_of_a_date_groups_rows() {
        let m = metadata("order_date", PrimitiveType::Date, Transform::Month);
        assert_eq!(m.default_partition_spec().fields()[0].name, "order_date_month");
        let p = Partitioner::new(&m).expect("partitioner");
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("id", DataType::Int64, false),
            arrow_schema::Field::new("order_date", DataType::Date32, true),
        ]));
        // 2026-01-01 = day 20454 (month 672), 2026-01-31, 2026-02-01, null.
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(Date32Array::from(vec![Some(20_454), Some(20_484), Some(20_485), None])),
            ],
        )
        .expect("batch");
        assert_eq!(p.keys(&batch).expect("keys"), [Some(672), Some(672), Some(673), None]);
        assert_eq!(p.groups(&batch).expect("groups"), [(None, vec![3]), (Some(672), vec![0, 1]), (Some(673), vec![2])]);
        assert_eq!(p.tuple(Some(672)), Struct::from_iter([Some(Literal::int(672))]));
    }

    #[test]
    fn day_of_a_timestamp_and_unpartitioned() {
        let m = metadata("created_at", PrimitiveType::Timestamptz, Transform::Day);
        let p = Partitioner::new(&m).expect("partitioner");
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "created_at",
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        )]));
        let ts = TimestampMicrosecondArray::from(vec![Some(86_400_000_000 * 3 + 1), Some(-1)]).with_timezone("+00:00");
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ts)]).expect("batch");
        assert_eq!(p.keys(&batch).expect("keys"), [Some(3), Some(-1)], "a microsecond before 1970 is day -1");

        let schema = Schema::builder()
            .with_fields(vec![NestedField::required(1, "id", IcebergType::Primitive(PrimitiveType::Long)).into()])
            .build()
            .expect("schema");
        assert!(
            partition_spec(&schema, Some(&Partition { column: "nope".into(), transform: Transform::Day })).is_err()
        );
        let unpartitioned = partition_spec(&schema, None).expect("spec");
        assert!(unpartitioned.fields().is_empty());
    }
}
