//! [`Scalar`]: one value of a Silver column, totally ordered (so values can key
//! the per-value counts that keep `min`/`max`/`count_distinct` exact), read
//! from and written to Arrow.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

/// A column value. Integers, dates (days) and timestamps (microseconds) are
/// `Int`; decimals are their unscaled value (one column has one scale).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Dec(Dec128),
    Float(OrdF64),
    Str(Box<str>),
    Bytes(Box<[u8]>),
}

/// An `i128` kept in bytes: Rust aligns `i128` to 16 bytes, which made every
/// [`Scalar`] 32 bytes; with this and the boxed string and bytes it is 24
/// (Gold holds millions of them: facts, dimensions, feature events). Ordered,
/// hashed and serialised as the `i128`, so state written before reads the same.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dec128([u8; 16]);

impl Dec128 {
    pub fn new(v: i128) -> Self {
        Dec128(v.to_le_bytes())
    }

    pub fn get(self) -> i128 {
        i128::from_le_bytes(self.0)
    }
}

impl From<i128> for Dec128 {
    fn from(v: i128) -> Self {
        Dec128::new(v)
    }
}

impl std::fmt::Debug for Dec128 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl PartialOrd for Dec128 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Dec128 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.get().cmp(&other.get())
    }
}

impl Serialize for Dec128 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}
impl<'de> Deserialize<'de> for Dec128 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i128::deserialize(d).map(Dec128::new)
    }
}

/// An `f64` with a total order (IEEE 754 `totalOrder`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrdF64(pub f64);

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl std::hash::Hash for OrdF64 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// The value as a double (numbers only), for `avg` and numeric filters.
    pub fn as_f64(&self, scale: i8) -> Option<f64> {
        match self {
            Scalar::Int(v) => Some(*v as f64),
            Scalar::Dec(v) => Some(v.get() as f64 / 10f64.powi(scale as i32)),
            Scalar::Float(v) => Some(v.0),
            _ => None,
        }
    }
}

/// Whether Gold can read a column of this Arrow type.
pub fn supported(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Millisecond, _)
            | DataType::Utf8
            | DataType::Binary
    )
}

/// Reads row `i` of `col` (a type [`supported`] accepts; others read as null).
pub fn read(col: &ArrayRef, i: usize) -> Scalar {
    if col.is_null(i) {
        return Scalar::Null;
    }
    match col.data_type() {
        DataType::Boolean => Scalar::Bool(col.as_boolean().value(i)),
        DataType::Int8 => Scalar::Int(col.as_primitive::<Int8Type>().value(i) as i64),
        DataType::Int16 => Scalar::Int(col.as_primitive::<Int16Type>().value(i) as i64),
        DataType::Int32 => Scalar::Int(col.as_primitive::<Int32Type>().value(i) as i64),
        DataType::Int64 => Scalar::Int(col.as_primitive::<Int64Type>().value(i)),
        DataType::Date32 => Scalar::Int(col.as_primitive::<Date32Type>().value(i) as i64),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Scalar::Int(col.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Scalar::Int(col.as_primitive::<TimestampMillisecondType>().value(i) * 1000)
        }
        DataType::Float32 => Scalar::Float(OrdF64(col.as_primitive::<Float32Type>().value(i) as f64)),
        DataType::Float64 => Scalar::Float(OrdF64(col.as_primitive::<Float64Type>().value(i))),
        DataType::Decimal128(_, _) => Scalar::Dec(col.as_primitive::<Decimal128Type>().value(i).into()),
        DataType::Utf8 => Scalar::Str(col.as_string::<i32>().value(i).into()),
        DataType::Binary => Scalar::Bytes(col.as_binary::<i32>().value(i).into()),
        _ => Scalar::Null,
    }
}

/// The Arrow type a Gold column of source type `ty` is written with: every
/// integer a long, every float a double, every decimal `decimal(38, s)` at its
/// scale, timestamps in microseconds. So a Silver column widened by schema
/// evolution (int → long, float → double, a larger decimal precision) changes
/// no Gold type: the Gold tables and their state keep theirs.
pub fn output_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int64,
        DataType::Float32 => DataType::Float64,
        DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        other => other.clone(),
    }
}

