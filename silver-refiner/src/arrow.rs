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
pub(crate) fn arrow_schema(columns: &[Column]) -> Schema {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| with_id(Field::new(c.name(), arrow_type(c.ty()), !c.is_required()), c.field_id()))
        .collect();
    let extra_id = columns.last().map_or(1, |c| c.field_id() + 1);
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
