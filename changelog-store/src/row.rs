//! In-memory values: [`Datum`], rows, [`RowKind`] and the key/value records of the LSM.

use crate::decimal::Decimal;
use crate::error::{Error, Result};
use crate::spec::types::{DataType, TypeRoot};
use std::cmp::Ordering;

/// One field value. The physical variant follows the column's [`DataType`]:
/// `Int` holds TINYINT/SMALLINT/INT/DATE (days), `Long` holds BIGINT/TIMESTAMP
/// (millis for precision <= 3, micros otherwise).
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    /// DECIMAL: the unscaled value with the column's precision and scale.
    Decimal(Decimal),
}

impl Datum {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    fn rank(&self) -> u8 {
        match self {
            Datum::Null => 0,
            Datum::Bool(_) => 1,
            Datum::Int(_) => 2,
            Datum::Long(_) => 3,
            Datum::Float(_) => 4,
            Datum::Double(_) => 5,
            Datum::String(_) => 6,
            Datum::Bytes(_) => 7,
            Datum::Decimal(_) => 8,
        }
    }

    /// Approximate heap + inline size, used for the write-buffer bound.
    pub fn mem_size(&self) -> usize {
        16 + match self {
            Datum::String(s) => s.len(),
            Datum::Bytes(b) => b.len(),
            _ => 0,
        }
    }

    /// Converts a JSON value into the datum of `ty` (strict: no lossy coercion).
    pub fn from_json(column: &str, ty: &DataType, v: &serde_json::Value) -> Result<Datum> {
        use serde_json::Value as J;
        if v.is_null() {
            if !ty.nullable {
                return Err(Error::value(column, "null for a NOT NULL column"));
            }
            return Ok(Datum::Null);
        }
        let bad = || Error::value(column, format!("expected {ty}, got {v}"));
        let int_in = |lo: i64, hi: i64| -> Result<i32> {
            let n = v.as_i64().ok_or_else(bad)?;
            if n < lo || n > hi {
                return Err(Error::value(column, format!("{n} out of range for {ty}")));
            }
            Ok(n as i32)
        };
        Ok(match ty.root {
            TypeRoot::Boolean => Datum::Bool(v.as_bool().ok_or_else(bad)?),
            TypeRoot::TinyInt => Datum::Int(int_in(i8::MIN as i64, i8::MAX as i64)?),
            TypeRoot::SmallInt => Datum::Int(int_in(i16::MIN as i64, i16::MAX as i64)?),
            TypeRoot::Int | TypeRoot::Date => Datum::Int(int_in(i32::MIN as i64, i32::MAX as i64)?),
            TypeRoot::BigInt | TypeRoot::Timestamp { .. } => Datum::Long(v.as_i64().ok_or_else(bad)?),
            TypeRoot::Float => Datum::Float(v.as_f64().ok_or_else(bad)? as f32),
            TypeRoot::Double => Datum::Double(v.as_f64().ok_or_else(bad)?),
            TypeRoot::Varchar(_) | TypeRoot::Char(_) => match v {
                J::String(s) => Datum::String(s.clone()),
                _ => return Err(bad()),
            },
            TypeRoot::Varbinary(_) => match v {
                J::String(s) => Datum::Bytes(s.as_bytes().to_vec()),
                J::Array(items) => Datum::Bytes(
                    items
                        .iter()
                        .map(|b| b.as_u64().filter(|b| *b < 256).map(|b| b as u8))
                        .collect::<Option<Vec<u8>>>()
                        .ok_or_else(bad)?,
                ),
                _ => return Err(bad()),
            },
            // Text or a JSON number, taken exactly: digits the scale cannot hold are an error.
            TypeRoot::Decimal(p, s) => {
                let text = match v {
                    J::String(t) => t.clone(),
                    J::Number(n) => n.to_string(),
                    _ => return Err(bad()),
                };
                Datum::Decimal(Decimal::parse(&text, p, s).map_err(|e| Error::value(column, e))?)
            }
        })
    }

