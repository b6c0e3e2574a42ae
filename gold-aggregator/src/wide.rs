//! Denormalized (wide) Gold tables: a fact entity joined with its dimensions,
//! current dimension values (SCD type 1), maintained incrementally.
//!
//! ```toml
//! [[wide]]
//! name = "order_lines_wide"
//! fact = "order_items"                 # one Gold row per fact key
//! columns = ["id", "order_id", "product_id", "quantity", "unit_price"]  # default: every non-lineage column
//! compute = ["quantity * unit_price as amount"]   # a op b, op one of * + -
//! partition_by = "order_date"          # a date or timestamp column of the row
//! partition = "month"                  # or "year"
//! [[wide.join]]
//! entity = "orders"
//! on = "order_id"                      # a column defined before (fact or an earlier join)
//! columns = ["customer_id", "status", "order_date"]
//! [[wide.join]]
//! entity = "customers"
//! on = "customer_id"                   # chained through orders
//! columns = ["first_name", "last_name", "email as customer_email"]
//! ```
//!
//! Joins are left joins on the dimension's primary key. In memory the table
//! keeps the facts' rows, each dimension's rows and, per join, which facts
//! reference which dimension key; a change of a dimension row marks every
//! fact that references it, a fact whose dimension has not arrived gets nulls
//! and is completed when it does. At commit the marked facts' rows are
//! recomputed, and those that differ from what Gold holds are written.
//!
//! Memory: each fact key is allocated once, shared by its slot ([`Slot`]:
//! key, picked values, the dimension keys its row used, the hash of its Gold
//! row) and the key → slot map; the reverse indexes hold 4-byte slot numbers,
//! not keys.
//!
//! Restart: the facts come back from the state table (which holds every wide
//! row), the dimensions from their Silver changelog stores at the snapshots
//! the state recorded (Gold keeps a consumer there so the snapshot survives
//! expiry).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use changelog_store::RowKind;
use changelog_store::read::changelog_reader::ChangeBatch;
use serde::Deserialize;

use crate::rollup::AggError;
use crate::scalar::{self, Scalar};
use crate::spec::{PartitionBy, SpecError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WideToml {
    name: String,
    fact: String,
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default, rename = "join")]
    joins: Vec<JoinToml>,
    #[serde(default)]
    compute: Vec<String>,
    partition_by: String,
    #[serde(default)]
    partition: PartitionBy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinToml {
    entity: String,
    on: String,
    columns: Vec<String>,
}

/// A column taken from a source, possibly renamed (`"price as list_price"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub source: String,
    pub name: String,
}

impl Pick {
    fn parse(text: &str) -> Result<Pick, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (source, name) = match words.as_slice() {
            [c] => (*c, *c),
            [c, as_, n] if as_.eq_ignore_ascii_case("as") => (*c, *n),
            _ => return Err(format!("column {text:?}: write `name` or `name as alias`")),
        };
        for n in [source, name] {
            if !lakehouse::config::is_identifier(n) {
                return Err(format!("column {text:?}: {n:?} is not [a-z0-9_]+"));
            }
        }
        Ok(Pick { source: source.into(), name: name.into() })
    }
}

#[derive(Debug, Clone)]
pub struct JoinSpec {
    pub entity: String,
    pub on: String,
    pub columns: Vec<Pick>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Column(String),
    /// An integer or decimal literal: unscaled value and scale.
    Literal(i128, i8),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    pub name: String,
    pub left: Operand,
    pub op: char,
    pub right: Operand,
}

