//! Why a row was refused: the rule, the column and a reason a person can act on.
//! A rejected row goes to `silver._rejects`; nothing is dropped silently.

use std::fmt;

/// The rule a rejected row broke. [`Rule::as_str`] is the value stored in
/// `silver._rejects.rule` and used as a metric label, so the names are an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The row image is not a JSON object, or a text value does not parse as
    /// the column's type (bad number, date, base64, UUID, …).
    Parse,
    /// The JSON value's kind cannot be the column's type (an object into a
    /// long, a fraction into an int), or it contradicts its own schema.
    Type,
    /// The Debezium schema declares the source column with a type the
    /// contract's column cannot hold without loss (e.g. int64 into `int`,
    /// a string with a logical type into `long`): the source changed.
    TypeChange,
    /// The value is outside what the column type holds (int overflow, a time
    /// outside one day, a date past year 5 million).
    Range,
    /// Debezium sent its placeholder for an unchanged value it did not read
    /// (PostgreSQL TOAST columns without `REPLICA IDENTITY FULL`).
    Unavailable,
    /// Null (after defaults) in a key column or a `not_null` column.
    NotNull,
    Min,
    Max,
    Regex,
    Allowed,
    MaxLength,
    /// A decimal that does not fit the column's `decimal(p,s)` without losing
    /// a digit. Decimals are never rounded.
    Precision,
}

impl Rule {
    pub const ALL: [Rule; 12] = [
        Rule::Parse,
        Rule::Type,
        Rule::TypeChange,
        Rule::Range,
        Rule::Unavailable,
        Rule::NotNull,
        Rule::Min,
        Rule::Max,
        Rule::Regex,
        Rule::Allowed,
        Rule::MaxLength,
        Rule::Precision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Parse => "parse",
            Rule::Type => "type",
            Rule::TypeChange => "type_change",
            Rule::Range => "range",
            Rule::Unavailable => "unavailable",
            Rule::NotNull => "not_null",
            Rule::Min => "min",
            Rule::Max => "max",
            Rule::Regex => "regex",
            Rule::Allowed => "allowed",
            Rule::MaxLength => "max_length",
            Rule::Precision => "precision",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Reject {
    pub rule: Rule,
    /// The contract column, `None` when the row as a whole is wrong.
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "rule `{}` on column `{c}`: {}", self.rule, self.reason),
            None => write!(f, "rule `{}`: {}", self.rule, self.reason),
        }
    }
}

/// A reject before the column is known (inside decoding and checking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub rule: Rule,
    pub reason: String,
}

impl Failure {
    pub fn new(rule: Rule, reason: impl Into<String>) -> Self {
        Self { rule, reason: reason.into() }
    }

    pub fn at(self, column: &str) -> Reject {
        Reject { rule: self.rule, column: Some(column.to_string()), reason: self.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_distinct_and_displayed() {
        let mut names: Vec<_> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rule::ALL.len());
        let r = Failure::new(Rule::Precision, "12.345 has more than 2 decimal places").at("amount");
        assert_eq!(r.to_string(), "rule `precision` on column `amount`: 12.345 has more than 2 decimal places");
        let whole = Reject { rule: Rule::Parse, column: None, reason: "not an object".into() };
        assert_eq!(whole.to_string(), "rule `parse`: not an object");
    }
}
