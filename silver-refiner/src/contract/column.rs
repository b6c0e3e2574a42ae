//! One contract column, validated and compiled: how it is read, cleansed and
//! checked. Literals written in the contract (`default`, `min`, `max`,
//! `allowed`) are read the canonical way — ISO dates and timestamps (UTC when
//! no offset), decimal text or numbers, base64 for binary — whatever the
//! column's own `formats`, `unit` or `encoding` say about source values.

use chrono::FixedOffset;
use regex::Regex;
use serde_json::Value as Json;

use super::spec::ColumnSpec;
use super::types::{Case, ColumnType, Encoding, TimeUnit};
use crate::decimal;
use crate::decode::{self, ReadOptions, check_format};
use crate::refine::checks;
use crate::value::Value;

/// A column's unit-conversion factor, in the arithmetic of its type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Factor {
    /// int and long columns: an exact integer multiplier.
    Int(i64),
    /// float and double columns.
    Float(f64),
    /// decimal columns: an exact decimal multiplier.
    Decimal { unscaled: i128, scale: i32 },
}

/// The validation rules of one column besides `not_null`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Checks {
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub regex: Option<Regex>,
    pub allowed: Option<Vec<Value>>,
    pub max_length: Option<usize>,
}

/// A compiled contract column.
#[derive(Debug, Clone)]
pub struct Column {
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) field_id: i32,
    pub(crate) is_key: bool,
    pub(crate) required: bool,
    pub(crate) read: ReadOptions,
    pub(crate) trim: bool,
    pub(crate) empty_as_null: bool,
    pub(crate) case: Option<Case>,
    pub(crate) factor: Option<Factor>,
    pub(crate) default: Option<Value>,
    pub(crate) checks: Checks,
}

impl Column {
    /// This column widened to `ty` (schema evolution, `widen-types`): the same
    /// field id, source and rules, its bounds, allowed values and default as
    /// values of the wider type.
    pub(crate) fn widened(&self, ty: super::ColumnType) -> Column {
        let mut c = self.clone();
        c.read.ty = ty;
        let w = |v: &mut Value| *v = std::mem::replace(v, Value::Null).widened(ty);
        c.checks.min.iter_mut().chain(c.checks.max.iter_mut()).chain(c.default.iter_mut()).for_each(w);
        c.checks.allowed.iter_mut().flatten().for_each(w);
        c
    }

