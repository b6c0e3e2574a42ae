//! Every logical type, read with its Connect schema and without one.

use chrono::FixedOffset;
use serde_json::{Value as Json, json};

use super::read::{ReadOptions, read};
use crate::connect::ConnectSchema;
use crate::contract::{Encoding, TimeUnit};
use crate::reject::Rule;
use crate::value::Value;

fn opts(ty: &str) -> ReadOptions {
    ReadOptions {
        ty: ty.parse().expect("a column type"),
        unit: None,
        formats: Vec::new(),
        assume_offset: None,
        encoding: Encoding::Auto,
    }
}

fn field(kind: &str, name: Option<&str>, params: Option<Json>) -> ConnectSchema {
    let mut s = json!({"type": kind, "field": "x"});
    if let Some(n) = name {
        s["name"] = json!(n);
    }
    if let Some(p) = params {
        s["parameters"] = p;
    }
    ConnectSchema::from_json(&s).expect("a valid field schema")
}

fn with(schema: &ConnectSchema, raw: Json, o: &ReadOptions) -> Result<Value, Rule> {
    read(&raw, Some(schema), o).map_err(|f| f.rule)
}

fn bare(raw: Json, o: &ReadOptions) -> Result<Value, Rule> {
    read(&raw, None, o).map_err(|f| f.rule)
}

const DAY_16816: Value = Value::Date(16816); // 2016-01-16
const T_MILLIS: i64 = 1_410_198_664_780; // 2014-09-08T17:51:04.780
const T_MICROS: i64 = T_MILLIS * 1000;

#[test]
fn dates_with_schema() {
    for name in ["io.debezium.time.Date", "org.apache.kafka.connect.data.Date"] {
        let s = field("int32", Some(name), None);
        assert_eq!(with(&s, json!(16816), &opts("date")), Ok(DAY_16816), "{name}");
        assert_eq!(with(&s, json!(-1), &opts("date")), Ok(Value::Date(-1)), "{name}");
        assert_eq!(with(&s, json!("2016-01-16"), &opts("date")), Err(Rule::Type), "{name}: contradicts its schema");
        assert_eq!(with(&s, json!(16816), &opts("timestamp")), Err(Rule::TypeChange), "{name}");
        assert_eq!(with(&s, json!(16816), &opts("int")), Err(Rule::TypeChange), "{name}");
    }
}

#[test]
fn times_with_schema() {
    let cases = [
        ("io.debezium.time.Time", "int32", json!(64_264_780), 64_264_780_000),
        ("org.apache.kafka.connect.data.Time", "int32", json!(64_264_780), 64_264_780_000),
        ("io.debezium.time.MicroTime", "int64", json!(64_264_780_123i64), 64_264_780_123),
        ("io.debezium.time.NanoTime", "int64", json!(64_264_780_123_456i64), 64_264_780_123),
        ("io.debezium.time.ZonedTime", "string", json!("17:51:04.78-06:00"), 85_864_780_000),
    ];
    for (name, kind, raw, micros) in cases {
        let s = field(kind, Some(name), None);
        assert_eq!(with(&s, raw.clone(), &opts("time")), Ok(Value::Time(micros)), "{name}");
        assert_eq!(with(&s, raw, &opts("long")), Err(Rule::TypeChange), "{name}");
    }
    let micro = field("int64", Some("io.debezium.time.MicroTime"), None);
    assert_eq!(with(&micro, json!(86_400_000_000i64), &opts("time")), Err(Rule::Range), "24:00 is not a time of day");
}

