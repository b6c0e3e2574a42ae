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
    for t in lakehouse::generate::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 4).await;
    }
    let config = lake.config("group", &[], Some(&format!("^{prefix}\\..*")), "");
    let (log_a, log_b) = (lake.dir.path().join("a.log"), lake.dir.path().join("b.log"));

    let first = generate(&prefix, 20_000, 11, &lake.dir.path().join("t1.json"), &[]);
    let mut a = spawn_ingestor(&config, &log_a, None);
    let mut b = spawn_ingestor(&config, &log_b, None);
    std::thread::sleep(Duration::from_secs(8));

    // Pause A (a zombie: alive, holding a batch, missing heartbeats) while
    // more events arrive; the group moves its partitions to B.
    let pid_a = a.id().to_string();
    std::process::Command::new("kill").args(["-STOP", &pid_a]).status().unwrap();
    let second = generate(&prefix, 20_000, 12, &lake.dir.path().join("t2.json"), &[]);
    std::thread::sleep(Duration::from_secs(12));
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

    let catalog = lake.connect().await;
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
    let logs = std::fs::read_to_string(&log_a).unwrap() + &std::fs::read_to_string(&log_b).unwrap();
    assert!(writers.len() >= 2, "commits from both members expected, got {writers:?}; logs of A then B:\n{logs}");
    assert!(logs.contains("assigned"), "members logged their assignments");
}
