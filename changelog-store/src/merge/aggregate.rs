//! `aggregation`: each non-key field folds with its `fields.<f>.aggregate-function`
//! (default `last_non_null_value`). `-U`/`-D` records retract their values (Paimon
//! semantics); aggregators that cannot retract fail unless `ignore-retract` is set.
//! With `aggregation.remove-record-on-delete`, a `-D` removes the row instead: the
//! result is a `-D` (shadowing everything older) until a later record starts the row
//! afresh, as Paimon's `AggregateMergeFunction` does.

use super::MergeFunction;
use super::aggregator::AggregatorKind;
use crate::error::Result;
use crate::row::{Datum, KeyValue, RowKind};
use crate::table_info::TableInfo;

pub(super) struct Aggregate {
    kinds: Vec<AggregatorKind>,
    names: Vec<String>,
    ignore_retract: Vec<bool>,
    remove_record_on_delete: bool,
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
        let remove_record_on_delete = info.options.aggregation_remove_record_on_delete;
        Ok(Aggregate { kinds, names, ignore_retract, remove_record_on_delete, acc: None })
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
        if self.remove_record_on_delete {
            if kv.kind == RowKind::Delete {
                self.acc = Some(kv);
                return Ok(());
            }
            // A removed row: what follows starts it again from nothing.
            if self.acc.as_ref().is_some_and(|acc| acc.kind == RowKind::Delete) {
                self.acc = None;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::schema::TableSchema;
    use crate::spec::types::DataType;
    use std::collections::BTreeMap;

    fn info(remove_on_delete: bool) -> TableInfo {
        let options = BTreeMap::from([
            ("bucket".to_string(), "1".to_string()),
            ("merge-engine".to_string(), "aggregation".to_string()),
            ("fields.v.aggregate-function".to_string(), "sum".to_string()),
            ("aggregation.remove-record-on-delete".to_string(), remove_on_delete.to_string()),
        ]);
        let columns = vec![
            ("k".to_string(), DataType::parse("BIGINT").expect("type")),
            ("v".to_string(), DataType::parse("BIGINT").expect("type")),
        ];
        let schema = TableSchema::new(columns, vec![], vec!["k".into()], options, 0).expect("schema");
        TableInfo::new(schema).expect("info")
    }

    fn kv(seq: i64, kind: RowKind, v: i64) -> KeyValue {
        KeyValue { key: vec![Datum::Long(1)], seq, kind, value: vec![Datum::Long(1), Datum::Long(v)] }
    }

    fn fold(f: &mut Aggregate, records: Vec<KeyValue>) -> Option<KeyValue> {
        f.reset();
        for r in records {
            f.add(r).expect("adds");
        }
        f.result()
    }

    #[test]
    fn delete_removes_the_row_only_with_remove_record_on_delete() {
        let records = vec![kv(1, RowKind::Insert, 5), kv(2, RowKind::Insert, 3), kv(3, RowKind::Delete, 1)];
        let mut retracting = Aggregate::new(&info(false)).expect("engine");
        let r = fold(&mut retracting, records.clone()).expect("row");
        assert_eq!((r.kind, r.value[1].clone()), (RowKind::Insert, Datum::Long(7)), "-D retracts its value");

        let mut removing = Aggregate::new(&info(true)).expect("engine");
        let r = fold(&mut removing, records.clone()).expect("a -D that shadows older files");
        assert_eq!((r.kind, r.seq), (RowKind::Delete, 3));

        // After the delete the row starts afresh, also when the -D comes merged from an
        // earlier flush (merging partial results equals merging the inputs).
        let mut later = records;
        later.push(kv(4, RowKind::Insert, 2));
        let r = fold(&mut removing, later).expect("row");
        assert_eq!((r.kind, r.seq, r.value[1].clone()), (RowKind::Insert, 4, Datum::Long(2)));
        let partial = fold(&mut removing, vec![kv(1, RowKind::Insert, 5), kv(3, RowKind::Delete, 1)]).expect("-D");
        let r = fold(&mut removing, vec![partial, kv(4, RowKind::Insert, 2)]).expect("row");
        assert_eq!((r.kind, r.value[1].clone()), (RowKind::Insert, Datum::Long(2)));
    }
}
