//! Maintenance on commit, end to end on a real SQLite catalog and local
//! warehouse: manifests merged with their sequence numbers (position deletes
//! keep applying), snapshots expired by age and count while positions,
//! consumers and incremental reads keep what they need, files deleted only
//! when nothing retained reaches them, metadata files bounded.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use futures::TryStreamExt;
use iceberg::spec::{
    DataFile, NestedField, PrimitiveType, Schema, SnapshotReference, SnapshotRetention, Struct, TableMetadata, Type,
    UnboundPartitionSpec,
};

use crate::catalog::{LoadedTable, SqlCatalog, TableName};
use crate::config::CatalogConfig;
use crate::table::clock::{Clock, ManualClock};
use crate::table::commit::{Committer, Fenced, Operation, manifests_of};
use crate::table::consumer::{ConsumerPosition, consumer_key};
use crate::table::create::{TableSpec, load_or_create_with_clock};
use crate::table::incremental::increments;
use crate::table::position::{Offsets, committed_offsets, offsets_properties};
use crate::table::position_delete::{PositionDeleteWriter, ReferencedFile};
use crate::table::writer::{Codec, DataFileWriter};

/// Simulated time runs a day in the past (metadata-only commits are stamped no
/// earlier than the wall clock by iceberg-rust's builder checks).
fn t0() -> i64 {
    chrono::Utc::now().timestamp_millis() - 86_400_000
}
const STEP: i64 = 5_000;

struct Lake {
    dir: tempfile::TempDir,
    catalog: SqlCatalog,
    committer: Committer,
    clock: Arc<ManualClock>,
    t0: i64,
    data: DataFileWriter,
}

async fn lake() -> Lake {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = SqlCatalog::connect(&CatalogConfig {
        name: "lakehouse".into(),
        url: format!("sqlite://{}", dir.path().join("catalog.db").display()),
        warehouse: dir.path().join("warehouse").display().to_string(),
    })
    .await
    .expect("catalog opens");
    catalog.create_namespace_if_absent("bronze").await.expect("namespace");
    let clock = Arc::new(ManualClock::new(t0()));
    Lake {
        committer: Committer::new(catalog.clone()).with_clock(clock.clone()),
        data: DataFileWriter::new(catalog.file_io().clone(), Codec::Zstd(1), 1 << 27),
        dir,
        catalog,
        t0: clock.now_ms(),
        clock,
    }
}

fn spec(properties: &[(&str, &str)]) -> TableSpec {
    let schema = Schema::builder()
        .with_schema_id(0)
        .with_fields([NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into()])
        .build()
        .expect("schema");
    TableSpec {
        schema,
        partition_spec: UnboundPartitionSpec::builder().with_spec_id(0).build(),
        properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

async fn file(lake: &Lake, m: &TableMetadata, ids: std::ops::Range<i64>) -> DataFile {
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(m.current_schema()).expect("arrow schema"));
    let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(ids))]).expect("batch");
    lake.data.write(m, Struct::empty(), &[b]).await.expect("data file").remove(0)
}

/// Appends ids `[i*10, i*10+10)` as commit `i`, 5 s after the previous one,
/// carrying Kafka offsets (next = i + 1) like Bronze.
async fn append(lake: &Lake, head: &LoadedTable, i: i64) -> LoadedTable {
    lake.clock.set(lake.t0 + i * STEP);
    let f = file(lake, &head.metadata, i * 10..i * 10 + 10).await;
    let advanced = Offsets::from([(("t".to_string(), 0), i + 1)]);
    let check = move |h: &TableMetadata| -> Result<HashMap<String, String>, Fenced> {
        let now = committed_offsets(h, "g").map_err(|e| Fenced(e.to_string()))?;
        Ok(offsets_properties("g", &now, &advanced))
    };
    lake.committer.commit(head, Operation::Append { files: vec![f] }, &check).await.expect("commit").table
}

async fn scan_ids(catalog: &SqlCatalog, table: &LoadedTable) -> Vec<i64> {
    let t = table.to_table(catalog.file_io()).expect("table");
    let batches: Vec<RecordBatch> =
        t.scan().build().expect("scan").to_arrow().await.expect("stream").try_collect().await.expect("batches");
    let mut ids: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    ids.sort();
    ids
}

fn files_in(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().display().to_string()).collect())
        .unwrap_or_default()
}