    /// The Silver column name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field name in the Debezium row image (defaults to [`Column::name`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn ty(&self) -> ColumnType {
        self.read.ty
    }

    /// The Iceberg field id (1.. in contract order).
    pub fn field_id(&self) -> i32 {
        self.field_id
    }

    pub fn is_key(&self) -> bool {
        self.is_key
    }

    /// Never null in Silver: a key column or `not_null = true`.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The value used when the source value is null or missing.
    pub fn default(&self) -> Option<&Value> {
        self.default.as_ref()
    }

    /// Compiles one `[[column]]`; the error is the problem, without the names
    /// (the caller adds entity and column).
    pub(crate) fn compile(spec: ColumnSpec, field_id: i32, is_key: bool) -> Result<Column, String> {
        let ty: ColumnType = spec.ty.parse()?;
        let source = spec.source.unwrap_or_else(|| spec.name.clone());
        if source.is_empty() {
            return Err("`source` is empty".into());
        }
        if spec.unit.is_some() && !ty.is_temporal() {
            return Err(format!("`unit` applies to date, time and timestamp columns, not {ty}"));
        }
        if spec.unit == Some(TimeUnit::Days) && ty == ColumnType::Time {
            return Err("`unit = \"days\"` makes no sense for a time of day".into());
        }
        if !spec.formats.is_empty() && !ty.is_temporal() {
            return Err(format!("`formats` apply to date, time and timestamp columns, not {ty}"));
        }
        for f in &spec.formats {
            check_format(f)?;
        }
        let assume_offset = match spec.assume_offset.as_deref() {
            None => None,
            Some(_) if ty != ColumnType::TimestampTz => {
                return Err(format!("`assume_offset` applies to timestamptz columns, not {ty}"));
            }
            Some("Z" | "UTC") => FixedOffset::east_opt(0),
            Some(text) => Some(
                text.parse::<FixedOffset>()
                    .ok()
                    .filter(|_| text.len() == 6)
                    .ok_or_else(|| format!("`assume_offset = {text:?}` is not an offset like \"+02:00\""))?,
            ),
        };
        let encoding_ok = match (ty, spec.encoding) {
            (_, Encoding::Auto) | (ColumnType::Binary, _) => true,
            (ColumnType::Decimal { .. }, e) => e != Encoding::Hex,
            _ => false,
        };
        if !encoding_ok {
            return Err(format!("`encoding = {:?}` does not apply to a {ty} column", spec.encoding));
        }
        if spec.case.is_some() && ty != ColumnType::String {
            return Err(format!("`case` applies to string columns, not {ty}"));
        }
        if is_key && matches!(ty, ColumnType::Float | ColumnType::Double) {
            return Err(format!("a key column cannot be {ty} (floating-point keys do not compare reliably)"));
        }
        let read = ReadOptions { ty, unit: spec.unit, formats: spec.formats, assume_offset, encoding: spec.encoding };
        let factor = spec.factor.as_ref().map(|f| factor(f, ty)).transpose()?;

        let literal = |what: &str, v: &toml::Value| -> Result<Value, String> {
            let json = toml_to_json(v).map_err(|why| format!("`{what}`: {why}"))?;
            match decode::read(&json, None, &ReadOptions::canonical(ty)) {
                Ok(Value::Null) => Err(format!("`{what}` is null")),
                Ok(v) => Ok(v),
                Err(f) => Err(format!("`{what} = {v}` is not a {ty} value: {}", f.reason)),
            }
        };
        let mut checks = Checks::default();
        for (what, bound, slot) in [("min", &spec.min, &mut checks.min), ("max", &spec.max, &mut checks.max)] {
            if let Some(b) = bound {
                if !ty.is_ordered() {
                    return Err(format!("`{what}` applies to numeric and temporal columns, not {ty}"));
                }
                *slot = Some(literal(what, b)?);
            }
        }
        if let (Some(min), Some(max)) = (&checks.min, &checks.max)
            && min.compare(max) == Some(std::cmp::Ordering::Greater)
        {
            return Err(format!("`min` {min} is greater than `max` {max}"));
        }
        if let Some(pattern) = &spec.regex {
            if ty != ColumnType::String {
                return Err(format!("`regex` applies to string columns, not {ty}"));
            }
            checks.regex = Some(Regex::new(pattern).map_err(|e| format!("`regex` does not compile: {e}"))?);
        }
        if let Some(list) = &spec.allowed {
            if list.is_empty() {
                return Err("`allowed` is empty: no value could pass".into());
            }
            if matches!(ty, ColumnType::Binary | ColumnType::Float | ColumnType::Double) {
                return Err(format!("`allowed` does not apply to {ty} columns"));
            }
            let values = list.iter().map(|v| literal("allowed", v)).collect::<Result<Vec<_>, _>>()?;
            if let Some(case) = spec.case {
                for v in &values {
                    if let Value::String(s) = v
                        && fold(s, case) != *s
                    {
                        return Err(format!("allowed value {s:?} can never match after `case = {case:?}` folding"));
                    }
                }
            }
            checks.allowed = Some(values);
        }
        if let Some(n) = spec.max_length {
            if !matches!(ty, ColumnType::String | ColumnType::Binary) {
                return Err(format!("`max_length` applies to string and binary columns, not {ty}"));
            }
            if n == 0 {
                return Err("`max_length = 0` only allows empty values; use a positive length".into());
            }
            checks.max_length = Some(n as usize);
        }
        let required = is_key || spec.not_null;
        let default = match &spec.default {
            None => None,
            Some(_) if is_key => return Err("a key column cannot have a `default`".into()),
            Some(d) => {
                let v = literal("default", d)?;
                checks::check(&v, required, &checks)
                    .map_err(|f| format!("`default` {v} breaks a rule: {}", f.reason))?;
                Some(v)
            }
        };
        Ok(Column {
            name: spec.name,
            source,
            field_id,
            is_key,
            required,
            read,
            trim: spec.trim,
            empty_as_null: spec.empty_as_null,
            case: spec.case,
            factor,
            default,
            checks,
        })
    }
}

pub(crate) fn fold(s: &str, case: Case) -> String {
    match case {
        Case::Lower => s.to_lowercase(),
        Case::Upper => s.to_uppercase(),
    }
}

fn factor(v: &toml::Value, ty: ColumnType) -> Result<Factor, String> {
    let bad = |why: String| format!("`factor = {v}`: {why}");
    let exact = || -> Result<(i128, i32), String> {
        match v {
            toml::Value::Integer(i) => Ok((i128::from(*i), 0)),
            toml::Value::Float(f) => decimal::from_f64(*f),
            toml::Value::String(s) => decimal::parse(s.trim()),
            _ => Err("not a number".into()),
        }
    };
    match ty {
        ColumnType::Int | ColumnType::Long => {
            let (u, s) = exact().map_err(bad)?;
            let whole = decimal::rescale(u, s, 0).map_err(|_| bad(format!("{ty} columns need a whole factor")))?;
            i64::try_from(whole).map(Factor::Int).map_err(|_| bad("too large".into()))
        }
        ColumnType::Float | ColumnType::Double => {
            let (u, s) = exact().map_err(bad)?;
            decimal::render(u, s).parse::<f64>().map(Factor::Float).map_err(|e| bad(e.to_string()))
        }
        ColumnType::Decimal { .. } => exact().map(|(unscaled, scale)| Factor::Decimal { unscaled, scale }).map_err(bad),
        _ => Err(format!("`factor` applies to numeric columns, not {ty}")),
    }
}

/// A TOML literal as the JSON a source would send (TOML dates become ISO text).
fn toml_to_json(v: &toml::Value) -> Result<Json, String> {
    Ok(match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map(Json::Number).ok_or_else(|| format!("{f} is not a finite number"))?
        }
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => return Err("expected a single value".into()),
    })
}
