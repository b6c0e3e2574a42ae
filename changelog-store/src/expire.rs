//! Snapshot expiration and deletion of files no retained snapshot needs.
//!
//! Retention follows Paimon's options: keep at least `snapshot.num-retained.min`,
//! at most `snapshot.num-retained.max`, and expire older than `snapshot.time-retained`
//! in between. Snapshots at or after a registered consumer's `nextSnapshot` are kept
//! ([`crate::consumer`]); consumers not advanced within `consumer.expiration-time`
//! are removed first.
//! Files are deleted only if no retained snapshot references them (data files via its
//! live entries, changelog files via its changelog manifests, manifests and lists).
//!
//! [`remove_orphan_files`] is Paimon's `remove_orphan_files` procedure: files in the
//! manifest directory and the bucket directories that no snapshot references (left by a
//! writer that crashed before its commit, or by an expiration cut short) are deleted
//! once they are older than a safety margin, so that the files of a commit in flight
//! are never taken.

use crate::consumer;
use crate::error::{Error, Result};
use crate::fs;
use crate::manifest_io::ManifestIo;
use crate::paths::TablePaths;
use crate::snapshot_manager::SnapshotManager;
use crate::spec::manifest::ManifestEntry;
use crate::spec::snapshot::Snapshot;
use crate::table_info::TableInfo;
use std::collections::HashSet;
use std::path::PathBuf;

/// What an expiration removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpireReport {
    pub expired_snapshots: Vec<i64>,
    pub deleted_data_files: usize,
    pub deleted_manifest_files: usize,
    /// Consumers removed because they were not advanced within `consumer.expiration-time`.
    pub expired_consumers: Vec<String>,
}

fn data_file_path(info: &TableInfo, paths: &TablePaths, e: &ManifestEntry) -> Result<PathBuf> {
    let partition = info.deserialize_partition(&e.partition)?;
    Ok(paths.bucket_dir(&info.partition_spec(&partition), e.bucket).join(&e.file.file_name))
}

struct Referenced {
    data: HashSet<PathBuf>,
    manifests: HashSet<String>,
}

fn referenced(
    info: &TableInfo,
    paths: &TablePaths,
    io: &ManifestIo,
    s: &Snapshot,
    all_entries: bool,
) -> Result<Referenced> {
    let mut r = Referenced { data: HashSet::new(), manifests: HashSet::new() };
    let mut lists = vec![s.base_manifest_list.clone(), s.delta_manifest_list.clone()];
    if let Some(c) = &s.changelog_manifest_list {
        lists.push(c.clone());
    }
    for list in lists {
        let Ok(metas) = io.read_manifest_list(&list) else {
            r.manifests.insert(list);
            continue;
        };
        r.manifests.insert(list);
        for m in metas {
            if all_entries {
                if let Ok(entries) = io.read_manifest(&m.file_name) {
                    for e in &entries {
                        r.data.insert(data_file_path(info, paths, e)?);
                    }
                }
            }
            r.manifests.insert(m.file_name);
        }
    }
    if !all_entries {
        for e in io.live_entries(s)? {
            r.data.insert(data_file_path(info, paths, &e)?);
        }
        for e in io.changelog_entries(s)? {
            r.data.insert(data_file_path(info, paths, &e)?);
        }
    }
    Ok(r)
}

/// Tags and branches (Paimon's `tag/`, `branch/`) keep snapshots and their files
/// alive; this store does not read them, so it refuses to delete anything beside them.
fn refuse_with_tags_or_branches(paths: &TablePaths, what: &str) -> Result<()> {
    for dir in ["tag", "branch"] {
        if !fs::list(&paths.root().join(dir))?.is_empty() {
            return Err(Error::Unsupported(format!(
                "{what}: the table has {dir}s (`{dir}/`), whose snapshots and files this store does not track"
            )));
        }
    }
    Ok(())
}

