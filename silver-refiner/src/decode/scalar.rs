//! Non-temporal readers: booleans, integers, floats, decimals, UUIDs, strings
//! and bytes, from JSON values or text.

use serde_json::Value as Json;

use crate::connect::json_kind;
use crate::decimal;
use crate::reject::{Failure, Rule};
use crate::value::Value;

pub(crate) fn wrong_kind(raw: &Json, ty: impl std::fmt::Display) -> Failure {
    Failure::new(Rule::Type, format!("{} cannot be a {ty} value", json_kind(raw)))
}

/// `true`/`false`/`t`/`f`/`1`/`0` in any case (PostgreSQL's text form included).
pub(crate) fn bool_from_text(text: &str) -> Result<Value, Failure> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Ok(Value::Bool(true)),
        "false" | "f" | "0" => Ok(Value::Bool(false)),
        _ => Err(Failure::new(Rule::Parse, format!("{text:?} is not a boolean"))),
    }
}

/// An integer 0 or 1 as a boolean (MySQL `TINYINT(1)`).
pub(crate) fn bool_from_int(v: i64) -> Result<Value, Failure> {
    match v {
        0 => Ok(Value::Bool(false)),
        1 => Ok(Value::Bool(true)),
        _ => Err(Failure::new(Rule::Range, format!("{v} is not a boolean (only 0 and 1 are)"))),
    }
}

/// A JSON integer (or integer text) as an i64. Fractions are refused, never truncated.
pub(crate) fn json_i64(raw: &Json) -> Result<i64, Failure> {
    match raw {
        Json::Number(n) => {
            if let Some(v) = n.as_i64() {
                Ok(v)
            } else if n.is_u64() {
                Err(Failure::new(Rule::Range, format!("{n} does not fit a long")))
            } else {
                Err(Failure::new(Rule::Type, format!("{n} is a fraction, not an integer")))
            }
        }
        Json::String(s) => int_from_text(s),
        other => Err(wrong_kind(other, "integer")),
    }
}

pub(crate) fn int_from_text(text: &str) -> Result<i64, Failure> {
    text.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            Failure::new(Rule::Range, format!("{text} does not fit a long"))
        }
        _ => Failure::new(Rule::Parse, format!("{text:?} is not an integer")),
    })
}

pub(crate) fn int_value(v: i64) -> Result<Value, Failure> {
    i32::try_from(v).map(Value::Int).map_err(|_| Failure::new(Rule::Range, format!("{v} does not fit an int")))
}

/// A JSON number (or number text, `NaN`, `Infinity`) as an f64.
pub(crate) fn json_f64(raw: &Json) -> Result<f64, Failure> {
    match raw {
        Json::Number(n) => n.as_f64().ok_or_else(|| Failure::new(Rule::Parse, format!("{n} is not a number"))),
        Json::String(s) => s.parse::<f64>().map_err(|_| Failure::new(Rule::Parse, format!("{s:?} is not a number"))),
        other => Err(wrong_kind(other, "floating-point")),
    }
}

/// An f64 narrowed to f32; a finite value too large for f32 is refused.
pub(crate) fn float_value(v: f64) -> Result<Value, Failure> {
    let narrow = v as f32;
    if v.is_finite() && !narrow.is_finite() {
        return Err(Failure::new(Rule::Range, format!("{v} does not fit a float")));
    }
    Ok(Value::Float(narrow))
}

/// `(unscaled, scale)` as a value of `decimal(precision, scale)`, exactly.
pub(crate) fn decimal_value(unscaled: i128, from_scale: i32, precision: u8, scale: u8) -> Result<Value, Failure> {
    let column = format!("decimal({precision},{scale})");
    let rescaled = decimal::rescale(unscaled, from_scale, scale).map_err(|why| {
        Failure::new(Rule::Precision, format!("{why}: it does not fit {column} without losing digits"))
    })?;
    if !decimal::fits_precision(rescaled, precision) {
        let text = decimal::render(rescaled, i32::from(scale));
        return Err(Failure::new(Rule::Precision, format!("{text} has more than {precision} digits ({column})")));
    }
    Ok(Value::Decimal { unscaled: rescaled, scale })
}

