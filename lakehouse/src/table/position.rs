//! The consumed-up-to position every commit carries in its snapshot summary.
//!
//! Bronze stores, per consumer group, the *next* offset of every Kafka
//! partition the table has ever covered, under
//! `lakehouse.kafka-offsets.<group>` as `{"<topic>": {"<partition>": <next>}}`.
//! Each commit writes the full map (the head's map with its own partitions
//! advanced), so the newest snapshot that has the key is the whole truth;
//! snapshots of other operations (compaction, maintenance) may lack it, which
//! is why readers walk the ancestry.
//!
//! Every commit also mirrors its position keys into the table properties
//! ([`is_position_key`]), where they survive what the ancestry may not: an
//! outside engine's rewrite followed by the expiry of our snapshots. Readers
//! use the ancestry first (it follows a rollback), the properties second.
//!
//! Next to the offsets, each commit records the Kafka topic id (KIP-516) of
//! every topic they refer to, under `lakehouse.kafka-topic-ids.<group>` as
//! `{"<topic>": "<id>"}` (ids as Kafka's tools print them). A topic deleted and
//! created again under its name gets a new id; offsets stored for the old one
//! must not be applied to it ([`committed_topic_ids`], [`fence_topic_ids`]).
//!
//! A table that has snapshots but no position anywhere is never treated as
//! new: consuming from the log start would duplicate everything it holds.
//! [`committed_offsets`] refuses with [`PositionError::Missing`]; an
//! unparsable position is [`PositionError::Unreadable`]. Neither is guessed around.

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

/// Prefix of every summary key that carries a worker's consumed position.
pub const POSITION_KEY_PREFIX: &str = "lakehouse.kafka-offsets.";

/// Prefix of the summary keys that record which topic (by id) the offsets are of.
pub const TOPIC_IDS_KEY_PREFIX: &str = "lakehouse.kafka-topic-ids.";

/// Summary key of the topic ids a consumer group's offsets refer to.
pub fn topic_ids_key(group: &str) -> String {
    format!("{TOPIC_IDS_KEY_PREFIX}{group}")
}

/// `topic → topic id` (Kafka's printed form).
pub type TopicIds = BTreeMap<String, String>;

/// Whether a snapshot-summary key carries a position (offsets, or the topic
/// ids they refer to), which the commit layer mirrors into the table properties.
pub fn is_position_key(key: &str) -> bool {
    key.starts_with(POSITION_KEY_PREFIX) || key.starts_with(TOPIC_IDS_KEY_PREFIX)
}

/// The topic ids recorded with `group`'s offsets: the newest in the ancestry,
/// else the table properties. Empty when none was ever recorded (tables
/// written before ids were, or by a broker without them).
pub fn committed_topic_ids(metadata: &TableMetadata, group: &str) -> Result<TopicIds, PositionError> {
    let key = topic_ids_key(group);
    let unreadable = |place: String, value: &str| PositionError::Unreadable {
        location: metadata.location().to_string(),
        place,
        key: key.clone(),
        value: value.chars().take(200).collect(),
    };
    if let Some((snapshot_id, v)) = newest_in_ancestry(metadata, &key) {
        return serde_json::from_str(v).map_err(|_| unreadable(format!("snapshot {snapshot_id}"), v));
    }
    if let Some(v) = metadata.properties().get(&key) {
        return serde_json::from_str(v).map_err(|_| unreadable("the table properties".into(), v));
    }
    Ok(TopicIds::new())
}

/// The topic-id half of a Bronze commit's fencing, run on every head tried:
/// each topic's recorded id must still be the one this writer positioned
/// against (`expected`, `None` = none recorded); then the head's ids with
/// `current` applied are the summary property to write.
pub fn fence_topic_ids(
    head: &TableMetadata,
    group: &str,
    expected: &BTreeMap<String, Option<String>>,
    current: &TopicIds,
) -> Result<(String, String), crate::table::commit::Fenced> {
    let mut ids = committed_topic_ids(head, group).map_err(|e| crate::table::commit::Fenced(e.to_string()))?;
    for (topic, want) in expected {
        let now = ids.get(topic);
        if now != want.as_ref() {
            return Err(crate::table::commit::Fenced(format!(
                "{topic}: the table records topic id {}, this batch was positioned against {}",
                now.map_or("none", String::as_str),
                want.as_deref().unwrap_or("none")
            )));
        }
    }
    ids.extend(current.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok((topic_ids_key(group), serde_json::to_string(&ids).expect("a map of strings serializes")))
}

/// Why a table's committed position cannot be given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PositionError {
    #[error(
        "table at {location}: {place} carries an unreadable position under {key} ({value:?}); refusing to guess \
         where to consume from: repair the value or roll the table back to a snapshot whose position reads"
    )]
    Unreadable { location: String, place: String, key: String, value: String },
    #[error(
        "table at {location} has {snapshots} snapshot(s) but none of them, nor the table properties, carries the \
         position of consumer group {group:?} ({key}): consuming from the log start would duplicate what the table \
         holds. If the table was written by another group, configure that group; if its history was rewritten and \
         expired, set the table property {key} to the next offsets (same JSON as a snapshot summary's) and restart"
    )]
    Missing { location: String, snapshots: usize, group: String, key: String },
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

/// The value of summary key `key` in the newest snapshot of the head's
/// ancestry that has it, with that snapshot's id. Snapshots of other writers
/// (compaction, maintenance) may lack a worker's keys, hence the walk.
pub fn newest_in_ancestry<'m>(metadata: &'m TableMetadata, key: &str) -> Option<(i64, &'m str)> {
    let mut cursor = metadata.current_snapshot();
    while let Some(snapshot) = cursor {
        if let Some(v) = snapshot.summary().additional_properties.get(key) {
            return Some((snapshot.snapshot_id(), v.as_str()));
        }
        cursor = snapshot.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id));
    }
    None
}

/// The committed offsets of `group` at the table's current snapshot, found
/// by walking the snapshot ancestry from the head, then in the table
/// properties. Empty for a table without snapshots.
pub fn committed_offsets(metadata: &TableMetadata, group: &str) -> Result<Offsets, PositionError> {
    let key = offsets_key(group);
    let unreadable = |place: String, value: &str| PositionError::Unreadable {
        location: metadata.location().to_string(),
        place,
        key: key.clone(),
        value: value.chars().take(200).collect(),
    };
    if let Some((snapshot_id, v)) = newest_in_ancestry(metadata, &key) {
        return decode_offsets(v).ok_or_else(|| unreadable(format!("snapshot {snapshot_id}"), v));
    }
    if let Some(v) = metadata.properties().get(&key) {
        return decode_offsets(v).ok_or_else(|| unreadable("the table properties".into(), v));
    }
    let snapshots = metadata.snapshots().len();
    if snapshots == 0 {
        return Ok(Offsets::new());
    }
    Err(PositionError::Missing { location: metadata.location().to_string(), snapshots, group: group.to_string(), key })
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
    let committed = committed_offsets(head, group).map_err(|e| crate::table::commit::Fenced(e.to_string()))?;
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
