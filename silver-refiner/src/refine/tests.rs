//! The refiner on synthetic rows: each cleansing step, each rule, extras,
//! missing columns, placeholders and key extraction.

use serde_json::{Map, Value as Json, json};

use super::{RefinedRow, Refiner};
use crate::connect::ConnectSchema;
use crate::contract::Contract;
use crate::reject::{Reject, Rule};
use crate::value::Value;

const CONTRACT: &str = r#"
name = "orders"
version = 7
source = "bronze.orders"
key = ["order_id", "region"]
ignore = ["__deleted"]

[[column]]
name = "order_id"
type = "long"

[[column]]
name = "region"
type = "string"
trim = true
case = "lower"

[[column]]
name = "status"
type = "string"
trim = true
empty_as_null = true
case = "upper"
allowed = ["NEW", "PAID", "SHIPPED"]
default = "NEW"

[[column]]
name = "amount"
type = "decimal(8,2)"
source = "amount_cents"
factor = "0.01"
min = "0"
max = "100000"

[[column]]
name = "weight_g"
type = "long"
source = "weight_kg"
factor = 1000

[[column]]
name = "ratio"
type = "double"
factor = 0.5

[[column]]
name = "sku"
type = "string"
regex = "^[A-Z]{2}-[0-9]+$"
max_length = 8

[[column]]
name = "placed_at"
type = "timestamptz"
formats = ["%d.%m.%Y %H:%M"]
assume_offset = "+02:00"

[[column]]
name = "note"
type = "string"
not_null = true
default = "-"
"#;

fn refiner() -> Refiner {
    Refiner::new(Contract::from_toml_str(CONTRACT).expect("the test contract is valid"))
}

