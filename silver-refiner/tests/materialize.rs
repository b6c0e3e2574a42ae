//! The store is Silver's index: upserts, replacements, out-of-order versions and
//! deletes end with Silver (read by iceberg-rust, position deletes applied) equal
//! to the store's state, and a store snapshot Silver missed (a crash between
//! the two commits) is materialised on recovery. Real SQLite catalog, real files.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use futures::TryStreamExt;
use lakehouse::catalog::{SqlCatalog, TableName};
use lakehouse::config::CatalogConfig;
use silver_refiner::materialize::Materializer;
use silver_refiner::{Contract, Refiner, lineage};

const CONTRACT: &str = r#"
name = "customers"
version = 1
source = "bronze.customers"
key = "id"
[[column]]
name = "id"
type = "long"
[[column]]
name = "name"
type = "string"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    catalog: SqlCatalog,
    store_path: std::path::PathBuf,
    refiner: Refiner,
    schema: arrow_schema::SchemaRef,
    types: BTreeMap<String, silver_refiner::ColumnType>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = CatalogConfig {
        name: "lakehouse".into(),
        url: format!("sqlite://{}", dir.path().join("catalog.db").display()),
        warehouse: dir.path().join("warehouse").display().to_string(),
    };
    let catalog = SqlCatalog::connect(&config).await.unwrap();
    let contract = Contract::from_toml_str(CONTRACT).unwrap();
    let schema = lineage::silver_schema(&contract);
    let types = contract.columns().iter().map(|c| (c.name().to_string(), c.ty())).collect();
    let store_path = dir.path().join("store/silver.db/customers");
    Fixture { _dir: dir, catalog, store_path, refiner: Refiner::new(contract), schema, types }
}

impl Fixture {
    async fn open(&self) -> Materializer {
        Materializer::open(
            self.catalog.clone(),
            TableName::new("silver", "customers"),
            self.schema.clone(),
            &self.types,
            &["id".to_string()],
            None,
            2,
            self.store_path.clone(),
            "test-refiner".into(),
        )
        .await
        .unwrap()
    }

    /// Silver rows `(id, name, seq)`.
    fn rows(&self, rows: &[(i64, &str, i64)]) -> RecordBatch {
        let mut b = self.refiner.batch_builder(rows.len());
        for (id, name, _) in rows {
            let image = serde_json::json!({"id": id, "name": name});
            b.append(&self.refiner.refine(image.as_object().unwrap(), None).unwrap()).unwrap();
        }
        let base = b.finish().unwrap();
        let n = rows.len();
        let mut columns: Vec<ArrayRef> = base.columns().to_vec();
        for f in self.schema.fields().iter().skip(base.num_columns()) {
            columns.push(match f.name().as_str() {
                lineage::SEQ => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                lineage::SOURCE_OP => Arc::new(StringArray::from(vec!["u"; n])),
                _ => arrow_array::new_null_array(f.data_type(), n),
            });
        }
        RecordBatch::try_new(self.schema.clone(), columns).unwrap()
    }

    /// Deletes: key and `_seq` only.
    fn deletes(&self, keys: &[(i64, i64)]) -> RecordBatch {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            self.schema.field_with_name("id").unwrap().clone(),
            self.schema.field_with_name(lineage::SEQ).unwrap().clone(),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.0))),
                Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.1))),
            ],
        )
        .unwrap()
    }

    /// Silver as iceberg-rust reads it: `id → (name, seq)`.
    async fn silver(&self) -> BTreeMap<i64, (String, i64)> {
        let t = self.catalog.require_table(&TableName::new("silver", "customers")).await.unwrap();
        let table = t.to_table(self.catalog.file_io()).unwrap();
        let batches: Vec<RecordBatch> =
            table.scan().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap();
        let mut out = BTreeMap::new();
        for b in batches {
            let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
            let names = b.column_by_name("name").unwrap().as_string::<i32>();
            let seqs = b.column_by_name(lineage::SEQ).unwrap().as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let prev = out.insert(ids.value(i), (names.value(i).to_string(), seqs.value(i)));
                assert!(prev.is_none(), "key {} is visible twice in Silver", ids.value(i));
            }
        }
        out
    }

    /// The store's current state: `id → (name, seq)`.
    fn store(&self, m: &Materializer) -> BTreeMap<i64, (String, i64)> {
        let batches = m.store().scan_batches(changelog_store::ReadAt::Latest).unwrap();
        let mut out = BTreeMap::new();
        for b in batches {
            let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
            let names = b.column_by_name("name").unwrap().as_string::<i32>();
            let seqs = b.column_by_name(lineage::SEQ).unwrap().as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                out.insert(ids.value(i), (names.value(i).to_string(), seqs.value(i)));
            }
        }
        out
    }
}

