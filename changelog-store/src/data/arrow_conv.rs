//! Arrow schema of key/value files and conversion between [`KeyValue`]s and record batches.
//!
//! Column order and field ids follow Paimon's `KeyValue` file layout:
//! `_KEY_<k>` (id `1073741823 + field id`), `_SEQUENCE_NUMBER` (id `2147483646`),
//! `_VALUE_KIND` (id `2147483645`), then the table columns with their own ids.

use crate::error::{Error, Result};
use crate::row::{Datum, KeyValue, RowKind};
use crate::spec::types::{DataType, TypeRoot};
use crate::table_info::TableInfo;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;

/// The zone of the Arrow type of `TIMESTAMP WITH LOCAL TIME ZONE` columns (UTC, spelt as
/// iceberg-rust spells `timestamptz`'s).
pub const UTC: &str = "+00:00";

pub const KEY_FIELD_PREFIX: &str = "_KEY_";
pub const KEY_FIELD_ID_START: i32 = i32::MAX / 2;
pub const SEQUENCE_NUMBER: &str = "_SEQUENCE_NUMBER";
pub const SEQUENCE_NUMBER_ID: i32 = i32::MAX - 1;
pub const VALUE_KIND: &str = "_VALUE_KIND";
pub const VALUE_KIND_ID: i32 = i32::MAX - 2;

/// The Arrow type values of `ty` are held in.
pub fn arrow_type(ty: &DataType) -> ArrowType {
    match ty.root {
        TypeRoot::Boolean => ArrowType::Boolean,
        TypeRoot::TinyInt => ArrowType::Int8,
        TypeRoot::SmallInt => ArrowType::Int16,
        TypeRoot::Int => ArrowType::Int32,
        TypeRoot::BigInt => ArrowType::Int64,
        TypeRoot::Float => ArrowType::Float32,
        TypeRoot::Double => ArrowType::Float64,
        TypeRoot::Varchar(_) | TypeRoot::Char(_) => ArrowType::Utf8,
        TypeRoot::Varbinary(_) => ArrowType::Binary,
        TypeRoot::Date => ArrowType::Date32,
        TypeRoot::Timestamp { precision, local_zone } => {
            let unit = if precision <= 3 { TimeUnit::Millisecond } else { TimeUnit::Microsecond };
            ArrowType::Timestamp(unit, local_zone.then(|| UTC.into()))
        }
        TypeRoot::Decimal(p, s) => ArrowType::Decimal128(p, s as i8),
    }
}

/// The store (Paimon SQL) type holding Arrow values of `ty`, as written in a
/// [`crate::TableSpec`] column: the inverse of [`arrow_type`] (timestamps in any unit
/// as `TIMESTAMP(6)`, those with a zone as instants, `WITH LOCAL TIME ZONE`); `None`
/// for types the store lacks.
pub fn paimon_type_of(ty: &ArrowType) -> Option<String> {
    Some(match ty {
        ArrowType::Boolean => "BOOLEAN".into(),
        ArrowType::Int8 => "TINYINT".into(),
        ArrowType::Int16 => "SMALLINT".into(),
        ArrowType::Int32 => "INT".into(),
        ArrowType::Int64 => "BIGINT".into(),
        ArrowType::Float32 => "FLOAT".into(),
        ArrowType::Float64 => "DOUBLE".into(),
        ArrowType::Utf8 => "STRING".into(),
        ArrowType::Binary => "BYTES".into(),
        ArrowType::Date32 => "DATE".into(),
        ArrowType::Timestamp(_, None) => "TIMESTAMP(6)".into(),
        ArrowType::Timestamp(_, Some(_)) => "TIMESTAMP(6) WITH LOCAL TIME ZONE".into(),
        ArrowType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        _ => return None,
    })
}

fn field(name: String, ty: &DataType, id: i32) -> Field {
    Field::new(name, arrow_type(ty), ty.nullable)
        .with_metadata(HashMap::from([("PARQUET:field_id".to_string(), id.to_string())]))
}