#[test]
fn timestamps_with_schema() {
    let cases = [
        ("io.debezium.time.Timestamp", json!(T_MILLIS)),
        ("org.apache.kafka.connect.data.Timestamp", json!(T_MILLIS)),
        ("io.debezium.time.MicroTimestamp", json!(T_MICROS)),
        ("io.debezium.time.NanoTimestamp", json!(T_MICROS * 1000 + 999)),
    ];
    let plus2 = ReadOptions { assume_offset: FixedOffset::east_opt(7200), ..opts("timestamptz") };
    for (name, raw) in cases {
        let s = field("int64", Some(name), None);
        assert_eq!(with(&s, raw.clone(), &opts("timestamp")), Ok(Value::Timestamp(T_MICROS)), "{name}");
        assert_eq!(with(&s, raw.clone(), &opts("timestamptz")), Ok(Value::TimestampTz(T_MICROS)), "{name}");
        // Debezium's zone-less timestamps are wall-clock time: read in the assumed offset.
        assert_eq!(with(&s, raw.clone(), &plus2), Ok(Value::TimestampTz(T_MICROS - 7_200_000_000)), "{name}");
        assert_eq!(with(&s, raw, &opts("long")), Err(Rule::TypeChange), "{name}");
    }
    let zoned = field("string", Some("io.debezium.time.ZonedTimestamp"), None);
    let utc = 1_410_220_264_780_000; // 2014-09-08T23:51:04.78Z
    assert_eq!(with(&zoned, json!("2014-09-08T17:51:04.78-06:00"), &opts("timestamptz")), Ok(Value::TimestampTz(utc)));
    assert_eq!(with(&zoned, json!("2014-09-08T17:51:04.78-06:00"), &plus2), Ok(Value::TimestampTz(utc)));
    assert_eq!(with(&zoned, json!("2014-09-08T17:51:04.78-06:00"), &opts("timestamp")), Ok(Value::Timestamp(utc)));
    assert_eq!(
        with(&zoned, json!("2014-09-08T17:51:04.78-06:00"), &opts("string")),
        Ok(Value::String("2014-09-08T17:51:04.78-06:00".into()))
    );
    assert_eq!(with(&zoned, json!("not a time"), &opts("timestamptz")), Err(Rule::Parse));
    assert_eq!(with(&zoned, json!(12), &opts("timestamptz")), Err(Rule::Type));
}

#[test]
fn decimals_with_schema() {
    let dec = |scale: &str| {
        field(
            "bytes",
            Some("org.apache.kafka.connect.data.Decimal"),
            Some(json!({"scale": scale, "connect.decimal.precision": "10"})),
        )
    };
    let d = |unscaled: i128, scale: u8| Ok(Value::Decimal { unscaled, scale });
    // "EtaH" = 0x12d687 = 1234567 → 12345.67 at scale 2 (Debezium DBZ-147).
    assert_eq!(with(&dec("2"), json!("EtaH"), &opts("decimal(10,2)")), d(1_234_567, 2));
    assert_eq!(with(&dec("2"), json!("EtaH"), &opts("decimal(10,4)")), d(123_456_700, 4));
    assert_eq!(with(&dec("2"), json!("EtaH"), &opts("decimal(6,2)")), Err(Rule::Precision), "7 digits into 6");
    assert_eq!(with(&dec("2"), json!("EtaH"), &opts("decimal(10,1)")), Err(Rule::Precision), "never rounded");
    assert_eq!(with(&dec("2"), json!("EtaH"), &opts("string")), Ok(Value::String("12345.67".into())));
    assert_eq!(with(&dec("2"), json!("/w=="), &opts("decimal(3,2)")), d(-1, 2), "two's complement");
    // JsonConverter decimal.format=NUMERIC writes a number.
    assert_eq!(with(&dec("2"), json!(12345.67), &opts("decimal(10,2)")), d(1_234_567, 2));
    assert_eq!(with(&dec("2"), json!("E!aH"), &opts("decimal(10,2)")), Err(Rule::Parse));
    assert_eq!(with(&dec("2"), json!("EtaH"), &opts("double")), Err(Rule::TypeChange));
    let vsd = ConnectSchema::from_json(&json!({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal",
        "fields": [{"type": "int32", "field": "scale"}, {"type": "bytes", "field": "value"}]}))
    .expect("schema");
    assert_eq!(with(&vsd, json!({"scale": 2, "value": "EtaH"}), &opts("decimal(12,4)")), d(123_456_700, 4));
    assert_eq!(with(&vsd, json!({"scale": 5, "value": "EtaH"}), &opts("decimal(12,4)")), Err(Rule::Precision));
    // decimal.handling.mode=double and =string.
    let double = field("double", None, None);
    assert_eq!(with(&double, json!(12.3), &opts("decimal(5,2)")), d(1230, 2));
    assert_eq!(with(&double, json!(0.1 + 0.2), &opts("decimal(5,2)")), Err(Rule::Precision));
    let text = field("string", None, None);
    assert_eq!(with(&text, json!("12.30"), &opts("decimal(5,2)")), d(1230, 2));
    assert_eq!(
        with(&text, json!("EtaH"), &opts("decimal(5,2)")),
        Err(Rule::Parse),
        "a plain string is text, not bytes"
    );
    assert_eq!(with(&field("int64", None, None), json!(42), &opts("decimal(5,2)")), d(4200, 2));
}

