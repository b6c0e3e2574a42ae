//! RowDelta end to end on a real SQLite catalog and local warehouse: data
//! files appended, then an upsert (new data file + position deletes) and a
//! pure delete committed through [`Committer`], read back with iceberg-rust's
//! own scan, which applies position deletes. Also checks what the commit wrote:
//! summary, sequence numbers, manifest contents.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use futures::TryStreamExt;
use iceberg::spec::{
    DataContentType, DataFile, Datum, Literal, ManifestContentType, ManifestStatus, NestedField,
    Operation as SnapshotOp, PrimitiveType, Schema, Struct, TableMetadata, Transform, Type, UnboundPartitionField,
    UnboundPartitionSpec,
};

use crate::catalog::{LoadedTable, SqlCatalog, TableName};
use crate::config::CatalogConfig;
use crate::table::commit::{CommitError, Committed, Committer, Operation, manifests_of};
use crate::table::create::{TableSpec, load_or_create};
use crate::table::position_delete::{FILE_PATH_FIELD_ID, POS_FIELD_ID, PositionDeleteWriter, ReferencedFile};
use crate::table::writer::{Codec, DataFileWriter};

/// Rows per appended data file.
pub(super) const N: i64 = 10;

/// `(id, region, v)`.
pub(super) type Row = (i64, String, String);

pub(super) struct Lake {
    pub(super) _dir: tempfile::TempDir,
    pub(super) catalog: SqlCatalog,
    pub(super) committer: Committer,
    pub(super) data: DataFileWriter,
    pub(super) deletes: PositionDeleteWriter,
}

pub(super) async fn lake() -> Lake {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = SqlCatalog::connect(&CatalogConfig {
        name: "lakehouse".into(),
        url: format!("sqlite://{}", dir.path().join("catalog.db").display()),
        warehouse: dir.path().join("warehouse").display().to_string(),
    })
    .await
    .expect("catalog opens");
    catalog.create_namespace_if_absent("silver").await.expect("namespace");
    let file_io = catalog.file_io().clone();
    Lake {
        _dir: dir,
        committer: Committer::new(catalog.clone()),
        data: DataFileWriter::new(file_io.clone(), Codec::Zstd(3), 1 << 27),
        deletes: PositionDeleteWriter::new(file_io),
        catalog,
    }
}

