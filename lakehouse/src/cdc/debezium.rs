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

use super::scan::{self, Raw, Scan, Scanner};
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
    pub position: Option<Position<'a>>,
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

/// The top-level fields Bronze looks at. Deserialized by hand (see
/// [`impl_lenient_map!`]) so that a duplicated key — which real-world
/// Debezium examples contain — keeps the last value instead of failing.
#[derive(Default)]
struct Probe<'a> {
    payload: Option<Raw<'a>>,
    schema: Option<IgnoredAny>,
    op: Option<Cow<'a, str>>,
    ts_ms: Option<i64>,
    source: Option<Source<'a>>,
    ddl: Option<IgnoredAny>,
    table_changes: Option<IgnoredAny>,
    database_name: Option<Cow<'a, str>>,
    status: Option<Cow<'a, str>>,
    __op: Option<Cow<'a, str>>,
    __deleted: Option<Raw<'a>>,
    __table: Option<Cow<'a, str>>,
    __db: Option<Cow<'a, str>>,
    __source_ts_ms: Option<i64>,
}

#[derive(Default)]
struct Source<'a> {
    connector: Option<Cow<'a, str>>,
    db: Option<Cow<'a, str>>,
    schema: Option<Cow<'a, str>>,
    table: Option<Cow<'a, str>>,
    collection: Option<Cow<'a, str>>,
    ts_ms: Option<i64>,
    lsn: Option<Raw<'a>>,
    change_lsn: Option<Raw<'a>>,
    file: Option<Cow<'a, str>>,
    pos: Option<Raw<'a>>,
    row: Option<Raw<'a>>,
    ord: Option<Raw<'a>>,
}

/// A `Deserialize` (the slow path) and a [`Scan`] (the fast path) for a
/// struct of `Option` fields; both ignore unknown keys and let a repeated key
/// overwrite the earlier value.
macro_rules! impl_lenient_map {
    ($ty:ident { $($key:literal => $field:ident),* $(,)? }) => {
        impl<'de: 'a, 'a> Deserialize<'de> for $ty<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                    type Value = $ty<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                        let mut out = $ty::default();
                        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                            match key.as_ref() {
                                $($key => out.$field = map.next_value()?,)*
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V(std::marker::PhantomData))
            }
        }

        impl<'a> Scan<'a> for $ty<'a> {
            fn scan(s: &mut Scanner<'a>) -> Option<Self> {
                let mut out = $ty::default();
                s.object(|s, key| {
                    match key {
                        $($key => out.$field = Scan::scan(s)?,)*
                        _ => s.skip()?,
                    }
                    Some(())
                })?;
                Some(out)
            }
        }
    };
}

impl_lenient_map!(Probe {
    "payload" => payload,
    "schema" => schema,
    "op" => op,
    "ts_ms" => ts_ms,
    "source" => source,
    "ddl" => ddl,
    "tableChanges" => table_changes,
    "databaseName" => database_name,
    "status" => status,
    "__op" => __op,
    "__deleted" => __deleted,
    "__table" => __table,
    "__db" => __db,
    "__source_ts_ms" => __source_ts_ms,
});

impl_lenient_map!(Source {
    "connector" => connector,
    "db" => db,
    "schema" => schema,
    "table" => table,
    "collection" => collection,
    "ts_ms" => ts_ms,
    "lsn" => lsn,
    "change_lsn" => change_lsn,
    "file" => file,
    "pos" => pos,
    "row" => row,
    "ord" => ord,
});

/// A raw JSON scalar as text, without quotes; `None` for JSON null.
fn scalar(v: Option<Raw<'_>>) -> Option<&str> {
    let s = v?.0;
    if s == "null" {
        return None;
    }
    Some(s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s))
}

/// Where in the source database's log a change comes from; rendered as
/// `lsn=…`, `change_lsn=…`, `file=…,pos=…[,row=…]` or `ord=…`.
#[derive(Debug, Clone, PartialEq)]
pub enum Position<'a> {
    Lsn(&'a str),
    ChangeLsn(&'a str),
    Binlog { file: Cow<'a, str>, pos: Option<&'a str>, row: Option<&'a str> },
    Ord(&'a str),
}

impl std::fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Lsn(v) => write!(f, "lsn={v}"),
            Position::ChangeLsn(v) => write!(f, "change_lsn={v}"),
            Position::Binlog { file, pos, row } => {
                write!(f, "file={file}")?;
                if let Some(p) = pos {
                    write!(f, ",pos={p}")?;
                }
                if let Some(r) = row {
                    write!(f, ",row={r}")?;
                }
                Ok(())
            }
            Position::Ord(v) => write!(f, "ord={v}"),
        }
    }
}

