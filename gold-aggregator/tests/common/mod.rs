//! What the Gold integration tests share: a lake in a temp dir (SQLite
//! catalog, warehouse, Silver store, Gold state) configured for `defs`,
//! Silver store tables written directly, and runs of the worker to idle.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow_array::RecordBatch;
use changelog_store::{RowKind, Table, TableSpec};
use futures::TryStreamExt;
use gold_aggregator::{Config, RunOptions};
use lakehouse::catalog::{SqlCatalog, TableName};

/// The Gold configuration of a lake under `dir` with the definitions `defs`
/// (short intervals, no metrics listener).
pub fn config(dir: &Path, defs: &str) -> Config {
    let p = |s: &str| dir.join(s).display().to_string();
    let defs_path = dir.join("gold.toml");
    std::fs::write(&defs_path, defs).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "[catalog]\nurl = \"sqlite://{}\"\nwarehouse = {:?}\n[telemetry]\nlisten = \"\"\n[gold]\ntables = {:?}\nsilver_store = {:?}\nstate = {:?}\ncommit_interval = \"50ms\"\npoll_interval = \"50ms\"\n",
            p("catalog.db"),
            p("warehouse"),
            defs_path.display().to_string(),
            p("store"),
            p("state"),
        ),
    )
    .unwrap();
    Config::load_with_env(Some(&file), &[]).unwrap()
}

/// A Silver entity's store table (key `id`, deduplicate, lookup changelog), as silver-refiner makes it.
pub fn silver_table(dir: &Path, name: &str, columns: &[(&str, &str)]) -> Table {
    let spec = TableSpec {
        columns: columns.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect(),
        primary_keys: vec!["id".into()],
        partition_keys: vec![],
        options: BTreeMap::from([
            ("bucket".to_string(), "1".to_string()),
            ("merge-engine".to_string(), "deduplicate".to_string()),
            ("changelog-producer".to_string(), "lookup".to_string()),
        ]),
    };
    Table::create(dir.join(format!("store/silver.db/{name}")), spec).unwrap()
}

/// One store commit of `rows` (the next commit identifier of the writer).
pub fn commit(table: &Table, rows: &[(RowKind, serde_json::Value)]) {
    let mut w = table.new_write().unwrap();
    for (kind, row) in rows {
        w.write_json(row, *kind).unwrap();
    }
    let messages = w.prepare_commit().unwrap();
    let c = table.new_committer("silver-refiner");
    let id = c.latest_identifier_of_user().unwrap().unwrap_or(0) + 1;
    c.commit(id, messages, Some(BTreeMap::new())).unwrap();
}

/// gold-aggregator until it is idle (a fresh process each time: every call is a restart).
pub async fn run_gold(config: &Config) {
    let options = RunOptions { exit_when_idle: Some(Duration::from_millis(300)), ..Default::default() };
    gold_aggregator::run(config.clone(), options, tokio_util::sync::CancellationToken::new()).await.unwrap();
}

/// Every row of `gold.<name>` as pyiceberg would read it (position deletes applied).
pub async fn gold_batches(catalog: &SqlCatalog, name: &str) -> Vec<RecordBatch> {
    let t = catalog.require_table(&TableName::new("gold", name)).await.unwrap();
    let table = t.to_table(catalog.file_io()).unwrap();
    table.scan().build().unwrap().to_arrow().await.unwrap().try_collect().await.unwrap()
}
