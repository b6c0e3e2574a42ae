//! `TableWrite::set_changelog(false)`: what is written meanwhile (a worker moving the
//! location columns of rows it rewrote) lands in the table like any write but adds no
//! changelog, and the `lookup` producer's later changelog sees it: the `-U` of the next
//! update carries the value written without a changelog.
#![allow(clippy::unwrap_used)]

mod common;

use changelog_store::{Datum, ReadAt, RowKind, Table};
use common::{row, spec};
use std::collections::BTreeMap;

fn changes(t: &Table, snapshot: i64) -> Vec<(RowKind, Vec<Datum>)> {
    let mut out: Vec<_> = t.changes_of(snapshot).unwrap().changes.into_iter().map(|c| (c.kind, c.row)).collect();
    out.sort_by_key(|(kind, r)| (format!("{:?}", r[0]), *kind));
    out
}

#[test]
fn writes_without_a_changelog_land_and_the_next_lookup_sees_them() {
    for engine in ["deduplicate", "partial-update"] {
        let dir = tempfile::tempdir().unwrap();
        let opts = [("changelog-producer", "lookup"), ("merge-engine", engine), ("bucket", "2")];
        let t = Table::create(dir.path().join("db.db").join("t"), spec(&opts)).unwrap();
        let mut w = t.new_write().unwrap();
        let commit = |w: &mut changelog_store::TableWrite, id: i64| {
            t.new_committer("u").commit(id, w.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();
        };
        for k in 0..4 {
            w.write(row(k, Some(k), Some("at-a"), 1), RowKind::Insert).unwrap();
        }
        commit(&mut w, 1);
        assert_eq!(changes(&t, 1).len(), 4, "{engine}: the first write's changelog");

        // The "relocation": same values, another location, no changelog.
        w.set_changelog(false);
        for k in 0..4 {
            w.write(row(k, Some(k), Some("at-b"), 1), RowKind::Insert).unwrap();
        }
        commit(&mut w, 2);
        w.set_changelog(true);
        assert!(changes(&t, 2).is_empty(), "{engine}: no changelog for it");
        let now: Vec<_> = t.scan(ReadAt::Latest).unwrap();
        assert!(now.iter().all(|r| r[2] == Datum::String("at-b".into())), "{engine}: it landed: {now:?}");

        // Back on: an update's -U is the row as the changelog-less write left it.
        w.write(row(2, Some(20), Some("at-c"), 2), RowKind::Insert).unwrap();
        commit(&mut w, 3);
        let c = changes(&t, 3);
        assert_eq!(
            c,
            vec![
                (RowKind::UpdateBefore, row(2, Some(2), Some("at-b"), 1)),
                (RowKind::UpdateAfter, row(2, Some(20), Some("at-c"), 2)),
            ],
            "{engine}"
        );
        // A write opened afterwards (a restart) has its changelog on.
        let mut fresh = t.new_write().unwrap();
        fresh.write(row(3, Some(30), Some("at-d"), 3), RowKind::Insert).unwrap();
        t.new_committer("v").commit(1, fresh.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();
        assert_eq!(changes(&t, 4).len(), 2, "{engine}: -U/+U again");
    }
}
