//! `lakehouse contract infer bronze.<entity>`: a starting contract from the
//! Debezium `schema` blocks found in Bronze's raw values.
//!
//! Columns come from the row image's Connect schema (`after`, else `before`, or
//! a flattened row's own schema), in field order, the union over every schema
//! version seen (a later version's type wins, with a comment). Types follow
//! [`ColumnType::from_connect`] — the same mapping schema evolution uses, and
//! one the refiner's decoder accepts for that source type. The business key is
//! the message key's schema fields (else the fields of bare JSON keys, else a
//! column named `id`). Non-optional fields get `not_null`. Nested fields
//! (struct, array, map) have no Iceberg primitive: they are listed in a comment
//! and stay in `_extra`; Debezium's `__op`/`__deleted`-style fields of
//! flattened rows go to `ignore`. A `VariableScaleDecimal` (scale unknown) is
//! written as `decimal(38,18)` with a comment. The output is meant to be
//! reviewed: rules, cleansing and partitioning are left to the author.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::arrow::EXTRA_COLUMN;
use crate::connect::{ConnectSchema, ConnectType, Logical};
use crate::contract::ColumnType;

/// One inferred column.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    source: String,
    ty: Option<ColumnType>,
    connect: String,
    /// `unit` of Debezium's time types, so events without a schema read the same.
    unit: Option<&'static str>,
    optional: bool,
    /// A row image held null (or nothing) for it.
    seen_null: bool,
    /// The type an earlier schema version gave, when it differed.
    was: Option<String>,
}

/// What was read to infer a contract.
#[derive(Debug, Default)]
pub struct Inference {
    fields: Vec<Field>,
    key: Vec<String>,
    bare_key: Vec<String>,
    /// Messages read, and those with a value schema block.
    pub messages: u64,
    pub with_schema: u64,
    errors: BTreeMap<String, u64>,
}

impl Inference {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one message (`key` and `value` as received, either may be absent).
    pub fn add(&mut self, key: Option<&str>, value: Option<&str>) {
        self.messages += 1;
        if let Some(k) = key.and_then(|k| serde_json::from_str::<Json>(k).ok()) {
            self.add_key(&k);
        }
        let Some(v) = value.and_then(|v| serde_json::from_str::<Json>(v).ok()) else { return };
        let Some(schema) = v.get("schema").filter(|s| !s.is_null() && v.get("payload").is_some()) else { return };
        let parsed = match ConnectSchema::from_json(schema) {
            Ok(s) => s,
            Err(e) => {
                *self.errors.entry(e.to_string()).or_default() += 1;
                return;
            }
        };
        self.with_schema += 1;
        let row = parsed.row();
        if row.kind() != ConnectType::Struct {
            return;
        }
        if parsed.field("op").is_some() && std::ptr::eq(row, &parsed) {
            // An envelope whose row image is no struct (MongoDB's `after` is JSON text).
            *self
                .errors
                .entry("a change event whose `after`/`before` is not a struct (MongoDB?)".into())
                .or_default() += 1;
            return;
        }
        let raw_row = raw_row_schema(schema);
        let payload = &v["payload"];
        let image = ["after", "before"]
            .iter()
            .find_map(|i| payload.get(i).filter(|x| x.is_object()))
            .or_else(|| (payload.get("op").is_none()).then_some(payload));
        for (name, s) in row.fields() {
            let seen_null = image.is_some_and(|i| i.get(name).is_none_or(Json::is_null));
            let optional = raw_row
                .and_then(|r| r.iter().find(|f| f.get("field").and_then(Json::as_str) == Some(name)))
                .and_then(|f| f.get("optional").and_then(Json::as_bool))
                .unwrap_or(true);
            let field = Field {
                source: name.to_string(),
                ty: column_type(s),
                connect: s.to_string(),
                unit: match s.logical() {
                    Logical::TimeMillis | Logical::TimestampMillis => Some("millis"),
                    Logical::TimeMicros | Logical::TimestampMicros => Some("micros"),
                    Logical::TimeNanos | Logical::TimestampNanos => Some("nanos"),
                    _ => None,
                },
                optional,
                seen_null,
                was: None,
            };
            match self.fields.iter_mut().find(|f| f.source == name) {
                Some(old) if old.ty != field.ty || old.connect != field.connect => {
                    let was = old.connect.clone();
                    let seen_null = old.seen_null || field.seen_null;
                    *old = Field { was: Some(was), seen_null, ..field };
                }
                Some(old) => {
                    old.optional |= field.optional;
                    old.seen_null |= field.seen_null;
                }
                None => self.fields.push(field),
            }
        }
    }

