//! Publishes commit messages as snapshots.
//!
//! Protocol per snapshot: read the latest snapshot, check conflicts (no other commit
//! user wrote to a bucket this commit adds files to since the writer's base snapshot,
//! see [`super::writer_conflicts`]; every file a compaction deletes must still be live;
//! levels >= 1 must stay non-overlapping), write
//! the delta / changelog manifests and new manifest lists, then create
//! `snapshot/snapshot-<latest+1>` only if absent. Losing that race means another
//! committer got there first: clean up and retry on the new latest. A commit whose
//! `(commitUser, commitIdentifier)` is already in the table is not committed again.

use crate::clock::SharedClock;
use crate::commit::message::CommitMessage;
use crate::commit::writer_conflicts::{Bases, check_no_other_writer};
use crate::error::{Error, Result};
use crate::fs;
use crate::lsm::levels::{FileRef, Levels};
use crate::manifest_io::{ManifestIo, merge_entries};
use crate::paths::TablePaths;
use crate::snapshot_manager::SnapshotManager;
use crate::spec::manifest::{FileKind, ManifestEntry, ManifestFileMeta};
use crate::spec::snapshot::{CommitKind, SNAPSHOT_VERSION, Snapshot};
use crate::table_info::TableInfo;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Where to stop a commit early, to test crash recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// After manifests and manifest lists are written, before the snapshot is published.
    BeforePublish,
}

/// Result of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Snapshots created by this call (an APPEND and/or a COMPACT snapshot).
    Committed(Vec<i64>),
    /// This `(commitUser, commitIdentifier)` was committed before; nothing was done.
    AlreadyCommitted,
    /// Nothing to commit.
    Empty,
}

/// Commits to one table as one `commitUser`.
#[derive(Debug, Clone)]
pub struct Committer {
    info: Arc<TableInfo>,
    paths: TablePaths,
    snapshots: SnapshotManager,
    manifests: ManifestIo,
    commit_user: String,
    clock: SharedClock,
    fail_point: Option<FailPoint>,
}

struct Attempt<'a> {
    kind: CommitKind,
    identifier: i64,
    delta: &'a [ManifestEntry],
    changelog: &'a [ManifestEntry],
    properties: &'a Option<BTreeMap<String, String>>,
    /// Buckets this attempt adds new files to, with their writer's base snapshot.
    bases: &'a Bases,
}

impl Committer {
    pub fn new(info: Arc<TableInfo>, paths: TablePaths, commit_user: String, clock: SharedClock) -> Self {
        let manifests = ManifestIo::new(paths.clone(), info.options.manifest_compression.clone(), info.schema.id)
            .with_manifest_cache();
        Committer {
            snapshots: SnapshotManager::new(paths.clone()),
            manifests,
            info,
            paths,
            commit_user,
            clock,
            fail_point: None,
        }
    }

    pub fn commit_user(&self) -> &str {
        &self.commit_user
    }

    #[doc(hidden)]
    pub fn set_fail_point(&mut self, fp: Option<FailPoint>) {
        self.fail_point = fp;
    }

    /// Whether `identifier` (or a later one) of this commit user is already committed.
    pub fn is_committed(&self, identifier: i64) -> Result<bool> {
        Ok(self.latest_identifier_of_user()?.is_some_and(|latest| latest >= identifier))
    }

    /// The newest commit identifier this commit user has in the table.
    pub fn latest_identifier_of_user(&self) -> Result<Option<i64>> {
        let (Some(latest), Some(earliest)) = (self.snapshots.latest_id()?, self.snapshots.earliest_id()?) else {
            return Ok(None);
        };
        let mut id = latest;
        while id >= earliest {
            if let Some(s) = self.snapshots.try_snapshot(id)? {
                if s.commit_user == self.commit_user {
                    return Ok(Some(s.commit_identifier));
                }
            }
            id -= 1;
        }
        Ok(None)
    }

