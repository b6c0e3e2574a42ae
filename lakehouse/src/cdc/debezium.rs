//! Debezium JSON (JsonConverter with or without schemas) → the envelope fields
//! Bronze keeps next to the verbatim value.
//!
//! Only the fields Bronze stores are materialized; everything else (row
//! images, schemas) is skipped by the parser without allocation.
//!
//! Recognized shapes:
//! - change event envelope (`op`, `source`, `ts_ms`), with or without
//!   `{"schema","payload"}` wrapping; `op` is `c`/`u`/`d`/`r`/`t`/`m`;
//! - schema-change events (`ddl` / `tableChanges` / `databaseName`);
//! - transaction metadata (`status` BEGIN/END);
//! - flattened rows (ExtractNewRecordState), with optional `__op`,
//!   `__deleted`, `__table`, `__db`, `__source_ts_ms` fields;
//! - a missing value: a tombstone.
//!
//! Anything else (not JSON, JSON that is not an object, fields of the wrong
//! type) is a decode error: the caller keeps the raw value and records why.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::config::ValueFormat;

/// What kind of message a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Change,
    Tombstone,
    SchemaChange,
    Transaction,
    /// A flattened row (ExtractNewRecordState) or a plain JSON object.
    Row,
    /// The value could not be decoded; see [`Decoded::error`].
    Undecodable,
    /// Not decoded at all (raw format).
    Raw,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Change => "change",
            EventKind::Tombstone => "tombstone",
            EventKind::SchemaChange => "schema_change",
            EventKind::Transaction => "transaction",
            EventKind::Row => "row",
            EventKind::Undecodable => "undecodable",
            EventKind::Raw => "raw",
        }
    }
}

/// The decoded envelope fields of one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    pub kind: EventKind,
    pub op: Option<Cow<'a, str>>,
    pub ts_ms: Option<i64>,
    pub source_ts_ms: Option<i64>,
    pub connector: Option<Cow<'a, str>>,
    pub db: Option<Cow<'a, str>>,
    pub schema: Option<Cow<'a, str>>,
    pub table: Option<Cow<'a, str>>,
    pub position: Option<String>,
    pub error: Option<String>,
}

impl<'a> Decoded<'a> {
    fn kind(kind: EventKind) -> Self {
        Self {
            kind,
            op: None,
            ts_ms: None,
            source_ts_ms: None,
            connector: None,
            db: None,
            schema: None,
            table: None,
            position: None,
            error: None,
        }
    }

    fn error(msg: String) -> Self {
        let mut d = Self::kind(EventKind::Undecodable);
        d.error = Some(msg);
        d
    }
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    schema: Option<IgnoredAny>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(default)]
    ts_ms: Option<i64>,
    #[serde(borrow, default)]
    source: Option<Source<'a>>,
    #[serde(default)]
    ddl: Option<IgnoredAny>,
    #[serde(default, rename = "tableChanges")]
    table_changes: Option<IgnoredAny>,
    #[serde(borrow, default, rename = "databaseName")]
    database_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    __op: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    __deleted: Option<&'a RawValue>,
    #[serde(borrow, default)]
    __table: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    __db: Option<Cow<'a, str>>,
    #[serde(default)]
    __source_ts_ms: Option<i64>,
}

#[derive(Deserialize, Default)]
struct Source<'a> {
    #[serde(borrow, default)]
    connector: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    db: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    schema: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    table: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    collection: Option<Cow<'a, str>>,
    #[serde(default)]
    ts_ms: Option<i64>,
    #[serde(borrow, default)]
    lsn: Option<&'a RawValue>,
    #[serde(borrow, default)]
    change_lsn: Option<&'a RawValue>,
    #[serde(borrow, default)]
    file: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pos: Option<&'a RawValue>,
    #[serde(borrow, default)]
    row: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ord: Option<&'a RawValue>,
}

/// A raw JSON scalar as text, without quotes; `None` for JSON null.
fn scalar(v: Option<&RawValue>) -> Option<&str> {
    let s = v?.get();
    if s == "null" {
        return None;
    }
    Some(s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s))
}

impl<'a> Source<'a> {
    fn position(&self) -> Option<String> {
        if let Some(lsn) = scalar(self.lsn) {
            return Some(format!("lsn={lsn}"));
        }
        if let Some(lsn) = scalar(self.change_lsn) {
            return Some(format!("change_lsn={lsn}"));
        }
        if let Some(file) = &self.file {
            let mut s = format!("file={file}");
            if let Some(pos) = scalar(self.pos) {
                s.push_str(",pos=");
                s.push_str(pos);
            }
            if let Some(row) = scalar(self.row) {
                s.push_str(",row=");
                s.push_str(row);
            }
            return Some(s);
        }
        scalar(self.ord).map(|o| format!("ord={o}"))
    }
}

/// Decodes `value` (`None` for a tombstone) according to `format`.
pub fn decode(value: Option<&[u8]>, format: ValueFormat) -> Decoded<'_> {
    let Some(value) = value else {
        return Decoded::kind(EventKind::Tombstone);
    };
    match format {
        ValueFormat::Raw => Decoded::kind(EventKind::Raw),
        ValueFormat::Json => match serde_json::from_slice::<IgnoredAny>(value) {
            Ok(_) => Decoded::kind(EventKind::Row),
            Err(e) => Decoded::error(format!("value is not JSON: {e}")),
        },
        ValueFormat::Debezium => decode_debezium(value),
    }
}

