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
use iceberg::spec::{ManifestFile, ManifestStatus, TableMetadata};

use crate::table::commit::read_manifest_list;

/// What a cleanup deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleaned {
    pub manifest_lists: usize,
    pub manifests: usize,
    pub content_files: usize,
    pub metadata_files: usize,
}

/// What a cleanup needs of one manifest list (lists never change once written).
#[derive(Debug)]
struct Listed {
    paths: Vec<String>,
    /// The manifests that record removed files (none for plain appends).
    with_deletes: Vec<ManifestFile>,
}

impl Listed {
    fn of(entries: &[ManifestFile]) -> Self {
        Self {
            paths: entries.iter().map(|m| m.manifest_path.clone()).collect(),
            with_deletes: entries.iter().filter(|m| m.has_deleted_files()).cloned().collect(),
        }
    }
}

/// Manifest lists a committer read or wrote, per table, so that a commit in
/// its steady state reads none and does work in proportion to the lists it
/// adds and removes, not to all the table retains:
///
/// - per cached list, its manifest paths (and the few manifests that record
///   removals), with a count of the cached lists naming each manifest;
/// - the whole newest list this committer published, which the next commit
///   carries forward.
#[derive(Debug, Clone, Default)]
pub struct ListCache(Arc<Mutex<HashMap<u128, TableLists>>>);

#[derive(Debug, Default)]
struct TableLists {
    listed: HashMap<String, Arc<Listed>>,
    /// How many lists of `listed` name each manifest.
    named: HashMap<String, u32>,
    head: Option<(String, Arc<Vec<ManifestFile>>)>,
}

impl TableLists {
    fn insert(&mut self, list: &str, listed: Arc<Listed>) {
        if self.listed.contains_key(list) {
            return;
        }
        for p in &listed.paths {
            *self.named.entry(p.clone()).or_default() += 1;
        }
        self.listed.insert(list.to_string(), listed);
    }

    fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let dropped: Vec<String> = self.listed.keys().filter(|l| !keep(l)).cloned().collect();
        for list in dropped {
            let Some(listed) = self.listed.remove(&list) else { continue };
            for p in &listed.paths {
                if let Some(n) = self.named.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        self.named.remove(p);
                    }
                }
            }
        }
        if self.head.as_ref().is_some_and(|(list, _)| !keep(list)) {
            self.head = None;
        }
    }
}