fn obj(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn good() -> Json {
    json!({
        "order_id": 42, "region": "  EU-West ", "status": " paid ", "amount_cents": 1999, "weight_kg": 3,
        "ratio": 3.0, "sku": "AB-12", "placed_at": "08.09.2014 17:51", "note": "gift", "__deleted": "false"
    })
}

fn refine(row: Json) -> Result<RefinedRow, Reject> {
    refiner().refine(&obj(row), None)
}

fn reject(edit: impl FnOnce(&mut Map<String, Json>)) -> (Rule, String) {
    let mut row = obj(good());
    edit(&mut row);
    let r = refiner().refine(&row, None).expect_err("must be rejected");
    (r.rule, r.column.unwrap_or_default())
}

#[test]
fn cleanses_every_column() {
    let row = refine(good()).expect("a good row");
    assert_eq!(
        row.values,
        [
            Value::Long(42),
            Value::String("eu-west".into()),             // trimmed, lower-cased
            Value::String("PAID".into()),                // trimmed, upper-cased, allowed
            Value::Decimal { unscaled: 1999, scale: 2 }, // 1999 cents × 0.01 = 19.99 exactly
            Value::Long(3000),                           // kg × 1000
            Value::Double(1.5),                          // × 0.5
            Value::String("AB-12".into()),
            Value::TimestampTz(1_410_191_460_000_000), // 17:51 at +02:00 = 15:51 UTC
            Value::String("gift".into()),
        ]
    );
    assert_eq!(row.extra, None, "__deleted is ignored, not extra");
    assert!(row.extra_columns.is_empty());
    assert_eq!(refiner().row_key(&row), [&Value::Long(42), &Value::String("eu-west".into())]);
}

#[test]
fn defaults_fill_nulls_missing_and_empty_values() {
    let mut row = obj(good());
    row.insert("status".into(), json!("   "));
    row.remove("note");
    row.remove("amount_cents");
    let out = refiner().refine(&row, None).expect("defaults apply");
    assert_eq!(out.values[2], Value::String("NEW".into()), "blank → empty → null → default");
    assert_eq!(out.values[8], Value::String("-".into()), "missing → null → default");
    assert_eq!(out.values[3], Value::Null, "a missing column is null");
    row.insert("status".into(), Json::Null);
    assert_eq!(refiner().refine(&row, None).map(|r| r.values[2].clone()), Ok(Value::String("NEW".into())));
}

#[test]
fn every_rule_rejects_with_its_name_and_column() {
    assert_eq!(reject(|r| drop(r.remove("order_id"))), (Rule::NotNull, "order_id".into()), "keys are not null");
    assert_eq!(reject(|r| drop(r.insert("region".into(), Json::Null))), (Rule::NotNull, "region".into()));
    assert_eq!(reject(|r| drop(r.insert("status".into(), json!("lost")))), (Rule::Allowed, "status".into()));
    assert_eq!(reject(|r| drop(r.insert("amount_cents".into(), json!(-1)))), (Rule::Min, "amount".into()));
    assert_eq!(reject(|r| drop(r.insert("amount_cents".into(), json!(10_000_001)))), (Rule::Max, "amount".into()));
    assert_eq!(
        reject(|r| drop(r.insert("amount_cents".into(), json!(1_000_000_000)))),
        (Rule::Precision, "amount".into()),
        "10000000.00 has 10 digits, decimal(8,2) holds 8"
    );
    assert_eq!(
        reject(|r| drop(r.insert("amount_cents".into(), json!("19.5")))),
        (Rule::Precision, "amount".into()),
        "19.5 cents is 0.195: a lost digit, never rounded"
    );
    assert_eq!(reject(|r| drop(r.insert("sku".into(), json!("ab-12")))), (Rule::Regex, "sku".into()));
    assert_eq!(reject(|r| drop(r.insert("sku".into(), json!("AB-123456")))), (Rule::MaxLength, "sku".into()));
    assert_eq!(reject(|r| drop(r.insert("placed_at".into(), json!("2014-09-08")))), (Rule::Parse, "placed_at".into()));
    assert_eq!(reject(|r| drop(r.insert("order_id".into(), json!({"x": 1})))), (Rule::Type, "order_id".into()));
    assert_eq!(
        reject(|r| drop(r.insert("weight_kg".into(), json!(i64::MAX / 10)))),
        (Rule::Range, "weight_g".into()),
        "the factor overflows a long"
    );
    let r = refine(json!({"order_id": 1, "region": "eu", "amount_cents": -5})).expect_err("below min");
    assert_eq!(r.to_string(), "rule `min` on column `amount`: -0.05 is less than the minimum 0.00");
}

#[test]
fn unknown_source_columns_go_to_extra() {
    let mut row = obj(good());
    row.insert("middle_name".into(), json!("L"));
    row.insert("tags".into(), json!(["a", {"b": 1.5}]));
    let out = refiner().refine(&row, None).expect("extra columns are not an error");
    assert_eq!(out.extra_columns, ["middle_name", "tags"]);
    let extra: Json = serde_json::from_str(out.extra.as_deref().expect("_extra")).expect("_extra is JSON");
    assert_eq!(extra, json!({"middle_name": "L", "tags": ["a", {"b": 1.5}]}));
    // A column the contract reads under another name is not extra: amount is read from amount_cents.
    assert!(!out.extra_columns.iter().any(|c| c == "amount_cents"));
}

#[test]
fn the_schema_decides_when_present() {
    let schema = ConnectSchema::from_json(&json!({"type": "struct", "fields": [
        {"type": "int64", "field": "order_id"},
        {"type": "string", "field": "region"},
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp", "field": "placed_at"},
        {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "0"}, "field": "amount_cents"}
    ]}))
    .expect("schema");
    let row =
        obj(json!({"order_id": 1, "region": "eu", "placed_at": 1_410_198_664_780_000i64, "amount_cents": "B88="}));
    let out = refiner().refine(&row, Some(&schema)).expect("typed by the schema");
    assert_eq!(out.values[7], Value::TimestampTz(1_410_198_664_780_000 - 7_200_000_000), "wall time at +02:00");
    assert_eq!(out.values[3], Value::Decimal { unscaled: 1999, scale: 2 }, "0x07cf = 1999 cents");
    // The source column became a string with a logical type: a type change.
    let changed = ConnectSchema::from_json(&json!({"type": "struct", "fields": [
        {"type": "string", "name": "io.debezium.data.Json", "field": "order_id"}
    ]}))
    .expect("schema");
    let r = refiner().refine(&obj(json!({"order_id": "{}", "region": "eu"})), Some(&changed)).expect_err("type change");
    assert_eq!((r.rule, r.column.as_deref()), (Rule::TypeChange, Some("order_id")));
    assert!(r.reason.contains("string (io.debezium.data.Json)") && r.reason.contains("long"), "{}", r.reason);
}

#[test]
fn unavailable_placeholders_are_rejected_not_stored() {
    let (rule, column) = reject(|r| drop(r.insert("note".into(), json!("__debezium_unavailable_value"))));
    assert_eq!((rule, column.as_str()), (Rule::Unavailable, "note"));
    // The same placeholder as JsonConverter writes it for a bytes column.
    let (rule, _) = reject(|r| drop(r.insert("sku".into(), json!("X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="))));
    assert_eq!(rule, Rule::Unavailable);
}

