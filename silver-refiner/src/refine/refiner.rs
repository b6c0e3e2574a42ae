//! A contract compiled into a row refiner: Debezium row image → typed,
//! cleansed, validated row, or a [`Reject`] naming the rule and the column.
//!
//! Per column, in this order:
//! 1. the source field's raw JSON (missing → null); Debezium's
//!    unavailable-value placeholder → `unavailable` reject;
//! 2. text cleansing of JSON strings: `trim`, then `empty_as_null`;
//! 3. typing ([`crate::decode`]): with the field's Connect schema when the
//!    event has one, else by the column's declared type; zoned values are
//!    normalised to UTC; decimals never rounded (`precision` reject);
//! 4. `case` folding (string columns), `factor` (numeric columns, exact for
//!    decimals);
//! 5. `default` when the value is still null;
//! 6. rules: `not_null` (key columns implicitly), `min`, `max`, `regex`,
//!    `allowed`, `max_length`.
//!
//! Source fields no column reads and `ignore` does not list are kept, as a
//! JSON object, in `_extra`; their names are reported so the caller can count
//! them (and, with `evolve = "add-columns"`, add them to the table).

use std::sync::Arc;

use arrow_schema::SchemaRef;
use base64::Engine as _;
use serde_json::{Map, Value as Json};

use super::checks;
use crate::arrow::BatchBuilder;
use crate::connect::{ConnectSchema, json_kind};
use crate::contract::column::{Factor, fold};
use crate::contract::{Column, ColumnType, Contract};
use crate::decode;
use crate::reject::{Failure, Reject, Rule};
use crate::value::Value;

/// One refined row: values in contract column order, plus the unknown fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RefinedRow {
    pub values: Vec<Value>,
    /// The source fields the contract does not know, as a JSON object text
    /// (`None` when there are none): the `_extra` column.
    pub extra: Option<String>,
    /// The names in [`RefinedRow::extra`], in source order.
    pub extra_columns: Vec<String>,
    /// Of those, the ones the event's Connect schema types exactly
    /// ([`ColumnType::from_connect`]): what `evolve = "add-columns"` can add.
    pub evolvable: Vec<(String, ColumnType)>,
    /// Contract columns whose value the event's Connect schema types wider than
    /// the column holds (`ALTER COLUMN … TYPE bigint` at the source), with the
    /// type each widens to ([`ColumnType::widened_for`]); only with `evolve`'s
    /// `widen-types`, and then the row's value there is null until it is
    /// refined again with the widened contract.
    pub widenable: Vec<(String, ColumnType)>,
}

/// A contract ready to refine rows. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Refiner {
    contract: Arc<Contract>,
    /// The placeholder as JsonConverter writes it for `bytes` columns.
    placeholder_base64: String,
    sources: Arc<Sources>,
}

/// The source fields the columns read, each once, and which one each column
/// reads: where [`Refiner::refine_text`] puts an image's values.
#[derive(Debug)]
struct Sources {
    names: Vec<String>,
    of_column: Vec<usize>,
}

impl Sources {
    fn new(contract: &Contract) -> Sources {
        let mut names: Vec<String> = Vec::new();
        let of_column = contract
            .columns()
            .iter()
            .map(|c| match names.iter().position(|n| *n == c.source) {
                Some(i) => i,
                None => {
                    names.push(c.source.clone());
                    names.len() - 1
                }
            })
            .collect();
        Sources { names, of_column }
    }

    /// The slot of a source field; images usually list their fields in one
    /// order, so the search starts where the last one was found.
    fn find(&self, name: &str, from: usize) -> Option<usize> {
        let n = self.names.len();
        (0..n).map(|d| (from + d) % n).find(|&i| self.names[i] == name)
    }
}

/// A row image read by [`Sources`]: each source field's value text (by slot),
/// and the fields the contract does not know, as text, in image order.
struct Slots<'a> {
    raws: Vec<Option<&'a str>>,
    extra: Vec<(&'a str, &'a str)>,
}

