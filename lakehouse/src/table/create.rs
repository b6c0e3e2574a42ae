//! Creating tables: first metadata file, then the catalog row.

use std::collections::HashMap;

use iceberg::MetadataLocation;
use iceberg::spec::{FormatVersion, Schema, SortOrder, TableMetadataBuilder, UnboundPartitionSpec};

use crate::catalog::{CatalogError, LoadedTable, SqlCatalog, TableName};

/// What a new table looks like.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub schema: Schema,
    pub partition_spec: UnboundPartitionSpec,
    pub properties: HashMap<String, String>,
}

/// Loads `name`, creating it from `spec` if it does not exist. Safe against a
/// concurrent creator: whoever loses the insert loads the winner's table.
pub async fn load_or_create(
    catalog: &SqlCatalog,
    name: &TableName,
    spec: &TableSpec,
) -> Result<LoadedTable, CatalogError> {
    load_or_create_with_clock(catalog, name, spec, &crate::table::clock::SystemClock).await
}

/// [`load_or_create`] with the creation time from `clock` (tests and
/// benchmarks that replay history on a [`crate::table::clock::ManualClock`]).
pub async fn load_or_create_with_clock(
    catalog: &SqlCatalog,
    name: &TableName,
    spec: &TableSpec,
    clock: &dyn crate::table::clock::Clock,
) -> Result<LoadedTable, CatalogError> {
    if let Some(t) = catalog.load_table(name).await? {
        return Ok(t);
    }
    let location = catalog.default_location(name);
    // Bounded history unless the spec says otherwise (table/retention.rs).
    let mut properties = crate::table::retention::worker_defaults();
    properties.extend(spec.properties.clone());
    let metadata = TableMetadataBuilder::new(
        spec.schema.clone(),
        spec.partition_spec.clone(),
        SortOrder::unsorted_order(),
        location.clone(),
        FormatVersion::V2,
        properties,
    )
    .and_then(|b| b.build())
    .and_then(|b| crate::table::commit::stamped(b.metadata, clock.now_ms()))
    .map_err(|source| CatalogError::Metadata { doing: "build", path: location.clone(), source })?;
    let metadata_location = MetadataLocation::new_with_metadata(&location, &metadata);
    let path = metadata_location.to_string();
    metadata.write_to(catalog.file_io(), &metadata_location).await.map_err(|source| CatalogError::Metadata {
        doing: "write",
        path: path.clone(),
        source,
    })?;
    match catalog.register_table(name, &path).await {
        Ok(()) => {
            tracing::info!(table = %name, location = %location, "created table");
            catalog.require_table(name).await
        }
        Err(CatalogError::AlreadyExists(_)) => {
            let _ = catalog.file_io().delete(&path).await;
            catalog.require_table(name).await
        }
        Err(e) => Err(e),
    }
}
