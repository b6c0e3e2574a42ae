//! Committed positions survive what an outside engine may do to a table, and a
//! table whose positions are gone or unreadable is never taken for a new one
//! (that would re-ingest the whole log). At the commit-layer level, on a real
//! SQLite catalog; no broker.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use bronze_ingestor::schema;
use iceberg::MetadataLocation;
use iceberg::spec::{Literal, Struct, TableMetadata, TableMetadataBuilder};
use lakehouse::catalog::{LoadedTable, SqlCatalog, TableName};
use lakehouse::table::commit::{Committer, Fenced, Operation};
use lakehouse::table::create::load_or_create;
use lakehouse::table::position::{Offsets, PositionError, committed_offsets, fence_offsets, offsets_key};
use lakehouse_tests::*;

/// Replaces the table's metadata as an outside engine or an operator would
/// (expire snapshots, edit properties): a new metadata file, swapped in.
async fn rewrite(
    catalog: &SqlCatalog,
    t: &LoadedTable,
    edit: impl FnOnce(TableMetadataBuilder) -> TableMetadataBuilder,
) {
    let builder =
        TableMetadataBuilder::new_from_metadata(t.metadata.as_ref().clone(), Some(t.metadata_location.clone()));
    let metadata = edit(builder).build().unwrap().metadata;
    let location =
        MetadataLocation::from_str(&t.metadata_location).unwrap().with_next_version().with_new_metadata(&metadata);
    metadata.write_to(catalog.file_io(), &location).await.unwrap();
    assert!(catalog.swap_metadata(&t.name, &t.metadata_location, &location.to_string()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn positions_survive_outside_rewrites_and_are_never_guessed() {
    let lake = Lake::sqlite();
    let catalog = lake.connect().await;
    let name = TableName::new("bronze", "positions");
    let table = load_or_create(&catalog, &name, &schema::table_spec(90)).await.unwrap();
    assert_eq!(committed_offsets(&table.metadata, "g").unwrap(), Offsets::new(), "a table without snapshots is new");
    let writer = schema::data_file_writer(catalog.file_io().clone(), 1 << 27);
    let committer = Committer::new(catalog.clone());
    let day = Struct::from_iter([Some(Literal::date(20_419))]);
    let tp = ("t".to_string(), 0);

    // Our commit: the position goes into the summary and the table properties.
    let expected = BTreeMap::from([(tp.clone(), None)]);
    let advanced = Offsets::from([(tp.clone(), 10)]);
    let none = HashMap::new();
    let check = |h: &TableMetadata| fence_offsets(h, "g", &expected, &advanced, &none);
    let files = writer.write(&table.metadata, day.clone(), &[json_rows("t", 0, 10)]).await.unwrap();
    let ours = committer.commit(&table, Operation::Append { files }, &check).await.unwrap();
    assert!(ours.table.metadata.properties().contains_key(&offsets_key("g")), "the position is mirrored");

    // An outside engine appends (no position in its summary): the ancestry still has ours.
    let outside = |_: &TableMetadata| Ok::<_, Fenced>(HashMap::new());
    let files = writer.write(&ours.table.metadata, day.clone(), &[json_rows("t", 100, 101)]).await.unwrap();
    let theirs = committer.commit(&ours.table, Operation::Append { files }, &outside).await.unwrap();
    assert_eq!(committed_offsets(&theirs.table.metadata, "g").unwrap()[&tp], 10);

    // ...and our snapshots are expired: the table properties still carry the position.
    let our_id = ours.snapshot_id;
    rewrite(&catalog, &theirs.table, |b| b.remove_snapshots(&[our_id])).await;
    let head = catalog.require_table(&name).await.unwrap();
    assert!(head.metadata.snapshot_by_id(our_id).is_none());
    assert_eq!(committed_offsets(&head.metadata, "g").unwrap()[&tp], 10, "found in the table properties");

    // Without the property too: refused, never "start from the log start".
    rewrite(&catalog, &head, |b| b.remove_properties(&[offsets_key("g")]).unwrap()).await;
    let head = catalog.require_table(&name).await.unwrap();
    let err = committed_offsets(&head.metadata, "g").unwrap_err();
    assert!(matches!(err, PositionError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("\"g\""), "{err}");
    // A writer positioned from nothing cannot commit on such a head either.
    let files = writer.write(&head.metadata, day.clone(), &[json_rows("t", 0, 10)]).await.unwrap();
    let refused = committer.commit(&head, Operation::Append { files }, &check).await;
    assert!(refused.is_err(), "a commit on a table without positions must be fenced");

    // An unreadable position is an error, not a reason to walk on to an older one.
    let garbage = HashMap::from([(offsets_key("g"), "{not json".to_string())]);
    rewrite(&catalog, &head, |b| b.set_properties(garbage).unwrap()).await;
    let head = catalog.require_table(&name).await.unwrap();
    let err = committed_offsets(&head.metadata, "g").unwrap_err();
    assert!(matches!(err, PositionError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("table properties"), "{err}");
}