impl Slots<'_> {
    /// The values of the slots `wanted` as serde_json reads them (the others
    /// stay `None`, unread); `None` if one does not read.
    fn values(&self, wanted: impl Iterator<Item = usize>) -> Option<Vec<Option<Json>>> {
        let mut values = vec![None; self.raws.len()];
        for slot in wanted {
            if let Some(raw) = self.raws[slot] {
                values[slot] = Some(json_of(raw)?);
            }
        }
        Some(values)
    }
}

/// A value's JSON text as serde_json reads it (`None` if it would not).
fn json_of(raw: &str) -> Option<Json> {
    match raw {
        "null" => Some(Json::Null),
        "true" => Some(Json::Bool(true)),
        "false" => Some(Json::Bool(false)),
        _ => match lakehouse::cdc::plain_string(raw) {
            Some(s) => Some(Json::String(s.to_string())),
            None => serde_json::from_str(raw).ok(),
        },
    }
}

impl Refiner {
    pub fn new(contract: Contract) -> Refiner {
        let placeholder_base64 =
            base64::engine::general_purpose::STANDARD.encode(contract.unavailable_placeholder().as_bytes());
        let sources = Arc::new(Sources::new(&contract));
        Refiner { contract: Arc::new(contract), placeholder_base64, sources }
    }

