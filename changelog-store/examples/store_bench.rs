//! Store benchmark (the shape of Paimon's TableWriterBenchmark): upserts of an int64 key
//! + 20 short string columns, 30% updates of existing keys, 5% deletes, a commit every
//! 100k rows, compaction running as it would in production (background, per bucket).
//!
//! Usage: `store_bench [rows] [dir]` (default 10,000,000 rows, a temp dir).
//! Rows are written one by one with `TableWrite::write_row` (one reused row);
//! `STORE_BENCH_API=batch` generates the same rows straight into Arrow batches of 5,000
//! and writes them with `TableWrite::write_batch`, the way a pipeline stage hands over
//! what it read. (Measured on 2 shared cores, neither is consistently faster.)
//! `STORE_BENCH_COMMIT_ROWS` sets the rows per commit (default 100,000, the cadence of a
//! streaming stage; `0` commits once at the end, as Paimon's TableWriterBenchmark does,
//! so that only a full write buffer flushes).
//! `STORE_BENCH_WAIT_COMPACTION=1` makes every commit wait for its compactions: the
//! work done no longer depends on thread timing, which makes two builds comparable.
//! `STORE_BENCH_OPTIONS` adds table options, `;`-separated `key=value` pairs
//! (e.g. `file.compression.per.level=0:lz4`); without it all options but `bucket` are
//! Paimon's defaults.
//!
//! Measured honestly, printed, never asserted:
//! - upserts/s: rows / wall seconds of the load (last commit included, outstanding
//!   compactions waited for);
//! - per core: rows / process CPU seconds (user + sys from /proc/self/stat, all threads);
//! - write amplification: sizes of every data file written (flushes + compactions)
//!   / bytes ingested (8 key bytes + the UTF-8 bytes of the 20 strings per row);
//! - full scan rows/s; point-lookup latency p50/p99 over random keys after the load.
//!   `STORE_BENCH_READS=0` leaves the scan and the lookups out (the BENCH line then has
//!   neither field): a `write-only=true` table keeps a sorted run per commit and bucket,
//!   and reading that back is not what such a run measures.
//!
//! The scan and the lookups are checked against the generator's own record of which
//! keys are live: a wrong answer aborts the run. With a `changelog-producer`, the
//! changelog of every snapshot is read too (changes/s) and replayed onto the keys; it
//! must end at the same live keys (and a `lookup` changelog must be consistent with the
//! state on the way), or the run aborts.

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use changelog_store::{Datum, ReadAt, RowKind, Table, TableSpec};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Process CPU seconds (user + sys) of all threads. USER_HZ is 100 on Linux.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's peak resident set so far (VmHWM), in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Rows per generated Arrow batch (a batch also ends at each commit).
const BATCH_ROWS: usize = 5_000;

/// xorshift64: deterministic and cheap.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The key of the n-th inserted row: a bijection of n, so keys arrive in random order.
fn key_of(n: u64) -> i64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64
}

/// The inverse of [`key_of`]: `n` from the key.
fn index_of(key: i64) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    // Newton's iteration for the inverse of an odd number modulo 2^64 (bits double each step).
    let mut inv = K;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(inv)));
    }
    (key as u64).wrapping_mul(inv)
}

/// The table's `changelog-producer` when it writes a changelog.
fn spec_producer(table: &Table) -> Option<String> {
    let producer = table.schema().options.get("changelog-producer")?;
    (producer != "none").then(|| producer.clone())
}

