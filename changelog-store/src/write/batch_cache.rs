//! Data files still held in memory as the Arrow batches they were written from.
//!
//! Universal compaction consumes a level-0 file within a few flushes of writing it, and
//! the small runs it writes to the lower levels soon after too; keeping the batches lets
//! that compaction merge from memory instead of reading, decompressing and decoding a
//! file this writer just wrote. Files are immutable, so a file
//! name identifies the content for as long as the file is live. The memory is bounded
//! by a byte budget shared by all bucket writers of one table write; a file that does
//! not fit is simply read from disk later.

use arrow_array::RecordBatch;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of batches held by all caches sharing it, and the most they may hold.
#[derive(Debug)]
pub struct BatchBudget {
    used: AtomicUsize,
    limit: usize,
}

impl BatchBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(BatchBudget { used: AtomicUsize::new(0), limit })
    }

    /// Charges `bytes` if the total stays within `limit_percent` of the limit.
    fn try_charge(self: &Arc<Self>, bytes: usize, limit_percent: usize) -> Option<Charge> {
        let limit = usize::try_from(self.limit as u128 * limit_percent as u128 / 100).unwrap_or(usize::MAX);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            })
            .ok()
            .map(|_| Charge { budget: self.clone(), bytes })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Bytes held against a [`BatchBudget`], given back when dropped: a cache entry holds
/// its charge, so removing, replacing or dropping entries keeps the budget right.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<BatchBudget>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// In-memory content of some live level-0 files of one bucket.
#[derive(Debug)]
pub struct BatchCache {
    files: HashMap<String, (Vec<RecordBatch>, Charge)>,
    budget: Arc<BatchBudget>,
}

impl BatchCache {
    pub fn new(budget: Arc<BatchBudget>) -> Self {
        BatchCache { files: HashMap::new(), budget }
    }

    /// Keeps `batches` (in order) as the content of file `name` if the budget stays within
    /// `limit_percent` of its limit (files that live long get a smaller share, so they
    /// cannot crowd out the level-0 files every compaction takes).
    pub fn insert(&mut self, name: &str, batches: Vec<RecordBatch>, limit_percent: usize) {
        let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        if let Some(charge) = self.budget.try_charge(bytes, limit_percent) {
            self.files.insert(name.to_string(), (batches, charge));
        }
    }

    pub fn get(&self, name: &str) -> Option<Vec<RecordBatch>> {
        self.files.get(name).map(|(b, _)| b.clone())
    }

    /// Drops files that are no longer part of the bucket.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.files.retain(|name, _| live.contains(name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array};

    fn batch(rows: i64) -> RecordBatch {
        let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        RecordBatch::try_from_iter([("a", col)]).expect("batch")
    }

    #[test]
    fn budget_is_shared_and_released() {
        let one = batch(1000).get_array_memory_size();
        let budget = BatchBudget::new(one * 2);
        let mut a = BatchCache::new(budget.clone());
        let mut b = BatchCache::new(budget.clone());
        a.insert("f1", vec![batch(1000)], 100);
        b.insert("f2", vec![batch(1000)], 100);
        b.insert("f3", vec![batch(1000)], 100);
        assert!(a.get("f1").is_some() && b.get("f2").is_some());
        assert!(b.get("f3").is_none(), "over the budget: not kept");
        assert_eq!(budget.used(), one * 2);
        b.retain(&HashSet::new());
        b.insert("f4", vec![batch(1000)], 50);
        assert!(b.get("f4").is_none(), "over its share of the budget: not kept");
        assert!(b.get("f2").is_none());
        assert_eq!(budget.used(), one);
        drop(a);
        assert_eq!(budget.used(), 0);
    }
}
