//! The refiner on the real Debezium fixtures (`../shared/fixtures/debezium`):
//! exact decoded values of every logical type found there, with the schema
//! block and with it stripped, keys of deletes, extra columns, placeholders.

use serde_json::{Map, Value as Json};

use super::{RefinedRow, Refiner};
use crate::connect::{ConnectSchema, Logical};
use crate::contract::{ColumnType, Contract};
use crate::fixtures;
use crate::reject::{Reject, Rule};
use crate::value::Value;

/// One change event of a fixture file.
struct Event {
    where_: String,
    key: Option<Json>,
    /// The value's envelope schema, when the value carried one.
    schema: Option<ConnectSchema>,
    before: Option<Map<String, Json>>,
    after: Option<Map<String, Json>>,
}

impl Event {
    fn row_schema(&self) -> Option<&ConnectSchema> {
        self.schema.as_ref().map(ConnectSchema::row)
    }

    fn after(&self) -> &Map<String, Json> {
        self.after.as_ref().unwrap_or_else(|| panic!("{}: no after image", self.where_))
    }

    fn before(&self) -> &Map<String, Json> {
        self.before.as_ref().unwrap_or_else(|| panic!("{}: no before image", self.where_))
    }
}

/// The events of a fixture file (`None`: fixtures absent, test skipped).
fn events(file: &str) -> Option<Vec<Event>> {
    let lines = fixtures::lines(file)?;
    Some(
        lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let where_ = format!("{file}:{}", i + 1);
                let value = line.get("value").cloned().unwrap_or(Json::Null);
                let (payload, schema) = match &value {
                    Json::Object(o) if o.contains_key("payload") && o.contains_key("schema") => {
                        // The docs print some schemas as `{}`: no schema.
                        let schema = o
                            .get("schema")
                            .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()))
                            .map(|s| ConnectSchema::from_json(s).unwrap_or_else(|e| panic!("{where_}: {e}")));
                        (o.get("payload").cloned().unwrap_or(Json::Null), schema)
                    }
                    other => (other.clone(), None),
                };
                let image = |name: &str| payload.get(name).and_then(Json::as_object).cloned();
                // A flattened row (ExtractNewRecordState) has none of the envelope,
                // schema-change or transaction-metadata fields.
                let meta = ["op", "after", "before", "source", "ddl", "databaseName", "tableChanges", "status"];
                let is_row = payload.as_object().is_some_and(|o| !meta.iter().any(|m| o.contains_key(*m)));
                let after = if is_row { payload.as_object().cloned() } else { image("after") };
                Event { where_, key: line.get("key").cloned(), schema, before: image("before"), after }
            })
            .collect(),
    )
}

fn contract(toml: &str) -> Refiner {
    Refiner::new(Contract::from_toml_str(toml).unwrap_or_else(|e| panic!("test contract: {e}")))
}

