//! Kafka → Bronze → Silver → Gold on the real broker and catalog, with
//! silver-refiner and gold-aggregator running side by side and each killed
//! with SIGKILL at random points (ten times each) and restarted: every Gold
//! table read by pyiceberg equals the same table recomputed by DuckDB in one
//! SQL query over Silver, row for row, with updates, deletes and late events
//! in the stream. Gold compacts its tables every 300 ms while it is being
//! killed, and two tables by hand (`lakehouse compact gold.<table>`) under a
//! running aggregator, which then gets a second wave of changes: its next
//! state commits are refused (another commit user moved those tables' state)
//! and written again, and Gold still equals the recomputation.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lakehouse_tests::*;
use serde_json::Value;

const GOLD_TABLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/gold/commerce.toml");

/// A worker process, killed when dropped (a failing test leaves nothing running).
fn worker(name: &str, config: &Path, log: &Path, idle: Option<&str>) -> Ingestor {
    let mut c = Command::new(bin(name));
    c.arg("--config").arg(config).arg("run");
    if let Some(idle) = idle {
        c.args(["--exit-when-idle", idle]);
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Ingestor(c.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

fn run_to_idle(name: &str, config: &Path, log: &Path) {
    let mut child = worker(name, config, log, Some("2s"));
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} did not finish; log:\n{}", std::fs::read_to_string(log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{name} failed; log:\n{}", std::fs::read_to_string(log).unwrap());
}

/// Waits until `log` has not changed for `quiet` (a worker logs every commit).
fn wait_quiet(log: &Path, quiet: Duration) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let age = std::fs::metadata(log).unwrap().modified().unwrap().elapsed().unwrap_or_default();
        if age >= quiet {
            return;
        }
        assert!(Instant::now() < deadline, "{} kept changing for 240 s", log.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gold_equals_duckdb_over_silver_after_kills_of_both_workers() {
    let lake = Lake::sqlite();
    let prefix = unique("gd");
    let contracts_path = lake.dir.path().join("contracts.toml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/contracts/commerce.toml"), &contracts_path)
        .unwrap();
    let store = lake.dir.path().join("store");
    let extra = format!(
        "[silver]\ncontracts = {contracts:?}\nstore = {store:?}\nmax_snapshots_per_poll = 1\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n\n\
         [gold]\ntables = {GOLD_TABLES:?}\nsilver_store = {store:?}\nstate = {state:?}\nmax_snapshots_per_poll = 1\ncommit_interval = \"100ms\"\npoll_interval = \"100ms\"\n\
         compaction_interval = \"300ms\"\n",
        contracts = contracts_path.display().to_string(),
        store = store.display().to_string(),
        state = lake.dir.path().join("gold-state").display().to_string(),
    );
    let config = lake.config("gd", &[], Some(&format!("^{prefix}\\..*")), &extra);
    // Events arrive over ~12 s while Bronze commits every second, so Silver and
    // Gold see a stream of snapshots (and many commits to be killed in).
    let truth = lake.dir.path().join("truth.json");
    let mut generator = Command::new(bin("lakehouse"))
        .args(["generate", "--brokers", &broker(), "--topic-prefix", &prefix, "--quiet"])
        .args(["--events", "12000", "--rate", "1000", "--seed", "17", "--truth"])
        .arg(&truth)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let bronze_log = lake.dir.path().join("bronze.log");
    let mut bronze = spawn_ingestor(&config, &bronze_log, Some("4s"));

    // Both workers side by side, each killed at its own random points.
    let (silver_log, gold_log) = (lake.dir.path().join("silver.log"), lake.dir.path().join("gold.log"));
    let mut rng = XorShift((Instant::now().elapsed().as_nanos() as u64) | 1);
    let mut silver = worker("silver-refiner", &config, &silver_log, None);
    let mut gold = worker("gold-aggregator", &config, &gold_log, None);
    let (mut silver_kills, mut gold_kills) = (0, 0);
    let mut silver_due = Instant::now() + Duration::from_millis(400 + rng.next() % 1000);
    let mut gold_due = Instant::now() + Duration::from_millis(800 + rng.next() % 1500);
    while silver_kills < 10 || gold_kills < 10 {
        let now = Instant::now();
        if silver_kills < 10 && now >= silver_due {
            silver.kill().unwrap();
            silver.wait().unwrap();
            silver_kills += 1;
            silver = worker("silver-refiner", &config, &silver_log, None);
            silver_due = now + Duration::from_millis(400 + rng.next() % 1000);
        }
        if gold_kills < 10 && now >= gold_due {
            gold.kill().unwrap();
            gold.wait().unwrap();
            gold_kills += 1;
            gold = worker("gold-aggregator", &config, &gold_log, None);
            gold_due = now + Duration::from_millis(800 + rng.next() % 1500);
        }
        for (name, child, log) in
            [("silver-refiner", &mut silver, &silver_log), ("gold-aggregator", &mut gold, &gold_log)]
        {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name} exited by itself ({status}); log:\n{}", std::fs::read_to_string(log).unwrap());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    silver.kill().unwrap();
    silver.wait().unwrap();
    gold.kill().unwrap();
    gold.wait().unwrap();
    assert!(generator.wait().unwrap().success(), "the generator failed");
    let deadline = Instant::now() + Duration::from_secs(120);
    while bronze.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "bronze-ingestor did not reach idle");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = std::fs::read_to_string(&gold_log).unwrap();
    let gold_commits = killed.matches("layer=gold").count();
    let starts_with_work = killed.matches("positioned at the state's source snapshots").count();
    eprintln!("killed runs made {gold_commits} Gold commits; {starts_with_work} table openings");
    let silver_killed = std::fs::read_to_string(&silver_log).unwrap();
    assert!(
        gold_commits >= 5,
        "the killed Gold runs made few commits, so the kills tested little; Gold log:\n{killed}\nSilver log:\n{silver_killed}"
    );
    // By hand, with every delete file over the threshold: fewer delete files
    // after, and a second run finds nothing (the equality below covers the rows).
    let admin = |args: &[&str]| -> Value {
        let out = Command::new(bin("lakehouse")).arg("--config").arg(&config).args(args).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "lakehouse {args:?} failed: {stdout}{stderr}");
        serde_json::from_str(stdout.trim()).unwrap_or(Value::Null)
    };
    // The two tables compacted by hand below are left alone by the worker from
    // here on, so the catch-up's delete files are still there for the CLI.
    const BY_HAND: [&str; 2] = ["order_status_daily", "order_lines_wide"];
    for t in BY_HAND {
        admin(&["properties", &format!("gold.{t}"), "--set", "lakehouse.compaction.auto=false"]);
    }
    run_to_idle("silver-refiner", &config, &silver_log);
    // Gold as a service from here on: it catches up, two tables are compacted
    // by hand under it, then a second wave of changes reaches it.
    let mut service = worker("gold-aggregator", &config, &gold_log, None);
    wait_quiet(&gold_log, Duration::from_secs(3));
    // A wave of changes: updates of the same keys (another seed, the same key
    // ranges) through Bronze and Silver, then the running aggregator's catch-up.
    let wave = |seed: &str| {
        let status = Command::new(bin("lakehouse"))
            .args(["generate", "--brokers", &broker(), "--topic-prefix", &prefix, "--quiet"])
            .args(["--events", "1500", "--seed", seed, "--truth"])
            .arg(lake.dir.path().join(format!("truth-{seed}.json")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the generator failed (wave {seed})");
        let mut bronze = spawn_ingestor(&config, &bronze_log, Some("3s"));
        assert!(bronze.wait().unwrap().success(), "bronze-ingestor failed (wave {seed})");
        run_to_idle("silver-refiner", &config, &silver_log);
        wait_quiet(&gold_log, Duration::from_secs(3));
    };
    // The first makes sure the aggregator holds a state writer of every table
    // (it keeps one across commits) before the compactions move state under it.
    wave("18");
    let log_text = std::fs::read_to_string(&gold_log).unwrap();
    let compactions = log_text.matches("table compacted").count();
    eprintln!("Gold compacted {compactions} times while running");
    assert!(compactions > 0, "Gold never compacted while running; log:\n{log_text}");
    assert!(!log_text.contains("compaction failed"), "a Gold compaction failed; log:\n{log_text}");
    const REFUSED: &str = "another writer committed to the state table";
    let refusals = |log: &str, table: &str| log.lines().filter(|l| l.contains(REFUSED) && l.contains(table)).count();
    let refusals_before = BY_HAND.map(|t| refusals(&log_text, t));

    for t in BY_HAND {
        let name = format!("gold.{t}");
        admin(&["properties", &name, "--set", "lakehouse.compaction.delete-ratio-threshold=0.000001"]);
        let out = admin(&["compact", &name, "--json"]);
        eprintln!("{name}: {out}");
        let (before, after) =
            (out["delete_files_before"].as_u64().unwrap(), out["delete_files_after"].as_u64().unwrap());
        assert!(before > 0, "{name}: no delete files left to compact by hand, the check would test nothing: {out}");
        assert!(out["snapshot_id"].is_i64(), "{name}: not compacted by hand: {out}");
        assert!(after < before, "{name}: delete files {before} → {after}");
        let again = admin(&["compact", &name, "--json"]);
        assert!(again["snapshot_id"].is_null(), "{name}: a second compaction found work: {again}");
    }
    assert!(service.try_wait().unwrap().is_none(), "the aggregator exited during the by-hand compactions");
    // The second wave reaches an aggregator whose state writers of the two
    // tables predate the compactions.
    wave("19");
    assert!(service.try_wait().unwrap().is_none(), "the aggregator exited on the second wave");
    Command::new("kill").args(["-TERM", &service.id().to_string()]).status().unwrap();
    let status = service.wait().unwrap();
    let log_text = std::fs::read_to_string(&gold_log).unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status}; log:\n{log_text}");
    // Each table's kept writer predates its compaction: its next state
    // commit is refused once and written again.
    for (t, before) in BY_HAND.into_iter().zip(refusals_before) {
        let n = refusals(&log_text, t) - before;
        eprintln!("{t}: the running aggregator wrote its state again {n} times after the by-hand compaction");
        assert!(
            n >= 1,
            "{t}: the by-hand compaction did not refuse the running aggregator's state commit; log:\n{log_text}"
        );
    }
    // A fresh aggregator starts on all of it and has nothing left to do.
    run_to_idle("gold-aggregator", &config, &gold_log);

    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect("LAKEHOUSE_TEST_PYTHON (set by tests/run.sh)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/gold_check.py");
    let out = Command::new(python)
        .arg(script)
        .args([&lake.sqlalchemy_url(), &lake.catalog.name, &lake.catalog.warehouse, GOLD_TABLES])
        .output()
        .unwrap();
    assert!(out.status.success(), "gold_check.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    eprintln!("{report:#}");
    for table in ["order_status_daily", "daily_revenue", "order_lines_wide", "daily_metrics", "customer_features"] {
        let r = &report[table];
        assert!(r["silver_rows"].as_u64().unwrap() > 100, "{table}: Silver is nearly empty: {r}");
        assert!(r["gold_rows"].as_u64().unwrap() > 0, "{table}: Gold is empty: {r}");
        assert_eq!(r["duplicate_keys"], 0, "{table}: a group is visible twice: {r}");
        assert_eq!(r["differing"], 0, "{table}: Gold differs from DuckDB over Silver: {r}");
        assert_eq!(r["gold_rows"], r["expected_rows"], "{table}: {r}");
        assert_eq!(r["unsorted_files"], 0, "{table}: data files not in the declared sort order: {r}");
    }
    let sort = |t: &str| report[t]["sort_order"].clone();
    assert_eq!(sort("daily_metrics"), serde_json::json!(["window", "window_start", "date", "product"]));
    assert_eq!(sort("order_lines_wide"), serde_json::json!(["id"]));
    assert_eq!(sort("customer_features"), serde_json::json!(["customer_id", "feature_date"]));
    // Point in time: no feature row counts an event dated after its feature
    // date. `leaky_rows_differing` shows the check has teeth: that many rows
    // would differ had events up to a week later counted.
    let features = &report["customer_features"];
    assert_eq!(features["leaks"], 0, "a feature row saw a later event: {features}");
    assert!(features["leaky_rows_differing"].as_u64().unwrap() > 0, "the leak check cannot fail: {features}");
}
