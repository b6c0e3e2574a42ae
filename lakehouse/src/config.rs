//! Configuration: embedded defaults (`default.toml`) → TOML file → `LAKEHOUSE_*`
//! environment variables (`LAKEHOUSE_<SECTION>__<KEY>`, nested with `__`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ErrorKind;

/// The embedded defaults.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid TOML in {origin}: {source}")]
    Toml { origin: String, source: toml::de::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Config
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub catalog: CatalogConfig,
    pub kafka: KafkaConfig,
    pub bronze: BronzeConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    pub name: String,
    pub url: String,
    pub warehouse: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub topic_pattern: String,
    pub fetch_wait_max_ms: u32,
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// How a topic's values are decoded into the envelope columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// Debezium JSON (with or without schema); anything else is a decode error.
    Debezium,
    /// Any JSON; only non-JSON values are decode errors.
    Json,
    /// No decoding at all.
    Raw,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact topic name.
    pub topic: String,
    /// Table name inside the Bronze namespace.
    pub table: String,
    /// `source_system` audit column; defaults to the first dot-segment of the topic.
    #[serde(default)]
    pub source_system: Option<String>,
    #[serde(default)]
    pub format: Option<ValueFormat>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BronzeConfig {
    pub namespace: String,
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    pub max_batch_records: usize,
    pub max_batch_bytes: usize,
    pub target_file_size_bytes: usize,
    pub default_format: ValueFormat,
    pub retention_days: u32,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub listen: String,
    pub log_format: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &env)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut merged = parse(DEFAULT_TOML, "embedded defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
            merge(&mut merged, parse(&text, &path.display().to_string())?);
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("LAKEHOUSE_") else { continue };
            let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            if path.len() < 2 {
                continue; // e.g. LAKEHOUSE_CONFIG, handled by clap
            }
            set_path(&mut merged, &path, env_value(value))?;
        }
        let config: Config =
            merged.try_into().map_err(|source| ConfigError::Toml { origin: "merged configuration".into(), source })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.kafka.topics.is_empty() && self.kafka.topic_pattern.is_empty() {
            return bad("kafka.topics or kafka.topic_pattern must name what to consume".into());
        }
        if !self.kafka.topic_pattern.is_empty() {
            if !self.kafka.topic_pattern.starts_with('^') {
                return bad(format!("kafka.topic_pattern {:?} must start with '^'", self.kafka.topic_pattern));
            }
            if let Err(e) = regex::Regex::new(&self.kafka.topic_pattern) {
                return bad(format!("kafka.topic_pattern {:?} is not a valid regex: {e}", self.kafka.topic_pattern));
            }
        }
        if self.bronze.max_batch_records == 0 || self.bronze.max_batch_bytes == 0 {
            return bad("bronze.max_batch_records and bronze.max_batch_bytes must be > 0".into());
        }
        if self.bronze.commit_interval.is_zero() {
            return bad("bronze.commit_interval must be > 0".into());
        }
        for r in &self.bronze.routes {
            if !is_identifier(&r.table) {
                return bad(format!("route for topic {:?}: table {:?} is not [a-z0-9_]+", r.topic, r.table));
            }
        }
        if !is_identifier(&self.bronze.namespace) {
            return bad(format!("bronze.namespace {:?} is not [a-z0-9_]+", self.bronze.namespace));
        }
        if let Some(s) = self.kafka.properties.get("partition.assignment.strategy")
            && s.split(',').any(|s| s.trim().eq_ignore_ascii_case("cooperative-sticky"))
        {
            // The rebalance callback assigns eagerly (every rebalance revokes
            // everything and re-reads positions from the tables); an incremental
            // protocol would hand it partial revocations it does not handle.
            return bad(format!(
                "kafka.properties.\"partition.assignment.strategy\" = {s:?}: cooperative-sticky is not supported \
                 (the ingestor re-reads every partition's position from the tables at each eager rebalance); \
                 use roundrobin (the default) or range"
            ));
        }
        if let Some(p) = self.kafka.properties.get("security.protocol")
            && !p.eq_ignore_ascii_case("plaintext")
        {
            return bad(format!(
                "kafka.properties.\"security.protocol\" = {p:?}: the record fetcher speaks PLAINTEXT only \
                 (TLS/SASL listeners are not supported yet)"
            ));
        }
        crate::kafka::fetch_settings(&self.kafka).map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|source| ConfigError::Toml { origin: origin.to_string(), source })
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// An env value is read as TOML when it parses as a value (numbers, bools,
/// arrays), else as a plain string.
fn env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), ConfigError> {
    let (last, parents) = path.split_last().expect("path has at least two segments");
    let mut table = root;
    for p in parents {
        let entry = table.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(ConfigError::Invalid(format!("environment sets {p}.{last} but {p} is not a section"))),
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// Bronze table name for a topic: the route's, else the topic's last dot-segment,
/// lower-cased with anything outside `[a-z0-9_]` replaced by `_`.
pub fn default_table_for_topic(topic: &str) -> String {
    let last = topic.rsplit('.').next().unwrap_or(topic);
    let mut s: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if s.is_empty() {
        s.push('_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_topics() {
        let err = Config::load_with_env(None, &[]).expect_err("no topics configured");
        assert!(err.to_string().contains("kafka.topics"), "{err}");
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka]\ntopics = [\"a.b.orders\"]\nbrokers = \"file:1\"\n[bronze]\ncommit_interval = \"250ms\"\n",
        )
        .expect("write");
        let c = Config::load_with_env(
            Some(&path),
            &env(&[("LAKEHOUSE_KAFKA__BROKERS", "env:2"), ("LAKEHOUSE_BRONZE__MAX_BATCH_RECORDS", "7")]),
        )
        .expect("valid");
        assert_eq!(c.kafka.brokers, "env:2");
        assert_eq!(c.kafka.topics, vec!["a.b.orders".to_string()]);
        assert_eq!(c.bronze.commit_interval, Duration::from_millis(250));
        assert_eq!(c.bronze.max_batch_records, 7);
        assert_eq!(c.catalog.name, "lakehouse");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\ntopics = [\"t\"]\nbrokerz = \"x\"\n").expect("write");
        let err = Config::load_with_env(Some(&path), &[]).expect_err("typo must fail");
        assert!(err.to_string().contains("brokerz"), "{err}");
    }

    #[test]
    fn fetcher_properties_are_checked_up_front() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        let with = |props: &str| {
            std::fs::write(&path, format!("[kafka]\ntopics = [\"t\"]\n[kafka.properties]\n{props}\n")).expect("write");
            Config::load_with_env(Some(&path), &[])
        };
        let err = with("\"security.protocol\" = \"SASL_SSL\"").expect_err("TLS/SASL is refused");
        assert!(err.to_string().contains("PLAINTEXT only"), "{err}");
        let err = with("\"fetch.max.bytes\" = \"lots\"").expect_err("not an integer");
        assert!(err.to_string().contains("fetch.max.bytes"), "{err}");
        let err = with("\"isolation.level\" = \"dirty\"").expect_err("unknown isolation");
        assert!(err.to_string().contains("isolation.level"), "{err}");
        let err = with("\"partition.assignment.strategy\" = \"range,cooperative-sticky\"")
            .expect_err("an incremental protocol is refused");
        assert!(err.to_string().contains("cooperative-sticky is not supported"), "{err}");
        with("\"partition.assignment.strategy\" = \"range\"").expect("an eager strategy is fine");
        let ok =
            with("\"security.protocol\" = \"plaintext\"\n\"isolation.level\" = \"read_uncommitted\"").expect("valid");
        assert!(!crate::kafka::fetch_settings(&ok.kafka).expect("valid").read_committed);
    }

    #[test]
    fn topic_to_table() {
        assert_eq!(default_table_for_topic("dbserver1.inventory.customers"), "customers");
        assert_eq!(default_table_for_topic("App-Events"), "app_events");
    }
}
