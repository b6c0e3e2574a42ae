//! gold-aggregator's configuration: the shared `catalog`, `telemetry` and
//! `shutdown` sections plus its own `[gold]` section (defaults in
//! `default.toml` beside this file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lakehouse::config::{CatalogConfig, ConfigError, ShutdownConfig, TelemetryConfig, WorkerConfig, is_identifier};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub catalog: CatalogConfig,
    pub gold: GoldConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldConfig {
    /// Namespace of the Gold tables (`gold.<name>`).
    pub namespace: String,
    /// Gold table definitions: a TOML file, or a directory of them.
    pub tables: PathBuf,
    /// Root of Silver's changelog store (`<root>/<silver_namespace>.db/<entity>`).
    pub silver_store: PathBuf,
    pub silver_namespace: String,
    /// Root of Gold's state tables (`<root>/<namespace>.db/<table>`).
    pub state: PathBuf,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    pub max_batch_changes: usize,
    pub max_snapshots_per_poll: usize,
    pub buckets: usize,
    /// MiB the state writers of all Gold tables together keep in memory: half
    /// for files just written, kept for the compaction that takes them; half
    /// for decoded files, kept for the `lookup` changelog. Past it, files are
    /// read from disk again (CPU, not correctness).
    pub state_cache_mib: usize,
    /// Each Gold table's compaction (its data files with many deleted rows
    /// rewritten, see `GoldTable::compact`) is looked at this often, between
    /// commit rounds (zero: never; `lakehouse compact gold.<table>` still works).
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
}

impl GoldConfig {
    /// The state writers' shared cache budgets (`state_cache_mib`).
    pub fn state_budgets(&self) -> changelog_store::write::Budgets {
        changelog_store::write::Budgets::halves_of_mib(self.state_cache_mib)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (key, v) in [("gold.namespace", &self.namespace), ("gold.silver_namespace", &self.silver_namespace)] {
            if !is_identifier(v) {
                return bad(format!("{key} {v:?} is not [a-z0-9_]+"));
            }
        }
        if self.commit_interval.is_zero() || self.poll_interval.is_zero() {
            return bad("gold.commit_interval and gold.poll_interval must be > 0".into());
        }
        if self.max_batch_changes == 0 || self.max_snapshots_per_poll == 0 || self.buckets == 0 {
            return bad("gold.max_batch_changes, max_snapshots_per_poll and buckets must be > 0".into());
        }
        if self.tables.as_os_str().is_empty() {
            return bad("gold.tables must name a Gold definitions file or directory".into());
        }
        Ok(())
    }

    /// Silver's store table of `entity`.
    pub fn silver_table(&self, entity: &str) -> PathBuf {
        self.silver_store.join(format!("{}.db", self.silver_namespace)).join(entity)
    }

    /// The state table of Gold table `name`.
    pub fn state_table(&self, name: &str) -> PathBuf {
        self.state.join(format!("{}.db", self.namespace)).join(name)
    }
}

impl WorkerConfig for Config {
    const SECTIONS: &'static [&'static str] = &["catalog", "gold", "telemetry", "shutdown"];

    fn defaults() -> Vec<(&'static str, &'static str)> {
        vec![("gold-aggregator defaults", include_str!("default.toml"))]
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.gold.validate()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_section_layers_and_validates() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let c = Config::load_with_env(None, &env(&[("LAKEHOUSE_GOLD__TABLES", "gold/")])).expect("valid");
        assert_eq!(c.gold.namespace, "gold");
        assert_eq!(c.gold.tables, PathBuf::from("gold/"));
        assert_eq!(c.gold.silver_table("orders"), PathBuf::from(".lakehouse/store/silver.db/orders"));
        let err = Config::load_with_env(None, &env(&[("LAKEHOUSE_GOLD__BUCKETS", "0")])).expect_err("bad");
        assert!(err.to_string().contains("buckets"), "{err}");
    }
}
