//! Merge engines: how the records of one key, oldest first, fold into one.
//!
//! The same function runs on write-buffer flush, on compaction and on read, so it
//! must be associative: merging merged partial results equals merging the inputs.

mod aggregate;
mod aggregator;
mod deduplicate;
mod first_row;
mod partial_update;

pub use aggregate::is_count_field;
pub use aggregator::AggregatorKind;

use crate::error::Result;
use crate::options::MergeEngine;
use crate::row::KeyValue;
use crate::table_info::TableInfo;

/// Folds the records of one key. `add` receives them oldest first.
pub trait MergeFunction: Send {
    fn reset(&mut self);
    fn add(&mut self, kv: KeyValue) -> Result<()>;
    /// The merged record, `None` if nothing survives. A record whose kind is not
    /// an add (`-D`/`-U`) still shadows older data but is not a visible row.
    fn result(&mut self) -> Option<KeyValue>;
}

/// The merge function of a table's `merge-engine`.
pub fn merge_function(info: &TableInfo) -> Result<Box<dyn MergeFunction>> {
    Ok(match info.options.merge_engine {
        MergeEngine::Deduplicate => Box::new(deduplicate::Deduplicate::new(info.options.ignore_delete)),
        MergeEngine::FirstRow => Box::new(first_row::FirstRow::new(info.options.ignore_delete)),
        MergeEngine::PartialUpdate => Box::new(partial_update::PartialUpdate::new(info)),
        MergeEngine::Aggregation => Box::new(aggregate::Aggregate::new(info)?),
    })
}

/// Merges a run of same-key records (sorted oldest first) with `f`.
pub fn merge_group(f: &mut dyn MergeFunction, group: Vec<KeyValue>) -> Result<Option<KeyValue>> {
    f.reset();
    for kv in group {
        f.add(kv)?;
    }
    Ok(f.result())
}
