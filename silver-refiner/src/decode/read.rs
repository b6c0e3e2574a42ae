//! One JSON value of a Debezium row image → one typed [`Value`] of a contract
//! column.
//!
//! **With a schema block** the Connect schema of the source field decides how
//! the JSON is read (`io.debezium.time.Date` is days, `MicroTimestamp`
//! microseconds, a `Decimal` base64 bytes at the schema's `scale`, …), and a
//! fixed table decides which source types a column accepts (see
//! [`read_with_schema`]). A source type outside that table is a `type_change`
//! reject: the source column changed in a way the contract cannot widen.
//! A plain Connect `string` (no logical name) is text and may feed any column
//! through that column's text parser: that is how `decimal.handling.mode=string`
//! and applications that send numbers as text arrive.
//!
//! **Without a schema block** the contract's declared type decides (see
//! [`read_bare`]):
//!
//! | column | JSON integer | JSON string |
//! |---|---|---|
//! | boolean | 0 / 1 | `true`/`false`/`t`/`f`/`1`/`0` |
//! | int, long | the integer (range-checked) | integer text |
//! | float, double | the number | number text |
//! | decimal(p,s) | exact; a JSON fraction by its shortest text (`decimal.handling.mode=double`) | `encoding = "auto"` (default): decimal text (`"12.30"`) when it parses as one, else base64 unscaled bytes **at the contract's scale** (precise mode); `"text"` / `"base64"` force one reading |
//! | date | days since the epoch, or `unit` | `formats`, else `YYYY-MM-DD` |
//! | time | **needs `unit`** (millis/micros/nanos: no magnitude tells them apart) | `formats`, else `HH:MM:SS[.f][offset]` |
//! | timestamp, timestamptz | `unit`, else by magnitude: < 10^14 millis, < 10^17 micros, else nanos | `formats`, else ISO 8601 / RFC 3339 |
//! | uuid | — | UUID text |
//! | string | the number's text | the string |
//! | binary | — | base64 (default), `hex` or `text` (`encoding`) |
//!
//! A decimal JSON object `{"scale", "value"}` is read as a `VariableScaleDecimal`.
//! Time zones: text with an offset and `ZonedTimestamp`s are instants; epoch
//! integers and text without an offset are wall-clock time. A `timestamp`
//! column stores an instant as its UTC wall-clock time; a `timestamptz` column
//! reads wall-clock time in `assume_offset` (default UTC). Either way the stored
//! value is UTC.

use chrono::FixedOffset;
use serde_json::Value as Json;

use super::scalar::{self, wrong_kind};
use super::temporal::{self, Moment};
use crate::connect::{ConnectSchema, ConnectType, Logical};
use crate::contract::{ColumnType, Encoding, TimeUnit};
use crate::reject::{Failure, Rule};
use crate::value::Value;

/// How one column reads raw values.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    pub ty: ColumnType,
    /// Unit of bare epoch integers in date/time/timestamp columns.
    pub unit: Option<TimeUnit>,
    /// chrono formats for text dates, times and timestamps, tried in order.
    pub formats: Vec<String>,
    /// Offset of wall-clock values read into a `timestamptz` column.
    pub assume_offset: Option<FixedOffset>,
    pub encoding: Encoding,
}

impl ReadOptions {
    /// The canonical reading used for values written in the contract itself
    /// (defaults, bounds, allowed values): ISO text, decimal text, days,
    /// base64 for binary.
    pub fn canonical(ty: ColumnType) -> Self {
        let encoding = if ty == ColumnType::Binary { Encoding::Base64 } else { Encoding::Text };
        Self { ty, unit: None, formats: Vec::new(), assume_offset: None, encoding }
    }
}

/// Reads one raw value (`null` → [`Value::Null`]) with the source field's
/// Connect schema when the event carried one.
pub(crate) fn read(raw: &Json, schema: Option<&ConnectSchema>, opts: &ReadOptions) -> Result<Value, Failure> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    match schema {
        Some(s) => read_with_schema(raw, s, opts),
        None => read_bare(raw, opts),
    }
}

