//! One entity's contract, validated: name, Bronze source, business key,
//! typed columns with their cleansing and rules, partitioning, evolution mode.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use serde::Deserialize;

use super::column::Column;
use super::error::ContractError;
use super::spec::{EntitySpec, FileSpec};
use super::types::{ColumnType, Evolve, Transform};
use crate::arrow::{EXTRA_COLUMN, arrow_schema};

/// Debezium's default `unavailable.value.placeholder`.
pub const DEFAULT_UNAVAILABLE_PLACEHOLDER: &str = "__debezium_unavailable_value";

/// The partitioning of the Silver table: a transform of the business date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The business-date column (date, timestamp or timestamptz).
    pub column: String,
    pub transform: Transform,
}

/// A validated contract of one entity.
#[derive(Debug, Clone)]
pub struct Contract {
    name: String,
    version: u32,
    source: String,
    columns: Vec<Column>,
    key: Vec<usize>,
    partition: Option<Partition>,
    evolve: Evolve,
    ignore: HashSet<String>,
    known_sources: HashSet<String>,
    unavailable_placeholder: String,
    /// Field id of `_extra`: one after the last declared column. Columns added
    /// by schema evolution ([`Contract::with_added_columns`]) get ids after the
    /// lineage columns, so the declared ones, `_extra` and lineage never move.
    extra_id: i32,
    arrow_schema: SchemaRef,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Contract {
    /// Parses a contract holding exactly one entity (a file of its own, or a
    /// single `[[entity]]` section).
    pub fn from_toml_str(text: &str) -> Result<Contract, ContractError> {
        Self::one(parse_entities(text, "(string)")?, "(string)")
    }

    /// Reads a contract file holding exactly one entity.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Contract, ContractError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ContractError::Read { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        Self::one(parse_entities(&text, &origin)?, &origin)
    }

    fn one(mut all: Vec<Contract>, origin: &str) -> Result<Contract, ContractError> {
        match all.len() {
            1 => Ok(all.remove(0)),
            n => Err(ContractError::File {
                origin: origin.into(),
                problem: format!("holds {n} entities where one was expected (use `Contracts` for several)"),
            }),
        }
    }

