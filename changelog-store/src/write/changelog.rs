//! Changelog production at flush time (`changelog-producer` = `lookup`).

use crate::row::{KeyValue, RowKind};

/// Emits `-U/+U`, `+I` or `-D` for one key from its visible value before and after.
pub fn diff(before: Option<&KeyValue>, after: Option<&KeyValue>, row_deduplicate: bool, out: &mut Vec<KeyValue>) {
    let visible = |kv: Option<&KeyValue>| kv.filter(|k| k.kind.is_add()).cloned();
    match (visible(before), visible(after)) {
        (None, None) => {}
        (None, Some(a)) => out.push(KeyValue { kind: RowKind::Insert, ..a }),
        (Some(b), None) => {
            let seq = after.map_or(b.seq, |a| a.seq);
            out.push(KeyValue { kind: RowKind::Delete, seq, ..b })
        }
        (Some(b), Some(a)) => {
            if row_deduplicate && b.value == a.value {
                return;
            }
            out.push(KeyValue { kind: RowKind::UpdateBefore, seq: a.seq, ..b });
            out.push(KeyValue { kind: RowKind::UpdateAfter, ..a });
        }
    }
}