#[test]
fn debezium_data_types_with_schema() {
    let j = field("string", Some("io.debezium.data.Json"), None);
    assert_eq!(with(&j, json!("{\"a\":2}"), &opts("string")), Ok(Value::String("{\"a\":2}".into())));
    assert_eq!(with(&j, json!("{\"a\":2}"), &opts("long")), Err(Rule::TypeChange));
    let e = field("string", Some("io.debezium.data.Enum"), Some(json!({"allowed": "a,b,c"})));
    assert_eq!(with(&e, json!("b"), &opts("string")), Ok(Value::String("b".into())));
    let set = field("string", Some("io.debezium.data.EnumSet"), Some(json!({"allowed": "a,b,c"})));
    assert_eq!(with(&set, json!("a,b,c"), &opts("string")), Ok(Value::String("a,b,c".into())));
    let u = field("string", Some("io.debezium.data.Uuid"), None);
    let id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    let bytes = *uuid::Uuid::parse_str(id).expect("uuid").as_bytes();
    assert_eq!(with(&u, json!(id), &opts("uuid")), Ok(Value::Uuid(bytes)));
    assert_eq!(with(&u, json!(id), &opts("string")), Ok(Value::String(id.into())));
    assert_eq!(with(&u, json!("a0eebc99"), &opts("uuid")), Err(Rule::Parse));
    let raw16 = field("bytes", None, None);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    assert_eq!(with(&raw16, json!(b64), &opts("uuid")), Ok(Value::Uuid(bytes)));
    let bits = field("bytes", Some("io.debezium.data.Bits"), Some(json!({"length": "2"})));
    assert_eq!(with(&bits, json!("Ag=="), &opts("binary")), Ok(Value::Binary(vec![2])));
    assert_eq!(with(&bits, json!("Ag=="), &opts("string")), Err(Rule::TypeChange));
    let year = field("int32", Some("io.debezium.time.Year"), None);
    assert_eq!(with(&year, json!(2024), &opts("int")), Ok(Value::Int(2024)));
}

