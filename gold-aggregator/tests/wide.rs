//! Wide (denormalized) tables against real changelog-store sources and an
//! Iceberg catalog, the worker restarted between steps: facts arriving before
//! their dimensions get nulls and are completed when the dimension arrives; a
//! dimension update fans out to every wide row that references it, through a
//! chained join too; a deleted dimension row empties its columns; a deleted
//! fact's row disappears. A rollup over the wide table (min, max,
//! count_distinct: per-value counts rebuilt from the wide table's state on
//! each start) follows. Gold is read back with its position deletes applied.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type};
use changelog_store::RowKind;
use lakehouse::catalog::SqlCatalog;
use serde_json::json;

mod common;
use common::{commit, config, gold_batches, run_gold, silver_table};

const DEFS: &str = r#"
[[wide]]
name = "lines"
fact = "items"
columns = ["id", "order_id", "quantity", "price"]
compute = ["quantity * price as amount"]
partition_by = "order_date"
[[wide.join]]
entity = "orders"
on = "order_id"
columns = ["customer_id", "order_date"]
[[wide.join]]
entity = "customers"
on = "customer_id"
columns = ["name as customer"]

[[rollup]]
name = "by_customer"
source = "lines"
time = "order_date"
windows = ["month"]
group_by = ["customer_id"]
[[rollup.measure]]
name = "smallest"
fn = "min"
column = "amount"
[[rollup.measure]]
name = "largest"
fn = "max"
column = "amount"
[[rollup.measure]]
name = "orders"
fn = "count_distinct"
column = "order_id"
[[rollup.measure]]
name = "lines"
fn = "count"
"#;

/// The rollup over the wide table: customer → (smallest, largest amount in
/// cents, distinct orders, lines), one month.
async fn by_customer(catalog: &SqlCatalog) -> BTreeMap<Option<i64>, (i128, i128, i64, i64)> {
    let batches = gold_batches(catalog, "by_customer").await;
    let mut out = BTreeMap::new();
    for b in &batches {
        let l = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let d = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Decimal128Type>().clone();
        let (customer, orders, lines) = (l("customer_id"), l("orders"), l("lines"));
        let (smallest, largest) = (d("smallest"), d("largest"));
        for i in 0..b.num_rows() {
            let key = customer.is_valid(i).then(|| customer.value(i));
            let row = (smallest.value(i), largest.value(i), orders.value(i), lines.value(i));
            assert!(out.insert(key, row).is_none(), "customer {key:?} has two rows");
        }
    }
    out
}

/// id → (customer_id, customer, amount in cents).
type Rows = BTreeMap<i64, (Option<i64>, Option<String>, Option<i128>)>;

async fn gold(catalog: &SqlCatalog) -> Rows {
    let batches = gold_batches(catalog, "lines").await;
    let mut out = Rows::new();
    for b in &batches {
        let l = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let (id, customer_id) = (l("id"), l("customer_id"));
        let customer = b.column_by_name("customer").unwrap().as_string::<i32>().clone();
        let amount = b.column_by_name("amount").unwrap().as_primitive::<Decimal128Type>().clone();
        for i in 0..b.num_rows() {
            let row = (
                customer_id.is_valid(i).then(|| customer_id.value(i)),
                customer.is_valid(i).then(|| customer.value(i).to_string()),
                amount.is_valid(i).then(|| amount.value(i)),
            );
            assert!(out.insert(id.value(i), row).is_none(), "fact {} is visible twice", id.value(i));
        }
    }
    out
}

