//! The data path of a consumer: a thread that keeps one connection per
//! partition leader, sends the next Fetch as soon as the previous response is
//! parsed (so fetching overlaps the consumer's work), splits and decompresses
//! record batches, drops aborted transactions and control batches, and hands
//! complete batches to the consumer thread through a bounded channel.
//!
//! Positions are the caller's: [`Fetcher::assign`] says where every partition
//! starts, under an epoch; data of an older epoch is tagged so the caller can
//! drop it. Group membership, metadata and watermarks stay with librdkafka,
//! behind [`Cluster`].

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::security::Security;
use super::transport::{self, ConnectError, Stream};
use super::wire::{self, BatchHeader, Codec, FetchRequest, WireError, errors};
use crate::telemetry::names;

/// What the fetcher needs to know about the cluster.
pub trait Cluster: Send + Sync + 'static {
    /// `partition → host:port` of every partition's current leader (one metadata request per topic).
    fn leaders(&self, topic: &str) -> Result<HashMap<i32, String>, String>;
    /// `(log start offset, high watermark)`.
    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), String>;
}

/// Fetch settings (Kafka's consumer property names in the docs).
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub client_id: String,
    /// `fetch.wait.max.ms`
    pub max_wait_ms: i32,
    /// `fetch.max.bytes`
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`
    pub partition_max_bytes: i32,
    /// `isolation.level=read_committed` (the default, as in librdkafka).
    pub read_committed: bool,
    /// Responses parsed ahead of the consumer (memory ≈ depth × max_bytes).
    pub depth: usize,
    /// TLS and SASL (`security.protocol` and friends).
    pub security: Security,
}

impl FetchSettings {
    /// The most one batch may decompress to: a batch's sizes are the sender's
    /// word, memory is bounded by configuration (raise `fetch.max.bytes` to raise it).
    pub fn max_decompressed_bytes(&self) -> usize {
        (self.max_bytes.max(0) as usize).saturating_mul(4).max(64 << 20)
    }
    /// The largest response frame accepted. Brokers return a partition's first
    /// batch whole even past `max_bytes`, so there is room above it.
    fn max_response_bytes(&self) -> usize {
        (self.max_bytes.max(0) as usize).saturating_mul(2).max(64 << 20)
    }
}

/// First retry delay after a failure; doubles per consecutive failure.
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Retry delays never exceed this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection attempt to a leader gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive unreadable answers for one partition before the worker stops:
/// a batch that fails its CRC again and again is corrupt on the broker, and
/// skipping it would lose data.
const MAX_PARTITION_FAILURES: u32 = 8;

/// The delay before retry number `failures + 1`: exponential, capped, with
/// jitter in [½, 1] of the step so that partitions and workers spread out.
fn backoff(failures: u32, seed: u64) -> Duration {
    let step = BASE_BACKOFF.saturating_mul(1u32 << failures.min(20)).min(MAX_BACKOFF);
    // splitmix64 of the seed: enough spread for jitter, no RNG dependency.
    let mut z = seed.wrapping_add(u64::from(failures)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let fraction = (z % 1024) as u32;
    step / 2 + (step / 2) * fraction / 1024
}

/// What a Fetch error code asks of the fetcher.
#[derive(Debug, PartialEq, Eq)]
enum CodeAction {
    /// Leadership moved or metadata is stale: look the leader up again.
    RefreshLeader,
    /// Transient on the broker: retry this partition after a backoff.
    Retry,
    /// Retrying cannot help: stop with this message.
    Fatal(String),
}

/// Classifies a partition-level Fetch error code (Kafka's retriable errors
/// are retried; every other code stops the worker with its name).
fn classify(code: i16, topic: &str, partition: i32) -> CodeAction {
    match code {
        errors::NOT_LEADER_OR_FOLLOWER
        | errors::LEADER_NOT_AVAILABLE
        | errors::UNKNOWN_TOPIC_OR_PARTITION
        | errors::FENCED_LEADER_EPOCH
        | errors::UNKNOWN_LEADER_EPOCH
        | errors::REPLICA_NOT_AVAILABLE => CodeAction::RefreshLeader,
        errors::UNKNOWN_SERVER_ERROR
        | errors::CORRUPT_MESSAGE
        | errors::REQUEST_TIMED_OUT
        | errors::NETWORK_EXCEPTION
        | errors::NOT_ENOUGH_REPLICAS
        | errors::KAFKA_STORAGE_ERROR
        | errors::OFFSET_NOT_AVAILABLE
        | errors::THROTTLING_QUOTA_EXCEEDED => CodeAction::Retry,
        errors::UNSUPPORTED_COMPRESSION_TYPE => CodeAction::Fatal(format!(
            "{topic}/{partition}: the broker answers UNSUPPORTED_COMPRESSION_TYPE (76): the topic holds zstd batches, \
             which brokers serve only to Fetch v{} and later, and this broker offers no such version to this fetcher \
             (it speaks up to v{}). Upgrade the broker (Kafka 2.1+), produce this topic with gzip, snappy or lz4, or \
             have the broker recompress it (topic config compression.type)",
            wire::FETCH_ZSTD_VERSION,
            wire::FETCH_MAX_VERSION
        )),
        code => CodeAction::Fatal(format!(
            "{topic}/{partition}: the broker answers the fetch with {} ({code}), which retrying cannot fix",
            errors::name(code)
        )),
    }
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            client_id: "lakehouse".into(),
            max_wait_ms: 100,
            max_bytes: 16 << 20,
            partition_max_bytes: 4 << 20,
            read_committed: true,
            depth: 2,
            security: Security::default(),
        }
    }
}

/// Where a partition starts.
#[derive(Debug, Clone)]
pub struct Start {
    pub topic: String,
    pub partition: i32,
    /// The next offset to read; `None` = the log start.
    pub offset: Option<i64>,
}

/// One complete record batch (decompressed).
pub struct Batch {
    pub header: BatchHeader,
    pub records: Bytes,
}

impl Batch {
    pub fn records(&self) -> wire::Records<'_> {
        wire::Records::new(&self.header, &self.records)
    }
}

/// The data of one partition from one response.
pub struct Chunk {
    pub epoch: u64,
    pub topic: Arc<str>,
    pub partition: i32,
    pub high_watermark: i64,
    /// The offset fetched from: records below it (a batch fetched from its
    /// middle) were delivered before and must be skipped.
    pub from_offset: i64,
    /// The next offset after these batches (past control batches and aborted data too).
    pub next_offset: i64,
    pub batches: Vec<Batch>,
}

impl Chunk {
    /// The records at or after `from_offset`, in offset order. An error ends
    /// the partition's data: a corrupt batch is never skipped silently.
    pub fn records(&self) -> impl Iterator<Item = Result<wire::Record<'_>, WireError>> {
        let from = self.from_offset;
        self.batches
            .iter()
            .filter(move |b| b.header.last_offset() >= from)
            .flat_map(Batch::records)
            .filter(move |r| r.as_ref().map_or(true, |r| r.offset >= from))
    }
}

/// What the fetcher reports.
pub enum Event {
    Data(Vec<Chunk>),
    /// The broker cannot be read by this client (e.g. an unsupported message format).
    Fatal(String),
}

enum Command {
    Assign(u64, Vec<Start>),
}

/// Handle of the fetch thread; dropping it stops the thread.
pub struct Fetcher {
    commands: Option<Sender<Command>>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Fetcher {
    pub fn spawn(settings: FetchSettings, cluster: Arc<dyn Cluster>) -> std::io::Result<Self> {
        let (ctx, crx) = mpsc::channel();
        let (etx, erx) = mpsc::sync_channel(settings.depth.max(1));
        let thread = std::thread::Builder::new().name("kafka-fetch".into()).spawn(move || {
            let mut f = FetchLoop {
                settings,
                cluster,
                commands: crx,
                events: etx,
                epoch: 0,
                parts: Vec::new(),
                conns: HashMap::new(),
                correlation: 0,
                seed: u64::from(std::process::id())
                    ^ (std::time::UNIX_EPOCH.elapsed().unwrap_or_default().as_nanos() as u64),
            };
            f.run();
        })?;
        Ok(Self { commands: Some(ctx), events: erx, thread: Some(thread) })
    }

    /// Replaces the fetched partitions; later data carries `epoch`.
    pub fn assign(&self, epoch: u64, starts: Vec<Start>) {
        if let Some(c) = &self.commands {
            let _ = c.send(Command::Assign(epoch, starts));
        }
    }

    /// The next response's data, or `None` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::Fatal("the fetch thread ended".into())),
        }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.commands.take(); // the thread sees the disconnect
        // Unblock a pending send, then wait for the thread.
        while self.events.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            while !t.is_finished() {
                while self.events.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}

struct Part {
    topic: Arc<str>,
    partition: i32,
    /// `None` until resolved from the log start.
    next: Option<i64>,
    leader: Option<String>,
    retry_at: Option<Instant>,
    /// Grows while a batch larger than it blocks progress.
    max_bytes: i32,
    /// Consecutive failures (connection, error code, unreadable data); sets the backoff.
    failures: u32,
}

struct Conn {
    stream: Stream,
    /// The Fetch version negotiated with this broker.
    fetch_version: i16,
}

struct FetchLoop {
    settings: FetchSettings,
    cluster: Arc<dyn Cluster>,
    commands: Receiver<Command>,
    events: SyncSender<Event>,
    epoch: u64,
    parts: Vec<Part>,
    conns: HashMap<String, Conn>,
    correlation: i32,
    /// Varies the jitter of retries.
    seed: u64,
}

/// Why a response was not taken whole.
enum Handled {
    /// The response itself could not be parsed: reconnect and retry.
    Unreadable(WireError),
    /// Retrying cannot help: the worker stops with this message.
    Fatal(String),
}

/// Outcome of a fetch round.
enum Round {
    Continue,
    Stop,
}

impl FetchLoop {
    fn run(&mut self) {
        loop {
            // Commands first: a new assignment makes in-flight positions moot.
            let idle = self.parts.is_empty();
            let cmd = if idle {
                match self.commands.recv_timeout(Duration::from_millis(100)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match self.commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            };
            if let Some(Command::Assign(epoch, starts)) = cmd {
                self.epoch = epoch;
                self.parts = starts
                    .into_iter()
                    .map(|s| Part {
                        topic: Arc::from(s.topic.as_str()),
                        partition: s.partition,
                        next: s.offset,
                        leader: None,
                        retry_at: None,
                        max_bytes: self.settings.partition_max_bytes,
                        failures: 0,
                    })
                    .collect();
                continue;
            }
            if self.parts.is_empty() {
                continue;
            }
            if let Round::Stop = self.round() {
                return;
            }
        }
    }

    /// Resolves what it can, sends one Fetch per leader, reads the responses.
    fn round(&mut self) -> Round {
        let now = Instant::now();
        let mut by_leader: HashMap<String, Vec<usize>> = HashMap::new();
        // Leaders looked up in this round, per topic: one metadata request each.
        let mut leaders: HashMap<Arc<str>, Result<HashMap<i32, String>, String>> = HashMap::new();
        for (i, p) in self.parts.iter_mut().enumerate() {
            if p.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            p.retry_at = None;
            if p.next.is_none() {
                match self.cluster.watermarks(&p.topic, p.partition) {
                    Ok((low, _)) => p.next = Some(low.max(0)),
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "cannot read the log start; retrying");
                        p.retry_at = Some(now + Duration::from_secs(1));
                        continue;
                    }
                }
            }
            if p.leader.is_none() {
                let known = leaders.entry(p.topic.clone()).or_insert_with(|| self.cluster.leaders(&p.topic));
                let leader = known.as_ref().map_err(String::clone).and_then(|m| {
                    m.get(&p.partition).cloned().ok_or_else(|| format!("no leader for {}/{}", p.topic, p.partition))
                });
                match leader {
                    Ok(l) => p.leader = Some(l),
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "no leader known; retrying");
                        p.retry_at = Some(now + Duration::from_millis(500));
                        continue;
                    }
                }
            }
            by_leader.entry(p.leader.clone().expect("set above")).or_default().push(i);
        }
        if by_leader.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            return Round::Continue;
        }
        // Send to every leader, then read every response.
        let mut sent = Vec::new();
        for (leader, idx) in by_leader {
            match self.send(&leader, &idx) {
                Ok(correlation) => sent.push((leader, idx, correlation)),
                Err(ConnectError::Auth(e)) => {
                    // Wrong credentials or mechanism: retrying cannot help.
                    tracing::error!(%leader, error = %e, "broker refused authentication");
                    let _ = self.events.send(Event::Fatal(format!("authenticating to {leader}: {e}")));
                    return Round::Stop;
                }
                Err(ConnectError::Io(e)) => self.connection_failed(&leader, &idx, &e),
            }
        }
        let mut chunks = Vec::new();
        for (leader, idx, correlation) in sent {
            match self.receive(&leader, correlation) {
                Ok((body, version)) => match self.handle_response(&body, version, &idx, &mut chunks) {
                    Ok(()) => {}
                    Err(Handled::Fatal(m)) => {
                        let _ = self.events.send(Event::Fatal(m));
                        return Round::Stop;
                    }
                    Err(Handled::Unreadable(e)) => {
                        metrics::counter!(names::CONSUME_ERRORS, "kind" => "fetch").increment(1);
                        tracing::error!(%leader, error = %e, "unreadable fetch response; reconnecting");
                        self.connection_failed(&leader, &idx, &e.to_string());
                    }
                },
                Err(e) => self.connection_failed(&leader, &idx, &e),
            }
        }
        if !chunks.is_empty() {
            // Blocks while the consumer is `depth` responses behind.
            if self.events.send(Event::Data(chunks)).is_err() {
                return Round::Stop;
            }
        }
        Round::Continue
    }

    fn connection_failed(&mut self, leader: &str, idx: &[usize], error: &str) {
        metrics::counter!(names::CONSUME_ERRORS, "kind" => "fetch").increment(1);
        self.conns.remove(leader);
        // One delay for the leader's partitions: they share the connection.
        let failures = idx.iter().map(|&i| self.parts[i].failures).max().unwrap_or(0);
        let delay = self.next_backoff(failures);
        tracing::warn!(%leader, %error, retry_in_ms = delay.as_millis() as u64, "fetch failed; reconnecting");
        let retry = Instant::now() + delay;
        for &i in idx {
            let p = &mut self.parts[i];
            p.leader = None;
            p.retry_at = Some(retry);
            p.failures = p.failures.saturating_add(1);
        }
    }

    fn next_backoff(&mut self, failures: u32) -> Duration {
        self.seed = self.seed.wrapping_add(0x2545_f491_4f6c_dd1d);
        backoff(failures, self.seed)
    }

    /// Schedules partition `i`'s next try after a backoff.
    fn retry_later(&mut self, i: usize) -> Duration {
        let delay = self.next_backoff(self.parts[i].failures);
        let p = &mut self.parts[i];
        p.failures = p.failures.saturating_add(1);
        p.retry_at = Some(Instant::now() + delay);
        delay
    }

    fn connect(&mut self, leader: &str) -> Result<(), ConnectError> {
        if self.conns.contains_key(leader) {
            return Ok(());
        }
        let timeout = Duration::from_millis(self.settings.max_wait_ms.max(0) as u64) + Duration::from_secs(30);
        let stream =
            transport::connect(leader, &self.settings.security, &self.settings.client_id, CONNECT_TIMEOUT, timeout)?;
        let io = ConnectError::Io;
        let mut conn = Conn { stream, fetch_version: wire::FETCH_MIN_VERSION };
        // ApiVersions v0: the newest Fetch version both sides speak (zstd
        // needs v10+); fail clearly on a broker without Fetch v4. A refused
        // client certificate shows here too (TLS 1.3), as an Auth error.
        self.correlation = self.correlation.wrapping_add(1);
        let keys = transport::api_versions(&mut conn.stream, leader, self.correlation, &self.settings.client_id)?;
        let fetch = keys.iter().find(|k| k.0 == wire::API_FETCH);
        conn.fetch_version = fetch.and_then(|&(_, min, max)| wire::negotiate_fetch(min, max)).ok_or_else(|| {
            io(format!(
                "broker {leader} serves no Fetch version in v{}..=v{} (it offers {:?})",
                wire::FETCH_MIN_VERSION,
                wire::FETCH_MAX_VERSION,
                fetch.map(|&(_, min, max)| min..=max)
            ))
        })?;
        tracing::debug!(%leader, fetch_version = conn.fetch_version, "connected");
        self.conns.insert(leader.to_string(), conn);
        Ok(())
    }

    fn send(&mut self, leader: &str, idx: &[usize]) -> Result<i32, ConnectError> {
        self.connect(leader)?;
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        // Partitions that need room for a big batch go first (the broker
        // always returns the first partition's first batch whole).
        let mut order: Vec<usize> = idx.to_vec();
        order.sort_by_key(|&i| std::cmp::Reverse(self.parts[i].max_bytes));
        let mut topics: Vec<(&str, Vec<(i32, i64, i32)>)> = Vec::new();
        for &i in &order {
            let p = &self.parts[i];
            let entry = (p.partition, p.next.expect("resolved before sending"), p.max_bytes);
            match topics.iter_mut().find(|(t, _)| *t == &*p.topic) {
                Some((_, v)) => v.push(entry),
                None => topics.push((&p.topic, vec![entry])),
            }
        }
        let conn = self.conns.get_mut(leader).expect("connected above");
        let req = FetchRequest {
            version: conn.fetch_version,
            max_wait_ms: self.settings.max_wait_ms,
            min_bytes: 1,
            max_bytes: self.settings.max_bytes,
            isolation_level: i8::from(self.settings.read_committed),
            topics,
        };
        let bytes = req.encode(correlation, &self.settings.client_id);
        conn.stream.write_all(&bytes).map_err(|e| ConnectError::Io(format!("send to {leader}: {e}")))?;
        Ok(correlation)
    }

    /// The response body and the Fetch version it is in.
    fn receive(&mut self, leader: &str, correlation: i32) -> Result<(Bytes, i16), String> {
        let limit = self.settings.max_response_bytes();
        let conn = self.conns.get_mut(leader).ok_or_else(|| format!("no connection to {leader}"))?;
        let body = read_response(&mut conn.stream, correlation, limit).map_err(|e| format!("{leader}: {e}"))?;
        Ok((body, conn.fetch_version))
    }

    /// Parses one Fetch response into chunks. Errors of one partition (an error
    /// code, a corrupt batch) hold back that partition alone, with a backoff;
    /// only an unreadable response as a whole fails the connection.
    fn handle_response(
        &mut self,
        body: &Bytes,
        version: i16,
        idx: &[usize],
        chunks: &mut Vec<Chunk>,
    ) -> Result<(), Handled> {
        let partitions = wire::decode_fetch(body, version).map_err(Handled::Unreadable)?;
        for mut fp in partitions {
            let Some(&i) =
                idx.iter().find(|&&i| self.parts[i].partition == fp.partition && *self.parts[i].topic == fp.topic)
            else {
                continue; // not asked for
            };
            if fp.error_code == errors::OFFSET_OUT_OF_RANGE {
                self.out_of_range(i);
                continue;
            }
            if fp.error_code != errors::NONE {
                let (topic, partition) = (self.parts[i].topic.clone(), self.parts[i].partition);
                match classify(fp.error_code, &topic, partition) {
                    CodeAction::RefreshLeader => {
                        tracing::debug!(%topic, partition, code = fp.error_code, "leader moved; refreshing");
                        self.parts[i].leader = None;
                        self.retry_later(i);
                    }
                    CodeAction::Retry => {
                        metrics::counter!(names::CONSUME_ERRORS, "kind" => "fetch").increment(1);
                        let delay = self.retry_later(i);
                        tracing::warn!(
                            %topic, partition, code = fp.error_code, error = errors::name(fp.error_code),
                            retry_in_ms = delay.as_millis() as u64, "fetch error; retrying"
                        );
                    }
                    CodeAction::Fatal(m) => return Err(Handled::Fatal(m)),
                }
                continue;
            }
            let from = self.parts[i].next.expect("resolved before sending");
            let aborted = std::mem::take(&mut fp.aborted);
            let limit = self.settings.max_decompressed_bytes();
            let read_committed = self.settings.read_committed;
            let parsed = wire::split_batches(&fp.records).and_then(|split| {
                let whole = !split.is_empty();
                committed_batches(split, &fp.records, from, aborted, read_committed, limit).map(|r| (whole, r))
            });
            let (any_whole, (batches, next)) = match parsed {
                Ok(r) => r,
                Err(e) => {
                    let (topic, partition) = (self.parts[i].topic.clone(), self.parts[i].partition);
                    let context = format!("{topic}/{partition} at offset {from}: {e}");
                    if matches!(e, WireError::Unsupported(_) | WireError::TooLarge(_))
                        || self.parts[i].failures + 1 >= MAX_PARTITION_FAILURES
                    {
                        return Err(Handled::Fatal(context));
                    }
                    metrics::counter!(names::CONSUME_ERRORS, "kind" => "corrupt").increment(1);
                    let delay = self.retry_later(i);
                    tracing::error!(
                        error = %context, retry_in_ms = delay.as_millis() as u64,
                        "unreadable data for one partition; re-fetching it (the other partitions go on)"
                    );
                    continue;
                }
            };
            let p = &mut self.parts[i];
            p.failures = 0;
            if !any_whole && !fp.records.is_empty() {
                // A batch bigger than we asked for: ask for more next time.
                p.max_bytes = p.max_bytes.saturating_mul(2).min(self.settings.max_bytes.max(p.max_bytes));
            } else if any_whole {
                p.max_bytes = self.settings.partition_max_bytes;
            }
            if !any_whole && fp.high_watermark < 0 {
                continue;
            }
            p.next = Some(next);
            chunks.push(Chunk {
                epoch: self.epoch,
                topic: p.topic.clone(),
                partition: p.partition,
                high_watermark: fp.high_watermark,
                from_offset: from,
                next_offset: next,
                batches,
            });
        }
        Ok(())
    }

    /// The position is outside the log. Below the log start the data is gone
    /// (retention ran before we read it): move to the start, loudly. Above
    /// the end the log is behind our committed position (a re-created topic,
    /// an unclean leader election): never guess, keep reporting it.
    fn out_of_range(&mut self, i: usize) {
        let p = &mut self.parts[i];
        let next = p.next.unwrap_or(0);
        match self.cluster.watermarks(&p.topic, p.partition) {
            Ok((low, _)) if next < low => {
                metrics::counter!(names::OFFSET_RESETS, "topic" => p.topic.to_string()).increment(1);
                tracing::error!(
                    topic = %p.topic, partition = p.partition, position = next, log_start = low,
                    "committed position is below the log start: {} messages were deleted by retention before they \
                     were ingested; continuing from the log start", low - next
                );
                p.next = Some(low);
            }
            Ok((low, high)) => {
                metrics::counter!(names::CONSUME_ERRORS, "kind" => "offset_out_of_range").increment(1);
                tracing::error!(
                    topic = %p.topic, partition = p.partition, position = next, log_start = low, log_end = high,
                    "committed position is past the end of the log (topic re-created or data lost on the broker); \
                     not consuming this partition until an operator resolves it"
                );
                p.retry_at = Some(Instant::now() + Duration::from_secs(30));
            }
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "offset out of range; retrying");
                p.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }
}

/// The complete batches of one partition at or after `from`, checked against
/// their CRC and decompressed (each within `limit` bytes), without control
/// batches and (read_committed) aborted transactions; and the offset to fetch
/// next. `aborted` is the response's `(producer_id, first_offset)` list.
///
/// Transaction state follows every batch that has a producer id, as in the
/// Java consumer: the aborted list is drained up to each such batch's last
/// offset *before* the batch is looked at, so an abort marker always finds the
/// transaction it ends, even when the fetch started between that transaction's
/// first record and its marker (a restart mid-transaction). Otherwise the
/// producer's next, committed transaction would be taken for the aborted one.
fn committed_batches(
    split: Vec<(BatchHeader, std::ops::Range<usize>)>,
    records: &Bytes,
    from: i64,
    mut aborted: Vec<(i64, i64)>,
    read_committed: bool,
    limit: usize,
) -> Result<(Vec<Batch>, i64), WireError> {
    aborted.sort_unstable_by_key(|a| a.1);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut batches = Vec::with_capacity(split.len());
    let mut next = from;
    for (header, range) in split {
        let wanted = header.last_offset() >= from;
        if wanted {
            wire::check_crc(&header, records, &range)?;
        }
        if read_committed && header.producer_id >= 0 {
            while let Some(&(pid, first)) = aborted.peek() {
                if first > header.last_offset() {
                    break;
                }
                aborting.insert(pid);
                aborted.next();
            }
        }
        let region = records.slice(range);
        if header.is_control() {
            if wire::control_is_abort(&header, &region)? {
                aborting.remove(&header.producer_id);
            }
        } else if wanted && !(read_committed && header.is_transactional() && aborting.contains(&header.producer_id)) {
            let records = match header.codec()? {
                Codec::None => region,
                codec => Bytes::from(wire::decompress(codec, &region, limit)?),
            };
            batches.push(Batch { header, records });
            next = next.max(batches.last().map_or(next, |b| b.header.last_offset() + 1));
            continue;
        }
        if wanted {
            next = next.max(header.last_offset() + 1);
        }
    }
    Ok((batches, next))
}

/// Connects to `host:port`, trying each resolved address within `timeout`.
pub(crate) fn connect_timeout(leader: &str, timeout: Duration) -> Result<TcpStream, String> {
    use std::net::ToSocketAddrs;
    let addrs = leader.to_socket_addrs().map_err(|e| format!("resolve {leader}: {e}"))?;
    let mut last = format!("resolve {leader}: no addresses");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect {leader} ({addr}): {e}"),
        }
    }
    Err(last)
}

/// Why a response frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The connection failed (kept whole: a TLS alert inside it is the broker's
    /// verdict on our certificate, see [`transport::api_versions`]).
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The frame is not the answer expected.
    #[error("{0}")]
    Frame(String),
}

/// Reads one response frame and checks its correlation id; returns the body.
/// A frame larger than `limit` is refused before anything is allocated for it.
pub(crate) fn read_response(stream: &mut impl Read, correlation: i32, limit: usize) -> Result<Bytes, ReadError> {
    let mut head = [0u8; 8];
    stream.read_exact(&mut head)?;
    let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let got = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if size < 4 || size as usize > limit {
        return Err(ReadError::Frame(format!(
            "response size {size} outside 4..={limit} (raise fetch.max.bytes if batches are this large)"
        )));
    }
    if got != correlation {
        return Err(ReadError::Frame(format!("correlation id {got}, expected {correlation}")));
    }
    let mut body = vec![0u8; size as usize - 4];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::wire::tests::{batch_of, record};

    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;

    /// A transaction marker: control record key (version 0, type 0 = abort, 1 = commit).
    fn marker(offset: i64, producer_id: i64, commit: bool) -> Vec<u8> {
        let key = [0u8, 0, 0, u8::from(commit)];
        batch_of(
            offset,
            TRANSACTIONAL | CONTROL,
            producer_id,
            &[record(0, 0, Some(&key), Some(&[0, 0, 0, 0, 0, 0]), &[])],
        )
    }

    fn data(offset: i64, producer_id: i64, n: i64) -> Vec<u8> {
        let recs: Vec<Vec<u8>> = (0..n).map(|i| record(i, 0, Some(b"k"), Some(b"v"), &[])).collect();
        batch_of(offset, TRANSACTIONAL, producer_id, &recs)
    }

    fn run(log: Vec<u8>, from: i64, aborted: Vec<(i64, i64)>) -> (Vec<(i64, i64)>, i64) {
        let records = Bytes::from(log);
        let split = wire::split_batches(&records).expect("splits");
        let (batches, next) = committed_batches(split, &records, from, aborted, true, 1 << 20).expect("reads");
        (batches.iter().map(|b| (b.header.base_offset, b.header.last_offset())).collect(), next)
    }

    /// A log ending in a transaction marker: the data is handed over, the marker is
    /// not, and the next offset is past the marker (the high watermark), which is what
    /// lets an idle check see the partition as consumed to its end.
    #[test]
    fn markers_are_skipped_and_passed() {
        let log = [data(0, 7, 3), marker(3, 7, true)].concat();
        assert_eq!(run(log.clone(), 0, vec![]), (vec![(0, 2)], 4));
        // Fetching from the marker alone: nothing to hand over, the position moves on.
        assert_eq!(run(log, 3, vec![]), (vec![], 4));
        // An aborted transaction: neither its data nor its marker, position past both.
        let log = [data(0, 7, 3), marker(3, 7, false), data(4, 8, 2), marker(6, 8, true)].concat();
        assert_eq!(run(log, 0, vec![(7, 0)]), (vec![(4, 5)], 7));
    }

    /// A restart between an aborted transaction's first record and its abort
    /// marker: the broker still lists the transaction, the fetch starts at the
    /// marker, and the same producer's next transaction is committed. It must
    /// be delivered (it was dropped while the marker skipped the aborted-list
    /// drain), and the position must move past it.
    #[test]
    fn committed_transaction_after_an_abort_marker_is_delivered() {
        let log = [data(0, 7, 3), marker(3, 7, false), data(4, 7, 2), marker(6, 7, true)].concat();
        for from in [1, 2, 3] {
            let (got, next) = run(log.clone(), from, vec![(7, 0)]);
            assert_eq!((got, next), (vec![(4, 5)], 7), "fetched from {from}");
        }
        // Two producers interleaved: only the aborted one's data goes.
        let log =
            [data(0, 7, 2), data(2, 8, 2), marker(4, 7, false), data(5, 7, 1), marker(6, 8, true), marker(7, 7, true)]
                .concat();
        assert_eq!(run(log.clone(), 0, vec![(7, 0)]), (vec![(2, 3), (5, 5)], 8));
        assert_eq!(run(log, 4, vec![(7, 0)]), (vec![(5, 5)], 8));
    }

    #[test]
    fn a_corrupt_batch_is_an_error_not_data() {
        let mut log = [data(0, 7, 3), marker(3, 7, true)].concat();
        let last = log.len() - 1;
        log[last] ^= 0x40; // the marker's last byte: covered by its CRC
        let records = Bytes::from(log);
        let split = wire::split_batches(&records).expect("splits");
        assert!(matches!(committed_batches(split, &records, 0, vec![], true, 1 << 20), Err(WireError::Corrupt(_))));
    }

    #[test]
    fn error_codes_are_retried_or_fatal_by_kind() {
        assert_eq!(classify(errors::NOT_LEADER_OR_FOLLOWER, "t", 0), CodeAction::RefreshLeader);
        assert_eq!(classify(errors::REQUEST_TIMED_OUT, "t", 0), CodeAction::Retry);
        let CodeAction::Fatal(m) = classify(errors::UNSUPPORTED_COMPRESSION_TYPE, "orders", 3) else {
            panic!("zstd refused by the broker must be fatal")
        };
        assert!(m.contains("orders/3") && m.contains("zstd"), "{m}");
        let CodeAction::Fatal(m) = classify(errors::TOPIC_AUTHORIZATION_FAILED, "orders", 1) else {
            panic!("an authorization failure must be fatal")
        };
        assert!(m.contains("orders/1") && m.contains("TOPIC_AUTHORIZATION_FAILED"), "{m}");
        assert!(matches!(classify(999, "t", 0), CodeAction::Fatal(_)), "unknown codes stop, never spin");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let mut prev = Duration::ZERO;
        for failures in 0..40 {
            let d = backoff(failures, 12_345);
            assert!(d <= MAX_BACKOFF, "{failures}: {d:?}");
            assert!(d >= BASE_BACKOFF / 2, "{failures}: {d:?}");
            if failures < 5 {
                assert!(d * 2 > prev, "grows at first: {failures}: {d:?} after {prev:?}");
            }
            prev = d;
        }
        assert!(backoff(30, 1) >= MAX_BACKOFF / 2);
    }
}
