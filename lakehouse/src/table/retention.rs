//! Which snapshots a table keeps, and which it may expire.
//!
//! The policy comes from the table's properties, with Iceberg's own names and
//! defaults (Java's `ExpireSnapshots` reads the same ones), so Spark or the
//! `lakehouse` CLI change it per table:
//!
//! | property | default | meaning |
//! |---|---|---|
//! | `history.expire.max-snapshot-age-ms` | 5 days | snapshots older than this may expire |
//! | `history.expire.min-snapshots-to-keep` | 1 | the newest N of the current ancestry never expire |
//! | `gc.enabled` | true | false: nothing expires and no file is deleted |
//! | `write.metadata.delete-after-commit.enabled` | false | delete metadata files that fall out of the metadata log |
//! | `write.metadata.previous-versions-max` | 100 | metadata log length |
//! | `lakehouse.expire-on-commit` | true | the workers' commits expire snapshots themselves |
//! | `lakehouse.expire.min-batch` | 16 | a commit expires only once this many snapshots may go (batches the file cleanup) |
//!
//! Tables the workers create get shorter defaults ([`worker_defaults`]).
//!
//! Whatever the age, a plan never expires ([`plan`]):
//! - the head and every branch or tag head;
//! - for every `lakehouse.*` snapshot-summary key, the newest snapshot of the
//!   current ancestry carrying it (positions: Kafka offsets, the upstream
//!   snapshot Silver or Gold consumed, a rejects replay), so a reader walking
//!   the ancestry for its position always finds it;
//! - for every registered consumer ([`crate::table::consumer`]), its snapshot
//!   and every later snapshot of the current ancestry (all of them for a
//!   consumer at `earliest`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use iceberg::spec::TableMetadata;

use crate::table::consumer::{ConsumerPosition, consumers};

pub const MAX_SNAPSHOT_AGE_MS: &str = "history.expire.max-snapshot-age-ms";
pub const MIN_SNAPSHOTS_TO_KEEP: &str = "history.expire.min-snapshots-to-keep";
pub const GC_ENABLED: &str = "gc.enabled";
pub const DELETE_AFTER_COMMIT: &str = "write.metadata.delete-after-commit.enabled";
pub const PREVIOUS_VERSIONS_MAX: &str = "write.metadata.previous-versions-max";
pub const EXPIRE_ON_COMMIT: &str = "lakehouse.expire-on-commit";
pub const EXPIRE_MIN_BATCH: &str = "lakehouse.expire.min-batch";

/// Summary keys under this prefix are positions or lineage a reader may look for.
pub const PROTECTED_SUMMARY_PREFIX: &str = "lakehouse.";

/// The properties a worker's new table starts with (a table spec's own values win):
/// one hour of history, at least 100 snapshots, 20 metadata files.
pub fn worker_defaults() -> HashMap<String, String> {
    HashMap::from([
        (MAX_SNAPSHOT_AGE_MS.to_string(), (3_600_000).to_string()),
        (MIN_SNAPSHOTS_TO_KEEP.to_string(), "100".to_string()),
        (DELETE_AFTER_COMMIT.to_string(), "true".to_string()),
        (PREVIOUS_VERSIONS_MAX.to_string(), "20".to_string()),
    ])
}

/// A table's retention settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_snapshot_age_ms: i64,
    pub min_snapshots_to_keep: usize,
    pub gc_enabled: bool,
    pub delete_metadata_after_commit: bool,
    pub expire_on_commit: bool,
    /// A commit expires snapshots only once at least this many may go.
    pub min_batch: usize,
}

impl RetentionPolicy {
    /// Reads the policy; a value that does not parse is an error naming it.
    pub fn from_properties(props: &HashMap<String, String>) -> Result<Self, String> {
        fn get<T: std::str::FromStr>(props: &HashMap<String, String>, key: &str, default: T) -> Result<T, String> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| format!("table property {key} = {v:?} does not parse")),
            }
        }
        let policy = Self {
            max_snapshot_age_ms: get(props, MAX_SNAPSHOT_AGE_MS, 5 * 24 * 3_600_000)?,
            min_snapshots_to_keep: get(props, MIN_SNAPSHOTS_TO_KEEP, 1)?,
            gc_enabled: get(props, GC_ENABLED, true)?,
            delete_metadata_after_commit: get(props, DELETE_AFTER_COMMIT, false)?,
            expire_on_commit: get(props, EXPIRE_ON_COMMIT, true)?,
            min_batch: get(props, EXPIRE_MIN_BATCH, 16)?,
        };
        if policy.max_snapshot_age_ms < 0 {
            return Err(format!("table property {MAX_SNAPSHOT_AGE_MS} must not be negative"));
        }
        if policy.min_batch == 0 {
            return Err(format!("table property {EXPIRE_MIN_BATCH} must be at least 1"));
        }
        if policy.min_snapshots_to_keep == 0 {
            return Err(format!("table property {MIN_SNAPSHOTS_TO_KEEP} must be at least 1"));
        }
        Ok(policy)
    }
}

/// What an expiry would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryPlan {
    /// Snapshots to remove, oldest first.
    pub expire: Vec<i64>,
    /// Snapshots kept although older than the cut-off, with why.
    pub kept: BTreeMap<i64, Vec<String>>,
}

/// `(ref name, snapshot id)` of every branch and tag of a table.
pub type RefHeads = Vec<(String, i64)>;