impl<'a> Source<'a> {
    fn position(&mut self) -> Option<Position<'a>> {
        if let Some(lsn) = scalar(self.lsn) {
            return Some(Position::Lsn(lsn));
        }
        if let Some(lsn) = scalar(self.change_lsn) {
            return Some(Position::ChangeLsn(lsn));
        }
        if let Some(file) = self.file.take() {
            return Some(Position::Binlog { file, pos: scalar(self.pos), row: scalar(self.row) });
        }
        scalar(self.ord).map(Position::Ord)
    }
}

/// Decodes `value` (`None` for a tombstone) according to `format`.
pub fn decode(value: Option<&[u8]>, format: ValueFormat) -> Decoded<'_> {
    let Some(value) = value else {
        return Decoded::kind(EventKind::Tombstone);
    };
    match simdutf8::basic::from_utf8(value) {
        Ok(text) => decode_str(text, format),
        Err(_) => decode_slow(value, format),
    }
}

/// [`decode`] for a value the caller already holds as UTF-8: the fast
/// scanner reads it, and serde_json only sees what the scanner will not decide.
pub fn decode_str(text: &str, format: ValueFormat) -> Decoded<'_> {
    let fast = match format {
        ValueFormat::Raw => return Decoded::kind(EventKind::Raw),
        ValueFormat::Json => scan::is_json(text).map(|()| Decoded::kind(EventKind::Row)),
        ValueFormat::Debezium => decode_debezium_fast(text),
    };
    fast.unwrap_or_else(|| decode_slow(text.as_bytes(), format))
}

fn decode_slow(value: &[u8], format: ValueFormat) -> Decoded<'_> {
    match format {
        ValueFormat::Raw => Decoded::kind(EventKind::Raw),
        ValueFormat::Json => match serde_json::from_slice::<IgnoredAny>(value) {
            Ok(_) => Decoded::kind(EventKind::Row),
            Err(e) => Decoded::error(format!("value is not JSON: {e}")),
        },
        ValueFormat::Debezium => decode_debezium(value),
    }
}

/// JsonConverter with schemas: `{"schema": ..., "payload": ...}`.
fn is_wrapped(outer: &Probe<'_>) -> bool {
    outer.schema.is_some() && outer.op.is_none() && outer.ddl.is_none() && outer.status.is_none()
}

/// The scanner's reading of a Debezium value; `None` hands it to serde_json.
fn decode_debezium_fast(text: &str) -> Option<Decoded<'_>> {
    let outer: Probe<'_> = scan::parse(text)?;
    if !is_wrapped(&outer) {
        return Some(classify(outer));
    }
    scan::parse(outer.payload?.0).map(classify)
}