    /// JSON rendering (numbers stay numbers, bytes become an array of numbers).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Datum::Null => J::Null,
            Datum::Bool(b) => J::Bool(*b),
            Datum::Int(i) => J::from(*i),
            Datum::Long(l) => J::from(*l),
            Datum::Float(f) => serde_json::Number::from_f64(*f as f64).map_or(J::Null, J::Number),
            Datum::Double(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Datum::String(s) => J::String(s.clone()),
            Datum::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
            // A string: a JSON number would go through a double and lose digits.
            Datum::Decimal(d) => J::String(d.to_string()),
        }
    }

    /// Checks that this datum has the physical variant `ty` expects.
    pub fn check_type(&self, column: &str, ty: &DataType) -> Result<()> {
        let ok = match (self, ty.root) {
            (Datum::Null, _) => ty.nullable,
            (Datum::Bool(_), TypeRoot::Boolean) => true,
            (Datum::Int(_), TypeRoot::TinyInt | TypeRoot::SmallInt | TypeRoot::Int | TypeRoot::Date) => true,
            (Datum::Long(_), TypeRoot::BigInt | TypeRoot::Timestamp { .. }) => true,
            (Datum::Float(_), TypeRoot::Float) => true,
            (Datum::Double(_), TypeRoot::Double) => true,
            (Datum::String(_), TypeRoot::Varchar(_) | TypeRoot::Char(_)) => true,
            (Datum::Bytes(_), TypeRoot::Varbinary(_)) => true,
            (Datum::Decimal(d), TypeRoot::Decimal(p, s)) => d.scale == s && Decimal::new(d.unscaled, p, s).is_some(),
            _ => false,
        };
        if ok { Ok(()) } else { Err(Error::value(column, format!("{self:?} does not fit {ty}"))) }
    }
}

impl Eq for Datum {}

impl PartialOrd for Datum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Total order used for keys: nulls first, then by value (floats by `total_cmp`,
/// strings by UTF-8 bytes, which equals code-point order as Paimon readers use).
impl Ord for Datum {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Datum::Bool(a), Datum::Bool(b)) => a.cmp(b),
            (Datum::Int(a), Datum::Int(b)) => a.cmp(b),
            (Datum::Long(a), Datum::Long(b)) => a.cmp(b),
            (Datum::Float(a), Datum::Float(b)) => a.total_cmp(b),
            (Datum::Double(a), Datum::Double(b)) => a.total_cmp(b),
            (Datum::String(a), Datum::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Datum::Bytes(a), Datum::Bytes(b)) => a.cmp(b),
            (Datum::Decimal(a), Datum::Decimal(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A row: one datum per table field, in schema order.
pub type Row = Vec<Datum>;

/// A key: the trimmed primary key (primary key minus partition keys), in declaration order.
pub type Key = Vec<Datum>;

/// Paimon's row kind, stored as `_VALUE_KIND` (TINYINT) in data and changelog files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKind {
    /// `+I`
    Insert,
    /// `-U`
    UpdateBefore,
    /// `+U`
    UpdateAfter,
    /// `-D`
    Delete,
}

impl RowKind {
    pub fn to_byte(self) -> i8 {
        match self {
            RowKind::Insert => 0,
            RowKind::UpdateBefore => 1,
            RowKind::UpdateAfter => 2,
            RowKind::Delete => 3,
        }
    }

    pub fn from_byte(b: i8) -> Option<RowKind> {
        Some(match b {
            0 => RowKind::Insert,
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => return None,
        })
    }

    /// `+I`/`+U` add a row; `-U`/`-D` retract one.
    pub fn is_add(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }

    pub fn short_string(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }
}

/// One LSM record: key, sequence number, kind and the full value row.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: Key,
    pub seq: i64,
    pub kind: RowKind,
    pub value: Row,
}

impl KeyValue {
    pub fn mem_size(&self) -> usize {
        48 + self.key.iter().map(Datum::mem_size).sum::<usize>() + self.value.iter().map(Datum::mem_size).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_sort_first_and_strings_by_bytes() {
        assert!(Datum::Null < Datum::Long(i64::MIN));
        assert!(Datum::String("a".into()) < Datum::String("b".into()));
        assert!(Datum::String("Z".into()) < Datum::String("a".into()));
        assert!(Datum::Double(-0.5) < Datum::Double(0.25));
    }

    #[test]
    fn json_conversion_is_strict() {
        let int = DataType::parse("INT").expect("type");
        assert_eq!(Datum::from_json("c", &int, &serde_json::json!(5)).expect("ok"), Datum::Int(5));
        assert!(Datum::from_json("c", &int, &serde_json::json!("5")).is_err());
        assert!(Datum::from_json("c", &int, &serde_json::json!(1u64 << 40)).is_err());
        let nn = DataType::parse("BIGINT NOT NULL").expect("type");
        assert!(Datum::from_json("c", &nn, &serde_json::Value::Null).is_err());
    }
}
