//! Bronze through Apache Kafka's SASL_SSL listener (TLS with the certificates
//! `deploy/local/kafka.sh` makes, SASL/SCRAM-SHA-512 and PLAIN): group
//! membership (librdkafka with OpenSSL) and the record fetcher (rustls) both
//! go through it.
//!
//! - every event lands exactly once, with SCRAM-SHA-512 and then PLAIN, and the
//!   password (given through `LAKEHOUSE_KAFKA_SASL_PASSWORD`) shows neither in
//!   the log nor in `/metrics`;
//! - a wrong password stops the worker quickly with a clear error (no hang, no
//!   crash loop of retries), again without the password in it.
//!
//! - through the SSL listener with `ssl.client.auth=required` (mutual TLS),
//!   both clients present the client certificate and every event lands once;
//!   without the certificate the worker stops with an error naming the broker
//!   instead of waiting for data that never comes.
//! - through the SASL_SSL listener that also requires the client certificate,
//!   the same: refused without it (the refusal arrives as the answer to SASL's
//!   handshake), every event once with it.
//!
//! Needs `LAKEHOUSE_TEST_KAFKA` (plaintext listener: topics and producing),
//! `LAKEHOUSE_TEST_KAFKA_SASL_SSL`, `LAKEHOUSE_TEST_KAFKA_SSL`,
//! `LAKEHOUSE_TEST_KAFKA_SASL_MTLS` and
//! `LAKEHOUSE_TEST_KAFKA_TLS_DIR` (`ca.pem`, `password`, `client.pem`,
//! `client.key`), exported by tests/apache_kafka.sh. Without them the tests say
//! they are skipped, and fail under `CI=true`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse::kafka::RdCluster;
use lakehouse::kafka::fetcher::{Event, FetchSettings, Fetcher, Start};
use lakehouse::kafka::security::Security;
use lakehouse_tests::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

struct Secured {
    plain: String,
    secured: String,
    ca: PathBuf,
    password: String,
}

