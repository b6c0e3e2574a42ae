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
    let done = m.apply(&first, &none, pos("1")).await.unwrap();
    assert_eq!(done.deleted, 0);
    assert_eq!(done.commit.as_ref().unwrap().rows, 5);
    let want = expect(&[(1, "ann", 10), (2, "bob", 10), (3, "cid", 10), (4, "dan", 10), (5, "eve", 10)]);
    assert_eq!(f.silver().await, want);

    // 2 is updated; 3 arrives late with an older version (it must not win); 4 is deleted.
    let second = f.rows(&[(2, "bobby", 20), (3, "old-cid", 5)]);
    let done = m.apply(&second, &f.deletes(&[(4, 30)]), pos("2")).await.unwrap();
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
