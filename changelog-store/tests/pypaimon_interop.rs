//! Interop with pypaimon 2.1.0 (an independent reader/writer), run with the Python in
//! `LAKEHOUSE_TEST_PYTHON` (tests/run.sh sets it to a venv with
//! tests/interop/requirements.txt). Without it these tests fail; they never skip.

mod common;

use changelog_store::{Datum, ReadAt, RowKind, Table};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let p = std::env::var_os("LAKEHOUSE_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        panic!("LAKEHOUSE_TEST_PYTHON is not set: run through tests/run.sh, or point it at a Python with tests/interop/requirements.txt installed")
    });
    let ok = Command::new(&p).args(["-c", "import pypaimon"]).status().is_ok_and(|s| s.success());
    assert!(ok, "LAKEHOUSE_TEST_PYTHON={} cannot import pypaimon", p.display());
    p
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/pypaimon_check.py")
}

fn pypaimon_rows(py: &Path, warehouse: &Path, snapshot: Option<i64>) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(py);
    cmd.arg(script()).arg("read").arg(warehouse).arg("db.t");
    if let Some(s) = snapshot {
        cmd.arg("--snapshot").arg(s.to_string());
    }
    let out = cmd.output().expect("runs pypaimon");
    assert!(out.status.success(), "pypaimon failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

fn our_rows(table: &Table, at: ReadAt) -> Vec<serde_json::Value> {
    let mut rows: Vec<serde_json::Value> =
        table.scan(at).expect("scans").iter().map(|r| table.row_to_json(r)).collect();
    rows.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
    rows
}

fn sorted(mut rows: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    rows.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
    rows
}

#[test]
fn pypaimon_reads_what_we_write_through_levels() {
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = spec(&[("bucket", "3"), ("num-sorted-run.compaction-trigger", "3"), ("target-file-size", "8 kb")]);
    let table = Table::create_in_warehouse(dir.path(), "db", "t", s).expect("creates");
    let c = table.new_committer("interop");
    for i in 0..8i64 {
        let mut w = table.new_write().expect("writer");
        for k in 0..300 {
            if (k + i) % 7 == 0 {
                w.write(row(k, None, None, i), RowKind::Delete).expect("writes");
            } else {
                let text = format!("value {k} at commit {i} with some padding");
                w.write(row(k, Some(k * 100 + i), Some(&text), i), RowKind::Insert).expect("writes");
            }
        }
        c.commit(i + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
        // pypaimon must agree at every snapshot, whatever mix of levels it holds.
        assert_eq!(sorted(pypaimon_rows(&py, dir.path(), None)), our_rows(&table, ReadAt::Latest), "after commit {i}");
    }
    table.compact("interop", 100, true).expect("full compaction");
    assert_eq!(sorted(pypaimon_rows(&py, dir.path(), None)), our_rows(&table, ReadAt::Latest));
    assert_eq!(sorted(pypaimon_rows(&py, dir.path(), Some(2))), our_rows(&table, ReadAt::Snapshot(2)));
}

#[test]
fn we_read_what_pypaimon_writes() {
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(&py).arg(script()).arg("write").arg(dir.path()).arg("db.t").output().expect("runs pypaimon");
    assert!(out.status.success(), "pypaimon failed: {}", String::from_utf8_lossy(&out.stderr));
    let table = Table::open(dir.path().join("db.db").join("t")).expect("opens");
    assert_eq!(our_rows(&table, ReadAt::Latest), sorted(pypaimon_rows(&py, dir.path(), None)));
    let three = table.lookup(ReadAt::Latest, &[Datum::Long(3)]).expect("looks up").expect("exists");
    assert_eq!(three[2], Datum::String("updated".into()));
    // And we can keep writing to it: sequence numbers continue, pypaimon agrees.
    let mut w = table.new_write().expect("writer");
    w.write(row(3, Some(7), Some("ours"), 3), RowKind::Insert).expect("writes");
    w.write(row(4, None, None, 3), RowKind::Delete).expect("writes");
    table.new_committer("rust").commit(1, w.prepare_commit().expect("prepares"), None).expect("commits");
    assert_eq!(our_rows(&table, ReadAt::Latest), sorted(pypaimon_rows(&py, dir.path(), None)));
}

#[test]
fn partitioned_table_round_trips_and_pypaimon_agrees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = changelog_store::TableSpec {
        columns: vec![("dt".into(), "STRING".into()), ("k".into(), "BIGINT".into()), ("v".into(), "INT".into())],
        primary_keys: vec!["dt".into(), "k".into()],
        partition_keys: vec!["dt".into()],
        options: std::collections::BTreeMap::from([("bucket".to_string(), "2".to_string())]),
    };
    let table = Table::create_in_warehouse(dir.path(), "db", "t", spec).expect("creates");
    let mut w = table.new_write().expect("writer");
    for (dt, k, v) in [("2026-01-01", 1, 10), ("2026-01-02", 1, 20), ("2026-01-01", 2, 30), ("2026-01-01", 1, 11)] {
        w.write_json(&serde_json::json!({"dt": dt, "k": k, "v": v}), RowKind::Insert).expect("writes");
    }
    table.new_committer("p").commit(1, w.prepare_commit().expect("prepares"), None).expect("commits");
    assert!(
        table.path().join("dt=2026-01-01").join("bucket-0").exists()
            || table.path().join("dt=2026-01-01").join("bucket-1").exists()
    );
    let got = table
        .lookup(ReadAt::Latest, &[Datum::String("2026-01-01".into()), Datum::Long(1)])
        .expect("looks up")
        .expect("exists");
    assert_eq!(got[2], Datum::Int(11));
    assert_eq!(table.scan(ReadAt::Latest).expect("scans").len(), 3);
    table.verify(ReadAt::Latest).expect("metadata consistent");
    let py = python();
    assert_eq!(sorted(pypaimon_rows(&py, dir.path(), None)), our_rows(&table, ReadAt::Latest));
}

/// DECIMAL keys and values, compact (<= 18 digits: INT32/INT64 in Parquet, a long in
/// BinaryRow) and wide (FIXED_LEN_BYTE_ARRAY, the unscaled bytes): pypaimon reads what we
/// write, through compaction, with deletes and sums of decimals.
#[test]
fn decimal_columns_pypaimon_reads_what_we_write() {
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = changelog_store::TableSpec {
        columns: vec![
            ("id".into(), "DECIMAL(20, 0) NOT NULL".into()),
            ("price".into(), "DECIMAL(10, 2)".into()),
            ("total".into(), "DECIMAL(38, 6)".into()),
        ],
        primary_keys: vec!["id".into()],
        partition_keys: vec![],
        options: std::collections::BTreeMap::from([
            ("bucket".to_string(), "3".to_string()),
            ("merge-engine".to_string(), "aggregation".to_string()),
            ("fields.total.aggregate-function".to_string(), "sum".to_string()),
        ]),
    };
    let table = Table::create_in_warehouse(dir.path(), "db", "t", spec).expect("creates");
    let c = table.new_committer("dec");
    for round in 0..3i64 {
        let mut w = table.new_write().expect("writer");
        for i in 0..40i64 {
            let id = format!("{}", 10_000_000_000_000_000_000u128 + (i * 7 % 40) as u128);
            // Prices as JSON numbers and as text; totals summed across commits.
            let row = serde_json::json!({"id": id, "price": (i * 100 + round) as f64 / 100.0, "total": format!("{i}.00000{round}")});
            w.write_json(&row, RowKind::Insert).expect("writes");
        }
        c.commit(round + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
        assert_eq!(sorted(pypaimon_rows(&py, dir.path(), None)), our_rows(&table, ReadAt::Latest), "after {round}");
    }
    // Key offset 3 is i = 29 (29 * 7 % 40): its total is 29 + 29.000001 + 29.000002.
    let key = Datum::Decimal(changelog_store::Decimal::parse("10000000000000000003", 20, 0).expect("fits"));
    let got = table.lookup(ReadAt::Latest, &[key]).expect("looks up").expect("exists");
    assert_eq!(got[2], Datum::Decimal(changelog_store::Decimal::parse("87.000003", 38, 6).expect("fits")));
    table.compact("dec", 10, true).expect("full compaction");
    table.verify(ReadAt::Latest).expect("metadata consistent");
    assert_eq!(sorted(pypaimon_rows(&py, dir.path(), None)), our_rows(&table, ReadAt::Latest));
    // More digits than the scale holds is refused, not rounded.
    let mut w = table.new_write().expect("writer");
    let err = w.write_json(&serde_json::json!({"id": "1", "price": "1.005", "total": "0"}), RowKind::Insert);
    assert!(err.is_err_and(|e| e.to_string().contains("fractional digits")));
}

/// Files pypaimon (pyarrow) writes with DECIMAL columns read back here, and our rows for
/// its keys land in the buckets pypaimon chose (else the key would show up twice).
#[test]
fn decimal_columns_we_read_what_pypaimon_writes() {
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(&py)
        .arg(script())
        .arg("write-decimal")
        .arg(dir.path())
        .arg("db.t")
        .output()
        .expect("runs pypaimon");
    assert!(out.status.success(), "pypaimon failed: {}", String::from_utf8_lossy(&out.stderr));
    let table = Table::open(dir.path().join("db.db").join("t")).expect("opens");
    assert_eq!(our_rows(&table, ReadAt::Latest), sorted(pypaimon_rows(&py, dir.path(), None)));
    assert_eq!(table.scan(ReadAt::Latest).expect("scans").len(), 12);
    let mut w = table.new_write().expect("writer");
    for i in 0..12u64 {
        let row = serde_json::json!({"id": (10_000_000_000_000_000_000u128 + u128::from(i)).to_string(), "price": "0.01", "total": "1"});
        w.write_json(&row, RowKind::Insert).expect("writes");
    }
    table.new_committer("rust").commit(1, w.prepare_commit().expect("prepares"), None).expect("commits");
    let ours = our_rows(&table, ReadAt::Latest);
    assert_eq!(ours.len(), 12, "one row per key: {ours:?}");
    assert_eq!(ours, sorted(pypaimon_rows(&py, dir.path(), None)));
}
