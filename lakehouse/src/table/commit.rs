//! The commit layer: one atomic snapshot per call, published by compare-and-swap.
//!
//! iceberg-rust's `Transaction::commit` silently rebases and retries on
//! conflict, which would skip offset fencing. Here the loop is explicit:
//! check position → build snapshot on the current head → CAS the catalog
//! pointer; on a lost CAS reload the head and run the position check again.
//! A writer that finds someone else already past its position gets
//! [`CommitError::Fenced`] and must discard its batch.
//!
//! An [`Operation`] only decides which manifests the new snapshot adds on top
//! of the head's (which are all carried forward) and what its summary says;
//! the publish step is the same for all of them:
//!
//! - [`Operation::Append`]: one data manifest of new data files.
//! - [`Operation::RowDelta`]: a data manifest of new data files and a delete
//!   manifest of position-delete files (written by
//!   [`position_delete`](crate::table::position_delete)), either may be
//!   absent. Both manifests' entries inherit the new snapshot's sequence
//!   number (`last-sequence-number + 1`), so the deletes apply to every data
//!   file committed before or with them and to none committed later.
//!
//! Every commit also keeps the table bounded ([`crate::table::merge`],
//! [`crate::table::retention`], [`crate::table::cleanup`]): the carried
//! manifests are merged once there are many, snapshots past the table's
//! retention are removed in the same metadata file (the compare-and-swap
//! publishes both at once), and once published, the files only the removed
//! snapshots reached are deleted. A maintenance step that cannot run (a
//! property that does not parse, an unreadable manifest) is logged and
//! counted, and the commit goes in without it.
//!
//! - [`Operation::Rewrite`]: compaction ([`crate::table::rewrite`]); the
//!   manifests holding the removed files are rewritten with those entries
//!   `DELETED` ([`crate::table::rewrite_commit`]), after checking that no
//!   delete committed since the rewrite's base points into them.
//!
//! Overwrite and rollback would be further variants. A RowDelta does not
//! check that the data files its deletes reference are still live (Java's
//! `validateDataFilesExist`): the workers that write deletes run compaction
//! between their own commits, and the rewrite is the side that validates.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::MetadataLocation;
use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestFile, ManifestList,
    ManifestListWriter, ManifestWriterBuilder, Operation as SnapshotOperation, Snapshot, SnapshotReference,
    SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata, TableMetadataBuilder,
    UNASSIGNED_SEQUENCE_NUMBER,
};

use crate::catalog::{CatalogError, LoadedTable, SqlCatalog};
use crate::error::ErrorKind;
use crate::table::cleanup::{Cleaned, ListCache, delete_unreachable};
use crate::table::clock::{Clock, SystemClock};
use crate::table::merge::{MergePolicy, Merged, merge};
use crate::table::retention::{self, RefHeads, RetentionPolicy};
use crate::table::rewrite::RewriteFiles;
use crate::table::rewrite_commit::{RemoveError, RemovedFiles};
use crate::telemetry::names;

/// What a commit does to the table.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Add data files; nothing is removed.
    Append { files: Vec<DataFile> },
    /// Row-level changes in one snapshot (Iceberg's RowDelta): `data_files`
    /// hold new and updated rows, `delete_files` are position-delete files
    /// for the rows removed or replaced. Either list may be empty, not both.
    /// Equality deletes are refused (pyiceberg 0.12 cannot read them).
    RowDelta { data_files: Vec<DataFile>, delete_files: Vec<DataFile> },
    /// Compaction ([`crate::table::rewrite`]): the added data files replace
    /// the removed data and delete files, changing no row. Validated on every
    /// head tried: the removed files must still be live, and no delete file
    /// committed after the rewrite's base may point into a removed data file.
    Rewrite(RewriteFiles),
}

impl Operation {
    /// The snapshot's `operation`, as Java Iceberg's RowDelta chooses it:
    /// data only is an `append`, deletes only a `delete`, both an `overwrite`.
    pub fn snapshot_operation(&self) -> SnapshotOperation {
        match self {
            Operation::Append { .. } => SnapshotOperation::Append,
            Operation::Rewrite(_) => SnapshotOperation::Replace,
            Operation::RowDelta { data_files, delete_files } => {
                match (data_files.is_empty(), delete_files.is_empty()) {
                    (_, true) => SnapshotOperation::Append,
                    (true, false) => SnapshotOperation::Delete,
                    (false, false) => SnapshotOperation::Overwrite,
                }
            }
        }
    }

    /// `(data files, delete files)`.
    fn into_files(self) -> (Vec<DataFile>, Vec<DataFile>) {
        match self {
            Operation::Append { files } => (files, Vec::new()),
            Operation::RowDelta { data_files, delete_files } => (data_files, delete_files),
            Operation::Rewrite(r) => (r.added, Vec::new()),
        }
    }
}

/// The caller's view of why its position no longer matches the table.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Fenced(pub String);

