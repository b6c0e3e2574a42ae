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

const ITEMS_CONTRACT: &str = r#"
[[entity]]
name = "items"
version = 1
source = "bronze.items"
key = "id"
evolve = "widen-types"
[[entity.column]]
name = "id"
type = "int"
[[entity.column]]
name = "qty"
type = "int"
"#;

/// A Debezium create event with its Connect schema, `qty` typed `qty_type`.
fn item(id: i32, ts_ms: i64, qty_type: &str, qty: i64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let image = |field: &str| {
        serde_json::json!({"type": "struct", "optional": true, "field": field, "fields": [
            {"type": "int32", "optional": false, "field": "id"},
            {"type": qty_type, "optional": true, "field": "qty"},
        ]})
    };
    let value = serde_json::json!({
        "schema": {"type": "struct", "optional": false, "fields": [
            image("before"), image("after"),
            {"type": "string", "optional": false, "field": "op"},
            {"type": "int64", "optional": true, "field": "ts_ms"},
        ]},
        "payload": {"before": null, "after": {"id": id, "qty": qty}, "op": "c", "ts_ms": ts_ms},
    });
    (Some(serde_json::json!({ "id": id }).to_string().into_bytes()), Some(value.to_string().into_bytes()))
}

/// A shard follows the schema evolution of its sibling. Shard 1 widens
/// `qty` (int → long, `widen-types`) from an event of its own keys, and a
/// compaction of Silver then moves shard 2's rows into store files of the
/// wider schema, while shard 2 — running all along, with a batch of Bronze
/// snapshots from before the change in flight — has not read that event yet.
/// Shard 2's next commit finds the newer store schema, takes the wider type
/// (its in-flight values carried over) and goes on: no stop on the sibling's
/// files, no widening of its own, and Silver ends with every value.
#[tokio::test(flavor = "multi_thread")]
async fn a_shard_follows_its_siblings_schema_evolution() {
    let lake = Lake::sqlite();
    let topic = format!("{}.public.items", unique("shw"));
    create_topic(&topic, 1).await;
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts, ITEMS_CONTRACT).unwrap();
    let store = lake.dir.path().join("store");
    let silver = |shard: &str, interval: &str| {
        format!(
            "[silver]\ncontracts = {:?}\nstore = {:?}\nbuckets = 4\nshard = {shard:?}\nmax_snapshots_per_poll = 1\n\
             commit_interval = {interval:?}\npoll_interval = \"100ms\"\ncompaction_interval = \"0s\"\n",
            contracts.display().to_string(),
            store.display().to_string(),
        )
    };
    let bronze = lake.config("shwb", std::slice::from_ref(&topic), None, "");
    let one = lake.config("shw1", &[], None, &silver("1 of 2", "100ms"));
    let two = lake.config("shw2", &[], None, &silver("2 of 2", "5s"));
    let log = lake.dir.path().join("shards.log");

    // 1. Narrow values for 16 keys, in three rounds (several Silver files with
    // deletes, for the compaction below), through both shards.
    let mut ts = 1_000;
    let mut want: BTreeMap<i64, i64> = BTreeMap::new();
    for round in 0..3i64 {
        let events: Vec<_> = (1..=16)
            .map(|id| {
                ts += 1;
                want.insert(i64::from(id), i64::from(id) * 10 + round);
                item(id, ts, "int32", i64::from(id) * 10 + round)
            })
            .collect();
        produce(&topic, 0, &events).await;
        ingest_until_idle(&bronze, "1s");
        refine_until_idle(&one, &log);
        refine_until_idle(&two, &log);
    }
    let table = changelog_store::Table::open(store.join("silver.db").join("items")).unwrap();
    let owner = |id: i32| {
        let bucket = table.info().bucket_of_key(&[changelog_store::Datum::Int(id)]);
        if "1 of 2".parse::<silver_refiner::shard::Shard>().unwrap().owns_bucket(bucket) { 1 } else { 2 }
    };
    let ones: Vec<i32> = (1..=16).filter(|&id| owner(id) == 1).collect();
    let twos: Vec<i32> = (1..=16).filter(|&id| owner(id) == 2).collect();
    assert!(ones.len() >= 2 && twos.len() >= 2, "both shards own keys: {ones:?} / {twos:?}");

    // 2. Shard 2 runs as a service; it takes a Bronze snapshot of narrow
    // updates of its keys into its batch (committed after 5 s) and is then
    // stopped while the rest happens.
    let mut shard2 = Command::new(bin("silver-refiner"))
        .arg("--config")
        .arg(&two)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // started, caught up
    let mut update = |id: i32, qty_type: &str, qty: i64| {
        ts += 1;
        want.insert(i64::from(id), qty);
        item(id, ts, qty_type, qty)
    };
    let first = update(twos[0], "int32", 1_001);
    produce(&topic, 0, &[first]).await;
    ingest_until_idle(&bronze, "1s");
    tokio::time::sleep(Duration::from_millis(500)).await; // polled, not yet committed
    let pid = shard2.id().to_string();
    let signal = |sig: &str| assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    signal("-STOP");

    // 3. Another narrow update of shard 2's keys (its next snapshot, after its
    // batch is due), then a value of shard 1's keys that only a long holds.
    let second = update(twos[1], "int32", 1_002);
    produce(&topic, 0, &[second]).await;
    ingest_until_idle(&bronze, "1s");
    let wide = update(ones[0], "int64", 5_000_000_000);
    produce(&topic, 0, &[wide]).await;
    ingest_until_idle(&bronze, "1s");
    refine_until_idle(&one, &log);
    let py = pyiceberg_silver(&lake, "silver.items", "id");
    assert_eq!(py["types"]["qty"], "long", "shard 1 widened qty: {py}");
    assert!(table.has_newer_schema(), "the store has the wider schema");

    // 4. A compaction of Silver moves every row, shard 2's too, into store
    // files of the wider schema.
    let admin = |args: &[&str]| {
        let out = Command::new(bin("lakehouse")).arg("--config").arg(&one).args(args).output().unwrap();
        assert!(out.status.success(), "lakehouse {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    admin(&["properties", "silver.items", "--set", "lakehouse.compaction.min-input-files=2"]);
    let compacted: serde_json::Value =
        serde_json::from_str(admin(&["compact", "silver.items", "--json"]).trim()).unwrap();
    assert!(compacted["snapshot_id"].is_i64(), "compacted: {compacted}");

    // 5. Shard 2 goes on: its due batch (and the next snapshot) commit through
    // the wider schema; it keeps running.
    signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            shard2.try_wait().unwrap().is_none(),
            "shard 2 stopped; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        let py = pyiceberg_silver(&lake, "silver.items", "id");
        let got: BTreeMap<i64, i64> = py["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r["qty"].as_i64().unwrap()))
            .collect();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Silver {got:?}, want {want:?}; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    signal("-TERM");
    let status = shard2.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "shard 2 after SIGTERM; log:\n{text}");
    assert!(
        text.contains("schema evolution by another refiner of the entity: refining with its wider types"),
        "shard 2 followed shard 1's widening; log:\n{text}"
    );
}
