//! Avro writer schemas for manifests and manifest lists, field for field as
//! Paimon (Java and pypaimon 2.1.0) write them.

const SIMPLE_STATS_FIELDS: &str = r#"[
  {"name": "_MIN_VALUES", "type": "bytes"},
  {"name": "_MAX_VALUES", "type": "bytes"},
  {"name": "_NULL_COUNTS", "type": ["null", {"type": "array", "items": ["null", "long"]}], "default": null}
]"#;

/// Schema of one record in a `manifest-*` file.
pub fn manifest_entry_schema() -> String {
    format!(
        r#"{{"type": "record", "name": "ManifestEntry", "fields": [
  {{"name": "_VERSION", "type": "int"}},
  {{"name": "_KIND", "type": "int"}},
  {{"name": "_PARTITION", "type": "bytes"}},
  {{"name": "_BUCKET", "type": "int"}},
  {{"name": "_TOTAL_BUCKETS", "type": "int"}},
  {{"name": "_FILE", "type": {{"type": "record", "name": "DataFileMeta", "fields": [
    {{"name": "_FILE_NAME", "type": "string"}},
    {{"name": "_FILE_SIZE", "type": "long"}},
    {{"name": "_ROW_COUNT", "type": "long"}},
    {{"name": "_MIN_KEY", "type": "bytes"}},
    {{"name": "_MAX_KEY", "type": "bytes"}},
    {{"name": "_KEY_STATS", "type": {{"type": "record", "name": "record_KEY_STATS", "fields": {s}}}}},
    {{"name": "_VALUE_STATS", "type": {{"type": "record", "name": "record_VALUE_STATS", "fields": {s}}}}},
    {{"name": "_MIN_SEQUENCE_NUMBER", "type": "long"}},
    {{"name": "_MAX_SEQUENCE_NUMBER", "type": "long"}},
    {{"name": "_SCHEMA_ID", "type": "long"}},
    {{"name": "_LEVEL", "type": "int"}},
    {{"name": "_EXTRA_FILES", "type": {{"type": "array", "items": "string"}}}},
    {{"name": "_CREATION_TIME", "type": ["null", {{"type": "long", "logicalType": "timestamp-millis"}}], "default": null}},
    {{"name": "_DELETE_ROW_COUNT", "type": ["null", "long"], "default": null}},
    {{"name": "_EMBEDDED_FILE_INDEX", "type": ["null", "bytes"], "default": null}},
    {{"name": "_FILE_SOURCE", "type": ["null", "int"], "default": null}},
    {{"name": "_VALUE_STATS_COLS", "type": ["null", {{"type": "array", "items": "string"}}], "default": null}},
    {{"name": "_EXTERNAL_PATH", "type": ["null", "string"], "default": null}},
    {{"name": "_FIRST_ROW_ID", "type": ["null", "long"], "default": null}},
    {{"name": "_WRITE_COLS", "type": ["null", {{"type": "array", "items": "string"}}], "default": null}},
    {{"name": "_WRITE_COLS_SEQUENCES", "type": ["null", {{"type": "array", "items": "long"}}], "default": null}}
  ]}}}}
]}}"#,
        s = SIMPLE_STATS_FIELDS
    )
}

/// Schema of one record in a `manifest-list-*` file.
pub fn manifest_file_meta_schema() -> String {
    format!(
        r#"{{"type": "record", "name": "ManifestFileMeta", "fields": [
  {{"name": "_VERSION", "type": "int"}},
  {{"name": "_FILE_NAME", "type": "string"}},
  {{"name": "_FILE_SIZE", "type": "long"}},
  {{"name": "_NUM_ADDED_FILES", "type": "long"}},
  {{"name": "_NUM_DELETED_FILES", "type": "long"}},
  {{"name": "_PARTITION_STATS", "type": {{"type": "record", "name": "record_PARTITION_STATS", "fields": {s}}}}},
  {{"name": "_SCHEMA_ID", "type": "long"}},
  {{"name": "_MIN_BUCKET", "type": ["null", "int"], "default": null}},
  {{"name": "_MAX_BUCKET", "type": ["null", "int"], "default": null}},
  {{"name": "_MIN_LEVEL", "type": ["null", "int"], "default": null}},
  {{"name": "_MAX_LEVEL", "type": ["null", "int"], "default": null}},
  {{"name": "_MIN_ROW_ID", "type": ["null", "long"], "default": null}},
  {{"name": "_MAX_ROW_ID", "type": ["null", "long"], "default": null}},
  {{"name": "_TOTAL_BUCKETS", "type": ["null", "int"], "default": null}},
  {{"name": "_EXTRA_FILES", "type": ["null", {{"type": "array", "items": "string"}}], "default": null}}
]}}"#,
        s = SIMPLE_STATS_FIELDS
    )
}
