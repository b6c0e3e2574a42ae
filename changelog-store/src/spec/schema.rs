//! `schema/schema-N`: Paimon's `TableSchema` JSON.

use crate::error::{Error, Result};
use crate::spec::types::DataType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Current `TableSchema` format version written by Paimon.
pub const SCHEMA_VERSION: i32 = 3;

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataField {
    pub id: i32,
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: DataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The JSON document stored in `schema/schema-N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    #[serde(default = "default_version")]
    pub version: i32,
    pub id: i64,
    pub fields: Vec<DataField>,
    pub highest_field_id: i32,
    pub partition_keys: Vec<String>,
    pub primary_keys: Vec<String>,
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub comment: Option<String>,
    pub time_millis: i64,
}

fn default_version() -> i32 {
    SCHEMA_VERSION
}

impl TableSchema {
    /// Builds schema 0 from columns, keys and options; validates the key columns and
    /// forces primary-key columns to NOT NULL as Paimon does.
    pub fn new(
        columns: Vec<(String, DataType)>,
        partition_keys: Vec<String>,
        primary_keys: Vec<String>,
        options: BTreeMap<String, String>,
        time_millis: i64,
    ) -> Result<Self> {
        if primary_keys.is_empty() {
            return Err(Error::InvalidSchema(
                "a primary key is required (append-only tables are not supported)".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (name, _) in &columns {
            if !seen.insert(name.as_str()) {
                return Err(Error::InvalidSchema(format!("duplicate column `{name}`")));
            }
            if name.starts_with("_KEY_") || ["_SEQUENCE_NUMBER", "_VALUE_KIND"].contains(&name.as_str()) {
                return Err(Error::InvalidSchema(format!("column name `{name}` is reserved")));
            }
        }
        for k in primary_keys.iter().chain(partition_keys.iter()) {
            if !seen.contains(k.as_str()) {
                return Err(Error::InvalidSchema(format!("key column `{k}` is not a column")));
            }
        }
        for p in &partition_keys {
            if !primary_keys.contains(p) {
                return Err(Error::InvalidSchema(format!("partition key `{p}` must be part of the primary key")));
            }
        }
        if primary_keys.iter().all(|k| partition_keys.contains(k)) {
            return Err(Error::InvalidSchema(
                "the primary key must contain a column that is not a partition key".into(),
            ));
        }
        let fields: Vec<DataField> = columns
            .into_iter()
            .enumerate()
            .map(|(i, (name, ty))| {
                let ty = if primary_keys.contains(&name) { ty.not_null() } else { ty };
                DataField { id: i as i32, name, data_type: ty, description: None }
            })
            .collect();
        Ok(TableSchema {
            version: SCHEMA_VERSION,
            id: 0,
            highest_field_id: fields.len() as i32 - 1,
            fields,
            partition_keys,
            primary_keys,
            options,
            comment: None,
            time_millis,
        })
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Json {
            op: "serializing schema",
            path: format!("schema-{}", self.id).into(),
            source: e,
        })
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Primary-key columns that are not partition columns: the LSM key (`_KEY_*`).
    pub fn trimmed_primary_keys(&self) -> Vec<String> {
        self.primary_keys.iter().filter(|k| !self.partition_keys.contains(k)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_schema_written_by_pypaimon() {
        let json = r#"{"version": 3, "id": 0, "fields": [
            {"id": 0, "name": "id", "type": "BIGINT NOT NULL"},
            {"id": 1, "name": "name", "type": "STRING"}],
            "highestFieldId": 1, "partitionKeys": [], "primaryKeys": ["id"],
            "options": {"bucket": "2"}, "comment": null, "timeMillis": 1795762591442}"#;
        let s: TableSchema = serde_json::from_str(json).expect("parses");
        assert_eq!(s.fields[0].data_type.to_string(), "BIGINT NOT NULL");
        let back: serde_json::Value = serde_json::from_str(&s.to_json().expect("json")).expect("json");
        assert_eq!(back["fields"][1]["type"], "STRING");
        assert_eq!(back["highestFieldId"], 1);
        assert_eq!(back["primaryKeys"][0], "id");
    }

    #[test]
    fn validates_keys() {
        let cols = vec![("a".to_string(), DataType::parse("INT").expect("t"))];
        assert!(TableSchema::new(cols.clone(), vec![], vec!["b".into()], BTreeMap::new(), 0).is_err());
        let s = TableSchema::new(cols, vec![], vec!["a".into()], BTreeMap::new(), 0).expect("ok");
        assert!(!s.fields[0].data_type.nullable);
    }
}
