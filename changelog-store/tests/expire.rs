//! Expiration keeps every file a retained snapshot or consumer needs.

mod common;

use changelog_store::clock::ManualClock;
use changelog_store::{ReadAt, RowKind, Table};
use common::*;
use std::collections::BTreeMap;

#[test]
fn expire_keeps_what_retained_snapshots_need() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000_000);
    let s = spec(&[
        ("snapshot.num-retained.min", "3"),
        ("snapshot.time-retained", "10 s"),
        ("num-sorted-run.compaction-trigger", "2"),
        ("changelog-producer", "lookup"),
    ]);
    let table = Table::create_with_clock(dir.path().join("db.db").join("t"), s, clock.clone()).expect("creates");
    let c = table.new_committer("u");
    let mut model = Model::default();
    let mut states = BTreeMap::new();
    for i in 0..12i64 {
        let mut w = table.new_write().expect("writer");
        for k in 0..15 {
            let r = row(k, Some(i), Some("x"), i);
            w.write(r.clone(), RowKind::Insert).expect("writes");
            model.apply(RowKind::Insert, r);
        }
        if i % 3 == 2 {
            let r = row(i, None, None, i);
            w.write(r.clone(), RowKind::Delete).expect("writes");
            model.apply(RowKind::Delete, r);
        }
        clock.advance(5_000);
        let out = c.commit(i + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
        if let changelog_store::CommitOutcome::Committed(ids) = out {
            for id in ids {
                states.insert(id, model.state(Engine::Deduplicate));
            }
        }
    }
    let before = table.snapshots().expect("lists").len();
    table.register_consumer("reader", before as i64 - 4).expect("registers");
    let report = table.expire().expect("expires");
    assert!(!report.expired_snapshots.is_empty());
    assert!(report.deleted_data_files > 0);
    let after = table.snapshots().expect("lists");
    assert!(after.len() >= 3);
    assert!(after[0].id <= before as i64 - 4, "consumer's snapshot kept");
    for s in &after {
        let got = table_state(table.scan(ReadAt::Snapshot(s.id)).expect("retained snapshot readable"));
        assert_eq!(&got, &states[&s.id], "snapshot {}", s.id);
        table.changes_since(s.id).expect("changelog of retained snapshots readable");
    }
    // Nothing left that no snapshot references would still be readable anyway; a
    // second expiration with nothing to do is a no-op.
    let again = table.expire().expect("expires");
    assert!(again.expired_snapshots.is_empty());
}
