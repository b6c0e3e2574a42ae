//! Decoded data files kept in memory, as one Arrow batch each with its sort keys, for
//! lookups (the `lookup` changelog producer) and for the compactions of row-wise merge
//! engines. Files are immutable, so a file name identifies its content forever.
//!
//! The memory is bounded by Paimon's `lookup.cache-max-memory-size` (default 256 mb),
//! one budget ([`FileBudget`]) shared by all bucket writers of a table write (or of a
//! process's table writes): a file that no longer fits evicts the writer's own least
//! recently used files and those of idle writers, and is read from disk again when it
//! is needed. Without the bound the cache held every live record of the table as rows
//! of `Datum`s, so a writer's memory grew with the table (store benchmark with the `lookup`
//! producer: 1.50 GB peak RSS at 1M upserts, 3.15 GB at 2M; 0.55 and 0.70 GB now).

use crate::clock::SharedClock;
use crate::data::arrow_conv::kv_schema;
use crate::data::reader::KvBatchReader;
use crate::data::sort_key::{KeyForm, SortKeys};
use crate::error::Result;
use crate::table_info::TableInfo;
use arrow_array::RecordBatch;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A file's records in key order, and their keys.
pub struct CachedFile {
    pub batch: RecordBatch,
    pub keys: SortKeys,
}

impl CachedFile {
    pub fn new(info: &TableInfo, batch: RecordBatch) -> Result<Self> {
        let keys = SortKeys::new(KeyForm::of(&info.key_types), &batch.columns()[..info.key_types.len()])?;
        Ok(CachedFile { batch, keys })
    }

    /// Reads a whole data file.
    pub fn read(info: &TableInfo, path: &Path) -> Result<Self> {
        Self::new(info, KvBatchReader::open(info, kv_schema(info), path)?.read_to_batch()?)
    }

    fn mem_size(&self) -> usize {
        let keys = match &self.keys {
            SortKeys::Int(v) => v.len() * 8,
            SortKeys::Bytes { data, offsets } => data.len() + offsets.len() * 8,
        };
        self.batch.get_array_memory_size() + keys + 64
    }
}

struct Entry {
    records: Arc<CachedFile>,
    bytes: usize,
    last_used: u64,
}

/// One cache's files, and when it was last used (clock milliseconds).
#[derive(Default)]
struct CacheFiles {
    files: HashMap<String, Entry>,
    active_at: i64,
}

/// The decoded files of every cache sharing a budget, and their bytes.
#[derive(Default)]
struct Shared {
    used: usize,
    tick: u64,
    next_cache: u64,
    caches: HashMap<u64, CacheFiles>,
}

impl Shared {
    fn remove(&mut self, cache: u64, name: &str) {
        if let Some(e) = self.caches.get_mut(&cache).and_then(|c| c.files.remove(name)) {
            self.used -= e.bytes;
        }
    }
}

/// The memory of decoded files, shared by every [`FileCache`] made with it (the
/// bucket writers of one table write, or of every table a process writes). A cache
/// that needs room evicts its own least recently used files, and those of caches that
/// have been idle for a while (30 s), oldest first: the files of a table that went
/// idle make room for the tables being written, while writers that are all busy keep
/// their shares (evicting each other's files in turn would have each flush decode
/// files another writer just pushed out).
pub struct FileBudget {
    limit: usize,
    idle_after_ms: i64,
    clock: SharedClock,
    shared: Mutex<Shared>,
}

impl std::fmt::Debug for FileBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBudget").field("limit", &self.limit).field("used", &self.used()).finish()
    }
}

impl FileBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Self::with_idle_after(limit, Duration::from_secs(30), crate::clock::system())
    }

    /// A budget whose caches count as idle after `idle_after` without use, on `clock`.
    pub fn with_idle_after(limit: usize, idle_after: Duration, clock: SharedClock) -> Arc<Self> {
        let idle_after_ms = i64::try_from(idle_after.as_millis()).unwrap_or(i64::MAX);
        Arc::new(FileBudget { limit, idle_after_ms, clock, shared: Mutex::new(Shared::default()) })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.lock().used
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The map stays consistent between statements: a panic elsewhere leaves it usable.
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a cache last used at `active_at` is idle at `now`.
    fn idle(&self, active_at: i64, now: i64) -> bool {
        now.saturating_sub(active_at) >= self.idle_after_ms
    }
}

