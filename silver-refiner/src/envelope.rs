//! A Bronze row → the change it describes for an entity.

use serde_json::{Map, Value as Json};

use crate::connect::ConnectSchema;
use crate::refine::{RefinedRow, Refiner};
use crate::reject::{Reject, Rule};
use crate::value::Value;

/// What one Debezium event does to the entity.
#[derive(Debug)]
pub enum Change {
    /// `c` / `r` / `u`: the `after` image, refined.
    Upsert(RefinedRow),
    /// `d`: the key, from `before` or the message key.
    Delete(Vec<Value>),
    /// `t`: every row of the entity goes.
    Truncate,
    /// A tombstone (null value) or a heartbeat: nothing to do.
    Nothing,
    /// One of Debezium's own events, which describe no row of the entity: nothing
    /// to do, but worth counting (a Bronze table fed by the wrong topic).
    Control(Control),
}

/// Debezium events that are not row changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A schema change event (the connector's schema-change topic, or the DDL a
    /// MySQL snapshot emits): its `ddl` text, when it has one.
    SchemaChange { ddl: Option<String> },
    /// A transaction boundary (`BEGIN` / `END`, the `<prefix>.transaction` topic).
    Transaction,
}

impl Control {
    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Control::SchemaChange { .. } => "schema_change",
            Control::Transaction => "transaction",
        }
    }
}

/// Whether an envelope without `op` is one of Debezium's own events rather than a
/// flattened row: by the value schema's name where there is one
/// (`…SchemaChangeValue`, `…TransactionMetadataValue`), else by the fields only
/// those events carry (`tableChanges` / `ddl` with `databaseName`; `status`
/// `BEGIN`/`END` with `event_count` and `data_collections`).
fn control_of(payload: &Map<String, Json>, schema: Option<&Json>) -> Option<Control> {
    let ddl = || payload.get("ddl").and_then(Json::as_str).map(str::to_string);
    let name = schema.and_then(|s| s.get("name")).and_then(Json::as_str).unwrap_or("");
    if name.ends_with("SchemaChangeValue") {
        return Some(Control::SchemaChange { ddl: ddl() });
    }
    if name.ends_with("TransactionMetadataValue") {
        return Some(Control::Transaction);
    }
    if payload.contains_key("tableChanges") || (payload.contains_key("ddl") && payload.contains_key("databaseName")) {
        return Some(Control::SchemaChange { ddl: ddl() });
    }
    let boundary = matches!(payload.get("status").and_then(Json::as_str), Some("BEGIN" | "END"));
    if boundary && payload.contains_key("event_count") && payload.contains_key("data_collections") {
        return Some(Control::Transaction);
    }
    None
}

fn reject(rule: Rule, reason: impl Into<String>) -> Reject {
    Reject { rule, column: None, reason: reason.into() }
}

/// An image (`before`/`after`) as an object; `None` when absent, null or not an object.
fn image_of(raw: Option<&str>) -> Result<Option<Map<String, Json>>, Reject> {
    let Some(raw) = raw else { return Ok(None) };
    match serde_json::from_str(raw) {
        Ok(Json::Object(m)) => Ok(Some(m)),
        Ok(_) => Ok(None),
        Err(e) => Err(reject(Rule::Parse, format!("not JSON: {e}"))),
    }
}

/// An image's text when it is an object (the scanner has validated it).
fn object(raw: Option<&str>) -> Option<&str> {
    raw.filter(|r| r.starts_with('{'))
}

/// Decodes a Debezium value (with or without the `schema` block) and refines it.
pub fn change_of(refiner: &Refiner, key: Option<&str>, value: Option<&str>) -> Result<Change, Reject> {
    let Some(value) = value else { return Ok(Change::Nothing) };
    fast(refiner, key, value).unwrap_or_else(|| decode(refiner, key, value))
}

/// [`change_of`]'s common case: a schemaless envelope with an `op`, read by
/// the scanner without parsing what the refiner does not read (`source`,
/// `transaction`, the image it does not need), and its image read into the
/// contract's columns without a JSON map ([`Refiner::refine_text`]). `None` for
/// anything else (a schema block or `payload`, a flattened row, an `op` that is
/// not a plain string, a repeated envelope field, text the scanner does not
/// read): the general path decodes those, and gives the same result for the
/// common case.
fn fast(refiner: &Refiner, key: Option<&str>, value: &str) -> Option<Result<Change, Reject>> {
    let (mut op, mut before, mut after) = (None, None, None);
    lakehouse::cdc::object_members(value, |name, raw| {
        let field = match name {
            "op" => &mut op,
            "before" => &mut before,
            "after" => &mut after,
            "payload" => return None,
            _ => return Some(()),
        };
        field.replace(raw).is_none().then_some(())
    })?;
    let op = lakehouse::cdc::plain_string(op?)?;
    Some(match op {
        "c" | "r" | "u" => match object(after) {
            Some(after) => refiner
                .refine_text(after)
                .unwrap_or_else(|| image_of(Some(after)).and_then(|a| refiner.refine(&a.unwrap_or_default(), None)))
                .map(Change::Upsert),
            None => Err(reject(Rule::Parse, "a create/update without an `after` image")),
        },
        "d" => match object(before) {
            Some(before) => refiner
                .key_of_text(before)
                .unwrap_or_else(|| image_of(Some(before)).and_then(|b| refiner.key_of(&b.unwrap_or_default(), None)))
                .map(Change::Delete),
            None => delete_by_message_key(refiner, key),
        },
        "t" => Ok(Change::Truncate),
        op => Err(reject(Rule::Parse, format!("unknown Debezium op {op:?}"))),
    })
}

