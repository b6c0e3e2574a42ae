//! Two writers on one bucket are detected at commit instead of interleaving their
//! sequence numbers; writers on other buckets, the writer's own commits and a dedicated
//! compactor are not conflicts.

mod common;

use changelog_store::{Error, ErrorKind, ReadAt, RowKind, Table};
use common::*;

/// Keys `(a, b, c)`: `a` and `b` in one bucket, `c` in another.
fn keys(table: &Table) -> (i64, i64, i64) {
    let bucket = |k: i64| table.info().bucket_of(&row(k, None, None, 0));
    let b = (1..).find(|&k| bucket(k) == bucket(0)).expect("a second key of bucket 0's");
    let c = (1..).find(|&k| bucket(k) != bucket(0)).expect("a key of another bucket");
    (0, b, c)
}

fn table(dir: &std::path::Path) -> Table {
    let t = Table::create_in_warehouse(dir, "db", "t", spec(&[("changelog-producer", "input")])).expect("creates");
    let mut w = t.new_write().expect("writer");
    w.write(row(100, Some(0), None, 0), RowKind::Insert).expect("writes");
    t.new_committer("setup").commit(1, w.prepare_commit().expect("prepares"), None).expect("commits");
    t
}

#[test]
fn second_writer_on_a_bucket_is_refused_with_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = table(dir.path());
    let (a, b, _) = keys(&t);
    let mut first = t.new_write().expect("writer");
    let mut second = t.new_write().expect("writer");
    assert_eq!((first.base_snapshot(), second.base_snapshot()), (1, 1));
    first.write(row(a, Some(1), Some("first"), 0), RowKind::Insert).expect("writes");
    second.write(row(b, Some(2), Some("second"), 0), RowKind::Insert).expect("writes");
    t.new_committer("writer-1").commit(1, first.prepare_commit().expect("prepares"), None).expect("commits");

    let e = t
        .new_committer("writer-2")
        .commit(1, second.prepare_commit().expect("prepares"), None)
        .expect_err("writer-2 built on snapshot 1, writer-1 wrote the bucket in snapshot 2");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.is_retryable(), "a new writer from the latest snapshot may commit");
    assert!(matches!(e, Error::Conflict { base: Some(1), .. }), "{e}");
    let msg = e.to_string();
    for part in ["`writer-1`", "snapshot 2", "`writer-2`", "snapshot 1", "bucket "] {
        assert!(msg.contains(part), "{part} missing in: {msg}");
    }
    assert_eq!(t.snapshots().expect("lists").len(), 2, "nothing published");

    // Retried from the latest snapshot, the second writer lands.
    let mut again = t.new_write().expect("writer");
    again.write(row(b, Some(2), Some("second"), 0), RowKind::Insert).expect("writes");
    t.new_committer("writer-2").commit(1, again.prepare_commit().expect("prepares"), None).expect("commits");
    assert_eq!(t.scan(ReadAt::Latest).expect("scans").len(), 3);
}

#[test]
fn other_buckets_own_commits_and_compactions_are_not_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = table(dir.path());
    let (a, b, c) = keys(&t);
    let mut mine = t.new_write().expect("writer");
    let mut other = t.new_write().expect("writer");
    let me = t.new_committer("me");
    // Another user on another bucket.
    other.write(row(c, Some(1), None, 0), RowKind::Insert).expect("writes");
    t.new_committer("other").commit(1, other.prepare_commit().expect("prepares"), None).expect("commits");
    // My own commits, one writer kept across them.
    mine.write(row(a, Some(1), None, 0), RowKind::Insert).expect("writes");
    me.commit(1, mine.prepare_commit().expect("prepares"), None).expect("other bucket: no conflict");
    mine.write(row(b, Some(1), None, 0), RowKind::Insert).expect("writes");
    me.commit(2, mine.prepare_commit().expect("prepares"), None).expect("own earlier commit: no conflict");
    // A dedicated compactor rewrites my bucket: it adds no records.
    t.compact("compactor", 1, true).expect("compacts");
    mine.write(row(a, Some(5), None, 0), RowKind::Insert).expect("writes");
    me.commit(3, mine.prepare_commit().expect("prepares"), None).expect("foreign COMPACT: no conflict");
    let rows = t.scan(ReadAt::Latest).expect("scans");
    assert!(rows.iter().any(|r| r[0] == changelog_store::Datum::Long(a) && r[1] == changelog_store::Datum::Long(5)));
    assert_eq!(rows.len(), 4);
}
