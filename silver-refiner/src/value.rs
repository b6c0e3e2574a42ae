//! Typed Silver values: what one cell of a refined row holds.

use std::cmp::Ordering;
use std::fmt;

use crate::decimal;

/// One typed cell. Each variant is the in-memory form of one Iceberg type:
/// temporal values are counted from the Unix epoch (1970-01-01T00:00:00 UTC),
/// sub-second values in microseconds, the Iceberg (and Arrow `Time64`/`Timestamp`)
/// resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    /// `unscaled × 10^-scale`, always at the column's declared scale.
    Decimal {
        unscaled: i128,
        scale: u8,
    },
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since the epoch, wall clock without a zone.
    Timestamp(i64),
    /// Microseconds since the epoch, an instant (UTC).
    TimestampTz(i64),
    Uuid([u8; 16]),
    String(String),
    Binary(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The variant's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "int",
            Value::Long(_) => "long",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Decimal { .. } => "decimal",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Uuid(_) => "uuid",
            Value::String(_) => "string",
            Value::Binary(_) => "binary",
        }
    }

    /// This value in a column widened to `to` ([`ColumnType::widened_for`]):
    /// an int as a long, a float as a double (exactly, as Iceberg promotes
    /// old files); anything else (a decimal keeps its scale) as it is.
    ///
    /// [`ColumnType::widened_for`]: crate::contract::ColumnType::widened_for
    #[must_use]
    pub fn widened(self, to: crate::contract::ColumnType) -> Value {
        use crate::contract::ColumnType as T;
        match (self, to) {
            (Value::Int(v), T::Long) => Value::Long(v.into()),
            (Value::Float(v), T::Double) => Value::Double(v.into()),
            (v, _) => v,
        }
    }

    /// Order of two values of the same orderable kind (numbers, decimals of the
    /// same scale, dates, times, timestamps); `None` otherwise.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Long(a), Value::Long(b)) => Some(a.cmp(b)),
            (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
            (Value::Double(a), Value::Double(b)) => a.partial_cmp(b),
            (Value::Decimal { unscaled: a, scale: sa }, Value::Decimal { unscaled: b, scale: sb }) if sa == sb => {
                Some(a.cmp(b))
            }
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Time(a), Value::Time(b))
            | (Value::Timestamp(a), Value::Timestamp(b))
            | (Value::TimestampTz(a), Value::TimestampTz(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// Human-readable text for reject reasons: ISO dates and times, exact decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Long(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Decimal { unscaled, scale } => f.write_str(&decimal::render(*unscaled, i32::from(*scale))),
            Value::Date(days) => match chrono::NaiveDate::from_epoch_days(*days) {
                Some(d) => write!(f, "{d}"),
                None => write!(f, "{days} days"),
            },
            Value::Time(micros) => {
                let secs = u32::try_from(micros.div_euclid(1_000_000)).unwrap_or(u32::MAX);
                let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0);
                match chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos) {
                    Some(t) => write!(f, "{t}"),
                    None => write!(f, "{micros} µs"),
                }
            }
            Value::Timestamp(micros) => match chrono::DateTime::from_timestamp_micros(*micros) {
                Some(t) => write!(f, "{}", t.naive_utc()),
                None => write!(f, "{micros} µs"),
            },
            Value::TimestampTz(micros) => match chrono::DateTime::from_timestamp_micros(*micros) {
                Some(t) => write!(f, "{}", t.to_rfc3339()),
                None => write!(f, "{micros} µs UTC"),
            },
            Value::Uuid(bytes) => write!(f, "{}", uuid::Uuid::from_bytes(*bytes)),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Binary(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_readable() {
        assert_eq!(Value::Decimal { unscaled: 1230, scale: 2 }.to_string(), "12.30");
        assert_eq!(Value::Date(16816).to_string(), "2016-01-16");
        assert_eq!(Value::Time(64_264_780_000).to_string(), "17:51:04.780");
        assert_eq!(Value::Timestamp(1_410_198_664_780_000).to_string(), "2014-09-08 17:51:04.780");
        assert_eq!(Value::TimestampTz(0).to_string(), "1970-01-01T00:00:00+00:00");
        assert_eq!(Value::String("a".into()).to_string(), "\"a\"");
    }

    #[test]
    fn compares_only_like_with_like() {
        assert_eq!(Value::Int(1).compare(&Value::Int(2)), Some(Ordering::Less));
        assert_eq!(
            Value::Decimal { unscaled: 5, scale: 1 }.compare(&Value::Decimal { unscaled: 40, scale: 1 }),
            Some(Ordering::Less)
        );
        assert_eq!(Value::Decimal { unscaled: 5, scale: 1 }.compare(&Value::Decimal { unscaled: 5, scale: 2 }), None);
        assert_eq!(Value::Int(1).compare(&Value::Long(1)), None);
        assert_eq!(Value::String("a".into()).compare(&Value::String("b".into())), None);
        assert_eq!(Value::Double(f64::NAN).compare(&Value::Double(1.0)), None);
    }
}
