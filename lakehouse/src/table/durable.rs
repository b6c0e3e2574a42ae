//! Durability of written files before the catalog pointer moves.
//!
//! iceberg-rust's `OutputFile::write` (an opendal write) returns once the
//! bytes are handed to the storage. On an object store that is a completed
//! PUT, durable by the store's contract. On a local file system it is the page
//! cache: after a power loss the catalog could point at an empty or truncated
//! metadata file. So before a commit publishes, every file it makes reachable
//! (data and delete files, manifests, manifest list, metadata file) is synced,
//! and so is each directory that gained an entry.
//!
//! This is the only place that reaches past the storage abstraction, and only
//! for `file://` locations (or bare paths); everything else is a no-op here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The local path of a location, or `None` when it lives on another storage.
fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    if location.starts_with('/') {
        return Some(PathBuf::from(location));
    }
    None
}

/// Syncs every local file of `locations` and then their directories.
/// Object-store locations are skipped: their writes are durable when they return.
pub async fn sync_all<I, S>(locations: I) -> std::io::Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let files: Vec<PathBuf> = locations.into_iter().filter_map(|l| local_path(l.as_ref())).collect();
    if files.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || sync_paths(&files))
        .await
        .map_err(|e| std::io::Error::other(format!("sync task failed: {e}")))?
}

fn sync_paths(files: &[PathBuf]) -> std::io::Result<()> {
    let mut dirs = BTreeSet::new();
    for f in files {
        let file = std::fs::File::open(f).map_err(|e| with_path(e, f))?;
        file.sync_all().map_err(|e| with_path(e, f))?;
        if let Some(d) = f.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        // A directory's entry for a new file is only durable once the directory is synced.
        let dir = std::fs::File::open(&d).map_err(|e| with_path(e, &d))?;
        dir.sync_all().map_err(|e| with_path(e, &d))?;
    }
    Ok(())
}

fn with_path(e: std::io::Error, p: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("syncing {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_locations_are_synced() {
        assert_eq!(local_path("file:///wh/t/metadata/1.json"), Some(PathBuf::from("/wh/t/metadata/1.json")));
        assert_eq!(local_path("/wh/t/data/a.parquet"), Some(PathBuf::from("/wh/t/data/a.parquet")));
        assert_eq!(local_path("s3://bucket/wh/t/metadata/1.json"), None);
    }

    #[tokio::test]
    async fn syncs_files_and_reports_missing_ones_by_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.json");
        std::fs::write(&f, b"{}").expect("write");
        sync_all([format!("file://{}", f.display())]).await.expect("an existing file syncs");
        sync_all(["s3://bucket/x"]).await.expect("object stores are not touched");
        let missing = dir.path().join("missing.json");
        let err = sync_all([missing.display().to_string()]).await.expect_err("a missing file is an error");
        assert!(err.to_string().contains("missing.json"), "{err}");
    }
}