    fn add_key(&mut self, key: &Json) {
        match key {
            Json::Object(o) if o.contains_key("schema") && o.contains_key("payload") => {
                if self.key.is_empty()
                    && let Some(fields) = o["schema"].get("fields").and_then(Json::as_array)
                {
                    self.key = fields
                        .iter()
                        .filter_map(|f| f.get("field").and_then(Json::as_str))
                        .map(str::to_string)
                        .collect();
                }
            }
            Json::Object(o) if self.bare_key.is_empty() => self.bare_key = o.keys().cloned().collect(),
            _ => {}
        }
    }

    /// The contract TOML for `entity` reading `source` (`bronze.<table>`).
    pub fn to_toml(&self, entity: &str, source: &str) -> Result<String, String> {
        let columns: Vec<&Field> =
            self.fields.iter().filter(|f| f.ty.is_some() && !is_debezium_meta(&f.source)).collect();
        if columns.is_empty() {
            return Err(format!(
                "{source}: no Debezium schema block with row fields in {} messages read ({} with a schema); \
                 infer needs JsonConverter output with schemas.enable=true",
                self.messages, self.with_schema
            ));
        }
        let name_of = |f: &Field| column_name(&f.source);
        let mut key_note = None;
        let mut key: Vec<String> = if !self.key.is_empty() { self.key.clone() } else { self.bare_key.clone() };
        key.retain(|k| columns.iter().any(|c| &c.source == k));
        if key.is_empty() {
            let keyable = |c: &&&Field| !matches!(c.ty, Some(ColumnType::Float | ColumnType::Double)) && !c.seen_null;
            let fallback = columns
                .iter()
                .find(|c| c.source == "id")
                .or_else(|| columns.iter().filter(keyable).find(|c| !c.optional))
                .or_else(|| columns.iter().find(keyable))
                .unwrap_or(&columns[0]);
            key_note = Some("no message key was readable: the key below is a guess, check it");
            key = vec![fallback.source.clone()];
        }
        let key_names: Vec<String> =
            key.iter().filter_map(|k| columns.iter().find(|c| &c.source == k).map(|c| name_of(c))).collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Inferred by `lakehouse contract infer {source}` from {} Debezium schema blocks ({} messages read).\n\
             # A starting point: review types, key and not_null; add cleansing, rules and partitioning.",
            self.with_schema, self.messages
        );
        if let Some(note) = key_note {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "name = {}", quote(entity));
        let _ = writeln!(out, "version = 1");
        let _ = writeln!(out, "source = {}", quote(source));
        let _ = writeln!(out, "key = [{}]", key_names.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", "));
        let ignore: Vec<&Field> = self.fields.iter().filter(|f| is_debezium_meta(&f.source)).collect();
        if !ignore.is_empty() {
            let _ = writeln!(
                out,
                "ignore = [{}]   # Debezium's own fields of flattened rows",
                ignore.iter().map(|f| quote(&f.source)).collect::<Vec<_>>().join(", ")
            );
        }
        if let Some(d) = columns
            .iter()
            .find(|c| matches!(c.ty, Some(ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz)))
        {
            let _ = writeln!(
                out,
                "# partition = {{ column = {}, transform = \"month\" }}   # a business date?",
                quote(&name_of(d))
            );
        }
        for f in self.fields.iter().filter(|f| f.ty.is_none() && !is_debezium_meta(&f.source)) {
            let _ =
                writeln!(out, "# `{}` ({}) has no Iceberg primitive type: it stays in `_extra`", f.source, f.connect);
        }
        for c in &columns {
            let ty = c.ty.expect("filtered to typed fields");
            let name = name_of(c);
            let _ = writeln!(out, "\n[[column]]\nname = {}", quote(&name));
            let mut note = c.connect.clone();
            if c.connect.contains("VariableScaleDecimal") {
                note.push_str("; scale varies per value: check precision and scale");
            }
            if let Some(was) = &c.was {
                let _ = write!(note, "; an earlier schema version had {was}");
            }
            let _ = writeln!(out, "type = {}   # {note}", quote(&ty.to_string()));
            if let Some(unit) = c.unit {
                let _ = writeln!(out, "unit = {}", quote(unit));
            }
            if name != c.source {
                let _ = writeln!(out, "source = {}", quote(&c.source));
            }
            if !c.optional && !key.contains(&c.source) {
                let _ = writeln!(out, "not_null = true");
            }
        }
        for (e, n) in &self.errors {
            let _ = writeln!(out, "# {n} schema blocks were unreadable: {e}");
        }
        Ok(out)
    }
}