/// Builds a column of Arrow type `ty` (an [`output_type`]) from `values`.
pub fn build(ty: &DataType, values: &[Scalar]) -> Result<ArrayRef, String> {
    let bad = |v: &Scalar| format!("value {v:?} does not fit a {ty} column");
    let int = |v: &Scalar| match v {
        Scalar::Null => Ok(None),
        Scalar::Int(x) => Ok(Some(*x)),
        other => Err(bad(other)),
    };
    Ok(match ty {
        DataType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Scalar::Null => Ok(None),
                    Scalar::Bool(b) => Ok(Some(*b)),
                    o => Err(bad(o)),
                })
                .collect::<Result<BooleanArray, _>>()?,
        ),
        DataType::Int32 => Arc::new(
            values
                .iter()
                .map(|v| int(v)?.map(|x| i32::try_from(x).map_err(|_| bad(v))).transpose())
                .collect::<Result<Int32Array, _>>()?,
        ),
        DataType::Int64 => Arc::new(values.iter().map(int).collect::<Result<Int64Array, _>>()?),
        DataType::Date32 => Arc::new(
            values
                .iter()
                .map(|v| int(v)?.map(|x| i32::try_from(x).map_err(|_| bad(v))).transpose())
                .collect::<Result<Date32Array, _>>()?,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
            values.iter().map(int).collect::<Result<TimestampMicrosecondArray, _>>()?.with_timezone_opt(tz.clone()),
        ),
        DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Scalar::Null => Ok(None),
                    Scalar::Float(f) => Ok(Some(f.0)),
                    o => Err(bad(o)),
                })
                .collect::<Result<Float64Array, _>>()?,
        ),
        DataType::Decimal128(p, s) => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Scalar::Null => Ok(None),
                    Scalar::Dec(d) => Ok(Some(d.get())),
                    o => Err(bad(o)),
                })
                .collect::<Result<Decimal128Array, _>>()?
                .with_precision_and_scale(*p, *s)
                .map_err(|e| e.to_string())?,
        ),
        DataType::Utf8 => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Scalar::Null => Ok(None),
                    Scalar::Str(s) => Ok(Some(&**s)),
                    o => Err(bad(o)),
                })
                .collect::<Result<StringArray, _>>()?,
        ),
        DataType::Binary => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Scalar::Null => Ok(None),
                    Scalar::Bytes(b) => Ok(Some(&**b)),
                    o => Err(bad(o)),
                })
                .collect::<Result<BinaryArray, _>>()?,
        ),
        other => return Err(format!("Gold cannot write a {other} column")),
    })
}

/// The columns of `batch` named by `schema`'s fields, in its order.
pub fn columns_of(batch: &arrow_array::RecordBatch, schema: &arrow_schema::Schema) -> Result<Vec<ArrayRef>, String> {
    schema
        .fields()
        .iter()
        .map(|f| batch.column_by_name(f.name()).cloned().ok_or_else(|| format!("no column {}", f.name())))
        .collect()
}

/// A row's hash, to tell a recomputed Gold row from the one Gold holds
/// (stable within a process only; recomputed from the state on start).
pub fn row_hash(row: &[Scalar]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    row.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_builds() {
        let cases: Vec<(DataType, Vec<Scalar>)> = vec![
            (DataType::Int64, vec![Scalar::Int(-3), Scalar::Null, Scalar::Int(i64::MAX)]),
            (DataType::Decimal128(12, 2), vec![Scalar::Dec(12345.into()), Scalar::Null]),
            (DataType::Utf8, vec![Scalar::Str("é".into()), Scalar::Null]),
            (DataType::Date32, vec![Scalar::Int(20_454)]),
            (DataType::Float64, vec![Scalar::Float(OrdF64(-0.5))]),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                vec![Scalar::Int(1_767_225_600_000_000)],
            ),
        ];
        for (ty, values) in cases {
            let col = build(&ty, &values).expect("builds");
            assert_eq!(col.data_type(), &ty);
            let back: Vec<Scalar> = (0..col.len()).map(|i| read(&col, i)).collect();
            assert_eq!(back, values, "{ty}");
        }
        assert!(build(&DataType::Int32, &[Scalar::Int(1 << 40)]).is_err(), "out of range is an error");
        assert!(build(&DataType::Int64, &[Scalar::Str("x".into())]).is_err());
    }

    #[test]
    fn order_is_total_and_numeric_within_a_type() {
        let mut v = [Scalar::Float(OrdF64(2.5)), Scalar::Float(OrdF64(-1.0)), Scalar::Float(OrdF64(0.0))];
        v.sort();
        assert_eq!(v[0], Scalar::Float(OrdF64(-1.0)));
        assert!(Scalar::Dec((-5).into()) < Scalar::Dec(3.into()));
        assert!(
            Scalar::Dec(i128::MIN.into()) < Scalar::Dec((-1).into())
                && Scalar::Dec(1.into()) < Scalar::Dec(i128::MAX.into())
        );
        assert!(Scalar::Str("a".into()) < Scalar::Str("b".into()));
        let json = serde_json::to_string(&Scalar::Dec(i128::MAX.into())).expect("serialises");
        assert_eq!(serde_json::from_str::<Scalar>(&json).expect("parses"), Scalar::Dec(i128::MAX.into()));
    }

    #[test]
    fn a_scalar_is_24_bytes_and_serialises_as_before() {
        assert_eq!(std::mem::size_of::<Scalar>(), 24);
        // The JSON the state's accumulators were written with (i128, String, Vec<u8> payloads).
        let cases = [
            (Scalar::Dec((-12345).into()), r#"{"Dec":-12345}"#),
            (Scalar::Dec(i128::MAX.into()), r#"{"Dec":170141183460469231731687303715884105727}"#),
            (Scalar::Str("é".into()), r#"{"Str":"é"}"#),
            (Scalar::Bytes(vec![1u8, 255].into()), r#"{"Bytes":[1,255]}"#),
            (Scalar::Int(-3), r#"{"Int":-3}"#),
            (Scalar::Null, r#""Null""#),
        ];
        for (value, json) in cases {
            assert_eq!(serde_json::to_string(&value).expect("serialises"), json);
            assert_eq!(serde_json::from_str::<Scalar>(json).expect("parses"), value);
        }
    }
}