/// `id long, region string, v string`, partitioned by `identity(region)`.
pub(super) fn table_spec() -> TableSpec {
    let schema = Schema::builder()
        .with_schema_id(0)
        .with_fields([
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "region", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(3, "v", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    let partition_spec = UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_fields([UnboundPartitionField {
            source_id: 2,
            field_id: Some(1000),
            name: "region".into(),
            transform: Transform::Identity,
        }])
        .expect("partition field")
        .build();
    TableSpec { schema, partition_spec, properties: HashMap::new() }
}

pub(super) fn region(r: &str) -> Struct {
    Struct::from_iter([Some(Literal::string(r))])
}

pub(super) fn batch(metadata: &TableMetadata, rows: &[Row]) -> RecordBatch {
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(metadata.current_schema()).expect("arrow schema"));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

pub(super) fn rows(ids: std::ops::Range<i64>, region: &str, prefix: &str) -> Vec<Row> {
    ids.map(|i| (i, region.to_string(), format!("{prefix}{i}"))).collect()
}

/// Every live row, sorted by id, as iceberg-rust's scan returns it.
pub(super) async fn scan(catalog: &SqlCatalog, table: &LoadedTable) -> Vec<Row> {
    let t = table.to_table(catalog.file_io()).expect("table");
    let batches: Vec<RecordBatch> =
        t.scan().build().expect("scan").to_arrow().await.expect("arrow stream").try_collect().await.expect("batches");
    let mut out = Vec::new();
    for b in &batches {
        let id = b.column_by_name("id").expect("id").as_primitive::<Int64Type>();
        let region = b.column_by_name("region").expect("region").as_string::<i32>();
        let v = b.column_by_name("v").expect("v").as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push((id.value(i), region.value(i).to_string(), v.value(i).to_string()));
        }
    }
    out.sort();
    out
}

pub(super) fn no_position(_: &TableMetadata) -> Result<HashMap<String, String>, crate::table::commit::Fenced> {
    Ok(HashMap::from([("lakehouse.test".to_string(), "row-delta".to_string())]))
}

pub(super) async fn commit(lake: &Lake, head: &LoadedTable, op: Operation) -> Committed {
    lake.committer.commit(head, op, &no_position).await.expect("commit")
}

fn summary(c: &Committed) -> (SnapshotOp, HashMap<String, String>) {
    summary_of(&c.table)
}

pub(super) fn summary_of(table: &LoadedTable) -> (SnapshotOp, HashMap<String, String>) {
    let s = table.metadata.current_snapshot().expect("a current snapshot").summary();
    (s.operation.clone(), s.additional_properties.clone())
}

fn prop<'a>(props: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    props.get(key).map(String::as_str)
}

/// Appends file A (eu, ids 0..N) and file B (us, ids N..2N).
pub(super) async fn appended(lake: &Lake) -> (LoadedTable, DataFile, DataFile) {
    let table = load_or_create(&lake.catalog, &TableName::new("silver", "people"), &table_spec()).await.expect("table");
    let m = &table.metadata;
    let mut a = lake.data.write(m, region("eu"), &[batch(m, &rows(0..N, "eu", "a"))]).await.expect("file A");
    let mut b = lake.data.write(m, region("us"), &[batch(m, &rows(N..2 * N, "us", "b"))]).await.expect("file B");
    assert_eq!((a.len(), b.len()), (1, 1), "one data file each");
    let (a, b) = (a.remove(0), b.remove(0));
    let c = commit(lake, &table, Operation::Append { files: vec![a.clone(), b.clone()] }).await;
    assert_eq!(c.table.metadata.last_sequence_number(), 1);
    (c.table, a, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn row_delta_upserts_and_deletes_rows_that_iceberg_rust_scans_away() {
    let lake = lake().await;
    let (head, a, b) = appended(&lake).await;
    let file_io = lake.catalog.file_io();
    let mut expected: Vec<Row> = rows(0..N, "eu", "a").into_iter().chain(rows(N..2 * N, "us", "b")).collect();
    assert_eq!(scan(&lake.catalog, &head).await, expected);
    let before = summary_of(&head).1;

    // Upsert: ids 1 and 3 (rows 1 and 3 of A) get new values in file C; id 7
    // (row 7 of A) and id N (row 0 of B) are deleted. Unsorted, one duplicate.
    let m = &head.metadata;
    let updated = batch(m, &[(1, "eu".into(), "a1-v2".into()), (3, "eu".into(), "a3-v2".into())]);
    let c = lake.data.write(m, region("eu"), &[updated]).await.expect("file C").remove(0);
    let (pa, pb) = (a.file_path().to_string(), b.file_path().to_string());
    let deletes = vec![(pa.clone(), 7), (pa.clone(), 1), (pb.clone(), 0), (pa.clone(), 3), (pa.clone(), 1)];
    let targets = [ReferencedFile::from(&a), ReferencedFile::from(&b)];
    let delete_files = lake.deletes.write(m, &targets, deletes).await.expect("position deletes");
    assert_eq!(delete_files.len(), 2, "one delete file per partition");
    let added_size: u64 = delete_files.iter().chain([&c]).map(DataFile::file_size_in_bytes).sum();

    let op = Operation::RowDelta { data_files: vec![c.clone()], delete_files };
    assert_eq!(op.snapshot_operation(), SnapshotOp::Overwrite);
    let upserted = commit(&lake, &head, op).await;
    let head = upserted.table.clone();

    // iceberg-rust's scan applies the position deletes.
    expected.retain(|r| ![1, 3, 7, N].contains(&r.0));
    expected.extend([(1, "eu".into(), "a1-v2".into()), (3, "eu".into(), "a3-v2".into())]);
    expected.sort();
    assert_eq!(scan(&lake.catalog, &head).await, expected);
    assert_eq!(expected.len() as i64, 2 * N - 4 + 2);

    // Sequence numbers: the snapshot takes last + 1.
    let meta = &head.metadata;
    assert_eq!(meta.last_sequence_number(), 2);
    let snapshot = meta.current_snapshot().expect("snapshot");
    assert_eq!(snapshot.sequence_number(), 2);
    assert_eq!(snapshot.snapshot_id(), upserted.snapshot_id);

    // Summary, as Java writes it for a RowDelta.
    let (operation, s) = summary(&upserted);
    assert_eq!(operation, SnapshotOp::Overwrite);
    for (key, value) in [
        ("added-data-files", "1"),
        ("added-records", "2"),
        ("added-delete-files", "2"),
        ("added-position-delete-files", "2"),
        ("added-position-deletes", "4"),
        ("changed-partition-count", "2"),
        ("total-data-files", "3"),
        ("total-records", &(2 * N + 2).to_string()),
        ("total-delete-files", "2"),
        ("total-position-deletes", "4"),
        ("total-equality-deletes", "0"),
        ("lakehouse.test", "row-delta"),
    ] {
        assert_eq!(prop(&s, key), Some(value), "summary {key}: {s:?}");
    }
    assert_eq!(prop(&s, "added-files-size"), Some(added_size.to_string().as_str()));
    let total_before: u64 = prop(&before, "total-files-size").expect("total size").parse().expect("number");
    assert_eq!(prop(&s, "total-files-size"), Some((total_before + added_size).to_string().as_str()));

    // Manifests: the appended one carried forward, plus a data and a delete
    // manifest of this snapshot, both at sequence number 2.
    let manifests = manifests_of(file_io, meta, snapshot).await.expect("manifest list");
    assert_eq!(manifests.len(), 3, "{manifests:?}");
    let kinds: Vec<_> = manifests.iter().map(|m| (m.content, m.sequence_number, m.added_snapshot_id)).collect();
    let appended_id =
        meta.snapshot_by_id(snapshot.parent_snapshot_id().expect("parent")).expect("parent").snapshot_id();
    assert!(kinds.contains(&(ManifestContentType::Data, 1, appended_id)), "{kinds:?}");
    assert!(kinds.contains(&(ManifestContentType::Data, 2, upserted.snapshot_id)), "{kinds:?}");
    assert!(kinds.contains(&(ManifestContentType::Deletes, 2, upserted.snapshot_id)), "{kinds:?}");
    let delete_manifest =
        manifests.iter().find(|m| m.content == ManifestContentType::Deletes).expect("delete manifest");
    assert_eq!((delete_manifest.added_files_count, delete_manifest.added_rows_count), (Some(2), Some(4)));
    let manifest = delete_manifest.load_manifest(file_io).await.expect("delete manifest loads");
    assert_eq!(manifest.metadata().content, ManifestContentType::Deletes);
    let mut seen = Vec::new();
    for e in manifest.entries() {
        assert_eq!(e.status(), ManifestStatus::Added);
        assert_eq!(e.sequence_number(), Some(2), "entries inherit the snapshot's sequence number");
        assert_eq!(e.snapshot_id(), Some(upserted.snapshot_id));
        let f = e.data_file();
        assert_eq!(f.content_type(), DataContentType::PositionDeletes);
        assert_eq!(f.sort_order_id(), None);
        let referenced = f.referenced_data_file().expect("one data file per delete file here");
        assert_eq!(f.lower_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&referenced)));
        assert_eq!(f.upper_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&referenced)));
        let pos = (f.lower_bounds().get(&POS_FIELD_ID).cloned(), f.upper_bounds().get(&POS_FIELD_ID).cloned());
        seen.push((referenced, f.partition().clone(), f.record_count(), pos));
    }
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (pa.clone(), region("eu"), 3, (Some(Datum::long(1)), Some(Datum::long(7)))),
        (pb.clone(), region("us"), 1, (Some(Datum::long(0)), Some(Datum::long(0)))),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(seen, want);

    // A pure delete: the updated id 1 (row 0 of C) goes away, nothing is added.
    let deletes = lake.deletes.write(meta, &[ReferencedFile::from(&c)], vec![(c.file_path().to_string(), 0)]).await;
    let op = Operation::RowDelta { data_files: vec![], delete_files: deletes.expect("position deletes") };
    let deleted = commit(&lake, &head, op).await;
    expected.retain(|r| r.0 != 1);
    assert_eq!(scan(&lake.catalog, &deleted.table).await, expected);
    let (operation, s) = summary(&deleted);
    assert_eq!(operation, SnapshotOp::Delete);
    assert_eq!(deleted.table.metadata.last_sequence_number(), 3);
    for (key, value) in [
        ("added-delete-files", Some("1")),
        ("added-position-deletes", Some("1")),
        ("added-data-files", None),
        ("added-records", None),
        ("total-data-files", Some("3")),
        ("total-delete-files", Some("3")),
        ("total-position-deletes", Some("5")),
    ] {
        assert_eq!(prop(&s, key), value, "summary {key}: {s:?}");
    }
    let snapshot = deleted.table.metadata.current_snapshot().expect("snapshot");
    let manifests = manifests_of(file_io, &deleted.table.metadata, snapshot).await.expect("manifest list");
    assert_eq!(manifests.len(), 4, "no data manifest for a pure delete");
    assert_eq!(manifests.iter().filter(|m| m.content == ManifestContentType::Deletes).count(), 2);

    // Time travel to the append still sees every row (deletes are snapshot-scoped).
    let t = deleted.table.to_table(file_io).expect("table");
    let at_append = t.scan().snapshot_id(appended_id).build().expect("scan").to_arrow().await.expect("stream");
    let n: usize = at_append.try_collect::<Vec<_>>().await.expect("batches").iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n as i64, 2 * N);
}