/// Cache of decoded files of one bucket, in a [`FileBudget`].
pub struct FileCache {
    id: u64,
    budget: Arc<FileBudget>,
}

impl FileCache {
    pub fn new(budget: Arc<FileBudget>) -> Self {
        let id = {
            let mut s = budget.lock();
            s.next_cache += 1;
            let id = s.next_cache;
            s.caches.insert(id, CacheFiles { files: HashMap::new(), active_at: budget.clock.now_millis() });
            id
        };
        FileCache { id, budget }
    }

    pub fn get(&mut self, info: &TableInfo, dir: &Path, name: &str) -> Result<Arc<CachedFile>> {
        if let Some(records) = self.hit(name) {
            return Ok(records);
        }
        let records = Arc::new(CachedFile::read(info, &dir.join(name))?);
        self.insert(name, records.clone());
        Ok(records)
    }

    /// The decoded file if cached, now the most recently used.
    pub fn hit(&mut self, name: &str) -> Option<Arc<CachedFile>> {
        let now = self.budget.clock.now_millis();
        let mut s = self.budget.lock();
        s.tick += 1;
        let tick = s.tick;
        let mine = s.caches.entry(self.id).or_default();
        mine.active_at = now;
        let e = mine.files.get_mut(name)?;
        e.last_used = tick;
        Some(e.records.clone())
    }

    /// Bytes the shared budget has left, counting what idle caches hold (an insert
    /// evicts it).
    pub fn room(&self) -> usize {
        let now = self.budget.clock.now_millis();
        let s = self.budget.lock();
        let idle: usize = s
            .caches
            .iter()
            .filter(|(id, c)| **id != self.id && self.budget.idle(c.active_at, now))
            .flat_map(|(_, c)| c.files.values().map(|e| e.bytes))
            .sum();
        (self.budget.limit + idle).saturating_sub(s.used)
    }

    /// The decoded file if cached (no I/O).
    pub fn peek(&self, name: &str) -> Option<Arc<CachedFile>> {
        let s = self.budget.lock();
        s.caches.get(&self.id).and_then(|c| c.files.get(name)).map(|e| e.records.clone())
    }

    /// Keeps `records` as the content of `name`, evicting (least recently used first)
    /// this cache's files and idle caches' while the shared budget is exceeded. A file
    /// larger than the whole budget is not kept.
    pub fn insert(&mut self, name: &str, records: Arc<CachedFile>) {
        let bytes = records.mem_size();
        let limit = self.budget.limit;
        let now = self.budget.clock.now_millis();
        let mut s = self.budget.lock();
        s.remove(self.id, name);
        s.caches.entry(self.id).or_default().active_at = now;
        if bytes > limit {
            return;
        }
        s.tick += 1;
        let last_used = s.tick;
        s.used += bytes;
        s.caches.entry(self.id).or_default().files.insert(name.to_string(), Entry { records, bytes, last_used });
        while s.used > limit {
            let victim = s
                .caches
                .iter()
                .filter(|(id, c)| **id == self.id || self.budget.idle(c.active_at, now))
                .flat_map(|(id, c)| c.files.iter().map(move |(n, e)| (*id, n, e.last_used)))
                .filter(|(id, n, _)| !(*id == self.id && n.as_str() == name))
                .min_by_key(|(_, _, used)| *used)
                .map(|(id, n, _)| (id, n.clone()));
            match victim {
                Some((id, n)) => s.remove(id, &n),
                // Busy caches hold the rest; they evict on their next insert.
                None => break,
            }
        }
    }

