//! The small vocabularies of a contract: column types, time units, encodings,
//! case folding, partition transforms and the schema-evolution mode.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::connect::{ConnectSchema, ConnectType, Logical};
use crate::decimal::MAX_PRECISION;

/// An Iceberg primitive type, as written in a contract (`decimal(12,2)`, `timestamptz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Decimal { precision: u8, scale: u8 },
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    String,
    Binary,
}

impl ColumnType {
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::Long | Self::Float | Self::Double | Self::Decimal { .. })
    }

    pub fn is_temporal(self) -> bool {
        matches!(self, Self::Date | Self::Time | Self::Timestamp | Self::TimestampTz)
    }

    /// Types whose values have an order (`min`/`max` apply).
    pub fn is_ordered(self) -> bool {
        self.is_numeric() || self.is_temporal()
    }

    /// The type a column of this type widens to so that it holds every value of
    /// `source` exactly, within Iceberg's type promotions: int → long (for a
    /// long source), float → double (for a double or int source: a double holds
    /// every int), decimal(p,s) → decimal(p',s) with p' > p (the source's
    /// precision, same scale). `None` where no promotion helps.
    pub fn widened_for(self, source: ColumnType) -> Option<ColumnType> {
        match (self, source) {
            (Self::Int, Self::Long) => Some(Self::Long),
            (Self::Float, Self::Double | Self::Int) => Some(Self::Double),
            (Self::Decimal { precision: p, scale: s }, Self::Decimal { precision: q, scale: t }) if s == t && q > p => {
                Some(source)
            }
            _ => None,
        }
    }

    /// Whether a column of this type may become `to` (the same type, or an
    /// Iceberg promotion of it).
    pub fn widens_to(self, to: ColumnType) -> bool {
        match (self, to) {
            _ if self == to => true,
            (Self::Int, Self::Long) | (Self::Float, Self::Double) => true,
            (Self::Decimal { precision: p, scale: s }, Self::Decimal { precision: q, scale: t }) => s == t && p <= q,
            _ => false,
        }
    }

    /// The type a column added by schema evolution gets from its Debezium
    /// schema, or `None` when no Iceberg primitive holds it exactly
    /// (structs, arrays, maps, a `VariableScaleDecimal` of unknown scale).
    pub fn from_connect(schema: &ConnectSchema) -> Option<ColumnType> {
        Some(match (schema.logical(), schema.kind()) {
            (Logical::Date, _) => Self::Date,
            (Logical::TimeMillis | Logical::TimeMicros | Logical::TimeNanos | Logical::ZonedTime, _) => Self::Time,
            (Logical::TimestampMillis | Logical::TimestampMicros | Logical::TimestampNanos, _) => Self::Timestamp,
            (Logical::ZonedTimestamp, _) => Self::TimestampTz,
            (Logical::Decimal { scale, precision }, _) => {
                let scale = u8::try_from(*scale).ok().filter(|s| *s <= MAX_PRECISION)?;
                let precision = match precision {
                    Some(p) => u8::try_from(*p).ok().filter(|p| *p <= MAX_PRECISION && *p >= scale.max(1))?,
                    None => MAX_PRECISION,
                };
                Self::Decimal { precision, scale }
            }
            (Logical::Uuid, _) => Self::Uuid,
            (Logical::VariableScaleDecimal, _) => return None,
            (_, ConnectType::Boolean) => Self::Boolean,
            (_, ConnectType::Int8 | ConnectType::Int16 | ConnectType::Int32) => Self::Int,
            (_, ConnectType::Int64) => Self::Long,
            (_, ConnectType::Float32) => Self::Float,
            (_, ConnectType::Float64) => Self::Double,
            (_, ConnectType::String) => Self::String,
            (_, ConnectType::Bytes) => Self::Binary,
            (_, ConnectType::Array | ConnectType::Map | ConnectType::Struct) => return None,
        })
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean => f.write_str("boolean"),
            Self::Int => f.write_str("int"),
            Self::Long => f.write_str("long"),
            Self::Float => f.write_str("float"),
            Self::Double => f.write_str("double"),
            Self::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            Self::Date => f.write_str("date"),
            Self::Time => f.write_str("time"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::TimestampTz => f.write_str("timestamptz"),
            Self::Uuid => f.write_str("uuid"),
            Self::String => f.write_str("string"),
            Self::Binary => f.write_str("binary"),
        }
    }
}

