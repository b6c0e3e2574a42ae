//! `aggregation`: each non-key field folds with its `fields.<f>.aggregate-function`
//! (default `last_non_null_value`). `-U`/`-D` records retract their values (Paimon
//! semantics); aggregators that cannot retract fail unless `ignore-retract` is set.

use super::MergeFunction;
use super::aggregator::AggregatorKind;
use crate::error::Result;
use crate::row::{Datum, KeyValue, RowKind};
use crate::table_info::TableInfo;

pub(super) struct Aggregate {
    kinds: Vec<AggregatorKind>,
    names: Vec<String>,
    ignore_retract: Vec<bool>,
    acc: Option<KeyValue>,
}

impl Aggregate {
    pub(super) fn new(info: &TableInfo) -> Result<Self> {
        let mut kinds = Vec::new();
        let mut ignore_retract = Vec::new();
        let mut names = Vec::new();
        for (i, f) in info.schema.fields.iter().enumerate() {
            let kind = if info.schema.primary_keys.contains(&f.name) {
                AggregatorKind::PrimaryKey
            } else if info.sequence_indices.contains(&i) {
                AggregatorKind::LastValue
            } else if is_count_field(info, &f.name) {
                AggregatorKind::Count
            } else {
                match info.options.aggregate_function(&f.name) {
                    Some(name) => AggregatorKind::parse(&f.name, &name, &f.data_type)?,
                    None => AggregatorKind::LastNonNullValue,
                }
            };
            kinds.push(kind);
            ignore_retract.push(info.options.ignore_retract(&f.name));
            names.push(f.name.clone());
        }
        Ok(Aggregate { kinds, names, ignore_retract, acc: None })
    }
}

/// Whether `field` was declared with the `count` aggregator (stored as `sum` of ones).
pub fn is_count_field(info: &TableInfo, field: &str) -> bool {
    info.options.raw.get(&format!("fields.{field}.changelog-store.count")).is_some_and(|v| v == "true")
        || info.options.aggregate_function(field).as_deref() == Some("count")
}

impl MergeFunction for Aggregate {
    fn reset(&mut self) {
        self.acc = None;
    }

    fn add(&mut self, kv: KeyValue) -> Result<()> {
        let retract = !kv.kind.is_add();
        match &mut self.acc {
            None => {
                let mut value = Vec::with_capacity(kv.value.len());
                for (i, d) in kv.value.into_iter().enumerate() {
                    let v = if retract && self.ignore_retract[i] {
                        Datum::Null
                    } else if retract && self.kinds[i] != AggregatorKind::PrimaryKey {
                        self.kinds[i].retract(&self.names[i], Datum::Null, d)?
                    } else {
                        self.kinds[i].init(d, false)
                    };
                    value.push(v);
                }
                self.acc = Some(KeyValue { key: kv.key, seq: kv.seq, kind: RowKind::Insert, value });
            }
            Some(acc) => {
                for (i, d) in kv.value.into_iter().enumerate() {
                    let old = std::mem::replace(&mut acc.value[i], Datum::Null);
                    acc.value[i] = if !retract {
                        self.kinds[i].agg(old, d)
                    } else if self.ignore_retract[i] {
                        old
                    } else {
                        self.kinds[i].retract(&self.names[i], old, d)?
                    };
                }
                acc.seq = kv.seq;
            }
        }
        Ok(())
    }

    fn result(&mut self) -> Option<KeyValue> {
        self.acc.take()
    }
}
