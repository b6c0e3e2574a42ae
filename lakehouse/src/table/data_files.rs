//! Data-file entries as JSON, for carrying them from one commit to another:
//! Silver and Gold write their data files, record the entries in the
//! changelog-store snapshot that points at them, and add them to the Iceberg
//! table from there (also after a crash between the two commits).

use iceberg::spec::{DataFile, TableMetadata, deserialize_data_file_from_json, serialize_data_file_to_json};

/// `files` (written for `metadata`'s default partition spec) as one JSON array.
pub fn encode(metadata: &TableMetadata, files: &[DataFile]) -> iceberg::Result<String> {
    let partition_type = metadata.default_partition_type();
    let format = metadata.format_version();
    let encoded = files
        .iter()
        .map(|f| serialize_data_file_to_json(f.clone(), partition_type, format))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", encoded.join(",")))
}

/// The entries [`encode`] wrote, read against `metadata`'s default spec and schema.
pub fn decode(metadata: &TableMetadata, json: &str) -> Result<Vec<DataFile>, String> {
    let list: Vec<Box<serde_json::value::RawValue>> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON array of data files: {e}"))?;
    list.iter()
        .map(|raw| {
            deserialize_data_file_from_json(
                raw.get(),
                metadata.default_partition_spec_id(),
                metadata.default_partition_type(),
                metadata.current_schema(),
            )
            .map_err(|e| format!("unreadable data file entry: {e}"))
        })
        .collect()
}