/// Text into the column's type (shared by both paths).
fn read_text(text: &str, opts: &ReadOptions) -> Result<Value, Failure> {
    match opts.ty {
        ColumnType::Boolean => scalar::bool_from_text(text),
        ColumnType::Int => scalar::int_value(scalar::int_from_text(text)?),
        ColumnType::Long => scalar::int_from_text(text).map(Value::Long),
        ColumnType::Float => scalar::float_value(scalar::json_f64(&Json::String(text.to_string()))?),
        ColumnType::Double => text
            .parse::<f64>()
            .map(Value::Double)
            .map_err(|_| Failure::new(Rule::Parse, format!("{text:?} is not a number"))),
        ColumnType::Decimal { precision, scale } => {
            let (u, s) = decimal_text(text, opts.encoding, scale)?;
            scalar::decimal_value(u, s, precision, scale)
        }
        ColumnType::Date => temporal::parse_date(text, &opts.formats),
        ColumnType::Time => temporal::parse_time(text, &opts.formats),
        ColumnType::Timestamp | ColumnType::TimestampTz => {
            temporal::timestamp_value(temporal::parse_timestamp(text, &opts.formats)?, opts.ty, opts.assume_offset)
        }
        ColumnType::Uuid => scalar::uuid_from_text(text),
        ColumnType::String => Ok(Value::String(text.to_string())),
        ColumnType::Binary => match opts.encoding {
            Encoding::Hex => scalar::bytes_from_hex(text).map(Value::Binary),
            Encoding::Text => Ok(Value::Binary(text.as_bytes().to_vec())),
            Encoding::Auto | Encoding::Base64 => scalar::bytes_from_base64(text).map(Value::Binary),
        },
    }
}

/// Without a schema block: the contract's declared type decides (module docs).
pub(crate) fn read_bare(raw: &Json, opts: &ReadOptions) -> Result<Value, Failure> {
    if let Json::String(text) = raw {
        return read_text(text, opts);
    }
    let ty = opts.ty;
    match ty {
        ColumnType::Boolean => match raw {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::Number(_) => scalar::bool_from_int(scalar::json_i64(raw)?),
            other => Err(wrong_kind(other, ty)),
        },
        ColumnType::Int => scalar::int_value(scalar::json_i64(raw)?),
        ColumnType::Long => scalar::json_i64(raw).map(Value::Long),
        ColumnType::Float => scalar::float_value(scalar::json_f64(raw)?),
        ColumnType::Double => scalar::json_f64(raw).map(Value::Double),
        ColumnType::Decimal { precision, scale } => {
            let (u, s) = decimal_bare(raw, opts.encoding, scale)?;
            scalar::decimal_value(u, s, precision, scale)
        }
        ColumnType::Date => temporal::date_from_int(scalar::json_i64(raw)?, opts.unit.unwrap_or(TimeUnit::Days)),
        ColumnType::Time => {
            let v = scalar::json_i64(raw)?;
            let unit = opts.unit.ok_or_else(|| {
                Failure::new(
                    Rule::Parse,
                    format!(
                        "bare integer {v} for a time column: millis, micros and nanos cannot be told apart \
                         without a schema; declare `unit` on the column"
                    ),
                )
            })?;
            temporal::time_value(temporal::to_micros(v, unit)?)
        }
        ColumnType::Timestamp | ColumnType::TimestampTz => {
            let v = scalar::json_i64(raw)?;
            let unit = opts.unit.unwrap_or_else(|| temporal::unit_by_magnitude(v));
            temporal::timestamp_value(Moment::Naive(temporal::to_micros(v, unit)?), ty, opts.assume_offset)
        }
        ColumnType::String => match raw {
            Json::Bool(_) | Json::Number(_) | Json::Array(_) | Json::Object(_) => Ok(scalar::string_value(raw)),
            other => Err(wrong_kind(other, ty)),
        },
        ColumnType::Uuid | ColumnType::Binary => Err(wrong_kind(raw, ty)),
    }
}

/// What a source field is, as far as the acceptance table cares.
fn is_plain(schema: &ConnectSchema) -> bool {
    matches!(schema.logical(), Logical::None)
}

fn is_plain_int(schema: &ConnectSchema, widest: ConnectType) -> bool {
    let rank = |k: ConnectType| match k {
        ConnectType::Int8 => 1,
        ConnectType::Int16 => 2,
        ConnectType::Int32 => 3,
        ConnectType::Int64 => 4,
        _ => 99,
    };
    matches!(schema.logical(), Logical::None | Logical::Year) && rank(schema.kind()) <= rank(widest)
}

fn expect_str<'a>(raw: &'a Json, schema: &ConnectSchema) -> Result<&'a str, Failure> {
    raw.as_str().ok_or_else(|| contradiction(raw, schema))
}

fn expect_i64(raw: &Json, schema: &ConnectSchema) -> Result<i64, Failure> {
    match raw {
        Json::Number(_) => scalar::json_i64(raw),
        _ => Err(contradiction(raw, schema)),
    }
}

fn contradiction(raw: &Json, schema: &ConnectSchema) -> Failure {
    Failure::new(Rule::Type, format!("the schema says {schema} but the value is {}", crate::connect::json_kind(raw)))
}

