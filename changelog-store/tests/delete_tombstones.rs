//! A deleted key stays deleted against older changes that arrive later: with
//! `sequence.field`, the delete record keeps its sequence value in the files
//! (through flushes, commits, compactions and reopening), so an upsert with a
//! smaller sequence value, written in a later commit, loses to it — on read and
//! in the changelog (no `+I` is emitted for it).
#![allow(clippy::unwrap_used)]

mod common;

use changelog_store::{Datum, ReadAt, RowKind, Table};
use common::*;
use std::collections::BTreeMap;

fn table(dir: &std::path::Path) -> Table {
    let opts =
        [("merge-engine", "deduplicate"), ("sequence.field", "ts"), ("changelog-producer", "lookup"), ("bucket", "1")];
    Table::create(dir.join("db.db").join("t"), spec(&opts)).unwrap()
}

fn commit(t: &Table, id: &mut i64, rows: &[(RowKind, changelog_store::Row)]) -> i64 {
    let mut w = t.new_write().unwrap();
    for (kind, r) in rows {
        w.write(r.clone(), *kind).unwrap();
    }
    let messages = w.prepare_commit().unwrap();
    *id += 1;
    t.new_committer("u").commit(*id, messages, Some(BTreeMap::new())).unwrap();
    t.latest_snapshot().unwrap().unwrap().id
}

fn keys(t: &Table) -> Vec<i64> {
    t.scan(ReadAt::Latest)
        .unwrap()
        .into_iter()
        .map(|r| match r[0] {
            Datum::Long(k) => k,
            _ => panic!("key"),
        })
        .collect()
}

/// Kinds of the changelog of one snapshot, per key.
fn changes(t: &Table, snapshot: i64) -> Vec<(RowKind, changelog_store::Row)> {
    t.changes_of(snapshot).unwrap().changes.into_iter().map(|c| (c.kind, c.row)).collect()
}

#[test]
fn an_older_upsert_after_a_delete_stays_shadowed() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(dir.path());
    let mut id = 0;
    // k=1: created at 10, deleted at 30; the update of 20 arrives afterwards.
    commit(&t, &mut id, &[(RowKind::Insert, row(1, Some(1), Some("created"), 10))]);
    commit(&t, &mut id, &[(RowKind::Delete, row(1, None, None, 30))]);
    let late = commit(&t, &mut id, &[(RowKind::Insert, row(1, Some(2), Some("late"), 20))]);
    assert_eq!(keys(&t), Vec::<i64>::new(), "the late update of a deleted key does not bring it back");
    assert!(changes(&t, late).is_empty(), "the late update produces no changelog: {:?}", changes(&t, late));
    assert_eq!(t.lookup(ReadAt::Latest, &[Datum::Long(1)]).unwrap(), None);

    // k=2: the delete arrives first (the key never existed here), the create later.
    commit(&t, &mut id, &[(RowKind::Delete, row(2, None, None, 50))]);
    let late = commit(&t, &mut id, &[(RowKind::Insert, row(2, Some(1), Some("created"), 40))]);
    assert_eq!(keys(&t), Vec::<i64>::new(), "a create older than the key's delete stays invisible");
    assert!(changes(&t, late).is_empty());

    // Full compaction keeps the delete records (with their sequence values)...
    id += 1;
    t.compact("u", id, true).unwrap();
    let late = commit(
        &t,
        &mut id,
        &[(RowKind::Insert, row(1, Some(3), Some("late"), 29)), (RowKind::Insert, row(2, Some(3), Some("late"), 49))],
    );
    assert_eq!(keys(&t), Vec::<i64>::new(), "the deletes outlive a full compaction");
    assert!(changes(&t, late).is_empty());
    // ...and reopening the table (a restarted writer) too.
    let t = Table::open(dir.path().join("db.db").join("t")).unwrap();
    let late = commit(&t, &mut id, &[(RowKind::Insert, row(1, Some(4), Some("late"), 11))]);
    assert_eq!(keys(&t), Vec::<i64>::new());
    assert!(changes(&t, late).is_empty());

    // A newer change than the delete does bring the key back, as +I.
    let back = commit(&t, &mut id, &[(RowKind::Insert, row(1, Some(5), Some("again"), 31))]);
    assert_eq!(keys(&t), vec![1]);
    let c = changes(&t, back);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, RowKind::Insert);
    assert_eq!(c[0].1[2], Datum::String("again".into()));
}
