//! `snapshot/snapshot-N`: Paimon's `Snapshot` JSON (version 3).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SNAPSHOT_VERSION: i32 = 3;

/// What a snapshot did. Serialized as Paimon's upper-case enum names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CommitKind {
    Append,
    Compact,
    Overwrite,
    Analyze,
}

/// The JSON document stored in `snapshot/snapshot-N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: i32,
    pub id: i64,
    pub schema_id: i64,
    pub base_manifest_list: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_manifest_list_size: Option<i64>,
    pub delta_manifest_list: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_manifest_list_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog_manifest_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog_manifest_list_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_manifest: Option<String>,
    pub commit_user: String,
    pub commit_identifier: i64,
    pub commit_kind: CommitKind,
    pub time_millis: i64,
    #[serde(default)]
    pub total_record_count: i64,
    #[serde(default)]
    pub delta_record_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog_record_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_row_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl Snapshot {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Json {
            op: "serializing snapshot",
            path: format!("snapshot-{}", self.id).into(),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_snapshot_written_by_pypaimon() {
        let json = r#"{"version": 3, "id": 2, "schemaId": 0,
          "baseManifestList": "manifest-list-a-0", "deltaManifestList": "manifest-list-a-1",
          "totalRecordCount": 7, "deltaRecordCount": 1,
          "commitUser": "u", "commitIdentifier": 9223372036854775807,
          "commitKind": "APPEND", "timeMillis": 1795762591470,
          "baseManifestListSize": 1339, "deltaManifestListSize": 1338,
          "uuid": "1508c90f", "writerVersion": "python-2.1.0"}"#;
        let s: Snapshot = serde_json::from_str(json).expect("parses");
        assert_eq!(s.commit_kind, CommitKind::Append);
        assert_eq!(s.commit_identifier, i64::MAX);
        let back: serde_json::Value = serde_json::from_str(&s.to_json().expect("json")).expect("json");
        assert_eq!(back["commitKind"], "APPEND");
        assert_eq!(back["baseManifestListSize"], 1339);
        assert!(back.get("changelogManifestList").is_none());
    }
}
