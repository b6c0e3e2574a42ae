//! Writing and reading manifests and manifest lists, and resolving a snapshot's files.

use crate::error::Result;
use crate::fs;
use crate::paths::{TablePaths, new_file_name};
use crate::spec::manifest::{
    FileKind, ManifestEntry, ManifestFileMeta, codec_for, decode_manifest, decode_manifest_list, encode_manifest,
    encode_manifest_list,
};
use crate::spec::partition_stats::partition_stats;
use crate::spec::snapshot::Snapshot;
use crate::spec::types::DataType;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Decoded manifests by file name. Manifest files are immutable and their names unique,
/// so an entry never goes stale; [`ManifestIo::live_entries`] keeps only the manifests
/// of the snapshot it last resolved, which bounds the cache by one snapshot's manifests.
type ManifestCache = Arc<Mutex<HashMap<String, Arc<Vec<ManifestEntry>>>>>;

/// Manifest reader/writer of one table.
#[derive(Debug, Clone)]
pub struct ManifestIo {
    paths: TablePaths,
    compression: String,
    schema_id: i64,
    cache: Option<ManifestCache>,
}

impl ManifestIo {
    pub fn new(paths: TablePaths, compression: String, schema_id: i64) -> Self {
        ManifestIo { paths, compression, schema_id, cache: None }
    }

    /// Keeps the decoded manifests that [`ManifestIo::live_entries`] reads, for a caller
    /// that resolves the latest snapshot again and again (the committer: each commit's
    /// base is the previous commit's base plus one delta manifest).
    pub fn with_manifest_cache(mut self) -> Self {
        self.cache = Some(Arc::default());
        self
    }

    /// Writes `entries` as one manifest file and returns its list record, with the
    /// partition stats of the entries (partitions are rows of `partition_types`).
    pub fn write_manifest(&self, entries: &[ManifestEntry], partition_types: &[DataType]) -> Result<ManifestFileMeta> {
        fs::create_dir_all(&self.paths.manifest_dir())?;
        let name = new_file_name("manifest", &uuid::Uuid::new_v4(), 0, "");
        let path = self.paths.manifest_file(&name);
        let bytes = encode_manifest(entries, codec_for(&self.compression), &path)?;
        fs::write_new(&path, &bytes)?;
        let adds = entries.iter().filter(|e| e.kind == FileKind::Add).count() as i64;
        let min_max = |f: fn(&ManifestEntry) -> i32| (entries.iter().map(f).min(), entries.iter().map(f).max());
        let (min_bucket, max_bucket) = min_max(|e| e.bucket);
        let (min_level, max_level) = min_max(|e| e.file.level);
        Ok(ManifestFileMeta {
            file_name: name,
            file_size: bytes.len() as i64,
            num_added_files: adds,
            num_deleted_files: entries.len() as i64 - adds,
            partition_stats: partition_stats(partition_types, entries)?,
            schema_id: self.schema_id,
            min_bucket,
            max_bucket,
            min_level,
            max_level,
            total_buckets: entries.first().map(|e| e.total_buckets),
        })
    }

    pub fn write_manifest_list(&self, metas: &[ManifestFileMeta]) -> Result<(String, i64)> {
        fs::create_dir_all(&self.paths.manifest_dir())?;
        let name = new_file_name("manifest-list", &uuid::Uuid::new_v4(), 0, "");
        let path = self.paths.manifest_file(&name);
        let bytes = encode_manifest_list(metas, codec_for(&self.compression), &path)?;
        fs::write_new(&path, &bytes)?;
        Ok((name, bytes.len() as i64))
    }

    pub fn read_manifest_list(&self, name: &str) -> Result<Vec<ManifestFileMeta>> {
        let path = self.paths.manifest_file(name);
        decode_manifest_list(&fs::read(&path)?, &path)
    }

    pub fn read_manifest(&self, name: &str) -> Result<Vec<ManifestEntry>> {
        let path = self.paths.manifest_file(name);
        decode_manifest(&fs::read(&path)?, &path)
    }

    /// Manifests of the base and delta lists of a snapshot (its full file history).
    pub fn data_manifests(&self, snapshot: &Snapshot) -> Result<Vec<ManifestFileMeta>> {
        let mut metas = self.read_manifest_list(&snapshot.base_manifest_list)?;
        metas.extend(self.read_manifest_list(&snapshot.delta_manifest_list)?);
        Ok(metas)
    }

    /// Live data files of a snapshot: ADD entries not cancelled by a DELETE.
    pub fn live_entries(&self, snapshot: &Snapshot) -> Result<Vec<ManifestEntry>> {
        let metas = self.data_manifests(snapshot)?;
        let mut entries = Vec::new();
        let Some(cache) = &self.cache else {
            for m in metas {
                entries.extend(self.read_manifest(&m.file_name)?);
            }
            return Ok(merge_entries(entries));
        };
        let mut fresh = HashMap::with_capacity(metas.len());
        for m in &metas {
            let cached = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&m.file_name).cloned();
            let decoded = match cached {
                Some(d) => d,
                None => Arc::new(self.read_manifest(&m.file_name)?),
            };
            entries.extend(decoded.iter().cloned());
            fresh.insert(m.file_name.clone(), decoded);
        }
        *cache.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(merge_entries(entries))
    }

    /// The entries this snapshot itself added or deleted.
    pub fn delta_entries(&self, snapshot: &Snapshot) -> Result<Vec<ManifestEntry>> {
        let mut entries = Vec::new();
        for m in self.read_manifest_list(&snapshot.delta_manifest_list)? {
            entries.extend(self.read_manifest(&m.file_name)?);
        }
        Ok(entries)
    }

    /// Changelog files this snapshot produced (empty when it has none).
    pub fn changelog_entries(&self, snapshot: &Snapshot) -> Result<Vec<ManifestEntry>> {
        let Some(list) = &snapshot.changelog_manifest_list else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for m in self.read_manifest_list(list)? {
            entries.extend(self.read_manifest(&m.file_name)?);
        }
        Ok(entries)
    }
}

/// Applies DELETE entries to ADD entries (by partition, bucket, level and file name),
/// keeping the order of first appearance.
pub fn merge_entries(entries: Vec<ManifestEntry>) -> Vec<ManifestEntry> {
    let deleted: HashSet<_> =
        entries.iter().filter(|e| e.kind == FileKind::Delete).map(ManifestEntry::identifier).collect();
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for e in entries {
        if e.kind == FileKind::Add {
            let id = e.identifier();
            if deleted.contains(&id) || seen.insert(id, ()).is_some() {
                continue;
            }
            out.push(e);
        }
    }
    out
}