/// With a schema block. Source types each column type accepts (anything else
/// is `type_change`):
///
/// - boolean: `boolean`, plain integers (0/1), plain `string`;
/// - int: plain `int8`/`int16`/`int32`, `Year`, plain `string`;
/// - long: plain integers up to `int64`, `Year`, plain `string`;
/// - float: `float32`, plain `int8`/`int16`, plain `string`;
/// - double: `float32`/`float64`, plain integers up to `int32`, plain `string`;
/// - decimal: `Decimal`, `VariableScaleDecimal`, plain integers, `float32`/`float64`
///   (`decimal.handling.mode=double`), plain `string` (`=string`);
/// - date: `Date` (Debezium or Connect), plain `string`;
/// - time: `Time`, `MicroTime`, `NanoTime`, `ZonedTime`, plain `string`;
/// - timestamp, timestamptz: `Timestamp`, `MicroTimestamp`, `NanoTimestamp`,
///   `ZonedTimestamp`, plain `string`;
/// - uuid: `Uuid`, plain `string`, plain `bytes` of 16;
/// - string: every `string` (`Json`, `Enum`, `EnumSet`, `Uuid`, zoned times…),
///   plain integers, `boolean`, `float32`/`float64`, `Decimal` (exact text);
/// - binary: `bytes` (also `Bits`).
pub(crate) fn read_with_schema(raw: &Json, src: &ConnectSchema, opts: &ReadOptions) -> Result<Value, Failure> {
    use ConnectType as K;
    let ty = opts.ty;
    let plain_text = src.kind() == K::String && is_plain(src);
    if plain_text && ty != ColumnType::String {
        return read_text(expect_str(raw, src)?, &ReadOptions { encoding: Encoding::Text, ..opts.clone() });
    }
    let type_change =
        || Failure::new(Rule::TypeChange, format!("the source column is {src}, which a {ty} column cannot hold"));
    match ty {
        ColumnType::Boolean => match src.kind() {
            K::Boolean => raw.as_bool().map(Value::Bool).ok_or_else(|| contradiction(raw, src)),
            _ if is_plain_int(src, K::Int64) => scalar::bool_from_int(expect_i64(raw, src)?),
            _ => Err(type_change()),
        },
        ColumnType::Int if is_plain_int(src, K::Int32) => scalar::int_value(expect_i64(raw, src)?),
        ColumnType::Long if is_plain_int(src, K::Int64) => expect_i64(raw, src).map(Value::Long),
        ColumnType::Float => match src.kind() {
            K::Float32 => scalar::float_value(number(raw, src)?),
            _ if is_plain_int(src, K::Int16) => scalar::float_value(number(raw, src)?),
            _ => Err(type_change()),
        },
        ColumnType::Double => match src.kind() {
            K::Float32 | K::Float64 => number(raw, src).map(Value::Double),
            _ if is_plain_int(src, K::Int32) => number(raw, src).map(Value::Double),
            _ => Err(type_change()),
        },
        ColumnType::Decimal { precision, scale } => {
            let (u, s) = decimal_with_schema(raw, src, ty)?;
            scalar::decimal_value(u, s, precision, scale)
        }
        ColumnType::Date => match src.logical() {
            Logical::Date => temporal::date_from_int(expect_i64(raw, src)?, TimeUnit::Days),
            _ => Err(type_change()),
        },
        ColumnType::Time => {
            let unit = match src.logical() {
                Logical::TimeMillis => TimeUnit::Millis,
                Logical::TimeMicros => TimeUnit::Micros,
                Logical::TimeNanos => TimeUnit::Nanos,
                Logical::ZonedTime => return temporal::parse_time(expect_str(raw, src)?, &[]),
                _ => return Err(type_change()),
            };
            temporal::time_value(temporal::to_micros(expect_i64(raw, src)?, unit)?)
        }
        ColumnType::Timestamp | ColumnType::TimestampTz => {
            let unit = match src.logical() {
                Logical::TimestampMillis => TimeUnit::Millis,
                Logical::TimestampMicros => TimeUnit::Micros,
                Logical::TimestampNanos => TimeUnit::Nanos,
                Logical::ZonedTimestamp => {
                    let moment = temporal::parse_timestamp(expect_str(raw, src)?, &[])?;
                    return temporal::timestamp_value(moment, ty, opts.assume_offset);
                }
                _ => return Err(type_change()),
            };
            let micros = temporal::to_micros(expect_i64(raw, src)?, unit)?;
            temporal::timestamp_value(Moment::Naive(micros), ty, opts.assume_offset)
        }
        ColumnType::Uuid => match (src.logical(), src.kind()) {
            (Logical::Uuid, _) => scalar::uuid_from_text(expect_str(raw, src)?),
            (Logical::None, K::Bytes) => scalar::uuid_from_bytes(scalar::bytes_from_base64(expect_str(raw, src)?)?),
            _ => Err(type_change()),
        },
        ColumnType::String => match (src.logical(), src.kind()) {
            (_, K::String) => expect_str(raw, src).map(|s| Value::String(s.to_string())),
            (Logical::Decimal { scale, .. }, _) => match raw {
                Json::String(b64) => {
                    Ok(Value::String(crate::decimal::render(scalar::unscaled_from_base64(b64)?, *scale)))
                }
                other => Ok(scalar::string_value(other)),
            },
            (_, K::Boolean | K::Float32 | K::Float64) if is_plain(src) => match raw {
                Json::Bool(_) | Json::Number(_) => Ok(scalar::string_value(raw)),
                other => Err(contradiction(other, src)),
            },
            _ if is_plain_int(src, K::Int64) => expect_i64(raw, src).map(|v| Value::String(v.to_string())),
            _ => Err(type_change()),
        },
        ColumnType::Binary => match (src.logical(), src.kind()) {
            (Logical::None | Logical::Bits, K::Bytes) => {
                scalar::bytes_from_base64(expect_str(raw, src)?).map(Value::Binary)
            }
            _ => Err(type_change()),
        },
        ColumnType::Int | ColumnType::Long => Err(type_change()),
    }
}

