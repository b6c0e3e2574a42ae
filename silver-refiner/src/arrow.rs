//! Refined rows → Arrow record batches whose schema is the contract's.
//!
//! | contract | Arrow |
//! |---|---|
//! | boolean, int, long, float, double | Boolean, Int32, Int64, Float32, Float64 |
//! | decimal(p,s) | Decimal128(p, s) |
//! | date, time | Date32, Time64(µs) |
//! | timestamp, timestamptz | Timestamp(µs), Timestamp(µs, "+00:00") |
//! | uuid | FixedSizeBinary(16) |
//! | string, binary | Utf8, Binary |
//!
//! Each field carries its Iceberg field id under `PARQUET:field_id` (1.. in
//! contract order, `_extra` last); key and `not_null` columns are non-nullable.
//! The caller appends its lineage columns itself.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder, Float32Builder,
    Float64Builder, Int32Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::contract::{Column, ColumnType, Contract};
use crate::refine::RefinedRow;
use crate::value::Value;

/// The column holding source fields the contract does not know, as a JSON object.
pub const EXTRA_COLUMN: &str = "_extra";
/// The Arrow field-metadata key for Iceberg field ids.
pub const FIELD_ID_KEY: &str = "PARQUET:field_id";
/// The zone of `timestamptz` columns.
pub const UTC: &str = "+00:00";

/// The Arrow type of a contract type.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int => DataType::Int32,
        ColumnType::Long => DataType::Int64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        ColumnType::Date => DataType::Date32,
        ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        ColumnType::Uuid => DataType::FixedSizeBinary(16),
        ColumnType::String => DataType::Utf8,
        ColumnType::Binary => DataType::Binary,
    }
}

fn with_id(field: Field, id: i32) -> Field {
    field.with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
}

/// The contract's columns, then `_extra`.
pub(crate) fn arrow_schema(columns: &[Column], extra_id: i32) -> Schema {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| with_id(Field::new(c.name(), arrow_type(c.ty()), !c.is_required()), c.field_id()))
        .collect();
    fields.push(with_id(Field::new(EXTRA_COLUMN, DataType::Utf8, true), extra_id));
    Schema::new(fields)
}

/// A batch that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("entity `{entity}`, column `{column}`: a {got} value cannot go into a {expected} column")]
    Mismatch { entity: String, column: String, expected: ColumnType, got: &'static str },
    #[error("entity `{entity}`: a row has {got} values, the contract has {expected} columns")]
    Width { entity: String, expected: usize, got: usize },
    #[error("entity `{entity}`: building the Arrow batch: {source}")]
    Arrow {
        entity: String,
        #[source]
        source: ArrowError,
    },
}

