//! Manifest merging on commit, as Java Iceberg's `MergeAppend` does it.
//!
//! Every commit carries the parent's manifests forward and adds its own, so
//! without merging the manifest list grows by one or two entries per commit
//! and every later commit and scan pays for all of them. When the carried
//! manifests of one kind (data or deletes) and partition spec that may still
//! grow number at least `commit.manifest.min-count-to-merge` (default 100),
//! some of them are rewritten into one. `commit.manifest-merge.enabled =
//! false` turns it off.
//!
//! Which ones is size-tiered, unlike Java's bins in list order: smallest
//! first, a manifest joins only while the ones before it together are about
//! its size or more, and the result stays within
//! `commit.manifest.target-size-bytes` (default 8 MiB). Java's bins put the
//! partly filled merged manifest with the new small ones every time, so a
//! streaming writer (one small manifest per commit) rewrote each entry about
//! 90 times before its manifest filled; tiered, about 7 times (both
//! simulated), and no merge rewrites more than the smaller manifests add up to. A manifest past half
//! the target can join nothing any more (two of them pass it) and stays as it
//! is, as full ones do, and does not count towards the minimum. The list then
//! holds fewer than the minimum of small manifests, a few partly merged ones
//! (each larger than all smaller ones together) and the full ones.
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
        let (kept, chosen) = choose(group, policy);
        out.manifests.extend(kept);
        if !chosen.is_empty() {
            let merged = rewrite(file_io, metadata, spec_id, &chosen, snapshot_id, &path(out.written.len())).await?;
            out.written.push(merged.clone());
            out.manifests.push(merged);
        }
    }
    Ok(out)
}

/// One group's manifests (one content type and partition spec), split into
/// those carried as they are and those to merge into one (none, or at least two).
fn choose(group: Vec<ManifestFile>, policy: &MergePolicy) -> (Vec<ManifestFile>, Vec<ManifestFile>) {
    let (mut small, mut kept): (Vec<_>, Vec<_>) =
        group.into_iter().partition(|m| m.manifest_length <= policy.target_bytes / 2);
    if small.len() >= policy.min_count {
        small.sort_by_key(|m| m.manifest_length);
        let sizes: Vec<i64> = small.iter().map(|m| m.manifest_length).collect();
        if let Some((start, end)) = tier(&sizes, policy.target_bytes) {
            let rest = small.split_off(end);
            let chosen = small.split_off(start);
            kept.extend(small);
            kept.extend(rest);
            return (kept, chosen);
        }
    }
    kept.extend(small);
    (kept, Vec::new())
}

/// In `sizes` (ascending), the first run `start..end` of at least two to
/// merge: from the smallest that has one, each next manifest joins while it
/// is no larger than those before it together plus the first (the slack lets
/// manifests of about the same size merge) and the total stays within
/// `target`. `None` only when every manifest is more than twice the one
/// before it, so there are few.
fn tier(sizes: &[i64], target: i64) -> Option<(usize, usize)> {
    for start in 0..sizes.len() {
        let first = sizes[start];
        let mut total = first;
        let mut end = start + 1;
        while end < sizes.len() && sizes[end] <= total + first && total + sizes[end] <= target {
            total += sizes[end];
            end += 1;
        }
        if end - start >= 2 {
            return Some((start, end));
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: i64) -> ManifestFile {
        ManifestFile {
            manifest_path: String::new(),
            // A manifest's fixed part (schema, spec) and ~450 bytes per entry, as Bronze's.
            manifest_length: 3_000 + 450 * entries,
            partition_spec_id: 0,
            content: ManifestContentType::Data,
            sequence_number: 0,
            min_sequence_number: 0,
            added_snapshot_id: 0,
            added_files_count: Some(entries as u32),
            existing_files_count: None,
            deleted_files_count: None,
            added_rows_count: None,
            existing_rows_count: None,
            deleted_rows_count: None,
            partitions: None,
            key_metadata: None,
            first_row_id: None,
        }
    }

    /// A streaming writer's week: one small manifest per commit, merged by the
    /// policy's rules (the rewrite itself replaced by its entry count).
    #[test]
    fn tiers_rewrite_each_entry_a_few_times_and_bound_the_list() {
        let policy = MergePolicy { enabled: true, min_count: 100, target_bytes: 8 << 20 };
        let entries = |m: &ManifestFile| m.added_files_count.expect("set") as i64;
        let mut list: Vec<ManifestFile> = Vec::new();
        let (mut rewritten, mut longest) = (0i64, 0usize);
        let commits = 120_960i64; // a week at one commit per 5 s
        for _ in 0..commits {
            let (mut kept, chosen) = choose(list, &policy);
            if !chosen.is_empty() {
                let n: i64 = chosen.iter().map(entries).sum();
                rewritten += n;
                kept.push(manifest(n));
            }
            list = kept;
            let mut new = manifest(1);
            new.manifest_length += (list.len() as i64 * 37) % 200; // a few bytes more or less
            list.push(new);
            longest = longest.max(list.len());
            assert!(list.iter().all(|m| m.manifest_length <= policy.target_bytes), "no manifest passes the target");
        }
        assert_eq!(list.iter().map(entries).sum::<i64>(), commits, "every entry once");
        let per_entry = rewritten as f64 / commits as f64;
        // Bins in list order (Java's) rewrite the growing merged manifest each time: ~94 per entry.
        assert!(per_entry < 10.0, "each entry rewritten {per_entry:.1} times");
        assert!(longest < 100 + 20, "the list held up to {longest} manifests");
    }

    #[test]
    fn a_manifest_joins_only_smaller_ones_that_add_up_to_it() {
        let size = |entries: &[i64]| entries.iter().map(|n| manifest(*n).manifest_length).collect::<Vec<_>>();
        let target = 8 << 20;
        assert_eq!(tier(&size(&[1, 1, 2, 1000]), target), Some((0, 3)), "the large one waits");
        assert_eq!(tier(&size(&[1, 1, 2, 4]), target), Some((0, 4)), "1+1 (+1) >= 2, 1+1+2 (+1) >= 4");
        assert_eq!(tier(&size(&[1, 30, 30]), target), Some((1, 3)), "the two alike, not the small one");
        assert_eq!(tier(&size(&[1, 30, 1000]), target), None, "each more than twice the one before");
        assert_eq!(tier(&size(&[10, 10]), 2 * 3_000 + 450 * 15), None, "never past the target");
        // Manifests of one entry differ by a few bytes (paths, statistics): they still merge.
        assert_eq!(tier(&[3_450, 3_460, 3_470, 3_900], target), Some((0, 4)));
    }
}