/// The plaintext listener, the listener in `listener_var` and the TLS directory the
/// broker of tests/run.sh has (deploy/local/kafka.sh); `None` (skipped, loudly; a
/// failure under `CI=true`) when they are not all set.
fn broker_env(listener_var: &str, tests: &str) -> Option<(String, String, PathBuf)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("LAKEHOUSE_TEST_KAFKA"), var(listener_var), var("LAKEHOUSE_TEST_KAFKA_TLS_DIR")) {
        (Some(plain), Some(listener), Some(dir)) => Some((plain, listener, PathBuf::from(dir))),
        _ => {
            let msg = format!(
                "LAKEHOUSE_TEST_KAFKA, {listener_var} and LAKEHOUSE_TEST_KAFKA_TLS_DIR are not all set: the {tests} \
                 need the broker tests/run.sh starts (deploy/local/kafka.sh)"
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

fn secured() -> Option<Secured> {
    let (plain, secured, dir) = broker_env("LAKEHOUSE_TEST_KAFKA_SASL_SSL", "Kafka security tests")?;
    let password = std::fs::read_to_string(dir.join("password")).unwrap().trim().to_string();
    Some(Secured { plain, secured, ca: dir.join("ca.pem"), password })
}

/// The SSL listener that requires a client certificate, and the files to present.
struct MutualTls {
    plain: String,
    ssl: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn mutual_tls() -> Option<MutualTls> {
    let (plain, ssl, dir) = broker_env("LAKEHOUSE_TEST_KAFKA_SSL", "mutual TLS tests")?;
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("client.pem"), dir.join("client.key"));
    for f in [&ca, &cert, &key] {
        assert!(f.is_file(), "{} is missing: deploy/local/kafka.sh makes it", f.display());
    }
    Some(MutualTls { plain, ssl, ca, cert, key })
}

/// `[kafka.properties]` for the SSL listener, with or without the client certificate.
fn ssl_properties(k: &MutualTls, client_certificate: bool) -> String {
    let mut p = format!(
        "[kafka.properties]\n\"security.protocol\" = \"ssl\"\n\"ssl.ca.location\" = {:?}\n",
        k.ca.display().to_string()
    );
    if client_certificate {
        p += &format!(
            "\"ssl.certificate.location\" = {:?}\n\"ssl.key.location\" = {:?}\n",
            k.cert.display().to_string(),
            k.key.display().to_string()
        );
    }
    p
}

/// `[kafka.properties]` for the SASL_SSL listener; the password stays out (env).
fn properties(k: &Secured, mechanism: &str) -> String {
    format!(
        "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = {mechanism:?}\n\
         \"sasl.username\" = \"lakehouse\"\n\"ssl.ca.location\" = {:?}\n",
        k.ca.display().to_string()
    )
}

/// Starts the ingestor with the SASL password (and more) in its environment.
fn spawn_with(config: &Path, log: &Path, idle: Option<&str>, env: &[(&str, &str)]) -> Ingestor {
    let mut c = Command::new(bin("bronze-ingestor"));
    c.arg("--config").arg(config).arg("run");
    if let Some(idle) = idle {
        c.args(["--exit-when-idle", idle]);
    }
    c.envs(env.iter().copied());
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Ingestor(c.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

/// The worker's exit status, once it exits; fails with `what` and the log if it runs
/// on for a minute after `start`.
fn exit_within_a_minute(mut run: Ingestor, start: Instant, log: &Path, what: &str) -> std::process::ExitStatus {
    loop {
        if let Some(s) = run.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}; log:\n{}", std::fs::read_to_string(log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `/metrics` of the worker at `addr`; a few attempts (a connection reset
/// while the listener starts is not what the test is about), then the error.
fn scrape(addr: &str) -> Result<String, std::io::Error> {
    let once = || -> Result<String, std::io::Error> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    };
    let mut last = once();
    for _ in 0..10 {
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        last = once();
    }
    last
}

async fn total_rows(catalog: &lakehouse::catalog::SqlCatalog) -> u64 {
    all_bronze_rows(catalog).await.values().map(Vec::len).sum::<usize>() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn bronze_through_sasl_ssl_exactly_once_and_no_secret_shown() {
    let Some(k) = secured() else { return };
    let lake = Lake::sqlite();
    let prefix = unique("sec");
    for t in lakehouse_generator::TABLES {
        create_topic_on(&k.plain, &format!("{prefix}.public.{t}"), 3).await;
    }
    let pattern = format!("^{prefix}\\..*");
    let first = generate_on(&k.plain, &prefix, 20_000, 41, &lake.dir.path().join("t1.json"), &[]);

    // SCRAM-SHA-512, running as a service: rows, /metrics, log.
    let config = lake.config_on(&k.secured, "sec", &[], Some(&pattern), &properties(&k, "SCRAM-SHA-512"));
    let log = lake.dir.path().join("scram.log");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let env = [("LAKEHOUSE_KAFKA_SASL_PASSWORD", k.password.as_str()), ("LAKEHOUSE_TELEMETRY__LISTEN", &metrics_addr)];
    let mut ingestor = spawn_with(&config, &log, None, &env);
    let catalog = lake.connect().await;
    let start = Instant::now();
    while total_rows(&catalog).await < first.events {
        assert!(ingestor.try_wait().unwrap().is_none(), "ingestor exited: {}", std::fs::read_to_string(&log).unwrap());
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} of {} events after 120 s through SASL_SSL; log:\n{}",
            total_rows(&catalog).await,
            first.events,
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let metrics = scrape(&metrics_addr).unwrap_or_else(|e| {
        panic!(
            "/metrics at {metrics_addr}: {e}; running: {:?}; log:\n{}",
            ingestor.try_wait(),
            std::fs::read_to_string(&log).unwrap()
        )
    });
    assert!(metrics.contains("lakehouse_records_consumed_total"), "{metrics}");
    ingestor.kill().unwrap();
    ingestor.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("broker connection authenticated") && text.contains("sasl_ssl"), "{text}");
    for (what, shown) in [("the log", &text), ("/metrics", &metrics)] {
        assert!(!shown.contains(&k.password), "the SASL password appears in {what}");
    }

    // PLAIN on the same listener, more events, a run to idle from the committed positions.
    let second = generate_on(&k.plain, &prefix, 10_000, 42, &lake.dir.path().join("t2.json"), &[]);
    let plain_config = lake.dir.path().join("plain.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("SCRAM-SHA-512", "PLAIN");
    std::fs::write(&plain_config, text).unwrap();
    let plain_log = lake.dir.path().join("plain.log");
    let mut run = spawn_with(&plain_config, &plain_log, Some("2s"), &env[..1]);
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "PLAIN run not idle in 180 s: {}",
            std::fs::read_to_string(&plain_log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&plain_log).unwrap();
    assert!(status.success(), "PLAIN run failed: {text}");
    assert!(!text.contains(&k.password), "the SASL password appears in the PLAIN run's log");

    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_eq!(rows.len() as u64, first.events + second.events, "every event once, across both mechanisms");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_stops_the_worker_with_a_clear_error() {
    let Some(k) = secured() else { return };
    let lake = Lake::sqlite();
    let topic = unique("secbad");
    create_topic_on(&k.plain, &topic, 1).await;
    let config = lake.config_on(&k.secured, "secbad", &[topic], None, &properties(&k, "SCRAM-SHA-512"));
    let log = lake.dir.path().join("bad.log");
    let wrong = format!("{}-wrong", k.password);
    let start = Instant::now();
    let run = spawn_with(&config, &log, Some("2s"), &[("LAKEHOUSE_KAFKA_SASL_PASSWORD", &wrong)]);
    let status = exit_within_a_minute(run, start, &log, "a wrong password must stop the worker, not leave it retrying");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains("authentication failed") && text.contains("\"lakehouse\""), "{text}");
    assert!(!text.contains(&wrong) && !text.contains(&k.password), "a password appears in the log:\n{text}");
}

/// Mutual TLS: the SSL listener requires a client certificate; librdkafka
/// (membership) and the fetcher (records) both present it. Without the one,
/// no partition is assigned; without the other, no record arrives: every
/// event landing once shows both did.
#[tokio::test(flavor = "multi_thread")]
async fn bronze_through_mutual_tls_exactly_once() {
    let Some(k) = mutual_tls() else { return };
    let lake = Lake::sqlite();
    let prefix = unique("mtls");
    for t in lakehouse_generator::TABLES {
        create_topic_on(&k.plain, &format!("{prefix}.public.{t}"), 2).await;
    }
    let truth = generate_on(&k.plain, &prefix, 10_000, 43, &lake.dir.path().join("t1.json"), &[]);
    let pattern = format!("^{prefix}\\..*");
    let config = lake.config_on(&k.ssl, "mtls", &[], Some(&pattern), &ssl_properties(&k, true));
    let out = ingest_until_idle(&config, "2s");
    let text = String::from_utf8_lossy(&out.stderr);
    let checked = text.lines().find(|l| l.contains("broker connection authenticated"));
    assert!(checked.is_some_and(|l| l.contains(&k.ssl) && l.contains("ssl")), "{text}");
    let catalog = lake.connect().await;
    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_matches_truth(&rows, &truth);
    assert_eq!(rows.len() as u64, truth.events, "every event once through mutual TLS");
}

/// Without a client certificate the SSL listener refuses the connection (with
/// TLS 1.3 only after the client's side of the handshake): the worker stops at
/// start with an error naming the broker, exit code non-zero, no hang.
#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_without_a_client_certificate_stops_the_worker() {
    let Some(k) = mutual_tls() else { return };
    let lake = Lake::sqlite();
    let topic = unique("mtlsbad");
    create_topic_on(&k.plain, &topic, 1).await;
    let config = lake.config_on(&k.ssl, "mtlsbad", &[topic], None, &ssl_properties(&k, false));
    let log = lake.dir.path().join("nocert.log");
    let start = Instant::now();
    let run = spawn_with(&config, &log, Some("2s"), &[]);
    let status = exit_within_a_minute(
        run,
        start,
        &log,
        "a refused client certificate must stop the worker, not leave it waiting",
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains(&k.ssl) && text.contains("client certificate"), "the error names the broker:\n{text}");
}

/// SASL_SSL on a listener that also requires a client certificate (SCRAM and
/// mutual TLS at once, `deploy/local/kafka.sh`'s SASL_MTLS). With TLS 1.3 the
/// broker refuses a missing certificate only after the client's side of the
/// handshake, so the refusal is the answer to the first request, SASL's
/// handshake: without the certificate the worker stops with an error naming
/// the broker and the client certificate (not a network error retried
/// forever); with it, every event lands once.
#[tokio::test(flavor = "multi_thread")]
async fn sasl_with_mutual_tls_needs_the_client_certificate() {
    let Some(k) = secured() else { return };
    let Some(m) = mutual_tls() else { return };
    let Some((_, listener, _)) = broker_env("LAKEHOUSE_TEST_KAFKA_SASL_MTLS", "SASL with mutual TLS tests") else {
        return;
    };
    let lake = Lake::sqlite();
    let prefix = unique("saslmtls");
    for t in lakehouse_generator::TABLES {
        create_topic_on(&k.plain, &format!("{prefix}.public.{t}"), 2).await;
    }
    let truth = generate_on(&k.plain, &prefix, 10_000, 44, &lake.dir.path().join("t1.json"), &[]);
    let pattern = format!("^{prefix}\\..*");
    let env = [("LAKEHOUSE_KAFKA_SASL_PASSWORD", k.password.as_str())];
    let scram = properties(&k, "SCRAM-SHA-512");

    let config = lake.config_on(&listener, "saslmtls", &[], Some(&pattern), &scram);
    let log = lake.dir.path().join("nocert.log");
    let start = Instant::now();
    let run = spawn_with(&config, &log, Some("2s"), &env);
    let status = exit_within_a_minute(run, start, &log, "a refused client certificate must stop the worker");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains(&listener) && text.contains("client certificate"), "the error names both:\n{text}");
    assert!(!text.contains(&k.password), "the SASL password appears in the log:\n{text}");

    let with_cert = format!(
        "{scram}\"ssl.certificate.location\" = {:?}\n\"ssl.key.location\" = {:?}\n",
        m.cert.display().to_string(),
        m.key.display().to_string()
    );
    let config = lake.config_on(&listener, "saslmtls", &[], Some(&pattern), &with_cert);
    let log = lake.dir.path().join("cert.log");
    let mut run = spawn_with(&config, &log, Some("2s"), &env);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "not idle in 180 s through SASL with mutual TLS; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(text.contains("broker connection authenticated") && text.contains("sasl_ssl"), "{text}");
    let catalog = lake.connect().await;
    let rows: Vec<BronzeRow> = all_bronze_rows(&catalog).await.into_values().flatten().collect();
    assert_exactly_once(&rows);
    assert_matches_truth(&rows, &truth);
    assert_eq!(rows.len() as u64, truth.events, "every event once through SASL with mutual TLS");
}

/// Not a test: the throughput over TLS + SCRAM against plaintext, on one
/// backlog of the same broker, of both data paths: our fetcher (rustls) and
/// librdkafka's own fetching (OpenSSL; a BaseConsumer assigned the partition),
/// each reading every record (`cargo test --release --workspace --test
/// kafka_security -- --ignored --nocapture`). Prints, never asserts a time.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, run by hand"]
async fn measure_fetch_throughput_tls_vs_plaintext() {
    let Some(k) = secured() else { return };
    let topic = unique("secbench");
    create_topic_on(&k.plain, &topic, 1).await;
    let n: usize = std::env::var("SEC_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(400_000);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &k.plain)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "none")
        .create()
        .unwrap();
    let value = vec![b'x'; 500];
    let mut pending = Vec::new();
    for i in 0..n {
        let key = i.to_string();
        let r: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(&topic).partition(0).key(key.as_str()).payload(value.as_slice());
        pending.push(producer.send_result(r).map_err(|(e, _)| e).unwrap());
        if pending.len() >= 50_000 {
            for p in pending.drain(..) {
                p.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    let secured_props: BTreeMap<String, String> = [
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "lakehouse"),
        ("sasl.password", k.password.as_str()),
        ("ssl.ca.location", k.ca.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for round in 0..2 {
        for (name, broker, props) in
            [("plaintext", &k.plain, BTreeMap::new()), ("sasl_ssl", &k.secured, secured_props.clone())]
        {
            let mut cc = ClientConfig::new();
            cc.set("bootstrap.servers", broker);
            for (a, b) in &props {
                cc.set(a, b);
            }
            let consumer: BaseConsumer = cc.create().unwrap();
            let settings = FetchSettings {
                max_wait_ms: 50,
                security: Security::from_properties(&props).unwrap(),
                ..Default::default()
            };
            let cpu0 = cpu_seconds();
            let t0 = Instant::now();
            let fetcher = Fetcher::spawn(settings, Arc::new(RdCluster(Arc::new(consumer)))).unwrap();
            fetcher.assign(1, vec![Start { topic: topic.clone(), partition: 0, offset: Some(0) }]);
            let (mut got, mut bytes) = (0usize, 0usize);
            while got < n {
                match fetcher.recv_timeout(Duration::from_secs(30)) {
                    None => panic!("{name}: no data in 30 s after {got} records"),
                    Some(Event::Fatal(m)) => panic!("{name}: {m}"),
                    Some(Event::Data(chunks)) => {
                        for c in chunks {
                            for r in c.records() {
                                let r = r.unwrap();
                                got += 1;
                                bytes += r.value.map_or(0, <[u8]>::len);
                            }
                        }
                    }
                }
            }
            let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
            drop(fetcher);
            report("FETCH", round, name, got, bytes, secs, cpu);

            // librdkafka's own fetching of the same records: a consumer
            // assigned the partition from its start (no group), polled message
            // by message as a worker would.
            let mut cc = ClientConfig::new();
            cc.set("bootstrap.servers", broker)
                .set("group.id", unique("secbench-rd"))
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false");
            for (a, b) in &props {
                cc.set(a, b);
            }
            let cpu0 = cpu_seconds();
            let t0 = Instant::now();
            let consumer: BaseConsumer = cc.create().unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning).unwrap();
            consumer.assign(&tpl).unwrap();
            let (mut got, mut bytes) = (0usize, 0usize);
            let mut last = Instant::now();
            while got < n {
                match consumer.poll(Duration::from_millis(100)) {
                    None => assert!(last.elapsed() < Duration::from_secs(30), "{name}: librdkafka: no data in 30 s"),
                    Some(Err(e)) => panic!("{name}: librdkafka: {e}"),
                    Some(Ok(m)) => {
                        got += 1;
                        bytes += m.payload().map_or(0, <[u8]>::len);
                        last = Instant::now();
                    }
                }
            }
            let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
            drop(consumer);
            report("RDKAFKA", round, name, got, bytes, secs, cpu);
        }
    }
}

fn report(path: &str, round: usize, name: &str, got: usize, bytes: usize, secs: f64, cpu: f64) {
    println!(
        "{path} round={round} {name}: {got} records, {:.0} MB in {secs:.2} s = {:.0} records/s, {:.1} MB/s; \
         {cpu:.2} CPU-s = {:.0} records per CPU-second",
        bytes as f64 / 1e6,
        got as f64 / secs,
        bytes as f64 / 1e6 / secs,
        got as f64 / cpu.max(1e-9)
    );
}

/// User + system CPU time of this process (`/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
