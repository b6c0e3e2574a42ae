//! bronze-ingestor's configuration: the shared `catalog`, `kafka`,
//! `telemetry` and `shutdown` sections plus its own `[bronze]` section
//! (defaults in `default.toml` beside this file).

use std::path::Path;
use std::time::Duration;

use lakehouse::config::{
    CatalogConfig, ConfigError, KafkaConfig, ShutdownConfig, TelemetryConfig, ValueFormat, WorkerConfig, is_identifier,
};
use serde::Deserialize;

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
    /// `"<topic>:<topic id>"`: re-created topics an operator allowed to be read
    /// from their new log start.
    #[serde(default)]
    pub accept_recreated_topics: Vec<String>,
}

impl BronzeConfig {
    /// Whether the operator allowed `topic`, re-created with id `id`, to be read from its log start.
    pub fn accepts_recreated(&self, topic: &str, id: &str) -> bool {
        self.accept_recreated_topics.iter().any(|a| a.split_once(':') == Some((topic, id)))
    }

    /// Checks the `[bronze]` section on its own.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.max_batch_records == 0 || self.max_batch_bytes == 0 {
            return bad("bronze.max_batch_records and bronze.max_batch_bytes must be > 0".into());
        }
        if self.commit_interval.is_zero() {
            return bad("bronze.commit_interval must be > 0".into());
        }
        for r in &self.routes {
            if !is_identifier(&r.table) {
                return bad(format!("route for topic {:?}: table {:?} is not [a-z0-9_]+", r.topic, r.table));
            }
        }
        for a in &self.accept_recreated_topics {
            if !a.split_once(':').is_some_and(|(t, id)| !t.is_empty() && id.len() == 22) {
                return bad(format!(
                    "bronze.accept_recreated_topics entry {a:?} is not \"<topic>:<22-character topic id>\""
                ));
            }
        }
        if !is_identifier(&self.namespace) {
            return bad(format!("bronze.namespace {:?} is not [a-z0-9_]+", self.namespace));
        }
        Ok(())
    }
}

impl WorkerConfig for Config {
    const SECTIONS: &'static [&'static str] = &["catalog", "kafka", "bronze", "telemetry", "shutdown"];

    fn defaults() -> Vec<(&'static str, &'static str)> {
        vec![("bronze-ingestor defaults", include_str!("default.toml"))]
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate_consumer()?;
        self.bronze.validate()
    }
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        lakehouse::config::load(file)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        lakehouse::config::load_with_env(file, env)
    }
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
    fn bronze_section_layers_and_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\ntopics = [\"a.b.orders\"]\n[bronze]\ncommit_interval = \"250ms\"\n")
            .expect("write");
        let c =
            Config::load_with_env(Some(&path), &env(&[("LAKEHOUSE_BRONZE__MAX_BATCH_RECORDS", "7")])).expect("valid");
        assert_eq!(c.bronze.commit_interval, Duration::from_millis(250));
        assert_eq!(c.bronze.max_batch_records, 7);
        assert_eq!(c.bronze.retention_days, 90, "embedded default");
        let err = Config::load_with_env(Some(&path), &env(&[("LAKEHOUSE_BRONZE__COMMIT_INTERVAL", "0s")]))
            .expect_err("a zero interval is refused");
        assert!(err.to_string().contains("bronze.commit_interval"), "{err}");
        let err = Config::load_with_env(None, &[]).expect_err("a consumer needs topics");
        assert!(err.to_string().contains("kafka.topics"), "{err}");
    }

    #[test]
    fn topic_to_table() {
        assert_eq!(default_table_for_topic("dbserver1.inventory.customers"), "customers");
        assert_eq!(default_table_for_topic("App-Events"), "app_events");
    }
}