/// Streams the changelog of every snapshot and replays it onto a set of live keys, which
/// must end equal to the generator's. A derived (`lookup`) changelog must also be
/// consistent on the way: `+I` only for absent keys, `-U`/`-D` only for live ones, `+U`
/// right after the `-U` of its key.
fn replay_changelog(
    table: &Table,
    producer: &str,
    latest: i64,
    live: &[bool],
) -> Result<(), Box<dyn std::error::Error>> {
    use arrow_array::cast::AsArray;
    let strict = producer == "lookup";
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let mut state = vec![false; live.len()];
    let (mut changes, mut retracted) = (0usize, None);
    for id in 1..=latest {
        for b in table.change_batches(id)?.batches {
            let keys = b.rows.column(0).as_primitive::<arrow_array::types::Int64Type>();
            for (&kind, &key) in b.kinds.values().iter().zip(keys.values().iter()) {
                let n = index_of(key) as usize;
                let kind = RowKind::from_byte(kind).ok_or("bad row kind")?;
                let present = *state.get(n).ok_or_else(|| format!("changelog key {key} was never written"))?;
                let consistent = match kind {
                    RowKind::Insert => !present,
                    RowKind::UpdateBefore | RowKind::Delete => present,
                    RowKind::UpdateAfter => retracted.take() == Some(n),
                };
                if strict && !consistent {
                    return Err(format!("snapshot {id}: {kind:?} of key #{n} (live before: {present})").into());
                }
                if kind == RowKind::UpdateBefore {
                    retracted = Some(n);
                }
                state[n] = kind.is_add();
                changes += 1;
            }
        }
    }
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    if state != live {
        let wrong = state.iter().zip(live).filter(|(a, b)| a != b).count();
        return Err(format!("changelog replay disagrees with the generator on {wrong} keys").into());
    }
    let per_s = changes as f64 / secs;
    println!(
        "changelog ({producer}): {changes} changes of {latest} snapshots read in {secs:.2} s wall ({cpu:.2} s CPU) = {per_s:.0} changes/s; replay equals the live keys"
    );
    println!("BENCH store_changelog changes={changes} changes_per_s={per_s:.0}");
    Ok(())
}

/// Decimal formatting of the generated values, four digits at a time: `table` holds
/// "0000".."9999" back to back, so a u32 is two divisions and at most three 1–4 byte
/// copies into the reused `String` (the digit-by-digit loop was ~8% of the process CPU).
struct Decimal {
    table: String,
}

impl Decimal {
    fn new() -> Self {
        let mut table = String::with_capacity(40_000);
        for k in 0..10_000 {
            table.push_str(&format!("{k:04}"));
        }
        Decimal { table }
    }

    /// `k` (< 10,000) as four digits, leading zeros kept.
    fn padded(&self, k: u32) -> &str {
        let o = k as usize * 4;
        &self.table[o..o + 4]
    }

    /// `k` (< 10,000) without leading zeros ("0" for zero).
    fn unpadded(&self, k: u32) -> &str {
        let skip = match k {
            1000.. => 0,
            100.. => 1,
            10.. => 2,
            _ => 3,
        };
        let o = k as usize * 4;
        &self.table[o + skip..o + 4]
    }

    /// Writes the decimal form of `v` into `s` (reusing its buffer).
    fn set(&self, s: &mut String, v: u32) {
        s.clear();
        self.write(s, v);
    }

    /// Appends the decimal form of `v` to `s`.
    fn write(&self, s: &mut impl std::fmt::Write, v: u32) {
        // Writing into a String or a StringBuilder cannot fail.
        let mut push = |piece: &str| {
            let _ = s.write_str(piece);
        };
        let (rest, lo) = (v / 10_000, v % 10_000);
        if rest == 0 {
            push(self.unpadded(lo));
            return;
        }
        let (hi, mid) = (rest / 10_000, rest % 10_000);
        if hi == 0 {
            push(self.unpadded(mid));
        } else {
            push(self.unpadded(hi));
            push(self.padded(mid));
        }
        push(self.padded(lo));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = match args.get(1) {
        Some(s) => s.replace('_', "").parse()?,
        None => 10_000_000,
    };
    let tmp = tempfile::tempdir()?;
    let root = args.get(2).map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    let buckets = std::env::var("STORE_BENCH_BUCKETS").unwrap_or_else(|_| "4".into());
    let mut columns = vec![("id".to_string(), "BIGINT".to_string())];
    for i in 0..20 {
        columns.push((format!("c{i}"), "STRING".to_string()));
    }
    let spec = TableSpec {
        columns,
        primary_keys: vec!["id".into()],
        partition_keys: vec![],
        options: {
            let mut o = BTreeMap::from([("bucket".to_string(), buckets.clone())]);
            let extra = std::env::var("STORE_BENCH_OPTIONS").unwrap_or_default();
            for pair in extra.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or(format!("STORE_BENCH_OPTIONS: `{pair}` is not key=value"))?;
                o.insert(k.trim().to_string(), v.trim().to_string());
            }
            o
        },
    };
    let shown: Vec<String> = spec.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let table = Table::create_in_warehouse(&root, "bench", "t", spec)?;
    println!("table: {} (options {}, all others Paimon's defaults)", table.path().display(), shown.join(", "));

