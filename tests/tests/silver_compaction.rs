//! Compaction of Silver on the real broker and catalog.
//!
//! silver-refiner runs with compaction every 200 ms and a low delete-ratio
//! threshold on `silver.orders`, while `lakehouse compact silver.customers`
//! (`lakehouse.compaction.auto = false`: by hand only) runs against it in a
//! loop, a second store writer racing the refiner's commits. Afterwards Silver, read by pyiceberg
//! and DuckDB (position deletes applied), equals the generator's final state
//! key by key; both tables have `replace` snapshots in their history. A last
//! `lakehouse compact` by hand then leaves exactly the same rows for both
//! readers with fewer delete files, and a `lakehouse compact` with nothing
//! over the threshold commits nothing.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lakehouse::catalog::TableName;
use lakehouse_tests::*;
use serde_json::Value;

fn admin(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("lakehouse")).arg("--config").arg(config).args(args).output().unwrap()
}

fn admin_ok(config: &std::path::Path, args: &[&str]) -> String {
    let out = admin(config, args);
    assert!(
        out.status.success(),
        "lakehouse {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Live ids and every contract column of each row, as pyiceberg reads them.
fn ids(py: &Value) -> Vec<i64> {
    py["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn faults_with_rate() -> [&'static str; 7] {
    ["--duplicate-share", "0.03", "--out-of-order-share", "0.03", "--truth-state", "--rate", "1000"]
}

#[tokio::test(flavor = "multi_thread")]
async fn silver_compacted_while_refining_equals_the_truth_and_reads_the_same() {
    let lake = Lake::sqlite();
    let prefix = unique("sc");
    let truth_path = lake.dir.path().join("truth.json");
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 2).await;
    }
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/contracts/commerce.toml"), &contracts).unwrap();
    let silver = format!(
        "[silver]\ncontracts = {:?}\nstore = {:?}\nmax_snapshots_per_poll = 1\ncommit_interval = \"100ms\"\n\
         poll_interval = \"100ms\"\ncompaction_interval = \"200ms\"\n",
        contracts.display().to_string(),
        lake.dir.path().join("store").display().to_string(),
    );
    let config = lake.config("sc", &[], Some(&format!("^{prefix}\\..*")), &silver);

    // The refiner creates the Silver tables (Bronze is still empty); the
    // compaction threshold is lowered so that compactions really happen.
    let first = Command::new(bin("silver-refiner"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--exit-when-idle", "500ms"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    for t in ["silver.orders", "silver.customers"] {
        admin_ok(&config, &["properties", t, "--set", "lakehouse.compaction.delete-ratio-threshold=0.05"]);
    }
    // customers is compacted only by hand (racing the refiner), orders only by the refiner.
    admin_ok(&config, &["properties", "silver.customers", "--set", "lakehouse.compaction.auto=false"]);
    // Bronze gets a snapshot per table every second while the stream arrives
    // at a steady rate, so the refiner (one Bronze snapshot per commit) updates
    // and deletes rows of earlier Silver files.
    let ingestor_log = lake.dir.path().join("ingestor.log");
    let mut ingestor = spawn_ingestor(&config, &ingestor_log, Some("3s"));
    let producer = {
        let (prefix, truth_path) = (prefix.clone(), truth_path.clone());
        std::thread::spawn(move || generate(&prefix, 5_000, 17, &truth_path, &faults_with_rate()))
    };
    let truth = producer.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ingestor.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the ingestor did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The refiner, one Bronze snapshot per commit, compacting as it goes; and a
    // compaction by hand racing it.
    let log = lake.dir.path().join("refiner.log");
    let mut refiner = {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        Command::new(bin("silver-refiner"))
            .arg("--config")
            .arg(&config)
            .args(["run", "--exit-when-idle", "2s"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let done = Arc::new(AtomicBool::new(false));
    let by_hand = Arc::new(AtomicU32::new(0));
    let racer = {
        let (config, done, by_hand) = (config.clone(), done.clone(), by_hand.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let out = admin(&config, &["compact", "silver.customers", "--json"]);
                assert!(out.status.success(), "compact by hand: {}", String::from_utf8_lossy(&out.stderr));
                let v: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
                eprintln!("compact by hand: {v}");
                if v["snapshot_id"].is_i64() {
                    by_hand.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = refiner.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the refiner did not finish; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    done.store(true, Ordering::SeqCst);
    racer.join().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the refiner failed; log:\n{log_text}");
    assert!(!log_text.contains("compaction failed"), "a compaction failed; log:\n{log_text}");

    // Silver equals the truth, for pyiceberg and DuckDB.
    let state = truth.state.as_ref().unwrap();
    let mut before: BTreeMap<String, Value> = BTreeMap::new();
    for (table, rows) in state {
        let py = pyiceberg_silver(&lake, &format!("silver.{table}"), "id");
        let want: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids(&py), want, "live keys of silver.{table} (each once)");
        assert_eq!(py["duckdb_count"].as_u64().unwrap() as usize, want.len(), "DuckDB count of silver.{table}");
        assert_eq!(py["duckdb_distinct_keys"].as_u64().unwrap() as usize, want.len());
        if table == "orders" {
            let got: BTreeMap<i64, String> = py["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["id"].as_i64().unwrap(), r["status"].as_str().unwrap().to_string()))
                .collect();
            let want: BTreeMap<i64, String> =
                rows.iter().map(|r| (r["id"].as_i64().unwrap(), r["status"].as_str().unwrap().to_string())).collect();
            assert_eq!(got, want, "silver.orders status per key");
        }
        before.insert(table.clone(), py);
    }
    // Compactions happened: by the refiner (orders) and by hand while it ran (customers).
    let catalog = lake.connect().await;
    for t in ["orders", "customers"] {
        let head = catalog.require_table(&TableName::new("silver", t)).await.unwrap();
        let replaces =
            head.metadata.snapshots().filter(|s| s.summary().operation == iceberg::spec::Operation::Replace).count();
        assert!(replaces > 0, "silver.{t} was never compacted; log:\n{log_text}");
    }
    assert!(by_hand.load(Ordering::SeqCst) > 0, "no compaction by hand went in while the refiner ran");

    // One more by hand on the settled tables: the same rows, fewer delete files.
    for t in ["orders", "customers"] {
        let name = format!("silver.{t}");
        admin_ok(&config, &["properties", &name, "--set", "lakehouse.compaction.delete-ratio-threshold=0.000001"]);
        let out: Value = serde_json::from_str(admin_ok(&config, &["compact", &name, "--json"]).trim()).unwrap();
        let py = pyiceberg_silver(&lake, &name, "id");
        let was = &before[t];
        assert_eq!(py["rows"], was["rows"], "{name}: pyiceberg reads exactly the same rows after compaction");
        assert_eq!(py["duckdb_count"], was["duckdb_count"], "{name}: DuckDB count");
        assert_eq!(py["duckdb_distinct_keys"], was["duckdb_distinct_keys"]);
        let (b, a) = (was["delete_files"].as_u64().unwrap(), py["delete_files"].as_u64().unwrap());
        if b > 0 {
            assert!(out["snapshot_id"].is_i64(), "{name}: compacted: {out}");
            assert!(a < b, "{name}: delete files {b} → {a}");
        }
        assert_eq!(out["delete_files_after"].as_u64(), Some(a), "{name}: the CLI's count agrees with pyiceberg's");
        // Nothing left over the threshold: a second run commits nothing.
        let again: Value = serde_json::from_str(admin_ok(&config, &["compact", &name, "--json"]).trim()).unwrap();
        assert!(again["snapshot_id"].is_null(), "{name}: a second compaction found work: {again}");
    }

    // And the refiner picks up after the by-hand compactions (its store writer
    // reopens; Silver is already materialised): nothing to do, no error.
    let after = Command::new(bin("silver-refiner"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--exit-when-idle", "500ms"])
        .output()
        .unwrap();
    assert!(after.status.success(), "{}", String::from_utf8_lossy(&after.stderr));
    for table in state.keys() {
        let py = pyiceberg_silver(&lake, &format!("silver.{table}"), "id");
        assert_eq!(py["rows"], before[table]["rows"], "silver.{table} after a restart");
    }
}