/// Refines an event's after image with its schema, and with the schema block
/// stripped; both readings must agree.
fn both(r: &Refiner, e: &Event) -> RefinedRow {
    let with = r.refine(e.after(), e.row_schema()).unwrap_or_else(|x| panic!("{} with schema: {x}", e.where_));
    let without = r.refine(e.after(), None).unwrap_or_else(|x| panic!("{} without schema: {x}", e.where_));
    assert_eq!(
        (&with.values, &with.extra, &with.extra_columns),
        (&without.values, &without.extra, &without.extra_columns),
        "{}: the schema block changed the values",
        e.where_
    );
    assert!(without.evolvable.is_empty(), "{}: only a schema types an unknown column", e.where_);
    let text = serde_json::to_string(e.after()).expect("JSON");
    let read = r.refine_text(&text).unwrap_or_else(|| panic!("{}: the text path did not read the image", e.where_));
    assert_eq!(read.as_ref(), Ok(&without), "{}: the text path and the map path disagree", e.where_);
    with
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

const LOGICAL: &str = "mysql_it_0.4_logical_types_with_schema.jsonl";

#[test]
fn debezium_date_orders() {
    let Some(ev) = events(LOGICAL) else { return };
    let r = contract(
        r#"name = "orders"
        version = 1
        source = "bronze.orders"
        key = "order_number"
        partition = { column = "order_date", transform = "day" }
        [[column]]
        name = "order_number"
        type = "int"
        [[column]]
        name = "order_date"
        type = "date"
        [[column]]
        name = "purchaser"
        type = "long"
        [[column]]
        name = "quantity"
        type = "int"
        min = 1"#,
    );
    let row = both(&r, &ev[0]);
    // io.debezium.time.Date 16816 = 2016-01-16.
    assert_eq!(row.values, [Value::Int(10001), Value::Date(16816), Value::Long(1001), Value::Int(1)]);
    assert_eq!(row.values[1].to_string(), "2016-01-16");
    assert_eq!(row.extra_columns, ["product_id"]);
    assert_eq!(row.extra.as_deref(), Some(r#"{"product_id":102}"#));
    let key = ev[0].key.as_ref().expect("the orders event has a key");
    assert_eq!(r.key_of_message_key(key), Ok(vec![Value::Int(10001)]));
}

#[test]
fn debezium_time_timestamp_and_zoned_timestamp() {
    let Some(ev) = events(LOGICAL) else { return };
    // Without a schema the contract says how to read bare integers: c2 is
    // milliseconds (io.debezium.time.Time), c3 is found by magnitude.
    let r = contract(
        r#"name = "fractest"
        version = 1
        source = "bronze.fractest"
        key = "c1"
        [[column]]
        name = "c1"
        type = "date"
        [[column]]
        name = "c2"
        type = "time"
        unit = "millis"
        [[column]]
        name = "c3"
        type = "timestamp"
        [[column]]
        name = "c4"
        type = "timestamptz""#,
    );
    let row = both(&r, &ev[1]);
    assert_eq!(
        row.values,
        [
            Value::Date(16321),                        // 2014-09-08
            Value::Time(64_264_780_000),               // 17:51:04.780
            Value::Timestamp(1_410_198_664_780_000),   // 2014-09-08T17:51:04.780
            Value::TimestampTz(1_410_220_264_780_000), // 17:51:04.78-06:00 = 23:51:04.78Z
        ]
    );
    assert_eq!(
        row.values.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["2014-09-08", "17:51:04.780", "2014-09-08 17:51:04.780", "2014-09-08T23:51:04.780+00:00"]
    );
    // The same row into a wall-clock timestamp column keeps the UTC wall time.
    let wall = contract(
        r#"name = "f"
        version = 1
        source = "bronze.f"
        key = "c4"
        [[column]]
        name = "c4"
        type = "timestamp""#,
    );
    assert_eq!(both(&wall, &ev[1]).values, [Value::Timestamp(1_410_220_264_780_000)]);
    // Zero values (DBZ-114): null date and timestamp, midnight, the epoch at -06:00.
    let zero = contract(
        r#"name = "z"
        version = 1
        source = "bronze.z"
        key = "c2"
        [[column]]
        name = "c1"
        type = "date"
        [[column]]
        name = "c2"
        type = "time"
        unit = "millis"
        [[column]]
        name = "c3"
        type = "timestamp"
        [[column]]
        name = "c4"
        type = "timestamptz""#,
    );
    assert_eq!(
        both(&zero, &ev[5]).values,
        [Value::Null, Value::Time(0), Value::Null, Value::TimestampTz(21_600_000_000)]
    );
    // Without `unit`, a bare time integer is refused (millis and micros look alike); with the schema it is not needed.
    let no_unit = contract(
        r#"name = "f"
        version = 1
        source = "bronze.f"
        key = "c2"
        [[column]]
        name = "c2"
        type = "time""#,
    );
    assert_eq!(
        no_unit.refine(ev[1].after(), ev[1].row_schema()).map(|r| r.values),
        Ok(vec![Value::Time(64_264_780_000)])
    );
    assert_eq!(no_unit.refine(ev[1].after(), None).map_err(|r| r.rule), Err(Rule::Parse));
}

#[test]
fn debezium_enum_enumset_bits_and_json() {
    let Some(ev) = events(LOGICAL) else { return };
    let enums = contract(
        r#"name = "e"
        version = 1
        source = "bronze.e"
        key = "c1"
        [[column]]
        name = "c1"
        type = "string"
        allowed = ["a", "b", "c"]
        [[column]]
        name = "c2"
        type = "string""#,
    );
    assert_eq!(both(&enums, &ev[2]).values, [s("a"), s("a,b,c")]);
    let bits = contract(
        r#"name = "b"
        version = 1
        source = "bronze.b"
        key = "c1"
        [[column]]
        name = "c1"
        type = "boolean"
        [[column]]
        name = "c2"
        type = "binary"
        [[column]]
        name = "c3"
        type = "binary"
        [[column]]
        name = "c4"
        type = "binary"
        max_length = 8"#,
    );
    assert_eq!(
        both(&bits, &ev[3]).values,
        [
            Value::Bool(true),
            Value::Binary(vec![0x02]),
            Value::Binary(vec![0x40]),
            Value::Binary(vec![0xdb, 0x0e, 0x6e, 0x01, 0, 0, 0, 0]),
        ]
    );
    let json = contract(
        r#"name = "j"
        version = 1
        source = "bronze.j"
        key = "id"
        [[column]]
        name = "id"
        type = "long"
        [[column]]
        name = "json"
        type = "string"
        [[column]]
        name = "expectedJdbcStr"
        type = "string""#,
    );
    let row = both(&json, &ev[6]);
    assert_eq!(row.values, [Value::Long(2), s("{\"a\":2}"), s("{\"a\": 2}")]);
    assert_eq!(row.extra_columns, ["expectedBinlogStr"]);
}

#[test]
fn connect_decimal_exact_digits_or_refused() {
    let Some(ev) = events(LOGICAL) else { return };
    let decimal = |ty: &str| {
        contract(&format!(
            "name = \"d\"\nversion = 1\nsource = \"bronze.d\"\nkey = \"pk_column\"\n[[column]]\nname = \"pk_column\"\n\
             type = \"int\"\n[[column]]\nname = \"decimal_value\"\ntype = \"{ty}\""
        ))
    };
    // "EtaH" at scale 2 (schema parameter; without a schema, the contract's scale) = 12345.67.
    let row = both(&decimal("decimal(7,2)"), &ev[4]);
    assert_eq!(row.values, [Value::Int(1), Value::Decimal { unscaled: 1_234_567, scale: 2 }]);
    assert_eq!(row.values[1].to_string(), "12345.67");
    let e = &ev[4];
    // With the schema a wider scale keeps the value exactly.
    assert_eq!(
        decimal("decimal(9,4)").refine(e.after(), e.row_schema()).map(|r| r.values[1].clone()),
        Ok(Value::Decimal { unscaled: 123_456_700, scale: 4 })
    );
    let refused: Reject = decimal("decimal(6,2)").refine(e.after(), e.row_schema()).expect_err("7 digits");
    assert_eq!((refused.rule, refused.column.as_deref()), (Rule::Precision, Some("decimal_value")));
    let refused = decimal("decimal(9,1)").refine(e.after(), e.row_schema()).expect_err("a lost digit");
    assert_eq!(refused.rule, Rule::Precision, "{refused}");
    assert!(refused.reason.contains("12345.67"), "{}", refused.reason);
    let changed = decimal("double").refine(e.after(), e.row_schema()).expect_err("Decimal into double");
    assert_eq!(changed.rule, Rule::TypeChange);
}

const CUSTOMERS: &str = r#"name = "customers"
version = 1
source = "bronze.customers"
key = "id"
[[column]]
name = "id"
type = "long"
[[column]]
name = "first_name"
type = "string"
[[column]]
name = "last_name"
type = "string"
[[column]]
name = "email"
type = "string"
regex = "^[^@]+@[^@]+$"
"#;

#[test]
fn customers_with_and_without_schema() {
    let r = contract(CUSTOMERS);
    let anne = |id: i64| vec![Value::Long(id), s("Anne"), s("Kretchmar"), s("annek@noanswer.org")];
    let files = [
        ("postgres_docs_create_with_schema.jsonl", 0, 1),
        ("mysql_serde_test_with_schema.jsonl", 0, 1004),
        ("mysql_serde_test_without_schema.jsonl", 0, 1004),
        ("mysql_docs_key_and_create_with_schema.jsonl", 1, 1004),
        ("mysql_tutorial_with_schema.jsonl", 0, 1004),
        ("mysql_engine_wasm_example_without_schema.jsonl", 0, 1004),
        ("postgres_camel_example_snapshot_payload_only.jsonl", 3, 1004),
        ("unwrapped_serde_test.jsonl", 0, 1004),
    ];
    for (file, line, id) in files {
        let Some(ev) = events(file) else { return };
        let row = both(&r, &ev[line]);
        assert_eq!(row.values, anne(id), "{file}");
        assert_eq!(row.extra, None, "{file}");
    }
    // The tutorial's two inserts carry their key with a schema.
    let Some(ev) = events("mysql_tutorial_with_schema.jsonl") else { return };
    let keys: Vec<_> = ev.iter().filter_map(|e| e.key.as_ref()).map(|k| r.key_of_message_key(k)).collect();
    assert_eq!(keys, [Ok(vec![Value::Long(1004)]), Ok(vec![Value::Long(1005)]), Ok(vec![Value::Long(1006)])]);
}

#[test]
fn an_added_source_column_goes_to_extra() {
    let Some(ev) = events("mysql_serde_test_without_schema.jsonl") else { return };
    let r = contract(CUSTOMERS);
    let row = r.refine(ev[2].after(), None).expect("extra columns are kept, not rejected");
    assert_eq!(row.values[1], s("Anne"));
    assert_eq!(row.extra_columns, ["middle_name"]);
    assert_eq!(row.extra.as_deref(), Some(r#"{"middle_name":"L"}"#));
    // The old image's key is the same key.
    assert_eq!(r.key_of(ev[2].before(), None), Ok(vec![Value::Long(1004)]));
}

#[test]
fn keys_of_deletes_and_tombstones() {
    let r = contract(CUSTOMERS);
    let Some(ev) = events("mysql_tutorial_update_delete_tombstone.jsonl") else { return };
    let delete = &ev[1];
    assert!(delete.after.is_none());
    assert_eq!(r.key_of(delete.before(), None), Ok(vec![Value::Long(1004)]));
    for e in &ev {
        let key = e.key.as_ref().expect("every tutorial message has a key");
        assert_eq!(r.key_of_message_key(key), Ok(vec![Value::Long(1004)]), "{}", e.where_);
    }
    // PostgreSQL REPLICA IDENTITY DEFAULT: the delete's before holds only the key.
    let Some(ev) = events("postgres_docs_update_delete_truncate_message_payload_only.jsonl") else { return };
    assert_eq!(ev[1].before().len(), 1);
    assert_eq!(r.key_of(ev[1].before(), None), Ok(vec![Value::Long(1)]));
    assert_eq!(r.key_of_message_key(&Json::Null).map_err(|e| e.rule), Err(Rule::NotNull), "a truncate has no key");
    // A flattened delete (delete.tombstone.handling.mode=rewrite) with `__deleted` ignored.
    let Some(ev) = events("unwrapped_docs_delete_rewrite.jsonl") else { return };
    let flat = contract(
        r#"name = "t"
        version = 1
        source = "bronze.t"
        key = "pk"
        ignore = ["__deleted"]
        [[column]]
        name = "pk"
        type = "long"
        [[column]]
        name = "cola"
        type = "string""#,
    );
    let row = flat.refine(ev[0].after(), None).expect("a flattened row");
    assert_eq!((row.values, row.extra), (vec![Value::Long(2), Value::Null], None));
    assert_eq!(flat.key_of(ev[0].after(), None), Ok(vec![Value::Long(2)]));
}

#[test]
fn toast_placeholders_are_rejected() {
    let Some(ev) = events("postgres_toast_blog_update_without_schema.jsonl") else { return };
    let r = contract(&format!("{CUSTOMERS}[[column]]\nname = \"biography\"\ntype = \"string\"\n"));
    let e = r.refine(ev[0].after(), None).expect_err("the biography was not sent");
    assert_eq!((e.rule, e.column.as_deref()), (Rule::Unavailable, Some("biography")));
}

#[test]
fn doubles_into_decimals_exactly() {
    let Some(ev) = events("postgres_openlineage_example_without_schema.jsonl") else { return };
    let r = contract(
        r#"name = "products"
        version = 1
        source = "bronze.products"
        key = "id"
        [[column]]
        name = "id"
        type = "int"
        [[column]]
        name = "weight"
        type = "decimal(5,2)"
        [[column]]
        name = "weight_d"
        source = "weight"
        type = "double"
        [[column]]
        name = "name"
        type = "string"
        case = "upper"
        max_length = 7"#,
    );
    let row = r.refine(ev[0].after(), None).expect("a product");
    assert_eq!(
        row.values[1..],
        [Value::Decimal { unscaled: 314, scale: 2 }, Value::Double("3.14".parse().expect("a double")), s("SCOOTER")]
    );
    assert_eq!(row.extra_columns, ["description"]);
}

/// Whether a name can be a contract column.
fn identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The contract `lakehouse contract infer` would write for a row schema:
/// every field typed from its Connect schema, with the unit of Debezium's
/// time types so that the same events also read right without the schema.
fn inferred(schema: &ConnectSchema, after: &Map<String, Json>) -> Option<(Refiner, Vec<String>)> {
    let mut columns = String::new();
    let mut skipped = Vec::new();
    let mut key = None;
    for (name, field) in schema.fields() {
        let Some(ty) = ColumnType::from_connect(field).filter(|_| identifier(name)) else {
            skipped.push(name.to_string());
            continue;
        };
        let unit = match field.logical() {
            Logical::TimeMillis | Logical::TimestampMillis => "unit = \"millis\"\n",
            Logical::TimeMicros | Logical::TimestampMicros => "unit = \"micros\"\n",
            Logical::TimeNanos | Logical::TimestampNanos => "unit = \"nanos\"\n",
            _ => "",
        };
        columns.push_str(&format!("[[column]]\nname = \"{name}\"\ntype = \"{ty}\"\n{unit}"));
        let keyable = !matches!(ty, ColumnType::Float | ColumnType::Double);
        if key.is_none() && keyable && after.get(name).is_some_and(|v| !v.is_null()) {
            key = Some(name.to_string());
        }
    }
    let toml = format!("name = \"x\"\nversion = 1\nsource = \"bronze.x\"\nkey = \"{}\"\n{columns}", key?);
    Some((contract(&toml), skipped))
}

/// Every data event with a schema block in every fixture file: the contract
/// inferred from its schema refines it with the schema and without it to the
/// same values, keeps what it cannot type in `_extra`, and builds a batch.
#[test]
fn every_fixture_event_refines_with_its_inferred_contract() {
    let Some(dir) = fixtures::dir() else { return };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    files.sort();
    let mut refined = 0;
    let mut seen_logical = std::collections::BTreeSet::new();
    for file in &files {
        let Some(ev) = events(file) else { return };
        for e in ev.iter().filter(|e| e.schema.is_some() && e.after.is_some()) {
            let schema = e.row_schema().expect("checked");
            let Some((r, skipped)) = inferred(schema, e.after()) else { continue };
            for (_, f) in schema.fields() {
                seen_logical.insert(f.name().unwrap_or(f.kind().as_str()).to_string());
            }
            let row = both(&r, e);
            assert_eq!(row.extra_columns, skipped, "{}", e.where_);
            let mut batch = r.batch_builder(1);
            batch.append(&row).unwrap_or_else(|x| panic!("{}: {x}", e.where_));
            let b = batch.finish().unwrap_or_else(|x| panic!("{}: {x}", e.where_));
            assert_eq!((b.num_rows(), b.schema()), (1, r.arrow_schema()));
            refined += 1;
        }
    }
    eprintln!("{refined} fixture events refined; source types seen: {seen_logical:?}");
    assert!(refined >= 120, "only {refined} fixture events with a schema were refined");
    for expected in [
        "io.debezium.time.Date",
        "io.debezium.time.Time",
        "io.debezium.time.Timestamp",
        "io.debezium.time.ZonedTimestamp",
        "org.apache.kafka.connect.data.Decimal",
        "io.debezium.data.Json",
        "io.debezium.data.Enum",
        "io.debezium.data.EnumSet",
        "io.debezium.data.Bits",
        "float64",
        "int16",
        "bytes",
    ] {
        assert!(seen_logical.contains(expected), "no fixture event exercised {expected}");
    }
}

/// Debezium's own events — the schema-change topic, snapshot DDL, transaction
/// boundaries — describe no row: the refiner skips them as such, and never takes
/// one for a flattened row or rejects it (a contract keyed by `id` would have
/// upserted a transaction's `id`).
#[test]
fn schema_change_and_transaction_events_are_control_events() {
    use crate::envelope::{Change, Control, change_of};
    let r = contract(
        "name = \"x\"\nversion = 1\nsource = \"bronze.x\"\nkey = \"id\"\n[[column]]\nname = \"id\"\ntype = \"string\"\n",
    );
    let files = [
        ("mysql_docs_schema_change_topic.jsonl", "schema_change", 1),
        ("schema_change_event_filter_doc_with_schema.jsonl", "schema_change", 1),
        ("mysql_docs_transaction_metadata.jsonl", "transaction", 2),
        ("postgres_docs_transaction_metadata.jsonl", "transaction", 2),
    ];
    for (file, kind, count) in files {
        let Some(lines) = fixtures::lines(file) else { return };
        let mut seen = 0;
        for (i, line) in lines.iter().enumerate() {
            let Some(value) = line.get("value").filter(|v| !v.is_null()) else { continue };
            let key = line.get("key").filter(|k| !k.is_null()).map(Json::to_string);
            match change_of(&r, key.as_deref(), Some(&value.to_string())) {
                Ok(Change::Control(c)) => assert_eq!(c.kind(), kind, "{file}:{}", i + 1),
                other => panic!("{file}:{}: {other:?}", i + 1),
            }
            seen += 1;
        }
        assert_eq!(seen, count, "{file}");
    }
    // The DDL a MySQL snapshot emits, among its row events, carries its statement.
    let Some(lines) = fixtures::lines("mysql_it_0.4_snapshot_with_schema.jsonl") else { return };
    let mut ddl = Vec::new();
    for line in &lines {
        let Some(value) = line.get("value").filter(|v| !v.is_null()) else { continue };
        if let Ok(Change::Control(Control::SchemaChange { ddl: Some(d) })) =
            change_of(&r, None, Some(&value.to_string()))
        {
            ddl.push(d);
        }
    }
    assert!(ddl.iter().any(|d| d.starts_with("CREATE TABLE")), "{ddl:?}");
}