/// Runs against the table head before every attempt. `Ok` carries the
/// snapshot-summary properties to write on top of *this* head (positions are
/// merged with the head's, which may have moved); `Err` fences the writer.
pub trait PositionCheck: Fn(&TableMetadata) -> Result<HashMap<String, String>, Fenced> + Send + Sync {}
impl<F: Fn(&TableMetadata) -> Result<HashMap<String, String>, Fenced> + Send + Sync> PositionCheck for F {}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("commit to {table} fenced: {reason}")]
    Fenced { table: String, reason: String },
    #[error("commit to {table} lost the compare-and-swap {attempts} times in a row; giving up")]
    TooManyConflicts { table: String, attempts: u32 },
    #[error("commit to {table}: {source}")]
    Catalog { table: String, source: CatalogError },
    #[error("commit to {table} while {doing}: {source}")]
    Iceberg { table: String, doing: &'static str, source: iceberg::Error },
    #[error("commit to {table}: nothing to commit")]
    Empty { table: String },
    #[error("commit to {table}: making the written files durable: {source}")]
    Durability { table: String, source: std::io::Error },
    #[error("commit to {table}: cannot commit {path}: {reason}")]
    InvalidFile { table: String, path: String, reason: String },
    #[error("commit to {table}: {reason}")]
    Unsupported { table: String, reason: String },
}

impl CommitError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommitError::Fenced { .. } => ErrorKind::Fenced,
            CommitError::TooManyConflicts { .. } => ErrorKind::Transient,
            CommitError::Catalog { source, .. } => source.kind(),
            CommitError::Iceberg { .. } => ErrorKind::Transient,
            CommitError::Empty { .. } | CommitError::InvalidFile { .. } => ErrorKind::Internal,
            CommitError::Durability { .. } => ErrorKind::Transient,
            CommitError::Unsupported { .. } => ErrorKind::Data,
        }
    }
}

/// What a successful commit produced.
#[derive(Debug, Clone)]
pub struct Committed {
    pub table: LoadedTable,
    pub snapshot_id: i64,
    /// Lost compare-and-swaps before this one won.
    pub conflicts: u32,
    pub duration: Duration,
}

/// Publishes snapshots on one catalog.
#[derive(Clone, Debug)]
pub struct Committer {
    catalog: SqlCatalog,
    max_attempts: u32,
    clock: Arc<dyn Clock>,
    lists: ListCache,
    refs: RefCache,
}

/// Each table's branch and tag heads as of one metadata file. Reading them
/// from iceberg-rust means serializing the whole metadata; a commit instead
/// derives the published metadata's refs from its head's (only `main` moves:
/// an expiry never removes a ref head), so they are read at most once per
/// head that came from elsewhere (a load, another writer's commit), and only
/// when an expiry is planned.
#[derive(Debug, Clone, Default)]
struct RefCache(Arc<std::sync::Mutex<HashMap<String, (String, Arc<RefHeads>)>>>);

impl RefCache {
    fn of(&self, head: &LoadedTable) -> Result<Arc<RefHeads>, String> {
        if let Some(refs) = self.cached(head) {
            return Ok(refs);
        }
        let refs = Arc::new(retention::ref_heads(&head.metadata)?);
        self.insert(head, refs.clone());
        Ok(refs)
    }

    fn cached(&self, head: &LoadedTable) -> Option<Arc<RefHeads>> {
        let cache = self.0.lock().expect("ref cache lock");
        cache.get(&head.name.to_string()).filter(|(at, _)| *at == head.metadata_location).map(|(_, r)| r.clone())
    }

    fn insert(&self, table: &LoadedTable, refs: Arc<RefHeads>) {
        self.0.lock().expect("ref cache lock").insert(table.name.to_string(), (table.metadata_location.clone(), refs));
    }

    /// `published` is `head` plus a snapshot that `main` now points at.
    fn advance(&self, head: &LoadedTable, published: &LoadedTable, snapshot_id: i64) {
        if let Some(refs) = self.cached(head) {
            self.insert(published, Arc::new(with_main(&refs, snapshot_id)));
        }
    }
}

/// `refs` with `main` at `snapshot_id`, in [`retention::ref_heads`]'s order.
fn with_main(refs: &RefHeads, snapshot_id: i64) -> RefHeads {
    let mut out: RefHeads = refs.iter().filter(|(name, _)| name != MAIN_BRANCH).cloned().collect();
    out.push((MAIN_BRANCH.to_string(), snapshot_id));
    out.sort();
    out
}

impl Committer {
    pub fn new(catalog: SqlCatalog) -> Self {
        Self {
            catalog,
            max_attempts: 20,
            clock: Arc::new(SystemClock),
            lists: ListCache::default(),
            refs: RefCache::default(),
        }
    }

    /// Snapshot timestamps and expiry age come from `clock` (tests, benchmarks).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    #[cfg(test)]
    pub(crate) fn list_cache(&self) -> &ListCache {
        &self.lists
    }

