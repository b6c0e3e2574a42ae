//! `lakehouse contract infer bronze.<entity>` on Bronze tables built from the
//! shared Debezium fixtures (with schema blocks): the contract it prints loads
//! and refines every event of its table without a reject. No broker: Bronze rows
//! are built and committed with bronze-ingestor's own row builder and schema.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

use bronze_ingestor::rows::{Message, RowsBuilder};
use bronze_ingestor::schema;
use iceberg::spec::{Literal, Struct, TableMetadata};
use lakehouse::catalog::TableName;
use lakehouse::config::ValueFormat;
use lakehouse::table::commit::{Committer, Operation};
use lakehouse::table::create::load_or_create;
use lakehouse_tests::*;
use serde_json::Value;
use silver_refiner::envelope::change_of;
use silver_refiner::{Contract, Refiner};

/// `(key, value)` texts of one topic.
type Messages = Vec<(Option<String>, Option<String>)>;

#[tokio::test(flavor = "multi_thread")]
async fn inferred_contracts_refine_their_bronze_tables_without_rejects() {
    let Ok(dir) = std::env::var("LAKEHOUSE_FIXTURES") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the Debezium fixtures are absent under CI=true");
        eprintln!("\n\n!!! ../shared/fixtures/debezium is absent: the contract-infer test is SKIPPED !!!\n\n");
        return;
    };
    // MongoDB's row images are JSON text, which the refiner does not take.
    let files = [
        "mysql_it_0.4_logical_types_with_schema.jsonl",
        "mysql_it_0.4_snapshot_with_schema.jsonl",
        "mysql_tutorial_with_schema.jsonl",
        "mysql_docs_key_and_create_with_schema.jsonl",
        "postgres_docs_create_with_schema.jsonl",
    ];
    let mut by_topic: BTreeMap<String, Messages> = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(std::path::Path::new(&dir).join(f)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let l: Value = serde_json::from_str(line).unwrap();
            let raw = |v: Option<&Value>| v.filter(|v| !v.is_null()).map(|v| v.to_string());
            let topic = l["topic"].as_str().unwrap_or(f).to_string();
            by_topic.entry(topic).or_default().push((raw(l.get("key")), raw(l.get("value"))));
        }
    }
    let lake = Lake::sqlite();
    let catalog = lake.connect().await;
    let arrow = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema::schema()).unwrap());
    let writer = schema::data_file_writer(catalog.file_io().clone(), 1 << 27);
    let committer = Committer::new(catalog.clone());
    let day = Struct::from_iter([Some(Literal::date(20_419))]);
    let mut tested = 0;
    for (i, (topic, messages)) in by_topic.iter().enumerate() {
        let name = TableName::new("bronze", format!("fx{i}"));
        let table = load_or_create(&catalog, &name, &schema::table_spec(90)).await.unwrap();
        let mut rows = RowsBuilder::new(arrow.clone());
        for (offset, (k, v)) in messages.iter().enumerate() {
            let m = Message {
                topic,
                partition: 0,
                offset: offset as i64,
                timestamp_ms: None,
                key: k.as_deref().map(str::as_bytes),
                value: v.as_deref().map(str::as_bytes),
                headers_json: None,
            };
            rows.append(&m, ValueFormat::Debezium, "test", 1_764_000_000_000_000);
        }
        let files = writer.write(&table.metadata, day.clone(), &[rows.finish()]).await.unwrap();
        let none = |_: &TableMetadata| Ok(HashMap::new());
        committer.commit(&table, Operation::Append { files }, &none).await.unwrap();

        let out = Command::new(bin("lakehouse"))
            .args(["--catalog-url", &lake.catalog.url, "--warehouse", &lake.catalog.warehouse])
            .args(["contract", "infer", &name.to_string()])
            .env("LAKEHOUSE_CATALOG__NAME", &lake.catalog.name)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            // A topic whose messages carry no row schema (schema-change events) has nothing to infer.
            assert!(stderr.contains("no Debezium schema block with row fields"), "{topic}: {stderr}");
            continue;
        }
        let toml = String::from_utf8(out.stdout).unwrap();
        let contract = Contract::from_toml_str(&toml).unwrap_or_else(|e| panic!("{topic}: {e}\n{toml}"));
        assert_eq!(contract.source(), name.to_string());
        let refiner = Refiner::new(contract);
        for (k, v) in messages {
            if let Err(r) = change_of(&refiner, k.as_deref(), v.as_deref()) {
                panic!("{topic}: rejected by the inferred contract: {r}\n{toml}\n{v:?}");
            }
        }
        tested += 1;
    }
    assert!(tested >= 4, "only {tested} fixture topics were inferred");
}
