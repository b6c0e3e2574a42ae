//! Compaction end to end on a real SQLite catalog: rows read back by
//! iceberg-rust's scan (which applies position deletes) are the same before
//! and after a rewrite, fewer delete files remain, the snapshot is a
//! `replace` that keeps positions; a rewrite that loses the race to a commit
//! deleting rows of a file it replaces is fenced, one that loses it to an
//! unrelated commit goes in on the new head.

use std::collections::HashMap;

use iceberg::spec::{Operation as SnapshotOp, TableMetadata};

use super::row_delta_tests::{Lake, N, Row, appended, batch, commit, lake, region, rows, scan, summary_of};
use crate::catalog::LoadedTable;
use crate::table::commit::{CommitError, Fenced, Operation};
use crate::table::position::newest_in_ancestry;
use crate::table::position_delete::ReferencedFile;
use crate::table::rewrite::{CompactionPolicy, delete_file_count, plan};

/// Upserts ids 0..6 of file A (eu) into a new file, and deletes id N of file B
/// (us): A is 60% deleted, B 10%.
async fn upserted(lake: &Lake) -> (LoadedTable, Vec<Row>) {
    let (head, a, b) = appended(lake).await;
    let m = &head.metadata;
    let new_rows = rows(0..6, "eu", "new");
    let files = lake.data.write(m, region("eu"), &[batch(m, &new_rows)]).await.expect("new file");
    let doomed: Vec<(String, i64)> = (0..6).map(|p| (a.file_path().to_string(), p)).collect();
    let mut deletes = lake.deletes.write(m, &[ReferencedFile::from(&a)], doomed).await.expect("deletes of A");
    deletes.extend(
        lake.deletes
            .write(m, &[ReferencedFile::from(&b)], vec![(b.file_path().to_string(), 0)])
            .await
            .expect("delete of B"),
    );
    let c = commit(lake, &head, Operation::RowDelta { data_files: files, delete_files: deletes }).await;
    let mut expected: Vec<Row> =
        new_rows.into_iter().chain(rows(6..N, "eu", "a")).chain(rows(N + 1..2 * N, "us", "b")).collect();
    expected.sort();
    (c.table, expected)
}

