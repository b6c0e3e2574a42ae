//! `deduplicate`: the newest record wins (a `-D` removes the key).

use super::MergeFunction;
use crate::error::Result;
use crate::row::KeyValue;

pub(super) struct Deduplicate {
    latest: Option<KeyValue>,
    ignore_delete: bool,
}

impl Deduplicate {
    pub(super) fn new(ignore_delete: bool) -> Self {
        Deduplicate { latest: None, ignore_delete }
    }
}

impl MergeFunction for Deduplicate {
    fn reset(&mut self) {
        self.latest = None;
    }

    fn add(&mut self, kv: KeyValue) -> Result<()> {
        if self.ignore_delete && !kv.kind.is_add() {
            return Ok(());
        }
        self.latest = Some(kv);
        Ok(())
    }

    fn result(&mut self) -> Option<KeyValue> {
        self.latest.take()
    }
}
