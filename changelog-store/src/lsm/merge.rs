//! Merging records of several sorted runs into one record per key.

use crate::error::Result;
use crate::merge::MergeFunction;
use crate::row::KeyValue;
use crate::table_info::TableInfo;
use std::cmp::Ordering;

/// Orders records by key, then user sequence field(s), then system sequence number:
/// within one key the oldest comes first.
pub fn compare(info: &TableInfo, a: &KeyValue, b: &KeyValue) -> Ordering {
    a.key.cmp(&b.key).then_with(|| {
        for &i in &info.sequence_indices {
            let o = a.value[i].cmp(&b.value[i]);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.seq.cmp(&b.seq)
    })
}

/// Sorts `records` and folds each key's records with `f`. Output is sorted by key and
/// keeps retract results (they shadow older data); callers drop them when appropriate.
pub fn merge_sorted(info: &TableInfo, mut records: Vec<KeyValue>, f: &mut dyn MergeFunction) -> Result<Vec<KeyValue>> {
    records.sort_by(|a, b| compare(info, a, b));
    let mut out = Vec::new();
    let mut iter = records.into_iter().peekable();
    while let Some(first) = iter.next() {
        f.reset();
        let same_key_next = |it: &mut std::iter::Peekable<std::vec::IntoIter<KeyValue>>, k: &[crate::row::Datum]| {
            it.peek().is_some_and(|n| n.key.as_slice() == k)
        };
        if !same_key_next(&mut iter, &first.key) {
            // Fast path: a single record still goes through the function (first-row,
            // aggregation and partial-update normalize kinds).
            f.add(first)?;
        } else {
            let key = first.key.clone();
            f.add(first)?;
            while same_key_next(&mut iter, &key) {
                if let Some(next) = iter.next() {
                    f.add(next)?;
                }
            }
        }
        if let Some(r) = f.result() {
            out.push(r);
        }
    }
    Ok(out)
}