    /// Commits `messages` under `identifier` with the caller's `properties` (e.g. its
    /// source position). New files become an APPEND snapshot, compaction results a
    /// COMPACT snapshot after it.
    pub fn commit(
        &self,
        identifier: i64,
        messages: Vec<CommitMessage>,
        properties: Option<BTreeMap<String, String>>,
    ) -> Result<CommitOutcome> {
        if self.is_committed(identifier)? {
            tracing::info!(table = %self.paths.root().display(), identifier, "commit already in table, skipped");
            return Ok(CommitOutcome::AlreadyCommitted);
        }
        let total_buckets = self.info.options.bucket;
        let entry = |kind, m: &CommitMessage, f: &crate::spec::manifest::DataFileMeta| ManifestEntry {
            kind,
            partition: self.info.serialize_partition(&m.partition),
            bucket: m.bucket,
            total_buckets,
            file: f.clone(),
        };
        let mut append = Vec::new();
        let mut changelog = Vec::new();
        let mut compact = Vec::new();
        let mut bases = Bases::new();
        for m in &messages {
            if let Some(base) = m.base_snapshot.filter(|_| !m.new_files.is_empty() || !m.changelog_files.is_empty()) {
                let b = bases.entry((self.info.serialize_partition(&m.partition), m.bucket)).or_insert(base);
                *b = (*b).min(base);
            }
            append.extend(m.new_files.iter().map(|f| entry(FileKind::Add, m, f)));
            changelog.extend(m.changelog_files.iter().map(|f| entry(FileKind::Add, m, f)));
            compact.extend(m.compact_before.iter().map(|f| entry(FileKind::Delete, m, f)));
            compact.extend(m.compact_after.iter().map(|f| entry(FileKind::Add, m, f)));
        }
        let mut created = Vec::new();
        if !append.is_empty() || !changelog.is_empty() || (compact.is_empty() && properties.is_some()) {
            created.push(self.try_commit(Attempt {
                kind: CommitKind::Append,
                identifier,
                delta: &append,
                changelog: &changelog,
                properties: &properties,
                bases: &bases,
            })?);
        }
        if !compact.is_empty() {
            created.push(self.try_commit(Attempt {
                kind: CommitKind::Compact,
                identifier,
                delta: &compact,
                changelog: &[],
                properties: &properties,
                bases: &Bases::new(),
            })?);
        }
        if created.is_empty() {
            return Ok(CommitOutcome::Empty);
        }
        Ok(CommitOutcome::Committed(created))
    }

    fn try_commit(&self, a: Attempt<'_>) -> Result<i64> {
        let max_attempts = self.info.options.commit_max_retries + 1;
        for attempt in 0..max_attempts {
            let latest = self.snapshots.latest()?;
            let base_entries = match &latest {
                Some(s) => Some(self.manifests.live_entries(s)?),
                None => None,
            };
            check_no_other_writer(
                &self.info,
                &self.snapshots,
                &self.manifests,
                &self.commit_user,
                latest.as_ref(),
                a.bases,
            )?;
            self.check_conflicts(latest.as_ref(), base_entries.as_deref().unwrap_or(&[]), a.delta)?;
            let written = self.write_manifests(latest.as_ref(), base_entries, &a)?;
            let (snapshot, own_files) = written;
            if self.fail_point == Some(FailPoint::BeforePublish) {
                return Err(Error::io(
                    "publishing (fail point)",
                    self.paths.snapshot_file(snapshot.id),
                    std::io::Error::other("simulated crash before publishing the snapshot"),
                ));
            }
            let json = snapshot.to_json()?;
            if fs::create_if_absent(&self.paths.snapshot_file(snapshot.id), json.as_bytes())? {
                // Hints are best effort; readers probe past them.
                let _ = self.snapshots.write_latest_hint(snapshot.id);
                if snapshot.id == 1 || !fs::exists(&self.paths.earliest_hint()) {
                    let _ = self.snapshots.write_earliest_hint(snapshot.id);
                }
                tracing::info!(
                    table = %self.paths.root().display(),
                    snapshot_id = snapshot.id,
                    kind = ?snapshot.commit_kind,
                    identifier = a.identifier,
                    "committed snapshot"
                );
                return Ok(snapshot.id);
            }
            // Someone else took this snapshot id: drop our manifests and retry.
            for f in own_files {
                let _ = fs::delete(&self.paths.manifest_file(&f));
            }
            tracing::warn!(
                table = %self.paths.root().display(),
                snapshot_id = snapshot.id,
                attempt,
                "snapshot id taken by a concurrent commit, retrying"
            );
            if self.is_committed(a.identifier)? && a.kind == CommitKind::Append {
                return Err(Error::Conflict {
                    table: self.paths.root().to_path_buf(),
                    base: Some(snapshot.id - 1),
                    message: format!(
                        "commit identifier {} of user `{}` was committed concurrently",
                        a.identifier, self.commit_user
                    ),
                });
            }
        }
        Err(Error::CommitRetriesExhausted { table: self.paths.root().to_path_buf(), attempts: max_attempts })
    }

