//! Schema evolution by type: `Table::widen_columns` publishes `schema-<N+1>` with the
//! same field ids and wider types; rows written before read back in the new types —
//! on scan, lookup, changelog, after compaction and reopening — with their values
//! unchanged, and only lossless promotions of value columns are allowed.
#![allow(clippy::unwrap_used)]

use changelog_store::{Datum, ReadAt, RowKind, Table, TableSpec};
use std::collections::BTreeMap;

fn spec() -> TableSpec {
    TableSpec {
        columns: vec![
            ("k".into(), "INT".into()),
            ("n".into(), "INT".into()),
            ("small".into(), "SMALLINT".into()),
            ("f".into(), "FLOAT".into()),
            ("d".into(), "DECIMAL(5,2)".into()),
            ("ts".into(), "BIGINT".into()),
        ],
        primary_keys: vec!["k".into()],
        partition_keys: vec![],
        options: [("bucket", "2"), ("sequence.field", "ts"), ("changelog-producer", "lookup")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn dec(unscaled: i128, precision: u8) -> Datum {
    Datum::Decimal(changelog_store::Decimal::new(unscaled, precision, 2).unwrap())
}

#[test]
fn widened_columns_read_old_rows_in_the_new_types_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.db").join("t");
    let t = Table::create(&path, spec()).unwrap();
    let mut w = t.new_write().unwrap();
    for k in 0..6 {
        let row = vec![
            Datum::Int(k),
            Datum::Int(-2_000_000_000 + k),
            Datum::Int(-300 * k),
            Datum::Float(0.1 * k as f32),
            dec(-99_999 + i128::from(k), 5),
            Datum::Long(1),
        ];
        w.write(row, RowKind::Insert).unwrap();
    }
    t.new_committer("u").commit(1, w.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();

    // Refused: a key column, a narrowing, a type that is not a promotion, an unknown column.
    for (name, ty) in [("k", "BIGINT"), ("n", "SMALLINT"), ("n", "DOUBLE"), ("d", "DECIMAL(7,3)"), ("x", "BIGINT")] {
        let err = t.widen_columns(&[(name.into(), ty.into())]).unwrap_err().to_string();
        assert!(err.contains(name), "{name} {ty}: {err}");
    }
    assert!(!path.join("schema/schema-1").exists(), "a refused change publishes no schema");

    let wide = [("n", "BIGINT"), ("small", "BIGINT"), ("f", "DOUBLE"), ("d", "DECIMAL(12,2)")];
    let wide: Vec<(String, String)> = wide.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let evolved = t.widen_columns(&wide).unwrap();
    assert_eq!(evolved.schema().id, 1);
    let ids: Vec<i32> = evolved.schema().fields.iter().map(|f| f.id).collect();
    assert_eq!(ids, t.schema().fields.iter().map(|f| f.id).collect::<Vec<_>>(), "field ids stay");
    assert_eq!(evolved.widen_columns(&wide).unwrap().schema().id, 1, "widening again changes nothing");

    // A row written in the new types, beyond the old ones' range, updating k=1.
    let mut w = evolved.new_write().unwrap();
    let new1 = vec![
        Datum::Int(1),
        Datum::Long(1 << 40),
        Datum::Long(1 << 33),
        Datum::Double(1e300),
        dec(9_999_999_999, 12),
        Datum::Long(2),
    ];
    w.write(new1.clone(), RowKind::Insert).unwrap();
    evolved.new_committer("u").commit(2, w.prepare_commit().unwrap(), Some(BTreeMap::new())).unwrap();

    let old = |k: i32| {
        vec![
            Datum::Int(k),
            Datum::Long(-2_000_000_000 + i64::from(k)),
            Datum::Long(-300 * i64::from(k)),
            Datum::Double(f64::from(0.1 * k as f32)),
            dec(-99_999 + i128::from(k), 12),
            Datum::Long(1),
        ]
    };
    for table in [evolved.clone(), Table::open(&path).unwrap()] {
        let mut rows = table.scan(ReadAt::Latest).unwrap();
        rows.sort_by_key(|r| match r[0] {
            Datum::Int(k) => k,
            _ => unreachable!(),
        });
        let expect: Vec<_> = (0..6).map(|k| if k == 1 { new1.clone() } else { old(k) }).collect();
        assert_eq!(rows, expect);
        assert_eq!(table.lookup(ReadAt::Latest, &[Datum::Int(4)]).unwrap(), Some(old(4)));
        // The old image of k=1, from a file written in the old types, in the new ones.
        let changes = table.changes_of(2).unwrap().changes;
        let before = changes.iter().find(|c| c.kind == RowKind::UpdateBefore).unwrap();
        assert_eq!(before.row, old(1));
        let batches = table.change_batches_projected(1, &["n".to_string()]).unwrap();
        for b in &batches.batches {
            assert_eq!(b.rows.column(0).data_type(), &arrow_schema::DataType::Int64);
        }
    }

    // A reader still on the old schema refuses the wider file rather than
    // reading its values as nulls (or truncated).
    for err in [t.scan(ReadAt::Latest).map(|_| ()), t.change_batches(2).map(|_| ())] {
        let err = err.unwrap_err().to_string();
        assert!(err.contains("`n`") && err.contains("widened") && err.contains("reopen"), "{err}");
    }

    // A full compaction rewrites the old file in the new types; nothing changes.
    let reopened = Table::open(&path).unwrap();
    reopened.compact("u", 3, true).unwrap();
    let rows = reopened.scan(ReadAt::Latest).unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(reopened.lookup(ReadAt::Latest, &[Datum::Int(5)]).unwrap(), Some(old(5)));
    reopened.verify(ReadAt::Latest).unwrap();
}
