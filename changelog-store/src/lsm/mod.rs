//! The log-structured merge tree of one bucket: levels, merging and universal compaction.

pub mod columnar;
pub mod compaction;
pub mod levels;
pub mod merge;
pub mod row_merge;