fn keep_position(_: &TableMetadata) -> Result<HashMap<String, String>, Fenced> {
    Ok(HashMap::new())
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_keeps_every_row_and_drops_the_delete_files_it_applied() {
    let lake = lake().await;
    let (head, expected) = upserted(&lake).await;
    let file_io = lake.catalog.file_io();
    assert_eq!(scan(&lake.catalog, &head).await, expected, "the RowDelta reads as expected");
    assert_eq!(delete_file_count(file_io, &head.metadata).await.expect("count"), (3, 2));
    let policy = CompactionPolicy::default();
    let planned = plan(file_io, &head.metadata, &policy).await.expect("plan").expect("A passes the ratio threshold");
    assert_eq!(planned.data_files(), 1, "only A (60% deleted); B (10%) stays");
    let rewritten = planned.write(file_io, &head.metadata, &policy).await.expect("write");
    assert_eq!(rewritten.stats.rows_kept, (N - 6) as u64);
    assert_eq!(rewritten.stats.rows_dropped, 6);
    assert_eq!(rewritten.stats.delete_files_removed, 1, "A's delete file pointed into A only");
    // Every new row knows where it was: positions 6.. of A, in order.
    let sources: Vec<i64> = rewritten.outputs.iter().flat_map(|o| o.sources.iter().map(|s| s.1)).collect();
    assert_eq!(sources, (6..N).collect::<Vec<_>>());
    let done = lake.committer.commit(&head, rewritten.operation(), &keep_position).await.expect("rewrite commits");
    let (op, props) = summary_of(&done.table);
    assert_eq!(op, SnapshotOp::Replace);
    assert_eq!(props.get("deleted-data-files").map(String::as_str), Some("1"));
    assert_eq!(props.get("removed-delete-files").map(String::as_str), Some("1"));
    assert_eq!(props.get("total-delete-files").map(String::as_str), Some("1"));
    assert_eq!(scan(&lake.catalog, &done.table).await, expected, "same rows after the rewrite");
    assert_eq!(delete_file_count(file_io, &done.table.metadata).await.expect("count"), (3, 1));
    // The position the RowDelta carried is still found through the ancestry.
    assert_eq!(newest_in_ancestry(&done.table.metadata, "lakehouse.test").map(|(_, v)| v), Some("row-delta"));
    // Incremental readers see nothing new in the rewrite.
    let incs = crate::table::incremental::increments(
        file_io,
        &done.table.metadata,
        Some(head.metadata.current_snapshot_id().expect("id")),
        10,
    )
    .await
    .expect("increments");
    assert_eq!(incs.len(), 1);
    assert!(incs[0].files.is_empty(), "a replace snapshot adds no rows to read");
    // Nothing left past the threshold.
    assert!(plan(file_io, &done.table.metadata, &policy).await.expect("plan").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_losing_to_a_delete_of_its_rows_is_fenced_and_to_other_commits_goes_in() {
    let lake = lake().await;
    let (head, mut expected) = upserted(&lake).await;
    let file_io = lake.catalog.file_io();
    let policy = CompactionPolicy::default();
    let planned = plan(file_io, &head.metadata, &policy).await.expect("plan").expect("A is picked");
    let rewritten = planned.write(file_io, &head.metadata, &policy).await.expect("write");
    let a = rewritten.removed_data[0].clone();

    // A worker commits first, appending to the other partition: the rewrite
    // loses the compare-and-swap, re-validates on the new head, and goes in.
    let m = &head.metadata;
    let more = rows(100..103, "us", "c");
    let files = lake.data.write(m, region("us"), &[batch(m, &more)]).await.expect("file");
    let worker = commit(&lake, &head, Operation::RowDelta { data_files: files, delete_files: Vec::new() }).await;
    expected.extend(more);
    expected.sort();
    let done = lake.committer.commit(&head, rewritten.operation(), &keep_position).await.expect("rewrite commits");
    assert!(done.conflicts >= 1, "the rewrite was built on a stale head");
    assert_eq!(scan(&lake.catalog, &done.table).await, expected);

    // Again from the worker's head, but now the worker deletes a row of A
    // after the rewrite was planned: the rewrite would resurrect it.
    let lake = self::lake().await;
    let (head, _) = upserted(&lake).await;
    let planned = plan(file_io_of(&lake), &head.metadata, &policy).await.expect("plan").expect("A is picked");
    let rewritten = planned.write(file_io_of(&lake), &head.metadata, &policy).await.expect("write");
    let a2 = rewritten.removed_data[0].clone();
    assert_ne!(a.file_path(), a2.file_path());
    let d = lake
        .deletes
        .write(&head.metadata, &[ReferencedFile::from(&a2)], vec![(a2.file_path().to_string(), 8)])
        .await
        .expect("delete");
    let worker2 = commit(&lake, &head, Operation::RowDelta { data_files: Vec::new(), delete_files: d }).await;
    let before = scan(&lake.catalog, &worker2.table).await;
    let err = lake.committer.commit(&head, rewritten.operation(), &keep_position).await.expect_err("fenced");
    assert!(matches!(&err, CommitError::Fenced { reason, .. } if reason.contains(a2.file_path())), "{err}");
    let now = lake.catalog.require_table(&head.name).await.expect("table");
    assert_eq!(now.metadata.current_snapshot_id(), worker2.table.metadata.current_snapshot_id(), "nothing published");
    assert_eq!(scan(&lake.catalog, &now).await, before);
    // Planned again on the new head, it goes in with the worker's delete applied.
    let planned = plan(file_io_of(&lake), &now.metadata, &policy).await.expect("plan").expect("A is picked");
    let rewritten = planned.write(file_io_of(&lake), &now.metadata, &policy).await.expect("write");
    let done = lake.committer.commit(&now, rewritten.operation(), &keep_position).await.expect("rewrite commits");
    assert_eq!(scan(&lake.catalog, &done.table).await, before);
    drop(worker);
}

fn file_io_of(lake: &Lake) -> &iceberg::io::FileIO {
    lake.catalog.file_io()
}

/// Appends `n` files of N rows each to the eu partition and two to us, one
/// commit per file, as a worker's commit intervals do.
async fn many_small_files(lake: &Lake, n: i64) -> (LoadedTable, Vec<Row>) {
    let (mut head, _, _) = appended(lake).await;
    let mut expected: Vec<Row> = rows(0..N, "eu", "a").into_iter().chain(rows(N..2 * N, "us", "b")).collect();
    for k in 1..n {
        let m = &head.metadata;
        let (ids, r) = if k < n - 1 { (k * 100..k * 100 + N, "eu") } else { (k * 100..k * 100 + N, "us") };
        let new_rows = rows(ids, r, "s");
        let files = lake.data.write(m, region(r), &[batch(m, &new_rows)]).await.expect("file");
        head = commit(lake, &head, Operation::Append { files }).await.table;
        expected.extend(new_rows);
    }
    expected.sort();
    (head, expected)
}

async fn data_files_by_partition(lake: &Lake, head: &LoadedTable) -> HashMap<String, usize> {
    let file_io = lake.catalog.file_io();
    let snapshot = head.metadata.current_snapshot().expect("snapshot");
    let mut out = HashMap::new();
    for m in crate::table::commit::manifests_of(file_io, &head.metadata, snapshot).await.expect("manifests") {
        for e in m.load_manifest(file_io).await.expect("manifest").entries() {
            if e.status() != iceberg::spec::ManifestStatus::Deleted {
                let p = ["eu", "us"].into_iter().find(|r| e.data_file().partition() == &region(r)).expect("eu or us");
                *out.entry(p.to_string()).or_insert(0) += 1;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn small_files_of_a_partition_are_merged_without_deletes() {
    let lake = lake().await;
    // eu: A and 6 more small files; us: B and one more.
    let (head, expected) = many_small_files(&lake, 8).await;
    let file_io = lake.catalog.file_io();
    assert_eq!(data_files_by_partition(&lake, &head).await, HashMap::from([("eu".into(), 7), ("us".into(), 2)]));
    // Off: no small file is small, or too few go together.
    let props = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
    for (k, v) in [("lakehouse.compaction.min-file-size-bytes", "0"), ("lakehouse.compaction.min-input-files", "8")] {
        let off = CompactionPolicy::from_properties(&props(k, v)).expect("policy");
        assert!(plan(file_io, &head.metadata, &off).await.expect("plan").is_none(), "{k} = {v}: nothing to merge");
    }
    let bad = CompactionPolicy::from_properties(&props("lakehouse.compaction.min-input-files", "1"));
    assert!(bad.is_err(), "merging one file is refused as a policy");

    let policy = CompactionPolicy::default();
    let planned = plan(file_io, &head.metadata, &policy).await.expect("plan").expect("eu's small files are merged");
    assert_eq!(planned.data_files(), 7, "every eu file (us has two, under min-input-files)");
    let rewritten = planned.write(file_io, &head.metadata, &policy).await.expect("write");
    assert_eq!(rewritten.outputs.len(), 1, "into one file");
    assert_eq!((rewritten.stats.rows_kept, rewritten.stats.rows_dropped), (7 * N as u64, 0));
    let done = lake.committer.commit(&head, rewritten.operation(), &keep_position).await.expect("rewrite commits");
    assert_eq!(summary_of(&done.table).0, SnapshotOp::Replace);
    assert_eq!(scan(&lake.catalog, &done.table).await, expected, "same rows after merging");
    assert_eq!(data_files_by_partition(&lake, &done.table).await, HashMap::from([("eu".into(), 1), ("us".into(), 2)]));
    assert!(plan(file_io, &done.table.metadata, &policy).await.expect("plan").is_none(), "nothing left to merge");
}

/// A partition gains one small file per commit and is compacted after each:
/// merging is size-tiered, so rows are rewritten O(log n) times, not O(n),
/// and the partition keeps O(log n) files.
#[test]
fn small_file_merging_is_size_tiered() {
    use crate::table::rewrite::small_file_group;
    let (commits, size, min_input) = (4096u64, 10u64, 5usize);
    let mut files: Vec<u64> = Vec::new();
    let (mut rewritten, mut most_files) = (0u64, 0usize);
    for _ in 0..commits {
        files.push(size);
        let group = small_file_group(&files, (0, 0), min_input, u64::MAX);
        if !group.is_empty() {
            assert!(group.len() >= min_input);
            let merged: u64 = group.iter().map(|&i| files[i]).sum();
            rewritten += merged;
            let mut i = 0;
            files.retain(|_| {
                i += 1;
                !group.contains(&(i - 1))
            });
            files.push(merged);
        }
        most_files = most_files.max(files.len());
    }
    assert_eq!(files.iter().sum::<u64>(), commits * size, "no bytes lost");
    let written = commits * size;
    let log = (commits as f64).log2();
    // Merging everything each time would rewrite ~commits/min_input × the
    // partition's average size: about 400× what was written here.
    assert!((rewritten as f64) <= written as f64 * (log + 1.0), "{rewritten} bytes rewritten for {written} written");
    assert!(most_files as f64 <= min_input as f64 + 2.0 * log, "{most_files} files at most");
    // A budget caps the group; files beyond it wait.
    assert_eq!(small_file_group(&[10; 8], (0, 0), 5, 60).len(), 6);
    assert!(small_file_group(&[10; 8], (0, 0), 5, 40).is_empty(), "four fit: under min-input-files");
    // What a partition rewrites for its deletes counts towards both rules.
    assert_eq!(small_file_group(&[10, 10, 30], (20, 2), 5, u64::MAX).len(), 3);
    assert_eq!(small_file_group(&[10, 10, 100], (20, 2), 5, u64::MAX), Vec::<usize>::new());
}
