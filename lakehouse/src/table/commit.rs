//! The commit layer: one atomic snapshot per call, published by compare-and-swap.
//!
//! iceberg-rust's `Transaction::commit` silently rebases and retries on
//! conflict, which would skip offset fencing. Here the loop is explicit:
//! check position → build snapshot on the current head → CAS the catalog
//! pointer; on a lost CAS reload the head and run the position check again.
//! A writer that finds someone else already past its position gets
//! [`CommitError::Fenced`] and must discard its batch.
//!
//! Only [`Operation::Append`] exists today; row-delta (position deletes),
//! overwrite, rewrite and rollback are further variants of [`Operation`]
//! that produce a different manifest set for the same publish step.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::MetadataLocation;
use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestFile, ManifestList, ManifestListWriter, ManifestWriterBuilder,
    Operation as SnapshotOperation, Snapshot, SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary,
    TableMetadata, TableMetadataBuilder,
};

use crate::catalog::{CatalogError, LoadedTable, SqlCatalog};
use crate::error::ErrorKind;

/// What a commit does to the table.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Add data files; nothing is removed.
    Append { files: Vec<DataFile> },
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
}

impl CommitError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommitError::Fenced { .. } => ErrorKind::Fenced,
            CommitError::TooManyConflicts { .. } => ErrorKind::Transient,
            CommitError::Catalog { source, .. } => source.kind(),
            CommitError::Iceberg { .. } => ErrorKind::Transient,
            CommitError::Empty { .. } => ErrorKind::Internal,
            CommitError::Durability { .. } => ErrorKind::Transient,
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
}

impl Committer {
    pub fn new(catalog: SqlCatalog) -> Self {
        Self { catalog, max_attempts: 20 }
    }

    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
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
        let Operation::Append { files } = operation;
        if files.is_empty() {
            return Err(CommitError::Empty { table });
        }
        let file_io = self.catalog.file_io().clone();
        let mut head = base.clone();
        let snapshot_id = new_snapshot_id(&head.metadata);
        let commit_uuid = uuid::Uuid::new_v4();
        let metadata_dir = format!("{}/metadata", head.metadata.location());

        // The manifest of added files is written once and reused by every
        // attempt: entries inherit snapshot id and sequence number from the
        // manifest list, which each attempt writes anew.
        let added_manifest = if files.is_empty() {
            None
        } else {
            let path = format!("{metadata_dir}/{commit_uuid}-m0.avro");
            let output = file_io.new_output(&path).map_err(ice("creating manifest"))?;
            let mut writer = ManifestWriterBuilder::new(
                output,
                Some(snapshot_id),
                head.metadata.current_schema().clone(),
                head.metadata.default_partition_spec().as_ref().clone(),
            )
            .build_v2_data();
            for f in &files {
                writer.add_file(f.clone(), -1).map_err(ice("adding file to manifest"))?;
            }
            Some(writer.write_manifest_file().await.map_err(ice("writing manifest"))?)
        };

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

            let mut manifests = match parent {
                Some(p) => read_manifest_list(&file_io, p.manifest_list(), metadata.format_version())
                    .await
                    .map_err(ice("reading parent manifest list"))?
                    .entries()
                    .to_vec(),
                None => Vec::new(),
            };
            if let Some(m) = &added_manifest {
                manifests.push(m.clone());
            }
            let list_path = format!("{metadata_dir}/snap-{snapshot_id}-{attempt}-{commit_uuid}.avro");
            let list_out = file_io.new_output(&list_path).map_err(ice("creating manifest list"))?;
            let mut list = ManifestListWriter::v2(
                list_out.writer().await.map_err(ice("opening manifest list"))?,
                snapshot_id,
                parent.map(|p| p.snapshot_id()),
                sequence_number,
            );
            list.add_manifests(manifests.into_iter()).map_err(ice("adding manifests to list"))?;
            list.close().await.map_err(ice("writing manifest list"))?;

            // Positions are mirrored into the table properties, where they survive an
            // outside rewrite followed by the expiry of our snapshots (table/position.rs).
            let mirrored: HashMap<String, String> = properties
                .iter()
                .filter(|(k, _)| crate::table::position::is_position_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let summary = summarize(metadata, parent.map(|p| p.summary()), &files, properties);
            let snapshot = Snapshot::builder()
                .with_snapshot_id(snapshot_id)
                .with_parent_snapshot_id(parent.map(|p| p.snapshot_id()))
                .with_sequence_number(sequence_number)
                .with_timestamp_ms(chrono::Utc::now().timestamp_millis().max(metadata.last_updated_ms()))
                .with_manifest_list(list_path.clone())
                .with_summary(summary)
                .with_schema_id(metadata.current_schema_id())
                .build();
            let new_metadata = TableMetadataBuilder::new_from_metadata(
                metadata.as_ref().clone(),
                Some(head.metadata_location.clone()),
            )
            .add_snapshot(snapshot)
            .and_then(|b| if mirrored.is_empty() { Ok(b) } else { b.set_properties(mirrored) })
            .and_then(|b| {
                b.set_ref(MAIN_BRANCH, SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None)))
            })
            .and_then(|b| b.build())
            .map_err(ice("building table metadata"))?
            .metadata;

            let location = MetadataLocation::from_str(&head.metadata_location)
                .map_err(ice("parsing current metadata location"))?
                .with_next_version()
                .with_new_metadata(&new_metadata);
            debug_assert_ne!(
                location.to_string(),
                head.metadata_location,
                "a commit never rewrites the current metadata file"
            );
            new_metadata.write_to(&file_io, &location).await.map_err(ice("writing metadata file"))?;
            let new_location = location.to_string();
            // Everything the new pointer makes reachable is durable before it moves
            // (data files and the added manifest once, on the first attempt).
            let mut reachable = vec![new_location.clone(), list_path.clone()];
            if attempt == 0 {
                reachable.extend(files.iter().map(|f| f.file_path().to_string()));
                reachable.extend(added_manifest.iter().map(|m| m.manifest_path.clone()));
            }
            crate::table::durable::sync_all(&reachable)
                .await
                .map_err(|e| CommitError::Durability { table: table.clone(), source: e })?;

            let swapped = self
                .catalog
                .swap_metadata(&head.name, &head.metadata_location, &new_location)
                .await
                .map_err(|source| CommitError::Catalog { table: table.clone(), source })?;
            if swapped {
                return Ok(Committed {
                    table: LoadedTable {
                        name: head.name.clone(),
                        metadata_location: new_location,
                        metadata: Arc::new(new_metadata),
                    },
                    snapshot_id,
                    conflicts,
                    duration: started.elapsed(),
                });
            }
            // Lost the race: our metadata file and manifest list are garbage.
            let _ = file_io.delete(&new_location).await;
            let _ = file_io.delete(&list_path).await;
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
    /// The table's current head, as the catalog points at it now.
    async fn reload(&self, head: &LoadedTable, table: &str) -> Result<LoadedTable, CommitError> {
        self.catalog
            .require_table(&head.name)
            .await
            .map_err(|source| CommitError::Catalog { table: table.to_string(), source })
    }
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
fn summarize(
    metadata: &TableMetadata,
    parent: Option<&Summary>,
    files: &[DataFile],
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
    Summary { operation: SnapshotOperation::Append, additional_properties: props }
}
