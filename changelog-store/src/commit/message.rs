//! What a writer hands to the committer for one (partition, bucket).

use crate::row::Datum;
use crate::spec::manifest::DataFileMeta;

/// Files written for one (partition, bucket) since the last commit.
#[derive(Debug, Clone, Default)]
pub struct CommitMessage {
    pub partition: Vec<Datum>,
    pub bucket: i32,
    /// New level-0 files from write-buffer flushes.
    pub new_files: Vec<DataFileMeta>,
    /// Changelog files (changelog-producer `input` or `lookup`).
    pub changelog_files: Vec<DataFileMeta>,
    /// Files a compaction replaced; they must still be live when committing.
    pub compact_before: Vec<DataFileMeta>,
    /// Files a compaction produced.
    pub compact_after: Vec<DataFileMeta>,
    /// The snapshot the writer read this bucket's files (and so its sequence numbers)
    /// from, `Some(0)` for an empty table. The committer refuses new files if another
    /// commit user added files to the bucket after it. `None`: not checked (messages
    /// not made by a [`crate::TableWrite`]).
    pub base_snapshot: Option<i64>,
}

impl CommitMessage {
    pub fn is_empty(&self) -> bool {
        self.new_files.is_empty()
            && self.changelog_files.is_empty()
            && self.compact_before.is_empty()
            && self.compact_after.is_empty()
    }

    pub fn has_compaction(&self) -> bool {
        !self.compact_before.is_empty() || !self.compact_after.is_empty()
    }
}