#[test]
fn plain_types_with_schema_and_widening() {
    let i16 = field("int16", None, None);
    let i32_ = field("int32", None, None);
    let i64_ = field("int64", None, None);
    assert_eq!(with(&i16, json!(1), &opts("boolean")), Ok(Value::Bool(true)), "MySQL TINYINT(1)");
    assert_eq!(with(&i16, json!(7), &opts("boolean")), Err(Rule::Range));
    assert_eq!(with(&field("boolean", None, None), json!(false), &opts("boolean")), Ok(Value::Bool(false)));
    assert_eq!(with(&i32_, json!(7), &opts("int")), Ok(Value::Int(7)));
    assert_eq!(with(&i32_, json!(7), &opts("long")), Ok(Value::Long(7)), "int32 widens to long");
    assert_eq!(with(&i32_, json!(7), &opts("double")), Ok(Value::Double(7.0)), "int32 widens to double");
    assert_eq!(with(&i32_, json!(7), &opts("string")), Ok(Value::String("7".into())));
    assert_eq!(with(&i64_, json!(7), &opts("int")), Err(Rule::TypeChange), "int64 does not narrow to int");
    assert_eq!(with(&i64_, json!(7), &opts("double")), Err(Rule::TypeChange), "int64 is not exact in a double");
    assert_eq!(with(&i16, json!(7), &opts("float")), Ok(Value::Float(7.0)));
    assert_eq!(with(&field("float", None, None), json!(1.5), &opts("float")), Ok(Value::Float(1.5)));
    assert_eq!(with(&field("double", None, None), json!(1.5), &opts("float")), Err(Rule::TypeChange));
    assert_eq!(
        with(&field("double", None, None), json!("NaN"), &opts("double")).map(|v| v.to_string()),
        Ok("NaN".into())
    );
    assert_eq!(with(&i32_, json!("7"), &opts("int")), Err(Rule::Type), "contradicts its schema");
    assert_eq!(with(&i32_, json!(7.5), &opts("int")), Err(Rule::Type));
    // A plain string may feed any column through its text parser.
    let text = field("string", None, None);
    assert_eq!(with(&text, json!("2016-01-16"), &opts("date")), Ok(DAY_16816));
    assert_eq!(with(&text, json!("42"), &opts("long")), Ok(Value::Long(42)));
    assert_eq!(with(&text, json!("x"), &opts("long")), Err(Rule::Parse));
    assert_eq!(with(&text, json!("t"), &opts("boolean")), Ok(Value::Bool(true)));
    assert_eq!(with(&field("bytes", None, None), json!("aGk="), &opts("binary")), Ok(Value::Binary(b"hi".to_vec())));
    assert_eq!(with(&field("bytes", None, None), json!("aGk="), &opts("string")), Err(Rule::TypeChange));
    let nested = ConnectSchema::from_json(&json!({"type": "struct", "fields": []})).expect("schema");
    assert_eq!(with(&nested, json!({}), &opts("string")), Err(Rule::TypeChange));
    assert_eq!(with(&i32_, Json::Null, &opts("int")), Ok(Value::Null));
}

#[test]
fn temporal_without_schema() {
    assert_eq!(bare(json!(16816), &opts("date")), Ok(DAY_16816), "bare integers are days");
    assert_eq!(bare(json!("2016-01-16"), &opts("date")), Ok(DAY_16816));
    let millis = ReadOptions { unit: Some(TimeUnit::Millis), ..opts("date") };
    assert_eq!(bare(json!(1_452_902_400_000i64), &millis), Ok(DAY_16816));
    let fmt = ReadOptions { formats: vec!["%d/%m/%Y".into()], ..opts("date") };
    assert_eq!(bare(json!("16/01/2016"), &fmt), Ok(DAY_16816));
    assert_eq!(bare(json!("2016-01-16"), &fmt), Err(Rule::Parse), "declared formats replace ISO");
    assert_eq!(bare(json!(true), &opts("date")), Err(Rule::Type));

    let e = read(&json!(64_264_780), None, &opts("time")).expect_err("no unit");
    assert_eq!(e.rule, Rule::Parse);
    assert!(e.reason.contains("declare `unit`"), "{}", e.reason);
    let t = ReadOptions { unit: Some(TimeUnit::Millis), ..opts("time") };
    assert_eq!(bare(json!(64_264_780), &t), Ok(Value::Time(64_264_780_000)));
    let t = ReadOptions { unit: Some(TimeUnit::Micros), ..opts("time") };
    assert_eq!(bare(json!(64_264_780_123i64), &t), Ok(Value::Time(64_264_780_123)));
    assert_eq!(bare(json!("17:51:04.78-06:00"), &opts("time")), Ok(Value::Time(85_864_780_000)));

    // Timestamps by magnitude: the same instant in three units.
    for raw in [json!(T_MILLIS), json!(T_MICROS), json!(T_MICROS * 1000)] {
        assert_eq!(bare(raw.clone(), &opts("timestamp")), Ok(Value::Timestamp(T_MICROS)), "{raw}");
    }
    let secs = ReadOptions { unit: Some(TimeUnit::Seconds), ..opts("timestamptz") };
    assert_eq!(bare(json!(1_410_198_664), &secs), Ok(Value::TimestampTz(1_410_198_664_000_000)));
    let micros = ReadOptions { unit: Some(TimeUnit::Micros), ..opts("timestamp") };
    assert_eq!(bare(json!(5), &micros), Ok(Value::Timestamp(5)), "an explicit unit beats magnitude");
    assert_eq!(
        bare(json!("2014-09-08T17:51:04.78-06:00"), &opts("timestamptz")),
        Ok(Value::TimestampTz(1_410_220_264_780_000))
    );
    let plus2 = ReadOptions { assume_offset: FixedOffset::east_opt(7200), ..opts("timestamptz") };
    assert_eq!(bare(json!("2014-09-08T17:51:04.78"), &plus2), Ok(Value::TimestampTz(T_MICROS - 7_200_000_000)));
    assert_eq!(bare(json!(1.5), &opts("timestamp")), Err(Rule::Type));
}