fn decode_debezium(value: &[u8]) -> Decoded<'_> {
    let outer: Probe<'_> = match serde_json::from_slice(value) {
        Ok(p) => p,
        Err(e) if e.is_data() => return Decoded::error(format!("value is not a Debezium JSON object: {e}")),
        Err(e) => return Decoded::error(format!("value is not JSON: {e}")),
    };
    if is_wrapped(&outer) {
        let Some(payload) = outer.payload else {
            return Decoded::error("value has a schema but no payload".to_string());
        };
        return match serde_json::from_str::<Probe<'_>>(payload.0) {
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
    if let Some(status) = p.status
        && (status == "BEGIN" || status == "END")
    {
        let mut d = Decoded::kind(EventKind::Transaction);
        d.op = Some(status);
        d.ts_ms = p.ts_ms;
        return d;
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
    let Some(mut s) = source else { return };
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
        assert_eq!(d.position.map(|p| p.to_string()).as_deref(), Some("lsn=24023128"));
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
        assert_eq!(d.position.as_ref().map(|p| p.to_string()).as_deref(), Some("file=mysql-bin.000003,pos=154,row=0"));
    }

    #[test]
    fn tombstone_schema_change_transaction_row() {
        assert_eq!(decode(None, ValueFormat::Debezium).kind, EventKind::Tombstone);
        let s =
            dbz(r#"{"source":{"db":"inventory"},"databaseName":"inventory","ddl":"ALTER TABLE x","tableChanges":[]}"#);
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
    fn duplicate_keys_keep_the_last_value() {
        let d = dbz(
            r#"{"op":"c","source":{"connector":"mongodb","ts_ms":1,"ts_ms":2,"collection":"c"},"ts_ms":5,"ts_ms":6}"#,
        );
        assert_eq!(d.kind, EventKind::Change);
        assert_eq!(d.source_ts_ms, Some(2));
        assert_eq!(d.ts_ms, Some(6));
        assert_eq!(d.table.as_deref(), Some("c"));
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

    /// Values to compare the two paths on: the generator's events with and
    /// without schemas, and every fixture value when ../shared is present.
    fn samples() -> (Vec<String>, usize) {
        let mut out = Vec::new();
        for with_schema in [false, true] {
            let mut g = lakehouse_generator::Generator::new(7);
            for _ in 0..400 {
                let e = g.next_event();
                if let Some(v) = e.value {
                    let v = if with_schema { lakehouse_generator::with_schema(e.table, v, false) } else { v };
                    out.push(v.to_string());
                }
            }
        }
        let generated = out.len();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/debezium");
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                #[derive(serde::Deserialize)]
                struct Line {
                    value: Option<Box<serde_json::value::RawValue>>,
                }
                for e in entries {
                    let path = e.expect("fixture directory entry").path();
                    if path.extension().is_some_and(|x| x == "jsonl") {
                        for line in std::fs::read_to_string(&path)
                            .expect("fixture file")
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                        {
                            let l: Line = serde_json::from_str(line).expect("fixture line is JSON");
                            out.extend(l.value.map(|v| v.get().to_string()).filter(|v| v != "null"));
                        }
                    }
                }
            }
            Err(_) => eprintln!("\n!!! ../shared/fixtures/debezium is absent: fixture values are not compared !!!\n"),
        }
        (out, generated)
    }

    /// Small edits that break (or keep) a value in the ways real corruption does.
    fn mutations(s: &str, seed: u64) -> Vec<String> {
        let mut x = seed | 1;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let pieces =
            ["\"", "\\", "{", "}", "[", "]", ",", ":", "0", "-", " ", "\u{1}", "e", ".", "n", "\\u", "1e400", "null"];
        let mut out = Vec::new();
        for _ in 0..24 {
            let mut at = next(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            let piece = pieces[next(pieces.len())];
            out.push(s[..at].to_string());
            out.push(format!("{}{}{}", &s[..at], piece, &s[at..]));
            let mut end = (at + 1).min(s.len());
            while !s.is_char_boundary(end) {
                end += 1;
            }
            out.push(format!("{}{}", &s[..at], &s[end..]));
            out.push(format!("{}{}{}", &s[..at], piece, &s[end..]));
        }
        out
    }

    #[test]
    fn agrees_with_serde() {
        let (samples, generated) = samples();
        let mut fast_hits = 0;
        for (i, s) in samples.iter().enumerate() {
            let slow = decode_slow(s.as_bytes(), ValueFormat::Debezium);
            let fast = decode_debezium_fast(s);
            if let Some(fast) = &fast {
                assert_eq!(fast, &slow, "{s}");
            }
            if i < generated {
                assert!(fast.is_some(), "the generator's events take the fast path: {s}");
            }
            fast_hits += usize::from(fast.is_some());
            for m in mutations(s, i as u64 + 1) {
                let slow = decode_slow(m.as_bytes(), ValueFormat::Debezium);
                if let Some(fast) = decode_debezium_fast(&m) {
                    assert_eq!(fast, slow, "mutated: {m}");
                }
                let json_slow = decode_slow(m.as_bytes(), ValueFormat::Json);
                assert_eq!(decode_str(&m, ValueFormat::Json), json_slow, "json: {m}");
            }
        }
        eprintln!("{fast_hits} of {} values decoded by the scanner", samples.len());
        assert!(fast_hits * 10 >= samples.len() * 9, "{fast_hits} of {} on the fast path", samples.len());
    }

    /// `cargo test --release -p lakehouse envelope_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn envelope_speed() {
        let (samples, generated) = samples();
        let groups = [("plain", &samples[..generated / 2]), ("with schema", &samples[generated / 2..generated])];
        for (group, values) in groups {
            let bytes: usize = values.iter().map(String::len).sum();
            for (name, fast) in [("serde_json", false), ("scanner", true)] {
                let t = std::time::Instant::now();
                let mut n = 0usize;
                for _ in 0..500 {
                    for s in values {
                        let d = if fast {
                            decode_str(s, ValueFormat::Debezium)
                        } else {
                            decode_slow(s.as_bytes(), ValueFormat::Debezium)
                        };
                        n += usize::from(d.op.is_some());
                    }
                }
                let per = t.elapsed().as_nanos() as f64 / (500 * values.len()) as f64;
                eprintln!("{group} ({} B average) {name}: {per:.0} ns per value, {n} ops", bytes / values.len());
            }
        }
    }
}