    pub fn catalog(&self) -> &SqlCatalog {
        &self.catalog
    }

    /// Commits `operation` on top of the table head, which starts at `base`
    /// and is reloaded after every lost compare-and-swap. `position` runs on
    /// each head before building on it and gives the summary properties.
    pub async fn commit(
        &self,
        base: &LoadedTable,
        operation: Operation,
        position: &dyn PositionCheck,
    ) -> Result<Committed, CommitError> {
        let started = Instant::now();
        let table = base.name.to_string();
        let ice = |doing: &'static str| {
            let table = table.clone();
            move |source| CommitError::Iceberg { table: table.clone(), doing, source }
        };
        let kind = operation.snapshot_operation();
        let rewrite = match &operation {
            Operation::Rewrite(r) => Some(RemovedFiles::of(r)),
            _ => None,
        };
        let (data_files, delete_files) = operation.into_files();
        if data_files.is_empty() && delete_files.is_empty() && rewrite.as_ref().is_none_or(RemovedFiles::is_empty) {
            return Err(CommitError::Empty { table });
        }
        if let Some(refused) = refusal(&table, &base.metadata, &data_files, &delete_files) {
            return Err(refused);
        }
        let file_io = self.catalog.file_io().clone();
        let mut head = base.clone();
        let snapshot_id = new_snapshot_id(&head.metadata);
        let commit_uuid = uuid::Uuid::new_v4();
        let metadata_dir = format!("{}/metadata", head.metadata.location());

        // The manifests of added files are written once and reused by every
        // attempt: entries inherit snapshot id and sequence number from the
        // manifest list, which each attempt writes anew.
        let mut added_manifests = Vec::new();
        for (content, files) in
            [(ManifestContentType::Data, &data_files), (ManifestContentType::Deletes, &delete_files)]
        {
            if files.is_empty() {
                continue;
            }
            let path = format!("{metadata_dir}/{commit_uuid}-m{}.avro", added_manifests.len());
            added_manifests.push(
                write_manifest(&file_io, &head.metadata, &path, snapshot_id, content, files)
                    .await
                    .map_err(ice("writing manifest"))?,
            );
        }