/// A new Bronze table `name` with `properties`.
async fn table(lake: &Lake, name: &str, properties: &[(&str, &str)]) -> (TableName, LoadedTable) {
    let name = TableName::new("bronze", name);
    let head =
        load_or_create_with_clock(&lake.catalog, &name, &spec(properties), lake.clock.as_ref()).await.expect("table");
    (name, head)
}

fn metadata_dir(lake: &Lake, name: &str) -> std::path::PathBuf {
    lake.dir.path().join("warehouse").join("bronze").join(name).join("metadata")
}

#[tokio::test(flavor = "multi_thread")]
async fn merged_manifests_keep_rows_sequence_numbers_and_position_deletes() {
    let lake = lake().await;
    // Merge once 5 small manifests are carried; nothing expires (one day of history).
    let props = [("commit.manifest.min-count-to-merge", "5"), ("history.expire.max-snapshot-age-ms", "86400000")];
    let (_, mut head) = table(&lake, "merged", &props).await;
    head = append(&lake, &head, 0).await;
    // Delete ids 3 and 5 of the first file by position, before any merge.
    let first = manifests_of(lake.catalog.file_io(), &head.metadata, head.metadata.current_snapshot().expect("s"))
        .await
        .expect("manifests");
    let entry = first[0].load_manifest(lake.catalog.file_io()).await.expect("manifest").entries()[0].clone();
    let data_file = entry.data_file().clone();
    let deletes = PositionDeleteWriter::new(lake.catalog.file_io().clone())
        .write(
            &head.metadata,
            &[ReferencedFile::from(&data_file)],
            vec![(data_file.file_path().to_string(), 3), (data_file.file_path().to_string(), 5)],
        )
        .await
        .expect("position deletes");
    let no_position = |_: &TableMetadata| Ok(HashMap::new());
    lake.clock.advance(STEP);
    head = lake
        .committer
        .commit(&head, Operation::RowDelta { data_files: Vec::new(), delete_files: deletes }, &no_position)
        .await
        .expect("row delta")
        .table;
    for i in 1..40 {
        head = append(&lake, &head, i).await;
    }
    let snapshot = head.metadata.current_snapshot().expect("current");
    let manifests = manifests_of(lake.catalog.file_io(), &head.metadata, snapshot).await.expect("manifests");
    assert!(manifests.len() <= 6, "41 commits, merged above 5 small manifests: {} manifests", manifests.len());
    assert!(
        manifests.iter().any(|m| m.content == iceberg::spec::ManifestContentType::Deletes),
        "delete manifest carried"
    );
    // Every data file keeps the sequence number of the commit that added it.
    let mut seen = 0;
    for m in &manifests {
        for e in m.load_manifest(lake.catalog.file_io()).await.expect("manifest").entries() {
            let added_by = head.metadata.snapshot_by_id(e.snapshot_id().expect("snapshot id")).expect("not expired");
            assert_eq!(e.sequence_number(), Some(added_by.sequence_number()), "{}", e.data_file().file_path());
            seen += 1;
        }
    }
    assert_eq!(seen, 41, "40 data files and one delete file, each once");
    // The deletes still apply (they would not if the data files had taken a newer sequence number).
    let expected: Vec<i64> = (0..400).filter(|i| *i != 3 && *i != 5).collect();
    assert_eq!(scan_ids(&lake.catalog, &head).await, expected);
    // Incremental reads see each commit's own file only, also after merges.
    let incs = increments(lake.catalog.file_io(), &head.metadata, None, usize::MAX).await.expect("increments");
    assert_eq!(incs.len(), 41);
    assert!(incs.iter().all(|i| i.files.len() <= 1), "a merge adds no files to an increment");
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_bounds_history_and_keeps_positions_consumers_and_reachable_files() {
    let lake = lake().await;
    // 60 s of history, at least 4 snapshots, merge above 8 manifests, 5 metadata files.
    let props = [
        ("history.expire.max-snapshot-age-ms", "60000"),
        ("history.expire.min-snapshots-to-keep", "4"),
        ("commit.manifest.min-count-to-merge", "8"),
        ("write.metadata.previous-versions-max", "5"),
    ];
    let (_, mut head) = table(&lake, "expiring", &props).await;
    for i in 0..30 {
        head = append(&lake, &head, i).await;
    }
    // A downstream consumer has read up to commit 29's snapshot.
    let consumed = head.metadata.current_snapshot_id().expect("current");
    head = lake
        .committer
        .set_properties(
            &head,
            HashMap::from([(consumer_key("silver-x"), ConsumerPosition::Snapshot(consumed).encode())]),
        )
        .await
        .expect("register");
    for i in 30..200 {
        head = append(&lake, &head, i).await;
    }
    let m = &head.metadata;
    // 200 commits 5 s apart, 60 s of history (13) plus an expiry batch of 16 at most,
    // but everything from the consumer's snapshot on is kept.
    let ancestry: Vec<i64> =
        crate::table::incremental::snapshots_after(m, None).expect("chain").iter().map(|s| s.snapshot_id()).collect();
    let at = ancestry.iter().position(|id| *id == consumed).expect("the consumer's snapshot is kept");
    assert_eq!(ancestry.len() - at, 171, "the consumer's snapshot and every later one");
    // The position is read from the head as before, and the table data is whole.
    assert_eq!(committed_offsets(m, "g").expect("offsets")[&("t".to_string(), 0)], 200);
    assert_eq!(scan_ids(&lake.catalog, &head).await, (0..2000).collect::<Vec<_>>());
    let incs = increments(lake.catalog.file_io(), m, Some(consumed), usize::MAX).await.expect("increments");
    let next: Vec<i64> = incs.iter().flat_map(|i| i.files.iter()).map(|f| f.record_count() as i64).collect();
    assert_eq!(next.len(), 170, "the consumer reads commits 30..200, one file each");

    // The consumer keeps up (re-registered at the head every 5 commits): the
    // commits expire down to the policy.
    for i in 200..280 {
        if i % 5 == 0 {
            let at = head.metadata.current_snapshot_id().expect("s");
            let registration = HashMap::from([(consumer_key("silver-x"), ConsumerPosition::Snapshot(at).encode())]);
            head = lake.committer.set_properties(&head, registration).await.expect("advance");
        }
        head = append(&lake, &head, i).await;
    }
    let m = &head.metadata;
    let n = m.snapshots().len();

    assert!((13..13 + 16 + 1).contains(&n), "60 s at one commit per 5 s, expired in batches of 16: {n} snapshots");
    // A read from the start still sees everything (the oldest snapshot left stands for the expired ones).
    let all = increments(lake.catalog.file_io(), m, None, usize::MAX).await.expect("increments");
    let rows: i64 = all.iter().flat_map(|i| i.files.iter()).map(|f| f.record_count() as i64).sum();
    assert_eq!(rows, 2800);
    assert_eq!(scan_ids(&lake.catalog, &head).await, (0..2800).collect::<Vec<_>>());
    // A reader resuming inside that first increment (a position within a
    // snapshot) gets the same files in the same order from the snapshot alone.
    assert!(all[0].whole && !all[1].whole, "only the oldest snapshot left stands for the expired ones");
    let again = crate::table::incremental::increment_of(lake.catalog.file_io(), m, all[0].snapshot.clone(), true)
        .await
        .expect("increment of the oldest snapshot");
    let paths = |i: &crate::table::incremental::Increment| -> Vec<String> {
        i.files.iter().map(|f| f.file_path().to_string()).collect()
    };
    assert_eq!(paths(&again), paths(&all[0]));

    // On disk: every manifest list and manifest a retained snapshot lists exists, nothing else
    // of theirs is left, and at most previous-versions-max + 1 metadata files.
    let on_disk = only_reachable_avro_left(&lake, "expiring", m).await;
    let json = on_disk.iter().filter(|p| p.ends_with(".metadata.json")).count();
    assert!(json <= 6, "{json} metadata files kept, previous-versions-max is 5");
}

/// Asserts that the manifest lists and manifests in table `name`'s metadata
/// directory are exactly those `m`'s snapshots reach; returns the directory's files.
async fn only_reachable_avro_left(lake: &Lake, name: &str, m: &TableMetadata) -> BTreeSet<String> {
    let on_disk = files_in(&metadata_dir(lake, name));
    let mut reachable = BTreeSet::new();
    for s in m.snapshots() {
        reachable.insert(s.manifest_list().trim_start_matches("file://").to_string());
        for mf in manifests_of(lake.catalog.file_io(), m, s).await.expect("manifests of a retained snapshot") {
            reachable.insert(mf.manifest_path.trim_start_matches("file://").to_string());
        }
    }
    let avro: BTreeSet<String> = on_disk.iter().filter(|p| p.ends_with(".avro")).cloned().collect();
    assert_eq!(avro, reachable, "{name}: exactly the reachable manifests and lists are left");
    on_disk
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_that_expires_nothing_keeps_only_its_newest_list_in_memory() {
    let lake = lake().await;
    let (_, mut head) = table(&lake, "kept", &[("lakehouse.expire-on-commit", "false")]).await;
    for i in 0..30 {
        head = append(&lake, &head, i).await;
    }
    let m = &head.metadata;
    assert_eq!(m.snapshots().len(), 30, "nothing expired");
    let list = m.current_snapshot().expect("current").manifest_list();
    assert!(lake.committer.list_cache().head_entries(m, list).is_some(), "the newest list is carried from memory");
    assert_eq!(lake.committer.list_cache().cached_lists(m), 0, "no cleanup ran, so no list is kept for one");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_committer_on_two_tables_carries_lists_from_memory_and_deletes_only_the_unreachable() {
    let lake = lake().await;
    let props = [
        ("history.expire.max-snapshot-age-ms", "60000"),
        ("history.expire.min-snapshots-to-keep", "4"),
        ("commit.manifest.min-count-to-merge", "6"),
    ];
    let (_, mut a) = table(&lake, "left", &props).await;
    let (_, mut b) = table(&lake, "right", &props).await;
    for i in 0..120 {
        a = append(&lake, &a, i).await;
        // The right table commits every third time: its lists stay cached between.
        if i % 3 == 0 {
            b = append(&lake, &b, i).await;
        }
        for head in [&a, &b] {
            let m = &head.metadata;
            let list = m.current_snapshot().expect("current").manifest_list();
            let cached = lake.committer.list_cache().head_entries(m, list).expect("the published list is cached");
            let read = manifests_of(lake.catalog.file_io(), m, m.current_snapshot().expect("s")).await.expect("read");
            assert_eq!(*cached, read, "commit {i}: the cached list is what was written, sequence numbers included");
        }
    }
    for (name, head, commits) in [("left", &a, 120), ("right", &b, 40)] {
        assert!(head.metadata.snapshots().len() < 40, "{name}: expiry ran");
        only_reachable_avro_left(&lake, name, &head.metadata).await;
        assert_eq!(scan_ids(&lake.catalog, head).await.len(), commits * 10, "{name}: every row is still read");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn branch_and_tag_heads_outlive_expiry_commit_after_commit() {
    let lake = lake().await;
    let props = [("history.expire.max-snapshot-age-ms", "60000"), ("history.expire.min-snapshots-to-keep", "4")];
    let (name, mut head) = table(&lake, "tagged", &props).await;
    for i in 0..5 {
        head = append(&lake, &head, i).await;
    }
    let tagged = head.metadata.current_snapshot_id().expect("current");
    let tag = SnapshotReference::new(tagged, SnapshotRetention::Tag { max_ref_age_ms: None });
    head = lake.committer.set_ref(&head, "v1", tag).await.expect("tag");
    for i in 5..10 {
        head = append(&lake, &head, i).await;
    }
    let branched = head.metadata.current_snapshot_id().expect("current");
    let branch = SnapshotReference::new(branched, SnapshotRetention::branch(None, None, None));
    head = lake.committer.set_ref(&head, "audit", branch).await.expect("branch");
    // Many expiring commits, each building on the head the previous one published.
    for i in 10..120 {
        head = append(&lake, &head, i).await;
    }
    let m = &head.metadata;
    assert!(m.snapshots().len() < 40, "expiry ran: {} snapshots left", m.snapshots().len());
    assert_eq!(m.snapshot_for_ref("v1").map(|s| s.snapshot_id()), Some(tagged), "the tag and its snapshot stay");
    assert_eq!(m.snapshot_for_ref("audit").map(|s| s.snapshot_id()), Some(branched), "the branch head stays");
    // The same from a head loaded afresh (refs read from the metadata, not derived).
    let loaded = lake.catalog.require_table(&name).await.expect("load");
    head = append(&lake, &loaded, 120).await;
    assert!(head.metadata.snapshot_by_id(tagged).is_some() && head.metadata.snapshot_by_id(branched).is_some());
    let plan = crate::table::retention::plan(&head.metadata, i64::MAX, 1).expect("plan");
    assert!(plan.kept[&tagged].iter().any(|why| why == "head of ref v1"), "{:?}", plan.kept);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_at_earliest_or_a_position_key_blocks_expiry_and_admin_expire_plans() {
    let lake = lake().await;
    let props = [("history.expire.max-snapshot-age-ms", "1000"), ("history.expire.min-snapshots-to-keep", "1")];
    let (name, mut head) = table(&lake, "held", &props).await;
    head = lake
        .committer
        .set_properties(&head, HashMap::from([(consumer_key("fresh"), "earliest".to_string())]))
        .await
        .expect("register");
    for i in 0..40 {
        head = append(&lake, &head, i).await;
    }
    assert_eq!(head.metadata.snapshots().len(), 40, "a consumer that read nothing keeps everything");
    // A replay marker only an old snapshot carries keeps that snapshot.
    let marker = |_: &TableMetadata| Ok(HashMap::from([("lakehouse.replay".to_string(), "r1".to_string())]));
    let f = file(&lake, &head.metadata, 1000..1001).await;
    lake.clock.advance(STEP);
    head = lake.committer.commit(&head, Operation::Append { files: vec![f] }, &marker).await.expect("marked").table;
    let marked = head.metadata.current_snapshot_id().expect("s");
    for i in 41..60 {
        head = append(&lake, &head, i).await;
    }
    head = lake.committer.remove_properties(&head, vec![consumer_key("fresh")]).await.expect("unregister");
    let cutoff = lake.clock.now_ms() - 1000;
    let (plan, _) = lake.committer.expire(&head, cutoff, 1, true).await.expect("dry run");
    assert!(plan.kept.get(&marked).is_some_and(|why| why.iter().any(|w| w.contains("lakehouse.replay"))), "{plan:?}");
    assert_eq!(head.metadata.snapshots().len(), 60, "a dry run changes nothing");
    let (plan, cleaned) = lake.committer.expire(&head, cutoff, 1, false).await.expect("expire");
    let head = lake.catalog.require_table(&name).await.expect("reload");
    let left: BTreeSet<i64> = head.metadata.snapshots().map(|s| s.snapshot_id()).collect();
    assert_eq!(left.len(), 60 - plan.expire.len());
    assert!(left.contains(&marked) && left.contains(&head.metadata.current_snapshot_id().expect("s")));
    assert_eq!(cleaned.manifest_lists, plan.expire.len());
    assert_eq!(committed_offsets(&head.metadata, "g").expect("offsets")[&("t".to_string(), 0)], 60);
    // 59 appends of 10 rows (commit 40 is the marker's one row).
    assert_eq!(scan_ids(&lake.catalog, &head).await.len(), 591);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_maintenance_properties_never_block_commits() {
    let lake = lake().await;
    let name = TableName::new("bronze", "typo");
    let mut head = load_or_create_with_clock(
        &lake.catalog,
        &name,
        &spec(&[("history.expire.max-snapshot-age-ms", "1 day")]),
        lake.clock.as_ref(),
    )
    .await
    .expect("t");
    for i in 0..20 {
        head = append(&lake, &head, i).await;
    }
    assert_eq!(head.metadata.snapshots().len(), 20, "nothing expired under an unreadable policy");
    let err = lake.committer.expire(&head, lake.clock.now_ms(), 1, false).await.expect_err("refused by the CLI path");
    assert!(err.to_string().contains("history.expire.max-snapshot-age-ms"), "{err}");
}

/// New data files are compressed as the table's properties say, whatever the
/// writer's own codec; a codec the writer does not have is refused by name.
#[tokio::test(flavor = "multi_thread")]
async fn data_files_take_the_tables_codec() {
    use parquet::file::reader::FileReader;
    let lake = lake().await; // the writer's own codec: zstd
    let codec_of = |f: &DataFile| {
        let file = std::fs::File::open(f.file_path().trim_start_matches("file://")).expect("data file");
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).expect("parquet");
        reader.metadata().row_group(0).column(0).compression()
    };
    let (_, plain) = table(&lake, "plain", &[]).await;
    assert!(matches!(codec_of(&file(&lake, &plain.metadata, 0..10).await), parquet::basic::Compression::ZSTD(_)));
    let (_, snappy) = table(&lake, "snappy", &[("write.parquet.compression-codec", "snappy")]).await;
    assert_eq!(codec_of(&file(&lake, &snappy.metadata, 0..10).await), parquet::basic::Compression::SNAPPY);
    let (_, none) = table(&lake, "none", &[("write.parquet.compression-codec", "uncompressed")]).await;
    assert_eq!(codec_of(&file(&lake, &none.metadata, 0..10).await), parquet::basic::Compression::UNCOMPRESSED);
    let (_, gzip) = table(&lake, "gzip", &[("write.parquet.compression-codec", "gzip")]).await;
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(gzip.metadata.current_schema()).expect("schema"));
    let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..3))]).expect("batch");
    let err = lake.data.write(&gzip.metadata, Struct::empty(), &[b]).await.expect_err("gzip is not built in");
    assert!(err.to_string().contains("write.parquet.compression-codec = \"gzip\""), "{err}");
}
