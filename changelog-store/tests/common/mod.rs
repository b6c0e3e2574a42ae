//! Shared test harness: a plain in-memory model of a primary-key table.
#![allow(dead_code)]

use changelog_store::{Datum, Row, RowKind, Table, TableSpec};
use std::collections::BTreeMap;

pub fn spec(options: &[(&str, &str)]) -> TableSpec {
    let mut opts: BTreeMap<String, String> = options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    opts.entry("bucket".into()).or_insert_with(|| "2".into());
    TableSpec {
        columns: vec![
            ("k".into(), "BIGINT".into()),
            ("v".into(), "BIGINT".into()),
            ("s".into(), "STRING".into()),
            ("ts".into(), "BIGINT".into()),
        ],
        primary_keys: vec!["k".into()],
        partition_keys: vec![],
        options: opts,
    }
}

pub fn row(k: i64, v: Option<i64>, s: Option<&str>, ts: i64) -> Row {
    vec![
        Datum::Long(k),
        v.map_or(Datum::Null, Datum::Long),
        s.map_or(Datum::Null, |s| Datum::String(s.to_string())),
        Datum::Long(ts),
    ]
}

/// Which semantics the model applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Deduplicate,
    PartialUpdate,
    /// v: sum, s: last_non_null_value (default), ts: max
    Aggregation,
    FirstRow,
}

/// The model: per key, every record ever written, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub history: BTreeMap<i64, Vec<(RowKind, Row)>>,
    pub sequence_field: bool,
}

impl Model {
    pub fn apply(&mut self, kind: RowKind, row: Row) {
        let k = match row[0] {
            Datum::Long(k) => k,
            _ => panic!("key"),
        };
        self.history.entry(k).or_default().push((kind, row));
    }

    /// The visible table: fold each key's history in (sequence field, arrival) order.
    pub fn state(&self, engine: Engine) -> BTreeMap<i64, Row> {
        let mut out = BTreeMap::new();
        for (k, hist) in &self.history {
            let mut ordered: Vec<(usize, &(RowKind, Row))> = hist.iter().enumerate().collect();
            if self.sequence_field {
                ordered.sort_by(|a, b| (a.1.1[3].clone(), a.0).cmp(&(b.1.1[3].clone(), b.0)));
            }
            let mut cur: Option<Row> = None;
            for (_, (kind, r)) in ordered {
                match engine {
                    Engine::Deduplicate => {
                        cur = if kind.is_add() { Some(r.clone()) } else { None };
                    }
                    Engine::FirstRow => {
                        if cur.is_none() && kind.is_add() {
                            cur = Some(r.clone());
                        }
                    }
                    Engine::PartialUpdate => {
                        if kind.is_add() {
                            let mut c = cur.take().unwrap_or_else(|| vec![Datum::Null; 4]);
                            for i in 0..4 {
                                if !r[i].is_null() {
                                    c[i] = r[i].clone();
                                }
                            }
                            cur = Some(c);
                        }
                    }
                    Engine::Aggregation => {
                        let mut c = cur.take().unwrap_or_else(|| {
                            let mut init = vec![Datum::Null; 4];
                            init[0] = r[0].clone();
                            init
                        });
                        let add = kind.is_add();
                        // v: sum (retract subtracts)
                        if let Datum::Long(x) = r[1] {
                            let x = if add { x } else { -x };
                            c[1] = match c[1] {
                                Datum::Long(y) => Datum::Long(y.wrapping_add(x)),
                                _ => Datum::Long(x),
                            };
                        }
                        // s: last_non_null_value (retract of non-null clears)
                        if !r[2].is_null() {
                            c[2] = if add { r[2].clone() } else { Datum::Null };
                        }
                        // ts: max (ignore-retract)
                        if add && (c[3].is_null() || r[3] > c[3]) {
                            c[3] = r[3].clone();
                        }
                        cur = Some(c);
                    }
                }
            }
            if let Some(r) = cur {
                out.insert(*k, r);
            }
        }
        out
    }
}

pub fn table_state(rows: Vec<Row>) -> BTreeMap<i64, Row> {
    rows.into_iter()
        .map(|r| match r[0] {
            Datum::Long(k) => (k, r),
            _ => panic!("key"),
        })
        .collect()
}

pub fn engine_options(engine: Engine) -> Vec<(&'static str, &'static str)> {
    match engine {
        Engine::Deduplicate => vec![],
        Engine::PartialUpdate => vec![("merge-engine", "partial-update"), ("ignore-delete", "true")],
        Engine::Aggregation => vec![
            ("merge-engine", "aggregation"),
            ("fields.v.aggregate-function", "sum"),
            ("fields.ts.aggregate-function", "max"),
            ("fields.ts.ignore-retract", "true"),
        ],
        Engine::FirstRow => vec![("merge-engine", "first-row"), ("ignore-delete", "true")],
    }
}

pub fn open_table(dir: &std::path::Path) -> Table {
    Table::open(dir.join("db.db").join("t")).expect("opens")
}
