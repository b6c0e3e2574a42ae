//! `first-row` tables leave no file at level 0 after a commit. Java Paimon's batch scan
//! of such a table reads levels >= 1 only (as does ours of Paimon's tables), so a row
//! committed at level 0 would be invisible to it: each commit compacts level 0 up, as
//! Paimon's own first-row writers do, whether or not the writer waits for compactions.
//! And no two files hold a key: a later row of a key is not written at all, since Java
//! reads those levels without merging them.
#![allow(clippy::unwrap_used)]

mod common;

use changelog_store::{Datum, ReadAt, RowKind, Table};
use common::{Engine, Model, row, spec};
use std::collections::BTreeMap;

/// The level and row count of each data file of a snapshot.
fn files(t: &Table, snapshot: i64) -> Vec<(i32, i64)> {
    let reader = t.reader(ReadAt::Snapshot(snapshot)).unwrap();
    reader.buckets().iter().flat_map(|b| b.files.iter().map(|f| (f.meta.level, f.meta.row_count))).collect()
}

#[test]
fn first_row_commits_leave_nothing_at_level_0() {
    for producer in ["none", "lookup"] {
        let dir = tempfile::tempdir().unwrap();
        let opts = [("merge-engine", "first-row"), ("changelog-producer", producer), ("bucket", "2")];
        let t = Table::create(dir.path().join("db.db").join("t"), spec(&opts)).unwrap();
        let committer = t.new_committer("u");
        let mut model = Model::default();
        let mut w = t.new_write().unwrap();
        for round in 0..8i64 {
            // New keys and later duplicates of keys written in earlier rounds.
            for k in (round * 10)..(round * 10 + 40) {
                let r = row(k, Some(round), Some(&format!("r{round}")), round);
                model.apply(RowKind::Insert, r.clone());
                w.write(r, RowKind::Insert).unwrap();
            }
            let id = round + 1;
            committer.commit(id, w.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();
            let snapshot = t.latest_snapshot().unwrap().unwrap().id;
            let at = files(&t, snapshot);
            assert!(!at.is_empty());
            assert!(at.iter().all(|(level, _)| *level > 0), "{producer}, round {round}: files {at:?}");
            let want: Vec<_> = model.state(Engine::FirstRow).into_values().collect();
            // No key in two files: Java reads these levels without merging them.
            let rows: i64 = at.iter().map(|(_, rows)| rows).sum();
            assert_eq!(rows, want.len() as i64, "{producer}, round {round}: rows in files {at:?}");
            let mut got = t.scan(ReadAt::Latest).unwrap();
            got.sort_by_key(|r| format!("{:?}", r[0]));
            let mut want = want;
            want.sort_by_key(|r| format!("{:?}", r[0]));
            assert_eq!(got, want, "{producer}, round {round}");
            // The first value of key 0 never changes.
            assert_eq!(got[0][1], Datum::Long(0));
        }
    }
}
