//! Point lookups in files with several row groups and pages: the key column is
//! read alone over the candidate pages, then every column for the matching row
//! only. Keys at page and row-group edges, absent keys between present ones,
//! keys outside every range, updates and deletes in a newer file, and the same
//! after a full compaction.
#![allow(clippy::unwrap_used)]

use changelog_store::{Datum, ReadAt, RowKind, Table, TableSpec};
use std::collections::BTreeMap;

const ROWS: i64 = 100_000;

fn lookup(table: &Table, k: i64) -> Option<String> {
    let row = table.lookup(ReadAt::Latest, &[Datum::Long(k)]).unwrap()?;
    assert_eq!(row[0], Datum::Long(k), "lookup of {k} returned another key");
    match &row[1] {
        Datum::String(s) => Some(s.clone()),
        other => panic!("value of {k} is {other:?}"),
    }
}

#[test]
fn lookups_at_page_and_row_group_edges() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TableSpec {
        columns: vec![("id".into(), "BIGINT".into()), ("v".into(), "STRING".into())],
        primary_keys: vec!["id".into()],
        partition_keys: vec![],
        options: BTreeMap::from([("bucket".to_string(), "1".to_string())]),
    };
    let table = Table::create_in_warehouse(dir.path(), "db", "t", spec).unwrap();
    let committer = table.new_committer("test");
    let mut model: BTreeMap<i64, String> = BTreeMap::new();

    // Even keys only, so every odd key inside the range is absent. One flush: one
    // file of several row groups, each of several pages.
    let mut write = table.new_write().unwrap();
    for i in 0..ROWS {
        let k = 2 * i;
        let v = format!("v{k}");
        write.write_row(&[Datum::Long(k), Datum::String(v.clone())], RowKind::Insert).unwrap();
        model.insert(k, v);
    }
    committer.commit(1, write.prepare_commit().unwrap(), None).unwrap();

    // A newer file: every third key updated, every seventh deleted.
    for i in (0..ROWS).step_by(3) {
        let k = 2 * i;
        let v = format!("u{k}");
        write.write_row(&[Datum::Long(k), Datum::String(v.clone())], RowKind::Insert).unwrap();
        model.insert(k, v);
    }
    for i in (0..ROWS).step_by(7) {
        let k = 2 * i;
        write.write_row(&[Datum::Long(k), Datum::Null], RowKind::Delete).unwrap();
        model.remove(&k);
    }
    committer.commit(2, write.prepare_commit().unwrap(), None).unwrap();
    drop(write);

    // Edges of 4096-row pages and 32768-row row groups (in rows of the first file),
    // their neighbours, absent keys between them and outside the key range.
    let mut probes: Vec<i64> = vec![-2, -1, 2 * ROWS, 2 * ROWS + 1, i64::MIN, i64::MAX];
    for edge in (0..=ROWS).step_by(4096).chain((0..=ROWS).step_by(32768)) {
        for d in -2..=2 {
            let i = edge + d;
            probes.extend([2 * i, 2 * i + 1]);
        }
    }
    probes.extend((0..2 * ROWS).step_by(997));

    let check = |table: &Table, when: &str| {
        for &k in &probes {
            assert_eq!(lookup(table, k), model.get(&k).cloned(), "key {k} {when}");
        }
    };
    check(&table, "before compaction");
    table.compact("test", 3, true).unwrap();
    check(&table, "after a full compaction");
}