/// [`change_of`]'s general path: the whole value parsed.
fn decode(refiner: &Refiner, key: Option<&str>, value: &str) -> Result<Change, Reject> {
    let json: Json = serde_json::from_str(value).map_err(|e| reject(Rule::Parse, format!("not JSON: {e}")))?;
    if json.is_null() {
        return Ok(Change::Nothing);
    }
    let (payload, schema) = match &json {
        Json::Object(o) if o.contains_key("payload") && o.contains_key("schema") => (&o["payload"], Some(&o["schema"])),
        other => (other, None),
    };
    let Json::Object(payload) = payload else {
        return Err(reject(Rule::Parse, "the Debezium payload is not an object"));
    };
    if !payload.contains_key("op")
        && let Some(control) = control_of(payload, schema)
    {
        return Ok(Change::Control(control));
    }
    let schema = match schema {
        Some(s) if !s.is_null() => Some(
            ConnectSchema::from_json(s).map_err(|e| reject(Rule::Parse, format!("unreadable schema block: {e}")))?,
        ),
        _ => None,
    };
    let row_schema = schema.as_ref().map(ConnectSchema::row);
    let image = |name: &str| -> Option<&Map<String, Json>> { payload.get(name).and_then(Json::as_object) };
    match payload.get("op").and_then(Json::as_str) {
        Some("c" | "r" | "u") => {
            let after =
                image("after").ok_or_else(|| reject(Rule::Parse, "a create/update without an `after` image"))?;
            refiner.refine(after, row_schema).map(Change::Upsert)
        }
        Some("d") => {
            if let Some(before) = image("before") {
                return refiner.key_of(before, row_schema).map(Change::Delete);
            }
            delete_by_message_key(refiner, key)
        }
        Some("t") => Ok(Change::Truncate),
        Some(op) => Err(reject(Rule::Parse, format!("unknown Debezium op {op:?}"))),
        // A flattened row (ExtractNewRecordState) is an upsert of itself.
        None if !payload.contains_key("after") && !payload.contains_key("before") => {
            refiner.refine(payload, row_schema).map(Change::Upsert)
        }
        None => Err(reject(Rule::Parse, "an envelope without `op`")),
    }
}

/// A delete without a `before` image: the key comes from the message key.
fn delete_by_message_key(refiner: &Refiner, key: Option<&str>) -> Result<Change, Reject> {
    let key = key.ok_or_else(|| reject(Rule::Parse, "a delete with neither `before` nor a message key"))?;
    let key: Json = serde_json::from_str(key).map_err(|e| reject(Rule::Parse, format!("message key: {e}")))?;
    refiner.key_of_message_key(&key).map(Change::Delete)
}

