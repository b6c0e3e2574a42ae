//! `TableWrite::write_batch` against `TableWrite::write_row`: the same operations,
//! written row by row into one table and as Arrow batches (mixed with single rows, in
//! the same write buffer) into another, give the same rows at every snapshot and the
//! same changelog, for every merge engine, both changelog producers that read the
//! buffer, a partitioned table and an aggregation `count` field. Bad batches are
//! refused whole.
#![allow(clippy::unwrap_used)]

mod common;

use arrow_array::{ArrayRef, RecordBatch};
use changelog_store::data::arrow_conv;
use changelog_store::{Datum, ReadAt, Row, RowKind, Table, TableSpec};
use common::{Engine, engine_options};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use std::sync::Arc;

/// proptest's seeded generator: the same operations for the same seed.
struct Rng(TestRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(TestRng::from_seed(RngAlgorithm::XorShift, &bytes))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}

/// (k BIGINT, v BIGINT, s STRING, ts BIGINT), optionally with a partition column
/// p INT in the primary key.
fn spec(options: &[(&str, &str)], partitioned: bool) -> TableSpec {
    let mut s = common::spec(options);
    if partitioned {
        s.columns.insert(1, ("p".into(), "INT".into()));
        s.primary_keys.push("p".into());
        s.partition_keys.push("p".into());
    }
    s
}

fn random_row(rng: &mut Rng, partitioned: bool) -> Row {
    let k = rng.below(300) as i64;
    let v = (rng.below(5) != 0).then(|| rng.below(1000) as i64);
    let s = (rng.below(4) != 0).then(|| format!("s{}", rng.below(100)));
    let mut row = common::row(k, v, s.as_deref(), rng.below(1_000_000) as i64);
    if partitioned {
        row.insert(1, Datum::Int((k % 3) as i32));
    }
    row
}

/// The rows as a batch of `schema`'s columns.
fn to_batch(table: &Table, schema: &arrow_schema::SchemaRef, rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), arrow_conv::columns_of_rows(table.info(), rows)).unwrap()
}

/// Rows of every snapshot and the changelog from snapshot 1, as text.
fn history(table: &Table) -> (Vec<String>, Vec<String>) {
    let mut states = Vec::new();
    for s in table.snapshots().unwrap() {
        let mut rows: Vec<String> =
            table.scan(ReadAt::Snapshot(s.id)).unwrap().iter().map(|r| format!("{r:?}")).collect();
        rows.sort();
        // Files as a writer describes them: level, rows, key and sequence ranges.
        let mut files: Vec<String> = Vec::new();
        for b in table.reader(ReadAt::Snapshot(s.id)).unwrap().buckets() {
            for f in &b.files {
                let m = &f.meta;
                files.push(format!(
                    "{:?}/{} L{} rows {} deletes {:?} keys {:?}..{:?} seq {}..{}",
                    b.partition,
                    b.bucket,
                    m.level,
                    m.row_count,
                    m.delete_row_count,
                    m.min_key,
                    m.max_key,
                    m.min_sequence_number,
                    m.max_sequence_number
                ));
            }
        }
        files.sort();
        states.push(format!(
            "snapshot {} ({:?}): {} | files {}",
            s.id,
            s.commit_kind,
            rows.join(" "),
            files.join(", ")
        ));
    }
    let changes = table
        .changes_since(1)
        .unwrap()
        .iter()
        .map(|c| {
            let mut rows: Vec<String> =
                c.changes.iter().map(|ch| format!("{} {:?}", ch.kind.short_string(), ch.row)).collect();
            rows.sort();
            format!("snapshot {}: {}", c.snapshot_id, rows.join(" "))
        })
        .collect();
    (states, changes)
}

