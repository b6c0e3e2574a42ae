//! Two refiners on the same entities, `shard = "1 of 2"` and `"2 of 2"`, run at
//! the same time on one store and one Silver table per entity: each takes the
//! keys of its own store buckets, both commit to Silver through the catalog's
//! compare-and-swap, and Silver (read by pyiceberg) ends equal to the
//! generator's final state; the rejects are recorded once (by shard 1).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lakehouse::catalog::TableName;
use lakehouse_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn two_shards_of_one_entity_build_one_silver_table() {
    let lake = Lake::sqlite();
    let prefix = unique("sh");
    let truth_path = lake.dir.path().join("truth.json");
    let faults = ["--bad-share", "0.02", "--duplicate-share", "0.03", "--out-of-order-share", "0.03", "--truth-state"];
    let truth = generate(&prefix, 4_000, 5, &truth_path, &faults);
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/contracts/commerce.toml"), &contracts).unwrap();
    let silver = |shard: &str| {
        format!(
            "[silver]\ncontracts = {:?}\nstore = {:?}\nbuckets = 4\nshard = {shard:?}\nmax_snapshots_per_poll = 1\n\
             commit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
            contracts.display().to_string(),
            lake.dir.path().join("store").display().to_string(),
        )
    };
    let bronze = lake.config("shb", &[], Some(&format!("^{prefix}\\..*")), "");
    ingest_until_idle(&bronze, "2s");
    let configs = [lake.config("sh1", &[], None, &silver("1 of 2")), lake.config("sh2", &[], None, &silver("2 of 2"))];
    let log = lake.dir.path().join("shards.log");
    let mut children: Vec<_> = configs
        .iter()
        .map(|c| {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
            Command::new(bin("silver-refiner"))
                .arg("--config")
                .arg(c)
                .args(["run", "--exit-when-idle", "2s"])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    for c in &mut children {
        let status = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "a shard did not finish; log:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "a shard failed; log:\n{}", std::fs::read_to_string(&log).unwrap());
    }

    // Silver, every entity: exactly the live keys, orders value by value.
    let state = truth.state.as_ref().unwrap();
    for (table, rows) in state {
        let py = pyiceberg_silver(&lake, &format!("silver.{table}"), "id");
        let got: Vec<i64> = py["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        let want: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(got, want, "live keys of silver.{table} (each once)");
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
    }

    // Both shards committed, each with its own position; the rejects once, by rule.
    let catalog = lake.connect().await;
    let orders = catalog.require_table(&TableName::new("silver", "orders")).await.unwrap();
    let keys: BTreeSet<String> = orders
        .metadata
        .snapshots()
        .flat_map(|s| s.summary().additional_properties.keys().cloned().collect::<Vec<_>>())
        .filter(|k| k.starts_with("lakehouse.silver.bronze-snapshot"))
        .collect();
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        ["lakehouse.silver.bronze-snapshot.shard-1-of-2", "lakehouse.silver.bronze-snapshot.shard-2-of-2"],
        "Silver commits of both shards"
    );
    let mut rules: BTreeMap<(String, String), u64> = BTreeMap::new();
    for b in scan_all(&catalog, &TableName::new("silver", "_rejects")).await {
        use arrow_array::cast::AsArray;
        let (e, r) = (
            b.column_by_name("entity").unwrap().as_string::<i32>(),
            b.column_by_name("rule").unwrap().as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            *rules.entry((e.value(i).to_string(), r.value(i).to_string())).or_default() += 1;
        }
    }
    let want: BTreeMap<(String, String), u64> =
        truth.rejects.iter().flat_map(|(t, rs)| rs.iter().map(move |(r, n)| ((t.clone(), r.clone()), *n))).collect();
    assert_eq!(rules, want, "each bad record rejected once");
}
