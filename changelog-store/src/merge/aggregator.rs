//! Per-field aggregators of the `aggregation` merge engine.

use crate::error::{Error, Result};
use crate::row::Datum;
use crate::spec::types::DataType;

/// `fields.<f>.aggregate-function` values supported here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregatorKind {
    /// Primary-key columns keep their value.
    PrimaryKey,
    Sum,
    /// A changelog-store extension: every non-null input counts 1. Stored on disk as
    /// `sum` of per-row ones (see `Table::create`), so Paimon readers agree.
    Count,
    Min,
    Max,
    LastValue,
    LastNonNullValue,
    FirstValue,
    FirstNonNullValue,
    BoolAnd,
    BoolOr,
}

impl AggregatorKind {
    pub fn parse(field: &str, name: &str, ty: &DataType) -> Result<Self> {
        let kind = match name {
            "sum" => AggregatorKind::Sum,
            "count" => AggregatorKind::Count,
            "min" => AggregatorKind::Min,
            "max" => AggregatorKind::Max,
            "last_value" => AggregatorKind::LastValue,
            "last_non_null_value" => AggregatorKind::LastNonNullValue,
            "first_value" => AggregatorKind::FirstValue,
            "first_non_null_value" => AggregatorKind::FirstNonNullValue,
            "bool_and" => AggregatorKind::BoolAnd,
            "bool_or" => AggregatorKind::BoolOr,
            "primary_key" => AggregatorKind::PrimaryKey,
            other => {
                return Err(Error::InvalidOption {
                    key: format!("fields.{field}.aggregate-function"),
                    value: other.to_string(),
                    message: "unsupported aggregate function".into(),
                });
            }
        };
        let numeric_ok = ty.is_numeric();
        if matches!(kind, AggregatorKind::Sum | AggregatorKind::Count) && !numeric_ok {
            return Err(Error::InvalidOption {
                key: format!("fields.{field}.aggregate-function"),
                value: name.to_string(),
                message: format!("needs a numeric column, `{field}` is {ty}"),
            });
        }
        Ok(kind)
    }

    /// Folds `input` (newer) into `acc` (older).
    pub fn agg(self, acc: Datum, input: Datum) -> Datum {
        use AggregatorKind as K;
        match self {
            K::PrimaryKey | K::LastValue => input,
            K::LastNonNullValue => {
                if input.is_null() {
                    acc
                } else {
                    input
                }
            }
            K::FirstValue => acc,
            K::FirstNonNullValue => {
                if acc.is_null() {
                    input
                } else {
                    acc
                }
            }
            K::Sum | K::Count => add(acc, input, false),
            K::Min => pick(acc, input, |a, b| b < a),
            K::Max => pick(acc, input, |a, b| b > a),
            K::BoolAnd => bool_op(acc, input, |a, b| a && b),
            K::BoolOr => bool_op(acc, input, |a, b| a || b),
        }
    }

    /// Retracts `input` (a `-U`/`-D` record's value) from `acc`.
    pub fn retract(self, field: &str, acc: Datum, input: Datum) -> Result<Datum> {
        use AggregatorKind as K;
        Ok(match self {
            K::PrimaryKey => acc,
            K::Sum | K::Count => add(acc, input, true),
            K::LastValue => Datum::Null,
            K::LastNonNullValue => {
                if input.is_null() {
                    acc
                } else {
                    Datum::Null
                }
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "aggregate function {self:?} of `{field}` cannot retract; set \
                     `fields.{field}.ignore-retract` = true"
                )));
            }
        })
    }

    /// The first accumulator value for a key whose first record is `input`.
    pub fn init(self, input: Datum, retract: bool) -> Datum {
        if !retract {
            return input;
        }
        match self {
            AggregatorKind::Sum | AggregatorKind::Count => add(Datum::Null, input, true),
            _ => Datum::Null,
        }
    }
}

fn pick(acc: Datum, input: Datum, better: impl Fn(&Datum, &Datum) -> bool) -> Datum {
    match (&acc, &input) {
        (Datum::Null, _) => input,
        (_, Datum::Null) => acc,
        _ if better(&acc, &input) => input,
        _ => acc,
    }
}

fn bool_op(acc: Datum, input: Datum, f: impl Fn(bool, bool) -> bool) -> Datum {
    match (acc, input) {
        (Datum::Bool(a), Datum::Bool(b)) => Datum::Bool(f(a, b)),
        (Datum::Null, x) | (x, Datum::Null) => x,
        (a, _) => a,
    }
}

/// Null-aware add/subtract with wrapping integer arithmetic (as Java).
fn add(acc: Datum, input: Datum, negate: bool) -> Datum {
    match (acc, input) {
        (acc, Datum::Null) => acc,
        (Datum::Null, x) => {
            if negate {
                match x {
                    Datum::Int(v) => Datum::Int(v.wrapping_neg()),
                    Datum::Long(v) => Datum::Long(v.wrapping_neg()),
                    Datum::Float(v) => Datum::Float(-v),
                    Datum::Double(v) => Datum::Double(-v),
                    Datum::Decimal(d) => Datum::Decimal(crate::decimal::Decimal { unscaled: -d.unscaled, ..d }),
                    other => other,
                }
            } else {
                x
            }
        }
        (Datum::Int(a), Datum::Int(b)) => Datum::Int(if negate { a.wrapping_sub(b) } else { a.wrapping_add(b) }),
        (Datum::Long(a), Datum::Long(b)) => Datum::Long(if negate { a.wrapping_sub(b) } else { a.wrapping_add(b) }),
        (Datum::Float(a), Datum::Float(b)) => Datum::Float(if negate { a - b } else { a + b }),
        (Datum::Double(a), Datum::Double(b)) => Datum::Double(if negate { a - b } else { a + b }),
        // Beyond the column's precision the sum is null, as Paimon's decimal sum.
        (Datum::Decimal(a), Datum::Decimal(b)) => a.checked_add(b, negate).map_or(Datum::Null, Datum::Decimal),
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_and_retract() {
        let s = AggregatorKind::Sum;
        let acc = s.agg(Datum::Long(5), Datum::Long(7));
        assert_eq!(acc, Datum::Long(12));
        assert_eq!(s.retract("x", acc, Datum::Long(2)).expect("retracts"), Datum::Long(10));
        assert_eq!(s.agg(Datum::Null, Datum::Null), Datum::Null);
    }

    #[test]
    fn min_max_first_last() {
        assert_eq!(AggregatorKind::Min.agg(Datum::Int(3), Datum::Int(1)), Datum::Int(1));
        assert_eq!(AggregatorKind::Max.agg(Datum::Int(3), Datum::Null), Datum::Int(3));
        assert_eq!(AggregatorKind::FirstValue.agg(Datum::Null, Datum::Int(1)), Datum::Null);
        assert_eq!(AggregatorKind::LastNonNullValue.agg(Datum::Int(2), Datum::Null), Datum::Int(2));
        assert!(AggregatorKind::Min.retract("m", Datum::Int(1), Datum::Int(1)).is_err());
    }
}