impl ListCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, TableLists>> {
        self.0.lock().expect("list cache lock")
    }

    fn cached(&self, table: u128, list: &str) -> Option<Arc<Listed>> {
        self.lock().get(&table).and_then(|t| t.listed.get(list).cloned())
    }

    async fn listed(&self, file_io: &FileIO, metadata: &TableMetadata, list: &str) -> iceberg::Result<Arc<Listed>> {
        let table = metadata.uuid().as_u128();
        if let Some(hit) = self.cached(table, list) {
            return Ok(hit);
        }
        let parsed = read_manifest_list(file_io, list, metadata.format_version()).await?;
        let listed = Arc::new(Listed::of(parsed.entries()));
        self.lock().entry(table).or_default().insert(list, listed.clone());
        Ok(listed)
    }

    /// The entries of `list`: from memory when it is the newest list this
    /// committer published for the table, else read from storage.
    pub(crate) async fn entries(
        &self,
        file_io: &FileIO,
        metadata: &TableMetadata,
        list: &str,
    ) -> iceberg::Result<Vec<ManifestFile>> {
        match self.head_entries(metadata, list) {
            Some(entries) => Ok(entries.to_vec()),
            None => Ok(read_manifest_list(file_io, list, metadata.format_version()).await?.entries().to_vec()),
        }
    }

    /// The entries of `list` if it is the newest list this committer published for the table.
    pub(crate) fn head_entries(&self, metadata: &TableMetadata, list: &str) -> Option<Arc<Vec<ManifestFile>>> {
        self.lock().get(&metadata.uuid().as_u128()).and_then(|t| match &t.head {
            Some((head, entries)) if head == list => Some(entries.clone()),
            _ => None,
        })
    }

    /// Records `list`, just published in `metadata` with `entries` exactly
    /// as they were written (sequence numbers assigned), as the table's
    /// newest list; and among its cached lists once cleanups keep some (a
    /// table that expires nothing never has them pruned).
    pub(crate) fn published(&self, metadata: &TableMetadata, list: &str, entries: Vec<ManifestFile>) {
        let mut tables = self.lock();
        let lists = tables.entry(metadata.uuid().as_u128()).or_default();
        if !lists.listed.is_empty() {
            lists.insert(list, Arc::new(Listed::of(&entries)));
        }
        lists.head = Some((list.to_string(), Arc::new(entries)));
    }

    /// Under one lock: keeps only `lists` of the table, and if every one of
    /// `needed` is cached, the manifests of `removed` that no other cached
    /// list names. `None` (and nothing pruned beyond `lists`) if one is missing.
    fn unreferenced(
        &self,
        table: u128,
        lists: &HashSet<&str>,
        needed: &HashSet<&str>,
        removed: &[Arc<Listed>],
    ) -> Option<Vec<String>> {
        let mut tables = self.lock();
        let cached = tables.entry(table).or_default();
        cached.retain(|l| lists.contains(l));
        if !needed.iter().all(|l| cached.listed.contains_key(*l)) {
            return None;
        }
        let mut in_removed: HashMap<&str, u32> = HashMap::new();
        for listed in removed {
            for p in &listed.paths {
                *in_removed.entry(p.as_str()).or_default() += 1;
            }
        }
        let mut out: Vec<String> = in_removed
            .into_iter()
            .filter(|(p, n)| cached.named.get(*p).is_none_or(|all| all <= n))
            .map(|(p, _)| p.to_string())
            .collect();
        out.sort();
        Some(out)
    }

    /// How many lists of the table are cached for cleanups.
    #[cfg(test)]
    pub(crate) fn cached_lists(&self, metadata: &TableMetadata) -> usize {
        self.lock().get(&metadata.uuid().as_u128()).map_or(0, |t| t.listed.len())
    }

    fn retain(&self, table: u128, lists: &HashSet<&str>) {
        if let Some(cached) = self.lock().get_mut(&table) {
            cached.retain(|l| lists.contains(l));
        }
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
        let table = after.uuid().as_u128();
        let retained_lists: HashSet<&str> = after.snapshots().map(|s| s.manifest_list()).collect();
        let removed_lists: HashSet<&str> = removed.iter().map(|s| s.manifest_list()).collect();
        let lists: HashSet<&str> = retained_lists.union(&removed_lists).copied().collect();
        // Normally every list is cached and this reads none; a cleanup of the
        // same table running at once may prune some, then they are read again.
        let (unreferenced, removed_listed) = loop {
            let mut needed = retained_lists.clone();
            for list in &retained_lists {
                cache.listed(file_io, after, list).await.map_err(|e| ice("reading", list, e))?;
            }
            let mut removed_listed = Vec::new();
            for list in &removed_lists {
                match cache.listed(file_io, before, list).await {
                    Ok(listed) => {
                        needed.insert(list);
                        removed_listed.push(listed);
                    }
                    // Already gone (an earlier cleanup died half way): nothing to learn from it.
                    Err(e) if e.kind() == iceberg::ErrorKind::Unexpected && !exists(file_io, list).await => {}
                    Err(e) => return Err(ice("reading", list, e)),
                }
            }
            if let Some(unreferenced) = cache.unreferenced(table, &lists, &needed, &removed_listed) {
                break (unreferenced, removed_listed);
            }
        };
        // Manifests of removed snapshots that record removed files, by path.
        let mut with_deletes: HashMap<&str, &ManifestFile> = HashMap::new();
        for listed in &removed_listed {
            with_deletes.extend(listed.with_deletes.iter().map(|m| (m.manifest_path.as_str(), m)));
        }
        // Content files recorded as removed by an unreferenced manifest.
        let mut candidates: HashSet<String> = HashSet::new();
        for path in &unreferenced {
            let Some(m) = with_deletes.get(path.as_str()) else { continue };
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
            // Retained snapshots share most manifests: each is read once.
            let mut read = HashSet::new();
            for s in after.snapshots() {
                let list = read_manifest_list(file_io, s.manifest_list(), after.format_version())
                    .await
                    .map_err(|e| ice("reading", s.manifest_list(), e))?;
                for m in list.entries().iter().filter(|m| read.insert(m.manifest_path.clone())) {
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
        cache.retain(table, &retained_lists);
    }
    for path in expired_metadata {
        delete(file_io, path).await?;
        cleaned.metadata_files += 1;
    }
    Ok(cleaned)
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
