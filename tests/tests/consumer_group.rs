//! Two ingestors in one consumer group split the partitions; a paused
//! (zombie) ingestor that wakes up after its partitions moved cannot
//! duplicate anything.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use lakehouse_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn two_ingestors_split_partitions_and_a_zombie_cannot_duplicate() {
    let lake = Lake::sqlite();
    let prefix = unique("grp");
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 4).await;
    }
    let config = lake.config("group", &[], Some(&format!("^{prefix}\\..*")), "");
    let (log_a, log_b) = (lake.dir.path().join("a.log"), lake.dir.path().join("b.log"));

    let first = generate(&prefix, 20_000, 11, &lake.dir.path().join("t1.json"), &[]);
    let catalog = lake.connect().await;
    let logs = || {
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("--- A ---\n{}\n--- B ---\n{}", read(&log_a), read(&log_b))
    };
    let positioned = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .any(|x| x.contains("assigned; positioned") && !x.contains("partitions={}"))
    };

    // Conditions, not fixed sleeps: a slow machine takes longer, never fails
    // for it. A forms the group, then B joins it (members started in the same
    // instant can leave one of them with an empty assignment on tansu 0.6.0,
    // whose coordinator then never rebalances; see `wait_out_dead_members`).
    let mut a = spawn_ingestor(&config, &log_a, None);
    wait_for("A positioned on an assignment", Duration::from_secs(90), &logs, || positioned(&log_a));
    let mut b = spawn_ingestor(&config, &log_b, None);
    wait_for("B positioned on an assignment", Duration::from_secs(90), &logs, || positioned(&log_b));
    wait_for_records(&catalog, first.events, Duration::from_secs(90), &logs).await;

    // Pause A (a zombie: alive, maybe holding a batch, missing heartbeats)
    // while more events arrive: the group must move its partitions to B,
    // which then commits everything.
    let pid_a = a.id().to_string();
    std::process::Command::new("kill").args(["-STOP", &pid_a]).status().unwrap();
    let second = generate(&prefix, 20_000, 12, &lake.dir.path().join("t2.json"), &[]);
    wait_for_records(&catalog, first.events + second.events, Duration::from_secs(120), &logs).await;
    // Wake A: whatever it still holds must be refused or discarded.
    std::process::Command::new("kill").args(["-CONT", &pid_a]).status().unwrap();
    std::thread::sleep(Duration::from_secs(8));

    for (c, log) in [(&mut a, &log_a), (&mut b, &log_b)] {
        std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
        let status = c.wait().unwrap();
        let text = std::fs::read_to_string(log).unwrap();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        assert!(status.success(), "SIGTERM exits 0, got {status}; log tail (newest first):\n{}", tail.join("\n"));
    }
    // Drain anything left with a fresh member.
    ingest_until_idle(&config, "3s");

    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_eq!(rows.len() as u64, first.events + second.events);

    // Both members committed: the partitions were split.
    let mut writers = BTreeSet::new();
    for t in catalog.list_tables(Some("bronze")).await.unwrap() {
        let m = catalog.require_table(&t).await.unwrap().metadata;
        for s in m.snapshots() {
            if let Some(w) = s.summary().additional_properties.get("lakehouse.writer") {
                writers.insert(w.clone());
            }
        }
    }
    assert!(writers.len() >= 2, "commits from both members expected, got {writers:?}\n{}", logs());
}

/// Polls `done` every half second until it holds; fails with the member logs
/// after `limit`.
fn wait_for(what: &str, limit: Duration, logs: &dyn Fn() -> String, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for: {what}\n{}", logs());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until the Bronze tables' current snapshots hold `n` rows in all.
async fn wait_for_records(
    catalog: &lakehouse::catalog::SqlCatalog,
    n: u64,
    limit: Duration,
    logs: &dyn Fn() -> String,
) {
    let start = std::time::Instant::now();
    loop {
        let mut total = 0u64;
        for t in catalog.list_tables(Some("bronze")).await.unwrap() {
            let m = catalog.require_table(&t).await.unwrap().metadata;
            if let Some(s) = m.current_snapshot() {
                total += s
                    .summary()
                    .additional_properties
                    .get("total-records")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        if total >= n {
            return;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} with {total} of {n} records committed\n{}", logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
