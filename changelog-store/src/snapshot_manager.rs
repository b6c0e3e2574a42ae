//! Finding and reading snapshots: `LATEST`/`EARLIEST` hints, probing, time travel.

use crate::error::{Error, Result};
use crate::fs;
use crate::paths::TablePaths;
use crate::spec::snapshot::Snapshot;

/// Reads snapshots of one table.
#[derive(Debug, Clone)]
pub struct SnapshotManager {
    paths: TablePaths,
}

impl SnapshotManager {
    pub fn new(paths: TablePaths) -> Self {
        SnapshotManager { paths }
    }

    pub fn paths(&self) -> &TablePaths {
        &self.paths
    }

    pub fn snapshot_exists(&self, id: i64) -> bool {
        fs::exists(&self.paths.snapshot_file(id))
    }

    pub fn snapshot(&self, id: i64) -> Result<Snapshot> {
        self.try_snapshot(id)?.ok_or_else(|| Error::SnapshotNotFound { table: self.paths.root().to_path_buf(), id })
    }

    pub fn try_snapshot(&self, id: i64) -> Result<Option<Snapshot>> {
        let path = self.paths.snapshot_file(id);
        match fs::read_opt(&path)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| Error::Json {
                op: "parsing snapshot",
                path,
                source,
            }),
        }
    }

    fn listed_ids(&self) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = fs::list(&self.paths.snapshot_dir())?
            .iter()
            .filter_map(|n| n.strip_prefix("snapshot-").and_then(|s| s.parse().ok()))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn read_hint(&self, path: &std::path::Path) -> Result<Option<i64>> {
        Ok(fs::read_opt(path)?.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.trim().parse().ok()))
    }

    /// Id of the newest snapshot: the `LATEST` hint, then probing forward (the hint may lag).
    pub fn latest_id(&self) -> Result<Option<i64>> {
        if let Some(hint) = self.read_hint(&self.paths.latest_hint())? {
            if self.snapshot_exists(hint) {
                let mut id = hint;
                while self.snapshot_exists(id + 1) {
                    id += 1;
                }
                return Ok(Some(id));
            }
        }
        Ok(self.listed_ids()?.last().copied())
    }

    /// Id of the oldest retained snapshot.
    pub fn earliest_id(&self) -> Result<Option<i64>> {
        if let Some(hint) = self.read_hint(&self.paths.earliest_hint())? {
            if self.snapshot_exists(hint) {
                let mut id = hint;
                while id > 1 && self.snapshot_exists(id - 1) {
                    id -= 1;
                }
                return Ok(Some(id));
            }
        }
        Ok(self.listed_ids()?.first().copied())
    }

    pub fn latest(&self) -> Result<Option<Snapshot>> {
        match self.latest_id()? {
            None => Ok(None),
            Some(id) => self.snapshot(id).map(Some),
        }
    }

    /// All retained snapshots, oldest first.
    pub fn all(&self) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        for id in self.listed_ids()? {
            if let Some(s) = self.try_snapshot(id)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The newest snapshot committed at or before `time_millis`.
    pub fn at_or_before(&self, time_millis: i64) -> Result<Option<Snapshot>> {
        let mut best = None;
        for s in self.all()? {
            if s.time_millis <= time_millis {
                best = Some(s);
            } else {
                break;
            }
        }
        Ok(best)
    }

    pub fn write_latest_hint(&self, id: i64) -> Result<()> {
        fs::overwrite(&self.paths.latest_hint(), id.to_string().as_bytes())
    }

    pub fn write_earliest_hint(&self, id: i64) -> Result<()> {
        fs::overwrite(&self.paths.earliest_hint(), id.to_string().as_bytes())
    }
}