/// The snapshots of `metadata` older than `cutoff_ms` that may go, keeping the
/// newest `retain_last` of the current ancestry and everything protected (see
/// the module docs). An unreadable consumer registration is an error.
pub fn plan(metadata: &TableMetadata, cutoff_ms: i64, retain_last: usize) -> Result<ExpiryPlan, String> {
    plan_with_refs(metadata, || ref_heads(metadata), cutoff_ms, retain_last)
}

/// [`plan`] with the table's branch and tag heads from `refs` (what
/// [`ref_heads`] returns for `metadata`), called only when some snapshot may
/// expire: reading them from the metadata costs a serialization of all of it,
/// a third of a commit's CPU when done on every commit (iceberg-rust exposes
/// refs only that way), so the committer passes the ones it already knows.
pub fn plan_with_refs(
    metadata: &TableMetadata,
    refs: impl FnOnce() -> Result<RefHeads, String>,
    cutoff_ms: i64,
    retain_last: usize,
) -> Result<ExpiryPlan, String> {
    let mut why: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut keep = |id: i64, reason: String| why.entry(id).or_default().push(reason);

    let ancestry: Vec<i64> = {
        let mut out = Vec::new();
        let mut cursor = metadata.current_snapshot();
        while let Some(s) = cursor {
            out.push(s.snapshot_id());
            cursor = s.parent_snapshot_id().and_then(|p| metadata.snapshot_by_id(p));
        }
        out
    };
    for id in ancestry.iter().take(retain_last.max(1)) {
        keep(*id, format!("among the newest {retain_last}"));
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for id in &ancestry {
        let s = metadata.snapshot_by_id(*id).expect("ancestry ids come from the metadata");
        for k in s.summary().additional_properties.keys() {
            if k.starts_with(PROTECTED_SUMMARY_PREFIX) && seen.insert(k.as_str()) {
                keep(*id, format!("newest carrying {k}"));
            }
        }
    }
    for (consumer, pos) in consumers(metadata)? {
        match pos {
            ConsumerPosition::Earliest => {
                for s in metadata.snapshots() {
                    keep(s.snapshot_id(), format!("consumer {consumer} has consumed nothing yet"));
                }
            }
            ConsumerPosition::Snapshot(at) => match ancestry.iter().position(|id| *id == at) {
                Some(i) => {
                    for id in &ancestry[..=i] {
                        keep(*id, format!("not yet consumed by {consumer}"));
                    }
                }
                None if metadata.snapshot_by_id(at).is_some() => keep(at, format!("position of consumer {consumer}")),
                None => tracing::warn!(
                    table = %metadata.location(), consumer, snapshot_id = at,
                    "a registered consumer's snapshot is no longer in the table; it cannot be protected"
                ),
            },
        }
    }
    let mut old: Vec<(i64, i64)> = metadata
        .snapshots()
        .filter(|s| s.timestamp_ms() < cutoff_ms)
        .map(|s| (s.timestamp_ms(), s.snapshot_id()))
        .collect();
    old.sort();
    let old_ids: BTreeSet<i64> = old.iter().map(|(_, id)| *id).collect();
    let mut expire: Vec<i64> = old.into_iter().map(|(_, id)| id).filter(|id| !why.contains_key(id)).collect();
    if !expire.is_empty() {
        for (name, id) in refs()? {
            if let Some(i) = expire.iter().position(|e| *e == id) {
                expire.remove(i);
                why.entry(id).or_default().push(format!("head of ref {name}"));
            }
        }
    }
    why.retain(|id, _| old_ids.contains(id));
    Ok(ExpiryPlan { expire, kept: why })
}

/// `(ref name, snapshot id)` of every branch and tag, sorted by name
/// (iceberg-rust exposes refs only through the serialized form).
pub fn ref_heads(metadata: &TableMetadata) -> Result<RefHeads, String> {
    let json = serde_json::to_value(metadata).map_err(|e| format!("serializing table metadata: {e}"))?;
    let mut out = Vec::new();
    if let Some(refs) = json.get("refs").and_then(|r| r.as_object()) {
        for (name, r) in refs {
            let id = r
                .get("snapshot-id")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| format!("ref {name} has no snapshot-id"))?;
            out.push((name.clone(), id));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reads_iceberg_properties_and_refuses_garbage() {
        let p = RetentionPolicy::from_properties(&HashMap::new()).expect("defaults");
        assert_eq!(p.max_snapshot_age_ms, 5 * 24 * 3_600_000);
        assert_eq!(p.min_snapshots_to_keep, 1);
        assert!(p.gc_enabled && p.expire_on_commit && !p.delete_metadata_after_commit);
        let w = RetentionPolicy::from_properties(&worker_defaults()).expect("worker defaults");
        assert_eq!((w.max_snapshot_age_ms, w.min_snapshots_to_keep), (3_600_000, 100));
        assert!(w.delete_metadata_after_commit);
        let bad = HashMap::from([(MAX_SNAPSHOT_AGE_MS.to_string(), "1 day".to_string())]);
        let err = RetentionPolicy::from_properties(&bad).expect_err("not a number");
        assert!(err.contains(MAX_SNAPSHOT_AGE_MS), "{err}");
        let zero = HashMap::from([(MIN_SNAPSHOTS_TO_KEEP.to_string(), "0".to_string())]);
        assert!(RetentionPolicy::from_properties(&zero).is_err());
    }
}
