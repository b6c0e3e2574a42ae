//! Deleting what expired snapshots leave behind, through the storage layer.
//!
//! After a commit removed snapshots (and only once it is published), the
//! files nothing retained refers to any more are deleted:
//!
//! - the manifest lists of the removed snapshots;
//! - manifests listed by a removed snapshot and by no retained one (merged
//!   away, see [`crate::table::merge`]);
//! - data and delete files that such a manifest records as `DELETED` and that
//!   no retained manifest records as live (files a rewrite replaced; the
//!   workers' appends and row deltas never remove a file, so for them this is
//!   empty);
//! - with `write.metadata.delete-after-commit.enabled`, the metadata files
//!   that fell out of the metadata log.
//!
//! "Retained" is decided from the metadata that was published, so a file is
//! only deleted when the published table no longer reaches it; a concurrent
//! writer still building on an older head loses its compare-and-swap and
//! rebuilds on the published one. A crash before or during the cleanup leaves
//! unreferenced files (orphans), never a reference to a missing file.
//! Manifest lists are immutable, so their manifest paths are cached.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use iceberg::io::FileIO;
use iceberg::spec::{ManifestStatus, TableMetadata};

use crate::table::commit::read_manifest_list;

/// What a cleanup deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleaned {
    pub manifest_lists: usize,
    pub manifests: usize,
    pub content_files: usize,
    pub metadata_files: usize,
}

/// Manifest paths per manifest-list path (lists never change once written).
#[derive(Debug, Clone, Default)]
pub struct ListCache(Arc<Mutex<HashMap<String, Arc<Vec<String>>>>>);

impl ListCache {
    async fn manifests(
        &self,
        file_io: &FileIO,
        metadata: &TableMetadata,
        list: &str,
    ) -> iceberg::Result<Arc<Vec<String>>> {
        if let Some(hit) = self.0.lock().expect("list cache lock").get(list) {
            return Ok(hit.clone());
        }
        let parsed = read_manifest_list(file_io, list, metadata.format_version()).await?;
        let paths = Arc::new(parsed.entries().iter().map(|m| m.manifest_path.clone()).collect::<Vec<_>>());
        self.0.lock().expect("list cache lock").insert(list.to_string(), paths.clone());
        Ok(paths)
    }

    fn retain(&self, lists: &HashSet<&str>) {
        self.0.lock().expect("list cache lock").retain(|k, _| lists.contains(k.as_str()));
    }
}

/// Deletes what `before`'s snapshots reached and `after`'s do not, plus
/// `expired_metadata` files. Errors name the file; deletion stops at the first.
pub async fn delete_unreachable(
    file_io: &FileIO,
    before: &TableMetadata,
    after: &TableMetadata,
    expired_metadata: &[String],
    cache: &ListCache,
) -> Result<Cleaned, String> {
    let ice = |what: &str, path: &str, e: iceberg::Error| format!("{what} {path}: {e}");
    let mut cleaned = Cleaned::default();
    let removed: Vec<_> = before.snapshots().filter(|s| after.snapshot_by_id(s.snapshot_id()).is_none()).collect();
    if !removed.is_empty() {
        let retained_lists: HashSet<&str> = after.snapshots().map(|s| s.manifest_list()).collect();
        let mut retained: HashSet<String> = HashSet::new();
        for list in &retained_lists {
            let paths = cache.manifests(file_io, after, list).await.map_err(|e| ice("reading", list, e))?;
            retained.extend(paths.iter().cloned());
        }
        let mut unreferenced: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for s in &removed {
            let list = s.manifest_list();
            let paths = match cache.manifests(file_io, before, list).await {
                Ok(p) => p,
                // Already gone (an earlier cleanup died half way): nothing to learn from it.
                Err(e) if e.kind() == iceberg::ErrorKind::Unexpected && !exists(file_io, list).await => continue,
                Err(e) => return Err(ice("reading", list, e)),
            };
            for p in paths.iter() {
                if !retained.contains(p) && seen.insert(p.clone()) {
                    unreferenced.push(p.clone());
                }
            }
        }
        // Content files recorded as removed by an unreferenced manifest.
        let mut candidates: HashSet<String> = HashSet::new();
        let before_manifests = manifests_by_path(file_io, before, &removed, cache).await?;
        for path in &unreferenced {
            let Some(m) = before_manifests.get(path) else { continue };
            let manifest = m.load_manifest(file_io).await.map_err(|e| ice("reading", path, e))?;
            candidates.extend(
                manifest
                    .entries()
                    .iter()
                    .filter(|e| e.status() == ManifestStatus::Deleted)
                    .map(|e| e.data_file().file_path().to_string()),
            );
        }
        if !candidates.is_empty() {
            for s in after.snapshots() {
                let list = read_manifest_list(file_io, s.manifest_list(), after.format_version())
                    .await
                    .map_err(|e| ice("reading", s.manifest_list(), e))?;
                for m in list.entries() {
                    let manifest = m.load_manifest(file_io).await.map_err(|e| ice("reading", &m.manifest_path, e))?;
                    for e in manifest.entries() {
                        if e.is_alive() {
                            candidates.remove(e.data_file().file_path());
                        }
                    }
                }
            }
        }
        for path in candidates {
            delete(file_io, &path).await?;
            cleaned.content_files += 1;
        }
        for path in unreferenced {
            delete(file_io, &path).await?;
            cleaned.manifests += 1;
        }
        for s in &removed {
            if !retained_lists.contains(s.manifest_list()) {
                delete(file_io, s.manifest_list()).await?;
                cleaned.manifest_lists += 1;
            }
        }
        cache.retain(&retained_lists);
    }
    for path in expired_metadata {
        delete(file_io, path).await?;
        cleaned.metadata_files += 1;
    }
    Ok(cleaned)
}

async fn manifests_by_path(
    file_io: &FileIO,
    metadata: &TableMetadata,
    snapshots: &[&iceberg::spec::SnapshotRef],
    _cache: &ListCache,
) -> Result<HashMap<String, iceberg::spec::ManifestFile>, String> {
    let mut out = HashMap::new();
    for s in snapshots {
        let Ok(list) = read_manifest_list(file_io, s.manifest_list(), metadata.format_version()).await else {
            continue;
        };
        for m in list.entries() {
            if m.has_deleted_files() {
                out.insert(m.manifest_path.clone(), m.clone());
            }
        }
    }
    Ok(out)
}

async fn exists(file_io: &FileIO, path: &str) -> bool {
    file_io.exists(path).await.unwrap_or(true)
}

async fn delete(file_io: &FileIO, path: &str) -> Result<(), String> {
    // A file already gone is fine: the cleanup is repeatable.
    match file_io.delete(path).await {
        Ok(()) => Ok(()),
        Err(_) if !exists(file_io, path).await => Ok(()),
        Err(e) => Err(format!("deleting {path}: {e}")),
    }
}
