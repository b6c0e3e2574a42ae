//! Gold table definitions (TOML): one `[[rollup]]` section per Gold table.
//!
//! ```toml
//! [[rollup]]
//! name = "daily_revenue"             # gold.daily_revenue
//! source = "orders"                  # a Silver entity (its changelog)
//! time = "order_date"                # date or timestamp column
//! windows = ["day", "week", "month"] # ISO weeks start on Monday
//! timezone = "Europe/Berlin"         # UTC, a fixed offset "+05:30", or a tz database name
//! group_by = ["status"]
//! filter = "status != 'cancelled' and total >= 0"
//! partition = "month"                # of window_start; or "year"
//! [[rollup.measure]]
//! name = "revenue"
//! fn = "sum"                         # sum count count_distinct avg min max
//! column = "total"                   # count without a column counts rows
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::filter::Filter;
use crate::window::{Window, Zone};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{origin}: {source}")]
    Toml { origin: String, source: toml::de::Error },
    #[error("gold table {table}: {message}")]
    Invalid { table: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    Sum,
    Count,
    CountDistinct,
    Avg,
    Min,
    Max,
}

impl Func {
    /// Whether the measure keeps a count per value (`min`, `max`,
    /// `count_distinct`), so that retracting the current extreme or the last
    /// copy of a distinct value stays exact.
    pub fn counts_values(self) -> bool {
        matches!(self, Func::Min | Func::Max | Func::CountDistinct)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub name: String,
    #[serde(rename = "fn")]
    pub func: Func,
    pub column: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PartitionBy {
    #[default]
    Month,
    Year,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollupToml {
    name: String,
    source: String,
    time: String,
    windows: Vec<Window>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    partition: PartitionBy,
    #[serde(rename = "measure")]
    measures: Vec<Measure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default, rename = "rollup")]
    rollups: Vec<RollupToml>,
    #[serde(default, rename = "wide")]
    wides: Vec<crate::wide::WideToml>,
    #[serde(default, rename = "features")]
    features: Vec<crate::features::FeaturesToml>,
}

/// One Gold table definition.
#[derive(Debug, Clone)]
pub enum GoldDef {
    Rollup(Rollup),
    Wide(crate::wide::WideSpec),
    Features(crate::features::FeaturesSpec),
}

impl GoldDef {
    pub fn name(&self) -> &str {
        match self {
            GoldDef::Rollup(r) => &r.name,
            GoldDef::Wide(w) => &w.name,
            GoldDef::Features(f) => &f.name,
        }
    }

    /// The changelogs it reads: Silver entities, or keyed Gold tables (a wide table).
    pub fn sources(&self) -> Vec<String> {
        match self {
            GoldDef::Rollup(r) => vec![r.source.clone()],
            GoldDef::Wide(w) => w.sources(),
            GoldDef::Features(f) => vec![f.source.clone()],
        }
    }
}

/// One rollup: a Silver entity's rows, by window of `time` and `group_by`.
#[derive(Debug, Clone)]
pub struct Rollup {
    pub name: String,
    pub source: String,
    pub time: String,
    pub windows: Vec<Window>,
    pub zone: Zone,
    pub group_by: Vec<String>,
    pub filter: Filter,
    pub partition: PartitionBy,
    pub measures: Vec<Measure>,
}

/// Gold column names the rollup itself uses.
pub const WINDOW: &str = "window";
pub const WINDOW_START: &str = "window_start";

impl Rollup {
    fn from_toml(t: RollupToml) -> Result<Self, SpecError> {
        let invalid = |message: String| SpecError::Invalid { table: t.name.clone(), message };
        if !lakehouse::config::is_identifier(&t.name) {
            return Err(invalid("name must be [a-z0-9_]+".into()));
        }
        if t.windows.is_empty() {
            return Err(invalid("windows must name at least one of day, week, month".into()));
        }
        if t.measures.is_empty() {
            return Err(invalid("at least one [[rollup.measure]] is required".into()));
        }
        let mut names: Vec<&str> = vec![WINDOW, WINDOW_START];
        for g in &t.group_by {
            names.push(g);
        }
        for m in &t.measures {
            if m.column.is_none() && m.func != Func::Count {
                return Err(invalid(format!("measure {}: {:?} needs a column", m.name, m.func)));
            }
            names.push(&m.name);
        }
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if !seen.insert(*n) {
                return Err(invalid(format!(
                    "column {n} appears twice (group_by, measures and window, window_start share one namespace)"
                )));
            }
        }
        let zone = Zone::parse(t.timezone.as_deref().unwrap_or("UTC")).map_err(&invalid)?;
        let filter = match &t.filter {
            Some(text) => Filter::parse(text).map_err(|e| invalid(format!("filter: {e}")))?,
            None => Filter::default(),
        };
        let mut windows = t.windows.clone();
        windows.dedup();
        Ok(Rollup {
            name: t.name,
            source: t.source,
            time: t.time,
            windows,
            zone,
            group_by: t.group_by,
            filter,
            partition: t.partition,
            measures: t.measures,
        })
    }