impl Computed {
    fn parse(text: &str) -> Result<Computed, String> {
        let bad = || format!("compute {text:?}: write `a * b as name` (op one of * + -; a, b columns or numbers)");
        let words: Vec<&str> = text.split_whitespace().collect();
        let [l, op, r, as_, name] = words.as_slice() else { return Err(bad()) };
        if !as_.eq_ignore_ascii_case("as") || !lakehouse::config::is_identifier(name) {
            return Err(bad());
        }
        let op = match *op {
            "*" => '*',
            "+" => '+',
            "-" => '-',
            _ => return Err(bad()),
        };
        let operand = |w: &str| -> Result<Operand, String> {
            if lakehouse::config::is_identifier(w) && !w.starts_with(|c: char| c.is_ascii_digit()) {
                return Ok(Operand::Column(w.into()));
            }
            let (int, frac) = w.split_once('.').unwrap_or((w, ""));
            let digits = format!("{int}{frac}");
            let v: i128 = digits.parse().map_err(|_| bad())?;
            Ok(Operand::Literal(v, frac.len() as i8))
        };
        Ok(Computed { name: name.to_string(), left: operand(l)?, op, right: operand(r)? })
    }
}

#[derive(Debug, Clone)]
pub struct WideSpec {
    pub name: String,
    pub fact: String,
    pub columns: Option<Vec<Pick>>,
    pub joins: Vec<JoinSpec>,
    pub compute: Vec<Computed>,
    pub partition_by: String,
    pub partition: PartitionBy,
}

impl WideSpec {
    pub fn from_toml(t: WideToml) -> Result<Self, SpecError> {
        let invalid = |message: String| SpecError::Invalid { table: t.name.clone(), message };
        if !lakehouse::config::is_identifier(&t.name) {
            return Err(invalid("name must be [a-z0-9_]+".into()));
        }
        let picks = |cols: &[String]| cols.iter().map(|c| Pick::parse(c)).collect::<Result<Vec<_>, _>>();
        let columns = t.columns.as_deref().map(picks).transpose().map_err(&invalid)?;
        let mut joins = Vec::new();
        for j in &t.joins {
            if j.columns.is_empty() {
                return Err(invalid(format!("join {}: columns must name at least one column", j.entity)));
            }
            joins.push(JoinSpec {
                entity: j.entity.clone(),
                on: j.on.clone(),
                columns: picks(&j.columns).map_err(&invalid)?,
            });
        }
        let compute = t.compute.iter().map(|c| Computed::parse(c)).collect::<Result<Vec<_>, _>>().map_err(&invalid)?;
        Ok(WideSpec {
            name: t.name,
            fact: t.fact,
            columns,
            joins,
            compute,
            partition_by: t.partition_by,
            partition: t.partition,
        })
    }

    /// The fact first, then each joined entity once.
    pub fn sources(&self) -> Vec<String> {
        let mut out = vec![self.fact.clone()];
        for j in &self.joins {
            if !out.contains(&j.entity) {
                out.push(j.entity.clone());
            }
        }
        out
    }
}

/// Where an output column's value comes from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Index into the fact's picked values.
    Fact(usize),
    /// Join, index into that join's picked values.
    Join(usize, usize),
    Compute(usize),
}

type FactKey = Vec<Scalar>;
/// A fact's slot in [`Wide::slots`].
type FactId = u32;

/// What the table knows of one fact key, from its first change until Gold
/// no longer holds a row for it.
struct Slot {
    key: Arc<[Scalar]>,
    /// Picked values; none once the fact is deleted.
    fact: Option<Box<[Scalar]>>,
    /// The dimension keys its Gold row used, per join (empty: no row yet).
    used: Box<[Scalar]>,
    /// Hash of the row Gold holds.
    emitted: Option<u64>,
    /// In [`Wide::dirty`].
    dirty: bool,
}

struct BoundJoin {
    /// Source index (into [`WideSpec::sources`]) of the dimension entity.
    source: usize,
    /// Output column holding the dimension key.
    on: usize,
    /// Dimension key column and picked columns, by name in the dimension's changelog.
    key: String,
    picks: Vec<String>,
    rows: HashMap<Scalar, Box<[Scalar]>>,
    /// Dimension key → facts whose row references it.
    refs: HashMap<Scalar, HashSet<FactId>>,
}

/// What one change batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct WideApplied {
    pub changes: u64,
    pub retractions: u64,
    /// Facts marked for recomputation by a dimension change.
    pub fanned_out: u64,
}