fn expect(rows: &[(i64, &str, i64)]) -> BTreeMap<i64, (String, i64)> {
    rows.iter().map(|(id, n, s)| (*id, (n.to_string(), *s))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn silver_follows_the_store_through_upserts_deletes_and_a_crash() {
    let f = fixture().await;
    let mut m = f.open().await;
    let none = f.deletes(&[]);
    let pos = |s: &str| BTreeMap::from([("lakehouse.silver.bronze-snapshot.customers".to_string(), s.to_string())]);

    let first = f.rows(&[(1, "ann", 10), (2, "bob", 10), (3, "cid", 10), (4, "dan", 10), (5, "eve", 10)]);
    let done = m.apply(first.clone(), &none, pos("1")).await.unwrap();
    assert_eq!(done.deleted, 0);
    assert_eq!(done.commit.as_ref().unwrap().rows, 5);
    let want = expect(&[(1, "ann", 10), (2, "bob", 10), (3, "cid", 10), (4, "dan", 10), (5, "eve", 10)]);
    assert_eq!(f.silver().await, want);

    // 2 is updated; 3 arrives late with an older version (it must not win); 4 is deleted.
    let second = f.rows(&[(2, "bobby", 20), (3, "old-cid", 5)]);
    let done = m.apply(second.clone(), &f.deletes(&[(4, 30)]), pos("2")).await.unwrap();
    assert_eq!(done.deleted, 3, "bob's old row, dan, and the late version of 3 that lost");
    assert_eq!(done.commit.as_ref().unwrap().rows, 1, "only bobby became visible");
    let want = expect(&[(1, "ann", 10), (2, "bobby", 20), (3, "cid", 10), (5, "eve", 10)]);
    assert_eq!(f.silver().await, want);
    assert_eq!(f.store(&m), want, "Silver equals the store");
    let summary = &m.head().metadata.current_snapshot().unwrap().summary().additional_properties;
    assert_eq!(summary["lakehouse.silver.bronze-snapshot.customers"], "2", "the upstream position is carried");
    assert_eq!(summary["total-position-deletes"], "3");

    // A crash between the store commit and the Iceberg commit: a store snapshot
    // Silver never saw (here: 1 deleted and 5 updated, committed to the store alone).
    let mut write = m.store().new_write().unwrap();
    write.write_json(&serde_json::json!({"id": 1, "_seq": 40}), changelog_store::RowKind::Delete).unwrap();
    let messages = write.prepare_commit().unwrap();
    let props = BTreeMap::from([("lakehouse.silver.files".to_string(), "[]".to_string())]);
    m.store().new_committer("test-refiner").commit(1000, messages, Some(props)).unwrap();
    drop(m);
    let mut m = f.open().await;
    assert_eq!(f.silver().await.len(), 4, "Silver is behind the store until recovery");
    let recovered = m.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    let want = expect(&[(2, "bobby", 20), (3, "cid", 10), (5, "eve", 10)]);
    assert_eq!(f.silver().await, want);
    assert_eq!(f.store(&m), want);
    assert!(m.recover().await.unwrap().is_empty(), "recovery is idempotent");
}

const ORDERS: &str = r#"
name = "orders"
version = 1
source = "bronze.orders"
key = "id"
partition = { column = "order_date", transform = "month" }
[[column]]
name = "id"
type = "long"
[[column]]
name = "order_date"
type = "date"
"#;

/// Live data files and delete files of the Silver head: `(path, partition month, referenced file)`.
async fn live_files(
    catalog: &SqlCatalog,
    metadata: &iceberg::spec::TableMetadata,
) -> (Vec<(String, Option<i32>)>, Vec<(Option<i32>, String)>) {
    use iceberg::spec::{DataContentType, Literal, PrimitiveLiteral};
    let month = |s: &iceberg::spec::Struct| -> Option<i32> {
        assert_eq!(s.fields().len(), 1, "one partition field");
        match &s.fields()[0] {
            None => None,
            Some(Literal::Primitive(PrimitiveLiteral::Int(m))) => Some(*m),
            other => panic!("partition value {other:?}"),
        }
    };
    let snapshot = metadata.current_snapshot().unwrap();
    let manifests = lakehouse::table::commit::manifests_of(catalog.file_io(), metadata, snapshot).await.unwrap();
    let (mut data, mut deletes) = (Vec::new(), Vec::new());
    for m in manifests {
        for e in m.load_manifest(catalog.file_io()).await.unwrap().entries() {
            if !e.is_alive() {
                continue;
            }
            let f = e.data_file();
            match f.content_type() {
                DataContentType::Data => data.push((f.file_path().to_string(), month(f.partition()))),
                _ => deletes.push((month(f.partition()), f.referenced_data_file().expect("one data file each"))),
            }
        }
    }
    (data, deletes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_silver_table_writes_files_and_deletes_per_month() {
    let dir = tempfile::tempdir().unwrap();
    let config = CatalogConfig {
        name: "lakehouse".into(),
        url: format!("sqlite://{}", dir.path().join("catalog.db").display()),
        warehouse: dir.path().join("warehouse").display().to_string(),
    };
    let catalog = SqlCatalog::connect(&config).await.unwrap();
    let contract = Contract::from_toml_str(ORDERS).unwrap();
    let schema = lineage::silver_schema(&contract);
    let types = contract.columns().iter().map(|c| (c.name().to_string(), c.ty())).collect();
    let refiner = Refiner::new(contract.clone());
    let mut m = Materializer::open(
        catalog.clone(),
        TableName::new("silver", "orders"),
        schema.clone(),
        &types,
        &["id".to_string()],
        contract.partition(),
        2,
        dir.path().join("store/silver.db/orders"),
        "test-refiner".into(),
    )
    .await
    .unwrap();
    let metadata = &m.head().metadata;
    let spec = metadata.default_partition_spec();
    assert_eq!(spec.fields().len(), 1);
    assert_eq!(spec.fields()[0].name, "order_date_month");
    assert_eq!(spec.fields()[0].transform, iceberg::spec::Transform::Month);
    let props = metadata.properties();
    assert_eq!(props["write.parquet.compression-codec"], "zstd");
    assert_eq!(props["write.parquet.compression-level"], "1");
    assert_eq!(props[silver_refiner::materialize::RETENTION_DAYS_KEY], "730");

    // (id, order_date as days since 1970 or None, seq)
    let rows = |rows: &[(i64, Option<i64>, i64)]| -> RecordBatch {
        let mut b = refiner.batch_builder(rows.len());
        for (id, day, _) in rows {
            let image = serde_json::json!({"id": id, "order_date": day});
            b.append(&refiner.refine(image.as_object().unwrap(), None).unwrap()).unwrap();
        }
        let base = b.finish().unwrap();
        let mut columns: Vec<ArrayRef> = base.columns().to_vec();
        for f in schema.fields().iter().skip(base.num_columns()) {
            columns.push(match f.name().as_str() {
                lineage::SEQ => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                _ => arrow_array::new_null_array(f.data_type(), rows.len()),
            });
        }
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    };
    let deletes = |keys: &[(i64, i64)]| -> RecordBatch {
        let s = Arc::new(arrow_schema::Schema::new(vec![
            schema.field_with_name("id").unwrap().clone(),
            schema.field_with_name(lineage::SEQ).unwrap().clone(),
        ]));
        RecordBatch::try_new(
            s,
            vec![
                Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.0))),
                Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.1))),
            ],
        )
        .unwrap()
    };
    let silver = || async {
        let t = catalog.require_table(&TableName::new("silver", "orders")).await.unwrap();
        let table = t.to_table(catalog.file_io()).unwrap();
        let batches: Vec<RecordBatch> =
            table.scan().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap();
        let mut out = BTreeMap::new();
        for b in batches {
            let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
            let days = b.column_by_name("order_date").unwrap().as_primitive::<arrow_array::types::Date32Type>();
            for i in 0..b.num_rows() {
                let day = days.is_valid(i).then(|| i64::from(days.value(i)));
                assert!(out.insert(ids.value(i), day).is_none(), "key {} visible twice", ids.value(i));
            }
        }
        out
    };
    use arrow_array::Array;
    let (jan, feb, mar) = (20_454, 20_485, 20_513); // 2026-01-01, 2026-02-01, 2026-03-01 (months 672..674)
    let none = deletes(&[]);
    m.apply(
        rows(&[(1, Some(jan + 4), 1), (2, Some(feb + 2), 1), (3, Some(jan + 20), 1), (4, None, 1)]),
        &none,
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let (data, dels) = live_files(&catalog, &m.head().metadata).await;
    let mut months: Vec<Option<i32>> = data.iter().map(|d| d.1).collect();
    months.sort();
    assert_eq!(months, [None, Some(672), Some(673)], "one data file per month (and one for a null date)");
    assert!(dels.is_empty());
    for (path, month) in &data {
        let dir = match month {
            // iceberg-rust's partition path (months since 1970; Java would write 2026-01).
            Some(m) => format!("/data/order_date_month={m}/"),
            None => "/data/order_date_month=null/".to_string(),
        };
        assert!(path.contains(&dir), "{path} lies under {dir}");
    }

    // 1 moves from January to March, 3 (January) is deleted, 2 (February) is updated in place.
    m.apply(rows(&[(1, Some(mar + 1), 2), (2, Some(feb + 9), 2)]), &deletes(&[(3, 2)]), BTreeMap::new()).await.unwrap();
    assert_eq!(
        silver().await,
        BTreeMap::from([(1, Some(mar + 1)), (2, Some(feb + 9)), (4, None)]),
        "iceberg-rust applies the partitioned position deletes"
    );
    let (data, dels) = live_files(&catalog, &m.head().metadata).await;
    let month_of: BTreeMap<String, Option<i32>> = data.into_iter().collect();
    assert_eq!(dels.len(), 2, "one delete file per partition of the rows it removes: {dels:?}");
    for (month, referenced) in &dels {
        assert_eq!(month_of[referenced], *month, "a delete file lies in the partition of its data file");
    }
    let mut del_months: Vec<Option<i32>> = dels.iter().map(|d| d.0).collect();
    del_months.sort();
    assert_eq!(del_months, [Some(672), Some(673)]);
}

