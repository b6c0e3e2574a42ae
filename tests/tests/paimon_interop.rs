//! pypaimon 2.1.0 (an independent Paimon implementation, in the venv tests/run.sh
//! creates) and changelog-store agree on each other's tables, both checked against a
//! plain in-memory model built by this test:
//! - pypaimon reads every snapshot we write (level-0 flushes, background and full
//!   compactions, deletes) and gets the model's rows at that snapshot;
//! - we read what pypaimon writes (composite primary key, `-D`/`-U` records through
//!   `rowkind.field`, `changelog-producer` = input): scan, point lookups, changelog;
//!   then we keep writing and compacting it and pypaimon reads the result.
//!
//! Needs `LAKEHOUSE_TEST_PYTHON` (a Python with tests/interop/requirements.txt installed);
//! panics without it, never skips.
#![allow(clippy::unwrap_used)]

use changelog_store::spec::snapshot::CommitKind;
use changelog_store::{Datum, ReadAt, Row, RowKind, Table, TableSpec};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let p = std::env::var_os("LAKEHOUSE_TEST_PYTHON").unwrap_or_else(|| {
        panic!("LAKEHOUSE_TEST_PYTHON is not set: run through tests/run.sh, or point it at a Python with tests/interop/requirements.txt installed")
    });
    PathBuf::from(p)
}

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../changelog-store/interop/pypaimon_check.py")
}

fn run_python(args: &[&str]) -> String {
    let out = Command::new(python()).arg(script()).args(args).output().unwrap();
    assert!(out.status.success(), "pypaimon_check.py {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// pypaimon's rows at each snapshot, in one Python process.
fn pypaimon_snapshots(warehouse: &Path, snapshots: &[i64]) -> BTreeMap<i64, Vec<Value>> {
    let mut args = vec!["read-snapshots".to_string(), warehouse.display().to_string(), "db.t".to_string()];
    args.extend(snapshots.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_python(&refs)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["snapshot"].as_i64().unwrap(), v["rows"].as_array().unwrap().clone())
        })
        .collect()
}

/// A row's JSON with object keys sorted, whatever order its producer used.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, String> = m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let fields: Vec<String> = sorted.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        other => other.to_string(),
    }
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(canonical);
    rows
}

/// Asserts equal row sets, reporting the difference rather than both sets.
fn assert_rows(got: &[Value], want: &[Value], what: &str) {
    let g: std::collections::BTreeSet<String> = got.iter().map(canonical).collect();
    let w: std::collections::BTreeSet<String> = want.iter().map(canonical).collect();
    let missing: Vec<&String> = w.difference(&g).take(3).collect();
    let extra: Vec<&String> = g.difference(&w).take(3).collect();
    assert!(
        got.len() == want.len() && missing.is_empty() && extra.is_empty(),
        "{what}: {} rows, expected {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}",
        got.len(),
        want.len()
    );
}

fn our_rows(table: &Table, at: ReadAt) -> Vec<Value> {
    sorted(table.scan(at).unwrap().iter().map(|r| table.row_to_json(r)).collect())
}

/// xorshift64: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const REGIONS: [&str; 3] = ["eu", "us", "apac"];

/// Model of a deduplicate table: primary key -> visible row as JSON.
type Model = BTreeMap<(String, i64), Value>;

fn model_rows(model: &Model) -> Vec<Value> {
    sorted(model.values().cloned().collect())
}

