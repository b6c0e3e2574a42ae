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

    // A projected read decodes only the named columns (schema order, unknown names
    // left out) and gives the same values; a file from before the column reads it null.
    let cols = ["extra".to_string(), "s".to_string(), "nope".to_string()];
    for table in [evolved.clone(), Table::open(&path).unwrap()] {
        let full = table.change_batches(2).unwrap();
        let part = table.change_batches_projected(2, &cols).unwrap();
        assert_eq!(full.batches.len(), part.batches.len());
        assert!(part.batches.iter().any(|b| b.rows.num_rows() > 0));
        for (f, p) in full.batches.iter().zip(&part.batches) {
            assert_eq!(f.kinds, p.kinds);
            let schema = p.rows.schema();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(names, ["s", "extra"]);
            for n in names {
                assert!(
                    f.rows.column_by_name(n).unwrap().as_ref() == p.rows.column_by_name(n).unwrap().as_ref(),
                    "{n}"
                );
            }
        }
        let old = table.change_batches_projected(1, &cols).unwrap();
        assert_eq!(old.batches.iter().map(|b| b.rows.num_rows()).sum::<usize>(), 6);
        for b in &old.batches {
            assert_eq!(b.rows.column_by_name("extra").unwrap().null_count(), b.rows.num_rows());
            assert_eq!(b.rows.column_by_name("s").unwrap().null_count(), 0);
        }
    }

    // A full compaction rewrites old and new files into the new schema.
    let reopened = Table::open(&path).unwrap();
    reopened.compact("u", 3, true).unwrap();
    let rows = reopened.scan(ReadAt::Latest).unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(reopened.lookup(ReadAt::Latest, &[Datum::Long(1)]).unwrap(), Some(r));
    reopened.verify(ReadAt::Latest).unwrap();
}
