//! Table directory layout: `<warehouse>/<db>.db/<table>/{schema,snapshot,manifest,bucket-N}`.

use crate::options::DEFAULT_PARTITION_NAME;
use crate::row::Datum;
use std::path::{Path, PathBuf};

/// Paths of one table.
#[derive(Debug, Clone)]
pub struct TablePaths {
    root: PathBuf,
}

impl TablePaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TablePaths { root: root.into() }
    }

    /// `<warehouse>/<db>.db/<table>`, the layout of Paimon's filesystem catalog.
    pub fn in_warehouse(warehouse: &Path, database: &str, table: &str) -> Self {
        TablePaths::new(warehouse.join(format!("{database}.db")).join(table))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn schema_dir(&self) -> PathBuf {
        self.root.join("schema")
    }

    pub fn schema_file(&self, id: i64) -> PathBuf {
        self.schema_dir().join(format!("schema-{id}"))
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshot")
    }

    pub fn snapshot_file(&self, id: i64) -> PathBuf {
        self.snapshot_dir().join(format!("snapshot-{id}"))
    }

    pub fn latest_hint(&self) -> PathBuf {
        self.snapshot_dir().join("LATEST")
    }

    pub fn earliest_hint(&self) -> PathBuf {
        self.snapshot_dir().join("EARLIEST")
    }

    pub fn manifest_dir(&self) -> PathBuf {
        self.root.join("manifest")
    }

    pub fn manifest_file(&self, name: &str) -> PathBuf {
        self.manifest_dir().join(name)
    }

    pub fn consumer_dir(&self) -> PathBuf {
        self.root.join("consumer")
    }

    pub fn consumer_file(&self, id: &str) -> PathBuf {
        self.consumer_dir().join(format!("consumer-{id}"))
    }

    /// `[k=v/...]bucket-N` relative to the table root.
    pub fn bucket_dir(&self, partition: &[(String, Datum)], bucket: i32) -> PathBuf {
        let mut p = self.root.clone();
        for (name, value) in partition {
            p.push(format!("{name}={}", partition_value_string(value)));
        }
        p.push(format!("bucket-{bucket}"));
        p
    }
}

/// How a partition value is written in a directory name (Paimon legacy partition names).
pub fn partition_value_string(d: &Datum) -> String {
    match d {
        Datum::Null => DEFAULT_PARTITION_NAME.to_string(),
        Datum::Bool(b) => b.to_string(),
        Datum::Int(i) => i.to_string(),
        Datum::Long(l) => l.to_string(),
        Datum::Float(f) => f.to_string(),
        Datum::Double(f) => f.to_string(),
        Datum::String(s) if s.trim().is_empty() => DEFAULT_PARTITION_NAME.to_string(),
        Datum::String(s) => s.clone(),
        Datum::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Datum::Decimal(d) => d.to_string(),
    }
}

/// A fresh file name `<prefix>-<uuid>-<n><suffix>` as Paimon names data, changelog and manifest files.
pub fn new_file_name(prefix: &str, uuid: &uuid::Uuid, n: u64, suffix: &str) -> String {
    format!("{prefix}-{uuid}-{n}{suffix}")
}