/// Arrow schema of a key/value (data or changelog) file of this table.
pub fn kv_schema(info: &TableInfo) -> SchemaRef {
    let mut fields = Vec::new();
    for &i in &info.key_indices {
        let f = &info.schema.fields[i];
        fields.push(field(format!("{KEY_FIELD_PREFIX}{}", f.name), &f.data_type.not_null(), KEY_FIELD_ID_START + f.id));
    }
    fields.push(field(SEQUENCE_NUMBER.into(), &DataType::new(TypeRoot::BigInt).not_null(), SEQUENCE_NUMBER_ID));
    fields.push(field(VALUE_KIND.into(), &DataType::new(TypeRoot::TinyInt).not_null(), VALUE_KIND_ID));
    for f in &info.schema.fields {
        fields.push(field(f.name.clone(), &f.data_type, f.id));
    }
    Arc::new(Schema::new(fields))
}

/// The [`kv_schema`] layout with only the value columns named in `columns` (in
/// schema order; names the table lacks are ignored): key, sequence and kind columns
/// stay.
pub fn projected_kv_schema(info: &TableInfo, columns: &[String]) -> SchemaRef {
    let full = kv_schema(info);
    let first = first_value_column(info);
    let keep: Vec<usize> =
        (0..full.fields().len()).filter(|&i| i < first || columns.iter().any(|c| c == full.field(i).name())).collect();
    Arc::new(full.project(&keep).expect("indices are in range"))
}

/// Arrow schema of the table's rows (its columns in schema order, with Paimon's field
/// ids): what [`crate::TableWrite::write_batch`] takes and value batches are read as.
pub fn row_schema(info: &TableInfo) -> SchemaRef {
    Arc::new(Schema::new(
        info.schema.fields.iter().map(|f| field(f.name.clone(), &f.data_type, f.id)).collect::<Vec<_>>(),
    ))
}

