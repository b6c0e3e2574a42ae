//! Late deliveries never bring a deleted key back. On the real broker and
//! catalog, each step is its own Bronze batch and its own refiner run:
//!
//! - k=1 is created (LSN 100), deleted (LSN 300), then its update of LSN 200
//!   arrives: it stays deleted;
//! - k=2's delete (LSN 300) arrives before its create (LSN 200): never visible;
//! - the entity is truncated (LSN 1000); afterwards a create of k=4 (LSN 900,
//!   a key the store did not have when the truncate ran) and an update of k=3
//!   (LSN 950, a key the truncate deleted) arrive: both stay deleted, while
//!   k=5 (LSN 1100, after the truncate) is created.
//!
//! Silver (iceberg-rust and pyiceberg) and the store end with k=5 alone.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use lakehouse::catalog::TableName;
use lakehouse_tests::*;
use serde_json::{Value, json};

const CONTRACT: &str = r#"
[[entity]]
name = "items"
version = 1
source = "bronze.items"
key = "id"
[[entity.column]]
name = "id"
type = "long"
[[entity.column]]
name = "name"
type = "string"
"#;

/// A Kafka message: key and value.
type Message = (Option<Vec<u8>>, Option<Vec<u8>>);

fn event(op: &str, id: i64, name: &str, lsn: i64) -> Message {
    let image = json!({"id": id, "name": name});
    let (before, after) = if op == "d" { (image, Value::Null) } else { (Value::Null, image) };
    let value = json!({"before": before, "after": after, "op": op, "ts_ms": lsn,
        "source": {"lsn": lsn, "ts_ms": lsn, "table": "items"}});
    (Some(json!({"id": id}).to_string().into_bytes()), Some(value.to_string().into_bytes()))
}

fn truncate(lsn: i64) -> Message {
    let value = json!({"op": "t", "ts_ms": lsn, "source": {"lsn": lsn, "ts_ms": lsn, "table": "items"}});
    (None, Some(value.to_string().into_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_or_truncated_key_stays_gone_when_older_changes_arrive_later() {
    let lake = Lake::sqlite();
    let prefix = unique("late");
    let topic = format!("{prefix}.public.items");
    create_topic(&topic, 1).await;
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts, CONTRACT).unwrap();
    let silver = format!(
        "[silver]\ncontracts = {:?}\nstore = {:?}\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
        contracts.display().to_string(),
        lake.dir.path().join("store").display().to_string(),
    );
    let config = lake.config("late", std::slice::from_ref(&topic), None, &silver);
    let log = lake.dir.path().join("silver.log");
    let steps: Vec<Vec<Message>> = vec![
        vec![event("c", 1, "one", 100), event("d", 2, "two", 300), event("c", 3, "three", 100)],
        vec![event("d", 1, "one", 300), event("c", 2, "two (late create)", 200)],
        vec![event("u", 1, "one (late update)", 200), event("u", 3, "three v2", 400)],
        vec![truncate(1000)],
        vec![event("c", 4, "four (late create)", 900), event("u", 3, "three (late)", 950), event("c", 5, "five", 1100)],
    ];
    for (i, step) in steps.iter().enumerate() {
        produce(&topic, 0, step).await;
        ingest_until_idle(&config, "1s");
        refine_until_idle(&config, &log);
        eprintln!("step {} refined", i + 1);
    }

    let catalog = lake.connect().await;
    let bronze = scan_all(&catalog, &TableName::new("bronze", "items")).await;
    assert_eq!(bronze.iter().map(|b| b.num_rows()).sum::<usize>(), 11, "every event is in Bronze");
    let bronze_snapshots =
        catalog.require_table(&TableName::new("bronze", "items")).await.unwrap().metadata.snapshots().count();
    assert!(bronze_snapshots >= 5, "each step is its own Bronze snapshot ({bronze_snapshots})");

    let mut silver_keys = BTreeSet::new();
    for b in scan_all(&catalog, &TableName::new("silver", "items")).await {
        let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let name = b.column_by_name("name").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!((id.value(i), name.value(i)), (5, "five"), "only k=5 is live in Silver");
            assert!(silver_keys.insert(id.value(i)), "k={} is visible twice", id.value(i));
        }
    }
    assert_eq!(silver_keys, BTreeSet::from([5]), "Silver (iceberg-rust) holds k=5 alone");
    let py = pyiceberg_silver(&lake, "silver.items", "id");
    let py_keys: BTreeSet<i64> = py["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(py_keys, BTreeSet::from([5]), "pyiceberg reads k=5 alone");

    let store = changelog_store::Table::open(lake.dir.path().join("store/silver.db/items")).unwrap();
    let store_keys: BTreeSet<String> = store
        .scan(changelog_store::ReadAt::Latest)
        .unwrap()
        .iter()
        .map(|r| store.row_to_json(r)["id"].to_string())
        .collect();
    assert_eq!(store_keys, BTreeSet::from(["5".to_string()]), "the store holds k=5 alone");
}
