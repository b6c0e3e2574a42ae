//! Two-phase commit: writers prepare [`CommitMessage`]s, the [`Committer`] publishes
//! them as snapshots with create-if-absent, idempotently per commit identifier.

mod committer;
mod message;
mod writer_conflicts;

pub use committer::{CommitOutcome, Committer, FailPoint};
pub use message::CommitMessage;
