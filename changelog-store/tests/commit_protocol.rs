//! Commit protocol: crash before publishing, idempotent retries, concurrent committers,
//! snapshot properties.

mod common;

use changelog_store::commit::FailPoint;
use changelog_store::{CommitOutcome, Datum, ErrorKind, ReadAt, RowKind, Table};
use common::*;
use std::collections::BTreeMap;

fn sum_table(dir: &std::path::Path) -> Table {
    let mut s = spec(&engine_options(Engine::Aggregation));
    s.options.insert("bucket".into(), "3".into());
    Table::create(dir.join("db.db").join("t"), s).expect("creates")
}

fn total(table: &Table) -> i64 {
    table
        .scan(ReadAt::Latest)
        .expect("scans")
        .iter()
        .map(|r| match r[1] {
            Datum::Long(v) => v,
            _ => 0,
        })
        .sum()
}

#[test]
fn crash_between_writing_files_and_publishing_leaves_nothing_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = sum_table(dir.path());
    let mut w = table.new_write().expect("writer");
    for k in 0..10 {
        w.write(row(k, Some(1), None, 0), RowKind::Insert).expect("writes");
    }
    let messages = w.prepare_commit().expect("prepares");
    let mut c = table.new_committer("job");
    c.set_fail_point(Some(FailPoint::BeforePublish));
    assert!(c.commit(1, messages.clone(), None).is_err());
    let reopened = Table::open(table.path()).expect("reopens");
    assert!(reopened.latest_snapshot().expect("reads").is_none());
    assert!(reopened.scan(ReadAt::Latest).expect("scans").is_empty());
    // Recovery: the same messages, the same identifier, a fresh committer.
    let outcome = reopened.new_committer("job").commit(1, messages, None).expect("commits");
    assert_eq!(outcome, CommitOutcome::Committed(vec![1]));
    assert_eq!(total(&reopened), 10);
}

#[test]
fn retried_commit_is_applied_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = sum_table(dir.path());
    let mut w = table.new_write().expect("writer");
    for k in 0..10 {
        w.write(row(k, Some(5), None, 0), RowKind::Insert).expect("writes");
    }
    let messages = w.prepare_commit().expect("prepares");
    let c = table.new_committer("job");
    assert!(matches!(c.commit(7, messages.clone(), None).expect("commits"), CommitOutcome::Committed(_)));
    assert_eq!(c.commit(7, messages.clone(), None).expect("retries"), CommitOutcome::AlreadyCommitted);
    // An older identifier is also recognised as committed.
    assert_eq!(c.commit(3, messages, None).expect("retries"), CommitOutcome::AlreadyCommitted);
    assert_eq!(total(&table), 50);
    assert_eq!(table.snapshots().expect("lists").len(), 1);
}

#[test]
fn snapshot_properties_carry_the_source_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = sum_table(dir.path());
    let mut w = table.new_write().expect("writer");
    w.write(row(1, Some(1), None, 0), RowKind::Insert).expect("writes");
    let props = BTreeMap::from([("bronze.snapshot".to_string(), "991".to_string())]);
    table.new_committer("job").commit(1, w.prepare_commit().expect("prepares"), Some(props.clone())).expect("commits");
    // An empty batch still records progress.
    let props2 = BTreeMap::from([("bronze.snapshot".to_string(), "992".to_string())]);
    let out = table.new_committer("job").commit(2, vec![], Some(props2.clone())).expect("commits");
    assert_eq!(out, CommitOutcome::Committed(vec![2]));
    let snaps = table.snapshots().expect("lists");
    assert_eq!(snaps[0].properties.as_ref(), Some(&props));
    assert_eq!(snaps[1].properties.as_ref(), Some(&props2));
}