#[test]
fn pypaimon_reads_every_snapshot_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TableSpec {
        columns: vec![
            ("region".into(), "STRING NOT NULL".into()),
            ("k".into(), "BIGINT NOT NULL".into()),
            ("v".into(), "INT".into()),
            ("s".into(), "STRING".into()),
            ("d".into(), "DOUBLE".into()),
            ("flag".into(), "BOOLEAN".into()),
        ],
        primary_keys: vec!["region".into(), "k".into()],
        partition_keys: vec![],
        options: [
            ("bucket", "3"),
            // Several level-0 flushes per commit, small files, early compaction.
            ("write-buffer-size", "48 kb"),
            ("target-file-size", "16 kb"),
            ("num-sorted-run.compaction-trigger", "3"),
            // Level 0 in LZ4_RAW, level 1 uncompressed, the rest zstd: pypaimon reads all.
            ("file.compression.per.level", "0:lz4,1:none"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    let table = Table::create_in_warehouse(dir.path(), "db", "t", spec).unwrap();
    let committer = table.new_committer("interop");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut model = Model::new();
    let mut at_snapshot: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    let mut next_k = 0i64;
    let (mut deletes, mut updates) = (0, 0);
    let record = |table: &Table, model: &Model, at: &mut BTreeMap<i64, Vec<Value>>| {
        for s in table.snapshots().unwrap() {
            at.entry(s.id).or_insert_with(|| model_rows(model));
        }
    };
    for commit in 0..12i64 {
        let mut w = table.new_write().unwrap();
        for _ in 0..600 {
            let roll = rng.below(100);
            let existing: Option<(String, i64)> = if model.is_empty() || roll >= 45 {
                None
            } else {
                let i = rng.below(model.len() as u64) as usize;
                model.keys().nth(i).cloned()
            };
            let key = match (&existing, roll) {
                (Some(k), _) => k.clone(),
                // A few deletes of keys that never existed.
                (None, r) if r < 3 => (REGIONS[0].to_string(), -1 - rng.below(1000) as i64),
                (None, _) => {
                    next_k += 1;
                    (REGIONS[rng.below(3) as usize].to_string(), next_k * 7919 % 100_003)
                }
            };
            if roll < 12 {
                deletes += 1;
                let row: Row = vec![
                    Datum::String(key.0.clone()),
                    Datum::Long(key.1),
                    Datum::Null,
                    Datum::Null,
                    Datum::Null,
                    Datum::Null,
                ];
                w.write(row, RowKind::Delete).unwrap();
                model.remove(&key);
                continue;
            }
            updates += usize::from(existing.is_some());
            let v = rng.below(1_000_000) as i32 - 500_000;
            let s = (rng.below(5) != 0).then(|| format!("commit {commit} value {v} for {}/{}", key.0, key.1));
            let d = (rng.below(1000) as f64) / 8.0;
            let flag = rng.below(2) == 0;
            let row: Row = vec![
                Datum::String(key.0.clone()),
                Datum::Long(key.1),
                Datum::Int(v),
                s.clone().map_or(Datum::Null, Datum::String),
                Datum::Double(d),
                Datum::Bool(flag),
            ];
            let kind = if existing.is_some() { RowKind::UpdateAfter } else { RowKind::Insert };
            w.write(row, kind).unwrap();
            model.insert(key.clone(), json!({"region": key.0, "k": key.1, "v": v, "s": s, "d": d, "flag": flag}));
        }
        committer.commit(commit + 1, w.prepare_commit().unwrap(), None).unwrap();
        record(&table, &model, &mut at_snapshot);
    }
    assert!(deletes > 500 && updates > 1000, "workload mixes ops: {deletes} deletes, {updates} updates");
    let compacted_in_background =
        table.snapshots().unwrap().iter().filter(|s| s.commit_kind == CommitKind::Compact).count();
    assert!(compacted_in_background > 0, "universal compaction ran during the writes");
    table.compact("interop", 100, true).unwrap();
    record(&table, &model, &mut at_snapshot);
    let last = *at_snapshot.keys().last().unwrap();
    assert_eq!(table.latest_snapshot().unwrap().unwrap().commit_kind, CommitKind::Compact);
    table.verify(ReadAt::Latest).unwrap();

    let ids: Vec<i64> = at_snapshot.keys().copied().collect();
    let theirs = pypaimon_snapshots(dir.path(), &ids);
    assert_eq!(theirs.len(), ids.len(), "pypaimon read every snapshot");
    for (id, expected) in &at_snapshot {
        assert_rows(&our_rows(&table, ReadAt::Snapshot(*id)), expected, &format!("our read of snapshot {id}"));
        assert_rows(&theirs[id], expected, &format!("pypaimon's read of snapshot {id}"));
    }
    assert!(!at_snapshot[&last].is_empty());
}

/// One op in the file handed to pypaimon: a row with its kind in the `op` column.
fn op_row(kind: &str, region: &str, k: i64, v: Option<i64>, s: Option<String>) -> Value {
    json!({"k": k, "region": region, "v": v, "s": s, "op": kind})
}

#[test]
fn we_read_what_pypaimon_writes_then_keep_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model = Model::new();
    let mut commits: Vec<Vec<Value>> = Vec::new();
    for c in 0..4i64 {
        let mut ops = Vec::new();
        for i in 0..150i64 {
            let region = REGIONS[(i % 3) as usize];
            let k = rng.below(200) as i64;
            let key = (region.to_string(), k);
            let v = Some(c * 1000 + i);
            let s = Some(format!("c{c} i{i}"));
            let row = match (model.contains_key(&key), rng.below(10)) {
                (true, 0..=1) => {
                    model.remove(&key);
                    op_row("-D", region, k, None, None)
                }
                (true, 2) => {
                    // A CDC update as a retract/add pair.
                    ops.push(op_row("-U", region, k, None, None));
                    op_row("+U", region, k, v, s)
                }
                (true, _) => op_row("+U", region, k, v, s),
                (false, _) => op_row("+I", region, k, v, s),
            };
            if row["op"] != "-D" {
                model.insert(key, row.clone());
            }
            ops.push(row);
        }
        commits.push(ops);
    }
    let ops_path = dir.path().join("ops.json");
    let doc = json!({
        "options": {"bucket": "2", "rowkind.field": "op", "changelog-producer": "input"},
        "commits": commits,
    });
    std::fs::write(&ops_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let wh = dir.path().join("wh");
    run_python(&["write-ops", wh.to_str().unwrap(), "db.t", ops_path.to_str().unwrap()]);

    let table = Table::open(wh.join("db.db").join("t")).unwrap();
    assert_rows(&our_rows(&table, ReadAt::Latest), &model_rows(&model), "our scan of pypaimon's table");
    // Point lookups route by Paimon's bucket hash of the composite key.
    for region in REGIONS {
        for k in 0..200i64 {
            let got = table
                .lookup(ReadAt::Latest, &[Datum::String(region.into()), Datum::Long(k)])
                .unwrap()
                .map(|r| table.row_to_json(&r));
            assert_eq!(got.as_ref(), model.get(&(region.to_string(), k)), "lookup of ({region}, {k})");
        }
    }
    // The input changelog of each commit is exactly what was written, kinds included.
    let changes = table.changes_since(1).unwrap();
    assert_eq!(changes.len(), commits.len());
    for (snap, ops) in changes.iter().zip(&commits) {
        assert_eq!(snap.commit_kind, CommitKind::Append);
        let got = sorted(
            snap.changes
                .iter()
                .map(|c| {
                    let mut row = table.row_to_json(&c.row);
                    row["op"] = json!(c.kind.short_string());
                    row
                })
                .collect(),
        );
        // pypaimon 2.1.0 writes its `input` changelog from the merged write buffer: one
        // record per key and commit, the last one written (Java Paimon keeps every input
        // record). Our kind of each record must equal the `op` column it came from.
        let mut last: BTreeMap<(String, i64), Value> = BTreeMap::new();
        for o in ops {
            last.insert((o["region"].as_str().unwrap().to_string(), o["k"].as_i64().unwrap()), o.clone());
        }
        let want: Vec<Value> = last.into_values().collect();
        assert!(want.len() < ops.len(), "the commit wrote some key twice");
        assert_rows(&got, &want, &format!("changelog of snapshot {}", snap.snapshot_id));
    }

    // We continue the table: updates, deletes, then a full compaction; pypaimon agrees.
    let mut w = table.new_write().unwrap();
    for k in 0..60i64 {
        let key = ("us".to_string(), k);
        if k % 4 == 0 {
            w.write_json(&json!({"k": k, "region": "us", "v": null, "s": null, "op": "-D"}), RowKind::Delete).unwrap();
            model.remove(&key);
        } else {
            let row = op_row("+U", "us", k, Some(-k), Some(format!("ours {k}")));
            w.write_json(&row, RowKind::UpdateAfter).unwrap();
            model.insert(key, row);
        }
    }
    table.new_committer("rust").commit(1, w.prepare_commit().unwrap(), None).unwrap();
    let after_ours = table.latest_snapshot().unwrap().unwrap().id;
    table.compact("rust", 2, true).unwrap();
    let after_compact = table.latest_snapshot().unwrap().unwrap().id;
    assert!(after_compact > after_ours, "full compaction committed a snapshot");
    let theirs = pypaimon_snapshots(&wh, &[after_ours, after_compact]);
    for id in [after_ours, after_compact] {
        assert_rows(&theirs[&id], &model_rows(&model), &format!("pypaimon at snapshot {id}"));
        assert_rows(&our_rows(&table, ReadAt::Snapshot(id)), &model_rows(&model), &format!("us at snapshot {id}"));
    }
}