    /// Files a commit deletes must be live in the base; levels >= 1 must not overlap after it.
    fn check_conflicts(
        &self,
        latest: Option<&Snapshot>,
        base: &[ManifestEntry],
        delta: &[ManifestEntry],
    ) -> Result<()> {
        let deletes: Vec<&ManifestEntry> = delta.iter().filter(|e| e.kind == FileKind::Delete).collect();
        if deletes.is_empty() {
            return Ok(());
        }
        let conflict = |message: String| Error::Conflict {
            table: self.paths.root().to_path_buf(),
            base: latest.map(|s| s.id),
            message,
        };
        let live: HashSet<_> = base.iter().map(ManifestEntry::identifier).collect();
        for d in &deletes {
            if !live.contains(&d.identifier()) {
                return Err(conflict(format!(
                    "file `{}` (bucket {}, level {}) to be replaced is no longer in the table",
                    d.file.file_name, d.bucket, d.file.level
                )));
            }
        }
        let touched: HashSet<(Vec<u8>, i32)> = delta.iter().map(|e| (e.partition.clone(), e.bucket)).collect();
        let mut after: HashMap<(Vec<u8>, i32), Vec<ManifestEntry>> = HashMap::new();
        let merged = merge_entries(base.iter().chain(delta.iter()).cloned().collect());
        for e in merged {
            let k = (e.partition.clone(), e.bucket);
            if touched.contains(&k) {
                after.entry(k).or_default().push(e);
            }
        }
        for ((_, bucket), entries) in after {
            let files = entries.into_iter().map(|e| FileRef::new(&self.info, e.file)).collect::<Result<Vec<_>>>()?;
            let levels = Levels::new(self.info.options.num_levels, files)?;
            levels.check_non_overlapping().map_err(|m| conflict(format!("bucket {bucket}: {m}")))?;
        }
        Ok(())
    }

    fn write_manifests(
        &self,
        latest: Option<&Snapshot>,
        base_entries: Option<Vec<ManifestEntry>>,
        a: &Attempt<'_>,
    ) -> Result<(Snapshot, Vec<String>)> {
        let mut own = Vec::new();
        // Base = previous base + previous delta, compacted into one manifest when long.
        let mut base: Vec<ManifestFileMeta> = match latest {
            Some(s) => self.manifests.data_manifests(s)?,
            None => Vec::new(),
        };
        if base.len() >= self.info.options.manifest_merge_min_count {
            let live = base_entries.unwrap_or_default();
            base = if live.is_empty() {
                Vec::new()
            } else {
                let m = self.manifests.write_manifest(&live, &self.info.partition_types)?;
                own.push(m.file_name.clone());
                vec![m]
            };
        }
        let (base_list, base_size) = self.manifests.write_manifest_list(&base)?;
        own.push(base_list.clone());
        let delta_metas = if a.delta.is_empty() {
            Vec::new()
        } else {
            let m = self.manifests.write_manifest(a.delta, &self.info.partition_types)?;
            own.push(m.file_name.clone());
            vec![m]
        };
        let (delta_list, delta_size) = self.manifests.write_manifest_list(&delta_metas)?;
        own.push(delta_list.clone());
        let (changelog_list, changelog_size) = if a.changelog.is_empty() {
            (None, None)
        } else {
            let m = self.manifests.write_manifest(a.changelog, &self.info.partition_types)?;
            own.push(m.file_name.clone());
            let (name, size) = self.manifests.write_manifest_list(&[m])?;
            own.push(name.clone());
            (Some(name), Some(size))
        };
        let rows = |entries: &[ManifestEntry]| -> i64 {
            entries
                .iter()
                .map(|e| match e.kind {
                    FileKind::Add => e.file.row_count,
                    FileKind::Delete => -e.file.row_count,
                })
                .sum()
        };
        let delta_rows = rows(a.delta);
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            id: latest.map_or(1, |s| s.id + 1),
            schema_id: self.info.schema.id,
            base_manifest_list: base_list,
            base_manifest_list_size: Some(base_size),
            delta_manifest_list: delta_list,
            delta_manifest_list_size: Some(delta_size),
            changelog_manifest_list: changelog_list,
            changelog_manifest_list_size: changelog_size,
            // Index files (hash / deletion-vector indexes written by Paimon) and table
            // statistics (ANALYZE) are not changed by this store: carried forward, as
            // Paimon's commit does, so a commit never drops them.
            index_manifest: latest.and_then(|s| s.index_manifest.clone()),
            commit_user: self.commit_user.clone(),
            commit_identifier: a.identifier,
            commit_kind: a.kind,
            time_millis: self.clock.now_millis(),
            total_record_count: latest.map_or(0, |s| s.total_record_count) + delta_rows,
            delta_record_count: delta_rows,
            changelog_record_count: Some(rows(a.changelog)),
            watermark: latest.and_then(|s| s.watermark),
            statistics: latest.and_then(|s| s.statistics.clone()),
            properties: a.properties.clone(),
            next_row_id: None,
            uuid: Some(uuid::Uuid::new_v4().to_string()),
        };
        Ok((snapshot, own))
    }
}