#[tokio::test(flavor = "multi_thread")]
async fn row_delta_with_only_data_files_is_an_append() {
    let lake = lake().await;
    let (head, _, _) = appended(&lake).await;
    let m = &head.metadata;
    let d = lake.data.write(m, region("us"), &[batch(m, &rows(100..103, "us", "d"))]).await.expect("file D");
    let c = commit(&lake, &head, Operation::RowDelta { data_files: d, delete_files: vec![] }).await;
    let (operation, s) = summary(&c);
    assert_eq!(operation, SnapshotOp::Append);
    assert_eq!(prop(&s, "total-records"), Some((2 * N + 3).to_string().as_str()));
    assert_eq!(prop(&s, "added-delete-files"), None);
    assert_eq!(scan(&lake.catalog, &c.table).await.len() as i64, 2 * N + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn row_delta_refuses_empty_and_misplaced_files() {
    let lake = lake().await;
    let (head, a, _) = appended(&lake).await;
    let targets = [ReferencedFile::from(&a)];
    let deletes = lake.deletes.write(&head.metadata, &targets, vec![(a.file_path().to_string(), 0)]).await;
    let deletes = deletes.expect("position deletes");

    let empty = Operation::RowDelta { data_files: vec![], delete_files: vec![] };
    let err = lake.committer.commit(&head, empty, &no_position).await.expect_err("nothing to commit");
    assert!(matches!(err, CommitError::Empty { .. }), "{err}");

    let swapped = Operation::RowDelta { data_files: deletes.clone(), delete_files: vec![] };
    let err = lake.committer.commit(&head, swapped, &no_position).await.expect_err("deletes as data");
    assert!(matches!(&err, CommitError::InvalidFile { path, .. } if path == deletes[0].file_path()), "{err}");

    let swapped = Operation::RowDelta { data_files: vec![], delete_files: vec![a.clone()] };
    let err = lake.committer.commit(&head, swapped, &no_position).await.expect_err("data as deletes");
    assert!(matches!(&err, CommitError::InvalidFile { path, .. } if path == a.file_path()), "{err}");

    let mut unpartitioned = iceberg::spec::DataFileBuilder::default();
    unpartitioned
        .content(DataContentType::PositionDeletes)
        .file_path(format!("{}/data/x-deletes.parquet", head.metadata.location()))
        .file_format(iceberg::spec::DataFileFormat::Parquet)
        .record_count(1)
        .file_size_in_bytes(100);
    let unpartitioned = unpartitioned.build().expect("entry");
    let op = Operation::RowDelta { data_files: vec![], delete_files: vec![unpartitioned] };
    let err = lake.committer.commit(&head, op, &no_position).await.expect_err("no partition on a partitioned table");
    assert!(matches!(&err, CommitError::InvalidFile { path, .. } if path.ends_with("x-deletes.parquet")), "{err}");

    // Nothing was published.
    let now = lake.catalog.require_table(&head.name).await.expect("table");
    assert_eq!(now.metadata_location, head.metadata_location);
}
