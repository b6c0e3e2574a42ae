//! `evolve = "add-columns"` on Debezium's own events (the shared fixtures, read
//! from `../shared/fixtures/debezium`, never copied here), through the real
//! broker, bronze-ingestor and silver-refiner:
//!
//! - `customers` declares `id`, `first_name`, `email`. A schema-less event
//!   (the tutorial's first event with its `schema` block stripped) carries
//!   `last_name` untyped: it stays in `_extra`, no column is added. Then the
//!   tutorial's events with their schema arrive: `last_name` is added to
//!   Silver (a new Iceberg field id after the lineage columns) and to the
//!   store, typed `string` from the Connect schema, and filled;
//! - `orders` (Debezium's 0.4 logical-type test) declares `order_number` and
//!   `purchaser`: `order_date` (`io.debezium.time.Date`) arrives as a `date`,
//!   `quantity` and `product_id` as `int`;
//! - `customers_plain`, the same Bronze table without `evolve`, keeps
//!   `last_name` in `_extra` throughout.
//!
//! pyiceberg reads the evolved tables; a restarted refiner keeps the schema.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lakehouse::catalog::TableName;
use lakehouse_tests::*;
use serde_json::Value;

const CONTRACTS: &str = r#"
[[entity]]
name = "customers"
version = 1
source = "bronze.customers"
key = "id"
evolve = "add-columns"
[[entity.column]]
name = "id"
type = "int"
[[entity.column]]
name = "first_name"
type = "string"
[[entity.column]]
name = "email"
type = "string"

[[entity]]
name = "customers_plain"
version = 1
source = "bronze.customers"
key = "id"
[[entity.column]]
name = "id"
type = "int"
[[entity.column]]
name = "first_name"
type = "string"
[[entity.column]]
name = "email"
type = "string"

[[entity]]
name = "orders"
version = 1
source = "bronze.orders"
key = "order_number"
evolve = "add-columns"
[[entity.column]]
name = "order_number"
type = "int"
[[entity.column]]
name = "purchaser"
type = "int"
"#;

/// The shared fixture directory; `None` (after a loud notice) when absent
/// outside CI. Under `CI=true` an absent directory fails the test.
fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("LAKEHOUSE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/debezium"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the Debezium fixtures are absent at {}",
        dir.display()
    );
    eprintln!("\n\n!!! Debezium fixtures absent at {}: silver_evolve is SKIPPED !!!\n\n", dir.display());
    None
}

