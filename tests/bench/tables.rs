//! `tests/bench.sh tables` (figures, not a test): a simulated stretch of
//! Bronze commits, one every 5 s of a manual clock, through the real commit
//! layer on a SQLite catalog and a local warehouse, with the table's default
//! maintenance (manifest merging and snapshot expiry on commit) or without it.
//!
//! Each commit appends one small Parquet file of Bronze rows with the offsets
//! of 4 partitions in its summary, as bronze-ingestor does. Prints a progress
//! line per window and one JSON object on stdout.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bronze_ingestor::schema;
use iceberg::spec::{Literal, Struct, TableMetadata};
use lakehouse::catalog::{SqlCatalog, TableName};
use lakehouse::config::CatalogConfig;
use lakehouse::table::clock::ManualClock;
use lakehouse::table::commit::{Committer, Fenced, Operation, manifests_of};
use lakehouse::table::create::load_or_create_with_clock;
use lakehouse::table::position::{Offsets, committed_offsets, offsets_properties};

const STEP_MS: i64 = 5_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default, |v| v.parse().unwrap())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let commits = arg("--commits", 20_000) as i64;
    let window = arg("--window", 1_000) as usize;
    let maintained = !std::env::args().any(|a| a == "--no-maintenance");
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let catalog = SqlCatalog::connect(&CatalogConfig {
        name: "lakehouse".into(),
        url: format!("sqlite://{}", dir.path().join("catalog.db").display()),
        warehouse: dir.path().join("warehouse").display().to_string(),
    })
    .await
    .unwrap();
    catalog.create_namespace_if_absent("bronze").await.unwrap();
    // Simulated time ends a day before the wall clock (see lakehouse::table::clock).
    let start = chrono::Utc::now().timestamp_millis() - commits * STEP_MS - 86_400_000;
    let clock = Arc::new(ManualClock::new(start));
    let committer = Committer::new(catalog.clone()).with_clock(clock.clone());
    let mut spec = schema::table_spec(90);
    if !maintained {
        spec.properties.insert("commit.manifest-merge.enabled".into(), "false".into());
        spec.properties.insert("lakehouse.expire-on-commit".into(), "false".into());
        spec.properties.insert("write.metadata.delete-after-commit.enabled".into(), "false".into());
    }
    let mut head =
        load_or_create_with_clock(&catalog, &TableName::new("bronze", "bench"), &spec, clock.as_ref()).await.unwrap();
    let writer = schema::data_file_writer(catalog.file_io().clone(), 128 << 20);
    let day = (1_764_000_000_000_000i64 / 86_400_000_000) as i32;
    let mut times: Vec<f64> = Vec::new();
    let mut first_window = 0.0;
    let mut last_window = 0.0;
    let mut metadata_bytes = 0u64;
    let wall = Instant::now();
    for i in 0..commits {
        clock.set(start + i * STEP_MS);
        let batch = lakehouse_tests::json_rows("bench.public.orders", i * 10, i * 10 + 10);
        let files =
            writer.write(&head.metadata, Struct::from_iter([Some(Literal::date(day))]), &[batch]).await.unwrap();
        let advanced: Offsets = (0..4).map(|p| (("bench.public.orders".to_string(), p), (i + 1) * 10)).collect();
        let check = move |h: &TableMetadata| -> Result<HashMap<String, String>, Fenced> {
            let now = committed_offsets(h, "bench").map_err(|e| Fenced(e.to_string()))?;
            let mut props = offsets_properties("bench", &now, &advanced);
            props.insert("lakehouse.writer".into(), "bench-host-1-0000".into());
            Ok(props)
        };
        let t = Instant::now();
        head = committer.commit(&head, Operation::Append { files }, &check).await.unwrap().table;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if times.len() == window {
            let ms = median(&mut times);
            times.clear();
            metadata_bytes = std::fs::metadata(head.metadata_location.trim_start_matches("file://")).unwrap().len();
            let snapshot = head.metadata.current_snapshot().unwrap();
            let manifests = manifests_of(catalog.file_io(), &head.metadata, snapshot).await.unwrap().len();
            eprintln!(
                "commit {:>7} (day {:>4.1}): median {ms:6.2} ms, metadata {:>9} bytes, {:>6} snapshots, {:>5} manifests, {:>5.0} s wall",
                i + 1,
                (i + 1) as f64 * STEP_MS as f64 / 86_400_000.0,
                metadata_bytes,
                head.metadata.snapshots().len(),
                manifests,
                wall.elapsed().as_secs_f64()
            );
            if first_window == 0.0 {
                first_window = ms;
            }
            last_window = ms;
        }
    }
    let snapshot = head.metadata.current_snapshot().unwrap();
    let manifests = manifests_of(catalog.file_io(), &head.metadata, snapshot).await.unwrap().len();
    let metadata_files = std::fs::read_dir(dir.path().join("warehouse/bronze/bench/metadata"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".metadata.json"))
        .count();
    println!(
        "{}",
        serde_json::json!({
            "maintained": maintained,
            "commits": commits,
            "simulated_days": commits as f64 * STEP_MS as f64 / 86_400_000.0,
            "commit_ms_first": first_window,
            "commit_ms_last": last_window,
            "metadata_bytes_last": metadata_bytes,
            "snapshots_last": head.metadata.snapshots().len(),
            "manifests_last": manifests,
            "metadata_files": metadata_files,
            "wall_s": wall.elapsed().as_secs_f64(),
        })
    );
}