enum Builder {
    Bool(BooleanBuilder),
    Int(Int32Builder),
    Long(Int64Builder),
    Float(Float32Builder),
    Double(Float64Builder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
    String(StringBuilder),
    Binary(BinaryBuilder),
}

impl Builder {
    fn new(ty: ColumnType, capacity: usize) -> Builder {
        match ty {
            ColumnType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnType::Int => Builder::Int(Int32Builder::with_capacity(capacity)),
            ColumnType::Long => Builder::Long(Int64Builder::with_capacity(capacity)),
            ColumnType::Float => Builder::Float(Float32Builder::with_capacity(capacity)),
            ColumnType::Double => Builder::Double(Float64Builder::with_capacity(capacity)),
            ColumnType::Decimal { .. } => {
                Builder::Decimal(Decimal128Builder::with_capacity(capacity).with_data_type(arrow_type(ty)))
            }
            ColumnType::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            ColumnType::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            ColumnType::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
            ColumnType::TimestampTz => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone(UTC))
            }
            ColumnType::Uuid => Builder::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16)),
            ColumnType::String => Builder::String(StringBuilder::with_capacity(capacity, capacity * 16)),
            ColumnType::Binary => Builder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    /// Whether `value` can be appended (checked for a whole row before any append).
    fn accepts(&self, value: &Value, ty: ColumnType) -> bool {
        match (self, value) {
            (_, Value::Null) => true,
            (Builder::Decimal(_), Value::Decimal { scale, .. }) => {
                matches!(ty, ColumnType::Decimal { scale: s, .. } if s == *scale)
            }
            (Builder::Timestamp(_), Value::Timestamp(_)) => ty == ColumnType::Timestamp,
            (Builder::Timestamp(_), Value::TimestampTz(_)) => ty == ColumnType::TimestampTz,
            (Builder::Bool(_), Value::Bool(_))
            | (Builder::Int(_), Value::Int(_))
            | (Builder::Long(_), Value::Long(_))
            | (Builder::Float(_), Value::Float(_))
            | (Builder::Double(_), Value::Double(_))
            | (Builder::Date(_), Value::Date(_))
            | (Builder::Time(_), Value::Time(_))
            | (Builder::Uuid(_), Value::Uuid(_))
            | (Builder::String(_), Value::String(_))
            | (Builder::Binary(_), Value::Binary(_)) => true,
            _ => false,
        }
    }

    fn append(&mut self, value: &Value) -> Result<(), ArrowError> {
        match (self, value) {
            (Builder::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Builder::Int(b), Value::Int(v)) => b.append_value(*v),
            (Builder::Long(b), Value::Long(v)) => b.append_value(*v),
            (Builder::Float(b), Value::Float(v)) => b.append_value(*v),
            (Builder::Double(b), Value::Double(v)) => b.append_value(*v),
            (Builder::Decimal(b), Value::Decimal { unscaled, .. }) => b.append_value(*unscaled),
            (Builder::Date(b), Value::Date(v)) => b.append_value(*v),
            (Builder::Time(b), Value::Time(v)) => b.append_value(*v),
            (Builder::Timestamp(b), Value::Timestamp(v) | Value::TimestampTz(v)) => b.append_value(*v),
            (Builder::Uuid(b), Value::Uuid(v)) => b.append_value(v)?,
            (Builder::String(b), Value::String(v)) => b.append_value(v),
            (Builder::Binary(b), Value::Binary(v)) => b.append_value(v),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Long(b), _) => b.append_null(),
            (Builder::Float(b), _) => b.append_null(),
            (Builder::Double(b), _) => b.append_null(),
            (Builder::Decimal(b), _) => b.append_null(),
            (Builder::Date(b), _) => b.append_null(),
            (Builder::Time(b), _) => b.append_null(),
            (Builder::Timestamp(b), _) => b.append_null(),
            (Builder::Uuid(b), _) => b.append_null(),
            (Builder::String(b), _) => b.append_null(),
            (Builder::Binary(b), _) => b.append_null(),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Long(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Double(b) => Arc::new(b.finish()),
            Builder::Decimal(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Uuid(b) => Arc::new(b.finish()),
            Builder::String(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
        }
    }
}

/// Appends refined rows column-wise; [`BatchBuilder::finish`] yields a batch
/// with [`Contract::arrow_schema`] and starts the next one.
pub struct BatchBuilder {
    entity: String,
    schema: SchemaRef,
    types: Vec<ColumnType>,
    names: Vec<String>,
    columns: Vec<Builder>,
    extra: StringBuilder,
    rows: usize,
    capacity: usize,
}

impl BatchBuilder {
    pub fn new(contract: &Contract, capacity: usize) -> BatchBuilder {
        let types: Vec<ColumnType> = contract.columns().iter().map(Column::ty).collect();
        BatchBuilder {
            entity: contract.name().to_string(),
            schema: contract.arrow_schema(),
            columns: types.iter().map(|t| Builder::new(*t, capacity)).collect(),
            names: contract.columns().iter().map(|c| c.name().to_string()).collect(),
            types,
            extra: StringBuilder::with_capacity(capacity, 0),
            rows: 0,
            capacity,
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row. A row that does not match the contract (another
    /// contract's row) is refused whole; nothing is appended.
    pub fn append(&mut self, row: &RefinedRow) -> Result<(), BatchError> {
        if row.values.len() != self.columns.len() {
            return Err(BatchError::Width {
                entity: self.entity.clone(),
                expected: self.columns.len(),
                got: row.values.len(),
            });
        }
        for (i, v) in row.values.iter().enumerate() {
            let nullable = self.schema.field(i).is_nullable();
            if !self.columns[i].accepts(v, self.types[i]) || (v.is_null() && !nullable) {
                return Err(BatchError::Mismatch {
                    entity: self.entity.clone(),
                    column: self.names[i].clone(),
                    expected: self.types[i],
                    got: v.kind(),
                });
            }
        }
        for (b, v) in self.columns.iter_mut().zip(&row.values) {
            b.append(v).map_err(|source| BatchError::Arrow { entity: self.entity.clone(), source })?;
        }
        self.extra.append_option(row.extra.as_deref());
        self.rows += 1;
        Ok(())
    }

    /// The batch of the rows appended so far; the builder is empty afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch, BatchError> {
        let mut arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Builder::finish).collect();
        arrays.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        self.columns = self.types.iter().map(|t| Builder::new(*t, self.capacity)).collect();
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|source| BatchError::Arrow { entity: self.entity.clone(), source })
    }
}

/// The key columns alone (as [`Contract::arrow_schema`] has them) of `keys`,
/// each holding the key values in contract key order: the rows of deletes.
pub fn key_batch(contract: &Contract, keys: &[Vec<Value>]) -> Result<RecordBatch, BatchError> {
    let schema = contract.arrow_schema();
    let entity = contract.name().to_string();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (k, &i) in contract.key_indices().iter().enumerate() {
        let column = &contract.columns()[i];
        let mut b = Builder::new(column.ty(), keys.len());
        for key in keys {
            let v = key.get(k).unwrap_or(&Value::Null);
            if v.is_null() || !b.accepts(v, column.ty()) {
                return Err(BatchError::Mismatch {
                    entity,
                    column: column.name().to_string(),
                    expected: column.ty(),
                    got: v.kind(),
                });
            }
            b.append(v).map_err(|source| BatchError::Arrow { entity: entity.clone(), source })?;
        }
        fields.push(schema.field(i).clone());
        arrays.push(b.finish());
    }
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), arrays)
        .map_err(|source| BatchError::Arrow { entity, source })
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type, Time64MicrosecondType,
        TimestampMicrosecondType,
    };

    use super::*;

    const ALL_TYPES: &str = r#"
        name = "all"
        version = 1
        source = "bronze.all"
        key = "id"
        [[column]]
        name = "id"
        type = "long"
        [[column]]
        name = "b"
        type = "boolean"
        [[column]]
        name = "i"
        type = "int"
        not_null = true
        [[column]]
        name = "f"
        type = "float"
        [[column]]
        name = "d"
        type = "double"
        [[column]]
        name = "amount"
        type = "decimal(12,2)"
        [[column]]
        name = "day"
        type = "date"
        [[column]]
        name = "t"
        type = "time"
        [[column]]
        name = "ts"
        type = "timestamp"
        [[column]]
        name = "tz"
        type = "timestamptz"
        [[column]]
        name = "u"
        type = "uuid"
        [[column]]
        name = "s"
        type = "string"
        [[column]]
        name = "bin"
        type = "binary"
    "#;

    fn contract() -> Contract {
        Contract::from_toml_str(ALL_TYPES).expect("valid contract")
    }

    fn row(id: i64, extra: Option<&str>) -> RefinedRow {
        RefinedRow {
            values: vec![
                Value::Long(id),
                Value::Bool(true),
                Value::Int(-3),
                Value::Float(1.5),
                Value::Double(2.25),
                Value::Decimal { unscaled: 1_234_567, scale: 2 },
                Value::Date(16816),
                Value::Time(64_264_780_000),
                Value::Timestamp(1_410_198_664_780_000),
                Value::TimestampTz(1_410_220_264_780_000),
                Value::Uuid([7; 16]),
                Value::String("Anne".into()),
                Value::Binary(vec![0xdb, 0x0e]),
            ],
            extra: extra.map(str::to_string),
            extra_columns: Vec::new(),
            evolvable: Vec::new(),
            widenable: Vec::new(),
        }
    }

    #[test]
    fn schema_matches_the_contract() {
        let schema = contract().arrow_schema();
        let shape: Vec<(String, DataType, bool, String)> = schema
            .fields()
            .iter()
            .map(|f| {
                let id = f.metadata().get(FIELD_ID_KEY).cloned().unwrap_or_default();
                (f.name().clone(), f.data_type().clone(), f.is_nullable(), id)
            })
            .collect();
        let f = |n: &str, t: DataType, nullable: bool, id: i32| (n.to_string(), t, nullable, id.to_string());
        assert_eq!(
            shape,
            [
                f("id", DataType::Int64, false, 1),
                f("b", DataType::Boolean, true, 2),
                f("i", DataType::Int32, false, 3),
                f("f", DataType::Float32, true, 4),
                f("d", DataType::Float64, true, 5),
                f("amount", DataType::Decimal128(12, 2), true, 6),
                f("day", DataType::Date32, true, 7),
                f("t", DataType::Time64(TimeUnit::Microsecond), true, 8),
                f("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true, 9),
                f("tz", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true, 10),
                f("u", DataType::FixedSizeBinary(16), true, 11),
                f("s", DataType::Utf8, true, 12),
                f("bin", DataType::Binary, true, 13),
                f("_extra", DataType::Utf8, true, 14),
            ]
        );
        assert_eq!(contract().extra_field_id(), 14);
    }

    #[test]
    fn builds_batches_column_wise() {
        let c = contract();
        let mut b = BatchBuilder::new(&c, 4);
        b.append(&row(1, None)).expect("row 1");
        let mut nulls = row(2, Some(r#"{"x":1}"#));
        for (i, v) in nulls.values.iter_mut().enumerate() {
            if i != 0 && i != 2 {
                *v = Value::Null;
            }
        }
        b.append(&nulls).expect("row 2");
        assert_eq!(b.len(), 2);
        let batch = b.finish().expect("a batch");
        assert!(b.is_empty());
        assert_eq!(batch.schema(), c.arrow_schema());
        assert_eq!(batch.num_rows(), 2);
        let col = |i: usize| batch.column(i);
        assert_eq!(col(0).as_primitive::<Int64Type>().values(), &[1, 2]);
        assert!(col(1).as_boolean().value(0));
        assert_eq!(col(2).as_primitive::<Int32Type>().value(1), -3);
        assert_eq!(col(3).as_primitive::<Float32Type>().value(0), 1.5);
        assert_eq!(col(4).as_primitive::<Float64Type>().value(0), 2.25);
        let dec = col(5).as_primitive::<Decimal128Type>();
        assert_eq!((dec.value(0), dec.value_as_string(0)), (1_234_567, "12345.67".to_string()));
        assert_eq!(col(6).as_primitive::<Date32Type>().value(0), 16816);
        assert_eq!(col(7).as_primitive::<Time64MicrosecondType>().value(0), 64_264_780_000);
        assert_eq!(col(8).as_primitive::<TimestampMicrosecondType>().value(0), 1_410_198_664_780_000);
        assert_eq!(col(9).as_primitive::<TimestampMicrosecondType>().value(0), 1_410_220_264_780_000);
        assert_eq!(col(10).as_fixed_size_binary().value(0), &[7; 16]);
        assert_eq!(col(11).as_string::<i32>().value(0), "Anne");
        assert_eq!(col(12).as_binary::<i32>().value(0), &[0xdb, 0x0e]);
        let extra = col(13).as_string::<i32>();
        assert!(extra.is_null(0));
        assert_eq!(extra.value(1), r#"{"x":1}"#);
        for i in [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] {
            assert!(col(i).is_null(1), "column {i} of row 2 is null");
        }
    }

    #[test]
    fn refuses_rows_of_another_shape_whole() {
        let c = contract();
        let mut b = BatchBuilder::new(&c, 4);
        let mut wrong = row(1, None);
        wrong.values[5] = Value::Decimal { unscaled: 1, scale: 3 };
        let e = b.append(&wrong).expect_err("scale 3 into decimal(12,2)");
        assert!(e.to_string().contains("column `amount`"), "{e}");
        let mut wrong = row(1, None);
        wrong.values[9] = Value::Timestamp(0);
        assert!(b.append(&wrong).is_err(), "a wall-clock timestamp into timestamptz");
        let mut wrong = row(1, None);
        wrong.values[2] = Value::Null;
        assert!(matches!(b.append(&wrong), Err(BatchError::Mismatch { .. })), "null into a not_null column");
        let mut short = row(1, None);
        short.values.pop();
        assert!(matches!(b.append(&short), Err(BatchError::Width { expected: 13, got: 12, .. })));
        assert!(b.is_empty(), "nothing of a refused row was appended");
        b.append(&row(9, None)).expect("a good row after refusals");
        let batch = b.finish().expect("consistent columns");
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(b.finish().expect("an empty batch").num_rows(), 0);
    }
}
