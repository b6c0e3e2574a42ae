//! A writer whose position is stale is fenced: its commit is refused, nothing
//! is duplicated. Deterministic, at the commit-layer level, on a real catalog.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::RecordBatch;
use bronze_ingestor::rows::{Message, RowsBuilder};
use bronze_ingestor::schema;
use iceberg::spec::{Literal, Struct};
use lakehouse::catalog::TableName;
use lakehouse::config::ValueFormat;
use lakehouse::table::commit::{CommitError, Committer, Operation};
use lakehouse::table::create::load_or_create;
use lakehouse::table::position::{Offsets, committed_offsets, fence_offsets};
use lakehouse_tests::*;

fn batch(topic: &str, partition: i32, from: i64, to: i64) -> RecordBatch {
    let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema::schema()).unwrap());
    let mut b = RowsBuilder::new(arrow);
    for offset in from..to {
        let value = format!("{{\"op\":\"c\",\"n\":{offset}}}");
        b.append(
            &Message {
                topic,
                partition,
                offset,
                timestamp_ms: None,
                key: None,
                value: Some(value.as_bytes()),
                headers_json: None,
            },
            ValueFormat::Debezium,
            "test",
            1_764_000_000_000_000,
        );
    }
    b.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn zombie_commit_is_refused_and_nothing_is_duplicated() {
    for lake in [Lake::sqlite(), Lake::postgres()] {
        let catalog = lake.connect().await;
        let name = TableName::new("bronze", "fenced");
        let table = load_or_create(&catalog, &name, &schema::table_spec(90)).await.unwrap();
        let writer = schema::data_file_writer(catalog.file_io().clone(), 1 << 27);
        let committer = Committer::new(catalog.clone());
        let tp = ("t".to_string(), 0);
        let day = Struct::from_iter([Some(Literal::date(20_419))]);
        let no_extra = HashMap::new();

        // Two writers both believe partition 0 starts at nothing (offset 0).
        let expected = BTreeMap::from([(tp.clone(), None)]);
        let adv_a = Offsets::from([(tp.clone(), 100)]);
        let files_a = writer.write(&table.metadata, day.clone(), &[batch("t", 0, 0, 100)]).await.unwrap();
        let check_a = |h: &iceberg::spec::TableMetadata| fence_offsets(h, "g", &expected, &adv_a, &no_extra);
        let a = committer.commit(&table, Operation::Append { files: files_a }, &check_a).await.unwrap();
        // Each commit publishes a new metadata file (version + 1), never rewrites one.
        assert!(table.metadata_location.contains("/metadata/00000-"), "{}", table.metadata_location);
        assert!(a.table.metadata_location.contains("/metadata/00001-"), "{}", a.table.metadata_location);

        // B read the same range from the same start, on the old head: it is a zombie.
        let adv_b = Offsets::from([(tp.clone(), 100)]);
        let files_b = writer.write(&table.metadata, day.clone(), &[batch("t", 0, 0, 100)]).await.unwrap();
        let check_b = |h: &iceberg::spec::TableMetadata| fence_offsets(h, "g", &expected, &adv_b, &no_extra);
        let err = committer.commit(&table, Operation::Append { files: files_b }, &check_b).await.unwrap_err();
        assert!(matches!(err, CommitError::Fenced { .. }), "expected fenced, got {err}");
        assert!(err.to_string().contains("t/0"), "{err}");

        // The head still has A's 100 rows, once, and A's offsets.
        let head = catalog.require_table(&name).await.unwrap();
        assert_eq!(head.metadata.current_snapshot_id(), Some(a.snapshot_id));
        assert_eq!(committed_offsets(&head.metadata, "g").unwrap()[&tp], 100);
        let rows = bronze_rows(&scan_all(&catalog, &name).await);
        assert_eq!(rows.len(), 100);
        assert_exactly_once(&rows);

        // A writer that starts where the table is (100), building on the head
        // after A while D commits partition 1 first: C loses the CAS, reloads,
        // re-checks its position (still valid) and goes through.
        let tp1 = ("t".to_string(), 1);
        let expected_d = BTreeMap::from([(tp1.clone(), None)]);
        let adv_d = Offsets::from([(tp1.clone(), 7)]);
        let files_d = writer.write(&a.table.metadata, day.clone(), &[batch("t", 1, 0, 7)]).await.unwrap();
        let check_d = |h: &iceberg::spec::TableMetadata| fence_offsets(h, "g", &expected_d, &adv_d, &no_extra);
        committer.commit(&a.table, Operation::Append { files: files_d }, &check_d).await.unwrap();

        let expected_c = BTreeMap::from([(tp.clone(), Some(100))]);
        let adv_c = Offsets::from([(tp.clone(), 150)]);
        let files_c = writer.write(&a.table.metadata, day.clone(), &[batch("t", 0, 100, 150)]).await.unwrap();
        let check_c = |h: &iceberg::spec::TableMetadata| fence_offsets(h, "g", &expected_c, &adv_c, &no_extra);
        let c = committer.commit(&a.table, Operation::Append { files: files_c }, &check_c).await.unwrap();
        assert_eq!(c.conflicts, 1, "the stale base lost one compare-and-swap, then re-checked and won");
        let offsets = committed_offsets(&c.table.metadata, "g").unwrap();
        assert_eq!(offsets[&tp], 150);
        assert_eq!(offsets[&tp1], 7, "D's partition survives C's commit");
        let rows = bronze_rows(&scan_all(&catalog, &name).await);
        assert_eq!(rows.len(), 157);
        assert_exactly_once(&rows);
        let head = catalog.require_table(&name).await.unwrap();
        let summary = &head.metadata.current_snapshot().unwrap().summary().additional_properties;
        assert_eq!(summary["total-records"], "157");
        assert_eq!(summary["added-records"], "50");
    }
}