    pub(crate) fn compile(spec: EntitySpec, origin: &str) -> Result<Contract, ContractError> {
        let entity = spec.name.clone();
        let fail = |problem: String| ContractError::Entity { origin: origin.into(), entity: entity.clone(), problem };
        if !is_identifier(&spec.name) {
            return Err(fail("the entity name must be letters, digits and `_`, not starting with a digit".into()));
        }
        if spec.version == 0 {
            return Err(fail("`version` starts at 1".into()));
        }
        match spec.source.split_once('.') {
            Some((ns, table)) if !ns.is_empty() && !table.is_empty() => {}
            _ => {
                return Err(fail(format!(
                    "`source = {:?}` must name a Bronze table as `namespace.table`",
                    spec.source
                )));
            }
        }
        if spec.columns.is_empty() {
            return Err(fail("no `[[column]]`".into()));
        }
        let key = spec.key.into_vec();
        if key.is_empty() {
            return Err(fail("`key` is empty: Silver needs a business key".into()));
        }
        let mut seen = HashSet::new();
        for k in &key {
            if !seen.insert(k.as_str()) {
                return Err(fail(format!("key column `{k}` is listed twice")));
            }
            if !spec.columns.iter().any(|c| &c.name == k) {
                return Err(fail(format!("key column `{k}` is not a declared column")));
            }
        }
        let mut names = HashSet::new();
        let mut columns = Vec::with_capacity(spec.columns.len());
        for (i, c) in spec.columns.into_iter().enumerate() {
            let column = c.name.clone();
            let col_fail = |problem: String| ContractError::Column {
                origin: origin.into(),
                entity: entity.clone(),
                column: column.clone(),
                problem,
            };
            if !is_identifier(&c.name) {
                return Err(col_fail(
                    "a column name must be letters, digits and `_`, not starting with a digit".into(),
                ));
            }
            if c.name == EXTRA_COLUMN {
                return Err(col_fail(format!(
                    "`{EXTRA_COLUMN}` is reserved for source columns the contract does not know"
                )));
            }
            if !names.insert(c.name.clone()) {
                return Err(col_fail("declared twice".into()));
            }
            let is_key = key.contains(&c.name);
            let field_id = i32::try_from(i + 1).map_err(|_| col_fail("too many columns".into()))?;
            columns.push(Column::compile(c, field_id, is_key).map_err(col_fail)?);
        }
        let key_idx: Vec<usize> = key.iter().filter_map(|k| columns.iter().position(|c| &c.name == k)).collect();
        let partition = match spec.partition {
            None => None,
            Some(p) => {
                let col = columns
                    .iter()
                    .find(|c| c.name == p.column)
                    .ok_or_else(|| fail(format!("partition column `{}` is not a declared column", p.column)))?;
                if !matches!(col.ty(), ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz) {
                    return Err(fail(format!(
                        "partition column `{}` is {}; the business date must be a date, timestamp or timestamptz",
                        p.column,
                        col.ty()
                    )));
                }
                Some(Partition { column: p.column, transform: p.transform })
            }
        };
        let known_sources: HashSet<String> = columns.iter().map(|c| c.source.clone()).collect();
        for name in &spec.ignore {
            if known_sources.contains(name) {
                return Err(fail(format!("`ignore` lists `{name}`, which a column reads")));
            }
        }
        let unavailable_placeholder =
            spec.unavailable_placeholder.unwrap_or_else(|| DEFAULT_UNAVAILABLE_PLACEHOLDER.to_string());
        let extra_id = columns.last().map_or(1, |c| c.field_id + 1);
        let arrow_schema = Arc::new(arrow_schema(&columns, extra_id));
        Ok(Contract {
            name: spec.name,
            version: spec.version,
            source: spec.source,
            columns,
            key: key_idx,
            partition,
            evolve: spec.evolve,
            ignore: spec.ignore.into_iter().collect(),
            known_sources,
            unavailable_placeholder,
            extra_id,
            arrow_schema,
        })
    }

    /// This contract with columns added by schema evolution (`evolve =
    /// "add-columns"`): `(name, type, Iceberg field id)` each, read from the
    /// source field of the same name with the type's default reading (the
    /// field's Connect schema decides units), nullable, without rules. Names the
    /// contract already has are skipped.
    pub fn with_added_columns(&self, added: &[(String, ColumnType, i32)]) -> Result<Contract, ContractError> {
        let mut out = self.clone();
        for (name, ty, id) in added {
            if out.columns.iter().any(|c| &c.name == name) {
                continue;
            }
            let fail = |problem: String| ContractError::Column {
                origin: "(schema evolution)".into(),
                entity: self.name.clone(),
                column: name.clone(),
                problem,
            };
            if !is_identifier(name) || name == EXTRA_COLUMN {
                return Err(fail("not a name a Silver column can have".into()));
            }
            let spec: super::spec::ColumnSpec =
                toml::from_str(&format!("name = {name:?}\ntype = {:?}", ty.to_string()))
                    .map_err(|e| fail(e.to_string()))?;
            out.columns.push(Column::compile(spec, *id, false).map_err(fail)?);
            out.known_sources.insert(name.clone());
        }
        out.arrow_schema = Arc::new(arrow_schema(&out.columns, out.extra_id));
        Ok(out)
    }

