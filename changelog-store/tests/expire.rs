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

/// Files of a writer that crashed before its commit, a stray manifest, and the same
/// newer than the margin: only the old unreferenced ones go; every file any snapshot
/// references stays, even when older than the margin, and every snapshot still reads.
#[test]
fn orphan_files_older_than_the_margin_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table =
        Table::create_in_warehouse(dir.path(), "db", "t", spec(&[("changelog-producer", "input")])).expect("creates");
    let c = table.new_committer("u");
    for i in 0..4i64 {
        let mut w = table.new_write().expect("writer");
        for k in 0..20 {
            w.write(row(k + i, Some(i), Some("x"), i), RowKind::Insert).expect("writes");
        }
        w.write(row(i, None, None, i), RowKind::Delete).expect("writes");
        c.commit(i + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
    }
    table.compact("u", 10, true).expect("compacts");
    let states: Vec<(i64, Vec<changelog_store::Row>)> = table
        .snapshots()
        .expect("lists")
        .iter()
        .map(|s| (s.id, table.scan(ReadAt::Snapshot(s.id)).expect("scans")))
        .collect();

    // A writer that wrote its files and died before committing them.
    let mut crashed = table.new_write().expect("writer");
    for k in 100..110 {
        crashed.write(row(k, Some(1), Some("lost"), 1), RowKind::Insert).expect("writes");
    }
    let lost = crashed.prepare_commit().expect("prepares");
    assert!(!lost.is_empty());
    drop(crashed);
    let root = table.path().to_path_buf();
    std::fs::write(root.join("manifest").join("manifest-stray-0"), b"junk").expect("writes");
    // An index manifest (Paimon writes one for deletion vectors or bucket indexes),
    // referenced only from the first snapshot's `indexManifest`.
    std::fs::write(root.join("manifest").join("index-manifest-kept-0"), b"index").expect("writes");
    let first = root.join("snapshot").join("snapshot-1");
    let mut snap: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).expect("reads")).expect("json");
    snap["indexManifest"] = serde_json::Value::from("index-manifest-kept-0");
    std::fs::write(&first, serde_json::to_vec(&snap).expect("json")).expect("writes");

    // Everything now on disk is two days old, then one more crashed writer's files are new.
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("lists") {
            let p = e.expect("entry").path();
            if p.is_dir() { stack.push(p) } else { files.push(p) }
        }
    }
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    for f in &files {
        std::fs::File::options().write(true).open(f).expect("opens").set_modified(two_days_ago).expect("sets mtime");
    }
    let mut recent = table.new_write().expect("writer");
    recent.write(row(200, Some(1), Some("in flight"), 1), RowKind::Insert).expect("writes");
    let in_flight = recent.prepare_commit().expect("prepares");

    let day = std::time::Duration::from_secs(86_400);
    let dry = table.remove_orphan_files(day, true).expect("dry run");
    // The crashed writer's data and changelog files and the stray manifest.
    let names: Vec<String> =
        dry.orphans.iter().map(|p| p.file_name().expect("a file").to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n == "manifest-stray-0"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("data-")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("changelog-")), "{names:?}");
    assert!(dry.recent_unreferenced >= 2, "the in-flight writer's data and changelog files: {dry:?}");
    assert!(dry.orphans.iter().all(|p| p.exists()), "a dry run deletes nothing");

    let report = table.remove_orphan_files(day, false).expect("removes");
    assert_eq!(report.orphans, dry.orphans);
    assert!(report.orphans.iter().all(|p| !p.exists()));
    assert!(root.join("manifest").join("index-manifest-kept-0").exists(), "a referenced index manifest was taken");
    assert_eq!(report.recent_unreferenced, dry.recent_unreferenced);
    for (id, rows) in &states {
        assert_eq!(&table.scan(ReadAt::Snapshot(*id)).expect("scans"), rows, "snapshot {id}");
        table.verify(ReadAt::Snapshot(*id)).expect("verifies");
    }
    assert_eq!(table.changes_since(1).expect("changelog").len(), states.len());

    // The in-flight commit still lands: its files were kept.
    c.commit(100, in_flight, None).expect("commits");
    assert!(table.scan(ReadAt::Latest).expect("scans").iter().any(|r| r[0] == changelog_store::Datum::Long(200)));
    let again = table.remove_orphan_files(day, false).expect("removes");
    assert!(again.orphans.is_empty(), "{again:?}");

    // A tag (written by Paimon itself) keeps files this store does not track: refused.
    std::fs::create_dir_all(root.join("tag")).expect("mkdir");
    std::fs::write(root.join("tag").join("tag-t1"), b"{}").expect("writes");
    let e = table.remove_orphan_files(day, true).expect_err("refused").to_string();
    assert!(e.contains("tag"), "{e}");
    assert!(table.expire().expect_err("refused").to_string().contains("tag"));
}
