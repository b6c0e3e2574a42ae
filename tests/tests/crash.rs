//! kill -9 the ingestor while events are produced, and abort it right before and
//! right after the catalog swap (`LAKEHOUSE_FAULT`); afterwards every (topic,
//! partition, offset) is in Bronze exactly once.
//!
//! Each killed run must have committed before it dies (several distinct writers
//! in the tables' history), and each new run joins after the dead member's
//! session has expired (tansu keeps a dead member's assignment until then, and
//! a run that gets no partitions proves nothing).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lakehouse::catalog::SqlCatalog;
use lakehouse_tests::*;

/// The `lakehouse.writer` ids of every snapshot of every Bronze table.
async fn writers(catalog: &SqlCatalog) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in catalog.list_tables(Some("bronze")).await.unwrap() {
        let m = catalog.require_table(&t).await.unwrap().metadata;
        for s in m.snapshots() {
            if let Some(w) = s.summary().additional_properties.get("lakehouse.writer") {
                out.insert(w.clone());
            }
        }
    }
    out
}

/// Whether process `pid` has committed (writer ids are `<host>-<pid>-<random>`).
fn committed_by(writers: &BTreeSet<String>, pid: u32) -> bool {
    writers.iter().any(|w| w.contains(&format!("-{pid}-")))
}

fn spawn(config: &Path, log: &Path, fault: Option<&str>) -> Ingestor {
    let mut c = Command::new(bin("bronze-ingestor"));
    c.arg("--config").arg(config).arg("run").env("RUST_LOG", "info");
    if let Some(f) = fault {
        c.env("LAKEHOUSE_FAULT", f);
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Ingestor(c.stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_aborts_around_the_swap_lose_and_duplicate_nothing() {
    let lake = Lake::sqlite();
    let prefix = unique("crash");
    let truth_path = lake.dir.path().join("truth.json");
    let events = 60_000u64;

    // Topics exist before the ingestor subscribes by pattern.
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 4).await;
    }
    let config = lake.config("crash", &[], Some(&format!("^{prefix}\\..*")), "");
    let log = lake.dir.path().join("ingestor.log");
    let catalog = lake.connect().await;

    // Produced over about a minute, so the kills land while events flow.
    let producer = {
        let prefix = prefix.clone();
        let truth_path = truth_path.clone();
        std::thread::spawn(move || generate(&prefix, events, 7, &truth_path, &["--rate", "1000"]))
    };

    // Deterministic "random" extra time after a run's first commit: a seeded LCG, 0–1.5 s.
    let mut seed: u64 = 0x5eed;
    let mut killed: Vec<u32> = Vec::new();
    let started = Instant::now();
    while killed.len() < 5 || !producer.is_finished() {
        let mut child = spawn(&config, &log, None);
        let pid = child.id();
        // Until this run has committed: a kill before that would test nothing.
        while !committed_by(&writers(&catalog).await, pid) {
            assert!(child.try_wait().unwrap().is_none(), "ingestor {pid} exited before committing");
            assert!(started.elapsed() < Duration::from_secs(600), "crash loop took too long");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis((seed >> 33) % 1500)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        killed.push(pid);
        wait_out_dead_members();
    }
    let truth = producer.join().unwrap();
    eprintln!("killed the ingestor {} times while producing {events} events", killed.len());

    // Abort right before the swap of the first commit: nothing of it is visible.
    let before = generate(&prefix, 1_000, 9, &lake.dir.path().join("truth3.json"), &[]);
    let mut child = spawn(&config, &log, Some("before-swap"));
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(6), "before-swap aborts (SIGABRT): {status:?}");
    assert!(!committed_by(&writers(&catalog).await, child.id()), "a commit aborted before the swap is not visible");
    wait_out_dead_members();
    // Abort right after the swap of the first commit: it is visible, the process never learnt it.
    let more = generate(&prefix, 2_000, 8, &lake.dir.path().join("truth2.json"), &[]);
    let mut child = spawn(&config, &log, Some("after-swap:1"));
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(6), "after-swap aborts (SIGABRT): {status:?}");
    assert!(committed_by(&writers(&catalog).await, child.id()), "a commit aborted after the swap is visible");
    wait_out_dead_members();

    // A last run drains whatever is left.
    ingest_until_idle(&config, "3s");

    let all = writers(&catalog).await;
    let distinct = killed.iter().filter(|pid| committed_by(&all, **pid)).count();
    assert_eq!(distinct, killed.len(), "every killed run committed before it died");
    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_eq!(rows.len() as u64, events + before.events + more.events, "every produced event is in Bronze");
    let mut all_truth = truth;
    for (topic, t) in before.topics.into_iter().chain(more.topics) {
        let e = all_truth.topics.get_mut(&topic).unwrap();
        e.messages += t.messages;
        e.value_md5_sum64 = e.value_md5_sum64.wrapping_add(t.value_md5_sum64);
    }
    assert_matches_truth(&rows, &all_truth);
}
