//! Paimon data types as they appear in `schema/schema-N` (`"BIGINT NOT NULL"`, `"STRING"`).

use crate::error::{Error, Result};
use std::fmt;

/// The subset of Paimon's atomic types this store supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeRoot {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    /// `STRING` is `VARCHAR(2147483647)`; the length is kept for round-trips.
    Varchar(u32),
    Char(u32),
    /// `BYTES` is `VARBINARY(2147483647)`.
    Varbinary(u32),
    Date,
    /// `TIMESTAMP(p)`, a wall-clock time, or with `local_zone` `TIMESTAMP(p) WITH LOCAL
    /// TIME ZONE` (`TIMESTAMP_LTZ(p)`), an instant kept in UTC. Both hold epoch millis for
    /// p <= 3, micros otherwise, and are encoded alike; only readers' types differ.
    Timestamp {
        precision: u8,
        local_zone: bool,
    },
    /// `DECIMAL(precision, scale)`, precision 1..=38.
    Decimal(u8, u8),
}

/// A Paimon data type: a root plus nullability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataType {
    pub root: TypeRoot,
    pub nullable: bool,
}

const MAX_LEN: u32 = i32::MAX as u32;

impl DataType {
    pub fn new(root: TypeRoot) -> Self {
        DataType { root, nullable: true }
    }

    #[must_use]
    pub fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    #[must_use]
    pub fn with_nullable(mut self, nullable: bool) -> Self {
        self.nullable = nullable;
        self
    }

    /// Whether a column of this type may change to `to` with every value it holds
    /// read back unchanged in the new type: TINYINT → SMALLINT → INT → BIGINT,
    /// FLOAT → DOUBLE, DECIMAL(p,s) → DECIMAL(p',s) with p' ≥ p, and the same
    /// type again (nullability aside). These are the promotions Iceberg allows too,
    /// so a Silver column and its store column can widen together.
    pub fn widens_to(&self, to: &DataType) -> bool {
        use TypeRoot as T;
        let rank = |t: &TypeRoot| match t {
            T::TinyInt => Some(1),
            T::SmallInt => Some(2),
            T::Int => Some(3),
            T::BigInt => Some(4),
            _ => None,
        };
        match (&self.root, &to.root) {
            (a, b) if a == b => true,
            (a, b) if rank(a).is_some() && rank(b).is_some() => rank(a) < rank(b),
            (T::Float, T::Double) => true,
            (T::Decimal(p, s), T::Decimal(q, t)) => s == t && p <= q,
            _ => false,
        }
    }

