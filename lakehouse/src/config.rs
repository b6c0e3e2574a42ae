//! The configuration core every worker shares: embedded defaults → TOML file
//! → `LAKEHOUSE_*` environment variables (`LAKEHOUSE_<SECTION>__<KEY>`, nested
//! with `__`), and the sections more than one worker reads (`catalog`,
//! `kafka`, `telemetry`, `shutdown`).
//!
//! Each worker declares its own config type ([`WorkerConfig`]): the common
//! sections it needs plus its own section (`[bronze]`, `[silver]`, `[gold]`),
//! with its own defaults and its own validation. One file may hold every
//! worker's sections: a worker ignores the sections of the others (listed in
//! [`SECTIONS`]), while an unknown key anywhere is still an error.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ErrorKind;

/// Embedded defaults of the shared sections.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Every top-level section any worker reads. A worker drops the ones it does
/// not declare before parsing, so a shared file works for all of them.
pub const SECTIONS: &[&str] = &["catalog", "kafka", "telemetry", "shutdown", "bronze", "silver", "gold"];

/// A worker's whole configuration.
pub trait WorkerConfig: DeserializeOwned {
    /// The top-level sections this worker reads.
    const SECTIONS: &'static [&'static str];
    /// Its embedded defaults beyond [`DEFAULT_TOML`]: `(origin, toml)`.
    fn defaults() -> Vec<(&'static str, &'static str)>;
    /// Checks what serde cannot.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads `T`: defaults, then `file` if given, then the process environment.
pub fn load<T: WorkerConfig>(file: Option<&Path>) -> Result<T, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_with_env(file, &env)
}

/// Like [`load`] with an explicit environment (for tests).
pub fn load_with_env<T: WorkerConfig>(file: Option<&Path>, env: &[(String, String)]) -> Result<T, ConfigError> {
    let mut merged = parse(DEFAULT_TOML, "embedded defaults")?;
    for (origin, text) in T::defaults() {
        merge(&mut merged, parse(text, origin)?);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        merge(&mut merged, parse(&text, &path.display().to_string())?);
    }
    for (key, value) in env {
        // Kafka credentials by their own names (property names hold dots,
        // which environment names cannot): `kafka.properties."sasl.*"`.
        if let Some(property) = KAFKA_CREDENTIAL_ENV.iter().find(|(k, _)| k == key).map(|(_, p)| *p) {
            let path = ["kafka".to_string(), "properties".to_string(), property.to_string()];
            set_path(&mut merged, &path, toml::Value::String(value.clone()))?;
            continue;
        }
        let Some(rest) = key.strip_prefix("LAKEHOUSE_") else { continue };
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        if path.len() < 2 {
            continue; // e.g. LAKEHOUSE_CONFIG, handled by clap
        }
        set_path(&mut merged, &path, env_value(value))?;
    }
    // Other workers' sections are theirs to check.
    merged.retain(|k, _| T::SECTIONS.contains(&k) || !SECTIONS.contains(&k));
    let config: T =
        merged.try_into().map_err(|source| ConfigError::Toml { origin: "merged configuration".into(), source })?;
    config.validate()?;
    Ok(config)
}

/// Environment variables that set a Kafka credential property.
pub const KAFKA_CREDENTIAL_ENV: &[(&str, &str)] =
    &[("LAKEHOUSE_KAFKA_SASL_USERNAME", "sasl.username"), ("LAKEHOUSE_KAFKA_SASL_PASSWORD", "sasl.password")];

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
pub struct CatalogConfig {
    pub name: String,
    pub url: String,
    pub warehouse: String,
}

/// `Debug` is written by hand: secret properties (`sasl.password`, …) show as `<redacted>`.
#[derive(Clone, Deserialize)]
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

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if crate::kafka::security::is_secret(k) { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("topic_pattern", &self.topic_pattern)
            .field("fetch_wait_max_ms", &self.fetch_wait_max_ms)
            .field("session_timeout", &self.session_timeout)
            .field("properties", &properties)
            .finish()
    }
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

