//! Kafka Connect schemas as Debezium's JsonConverter writes them
//! (`{"schema": {...}, "payload": {...}}` with `schemas.enable=true`).
//!
//! A schema is a tree: `type` (the physical Connect type), an optional `name`
//! (the logical type, e.g. `io.debezium.time.Date`), optional `parameters`
//! (e.g. a decimal's `scale`) and, for structs, `fields`. Only what decoding a
//! row needs is kept; [`ConnectSchema::row`] finds the row image inside a change
//! event envelope.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value as Json;

/// A schema block that is not a Connect schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Connect schema at `{path}`: {problem}")]
pub struct SchemaError {
    /// Where in the schema tree, e.g. `after.order_date`.
    pub path: String,
    pub problem: String,
}

/// Physical Kafka Connect types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl ConnectType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "int8" => ConnectType::Int8,
            "int16" => ConnectType::Int16,
            "int32" => ConnectType::Int32,
            "int64" => ConnectType::Int64,
            "float" | "float32" => ConnectType::Float32,
            "double" | "float64" => ConnectType::Float64,
            "boolean" => ConnectType::Boolean,
            "string" => ConnectType::String,
            "bytes" => ConnectType::Bytes,
            "array" => ConnectType::Array,
            "map" => ConnectType::Map,
            "struct" => ConnectType::Struct,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectType::Int8 => "int8",
            ConnectType::Int16 => "int16",
            ConnectType::Int32 => "int32",
            ConnectType::Int64 => "int64",
            ConnectType::Float32 => "float32",
            ConnectType::Float64 => "float64",
            ConnectType::Boolean => "boolean",
            ConnectType::String => "string",
            ConnectType::Bytes => "bytes",
            ConnectType::Array => "array",
            ConnectType::Map => "map",
            ConnectType::Struct => "struct",
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, ConnectType::Int8 | ConnectType::Int16 | ConnectType::Int32 | ConnectType::Int64)
    }
}

/// The logical types decoding knows, from the schema's `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logical {
    /// No name, or a name decoding does not interpret (read by the physical type).
    None,
    /// `io.debezium.time.Date`, `org.apache.kafka.connect.data.Date`: int32 days since the epoch.
    Date,
    /// `io.debezium.time.Time`, `org.apache.kafka.connect.data.Time`: milliseconds since midnight.
    TimeMillis,
    /// `io.debezium.time.MicroTime`: microseconds since midnight.
    TimeMicros,
    /// `io.debezium.time.NanoTime`: nanoseconds since midnight.
    TimeNanos,
    /// `io.debezium.time.Timestamp`, `org.apache.kafka.connect.data.Timestamp`: epoch milliseconds, no zone.
    TimestampMillis,
    /// `io.debezium.time.MicroTimestamp`: epoch microseconds, no zone.
    TimestampMicros,
    /// `io.debezium.time.NanoTimestamp`: epoch nanoseconds, no zone.
    TimestampNanos,
    /// `io.debezium.time.ZonedTimestamp`: ISO-8601 text with an offset.
    ZonedTimestamp,
    /// `io.debezium.time.ZonedTime`: ISO-8601 time with an offset.
    ZonedTime,
    /// `org.apache.kafka.connect.data.Decimal`: base64 big-endian unscaled bytes
    /// (or a number with `decimal.format=NUMERIC`), `scale` in the parameters.
    Decimal { scale: i32, precision: Option<u32> },
    /// `io.debezium.data.VariableScaleDecimal`: struct `{scale: int32, value: bytes}`.
    VariableScaleDecimal,
    /// `io.debezium.data.Json`: JSON text.
    Json,
    /// `io.debezium.data.Enum`: one allowed label.
    Enum,
    /// `io.debezium.data.EnumSet`: comma-separated labels.
    EnumSet,
    /// `io.debezium.data.Uuid`: canonical UUID text.
    Uuid,
    /// `io.debezium.data.Bits`: bytes.
    Bits,
    /// `io.debezium.time.Year`: int32 year.
    Year,
}

