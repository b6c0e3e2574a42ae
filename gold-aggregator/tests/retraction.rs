//! Retraction, against a real changelog-store source and Iceberg catalog: the
//! current min and max deleted, a distinct value's last copy removed, the
//! only row of a group deleted (its Gold row disappears in every window), a
//! row moving to another window, a late event for a closed day — each read
//! back from Gold (position deletes applied) after a restart of the worker.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use changelog_store::spec::snapshot::CommitKind;
use changelog_store::{ReadAt, RowKind, Table};
use lakehouse::catalog::SqlCatalog;
use serde_json::json;

mod common;
use common::{commit, config, gold_batches, run_gold, silver_table};

const DEFS: &str = r#"
[[rollup]]
name = "by_status"
source = "orders"
time = "order_date"
windows = ["day", "month"]
group_by = ["status"]
[[rollup.measure]]
name = "revenue"
fn = "sum"
column = "total"
[[rollup.measure]]
name = "orders"
fn = "count"
[[rollup.measure]]
name = "smallest"
fn = "min"
column = "total"
[[rollup.measure]]
name = "largest"
fn = "max"
column = "total"
[[rollup.measure]]
name = "customers"
fn = "count_distinct"
column = "customer_id"
"#;

/// 2026-01-10 as days since the epoch.
const D: i64 = 20_463;

fn source(dir: &Path) -> Table {
    silver_table(
        dir,
        "orders",
        &[
            ("id", "BIGINT NOT NULL"),
            ("customer_id", "BIGINT"),
            ("status", "STRING"),
            ("order_date", "DATE"),
            ("total", "DECIMAL(12, 2)"),
        ],
    )
}

fn order(id: i64, customer: i64, status: &str, day: i64, total: &str) -> serde_json::Value {
    json!({"id": id, "customer_id": customer, "status": status, "order_date": day, "total": total})
}

type Row = (String, i32, Option<String>, Option<i128>, i64, Option<i128>, Option<i128>, i64);

async fn gold_rows(catalog: &SqlCatalog) -> Vec<Row> {
    let batches = gold_batches(catalog, "by_status").await;
    let mut out = Vec::new();
    for b in &batches {
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let d = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Decimal128Type>().clone();
        let l = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let (window, status) = (s("window"), s("status"));
        let start = b.column_by_name("window_start").unwrap().as_primitive::<Date32Type>().clone();
        let (revenue, smallest, largest) = (d("revenue"), d("smallest"), d("largest"));
        let (orders, customers) = (l("orders"), l("customers"));
        let opt = |c: &arrow_array::Decimal128Array, i: usize| c.is_valid(i).then(|| c.value(i));
        for i in 0..b.num_rows() {
            out.push((
                window.value(i).to_string(),
                start.value(i),
                status.is_valid(i).then(|| status.value(i).to_string()),
                opt(&revenue, i),
                orders.value(i),
                opt(&smallest, i),
                opt(&largest, i),
                customers.value(i),
            ));
        }
    }
    out.sort();
    out
}

