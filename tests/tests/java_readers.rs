//! The Java libraries users read the lake with (Spark, Trino, Flink): Apache Iceberg's
//! `JdbcCatalog` + `IcebergGenerics` and Apache Paimon's Java API, built from
//! tests/interop/java by `ensure_java_readers` (deploy/local/common.sh), read what we
//! write and return exactly the rows a model of the writes says, value by value with
//! their types, and the same rows pyiceberg / pypaimon return:
//!
//! - Bronze: an append-only table with three snapshots in three day partitions, at the
//!   head, by time travel and as an incremental append scan;
//! - Silver: silver-refiner's own tables after inserts, updates, deletes and re-inserts
//!   (RowDelta commits with position deletes), at the head and at an older snapshot;
//!   its changelog store (deduplicate engine, lookup changelog), merged and as a
//!   changelog between two snapshots;
//! - changelog-store tables written directly: a partitioned deduplicate table with every
//!   scalar type, nulls and compactions, and an aggregation-engine table.
//!
//! Needs LAKEHOUSE_TEST_JAVA_READER (the launcher) and LAKEHOUSE_TEST_PYTHON; tests/run.sh
//! sets both. Without the Java reader the tests fail under CI=true and skip loudly
//! otherwise.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use changelog_store::{ReadAt, RowKind, Table, TableSpec};
use iceberg::spec::{Literal, Struct, TableMetadata};
use lakehouse::catalog::TableName;
use lakehouse::config::ValueFormat;
use lakehouse::table::commit::{Committer, Operation};
use lakehouse::table::create::load_or_create;
use lakehouse::table::position::{Offsets, fence_offsets};
use lakehouse_tests::*;
use serde_json::{Value, json};

/// The launcher of the Java readers, or `None` (after saying so) outside CI.
fn java_reader() -> Option<String> {
    match std::env::var("LAKEHOUSE_TEST_JAVA_READER") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("LAKEHOUSE_TEST_JAVA_READER is not set under CI=true: tests/run.sh builds the Java readers")
        }
        _ => {
            eprintln!(
                "SKIPPED: LAKEHOUSE_TEST_JAVA_READER is not set; run tests/run.sh, or `source deploy/local/common.sh; ensure_java_readers`"
            );
            None
        }
    }
}

fn python() -> String {
    std::env::var("LAKEHOUSE_TEST_PYTHON").expect("LAKEHOUSE_TEST_PYTHON (set by tests/run.sh)")
}

/// What one reader printed: the rows (with Paimon's row kind) and its summary line.
#[derive(Debug)]
struct Read {
    rows: Vec<(String, Value)>,
    summary: Value,
}

impl Read {
    /// Rows keyed by `key` (a column holding a number), each once.
    fn by(&self, key: &str) -> BTreeMap<i64, Value> {
        let mut out = BTreeMap::new();
        for (_, r) in &self.rows {
            let k = r[key].as_i64().unwrap_or_else(|| panic!("{key} of {r}"));
            assert!(out.insert(k, r.clone()).is_none(), "{key} {k} read twice");
        }
        out
    }
}

fn parse(out: std::process::Output, what: &str) -> Read {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).lines().take(40).collect::<Vec<_>>().join("\n")
    );
    let mut read = Read { rows: Vec::new(), summary: Value::Null };
    for line in String::from_utf8(out.stdout).unwrap().lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"));
        if let Some(s) = v.get("summary") {
            read.summary = s.clone();
        } else {
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or("+I").to_string();
            read.rows.push((kind, v["row"].clone()));
        }
    }
    read
}

fn java(launcher: &str, args: &[&str]) -> Read {
    parse(Command::new(launcher).args(args).output().unwrap(), &format!("java-readers {args:?}"))
}

fn py(args: &[&str]) -> Read {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/rows_json.py");
    parse(Command::new(python()).arg(script).args(args).output().unwrap(), &format!("rows_json.py {args:?}"))
}

/// `args` of an Iceberg read of `table`, optionally at a snapshot.
fn iceberg_args(lake: &Lake, table: &str, snapshot: Option<i64>) -> Vec<String> {
    let mut a = vec![
        "iceberg".to_string(),
        "--catalog-url".into(),
        lake.catalog.url.clone(),
        "--catalog-name".into(),
        lake.catalog.name.clone(),
        "--warehouse".into(),
        lake.catalog.warehouse.clone(),
        "--table".into(),
        table.to_string(),
    ];
    if let Some(s) = snapshot {
        a.extend(["--snapshot-id".to_string(), s.to_string()]);
    }
    a
}

fn strs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// Asserts two keyed row sets are equal, naming the first differing keys.
fn assert_same(got: &BTreeMap<i64, Value>, want: &BTreeMap<i64, Value>, what: &str) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(k)).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(k)).take(5).collect();
    let differ: Vec<_> = want
        .iter()
        .filter_map(|(k, w)| got.get(k).filter(|g| *g != w).map(|g| format!("{k}: got {g}, want {w}")))
        .take(3)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{what}: {} rows, want {}; missing {missing:?}; extra {extra:?}; differing {differ:#?}",
        got.len(),
        want.len()
    );
}

/// Only `columns` of each row.
fn project(rows: &BTreeMap<i64, Value>, columns: &[&str]) -> BTreeMap<i64, Value> {
    rows.iter()
        .map(|(k, r)| (*k, Value::Object(columns.iter().map(|c| (c.to_string(), r[*c].clone())).collect())))
        .collect()
}

