//! Property tests: random upserts/deletes with flushes, commits, compactions and
//! reopen, checked against the in-memory model for every merge engine — latest state,
//! time travel to each snapshot (by id and by timestamp), point lookups and changelog replay.

mod common;

use changelog_store::clock::ManualClock;
use changelog_store::{CommitOutcome, Datum, ReadAt, RowKind, Table};
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Upsert { k: i64, v: Option<i64>, s: Option<&'static str>, ts: i64 },
    Delete { k: i64, v: Option<i64>, ts: i64 },
    Flush,
    Commit,
    FullCompact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => any_op(),
        1 => Just(Op::Reopen),
    ]
}

/// Ops whose upserts often repeat a key's current value (few distinct values).
fn repeating_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0i64..8, proptest::option::of(0i64..2)).prop_map(|(k, v)| Op::Upsert { k, v, s: None, ts: 0 }),
        4 => any_op(),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0i64..24, proptest::option::of(-50i64..50), proptest::option::of(prop::sample::select(vec!["a", "bb", "a longer string value"])), 0i64..40)
            .prop_map(|(k, v, s, ts)| Op::Upsert { k, v, s, ts }),
        3 => (0i64..24, proptest::option::of(-50i64..50), 0i64..40).prop_map(|(k, v, ts)| Op::Delete { k, v, ts }),
        2 => Just(Op::Flush),
        3 => Just(Op::Commit),
        1 => Just(Op::FullCompact),
    ]
}

struct Run {
    engine: Engine,
    producer: &'static str,
    sequence_field: bool,
    /// `write-buffer-size`: small to flush on its own; large (with flushes only at
    /// `Flush`/`Commit`) so that level-0 files and small compaction outputs stay in
    /// the writer's batch cache and compactions merge from memory.
    write_buffer: &'static str,
    /// `lookup.cache-max-memory-size`: small enough to evict decoded files (or keep none),
    /// so lookups and row-wise compactions read them from disk again.
    lookup_cache: Option<&'static str>,
    /// Further table options.
    extra: &'static [(&'static str, &'static str)],
}

/// Applies one change to `state`. With `strict` (a changelog the store derives, not the
/// input kept verbatim) also checks it is consistent with the state: `+I` for an absent
/// key, `-U`/`-D` carrying exactly the current value, `+U` right after its `-U` (and,
/// with `changelog-producer.row-deduplicate`, with a different value).
fn replay(
    state: &mut BTreeMap<i64, changelog_store::Row>,
    retracted: &mut Option<changelog_store::Row>,
    strict: bool,
    row_deduplicate: bool,
    kind: RowKind,
    row: changelog_store::Row,
) -> Result<(), String> {
    let k = match row[0] {
        Datum::Long(k) => k,
        _ => return Err(format!("key of {row:?}")),
    };
    match kind {
        _ if !strict => {}
        RowKind::Insert if state.contains_key(&k) => return Err(format!("+I of present key {k}")),
        RowKind::UpdateAfter => match retracted.take() {
            Some(before) if before[0] != row[0] => return Err(format!("+U of key {k} without its -U")),
            Some(before) if row_deduplicate && before == row => return Err(format!("-U/+U of unchanged {row:?}")),
            None => return Err(format!("+U of key {k} without its -U")),
            Some(_) => {}
        },
        RowKind::UpdateBefore | RowKind::Delete if state.get(&k) != Some(&row) => {
            return Err(format!("{kind:?} {row:?} does not retract the current {:?}", state.get(&k)));
        }
        _ => {}
    }
    if kind == RowKind::UpdateBefore {
        *retracted = Some(row.clone());
    }
    if kind.is_add() {
        state.insert(k, row);
    } else {
        state.remove(&k);
    }
    Ok(())
}

