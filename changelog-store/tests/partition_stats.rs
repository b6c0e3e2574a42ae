//! Manifest lists carry real partition stats (min, max, null count per partition
//! field), which Java Paimon's `ManifestsReader` prunes manifests with.

mod common;

use changelog_store::manifest_io::ManifestIo;
use changelog_store::paths::TablePaths;
use changelog_store::spec::binary_row;
use changelog_store::{Datum, RowKind, Table};
use common::*;

#[test]
fn manifest_lists_carry_min_max_and_null_counts_of_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = spec(&[("changelog-producer", "input"), ("manifest.merge-min-count", "2")]);
    s.primary_keys = vec!["k".into(), "s".into()];
    s.partition_keys = vec!["s".into()];
    let table = Table::create(dir.path().join("t"), s).expect("creates");
    let c = table.new_committer("u");
    let batches: [&[Option<&str>]; 3] =
        [&[Some("2026-11-02"), Some("2026-11-01")], &[Some("2026-11-03")], &[Some("2026-11-05")]];
    for (i, parts) in batches.iter().enumerate() {
        let mut w = table.new_write().expect("writer");
        for (k, p) in parts.iter().enumerate() {
            w.write(row(k as i64, Some(1), *p, 0), RowKind::Insert).expect("writes");
        }
        c.commit(i as i64 + 1, w.prepare_commit().expect("prepares"), None).expect("commits");
    }
    let info = table.info();
    let types = &info.partition_types;
    let io = ManifestIo::new(TablePaths::new(table.path()), "zstd".into(), 0);
    let latest = table.latest_snapshot().expect("reads").expect("a snapshot");
    let s = |v: &str| Datum::String(v.into());
    let decode = |b: &[u8]| binary_row::deserialize(types, b).expect("stats row");

    // The delta of the last commit: one partition, no nulls.
    let delta = io.read_manifest_list(&latest.delta_manifest_list).expect("reads");
    assert_eq!(delta.len(), 1);
    assert_eq!(decode(&delta[0].partition_stats.min_values), vec![s("2026-11-05")]);
    assert_eq!(decode(&delta[0].partition_stats.max_values), vec![s("2026-11-05")]);
    assert_eq!(delta[0].partition_stats.null_counts, Some(vec![Some(0)]));
    let changelog =
        io.read_manifest_list(latest.changelog_manifest_list.as_deref().expect("changelog")).expect("reads");
    assert_eq!(decode(&changelog[0].partition_stats.max_values), vec![s("2026-11-05")]);

    // The base, merged into one manifest (manifest.merge-min-count = 2): both earlier
    // commits. (Partition keys are part of the primary key, so never null here; nulls
    // are covered by spec::partition_stats' unit tests.)
    let base = io.read_manifest_list(&latest.base_manifest_list).expect("reads");
    assert_eq!(base.len(), 1, "{base:?}");
    let stats = &base[0].partition_stats;
    assert_eq!(decode(&stats.min_values), vec![s("2026-11-01")]);
    assert_eq!(decode(&stats.max_values), vec![s("2026-11-03")]);
    assert_eq!(stats.null_counts, Some(vec![Some(0)]));
}