/// A decimal column's source value as exact `(unscaled, scale)` digits, before
/// it is fitted to the column's `decimal(p,s)` — so that a `factor` applies to
/// the source value, not to a rounded one. `None` for null.
pub(crate) fn read_decimal_parts(
    raw: &Json,
    schema: Option<&ConnectSchema>,
    opts: &ReadOptions,
) -> Result<Option<(i128, i32)>, Failure> {
    let ColumnType::Decimal { scale, .. } = opts.ty else {
        return Err(Failure::new(Rule::Type, format!("a {} column is not a decimal", opts.ty)));
    };
    if raw.is_null() {
        return Ok(None);
    }
    let parts = match schema {
        Some(src) if src.kind() == ConnectType::String && is_plain(src) => {
            decimal_text(expect_str(raw, src)?, Encoding::Text, scale)?
        }
        Some(src) => decimal_with_schema(raw, src, opts.ty)?,
        None => decimal_bare(raw, opts.encoding, scale)?,
    };
    Ok(Some(parts))
}

/// Decimal text, or base64 unscaled bytes at the contract's scale (see the
/// module docs for `encoding`).
fn decimal_text(text: &str, encoding: Encoding, scale: u8) -> Result<(i128, i32), Failure> {
    match encoding {
        Encoding::Base64 => Ok((scalar::unscaled_from_base64(text)?, i32::from(scale))),
        Encoding::Text | Encoding::Hex => scalar::decimal_from_text(text),
        Encoding::Auto => match scalar::decimal_from_text(text) {
            Ok(d) => Ok(d),
            Err(_) => match scalar::unscaled_from_base64(text) {
                Ok(u) => Ok((u, i32::from(scale))),
                Err(_) => Err(Failure::new(
                    Rule::Parse,
                    format!("{text:?} is neither decimal text nor base64 unscaled bytes"),
                )),
            },
        },
    }
}

fn decimal_bare(raw: &Json, encoding: Encoding, scale: u8) -> Result<(i128, i32), Failure> {
    match raw {
        Json::String(text) => decimal_text(text, encoding, scale),
        Json::Number(n) => scalar::decimal_from_number(n),
        Json::Object(_) => scalar::variable_scale_decimal(raw),
        other => Err(wrong_kind(other, "decimal")),
    }
}

/// A decimal from a source field with a schema (not a plain string).
fn decimal_with_schema(raw: &Json, src: &ConnectSchema, ty: ColumnType) -> Result<(i128, i32), Failure> {
    use ConnectType as K;
    match (src.logical(), src.kind()) {
        (Logical::Decimal { scale, .. }, _) => match raw {
            Json::String(b64) => Ok((scalar::unscaled_from_base64(b64)?, *scale)),
            // JsonConverter `decimal.format=NUMERIC`.
            Json::Number(n) => scalar::decimal_from_number(n),
            other => Err(contradiction(other, src)),
        },
        (Logical::VariableScaleDecimal, _) => scalar::variable_scale_decimal(raw),
        (_, K::Float32 | K::Float64) if is_plain(src) => match raw {
            Json::Number(n) => scalar::decimal_from_number(n),
            other => Err(contradiction(other, src)),
        },
        _ if is_plain_int(src, K::Int64) => Ok((i128::from(expect_i64(raw, src)?), 0)),
        _ => {
            Err(Failure::new(Rule::TypeChange, format!("the source column is {src}, which a {ty} column cannot hold")))
        }
    }
}

fn number(raw: &Json, schema: &ConnectSchema) -> Result<f64, Failure> {
    match raw {
        Json::Number(_) => scalar::json_f64(raw),
        // JsonConverter writes non-finite doubles as strings.
        Json::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => scalar::json_f64(raw),
        other => Err(contradiction(other, schema)),
    }
}
