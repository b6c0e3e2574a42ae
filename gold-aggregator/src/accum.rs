//! Per-group state of a rollup, exact under retraction.
//!
//! `sum`/`avg` keep an exact total (integers and decimals as `i128`; doubles
//! as `f64`, which retraction cannot make exact) and the count of non-null
//! values; `count` keeps a count; `min`, `max` and `count_distinct` keep a
//! count per value, so retracting the current extreme or the last copy of a
//! distinct value gives the right answer. Memory per group is bounded by the
//! distinct values of those measures' columns within the group's window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scalar::{OrdF64, Scalar};
use crate::spec::Func;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Total {
    Exact(i128),
    Float(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    /// `sum` and `avg`: total of the non-null values and how many there are.
    Total { total: Option<Total>, n: i64 },
    /// `count`: non-null values of the column (or rows, without a column).
    Count(i64),
    /// `min`, `max`, `count_distinct`: count per value (zero counts removed).
    Values(#[serde(with = "pairs")] BTreeMap<Scalar, i64>),
}

/// A value → count map as a list of pairs (JSON object keys must be strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::scalar::Scalar;

    pub fn serialize<S: Serializer>(map: &BTreeMap<Scalar, i64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Scalar, i64>, D::Error> {
        Ok(Vec::<(Scalar, i64)>::deserialize(d)?.into_iter().collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccError {
    #[error("retraction of a value the group never counted ({0:?}): the changelog and Gold's state disagree")]
    Unknown(Scalar),
    #[error("{0}")]
    Overflow(String),
    #[error("cannot add {0:?} to a numeric total")]
    NotNumeric(Scalar),
}

impl Acc {
    pub fn new(func: Func) -> Acc {
        match func {
            Func::Sum | Func::Avg => Acc::Total { total: None, n: 0 },
            Func::Count => Acc::Count(0),
            Func::Min | Func::Max | Func::CountDistinct => Acc::Values(BTreeMap::new()),
        }
    }

    /// Adds (`sign` = 1) or retracts (`sign` = -1) one row's value; for
    /// `count` without a column the caller passes a non-null marker.
    pub fn apply(&mut self, value: &Scalar, sign: i64) -> Result<(), AccError> {
        if value.is_null() {
            return Ok(());
        }
        match self {
            Acc::Count(n) => *n += sign,
            Acc::Total { total, n } => {
                let add = match value {
                    Scalar::Int(v) => Total::Exact(*v as i128 * sign as i128),
                    Scalar::Dec(v) => Total::Exact(
                        v.get()
                            .checked_mul(sign as i128)
                            .ok_or_else(|| AccError::Overflow(format!("decimal {v:?} cannot be negated")))?,
                    ),
                    Scalar::Float(OrdF64(v)) => Total::Float(*v * sign as f64),
                    other => return Err(AccError::NotNumeric(other.clone())),
                };
                *total = Some(match (*total, add) {
                    (None, a) => a,
                    (Some(Total::Exact(a)), Total::Exact(b)) => Total::Exact(
                        a.checked_add(b).ok_or_else(|| AccError::Overflow(format!("sum {a} + {b} overflows")))?,
                    ),
                    (Some(Total::Float(a)), Total::Float(b)) => Total::Float(a + b),
                    (Some(a), b) => return Err(AccError::Overflow(format!("mixed totals {a:?} and {b:?}"))),
                });
                *n += sign;
                if *n == 0 {
                    *total = None; // no values left: start clean (no float residue)
                }
            }
            Acc::Values(counts) => {
                let c = counts.entry(value.clone()).or_insert(0);
                *c += sign;
                match *c {
                    0 => {
                        counts.remove(value);
                    }
                    c if c < 0 => return Err(AccError::Unknown(value.clone())),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The measure's value now, for a source column of type `source` (its
    /// decimal scale, and whether totals are decimals).
    pub fn value(&self, func: Func, source: &arrow_schema::DataType) -> Scalar {
        let (scale, decimal) = match source {
            arrow_schema::DataType::Decimal128(_, s) => (*s, true),
            _ => (0, false),
        };
        match (self, func) {
            (Acc::Count(n), _) => Scalar::Int(*n),
            (Acc::Total { total: None, .. }, _) => Scalar::Null,
            (Acc::Total { total: Some(t), n }, Func::Avg) => {
                let sum = match t {
                    Total::Exact(v) => *v as f64 / 10f64.powi(scale as i32),
                    Total::Float(v) => *v,
                };
                Scalar::Float(OrdF64(sum / *n as f64))
            }
            (Acc::Total { total: Some(Total::Exact(v)), .. }, _) if decimal => Scalar::Dec((*v).into()),
            // An integer total past i64 stays a decimal: the column build refuses it by name.
            (Acc::Total { total: Some(Total::Exact(v)), .. }, _) => {
                i64::try_from(*v).map_or(Scalar::Dec((*v).into()), Scalar::Int)
            }
            (Acc::Total { total: Some(Total::Float(v)), .. }, _) => Scalar::Float(OrdF64(*v)),
            (Acc::Values(c), Func::Min) => c.keys().next().cloned().unwrap_or(Scalar::Null),
            (Acc::Values(c), Func::Max) => c.keys().next_back().cloned().unwrap_or(Scalar::Null),
            (Acc::Values(c), _) => Scalar::Int(c.len() as i64),
        }
    }

    /// Whether a retraction left a negative count (the state is inconsistent).
    pub fn negative(&self) -> bool {
        match self {
            Acc::Count(n) | Acc::Total { n, .. } => *n < 0,
            Acc::Values(_) => false,
        }
    }
}

/// One (window, group): how many source rows it holds and one accumulator per measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub rows: i64,
    pub accs: Vec<Acc>,
}

impl GroupState {
    pub fn new(funcs: &[Func]) -> GroupState {
        GroupState { rows: 0, accs: funcs.iter().map(|f| Acc::new(*f)).collect() }
    }

    /// Whether `other` (the same group's state from elsewhere) has the same
    /// rows, counts and exact totals; per-value counts and float totals
    /// (whose last bits depend on the order of additions) are not compared.
    pub fn agrees_with(&self, other: &GroupState) -> bool {
        self.rows == other.rows
            && self.accs.len() == other.accs.len()
            && self.accs.iter().zip(&other.accs).all(|(a, b)| match (a, b) {
                (Acc::Count(x), Acc::Count(y)) => x == y,
                (
                    Acc::Total { total: Some(Total::Float(_)), n: x },
                    Acc::Total { total: Some(Total::Float(_)), n: y },
                ) => x == y,
                (Acc::Total { .. }, Acc::Total { .. }) => a == b,
                (Acc::Values(_), Acc::Values(_)) => true,
                _ => false,
            })
    }

    /// The state as the state table keeps it: without the per-value counts,
    /// which grow with the group (a month's group holds every distinct value
    /// of the month) and are rebuilt from the source on start instead.
    pub fn without_values(&self) -> GroupState {
        let accs = self
            .accs
            .iter()
            .map(|a| match a {
                Acc::Values(_) => Acc::Values(BTreeMap::new()),
                other => other.clone(),
            })
            .collect();
        GroupState { rows: self.rows, accs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(func: Func, ops: &[(i64, i64)]) -> Scalar {
        let mut acc = Acc::new(func);
        for (v, sign) in ops {
            acc.apply(&Scalar::Int(*v), *sign).expect("applies");
        }
        acc.value(func, &arrow_schema::DataType::Int64)
    }

    #[test]
    fn retracting_the_extreme_uncovers_the_next() {
        assert_eq!(run(Func::Min, &[(5, 1), (3, 1), (3, -1)]), Scalar::Int(5));
        assert_eq!(run(Func::Max, &[(5, 1), (9, 1), (9, 1), (9, -1)]), Scalar::Int(9), "one copy of 9 is left");
        assert_eq!(run(Func::Max, &[(5, 1), (5, -1)]), Scalar::Null, "empty group has no max");
        assert_eq!(run(Func::CountDistinct, &[(1, 1), (1, 1), (2, 1), (1, -1)]), Scalar::Int(2));
        assert_eq!(run(Func::CountDistinct, &[(1, 1), (1, 1), (2, 1), (1, -1), (1, -1)]), Scalar::Int(1));
    }

    #[test]
    fn totals_are_exact_and_reset_when_empty() {
        assert_eq!(run(Func::Sum, &[(5, 1), (7, 1), (5, -1)]), Scalar::Int(7));
        assert_eq!(run(Func::Sum, &[(5, 1), (5, -1)]), Scalar::Null, "sum of nothing is null, as in SQL");
        assert_eq!(run(Func::Avg, &[(2, 1), (4, 1), (9, 1), (9, -1)]), Scalar::Float(OrdF64(3.0)));
        let mut dec = Acc::new(Func::Sum);
        dec.apply(&Scalar::Dec(1999.into()), 1).expect("adds");
        dec.apply(&Scalar::Dec(1.into()), 1).expect("adds");
        assert_eq!(
            dec.value(Func::Sum, &arrow_schema::DataType::Decimal128(12, 2)),
            Scalar::Dec(2000.into()),
            "decimals stay unscaled and exact"
        );
        let mut f = Acc::new(Func::Sum);
        f.apply(&Scalar::Float(OrdF64(0.1)), 1).expect("adds");
        f.apply(&Scalar::Float(OrdF64(0.1)), -1).expect("retracts");
        assert_eq!(f.value(Func::Sum, &arrow_schema::DataType::Float64), Scalar::Null, "no float residue once empty");
    }

    #[test]
    fn state_survives_its_json_form() {
        let mut state = GroupState::new(&[Func::Min, Func::Sum, Func::Count]);
        state.rows = 2;
        state.accs[0].apply(&Scalar::Str("b".into()), 1).expect("adds");
        state.accs[0].apply(&Scalar::Str("a".into()), 1).expect("adds");
        state.accs[1].apply(&Scalar::Dec((i128::MAX / 2).into()), 1).expect("adds");
        state.accs[2].apply(&Scalar::Int(1), 1).expect("adds");
        let json = serde_json::to_string(&state).expect("serialises");
        assert_eq!(serde_json::from_str::<GroupState>(&json).expect("parses"), state);
    }

    #[test]
    fn states_agree_on_rows_counts_and_exact_totals_not_on_values() {
        let funcs = [Func::Max, Func::Sum, Func::Count];
        let mut a = GroupState::new(&funcs);
        a.rows = 1;
        a.accs[0].apply(&Scalar::Int(7), 1).expect("adds");
        a.accs[1].apply(&Scalar::Int(7), 1).expect("adds");
        a.accs[2].apply(&Scalar::Int(1), 1).expect("adds");
        assert!(a.without_values().agrees_with(&a), "per-value counts are not compared");
        assert_eq!(a.without_values().accs[0].value(Func::Max, &arrow_schema::DataType::Int64), Scalar::Null);
        let mut b = a.clone();
        b.accs[1].apply(&Scalar::Int(1), 1).expect("adds");
        assert!(!a.agrees_with(&b), "a different total disagrees");
        let mut c = a.clone();
        c.rows = 2;
        assert!(!a.agrees_with(&c), "a different row count disagrees");
    }

    #[test]
    fn retracting_what_was_never_added_is_an_error() {
        let mut acc = Acc::new(Func::Min);
        assert!(matches!(acc.apply(&Scalar::Int(1), -1), Err(AccError::Unknown(_))));
        let mut count = Acc::new(Func::Count);
        count.apply(&Scalar::Int(1), -1).expect("counts go negative");
        assert!(count.negative());
        let mut nulls = Acc::new(Func::Sum);
        nulls.apply(&Scalar::Null, 1).expect("nulls are skipped");
        assert_eq!(nulls.value(Func::Sum, &arrow_schema::DataType::Int64), Scalar::Null);
    }
}
