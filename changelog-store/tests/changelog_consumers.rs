//! A changelog reader that falls behind expiry gets an out-of-range error, never a
//! changelog with a silent hole; a registered consumer keeps what it still needs, and
//! a consumer nobody advances stops pinning the table after `consumer.expiration-time`.

mod common;

use changelog_store::clock::ManualClock;
use changelog_store::{Error, ErrorKind, RowKind, Table};
use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).expect("clock after 1970")
}

/// A table keeping at most 2 snapshots, with `n` APPEND snapshots of one row each.
fn table_with_snapshots(dir: &std::path::Path, extra: &[(&str, &str)], n: i64) -> (Table, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::new(now_millis());
    let mut opts =
        vec![("changelog-producer", "input"), ("snapshot.num-retained.min", "1"), ("snapshot.num-retained.max", "2")];
    opts.extend_from_slice(extra);
    let table = Table::create_with_clock(dir.join("db.db").join("t"), spec(&opts), clock.clone()).expect("creates");
    commit_rows(&table, 1..=n);
    (table, clock)
}

fn commit_rows(table: &Table, ids: std::ops::RangeInclusive<i64>) {
    let c = table.new_committer("writer");
    for i in ids {
        let mut w = table.new_write().expect("writer");
        w.write(row(i, Some(i), Some("x"), i), RowKind::Insert).expect("writes");
        c.commit(i, w.prepare_commit().expect("prepares"), None).expect("commits");
    }
}

#[test]
fn lagging_reader_gets_out_of_range_naming_table_and_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (table, _) = table_with_snapshots(dir.path(), &[], 6);
    let report = table.expire().expect("expires");
    assert_eq!(report.expired_snapshots, vec![1, 2, 3, 4]);

    let e = table.changes_since(2).expect_err("snapshots 2..=4 are gone: refused, not skipped");
    assert!(matches!(e, Error::SnapshotExpired { requested: 2, earliest: 5, .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::OutOfRange);
    assert!(!e.is_retryable());
    let msg = e.to_string();
    assert!(msg.contains(&table.path().display().to_string()) && msg.contains("snapshot 2"), "{msg}");
    assert!(msg.contains("earliest retained snapshot: 5"), "{msg}");

    let e = table.snapshot_ids_since(4).expect_err("refused");
    assert!(matches!(e, Error::SnapshotExpired { requested: 4, earliest: 5, .. }), "{e}");
    let e = table.change_batches(3).expect_err("refused");
    assert!(matches!(e, Error::SnapshotExpired { requested: 3, earliest: 5, .. }), "{e}");
    let e = table.changes_of(1).expect_err("refused");
    assert!(matches!(e, Error::SnapshotExpired { requested: 1, earliest: 5, .. }), "{e}");

    // From the earliest retained one on, and past the latest, reading works.
    let got: Vec<i64> = table.changes_since(5).expect("reads").iter().map(|s| s.snapshot_id).collect();
    assert_eq!(got, vec![5, 6]);
    assert!(table.changes_since(7).expect("caught up").is_empty());
    let e = table.change_batches(7).expect_err("not committed yet");
    assert!(matches!(e, Error::SnapshotNotFound { id: 7, .. }), "{e}");
}

#[test]
fn registered_consumer_keeps_its_snapshots_until_it_advances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (table, _) = table_with_snapshots(dir.path(), &[], 3);
    table.register_consumer("gold", 2).expect("registers");
    assert_eq!(table.consumer("gold").expect("reads"), Some(2));
    commit_rows(&table, 4..=8);

    let report = table.expire().expect("expires");
    assert_eq!(report.expired_snapshots, vec![1], "snapshot.num-retained.max yields to the consumer");
    let got: Vec<i64> =
        table.changes_since(2).expect("consumer's snapshots kept").iter().map(|s| s.snapshot_id).collect();
    assert_eq!(got, (2..=8).collect::<Vec<_>>());

    // The consumer read through 5 and advances; expiry may now take 2..=4 (and no more).
    table.register_consumer("gold", 6).expect("advances");
    let report = table.expire().expect("expires");
    assert_eq!(report.expired_snapshots, vec![2, 3, 4, 5]);
    assert_eq!(table.snapshots().expect("lists").first().map(|s| s.id), Some(6));

    // Moving a consumer back before what is retained would promise changes that are gone.
    let e = table.register_consumer("late", 3).expect_err("snapshot 3 is gone");
    assert!(matches!(e, Error::SnapshotExpired { requested: 3, earliest: 6, .. }), "{e}");
    assert_eq!(table.consumer("late").expect("reads"), None);

    table.remove_consumer("gold").expect("removes");
    assert_eq!(table.expire().expect("expires").expired_snapshots, vec![6]);
}

#[test]
fn consumer_not_advanced_within_expiration_time_stops_pinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (table, _) = table_with_snapshots(dir.path(), &[("consumer.expiration-time", "1 h")], 3);
    table.register_consumer("stale", 1).expect("registers");
    table.register_consumer("live", 2).expect("registers");
    commit_rows(&table, 4..=6);
    // `stale` was last advanced two hours ago; `live` just now.
    let stale = table.path().join("consumer").join("consumer-stale");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options().write(true).open(&stale).expect("opens").set_modified(two_hours_ago).expect("sets mtime");

    let report = table.expire().expect("expires");
    assert_eq!(report.expired_consumers, vec!["stale".to_string()]);
    assert!(!stale.exists());
    assert_eq!(report.expired_snapshots, vec![1], "`live` still keeps snapshot 2 on");
    assert_eq!(table.consumer("live").expect("reads"), Some(2));

    let e = Table::create(dir.path().join("bad"), spec(&[("consumer.expiration-time", "soon")])).expect_err("refused");
    assert!(e.to_string().contains("consumer.expiration-time"), "{e}");
}
