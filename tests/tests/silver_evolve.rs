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

fn refine_until_idle(config: &Path, log: &Path) {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let status = Command::new(bin("silver-refiner"))
        .arg("--config")
        .arg(config)
        .args(["run", "--exit-when-idle", "1s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .status()
        .unwrap();
    assert!(status.success(), "silver-refiner failed; log:\n{}", std::fs::read_to_string(log).unwrap());
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
