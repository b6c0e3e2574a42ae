//! Two writers on one bucket: Paimon's single-writer-per-bucket rule, checked at commit.
//!
//! A writer numbers the records of a bucket from the highest sequence number of the
//! snapshot it read the bucket from (its base). If another writer added files to the
//! same bucket after that base, both numbered from the same point: committing on top
//! would interleave two sequences and let the merge pick arbitrary winners. The commit
//! of new files is therefore refused when a snapshot after the writer's base, by another
//! commit user and not a COMPACT (a dedicated compactor rewrites files but adds no
//! records), added data or changelog files to a bucket the commit writes to.
//!
//! Snapshots of the same commit user are the writer's own earlier commits and are
//! skipped. If a snapshot between the base and the latest was expired, what it did is
//! unknown and the commit is refused as well: the caller starts a new writer.

use crate::error::{Error, Result};
use crate::manifest_io::ManifestIo;
use crate::paths::partition_value_string;
use crate::snapshot_manager::SnapshotManager;
use crate::spec::snapshot::{CommitKind, Snapshot};
use crate::table_info::TableInfo;
use std::collections::HashMap;

/// `(serialized partition, bucket)` → the base snapshot of the writer of the commit.
pub(super) type Bases = HashMap<(Vec<u8>, i32), i64>;

/// Fails with [`Error::Conflict`] if another commit user added files to a bucket of
/// `bases` after that bucket's base snapshot (see the module docs).
pub(super) fn check_no_other_writer(
    info: &TableInfo,
    snapshots: &SnapshotManager,
    manifests: &ManifestIo,
    commit_user: &str,
    latest: Option<&Snapshot>,
    bases: &Bases,
) -> Result<()> {
    let (Some(latest), Some(&oldest_base)) = (latest, bases.values().min()) else {
        return Ok(());
    };
    let conflict = |message: String| Error::Conflict {
        table: snapshots.paths().root().to_path_buf(),
        base: Some(oldest_base),
        message,
    };
    for id in oldest_base + 1..=latest.id {
        let snapshot = if id == latest.id {
            latest.clone()
        } else {
            snapshots.try_snapshot(id)?.ok_or_else(|| {
                conflict(format!(
                    "snapshot {id}, committed after this writer's base snapshot {oldest_base}, was expired: \
                     whether another writer wrote to the same buckets is unknown; start a new writer"
                ))
            })?
        };
        if snapshot.commit_user == commit_user || snapshot.commit_kind == CommitKind::Compact {
            continue;
        }
        let added = manifests.delta_entries(&snapshot)?.into_iter().chain(manifests.changelog_entries(&snapshot)?);
        for e in added {
            let Some(&base) = bases.get(&(e.partition.clone(), e.bucket)) else {
                continue;
            };
            if id > base {
                let partition = info.deserialize_partition(&e.partition)?;
                let partition: Vec<String> = info
                    .partition_spec(&partition)
                    .iter()
                    .map(|(k, v)| format!("{k}={}", partition_value_string(v)))
                    .collect();
                return Err(conflict(format!(
                    "bucket {} of partition [{}] was written by commit user `{}` in snapshot {id} after this \
                     writer (commit user `{commit_user}`) read it at snapshot {base}; two writers on one \
                     bucket would interleave sequence numbers. Start a new writer from the latest snapshot",
                    e.bucket,
                    partition.join(", "),
                    snapshot.commit_user,
                )));
            }
        }
    }
    Ok(())
}
