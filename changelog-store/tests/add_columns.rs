//! Schema evolution: `Table::add_columns` publishes `schema-1` with a new field id;
//! rows written before read the new column as null — on scan, lookup, changelog,
//! after compaction and reopening — and rows written after carry it.
#![allow(clippy::unwrap_used)]

mod common;

use changelog_store::{Datum, ReadAt, RowKind, Table};
use common::*;
use std::collections::BTreeMap;

#[test]
fn an_added_column_reads_null_in_old_rows_and_its_value_in_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.db").join("t");
    let opts = [("sequence.field", "ts"), ("changelog-producer", "lookup"), ("bucket", "2")];
    let t = Table::create(&path, spec(&opts)).unwrap();
    let mut w = t.new_write().unwrap();
    for k in 0..6 {
        w.write(row(k, Some(k), Some("old"), 1), RowKind::Insert).unwrap();
    }
    t.new_committer("u").commit(1, w.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();

    let evolved = t.add_columns(&[("extra".into(), "BIGINT".into()), ("k".into(), "BIGINT".into())]).unwrap();
    assert_eq!(evolved.schema().id, 1);
    let field = &evolved.schema().fields[4];
    assert_eq!((field.id, field.name.as_str()), (4, "extra"), "a new field id after the highest");
    assert_eq!(evolved.schema().highest_field_id, 4);
    assert!(path.join("schema/schema-1").exists());
    // Adding it again changes nothing.
    assert_eq!(evolved.add_columns(&[("extra".into(), "BIGINT".into())]).unwrap().schema().id, 1);
    assert!(evolved.add_columns(&[("nn".into(), "INT NOT NULL".into())]).is_err(), "an added column is nullable");

    let mut w = evolved.new_write().unwrap();
    let mut r = row(1, Some(10), Some("new"), 2);
    r.push(Datum::Long(1234));
    w.write(r.clone(), RowKind::Insert).unwrap();
    let mut r7 = row(7, Some(7), Some("new"), 2);
    r7.push(Datum::Null);
    w.write(r7, RowKind::Insert).unwrap();
    evolved.new_committer("u").commit(2, w.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();

    for table in [evolved.clone(), Table::open(&path).unwrap()] {
        let rows = table.scan(ReadAt::Latest).unwrap();
        assert_eq!(rows.len(), 7);
        for r in &rows {
            assert_eq!(r.len(), 5);
            let expect_value = r[0] == Datum::Long(1);
            assert_eq!(!r[4].is_null(), expect_value, "{r:?}");
        }
        assert_eq!(table.lookup(ReadAt::Latest, &[Datum::Long(1)]).unwrap(), Some(r.clone()));
        assert_eq!(table.lookup(ReadAt::Latest, &[Datum::Long(2)]).unwrap().unwrap()[4], Datum::Null);
        // Time travel to the snapshot before the change reads the old rows too.
        assert_eq!(table.scan(ReadAt::Snapshot(1)).unwrap().len(), 6);
    }
    let changes = evolved.changes_of(2).unwrap().changes;
    let before = changes.iter().find(|c| c.kind == RowKind::UpdateBefore).unwrap();
    assert_eq!(before.row[2], Datum::String("old".into()));
    assert_eq!(before.row[4], Datum::Null, "the old image of k=1 has no value in the new column");

    // A full compaction rewrites old and new files into the new schema.
    let reopened = Table::open(&path).unwrap();
    reopened.compact("u", 3, true).unwrap();
    let rows = reopened.scan(ReadAt::Latest).unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(reopened.lookup(ReadAt::Latest, &[Datum::Long(1)]).unwrap(), Some(r));
    reopened.verify(ReadAt::Latest).unwrap();
}