fn lines(dir: &Path, file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("fixture {file}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn message(line: &Value) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let part = |name: &str| line.get(name).filter(|v| !v.is_null()).map(|v| v.to_string().into_bytes());
    (part("key"), part("value"))
}

fn column_names(py: &Value) -> Vec<String> {
    py["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

fn row<'a>(py: &'a Value, key: &str, id: i64) -> &'a Value {
    py["rows"].as_array().unwrap().iter().find(|r| r[key] == id).unwrap_or_else(|| panic!("no row {key}={id}: {py}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_columns_are_added_typed_from_the_debezium_schema() {
    let Some(dir) = fixtures() else { return };
    let tutorial = lines(&dir, "mysql_tutorial_with_schema.jsonl");
    let logical = lines(&dir, "mysql_it_0.4_logical_types_with_schema.jsonl");
    let order = logical.iter().find(|l| l["topic"].as_str().is_some_and(|t| t.ends_with(".orders"))).unwrap();

    let lake = Lake::sqlite();
    let prefix = unique("ev");
    let (customers, orders) = (format!("{prefix}.inventory.customers"), format!("{prefix}.inventory.orders"));
    create_topic(&customers, 1).await;
    create_topic(&orders, 1).await;
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts, CONTRACTS).unwrap();
    let silver = format!(
        "[silver]\ncontracts = {:?}\nstore = {:?}\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
        contracts.display().to_string(),
        lake.dir.path().join("store").display().to_string(),
    );
    let config = lake.config("ev", &[customers.clone(), orders.clone()], None, &silver);
    let log = lake.dir.path().join("silver.log");

    // 1. A schema-less event: nothing types `last_name`, it stays in `_extra`.
    let mut bare = tutorial[0].clone();
    bare["value"] = bare["value"]["payload"].clone();
    produce(&customers, 0, &[message(&bare)]).await;
    ingest_until_idle(&config, "1s");
    refine_until_idle(&config, &log);
    let py = pyiceberg_silver(&lake, "silver.customers", "id");
    assert!(!column_names(&py).contains(&"last_name".to_string()), "no column without a schema: {py}");
    let extra: Value = serde_json::from_str(row(&py, "id", 1004)["_extra"].as_str().unwrap()).unwrap();
    assert_eq!(
        extra["last_name"], tutorial[0]["value"]["payload"]["after"]["last_name"],
        "the untyped value is kept in _extra"
    );

    // 2. The events with their schema: the column is added and typed.
    let with_schema: Vec<_> = tutorial.iter().map(message).collect();
    produce(&customers, 0, &with_schema).await;
    produce(&orders, 0, &[message(order)]).await;
    ingest_until_idle(&config, "1s");
    refine_until_idle(&config, &log);
    let py = pyiceberg_silver(&lake, "silver.customers", "id");
    let names = column_names(&py);
    assert_eq!(names.last().map(String::as_str), Some("last_name"), "added after the lineage columns: {names:?}");
    let types = py["types"].as_object().unwrap();
    assert_eq!(types["last_name"], "string");
    assert!(py["field_ids"]["last_name"].as_i64().unwrap() > py["field_ids"]["_refined_at"].as_i64().unwrap());
    for l in &tutorial {
        let after = &l["value"]["payload"]["after"];
        let id = after["id"].as_i64().unwrap();
        assert_eq!(row(&py, "id", id)["last_name"], after["last_name"], "customer {id}: the typed value");
        assert_eq!(row(&py, "id", id)["_extra"], Value::Null, "customer {id}: nothing left in _extra");
    }
    assert_eq!(py["rows"].as_array().unwrap().len(), 3);

    let py = pyiceberg_silver(&lake, "silver.orders", "order_number");
    let types = py["types"].as_object().unwrap();
    assert_eq!(
        (&types["order_date"], &types["quantity"], &types["product_id"]),
        (&"date".into(), &"int".into(), &"int".into())
    );
    let o = row(&py, "order_number", 10001);
    assert_eq!(
        (&o["order_date"], &o["quantity"], &o["product_id"], &o["purchaser"]),
        (&"2016-01-16".into(), &1.into(), &102.into(), &1001.into())
    );

    let plain = pyiceberg_silver(&lake, "silver.customers_plain", "id");
    assert!(!column_names(&plain).contains(&"last_name".to_string()), "without evolve no column is added");
    for id in [1004, 1005, 1006] {
        let extra: Value = serde_json::from_str(row(&plain, "id", id)["_extra"].as_str().unwrap()).unwrap();
        assert!(extra["last_name"].is_string(), "customers_plain keeps last_name in _extra");
    }

    // The store has the column too, with the values.
    let store = changelog_store::Table::open(lake.dir.path().join("store/silver.db/customers")).unwrap();
    assert!(store.schema().fields.iter().any(|f| f.name == "last_name"), "the store table has last_name");
    let rows = store.scan(changelog_store::ReadAt::Latest).unwrap();
    let want = &tutorial[1]["value"]["payload"]["after"]["last_name"];
    assert!(rows.iter().any(|r| &store.row_to_json(r)["last_name"] == want), "the store row carries last_name");

    // 3. A restart keeps the evolved schema and adds nothing.
    let catalog = lake.connect().await;
    let schema_id = |t: &lakehouse::catalog::LoadedTable| t.metadata.current_schema_id();
    let before = schema_id(&catalog.require_table(&TableName::new("silver", "customers")).await.unwrap());
    refine_until_idle(&config, &log);
    let after = schema_id(&catalog.require_table(&TableName::new("silver", "customers")).await.unwrap());
    assert_eq!(before, after, "a restart does not evolve the schema again");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("columns added by schema evolution"), "the restart read the added columns back");
}

const WIDEN_CONTRACTS: &str = r#"
[[entity]]
name = "items"
version = 1
source = "bronze.items"
key = "id"
evolve = ["add-columns", "widen-types"]
[[entity.column]]
name = "id"
type = "int"
[[entity.column]]
name = "qty"
type = "int"
min = 0
[[entity.column]]
name = "price"
type = "decimal(6,2)"
[[entity.column]]
name = "ratio"
type = "float"
[[entity.column]]
name = "day"
type = "date"

[[entity]]
name = "items_strict"
version = 1
source = "bronze.items"
key = "id"
[[entity.column]]
name = "id"
type = "int"
[[entity.column]]
name = "qty"
type = "int"
[[entity.column]]
name = "price"
type = "decimal(6,2)"
[[entity.column]]
name = "ratio"
type = "float"
[[entity.column]]
name = "day"
type = "date"
"#;

/// A Gold rollup over the widening entity, grouped by the column that widens.
const WIDEN_GOLD: &str = r#"
[[rollup]]
name = "items_by_qty"
source = "items"
time = "day"
windows = ["day"]
group_by = ["qty"]
[[rollup.measure]]
name = "revenue"
fn = "sum"
column = "price"
[[rollup.measure]]
name = "top_price"
fn = "max"
column = "price"
[[rollup.measure]]
name = "top_ratio"
fn = "max"
column = "ratio"
[[rollup.measure]]
name = "n"
fn = "count"
"#;

/// A Debezium create/update event with its Connect schema: `qty` as `int32`
/// or `int64`, `price` a `Decimal` of `precision` (scale 2, base64 unscaled
/// bytes), `ratio` as `float32` or `float64`.
fn item_event(id: i32, ts_ms: i64, qty: (&str, i64), price: (u8, &str), ratio: (&str, f64)) -> Vec<u8> {
    let row_schema = serde_json::json!({
        "type": "struct", "name": "pg.public.items.Value", "optional": true,
        "fields": [
            {"type": "int32", "optional": false, "field": "id"},
            {"type": qty.0, "optional": true, "field": "qty"},
            {"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
             "parameters": {"scale": "2", "connect.decimal.precision": price.0.to_string()}, "field": "price"},
            {"type": ratio.0, "optional": true, "field": "ratio"},
            {"type": "int32", "optional": true, "name": "io.debezium.time.Date", "version": 1, "field": "day"},
        ]
    });
    let mut before = row_schema.clone();
    before["field"] = "before".into();
    let mut after = row_schema;
    after["field"] = "after".into();
    serde_json::json!({
        "schema": {"type": "struct", "name": "pg.public.items.Envelope", "optional": false, "fields": [
            before, after,
            {"type": "string", "optional": false, "field": "op"},
            {"type": "int64", "optional": true, "field": "ts_ms"},
        ]},
        "payload": {
            "before": null,
            "after": {"id": id, "qty": qty.1, "price": price.1, "ratio": ratio.1, "day": 20_000},
            "op": "c",
            "ts_ms": ts_ms,
        }
    })
    .to_string()
    .into_bytes()
}

fn item_key(id: i32) -> Vec<u8> {
    serde_json::json!({"id": id}).to_string().into_bytes()
}

/// `evolve = ["add-columns", "widen-types"]`: the source's `ALTER COLUMN … TYPE`
/// (int → bigint, numeric(6,2) → numeric(12,2), real → double precision) shows
/// in the events' Connect schemas; the first value that needs a wider column
/// widens it in Silver (Iceberg type promotion, the same field id) and the
/// store (`schema-<N+1>`), rows written before read back unchanged in the wider
/// type (pyiceberg and DuckDB over old and new data files; pypaimon over the
/// store), and nothing is rejected. The same events under a contract without
/// `widen-types` are `type_change` rejects with the reason. A gold-aggregator
/// running across the change, with a rollup grouped by the widened column,
/// reopens Silver's store table and keeps its own types (integers are longs
/// and decimals `decimal(38, s)` in Gold from the start). A restart with the
/// contract file unchanged keeps the wider types.
#[tokio::test(flavor = "multi_thread")]
async fn source_type_changes_widen_silver_and_the_store() {
    let lake = Lake::sqlite();
    let topic = format!("{}.public.items", unique("wd"));
    create_topic(&topic, 1).await;
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts, WIDEN_CONTRACTS).unwrap();
    let gold_tables = lake.dir.path().join("gold.toml");
    std::fs::write(&gold_tables, WIDEN_GOLD).unwrap();
    let store = lake.dir.path().join("store").display().to_string();
    let silver = format!(
        "[silver]\ncontracts = {:?}\nstore = {store:?}\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n\n\
         [gold]\ntables = {:?}\nsilver_store = {store:?}\nstate = {:?}\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n",
        contracts.display().to_string(),
        gold_tables.display().to_string(),
        lake.dir.path().join("gold-state").display().to_string(),
    );
    let config = lake.config("wd", std::slice::from_ref(&topic), None, &silver);
    let log = lake.dir.path().join("silver.log");
    let gold_log = lake.dir.path().join("gold.log");
    let msg = |id: i32, value: Vec<u8>| (Some(item_key(id)), Some(value));

    // 1. Before the source change: the contract's own types.
    produce(
        &topic,
        0,
        &[
            msg(1, item_event(1, 1_000, ("int32", 5), (6, "MDk="), ("float", 0.5))),
            msg(2, item_event(2, 1_001, ("int32", 6), (6, "AMNQ"), ("float", 0.25))),
            msg(3, item_event(3, 1_002, ("int32", 7), (6, "/wY="), ("float", -1.5))),
        ],
    )
    .await;
    ingest_until_idle(&config, "1s");
    refine_until_idle(&config, &log);
    let py = pyiceberg_silver(&lake, "silver.items", "id");
    let types = py["types"].as_object().unwrap().clone();
    assert_eq!(
        (&types["qty"], &types["price"], &types["ratio"]),
        (&"int".into(), &"decimal(6, 2)".into(), &"float".into())
    );
    let ids_before = py["field_ids"].clone();
    let gold = std::fs::File::create(&gold_log).unwrap();
    let status = Command::new(bin("gold-aggregator"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--exit-when-idle", "2s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(gold)
        .status()
        .unwrap();
    assert!(status.success(), "gold-aggregator failed; log:\n{}", std::fs::read_to_string(&gold_log).unwrap());
    let by_qty = |py: &Value| -> Vec<(i64, String, String, f64, i64)> {
        py["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let s = |c: &str| r[c].as_str().unwrap_or_else(|| panic!("{c} in {r}")).to_string();
                (
                    r["qty"].as_i64().unwrap(),
                    s("revenue"),
                    s("top_price"),
                    r["top_ratio"].as_f64().unwrap(),
                    r["n"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let g = pyiceberg_silver(&lake, "gold.items_by_qty", "qty");
    let gold_types = g["types"].clone();
    assert_eq!(
        by_qty(&g),
        [
            (5, "123.45".into(), "123.45".into(), 0.5, 1),
            (6, "500.00".into(), "500.00".into(), 0.25, 1),
            (7, "-2.50".into(), "-2.50".into(), -1.5, 1)
        ]
    );
    // Gold keeps running across the change: it reads Silver's widened files.
    let mut gold = Command::new(bin("gold-aggregator"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&gold_log).unwrap())
        .spawn()
        .unwrap();

    // 2. After it, in one batch: an event still narrow, then values only the
    // wider types hold (and one that fits but comes with the wider schema).
    produce(
        &topic,
        0,
        &[
            msg(5, item_event(5, 2_000, ("int32", 9), (6, "ZA=="), ("float", 2.0))),
            msg(2, item_event(2, 2_001, ("int64", 5_000_000_000), (6, "AMNQ"), ("float", 0.25))),
            msg(4, item_event(4, 2_002, ("int64", 8), (12, "HL6ZGhQ="), ("float", 4.0))),
            msg(3, item_event(3, 2_003, ("int32", 7), (6, "/wY="), ("double", 0.1))),
        ],
    )
    .await;
    ingest_until_idle(&config, "1s");
    refine_until_idle(&config, &log);
    let py = pyiceberg_silver(&lake, "silver.items", "id");
    let types = py["types"].as_object().unwrap();
    assert_eq!(
        (&types["qty"], &types["price"], &types["ratio"]),
        (&"long".into(), &"decimal(12, 2)".into(), &"double".into()),
        "widened: {py}"
    );
    for c in ["id", "qty", "price", "ratio"] {
        assert_eq!(py["field_ids"][c], ids_before[c], "{c} keeps its field id");
    }
    let want = [
        (1, 5i64, "123.45", 0.5),
        (2, 5_000_000_000, "500.00", 0.25),
        (3, 7, "-2.50", 0.1),
        (4, 8, "1234567890.12", 4.0),
        (5, 9, "1.00", 2.0),
    ];
    assert_eq!(py["rows"].as_array().unwrap().len(), want.len(), "{py}");
    assert_eq!(py["duckdb_count"], want.len(), "DuckDB over the old and new files");
    for (id, qty, price, ratio) in want {
        let r = row(&py, "id", id);
        assert_eq!(
            (&r["qty"], &r["price"], r["ratio"].as_f64()),
            (&qty.into(), &price.into(), Some(ratio)),
            "item {id}: {r}"
        );
    }
    let rejects = pyiceberg_silver(&lake, "silver._rejects", "kafka_offset");
    let rejects: Vec<&Value> = rejects["rows"].as_array().unwrap().iter().collect();
    assert!(rejects.iter().all(|r| r["entity"] == "items_strict"), "the evolving entity rejects nothing: {rejects:?}");
    let strict: Vec<(i64, &str, &str)> = rejects
        .iter()
        .map(|r| (r["kafka_offset"].as_i64().unwrap(), r["rule"].as_str().unwrap(), r["column"].as_str().unwrap()))
        .collect();
    assert_eq!(strict, [(4, "type_change", "qty"), (5, "type_change", "qty"), (6, "type_change", "ratio")]);
    assert!(
        rejects[0]["reason"].as_str().unwrap().contains("int64"),
        "the reason names the source type: {:?}",
        rejects[0]
    );

    // Gold follows without changing a type: qty 6 retracted, the widened values in.
    let want_gold = [
        (5, "123.45".to_string(), "123.45".to_string(), 0.5, 1),
        (7, "-2.50".into(), "-2.50".into(), 0.1, 1),
        (8, "1234567890.12".into(), "1234567890.12".into(), 4.0, 1),
        (9, "1.00".into(), "1.00".into(), 2.0, 1),
        (5_000_000_000, "500.00".into(), "500.00".into(), 0.25, 1),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let g = loop {
        let g = pyiceberg_silver(&lake, "gold.items_by_qty", "qty");
        if by_qty(&g) == want_gold {
            break g;
        }
        if let Some(status) = gold.try_wait().unwrap() {
            panic!("gold-aggregator exited ({status}); log:\n{}", std::fs::read_to_string(&gold_log).unwrap());
        }
        assert!(std::time::Instant::now() < deadline, "Gold never reached {want_gold:?}: {g}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let _ = gold.kill();
    let _ = gold.wait();
    assert_eq!(g["types"], gold_types, "no Gold column changed type");
    assert_eq!(
        (&g["types"]["qty"], &g["types"]["revenue"], &g["types"]["top_price"], &g["types"]["top_ratio"]),
        (&"long".into(), &"decimal(38, 2)".into(), &"decimal(38, 2)".into(), &"double".into())
    );
    let text = std::fs::read_to_string(&gold_log).unwrap();
    assert!(text.contains("the source's schema changed; reopened it"), "Gold reopened Silver's store table:\n{text}");

    // The store widened too; pypaimon reads old and new files in the new types.
    let store_dir = lake.dir.path().join("store");
    let store = changelog_store::Table::open(store_dir.join("silver.db/items")).unwrap();
    let ty = |n: &str| store.schema().fields.iter().find(|f| f.name == n).unwrap().data_type.to_string();
    assert_eq!((ty("qty"), ty("price"), ty("ratio")), ("BIGINT".into(), "DECIMAL(12, 2)".into(), "DOUBLE".into()));
    let latest = store.latest_snapshot().unwrap().unwrap();
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("LAKEHOUSE_TEST_PYTHON (set by tests/run.sh)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../changelog-store/interop/pypaimon_check.py");
    let out = Command::new(python)
        .arg(script)
        .args(["read-snapshots", &store_dir.display().to_string(), "silver.items", &latest.id.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "pypaimon failed: {}", String::from_utf8_lossy(&out.stderr));
    let read: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    let mut paimon: Vec<(i64, i64, f64)> = read["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["qty"].as_i64().unwrap(), r["ratio"].as_f64().unwrap()))
        .collect();
    paimon.sort_by_key(|r| r.0);
    let expect: Vec<(i64, i64, f64)> = want.iter().map(|(id, q, _, r)| (*id, *q, *r)).collect();
    assert_eq!(paimon, expect, "pypaimon's read of the widened store");

    // Replaying the strict entity's rejects after turning `widen-types` on: a
    // dry run widens nothing and says which need it; the replay widens the
    // columns first (as the refiner does on a live event) and upserts all
    // three, so the strict entity ends equal to the evolving one.
    std::fs::write(
        &contracts,
        WIDEN_CONTRACTS.replace("name = \"items_strict\"\n", "name = \"items_strict\"\nevolve = \"widen-types\"\n"),
    )
    .unwrap();
    let replay = |extra: &[&str]| -> Value {
        let out = Command::new(bin("lakehouse"))
            .arg("--config")
            .arg(&config)
            .args(["rejects", "replay", "items_strict", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let dry = replay(&["--dry-run"]);
    assert_eq!((&dry["need_widening"], &dry["upserted"]), (&3.into(), &0.into()), "{dry}");
    assert_eq!(pyiceberg_silver(&lake, "silver.items_strict", "id")["types"]["qty"], "int", "a dry run widens nothing");
    let report = replay(&[]);
    assert_eq!(report["still_rejected"], serde_json::json!({}), "{report}");
    assert_eq!(report["upserted"], 3, "{report}");
    let widened: Vec<&str> = report["widened"].as_array().unwrap().iter().map(|w| w[0].as_str().unwrap()).collect();
    for c in ["qty", "price", "ratio"] {
        assert!(widened.contains(&c), "{c} widened by the replay: {report}");
    }
    let strict = pyiceberg_silver(&lake, "silver.items_strict", "id");
    assert_eq!(
        (&strict["types"]["qty"], &strict["types"]["price"], &strict["types"]["ratio"]),
        (&"long".into(), &"decimal(12, 2)".into(), &"double".into())
    );
    assert_eq!(strict["rows"].as_array().unwrap().len(), want.len(), "{strict}");
    for (id, qty, price, ratio) in want {
        let r = row(&strict, "id", id);
        assert_eq!(
            (&r["qty"], &r["price"], r["ratio"].as_f64()),
            (&qty.into(), &price.into(), Some(ratio)),
            "strict item {id} after the replay: {r}"
        );
    }
    std::fs::write(&contracts, WIDEN_CONTRACTS).unwrap();

    // 3. A restart with the contract file unchanged (still `int`) keeps the
    // wider types and refines a narrow event into them.
    let catalog = lake.connect().await;
    let schema_id = |t: &lakehouse::catalog::LoadedTable| t.metadata.current_schema_id();
    let before = schema_id(&catalog.require_table(&TableName::new("silver", "items")).await.unwrap());
    produce(&topic, 0, &[msg(6, item_event(6, 3_000, ("int32", 11), (6, "Awk="), ("float", 8.0)))]).await;
    ingest_until_idle(&config, "1s");
    refine_until_idle(&config, &log);
    let after = schema_id(&catalog.require_table(&TableName::new("silver", "items")).await.unwrap());
    assert_eq!(before, after, "a restart does not evolve the schema again");
    let py = pyiceberg_silver(&lake, "silver.items", "id");
    let r = row(&py, "id", 6);
    assert_eq!((&r["qty"], &r["price"], r["ratio"].as_f64()), (&11.into(), &"7.77".into(), Some(8.0)));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("columns widened by schema evolution"), "the restart read the widened types back");
}