        // Whether `head` was just read from the catalog (a fence verdict is
        // only final against the latest head, not a cached one).
        let mut fresh = false;
        let mut conflicts = 0;
        for _ in 0..self.max_attempts {
            let properties = match position(&head.metadata) {
                Ok(p) => p,
                Err(Fenced(reason)) if fresh => return Err(CommitError::Fenced { table, reason }),
                Err(Fenced(_)) => {
                    head = self.reload(&head, &table).await?;
                    fresh = true;
                    continue;
                }
            };
            let attempt = conflicts;
            if head.metadata.snapshots().any(|s| s.snapshot_id() == snapshot_id) {
                // Astronomically unlikely; treated as a conflict we cannot resolve here.
                return Err(CommitError::TooManyConflicts { table, attempts: conflicts });
            }
            let metadata = &head.metadata;
            let parent = metadata.current_snapshot();
            let sequence_number = metadata.next_sequence_number();

            let carried = match parent {
                Some(p) => self
                    .lists
                    .entries(&file_io, metadata, p.manifest_list())
                    .await
                    .map_err(ice("reading parent manifest list"))?,
                None => Vec::new(),
            };
            // A rewrite marks its removed files DELETED in the manifests holding them.
            let (carried, removal) = match &rewrite {
                Some(r) => {
                    let path = |i: usize| format!("{metadata_dir}/{commit_uuid}-m{attempt}-rewrite-{i}.avro");
                    match r.apply(&file_io, metadata, carried, snapshot_id, path).await {
                        Ok(done) => (done.manifests.clone(), Some(done)),
                        Err(RemoveError::Iceberg(source)) => {
                            return Err(CommitError::Iceberg {
                                table: table.clone(),
                                doing: "rewriting manifests",
                                source,
                            });
                        }
                        Err(RemoveError::Conflict(reason)) => {
                            return Err(CommitError::Fenced { table: table.clone(), reason });
                        }
                    }
                }
                None => (carried, None),
            };
            let policies = policies(&table, metadata);
            let Merged { mut manifests, written: merged } = match &policies {
                Some((merge_policy, _)) => {
                    let path = |i: usize| format!("{metadata_dir}/{commit_uuid}-m{attempt}-merged-{i}.avro");
                    match merge(&file_io, metadata, carried.clone(), snapshot_id, merge_policy, path).await {
                        Ok(m) => m,
                        Err(e) => {
                            maintenance_error(&table, "merge", &e.to_string());
                            Merged { manifests: carried, written: Vec::new() }
                        }
                    }
                }
                None => Merged { manifests: carried, written: Vec::new() },
            };
            manifests.extend(added_manifests.iter().cloned());
            let list_path = format!("{metadata_dir}/snap-{snapshot_id}-{attempt}-{commit_uuid}.avro");
            let list_out = file_io.new_output(&list_path).map_err(ice("creating manifest list"))?;
            let mut list = ManifestListWriter::v2(
                list_out.writer().await.map_err(ice("opening manifest list"))?,
                snapshot_id,
                parent.map(|p| p.snapshot_id()),
                sequence_number,
            );
            let listed = as_listed(manifests.clone(), sequence_number);
            list.add_manifests(manifests.into_iter()).map_err(ice("adding manifests to list"))?;
            list.close().await.map_err(ice("writing manifest list"))?;

            // Positions are mirrored into the table properties, where they survive an
            // outside rewrite followed by the expiry of our snapshots (table/position.rs).
            let mirrored: HashMap<String, String> = properties
                .iter()
                .filter(|(k, _)| crate::table::position::is_position_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let added = data_files.iter().chain(&delete_files);
            let mut summary = summarize(metadata, parent.map(|p| p.summary()), kind.clone(), added, properties);
            if let Some(r) = &removal {
                r.summarize(&mut summary);
            }
            let now_ms = self.clock.now_ms();
            let snapshot = Snapshot::builder()
                .with_snapshot_id(snapshot_id)
                .with_parent_snapshot_id(parent.map(|p| p.snapshot_id()))
                .with_sequence_number(sequence_number)
                .with_timestamp_ms(now_ms.max(metadata.last_updated_ms()))
                .with_manifest_list(list_path.clone())
                .with_summary(summary)
                .with_schema_id(metadata.current_schema_id())
                .build();
            let build = |expire: &[i64]| {
                TableMetadataBuilder::new_from_metadata(metadata.as_ref().clone(), Some(head.metadata_location.clone()))
                    .add_snapshot(snapshot.clone())
                    .and_then(|b| if mirrored.is_empty() { Ok(b) } else { b.set_properties(mirrored.clone()) })
                    .and_then(|b| {
                        b.set_ref(
                            MAIN_BRANCH,
                            SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None)),
                        )
                    })
                    .map(|b| if expire.is_empty() { b } else { b.remove_snapshots(expire) })
                    .and_then(|b| b.build())
            };
            // Expiry is planned on the head, so the metadata is built once. The
            // new snapshot only adds reasons to keep its ancestors (the newest N,
            // the newest carrying a position key, `main`'s head), so this keeps
            // what a plan on the new metadata keeps, and at most one snapshot more
            // until the next commit.
            let expire = match &policies {
                Some((_, retention)) => {
                    to_expire(&table, metadata, || self.refs.of(&head).map(|r| r.to_vec()), retention, now_ms)
                }
                None => Vec::new(),
            };
            let built = build(&expire).map_err(ice("building table metadata"))?;
            let expired_logs: Vec<String> =
                built.expired_metadata_logs.iter().map(|l| l.metadata_file.clone()).collect();
            let new_metadata = built.metadata;

            let published = self
                .publish(
                    &head,
                    new_metadata,
                    &list_path,
                    attempt,
                    &data_files,
                    &delete_files,
                    &added_manifests,
                    &merged,
                )
                .await?;
            if let Some(table_now) = published {
                self.refs.advance(&head, &table_now, snapshot_id);
                self.lists.published(&table_now.metadata, &list_path, listed);
                if !merged.is_empty() {
                    metrics::counter!(names::MANIFESTS_MERGED, "table" => table.clone()).increment(merged.len() as u64);
                }
                let delete_metadata = policies.as_ref().is_some_and(|(_, r)| r.delete_metadata_after_commit);
                self.clean_up(
                    &table,
                    &head.metadata,
                    &table_now.metadata,
                    if delete_metadata { &expired_logs } else { &[] },
                )
                .await;
                return Ok(Committed { table: table_now, snapshot_id, conflicts, duration: started.elapsed() });
            }
            // Lost the race: our metadata file, manifest list and merged manifests are garbage.
            let _ = file_io.delete(&list_path).await;
            for m in merged.iter().chain(removal.iter().flat_map(|r| &r.written)) {
                let _ = file_io.delete(&m.manifest_path).await;
            }
            metrics::counter!(crate::telemetry::names::COMMIT_CONFLICTS, "table" => table.clone()).increment(1);
            tracing::info!(table = %table, attempt, "commit lost the compare-and-swap; reloading head");
            head = self.reload(&head, &table).await?;
            fresh = true;
            conflicts += 1;
        }
        Err(CommitError::TooManyConflicts { table, attempts: self.max_attempts })
    }
}

