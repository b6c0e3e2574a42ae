//! Row filters of a rollup: clauses joined by `and`, each
//! `<column> <op> <literal>` (`=`, `!=`, `<`, `<=`, `>`, `>=`),
//! `<column> in (<literal>, …)`, or `<column> is [not] null`.
//! Literals: `'text'`, numbers, `true`, `false`. A comparison with a null
//! value is false, as in SQL.

use crate::scalar::Scalar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Text(String),
    Number(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Compare(String, Op, Lit),
    In(String, Vec<Lit>),
    IsNull(String, bool),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    clauses: Vec<Clause>,
}

/// A value with what [`Filter::accepts`] needs to compare it: the column's decimal scale.
pub struct Value {
    pub scalar: Scalar,
    pub scale: i8,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut clauses = Vec::new();
        for part in split_and(text) {
            clauses.push(clause(part.trim())?);
        }
        Ok(Filter { clauses })
    }

    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().map(|c| match c {
            Clause::Compare(c, _, _) | Clause::In(c, _) | Clause::IsNull(c, _) => c.as_str(),
        })
    }

    /// Whether a row passes; `value` gives a column's value in the row.
    pub fn accepts(&self, value: impl Fn(&str) -> Value) -> bool {
        self.clauses.iter().all(|c| match c {
            Clause::IsNull(col, want_null) => value(col).scalar.is_null() == *want_null,
            Clause::Compare(col, op, lit) => compare(&value(col), lit).is_some_and(|o| match op {
                Op::Eq => o.is_eq(),
                Op::Ne => o.is_ne(),
                Op::Lt => o.is_lt(),
                Op::Le => o.is_le(),
                Op::Gt => o.is_gt(),
                Op::Ge => o.is_ge(),
            }),
            Clause::In(col, lits) => {
                let v = value(col);
                lits.iter().any(|l| compare(&v, l).is_some_and(|o| o.is_eq()))
            }
        })
    }
}

fn compare(v: &Value, lit: &Lit) -> Option<std::cmp::Ordering> {
    match (&v.scalar, lit) {
        (Scalar::Null, _) => None,
        (Scalar::Str(s), Lit::Text(t)) => Some((**s).cmp(t.as_str())),
        (Scalar::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
        (s, Lit::Number(n)) => s.as_f64(v.scale).and_then(|x| x.partial_cmp(n)),
        _ => None,
    }
}

/// Splits on ` and ` outside quotes and parentheses (case-insensitive).
fn split_and(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut depth) = (0, false, 0);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b' ' if !quoted && depth == 0 && text[i..].len() > 5 && text[i..i + 5].eq_ignore_ascii_case(" and ") => {
                parts.push(&text[start..i]);
                start = i + 5;
                i += 5;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

fn clause(text: &str) -> Result<Clause, String> {
    let bad =
        || format!("cannot read {text:?}: expected `column op literal`, `column in (…)` or `column is [not] null`");
    let (col, rest) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
    if col.is_empty() || !col.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad());
    }
    let rest = rest.trim();
    let lower = rest.to_ascii_lowercase();
    if lower == "is null" || lower == "is not null" {
        return Ok(Clause::IsNull(col.into(), lower == "is null"));
    }
    if lower.starts_with("in ") || lower.starts_with("in(") {
        let list = rest[2..].trim();
        let inner = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')).ok_or_else(bad)?;
        let lits = split_commas(inner).into_iter().map(|l| literal(l.trim())).collect::<Result<Vec<_>, _>>()?;
        return Ok(Clause::In(col.into(), lits));
    }
    let (op, lit) = ["!=", "<>", "<=", ">=", "=", "<", ">"]
        .iter()
        .find_map(|o| rest.strip_prefix(o).map(|l| (*o, l.trim())))
        .ok_or_else(bad)?;
    let op = match op {
        "=" => Op::Eq,
        "!=" | "<>" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        _ => Op::Ge,
    };
    Ok(Clause::Compare(col.into(), op, literal(lit)?))
}

fn split_commas(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn literal(text: &str) -> Result<Lit, String> {
    if let Some(t) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(Lit::Text(t.to_string()));
    }
    match text.to_ascii_lowercase().as_str() {
        "true" => return Ok(Lit::Bool(true)),
        "false" => return Ok(Lit::Bool(false)),
        _ => {}
    }
    text.parse::<f64>()
        .map(Lit::Number)
        .map_err(|_| format!("{text:?} is not a literal ('text', a number, true, false)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn row(pairs: &[(&str, Scalar)]) -> HashMap<String, Scalar> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn passes(f: &str, r: &HashMap<String, Scalar>) -> bool {
        let f = Filter::parse(f).expect("parses");
        f.accepts(|c| Value { scalar: r.get(c).cloned().unwrap_or(Scalar::Null), scale: 2 })
    }

    #[test]
    fn clauses_compare_like_sql() {
        let r =
            row(&[("status", Scalar::Str("paid".into())), ("total", Scalar::Dec(1050.into())), ("note", Scalar::Null)]);
        assert!(passes("status != 'cancelled'", &r));
        assert!(passes("status in ('paid', 'shipped') and total >= 10.5", &r));
        assert!(!passes("total > 10.5", &r), "1050 at scale 2 is 10.50");
        assert!(passes("note is null and status is not null", &r));
        assert!(!passes("note = 'x'", &r) && !passes("note != 'x'", &r), "null compares to nothing");
        assert!(passes("status = 'it''s'".replace("it''s", "paid").as_str(), &r));
        assert_eq!(Filter::parse("a = 1 AND b = 'x and y'").expect("parses").clauses.len(), 2);
    }

    #[test]
    fn unreadable_filters_are_errors() {
        for f in ["status", "status ~ 'x'", "total = abc", "x in 1, 2", "= 3"] {
            assert!(Filter::parse(f).is_err(), "{f}");
        }
    }
}
