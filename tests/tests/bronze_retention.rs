//! Bronze stays bounded while it runs, and nothing downstream notices:
//! bronze-ingestor's own commits expire snapshots (aggressive retention set on
//! the tables with `lakehouse properties`) while silver-refiner's consumer
//! registration holds what it has not read, then
//! - pyiceberg and DuckDB read every Bronze table whole, each message once, with
//!   the generator's checksums;
//! - the expired tables keep their positions: a further ingest run adds nothing;
//! - silver-refiner, which read Bronze before the expiry, reads the rest after it
//!   from the snapshot its consumer registration kept, and Silver equals the
//!   generator's final state.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use lakehouse::catalog::TableName;
use lakehouse::table::commit::manifests_of;
use lakehouse::table::consumer::{ConsumerPosition, consumers};
use lakehouse_tests::*;

const ENTITIES: [&str; 4] = ["customers", "products", "orders", "order_items"];

/// `(key, value)` of messages to produce.
type Messages = Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>;

fn run(bin_name: &str, args: &[&str], config: &std::path::Path, log: &std::path::Path) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let status = Command::new(bin(bin_name))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .unwrap();
    assert!(status.success(), "{bin_name} {args:?} failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn bronze_expires_itself_and_readers_silver_and_positions_keep_working() {
    let lake = Lake::sqlite();
    let prefix = unique("ret");
    let truth_path = lake.dir.path().join("truth.json");
    let truth = generate(&prefix, 3_000, 5, &truth_path, &["--truth-state"]);
    let contracts =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/contracts/commerce.toml"))
            .unwrap();
    let contracts_path = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts_path, contracts).unwrap();
    let silver = format!(
        "[silver]\ncontracts = {:?}\nstore = {:?}\nmax_snapshots_per_poll = 100000\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
        contracts_path.display().to_string(),
        lake.dir.path().join("store").display().to_string(),
    );
    let config = lake.config("ret", &[], Some(&format!("^{prefix}\\..*")), &silver);
    let log = lake.dir.path().join("workers.log");
    let silver_run = || run("silver-refiner", &["run", "--exit-when-idle", "2s"], &config, &log);

    // 1. Bronze, then Silver reads all of it and registers on each Bronze table.
    ingest_until_idle(&config, "1s");
    silver_run();
    let catalog = lake.connect().await;
    for e in ENTITIES {
        let t = catalog.require_table(&TableName::new("bronze", e)).await.unwrap();
        let c = consumers(&t.metadata).unwrap();
        assert_eq!(
            c.get(&format!("silver-refiner.{e}")),
            Some(&ConsumerPosition::Snapshot(t.metadata.current_snapshot_id().unwrap())),
            "silver-refiner registered on bronze.{e} at the snapshot it read up to"
        );
    }

    // 2. Aggressive retention: nothing is too young to expire, 2 snapshots kept,
    // expiry at every commit.
    for e in ENTITIES {
        let out = Command::new(bin("lakehouse"))
            .arg("--config")
            .arg(&config)
            .args(["properties", &format!("bronze.{e}")])
            .args(["--set", "history.expire.max-snapshot-age-ms=0", "--set", "history.expire.min-snapshots-to-keep=2"])
            .args(["--set", "lakehouse.expire.min-batch=1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A codec the writers do not have is refused before anything is committed.
    let refused = Command::new(bin("lakehouse"))
        .arg("--config")
        .arg(&config)
        .args(["properties", "bronze.orders", "--set", "write.parquet.compression-codec=gzip"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("write.parquet.compression-codec = \"gzip\""), "{stderr}");
    let shown = Command::new(bin("lakehouse"))
        .arg("--config")
        .arg(&config)
        .args(["properties", "bronze.orders"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("write.parquet.compression-codec=snappy\n"), "unchanged");

    // 3. Four rounds of Bronze commits, Silver catching up after the second:
    // re-deliveries of earlier messages of every topic (Silver keeps the newest
    // change per key by LSN, so its final state stays the truth's).
    let originals: BTreeMap<&str, Vec<BronzeRow>> = {
        let mut m = BTreeMap::new();
        for e in ENTITIES {
            m.insert(e, bronze_rows(&scan_all(&catalog, &TableName::new("bronze", e)).await));
        }
        m
    };
    let mut redelivered = 0u64;
    let mut registered: BTreeMap<&str, i64> = BTreeMap::new();
    for round in 0..4 {
        for e in ENTITIES {
            let mut by_partition: BTreeMap<i32, Messages> = BTreeMap::new();
            for r in originals[e].iter().skip(round * 10).take(10) {
                by_partition
                    .entry(r.partition)
                    .or_default()
                    .push((r.key.clone().map(String::into_bytes), r.value.clone().map(String::into_bytes)));
            }
            for (p, msgs) in by_partition {
                redelivered += msgs.len() as u64;
                produce(&format!("{prefix}.public.{e}"), p, &msgs).await;
            }
        }
        ingest_until_idle(&config, "1s");
        if round == 1 {
            silver_run();
            for e in ENTITIES {
                let t = catalog.require_table(&TableName::new("bronze", e)).await.unwrap();
                registered.insert(e, t.metadata.current_snapshot_id().unwrap());
            }
        }
    }

    let mut total = 0;
    for e in ENTITIES {
        let name = TableName::new("bronze", e);
        let t = catalog.require_table(&name).await.unwrap();
        let m = &t.metadata;
        let chain = lakehouse::table::incremental::snapshots_after(m, None).unwrap();
        let oldest = &chain[0];
        let expired = oldest.parent_snapshot_id().is_some_and(|p| m.snapshot_by_id(p).is_none());
        // Silver's registered snapshot survived, and nothing before it is needed.
        assert!(m.snapshot_by_id(registered[e]).is_some(), "bronze.{e}: the consumer's snapshot was kept");
        assert!(expired, "bronze.{e}: the snapshots before the consumer's and the newest 2 expired");
        let manifests = manifests_of(catalog.file_io(), m, m.current_snapshot().unwrap()).await.unwrap();
        let dir = std::path::Path::new(m.location().trim_start_matches("file://")).join("metadata");
        let json = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|f| f.as_ref().unwrap().path().to_string_lossy().ends_with(".metadata.json"))
            .count();
        assert!(json <= 21, "bronze.{e}: {json} metadata files, previous-versions-max is 20");
        eprintln!(
            "bronze.{e}: {} snapshots kept, history expired: {expired}, {} manifests",
            m.snapshots().len(),
            manifests.len()
        );

        // pyiceberg and DuckDB read the whole table.
        let ours = bronze_rows(&scan_all(&catalog, &name).await);
        let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("tests/run.sh sets LAKEHOUSE_TEST_PYTHON");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/pyiceberg_read.py");
        let out = Command::new(&python)
            .args([script, "--uri", &lake.sqlalchemy_url(), "--table", &name.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "pyiceberg failed on {name}: {}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["rows"].as_array().unwrap().len(), ours.len(), "{name}: pyiceberg's row count");
        assert_eq!(doc["duckdb_count"].as_u64().unwrap() as usize, ours.len(), "{name}: DuckDB's count");
        assert_eq!(doc["duckdb_distinct_coordinates"].as_u64().unwrap() as usize, ours.len(), "{name}: once each");
        assert_eq!(doc["snapshot_ids"].as_array().unwrap().len(), m.snapshots().len());
        total += ours.len() as u64;
    }
    assert_eq!(total, truth.events + redelivered, "every message once, re-deliveries included");

    // 4. Positions survived the expiry: another run finds nothing to add.
    ingest_until_idle(&config, "1s");
    let all = all_bronze_rows(&catalog).await;
    let rows: Vec<BronzeRow> = all.values().flatten().cloned().collect();
    assert_eq!(rows.len() as u64, total, "an ingest after the expiry re-read nothing");
    assert_exactly_once(&rows);

    // 5. Silver reads the rest of Bronze after the expiry and equals the final state.
    silver_run();
    for (table, want) in truth.state.as_ref().unwrap() {
        let py = pyiceberg_silver(&lake, &format!("silver.{table}"), "id");
        let got: BTreeSet<i64> = py["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        let want: BTreeSet<i64> = want.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(got, want, "silver.{table}: live keys after Bronze expired");
        assert_eq!(py["duckdb_count"].as_u64().unwrap(), want.len() as u64, "DuckDB's count of silver.{table}");
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains("not an ancestor"), "Silver never lost its position: {log_text}");
}
