//! A restarted ingestor heals its group membership by itself.
//!
//! As an operator's supervisor would do it: the ingestor is killed (SIGKILL)
//! while events flow and started again 7 s later, inside `kafka.session_timeout`
//! (10 s), so it joins while the dead member's session is still live. On tansu
//! 0.6 such a member used to get no partitions and idle for good (300 s and
//! counting); the worker must notice that it holds nothing while partitions are
//! owned by nobody past the session timeout and rejoin (logged, counted in
//! `lakehouse_kafka_rejoins_total`). Every event must then land exactly once
//! within a bounded wait — on tansu and on Apache Kafka.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lakehouse_tests::*;

/// Session timeout of the test's consumer group (the shipped default).
const SESSION: &str = "10s";
/// Restart delay: inside the session.
const RESTART_AFTER: Duration = Duration::from_secs(7);
/// Every event must be committed within this after the restart.
const BOUND: Duration = Duration::from_secs(120);

fn config_with_session(lake: &Lake, broker: &str, group: &str, pattern: &str) -> PathBuf {
    let path = lake.config_on(broker, group, &[], Some(pattern), "");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("session_timeout = \"6s\""), "the test config format changed: {text}");
    std::fs::write(&path, text.replace("session_timeout = \"6s\"", &format!("session_timeout = {SESSION:?}"))).unwrap();
    path
}

async fn total_rows(catalog: &lakehouse::catalog::SqlCatalog) -> u64 {
    all_bronze_rows(catalog).await.values().map(Vec::len).sum::<usize>() as u64
}

async fn kill_and_restart_inside_the_session(broker: &str, name: &str) {
    let lake = Lake::sqlite();
    let prefix = unique(name);
    for t in lakehouse_generator::TABLES {
        create_topic_on(broker, &format!("{prefix}.public.{t}"), 4).await;
    }
    let config = config_with_session(&lake, broker, name, &format!("^{prefix}\\..*"));
    let (log_a, log_b) = (lake.dir.path().join("a.log"), lake.dir.path().join("b.log"));
    // Events flow in rounds for the whole kill / restart window.
    let (gen_broker, gen_prefix, dir) = (broker.to_string(), prefix.clone(), lake.dir.path().to_path_buf());
    let generator = std::thread::spawn(move || {
        let mut events = 0;
        for round in 0..14u64 {
            let truth = dir.join(format!("t{round}.json"));
            events += generate_on(&gen_broker, &gen_prefix, 2_000, 100 + round, &truth, &[]).events;
            std::thread::sleep(Duration::from_millis(700));
        }
        events
    });
    let catalog = lake.connect().await;
    let mut a = spawn_ingestor(&config, &log_a, None);
    let start = Instant::now();
    while total_rows(&catalog).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "first commit within 60 s; log:\n{}",
            std::fs::read_to_string(&log_a).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!generator.is_finished(), "events must still flow at the kill");
    a.kill().unwrap(); // SIGKILL: no LeaveGroup, the session stays live
    a.wait().unwrap();
    let at_kill = total_rows(&catalog).await;
    tokio::time::sleep(RESTART_AFTER).await;
    let b = spawn_ingestor(&config, &log_b, None);
    let restarted = Instant::now();
    let events = generator.join().unwrap();
    loop {
        let have = total_rows(&catalog).await;
        if have >= events {
            break;
        }
        assert!(
            restarted.elapsed() < BOUND,
            "{name}: {have} of {events} events ({at_kill} at the kill) {} s after the restart; restarted \
             ingestor's log:\n{}",
            BOUND.as_secs(),
            std::fs::read_to_string(&log_b).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let healed = Instant::now() - restarted;
    drop(b);
    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_eq!(rows.len() as u64, events, "every event exactly once");
    let rejoined = rejoins(&log_b);
    eprintln!(
        "{name}: all {events} events committed {:.1} s after the restart; rejoins: {rejoined}",
        healed.as_secs_f64()
    );
}

fn rejoins(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("joining again as a new member"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn tansu_restart_inside_the_session_heals() {
    kill_and_restart_inside_the_session(&broker(), "healtansu").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_kafka_restart_inside_the_session_heals() {
    let kafka = match std::env::var("LAKEHOUSE_TEST_KAFKA") {
        Ok(k) if !k.is_empty() => k,
        _ => {
            let msg = "LAKEHOUSE_TEST_KAFKA is not set: this test needs the Apache Kafka broker tests/run.sh starts";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return;
        }
    };
    kill_and_restart_inside_the_session(&kafka, "healkafka").await;
}