/// Reads the newest Bronze data files of `table` (whole files, newest
/// snapshots first, until `max_rows` rows) and takes their messages in commit order.
pub async fn from_bronze(
    catalog: &lakehouse::catalog::SqlCatalog,
    table: &lakehouse::catalog::TableName,
    max_rows: usize,
) -> Result<Inference, crate::RefineError> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let loaded = catalog.require_table(table).await?;
    let incs = lakehouse::table::incremental::increments(catalog.file_io(), &loaded.metadata, None, usize::MAX).await?;
    let mut files: Vec<(String, u64)> = Vec::new();
    let mut rows = 0u64;
    for inc in incs.iter().rev() {
        for f in inc.files.iter().rev() {
            if rows >= max_rows as u64 {
                break;
            }
            rows += f.record_count();
            files.push((f.file_path().to_string(), f.record_count()));
        }
    }
    files.reverse();
    let mut inference = Inference::new();
    for (path, _) in &files {
        for b in lakehouse::table::incremental::read_data_file(catalog.file_io(), path, &["key", "value"]).await? {
            let (Some(k), Some(v)) = (b.column_by_name("key"), b.column_by_name("value")) else {
                return Err(crate::RefineError::Entity {
                    entity: table.to_string(),
                    message: "not a Bronze table: no `key`/`value` columns".into(),
                });
            };
            let (k, v) = (k.as_string::<i32>(), v.as_string::<i32>());
            for i in 0..b.num_rows() {
                inference.add(k.is_valid(i).then(|| k.value(i)), v.is_valid(i).then(|| v.value(i)));
            }
        }
    }
    Ok(inference)
}

/// The contract type of a source field: [`ColumnType::from_connect`], with a
/// wide decimal for `VariableScaleDecimal`.
fn column_type(s: &ConnectSchema) -> Option<ColumnType> {
    match s.logical() {
        Logical::VariableScaleDecimal => Some(ColumnType::Decimal { precision: 38, scale: 18 }),
        _ => ColumnType::from_connect(s),
    }
}

/// The raw `fields` of the row image in a value schema block.
fn raw_row_schema(schema: &Json) -> Option<&Vec<Json>> {
    let fields = schema.get("fields")?.as_array()?;
    let is_envelope = fields.iter().any(|f| f.get("field").and_then(Json::as_str) == Some("op"));
    if is_envelope {
        for image in ["after", "before"] {
            if let Some(f) = fields.iter().find(|f| f.get("field").and_then(Json::as_str) == Some(image))
                && let Some(inner) = f.get("fields").and_then(Json::as_array)
            {
                return Some(inner);
            }
        }
    }
    Some(fields)
}

/// `__op`, `__deleted`, `__source_ts_ms`, … (ExtractNewRecordState's added fields).
fn is_debezium_meta(name: &str) -> bool {
    name.starts_with("__")
}