fn day_rows(rows: &[Row]) -> Vec<Row> {
    rows.iter().filter(|r| r.0 == "day").cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn retractions_are_exact_and_empty_groups_disappear() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), DEFS);
    let orders = source(dir.path());
    let catalog = SqlCatalog::connect(&config.catalog).await.unwrap();

    // Paid on day D: 10.00 (customer 1), 30.00 (customer 2), 20.00 (customer 1); shipped: one order.
    commit(
        &orders,
        &[
            (RowKind::Insert, order(1, 1, "paid", D, "10.00")),
            (RowKind::Insert, order(2, 2, "paid", D, "30.00")),
            (RowKind::Insert, order(3, 1, "paid", D, "20.00")),
            (RowKind::Insert, order(4, 3, "shipped", D, "5.00")),
        ],
    );
    run_gold(&config).await;
    let d = D as i32;
    let paid = |rev, n, min, max, cust| {
        ("day".to_string(), d, Some("paid".to_string()), Some(rev), n, Some(min), Some(max), cust)
    };
    let shipped = ("day".to_string(), d, Some("shipped".to_string()), Some(500), 1, Some(500), Some(500), 1);
    assert_eq!(day_rows(&gold_rows(&catalog).await), [paid(6000, 3, 1000, 3000, 2), shipped.clone()]);

    // The current max (30.00, customer 2's only order) and min (10.00) deleted;
    // the shipped group's only order deleted.
    commit(
        &orders,
        &[
            (RowKind::Delete, json!({"id": 2})),
            (RowKind::Delete, json!({"id": 1})),
            (RowKind::Delete, json!({"id": 4})),
        ],
    );
    run_gold(&config).await;
    let rows = gold_rows(&catalog).await;
    assert_eq!(day_rows(&rows), [paid(2000, 1, 2000, 2000, 1)], "min, max and distinct uncovered; shipped gone");
    assert!(
        rows.iter().all(|r| r.2.as_deref() != Some("shipped")),
        "the shipped group is gone in every window: {rows:?}"
    );

    // Order 3 moves 40 days on (another month); a late order lands 100 days back.
    commit(
        &orders,
        &[
            (RowKind::Insert, order(3, 1, "paid", D + 40, "25.00")),
            (RowKind::Insert, order(5, 4, "paid", D - 100, "7.50")),
        ],
    );
    run_gold(&config).await;
    let rows = gold_rows(&catalog).await;
    let at = |day: i64, rev, cust| {
        ("day".to_string(), day as i32, Some("paid".to_string()), Some(rev), 1, Some(rev), Some(rev), cust)
    };
    assert_eq!(day_rows(&rows), [at(D - 100, 750, 1), at(D + 40, 2500, 1)], "the row left day D, which is gone");
    let months: Vec<i32> = rows.iter().filter(|r| r.0 == "month").map(|r| r.1).collect();
    assert_eq!(months.len(), 2, "one month row per live month: {rows:?}");
}

/// The state table does not keep the per-value counts of min, max and
/// count_distinct (they grow with the group, and were rewritten whole on every
/// commit): one order changed in a day (and month) of 300 distinct customers
/// and totals writes a few hundred bytes of state, and a restart (which
/// rebuilds the counts from the source) still gives min, max and the distinct
/// count exactly.
#[tokio::test(flavor = "multi_thread")]
async fn the_state_keeps_no_per_value_counts_and_a_restart_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), DEFS);
    let orders = source(dir.path());
    let catalog = SqlCatalog::connect(&config.catalog).await.unwrap();
    let rows: Vec<_> = (1..=300).map(|i| (RowKind::Insert, order(i, i, "paid", D, &format!("{i}.00")))).collect();
    commit(&orders, &rows);
    run_gold(&config).await;
    // Order 300 (the max, 300.00) becomes 0.50: a new min, and the max is 299.00.
    commit(&orders, &[(RowKind::Insert, order(300, 300, "paid", D, "0.50"))]);
    run_gold(&config).await;
    let d = D as i32;
    let sum: i128 = (1..300).map(|i| i * 100).sum::<i128>() + 50;
    let day = ("day".to_string(), d, Some("paid".to_string()), Some(sum), 300, Some(50), Some(29_900), 300);
    assert_eq!(day_rows(&gold_rows(&catalog).await), [day]);

    let state = Table::open(config.gold.state_table("by_status")).unwrap();
    let latest = state.latest_snapshot().unwrap().unwrap().id;
    let changes = (1..=latest)
        .rev()
        .map(|n| state.change_batches(n).unwrap())
        .find(|c| c.commit_kind == CommitKind::Append)
        .unwrap();
    let rows: usize = changes.batches.iter().map(|b| b.rows.num_rows()).sum();
    let text: usize = changes
        .batches
        .iter()
        .flat_map(|b| b.rows.columns().iter())
        .filter_map(|c| c.as_string_opt::<i32>())
        .map(|c| c.iter().flatten().map(str::len).sum::<usize>())
        .sum();
    eprintln!("the one-order commit wrote {rows} state changes, {text} bytes of text");
    assert!(rows > 0, "the commit wrote no state");
    assert!(text < 4000, "one changed order rewrote {text} bytes of state: the group's values were written whole");
    let held: usize =
        state.scan_batches(ReadAt::Snapshot(latest)).unwrap().iter().map(arrow_array::RecordBatch::num_rows).sum();
    assert_eq!(held, 2, "state rows: one per group (day and month), and no per-value rows");
}