/// `YYYY-MM-DD` of days since 1970-01-01 (proleptic Gregorian).
fn iso_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` of microseconds since the epoch.
fn iso_micros(us: i64) -> String {
    let (days, rest) = (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
    let (s, frac) = (rest / 1_000_000, rest % 1_000_000);
    format!("{}T{:02}:{:02}:{:02}.{frac:06}", iso_date(days), s / 3600, s / 60 % 60, s % 60)
}

// ---------------------------------------------------------------------------------------
// Bronze → Silver → store, written by the real code paths.

const CONTRACT: &str = r#"
[[entity]]
name = "people"
version = 1
source = "bronze.people"
key = "id"
[[entity.column]]
name = "id"
type = "long"
[[entity.column]]
name = "name"
type = "string"
trim = true
[[entity.column]]
name = "score"
type = "double"
[[entity.column]]
name = "balance"
type = "decimal(12,2)"
[[entity.column]]
name = "born"
type = "date"
unit = "days"
[[entity.column]]
name = "seen"
type = "timestamptz"
unit = "micros"
[[entity.column]]
name = "active"
type = "boolean"
[[entity.column]]
name = "level"
type = "int"
"#;

const PEOPLE_COLUMNS: [&str; 8] = ["id", "name", "score", "balance", "born", "seen", "active", "level"];

/// One person at version `v`: the Debezium `after` image and the row a reader must show.
fn person(id: i64, v: i64) -> (Value, Value) {
    let name = (id % 7 != 0).then(|| format!("person {id} v{v}"));
    // Padded names are trimmed by the contract.
    let raw_name = name.as_ref().map(|n| if id % 3 == 0 { format!("  {n} ") } else { n.clone() });
    let score = id as f64 / 4.0 + v as f64;
    let balance = format!("{}.{:02}", id * 3 + v, id % 100);
    let born = 7_000 + id * 3;
    let seen = 1_764_000_000_000_000 + id * 1_000_123 + v * 86_400_000_000;
    let after = json!({"id": id, "name": raw_name, "score": score, "balance": balance, "born": born,
        "seen": seen, "active": id % 2 == 0, "level": id % 50 + v});
    let row = json!({"id": id, "name": name, "score": score, "balance": balance, "born": iso_date(born),
        "seen": format!("{}Z", iso_micros(seen)), "active": id % 2 == 0, "level": id % 50 + v});
    (after, row)
}

/// A change to Bronze: `c`/`u` with the new version, or `d`.
enum Change {
    Upsert(i64, i64),
    Delete(i64),
}

/// Appends one Bronze snapshot of Debezium envelopes for `changes` (Kafka offsets from
/// `offset`), ingested on day `day`; returns the snapshot id and the next offset.
async fn bronze_commit(
    catalog: &lakehouse::catalog::SqlCatalog,
    table: &mut lakehouse::catalog::LoadedTable,
    changes: &[Change],
    offset: i64,
    day: i32,
    lsn: &mut i64,
) -> (i64, i64) {
    let arrow =
        std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(&bronze_ingestor::schema::schema()).unwrap());
    let mut b = bronze_ingestor::rows::RowsBuilder::new(arrow);
    let ingestion_us = i64::from(day) * 86_400_000_000 + 3_600_000_000;
    let mut next = offset;
    for c in changes {
        *lsn += 10;
        let (id, envelope) = match c {
            Change::Upsert(id, v) => {
                let op = if *v == 1 { "c" } else { "u" };
                (
                    *id,
                    json!({"before": null, "after": person(*id, *v).0, "op": op, "ts_ms": 1_764_000_000_000i64,
                    "source": {"lsn": *lsn, "ts_ms": 1_764_000_000_000i64, "db": "app", "schema": "public", "table": "people"}}),
                )
            }
            Change::Delete(id) => (
                *id,
                json!({"before": {"id": id}, "after": null, "op": "d", "ts_ms": 1_764_000_000_000i64,
                    "source": {"lsn": *lsn, "ts_ms": 1_764_000_000_000i64, "db": "app", "schema": "public", "table": "people"}}),
            ),
        };
        let key = json!({"id": id}).to_string();
        let value = envelope.to_string();
        let msg = bronze_ingestor::rows::Message {
            topic: "app.public.people",
            partition: 0,
            offset: next,
            timestamp_ms: Some(1_764_000_000_000),
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers_json: None,
        };
        b.append(&msg, ValueFormat::Debezium, "app", ingestion_us);
        next += 1;
    }
    let writer = bronze_ingestor::schema::data_file_writer(catalog.file_io().clone(), 1 << 27);
    let files =
        writer.write(&table.metadata, Struct::from_iter([Some(Literal::date(day))]), &[b.finish()]).await.unwrap();
    let tp = ("app.public.people".to_string(), 0);
    let expected = BTreeMap::from([(tp.clone(), (offset > 0).then_some(offset))]);
    let advanced = Offsets::from([(tp, next)]);
    let none = HashMap::new();
    let check = |h: &TableMetadata| fence_offsets(h, "bronze", &expected, &advanced, &none);
    let done = Committer::new(catalog.clone()).commit(table, Operation::Append { files }, &check).await.unwrap();
    *table = done.table;
    (done.snapshot_id, next)
}

/// Runs silver-refiner in this process until it has refined everything.
async fn refine(config: &Path) {
    let config = silver_refiner::Config::load_with_env(Some(config), &[]).unwrap();
    let options = silver_refiner::RunOptions { exit_when_idle: Some(Duration::from_millis(600)), ..Default::default() };
    let run = silver_refiner::run(config, options, tokio_util::sync::CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("silver-refiner reached idle").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn java_reads_bronze_silver_and_the_store_as_written() {
    let Some(launcher) = java_reader() else { return };
    let lake = Lake::sqlite();
    let catalog = lake.connect().await;
    catalog.create_namespace_if_absent("bronze").await.unwrap();
    let bronze_name = TableName::new("bronze", "people");
    let mut bronze = load_or_create(&catalog, &bronze_name, &bronze_ingestor::schema::table_spec(90)).await.unwrap();
    let store = lake.dir.path().join("store");
    let contracts = lake.dir.path().join("contracts.toml");
    std::fs::write(&contracts, CONTRACT).unwrap();
    let config = lake.dir.path().join("silver.toml");
    std::fs::write(
        &config,
        format!(
            "[catalog]\nname = {:?}\nurl = {:?}\nwarehouse = {:?}\n\n[silver]\ncontracts = {:?}\nstore = {:?}\n\
             commit_interval = \"100ms\"\npoll_interval = \"100ms\"\nbuckets = 2\n\n[telemetry]\nlisten = \"\"\n",
            lake.catalog.name,
            lake.catalog.url,
            lake.catalog.warehouse,
            contracts.display().to_string(),
            store.display().to_string()
        ),
    )
    .unwrap();

    // Round 1: 300 inserts. Round 2: updates, deletes, new keys. Round 3: second updates of
    // rows written in round 2, more deletes, re-inserts of deleted keys.
    let rounds: Vec<Vec<Change>> = vec![
        (1..=300).map(|id| Change::Upsert(id, 1)).collect(),
        (1..=300)
            .filter_map(|id| match id {
                _ if id % 11 == 0 => Some(Change::Delete(id)),
                _ if id % 5 == 0 => Some(Change::Upsert(id, 2)),
                _ => None,
            })
            .chain((301..=350).map(|id| Change::Upsert(id, 1)))
            .collect(),
        (1..=350)
            .filter_map(|id| match id {
                11 | 22 | 33 => Some(Change::Upsert(id, 4)),
                _ if id % 13 == 0 && id % 11 != 0 => Some(Change::Delete(id)),
                _ if id % 10 == 0 && id % 11 != 0 => Some(Change::Upsert(id, 3)),
                _ => None,
            })
            .collect(),
    ];
    let mut model: BTreeMap<i64, Value> = BTreeMap::new();
    let mut models = Vec::new();
    let (mut offset, mut lsn) = (0, 1_000);
    let mut bronze_snapshots = Vec::new();
    let mut bronze_offsets = Vec::new();
    let mut silver_snapshots = Vec::new();
    let mut store_snapshots = Vec::new();
    let silver_name = TableName::new("silver", "people");
    for (i, changes) in rounds.iter().enumerate() {
        let (snapshot, next) = bronze_commit(&catalog, &mut bronze, changes, offset, 20_400 + i as i32, &mut lsn).await;
        bronze_snapshots.push(snapshot);
        bronze_offsets.push(offset..next);
        offset = next;
        for c in changes {
            match c {
                Change::Upsert(id, v) => model.insert(*id, person(*id, *v).1),
                Change::Delete(id) => model.remove(id),
            };
        }
        models.push(model.clone());
        refine(&config).await;
        let silver = catalog.require_table(&silver_name).await.unwrap();
        silver_snapshots.push(silver.metadata.current_snapshot_id().unwrap());
        let store_table = Table::open(store.join("silver.db/people")).unwrap();
        store_snapshots.push(store_table.latest_snapshot().unwrap().unwrap().id);
    }
    assert!(model.len() > 250 && !model.contains_key(&55) && model.contains_key(&22), "the model mixes every op");

    // Bronze: the head, time travel to the first snapshot, the incremental append scan.
    let ours = bronze_rows(&scan_all(&catalog, &bronze_name).await);
    let head = java(&launcher, &strs(&iceberg_args(&lake, "bronze.people", None)));
    let by_offset = head.by("kafka_offset");
    assert_eq!(by_offset.len(), ours.len(), "Java's Bronze row count");
    for r in &ours {
        let j = &by_offset[&r.offset];
        assert_eq!(j["kafka_topic"], r.topic.as_str());
        assert_eq!(j["kafka_partition"], r.partition);
        assert_eq!(j["key"].as_str(), r.key.as_deref());
        assert_eq!(j["value"].as_str(), r.value.as_deref(), "value of offset {}", r.offset);
        assert_eq!(j["op"].as_str(), r.op.as_deref());
        assert_eq!(j["event_kind"].as_str(), Some(r.event_kind.as_str()));
        assert_eq!(j["record_hash"].as_str(), r.record_hash.as_deref());
        assert_eq!(j["source_file"].as_str(), Some(r.source_file.as_str()));
        assert!(j["ingestion_timestamp"].as_str().unwrap().ends_with('Z'), "timestamptz: {}", j["ingestion_timestamp"]);
    }
    let py_head = py(&strs(&iceberg_args(&lake, "bronze.people", None)));
    assert_same(&by_offset, &py_head.by("kafka_offset"), "Bronze: Java vs pyiceberg, every column");
    let s = &head.summary;
    assert_eq!(s["format_version"], 2);
    assert_eq!(s["current_snapshot_id"], *bronze_snapshots.last().unwrap());
    assert_eq!(s["data_files"], 3, "{s}");
    assert_eq!(s["partition_spec"], json!(["day(ingestion_timestamp)"]));
    let snaps = s["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3);
    assert!(snaps.iter().all(|x| x["operation"] == "append"), "{snaps:?}");
    let last = snaps.iter().find(|x| x["snapshot_id"] == *bronze_snapshots.last().unwrap()).unwrap();
    assert_eq!(last["summary"]["total-records"], ours.len().to_string().as_str(), "{last}");
    let position = last["summary"]["lakehouse.kafka-offsets.bronze"].as_str().unwrap_or_else(|| panic!("{last}"));
    assert_eq!(
        lakehouse::table::position::decode_offsets(position),
        Some(Offsets::from([(("app.public.people".to_string(), 0), offset)])),
        "the committed Kafka position in the summary Java reads"
    );
    let first = java(&launcher, &strs(&iceberg_args(&lake, "bronze.people", Some(bronze_snapshots[0]))));
    let offsets: Vec<i64> = first.by("kafka_offset").into_keys().collect();
    assert_eq!(offsets, bronze_offsets[0].clone().collect::<Vec<_>>(), "Bronze at its first snapshot");
    let mut args = iceberg_args(&lake, "bronze.people", None);
    args.extend(["--append-from".into(), bronze_snapshots[0].to_string()]);
    args.extend(["--append-to".into(), bronze_snapshots[2].to_string()]);
    let appended = java(&launcher, &strs(&args));
    let offsets: Vec<i64> = appended.by("kafka_offset").into_keys().collect();
    assert_eq!(
        offsets,
        (bronze_offsets[1].start..bronze_offsets[2].end).collect::<Vec<_>>(),
        "appends after snapshot 1"
    );
    assert_eq!(appended.summary["data_files"], 2);

    // Silver: the head against the model (contract columns) and pyiceberg (every column).
    let head = java(&launcher, &strs(&iceberg_args(&lake, "silver.people", None)));
    let rows = head.by("id");
    assert_same(&project(&rows, &PEOPLE_COLUMNS), &model, "Silver read by Java Iceberg vs the model");
    assert_same(&rows, &py(&strs(&iceberg_args(&lake, "silver.people", None))).by("id"), "Silver: Java vs pyiceberg");
    for (id, r) in &rows {
        assert_eq!(r["_kafka_topic"], "app.public.people");
        assert!(
            r["_bronze_snapshot_id"].as_i64().is_some_and(|s| bronze_snapshots.contains(&s)),
            "lineage of {id}: {r}"
        );
    }
    let s = &head.summary;
    assert_eq!(s["format_version"], 2);
    assert!(s["delete_files"].as_u64().unwrap() >= 2, "position deletes of rounds 2 and 3 planned: {s}");
    assert!(s["data_files_with_deletes"].as_u64().unwrap() >= 1, "{s}");
    let types: BTreeMap<&str, &str> = s["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    for (c, t) in [
        ("id", "long"),
        ("name", "string"),
        ("score", "double"),
        ("balance", "decimal(12, 2)"),
        ("born", "date"),
        ("seen", "timestamptz"),
        ("active", "boolean"),
        ("level", "int"),
    ] {
        assert_eq!(types.get(c), Some(&t), "Iceberg type of {c}");
    }
    let ops: Vec<&str> = s["snapshots"].as_array().unwrap().iter().map(|x| x["operation"].as_str().unwrap()).collect();
    assert!(ops.contains(&"overwrite"), "RowDelta snapshots: {ops:?}");
    // Time travel to the first Silver snapshot: no delete applies there.
    let at1 = java(&launcher, &strs(&iceberg_args(&lake, "silver.people", Some(silver_snapshots[0]))));
    assert_same(&project(&at1.by("id"), &PEOPLE_COLUMNS), &models[0], "Silver at its first snapshot");
    let at2 = java(&launcher, &strs(&iceberg_args(&lake, "silver.people", Some(silver_snapshots[1]))));
    assert_same(&project(&at2.by("id"), &PEOPLE_COLUMNS), &models[1], "Silver at its second snapshot");

    // The store behind Silver, by Java Paimon: merged rows, and the changelog between rounds.
    let path = store.join("silver.db/people").display().to_string();
    let merged = java(&launcher, &["paimon", "--table-path", &path]);
    let store_rows = merged.by("id");
    // The store keeps Silver's `timestamptz` as an instant, TIMESTAMP(6) WITH LOCAL TIME ZONE.
    assert_same(&project(&store_rows, &PEOPLE_COLUMNS), &model, "the store read by Java Paimon vs the model");
    let seen_type =
        merged.summary["schema"].as_array().unwrap().iter().find(|f| f["name"] == "seen").unwrap()["type"].clone();
    assert_eq!(seen_type, "TIMESTAMP(6) WITH LOCAL TIME ZONE");
    assert_same(&store_rows, &py(&["paimon", "--table-path", &path]).by("id"), "the store: Java vs pypaimon");
    assert_eq!(merged.summary["primary_keys"], json!(["id"]));
    let from = store_snapshots[0];
    let to = *store_snapshots.last().unwrap();
    let between = format!("{from},{to}");
    let changes = java(
        &launcher,
        &["paimon", "--table-path", &path, "--incremental", &between, "--incremental-mode", "changelog"],
    );
    let mut theirs: Vec<(String, i64)> =
        changes.rows.iter().map(|(k, r)| (k.clone(), r["id"].as_i64().unwrap())).collect();
    let store_table = Table::open(store.join("silver.db/people")).unwrap();
    let mut ours: Vec<(String, i64)> = store_table
        .changes_since(from + 1)
        .unwrap()
        .iter()
        .flat_map(|s| {
            s.changes
                .iter()
                .map(|c| (c.kind.short_string().to_string(), store_table.row_to_json(&c.row)["id"].as_i64().unwrap()))
        })
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(theirs, ours, "changelog of store snapshots {from}..{to}: Java Paimon vs ours");
    for kind in ["+I", "-U", "+U", "-D"] {
        assert!(ours.iter().any(|(k, _)| k == kind), "the changelog has {kind}");
    }
}

// ---------------------------------------------------------------------------------------
// changelog-store tables written directly.

/// The model row of key `k` at version `v` in the Java spelling, and the JSON we write.
fn typed_row(region: &str, k: i64, v: i64) -> (Value, Value) {
    let ts6 = 1_795_773_600_000_000 + k * 1_000_001 + v;
    let ts3 = 1_795_773_600_000 + k * 1_001 + v;
    let name = (k % 4 != 1).then(|| format!("name {k} v{v}"));
    let note = (k % 3 == 0).then(|| "é ∑ 😀".repeat((k % 5) as usize + 1));
    let price = format!("{}.{:03}", k * 7 + v, k % 1000);
    let written = json!({"region": region, "k": k, "name": name, "note": note, "price": price,
        "qty": (k % 100) as i32 - 50, "small": (k % 300) as i32 - 150, "tiny": (k % 200) as i32 - 100,
        "ratio": k as f64 / 8.0 + v as f64, "f": (k % 16) as f64 / 4.0, "flag": (k + v) % 2 == 0,
        "day": 19_000 + k as i32, "ts6": ts6, "ts3": ts3, "tsz": ts6 + 7, "bin": [k as u8, v as u8, 0, 255]});
    let model = json!({"region": region, "k": k, "name": name, "note": note, "price": price,
        "qty": (k % 100) - 50, "small": (k % 300) - 150, "tiny": (k % 200) - 100,
        "ratio": k as f64 / 8.0 + v as f64, "f": (k % 16) as f64 / 4.0, "flag": (k + v) % 2 == 0,
        "day": iso_date(19_000 + k), "ts6": iso_micros(ts6), "ts3": iso_micros(ts3 * 1000),
        "tsz": format!("{}Z", iso_micros(ts6 + 7)), "bin": format!("{:02x}{:02x}00ff", k as u8, v as u8)});
    (written, model)
}

#[test]
fn java_paimon_reads_store_tables_of_every_type_and_engine() {
    let Some(launcher) = java_reader() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = TableSpec {
        columns: [
            ("region", "STRING NOT NULL"),
            ("k", "BIGINT NOT NULL"),
            ("name", "STRING"),
            ("note", "VARCHAR(200)"),
            ("price", "DECIMAL(18, 3)"),
            ("qty", "INT"),
            ("small", "SMALLINT"),
            ("tiny", "TINYINT"),
            ("ratio", "DOUBLE"),
            ("f", "FLOAT"),
            ("flag", "BOOLEAN"),
            ("day", "DATE"),
            ("ts6", "TIMESTAMP(6)"),
            ("ts3", "TIMESTAMP(3)"),
            ("tsz", "TIMESTAMP(6) WITH LOCAL TIME ZONE"),
            ("bin", "BYTES"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
        primary_keys: vec!["region".into(), "k".into()],
        partition_keys: vec!["region".into()],
        options: [
            ("bucket", "2"),
            ("changelog-producer", "lookup"),
            ("write-buffer-size", "64 kb"),
            ("num-sorted-run.compaction-trigger", "3"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
    };
    let table = Table::create_in_warehouse(dir.path(), "db", "typed", spec).unwrap();
    let committer = table.new_committer("java-test");
    // key → (region, model row); composite keys flattened to k (unique across regions).
    let mut model: BTreeMap<i64, Value> = BTreeMap::new();
    let mut at: BTreeMap<i64, BTreeMap<i64, Value>> = BTreeMap::new();
    for round in 0..6i64 {
        let mut w = table.new_write().unwrap();
        for k in 0..400i64 {
            let region = ["eu", "us", "ap-south"][(k % 3) as usize];
            let touch = round == 0 || (k + round) % 4 == 0;
            if !touch {
                continue;
            }
            if round > 0 && (k + round) % 12 == 0 {
                // Deletes carry the key only; every value column is null in the file.
                w.write_json(&json!({"region": region, "k": k}), RowKind::Delete).unwrap();
                model.remove(&k);
            } else {
                let (written, row) = typed_row(region, k, round);
                let kind = if model.contains_key(&k) { RowKind::UpdateAfter } else { RowKind::Insert };
                w.write_json(&written, kind).unwrap();
                model.insert(k, row);
            }
        }
        committer.commit(round + 1, w.prepare_commit().unwrap(), None).unwrap();
        for s in table.snapshots().unwrap() {
            at.entry(s.id).or_insert_with(|| model.clone());
        }
    }
    table.compact("java-test", 100, true).unwrap();
    let last = table.latest_snapshot().unwrap().unwrap().id;
    at.entry(last).or_insert_with(|| model.clone());
    assert_eq!(table.scan(ReadAt::Latest).unwrap().len(), model.len());

    let path = dir.path().join("db.db/typed").display().to_string();
    // Every third snapshot, and the last (after the full compaction).
    for (id, want) in at.iter().filter(|(id, _)| *id % 3 == 0 || **id == last) {
        let id_s = id.to_string();
        let read = java(&launcher, &["paimon", "--table-path", &path, "--snapshot-id", &id_s]);
        assert_same(&read.by("k"), want, &format!("Java Paimon at snapshot {id}"));
        let theirs = py(&["paimon", "--table-path", &path, "--snapshot-id", &id_s]);
        assert_same(&read.by("k"), &theirs.by("k"), &format!("Java Paimon vs pypaimon at snapshot {id}"));
        if *id == last {
            let types: Vec<&str> =
                read.summary["schema"].as_array().unwrap().iter().map(|f| f["type"].as_str().unwrap()).collect();
            assert_eq!(types[..5], ["STRING NOT NULL", "BIGINT NOT NULL", "STRING", "VARCHAR(200)", "DECIMAL(18, 3)"]);
            assert_eq!(types[14], "TIMESTAMP(6) WITH LOCAL TIME ZONE");
            assert_eq!(read.summary["partition_keys"], json!(["region"]));
            assert_eq!(read.summary["latest_snapshot"]["commit_kind"], "COMPACT");
        }
    }
    // A partition-filtered scan (Java prunes manifests by the manifest list's partition stats).
    let us = java(&launcher, &["paimon", "--table-path", &path, "--partition", "region=us"]);
    let want: BTreeMap<i64, Value> =
        model.iter().filter(|(_, r)| r["region"] == "us").map(|(k, r)| (*k, r.clone())).collect();
    assert!(!want.is_empty());
    assert_same(&us.by("k"), &want, "Java Paimon, partition region=us");

    // The lookup changelog of the last three writes, kinds and values, as ours.
    let between = format!("{},{last}", last - 3);
    let changes = java(
        &launcher,
        &["paimon", "--table-path", &path, "--incremental", &between, "--incremental-mode", "changelog"],
    );
    let mut theirs: Vec<String> = changes.rows.iter().map(|(k, r)| format!("{k} {}", r["k"])).collect();
    let mut ours: Vec<String> = table
        .changes_since(last - 2)
        .unwrap()
        .iter()
        .flat_map(|s| s.changes.iter().map(|c| format!("{} {}", c.kind.short_string(), table.row_to_json(&c.row)["k"])))
        .collect();
    theirs.sort();
    ours.sort();
    assert!(!ours.is_empty());
    assert_eq!(theirs, ours, "changelog between snapshots {between}");

    // Aggregation engine: sums, max and last_non_null per key after several commits.
    let spec = TableSpec {
        columns: [
            ("day", "DATE NOT NULL"),
            ("sku", "STRING NOT NULL"),
            ("qty", "BIGINT"),
            ("amount", "DECIMAL(20, 2)"),
            ("top", "INT"),
            ("label", "STRING"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
        primary_keys: vec!["day".into(), "sku".into()],
        partition_keys: vec![],
        options: [
            ("bucket", "2"),
            ("merge-engine", "aggregation"),
            ("fields.qty.aggregate-function", "sum"),
            ("fields.amount.aggregate-function", "sum"),
            ("fields.top.aggregate-function", "max"),
            ("fields.label.aggregate-function", "last_non_null_value"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
    };
    let agg = Table::create_in_warehouse(dir.path(), "db", "agg", spec).unwrap();
    let committer = agg.new_committer("java-test");
    // (day, sku) → (sum of qty, sum of cents, max of top, last non-null label)
    type Aggregates = (i64, i64, i64, Option<String>);
    let mut sums: BTreeMap<(i64, i64), Aggregates> = BTreeMap::new();
    for round in 0..4i64 {
        let mut w = agg.new_write().unwrap();
        for n in 0..300i64 {
            let (day, sku) = (20_000 + n % 5, n % 37);
            let cents = n * 7 + round;
            let label = (n % 3 != 0).then(|| format!("r{round} n{n}"));
            w.write_json(
                &json!({"day": day, "sku": format!("sku-{sku}"), "qty": n + round,
                "amount": format!("{}.{:02}", cents / 100, cents % 100), "top": (n * round) % 97, "label": label}),
                RowKind::Insert,
            )
            .unwrap();
            let e = sums.entry((day, sku)).or_insert((0, 0, i64::MIN, None));
            e.0 += n + round;
            e.1 += cents;
            e.2 = e.2.max((n * round) % 97);
            if label.is_some() {
                e.3 = label;
            }
        }
        committer.commit(round + 1, w.prepare_commit().unwrap(), None).unwrap();
    }
    let path = dir.path().join("db.db/agg").display().to_string();
    let read = java(&launcher, &["paimon", "--table-path", &path]);
    let mut got: BTreeMap<(String, String), Value> = BTreeMap::new();
    for (kind, r) in &read.rows {
        assert_eq!(kind, "+I");
        got.insert((r["day"].as_str().unwrap().to_string(), r["sku"].as_str().unwrap().to_string()), r.clone());
    }
    let want: BTreeMap<(String, String), Value> = sums
        .iter()
        .map(|((day, sku), (qty, cents, top, label))| {
            let key = (iso_date(*day), format!("sku-{sku}"));
            let row = json!({"day": key.0, "sku": key.1, "qty": qty, "amount": format!("{}.{:02}", cents / 100, cents % 100),
                "top": top, "label": label});
            (key, row)
        })
        .collect();
    assert_eq!(got, want, "aggregation table read by Java Paimon");
    let theirs = py(&["paimon", "--table-path", &path]);
    assert_eq!(theirs.rows.len(), want.len(), "pypaimon's row count of the aggregation table");

    // First-row engine: Java's batch scan reads levels >= 1 only, so every commit must
    // leave its rows there; later duplicates of a key are ignored.
    let spec = TableSpec {
        columns: [("k", "BIGINT NOT NULL"), ("v", "STRING"), ("at", "TIMESTAMP(6) WITH LOCAL TIME ZONE")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        primary_keys: vec!["k".into()],
        partition_keys: vec![],
        options: [("bucket", "2"), ("merge-engine", "first-row"), ("changelog-producer", "lookup")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let first = Table::create_in_warehouse(dir.path(), "db", "first", spec).unwrap();
    let committer = first.new_committer("java-test");
    let mut want: BTreeMap<i64, Value> = BTreeMap::new();
    let path = dir.path().join("db.db/first").display().to_string();
    for round in 0..4i64 {
        let mut w = first.new_write().unwrap();
        for k in (round * 50)..(round * 50 + 120) {
            let at = 1_795_773_600_000_000 + k * 1_000_003 + round;
            w.write_json(&json!({"k": k, "v": format!("r{round}"), "at": at}), RowKind::Insert).unwrap();
            want.entry(k)
                .or_insert_with(|| json!({"k": k, "v": format!("r{round}"), "at": format!("{}Z", iso_micros(at))}));
        }
        committer.commit(round + 1, w.prepare_commit().unwrap(), None).unwrap();
        let read = java(&launcher, &["paimon", "--table-path", &path]);
        assert!(read.rows.iter().all(|(kind, _)| kind == "+I"));
        assert_same(&read.by("k"), &want, &format!("first-row table read by Java Paimon after commit {}", round + 1));
    }
    assert_same(&py(&["paimon", "--table-path", &path]).by("k"), &want, "first-row table read by pypaimon");

    // Widened columns (`Table::widen_columns`, Silver's `widen-types`): files written
    // before the change keep INT / FLOAT / DECIMAL(6,2); Java reads them in the new types.
    let spec = TableSpec {
        columns: [("k", "BIGINT NOT NULL"), ("n", "INT"), ("f", "FLOAT"), ("d", "DECIMAL(6, 2)")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        primary_keys: vec!["k".into()],
        partition_keys: vec![],
        options: [("bucket", "2"), ("changelog-producer", "lookup")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let narrow = Table::create_in_warehouse(dir.path(), "db", "widened", spec).unwrap();
    let mut w = narrow.new_write().unwrap();
    let mut want: BTreeMap<i64, Value> = BTreeMap::new();
    for k in 0..40i64 {
        w.write_json(
            &json!({"k": k, "n": -2_000_000_000 + k, "f": k as f64 * 0.25, "d": format!("{k}.05")}),
            RowKind::Insert,
        )
        .unwrap();
        want.insert(k, json!({"k": k, "n": -2_000_000_000 + k, "f": k as f64 * 0.25, "d": format!("{k}.05")}));
    }
    narrow.new_committer("java-test").commit(1, w.prepare_commit().unwrap(), None).unwrap();
    let wide = narrow
        .widen_columns(&[
            ("n".into(), "BIGINT".into()),
            ("f".into(), "DOUBLE".into()),
            ("d".into(), "DECIMAL(12, 2)".into()),
        ])
        .unwrap();
    let mut w = wide.new_write().unwrap();
    for k in (30..50i64).step_by(2) {
        // An odd integer above 2^24: a double, not a float, holds it (and its text reads back exactly).
        let f = 16_777_217.0 + 2.0 * k as f64;
        let row = json!({"k": k, "n": (1i64 << 40) + k, "f": f, "d": format!("{}.99", 1_000_000_000 + k)});
        w.write_json(&row, RowKind::Insert).unwrap();
        want.insert(k, row);
    }
    wide.new_committer("java-test").commit(2, w.prepare_commit().unwrap(), None).unwrap();
    let path = dir.path().join("db.db/widened").display().to_string();
    let read = java(&launcher, &["paimon", "--table-path", &path]);
    assert_same(&read.by("k"), &want, "widened table read by Java Paimon (old files in the new types)");
    assert_same(&py(&["paimon", "--table-path", &path]).by("k"), &want, "widened table read by pypaimon");
}

// ---------------------------------------------------------------------------------------
// The other way round: Java Iceberg writes, we read and commit on top.

/// The row Java's `IcebergWriter.record` writes for `id`, in the readers' spelling.
fn java_written(id: i64) -> Value {
    let region = if id % 2 == 0 { "eu" } else { "us" };
    let v = (id % 7 != 0).then(|| format!("j{id}"));
    let cents = id * 125;
    let at = iso_micros((1_764_000_000 + id) * 1_000_000 + id);
    json!({"id": id, "region": region, "v": v, "amount": format!("{}.{:02}", cents / 100, cents % 100), "at": format!("{at}Z")})
}

#[tokio::test(flavor = "multi_thread")]
async fn we_read_and_extend_a_table_java_iceberg_wrote() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use futures::TryStreamExt;
    use lakehouse::table::position_delete::{PositionDeleteWriter, ReferencedFile};
    use lakehouse::table::writer::{Codec, DataFileWriter};

    let Some(launcher) = java_reader() else { return };
    let lake = Lake::sqlite();
    let catalog = lake.connect().await;
    let mut args = iceberg_args(&lake, "javans.written", None);
    args[0] = "iceberg-write".into();
    args.extend(["--rows".into(), "100".into()]);
    let written = java(&launcher, &strs(&args));
    let deleted: Vec<i64> =
        written.summary["deleted"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
    let mut model: BTreeMap<i64, Value> =
        (0..100).filter(|i| !deleted.contains(i)).map(|i| (i, java_written(i))).collect();
    assert!(deleted.contains(&6) && deleted.contains(&5) && model.len() == 73, "{deleted:?}");

    // Our catalog and reader (iceberg-rust) see Java's table, its position deletes applied.
    let name = TableName::new("javans", "written");
    assert!(catalog.list_tables(Some("javans")).await.unwrap().contains(&name), "our catalog lists Java's table");
    let ids = |batches: &[arrow_array::RecordBatch]| -> Vec<i64> {
        let mut ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column_by_name("id").unwrap().as_primitive::<Int64Type>().values().to_vec())
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids(&scan_all(&catalog, &name).await), model.keys().copied().collect::<Vec<_>>(), "our scan");

    // Our commit layer on top of Java's snapshots: an append, then a position delete of a row
    // in Java's own `eu` data file.
    let head = catalog.require_table(&name).await.unwrap();
    let table = head.to_table(catalog.file_io()).unwrap();
    let tasks: Vec<_> = table.scan().build().unwrap().plan_files().await.unwrap().try_collect().await.unwrap();
    let eu_file = tasks.iter().map(|t| t.data_file_path.clone()).find(|p| p.contains("region=eu")).unwrap();
    let arrow = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(head.metadata.current_schema()).unwrap());
    let tz = match arrow.field(4).data_type() {
        arrow_schema::DataType::Timestamp(_, tz) => tz.clone(),
        other => panic!("`at` maps to {other}"),
    };
    let new_ids: Vec<i64> = (100..110).map(|i| i * 2).collect();
    let batch = arrow_array::RecordBatch::try_new(
        arrow.clone(),
        vec![
            std::sync::Arc::new(arrow_array::Int64Array::from(new_ids.clone())),
            std::sync::Arc::new(arrow_array::StringArray::from_iter_values(new_ids.iter().map(|_| "eu"))),
            std::sync::Arc::new(arrow_array::StringArray::from_iter(
                new_ids.iter().map(|i| (i % 7 != 0).then(|| format!("j{i}"))),
            )),
            std::sync::Arc::new(
                arrow_array::Decimal128Array::from_iter_values(new_ids.iter().map(|i| i128::from(*i) * 125))
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            std::sync::Arc::new(
                arrow_array::TimestampMicrosecondArray::from_iter_values(
                    new_ids.iter().map(|i| (1_764_000_000 + i) * 1_000_000 + i),
                )
                .with_timezone_opt(tz),
            ),
        ],
    )
    .unwrap();
    let eu = Struct::from_iter([Some(Literal::string("eu"))]);
    let data = DataFileWriter::new(catalog.file_io().clone(), Codec::Zstd(3), 1 << 27);
    let files = data.write(&head.metadata, eu.clone(), &[batch]).await.unwrap();
    let no_position = |_: &TableMetadata| Ok(HashMap::new());
    let committer = Committer::new(catalog.clone());
    let appended = committer.commit(&head, Operation::Append { files }, &no_position).await.unwrap();
    for i in &new_ids {
        model.insert(*i, java_written(*i));
    }
    // Position 1 of the eu file is id 2 (even ids in order).
    let deletes = PositionDeleteWriter::new(catalog.file_io().clone())
        .write(&appended.table.metadata, &[ReferencedFile::new(eu_file.clone(), eu)], vec![(eu_file, 1)])
        .await
        .unwrap();
    let op = Operation::RowDelta { data_files: vec![], delete_files: deletes };
    let last = committer.commit(&appended.table, op, &no_position).await.unwrap();
    model.remove(&2);

    // Java, pyiceberg and we all see the result.
    let read = java(&launcher, &strs(&iceberg_args(&lake, "javans.written", None)));
    assert_same(&read.by("id"), &model, "Java reads the table after our commits");
    assert_same(&py(&strs(&iceberg_args(&lake, "javans.written", None))).by("id"), &model, "pyiceberg, likewise");
    assert_eq!(ids(&scan_all(&catalog, &name).await), model.keys().copied().collect::<Vec<_>>(), "our scan after");
    let s = &read.summary;
    assert_eq!(s["current_snapshot_id"], last.snapshot_id);
    assert_eq!(s["last_sequence_number"], 4, "Java's two commits, then ours: {s}");
    assert_eq!(s["delete_files"], 3, "{s}");
    let ops: Vec<&str> = s["snapshots"].as_array().unwrap().iter().map(|x| x["operation"].as_str().unwrap()).collect();
    assert_eq!(ops.len(), 4, "{ops:?}");
}
