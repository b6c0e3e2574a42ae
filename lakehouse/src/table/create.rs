//! Creating tables: first metadata file, then the catalog row.

use std::collections::HashMap;

use iceberg::MetadataLocation;
use iceberg::spec::{
    FormatVersion, NullOrder, Schema, SortDirection, SortField, SortOrder, TableMetadataBuilder, Transform,
    UnboundPartitionSpec,
};

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

/// [`load_or_create`] for a table whose writer sorts the rows of each data
/// file by `sort_by` (ascending, nulls first): a new table declares that sort
/// order in its metadata, so engines can rely on it (Spark's and Trino's
/// sorted writes and merges use it). An existing table is loaded as it is.
pub async fn load_or_create_sorted(
    catalog: &SqlCatalog,
    name: &TableName,
    spec: &TableSpec,
    sort_by: &[String],
) -> Result<LoadedTable, CatalogError> {
    create(catalog, name, spec, &crate::table::clock::SystemClock, sort_by).await
}

/// [`load_or_create`] with the creation time from `clock` (tests and
/// benchmarks that replay history on a [`crate::table::clock::ManualClock`]).
pub async fn load_or_create_with_clock(
    catalog: &SqlCatalog,
    name: &TableName,
    spec: &TableSpec,
    clock: &dyn crate::table::clock::Clock,
) -> Result<LoadedTable, CatalogError> {
    create(catalog, name, spec, clock, &[]).await
}

async fn create(
    catalog: &SqlCatalog,
    name: &TableName,
    spec: &TableSpec,
    clock: &dyn crate::table::clock::Clock,
    sort_by: &[String],
) -> Result<LoadedTable, CatalogError> {
    if let Some(t) = catalog.load_table(name).await? {
        return Ok(t);
    }
    let location = catalog.default_location(name);
    // Bounded history unless the spec says otherwise (table/retention.rs).
    let mut properties = crate::table::retention::worker_defaults();
    properties.extend(spec.properties.clone());
    let sort_order = sort_order(&spec.schema, sort_by).map_err(|source| CatalogError::Metadata {
        doing: "build",
        path: location.clone(),
        source,
    })?;
    let metadata = TableMetadataBuilder::new(
        spec.schema.clone(),
        spec.partition_spec.clone(),
        sort_order,
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

/// Ascending, nulls-first identity sort by `columns` (unsorted when empty).
fn sort_order(schema: &Schema, columns: &[String]) -> Result<SortOrder, iceberg::Error> {
    if columns.is_empty() {
        return Ok(SortOrder::unsorted_order());
    }
    let mut order = SortOrder::builder();
    order.with_order_id(1);
    for c in columns {
        let field = schema.field_by_name(c).ok_or_else(|| {
            iceberg::Error::new(iceberg::ErrorKind::DataInvalid, format!("sort column {c} is not in the schema"))
        })?;
        order.with_sort_field(
            SortField::builder()
                .source_id(field.id)
                .transform(Transform::Identity)
                .direction(SortDirection::Ascending)
                .null_order(NullOrder::First)
                .build(),
        );
    }
    order.build(schema)
}
