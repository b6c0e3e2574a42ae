//! Kafka → Bronze → Silver on the real broker and catalog: Silver (read by
//! iceberg-rust, and by pyiceberg and DuckDB, position deletes applied) equals
//! the generator's expected final state, key by key and value by value, after
//! silver-refiner was killed with SIGKILL at 12 random points and aborted
//! between a store commit and its Silver commit (a fail point), and restarted. The
//! generated stream carries bad records (malformed JSON, wrong types, rule
//! violations, unknown ops), duplicated and late (out-of-order) deliveries; the
//! bad ones land in `silver._rejects` once each with the rule the truth file
//! expects; a stale update loses; a truncate empties its entity. Batches are
//! capped below the size of Bronze's snapshots, so most commits (and restarts)
//! are at a position inside a Bronze snapshot.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use lakehouse::catalog::TableName;
use lakehouse_tests::*;
use serde_json::{Value, json};

/// How a contract column is compared: as text, integer, cents of a decimal, days of a date.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Cents,
    Days,
}

/// The contract columns (besides `id`) of each commerce entity.
fn columns(table: &str) -> &'static [(&'static str, Kind)] {
    match table {
        "customers" => &[("first_name", Kind::Text), ("last_name", Kind::Text), ("email", Kind::Text)],
        "products" => &[("name", Kind::Text), ("description", Kind::Text), ("price", Kind::Cents)],
        "orders" => {
            &[("customer_id", Kind::Int), ("status", Kind::Text), ("order_date", Kind::Days), ("total", Kind::Cents)]
        }
        _ => {
            &[("order_id", Kind::Int), ("product_id", Kind::Int), ("quantity", Kind::Int), ("unit_price", Kind::Cents)]
        }
    }
}