impl Committer {
    /// Writes `new_metadata` as the next metadata file after `head`, makes
    /// everything it reaches durable and moves the catalog pointer to it.
    /// `None` if another writer moved the pointer first (the metadata file is
    /// deleted again).
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        head: &LoadedTable,
        new_metadata: TableMetadata,
        list_path: &str,
        attempt: u32,
        data_files: &[DataFile],
        delete_files: &[DataFile],
        added_manifests: &[ManifestFile],
        merged: &[ManifestFile],
    ) -> Result<Option<LoadedTable>, CommitError> {
        let table = head.name.to_string();
        let ice = |doing: &'static str| {
            let table = table.clone();
            move |source| CommitError::Iceberg { table: table.clone(), doing, source }
        };
        let file_io = self.catalog.file_io();
        let location = MetadataLocation::from_str(&head.metadata_location)
            .map_err(ice("parsing current metadata location"))?
            .with_next_version()
            .with_new_metadata(&new_metadata);
        debug_assert_ne!(
            location.to_string(),
            head.metadata_location,
            "a commit never rewrites the current metadata file"
        );
        new_metadata.write_to(file_io, &location).await.map_err(ice("writing metadata file"))?;
        let new_location = location.to_string();
        // Everything the new pointer makes reachable is durable before it moves
        // (data files and the added manifests once, on the first attempt).
        let mut reachable = vec![new_location.clone(), list_path.to_string()];
        if attempt == 0 {
            reachable.extend(data_files.iter().chain(delete_files).map(|f| f.file_path().to_string()));
            reachable.extend(added_manifests.iter().map(|m| m.manifest_path.clone()));
        }
        reachable.extend(merged.iter().map(|m| m.manifest_path.clone()));
        crate::table::durable::sync_all(&reachable)
            .await
            .map_err(|e| CommitError::Durability { table: table.clone(), source: e })?;
        crate::table::fault::inject(crate::table::fault::Point::BeforeSwap);
        let swapped = self
            .catalog
            .swap_metadata(&head.name, &head.metadata_location, &new_location)
            .await
            .map_err(|source| CommitError::Catalog { table: table.clone(), source })?;
        if !swapped {
            let _ = file_io.delete(&new_location).await;
            return Ok(None);
        }
        crate::table::fault::inject(crate::table::fault::Point::AfterSwap);
        Ok(Some(LoadedTable {
            name: head.name.clone(),
            metadata_location: new_location,
            metadata: Arc::new(new_metadata),
        }))
    }

    /// After a published commit: deletes what the snapshots it removed alone
    /// reached, and `expired_metadata`. Failures are logged and counted: the
    /// files stay as orphans, the commit stands.
    async fn clean_up(&self, table: &str, before: &TableMetadata, after: &TableMetadata, expired_metadata: &[String]) {
        let removed = before.snapshots().filter(|s| after.snapshot_by_id(s.snapshot_id()).is_none()).count();
        if removed == 0 && expired_metadata.is_empty() {
            return;
        }
        if removed > 0 {
            metrics::counter!(names::SNAPSHOTS_EXPIRED, "table" => table.to_string()).increment(removed as u64);
        }
        match delete_unreachable(self.catalog.file_io(), before, after, expired_metadata, &self.lists).await {
            Ok(c) => {
                count_deleted(table, &c);
                tracing::debug!(table, snapshots = removed, ?c, "expired snapshots cleaned up");
            }
            Err(e) => maintenance_error(table, "cleanup", &e),
        }
    }

    /// A commit that changes the metadata only (properties, expiry), on the
    /// head starting at `base`, reloaded after every lost compare-and-swap.
    /// `edit` returns `None` when there is nothing to change on that head.
    async fn commit_metadata(
        &self,
        base: &LoadedTable,
        edit: &MetadataEdit<'_>,
    ) -> Result<Option<(LoadedTable, Vec<String>)>, CommitError> {
        let table = base.name.to_string();
        let mut head = base.clone();
        for _ in 0..self.max_attempts {
            let builder = TableMetadataBuilder::new_from_metadata(
                head.metadata.as_ref().clone(),
                Some(head.metadata_location.clone()),
            );
            let Some(builder) = edit(&head.metadata, builder)? else { return Ok(None) };
            let err = |source| CommitError::Iceberg { table: table.clone(), doing: "building table metadata", source };
            let built = builder.build().map_err(err)?;
            let expired: Vec<String> = built.expired_metadata_logs.iter().map(|l| l.metadata_file.clone()).collect();
            let now = self.clock.now_ms().max(head.metadata.last_updated_ms());
            let metadata = stamped(built.metadata, now).map_err(err)?;
            if let Some(done) = self.publish(&head, metadata, "", 1, &[], &[], &[], &[]).await? {
                return Ok(Some((done, expired)));
            }
            metrics::counter!(names::COMMIT_CONFLICTS, "table" => table.clone()).increment(1);
            head = self.reload(&head, &table).await?;
        }
        Err(CommitError::TooManyConflicts { table, attempts: self.max_attempts })
    }

    /// Sets table properties (a metadata-only commit).
    #[allow(clippy::result_large_err)] // the edit closure returns the commit error as is
    pub async fn set_properties(
        &self,
        base: &LoadedTable,
        properties: HashMap<String, String>,
    ) -> Result<LoadedTable, CommitError> {
        let table = base.name.to_string();
        let edit = |m: &TableMetadata, b: TableMetadataBuilder| {
            if properties.iter().all(|(k, v)| m.properties().get(k) == Some(v)) {
                return Ok(None);
            }
            b.set_properties(properties.clone()).map(Some).map_err(|source| CommitError::Iceberg {
                table: table.clone(),
                doing: "setting properties",
                source,
            })
        };
        self.finish_metadata_commit(base, &edit).await
    }

    /// Points branch or tag `name` at `reference`'s snapshot (a metadata-only
    /// commit). Expiry never removes a branch or tag head.
    #[allow(clippy::result_large_err)] // the edit closure returns the commit error as is
    pub async fn set_ref(
        &self,
        base: &LoadedTable,
        name: &str,
        reference: SnapshotReference,
    ) -> Result<LoadedTable, CommitError> {
        let table = base.name.to_string();
        let edit = |m: &TableMetadata, b: TableMetadataBuilder| {
            if m.snapshot_for_ref(name).is_some_and(|s| s.snapshot_id() == reference.snapshot_id) {
                return Ok(None);
            }
            b.set_ref(name, reference.clone()).map(Some).map_err(|source| CommitError::Iceberg {
                table: table.clone(),
                doing: "setting a ref",
                source,
            })
        };
        self.finish_metadata_commit(base, &edit).await
    }

    /// Removes table properties (a metadata-only commit).
    #[allow(clippy::result_large_err)] // the edit closure returns the commit error as is
    pub async fn remove_properties(&self, base: &LoadedTable, keys: Vec<String>) -> Result<LoadedTable, CommitError> {
        let table = base.name.to_string();
        let edit = |m: &TableMetadata, b: TableMetadataBuilder| {
            if !keys.iter().any(|k| m.properties().contains_key(k)) {
                return Ok(None);
            }
            b.remove_properties(&keys).map(Some).map_err(|source| CommitError::Iceberg {
                table: table.clone(),
                doing: "removing properties",
                source,
            })
        };
        self.finish_metadata_commit(base, &edit).await
    }

    async fn finish_metadata_commit(
        &self,
        base: &LoadedTable,
        edit: &MetadataEdit<'_>,
    ) -> Result<LoadedTable, CommitError> {
        let table = base.name.to_string();
        match self.commit_metadata(base, edit).await? {
            Some((done, expired)) => {
                let delete = RetentionPolicy::from_properties(done.metadata.properties())
                    .is_ok_and(|r| r.delete_metadata_after_commit);
                if delete && !expired.is_empty() {
                    self.clean_up(&table, &done.metadata, &done.metadata, &expired).await;
                }
                Ok(done)
            }
            None => self.reload(base, &table).await,
        }
    }

    /// Expires snapshots of `base` older than `cutoff_ms`, keeping the newest
    /// `retain_last` of the current ancestry and every protected snapshot
    /// ([`retention::plan`]), then deletes what only they reached. With
    /// `dry_run`, only plans. Refused when the table has `gc.enabled=false`.
    #[allow(clippy::result_large_err)] // the edit closure returns the commit error as is
    pub async fn expire(
        &self,
        base: &LoadedTable,
        cutoff_ms: i64,
        retain_last: usize,
        dry_run: bool,
    ) -> Result<(retention::ExpiryPlan, Cleaned), CommitError> {
        let table = base.name.to_string();
        let unsupported = |reason: String| CommitError::Unsupported { table: table.clone(), reason };
        let policy = RetentionPolicy::from_properties(base.metadata.properties()).map_err(unsupported)?;
        if !policy.gc_enabled {
            return Err(unsupported("gc.enabled is false: snapshots are not expired".into()));
        }
        let first = retention::plan(&base.metadata, cutoff_ms, retain_last).map_err(unsupported)?;
        if dry_run || first.expire.is_empty() {
            return Ok((first, Cleaned::default()));
        }
        // The plan that was published, with the head it was made on.
        let planned = std::sync::Mutex::new((first.clone(), base.metadata.as_ref().clone()));
        let edit = |m: &TableMetadata, b: TableMetadataBuilder| {
            let plan = retention::plan(m, cutoff_ms, retain_last)
                .map_err(|reason| CommitError::Unsupported { table: table.clone(), reason })?;
            if plan.expire.is_empty() {
                return Ok(None);
            }
            let b = b.remove_snapshots(&plan.expire);
            *planned.lock().expect("plan lock") = (plan, m.clone());
            Ok(Some(b))
        };
        let Some((done, expired_logs)) = self.commit_metadata(base, &edit).await? else {
            return Ok((retention::ExpiryPlan::default(), Cleaned::default()));
        };
        let (plan, before) = planned.into_inner().expect("plan lock");
        let logs = if policy.delete_metadata_after_commit { expired_logs } else { Vec::new() };
        metrics::counter!(names::SNAPSHOTS_EXPIRED, "table" => table.clone()).increment(plan.expire.len() as u64);
        let cleaned =
            delete_unreachable(self.catalog.file_io(), &before, &done.metadata, &logs, &self.lists).await.map_err(
                |reason| CommitError::Unsupported { table: table.clone(), reason: format!("cleanup: {reason}") },
            )?;
        count_deleted(&table, &cleaned);
        Ok((plan, cleaned))
    }

    /// The table's current head, as the catalog points at it now.
    async fn reload(&self, head: &LoadedTable, table: &str) -> Result<LoadedTable, CommitError> {
        self.catalog
            .require_table(&head.name)
            .await
            .map_err(|source| CommitError::Catalog { table: table.to_string(), source })
    }
}