fn same_as_rows(options: &[(&str, &str)], partitioned: bool, retractions: bool, seed: u64) {
    let what = format!("options {options:?}, partitioned {partitioned}, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let by_row = Table::create_in_warehouse(dir.path(), "db", "rows", spec(options, partitioned)).unwrap();
    let by_batch = Table::create_in_warehouse(dir.path(), "db", "batches", spec(options, partitioned)).unwrap();
    let (c_row, c_batch) = (by_row.new_committer("t"), by_batch.new_committer("t"));
    let (mut w_row, mut w_batch) = (
        by_row.new_write().unwrap().with_wait_compaction(true),
        by_batch.new_write().unwrap().with_wait_compaction(true),
    );
    let schema = w_batch.row_schema();
    let mut rng = Rng::seeded(seed);
    for commit in 1..=6 {
        for _ in 0..rng.below(6) + 1 {
            let n = rng.below(400) as usize;
            let rows: Vec<Row> = (0..n).map(|_| random_row(&mut rng, partitioned)).collect();
            let one_kind = rng.below(3) == 0;
            let kind = |rng: &mut Rng| {
                if retractions && rng.below(5) == 0 { RowKind::Delete } else { RowKind::Insert }
            };
            let kinds: Vec<RowKind> =
                if one_kind { vec![kind(&mut rng)] } else { (0..n).map(|_| kind(&mut rng)).collect() };
            for (i, r) in rows.iter().enumerate() {
                w_row.write_row(r, kinds[if one_kind { 0 } else { i }]).unwrap();
            }
            if rng.below(4) == 0 {
                // Some rows of the batch go in one by one, mixed into the same buffer.
                for (i, r) in rows.iter().enumerate() {
                    w_batch.write_row(r, kinds[if one_kind { 0 } else { i }]).unwrap();
                }
            } else {
                w_batch.write_batch(&to_batch(&by_batch, &schema, &rows), &kinds).unwrap();
            }
            if rng.below(3) == 0 {
                w_row.flush().unwrap();
                w_batch.flush().unwrap();
            }
        }
        c_row.commit(commit, w_row.prepare_commit().unwrap(), None).unwrap();
        c_batch.commit(commit, w_batch.prepare_commit().unwrap(), None).unwrap();
    }
    let (a, b) = (history(&by_row), history(&by_batch));
    assert!(!a.0.is_empty(), "{what}: no snapshots");
    assert_eq!(a.0, b.0, "{what}: table contents differ");
    assert_eq!(a.1, b.1, "{what}: changelogs differ");
    by_batch.verify(ReadAt::Latest).unwrap();
}

#[test]
fn batches_write_what_rows_write() {
    for seed in [1, 2, 3] {
        same_as_rows(&[], false, true, seed);
        same_as_rows(&[("changelog-producer", "input")], false, true, seed);
        same_as_rows(&[("changelog-producer", "lookup")], true, true, seed);
        same_as_rows(&[("bucket", "3")], true, true, seed);
        same_as_rows(&[("ignore-delete", "true")], false, true, seed);
        for engine in [Engine::PartialUpdate, Engine::Aggregation, Engine::FirstRow] {
            let retractions = engine == Engine::Aggregation;
            same_as_rows(&engine_options(engine), false, retractions, seed);
        }
        same_as_rows(&[("merge-engine", "aggregation"), ("fields.v.aggregate-function", "count")], false, false, seed);
    }
}

#[test]
fn bad_batches_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let table = Table::create_in_warehouse(dir.path(), "db", "t", spec(&[], false)).unwrap();
    let mut w = table.new_write().unwrap();
    let schema = w.row_schema();
    let good = to_batch(&table, &schema, &[common::row(1, Some(1), Some("a"), 1), common::row(2, None, None, 2)]);
    let err = |w: &mut changelog_store::TableWrite, b: &RecordBatch, kinds: &[RowKind]| {
        w.write_batch(b, kinds).expect_err("refused").to_string()
    };

    // Kinds that do not match the rows.
    let e = err(&mut w, &good, &[RowKind::Insert; 3]);
    assert!(e.contains("3 row kinds for a batch of 2 rows"), "{e}");

    // A null key.
    let mut rows = vec![common::row(3, None, None, 3)];
    rows[0][0] = Datum::Null;
    let nullable = Arc::new(arrow_schema::Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ));
    let e = err(&mut w, &to_batch(&table, &nullable, &rows), &[RowKind::Insert]);
    assert!(e.contains("`k`") && e.contains("NOT NULL"), "{e}");

    // A column of the wrong Arrow type.
    let mut cols = good.columns().to_vec();
    cols[1] = Arc::new(arrow_array::Int32Array::from(vec![1, 2]));
    let wrong = RecordBatch::try_from_iter(schema.fields().iter().map(|f| f.name().clone()).zip(cols)).unwrap();
    let e = err(&mut w, &wrong, &[RowKind::Insert]);
    assert!(e.contains("`v`") && e.contains("Int32"), "{e}");

    // An unknown column, a missing column.
    let extra = RecordBatch::try_from_iter(
        schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(good.columns().to_vec())
            .chain([("nope".to_string(), Arc::new(arrow_array::Int64Array::from(vec![1, 2])) as ArrayRef)]),
    )
    .unwrap();
    let e = err(&mut w, &extra, &[RowKind::Insert]);
    assert!(e.contains("`nope`") && e.contains("no such column"), "{e}");
    let missing = good.project(&[0, 1, 2]).unwrap();
    let e = err(&mut w, &missing, &[RowKind::Insert]);
    assert!(e.contains("`ts`") && e.contains("missing"), "{e}");

    // Retractions on a table that refuses them.
    let pu =
        Table::create_in_warehouse(dir.path(), "db", "pu", spec(&[("merge-engine", "partial-update")], false)).unwrap();
    let mut pw = pu.new_write().unwrap();
    let e = err(&mut pw, &good, &[RowKind::Insert, RowKind::Delete]);
    assert!(e.contains("-D"), "{e}");
    pu.new_committer("t").commit(1, pw.prepare_commit().unwrap(), None).unwrap();
    assert!(pu.scan(ReadAt::Latest).unwrap().is_empty(), "a refused batch left rows behind");

    // Nothing of the refused batches was buffered; the good one is written.
    w.write_batch(&good, &[RowKind::Insert]).unwrap();
    table.new_committer("t").commit(1, w.prepare_commit().unwrap(), None).unwrap();
    let rows = table.scan(ReadAt::Latest).unwrap();
    assert_eq!(rows, vec![common::row(1, Some(1), Some("a"), 1), common::row(2, None, None, 2)]);
}
