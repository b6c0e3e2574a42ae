//! ML feature tables: one row per entity key and feature date, point-in-time
//! correct, maintained incrementally.
//!
//! ```toml
//! [[features]]
//! name = "customer_features"
//! source = "order_lines_wide"     # a Silver entity or a wide Gold table
//! key = "customer_id"             # the entity the features describe
//! time = "order_date"             # event time (date or timestamp, UTC days)
//! every = "week"                  # feature dates: each day, Monday or first of the month
//! partition = "month"             # of feature_date; or "year"
//! [[features.feature]]
//! name = "spend_30d"
//! fn = "sum"                      # count count_distinct sum avg min max days_since_last ratio
//! column = "amount"
//! days = 30                       # events in (feature_date - 30 days, feature_date]
//! [[features.feature]]
//! name = "avg_order_value_90d"
//! fn = "ratio"                    # one feature divided by another (null when it is 0)
//! of = ["spend_90d", "orders_90d"]
//! [features.label]
//! name = "churn"                  # true: no event in the `days` after feature_date
//! days = 60                       # null while feature_date + days is beyond the newest event
//! ```
//!
//! **Point in time.** The table is a feature snapshot per date, partitioned by
//! month of `feature_date`, rather than one row per key read by time travel:
//! a training set joins labels to features as of many past dates in one scan,
//! late and corrected events rewrite exactly the snapshots they fall into,
//! and a row for date D is computed from the events dated on or before D only
//! (the label, by definition, from the `days` after D). Rows exist for every
//! feature date from the key's first event to the newest event day of the
//! source (the table's horizon).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use changelog_store::RowKind;
use changelog_store::read::changelog_reader::ChangeBatch;
use serde::Deserialize;

use crate::accum::Acc;
use crate::rollup::{AggError, measure_type};
use crate::scalar::{self, OrdF64, Scalar};
use crate::spec::{Func, PartitionBy, SpecError};
use crate::wide::KeyedChanges;
use crate::window::Window;

/// The feature date column.
pub const FEATURE_DATE: &str = "feature_date";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureFn {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    DaysSinceLast,
    Ratio,
}