/// Why the manifests could not carry these files correctly, if they could
/// not: a file of the wrong content for its list, equality deletes, a
/// partition of the wrong arity (iceberg's manifest writer panics on it), and
/// delete files on a table whose data files may be in another partition spec
/// than the one the delete manifest is written with (a position delete
/// applies only within its data file's spec, so it would silently not apply).
fn refusal(
    table: &str,
    metadata: &TableMetadata,
    data_files: &[DataFile],
    delete_files: &[DataFile],
) -> Option<CommitError> {
    let invalid = |f: &DataFile, reason: &str| CommitError::InvalidFile {
        table: table.to_string(),
        path: f.file_path().to_string(),
        reason: reason.to_string(),
    };
    let unsupported = |reason: String| CommitError::Unsupported { table: table.to_string(), reason };
    if let Some(f) = data_files.iter().find(|f| f.content_type() != DataContentType::Data) {
        return Some(invalid(f, "a delete file among the data files"));
    }
    for f in delete_files {
        match f.content_type() {
            DataContentType::PositionDeletes => {}
            DataContentType::Data => return Some(invalid(f, "a data file among the delete files")),
            DataContentType::EqualityDeletes => {
                return Some(invalid(f, "equality deletes are not supported (pyiceberg 0.12 cannot read them)"));
            }
        }
    }
    let arity = match metadata.default_partition_spec().partition_type(metadata.current_schema()) {
        Ok(t) => t.fields().len(),
        Err(e) => return Some(unsupported(format!("default partition spec: {e}"))),
    };
    if let Some(f) = data_files.iter().chain(delete_files).find(|f| f.partition().fields().len() != arity) {
        let reason = format!("its partition has {} values, the partition spec {arity}", f.partition().fields().len());
        return Some(invalid(f, &reason));
    }
    if !delete_files.is_empty() {
        if metadata.format_version() < FormatVersion::V2 {
            return Some(unsupported(format!(
                "delete files need format v2, the table is {}",
                metadata.format_version()
            )));
        }
        let specs = metadata.partition_specs_iter().len();
        if specs > 1 {
            return Some(unsupported(format!(
                "the table has {specs} partition specs; delete files are only written for tables with one"
            )));
        }
    }
    None
}

