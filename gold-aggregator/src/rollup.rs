//! [`Aggregation`]: one rollup's groups in memory, changed by the Silver
//! changelog (`+I`/`+U` add a row's contribution, `-U`/`-D` retract it),
//! and the Gold rows of the groups a batch touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use changelog_store::RowKind;
use changelog_store::read::changelog_reader::ChangeBatch;

use crate::accum::{AccError, GroupState};
use crate::filter;
use crate::scalar::{self, Scalar};
use crate::spec::{Func, Rollup, WINDOW, WINDOW_START};
use crate::window::Window;

/// A Gold row's identity: window, its first day, the group-by values.
pub type GroupKey = (Window, i32, Vec<Scalar>);

#[derive(Debug, thiserror::Error)]
pub enum AggError {
    #[error("gold.{table}: {message}")]
    Schema { table: String, message: String },
    #[error("gold.{table}: group {group}: {source}")]
    State { table: String, group: String, source: AccError },
    #[error("gold.{table}: store row kind {kind} is not a change kind")]
    Kind { table: String, kind: i8 },
    #[error(
        "gold.{table}: the state table and the source disagree on group {group} (state: {state}, source: {source_state}); \
         the state cannot be trusted: stop the aggregator, remove the state table and the Gold table, and start it \
         again to rebuild both from the source"
    )]
    Disagree { table: String, group: String, state: String, source_state: String },
}

/// What one change batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    pub changes: u64,
    pub retractions: u64,
    /// Changes to a window older than the newest window this rollup has seen.
    pub late: u64,
    /// Rows without an event time (counted nowhere).
    pub untimed: u64,
    /// Rows the filter left out.
    pub filtered: u64,
}

pub struct Aggregation {
    pub spec: Rollup,
    funcs: Vec<Func>,
    /// Source type of each measure's column (Int64 for a count of rows).
    measure_sources: Vec<DataType>,
    time_is_date: bool,
    group_types: Vec<DataType>,
    scales: HashMap<String, i8>,
    schema: SchemaRef,
    pub groups: BTreeMap<GroupKey, GroupState>,
    /// Groups changed since the last [`Aggregation::take_touched`].
    touched: BTreeSet<GroupKey>,
    newest_day: Option<i32>,
    /// For each measure, the measure whose per-value counts it reads: the
    /// first `min`/`max`/`count_distinct` over the same column (itself for
    /// the first). `min` and `max` of one column count the same values, so
    /// one map serves both.
    count_owner: Vec<usize>,
}

