//! The read path: snapshot scans with the merge engine applied, and changelog streaming.

pub mod changelog_reader;
pub mod scan;
pub mod snapshot_reader;