    /// Drops files that are no longer part of the bucket.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        let mut s = self.budget.lock();
        let Some(mine) = s.caches.get_mut(&self.id) else { return };
        let mut freed = 0;
        mine.files.retain(|name, e| {
            let keep = live.contains(name.as_str());
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        s.used -= freed;
    }
}

impl Drop for FileCache {
    fn drop(&mut self) {
        let mut s = self.budget.lock();
        if let Some(mine) = s.caches.remove(&self.id) {
            s.used -= mine.files.values().map(|e| e.bytes).sum::<usize>();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array};

    fn file(rows: i64) -> Arc<CachedFile> {
        let col: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let batch = RecordBatch::try_from_iter([("k", col.clone()), ("v", col)]).unwrap();
        let keys = SortKeys::new(KeyForm::Int, &[batch.column(0).clone()]).unwrap();
        Arc::new(CachedFile { batch, keys })
    }

    /// The shared budget bounds the total; the least recently used file goes first,
    /// whichever cache holds it; a file bigger than the budget is not kept; dropping a
    /// cache returns its bytes.
    #[test]
    fn evicts_least_recently_used_within_the_budget() {
        let size = file(1000).mem_size();
        // Every other cache counts as idle at once: one LRU order over all of them.
        let budget = FileBudget::with_idle_after(size * 3, Duration::ZERO, crate::clock::system());
        let mut a = FileCache::new(budget.clone());
        let mut b = FileCache::new(budget.clone());
        a.insert("a1", file(1000));
        a.insert("a2", file(1000));
        b.insert("b1", file(1000));
        assert_eq!(budget.used(), size * 3);
        // a1 used again: a2 is now the least recently used of all.
        assert!(a.hit("a1").is_some());
        a.insert("a3", file(1000));
        assert!(a.peek("a1").is_some() && a.peek("a3").is_some() && b.peek("b1").is_some());
        assert!(a.peek("a2").is_none(), "least recently used evicted");
        assert!(budget.used() <= size * 3);
        // b's file is the oldest now: a writer of another table takes its room.
        b.insert("b2", file(1000));
        assert!(b.peek("b2").is_some() && b.peek("b1").is_none(), "b1 was used longest ago");
        assert!(a.peek("a1").is_some() && a.peek("a3").is_some(), "a's files were used since");
        let mut idle = FileCache::new(budget.clone());
        idle.insert("i1", file(1000));
        for round in 0..5 {
            let name = format!("a-round-{round}");
            a.insert(&name, file(1000));
            assert!(a.peek(&name).is_some());
        }
        assert!(idle.peek("i1").is_none(), "an idle cache's file does not stay forever");
        assert!(budget.used() <= size * 3);
        a.insert("huge", file(4000));
        assert!(a.peek("huge").is_none(), "bigger than the budget: not kept");
        assert!(budget.used() <= size * 3);
        let held = budget.used();
        let a_held: usize = (0..5).filter(|r| a.peek(&format!("a-round-{r}")).is_some()).count() * size;
        drop(a);
        assert_eq!(budget.used(), held - a_held);
        drop(b);
        drop(idle);
        assert_eq!(budget.used(), 0);
        // Same name in two caches: two entries.
        let mut c = FileCache::new(budget.clone());
        let mut d = FileCache::new(budget.clone());
        c.insert("x", file(1000));
        d.insert("x", file(1000));
        assert_eq!(budget.used(), size * 2);
        c.insert("x", file(1000));
        assert_eq!(budget.used(), size * 2, "replacing a file charges it once");
    }

    /// Busy caches keep their files: a cache over the budget evicts its own; another
    /// cache's files go only once that cache has been idle.
    #[test]
    fn busy_caches_keep_their_share_and_idle_ones_make_room() {
        let size = file(1000).mem_size();
        let clock = crate::clock::ManualClock::new(0);
        let budget = FileBudget::with_idle_after(size * 3, Duration::from_secs(30), clock.clone());
        let mut a = FileCache::new(budget.clone());
        let mut b = FileCache::new(budget.clone());
        b.insert("b1", file(1000));
        b.insert("b2", file(1000));
        a.insert("a1", file(1000));
        assert_eq!(a.room(), 0, "b is busy: its files are not room");
        a.insert("a2", file(1000));
        assert!(b.peek("b1").is_some() && b.peek("b2").is_some(), "b's older files stay");
        assert!(a.peek("a2").is_some() && a.peek("a1").is_none(), "a evicted its own");
        assert!(budget.used() <= size * 3);
        clock.advance(29_999);
        assert_eq!(a.room(), 0, "not idle yet");
        a.hit("a2");
        clock.advance(1);
        assert_eq!(a.room(), size * 2, "b went idle: its files count as room");
        a.insert("a3", file(1000));
        a.insert("a4", file(1000));
        assert!(["a2", "a3", "a4"].iter().all(|n| a.peek(n).is_some()), "a took the idle cache's room");
        assert!(b.peek("b1").is_none() && b.peek("b2").is_none());
        assert_eq!(budget.used(), size * 3);
    }
}
