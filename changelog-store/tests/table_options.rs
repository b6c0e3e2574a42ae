//! Paimon options the store does not implement are refused at create (never accepted
//! and ignored); `bucket-key` follows Paimon's rules; `aggregation.remove-record-on-delete`
//! removes rows.

mod common;

use changelog_store::{Datum, Error, ErrorKind, ReadAt, RowKind, Table, TableSpec};
use common::*;

fn create(dir: &std::path::Path, name: &str, spec: TableSpec) -> changelog_store::Result<Table> {
    Table::create_in_warehouse(dir, "db", name, spec)
}

#[test]
fn options_that_would_be_ignored_are_refused_at_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = [
        ("deletion-vectors.enabled", "true"),
        ("fields.v.sequence-group", "s"),
        ("sequence.field.sort-order", "descending"),
        ("bucket-function.type", "mod"),
        ("partition.default-name", "__NULL__"),
        ("partial-update.remove-record-on-delete", "true"),
    ];
    for (i, (key, value)) in refused.iter().enumerate() {
        let mut s = spec(&[(key, value)]);
        if key.starts_with("partial-update") || key.contains("sequence-group") {
            s.options.insert("merge-engine".into(), "partial-update".into());
        }
        let e = create(dir.path(), &format!("t{i}"), s).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{key}: {e}");
        assert!(e.to_string().contains(key) && e.to_string().contains(value), "{key}: {e}");
        assert!(!dir.path().join("db.db").join(format!("t{i}")).join("schema").exists(), "{key}: nothing created");
    }
    // Their defaults are accepted.
    let defaults = [
        ("deletion-vectors.enabled", "false"),
        ("sequence.field.sort-order", "ascending"),
        ("bucket-function.type", "default"),
        ("partition.default-name", "__DEFAULT_PARTITION__"),
    ];
    create(dir.path(), "defaults", spec(&defaults)).expect("defaults accepted");
}

#[test]
fn bucket_key_must_be_part_of_the_primary_key_and_not_of_the_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with = |bucket_key: &str, pk: &[&str], partition: &[&str]| {
        let mut s = spec(&[("bucket-key", bucket_key)]);
        s.primary_keys = pk.iter().map(|c| c.to_string()).collect();
        s.partition_keys = partition.iter().map(|c| c.to_string()).collect();
        s
    };
    let cases = [
        ("v", with("v", &["k"], &[]), "not in the primary key"),
        ("ts", with("ts", &["k", "ts"], &["ts"]), "partition key"),
        ("k,s", with("k,s", &["k"], &[]), "not in the primary key"),
        ("k,k", with("k,k", &["k", "s"], &[]), "twice"),
        ("nope", with("nope", &["k"], &[]), "unknown column"),
    ];
    for (i, (value, s, why)) in cases.into_iter().enumerate() {
        let e = create(dir.path(), &format!("t{i}"), s).expect_err("refused");
        assert!(matches!(&e, Error::InvalidOption { key, .. } if key == "bucket-key"), "{value}: {e}");
        assert!(e.to_string().contains(why), "{value}: {e}");
    }
    let t = create(dir.path(), "ok", with("s", &["k", "s", "ts"], &["ts"])).expect("a subset of the trimmed key");
    let mut w = t.new_write().expect("writer");
    w.write(row(1, Some(1), Some("a"), 7), RowKind::Insert).expect("writes");
    t.new_committer("u").commit(1, w.prepare_commit().expect("prepares"), None).expect("commits");
    assert_eq!(t.scan(ReadAt::Latest).expect("scans").len(), 1);
}

#[test]
fn aggregation_delete_removes_the_row_with_remove_record_on_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, remove) in [("removing", true), ("retracting", false)] {
        let s = spec(&[
            ("merge-engine", "aggregation"),
            ("fields.v.aggregate-function", "sum"),
            ("aggregation.remove-record-on-delete", if remove { "true" } else { "false" }),
            ("changelog-producer", "lookup"),
        ]);
        let t = create(dir.path(), name, s).expect("creates");
        let c = t.new_committer("u");
        let batches: [&[(i64, RowKind)]; 3] =
            [&[(5, RowKind::Insert), (3, RowKind::Insert)], &[(1, RowKind::Delete)], &[(2, RowKind::Insert)]];
        let mut states = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            let mut w = t.new_write().expect("writer");
            for &(v, kind) in batch.iter() {
                w.write(row(1, Some(v), Some("x"), 0), kind).expect("writes");
            }
            c.commit(i as i64 + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
            let rows = t.scan(ReadAt::Latest).expect("scans");
            states.push(rows.iter().map(|r| r[1].clone()).collect::<Vec<_>>());
        }
        let changes: Vec<Vec<(RowKind, Datum)>> = t
            .changes_since(1)
            .expect("changelog")
            .into_iter()
            .map(|s| s.changes.into_iter().map(|c| (c.kind, c.row[1].clone())).collect())
            .collect();
        if remove {
            assert_eq!(states, vec![vec![Datum::Long(8)], vec![], vec![Datum::Long(2)]]);
            assert_eq!(changes[1], vec![(RowKind::Delete, Datum::Long(8))], "the removal is a -D of the row");
            assert_eq!(changes[2], vec![(RowKind::Insert, Datum::Long(2))], "the row starts afresh");
        } else {
            assert_eq!(states, vec![vec![Datum::Long(8)], vec![Datum::Long(7)], vec![Datum::Long(9)]]);
        }
        t.compact("u", 10, true).expect("compacts");
        let compacted: Vec<Datum> = t.scan(ReadAt::Latest).expect("scans").iter().map(|r| r[1].clone()).collect();
        assert_eq!(&compacted, states.last().expect("three states"), "{name}: compaction agrees");
    }
}