    /// Source columns the rollup reads.
    pub fn source_columns(&self) -> Vec<&str> {
        let mut cols: Vec<&str> = vec![&self.time];
        cols.extend(self.group_by.iter().map(String::as_str));
        cols.extend(self.measures.iter().filter_map(|m| m.column.as_deref()));
        cols.extend(self.filter.columns());
        cols.sort_unstable();
        cols.dedup();
        cols
    }
}

/// Every Gold table of a definitions file or directory. A source naming a
/// wide table defined here reads that table's changelog; a Gold table may
/// not read itself or a table defined after it (no cycles).
pub fn load(path: &Path) -> Result<Vec<GoldDef>, SpecError> {
    let mut files = Vec::new();
    if path.is_dir() {
        let read = |source| SpecError::Read { path: path.display().to_string(), source };
        for entry in std::fs::read_dir(path).map_err(read)? {
            let p = entry.map_err(read)?.path();
            if p.extension().is_some_and(|e| e == "toml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut out: Vec<GoldDef> = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(|source| SpecError::Read { path: f.display().to_string(), source })?;
        out.extend(parse_all(&text, &f.display().to_string())?);
    }
    check_names(&out)?;
    Ok(out)
}

fn check_names(defs: &[GoldDef]) -> Result<(), SpecError> {
    for (i, d) in defs.iter().enumerate() {
        if defs[..i].iter().any(|o| o.name() == d.name()) {
            return Err(SpecError::Invalid { table: d.name().into(), message: "defined twice".into() });
        }
        for s in d.sources() {
            let reads_later = defs[i..].iter().any(|o| o.name() == s && !matches!(o, GoldDef::Rollup(_)));
            if reads_later {
                return Err(SpecError::Invalid {
                    table: d.name().into(),
                    message: format!("reads Gold table {s}, which must be defined before it"),
                });
            }
            if defs[..i].iter().any(|o| o.name() == s && matches!(o, GoldDef::Rollup(_))) {
                return Err(SpecError::Invalid {
                    table: d.name().into(),
                    message: format!("source {s} is a rollup; only wide tables and Silver entities can be read"),
                });
            }
        }
    }
    Ok(())
}

/// The rollups of one TOML text.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Rollup>, SpecError> {
    let file: FileToml = toml::from_str(text).map_err(|source| SpecError::Toml { origin: origin.into(), source })?;
    file.rollups.into_iter().map(Rollup::from_toml).collect()
}

/// Every Gold table of one TOML text: wide tables first, then features and rollups (which may read them).
pub fn parse_all(text: &str, origin: &str) -> Result<Vec<GoldDef>, SpecError> {
    let file: FileToml = toml::from_str(text).map_err(|source| SpecError::Toml { origin: origin.into(), source })?;
    let mut out = Vec::new();
    for w in file.wides {
        out.push(GoldDef::Wide(crate::wide::WideSpec::from_toml(w)?));
    }
    for f in file.features {
        out.push(GoldDef::Features(crate::features::FeaturesSpec::from_toml(f)?));
    }
    for r in file.rollups {
        out.push(GoldDef::Rollup(Rollup::from_toml(r)?));
    }
    check_names(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAILY: &str = r#"
        [[rollup]]
        name = "daily_metrics"
        source = "order_lines"
        time = "order_date"
        windows = ["day"]
        group_by = ["product"]
        [[rollup.measure]]
        name = "revenue"
        fn = "sum"
        column = "amount"
        [[rollup.measure]]
        name = "orders"
        fn = "count"
        [[rollup.measure]]
        name = "avg_order_value"
        fn = "avg"
        column = "amount"
    "#;

    #[test]
    fn parses_the_seed_example() {
        let r = parse(DAILY, "test").expect("valid");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].windows, [Window::Day]);
        assert_eq!(r[0].measures[1].func, Func::Count);
        assert_eq!(r[0].partition, PartitionBy::Month);
        assert_eq!(r[0].source_columns(), ["amount", "order_date", "product"]);
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let bad = |from: &str, to: &str, want: &str| {
            let err = parse(&DAILY.replace(from, to), "test").expect_err("invalid");
            assert!(err.to_string().contains(want), "{err}");
        };
        bad("fn = \"avg\"", "fn = \"median\"", "unknown variant");
        bad("name = \"revenue\"", "name = \"product\"", "appears twice");
        bad("windows = [\"day\"]", "windows = []", "at least one");
        bad("windows = [\"day\"]", "windows = [\"day\"]\ntimezone = \"Europe/Nowhere\"", "time zone");
        bad("group_by = [\"product\"]", "group_by = [\"product\"]\nfilter = \"amount >< 3\"", "filter");
        let no_column = DAILY.replace("fn = \"sum\"\n        column = \"amount\"", "fn = \"sum\"");
        assert!(parse(&no_column, "t").expect_err("sum needs a column").to_string().contains("needs a column"));
    }
}
