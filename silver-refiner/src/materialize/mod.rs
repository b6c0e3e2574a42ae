//! Materialisation of Silver through the changelog store.
//!
//! The store (one Paimon-format table per entity, deduplicate merge engine,
//! `sequence.field = _seq`, lookup changelog) is the index of the Silver
//! Iceberg table: each of its rows carries, besides the entity's columns,
//! where that row lives in Silver (`_silver_file`, `_silver_pos`).
//!
//! One batch goes through three steps, each durable before the next:
//!
//! 1. the batch's surviving upserts are written as new Silver data files, so
//!    every upsert has a location before the store sees it;
//! 2. the store commits the upserts (with their locations) and the deletes,
//!    with the upstream position and the new data files (serialised) in its
//!    snapshot properties;
//! 3. that store snapshot is *materialised*: its changelog says which rows
//!    were replaced or deleted (`-U`/`-D` carry the old location) and which
//!    new rows won (`+I`/`+U`); the old locations and the new rows that lost
//!    to a newer version become position deletes, and one Iceberg RowDelta
//!    commits the data files and the delete files with the store snapshot id,
//!    checked against the head (fencing).
//!
//! A crash after step 2 leaves the store ahead of Silver: on start, every
//! store snapshot after the one Silver records is materialised again from the
//! store alone (step 3 needs nothing else), so Silver always ends equal to the
//! store's state. A crash before step 2 leaves unreferenced data files only.
//!
//! Compaction ([`Materializer::compact`]) takes the same three steps: the
//! rewritten files are written, the store moves the rewritten rows to their
//! new locations in one snapshot that records the rewrite, and materialising
//! that snapshot commits the rewrite (a `replace` snapshot) to Silver.

mod evolve;
mod materializer;
pub mod partition;
mod store_map;

pub use materializer::{
    Compacted, MaterializeError, Materializer, RETENTION_DAYS, RETENTION_DAYS_KEY, REWRITE_KEY, Silvered,
};
pub use store_map::{SILVER_FILE, SILVER_POS, store_spec};