/// One value as comparable text: from the generator's JSON (`truth`) or from pyiceberg's JSON.
fn norm(v: &Value, kind: Kind, truth: bool) -> String {
    if v.is_null() {
        return "null".into();
    }
    match kind {
        Kind::Text => v.as_str().unwrap().to_string(),
        Kind::Int => v.as_i64().unwrap().to_string(),
        Kind::Cents if truth => cents(v).to_string(),
        Kind::Cents => ((v.as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i128).to_string(),
        Kind::Days if truth => v.as_i64().unwrap().to_string(),
        Kind::Days => iso_days(v.as_str().unwrap()).to_string(),
    }
}

fn silver_refiner(
    config: &std::path::Path,
    log: &std::path::Path,
    idle: Option<&str>,
    failpoint: Option<&str>,
) -> std::process::Child {
    let mut c = Command::new(bin("silver-refiner"));
    c.arg("--config").arg(config).arg("run");
    if let Some(idle) = idle {
        c.args(["--exit-when-idle", idle]);
    }
    if let Some(point) = failpoint {
        c.env("LAKEHOUSE_FAILPOINT", point);
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    c.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

fn cents(v: &Value) -> i128 {
    (v.as_f64().unwrap() * 100.0).round() as i128
}

#[tokio::test(flavor = "multi_thread")]
async fn silver_equals_the_change_stream_after_kills_and_restarts() {
    let lake = Lake::sqlite();
    let prefix = unique("sv");
    let (seed, events) = (11, 6_000);
    let truth_path = lake.dir.path().join("truth.json");
    // Topics exist before the ingestor subscribes by pattern.
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 4).await;
    }
    let contracts =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/contracts/commerce.toml"))
            .unwrap();
    let contracts_path = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts_path, contracts).unwrap();
    let silver = format!(
        "[silver]\ncontracts = {:?}\nstore = {:?}\nmax_snapshots_per_poll = 1\nmax_batch_records = 100\n\
         commit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
        contracts_path.display().to_string(),
        lake.dir.path().join("store").display().to_string(),
    );
    let config = lake.config("sv", &[], Some(&format!("^{prefix}\\..*")), &silver);

    // The stream is produced at a steady rate while bronze-ingestor commits it (a
    // Bronze snapshot per table every second), so the refiner killed below keeps
    // finding new Bronze snapshots to take.
    let ingestor_log = lake.dir.path().join("ingestor.log");
    let mut ingestor = spawn_ingestor(&config, &ingestor_log, Some("6s"));
    let producer = {
        let (prefix, truth_path) = (prefix.clone(), truth_path.clone());
        std::thread::spawn(move || {
            let faults = [
                "--bad-share",
                "0.02",
                "--duplicate-share",
                "0.03",
                "--out-of-order-share",
                "0.03",
                "--truth-state",
                "--rate",
                "300",
            ];
            generate(&prefix, events, seed, &truth_path, &faults)
        })
    };

    // silver-refiner killed with SIGKILL at 12 random points (a seed from the
    // clock, printed), and every fourth run aborted by the fail point between a
    // store commit and its Silver commit; each run starts where the last left.
    let log = lake.dir.path().join("silver.log");
    let kill_seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill schedule seed {kill_seed}");
    let mut x = kill_seed;
    let (mut sigkills, mut aborted) = (0, 0);
    for run in 0..16 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if run % 4 == 3 {
            let mut child = silver_refiner(&config, &log, None, Some(silver_refiner::failpoint::AFTER_STORE_COMMIT));
            // It aborts at its first store commit; one with nothing left to do is killed.
            let deadline = Instant::now() + Duration::from_secs(15);
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break Some(s);
                }
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            match status {
                Some(s) => {
                    assert!(!s.success(), "a fail-point run exits only by aborting: {s:?}");
                    aborted += 1;
                }
                None => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                }
            }
            continue;
        }
        let mut child = silver_refiner(&config, &log, None, None);
        std::thread::sleep(Duration::from_millis(300 + x % 1500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        sigkills += 1;
    }
    assert!(sigkills >= 10, "{sigkills} SIGKILLs");
    let killed = std::fs::read_to_string(&log).unwrap();
    let commits = killed.matches("layer=silver").count();
    assert!(commits > 0, "the killed runs committed nothing, so the kills tested nothing; log:\n{killed}");
    assert!(aborted > 0, "no run crashed between a store commit and its Silver commit; log:\n{killed}");
    let inside = killed
        .lines()
        .filter(|l| {
            l.contains("positioned at the store's Bronze snapshot") && l.contains(" position=") && {
                let p = l.split(" position=").nth(1).unwrap_or("");
                p.split_whitespace().next().is_some_and(|p| p.contains(':'))
            }
        })
        .count();
    assert!(inside > 0, "no run started inside a Bronze snapshot, so resuming there was not tested; log:\n{killed}");
    eprintln!("{sigkills} SIGKILLs and {aborted} fail-point aborts; the killed runs made {commits} Silver commits");
    let truth = producer.join().unwrap();
    let generated: u64 = truth.topics.values().map(|t| t.duplicates + t.late + t.bad).sum();
    assert!(generated > 300, "the stream carries duplicates, late changes and bad records: {:?}", truth.topics);
    let deadline = Instant::now() + Duration::from_secs(120);
    while ingestor.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "bronze-ingestor did not reach idle");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ingestor.wait().unwrap().success(), "{}", std::fs::read_to_string(&ingestor_log).unwrap());

    // Bad input, and a stale update of a live order (an LSN older than any) that must lose.
    let mut expected: BTreeMap<&str, BTreeMap<i64, Value>> = BTreeMap::new();
    for (table, rows) in truth.state.as_ref().unwrap() {
        let table: &str = ["customers", "products", "orders", "order_items"].into_iter().find(|t| t == table).unwrap();
        expected.insert(table, rows.iter().map(|r| (r["id"].as_i64().unwrap(), r.clone())).collect());
    }
    // Bad records by (entity, rule): the generator's, and the three produced below.
    let mut want_rejects: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (table, rules) in &truth.rejects {
        for (rule, n) in rules {
            want_rejects.insert((table.clone(), rule.clone()), *n);
        }
    }
    for rule in ["allowed", "parse", "parse"] {
        *want_rejects.entry(("orders".into(), rule.into())).or_default() += 1;
    }
    let (&stale_id, current) = expected["orders"].iter().next().unwrap();
    let mut stale_after = current.clone();
    stale_after["status"] = json!("cancelled");
    if current["status"] == json!("cancelled") {
        stale_after["status"] = json!("paid");
    }
    let env = |after: Value, lsn: i64| {
        json!({"before": null, "after": after, "op": "u", "ts_ms": 1, "source": {"lsn": lsn, "ts_ms": 1, "table": "orders"}})
            .to_string()
            .into_bytes()
    };
    let bad_status =
        json!({"id": 9_999_999, "customer_id": 1001, "status": "lost", "order_date": 20_454, "total": 1.0});
    let orders = format!("{prefix}.public.orders");
    produce(
        &orders,
        0,
        &[
            (None, Some(b"{not json".to_vec())),
            (None, Some(br#"{"op":"x","after":{"id":1}}"#.to_vec())),
            (None, Some(env(bad_status, 99_999_999_999))),
            (None, Some(env(stale_after, 1))),
        ],
    )
    .await;
    // A truncate of order_items after everything else: the entity ends empty.
    let truncate =
        json!({"op": "t", "ts_ms": 2, "source": {"lsn": 99_999_999_999i64, "ts_ms": 2, "table": "order_items"}});
    produce(&format!("{prefix}.public.order_items"), 0, &[(None, Some(truncate.to_string().into_bytes()))]).await;
    expected.get_mut("order_items").unwrap().clear();
    ingest_until_idle(&config, "2s");

    let mut child = silver_refiner(&config, &log, Some("2s"), None);
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "silver-refiner did not finish; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "silver-refiner failed; log:\n{}", std::fs::read_to_string(&log).unwrap());

    let catalog = lake.connect().await;
    // Orders, value by value.
    let batches: Vec<RecordBatch> = scan_all(&catalog, &TableName::new("silver", "orders")).await;
    let mut got = BTreeMap::new();
    for b in &batches {
        let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let status = b.column_by_name("status").unwrap().as_string::<i32>();
        let customer = b.column_by_name("customer_id").unwrap().as_primitive::<Int64Type>();
        let date = b.column_by_name("order_date").unwrap().as_primitive::<Date32Type>();
        let total = b.column_by_name("total").unwrap().as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            let row = (status.value(i).to_string(), customer.value(i), i64::from(date.value(i)), total.value(i));
            assert!(got.insert(id.value(i), row).is_none(), "order {} is visible twice", id.value(i));
        }
    }
    let want: BTreeMap<i64, (String, i64, i64, i128)> = expected
        .remove("orders")
        .unwrap()
        .into_iter()
        .map(|(id, a)| {
            let row = (
                a["status"].as_str().unwrap().to_string(),
                a["customer_id"].as_i64().unwrap(),
                a["order_date"].as_i64().unwrap(),
                cents(&a["total"]),
            );
            (id, row)
        })
        .collect();
    assert_eq!(got.len(), want.len(), "live orders");
    // pypaimon, an independent Paimon reader, reads the store and agrees with Silver.
    let store = lake.dir.path().join("store");
    let latest =
        changelog_store::Table::open(store.join("silver.db/orders")).unwrap().latest_snapshot().unwrap().unwrap();
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("LAKEHOUSE_TEST_PYTHON (set by tests/run.sh)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../changelog-store/interop/pypaimon_check.py");
    let out = Command::new(python)
        .arg(script)
        .args(["read-snapshots", &store.display().to_string(), "silver.orders", &latest.id.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "pypaimon failed: {}", String::from_utf8_lossy(&out.stderr));
    let read: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    let mut paimon: BTreeMap<i64, String> = BTreeMap::new();
    for r in read["rows"].as_array().unwrap() {
        paimon.insert(r["id"].as_i64().unwrap(), r["status"].as_str().unwrap().to_string());
    }
    let silver_status: BTreeMap<i64, String> = got.iter().map(|(id, r)| (*id, r.0.clone())).collect();
    assert_eq!(paimon, silver_status, "pypaimon's read of the store equals Silver");
    assert_eq!(got, want, "every live order with its newest values; the stale update of {stale_id} lost");

    // pyiceberg and DuckDB, independent readers, see the same orders in the
    // month-partitioned table with its partitioned position deletes.
    let py = pyiceberg_silver(&lake, "silver.orders", "id");
    assert!(py["partition_spec"].as_str().unwrap().contains("order_date_month"), "{}", py["partition_spec"]);
    assert!(py["partitions"].as_array().unwrap().len() > 1, "orders span several months: {}", py["partitions"]);
    assert!(py["delete_files"].as_u64().unwrap() > 0, "updates and deletes made position-delete files");
    assert_eq!(py["properties"]["write.parquet.compression-codec"], "zstd");
    assert_eq!(py["properties"]["lakehouse.retention-days"], "730");
    let mut pyrows = BTreeMap::new();
    for r in py["rows"].as_array().unwrap() {
        let total: f64 = r["total"].as_str().unwrap().parse().unwrap();
        let row = (
            r["status"].as_str().unwrap().to_string(),
            r["customer_id"].as_i64().unwrap(),
            iso_days(r["order_date"].as_str().unwrap()),
            (total * 100.0).round() as i128,
        );
        pyrows.insert(r["id"].as_i64().unwrap(), row);
    }
    assert_eq!(pyrows, got, "pyiceberg reads what iceberg-rust reads");
    assert_eq!(py["duckdb_count"].as_u64().unwrap(), got.len() as u64, "DuckDB's row count");
    assert_eq!(py["duckdb_distinct_keys"].as_u64().unwrap(), got.len() as u64, "DuckDB sees each key once");

    // Every entity, value by value, as pyiceberg (and DuckDB) read it.
    let mut truth_state: BTreeMap<&str, BTreeMap<i64, Value>> = BTreeMap::new();
    for (table, rows) in truth.state.as_ref().unwrap() {
        let t: &str = ["customers", "products", "orders", "order_items"].into_iter().find(|t| t == table).unwrap();
        truth_state.insert(t, rows.iter().map(|r| (r["id"].as_i64().unwrap(), r.clone())).collect());
    }
    truth_state.get_mut("order_items").unwrap().clear(); // truncated
    for (table, rows) in &truth_state {
        let py = pyiceberg_silver(&lake, &format!("silver.{table}"), "id");
        let mut got: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in py["rows"].as_array().unwrap() {
            let row = columns(table).iter().map(|(c, k)| norm(&r[*c], *k, false)).collect();
            assert!(got.insert(r["id"].as_i64().unwrap(), row).is_none(), "silver.{table} shows a key twice");
        }
        let want: BTreeMap<i64, Vec<String>> = rows
            .iter()
            .map(|(id, a)| (*id, columns(table).iter().map(|(c, k)| norm(&a[*c], *k, true)).collect()))
            .collect();
        assert_eq!(got.len(), want.len(), "live keys of silver.{table}");
        assert_eq!(got, want, "silver.{table} read by pyiceberg equals the expected final state");
        assert_eq!(py["duckdb_count"].as_u64().unwrap(), want.len() as u64, "DuckDB's count of silver.{table}");
        assert_eq!(py["duckdb_distinct_keys"].as_u64().unwrap(), want.len() as u64);
    }

    // Each bad record once in silver._rejects, with its rule.
    let rejects = scan_all(&catalog, &TableName::new("silver", "_rejects")).await;
    let mut rules: BTreeMap<(String, String), u64> = BTreeMap::new();
    for b in &rejects {
        let rule = b.column_by_name("rule").unwrap().as_string::<i32>();
        let entity = b.column_by_name("entity").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            assert!(b.column_by_name("raw_value").unwrap().is_valid(i), "the raw value is kept");
            *rules.entry((entity.value(i).to_string(), rule.value(i).to_string())).or_default() += 1;
        }
    }
    assert_eq!(rules, want_rejects, "rejects per entity and rule, each once, across kills and restarts");
}