fn decode_debezium(value: &[u8]) -> Decoded<'_> {
    let outer: Probe<'_> = match serde_json::from_slice(value) {
        Ok(p) => p,
        Err(e) if e.is_data() => return Decoded::error(format!("value is not a Debezium JSON object: {e}")),
        Err(e) => return Decoded::error(format!("value is not JSON: {e}")),
    };
    // JsonConverter with schemas: {"schema": ..., "payload": ...}
    if outer.schema.is_some() && outer.op.is_none() && outer.ddl.is_none() && outer.status.is_none() {
        let Some(payload) = outer.payload else {
            return Decoded::error("value has a schema but no payload".to_string());
        };
        if payload.get() == "null" {
            return Decoded::error("value has a schema but a null payload".to_string());
        }
        return match serde_json::from_str::<Probe<'_>>(payload.get()) {
            Ok(inner) => classify(inner),
            Err(e) => Decoded::error(format!("payload is not a Debezium JSON object: {e}")),
        };
    }
    classify(outer)
}

fn classify(p: Probe<'_>) -> Decoded<'_> {
    if p.ddl.is_some() || p.table_changes.is_some() || p.database_name.is_some() {
        let mut d = Decoded::kind(EventKind::SchemaChange);
        d.ts_ms = p.ts_ms;
        d.db = p.database_name;
        fill_source(&mut d, p.source);
        return d;
    }
    if let Some(op) = p.op {
        let mut d = Decoded::kind(EventKind::Change);
        d.op = Some(op);
        d.ts_ms = p.ts_ms;
        fill_source(&mut d, p.source);
        return d;
    }
    if let Some(status) = p.status {
        if status == "BEGIN" || status == "END" {
            let mut d = Decoded::kind(EventKind::Transaction);
            d.op = Some(status);
            d.ts_ms = p.ts_ms;
            return d;
        }
    }
    // A flattened row: ExtractNewRecordState output or a plain object.
    let mut d = Decoded::kind(EventKind::Row);
    let deleted = scalar(p.__deleted).is_some_and(|v| v == "true");
    d.op = if deleted { Some(Cow::Borrowed("d")) } else { p.__op };
    d.ts_ms = p.ts_ms;
    d.source_ts_ms = p.__source_ts_ms;
    d.db = p.__db;
    d.table = p.__table;
    d
}

fn fill_source<'a>(d: &mut Decoded<'a>, source: Option<Source<'a>>) {
    let Some(s) = source else { return };
    d.position = s.position();
    d.source_ts_ms = s.ts_ms;
    d.connector = s.connector;
    if s.db.is_some() {
        d.db = s.db;
    }
    d.schema = s.schema;
    d.table = s.table.or(s.collection);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbz(v: &str) -> Decoded<'_> {
        decode(Some(v.as_bytes()), ValueFormat::Debezium)
    }

    #[test]
    fn envelope_without_schema() {
        let d = dbz(
            r#"{"before":null,"after":{"id":1},"source":{"connector":"postgresql","db":"inv","schema":"public","table":"customers","lsn":24023128,"ts_ms":1559033904863},"op":"c","ts_ms":1559033904863}"#,
        );
        assert_eq!(d.kind, EventKind::Change);
        assert_eq!(d.op.as_deref(), Some("c"));
        assert_eq!(d.connector.as_deref(), Some("postgresql"));
        assert_eq!(d.table.as_deref(), Some("customers"));
        assert_eq!(d.schema.as_deref(), Some("public"));
        assert_eq!(d.position.as_deref(), Some("lsn=24023128"));
        assert_eq!(d.ts_ms, Some(1559033904863));
        assert_eq!(d.error, None);
    }

    #[test]
    fn envelope_with_schema_and_escaped_strings() {
        let d = dbz(
            r#"{"schema":{"type":"struct","fields":[]},"payload":{"op":"u","source":{"connector":"mysql","db":"in\"v","table":"t","file":"mysql-bin.000003","pos":154,"row":0},"ts_ms":5}}"#,
        );
        assert_eq!(d.kind, EventKind::Change);
        assert_eq!(d.op.as_deref(), Some("u"));
        assert_eq!(d.db.as_deref(), Some("in\"v"));
        assert_eq!(d.position.as_deref(), Some("file=mysql-bin.000003,pos=154,row=0"));
    }

    #[test]
    fn tombstone_schema_change_transaction_row() {
        assert_eq!(decode(None, ValueFormat::Debezium).kind, EventKind::Tombstone);
        let s = dbz(r#"{"source":{"db":"inventory"},"databaseName":"inventory","ddl":"ALTER TABLE x","tableChanges":[]}"#);
        assert_eq!(s.kind, EventKind::SchemaChange);
        assert_eq!(s.db.as_deref(), Some("inventory"));
        let t = dbz(r#"{"status":"END","id":"x:10","ts_ms":1,"event_count":2}"#);
        assert_eq!(t.kind, EventKind::Transaction);
        assert_eq!(t.op.as_deref(), Some("END"));
        let r = dbz(r#"{"pk":2,"cola":null,"__deleted":"true"}"#);
        assert_eq!(r.kind, EventKind::Row);
        assert_eq!(r.op.as_deref(), Some("d"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["not json", "[1,2]", "42", r#"{"op":5}"#, r#"{"schema":{},"payload":null}"#, "{\"a\":"] {
            let d = dbz(bad);
            assert_eq!(d.kind, EventKind::Undecodable, "{bad}");
            assert!(d.error.is_some(), "{bad}");
        }
        let d = decode(Some(&[0xff, 0xfe]), ValueFormat::Debezium);
        assert_eq!(d.kind, EventKind::Undecodable);
        assert_eq!(decode(Some(b"x"), ValueFormat::Raw).kind, EventKind::Raw);
        assert_eq!(decode(Some(b"x"), ValueFormat::Json).kind, EventKind::Undecodable);
        assert_eq!(decode(Some(b"[1]"), ValueFormat::Json).kind, EventKind::Row);
    }
}