impl Aggregation {
    /// Binds `spec` to the source entity's columns (`source`: its Arrow schema).
    pub fn bind(spec: Rollup, source: &Schema) -> Result<Self, AggError> {
        let bad = |message: String| AggError::Schema { table: spec.name.clone(), message };
        let field = |name: &str| {
            let f = source
                .field_with_name(name)
                .map_err(|_| bad(format!("Silver entity {} has no column {name}", spec.source)))?;
            if !scalar::supported(f.data_type()) {
                return Err(bad(format!("column {name} of type {} cannot be aggregated", f.data_type())));
            }
            Ok(f.data_type().clone())
        };
        let time_is_date = match field(&spec.time)? {
            DataType::Date32 => true,
            DataType::Timestamp(_, _) => false,
            other => return Err(bad(format!("time column {} is {other}, not a date or timestamp", spec.time))),
        };
        let group_types = spec.group_by.iter().map(|g| field(g)).collect::<Result<Vec<_>, _>>()?;
        let mut measure_sources = Vec::new();
        let mut fields =
            vec![Field::new(WINDOW, DataType::Utf8, false), Field::new(WINDOW_START, DataType::Date32, false)];
        for (g, ty) in spec.group_by.iter().zip(&group_types) {
            fields.push(Field::new(g, scalar::output_type(ty), true));
        }
        for m in &spec.measures {
            let src = match &m.column {
                Some(c) => field(c)?,
                None => DataType::Int64,
            };
            let out = measure_type(m.func, &src)
                .ok_or_else(|| bad(format!("measure {}: {:?} of non-numeric {src}", m.name, m.func)))?;
            fields.push(Field::new(&m.name, out, true));
            measure_sources.push(src);
        }
        let mut scales = HashMap::new();
        for c in spec.source_columns() {
            if let DataType::Decimal128(_, s) = field(c)? {
                scales.insert(c.to_string(), s);
            }
        }
        let fields: Vec<Field> = fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                f.with_metadata([("PARQUET:field_id".to_string(), (i + 1).to_string())].into_iter().collect())
            })
            .collect();
        let count_owner = spec
            .measures
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let shares = |o: &crate::spec::Measure| {
                    o.func.counts_values() && m.func.counts_values() && o.column.is_some() && o.column == m.column
                };
                spec.measures.iter().position(shares).unwrap_or(i)
            })
            .collect();
        Ok(Aggregation {
            count_owner,
            funcs: spec.measures.iter().map(|m| m.func).collect(),
            spec,
            measure_sources,
            time_is_date,
            group_types,
            scales,
            schema: Arc::new(Schema::new(fields)),
            groups: BTreeMap::new(),
            touched: BTreeSet::new(),
            newest_day: None,
        })
    }

    /// The Gold table's schema (Arrow, with Iceberg field ids).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn funcs(&self) -> &[Func] {
        &self.funcs
    }

    /// Groups loaded from the state table on start.
    pub fn restore(&mut self, groups: impl IntoIterator<Item = (GroupKey, GroupState)>) {
        self.groups = groups.into_iter().collect();
        self.newest_day = self.groups.keys().map(|k| k.1).max();
    }

    /// Whether a measure keeps a count per value (`min`, `max`,
    /// `count_distinct`): the state table does not keep those counts, and
    /// [`Aggregation::rebuild`] gets them from the source on start.
    pub fn counts_values(&self) -> bool {
        self.funcs.iter().any(|f| f.counts_values())
    }

    /// Rebuilds every group from the source's rows at the state's position
    /// (`source`: a scan of the source table at that snapshot, each row an
    /// insert), checked against the groups the state table holds (`stored`):
    /// the same groups, with the same rows, counts and exact totals.
    pub fn rebuild(&mut self, stored: Vec<(GroupKey, GroupState)>, source: &[RecordBatch]) -> Result<(), AggError> {
        self.groups.clear();
        for rows in source {
            let kinds = arrow_array::Int8Array::from(vec![RowKind::Insert.to_byte(); rows.num_rows()]);
            self.apply(&ChangeBatch { kinds, rows: rows.clone() })?;
        }
        self.touched.clear();
        let disagree = |key: &GroupKey, state: String, source_state: String| AggError::Disagree {
            table: self.spec.name.clone(),
            group: describe(key),
            state,
            source_state,
        };
        for (key, s) in &stored {
            match self.groups.get(key) {
                Some(rebuilt) if rebuilt.agrees_with(s) => {}
                Some(rebuilt) => {
                    return Err(disagree(key, format!("{s:?}"), format!("{:?}", rebuilt.without_values())));
                }
                None => return Err(disagree(key, format!("{s:?}"), "no rows".into())),
            }
        }
        if stored.len() != self.groups.len() {
            let stored: BTreeSet<&GroupKey> = stored.iter().map(|(k, _)| k).collect();
            if let Some((key, s)) = self.groups.iter().find(|(k, _)| !stored.contains(k)) {
                return Err(disagree(key, "no group".into(), format!("{:?}", s.without_values())));
            }
        }
        self.newest_day = self.groups.keys().map(|k| k.1).max();
        Ok(())
    }

    /// The source columns [`Aggregation::apply`] reads: a reader decodes only these.
    pub fn source_columns(&self) -> Vec<String> {
        let s = &self.spec;
        let measures = s.measures.iter().filter_map(|m| m.column.clone());
        let filter = s.filter.columns().map(str::to_string);
        std::iter::once(s.time.clone()).chain(s.group_by.iter().cloned()).chain(measures).chain(filter).collect()
    }

    /// Adds and retracts the rows of one change batch.
    pub fn apply(&mut self, batch: &ChangeBatch) -> Result<Applied, AggError> {
        let rows = &batch.rows;
        let column = |name: &str| -> Result<ArrayRef, AggError> {
            rows.column_by_name(name).cloned().ok_or_else(|| AggError::Schema {
                table: self.spec.name.clone(),
                message: format!("the Silver changelog has no column {name}"),
            })
        };
        let time = column(&self.spec.time)?;
        let groups = self.spec.group_by.iter().map(|g| column(g)).collect::<Result<Vec<_>, _>>()?;
        let measures = self
            .spec
            .measures
            .iter()
            .map(|m| m.column.as_deref().map(column).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let filter_cols: HashMap<&str, ArrayRef> =
            self.spec.filter.columns().map(|c| Ok((c, column(c)?))).collect::<Result<_, AggError>>()?;
        let mut applied = Applied::default();
        let one = Scalar::Int(1);
        for i in 0..rows.num_rows() {
            let kind = batch.kinds.value(i);
            let sign = match RowKind::from_byte(kind) {
                Some(RowKind::Insert | RowKind::UpdateAfter) => 1,
                Some(RowKind::UpdateBefore | RowKind::Delete) => -1,
                None => return Err(AggError::Kind { table: self.spec.name.clone(), kind }),
            };
            applied.changes += 1;
            if sign < 0 {
                applied.retractions += 1;
            }
            if !filter_cols.is_empty() {
                let pass = self.spec.filter.accepts(|c| filter::Value {
                    scalar: filter_cols.get(c).map_or(Scalar::Null, |col| scalar::read(col, i)),
                    scale: self.scales.get(c).copied().unwrap_or(0),
                });
                if !pass {
                    applied.filtered += 1;
                    continue;
                }
            }
            let day = match scalar::read(&time, i) {
                Scalar::Int(v) if self.time_is_date => v as i32,
                Scalar::Int(v) => self.spec.zone.local_day(v),
                _ => {
                    applied.untimed += 1;
                    continue;
                }
            };
            if self.newest_day.is_some_and(|n| Window::Day.start(day) < n) && sign > 0 {
                applied.late += 1;
            }
            self.newest_day = Some(self.newest_day.map_or(day, |n| n.max(day)));
            let group: Vec<Scalar> = groups.iter().map(|g| scalar::read(g, i)).collect();
            let values: Vec<Scalar> =
                measures.iter().map(|m| m.as_ref().map_or(one.clone(), |c| scalar::read(c, i))).collect();
            for w in &self.spec.windows {
                let key = (*w, w.start(day), group.clone());
                let state = self.groups.entry(key.clone()).or_insert_with(|| GroupState::new(&self.funcs));
                state.rows += sign;
                let err = |source| AggError::State { table: self.spec.name.clone(), group: describe(&key), source };
                for (m, (acc, v)) in state.accs.iter_mut().zip(&values).enumerate() {
                    if self.count_owner[m] == m {
                        acc.apply(v, sign).map_err(err)?;
                    }
                }
                if state.rows < 0 || state.accs.iter().any(|a| a.negative()) {
                    return Err(err(AccError::Unknown(Scalar::Null)));
                }
                self.touched.insert(key);
            }
        }
        Ok(applied)
    }

    /// The groups changed since the last call: those with rows (to upsert,
    /// with their state as the state table keeps it, without per-value
    /// counts) and those left empty (to delete; dropped from memory).
    pub fn take_touched(&mut self) -> (Vec<(GroupKey, GroupState)>, Vec<GroupKey>) {
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for key in std::mem::take(&mut self.touched) {
            match self.groups.get(&key) {
                Some(s) if s.rows > 0 => live.push((key, s.without_values())),
                _ => {
                    self.groups.remove(&key);
                    gone.push(key);
                }
            }
        }
        (live, gone)
    }

    pub fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// The Gold rows of `groups` (held in memory), in the given order.
    pub fn gold_rows(&self, groups: &[(GroupKey, GroupState)]) -> Result<RecordBatch, AggError> {
        let bad = |message: String| AggError::Schema { table: self.spec.name.clone(), message };
        let states = groups
            .iter()
            .map(|(k, _)| self.groups.get(k).ok_or_else(|| bad(format!("no group {}", describe(k)))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let windows: Vec<Scalar> = groups.iter().map(|((w, _, _), _)| Scalar::Str(w.as_str().into())).collect();
        let starts: Vec<Scalar> = groups.iter().map(|((_, s, _), _)| Scalar::Int(*s as i64)).collect();
        columns.push(scalar::build(&DataType::Utf8, &windows).map_err(&bad)?);
        columns.push(scalar::build(&DataType::Date32, &starts).map_err(&bad)?);
        for (g, ty) in self.group_types.iter().enumerate() {
            let values: Vec<Scalar> = groups.iter().map(|((_, _, k), _)| k[g].clone()).collect();
            columns.push(scalar::build(&scalar::output_type(ty), &values).map_err(&bad)?);
        }
        let first_measure = 2 + self.group_types.len();
        for (m, func) in self.funcs.iter().enumerate() {
            let src = &self.measure_sources[m];
            let owner = self.count_owner[m];
            let values: Vec<Scalar> = states.iter().map(|s| s.accs[owner].value(*func, src)).collect();
            let ty = self.schema.field(first_measure + m).data_type();
            let col =
                scalar::build(ty, &values).map_err(|e| bad(format!("measure {}: {e}", self.spec.measures[m].name)))?;
            columns.push(col);
        }
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| bad(format!("building Gold rows: {e}")))
    }
}

/// The Gold column type of `func` over a source column of type `src`
/// (`sum` of a decimal is `decimal(38, s)`, of an integer `long`, of a double
/// `double`; `avg` a double; counts `long`; `min`/`max` the column's type);
/// `None` for `sum`/`avg` of a non-numeric column.
pub fn measure_type(func: Func, src: &DataType) -> Option<DataType> {
    let numeric = src.is_numeric() || matches!(src, DataType::Decimal128(_, _));
    Some(match func {
        Func::Count | Func::CountDistinct => DataType::Int64,
        Func::Avg if numeric => DataType::Float64,
        Func::Sum if numeric => match src {
            DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
            DataType::Float32 | DataType::Float64 => DataType::Float64,
            _ => DataType::Int64,
        },
        Func::Sum | Func::Avg => return None,
        Func::Min | Func::Max => scalar::output_type(src),
    })
}

fn describe(key: &GroupKey) -> String {
    format!("{} {} {:?}", key.0.as_str(), crate::window::date(key.1), key.2)
}