fn build_column<'a>(ty: &DataType, values: impl Iterator<Item = &'a Datum>, n: usize) -> ArrayRef {
    macro_rules! prim {
        ($builder:ty, $variant:ident, $conv:expr) => {{
            let mut b = <$builder>::with_capacity(n);
            for v in values {
                match v {
                    Datum::$variant(x) => b.append_value($conv(x)),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match ty.root {
        TypeRoot::Boolean => prim!(BooleanBuilder, Bool, |x: &bool| *x),
        TypeRoot::TinyInt => prim!(Int8Builder, Int, |x: &i32| *x as i8),
        TypeRoot::SmallInt => prim!(Int16Builder, Int, |x: &i32| *x as i16),
        TypeRoot::Int => prim!(Int32Builder, Int, |x: &i32| *x),
        TypeRoot::Date => prim!(Date32Builder, Int, |x: &i32| *x),
        TypeRoot::BigInt => prim!(Int64Builder, Long, |x: &i64| *x),
        TypeRoot::Timestamp { precision, .. } => {
            let col = if precision <= 3 {
                prim!(TimestampMillisecondBuilder, Long, |x: &i64| *x)
            } else {
                prim!(TimestampMicrosecondBuilder, Long, |x: &i64| *x)
            };
            // The builders make unzoned arrays; a local-zone column takes its zone.
            retag_zone(col, &arrow_type(ty))
        }
        TypeRoot::Float => prim!(Float32Builder, Float, |x: &f32| *x),
        TypeRoot::Double => prim!(Float64Builder, Double, |x: &f64| *x),
        TypeRoot::Varchar(_) | TypeRoot::Char(_) => {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for v in values {
                match v {
                    Datum::String(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        TypeRoot::Decimal(p, s) => {
            let mut b = Decimal128Builder::with_capacity(n).with_data_type(ArrowType::Decimal128(p, s as i8));
            for v in values {
                match v {
                    Datum::Decimal(d) => b.append_value(d.unscaled),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        TypeRoot::Varbinary(_) => {
            let mut b = BinaryBuilder::with_capacity(n, n * 16);
            for v in values {
                match v {
                    Datum::Bytes(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// One-row `_KEY_*` columns holding `key` (to compare it with the keys of batches).
pub fn key_columns_of(info: &TableInfo, key: &crate::row::Key) -> Vec<ArrayRef> {
    info.key_types.iter().zip(key.iter()).map(|(t, d)| build_column(t, std::iter::once(d), 1)).collect()
}

/// Builds one record batch of `records` in the [`kv_schema`] layout.
pub fn to_batch(info: &TableInfo, schema: &SchemaRef, records: &[KeyValue]) -> Result<RecordBatch> {
    let n = records.len();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (k, &i) in info.key_indices.iter().enumerate() {
        cols.push(build_column(&info.value_types[i], records.iter().map(|r| &r.key[k]), n));
    }
    cols.push(Arc::new(arrow_array::Int64Array::from_iter_values(records.iter().map(|r| r.seq))));
    cols.push(Arc::new(arrow_array::Int8Array::from_iter_values(records.iter().map(|r| r.kind.to_byte()))));
    for (i, ty) in info.value_types.iter().enumerate() {
        cols.push(build_column(ty, records.iter().map(|r| &r.value[i]), n));
    }
    RecordBatch::try_new(schema.clone(), cols)
        .map_err(|source| Error::Arrow { op: "building a key/value batch", source })
}

/// Builds a key/value batch from value columns (in schema order), sequence numbers and
/// kinds; the `_KEY_*` columns share the value columns' buffers.
pub fn kv_columns_to_batch(
    info: &TableInfo,
    values: Vec<ArrayRef>,
    seqs: Vec<i64>,
    kinds: Vec<i8>,
) -> Result<RecordBatch> {
    let schema = kv_schema(info);
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for &i in &info.key_indices {
        cols.push(values[i].clone());
    }
    cols.push(Arc::new(arrow_array::Int64Array::from(seqs)));
    cols.push(Arc::new(arrow_array::Int8Array::from(kinds)));
    cols.extend(values);
    RecordBatch::try_new(schema, cols)
        .map_err(|source| Error::Arrow { op: "building a key/value batch from the write buffer", source })
}

/// Brings a batch read from a key/value file (ours or another writer's) into the
/// [`kv_schema`] layout: columns matched by name; when every type already matches this
/// is a reordering, otherwise values are converted through [`Datum`]s.
pub fn normalize_batch(info: &TableInfo, schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let (cols, same_types) = align_columns(schema, batch)?;
    if same_types {
        return RecordBatch::try_new(schema.clone(), cols)
            .map_err(|source| Error::Arrow { op: "reordering the columns of a data file", source });
    }
    // The file's own types, in the layout's order (added columns as nulls).
    let fields: Vec<Field> =
        schema.fields().iter().zip(&cols).map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true)).collect();
    let aligned = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|source| Error::Arrow { op: "aligning the columns of a data file", source })?;
    let mut records = Vec::with_capacity(batch.num_rows());
    from_batch(info, &aligned, &mut records)?;
    to_batch(info, schema, &records)
}

/// [`normalize_batch`] where no value needs converting: the batch's columns in
/// `schema`'s order (any subset of the [`kv_schema`] layout, such as a
/// [`projected_kv_schema`]); `None` when a column's type differs from its field's.
pub fn reorder_batch(schema: &SchemaRef, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
    let (cols, same_types) = align_columns(schema, batch)?;
    if !same_types {
        return Ok(None);
    }
    RecordBatch::try_new(schema.clone(), cols)
        .map(Some)
        .map_err(|source| Error::Arrow { op: "reordering the columns of a data file", source })
}

/// `col` in the type `want` where its own type widens to it losslessly (a file written
/// before [`Table::widen_columns`](crate::Table::widen_columns)): smaller integers to
/// larger ones, FLOAT to DOUBLE, a decimal to a larger precision at the same scale.
/// Any other column is returned as is (and then converted value by value, or refused).
pub fn widen(col: ArrayRef, want: &ArrowType) -> ArrayRef {
    use ArrowType as A;
    fn ints<T: arrow_array::ArrowPrimitiveType>(col: &ArrayRef, want: &ArrowType) -> Option<ArrayRef>
    where
        T::Native: Into<i64>,
    {
        let c = col.as_primitive::<T>();
        Some(match want {
            A::Int16 => Arc::new(c.unary::<_, Int16Type>(|x| x.into() as i16)),
            A::Int32 => Arc::new(c.unary::<_, Int32Type>(|x| x.into() as i32)),
            A::Int64 => Arc::new(c.unary::<_, Int64Type>(|x| x.into())),
            _ => return None,
        })
    }
    if !widens(col.data_type(), want) {
        return col;
    }
    let widened = match (col.data_type(), want) {
        (A::Int8, _) => ints::<Int8Type>(&col, want),
        (A::Int16, _) => ints::<Int16Type>(&col, want),
        (A::Int32, _) => ints::<Int32Type>(&col, want),
        (A::Float32, _) => {
            Some(Arc::new(col.as_primitive::<Float32Type>().unary::<_, Float64Type>(f64::from)) as ArrayRef)
        }
        (A::Decimal128(..), A::Decimal128(q, t)) => col
            .as_primitive::<arrow_array::types::Decimal128Type>()
            .clone()
            .with_precision_and_scale(*q, *t)
            .ok()
            .map(|c| Arc::new(c) as ArrayRef),
        _ => None,
    };
    widened.unwrap_or(col)
}

/// Whether `from` is a strictly narrower type that [`widen`] brings to `to`.
fn widens(from: &ArrowType, to: &ArrowType) -> bool {
    use ArrowType as A;
    match (from, to) {
        (A::Int8, A::Int16 | A::Int32 | A::Int64) | (A::Int16, A::Int32 | A::Int64) | (A::Int32, A::Int64) => true,
        (A::Float32, A::Float64) => true,
        (A::Decimal128(p, s), A::Decimal128(q, t)) => s == t && p < q,
        _ => false,
    }
}

/// `col` retyped as `want` where the two are timestamps of one unit that differ in their
/// zone only (`"UTC"` vs `"+00:00"`, or a zone vs none): the values are the same epoch
/// counts either way, so only the type changes; any other column is returned as is.
pub fn retag_zone(col: ArrayRef, want: &ArrowType) -> ArrayRef {
    match (col.data_type(), want) {
        (ArrowType::Timestamp(TimeUnit::Microsecond, a), ArrowType::Timestamp(TimeUnit::Microsecond, b)) if a != b => {
            Arc::new(col.as_primitive::<TimestampMicrosecondType>().clone().with_timezone_opt(b.clone()))
        }
        (ArrowType::Timestamp(TimeUnit::Millisecond, a), ArrowType::Timestamp(TimeUnit::Millisecond, b)) if a != b => {
            Arc::new(col.as_primitive::<TimestampMillisecondType>().clone().with_timezone_opt(b.clone()))
        }
        _ => col,
    }
}

/// The columns of `batch` in `schema`'s order, matched by name (a nullable column the
/// batch lacks, added by schema evolution after the file was written, as nulls), and
/// whether each already has its field's type (and no null where none is allowed).
fn align_columns(schema: &SchemaRef, batch: &RecordBatch) -> Result<(Vec<ArrayRef>, bool)> {
    let mut cols = Vec::with_capacity(schema.fields().len());
    let mut same_types = true;
    for f in schema.fields() {
        let c = match batch.column_by_name(f.name()) {
            Some(c) if widens(f.data_type(), c.data_type()) => {
                // Never read a wider value into a narrower column (it would not fit).
                return Err(Error::InvalidSchema(format!(
                    "column `{}` is {} in a data file but {} in the schema read with: the table's column was \
                     widened after this reader opened it; reopen the table",
                    f.name(),
                    c.data_type(),
                    f.data_type()
                )));
            }
            Some(c) => widen(retag_zone(c.clone(), f.data_type()), f.data_type()),
            None if f.is_nullable() => arrow_array::new_null_array(f.data_type(), batch.num_rows()),
            None => return Err(Error::corrupt("<data file>", format!("missing column `{}`", f.name()))),
        };
        same_types &= c.data_type() == f.data_type() && (f.is_nullable() || c.null_count() == 0);
        cols.push(c);
    }
    Ok((cols, same_types))
}

/// Index of the first value column in the [`kv_schema`] layout.
pub fn first_value_column(info: &TableInfo) -> usize {
    info.key_indices.len() + 2
}

/// The table columns of a key/value batch (drops `_KEY_*`, `_SEQUENCE_NUMBER`, `_VALUE_KIND`).
pub fn value_batch(info: &TableInfo, batch: &RecordBatch) -> Result<RecordBatch> {
    let first = first_value_column(info);
    let indices: Vec<usize> = (first..batch.num_columns()).collect();
    batch.project(&indices).map_err(|source| Error::Arrow { op: "projecting the value columns", source })
}

/// Rows of a batch of table columns ([`value_batch`] layout).
pub fn rows_of(info: &TableInfo, values: &RecordBatch) -> Result<Vec<crate::row::Row>> {
    rows_of_columns(info, values.columns())
}

/// Rows of the table's columns, in schema order.
pub fn rows_of_columns(info: &TableInfo, columns: &[ArrayRef]) -> Result<Vec<crate::row::Row>> {
    let n = columns.first().map_or(0, |c| c.len());
    (0..n).map(|r| columns.iter().zip(info.value_types.iter()).map(|(c, t)| datum_at(c, t, r)).collect()).collect()
}

/// The table's columns (schema order) holding `rows`: the inverse of [`rows_of_columns`].
pub fn columns_of_rows(info: &TableInfo, rows: &[crate::row::Row]) -> Vec<ArrayRef> {
    info.value_types.iter().enumerate().map(|(c, t)| build_column(t, rows.iter().map(|r| &r[c]), rows.len())).collect()
}

/// The trimmed primary key of row `row` of a key/value batch.
pub fn key_at(info: &TableInfo, batch: &RecordBatch, row: usize) -> Result<crate::row::Key> {
    info.key_types.iter().enumerate().map(|(k, t)| datum_at(batch.column(k), t, row)).collect()
}

pub(crate) fn datum_at(col: &ArrayRef, ty: &DataType, row: usize) -> Result<Datum> {
    if col.is_null(row) {
        return Ok(Datum::Null);
    }
    let mismatch = || Error::corrupt("<data file>", format!("column type {:?} does not match {ty}", col.data_type()));
    Ok(match (ty.root, col.data_type()) {
        (TypeRoot::Boolean, ArrowType::Boolean) => Datum::Bool(col.as_boolean().value(row)),
        (TypeRoot::BigInt, ArrowType::Int8) => Datum::Long(col.as_primitive::<Int8Type>().value(row).into()),
        (TypeRoot::BigInt, ArrowType::Int16) => Datum::Long(col.as_primitive::<Int16Type>().value(row).into()),
        (_, ArrowType::Int8) => Datum::Int(col.as_primitive::<Int8Type>().value(row) as i32),
        (_, ArrowType::Int16) => Datum::Int(col.as_primitive::<Int16Type>().value(row) as i32),
        (TypeRoot::BigInt, ArrowType::Int32) => Datum::Long(col.as_primitive::<Int32Type>().value(row) as i64),
        (_, ArrowType::Int32) => Datum::Int(col.as_primitive::<Int32Type>().value(row)),
        (_, ArrowType::Date32) => Datum::Int(col.as_primitive::<Date32Type>().value(row)),
        (_, ArrowType::Int64) => Datum::Long(col.as_primitive::<Int64Type>().value(row)),
        (TypeRoot::Timestamp { precision: p, .. }, ArrowType::Timestamp(unit, _)) => {
            let raw = match unit {
                TimeUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(row),
                TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => {
                    col.as_primitive::<arrow_array::types::TimestampNanosecondType>().value(row) / 1000
                }
                TimeUnit::Second => col.as_primitive::<arrow_array::types::TimestampSecondType>().value(row) * 1000,
            };
            // Normalize to the unit of the declared precision.
            let in_micros = matches!(unit, TimeUnit::Microsecond | TimeUnit::Nanosecond);
            match (p <= 3, in_micros) {
                (true, true) => Datum::Long(raw.div_euclid(1000)),
                (false, false) => Datum::Long(raw * 1000),
                _ => Datum::Long(raw),
            }
        }
        (TypeRoot::Double, ArrowType::Float32) => Datum::Double(col.as_primitive::<Float32Type>().value(row).into()),
        (_, ArrowType::Float32) => Datum::Float(col.as_primitive::<Float32Type>().value(row)),
        (_, ArrowType::Float64) => Datum::Double(col.as_primitive::<Float64Type>().value(row)),
        (_, ArrowType::Utf8) => Datum::String(col.as_string::<i32>().value(row).to_string()),
        (_, ArrowType::LargeUtf8) => Datum::String(col.as_string::<i64>().value(row).to_string()),
        (_, ArrowType::Binary) => Datum::Bytes(col.as_binary::<i32>().value(row).to_vec()),
        (_, ArrowType::LargeBinary) => Datum::Bytes(col.as_binary::<i64>().value(row).to_vec()),
        (TypeRoot::Decimal(p, s), ArrowType::Decimal128(_, scale)) if i16::from(*scale) == i16::from(s) => {
            let v = col.as_primitive::<arrow_array::types::Decimal128Type>().value(row);
            Datum::Decimal(crate::decimal::Decimal::new(v, p, s).ok_or_else(mismatch)?)
        }
        _ => return Err(mismatch()),
    })
}

/// Decodes a record batch of a key/value file (columns looked up by name).
pub fn from_batch(info: &TableInfo, batch: &RecordBatch, out: &mut Vec<KeyValue>) -> Result<()> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| Error::corrupt("<data file>", format!("missing column `{name}`")))
    };
    let key_cols = info.key_names.iter().map(|k| col(&format!("{KEY_FIELD_PREFIX}{k}"))).collect::<Result<Vec<_>>>()?;
    let seq = col(SEQUENCE_NUMBER)?;
    let seq = seq
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::corrupt("<data file>", "_SEQUENCE_NUMBER is not BIGINT"))?;
    let kind = col(VALUE_KIND)?;
    let kind = kind
        .as_primitive_opt::<Int8Type>()
        .ok_or_else(|| Error::corrupt("<data file>", "_VALUE_KIND is not TINYINT"))?;
    let value_cols = info
        .schema
        .fields
        .iter()
        .map(|f| match batch.column_by_name(&f.name) {
            Some(c) => Ok(c.clone()),
            // A column added by schema evolution after the file was written.
            None if f.data_type.nullable => {
                Ok(arrow_array::new_null_array(&arrow_type(&f.data_type), batch.num_rows()))
            }
            None => col(&f.name),
        })
        .collect::<Result<Vec<_>>>()?;
    out.reserve(batch.num_rows());
    for r in 0..batch.num_rows() {
        let key =
            key_cols.iter().zip(info.key_types.iter()).map(|(c, t)| datum_at(c, t, r)).collect::<Result<Vec<_>>>()?;
        let value = value_cols
            .iter()
            .zip(info.value_types.iter())
            .map(|(c, t)| datum_at(c, t, r))
            .collect::<Result<Vec<_>>>()?;
        let k = RowKind::from_byte(kind.value(r))
            .ok_or_else(|| Error::corrupt("<data file>", format!("bad _VALUE_KIND {}", kind.value(r))))?;
        out.push(KeyValue { key, seq: seq.value(r), kind: k, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paimon_type_of_inverts_arrow_type() {
        for sql in [
            "BOOLEAN",
            "TINYINT",
            "SMALLINT",
            "INT",
            "BIGINT",
            "FLOAT",
            "DOUBLE",
            "STRING",
            "BYTES",
            "DATE",
            "TIMESTAMP(6)",
            "TIMESTAMP(6) WITH LOCAL TIME ZONE",
            "DECIMAL(12, 2)",
        ] {
            let ty = DataType::parse(sql).expect("parses");
            let back = paimon_type_of(&arrow_type(&ty)).expect("has a store type");
            assert_eq!(arrow_type(&DataType::parse(&back).expect("parses back")), arrow_type(&ty), "{sql} → {back}");
        }
        let zoned = ArrowType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        assert_eq!(paimon_type_of(&zoned).as_deref(), Some("TIMESTAMP(6) WITH LOCAL TIME ZONE"));
        assert_eq!(paimon_type_of(&ArrowType::Utf8View), None);
    }

    #[test]
    fn local_zone_timestamps_are_utc_instants_whatever_the_zone_spelling() {
        let ltz = DataType::parse("TIMESTAMP(6) WITH LOCAL TIME ZONE").expect("parses");
        let want = arrow_type(&ltz);
        assert_eq!(want, ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())));
        let values = [Datum::Long(1_767_225_600_123_456), Datum::Null];
        let built = build_column(&ltz, values.iter(), 2);
        assert_eq!(built.data_type(), &want);
        // A Java-written file spells the zone "UTC": retyped, the values stay.
        let spelt: ArrayRef = Arc::new(
            arrow_array::TimestampMicrosecondArray::from(vec![Some(1_767_225_600_123_456), None]).with_timezone("UTC"),
        );
        let retagged = retag_zone(spelt, &want);
        assert_eq!(retagged.data_type(), &want);
        assert_eq!(&retagged, &built);
        // Other differences are left for the caller to refuse.
        let millis: ArrayRef = Arc::new(arrow_array::TimestampMillisecondArray::from(vec![1]));
        assert_eq!(retag_zone(millis.clone(), &want).data_type(), millis.data_type());
    }
}