/// One wide table's rows in memory.
pub struct Wide {
    pub spec: WideSpec,
    sources: Vec<String>,
    schema: SchemaRef,
    /// Output columns: origin and the scale of decimals (for computing).
    origins: Vec<Origin>,
    scales: Vec<i8>,
    key_names: Vec<String>,
    /// Output indices of the key columns.
    key_out: Vec<usize>,
    fact_picks: Vec<String>,
    /// Fact key → its slot.
    ids: HashMap<Arc<[Scalar]>, FactId>,
    slots: Vec<Slot>,
    /// Slots free for reuse.
    free: Vec<FactId>,
    /// Facts present (slots with values).
    facts: usize,
    joins: Vec<BoundJoin>,
    /// Facts whose row is recomputed at the next commit.
    dirty: Vec<FactId>,
    partition_col: usize,
    partition_is_date: bool,
}

/// Changed rows of a keyed Gold table, ready for [`crate::sink::GoldTable::apply_keyed`].
pub struct KeyedChanges {
    pub rows: RecordBatch,
    pub partitions: Vec<Option<i32>>,
    /// Keys to delete, as rows of the Gold schema (other columns null).
    pub gone: RecordBatch,
}

impl Wide {
    /// Binds the definition to its sources' changelog schemas
    /// (`sources[i]`: schema and primary key of [`WideSpec::sources`]`[i]`).
    pub fn bind(spec: WideSpec, sources: &[(Schema, Vec<String>)]) -> Result<Self, AggError> {
        let bad = |message: String| AggError::Schema { table: spec.name.clone(), message };
        let names = spec.sources();
        let (fact_schema, fact_key) = &sources[0];
        let field = |schema: &Schema, entity: &str, name: &str| -> Result<DataType, AggError> {
            let f = schema.field_with_name(name).map_err(|_| bad(format!("{entity} has no column {name}")))?;
            if !scalar::supported(f.data_type()) {
                return Err(bad(format!("{entity}.{name} of type {} cannot be read", f.data_type())));
            }
            Ok(scalar::output_type(f.data_type()))
        };
        let fact_cols: Vec<Pick> = match &spec.columns {
            Some(p) => p.clone(),
            None => fact_schema
                .fields()
                .iter()
                .filter(|f| !f.name().starts_with('_') && scalar::supported(f.data_type()))
                .map(|f| Pick { source: f.name().clone(), name: f.name().clone() })
                .collect(),
        };
        let mut out: Vec<(String, DataType, Origin)> = Vec::new();
        let index_of = |out: &[(String, DataType, Origin)], n: &str| out.iter().position(|(o, _, _)| o == n);
        for (i, p) in fact_cols.iter().enumerate() {
            out.push((p.name.clone(), field(fact_schema, &spec.fact, &p.source)?, Origin::Fact(i)));
        }
        let mut key_out = Vec::new();
        for k in fact_key {
            let at = fact_cols
                .iter()
                .position(|p| &p.source == k && &p.name == k)
                .ok_or_else(|| bad(format!("the fact's key column {k} must be among its columns, unrenamed")))?;
            key_out.push(at);
        }
        let mut joins = Vec::new();
        for (j, js) in spec.joins.iter().enumerate() {
            let source = names.iter().position(|n| n == &js.entity).expect("sources() lists every join");
            let (schema, key) = &sources[source];
            let [key] = key.as_slice() else {
                return Err(bad(format!(
                    "join {}: the dimension needs a one-column primary key, it has {key:?}",
                    js.entity
                )));
            };
            let on = index_of(&out, &js.on).ok_or_else(|| {
                bad(format!("join {}: on = {:?} is not a column defined before it", js.entity, js.on))
            })?;
            let key_ty = field(schema, &js.entity, key)?;
            if key_ty != out[on].1 {
                return Err(bad(format!(
                    "join {}: {} is {} but the key {key} is {key_ty}",
                    js.entity, js.on, out[on].1
                )));
            }
            for (c, p) in js.columns.iter().enumerate() {
                out.push((p.name.clone(), field(schema, &js.entity, &p.source)?, Origin::Join(j, c)));
            }
            joins.push(BoundJoin {
                source,
                on,
                key: key.clone(),
                picks: js.columns.iter().map(|p| p.source.clone()).collect(),
                rows: HashMap::new(),
                refs: HashMap::new(),
            });
        }
        for (k, c) in spec.compute.iter().enumerate() {
            let ty_of = |o: &Operand| -> Result<DataType, AggError> {
                match o {
                    Operand::Literal(_, 0) => Ok(DataType::Int64),
                    Operand::Literal(_, s) => Ok(DataType::Decimal128(38, *s)),
                    Operand::Column(n) => index_of(&out, n)
                        .map(|i| out[i].1.clone())
                        .ok_or_else(|| bad(format!("compute {}: no column {n} before it", c.name))),
                }
            };
            let ty = computed_type(&ty_of(&c.left)?, c.op, &ty_of(&c.right)?).ok_or_else(|| {
                bad(format!("compute {}: {:?} {} {:?} is not numeric", c.name, c.left, c.op, c.right))
            })?;
            out.push((c.name.clone(), ty, Origin::Compute(k)));
        }
        let mut seen = HashSet::new();
        for (n, _, _) in &out {
            if !seen.insert(n.clone()) {
                return Err(bad(format!("column {n} appears twice; rename one with `as`")));
            }
        }
        let partition_col = index_of(&out, &spec.partition_by)
            .ok_or_else(|| bad(format!("partition_by = {:?} is not a column of the table", spec.partition_by)))?;
        let partition_is_date = match &out[partition_col].1 {
            DataType::Date32 => true,
            DataType::Timestamp(_, _) => false,
            other => {
                return Err(bad(format!(
                    "partition_by column {} is {other}, not a date or timestamp",
                    spec.partition_by
                )));
            }
        };
        let fields: Vec<Field> = out
            .iter()
            .enumerate()
            .map(|(i, (n, ty, _))| {
                Field::new(n, ty.clone(), !key_out.contains(&i))
                    .with_metadata([("PARQUET:field_id".to_string(), (i + 1).to_string())].into_iter().collect())
            })
            .collect();
        let scales = out.iter().map(|(_, ty, _)| if let DataType::Decimal128(_, s) = ty { *s } else { 0 }).collect();
        Ok(Wide {
            key_names: fact_key.clone(),
            key_out,
            fact_picks: fact_cols.iter().map(|p| p.source.clone()).collect(),
            origins: out.iter().map(|(_, _, o)| *o).collect(),
            scales,
            schema: Arc::new(Schema::new(fields)),
            sources: names,
            spec,
            ids: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            facts: 0,
            joins,
            dirty: Vec::new(),
            partition_col,
            partition_is_date,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The Gold table's key columns (the fact's primary key).
    pub fn key(&self) -> &[String] {
        &self.key_names
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Restores the rows Gold holds (state table batches) and the dimensions
    /// (`dims[source index]`: the dimension's rows at the recorded snapshot).
    pub fn restore(&mut self, state: &[RecordBatch], dims: &HashMap<usize, Vec<RecordBatch>>) -> Result<(), AggError> {
        for b in state {
            let cols = scalar::columns_of(b, &self.schema).map_err(|e| self.bad(format!("state: {e}")))?;
            for i in 0..b.num_rows() {
                let row: Vec<Scalar> = cols.iter().map(|c| scalar::read(c, i)).collect();
                let key: FactKey = self.key_out.iter().map(|k| row[*k].clone()).collect();
                let fact: Box<[Scalar]> = self
                    .origins
                    .iter()
                    .zip(&row)
                    .filter(|(o, _)| matches!(o, Origin::Fact(_)))
                    .map(|(_, v)| v.clone())
                    .collect();
                let used: Box<[Scalar]> = self.joins.iter().map(|j| row[j.on].clone()).collect();
                let id = self.id_of(key);
                for (j, u) in self.joins.iter_mut().zip(used.iter()) {
                    if !u.is_null() {
                        j.refs.entry(u.clone()).or_default().insert(id);
                    }
                }
                let slot = &mut self.slots[id as usize];
                if slot.fact.is_none() {
                    self.facts += 1;
                }
                slot.emitted = Some(scalar::row_hash(&row));
                slot.used = used;
                slot.fact = Some(fact);
            }
        }
        for (source, batches) in dims {
            for b in batches {
                for j in 0..self.joins.len() {
                    if self.joins[j].source == *source {
                        self.load_dim(j, b, RowKind::Insert)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn bad(&self, message: String) -> AggError {
        AggError::Schema { table: self.spec.name.clone(), message }
    }

    /// The slot of fact `key`, made if new.
    fn id_of(&mut self, key: FactKey) -> FactId {
        if let Some(&id) = self.ids.get(key.as_slice()) {
            return id;
        }
        let key: Arc<[Scalar]> = Arc::from(key);
        let slot = Slot { key: key.clone(), fact: None, used: Box::new([]), emitted: None, dirty: false };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                FactId::try_from(self.slots.len() - 1).expect("fewer than 2^32 facts in one wide table")
            }
        };
        self.ids.insert(key, id);
        id
    }

    /// Frees slot `id` once nothing refers to it (no values, no Gold row, no
    /// dimension references, not marked).
    fn release(&mut self, id: FactId) {
        let slot = &mut self.slots[id as usize];
        if slot.fact.is_some() || slot.emitted.is_some() || !slot.used.is_empty() || slot.dirty {
            return;
        }
        let key = std::mem::replace(&mut slot.key, Arc::from([]));
        self.ids.remove(&key);
        self.free.push(id);
    }

    fn load_dim(&mut self, j: usize, b: &RecordBatch, kind: RowKind) -> Result<(), AggError> {
        let col = |n: &str| {
            b.column_by_name(n)
                .cloned()
                .ok_or_else(|| self.bad(format!("{} has no column {n}", self.spec.joins[j].entity)))
        };
        let key = col(&self.joins[j].key)?;
        let picks = self.joins[j].picks.iter().map(|p| col(p)).collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            self.dim_row(j, scalar::read(&key, i), || picks.iter().map(|c| scalar::read(c, i)).collect(), kind);
        }
        Ok(())
    }

    fn dim_row(&mut self, j: usize, key: Scalar, values: impl FnOnce() -> Vec<Scalar>, kind: RowKind) -> u64 {
        let join = &mut self.joins[j];
        match kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                join.rows.insert(key.clone(), values().into_boxed_slice());
            }
            RowKind::Delete => {
                join.rows.remove(&key);
            }
            RowKind::UpdateBefore => return 0, // its +U follows
        }
        let Some(facts) = join.refs.get(&key) else { return 0 };
        for &id in facts {
            mark(&mut self.slots, &mut self.dirty, id);
        }
        facts.len() as u64
    }

    /// The columns [`Wide::apply`] reads of source `source`: a reader decodes only these.
    pub fn source_columns(&self, source: usize) -> Vec<String> {
        let mut out = Vec::new();
        if source == 0 {
            out.extend(self.key_names.iter().chain(&self.fact_picks).cloned());
        }
        for j in self.joins.iter().filter(|j| j.source == source) {
            out.extend(std::iter::once(&j.key).chain(&j.picks).cloned());
        }
        out
    }

    /// Applies one change batch of source `source` (index into [`WideSpec::sources`]).
    pub fn apply(&mut self, source: usize, batch: &ChangeBatch) -> Result<WideApplied, AggError> {
        let mut applied = WideApplied::default();
        let rows = &batch.rows;
        let kinds: Vec<RowKind> = (0..rows.num_rows())
            .map(|i| {
                let k = batch.kinds.value(i);
                RowKind::from_byte(k).ok_or(AggError::Kind { table: self.spec.name.clone(), kind: k })
            })
            .collect::<Result<_, _>>()?;
        applied.changes = kinds.len() as u64;
        applied.retractions =
            kinds.iter().filter(|k| matches!(k, RowKind::UpdateBefore | RowKind::Delete)).count() as u64;
        if source == 0 {
            let col = |n: &str| {
                rows.column_by_name(n).cloned().ok_or_else(|| self.bad(format!("{} has no column {n}", self.spec.fact)))
            };
            let keys = self.key_names.iter().map(|k| col(k)).collect::<Result<Vec<_>, _>>()?;
            let picks = self.fact_picks.iter().map(|p| col(p)).collect::<Result<Vec<_>, _>>()?;
            for (i, kind) in kinds.iter().enumerate() {
                let key: FactKey = keys.iter().map(|c| scalar::read(c, i)).collect();
                let id = match kind {
                    RowKind::Insert | RowKind::UpdateAfter => {
                        let id = self.id_of(key);
                        let slot = &mut self.slots[id as usize];
                        if slot.fact.is_none() {
                            self.facts += 1;
                        }
                        slot.fact = Some(picks.iter().map(|c| scalar::read(c, i)).collect());
                        id
                    }
                    RowKind::Delete => {
                        let Some(&id) = self.ids.get(key.as_slice()) else { continue };
                        if self.slots[id as usize].fact.take().is_some() {
                            self.facts -= 1;
                        }
                        id
                    }
                    RowKind::UpdateBefore => continue,
                };
                mark(&mut self.slots, &mut self.dirty, id);
            }
        }
        for j in 0..self.joins.len() {
            if self.joins[j].source != source {
                continue;
            }
            let col = |n: &str| {
                rows.column_by_name(n)
                    .cloned()
                    .ok_or_else(|| self.bad(format!("{} has no column {n}", self.spec.joins[j].entity)))
            };
            let key = col(&self.joins[j].key)?;
            let picks = self.joins[j].picks.iter().map(|p| col(p)).collect::<Result<Vec<_>, _>>()?;
            for (i, kind) in kinds.iter().enumerate() {
                applied.fanned_out += self.dim_row(
                    j,
                    scalar::read(&key, i),
                    || picks.iter().map(|c| scalar::read(c, i)).collect(),
                    *kind,
                );
            }
        }
        Ok(applied)
    }

    /// The current row of fact `id` (none if the fact is gone), updating the
    /// join references.
    fn row(&mut self, id: FactId) -> Result<Option<Vec<Scalar>>, AggError> {
        let slot = &self.slots[id as usize];
        let Some(fact) = &slot.fact else {
            let used = std::mem::take(&mut self.slots[id as usize].used);
            for (j, u) in self.joins.iter_mut().zip(used.iter()) {
                unreference(&mut j.refs, u, id);
            }
            return Ok(None);
        };
        let mut row: Vec<Scalar> = Vec::with_capacity(self.origins.len());
        let mut used = Vec::with_capacity(self.joins.len());
        for (i, o) in self.origins.iter().enumerate() {
            let v = match *o {
                Origin::Fact(f) => fact[f].clone(),
                Origin::Join(j, c) => {
                    let on = &row[self.joins[j].on];
                    if c == 0 {
                        used.push(on.clone());
                    }
                    self.joins[j].rows.get(on).map_or(Scalar::Null, |r| r[c].clone())
                }
                Origin::Compute(k) => {
                    compute(&self.spec.compute[k], &row, &self.schema, self.scales[i]).map_err(|e| {
                        self.bad(format!("fact {:?}: compute {}: {e}", slot.key, self.spec.compute[k].name))
                    })?
                }
            };
            row.push(v);
        }
        let old = std::mem::replace(&mut self.slots[id as usize].used, used.into_boxed_slice());
        let used = &self.slots[id as usize].used;
        for (j, join) in self.joins.iter_mut().enumerate() {
            let (before, now) = (old.get(j).unwrap_or(&Scalar::Null), &used[j]);
            if before != now {
                unreference(&mut join.refs, before, id);
            }
            if !now.is_null() {
                join.refs.entry(now.clone()).or_default().insert(id);
            }
        }
        Ok(Some(row))
    }

    /// The rows changed since the last call (those equal to what Gold holds are skipped).
    pub fn take_changes(&mut self) -> Result<KeyedChanges, AggError> {
        let mut live: Vec<Vec<Scalar>> = Vec::new();
        let mut gone: Vec<FactKey> = Vec::new();
        for id in std::mem::take(&mut self.dirty) {
            self.slots[id as usize].dirty = false;
            match self.row(id)? {
                Some(row) => {
                    let h = scalar::row_hash(&row);
                    if self.slots[id as usize].emitted.replace(h) != Some(h) {
                        live.push(row);
                    }
                }
                None => {
                    if self.slots[id as usize].emitted.take().is_some() {
                        gone.push(self.slots[id as usize].key.to_vec());
                    }
                    self.release(id);
                }
            }
        }
        let partitions = live
            .iter()
            .map(|r| match &r[self.partition_col] {
                Scalar::Int(v) if self.partition_is_date => {
                    Some(crate::sink::partition_ordinal(self.spec.partition, *v as i32))
                }
                Scalar::Int(v) => {
                    Some(crate::sink::partition_ordinal(self.spec.partition, v.div_euclid(86_400_000_000) as i32))
                }
                _ => None,
            })
            .collect();
        let rows = build(&self.schema, &live).map_err(|e| self.bad(e))?;
        let gone_rows: Vec<Vec<Scalar>> = gone
            .into_iter()
            .map(|k| {
                let mut r = vec![Scalar::Null; self.origins.len()];
                for (i, v) in self.key_out.iter().zip(k) {
                    r[*i] = v;
                }
                r
            })
            .collect();
        let gone = build(&self.schema, &gone_rows).map_err(|e| self.bad(e))?;
        Ok(KeyedChanges { rows, partitions, gone })
    }

    pub fn source_names(&self) -> &[String] {
        &self.sources
    }

    /// Rows (facts) in memory.
    pub fn len(&self) -> usize {
        self.facts
    }

    pub fn is_empty(&self) -> bool {
        self.facts == 0
    }
}

/// Marks fact `id` for recomputation at the next commit (once).
fn mark(slots: &mut [Slot], dirty: &mut Vec<FactId>, id: FactId) {
    let slot = &mut slots[id as usize];
    if !slot.dirty {
        slot.dirty = true;
        dirty.push(id);
    }
}

fn unreference(refs: &mut HashMap<Scalar, HashSet<FactId>>, dim: &Scalar, fact: FactId) {
    if let Some(set) = refs.get_mut(dim) {
        set.remove(&fact);
        if set.is_empty() {
            refs.remove(dim);
        }
    }
}

/// Builds a batch of `schema` from rows of scalars.
pub fn build(schema: &SchemaRef, rows: &[Vec<Scalar>]) -> Result<RecordBatch, String> {
    let columns = (0..schema.fields().len())
        .map(|c| {
            let values: Vec<Scalar> = rows.iter().map(|r| r[c].clone()).collect();
            scalar::build(schema.field(c).data_type(), &values)
                .map_err(|e| format!("column {}: {e}", schema.field(c).name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schema.fields().is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| format!("building rows: {e}"))
}

/// The type of `a op b`: integers stay integers, decimals keep their scale
/// (`*` adds the scales), anything with a double is a double.
fn computed_type(a: &DataType, op: char, b: &DataType) -> Option<DataType> {
    let scale = |t: &DataType| match t {
        DataType::Int32 | DataType::Int64 => Some(0i8),
        DataType::Decimal128(_, s) => Some(*s),
        _ => None,
    };
    if !(a.is_numeric() && b.is_numeric()) {
        return None;
    }
    if matches!(a, DataType::Float64) || matches!(b, DataType::Float64) {
        return Some(DataType::Float64);
    }
    let (sa, sb) = (scale(a)?, scale(b)?);
    if sa == 0 && sb == 0 {
        return Some(DataType::Int64);
    }
    let s = if op == '*' { sa + sb } else { sa.max(sb) };
    Some(DataType::Decimal128(38, s))
}

fn compute(c: &Computed, row: &[Scalar], schema: &SchemaRef, out_scale: i8) -> Result<Scalar, String> {
    let value = |o: &Operand| -> (Scalar, i8) {
        match o {
            Operand::Literal(v, 0) => (Scalar::Int(*v as i64), 0),
            Operand::Literal(v, s) => (Scalar::Dec((*v).into()), *s),
            Operand::Column(n) => {
                let i = schema.index_of(n).expect("bound columns exist");
                let s = if let DataType::Decimal128(_, s) = schema.field(i).data_type() { *s } else { 0 };
                (row[i].clone(), s)
            }
        }
    };
    let ((a, sa), (b, sb)) = (value(&c.left), value(&c.right));
    if a.is_null() || b.is_null() {
        return Ok(Scalar::Null);
    }
    if let (Scalar::Float(_), _) | (_, Scalar::Float(_)) = (&a, &b) {
        let (x, y) = (a.as_f64(sa).unwrap_or(f64::NAN), b.as_f64(sb).unwrap_or(f64::NAN));
        let v = match c.op {
            '*' => x * y,
            '+' => x + y,
            _ => x - y,
        };
        return Ok(Scalar::Float(crate::scalar::OrdF64(v)));
    }
    let int = |s: &Scalar| match s {
        Scalar::Int(v) => Some(*v as i128),
        Scalar::Dec(v) => Some(v.get()),
        _ => None,
    };
    let (x, y) = (int(&a).ok_or("not a number")?, int(&b).ok_or("not a number")?);
    let rescale = |v: i128, from: i8| -> Option<i128> { v.checked_mul(10i128.checked_pow((out_scale - from) as u32)?) };
    let overflow = || format!("{a:?} {} {b:?} overflows", c.op);
    let v = match c.op {
        '*' => x.checked_mul(y),
        '+' => rescale(x, sa).zip(rescale(y, sb)).and_then(|(x, y)| x.checked_add(y)),
        _ => rescale(x, sa).zip(rescale(y, sb)).and_then(|(x, y)| x.checked_sub(y)),
    }
    .ok_or_else(overflow)?;
    if sa == 0 && sb == 0 {
        return i64::try_from(v).map(Scalar::Int).map_err(|_| overflow());
    }
    if v.unsigned_abs() >= 10u128.pow(38) {
        return Err(overflow());
    }
    Ok(Scalar::Dec(v.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_picks_and_computations() {
        assert_eq!(
            Pick::parse("price as list_price").expect("ok"),
            Pick { source: "price".into(), name: "list_price".into() }
        );
        assert!(Pick::parse("price list_price").is_err());
        let c = Computed::parse("quantity * unit_price as amount").expect("ok");
        assert_eq!(c.op, '*');
        assert_eq!(c.right, Operand::Column("unit_price".into()));
        assert_eq!(Computed::parse("total - 1.50 as net").expect("ok").right, Operand::Literal(150, 2));
        assert!(Computed::parse("a / b as c").is_err());
    }

    #[test]
    fn decimal_arithmetic_is_exact() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("q", DataType::Int32, true),
            Field::new("p", DataType::Decimal128(10, 2), true),
        ]));
        let row = [Scalar::Int(3), Scalar::Dec(1999.into())];
        let mul = Computed::parse("q * p as a").expect("ok");
        assert_eq!(
            computed_type(&DataType::Int32, '*', &DataType::Decimal128(10, 2)),
            Some(DataType::Decimal128(38, 2))
        );
        assert_eq!(compute(&mul, &row, &schema, 2), Ok(Scalar::Dec(5997.into())));
        let add = Computed::parse("p + q as a").expect("ok");
        assert_eq!(compute(&add, &row, &schema, 2), Ok(Scalar::Dec(2299.into())));
        let null = [Scalar::Null, Scalar::Dec(1.into())];
        assert_eq!(compute(&mul, &null, &schema, 2), Ok(Scalar::Null));
        assert!(computed_type(&DataType::Utf8, '*', &DataType::Int64).is_none());
    }
}