#[test]
fn concurrent_appenders_all_land_in_contiguous_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = sum_table(dir.path());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let table = table.clone();
            std::thread::spawn(move || {
                let committer = table.new_committer(format!("writer-{t}"));
                // One writer per bucket (Paimon's rule, checked at commit): thread t
                // writes only keys of bucket t.
                let keys = (0..).filter(|&k| table.info().bucket_of(&row(k, Some(1), None, 0)) == t);
                for (i, k) in (0..10).zip(keys) {
                    let mut w = table.new_write().expect("writer").with_compaction(false);
                    w.write(row(k, Some(1), None, 0), RowKind::Insert).expect("writes");
                    committer
                        .commit(i + 1, w.prepare_commit().expect("prepares"), None)
                        .expect("commits despite races");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let snaps = table.snapshots().expect("lists");
    assert_eq!(snaps.len(), 20);
    assert!(snaps.windows(2).all(|w| w[1].id == w[0].id + 1));
    assert_eq!(total(&table), 20);
    assert_eq!(snaps.last().map(|s| s.total_record_count), Some(20));
}

#[test]
fn losing_compaction_fails_cleanly_with_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = sum_table(dir.path());
    let c = table.new_committer("writer");
    for i in 0..4 {
        let mut w = table.new_write().expect("writer").with_compaction(false);
        for k in 0..20 {
            w.write(row(k, Some(1), None, i), RowKind::Insert).expect("writes");
        }
        c.commit(i + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
    }
    // Two compactors start from the same snapshot.
    let mut a = table.new_write().expect("writer");
    let mut b = table.new_write().expect("writer");
    let ma = a.full_compact().expect("compacts");
    let mb = b.full_compact().expect("compacts");
    let won = table.new_committer("compactor-a").commit(1, ma, None).expect("first wins");
    assert!(matches!(won, CommitOutcome::Committed(_)));
    let lost = table.new_committer("compactor-b").commit(1, mb, None);
    let err = lost.expect_err("second must conflict");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.is_retryable());
    assert_eq!(total(&table), 80);
    let last = table.latest_snapshot().expect("reads").expect("exists");
    assert_eq!(last.commit_kind, changelog_store::spec::snapshot::CommitKind::Compact);
}

/// Paimon writes `indexManifest` (hash / deletion-vector indexes), `statistics`
/// (ANALYZE) and `watermark` into snapshots; our commits must not drop them.
#[test]
fn commits_carry_index_manifest_statistics_and_watermark_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = sum_table(dir.path());
    let c = table.new_committer("job");
    let mut w = table.new_write().expect("writer");
    w.write(row(1, Some(1), None, 0), RowKind::Insert).expect("writes");
    c.commit(1, w.prepare_commit().expect("prepares"), None).expect("commits");
    // What a Paimon writer (or ANALYZE) left in the latest snapshot.
    let file = table.path().join("snapshot").join("snapshot-1");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).expect("reads")).expect("json");
    json["indexManifest"] = "index-manifest-0f3a-0".into();
    json["statistics"] = "stats-0f3a-0".into();
    json["watermark"] = 1_700_000_000_000i64.into();
    std::fs::write(&file, serde_json::to_vec(&json).expect("json")).expect("writes");

    let mut w = table.new_write().expect("writer");
    w.write(row(2, Some(1), None, 0), RowKind::Insert).expect("writes");
    c.commit(2, w.prepare_commit().expect("prepares"), None).expect("commits");
    table.compact("job", 3, true).expect("compacts");
    let snaps = table.snapshots().expect("lists");
    assert_eq!(snaps.len(), 3, "an APPEND and a COMPACT after the edited snapshot");
    for s in &snaps[1..] {
        assert_eq!(s.index_manifest.as_deref(), Some("index-manifest-0f3a-0"), "snapshot {}", s.id);
        assert_eq!(s.statistics.as_deref(), Some("stats-0f3a-0"), "snapshot {}", s.id);
        assert_eq!(s.watermark, Some(1_700_000_000_000), "snapshot {}", s.id);
    }
}
