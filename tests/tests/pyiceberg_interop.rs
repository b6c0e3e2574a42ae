//! pyiceberg 0.12 (and DuckDB over it), in the venv tests/run.sh creates,
//! reads every Bronze table and returns the same rows as our own scan.
#![allow(clippy::unwrap_used)]

use lakehouse_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn pyiceberg_and_duckdb_read_what_we_wrote() {
    let lake = Lake::sqlite();
    let prefix = unique("py");
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 2).await;
    }
    // With the JSON converter's schema envelope, and a second batch without,
    // so the tables have several snapshots.
    let t1 = generate(&prefix, 6_000, 21, &lake.dir.path().join("t1.json"), &["--with-schema"]);
    let config = lake.config("py", &[], Some(&format!("^{prefix}\\..*")), "");
    ingest_until_idle(&config, "2s");
    let t2 = generate(&prefix, 4_000, 22, &lake.dir.path().join("t2.json"), &[]);
    ingest_until_idle(&config, "2s");

    let catalog = lake.connect().await;
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("tests/run.sh sets LAKEHOUSE_TEST_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/pyiceberg_read.py");
    let mut total = 0;
    for table in catalog.list_tables(Some("bronze")).await.unwrap() {
        let ours = bronze_rows(&scan_all(&catalog, &table).await);
        let out = std::process::Command::new(&python)
            .args([script, "--uri", &lake.sqlalchemy_url(), "--table", &table.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "pyiceberg failed on {table}: {}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let theirs = doc["rows"].as_array().unwrap();
        assert_eq!(theirs.len(), ours.len(), "{table}: row count");
        for (a, b) in ours.iter().zip(theirs) {
            assert_eq!(b["kafka_topic"], a.topic.as_str());
            assert_eq!(b["kafka_partition"], a.partition);
            assert_eq!(b["kafka_offset"], a.offset);
            assert_eq!(b["key"].as_str(), a.key.as_deref(), "{}", a.source_file);
            assert_eq!(b["value"].as_str(), a.value.as_deref(), "{}", a.source_file);
            assert_eq!(b["op"].as_str(), a.op.as_deref(), "{}", a.source_file);
            assert_eq!(b["event_kind"].as_str(), Some(a.event_kind.as_str()));
            assert_eq!(b["record_hash"].as_str(), a.record_hash.as_deref());
        }
        assert_eq!(doc["duckdb_count"].as_u64().unwrap() as usize, ours.len(), "{table}: DuckDB count");
        assert_eq!(doc["duckdb_distinct_coordinates"].as_u64().unwrap() as usize, ours.len());
        let meta = catalog.require_table(&table).await.unwrap().metadata;
        assert_eq!(doc["current_snapshot_id"].as_i64(), meta.current_snapshot_id());
        assert_eq!(doc["snapshot_ids"].as_array().unwrap().len(), meta.snapshots().len());
        assert!(doc["partition_spec"].as_str().unwrap().contains("day"), "{}", doc["partition_spec"]);
        total += ours.len() as u64;
    }
    assert_eq!(total, t1.events + t2.events);
}