impl FromStr for ColumnType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        Ok(match t {
            "boolean" => Self::Boolean,
            "int" => Self::Int,
            "long" => Self::Long,
            "float" => Self::Float,
            "double" => Self::Double,
            "date" => Self::Date,
            "time" => Self::Time,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::TimestampTz,
            "uuid" => Self::Uuid,
            "string" => Self::String,
            "binary" => Self::Binary,
            _ => {
                let inner = t
                    .strip_prefix("decimal")
                    .map(str::trim_start)
                    .and_then(|r| r.strip_prefix('('))
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        format!(
                            "unknown type `{text}` (expected boolean, int, long, float, double, decimal(p,s), date, \
                             time, timestamp, timestamptz, uuid, string or binary)"
                        )
                    })?;
                let (p, s) =
                    inner.split_once(',').ok_or_else(|| format!("`{text}`: write decimal(precision,scale)"))?;
                let precision: u8 = p.trim().parse().map_err(|_| format!("`{text}`: precision is not a number"))?;
                let scale: u8 = s.trim().parse().map_err(|_| format!("`{text}`: scale is not a number"))?;
                if precision == 0 || precision > MAX_PRECISION {
                    return Err(format!("`{text}`: precision must be 1..={MAX_PRECISION}"));
                }
                if scale > precision {
                    return Err(format!("`{text}`: scale {scale} is larger than precision {precision}"));
                }
                Self::Decimal { precision, scale }
            }
        })
    }
}

/// The unit of a bare integer read into a date, time or timestamp column
/// (events without a schema block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    Days,
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl TimeUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Days => "days",
            TimeUnit::Seconds => "seconds",
            TimeUnit::Millis => "millis",
            TimeUnit::Micros => "micros",
            TimeUnit::Nanos => "nanos",
        }
    }
}

/// How a JSON string is read into a decimal or binary column without a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// decimal: decimal text if it looks like a number, else base64 unscaled
    /// bytes at the column's scale; binary: base64.
    #[default]
    Auto,
    /// decimal: decimal text only; binary: the string's UTF-8 bytes.
    Text,
    /// base64 (decimal: big-endian unscaled bytes at the column's scale).
    Base64,
    /// binary only: hexadecimal text (Debezium `binary.handling.mode=hex`).
    Hex,
}

/// Case folding of string values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Lower,
    Upper,
}

/// The partition transform of the business-date column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    Day,
    Month,
}

/// What the refiner may do to the Silver table when the source schema changes:
/// `evolve = "add-columns"`, `"widen-types"`, both as a list
/// (`["add-columns", "widen-types"]`), or `"none"` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evolve {
    /// Unknown source columns also become new Silver columns, typed from the
    /// Debezium schema ([`ColumnType::from_connect`]); without it they only go
    /// to `_extra`.
    pub add_columns: bool,
    /// A value column whose source type grew (`ALTER COLUMN … TYPE bigint`)
    /// is widened in Silver and the store ([`ColumnType::widened_for`]) when a
    /// value needs it; without it such values are `type_change` rejects.
    pub widen_types: bool,
}

impl Evolve {
    pub const NONE: Evolve = Evolve { add_columns: false, widen_types: false };

    pub fn any(self) -> bool {
        self.add_columns || self.widen_types
    }
}

impl FromStr for Evolve {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Evolve::NONE),
            "add-columns" => Ok(Evolve { add_columns: true, widen_types: false }),
            "widen-types" => Ok(Evolve { add_columns: false, widen_types: true }),
            other => Err(format!("unknown evolve mode `{other}` (none, add-columns, widen-types)")),
        }
    }
}