/// Writes one manifest of `content` with the added `files`, in the table's
/// default partition spec (the only one tables of this project have).
/// Entries get no sequence number: they inherit the manifest list's.
async fn write_manifest(
    file_io: &iceberg::io::FileIO,
    metadata: &TableMetadata,
    path: &str,
    snapshot_id: i64,
    content: ManifestContentType,
    files: &[DataFile],
) -> iceberg::Result<ManifestFile> {
    let builder = ManifestWriterBuilder::new(
        file_io.new_output(path)?,
        Some(snapshot_id),
        metadata.current_schema().clone(),
        metadata.default_partition_spec().as_ref().clone(),
    );
    let mut writer = match content {
        ManifestContentType::Data => builder.build_v2_data(),
        ManifestContentType::Deletes => builder.build_v2_deletes(),
    };
    for f in files {
        writer.add_file(f.clone(), -1)?;
    }
    writer.write_manifest_file().await
}

/// `manifests` as the v2 manifest list writer records them for a snapshot
/// with `sequence_number`: those added by it get its sequence number.
fn as_listed(mut manifests: Vec<ManifestFile>, sequence_number: i64) -> Vec<ManifestFile> {
    for m in &mut manifests {
        if m.sequence_number == UNASSIGNED_SEQUENCE_NUMBER {
            m.sequence_number = sequence_number;
        }
        if m.min_sequence_number == UNASSIGNED_SEQUENCE_NUMBER {
            m.min_sequence_number = sequence_number;
        }
    }
    manifests
}

pub(crate) async fn read_manifest_list(
    file_io: &iceberg::io::FileIO,
    path: &str,
    version: FormatVersion,
) -> iceberg::Result<ManifestList> {
    let bytes = file_io.new_input(path)?.read().await?;
    ManifestList::parse_with_version(&bytes, version)
}