#[test]
fn keys_of_deletes_match_the_keys_of_upserts() {
    let r = refiner();
    let upsert = r.refine(&obj(good()), None).expect("good row");
    let stored: Vec<Value> = r.row_key(&upsert).into_iter().cloned().collect();
    // A delete's `before` holding only the key, with the same untrimmed, mixed-case text.
    let before = obj(json!({"order_id": 42, "region": "  EU-West "}));
    assert_eq!(r.key_of(&before, None), Ok(stored.clone()));
    // Rules other than not_null do not stop a delete.
    let mut tight = obj(good());
    tight.insert("amount_cents".into(), json!(-1));
    assert_eq!(r.key_of(&tight, None), Ok(stored.clone()));
    // Message keys: with a schema, bare, and null.
    let key = json!({"schema": {"type": "struct", "fields": [{"type": "int64", "field": "order_id"},
        {"type": "string", "field": "region"}]}, "payload": {"order_id": 42, "region": "eu-west"}});
    assert_eq!(r.key_of_message_key(&key), Ok(stored.clone()));
    assert_eq!(r.key_of_message_key(&json!({"order_id": 42, "region": "EU-WEST"})), Ok(stored));
    assert_eq!(r.key_of_message_key(&Json::Null).map_err(|e| e.rule), Err(Rule::NotNull));
    assert_eq!(r.key_of_message_key(&json!(42)).map_err(|e| e.rule), Err(Rule::Type), "two key columns");
    let missing = r.key_of(&obj(json!({"order_id": 42})), None).expect_err("region missing");
    assert_eq!((missing.rule, missing.column.as_deref()), (Rule::NotNull, Some("region")));
}

#[test]
fn single_column_keys_from_scalar_message_keys() {
    let r = Refiner::new(
        Contract::from_toml_str(
            "name = \"c\"\nversion = 1\nsource = \"bronze.c\"\nkey = \"id\"\n[[column]]\nname = \"id\"\ntype = \"uuid\"",
        )
        .expect("valid"),
    );
    let id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    let bytes = *uuid::Uuid::parse_str(id).expect("uuid").as_bytes();
    assert_eq!(r.key_of_message_key(&json!(id)), Ok(vec![Value::Uuid(bytes)]));
    let with_schema = json!({"schema": {"type": "string", "name": "io.debezium.data.Uuid"}, "payload": id});
    assert_eq!(r.key_of_message_key(&with_schema), Ok(vec![Value::Uuid(bytes)]));
    let bad = json!({"schema": {"type": "nope"}, "payload": id});
    assert_eq!(r.key_of_message_key(&bad).map_err(|e| e.rule), Err(Rule::Parse));
}

/// [`Refiner::refine_text`] (the image's text read into the columns) gives what
/// [`Refiner::refine`] gives for the parsed image, on good rows, every reject,
/// extras, ignored fields, odd spacing and number forms; and declines (`None`)
/// the texts it leaves to serde_json: a repeated field, an escaped name.
#[test]
fn the_text_path_refines_as_the_map_path() {
    let r = refiner();
    let good = good().to_string();
    // Edits of the good row: (what, into what).
    let edits = [
        ("\"gift\"", "\"g\\u00efft \\\"x\\\"\""),
        ("\"__deleted\":\"false\"", "\"new_col\":{\"a\":[1,2.5e3,null]},\"other\":-0"),
        ("1999", "1.999e3"),
        ("1999", "18446744073709551615"),
        ("3.0", "3"),
        ("\"gift\"", "null"),
        (",\"note\":\"gift\"", ""),
        ("\" paid \"", "\"\""),
        ("\" paid \"", "\"lost\""),
        ("42", "\"42\""),
        ("42", "true"),
        ("\"  EU-West \"", "[1]"),
    ];
    let mut texts = vec![good.clone(), good.replace(':', " : ").replace(',', " ,\n\t")];
    texts.extend(edits.iter().map(|(from, to)| good.replace(from, to)));
    texts.extend([
        r#"{"order_id":1,"region":"a","note":"x","extra":1,"extra2":"\u00e9"}"#.to_string(),
        r#"{"region":"a","order_id":1}"#.to_string(),
        "{}".to_string(),
    ]);
    texts.push(texts[3].replace("\"other\"", "\"ot\\u0068er\""));
    texts.push(format!("{},\"note\":\"again\"}}", good.trim_end_matches('}')));
    texts.push(format!("{},\"new_col\":1,\"new_col\":2}}", good.trim_end_matches('}')));
    let (mut read, mut keys_read) = (0, 0);
    for text in &texts {
        let map = obj(serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}")));
        match r.refine_text(text) {
            Some(row) => {
                assert_eq!(format!("{row:?}"), format!("{:?}", r.refine(&map, None)), "{text}");
                read += 1;
            }
            None => assert!(
                text.contains("\\u0068") || text.matches("note").count() > 1 || text.matches("new_col").count() > 1,
                "{text}: declined"
            ),
        }
        if let Some(key) = r.key_of_text(text) {
            assert_eq!(key, r.key_of(&map, None), "{text}");
            keys_read += 1;
        }
    }
    assert_eq!(read, texts.len() - 3, "every text but the last three read by the text path");
    // The key path declines only the escaped name and the repeated column; a
    // repeated field no column reads does not matter to a key.
    assert_eq!(keys_read, texts.len() - 2);
}