/// Another writer of the entity (a rejects replay, a second shard) committed a
/// store snapshot and has not materialised it yet when this writer commits the
/// next one: Silver gets both, in store order, never the later one alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_snapshot_of_another_writer_is_materialised_before_the_next() {
    let f = fixture().await;
    let mut m = f.open().await;
    let none = f.deletes(&[]);
    m.apply(f.rows(&[(1, "ann", 10), (2, "bob", 10)]), &none, BTreeMap::new()).await.unwrap();

    // The other writer: the store commit alone (its Silver commit still to come).
    let mut write = m.store().new_write().unwrap();
    write.write_json(&serde_json::json!({"id": 1, "_seq": 40}), changelog_store::RowKind::Delete).unwrap();
    let messages = write.prepare_commit().unwrap();
    let props = BTreeMap::from([("lakehouse.silver.files".to_string(), "[]".to_string())]);
    m.store().new_committer("lakehouse-replay").commit(1, messages, Some(props)).unwrap();

    let done = m.apply(f.rows(&[(3, "cid", 50)]), &none, BTreeMap::new()).await.unwrap();
    assert_eq!(done.commit.as_ref().unwrap().rows, 1);
    let want = expect(&[(2, "bob", 10), (3, "cid", 50)]);
    assert_eq!(f.silver().await, want, "the other writer's delete of 1 reached Silver first");
    assert_eq!(f.store(&m), want);
    // The other writer now materialises its snapshot: Silver has it already, nothing changes.
    let mut other = f.open().await;
    assert!(other.recover().await.unwrap().is_empty());
    assert_eq!(f.silver().await, want);
}
