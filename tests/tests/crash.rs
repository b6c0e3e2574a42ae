//! kill -9 the ingestor at random moments while 200k events are produced;
//! afterwards every (topic, partition, offset) is in Bronze exactly once.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lakehouse_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_ingestion_loses_and_duplicates_nothing() {
    let lake = Lake::sqlite();
    let prefix = unique("crash");
    let truth_path = lake.dir.path().join("truth.json");
    let events = 200_000u64;

    // Topics exist before the ingestor subscribes by pattern.
    for t in lakehouse_generator::TABLES {
        create_topic(&format!("{prefix}.public.{t}"), 4).await;
    }
    let config = lake.config("crash", &[], Some(&format!("^{prefix}\\..*")), "");
    let log = lake.dir.path().join("ingestor.log");

    let producer = {
        let prefix = prefix.clone();
        let truth_path = truth_path.clone();
        std::thread::spawn(move || generate(&prefix, events, 7, &truth_path, &["--rate", "25000"]))
    };

    // Deterministic "random" kill moments: a seeded LCG, 0.4–2.0 s apart.
    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    let started = Instant::now();
    while kills < 12 || !producer.is_finished() {
        let mut child = spawn_ingestor(&config, &log, None);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(400 + (seed >> 33) % 1600);
        std::thread::sleep(wait);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        assert!(started.elapsed() < Duration::from_secs(600), "crash loop took too long");
    }
    let truth = producer.join().unwrap();
    eprintln!("killed the ingestor {kills} times while producing {events} events");

    // A last run drains whatever is left.
    wait_out_dead_members();
    ingest_until_idle(&config, "3s");

    let catalog = lake.connect().await;
    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_eq!(rows.len() as u64, events, "every produced event is in Bronze");
    assert_matches_truth(&rows, &truth);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("committed"), "the killed runs committed something before dying");
}
