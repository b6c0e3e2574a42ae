//! Table options, named exactly as Paimon names them (`merge-engine`, `sequence.field`, ...).

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// `merge-engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeEngine {
    Deduplicate,
    PartialUpdate,
    Aggregation,
    FirstRow,
}

/// `changelog-producer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangelogProducer {
    None,
    Input,
    Lookup,
}

/// Parsed options of a table. Unknown keys are kept in `raw` (and in the schema) untouched.
#[derive(Debug, Clone)]
pub struct CoreOptions {
    pub raw: BTreeMap<String, String>,
    pub bucket: i32,
    pub merge_engine: MergeEngine,
    pub sequence_fields: Vec<String>,
    pub changelog_producer: ChangelogProducer,
    pub changelog_row_deduplicate: bool,
    pub target_file_size: u64,
    pub write_buffer_size: u64,
    /// `lookup.cache-max-memory-size`: decoded files a writer keeps for lookups and
    /// row-wise compactions (default 256 mb).
    pub lookup_cache_max_memory_size: u64,
    pub compaction_trigger: usize,
    pub stop_trigger: usize,
    pub num_levels: usize,
    pub max_size_amplification_percent: u64,
    pub size_ratio: u64,
    pub snapshot_num_retained_min: usize,
    pub snapshot_num_retained_max: usize,
    pub snapshot_time_retained: Duration,
    /// `consumer.expiration-time`: consumers not advanced for this long are removed on
    /// expiration (none: consumers never expire, Paimon's default).
    pub consumer_expiration_time: Option<Duration>,
    pub ignore_delete: bool,
    /// `aggregation.remove-record-on-delete`: a `-D` record removes the whole row of an
    /// aggregation table instead of retracting its values.
    pub aggregation_remove_record_on_delete: bool,
    pub file_compression: String,
    /// `file.compression.per.level` (`0:lz4,1:zstd`): overrides `file.compression` per level.
    pub file_compression_per_level: BTreeMap<i32, String>,
    /// `file.compression.zstd-level` (Paimon's default 1).
    pub file_zstd_level: i32,
    pub manifest_compression: String,
    pub manifest_merge_min_count: usize,
    pub commit_max_retries: u32,
}