    /// This contract with columns widened by schema evolution (`evolve =
    /// "widen-types"`): `(name, wider type)` each; a column already of that
    /// type is left alone. Key columns and types that are not a promotion of
    /// the column's ([`ColumnType::widens_to`]) are refused.
    pub fn with_widened_columns(&self, widened: &[(String, ColumnType)]) -> Result<Contract, ContractError> {
        let mut out = self.clone();
        for (name, ty) in widened {
            let fail = |problem: String| ContractError::Column {
                origin: "(schema evolution)".into(),
                entity: self.name.clone(),
                column: name.clone(),
                problem,
            };
            let Some(i) = out.columns.iter().position(|c| &c.name == name) else {
                return Err(fail("no such column to widen".into()));
            };
            let col = &out.columns[i];
            if col.ty() == *ty {
                continue;
            }
            if col.is_key || !col.ty().widens_to(*ty) {
                return Err(fail(format!(
                    "a {}{} column cannot widen to {ty}",
                    if col.is_key { "key " } else { "" },
                    col.ty()
                )));
            }
            out.columns[i] = col.widened(*ty);
        }
        out.arrow_schema = Arc::new(arrow_schema(&out.columns, out.extra_id));
        Ok(out)
    }

    /// The columns added by schema evolution (after the declared ones).
    pub fn added_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.field_id > self.extra_id)
    }

    /// The entity name (`silver.<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The contract version, recorded with every reject.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The Bronze table, e.g. `bronze.orders`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Columns in contract order (= Arrow order, field ids 1..).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Indexes into [`Contract::columns`] of the business key, in key order.
    pub fn key_indices(&self) -> &[usize] {
        &self.key
    }

    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.key.iter().map(|&i| &self.columns[i])
    }

    pub fn partition(&self) -> Option<&Partition> {
        self.partition.as_ref()
    }

    pub fn evolve(&self) -> Evolve {
        self.evolve
    }

    /// Whether a source field is read by a column.
    pub fn reads(&self, source_field: &str) -> bool {
        self.known_sources.contains(source_field)
    }

    /// Whether a source field is listed in `ignore` (neither a column nor `_extra`).
    pub fn ignores(&self, source_field: &str) -> bool {
        self.ignore.contains(source_field)
    }

    pub fn unavailable_placeholder(&self) -> &str {
        &self.unavailable_placeholder
    }

    /// The Arrow schema of refined batches: the contract's columns in order,
    /// then `_extra`; field ids under `PARQUET:field_id`.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::clone(&self.arrow_schema)
    }

    /// The field id of the `_extra` column (one after the last column).
    pub fn extra_field_id(&self) -> i32 {
        self.extra_id
    }
}

/// Parses a contract text: one entity at the top level, or `[[entity]]` sections.
pub(crate) fn parse_entities(text: &str, origin: &str) -> Result<Vec<Contract>, ContractError> {
    let syntax = |entity, source| ContractError::Syntax { origin: origin.into(), entity, source: Box::new(source) };
    let table: toml::Table = toml::from_str(text).map_err(|e| syntax(None, e))?;
    let name_of = |t: &toml::Table| t.get("name").and_then(toml::Value::as_str).map(str::to_string);
    let specs = if let Some(sections) = table.get("entity") {
        toml::from_str::<FileSpec>(text)
            .map_err(|e| {
                // Name the first section that does not deserialize on its own.
                let bad = sections
                    .as_array()
                    .and_then(|all| all.iter().find(|s| EntitySpec::deserialize(toml::Value::clone(s)).is_err()));
                syntax(bad.and_then(toml::Value::as_table).and_then(name_of), e)
            })?
            .entity
    } else {
        vec![toml::from_str::<EntitySpec>(text).map_err(|e| syntax(name_of(&table), e))?]
    };
    if specs.is_empty() {
        return Err(ContractError::File { origin: origin.into(), problem: "no entity".into() });
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        if !names.insert(spec.name.clone()) {
            return Err(ContractError::Entity {
                origin: origin.into(),
                entity: spec.name,
                problem: "declared twice in this file".into(),
            });
        }
        out.push(Contract::compile(spec, origin)?);
    }
    Ok(out)
}