/// Source order of an event: the Debezium position where it is a number
/// (PostgreSQL `lsn=`, SQL Server `change_lsn=`), else the source timestamp in
/// microseconds. Ties go to the later Kafka offset (the store keeps the
/// later write of an equal sequence).
pub fn source_seq(position: Option<&str>, source_ts_ms: Option<i64>, ts_ms: Option<i64>) -> i64 {
    if let Some(p) = position
        && let Some((kind, v)) = p.split_once('=')
        && matches!(kind, "lsn" | "change_lsn")
        && let Ok(n) = v.parse::<i64>()
    {
        return n;
    }
    source_ts_ms.or(ts_ms).map_or(0, |ms| ms.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contract;

    fn refiner() -> Refiner {
        Refiner::new(
            Contract::from_toml_str(
                "name = \"c\"\nversion = 1\nsource = \"bronze.c\"\nkey = \"id\"\n[[column]]\nname = \"id\"\ntype = \"long\"\n\
                 [[column]]\nname = \"name\"\ntype = \"string\"\n",
            )
            .expect("contract"),
        )
    }

    #[test]
    fn debezium_ops_become_changes() {
        let r = refiner();
        let up = change_of(&r, None, Some(r#"{"op":"u","before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"}}"#));
        assert!(matches!(up, Ok(Change::Upsert(row)) if row.values[1] == Value::String("b".into())));
        let del = change_of(&r, None, Some(r#"{"op":"d","before":{"id":7,"name":"a"},"after":null}"#));
        assert!(matches!(del, Ok(Change::Delete(k)) if k == [Value::Long(7)]));
        let del = change_of(&r, Some(r#"{"id":9}"#), Some(r#"{"op":"d","before":null,"after":null}"#));
        assert!(matches!(del, Ok(Change::Delete(k)) if k == [Value::Long(9)]), "key from the message key");
        assert!(matches!(change_of(&r, None, None), Ok(Change::Nothing)), "a tombstone is a no-op");
        assert!(matches!(change_of(&r, None, Some(r#"{"op":"t"}"#)), Ok(Change::Truncate)));
        let bad = change_of(&r, None, Some(r#"{"op":"x","after":{}}"#)).expect_err("unknown op");
        assert_eq!(bad.rule, Rule::Parse);
        assert!(bad.reason.contains("unknown Debezium op"), "{}", bad.reason);
        let bad = change_of(&r, None, Some("{nope")).expect_err("not JSON");
        assert_eq!(bad.rule, Rule::Parse);
    }

    #[test]
    fn debezium_control_events_are_not_rows() {
        // Keyed by a string `id`: a transaction boundary's `id` must not become a row.
        let r = Refiner::new(
            Contract::from_toml_str(
                "name = \"c\"\nversion = 1\nsource = \"bronze.c\"\nkey = \"id\"\n[[column]]\nname = \"id\"\ntype = \"string\"\n",
            )
            .expect("contract"),
        );
        let begin = r#"{"status":"BEGIN","id":"571:53195829","ts_ms":1486500577125,"event_count":null,"data_collections":null}"#;
        assert!(matches!(change_of(&r, None, Some(begin)), Ok(Change::Control(Control::Transaction))));
        let ddl = r#"{"source":{"db":"inventory"},"databaseName":"inventory","ddl":"DROP TABLE t","tableChanges":[]}"#;
        match change_of(&r, None, Some(ddl)) {
            Ok(Change::Control(Control::SchemaChange { ddl })) => assert_eq!(ddl.as_deref(), Some("DROP TABLE t")),
            other => panic!("{other:?}"),
        }
        // By the schema's name, whatever the payload holds.
        let named = r#"{"schema":{"type":"struct","fields":[],"name":"io.debezium.connector.mysql.SchemaChangeValue"},"payload":{"id":"x"}}"#;
        assert!(matches!(change_of(&r, None, Some(named)), Ok(Change::Control(Control::SchemaChange { ddl: None }))));
        // A flattened row with a `status` column is still a row.
        let row = r#"{"id":"a","status":"BEGIN"}"#;
        assert!(matches!(change_of(&r, None, Some(row)), Ok(Change::Upsert(_))));
        // An envelope with an op is a change, whatever else it carries.
        let change = r#"{"op":"c","after":{"id":"b"},"ddl":"x","databaseName":"d"}"#;
        assert!(matches!(change_of(&r, None, Some(change)), Ok(Change::Upsert(_))));
    }

    #[test]
    fn the_fast_path_decodes_as_the_general_path() {
        let r = refiner();
        let source = r#""source":{"version":"2.7.0","connector":"postgresql","lsn":24023128,"db":"shop"}"#;
        // The fast path's values, then the general path's.
        let values = [
            format!(r#"{{"op":"c","before":null,"after":{{"id":1,"name":" a "}},{source},"ts_ms":5}}"#),
            format!(r#"{{"before":{{"id":1,"name":"a"}},"after":{{"id":1,"name":"b"}},{source},"op":"u"}}"#),
            r#"{"op":"r","after":{"id":"not a number","name":"a"}}"#.to_string(),
            r#"{"op":"u","after":null}"#.to_string(),
            r#"{"op":"u","after":[1,2]}"#.to_string(),
            r#"{"op":"d","before":{"id":7,"name":"a"},"after":null}"#.to_string(),
            r#"{"op":"d","before":null,"after":null}"#.to_string(),
            r#"{"op":"d","before":"x"}"#.to_string(),
            r#"{"op":"t","before":null,"after":null}"#.to_string(),
            r#"{"op":"x","after":{}}"#.to_string(),
            r#"{"op":"c","after":{"id":1,"name":"a","added":true}}"#.to_string(),
            // Not for the fast path: they must still decode as before.
            r#"{"op":null,"after":{"id":1}}"#.to_string(),
            r#"{"op":5,"after":{"id":1}}"#.to_string(),
            r#"{"op":"c","payload":null,"schema":null,"after":{"id":1}}"#.to_string(),
            r#"{"id":3,"name":"flattened"}"#.to_string(),
            r#"{"op":"\u0063","after":{"id":1,"name":"escaped op"}}"#.to_string(),
            "null".to_string(),
            "{nope".to_string(),
        ];
        for key in [None, Some(r#"{"id":9}"#)] {
            for (i, v) in values.iter().enumerate() {
                let taken = fast(&r, key, v);
                assert_eq!(taken.is_some(), i < 11, "{v}: the fast path taken or not as expected");
                let fast = format!("{:?}", change_of(&r, key, Some(v)));
                let general = format!("{:?}", decode(&r, key, v));
                assert_eq!(fast, general, "{v} with key {key:?}");
            }
        }
    }

    #[test]
    fn sequence_is_the_source_position_else_its_time() {
        assert_eq!(source_seq(Some("lsn=24023128"), Some(5), None), 24_023_128);
        assert_eq!(source_seq(Some("binlog=mysql-bin.000003:154:0"), Some(5), None), 5000);
        assert_eq!(source_seq(None, None, Some(7)), 7000);
    }
}