impl CoreOptions {
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<Self> {
        let get = |k: &str| raw.get(k).map(|s| s.trim().to_string());
        let bad = |k: &str, v: &str, m: &str| Error::InvalidOption {
            key: k.to_string(),
            value: v.to_string(),
            message: m.to_string(),
        };
        let num = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| bad(k, &v, "expected a non-negative integer")),
            }
        };
        let boolean = |k: &str, default: bool| -> Result<bool> {
            match get(k) {
                None => Ok(default),
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(bad(k, &v, "expected true or false")),
                },
            }
        };
        let mem = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => parse_memory_size(&v).ok_or_else(|| bad(k, &v, "expected a size like `128 mb`")),
            }
        };
        refuse_unsupported(raw)?;
        let bucket_text = get("bucket").unwrap_or_else(|| "-1".into());
        let bucket: i32 = bucket_text.parse().map_err(|_| bad("bucket", &bucket_text, "expected an integer"))?;
        if bucket <= 0 {
            return Err(bad(
                "bucket",
                &bucket_text,
                "a fixed bucket count > 0 is required (dynamic buckets are not supported)",
            ));
        }
        let merge_engine = match get("merge-engine").as_deref() {
            None | Some("deduplicate") => MergeEngine::Deduplicate,
            Some("partial-update") => MergeEngine::PartialUpdate,
            Some("aggregation") => MergeEngine::Aggregation,
            Some("first-row") => MergeEngine::FirstRow,
            Some(v) => return Err(bad("merge-engine", v, "unknown merge engine")),
        };
        let changelog_producer = match get("changelog-producer").as_deref() {
            None | Some("none") => ChangelogProducer::None,
            Some("input") => ChangelogProducer::Input,
            Some("lookup") => ChangelogProducer::Lookup,
            Some(v) => return Err(bad("changelog-producer", v, "supported: none, input, lookup")),
        };
        let sequence_fields = get("sequence.field")
            .map(|s| s.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect())
            .unwrap_or_default();
        let compaction_trigger = num("num-sorted-run.compaction-trigger", 5)? as usize;
        if compaction_trigger < 2 {
            return Err(bad(
                "num-sorted-run.compaction-trigger",
                &compaction_trigger.to_string(),
                "must be at least 2",
            ));
        }
        let stop_trigger = num("num-sorted-run.stop-trigger", compaction_trigger as u64 + 3)? as usize;
        let num_levels = num("num-levels", compaction_trigger as u64 + 1)? as usize;
        let time_retained = match get("snapshot.time-retained") {
            None => Duration::from_secs(3600),
            Some(v) => parse_duration(&v).ok_or_else(|| bad("snapshot.time-retained", &v, "expected e.g. `1 h`"))?,
        };
        Ok(CoreOptions {
            raw: raw.clone(),
            bucket,
            merge_engine,
            sequence_fields,
            changelog_producer,
            changelog_row_deduplicate: boolean("changelog-producer.row-deduplicate", false)?,
            target_file_size: mem("target-file-size", 128 << 20)?,
            write_buffer_size: mem("write-buffer-size", 256 << 20)?,
            lookup_cache_max_memory_size: mem("lookup.cache-max-memory-size", 256 << 20)?,
            compaction_trigger,
            stop_trigger: stop_trigger.max(compaction_trigger),
            num_levels: num_levels.max(2),
            max_size_amplification_percent: num("compaction.max-size-amplification-percent", 200)?,
            size_ratio: num("compaction.size-ratio", 1)?,
            snapshot_num_retained_min: num("snapshot.num-retained.min", 10)?.max(1) as usize,
            snapshot_num_retained_max: num("snapshot.num-retained.max", i32::MAX as u64)?.max(1) as usize,
            snapshot_time_retained: time_retained,
            consumer_expiration_time: match get("consumer.expiration-time") {
                None => None,
                Some(v) => {
                    Some(parse_duration(&v).ok_or_else(|| bad("consumer.expiration-time", &v, "expected e.g. `1 d`"))?)
                }
            },
            ignore_delete: boolean("ignore-delete", false)?
                || boolean("first-row.ignore-delete", false)?
                || boolean("partial-update.ignore-delete", false)?,
            aggregation_remove_record_on_delete: boolean("aggregation.remove-record-on-delete", false)?,
            file_compression: get("file.compression").unwrap_or_else(|| "zstd".into()),
            file_compression_per_level: match get("file.compression.per.level") {
                None => BTreeMap::new(),
                Some(v) => parse_per_level(&v).ok_or_else(|| {
                    bad("file.compression.per.level", &v, "expected `level:codec` pairs like `0:lz4,1:zstd`")
                })?,
            },
            file_zstd_level: match get("file.compression.zstd-level") {
                None => 1,
                Some(v) => v
                    .parse::<i32>()
                    .ok()
                    .filter(|l| (1..=22).contains(l))
                    .ok_or_else(|| bad("file.compression.zstd-level", &v, "expected 1..=22"))?,
            },
            manifest_compression: get("manifest.compression").unwrap_or_else(|| "zstd".into()),
            manifest_merge_min_count: num("manifest.merge-min-count", 30)?.max(1) as usize,
            commit_max_retries: num("commit.max-retries", 10)? as u32,
        })
    }

    /// `fields.<name>.aggregate-function`, else `fields.default-aggregate-function`.
    pub fn aggregate_function(&self, field: &str) -> Option<String> {
        self.raw
            .get(&format!("fields.{field}.aggregate-function"))
            .or_else(|| self.raw.get("fields.default-aggregate-function"))
            .map(|s| s.trim().to_string())
    }

    /// `fields.<name>.ignore-retract`.
    pub fn ignore_retract(&self, field: &str) -> bool {
        self.raw.get(&format!("fields.{field}.ignore-retract")).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// The codec of data files written to `level`: `file.compression.per.level`, else
    /// `file.compression`.
    pub fn compression_for_level(&self, level: i32) -> &str {
        self.file_compression_per_level.get(&level).map_or(self.file_compression.as_str(), String::as_str)
    }

    /// Level that holds the oldest data (`num-levels - 1`).
    pub fn max_level(&self) -> i32 {
        self.num_levels as i32 - 1
    }
}

