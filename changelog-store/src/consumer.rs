//! Consumers: Paimon's `consumer/consumer-<id>` files, each `{"nextSnapshot": N}`.
//!
//! A reader of the changelog registers a consumer id and advances it as it commits its
//! own progress; expiration ([`crate::expire`]) keeps every snapshot at or after the
//! smallest `nextSnapshot` of the registered consumers. A consumer that stops advancing
//! would pin the table's history forever, so with `consumer.expiration-time` set a
//! consumer whose file was last written longer ago than that is removed on expiration
//! (Paimon's `ConsumerManager.expire`, by the file's modification time).

use crate::error::{Error, Result};
use crate::fs;
use crate::paths::TablePaths;
use crate::snapshot_manager::SnapshotManager;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The JSON document of `consumer/consumer-<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    /// The first snapshot the consumer has not read yet.
    pub next_snapshot: i64,
}

/// Ids become file names: refuse anything that is not a plain name.
fn check_id(paths: &TablePaths, id: &str) -> Result<()> {
    let bad = |message: &str| Error::InvalidConsumerId {
        table: paths.root().to_path_buf(),
        id: id.to_string(),
        message: message.to_string(),
    };
    if id.is_empty() {
        return Err(bad("empty"));
    }
    if id == "." || id == ".." || id.contains(['/', '\\']) || id.chars().any(char::is_control) {
        return Err(bad("must be a plain name (no path separators or control characters)"));
    }
    Ok(())
}

fn parse(path: &std::path::Path, bytes: &[u8]) -> Result<Consumer> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        op: "parsing consumer",
        path: path.to_path_buf(),
        source,
    })
}

/// Every registered consumer with its next snapshot.
pub fn list(paths: &TablePaths) -> Result<Vec<(String, Consumer)>> {
    let mut out = Vec::new();
    for name in fs::list(&paths.consumer_dir())? {
        let Some(id) = name.strip_prefix("consumer-") else {
            continue;
        };
        let path = paths.consumer_file(id);
        // Removed (expired) between listing and reading: not a consumer any more.
        if let Some(bytes) = fs::read_opt(&path)? {
            out.push((id.to_string(), parse(&path, &bytes)?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The consumer `id`, if registered.
pub fn get(paths: &TablePaths, id: &str) -> Result<Option<Consumer>> {
    check_id(paths, id)?;
    let path = paths.consumer_file(id);
    fs::read_opt(&path)?.map(|bytes| parse(&path, &bytes)).transpose()
}

/// The smallest `nextSnapshot` of the registered consumers: expiration keeps it and
/// every later snapshot.
pub fn min_next_snapshot(paths: &TablePaths) -> Result<Option<i64>> {
    Ok(list(paths)?.into_iter().map(|(_, c)| c.next_snapshot).min())
}

/// Registers consumer `id`, or advances it: snapshots from `next_snapshot` on are kept
/// for it. Refused with [`Error::SnapshotExpired`] if `next_snapshot` was already
/// expired (what the consumer has not read yet is gone).
pub fn register(paths: &TablePaths, id: &str, next_snapshot: i64) -> Result<()> {
    check_id(paths, id)?;
    if let Some(earliest) = SnapshotManager::new(paths.clone()).earliest_id()?
        && next_snapshot < earliest
    {
        return Err(Error::SnapshotExpired { table: paths.root().to_path_buf(), requested: next_snapshot, earliest });
    }
    fs::create_dir_all(&paths.consumer_dir())?;
    let path = paths.consumer_file(id);
    let json = serde_json::to_vec(&Consumer { next_snapshot }).map_err(|source| Error::Json {
        op: "serializing consumer",
        path: path.clone(),
        source,
    })?;
    fs::overwrite(&path, &json)
}

/// Removes consumer `id` (no error if it was not registered).
pub fn remove(paths: &TablePaths, id: &str) -> Result<()> {
    check_id(paths, id)?;
    let path = paths.consumer_file(id);
    if fs::exists(&path) {
        fs::delete(&path)?;
    }
    Ok(())
}

/// Removes the consumers whose file was last written before `now_millis - expiration`
/// (`consumer.expiration-time`); returns their ids.
pub fn expire(paths: &TablePaths, expiration: Duration, now_millis: i64) -> Result<Vec<String>> {
    let cutoff = now_millis.saturating_sub(i64::try_from(expiration.as_millis()).unwrap_or(i64::MAX));
    let mut expired = Vec::new();
    for (id, c) in list(paths)? {
        let path = paths.consumer_file(&id);
        if fs::modified_millis(&path)? < cutoff {
            fs::delete(&path)?;
            tracing::info!(
                table = %paths.root().display(),
                consumer = %id,
                next_snapshot = c.next_snapshot,
                "consumer expired (consumer.expiration-time)"
            );
            expired.push(id);
        }
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_file_is_paimons_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = TablePaths::new(dir.path());
        register(&paths, "gold", 7).expect("registers");
        let text = std::fs::read_to_string(dir.path().join("consumer").join("consumer-gold")).expect("reads");
        assert_eq!(text, r#"{"nextSnapshot":7}"#);
        assert_eq!(get(&paths, "gold").expect("reads"), Some(Consumer { next_snapshot: 7 }));
        register(&paths, "gold", 9).expect("advances");
        assert_eq!(min_next_snapshot(&paths).expect("lists"), Some(9));
        remove(&paths, "gold").expect("removes");
        assert_eq!(get(&paths, "gold").expect("reads"), None);
    }

    #[test]
    fn path_like_ids_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = TablePaths::new(dir.path());
        for id in ["", "..", "a/b", "a\\b"] {
            let e = register(&paths, id, 1).expect_err("refused");
            assert!(matches!(e, Error::InvalidConsumerId { .. }), "{id:?}: {e}");
        }
    }
}