/// A contract column name for a source field: letters, digits and `_`.
fn column_name(source: &str) -> String {
    let mut s: String = source.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if s == EXTRA_COLUMN {
        s.push_str("_source");
    }
    s
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::change_of;

    /// `(key, value)` texts of one topic.
    type Messages = Vec<(Option<String>, Option<String>)>;
    use crate::{Contract, Refiner};

    /// Every with-schema fixture: the inferred contract loads and refines every
    /// event of its topic without a reject.
    #[test]
    fn inferred_contracts_refine_the_fixtures_without_rejects() {
        let Some(dir) = crate::fixtures::dir() else { return };
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            // MongoDB's row images are JSON text, which the refiner does not take.
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("_with_schema.jsonl") && !n.starts_with("mongodb"))
            })
            .collect();
        files.sort();
        let mut inferred = 0;
        for path in files {
            let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
            let lines = crate::fixtures::lines(&name).expect("fixtures present");
            let mut by_topic: BTreeMap<String, Messages> = BTreeMap::new();
            for l in lines {
                let text = |v: Option<&Json>| v.filter(|v| !v.is_null()).map(|v| v.to_string());
                let topic = l.get("topic").and_then(Json::as_str).unwrap_or("t").to_string();
                by_topic.entry(topic).or_default().push((text(l.get("key")), text(l.get("value"))));
            }
            for (topic, messages) in by_topic {
                let mut inf = Inference::new();
                for (k, v) in &messages {
                    inf.add(k.as_deref(), v.as_deref());
                }
                let Ok(toml) = inf.to_toml("fx", "bronze.fx") else { continue }; // no row schema (schema-change topic)
                let contract = Contract::from_toml_str(&toml)
                    .unwrap_or_else(|e| panic!("{name} {topic}: the inferred contract does not load: {e}\n{toml}"));
                let refiner = Refiner::new(contract);
                for (k, v) in &messages {
                    if let Err(r) = change_of(&refiner, k.as_deref(), v.as_deref()) {
                        panic!("{name} {topic}: rejected by the inferred contract: {r}\n{toml}\nvalue: {v:?}");
                    }
                }
                inferred += 1;
            }
        }
        assert!(inferred >= 4, "only {inferred} fixture topics had a row schema");
    }

    #[test]
    fn key_types_and_not_null_from_the_schema_blocks() {
        let key = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}]},"payload":{"id":1}}"#;
        let value = serde_json::json!({"schema": {"type": "struct", "fields": [
            {"type": "struct", "optional": true, "field": "after", "fields": [
                {"type": "int32", "optional": false, "field": "id"},
                {"type": "int32", "optional": false, "name": "io.debezium.time.Date", "field": "order_date"},
                {"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal",
                 "parameters": {"scale": "2", "connect.decimal.precision": "10"}, "field": "total"},
                {"type": "string", "optional": true, "field": "first name"},
                {"type": "struct", "optional": true, "field": "geo", "fields": [{"type": "double", "field": "x"}]}]},
            {"type": "string", "optional": false, "field": "op"}]},
            "payload": {"op": "c", "after": {"id": 1, "order_date": 20000, "total": "AMg=", "first name": "A", "geo": null}}});
        let mut inf = Inference::new();
        inf.add(Some(key), Some(&value.to_string()));
        let toml = inf.to_toml("orders", "bronze.orders").expect("a contract");
        let c = Contract::from_toml_str(&toml).expect("loads");
        assert_eq!(c.key_columns().map(|k| k.name().to_string()).collect::<Vec<_>>(), ["id"]);
        let ty = |n: &str| c.column(n).map(|col| col.ty().to_string());
        assert_eq!(ty("id").as_deref(), Some("int"));
        assert_eq!(ty("order_date").as_deref(), Some("date"));
        assert_eq!(ty("total").as_deref(), Some("decimal(10,2)"));
        assert_eq!(c.column("first_name").map(|col| col.source()), Some("first name"));
        assert!(c.column("order_date").is_some_and(|col| col.is_required()), "non-optional → not_null");
        assert!(c.column("geo").is_none() && toml.contains("`geo` (struct)"), "{toml}");
        assert!(toml.contains("# partition = { column = \"order_date\""), "{toml}");
        let err = Inference::new().to_toml("x", "bronze.x").expect_err("nothing read");
        assert!(err.contains("schemas.enable=true"), "{err}");
    }
}
