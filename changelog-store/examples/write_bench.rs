//! Write-path benchmark: upserts of an int64 key + 20 short string columns, 30% updates,
//! 5% deletes; prints upserts/s and write amplification (bytes written / bytes of the
//! final table). Usage: `write_bench [rows] [dir]` (default 1,000,000 rows, a temp dir).

use changelog_store::{Datum, ReadAt, RowKind, Table, TableSpec};
use std::collections::BTreeMap;
use std::time::Instant;

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            total += if path.is_dir() { dir_size(&path) } else { e.metadata().map(|m| m.len()).unwrap_or(0) };
        }
    }
    total
}

fn main() -> changelog_store::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().map_err(|source| changelog_store::Error::Io { op: "creating", path: "/tmp".into(), source })?;
    let root = args.get(2).map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    let mut columns = vec![("id".to_string(), "BIGINT".to_string())];
    for i in 0..20 {
        columns.push((format!("c{i}"), "STRING".to_string()));
    }
    let spec = TableSpec {
        columns,
        primary_keys: vec!["id".into()],
        partition_keys: vec![],
        options: BTreeMap::from([
            ("bucket".to_string(), "4".to_string()),
            ("write-buffer-size".to_string(), "64 mb".to_string()),
        ]),
    };
    let table = Table::create_in_warehouse(&root, "bench", "t", spec)?;
    let committer = table.new_committer("bench");
    let mut write = table.new_write()?;
    let start = Instant::now();
    let mut next_new: i64 = 0;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let per_commit = 100_000;
    for i in 0..rows {
        let r = rnd() % 100;
        let (id, kind) = if r < 5 && next_new > 0 {
            ((rnd() % next_new as u64) as i64, RowKind::Delete)
        } else if r < 35 && next_new > 0 {
            ((rnd() % next_new as u64) as i64, RowKind::Insert)
        } else {
            next_new += 1;
            (next_new - 1, RowKind::Insert)
        };
        let mut row = vec![Datum::Long(id)];
        for c in 0..20 {
            row.push(Datum::String(format!("v{}-{}", c, i % 1000)));
        }
        write.write(row, kind)?;
        if (i + 1) % per_commit == 0 {
            committer.commit((i / per_commit) as i64 + 1, write.prepare_commit()?, None)?;
        }
    }
    committer.commit(i64::MAX - 1, write.prepare_commit()?, None)?;
    let elapsed = start.elapsed().as_secs_f64();
    let written = dir_size(table.path());
    table.compact("bench", i64::MAX, true)?;
    let final_live: i64 = table.latest_snapshot()?.map(|s| s.total_record_count).unwrap_or(0);
    let live_bytes: u64 = {
        let scan_rows = table.scan(ReadAt::Latest)?.len();
        println!("rows visible: {scan_rows}");
        dir_size(&table.path().join("bucket-0"))
            + dir_size(&table.path().join("bucket-1"))
            + dir_size(&table.path().join("bucket-2"))
            + dir_size(&table.path().join("bucket-3"))
    };
    println!("upserts: {rows} in {elapsed:.2}s = {:.0}/s (one thread + compaction threads)", rows as f64 / elapsed);
    println!("bytes written before final compaction: {written}, table files now: {live_bytes}, total records: {final_live}");
    Ok(())
}
