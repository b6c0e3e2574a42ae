//! Iceberg schema evolution of a Silver table: columns added at the end of the
//! current schema with new field ids, or columns widened by a type promotion
//! (metadata-only commits, no snapshot), published with the catalog's
//! compare-and-swap like every other commit.
//!
//! The commit layer in `lakehouse::table` commits snapshots only; these are the
//! schema changes Silver makes by itself (`evolve = "add-columns"` and
//! `"widen-types"`), so they live here. It writes the next metadata file through the storage layer (`FileIO`)
//! and swaps the catalog pointer; on a lost swap it reloads and looks again, so
//! two refiners adding the same column agree on one field id.

use std::str::FromStr;
use std::sync::Arc;

use iceberg::MetadataLocation;
use iceberg::spec::{NestedField, Schema, TableMetadataBuilder, Type};
use lakehouse::catalog::{LoadedTable, SqlCatalog};

use super::MaterializeError;

/// Adds `columns` (name, Iceberg type), optional, to the current schema of the
/// table `head` names; names the head already has are skipped. Returns the new
/// head and the field id of every requested column (new or already there).
pub async fn add_columns(
    catalog: &SqlCatalog,
    head: &LoadedTable,
    columns: &[(String, Type)],
) -> Result<(LoadedTable, Vec<(String, i32)>), MaterializeError> {
    let entity = head.name.name.clone();
    publish(catalog, head, "columns added", |current, last_column_id| {
        let mut fields: Vec<Arc<NestedField>> = current.as_struct().fields().to_vec();
        let mut next_id = last_column_id;
        let mut ids = Vec::new();
        let mut added = false;
        for (name, ty) in columns {
            if let Some(f) = current.field_by_name(name) {
                if *f.field_type != *ty {
                    return Err(MaterializeError::Invalid {
                        entity: entity.clone(),
                        message: format!("column {name} exists as {} where {ty} was to be added", f.field_type),
                    });
                }
                ids.push((name.clone(), f.id));
                continue;
            }
            next_id += 1;
            fields.push(Arc::new(NestedField::optional(next_id, name, ty.clone())));
            ids.push((name.clone(), next_id));
            added = true;
        }
        Ok((added.then_some(fields), ids))
    })
    .await
}

/// Promotes the types of `columns` (name, wider Iceberg type) in the current
/// schema of the table `head` names: the same field ids, names and
/// optionality, Iceberg's allowed promotions only (int → long, float → double,
/// decimal(P,S) → decimal(P',S) with P' ≥ P). A metadata-only commit; data
/// files keep their types and readers promote them. Columns already of the
/// type are left alone.
pub async fn widen_columns(
    catalog: &SqlCatalog,
    head: &LoadedTable,
    columns: &[(String, Type)],
) -> Result<LoadedTable, MaterializeError> {
    use iceberg::spec::PrimitiveType as P;
    let entity = head.name.name.clone();
    let (head, ()) = publish(catalog, head, "columns widened", |current, _| {
        let mut fields: Vec<Arc<NestedField>> = current.as_struct().fields().to_vec();
        let mut changed = false;
        for (name, ty) in columns {
            let invalid = |message: String| MaterializeError::Invalid { entity: entity.clone(), message };
            let slot = fields
                .iter_mut()
                .find(|f| &f.name == name)
                .ok_or_else(|| invalid(format!("column {name} to widen is not in the table")))?;
            let (Type::Primitive(from), Type::Primitive(to)) = (&*slot.field_type, ty) else {
                return Err(invalid(format!("column {name}: only primitive types widen")));
            };
            let allowed = match (from, to) {
                _ if from == to => continue,
                (P::Int, P::Long) | (P::Float, P::Double) => true,
                (P::Decimal { precision: p, scale: s }, P::Decimal { precision: q, scale: t }) => s == t && p <= q,
                _ => false,
            };
            if !allowed {
                return Err(invalid(format!("column {name} is {from}, which Iceberg does not promote to {to}")));
            }
            let mut f = NestedField::clone(slot);
            f.field_type = Box::new(ty.clone());
            *slot = Arc::new(f);
            changed = true;
        }
        Ok((changed.then_some(fields), ()))
    })
    .await?;
    Ok(head)
}

/// Publishes the schema `change` makes of the current one as the table's new
/// current schema (a metadata-only commit through the catalog's
/// compare-and-swap). `change` gets the current schema and the table's last
/// column id and returns the new fields (`None`: nothing to change) and a
/// result; on a lost swap it runs again on the reloaded table.
async fn publish<T>(
    catalog: &SqlCatalog,
    head: &LoadedTable,
    what: &'static str,
    change: impl Fn(&Schema, i32) -> Result<(Option<Vec<Arc<NestedField>>>, T), MaterializeError>,
) -> Result<(LoadedTable, T), MaterializeError> {
    let entity = head.name.name.clone();
    let ice = |what: &'static str| {
        let entity = entity.clone();
        move |source| MaterializeError::Iceberg { entity: entity.clone(), what, source }
    };
    let mut head = catalog.require_table(&head.name).await?;
    for _attempt in 0..16 {
        let current = head.metadata.current_schema();
        let (fields, out) = change(current, head.metadata.last_column_id())?;
        let Some(fields) = fields else {
            return Ok((head, out));
        };
        let schema = Schema::builder()
            .with_schema_id(current.schema_id() + 1)
            .with_identifier_field_ids(current.identifier_field_ids())
            .with_fields(fields)
            .build()
            .map_err(ice("building the evolved schema"))?;
        let metadata = TableMetadataBuilder::new_from_metadata(
            head.metadata.as_ref().clone(),
            Some(head.metadata_location.clone()),
        )
        .add_current_schema(schema)
        .and_then(|b| b.build())
        .map_err(ice("adding the schema to the table metadata"))?
        .metadata;
        let location = MetadataLocation::from_str(&head.metadata_location)
            .map_err(ice("parsing the metadata location"))?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(catalog.file_io(), &location).await.map_err(ice("writing the metadata file"))?;
        let new_location = location.to_string();
        lakehouse::table::durable::sync_all([new_location.clone()]).await.map_err(|e| MaterializeError::Invalid {
            entity: entity.clone(),
            message: format!("syncing {new_location}: {e}"),
        })?;
        if catalog.swap_metadata(&head.name, &head.metadata_location, &new_location).await? {
            tracing::info!(table = %head.name, schema_id = metadata.current_schema_id(), "Silver schema evolved: {what}");
            let evolved =
                LoadedTable { name: head.name.clone(), metadata_location: new_location, metadata: Arc::new(metadata) };
            return Ok((evolved, out));
        }
        let _ = catalog.file_io().delete(&new_location).await;
        head = catalog.require_table(&head.name).await?;
    }
    Err(MaterializeError::Invalid {
        entity,
        message: format!("{what}: lost the catalog's compare-and-swap 16 times in a row"),
    })
}
