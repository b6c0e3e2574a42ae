//! `lakehouse rejects list|replay`: a contract rejects some rows; after the
//! contract is fixed, a replay upserts those that now pass — never over a newer
//! state of their key (a later update, a later delete) — and leaves those that
//! still fail in `silver._rejects`; a second replay changes nothing; the live
//! refiner goes on from its own position afterwards.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use lakehouse::catalog::TableName;
use lakehouse_tests::*;
use serde_json::{Value, json};

fn contract(version: u32, allowed: &[&str]) -> String {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "[[entity]]\nname = \"orders\"\nversion = {version}\nsource = \"bronze.orders\"\nkey = \"id\"\n\
         [[entity.column]]\nname = \"id\"\ntype = \"long\"\n\
         [[entity.column]]\nname = \"status\"\ntype = \"string\"\nallowed = [{}]\n",
        allowed.join(", ")
    )
}

fn event(id: i64, op: &str, status: Option<&str>, lsn: i64) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let row = status.map(|s| json!({"id": id, "status": s}));
    let (before, after) =
        if op == "d" { (json!({"id": id, "status": "x"}), Value::Null) } else { (Value::Null, row.unwrap()) };
    let value = json!({"before": before, "after": after, "op": op, "ts_ms": lsn,
                       "source": {"lsn": lsn, "ts_ms": lsn, "table": "orders"}});
    (Some(json!({"id": id}).to_string().into_bytes()), Some(value.to_string().into_bytes()))
}

