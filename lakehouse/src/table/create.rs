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
    if let Some(t) = catalog.load_table(name).await? {
        return Ok(t);
    }
    let location = catalog.default_location(name);
    let metadata = TableMetadataBuilder::new(
        spec.schema.clone(),
        spec.partition_spec.clone(),
        SortOrder::unsorted_order(),
        location.clone(),
        FormatVersion::V2,
        spec.properties.clone(),
    )
    .and_then(|b| b.build())
    .map_err(|source| CatalogError::Metadata { doing: "build", path: location.clone(), source })?
    .metadata;
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
