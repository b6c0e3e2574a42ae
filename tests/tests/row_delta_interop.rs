//! pyiceberg 0.12 (and DuckDB over its scan), in the venv tests/run.sh
//! creates, reads a table changed by RowDelta commits (new data files plus
//! position deletes, then a pure delete) and sees exactly the rows our model
//! says survive, at the head and at the earlier snapshot, with the snapshot
//! summaries and manifests we wrote. Needs only LAKEHOUSE_TEST_PYTHON (no
//! broker).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use iceberg::spec::{
    DataFile, Literal, NestedField, PrimitiveType, Schema, Struct, TableMetadata, Transform, Type,
    UnboundPartitionField, UnboundPartitionSpec,
};
use lakehouse::catalog::{LoadedTable, TableName};
use lakehouse::table::commit::{Committer, Fenced, Operation};
use lakehouse::table::create::{TableSpec, load_or_create};
use lakehouse::table::position_delete::{PositionDeleteWriter, ReferencedFile};
use lakehouse::table::writer::{Codec, DataFileWriter};
use lakehouse_tests::*;

/// Rows per appended data file (several Parquet pages, so positions matter).
const N: i64 = 3_000;

/// id → (region, v): the rows a reader must see.
type Model = BTreeMap<i64, (String, String)>;

fn table_spec() -> TableSpec {
    let schema = Schema::builder()
        .with_schema_id(0)
        .with_fields([
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "region", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(3, "v", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .unwrap();
    let partition_spec = UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_fields([UnboundPartitionField {
            source_id: 2,
            field_id: Some(1000),
            name: "region".into(),
            transform: Transform::Identity,
        }])
        .unwrap()
        .build();
    let properties = HashMap::from([("write.parquet.compression-codec".to_string(), "zstd".to_string())]);
    TableSpec { schema, partition_spec, properties }
}

fn region(r: &str) -> Struct {
    Struct::from_iter([Some(Literal::string(r))])
}

/// The rows of one data file, in file order (position = index).
fn batch(metadata: &TableMetadata, rows: &[(i64, String, String)]) -> RecordBatch {
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(metadata.current_schema()).unwrap());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

async fn write(writer: &DataFileWriter, head: &LoadedTable, part: &str, rows: &[(i64, String, String)]) -> DataFile {
    let mut files = writer.write(&head.metadata, region(part), &[batch(&head.metadata, rows)]).await.unwrap();
    assert_eq!(files.len(), 1);
    files.remove(0)
}

fn no_position(_: &TableMetadata) -> Result<HashMap<String, String>, Fenced> {
    Ok(HashMap::new())
}

/// Our own scan (iceberg-rust) as a model.
fn as_model(batches: &[RecordBatch]) -> Model {
    let mut out = Model::new();
    for b in batches {
        let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let region = b.column_by_name("region").unwrap().as_string::<i32>();
        let v = b.column_by_name("v").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            let dup = out.insert(id.value(i), (region.value(i).to_string(), v.value(i).to_string()));
            assert!(dup.is_none(), "id {} twice", id.value(i));
        }
    }
    out
}

/// Runs the pyiceberg reader at `snapshot` (head if `None`) and checks its rows against `model`.
fn check_pyiceberg(lake: &Lake, table: &TableName, snapshot: Option<i64>, model: &Model) -> serde_json::Value {
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("tests/run.sh sets LAKEHOUSE_TEST_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/row_delta_read.py");
    let mut cmd = std::process::Command::new(&python);
    cmd.args([script, "--uri", &lake.sqlalchemy_url(), "--table", &table.to_string()]);
    if let Some(id) = snapshot {
        cmd.args(["--snapshot-id", &id.to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "pyiceberg failed on {table}: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: Model = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), (r[1].as_str().unwrap().to_string(), r[2].as_str().unwrap().to_string())))
        .collect();
    assert_eq!(theirs.len(), doc["rows"].as_array().unwrap().len(), "pyiceberg returned an id twice");
    let missing: Vec<_> = model.keys().filter(|k| !theirs.contains_key(k)).take(10).collect();
    let extra: Vec<_> = theirs.keys().filter(|k| !model.contains_key(k)).take(10).collect();
    assert!(missing.is_empty() && extra.is_empty(), "pyiceberg at {snapshot:?}: missing {missing:?}, extra {extra:?}");
    assert_eq!(&theirs, model, "pyiceberg rows at {snapshot:?}");
    assert_eq!(doc["duckdb_count"].as_u64().unwrap() as usize, model.len(), "DuckDB count at {snapshot:?}");
    assert_eq!(doc["duckdb_id_sum"].as_i64().unwrap(), model.keys().sum::<i64>(), "DuckDB sum(id) at {snapshot:?}");
    doc
}

#[tokio::test(flavor = "multi_thread")]
async fn pyiceberg_and_duckdb_apply_our_position_deletes() {
    let lake = Lake::sqlite();
    let catalog = lake.connect().await;
    catalog.create_namespace_if_absent("silver").await.unwrap();
    let name = TableName::new("silver", "people");
    let head = load_or_create(&catalog, &name, &table_spec()).await.unwrap();
    let file_io = catalog.file_io().clone();
    let data = DataFileWriter::new(file_io.clone(), Codec::Zstd(3), 1 << 27);
    let deletes = PositionDeleteWriter::new(file_io.clone());
    let committer = Committer::new(catalog.clone());

    // Snapshot 1 (append): A = eu ids 0..N, B = us ids N..2N.
    let rows_a: Vec<_> = (0..N).map(|i| (i, "eu".to_string(), format!("a{i}"))).collect();
    let rows_b: Vec<_> = (N..2 * N).map(|i| (i, "us".to_string(), format!("b{i}"))).collect();
    let a = write(&data, &head, "eu", &rows_a).await;
    let b = write(&data, &head, "us", &rows_b).await;
    let op = Operation::Append { files: vec![a.clone(), b.clone()] };
    let head = committer.commit(&head, op, &no_position).await.unwrap().table;
    let mut model: Model = rows_a.iter().chain(&rows_b).map(|(i, r, v)| (*i, (r.clone(), v.clone()))).collect();

    // Snapshot 2 (overwrite): every 10th row of A is updated (new value in C,
    // position delete of the old row), every 7th row of B is deleted.
    let updated: Vec<_> =
        rows_a.iter().filter(|r| r.0 % 10 == 0).map(|(i, r, _)| (*i, r.clone(), format!("a{i}-v2"))).collect();
    let c = write(&data, &head, "eu", &updated).await;
    let mut removed: Vec<(String, i64)> = updated.iter().map(|r| (a.file_path().to_string(), r.0)).collect();
    removed.extend((0..N).filter(|p| p % 7 == 3).map(|p| (b.file_path().to_string(), p)));
    removed.reverse(); // the writer sorts
    let targets = [ReferencedFile::from(&a), ReferencedFile::from(&b)];
    let delete_files = deletes.write(&head.metadata, &targets, removed.clone()).await.unwrap();
    let op = Operation::RowDelta { data_files: vec![c.clone()], delete_files };
    let upsert = committer.commit(&head, op, &no_position).await.unwrap();
    let head = upsert.table;
    for (i, r, v) in &updated {
        model.insert(*i, (r.clone(), v.clone()));
    }
    for p in (0..N).filter(|p| p % 7 == 3) {
        model.remove(&(N + p));
    }
    let after_upsert = model.clone();

    // Snapshot 3 (delete): rows 0..3 of C (updated ids 0, 10, 20) are deleted.
    let gone: Vec<_> = (0..3).map(|p| (c.file_path().to_string(), p)).collect();
    let delete_files = deletes.write(&head.metadata, &[ReferencedFile::from(&c)], gone).await.unwrap();
    let op = Operation::RowDelta { data_files: vec![], delete_files };
    let head = committer.commit(&head, op, &no_position).await.unwrap().table;
    for i in [0, 10, 20] {
        model.remove(&i);
    }

    // Our own reader first (iceberg-rust applies position deletes too).
    assert_eq!(as_model(&scan_all(&catalog, &name).await), model, "iceberg-rust scan");

    // pyiceberg + DuckDB at the head.
    let doc = check_pyiceberg(&lake, &name, None, &model);
    assert_eq!(doc["current_snapshot_id"].as_i64(), head.metadata.current_snapshot_id());
    assert_eq!(doc["last_sequence_number"].as_i64(), Some(3));
    // The metadata file lists snapshots in no particular order.
    let mut snapshots = doc["snapshots"].as_array().unwrap().clone();
    snapshots.sort_by_key(|s| s["sequence_number"].as_i64());
    let ops: Vec<_> = snapshots.iter().map(|s| s["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["append", "overwrite", "delete"]);
    let seqs: Vec<_> = snapshots.iter().map(|s| s["sequence_number"].as_i64()).collect();
    assert_eq!(seqs, [Some(1), Some(2), Some(3)]);
    assert_eq!(snapshots[2]["snapshot_id"].as_i64(), head.metadata.current_snapshot_id());
    assert_eq!(snapshots[2]["parent_snapshot_id"].as_i64(), Some(upsert.snapshot_id));
    let summary = &snapshots[2]["summary"];
    let deleted_rows = removed.len() + 3;
    assert_eq!(summary["total-position-deletes"], deleted_rows.to_string().as_str(), "{summary}");
    assert_eq!(summary["total-delete-files"], "3", "{summary}");
    assert_eq!(summary["total-data-files"], "3", "{summary}");
    let delete_files = doc["delete_files"].as_array().unwrap();
    assert_eq!(delete_files.len(), 3, "{delete_files:?}");
    assert!(delete_files.iter().all(|f| f["content"] == 1), "{delete_files:?}");
    let listed: u64 = delete_files.iter().map(|f| f["record_count"].as_u64().unwrap()).sum();
    assert_eq!(listed as usize, deleted_rows);
    let manifests: Vec<_> = doc["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["content"].as_i64().unwrap(), m["sequence_number"].as_i64().unwrap()))
        .collect();
    let mut sorted = manifests.clone();
    sorted.sort();
    assert_eq!(sorted, [(0, 1), (0, 2), (1, 2), (1, 3)], "{manifests:?}");

    // And at the upsert snapshot (time travel): the pure delete is not applied there.
    check_pyiceberg(&lake, &name, Some(upsert.snapshot_id), &after_upsert);
}