fn with_customer(rows: &Rows, name: &str) -> Vec<i64> {
    rows.iter().filter(|(_, r)| r.1.as_deref() == Some(name)).map(|(id, _)| *id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dimension_changes_fan_out_and_late_dimensions_complete_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), DEFS);
    let items = silver_table(
        dir.path(),
        "items",
        &[("id", "BIGINT NOT NULL"), ("order_id", "BIGINT"), ("quantity", "INT"), ("price", "DECIMAL(10, 2)")],
    );
    let orders = silver_table(
        dir.path(),
        "orders",
        &[("id", "BIGINT NOT NULL"), ("customer_id", "BIGINT"), ("order_date", "DATE")],
    );
    let customers = silver_table(dir.path(), "customers", &[("id", "BIGINT NOT NULL"), ("name", "STRING")]);
    let catalog = SqlCatalog::connect(&config.catalog).await.unwrap();
    let item = |id: i64, order: i64| json!({"id": id, "order_id": order, "quantity": 2, "price": "1.25"});

    // 50 lines of order 1 and 10 of order 2, before any order or customer.
    let mut lines: Vec<(RowKind, serde_json::Value)> = (1..=50).map(|i| (RowKind::Insert, item(i, 1))).collect();
    lines.extend((51..=60).map(|i| (RowKind::Insert, item(i, 2))));
    commit(&items, &lines);
    run_gold(&config).await;
    let rows = gold(&catalog).await;
    assert_eq!(rows.len(), 60);
    assert!(rows.values().all(|r| r.0.is_none() && r.1.is_none()), "no dimension yet: nulls");
    assert!(rows.values().all(|r| r.2 == Some(250)), "2 × 1.25 computed exactly");

    // The orders and one customer arrive: the rows are completed.
    commit(
        &orders,
        &[
            (RowKind::Insert, json!({"id": 1, "customer_id": 7, "order_date": 20_463})),
            (RowKind::Insert, json!({"id": 2, "customer_id": 8, "order_date": 20_470})),
        ],
    );
    commit(&customers, &[(RowKind::Insert, json!({"id": 7, "name": "Anne"}))]);
    run_gold(&config).await;
    let rows = gold(&catalog).await;
    assert_eq!(rows.len(), 60);
    assert_eq!(with_customer(&rows, "Anne"), (1..=50).collect::<Vec<_>>());
    assert!((51..=60).all(|i| rows[&i].0 == Some(8) && rows[&i].1.is_none()), "customer 8 has not arrived");
    let rolled = by_customer(&catalog).await;
    assert_eq!(rolled, BTreeMap::from([(Some(7), (250, 250, 1, 50)), (Some(8), (250, 250, 1, 10))]));

    // Customer 7 renamed: every one of its 50 wide rows changes, nothing else.
    commit(&customers, &[(RowKind::Insert, json!({"id": 7, "name": "Annie"}))]);
    run_gold(&config).await;
    let rows = gold(&catalog).await;
    assert_eq!(rows.len(), 60, "replaced, not appended");
    assert_eq!(with_customer(&rows, "Annie"), (1..=50).collect::<Vec<_>>());
    assert!(with_customer(&rows, "Anne").is_empty());

    // Order 2 moves to customer 7 (the chained join follows), customer 8 arrives late.
    commit(&orders, &[(RowKind::Insert, json!({"id": 2, "customer_id": 7, "order_date": 20_470}))]);
    commit(&customers, &[(RowKind::Insert, json!({"id": 8, "name": "Bob"}))]);
    run_gold(&config).await;
    let rows = gold(&catalog).await;
    assert_eq!(with_customer(&rows, "Annie"), (1..=60).collect::<Vec<_>>());
    assert!(with_customer(&rows, "Bob").is_empty(), "no line references customer 8 any more");

    // A dimension row deleted empties its columns; a fact deleted leaves Gold.
    commit(&customers, &[(RowKind::Delete, json!({"id": 7}))]);
    commit(
        &items,
        &[
            (RowKind::Delete, json!({"id": 60})),
            (RowKind::Insert, json!({"id": 61, "order_id": 2, "quantity": 3, "price": "0.10"})),
        ],
    );
    run_gold(&config).await;
    let rows = gold(&catalog).await;
    assert_eq!(rows.len(), 60, "line 60 gone, line 61 new");
    assert!(!rows.contains_key(&60));
    assert_eq!(rows[&61], (Some(7), None, Some(30)));
    assert!(rows.values().all(|r| r.1.is_none()), "customer 7 deleted: {rows:?}");
    // The rollup over the wide table, its per-value counts rebuilt from the
    // wide table's state on every start: line 61 (0.30) is the new minimum,
    // line 60's removal leaves 2.50 the maximum, both orders are customer 7's.
    let rolled = by_customer(&catalog).await;
    assert_eq!(rolled, BTreeMap::from([(Some(7), (30, 250, 2, 60))]));
}
