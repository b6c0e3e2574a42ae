//! The PostgreSQL catalog path passes the same ingestion test as SQLite, and
//! pyiceberg reads the result through the same PostgreSQL catalog.
#![allow(clippy::unwrap_used)]

use lakehouse_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn ingestion_through_the_postgres_catalog_is_exactly_once() {
    let lake = Lake::postgres();
    let prefix = unique("pg");
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 3).await;
    }
    let truth = generate(&prefix, 30_000, 5, &lake.dir.path().join("truth.json"), &[]);
    let config = lake.config("pg", &[], Some(&format!("^{prefix}\\..*")), "");

    // Crash once mid-way, then drain: the PostgreSQL CAS path is exercised on restart.
    let log = lake.dir.path().join("ingestor.log");
    let mut child = spawn_ingestor(&config, &log, None);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_out_dead_members();
    ingest_until_idle(&config, "3s");

    let catalog = lake.connect().await;
    let tables = catalog.list_tables(Some("bronze")).await.unwrap();
    assert_eq!(tables.len(), 4, "{tables:?}");
    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_eq!(rows.len() as u64, truth.events);
    assert_matches_truth(&rows, &truth);

    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("tests/run.sh sets LAKEHOUSE_TEST_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/pyiceberg_read.py");
    let table = format!("bronze.{}", lakehouse_generator::TABLES[2]);
    let out = std::process::Command::new(python)
        .args([script, "--uri", &lake.sqlalchemy_url(), "--name", &lake.catalog.name, "--table", &table])
        .output()
        .unwrap();
    assert!(out.status.success(), "pyiceberg failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = truth.topics[&format!("{prefix}.public.orders")].messages;
    assert_eq!(doc["rows"].as_array().unwrap().len() as u64, expected);
    assert_eq!(doc["duckdb_count"].as_u64().unwrap(), expected);
}
