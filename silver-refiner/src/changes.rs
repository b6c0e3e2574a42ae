//! The in-flight changes of an entity's batch: the newest change per key.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::stage::Pend;

/// The newest change per key (the key's `Debug` form), in the order keys were
/// first met. The map holds only each key's place in a vector of changes: a
/// change is a few hundred bytes, and a hash table sized for a batch of 200k
/// keys rounds up to 256Ki or 512Ki slots, most of them empty — with the changes
/// in the slots that table was the largest allocation of a Silver batch.
#[derive(Default)]
pub(crate) struct Changes {
    index: HashMap<String, u32, foldhash::fast::RandomState>,
    pends: Vec<Pend>,
}

impl Changes {
    pub(crate) fn len(&self) -> usize {
        self.pends.len()
    }

    /// Room for this many changes without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.pends.capacity()
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.index.reserve(additional);
        self.pends.reserve(additional);
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Pend> {
        self.index.get(key).map(|&i| &self.pends[i as usize])
    }

    /// Sets the change of `key`, replacing the one it had.
    pub(crate) fn insert(&mut self, key: String, change: Pend) {
        match self.index.entry(key) {
            Entry::Occupied(e) => self.pends[*e.get() as usize] = change,
            Entry::Vacant(e) => {
                let at = u32::try_from(self.pends.len()).expect("a batch holds fewer than 2^32 changes");
                e.insert(at);
                self.pends.push(change);
            }
        }
    }

    /// Keeps the changes `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str, &Pend) -> bool) {
        let capacity = self.pends.capacity();
        let mut kept = Changes { index: HashMap::default(), pends: Vec::with_capacity(capacity) };
        for (key, change) in std::mem::take(self).into_entries() {
            if keep(&key, &change) {
                kept.insert(key, change);
            }
        }
        *self = kept;
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Pend> {
        self.pends.iter_mut()
    }

    /// The changes, in the order their keys were first met.
    pub(crate) fn into_values(self) -> impl Iterator<Item = Pend> {
        self.pends.into_iter()
    }

    /// The keys with their changes, in the order the keys were first met.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (String, Pend)> {
        let mut keys: Vec<Option<String>> = vec![None; self.pends.len()];
        for (key, i) in self.index {
            keys[i as usize] = Some(key);
        }
        keys.into_iter().zip(self.pends).filter_map(|(k, p)| k.map(|k| (k, p)))
    }

    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.pends.clear();
    }
}

/// Strings that repeat across the rows of a batch (the Kafka topic, the source
/// op), each allocated once and shared by the rows' lineage.
#[derive(Default)]
pub(crate) struct Shared(Vec<Arc<str>>);

impl Shared {
    /// At most this many distinct strings are kept; others are allocated per row.
    const KEPT: usize = 16;

    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(kept) = self.0.iter().find(|k| k.as_ref() == s) {
            return kept.clone();
        }
        let new: Arc<str> = Arc::from(s);
        if self.0.len() < Self::KEPT {
            self.0.push(new.clone());
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Lineage;

    fn delete(seq: i64) -> Pend {
        Pend::Delete(
            Vec::new(),
            Lineage {
                seq,
                bronze_snapshot: 1,
                topic: None,
                partition: None,
                offset: Some(seq),
                op: None,
                record_hash: None,
            },
        )
    }

    fn seqs(c: Changes) -> Vec<(String, i64)> {
        c.into_entries().map(|(k, p)| (k, p.lineage().seq)).collect()
    }

    #[test]
    fn newest_per_key_in_first_met_order() {
        let mut c = Changes::default();
        assert_eq!(c.len(), 0);
        c.reserve(4);
        assert!(c.capacity() >= 4);
        c.insert("b".into(), delete(1));
        c.insert("a".into(), delete(2));
        c.insert("b".into(), delete(3));
        c.insert("c".into(), delete(4));
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("b").map(|p| p.lineage().seq), Some(3));
        assert!(c.get("z").is_none());
        for p in c.values_mut() {
            if let Pend::Delete(_, l) = p {
                l.bronze_snapshot = 7;
            }
        }
        c.retain(|k, p| k != "a" && p.lineage().bronze_snapshot == 7);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a").map(|p| p.lineage().seq), None);
        c.insert("a".into(), delete(5));
        assert_eq!(seqs(c), vec![("b".into(), 3), ("c".into(), 4), ("a".into(), 5)]);

        let mut c = Changes::default();
        c.insert("x".into(), delete(1));
        c.clear();
        assert!(c.len() == 0 && c.get("x").is_none());
        c.insert("y".into(), delete(2));
        assert_eq!(c.into_values().map(|p| p.lineage().seq).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn shared_strings_are_allocated_once() {
        let mut s = Shared::default();
        let a = s.get("bench.orders");
        assert!(Arc::ptr_eq(&a, &s.get("bench.orders")));
        assert_eq!(s.get("c").as_ref(), "c");
        for i in 0..40 {
            assert_eq!(s.get(&i.to_string()).as_ref(), i.to_string());
        }
        assert!(Arc::ptr_eq(&a, &s.get("bench.orders")));
    }
}
