//! The consumed-up-to position every commit carries in its snapshot summary.
//!
//! Bronze stores, per consumer group, the *next* offset of every Kafka
//! partition the table has ever covered, under
//! `lakehouse.kafka-offsets.<group>` as `{"<topic>": {"<partition>": <next>}}`.
//! Each commit writes the full map (the head's map with its own partitions
//! advanced), so the newest snapshot that has the key is the whole truth;
//! snapshots of other operations (compaction, maintenance) may lack it, which
//! is why readers walk the ancestry.

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::TableMetadata;

/// `(topic, partition) → next offset to consume`.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Summary key of a consumer group's offsets.
pub fn offsets_key(group: &str) -> String {
    format!("lakehouse.kafka-offsets.{group}")
}

/// Encodes offsets as the summary value.
pub fn encode_offsets(offsets: &Offsets) -> String {
    let mut nested: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
    for ((topic, partition), next) in offsets {
        nested.entry(topic.as_str()).or_default().insert(partition.to_string(), *next);
    }
    serde_json::to_string(&nested).expect("a map of strings and integers serializes")
}

/// Decodes a summary value; `None` if it is not ours.
pub fn decode_offsets(value: &str) -> Option<Offsets> {
    let nested: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(value).ok()?;
    let mut out = Offsets::new();
    for (topic, parts) in nested {
        for (p, next) in parts {
            out.insert((topic.clone(), p.parse().ok()?), next);
        }
    }
    Some(out)
}

/// The committed offsets of `group` at the table's current snapshot, found
/// by walking the snapshot ancestry from the head. Empty for a new table.
pub fn committed_offsets(metadata: &TableMetadata, group: &str) -> Offsets {
    let key = offsets_key(group);
    let mut cursor = metadata.current_snapshot().cloned();
    while let Some(snapshot) = cursor {
        if let Some(v) = snapshot.summary().additional_properties.get(&key) {
            match decode_offsets(v) {
                Some(o) => return o,
                None => {
                    tracing::warn!(snapshot_id = snapshot.snapshot_id(), key = %key, "unreadable offsets in snapshot summary; walking on")
                }
            }
        }
        cursor = snapshot.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id).cloned());
    }
    Offsets::new()
}

/// Summary properties for a commit that advances `advanced` on top of `head`.
pub fn offsets_properties(group: &str, head: &Offsets, advanced: &Offsets) -> HashMap<String, String> {
    let mut merged = head.clone();
    merged.extend(advanced.iter().map(|(k, v)| (k.clone(), *v)));
    HashMap::from([(offsets_key(group), encode_offsets(&merged))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        let mut o = Offsets::new();
        o.insert(("a.b".into(), 0), 10);
        o.insert(("a.b".into(), 3), 7);
        o.insert(("c".into(), 1), 0);
        let s = encode_offsets(&o);
        assert_eq!(s, r#"{"a.b":{"0":10,"3":7},"c":{"1":0}}"#);
        assert_eq!(decode_offsets(&s), Some(o));
        assert_eq!(decode_offsets("not json"), None);
    }

    #[test]
    fn merge_keeps_other_partitions() {
        let mut head = Offsets::new();
        head.insert(("t".into(), 0), 5);
        head.insert(("t".into(), 1), 9);
        let mut adv = Offsets::new();
        adv.insert(("t".into(), 1), 12);
        let props = offsets_properties("g", &head, &adv);
        let merged = decode_offsets(&props[&offsets_key("g")]).expect("ours");
        assert_eq!(merged[&("t".to_string(), 0)], 5);
        assert_eq!(merged[&("t".to_string(), 1)], 12);
    }
}

/// `(topic, partition)`.
pub type TopicPartition = (String, i32);

/// The fencing rule of Bronze commits, run against every head the commit
/// layer tries: each partition of the batch must still be where the batch
/// started (`expected`: the table's next offset when this writer positioned
/// itself, `None` = no offset yet). Someone else past that point means this
/// writer is a zombie. On success returns the summary properties: the head's
/// offsets with `advanced` applied, plus `extra`.
pub fn fence_offsets(
    head: &TableMetadata,
    group: &str,
    expected: &BTreeMap<TopicPartition, Option<i64>>,
    advanced: &Offsets,
    extra: &HashMap<String, String>,
) -> Result<HashMap<String, String>, crate::table::commit::Fenced> {
    let committed = committed_offsets(head, group);
    for (tp, started_from) in expected {
        let now = committed.get(tp).copied();
        if now != *started_from {
            return Err(crate::table::commit::Fenced(format!(
                "{}/{}: table is at {}, this batch started from {}",
                tp.0,
                tp.1,
                now.map_or("nothing".to_string(), |n| n.to_string()),
                started_from.map_or("nothing".to_string(), |n| n.to_string()),
            )));
        }
    }
    let mut props = offsets_properties(group, &committed, advanced);
    props.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(props)
}
