//! silver-refiner's configuration: the shared `catalog`, `telemetry` and
//! `shutdown` sections plus its own `[silver]` section (defaults in
//! `default.toml` beside this file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lakehouse::config::{CatalogConfig, ConfigError, ShutdownConfig, TelemetryConfig, WorkerConfig, is_identifier};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub catalog: CatalogConfig,
    pub silver: SilverConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilverConfig {
    /// Namespace of the Silver tables (`silver.<entity>`, `silver._rejects`).
    pub namespace: String,
    /// Entity contracts: a TOML file, or a directory of them.
    pub contracts: PathBuf,
    /// Root of the changelog store (Paimon layout: `<root>/<namespace>.db/<entity>`).
    pub store: PathBuf,
    /// New Bronze snapshots are looked for this often when there is nothing to do.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A batch is committed when it is this old, or this large.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    pub max_batch_records: usize,
    /// Bronze snapshots read per entity and pass.
    pub max_snapshots_per_poll: usize,
    /// Store buckets of a new entity table.
    pub buckets: usize,
    /// MiB the store writers of all entities together keep in memory: half for
    /// files just written, kept for the compaction that takes them; half for
    /// decoded files, kept for the `lookup` changelog. Past it, files are read
    /// from disk again (CPU, not correctness).
    pub store_cache_mib: usize,
    /// Compaction of each Silver table is looked at this often, between
    /// commits, one table per commit round (zero: never; `lakehouse compact`
    /// still works).
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
    /// `"<i> of <n>"`: run as shard i of n refiners of the same entities, each
    /// owning the store buckets `b % n == i - 1` (see `shard.rs`). Unset: one
    /// refiner owns everything.
    #[serde(default)]
    pub shard: Option<String>,
}

impl SilverConfig {
    /// The store writers' shared cache budgets (`store_cache_mib`).
    pub fn store_budgets(&self) -> changelog_store::write::Budgets {
        changelog_store::write::Budgets::halves_of_mib(self.store_cache_mib)
    }

    /// The parsed `shard` (validated on load).
    pub fn shard(&self) -> Option<crate::shard::Shard> {
        self.shard.as_deref().and_then(|s| s.parse().ok())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !is_identifier(&self.namespace) {
            return bad(format!("silver.namespace {:?} is not [a-z0-9_]+", self.namespace));
        }
        if self.commit_interval.is_zero() || self.poll_interval.is_zero() {
            return bad("silver.commit_interval and silver.poll_interval must be > 0".into());
        }
        if self.max_batch_records == 0 || self.max_snapshots_per_poll == 0 || self.buckets == 0 {
            return bad("silver.max_batch_records, max_snapshots_per_poll and buckets must be > 0".into());
        }
        if let Some(s) = &self.shard {
            let shard: crate::shard::Shard =
                s.parse().map_err(|e| ConfigError::Invalid(format!("silver.shard: {e}")))?;
            if (self.buckets as u32) < shard.count {
                return bad(format!(
                    "silver.shard {shard} needs at least {} store buckets (silver.buckets = {})",
                    shard.count, self.buckets
                ));
            }
        }
        if self.contracts.as_os_str().is_empty() {
            return bad("silver.contracts must name a contract file or directory".into());
        }
        Ok(())
    }
}

impl WorkerConfig for Config {
    const SECTIONS: &'static [&'static str] = &["catalog", "silver", "telemetry", "shutdown"];

    fn defaults() -> Vec<(&'static str, &'static str)> {
        vec![("silver-refiner defaults", include_str!("default.toml"))]
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.silver.validate()
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
    fn silver_section_layers_and_validates() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let c = Config::load_with_env(None, &env(&[("LAKEHOUSE_SILVER__CONTRACTS", "contracts/")])).expect("valid");
        assert_eq!(c.silver.namespace, "silver");
        assert_eq!(c.silver.contracts, PathBuf::from("contracts/"));
        let err = Config::load_with_env(None, &env(&[("LAKEHOUSE_SILVER__NAMESPACE", "Silver!")])).expect_err("bad");
        assert!(err.to_string().contains("silver.namespace"), "{err}");
        let c = Config::load_with_env(None, &env(&[("LAKEHOUSE_SILVER__SHARD", "2 of 2")])).expect("valid shard");
        assert_eq!(c.silver.shard(), Some(crate::shard::Shard { index: 2, count: 2 }));
        let err = Config::load_with_env(None, &env(&[("LAKEHOUSE_SILVER__SHARD", "2 of 4")])).expect_err("2 buckets");
        assert!(err.to_string().contains("at least 4 store buckets"), "{err}");
        let err = Config::load_with_env(None, &env(&[("LAKEHOUSE_SILVER__SHARD", "5 of 4")])).expect_err("bad shard");
        assert!(err.to_string().contains("silver.shard"), "{err}");
    }
}