    let committer = table.new_committer("bench");
    let wait = std::env::var("STORE_BENCH_WAIT_COMPACTION").is_ok_and(|v| v == "1");
    let mut write = table.new_write()?.with_wait_compaction(wait);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live = vec![false; 0];
    let mut inserted: u64 = 0;
    let mut ingested: u64 = 0;
    let (mut n_insert, mut n_update, mut n_delete) = (0u64, 0u64, 0u64);
    let mut row: Vec<Datum> =
        std::iter::once(Datum::Long(0)).chain((0..20).map(|_| Datum::String(String::with_capacity(10)))).collect();
    let per_commit: u64 = match std::env::var("STORE_BENCH_COMMIT_ROWS") {
        Ok(v) => v.replace('_', "").parse()?,
        Err(_) => 100_000,
    };
    let per_commit = if per_commit == 0 { u64::MAX } else { per_commit };
    let decimal = Decimal::new();
    {
        let (mut s, mut check) = (String::new(), Rng(7));
        for v in [0, 9, 10, 9_999, 10_000, 10_001, 99_999_999, 100_000_000, u32::MAX]
            .into_iter()
            .chain((0..10_000).map(|_| (check.next() as u32) >> (check.next() % 32)))
        {
            decimal.set(&mut s, v);
            if s != v.to_string() {
                return Err(format!("decimal formatting of {v} gave {s}").into());
            }
        }
    }
    let by_rows = std::env::var("STORE_BENCH_API").map_or(true, |v| v != "batch");
    println!("writing through {}", if by_rows { "write_row" } else { "write_batch" });
    let schema = write.row_schema();
    let mut keys = Int64Builder::with_capacity(BATCH_ROWS);
    let mut strings: Vec<StringBuilder> =
        (0..20).map(|_| StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 10)).collect();
    let mut kinds: Vec<RowKind> = Vec::with_capacity(BATCH_ROWS);
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    for i in 0..rows {
        let r = rng.next() % 100;
        let (n, kind) = if r < 5 && inserted > 0 {
            n_delete += 1;
            (rng.next() % inserted, RowKind::Delete)
        } else if r < 35 && inserted > 0 {
            n_update += 1;
            (rng.next() % inserted, RowKind::Insert)
        } else {
            n_insert += 1;
            inserted += 1;
            live.push(false);
            (inserted - 1, RowKind::Insert)
        };
        live[n as usize] = kind == RowKind::Insert;
        ingested += 8;
        if by_rows {
            row[0] = Datum::Long(key_of(n));
            for d in row.iter_mut().skip(1) {
                if let Datum::String(s) = d {
                    decimal.set(s, rng.next() as u32);
                    ingested += s.len() as u64;
                }
            }
            write.write_row(&row, kind)?;
        } else {
            keys.append_value(key_of(n));
            for b in &mut strings {
                let before = b.values_slice().len();
                decimal.write(b, rng.next() as u32);
                ingested += (b.values_slice().len() - before) as u64;
                b.append_value("");
            }
            kinds.push(kind);
            if kinds.len() == BATCH_ROWS || i + 1 == rows || (i + 1) % per_commit == 0 {
                let mut columns: Vec<ArrayRef> = vec![Arc::new(keys.finish())];
                columns.extend(strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
                write.write_batch(&RecordBatch::try_new(schema.clone(), columns)?, &kinds)?;
                kinds.clear();
            }
        }
        if (i + 1) % per_commit == 0 {
            committer.commit((i / per_commit) as i64 + 1, write.prepare_commit()?, None)?;
        }
    }
    let mut write = write.with_wait_compaction(true);
    committer.commit(i64::MAX - 1, write.prepare_commit()?, None)?;
    drop(write);
    let load_secs = start.elapsed().as_secs_f64();
    let load_cpu = cpu_seconds() - cpu0;
    let written = changelog_store::data::writer::data_bytes_written();
    let expected_live = live.iter().filter(|l| **l).count();
    let snapshot = table.latest_snapshot()?.map(|s| s.id).unwrap_or(0);

    let upserts_per_s = rows as f64 / load_secs;
    let per_core = rows as f64 / load_cpu;
    let write_amp = written as f64 / ingested as f64;
    println!("load: {rows} rows ({n_insert} inserts, {n_update} updates, {n_delete} deletes), {snapshot} snapshots");
    println!("load: {load_secs:.2} s wall, {load_cpu:.2} s CPU (user+sys, all threads)");
    println!("load: {upserts_per_s:.0} upserts/s wall, {per_core:.0} upserts/s per CPU-second");
    // Before the scan, which holds the whole table in memory at once.
    println!("load: peak RSS {} MB", peak_rss_kb() / 1024);
    println!("write amplification: {written} bytes of data files written / {ingested} bytes ingested = {write_amp:.2}");

    if std::env::var("STORE_BENCH_READS").is_ok_and(|v| v == "0") {
        println!("scan and lookups: skipped (STORE_BENCH_READS=0)");
        println!("BENCH store upserts_per_s={upserts_per_s:.0} per_core={per_core:.0} write_amp={write_amp:.2}");
        return Ok(());
    }
    // Full scan of the latest snapshot.
    let cpu1 = cpu_seconds();
    let t = Instant::now();
    let reader = table.reader(ReadAt::Latest)?;
    let scanned: usize = reader.scan_batches()?.iter().map(|b| b.num_rows()).sum();
    let scan_secs = t.elapsed().as_secs_f64();
    let scan_cpu = cpu_seconds() - cpu1;
    let scan_rows_per_s = scanned as f64 / scan_secs;
    println!("scan: {scanned} rows in {scan_secs:.2} s wall ({scan_cpu:.2} s CPU) = {scan_rows_per_s:.0} rows/s");
    if scanned != expected_live {
        return Err(format!("scan returned {scanned} rows, the generator has {expected_live} live keys").into());
    }

    // Point lookups of random keys ever written (some deleted), checked against `live`.
    let lookups: usize = std::env::var("STORE_BENCH_LOOKUPS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let lookups = lookups.min(inserted as usize);
    let mut latencies = Vec::with_capacity(lookups);
    let mut hits = 0;
    for _ in 0..lookups {
        let n = rng.next() % inserted;
        let t = Instant::now();
        let got = reader.lookup(&[Datum::Long(key_of(n))])?;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
        if got.is_some() != live[n as usize] {
            return Err(format!("lookup of key #{n} returned {got:?}, expected live = {}", live[n as usize]).into());
        }
        hits += usize::from(got.is_some());
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("lookup: {lookups} random keys ({hits} live), p50 {p50:.0} us, p99 {p99:.0} us");

    if let Some(producer) = spec_producer(&table) {
        replay_changelog(&table, &producer, snapshot, &live)?;
    }

    let files: usize = reader.buckets().iter().map(|b| b.files.len()).sum();
    println!("table after load: {files} live data files");
    println!(
        "BENCH store upserts_per_s={upserts_per_s:.0} per_core={per_core:.0} write_amp={write_amp:.2} scan_rows_per_s={scan_rows_per_s:.0} lookup_p99_us={p99:.0}"
    );
    Ok(())
}