/// Paimon options this store does not implement, refused when set to anything but
/// their default: accepting them silently would make the table behave, and read,
/// differently from what Paimon does with the same options.
fn refuse_unsupported(raw: &BTreeMap<String, String>) -> Result<()> {
    let unsupported =
        |k: &str, v: &str, why: &str| Err(Error::Unsupported(format!("table option `{k}` = `{v}`: {why}")));
    for (k, v) in raw {
        let v = v.trim();
        let lower = v.to_ascii_lowercase();
        match k.as_str() {
            "deletion-vectors.enabled" if lower != "false" => {
                return unsupported(k, v, "deletion vectors are not written or read by this store");
            }
            "sequence.field.sort-order" if lower != "ascending" => {
                return unsupported(k, v, "only the default `ascending` order of `sequence.field` is implemented");
            }
            "bucket-function.type" if lower != "default" => {
                return unsupported(k, v, "only Paimon's `default` bucket function is implemented");
            }
            "partition.default-name" if v != DEFAULT_PARTITION_NAME => {
                return unsupported(
                    k,
                    v,
                    "null and empty partition values are always written to `__DEFAULT_PARTITION__` directories",
                );
            }
            "partial-update.remove-record-on-delete" if lower != "false" => {
                return unsupported(k, v, "partial-update tables refuse deletes unless `ignore-delete` is set");
            }
            _ if k.starts_with("fields.") && k.ends_with(".sequence-group") => {
                return unsupported(k, v, "partial-update sequence groups are not implemented");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Paimon's default `partition.default-name`.
pub const DEFAULT_PARTITION_NAME: &str = "__DEFAULT_PARTITION__";

/// Parses `0:lz4,1:zstd` (Paimon's `file.compression.per.level`); codecs lower-cased.
fn parse_per_level(text: &str) -> Option<BTreeMap<i32, String>> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (level, codec) = pair.split_once(':')?;
        let level: i32 = level.trim().parse().ok().filter(|l: &i32| *l >= 0)?;
        let codec = codec.trim().to_ascii_lowercase();
        if codec.is_empty() {
            return None;
        }
        out.insert(level, codec);
    }
    Some(out)
}

/// Parses Paimon memory sizes: `1024`, `64 kb`, `128mb`, `1 gb`.
pub fn parse_memory_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Parses Paimon durations: `100 ms`, `10 s`, `30 min`, `1 h`, `7 d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms: u64 = match unit.trim() {
        "ms" | "milli" | "millis" => 1,
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_per_level_overrides_file_compression() {
        let raw: BTreeMap<String, String> =
            [("bucket", "1"), ("file.compression.per.level", "0:LZ4, 5:none"), ("file.compression", "zstd")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let o = CoreOptions::parse(&raw).expect("parses");
        assert_eq!(o.compression_for_level(0), "lz4");
        assert_eq!(o.compression_for_level(3), "zstd");
        assert_eq!(o.compression_for_level(5), "none");
        for bad in ["0=lz4", "x:lz4", "-1:lz4", "0:"] {
            let raw = BTreeMap::from([
                ("bucket".to_string(), "1".to_string()),
                ("file.compression.per.level".to_string(), bad.to_string()),
            ]);
            let err = CoreOptions::parse(&raw).expect_err("malformed per-level compression is rejected");
            assert!(err.to_string().contains("file.compression.per.level"), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults_follow_paimon() {
        let mut raw = BTreeMap::new();
        raw.insert("bucket".to_string(), "4".to_string());
        let o = CoreOptions::parse(&raw).expect("parses");
        assert_eq!(o.compaction_trigger, 5);
        assert_eq!(o.stop_trigger, 8);
        assert_eq!(o.num_levels, 6);
        assert_eq!(o.merge_engine, MergeEngine::Deduplicate);
        assert_eq!(o.changelog_producer, ChangelogProducer::None);
        assert_eq!(o.target_file_size, 128 << 20);
    }

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_memory_size("64 kb"), Some(65536));
        assert_eq!(parse_memory_size("128mb"), Some(128 << 20));
        assert_eq!(parse_duration("30 min"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1 h"), Some(Duration::from_secs(3600)));
        assert!(parse_memory_size("lots").is_none());
    }

    #[test]
    fn rejects_dynamic_bucket() {
        assert!(CoreOptions::parse(&BTreeMap::new()).is_err());
    }
}
