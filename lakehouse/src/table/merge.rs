//! Manifest merging on commit, as Java Iceberg's `MergeAppend` does it.
//!
//! Every commit carries the parent's manifests forward and adds its own, so
//! without merging the manifest list grows by one or two entries per commit
//! and every later commit and scan pays for all of them. When the carried
//! manifests of one kind (data or deletes) and partition spec number at least
//! `commit.manifest.min-count-to-merge` (default 100), the ones smaller than
//! `commit.manifest.target-size-bytes` (default 8 MiB) are rewritten into
//! manifests of about that size. `commit.manifest-merge.enabled = false`
//! turns it off.
//!
//! A merged manifest belongs to the new snapshot (`added_snapshot_id`) but
//! adds nothing: every live entry is carried as `EXISTING` with the snapshot
//! id and the data and file sequence numbers it was committed with, so
//! position deletes keep applying exactly as before and incremental readers
//! (which read only `ADDED` entries of the manifests a snapshot added) see no
//! new files. `DELETED` entries of earlier snapshots are dropped, as Java does.
//! The manifests of the commit itself are never merged.

use std::collections::BTreeMap;

use iceberg::io::FileIO;
use iceberg::spec::{ManifestContentType, ManifestFile, ManifestStatus, ManifestWriterBuilder, TableMetadata};

pub const MERGE_ENABLED: &str = "commit.manifest-merge.enabled";
pub const MIN_COUNT_TO_MERGE: &str = "commit.manifest.min-count-to-merge";
pub const TARGET_SIZE_BYTES: &str = "commit.manifest.target-size-bytes";

/// A table's manifest-merge settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergePolicy {
    pub enabled: bool,
    pub min_count: usize,
    pub target_bytes: i64,
}

impl MergePolicy {
    pub fn from_properties(props: &std::collections::HashMap<String, String>) -> Result<Self, String> {
        fn get<T: std::str::FromStr>(
            props: &std::collections::HashMap<String, String>,
            key: &str,
            default: T,
        ) -> Result<T, String> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| format!("table property {key} = {v:?} does not parse")),
            }
        }
        let p = Self {
            enabled: get(props, MERGE_ENABLED, true)?,
            min_count: get(props, MIN_COUNT_TO_MERGE, 100)?,
            target_bytes: get(props, TARGET_SIZE_BYTES, 8 << 20)?,
        };
        if p.min_count < 2 || p.target_bytes <= 0 {
            return Err(format!("{MIN_COUNT_TO_MERGE} must be at least 2 and {TARGET_SIZE_BYTES} positive"));
        }
        Ok(p)
    }
}

/// The carried manifests after merging, and the manifests this call wrote
/// (garbage if the commit loses its compare-and-swap).
#[derive(Debug, Default)]
pub struct Merged {
    pub manifests: Vec<ManifestFile>,
    pub written: Vec<ManifestFile>,
}

/// Merges `carried` (the parent's manifests) per `policy`; merged manifests
/// are written at `path(i)` for the new snapshot `snapshot_id`.
pub async fn merge(
    file_io: &FileIO,
    metadata: &TableMetadata,
    carried: Vec<ManifestFile>,
    snapshot_id: i64,
    policy: &MergePolicy,
    path: impl Fn(usize) -> String,
) -> iceberg::Result<Merged> {
    if !policy.enabled {
        return Ok(Merged { manifests: carried, written: Vec::new() });
    }
    let kind = |c: ManifestContentType| match c {
        ManifestContentType::Data => 0u8,
        ManifestContentType::Deletes => 1u8,
    };
    let mut groups: BTreeMap<(u8, i32), Vec<ManifestFile>> = BTreeMap::new();
    for m in carried {
        groups.entry((kind(m.content), m.partition_spec_id)).or_default().push(m);
    }
    let mut out = Merged::default();
    for ((_, spec_id), group) in groups {
        let (small, full): (Vec<_>, Vec<_>) = group.into_iter().partition(|m| m.manifest_length < policy.target_bytes);
        out.manifests.extend(full);
        if small.len() < policy.min_count {
            out.manifests.extend(small);
            continue;
        }
        // Bins of about the target size, in list order (newest first).
        let mut bins: Vec<Vec<ManifestFile>> = vec![Vec::new()];
        let mut size = 0;
        for m in small {
            if size + m.manifest_length > policy.target_bytes && !bins.last().expect("never empty").is_empty() {
                bins.push(Vec::new());
                size = 0;
            }
            size += m.manifest_length;
            bins.last_mut().expect("never empty").push(m);
        }
        for bin in bins {
            if bin.len() < 2 {
                out.manifests.extend(bin);
                continue;
            }
            let merged = rewrite(file_io, metadata, spec_id, &bin, snapshot_id, &path(out.written.len())).await?;
            out.written.push(merged.clone());
            out.manifests.push(merged);
        }
    }
    Ok(out)
}

/// One manifest holding the live entries of `bin` as `EXISTING`.
async fn rewrite(
    file_io: &FileIO,
    metadata: &TableMetadata,
    spec_id: i32,
    bin: &[ManifestFile],
    snapshot_id: i64,
    path: &str,
) -> iceberg::Result<ManifestFile> {
    let spec = metadata.partition_spec_by_id(spec_id).ok_or_else(|| {
        iceberg::Error::new(iceberg::ErrorKind::DataInvalid, format!("manifest of unknown partition spec {spec_id}"))
    })?;
    let builder = ManifestWriterBuilder::new(
        file_io.new_output(path)?,
        Some(snapshot_id),
        metadata.current_schema().clone(),
        spec.as_ref().clone(),
    );
    let mut writer = match bin[0].content {
        ManifestContentType::Data => builder.build_v2_data(),
        ManifestContentType::Deletes => builder.build_v2_deletes(),
    };
    for m in bin {
        // Entries inherit snapshot id and sequence numbers from the list entry on load.
        let manifest = m.load_manifest(file_io).await?;
        for e in manifest.entries() {
            if e.status() == ManifestStatus::Deleted {
                continue;
            }
            let missing = |what: &str| {
                iceberg::Error::new(
                    iceberg::ErrorKind::DataInvalid,
                    format!("entry {} of manifest {} has no {what}", e.data_file().file_path(), m.manifest_path),
                )
            };
            writer.add_existing_file(
                e.data_file().clone(),
                e.snapshot_id().ok_or_else(|| missing("snapshot id"))?,
                e.sequence_number().ok_or_else(|| missing("sequence number"))?,
                Some(e.file_sequence_number.ok_or_else(|| missing("file sequence number"))?),
            )?;
        }
    }
    writer.write_manifest_file().await
}