impl<'de> Deserialize<'de> for Evolve {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        let modes = match Form::deserialize(d)? {
            Form::One(s) => vec![s],
            Form::Many(v) => v,
        };
        let mut out = Evolve::NONE;
        for m in modes {
            let e: Evolve = m.parse().map_err(serde::de::Error::custom)?;
            out.add_columns |= e.add_columns;
            out.widen_types |= e.widen_types;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_prints_types() {
        for t in [
            "boolean",
            "int",
            "long",
            "float",
            "double",
            "decimal(12,2)",
            "date",
            "time",
            "timestamp",
            "timestamptz",
            "uuid",
            "string",
            "binary",
        ] {
            assert_eq!(t.parse::<ColumnType>().map(|c| c.to_string()).as_deref(), Ok(t));
        }
        assert_eq!("decimal( 38 , 0 )".parse(), Ok(ColumnType::Decimal { precision: 38, scale: 0 }));
        for bad in ["decimal(39,2)", "decimal(2,3)", "decimal(0,0)", "decimal(10)", "decimal(a,b)", "int64", "text"] {
            assert!(bad.parse::<ColumnType>().is_err(), "{bad}");
        }
        assert!("varchar".parse::<ColumnType>().expect_err("unknown").contains("unknown type `varchar`"));
    }

    #[test]
    fn evolve_modes_and_type_promotions() {
        #[derive(Deserialize)]
        struct E {
            evolve: Evolve,
        }
        let parse = |text: &str| toml::from_str::<E>(text).map(|e| e.evolve);
        assert_eq!(parse(r#"evolve = "add-columns""#).unwrap(), Evolve { add_columns: true, widen_types: false });
        assert_eq!(parse(r#"evolve = "widen-types""#).unwrap(), Evolve { add_columns: false, widen_types: true });
        assert_eq!(
            parse(r#"evolve = ["add-columns", "widen-types"]"#).unwrap(),
            Evolve { add_columns: true, widen_types: true }
        );
        assert_eq!(parse(r#"evolve = "none""#).unwrap(), Evolve::NONE);
        assert!(parse(r#"evolve = "rename""#).unwrap_err().to_string().contains("unknown evolve mode `rename`"));

        let dec = |precision, scale| ColumnType::Decimal { precision, scale };
        assert_eq!(ColumnType::Int.widened_for(ColumnType::Long), Some(ColumnType::Long));
        assert_eq!(ColumnType::Float.widened_for(ColumnType::Double), Some(ColumnType::Double));
        assert_eq!(ColumnType::Float.widened_for(ColumnType::Int), Some(ColumnType::Double));
        assert_eq!(dec(6, 2).widened_for(dec(12, 2)), Some(dec(12, 2)));
        for (from, source) in [
            (ColumnType::Int, ColumnType::Double),
            (ColumnType::Long, ColumnType::Decimal { precision: 38, scale: 0 }),
            (dec(6, 2), dec(12, 3)),
            (dec(12, 2), dec(6, 2)),
            (ColumnType::Int, ColumnType::String),
            (ColumnType::Date, ColumnType::Timestamp),
        ] {
            assert_eq!(from.widened_for(source), None, "{from} for a {source} source");
        }
        assert!(dec(6, 2).widens_to(dec(6, 2)) && dec(6, 2).widens_to(dec(7, 2)) && !dec(7, 2).widens_to(dec(6, 2)));
        assert!(!ColumnType::Long.widens_to(ColumnType::Int));
    }

    #[test]
    fn types_added_columns_from_debezium_schemas() {
        let t = |schema: serde_json::Value| {
            ColumnType::from_connect(&ConnectSchema::from_json(&schema).expect("valid schema"))
        };
        assert_eq!(t(json!({"type": "int32", "name": "io.debezium.time.Date"})), Some(ColumnType::Date));
        assert_eq!(t(json!({"type": "int64", "name": "io.debezium.time.MicroTimestamp"})), Some(ColumnType::Timestamp));
        assert_eq!(
            t(json!({"type": "string", "name": "io.debezium.time.ZonedTimestamp"})),
            Some(ColumnType::TimestampTz)
        );
        assert_eq!(
            t(json!({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                     "parameters": {"scale": "2", "connect.decimal.precision": "10"}})),
            Some(ColumnType::Decimal { precision: 10, scale: 2 })
        );
        assert_eq!(t(json!({"type": "int16"})), Some(ColumnType::Int));
        assert_eq!(t(json!({"type": "string", "name": "io.debezium.data.Json"})), Some(ColumnType::String));
        assert_eq!(
            t(json!({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal",
                            "fields": [{"type": "int32", "field": "scale"}, {"type": "bytes", "field": "value"}]})),
            None
        );
    }
}
