//! `first-row`: the oldest record wins; later ones for the same key are ignored.

use super::MergeFunction;
use crate::error::Result;
use crate::row::KeyValue;

pub(super) struct FirstRow {
    first: Option<KeyValue>,
    ignore_delete: bool,
}

impl FirstRow {
    pub(super) fn new(ignore_delete: bool) -> Self {
        FirstRow { first: None, ignore_delete }
    }
}

impl MergeFunction for FirstRow {
    fn reset(&mut self) {
        self.first = None;
    }

    fn add(&mut self, kv: KeyValue) -> Result<()> {
        if !kv.kind.is_add() {
            // Deletes are rejected at write time unless ignored.
            let _ = self.ignore_delete;
            return Ok(());
        }
        if self.first.is_none() {
            self.first = Some(kv);
        }
        Ok(())
    }

    fn result(&mut self) -> Option<KeyValue> {
        self.first.take()
    }
}
