//! Incremental reads of a table: the data files each snapshot after a
//! position added, oldest first, read back through the storage layer. On a
//! real SQLite catalog; no broker.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use bronze_ingestor::schema;
use iceberg::spec::{Literal, Struct, TableMetadata};
use lakehouse::catalog::TableName;
use lakehouse::table::commit::{Committer, Operation};
use lakehouse::table::create::load_or_create;
use lakehouse::table::incremental::{IncrementalError, increments, read_data_file};
use lakehouse::table::position::{Offsets, fence_offsets};
use lakehouse_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn each_snapshot_after_a_position_yields_the_files_it_added() {
    let lake = Lake::sqlite();
    let catalog = lake.connect().await;
    let name = TableName::new("bronze", "incremental");
    let mut table = load_or_create(&catalog, &name, &schema::table_spec(90)).await.unwrap();
    let writer = schema::data_file_writer(catalog.file_io().clone(), 1 << 27);
    let committer = Committer::new(catalog.clone());
    let day = Struct::from_iter([Some(Literal::date(20_419))]);
    let tp = ("t".to_string(), 0);
    let none = HashMap::new();
    let mut ids = Vec::new();
    for (from, to) in [(0, 10), (10, 25), (25, 26)] {
        let expected = BTreeMap::from([(tp.clone(), (from > 0).then_some(from))]);
        let advanced = Offsets::from([(tp.clone(), to)]);
        let check = |h: &TableMetadata| fence_offsets(h, "g", &expected, &advanced, &none);
        let files = writer.write(&table.metadata, day.clone(), &[json_rows("t", from, to)]).await.unwrap();
        let done = committer.commit(&table, Operation::Append { files }, &check).await.unwrap();
        ids.push(done.snapshot_id);
        table = done.table;
    }

    let all = increments(catalog.file_io(), &table.metadata, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|i| i.snapshot.snapshot_id()).collect::<Vec<_>>(), ids, "oldest first");
    let mut offsets = Vec::new();
    for inc in &all {
        assert_eq!(inc.files.len(), 1, "each commit added one file, and only it is listed");
        let batches = read_data_file(catalog.file_io(), inc.files[0].file_path(), &["kafka_offset"]).await.unwrap();
        assert_eq!(batches[0].num_columns(), 1, "only the projected column is read");
        for b in &batches {
            offsets.extend(b.column(0).as_primitive::<Int64Type>().values().iter().copied());
        }
    }
    assert_eq!(offsets, (0..26).collect::<Vec<i64>>(), "every row once, in commit order");

    let after_first = increments(catalog.file_io(), &table.metadata, Some(ids[0]), 100).await.unwrap();
    assert_eq!(after_first.iter().map(|i| i.snapshot.snapshot_id()).collect::<Vec<_>>(), ids[1..].to_vec());
    let bounded = increments(catalog.file_io(), &table.metadata, None, 2).await.unwrap();
    assert_eq!(bounded.len(), 2, "at most max_snapshots per call");
    assert!(increments(catalog.file_io(), &table.metadata, Some(ids[2]), 100).await.unwrap().is_empty());

    let err = increments(catalog.file_io(), &table.metadata, Some(42), 100).await.unwrap_err();
    assert!(matches!(err, IncrementalError::PositionNotInHistory { after: 42, .. }), "{err}");
}