/// Expires snapshots per the table's retention options as of `now_millis`.
pub fn expire(info: &TableInfo, paths: &TablePaths, now_millis: i64) -> Result<ExpireReport> {
    refuse_with_tags_or_branches(paths, "expire")?;
    let snapshots = SnapshotManager::new(paths.clone());
    let io = ManifestIo::new(paths.clone(), info.options.manifest_compression.clone(), info.schema.id);
    let all = snapshots.all()?;
    let opts = &info.options;
    let expired_consumers = match opts.consumer_expiration_time {
        Some(t) => consumer::expire(paths, t, now_millis)?,
        None => Vec::new(),
    };
    let consumer_floor = consumer::min_next_snapshot(paths)?.unwrap_or(i64::MAX);
    let n = all.len();
    let mut expire_count = 0;
    while expire_count < n {
        let remaining = n - expire_count;
        let s = &all[expire_count];
        if remaining <= opts.snapshot_num_retained_min || remaining <= 1 || s.id >= consumer_floor {
            break;
        }
        let too_many = remaining > opts.snapshot_num_retained_max;
        let too_old = s.time_millis < now_millis - opts.snapshot_time_retained.as_millis() as i64;
        if !(too_many || too_old) {
            break;
        }
        expire_count += 1;
    }
    if expire_count == 0 {
        return Ok(ExpireReport { expired_consumers, ..ExpireReport::default() });
    }
    let (expired, retained) = all.split_at(expire_count);
    let mut keep_data = HashSet::new();
    let mut keep_manifests = HashSet::new();
    for s in retained {
        let r = referenced(info, paths, &io, s, false)?;
        keep_data.extend(r.data);
        keep_manifests.extend(r.manifests);
    }
    let mut drop_data = HashSet::new();
    let mut drop_manifests = HashSet::new();
    for s in expired {
        let r = referenced(info, paths, &io, s, true)?;
        drop_data.extend(r.data.into_iter().filter(|p| !keep_data.contains(p)));
        drop_manifests.extend(r.manifests.into_iter().filter(|m| !keep_manifests.contains(m)));
    }
    // Unpublish first: move EARLIEST, then delete the snapshot files, then their files.
    // A crash part-way leaves only unreferenced files behind.
    snapshots.write_earliest_hint(retained[0].id)?;
    for s in expired {
        fs::delete(&paths.snapshot_file(s.id))?;
    }
    for p in &drop_data {
        fs::delete(p)?;
    }
    for m in &drop_manifests {
        fs::delete(&paths.manifest_file(m))?;
    }
    let report = ExpireReport {
        expired_snapshots: expired.iter().map(|s| s.id).collect(),
        deleted_data_files: drop_data.len(),
        deleted_manifest_files: drop_manifests.len(),
        expired_consumers,
    };
    tracing::info!(
        table = %paths.root().display(),
        expired = report.expired_snapshots.len(),
        data_files = report.deleted_data_files,
        manifests = report.deleted_manifest_files,
        "expired snapshots"
    );
    Ok(report)
}

/// What an orphan-file removal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrphanReport {
    /// Unreferenced files older than the margin, deleted (or, in a dry run, to delete).
    pub orphans: Vec<PathBuf>,
    /// Unreferenced files newer than the margin, left alone (possibly a commit in flight).
    pub recent_unreferenced: usize,
    /// Files referenced by some snapshot.
    pub referenced: usize,
}

/// Data and changelog files under the bucket directories (`bucket-N`, inside partition
/// directories `k=v/...` for partitioned tables).
fn bucket_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for name in fs::list(dir)? {
        let path = dir.join(&name);
        if fs::is_dir(&path) {
            if name.starts_with("bucket-") || name.contains('=') {
                bucket_files(&path, out)?;
            }
        } else if dir.file_name().is_some_and(|d| d.to_string_lossy().starts_with("bucket-")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Deletes data, changelog and manifest files that no snapshot references and that
/// were last modified before `older_than_millis` (epoch millis); `dry_run` only reports.
/// Snapshots are listed before the files, so a commit published meanwhile has files
/// newer than the margin; a writer must not hold uncommitted files longer than it.
pub fn remove_orphan_files(
    info: &TableInfo,
    paths: &TablePaths,
    older_than_millis: i64,
    dry_run: bool,
) -> Result<OrphanReport> {
    refuse_with_tags_or_branches(paths, "remove orphan files")?;
    let snapshots = SnapshotManager::new(paths.clone());
    let io = ManifestIo::new(paths.clone(), info.options.manifest_compression.clone(), info.schema.id);
    // Every manifest list and index manifest of every snapshot, every manifest they
    // list and every entry (adds and deletes) of those: a superset of what any reader
    // of any snapshot opens. Each file is read once; one that cannot be read stops the
    // removal, since what it references is unknown.
    let mut keep_manifests: HashSet<String> = HashSet::new();
    let mut lists = Vec::new();
    for s in snapshots.all()? {
        lists.extend(
            [Some(s.base_manifest_list), Some(s.delta_manifest_list), s.changelog_manifest_list].into_iter().flatten(),
        );
        keep_manifests.extend(s.index_manifest);
    }
    let mut keep_data = HashSet::new();
    for list in lists {
        if !keep_manifests.insert(list.clone()) {
            continue;
        }
        for m in io.read_manifest_list(&list)? {
            if keep_manifests.insert(m.file_name.clone()) {
                for e in io.read_manifest(&m.file_name)? {
                    keep_data.insert(data_file_path(info, paths, &e)?);
                }
            }
        }
    }
    let mut candidates = Vec::new();
    bucket_files(paths.root(), &mut candidates)?;
    let manifest_dir = paths.manifest_dir();
    let manifests: Vec<PathBuf> = fs::list(&manifest_dir)?.into_iter().map(|n| manifest_dir.join(n)).collect();
    let mut report = OrphanReport::default();
    for path in candidates.into_iter().chain(manifests) {
        let is_manifest = path.parent() == Some(manifest_dir.as_path());
        let referenced = if is_manifest {
            path.file_name().is_some_and(|n| keep_manifests.contains(n.to_string_lossy().as_ref()))
        } else {
            keep_data.contains(&path)
        };
        if referenced {
            report.referenced += 1;
        } else if fs::modified_millis(&path)? < older_than_millis {
            report.orphans.push(path);
        } else {
            report.recent_unreferenced += 1;
        }
    }
    report.orphans.sort();
    if !dry_run {
        for p in &report.orphans {
            fs::delete(p)?;
        }
    }
    tracing::info!(
        table = %paths.root().display(),
        orphans = report.orphans.len(),
        recent_unreferenced = report.recent_unreferenced,
        dry_run,
        "orphan files"
    );
    Ok(report)
}
