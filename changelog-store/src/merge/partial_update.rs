//! `partial-update`: non-null fields of newer records overwrite older values.
//!
//! Deletes are not accepted (Paimon's default) unless `ignore-delete` is set;
//! the writer enforces that, so retract records are skipped here.

use super::MergeFunction;
use crate::error::Result;
use crate::row::{Datum, KeyValue, RowKind};
use crate::table_info::TableInfo;

pub(super) struct PartialUpdate {
    row: Option<KeyValue>,
    seq_fields: Vec<usize>,
}

impl PartialUpdate {
    pub(super) fn new(info: &TableInfo) -> Self {
        PartialUpdate { row: None, seq_fields: info.sequence_indices.clone() }
    }
}

impl MergeFunction for PartialUpdate {
    fn reset(&mut self) {
        self.row = None;
    }

    fn add(&mut self, kv: KeyValue) -> Result<()> {
        if !kv.kind.is_add() {
            return Ok(());
        }
        match &mut self.row {
            None => self.row = Some(KeyValue { kind: RowKind::Insert, ..kv }),
            Some(acc) => {
                for (i, d) in kv.value.into_iter().enumerate() {
                    if !matches!(d, Datum::Null) || self.seq_fields.contains(&i) {
                        acc.value[i] = d;
                    }
                }
                acc.seq = kv.seq;
            }
        }
        Ok(())
    }

    fn result(&mut self) -> Option<KeyValue> {
        self.row.take()
    }
}