/// A JSON number as exact decimal digits: integers as they are, doubles by
/// their shortest text (`decimal.handling.mode=double`).
pub(crate) fn decimal_from_number(n: &serde_json::Number) -> Result<(i128, i32), Failure> {
    if let Some(v) = n.as_i64() {
        return Ok((i128::from(v), 0));
    }
    if let Some(v) = n.as_u64() {
        return Ok((i128::from(v), 0));
    }
    let f = n.as_f64().ok_or_else(|| Failure::new(Rule::Parse, format!("{n} is not a number")))?;
    decimal::from_f64(f).map_err(|why| Failure::new(Rule::Parse, why))
}

pub(crate) fn decimal_from_text(text: &str) -> Result<(i128, i32), Failure> {
    decimal::parse(text).map_err(|why| Failure::new(Rule::Parse, why))
}

/// Base64 big-endian two's-complement unscaled bytes (Kafka Connect `Decimal`).
pub(crate) fn unscaled_from_base64(text: &str) -> Result<i128, Failure> {
    let bytes = decimal::base64_bytes(text).map_err(|why| Failure::new(Rule::Parse, why))?;
    decimal::from_be_bytes(&bytes).map_err(|why| Failure::new(Rule::Precision, why))
}

/// Debezium `VariableScaleDecimal`: `{"scale": 2, "value": "<base64>"}`.
pub(crate) fn variable_scale_decimal(raw: &Json) -> Result<(i128, i32), Failure> {
    let bad = || {
        Failure::new(Rule::Type, format!("{} is not a VariableScaleDecimal {{\"scale\": int, \"value\": base64}}", raw))
    };
    let obj = raw.as_object().ok_or_else(bad)?;
    let scale = obj.get("scale").and_then(Json::as_i64).and_then(|s| i32::try_from(s).ok()).ok_or_else(bad)?;
    let value = obj.get("value").and_then(Json::as_str).ok_or_else(bad)?;
    Ok((unscaled_from_base64(value)?, scale))
}

pub(crate) fn uuid_from_text(text: &str) -> Result<Value, Failure> {
    uuid::Uuid::parse_str(text)
        .map(|u| Value::Uuid(u.into_bytes()))
        .map_err(|e| Failure::new(Rule::Parse, format!("{text:?} is not a UUID: {e}")))
}

pub(crate) fn uuid_from_bytes(bytes: Vec<u8>) -> Result<Value, Failure> {
    let len = bytes.len();
    <[u8; 16]>::try_from(bytes)
        .map(Value::Uuid)
        .map_err(|_| Failure::new(Rule::Parse, format!("{len} bytes are not a UUID (16 bytes)")))
}

pub(crate) fn bytes_from_base64(text: &str) -> Result<Vec<u8>, Failure> {
    decimal::base64_bytes(text).map_err(|why| Failure::new(Rule::Parse, why))
}

pub(crate) fn bytes_from_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let bad = || Failure::new(Rule::Parse, format!("{text:?} is not hexadecimal bytes"));
    let digits = text.strip_prefix("\\x").or_else(|| text.strip_prefix("0x")).unwrap_or(text);
    if !digits.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| digits.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(bad))
        .collect()
}