impl FeatureFn {
    /// The rollup measure a windowed feature is (its accumulator and type);
    /// `None` for the features a row computes itself.
    pub fn measure(self) -> Option<Func> {
        Some(match self {
            FeatureFn::Count => Func::Count,
            FeatureFn::CountDistinct => Func::CountDistinct,
            FeatureFn::Sum => Func::Sum,
            FeatureFn::Avg => Func::Avg,
            FeatureFn::Min => Func::Min,
            FeatureFn::Max => Func::Max,
            FeatureFn::DaysSinceLast | FeatureFn::Ratio => return None,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub name: String,
    #[serde(rename = "fn")]
    pub func: FeatureFn,
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub days: Option<u32>,
    #[serde(default)]
    pub of: Option<[String; 2]>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub name: String,
    pub days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesToml {
    name: String,
    source: String,
    key: String,
    time: String,
    every: Window,
    #[serde(default)]
    partition: PartitionBy,
    #[serde(rename = "feature")]
    features: Vec<Feature>,
    #[serde(default)]
    label: Option<Label>,
}

#[derive(Debug, Clone)]
pub struct FeaturesSpec {
    pub name: String,
    pub source: String,
    pub key: String,
    pub time: String,
    pub every: Window,
    pub partition: PartitionBy,
    pub features: Vec<Feature>,
    pub label: Option<Label>,
}

impl FeaturesSpec {
    pub fn from_toml(t: FeaturesToml) -> Result<Self, SpecError> {
        let invalid = |message: String| SpecError::Invalid { table: t.name.clone(), message };
        if !lakehouse::config::is_identifier(&t.name) {
            return Err(invalid("name must be [a-z0-9_]+".into()));
        }
        if t.features.is_empty() {
            return Err(invalid("at least one [[features.feature]] is required".into()));
        }
        let mut names = vec![t.key.as_str(), FEATURE_DATE];
        for (i, f) in t.features.iter().enumerate() {
            let windowed = !matches!(f.func, FeatureFn::DaysSinceLast | FeatureFn::Ratio);
            match (windowed, f.days) {
                (true, None | Some(0)) => return Err(invalid(format!("feature {}: days (> 0) is required", f.name))),
                (false, Some(_)) => return Err(invalid(format!("feature {}: {:?} takes no days", f.name, f.func))),
                _ => {}
            }
            let needs_column = !matches!(f.func, FeatureFn::Count | FeatureFn::DaysSinceLast | FeatureFn::Ratio);
            if needs_column && f.column.is_none() {
                return Err(invalid(format!("feature {}: {:?} needs a column", f.name, f.func)));
            }
            if f.func == FeatureFn::Ratio {
                let Some([a, b]) = &f.of else {
                    return Err(invalid(format!("feature {}: ratio needs of = [numerator, denominator]", f.name)));
                };
                for n in [a, b] {
                    if !t.features[..i].iter().any(|e| &e.name == n) {
                        return Err(invalid(format!("feature {}: {n} is not a feature defined before it", f.name)));
                    }
                }
            }
            names.push(&f.name);
        }
        if let Some(l) = &t.label {
            if l.days == 0 {
                return Err(invalid("label days must be > 0".into()));
            }
            names.push(&l.name);
        }
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if !seen.insert(*n) {
                return Err(invalid(format!("column {n} appears twice")));
            }
        }
        Ok(FeaturesSpec {
            name: t.name,
            source: t.source,
            key: t.key,
            time: t.time,
            every: t.every,
            partition: t.partition,
            features: t.features,
            label: t.label,
        })
    }
}

type Events = BTreeMap<i32, Vec<Vec<Scalar>>>;

/// What one change batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FeaturesApplied {
    pub changes: u64,
    pub retractions: u64,
    /// Rows without a key or an event time (in no feature).
    pub unkeyed: u64,
}

pub struct Features {
    pub spec: FeaturesSpec,
    schema: SchemaRef,
    time_is_date: bool,
    /// Source columns kept per event, and each feature's index into them.
    columns: Vec<String>,
    feature_col: Vec<Option<usize>>,
    /// Source type of each feature's column.
    feature_src: Vec<DataType>,
    scales: Vec<i8>,
    longest: i32,
    events: HashMap<Scalar, Events>,
    /// Events per day, over every key: the newest is the horizon.
    days: BTreeMap<i32, u64>,
    /// Horizon at the last [`Features::take_changes`].
    horizon_taken: Option<i32>,
    /// Key → (first, last) feature dates to recompute.
    dirty: HashMap<Scalar, (i32, i32)>,
    /// Key → feature date → hash of the row Gold holds.
    emitted: HashMap<Scalar, BTreeMap<i32, u64>>,
}

impl Features {
    pub fn bind(spec: FeaturesSpec, source: &Schema) -> Result<Self, AggError> {
        let bad = |message: String| AggError::Schema { table: spec.name.clone(), message };
        let field = |name: &str| -> Result<DataType, AggError> {
            let f = source
                .field_with_name(name)
                .map_err(|_| bad(format!("source {} has no column {name}", spec.source)))?;
            if !scalar::supported(f.data_type()) {
                return Err(bad(format!("column {name} of type {} cannot be read", f.data_type())));
            }
            Ok(f.data_type().clone())
        };
        let key_ty = scalar::output_type(&field(&spec.key)?);
        let time_is_date = match field(&spec.time)? {
            DataType::Date32 => true,
            DataType::Timestamp(_, _) => false,
            other => return Err(bad(format!("time column {} is {other}, not a date or timestamp", spec.time))),
        };
        let mut columns: Vec<String> = Vec::new();
        let mut feature_col = Vec::new();
        let mut feature_src = Vec::new();
        let mut fields = vec![Field::new(&spec.key, key_ty, false), Field::new(FEATURE_DATE, DataType::Date32, false)];
        for f in &spec.features {
            let src = match &f.column {
                Some(c) => {
                    let ty = field(c)?;
                    let at = columns.iter().position(|x| x == c).unwrap_or_else(|| {
                        columns.push(c.clone());
                        columns.len() - 1
                    });
                    feature_col.push(Some(at));
                    ty
                }
                None => {
                    feature_col.push(None);
                    DataType::Int64
                }
            };
            let out = match f.func.measure() {
                Some(func) => measure_type(func, &src)
                    .ok_or_else(|| bad(format!("feature {}: {:?} of non-numeric {src}", f.name, f.func)))?,
                None if f.func == FeatureFn::DaysSinceLast => DataType::Int64,
                None => DataType::Float64, // ratio
            };
            fields.push(Field::new(&f.name, out, true));
            feature_src.push(src);
        }
        if let Some(l) = &spec.label {
            fields.push(Field::new(&l.name, DataType::Boolean, true));
        }
        let fields: Vec<Field> = fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                f.with_metadata([("PARQUET:field_id".to_string(), (i + 1).to_string())].into_iter().collect())
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let scales = schema
            .fields()
            .iter()
            .map(|f| if let DataType::Decimal128(_, s) = f.data_type() { *s } else { 0 })
            .collect();
        let longest = spec.features.iter().filter_map(|f| f.days).max().unwrap_or(1) as i32;
        Ok(Features {
            time_is_date,
            columns,
            feature_col,
            feature_src,
            scales,
            longest,
            schema,
            spec,
            events: HashMap::new(),
            days: BTreeMap::new(),
            horizon_taken: None,
            dirty: HashMap::new(),
            emitted: HashMap::new(),
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Key columns of the Gold table.
    pub fn key(&self) -> Vec<String> {
        vec![self.spec.key.clone(), FEATURE_DATE.to_string()]
    }

    /// Events held in memory, over every key (from the per-day counts: no
    /// walk over the keys on the commit path).
    pub fn events(&self) -> usize {
        self.days.values().sum::<u64>() as usize
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.horizon() != self.horizon_taken
    }

    fn bad(&self, message: String) -> AggError {
        AggError::Schema { table: self.spec.name.clone(), message }
    }

    fn horizon(&self) -> Option<i32> {
        self.days.keys().next_back().copied()
    }

    /// Restores from the rows Gold holds and the source's rows at the recorded snapshot.
    pub fn restore(&mut self, state: &[RecordBatch], source: &[RecordBatch]) -> Result<(), AggError> {
        for b in source {
            let kinds = arrow_array::Int8Array::from(vec![RowKind::Insert.to_byte(); b.num_rows()]);
            self.apply(&ChangeBatch { rows: b.clone(), kinds })?;
        }
        for b in state {
            let cols = scalar::columns_of(b, &self.schema).map_err(|e| self.bad(format!("state: {e}")))?;
            for i in 0..b.num_rows() {
                let row: Vec<Scalar> = cols.iter().map(|c| scalar::read(c, i)).collect();
                let Scalar::Int(d) = row[1] else { return Err(self.bad("state row without a feature date".into())) };
                self.emitted.entry(row[0].clone()).or_default().insert(d as i32, scalar::row_hash(&row));
            }
        }
        self.dirty.clear();
        self.horizon_taken = self.horizon();
        Ok(())
    }

    /// The source columns [`Features::apply`] reads: a reader decodes only these.
    pub fn source_columns(&self) -> Vec<String> {
        [self.spec.key.clone(), self.spec.time.clone()].into_iter().chain(self.columns.iter().cloned()).collect()
    }

    /// Adds and retracts the events of one change batch.
    pub fn apply(&mut self, batch: &ChangeBatch) -> Result<FeaturesApplied, AggError> {
        let rows = &batch.rows;
        let col =
            |n: &str| rows.column_by_name(n).cloned().ok_or_else(|| self.bad(format!("the source has no column {n}")));
        let (key, time) = (col(&self.spec.key)?, col(&self.spec.time)?);
        let values = self.columns.iter().map(|c| col(c)).collect::<Result<Vec<_>, _>>()?;
        let mut applied = FeaturesApplied::default();
        for i in 0..rows.num_rows() {
            let k = batch.kinds.value(i);
            let sign = match RowKind::from_byte(k) {
                Some(RowKind::Insert | RowKind::UpdateAfter) => 1,
                Some(RowKind::UpdateBefore | RowKind::Delete) => -1,
                None => return Err(AggError::Kind { table: self.spec.name.clone(), kind: k }),
            };
            applied.changes += 1;
            if sign < 0 {
                applied.retractions += 1;
            }
            let (key, day) = match (scalar::read(&key, i), scalar::read(&time, i)) {
                (Scalar::Null, _) | (_, Scalar::Null) => {
                    applied.unkeyed += 1;
                    continue;
                }
                (k, Scalar::Int(v)) if self.time_is_date => (k, v as i32),
                (k, Scalar::Int(v)) => (k, v.div_euclid(86_400_000_000) as i32),
                _ => {
                    applied.unkeyed += 1;
                    continue;
                }
            };
            let event: Vec<Scalar> = values.iter().map(|c| scalar::read(c, i)).collect();
            let events = self.events.entry(key.clone()).or_default();
            if sign > 0 {
                events.entry(day).or_default().push(event);
                *self.days.entry(day).or_default() += 1;
            } else {
                let on_day = events.get_mut(&day);
                let at = on_day.as_ref().and_then(|v| v.iter().position(|e| *e == event));
                let (Some(on_day), Some(at)) = (on_day, at) else {
                    return Err(self.bad(format!("a retraction of key {key:?} on day {day} matches no event it holds")));
                };
                on_day.swap_remove(at);
                if on_day.is_empty() {
                    events.remove(&day);
                }
                if events.is_empty() {
                    self.events.remove(&key);
                }
                match self.days.get_mut(&day) {
                    Some(n) if *n > 1 => *n -= 1,
                    _ => {
                        self.days.remove(&day);
                    }
                }
            }
            // Feature dates this event moves: its windows, days-since-last up
            // to the key's next event, and the labels of the dates before it.
            let next = self.events.get(&key).and_then(|e| e.range(day + 1..).next().map(|(d, _)| *d));
            let hi = (day + self.longest - 1).max(next.unwrap_or(i32::MAX));
            let lo = day - self.spec.label.as_ref().map_or(0, |l| l.days as i32);
            let range = self.dirty.entry(key).or_insert((lo, hi));
            *range = (range.0.min(lo), range.1.max(hi));
        }
        Ok(applied)
    }

    /// The feature rows changed since the last call.
    pub fn take_changes(&mut self) -> Result<KeyedChanges, AggError> {
        let horizon = self.horizon();
        let label_days = self.spec.label.as_ref().map_or(0, |l| l.days as i32);
        // Per key, the range of dates its events moved (None: only the horizon's dates).
        let mut dirty: HashMap<Scalar, Option<(i32, i32)>> =
            std::mem::take(&mut self.dirty).into_iter().map(|(k, r)| (k, Some(r))).collect();
        // Feature dates a moved horizon changes for every key: those it adds or
        // removes, and those whose label it makes known (or unknown again, if the
        // newest events were retracted). Rows depend on the horizon only there.
        let mut horizon_dates: Vec<i32> = Vec::new();
        if horizon != self.horizon_taken {
            let keys = || self.events.keys().chain(self.emitted.keys()).cloned().collect::<BTreeSet<Scalar>>();
            match (self.horizon_taken, horizon) {
                (Some(a), Some(b)) => {
                    let (lo, hi) = (a.min(b), a.max(b));
                    for (from, to) in [(lo + 1, hi), (lo + 1 - label_days, hi - label_days)] {
                        horizon_dates.extend(self.feature_dates(from, to));
                    }
                    horizon_dates.sort_unstable();
                    horizon_dates.dedup();
                    if !horizon_dates.is_empty() {
                        for k in keys() {
                            dirty.entry(k).or_insert(None);
                        }
                    }
                }
                // The first horizon, or none left: every date of every key.
                (a, b) => {
                    let (a, b) = (a.unwrap_or(i32::MIN / 2), b.unwrap_or(i32::MIN / 2));
                    let (lo, hi) = (a.min(b) - label_days, a.max(b));
                    for k in keys() {
                        let r = dirty.entry(k).or_insert(Some((lo, hi)));
                        *r = Some(r.map_or((lo, hi), |r| (r.0.min(lo), r.1.max(hi))));
                    }
                }
            }
            self.horizon_taken = horizon;
        }
        let mut live: Vec<Vec<Scalar>> = Vec::new();
        let mut gone: Vec<Vec<Scalar>> = Vec::new();
        let mut dirty: Vec<(Scalar, Option<(i32, i32)>)> = dirty.into_iter().collect();
        dirty.sort();
        for (key, range) in dirty {
            let first = self.events.get(&key).and_then(|e| e.keys().next().copied());
            let held = self.emitted.remove(&key).unwrap_or_default();
            // Dates that can hold a row: from the first event to the horizon;
            // dates that do: those Gold holds.
            let low = first.into_iter().chain(held.keys().next().copied()).min();
            let high = horizon.into_iter().chain(held.keys().next_back().copied()).max();
            let (Some(low), Some(high)) = (low, high) else { continue };
            let mut dates: Vec<i32> = match range {
                Some((lo, hi)) => self.feature_dates(lo.max(low), hi.min(high)),
                None => Vec::new(),
            };
            dates.extend(horizon_dates.iter().copied().filter(|d| (low..=high).contains(d)));
            dates.sort_unstable();
            dates.dedup();
            let mut kept: BTreeMap<i32, u64> =
                held.iter().filter(|(d, _)| dates.binary_search(d).is_err()).map(|(d, h)| (*d, *h)).collect();
            for d in dates {
                let exists = first.is_some_and(|f| f <= d) && horizon.is_some_and(|h| d <= h);
                if exists {
                    let row = self.row(&key, d, horizon.expect("exists implies a horizon"))?;
                    let h = scalar::row_hash(&row);
                    if held.get(&d) != Some(&h) {
                        live.push(row);
                    }
                    kept.insert(d, h);
                } else if held.contains_key(&d) {
                    let mut r = vec![Scalar::Null; self.schema.fields().len()];
                    r[0] = key.clone();
                    r[1] = Scalar::Int(d as i64);
                    gone.push(r);
                }
            }
            if !kept.is_empty() {
                self.emitted.insert(key, kept);
            }
        }
        let partitions = live
            .iter()
            .map(|r| match r[1] {
                Scalar::Int(d) => Some(crate::sink::partition_ordinal(self.spec.partition, d as i32)),
                _ => None,
            })
            .collect();
        let rows = crate::wide::build(&self.schema, &live).map_err(|e| self.bad(e))?;
        let gone = crate::wide::build(&self.schema, &gone).map_err(|e| self.bad(e))?;
        Ok(KeyedChanges { rows, partitions, gone })
    }

    /// The feature dates (starts of `every`) from `from` to `to`, both included.
    fn feature_dates(&self, from: i32, to: i32) -> Vec<i32> {
        let every = self.spec.every;
        let mut d = every.start(from);
        if d < from {
            d = next_start(every, d);
        }
        let mut out = Vec::new();
        while d <= to {
            out.push(d);
            d = next_start(every, d);
        }
        out
    }

    /// The feature row of `key` as of day `d` (events dated `<= d` only; the label from the days after).
    fn row(&self, key: &Scalar, d: i32, horizon: i32) -> Result<Vec<Scalar>, AggError> {
        let events = self.events.get(key);
        let mut row = vec![key.clone(), Scalar::Int(d as i64)];
        for (i, f) in self.spec.features.iter().enumerate() {
            let v = match f.func {
                FeatureFn::DaysSinceLast => events
                    .and_then(|e| e.range(..=d).next_back())
                    .map_or(Scalar::Null, |(last, _)| Scalar::Int((d - last) as i64)),
                FeatureFn::Ratio => {
                    let [a, b] = f.of.as_ref().expect("validated");
                    let at = |n: &String| self.spec.features.iter().position(|x| &x.name == n).expect("validated");
                    let (ia, ib) = (at(a), at(b));
                    let (x, y) = (row[2 + ia].as_f64(self.scales[2 + ia]), row[2 + ib].as_f64(self.scales[2 + ib]));
                    match (x, y) {
                        (Some(x), Some(y)) if y != 0.0 => Scalar::Float(OrdF64(x / y)),
                        _ => Scalar::Null,
                    }
                }
                windowed => {
                    let func = windowed.measure().expect("every other feature is windowed");
                    let days = f.days.expect("validated") as i32;
                    let window = events.into_iter().flat_map(|e| e.range(d - days + 1..=d)).flat_map(|(_, v)| v.iter());
                    let values = window.map(|e| self.feature_col[i].map_or(Scalar::Int(1), |c| e[c].clone()));
                    aggregate(func, values, &self.feature_src[i])
                        .map_err(|e| self.bad(format!("feature {}: {e}", f.name)))?
                }
            };
            row.push(v);
        }
        if let Some(l) = &self.spec.label {
            let end = d + l.days as i32;
            row.push(if end > horizon {
                Scalar::Null
            } else {
                Scalar::Bool(events.is_none_or(|e| e.range(d + 1..=end).next().is_none()))
            });
        }
        Ok(row)
    }
}

fn next_start(every: Window, d: i32) -> i32 {
    match every {
        Window::Day => d + 1,
        Window::Week => d + 7,
        Window::Month => Window::Month.start(d + 31),
    }
}

/// `func` over the `values` of a window, with the rollups' accumulator (nulls
/// are skipped): counts and sums are 0 over no values, the others null.
fn aggregate(func: Func, values: impl Iterator<Item = Scalar>, src: &DataType) -> Result<Scalar, String> {
    let mut acc = Acc::new(func);
    for v in values {
        acc.apply(&v, 1).map_err(|e| e.to_string())?;
    }
    Ok(match (acc.value(func, src), func) {
        (Scalar::Null, Func::Sum) => match src {
            DataType::Decimal128(_, _) => Scalar::Dec(0.into()),
            DataType::Float32 | DataType::Float64 => Scalar::Float(OrdF64(0.0)),
            _ => Scalar::Int(0),
        },
        (v, _) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Date32Array, Int8Array, Int64Array};

    fn spec() -> FeaturesSpec {
        spec_every("day")
    }

    fn spec_every(every: &str) -> FeaturesSpec {
        let toml = r#"
            name = "f"
            source = "orders"
            key = "customer_id"
            time = "order_date"
            every = "EVERY"
            [[feature]]
            name = "orders_7d"
            fn = "count"
            days = 7
            [[feature]]
            name = "spend_7d"
            fn = "sum"
            column = "total"
            days = 7
            [[feature]]
            name = "days_since_last"
            fn = "days_since_last"
            [label]
            name = "churn"
            days = 3
        "#;
        FeaturesSpec::from_toml(toml::from_str(&toml.replace("EVERY", every)).expect("parses")).expect("valid")
    }

    fn batch(rows: &[(i64, i32, i64, RowKind)]) -> ChangeBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, true),
            Field::new("order_date", DataType::Date32, true),
            Field::new("total", DataType::Int64, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Date32Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .expect("batch");
        ChangeBatch { rows: b, kinds: Int8Array::from(rows.iter().map(|r| r.3.to_byte()).collect::<Vec<_>>()) }
    }

    fn rows(c: &KeyedChanges) -> BTreeMap<(i64, i64), Vec<Scalar>> {
        (0..c.rows.num_rows())
            .map(|i| {
                let r: Vec<Scalar> = c.rows.columns().iter().map(|col| scalar::read(col, i)).collect();
                let (Scalar::Int(k), Scalar::Int(d)) = (&r[0], &r[1]) else { panic!("key") };
                ((*k, *d), r)
            })
            .collect()
    }

    /// The changes taken step by step, applied to what Gold holds, equal a
    /// computation from scratch over the events left, after every step of a
    /// random stream of inserts and retractions whose horizon moves both ways
    /// (retracting the newest event moves it back), for each `every`.
    #[test]
    fn incremental_rows_equal_a_recompute() {
        let schema = batch(&[]).rows.schema();
        for every in ["day", "week", "month"] {
            let mut f = Features::bind(spec_every(every), &schema).expect("binds");
            let mut held: BTreeMap<(i64, i64), Vec<Scalar>> = BTreeMap::new();
            let mut events: Vec<(i64, i32, i64)> = Vec::new();
            let mut seed = 7u64;
            let mut next = |n: u64| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) % n
            };
            for step in 0..300 {
                let change = if !events.is_empty() && next(3) == 0 {
                    // Often the newest event, so that the horizon moves back.
                    let i = if next(2) == 0 {
                        (0..events.len()).max_by_key(|&i| events[i].1).expect("not empty")
                    } else {
                        next(events.len() as u64) as usize
                    };
                    (events.swap_remove(i), RowKind::Delete)
                } else {
                    let e = (next(5) as i64, 100 + next(40) as i32 + step / 3, next(50) as i64);
                    events.push(e);
                    (e, RowKind::Insert)
                };
                let ((k, d, total), kind) = change;
                f.apply(&batch(&[(k, d, total, kind)])).expect("applies");
                if next(3) == 0 {
                    continue; // several changes per batch, too
                }
                let c = f.take_changes().expect("rows");
                for i in 0..c.gone.num_rows() {
                    let (Scalar::Int(k), Scalar::Int(d)) =
                        (scalar::read(c.gone.column(0), i), scalar::read(c.gone.column(1), i))
                    else {
                        panic!("gone key")
                    };
                    assert!(held.remove(&(k, d)).is_some(), "every {every}, step {step}: ({k}, {d}) gone but not held");
                }
                held.extend(rows(&c));
                let mut scratch = Features::bind(spec_every(every), &schema).expect("binds");
                let all: Vec<_> = events.iter().map(|&(k, d, t)| (k, d, t, RowKind::Insert)).collect();
                scratch.apply(&batch(&all)).expect("applies");
                let want = rows(&scratch.take_changes().expect("rows"));
                assert_eq!(held, want, "every {every}, step {step}");
            }
        }
    }

    #[test]
    fn rows_see_only_events_up_to_their_date_and_labels_only_when_known() {
        let schema = batch(&[]).rows.schema();
        let mut f = Features::bind(spec(), &schema).expect("binds");
        f.apply(&batch(&[(1, 100, 10, RowKind::Insert), (1, 102, 5, RowKind::Insert), (2, 103, 7, RowKind::Insert)]))
            .expect("applies");
        let c = f.take_changes().expect("rows");
        let r = rows(&c);
        // Customer 1 from day 100 to the horizon 103, customer 2 on 103 only.
        assert_eq!(r.keys().copied().collect::<Vec<_>>(), [(1, 100), (1, 101), (1, 102), (1, 103), (2, 103)]);
        assert_eq!(r[&(1, 101)][2..], [Scalar::Int(1), Scalar::Int(10), Scalar::Int(1), Scalar::Null]);
        assert_eq!(r[&(1, 102)][2..5], [Scalar::Int(2), Scalar::Int(15), Scalar::Int(0)]);
        assert_eq!(r[&(1, 100)][5], Scalar::Bool(false), "day 102 is within 3 days of day 100");
        // A later event extends the horizon: labels become known, rows appear.
        f.apply(&batch(&[(2, 110, 1, RowKind::Insert)])).expect("applies");
        let r = rows(&f.take_changes().expect("rows"));
        assert_eq!(r[&(1, 103)][5], Scalar::Bool(true), "no order of customer 1 in 104..=106");
        assert_eq!(r[&(1, 110)][4], Scalar::Int(8));
        // Retracting customer 2's only early order removes its rows before day 110.
        f.apply(&batch(&[(2, 103, 7, RowKind::Delete)])).expect("applies");
        let c = f.take_changes().expect("rows");
        let gone: Vec<Scalar> = (0..c.gone.num_rows()).map(|i| scalar::read(c.gone.column(1), i)).collect();
        assert_eq!(gone.len(), 7, "customer 2's rows 103..=109: {gone:?}");
        let err = f.apply(&batch(&[(2, 103, 7, RowKind::Delete)])).expect_err("nothing to retract");
        assert!(err.to_string().contains("matches no event"), "{err}");
    }
}