impl KafkaConfig {
    /// Checks the settings of a consumer: something to subscribe to, and
    /// client properties the record fetcher and the rebalance handling support.
    pub fn validate_consumer(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.topics.is_empty() && self.topic_pattern.is_empty() {
            return bad("kafka.topics or kafka.topic_pattern must name what to consume".into());
        }
        if !self.topic_pattern.is_empty() {
            if !self.topic_pattern.starts_with('^') {
                return bad(format!("kafka.topic_pattern {:?} must start with '^'", self.topic_pattern));
            }
            if let Err(e) = regex::Regex::new(&self.topic_pattern) {
                return bad(format!("kafka.topic_pattern {:?} is not a valid regex: {e}", self.topic_pattern));
            }
        }
        if let Some(s) = self.properties.get("partition.assignment.strategy")
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
        crate::kafka::fetch_settings(self).map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

/// Whether `s` is a valid namespace or table name: `[a-z0-9_]+`.
pub fn is_identifier(s: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that reads the catalog and Kafka sections only.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Consumer {
        catalog: CatalogConfig,
        kafka: KafkaConfig,
    }

    impl WorkerConfig for Consumer {
        const SECTIONS: &'static [&'static str] = &["catalog", "kafka"];
        fn defaults() -> Vec<(&'static str, &'static str)> {
            Vec::new()
        }
        fn validate(&self) -> Result<(), ConfigError> {
            self.kafka.validate_consumer()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn with_file(text: &str, env_pairs: &[(&str, &str)]) -> Result<Consumer, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        load_with_env::<Consumer>(Some(&path), &env(env_pairs))
    }

    #[test]
    fn defaults_need_topics() {
        let err = load_with_env::<Consumer>(None, &[]).expect_err("no topics configured");
        assert!(err.to_string().contains("kafka.topics"), "{err}");
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let c = with_file(
            "[kafka]\ntopics = [\"a.b.orders\"]\nbrokers = \"file:1\"\nsession_timeout = \"250ms\"\n",
            &[("LAKEHOUSE_KAFKA__BROKERS", "env:2"), ("LAKEHOUSE_KAFKA__FETCH_WAIT_MAX_MS", "7")],
        )
        .expect("valid");
        assert_eq!(c.kafka.brokers, "env:2");
        assert_eq!(c.kafka.topics, vec!["a.b.orders".to_string()]);
        assert_eq!(c.kafka.session_timeout, Duration::from_millis(250));
        assert_eq!(c.kafka.fetch_wait_max_ms, 7);
        assert_eq!(c.catalog.name, "lakehouse");
    }

    #[test]
    fn unknown_keys_are_rejected_other_workers_sections_are_not() {
        let err = with_file("[kafka]\ntopics = [\"t\"]\nbrokerz = \"x\"\n", &[]).expect_err("typo must fail");
        assert!(err.to_string().contains("brokerz"), "{err}");
        let err = with_file("[kafka]\ntopics = [\"t\"]\n[kafak]\nx = 1\n", &[]).expect_err("unknown section");
        assert!(err.to_string().contains("kafak"), "{err}");
        // A shared file: the sections of other workers are theirs to check.
        with_file("[kafka]\ntopics = [\"t\"]\n[silver]\nwhatever = 1\n[telemetry]\nlisten = \"\"\n", &[])
            .expect("other workers' sections are ignored");
    }

    #[test]
    fn fetcher_properties_are_checked_up_front() {
        let with = |props: &str| with_file(&format!("[kafka]\ntopics = [\"t\"]\n[kafka.properties]\n{props}\n"), &[]);
        let err = with("\"security.protocol\" = \"SASL_SSL\"").expect_err("SASL without credentials");
        assert!(err.to_string().contains("sasl.mechanism"), "{err}");
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

    /// The password comes from the environment, is used, and shows nowhere:
    /// not in `Debug` of the config or of the fetch settings, not in errors.
    #[test]
    fn sasl_password_from_env_never_shows() {
        const PW: &str = "s3cr3t-Pa55word";
        let file = "[kafka]\ntopics = [\"t\"]\n[kafka.properties]\n\"security.protocol\" = \"sasl_plaintext\"\n\
                    \"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"ingest\"\n";
        let c = with_file(file, &[("LAKEHOUSE_KAFKA_SASL_PASSWORD", PW)]).expect("valid");
        assert_eq!(c.kafka.properties.get("sasl.password").map(String::as_str), Some(PW));
        let settings = crate::kafka::fetch_settings(&c.kafka).expect("valid");
        assert_eq!(settings.security.sasl.as_ref().expect("sasl").password.expose(), PW);
        for shown in [format!("{c:?}"), format!("{:?}", c.kafka), format!("{settings:?}")] {
            assert!(!shown.contains(PW), "secret in {shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
        // A numeric-looking password stays a string (env values are otherwise read as TOML).
        let c = with_file(file, &[("LAKEHOUSE_KAFKA_SASL_PASSWORD", "12345")]).expect("valid");
        assert_eq!(c.kafka.properties.get("sasl.password").map(String::as_str), Some("12345"));
        // Errors about the SASL settings name the property, not the secret.
        let bad = file.replace("SCRAM-SHA-512", "KERBEROS");
        let err = with_file(&bad, &[("LAKEHOUSE_KAFKA_SASL_PASSWORD", PW)]).expect_err("bad mechanism");
        assert!(!err.to_string().contains(PW) && !format!("{err:?}").contains(PW), "{err:?}");
        let err = with_file(file, &[]).expect_err("no password");
        assert!(err.to_string().contains("LAKEHOUSE_KAFKA_SASL_PASSWORD"), "{err}");
    }
}