impl Logical {
    fn from_schema(name: Option<&str>, parameters: &BTreeMap<String, String>, path: &str) -> Result<Self, SchemaError> {
        let Some(name) = name else { return Ok(Logical::None) };
        Ok(match name {
            "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => Logical::Date,
            "io.debezium.time.Time" | "org.apache.kafka.connect.data.Time" => Logical::TimeMillis,
            "io.debezium.time.MicroTime" => Logical::TimeMicros,
            "io.debezium.time.NanoTime" => Logical::TimeNanos,
            "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp" => Logical::TimestampMillis,
            "io.debezium.time.MicroTimestamp" => Logical::TimestampMicros,
            "io.debezium.time.NanoTimestamp" => Logical::TimestampNanos,
            "io.debezium.time.ZonedTimestamp" => Logical::ZonedTimestamp,
            "io.debezium.time.ZonedTime" => Logical::ZonedTime,
            "org.apache.kafka.connect.data.Decimal" => {
                let number = |key: &str| -> Result<Option<i64>, SchemaError> {
                    parameters
                        .get(key)
                        .map(|v| {
                            v.parse::<i64>().map_err(|_| SchemaError {
                                path: path.to_string(),
                                problem: format!("decimal parameter `{key}` = {v:?} is not an integer"),
                            })
                        })
                        .transpose()
                };
                let scale = number("scale")?.ok_or_else(|| SchemaError {
                    path: path.to_string(),
                    problem: "org.apache.kafka.connect.data.Decimal without a `scale` parameter".into(),
                })?;
                let scale = i32::try_from(scale).map_err(|_| SchemaError {
                    path: path.to_string(),
                    problem: format!("decimal scale {scale} is out of range"),
                })?;
                let precision = number("connect.decimal.precision")?.and_then(|p| u32::try_from(p).ok());
                Logical::Decimal { scale, precision }
            }
            "io.debezium.data.VariableScaleDecimal" => Logical::VariableScaleDecimal,
            "io.debezium.data.Json" => Logical::Json,
            "io.debezium.data.Enum" => Logical::Enum,
            "io.debezium.data.EnumSet" => Logical::EnumSet,
            "io.debezium.data.Uuid" => Logical::Uuid,
            "io.debezium.data.Bits" => Logical::Bits,
            "io.debezium.time.Year" => Logical::Year,
            _ => Logical::None,
        })
    }
}

/// One node of a Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSchema {
    kind: ConnectType,
    name: Option<String>,
    parameters: BTreeMap<String, String>,
    logical: Logical,
    fields: Vec<(String, ConnectSchema)>,
    index: HashMap<String, usize>,
}

impl ConnectSchema {
    /// Reads a JsonConverter schema block (the value of `"schema"`).
    pub fn from_json(json: &Json) -> Result<Self, SchemaError> {
        Self::parse(json, "")
    }

    fn parse(json: &Json, path: &str) -> Result<Self, SchemaError> {
        let err = |problem: String| SchemaError {
            path: if path.is_empty() { "(root)".into() } else { path.into() },
            problem,
        };
        let obj = json.as_object().ok_or_else(|| err(format!("expected an object, found {}", json_kind(json))))?;
        let type_name = obj.get("type").and_then(Json::as_str).ok_or_else(|| err("no string `type`".into()))?;
        let kind = ConnectType::parse(type_name).ok_or_else(|| err(format!("unknown Connect type `{type_name}`")))?;
        let name = obj.get("name").and_then(Json::as_str).map(str::to_string);
        let mut parameters = BTreeMap::new();
        if let Some(params) = obj.get("parameters").and_then(Json::as_object) {
            for (k, v) in params {
                let text = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                parameters.insert(k.clone(), text);
            }
        }
        let logical = Logical::from_schema(name.as_deref(), &parameters, path)?;
        let mut fields = Vec::new();
        let mut index = HashMap::new();
        if kind == ConnectType::Struct {
            let list =
                obj.get("fields").and_then(Json::as_array).ok_or_else(|| err("struct without `fields`".into()))?;
            for f in list {
                let field = f
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or_else(|| err("a struct field without a `field` name".into()))?;
                let child_path = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
                let child = Self::parse(f, &child_path)?;
                index.insert(field.to_string(), fields.len());
                fields.push((field.to_string(), child));
            }
        }
        Ok(Self { kind, name, parameters, logical, fields, index })
    }