#[test]
fn decimals_without_schema() {
    let d = |unscaled: i128, scale: u8| Ok(Value::Decimal { unscaled, scale });
    let o = opts("decimal(10,2)");
    assert_eq!(bare(json!("12.30"), &o), d(1230, 2));
    assert_eq!(bare(json!("12.3"), &o), d(1230, 2));
    assert_eq!(bare(json!(12.3), &o), d(1230, 2), "a double by its shortest text");
    assert_eq!(bare(json!(12), &o), d(1200, 2));
    assert_eq!(bare(json!("EtaH"), &o), d(1_234_567, 2), "not decimal text: base64 at the contract's scale");
    assert_eq!(bare(json!({"scale": 2, "value": "EtaH"}), &o), d(1_234_567, 2), "VariableScaleDecimal");
    assert_eq!(bare(json!("12.345"), &o), Err(Rule::Precision));
    assert_eq!(bare(json!("123456789.5"), &o), Err(Rule::Precision), "11 digits at scale 2");
    assert_eq!(bare(json!("#"), &o), Err(Rule::Parse));
    assert_eq!(bare(json!(true), &o), Err(Rule::Type));
    let text = ReadOptions { encoding: Encoding::Text, ..o.clone() };
    assert_eq!(bare(json!("EtaH"), &text), Err(Rule::Parse));
    // "1234" is decimal text in auto mode, but base64 bytes d7 6d f8 when forced.
    let b64 = ReadOptions { encoding: Encoding::Base64, ..o.clone() };
    assert_eq!(bare(json!("1234"), &o), d(123_400, 2));
    assert_eq!(bare(json!("1234"), &b64), d(-2_658_824, 2));
}

#[test]
fn other_types_without_schema() {
    assert_eq!(bare(json!(true), &opts("boolean")), Ok(Value::Bool(true)));
    assert_eq!(bare(json!(0), &opts("boolean")), Ok(Value::Bool(false)));
    assert_eq!(bare(json!("f"), &opts("boolean")), Ok(Value::Bool(false)));
    assert_eq!(bare(json!(2_147_483_648i64), &opts("int")), Err(Rule::Range));
    assert_eq!(bare(json!("-7"), &opts("int")), Ok(Value::Int(-7)));
    assert_eq!(bare(json!(7.0), &opts("long")), Err(Rule::Type), "no silent truncation of fractions");
    assert_eq!(bare(json!(2.75), &opts("double")), Ok(Value::Double(2.75)));
    assert_eq!(bare(json!("3.5"), &opts("float")), Ok(Value::Float(3.5)));
    assert_eq!(bare(json!(3), &opts("string")), Ok(Value::String("3".into())));
    assert_eq!(bare(json!({"a": [1]}), &opts("string")), Ok(Value::String("{\"a\":[1]}".into())));
    assert_eq!(bare(json!("aGk="), &opts("binary")), Ok(Value::Binary(b"hi".to_vec())));
    let hex = ReadOptions { encoding: Encoding::Hex, ..opts("binary") };
    assert_eq!(bare(json!("\\x6869"), &hex), Ok(Value::Binary(b"hi".to_vec())));
    let text = ReadOptions { encoding: Encoding::Text, ..opts("binary") };
    assert_eq!(bare(json!("hi"), &text), Ok(Value::Binary(b"hi".to_vec())));
    assert_eq!(bare(json!(5), &opts("binary")), Err(Rule::Type));
    assert_eq!(bare(json!(5), &opts("uuid")), Err(Rule::Type));
    assert_eq!(bare(json!([1]), &opts("long")), Err(Rule::Type));
}