/// Any scalar as text: strings as they are, numbers and booleans as JSON
/// writes them, arrays and objects as compact JSON.
pub(crate) fn string_value(raw: &Json) -> Value {
    match raw {
        Json::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans() {
        assert_eq!(bool_from_text("T"), Ok(Value::Bool(true)));
        assert_eq!(bool_from_text("false"), Ok(Value::Bool(false)));
        assert_eq!(bool_from_text("yes").map_err(|f| f.rule), Err(Rule::Parse));
        assert_eq!(bool_from_int(1), Ok(Value::Bool(true)));
        assert_eq!(bool_from_int(2).map_err(|f| f.rule), Err(Rule::Range));
    }

    #[test]
    fn integers_never_truncate() {
        assert_eq!(json_i64(&json!(-5)), Ok(-5));
        assert_eq!(json_i64(&json!("42")), Ok(42));
        assert_eq!(json_i64(&json!(1.5)).map_err(|f| f.rule), Err(Rule::Type));
        assert_eq!(json_i64(&json!(u64::MAX)).map_err(|f| f.rule), Err(Rule::Range));
        assert_eq!(json_i64(&json!("99999999999999999999")).map_err(|f| f.rule), Err(Rule::Range));
        assert_eq!(json_i64(&json!("4x")).map_err(|f| f.rule), Err(Rule::Parse));
        assert_eq!(json_i64(&json!(true)).map_err(|f| f.rule), Err(Rule::Type));
        assert_eq!(int_value(i64::from(i32::MAX) + 1).map_err(|f| f.rule), Err(Rule::Range));
    }

    #[test]
    fn floats() {
        assert_eq!(json_f64(&json!(2.75)), Ok(2.75));
        assert_eq!(json_f64(&json!("2.5")), Ok(2.5));
        assert!(json_f64(&json!("NaN")).is_ok_and(f64::is_nan));
        assert_eq!(float_value(1e300).map_err(|f| f.rule), Err(Rule::Range));
        assert_eq!(float_value(0.5), Ok(Value::Float(0.5)));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_value(123, 1, 10, 2), Ok(Value::Decimal { unscaled: 1230, scale: 2 }));
        let e = decimal_value(12345, 3, 10, 2).expect_err("a lost digit");
        assert_eq!(e.rule, Rule::Precision);
        assert!(e.reason.contains("12.345") && e.reason.contains("decimal(10,2)"), "{}", e.reason);
        let e = decimal_value(123_456, 0, 5, 0).expect_err("too many digits");
        assert_eq!(e.reason, "123456 has more than 5 digits (decimal(5,0))");
        assert_eq!(decimal_from_number(json!(12.3).as_number().expect("number")), Ok((123, 1)));
        assert_eq!(decimal_from_number(json!(u64::MAX).as_number().expect("number")), Ok((i128::from(u64::MAX), 0)));
        assert_eq!(variable_scale_decimal(&json!({"scale": 2, "value": "EtaH"})), Ok((1_234_567, 2)));
        assert_eq!(variable_scale_decimal(&json!({"scale": 2})).map_err(|f| f.rule), Err(Rule::Type));
        assert_eq!(unscaled_from_base64("!!").map_err(|f| f.rule), Err(Rule::Parse));
    }

    #[test]
    fn uuids_bytes_and_text() {
        let u = [0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00];
        assert_eq!(uuid_from_text("123e4567-e89b-12d3-a456-426614174000"), Ok(Value::Uuid(u)));
        assert_eq!(uuid_from_text("123E4567E89B12D3A456426614174000"), Ok(Value::Uuid(u)));
        assert_eq!(uuid_from_text("nope").map_err(|f| f.rule), Err(Rule::Parse));
        assert_eq!(uuid_from_bytes(u.to_vec()), Ok(Value::Uuid(u)));
        assert!(uuid_from_bytes(vec![1, 2]).is_err());
        assert_eq!(bytes_from_hex("\\x0aff"), Ok(vec![0x0a, 0xff]));
        assert!(bytes_from_hex("abc").is_err());
        assert!(bytes_from_hex("zz").is_err());
        assert_eq!(bytes_from_base64("Ag=="), Ok(vec![2]));
        assert_eq!(string_value(&json!({"a": 2})), Value::String("{\"a\":2}".into()));
        assert_eq!(string_value(&json!(7)), Value::String("7".into()));
    }
}