    pub fn kind(&self) -> ConnectType {
        self.kind
    }

    /// The schema's `name` (logical type or record name).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.parameters
    }

    pub fn logical(&self) -> &Logical {
        &self.logical
    }

    /// A struct field's schema by name.
    pub fn field(&self, name: &str) -> Option<&ConnectSchema> {
        self.index.get(name).map(|&i| &self.fields[i].1)
    }

    /// A struct's fields in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &ConnectSchema)> {
        self.fields.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// The row image's schema: the `after` (else `before`) struct of a change
    /// event envelope, or the schema itself for a flattened row.
    pub fn row(&self) -> &ConnectSchema {
        let is_envelope = self.kind == ConnectType::Struct && self.field("op").is_some();
        if is_envelope {
            for image in ["after", "before"] {
                if let Some(s) = self.field(image).filter(|s| s.kind == ConnectType::Struct) {
                    return s;
                }
            }
        }
        self
    }
}

impl fmt::Display for ConnectSchema {
    /// A short description for messages: `int32 (io.debezium.time.Date)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.kind) {
            (Some(name), k) if k != ConnectType::Struct => write!(f, "{} ({name})", k.as_str()),
            _ => f.write_str(self.kind.as_str()),
        }
    }
}

/// The JSON kind of a value, for messages.
pub(crate) fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_f64() => "a fractional number",
        Json::Number(_) => "an integer",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_envelope_and_finds_the_row() {
        let schema = json!({
            "type": "struct", "name": "x.Envelope",
            "fields": [
                {"type": "struct", "optional": true, "field": "before", "fields": [{"type": "int32", "field": "id"}]},
                {"type": "struct", "optional": true, "field": "after", "fields": [
                    {"type": "int32", "field": "id"},
                    {"type": "int32", "name": "io.debezium.time.Date", "field": "d"},
                    {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                     "parameters": {"scale": "2", "connect.decimal.precision": "10"}, "field": "amount"}
                ]},
                {"type": "string", "field": "op"}
            ]
        });
        let s = ConnectSchema::from_json(&schema).expect("valid schema");
        let row = s.row();
        assert_eq!(row.fields().map(|(n, _)| n).collect::<Vec<_>>(), ["id", "d", "amount"]);
        assert_eq!(row.field("d").map(|f| f.logical().clone()), Some(Logical::Date));
        assert_eq!(
            row.field("amount").map(|f| f.logical().clone()),
            Some(Logical::Decimal { scale: 2, precision: Some(10) })
        );
        assert_eq!(
            row.field("amount").map(|f| f.to_string()).as_deref(),
            Some("bytes (org.apache.kafka.connect.data.Decimal)")
        );
        // A flattened row's schema is its own row.
        let flat = ConnectSchema::from_json(&json!({"type": "struct", "fields": [{"type": "int64", "field": "id"}]}))
            .expect("valid schema");
        assert_eq!(flat.row().field("id").map(ConnectSchema::kind), Some(ConnectType::Int64));
    }

    #[test]
    fn malformed_schemas_name_the_path() {
        let e = ConnectSchema::from_json(&json!({"type": "struct", "fields": [{"type": "int99", "field": "x"}]}))
            .expect_err("unknown type");
        assert_eq!(e.path, "x");
        assert!(e.to_string().contains("unknown Connect type `int99`"), "{e}");
        let e = ConnectSchema::from_json(&json!({"type": "struct", "fields": [{"type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal", "field": "amount"}]}))
        .expect_err("no scale");
        assert!(e.to_string().contains("amount") && e.to_string().contains("scale"), "{e}");
        assert!(ConnectSchema::from_json(&json!([1])).is_err());
        assert!(ConnectSchema::from_json(&json!({"type": "struct"})).is_err());
    }
}