/// Loads every manifest of a snapshot's manifest list.
pub async fn manifests_of(
    file_io: &iceberg::io::FileIO,
    metadata: &TableMetadata,
    snapshot: &Snapshot,
) -> iceberg::Result<Vec<ManifestFile>> {
    Ok(read_manifest_list(file_io, snapshot.manifest_list(), metadata.format_version()).await?.entries().to_vec())
}

/// A metadata-only change: given the head and a builder on it, the builder
/// with the change, or `None` when the head needs none.
type MetadataEdit<'a> = dyn Fn(&TableMetadata, TableMetadataBuilder) -> Result<Option<TableMetadataBuilder>, CommitError>
    + Send
    + Sync
    + 'a;

/// The table's merge and retention policies; `None` (logged, counted) when a
/// property does not parse: the commit then goes in without maintenance.
fn policies(table: &str, metadata: &TableMetadata) -> Option<(MergePolicy, RetentionPolicy)> {
    let props = metadata.properties();
    match (MergePolicy::from_properties(props), RetentionPolicy::from_properties(props)) {
        (Ok(m), Ok(r)) => Some((m, r)),
        (Err(e), _) | (_, Err(e)) => {
            maintenance_error(table, "policy", &e);
            None
        }
    }
}

/// The snapshots the retention policy lets go from the metadata about to be
/// published, once at least `lakehouse.expire.min-batch` may go (else none).
fn to_expire(
    table: &str,
    metadata: &TableMetadata,
    refs: impl FnOnce() -> Result<RefHeads, String>,
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Vec<i64> {
    if !policy.gc_enabled || !policy.expire_on_commit {
        return Vec::new();
    }
    let cutoff = now_ms.saturating_sub(policy.max_snapshot_age_ms);
    match retention::plan_with_refs(metadata, refs, cutoff, policy.min_snapshots_to_keep) {
        Ok(p) if p.expire.len() >= policy.min_batch => p.expire,
        Ok(_) => Vec::new(),
        Err(e) => {
            maintenance_error(table, "expire", &e);
            Vec::new()
        }
    }
}

/// `metadata` with `last-updated-ms` set to `ms` (iceberg-rust's builder
/// stamps metadata-only changes with the wall clock, not the committer's).
pub(crate) fn stamped(metadata: TableMetadata, ms: i64) -> iceberg::Result<TableMetadata> {
    if metadata.last_updated_ms() == ms {
        return Ok(metadata);
    }
    let invalid = |e: serde_json::Error| iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string());
    let mut json = serde_json::to_value(&metadata).map_err(invalid)?;
    json["last-updated-ms"] = serde_json::Value::from(ms);
    serde_json::from_value(json).map_err(invalid)
}

fn maintenance_error(table: &str, step: &'static str, error: &str) {
    metrics::counter!(names::MAINTENANCE_ERRORS, "table" => table.to_string(), "step" => step).increment(1);
    tracing::error!(table, step, error, "table maintenance skipped; the commit goes in without it");
}

fn count_deleted(table: &str, c: &Cleaned) {
    for (kind, n) in [
        ("manifest_list", c.manifest_lists),
        ("manifest", c.manifests),
        ("content", c.content_files),
        ("metadata", c.metadata_files),
    ] {
        if n > 0 {
            metrics::counter!(names::FILES_DELETED, "table" => table.to_string(), "kind" => kind).increment(n as u64);
        }
    }
}

fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) & (i64::MAX as u64)) as i64;
        if id != 0 && !metadata.snapshots().any(|s| s.snapshot_id() == id) {
            return id;
        }
    }
}

/// Snapshot summary in the shape Java and pyiceberg write: `added-*` from the
/// collector, `total-*` carried from the parent, caller properties first so
/// they can never shadow the computed ones.
fn summarize<'a>(
    metadata: &TableMetadata,
    parent: Option<&Summary>,
    operation: SnapshotOperation,
    files: impl Iterator<Item = &'a DataFile>,
    properties: HashMap<String, String>,
) -> Summary {
    let mut collector = SnapshotSummaryCollector::default();
    for f in files {
        collector.add_file(f, metadata.current_schema().clone(), metadata.default_partition_spec().clone());
    }
    let mut props = properties;
    let added = collector.build();
    let get = |m: &HashMap<String, String>, k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let parent_props = parent.map(|p| &p.additional_properties);
    for (total, add) in [
        ("total-records", "added-records"),
        ("total-data-files", "added-data-files"),
        ("total-files-size", "added-files-size"),
        ("total-delete-files", "added-delete-files"),
        ("total-position-deletes", "added-position-deletes"),
        ("total-equality-deletes", "added-equality-deletes"),
    ] {
        let before = parent_props.map(|p| get(p, total)).unwrap_or(0);
        props.insert(total.to_string(), (before + get(&added, add)).to_string());
    }
    props.extend(added);
    Summary { operation, additional_properties: props }
}
