//! Decoded data files kept in memory for lookups (files are immutable, so a file
//! name identifies its content forever).

use crate::data::reader::read_kv_file;
use crate::error::Result;
use crate::row::KeyValue;
use crate::table_info::TableInfo;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Cache of decoded files of one bucket.
#[derive(Debug, Default)]
pub struct FileCache {
    files: HashMap<String, Arc<Vec<KeyValue>>>,
}

impl FileCache {
    pub fn get(&mut self, info: &TableInfo, dir: &Path, name: &str) -> Result<Arc<Vec<KeyValue>>> {
        if let Some(f) = self.files.get(name) {
            return Ok(f.clone());
        }
        let records = Arc::new(read_kv_file(info, &dir.join(name))?);
        self.files.insert(name.to_string(), records.clone());
        Ok(records)
    }

    /// The decoded file if cached (no I/O).
    pub fn peek(&self, name: &str) -> Option<Arc<Vec<KeyValue>>> {
        self.files.get(name).cloned()
    }

    pub fn insert(&mut self, name: &str, records: Arc<Vec<KeyValue>>) {
        self.files.insert(name.to_string(), records);
    }

    /// Drops files that are no longer part of the bucket.
    pub fn retain(&mut self, live: &std::collections::HashSet<&str>) {
        self.files.retain(|name, _| live.contains(name.as_str()));
    }
}