    /// A row image's text read into [`Slots`] without building a JSON map;
    /// with `extra`, the fields no column reads are kept too. `None` when the
    /// scanner does not read it, or a field that matters repeats (serde_json
    /// keeps the last value where the first stood): parse it then.
    fn slots<'a>(&self, text: &'a str, extra: bool) -> Option<Slots<'a>> {
        let sources = &self.sources;
        let mut slots = Slots { raws: vec![None; sources.names.len()], extra: Vec::new() };
        let mut next = 0;
        lakehouse::cdc::object_members(text, |name, raw| {
            match sources.find(name, next) {
                Some(i) => {
                    if slots.raws[i].replace(raw).is_some() {
                        return None;
                    }
                    next = i + 1;
                }
                None if !extra || self.contract.ignores(name) => {}
                None => {
                    if slots.extra.iter().any(|(n, _)| *n == name) {
                        return None;
                    }
                    slots.extra.push((name, raw));
                }
            }
            Some(())
        })?;
        Some(slots)
    }

    /// [`Refiner::refine`] of a schemaless row image given as its JSON text,
    /// with the same result, read without building a JSON map. `None` when the
    /// text is not one this path reads (the caller parses it and calls
    /// [`Refiner::refine`]).
    pub fn refine_text(&self, after: &str) -> Option<Result<RefinedRow, Reject>> {
        let slots = self.slots(after, true)?;
        let values = slots.values(0..slots.raws.len())?;
        let extra = slots.extra.iter().map(|&(n, raw)| json_of(raw).map(|v| (n, v))).collect::<Option<Vec<_>>>()?;
        let of_column = &self.sources.of_column;
        Some(self.refine_with(|i| values[of_column[i]].as_ref(), extra, None))
    }

    /// [`Refiner::key_of`] of a schemaless row image given as its JSON text,
    /// as [`Refiner::refine_text`] reads it; only the key columns' values are
    /// parsed.
    pub fn key_of_text(&self, image: &str) -> Option<Result<Vec<Value>, Reject>> {
        let slots = self.slots(image, false)?;
        let of_column = &self.sources.of_column;
        let values = slots.values(self.contract.key_indices().iter().map(|&i| of_column[i]))?;
        Some(self.key_with(|i| values[of_column[i]].as_ref(), None))
    }

    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// [`Contract::arrow_schema`].
    pub fn arrow_schema(&self) -> SchemaRef {
        self.contract.arrow_schema()
    }

    /// A builder for batches of this contract's rows.
    pub fn batch_builder(&self, capacity: usize) -> BatchBuilder {
        BatchBuilder::new(&self.contract, capacity)
    }

    /// Refines one row image (`after`, or a flattened row). `schema` is the
    /// row's Connect schema when the event carried one: for an envelope,
    /// [`ConnectSchema::row`] of the value schema.
    pub fn refine(&self, after: &Map<String, Json>, schema: Option<&ConnectSchema>) -> Result<RefinedRow, Reject> {
        let columns = self.contract.columns();
        let extra =
            after.iter().filter(|(name, _)| self.is_extra(name)).map(|(n, v)| (n.as_str(), v.clone())).collect();
        self.refine_with(|i| after.get(&columns[i].source), extra, schema)
    }

    /// A source field that goes to `_extra`: no column reads it, `ignore` does not list it.
    fn is_extra(&self, name: &str) -> bool {
        !self.contract.reads(name) && !self.contract.ignores(name)
    }

    /// [`Refiner::refine`] with column `i`'s source value from `value(i)` and
    /// the image's fields for `_extra`, in image order.
    fn refine_with<'j>(
        &self,
        value: impl Fn(usize) -> Option<&'j Json>,
        extra_fields: Vec<(&str, Json)>,
        schema: Option<&ConnectSchema>,
    ) -> Result<RefinedRow, Reject> {
        let columns = self.contract.columns();
        let mut values = Vec::with_capacity(columns.len());
        let widen = self.contract.evolve().widen_types;
        let mut widenable = Vec::new();
        for (i, col) in columns.iter().enumerate() {
            let field = schema.and_then(|s| s.field(&col.source));
            match self.column_value(col, value(i), field, true) {
                Ok(v) => values.push(v),
                Err(f) if widen && !col.is_key() && matches!(f.rule, Rule::TypeChange | Rule::Precision) => {
                    match field.and_then(ColumnType::from_connect).and_then(|src| col.ty().widened_for(src)) {
                        Some(wider) => {
                            widenable.push((col.name.clone(), wider));
                            values.push(Value::Null);
                        }
                        None => return Err(f.at(&col.name)),
                    }
                }
                Err(f) => return Err(f.at(&col.name)),
            }
        }
        let mut extra: Option<Map<String, Json>> = None;
        let mut extra_columns = Vec::new();
        let mut evolvable = Vec::new();
        for (name, v) in extra_fields {
            extra.get_or_insert_with(Map::new).insert(name.to_string(), v);
            extra_columns.push(name.to_string());
            if let Some(ty) = schema.and_then(|s| s.field(name)).and_then(ColumnType::from_connect) {
                evolvable.push((name.to_string(), ty));
            }
        }
        let extra = extra.map(|m| Json::Object(m).to_string());
        Ok(RefinedRow { values, extra, extra_columns, evolvable, widenable })
    }

    /// The business key of a row image — the `before` of a delete, or any
    /// image holding the key fields — read with the same typing and cleansing
    /// as [`Refiner::refine`], so it equals the key the upsert stored. Only
    /// `not_null` is checked: a delete must find a row even if a rule has
    /// tightened since it was written.
    pub fn key_of(&self, image: &Map<String, Json>, schema: Option<&ConnectSchema>) -> Result<Vec<Value>, Reject> {
        let columns = self.contract.columns();
        self.key_with(|i| image.get(&columns[i].source), schema)
    }

    fn key_with<'j>(
        &self,
        value: impl Fn(usize) -> Option<&'j Json>,
        schema: Option<&ConnectSchema>,
    ) -> Result<Vec<Value>, Reject> {
        let columns = self.contract.columns();
        self.contract
            .key_indices()
            .iter()
            .map(|&i| {
                let col = &columns[i];
                let field = schema.and_then(|s| s.field(&col.source));
                self.column_value(col, value(i), field, false).map_err(|f| f.at(&col.name))
            })
            .collect()
    }

    /// The business key of a Kafka message key as JsonConverter writes it:
    /// `{"schema": …, "payload": {…}}`, a bare object, or — for a single-column
    /// key — a bare scalar.
    pub fn key_of_message_key(&self, key: &Json) -> Result<Vec<Value>, Reject> {
        let whole = |rule, reason: String| Reject { rule, column: None, reason };
        let (payload, schema) = match key {
            Json::Object(obj) if obj.contains_key("payload") && obj.contains_key("schema") => {
                let schema = match obj.get("schema") {
                    Some(Json::Null) | None => None,
                    Some(s) => Some(
                        ConnectSchema::from_json(s)
                            .map_err(|e| whole(Rule::Parse, format!("message key schema: {e}")))?,
                    ),
                };
                (obj.get("payload").unwrap_or(&Json::Null), schema)
            }
            other => (other, None),
        };
        match payload {
            Json::Object(map) => self.key_of(map, schema.as_ref()),
            Json::Null => Err(whole(Rule::NotNull, "the message key is null".into())),
            scalar => {
                let mut keys = self.contract.key_columns();
                match (keys.next(), keys.next()) {
                    (Some(col), None) => self
                        .column_value(col, Some(scalar), schema.as_ref(), false)
                        .map(|v| vec![v])
                        .map_err(|f| f.at(&col.name)),
                    _ => Err(whole(
                        Rule::Type,
                        format!("the message key is {} but the business key has several columns", json_kind(scalar)),
                    )),
                }
            }
        }
    }

    /// The business-key values of a refined row, in key order.
    pub fn row_key<'r>(&self, row: &'r RefinedRow) -> Vec<&'r Value> {
        self.contract.key_indices().iter().filter_map(|&i| row.values.get(i)).collect()
    }

    fn column_value(
        &self,
        col: &Column,
        raw: Option<&Json>,
        field: Option<&ConnectSchema>,
        all_rules: bool,
    ) -> Result<Value, Failure> {
        let raw = raw.unwrap_or(&Json::Null);
        let cleaned;
        let raw = match raw {
            Json::String(s) => {
                if s == self.contract.unavailable_placeholder() || *s == self.placeholder_base64 {
                    return Err(Failure::new(
                        Rule::Unavailable,
                        "Debezium did not send this unchanged value (its placeholder arrived); the row would \
                         overwrite it with the placeholder (PostgreSQL: set REPLICA IDENTITY FULL)",
                    ));
                }
                let t = if col.trim { s.trim() } else { s.as_str() };
                if col.empty_as_null && t.is_empty() {
                    &Json::Null
                } else if t.len() != s.len() {
                    cleaned = Json::String(t.to_string());
                    &cleaned
                } else {
                    raw
                }
            }
            other => other,
        };
        let mut v = match (&col.factor, col.ty()) {
            // A decimal factor applies to the exact source digits, before they are
            // fitted to decimal(p,s): 10000001 cents × 0.01 fits decimal(8,2).
            (Some(Factor::Decimal { unscaled: fu, scale: fs }), ColumnType::Decimal { precision, scale }) => {
                match decode::read_decimal_parts(raw, field, &col.read)? {
                    None => Value::Null,
                    Some((u, s)) => {
                        let product = u.checked_mul(*fu).ok_or_else(|| {
                            Failure::new(
                                Rule::Precision,
                                format!("{} times the factor has more than 38 digits", crate::decimal::render(u, s)),
                            )
                        })?;
                        decode::decimal_value(product, s + fs, precision, scale)?
                    }
                }
            }
            (Some(f), _) => match decode::read(raw, field, &col.read)? {
                Value::Null => Value::Null,
                v => apply_factor(v, f, col.ty())?,
            },
            (None, _) => decode::read(raw, field, &col.read)?,
        };
        if let (Some(case), Value::String(s)) = (col.case, &mut v) {
            *s = fold(s, case);
        }
        if v.is_null()
            && let Some(d) = &col.default
        {
            v = d.clone();
        }
        if all_rules {
            checks::check(&v, col.required, &col.checks)?;
        } else if v.is_null() && col.required {
            return Err(Failure::new(Rule::NotNull, "null in a key column"));
        }
        Ok(v)
    }
}

/// Integer and floating-point factors (decimal factors apply to the exact source digits).
fn apply_factor(v: Value, factor: &Factor, ty: ColumnType) -> Result<Value, Failure> {
    let overflow = |v: &Value| Failure::new(Rule::Range, format!("{v} times the factor does not fit a {ty}"));
    Ok(match (&v, factor) {
        (Value::Int(x), Factor::Int(m)) => {
            let p = i64::from(*x).checked_mul(*m).ok_or_else(|| overflow(&v))?;
            Value::Int(i32::try_from(p).map_err(|_| overflow(&v))?)
        }
        (Value::Long(x), Factor::Int(m)) => Value::Long(x.checked_mul(*m).ok_or_else(|| overflow(&v))?),
        (Value::Float(x), Factor::Float(m)) => Value::Float((f64::from(*x) * m) as f32),
        (Value::Double(x), Factor::Float(m)) => Value::Double(x * m),
        _ => v,
    })
}