fn run_refiner(config: &std::path::Path) {
    let out = Command::new(bin("silver-refiner"))
        .arg("--config")
        .arg(config)
        .args(["run", "--exit-when-idle", "1s"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "silver-refiner failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn lakehouse(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin("lakehouse")).arg("--config").arg(config).args(args).output().unwrap();
    assert!(out.status.success(), "lakehouse {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Silver orders as iceberg-rust reads them: id → (status, _seq, _kafka_offset).
async fn silver(lake: &Lake) -> BTreeMap<i64, (String, i64, i64)> {
    let catalog = lake.connect().await;
    let mut out = BTreeMap::new();
    for b in scan_all(&catalog, &TableName::new("silver", "orders")).await {
        let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let status = b.column_by_name("status").unwrap().as_string::<i32>();
        let seq = b.column_by_name("_seq").unwrap().as_primitive::<Int64Type>();
        let offset = b.column_by_name("_kafka_offset").unwrap().as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let row = (status.value(i).to_string(), seq.value(i), offset.value(i));
            assert!(out.insert(id.value(i), row).is_none(), "order {} visible twice", id.value(i));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_applies_what_now_passes_once_and_never_over_a_newer_state() {
    let lake = Lake::sqlite();
    let topic = format!("{}.public.orders", unique("rr"));
    create_topic(&topic, 1).await;
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts, contract(1, &["pending", "paid"])).unwrap();
    let silver_section = format!(
        "[silver]\ncontracts = {:?}\nstore = {:?}\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
        contracts.display().to_string(),
        lake.dir.path().join("store").display().to_string()
    );
    let config = lake.config("rr", std::slice::from_ref(&topic), None, &silver_section);
    produce(
        &topic,
        0,
        &[
            event(1, "c", Some("pending"), 100),                         // offset 0: applied
            event(2, "c", Some("shipped"), 110),                         // 1: rejected, passes after the fix
            event(3, "c", Some("shipped"), 120),                         // 2: rejected ...
            event(3, "u", Some("paid"), 130),                            // 3: ... but a newer state exists
            event(4, "c", Some("shipped"), 140),                         // 4: rejected ...
            event(4, "d", None, 150),                                    // 5: ... and the key was deleted later
            event(5, "c", Some("lost"), 160),                            // 6: rejected, still fails after the fix
            event(6, "c", Some("paid"), 170),                            // 7: applied
            event(6, "u", Some("shipped"), 180), // 8: rejected, newer than paid: wins after the fix
            (Some(b"{\"id\":7}".to_vec()), Some(b"{not json".to_vec())), // 9: parse
        ],
    )
    .await;
    ingest_until_idle(&config, "1s");
    run_refiner(&config);
    let before = silver(&lake).await;
    let status = |m: &BTreeMap<i64, (String, i64, i64)>| -> BTreeMap<i64, String> {
        m.iter().map(|(k, v)| (*k, v.0.clone())).collect()
    };
    let want: BTreeMap<i64, String> =
        [(1, "pending"), (3, "paid"), (6, "paid")].into_iter().map(|(k, v)| (k, v.to_string())).collect();
    assert_eq!(status(&before), want, "Silver before the fix");

    // list: every reject with its coordinates, filters.
    let list: Vec<Value> = lakehouse(&config, &["rejects", "list", "orders", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(list.len(), 6, "{list:?}");
    let mut offsets: Vec<i64> = list.iter().map(|r| r["kafka_offset"].as_i64().unwrap()).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [1, 2, 4, 6, 8, 9]);
    assert!(list.iter().all(|r| r["contract_version"] == 1 && r["kafka_topic"] == json!(topic)));
    let allowed = lakehouse(&config, &["rejects", "list", "orders", "--rule", "allowed", "--json"]);
    assert_eq!(allowed.lines().count(), 5);
    let text = lakehouse(&config, &["rejects", "list", "orders", "--rule", "parse"]);
    assert!(text.contains("parse") && text.contains(&format!("{topic}/0/9")), "{text}");

    // The fix, and the replay.
    std::fs::write(&contracts, contract(2, &["pending", "paid", "shipped"])).unwrap();
    let dry: Value =
        serde_json::from_str(&lakehouse(&config, &["rejects", "replay", "orders", "--dry-run", "--json"])).unwrap();
    assert_eq!(dry["upserted"], 2, "{dry}");
    assert_eq!(silver(&lake).await, before, "a dry run commits nothing");
    let report: Value = serde_json::from_str(&lakehouse(&config, &["rejects", "replay", "orders", "--json"])).unwrap();
    assert_eq!(report["considered"], 6, "{report}");
    assert_eq!(report["upserted"], 2, "orders 2 and 6: {report}");
    assert_eq!(report["superseded"], 2, "3 was updated and 4 deleted after their rejects: {report}");
    assert_eq!(report["still_rejected"], json!({"allowed": 1, "parse": 1}), "{report}");
    let after = silver(&lake).await;
    let want: BTreeMap<i64, String> = [(1, "pending"), (2, "shipped"), (3, "paid"), (6, "shipped")]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    assert_eq!(status(&after), want, "Silver after the replay");
    assert_eq!((after[&2].1, after[&2].2), (110, 1), "a replayed row keeps its source order and offset");
    assert_eq!((after[&6].1, after[&6].2), (180, 8));
    let py = pyiceberg_silver(&lake, "silver.orders", "id");
    let py_status: BTreeMap<i64, String> = py["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(py_status, want, "pyiceberg reads the replayed state");

    // Again: nothing to do, nothing committed, nothing re-rejected.
    let head = lake.connect().await.require_table(&TableName::new("silver", "orders")).await.unwrap();
    let again: Value = serde_json::from_str(&lakehouse(&config, &["rejects", "replay", "orders", "--json"])).unwrap();
    assert_eq!(again["up_to_date"], true, "{again}");
    let head2 = lake.connect().await.require_table(&TableName::new("silver", "orders")).await.unwrap();
    assert_eq!(head.metadata.current_snapshot_id(), head2.metadata.current_snapshot_id(), "no new Silver snapshot");
    let rejects = lakehouse(&config, &["rejects", "list", "orders", "--json", "--limit", "0"]);
    assert_eq!(rejects.lines().count(), 6, "still-failing records are not rejected twice");

    // The live refiner goes on from its position: a newer update of 2 wins, nothing old comes back.
    produce(&topic, 0, &[event(2, "u", Some("pending"), 200)]).await;
    ingest_until_idle(&config, "1s");
    run_refiner(&config);
    let mut want = want;
    want.insert(2, "pending".into());
    assert_eq!(status(&silver(&lake).await), want, "the refiner after the replay");
    let rejects = lakehouse(&config, &["rejects", "list", "orders", "--json", "--limit", "0"]);
    assert_eq!(rejects.lines().count(), 6, "the refiner did not re-read Bronze from before the replay");
}