    /// Parses Paimon's type string, e.g. `"BIGINT NOT NULL"`, `"VARCHAR(10)"`, `"TIMESTAMP(3)"`.
    pub fn parse(text: &str) -> Result<Self> {
        let upper = text.trim().to_ascii_uppercase();
        let (body, nullable) = match upper.strip_suffix("NOT NULL") {
            Some(rest) => (rest.trim().to_string(), false),
            None => (upper.clone(), true),
        };
        let (body, local_zone) = match body.strip_suffix("WITH LOCAL TIME ZONE") {
            Some(rest) => (rest.trim().to_string(), true),
            None => match body.strip_prefix("TIMESTAMP_LTZ") {
                Some(rest) => (format!("TIMESTAMP{rest}"), true),
                None => (body, false),
            },
        };
        let (name, arg) = match body.find('(') {
            Some(open) => {
                let close = body.rfind(')').ok_or_else(|| Error::InvalidSchema(format!("unbalanced type `{text}`")))?;
                if !body[close + 1..].trim().is_empty() {
                    return Err(Error::Unsupported(format!("data type `{text}`")));
                }
                (body[..open].trim().to_string(), Some(body[open + 1..close].trim().to_string()))
            }
            None => (body.trim().to_string(), None),
        };
        let arg_num = |default: u32| -> Result<u32> {
            match &arg {
                None => Ok(default),
                Some(a) => a.parse::<u32>().map_err(|_| Error::InvalidSchema(format!("bad type argument in `{text}`"))),
            }
        };
        if local_zone && name != "TIMESTAMP" {
            return Err(Error::Unsupported(format!("data type `{text}`")));
        }
        let root = match name.as_str() {
            "BOOLEAN" => TypeRoot::Boolean,
            "TINYINT" => TypeRoot::TinyInt,
            "SMALLINT" => TypeRoot::SmallInt,
            "INT" | "INTEGER" => TypeRoot::Int,
            "BIGINT" => TypeRoot::BigInt,
            "FLOAT" => TypeRoot::Float,
            "DOUBLE" => TypeRoot::Double,
            "STRING" => TypeRoot::Varchar(MAX_LEN),
            "VARCHAR" => TypeRoot::Varchar(arg_num(1)?),
            "CHAR" => TypeRoot::Char(arg_num(1)?),
            "BYTES" => TypeRoot::Varbinary(MAX_LEN),
            "VARBINARY" => TypeRoot::Varbinary(arg_num(1)?),
            "DATE" => TypeRoot::Date,
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let mut parts = arg.as_deref().unwrap_or("10, 0").split(',').map(|p| p.trim().parse::<u8>());
                let bad = || Error::InvalidSchema(format!("bad DECIMAL arguments in `{text}`"));
                let p = parts.next().and_then(|p| p.ok()).ok_or_else(bad)?;
                let s = match parts.next() {
                    None => 0,
                    Some(s) => s.map_err(|_| bad())?,
                };
                if parts.next().is_some() || p == 0 || p > crate::decimal::MAX_PRECISION || s > p {
                    return Err(bad());
                }
                TypeRoot::Decimal(p, s)
            }
            "TIMESTAMP" => {
                let p = arg_num(6)?;
                if p > 6 {
                    return Err(Error::Unsupported(format!("TIMESTAMP precision {p} (at most 6 is supported)")));
                }
                TypeRoot::Timestamp { precision: p as u8, local_zone }
            }
            other => return Err(Error::Unsupported(format!("data type `{other}` (from `{text}`)"))),
        };
        Ok(DataType { root, nullable })
    }

    /// True for types whose BinaryRow slot may point into the variable-length part.
    pub fn is_var_len(&self) -> bool {
        matches!(self.root, TypeRoot::Varchar(_) | TypeRoot::Char(_) | TypeRoot::Varbinary(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(self.root, TypeRoot::Varchar(_) | TypeRoot::Char(_))
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self.root,
            TypeRoot::TinyInt
                | TypeRoot::SmallInt
                | TypeRoot::Int
                | TypeRoot::BigInt
                | TypeRoot::Float
                | TypeRoot::Double
                | TypeRoot::Decimal(..)
        )
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.root {
            TypeRoot::Boolean => write!(f, "BOOLEAN")?,
            TypeRoot::TinyInt => write!(f, "TINYINT")?,
            TypeRoot::SmallInt => write!(f, "SMALLINT")?,
            TypeRoot::Int => write!(f, "INT")?,
            TypeRoot::BigInt => write!(f, "BIGINT")?,
            TypeRoot::Float => write!(f, "FLOAT")?,
            TypeRoot::Double => write!(f, "DOUBLE")?,
            TypeRoot::Varchar(MAX_LEN) => write!(f, "STRING")?,
            TypeRoot::Varchar(n) => write!(f, "VARCHAR({n})")?,
            TypeRoot::Char(n) => write!(f, "CHAR({n})")?,
            TypeRoot::Varbinary(MAX_LEN) => write!(f, "BYTES")?,
            TypeRoot::Varbinary(n) => write!(f, "VARBINARY({n})")?,
            TypeRoot::Date => write!(f, "DATE")?,
            TypeRoot::Timestamp { precision, local_zone: false } => write!(f, "TIMESTAMP({precision})")?,
            TypeRoot::Timestamp { precision, local_zone: true } => {
                write!(f, "TIMESTAMP({precision}) WITH LOCAL TIME ZONE")?
            }
            TypeRoot::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})")?,
        }
        if !self.nullable {
            write!(f, " NOT NULL")?;
        }
        Ok(())
    }
}

impl serde::Serialize for DataType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for DataType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DataType::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_paimon_type_strings() {
        for t in [
            "BIGINT NOT NULL",
            "STRING",
            "INT",
            "VARCHAR(10)",
            "TIMESTAMP(3)",
            "TIMESTAMP(6) NOT NULL",
            "TIMESTAMP(6) WITH LOCAL TIME ZONE",
            "TIMESTAMP(3) WITH LOCAL TIME ZONE NOT NULL",
            "BYTES",
            "DOUBLE",
            "DATE",
            "BOOLEAN",
            "DECIMAL(10, 2)",
            "DECIMAL(38, 0) NOT NULL",
        ] {
            let parsed = DataType::parse(t).expect("parses");
            assert_eq!(parsed.to_string(), t);
        }
        assert!(DataType::parse("MAP<INT, INT>").is_err());
        let ltz = |p| TypeRoot::Timestamp { precision: p, local_zone: true };
        assert_eq!(DataType::parse("TIMESTAMP_LTZ(3)").expect("parses").root, ltz(3));
        assert_eq!(DataType::parse("timestamp with local time zone").expect("parses").root, ltz(6));
        for bad in ["TIMESTAMP(6) WITH TIME ZONE", "BIGINT WITH LOCAL TIME ZONE", "TIMESTAMP_LTZ(9)"] {
            assert!(DataType::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(DataType::parse("DECIMAL").expect("parses").root, TypeRoot::Decimal(10, 0));
        assert_eq!(DataType::parse("NUMERIC(5)").expect("parses").root, TypeRoot::Decimal(5, 0));
        for bad in ["DECIMAL(0, 0)", "DECIMAL(39, 2)", "DECIMAL(5, 6)", "DECIMAL(5, x)", "DECIMAL(5, 2, 1)"] {
            assert!(DataType::parse(bad).is_err(), "{bad}");
        }
    }
}
