//! The validation rules of a column, applied to its final (cleansed,
//! defaulted) value: `not_null`, `min`, `max`, `regex`, `allowed`,
//! `max_length`. Decimal precision is enforced earlier, when the value is
//! typed, because a value that does not fit `decimal(p,s)` cannot exist.

use std::cmp::Ordering;

use crate::contract::column::Checks;
use crate::reject::{Failure, Rule};
use crate::value::Value;

/// Checks one value; the first broken rule wins, in the order above.
pub(crate) fn check(value: &Value, required: bool, checks: &Checks) -> Result<(), Failure> {
    if value.is_null() {
        return if required {
            Err(Failure::new(Rule::NotNull, "null in a column that must have a value"))
        } else {
            Ok(())
        };
    }
    if let Some(min) = &checks.min
        && value.compare(min) != Some(Ordering::Greater)
        && value.compare(min) != Some(Ordering::Equal)
    {
        return Err(Failure::new(Rule::Min, format!("{value} is less than the minimum {min}")));
    }
    if let Some(max) = &checks.max
        && value.compare(max) != Some(Ordering::Less)
        && value.compare(max) != Some(Ordering::Equal)
    {
        return Err(Failure::new(Rule::Max, format!("{value} is greater than the maximum {max}")));
    }
    if let (Some(re), Value::String(s)) = (&checks.regex, value)
        && !re.is_match(s)
    {
        return Err(Failure::new(Rule::Regex, format!("{value} does not match /{}/", re.as_str())));
    }
    if let Some(allowed) = &checks.allowed
        && !allowed.contains(value)
    {
        let list = allowed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        return Err(Failure::new(Rule::Allowed, format!("{value} is not one of [{list}]")));
    }
    if let Some(limit) = checks.max_length {
        let len = match value {
            Value::String(s) => s.chars().count(),
            Value::Binary(b) => b.len(),
            _ => 0,
        };
        if len > limit {
            return Err(Failure::new(Rule::MaxLength, format!("{len} characters/bytes, more than the limit {limit}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn rule(v: Value, required: bool, checks: &Checks) -> Option<Rule> {
        check(&v, required, checks).err().map(|f| f.rule)
    }

    #[test]
    fn not_null_only_when_required() {
        let none = Checks::default();
        assert_eq!(rule(Value::Null, true, &none), Some(Rule::NotNull));
        assert_eq!(rule(Value::Null, false, &none), None);
        // Rules other than not_null never refuse a null.
        let strict = Checks { min: Some(Value::Int(5)), allowed: Some(vec![Value::Int(6)]), ..Checks::default() };
        assert_eq!(rule(Value::Null, false, &strict), None);
    }

    #[test]
    fn bounds_are_inclusive() {
        let c = Checks { min: Some(Value::Long(0)), max: Some(Value::Long(10)), ..Checks::default() };
        assert_eq!(rule(Value::Long(0), false, &c), None);
        assert_eq!(rule(Value::Long(10), false, &c), None);
        assert_eq!(rule(Value::Long(-1), false, &c), Some(Rule::Min));
        assert_eq!(rule(Value::Long(11), false, &c), Some(Rule::Max));
        let d = Checks { min: Some(Value::Double(0.0)), ..Checks::default() };
        assert_eq!(rule(Value::Double(f64::NAN), false, &d), Some(Rule::Min), "NaN is not within bounds");
        let e = check(
            &Value::Decimal { unscaled: -1, scale: 2 },
            false,
            &Checks { min: Some(Value::Decimal { unscaled: 0, scale: 2 }), ..Checks::default() },
        )
        .expect_err("below the minimum");
        assert_eq!(e.reason, "-0.01 is less than the minimum 0.00");
    }

    #[test]
    fn regex_allowed_and_length() {
        let c = Checks {
            regex: Some(Regex::new("^[A-Z]{3}$").expect("regex")),
            allowed: Some(vec![Value::String("EUR".into()), Value::String("USD".into())]),
            max_length: Some(3),
            ..Checks::default()
        };
        assert_eq!(rule(Value::String("EUR".into()), false, &c), None);
        assert_eq!(rule(Value::String("eur".into()), false, &c), Some(Rule::Regex));
        assert_eq!(rule(Value::String("GBP".into()), false, &c), Some(Rule::Allowed));
        let len = Checks { max_length: Some(2), ..Checks::default() };
        assert_eq!(rule(Value::String("äö".into()), false, &len), None, "characters, not bytes");
        assert_eq!(rule(Value::String("äöü".into()), false, &len), Some(Rule::MaxLength));
        assert_eq!(rule(Value::Binary(vec![1, 2, 3]), false, &len), Some(Rule::MaxLength));
    }
}