fn run(cfg: Run, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.db").join("t");
    let clock = ManualClock::new(1_700_000_000_000);
    let mut opts = engine_options(cfg.engine);
    opts.push(("changelog-producer", cfg.producer));
    opts.push(("write-buffer-size", cfg.write_buffer));
    opts.push(("target-file-size", "4 kb"));
    opts.push(("num-sorted-run.compaction-trigger", "3"));
    opts.push(("num-sorted-run.stop-trigger", "5"));
    if let Some(size) = cfg.lookup_cache {
        opts.push(("lookup.cache-max-memory-size", size));
    }
    opts.extend(cfg.extra.iter().copied());
    if cfg.sequence_field {
        opts.push(("sequence.field", "ts"));
    }
    let table = Table::create_with_clock(&path, spec(&opts), clock.clone()).expect("creates");
    let mut write = table.new_write().expect("writer");
    let committer = table.new_committer("u");
    let mut ident = 0i64;
    let mut model = Model { sequence_field: cfg.sequence_field, ..Default::default() };
    let mut pending: Vec<(RowKind, changelog_store::Row)> = Vec::new();
    // (snapshot id, commit time, expected state)
    let mut expected: Vec<(i64, i64, BTreeMap<i64, changelog_store::Row>)> = Vec::new();
    let drops_deletes = matches!(cfg.engine, Engine::PartialUpdate | Engine::FirstRow);

    let commit = |write: &mut changelog_store::TableWrite,
                  pending: &mut Vec<(RowKind, changelog_store::Row)>,
                  model: &mut Model,
                  expected: &mut Vec<(i64, i64, BTreeMap<i64, changelog_store::Row>)>,
                  ident: &mut i64| {
        *ident += 1;
        let messages = write.prepare_commit().expect("prepares");
        clock.advance(1000);
        let props = BTreeMap::from([("position".to_string(), ident.to_string())]);
        let outcome = committer.commit(*ident, messages, Some(props)).expect("commits");
        for (k, r) in pending.drain(..) {
            model.apply(k, r);
        }
        if let CommitOutcome::Committed(ids) = outcome {
            let st = model.state(cfg.engine);
            for id in ids {
                expected.push((id, clock_now(&table, id), st.clone()));
            }
        }
    };

    for op in ops {
        match op {
            Op::Upsert { k, v, s, ts } => {
                let r = row(k, v, s, ts);
                write.write(r.clone(), RowKind::Insert).expect("writes");
                pending.push((RowKind::Insert, r));
            }
            Op::Delete { k, v, ts } => {
                let r = row(k, v, None, ts);
                write.write(r.clone(), RowKind::Delete).expect("writes");
                if !drops_deletes {
                    pending.push((RowKind::Delete, r));
                }
            }
            Op::Flush => write.flush().expect("flushes"),
            Op::Commit => commit(&mut write, &mut pending, &mut model, &mut expected, &mut ident),
            Op::FullCompact => {
                commit(&mut write, &mut pending, &mut model, &mut expected, &mut ident);
                ident += 1;
                clock.advance(1000);
                if let CommitOutcome::Committed(ids) = table.compact("u", ident, true).expect("compacts") {
                    let st = model.state(cfg.engine);
                    for id in ids {
                        expected.push((id, clock_now(&table, id), st.clone()));
                    }
                }
                write = table.new_write().expect("writer");
            }
            Op::Reopen => {
                // Crash: buffered and flushed-but-uncommitted data is lost.
                pending.clear();
                write = table.new_write().expect("writer");
            }
        }
    }
    commit(&mut write, &mut pending, &mut model, &mut expected, &mut ident);

    let reopened = Table::open(&path).expect("reopens");
    let final_state = model.state(cfg.engine);
    prop_assert_eq!(table_state(reopened.scan(ReadAt::Latest).expect("scans")), final_state.clone());
    for k in [0i64, 5, 23] {
        let got = reopened.lookup(ReadAt::Latest, &[Datum::Long(k)]).expect("looks up");
        prop_assert_eq!(got, final_state.get(&k).cloned(), "lookup {}", k);
    }
    reopened.verify(ReadAt::Latest).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (id, time, st) in &expected {
        reopened.verify(ReadAt::Snapshot(*id)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&table_state(reopened.scan(ReadAt::Snapshot(*id)).expect("scans")), st, "snapshot {}", id);
        let at = reopened.resolve(ReadAt::Timestamp(*time)).expect("resolves").expect("exists");
        prop_assert!(at.id >= *id);
    }
    // Changelog replay: applying the changes snapshot by snapshot yields each state.
    let replayable = cfg.producer == "lookup"
        || (cfg.producer == "input" && cfg.engine == Engine::Deduplicate && !cfg.sequence_field);
    if replayable {
        let changes = reopened.changes_since(1).expect("changelog");
        let mut state = BTreeMap::new();
        let mut retracted = None;
        let row_deduplicate = cfg.extra.contains(&("changelog-producer.row-deduplicate", "true"));
        let by_id: BTreeMap<i64, &BTreeMap<i64, changelog_store::Row>> =
            expected.iter().map(|(id, _, st)| (*id, st)).collect();
        for sc in changes {
            for c in sc.changes {
                replay(&mut state, &mut retracted, cfg.producer == "lookup", row_deduplicate, c.kind, c.row)
                    .map_err(TestCaseError::fail)?;
            }
            if let Some(st) = by_id.get(&sc.snapshot_id) {
                prop_assert_eq!(&state, *st, "changelog replay at snapshot {}", sc.snapshot_id);
            }
        }
    }
    Ok(())
}

fn clock_now(table: &Table, id: i64) -> i64 {
    table.resolve(ReadAt::Snapshot(id)).expect("snapshot").expect("exists").time_millis
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn deduplicate_lookup(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn deduplicate_input(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "input", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn deduplicate_compacting_from_kept_batches(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "none", sequence_field: false, write_buffer: "64 mb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn deduplicate_sequence_field(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "lookup", sequence_field: true, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn partial_update(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::PartialUpdate, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn partial_update_no_changelog(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::PartialUpdate, producer: "none", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn aggregation_input_changelog(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Aggregation, producer: "input", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn aggregation(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Aggregation, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }

    #[test]
    fn deduplicate_lookup_evicting(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: Some("6 kb"), extra: &[] }, ops)?;
    }

    #[test]
    fn deduplicate_lookup_uncached(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: Some("1 b"), extra: &[] }, ops)?;
    }

    #[test]
    fn deduplicate_lookup_row_deduplicate(ops in proptest::collection::vec(repeating_op(), 1..80)) {
        run(Run { engine: Engine::Deduplicate, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: Some("6 kb"), extra: &[("changelog-producer.row-deduplicate", "true")] }, ops)?;
    }

    #[test]
    fn partial_update_uncached(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::PartialUpdate, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: Some("1 b"), extra: &[] }, ops)?;
    }

    #[test]
    fn aggregation_evicting(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::Aggregation, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: Some("6 kb"), extra: &[] }, ops)?;
    }

    #[test]
    fn first_row(ops in proptest::collection::vec(op(), 1..80)) {
        run(Run { engine: Engine::FirstRow, producer: "lookup", sequence_field: false, write_buffer: "2 kb", lookup_cache: None, extra: &[] }, ops)?;
    }
}

#[test]
fn partial_update_with_sequence_field_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = engine_options(Engine::PartialUpdate);
    opts.push(("sequence.field", "ts"));
    let err = Table::create(dir.path().join("t"), spec(&opts)).expect_err("unsupported");
    assert_eq!(err.kind(), changelog_store::ErrorKind::Invalid);
}
