//! [`Materializer`]: one entity's store table and Silver Iceberg table, kept equal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use changelog_store::{RowKind, Table};
use iceberg::spec::{DataFile, Struct, TableMetadata};
use lakehouse::catalog::{CatalogError, LoadedTable, SqlCatalog, TableName};
use lakehouse::table::commit::{CommitError, Committer, Fenced, Operation};
use lakehouse::table::create::{TableSpec, load_or_create};
use lakehouse::table::position::newest_in_ancestry;
use lakehouse::table::position_delete::{PositionDeleteError, PositionDeleteWriter, ReferencedFile};
use lakehouse::table::rewrite::{CompactionPolicy, RewriteError, RewriteFiles, RewriteStats};
use lakehouse::table::writer::{COMPRESSION_CODEC, COMPRESSION_LEVEL, Codec, DataFileWriter};
use lakehouse::telemetry::names;
use lakehouse::worker::TableCommit;

use super::partition::{Partitioner, partition_spec};
use super::store_map::{SILVER_FILE, SILVER_POS, SilverFiles, store_path, store_spec, to_store_batch};
use crate::contract::{ColumnType, Partition};

/// Iceberg summary key: the store snapshot Silver is materialised up to.
pub const STORE_SNAPSHOT_KEY: &str = "lakehouse.silver.store-snapshot";
/// Store snapshot property: the Silver data files written for that snapshot (JSON).
const FILES_KEY: &str = "lakehouse.silver.files";
/// Store snapshot property: this snapshot moves rows to the data files of a
/// compaction of Silver (JSON, [`RewriteFiles`]); materialising it commits
/// that rewrite. Gold may skip such snapshots: their `-U`/`+U` pairs carry
/// the same values (only `_silver_file`/`_silver_pos` change).
pub const REWRITE_KEY: &str = "lakehouse.silver.rewrite";
/// Table property: days a Silver row's history is kept (the same name as Bronze's;
/// enforcement comes with the table-operations work).
pub const RETENTION_DAYS_KEY: &str = "lakehouse.retention-days";
/// Silver keeps 730 days.
pub const RETENTION_DAYS: u32 = 730;
/// A Silver table's `lakehouse.compaction.max-file-group-size-bytes` (set on
/// new tables, and used for older ones without it): a compaction holds its
/// group's live rows, and the store writes every one of them again at its new
/// location (the store's rows are whole, ~270 B each in memory against ~36 B
/// in Silver's Parquet), so the group bounds the refiner's memory. The
/// library's default (256 MiB of Parquet, millions of rows) made compaction
/// the refiner's peak: 4 MiB is ~100k rows, and the table is compacted group
/// after group, one per commit round.
pub const COMPACTION_GROUP_BYTES: u64 = 4 << 20;
/// The zstd level of new Silver tables (`write.parquet.compression-level`;
/// tables without it get parquet-java's 3). Every commit writes its changed
/// rows' files, and compaction writes them again: at level 3 zstd's block
/// compressor was 2.4% of the refiner's samples on the benchmark's backlog,
/// and level 1's files were no larger (104.6 MB against 105.9 MB for the
/// backlog's Silver files, docs/benchmarks.md).
pub const ZSTD_LEVEL: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    PositionDelete(#[from] PositionDeleteError),
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    #[error("changelog store of {entity}: {source}")]
    Store { entity: String, source: changelog_store::Error },
    #[error("silver.{entity}: {what}: {source}")]
    Iceberg { entity: String, what: &'static str, source: iceberg::Error },
    #[error("silver.{entity}: {message}")]
    Invalid { entity: String, message: String },
}

/// What one materialisation committed.
#[derive(Debug, Clone)]
pub struct Silvered {
    pub store_snapshot: i64,
    /// The Iceberg commit, when the snapshot changed Silver.
    pub commit: Option<TableCommit>,
    /// Rows deleted or replaced by position deletes.
    pub deleted: u64,
}

/// One entity: its changelog-store table and its Silver Iceberg table.
pub struct Materializer {
    entity: String,
    committer: Committer,
    writer: DataFileWriter,
    deletes: PositionDeleteWriter,
    store: Table,
    commit_user: String,
    silver_schema: SchemaRef,
    store_schema: SchemaRef,
    head: LoadedTable,
    partitioner: Partitioner,
    /// Store snapshots known to change Silver (true) or not (false), for the
    /// order check of [`Materializer::materialize`].
    touches: HashMap<i64, bool>,
    /// The store table's writer, kept across commits so the `lookup` changelog
    /// producer's cache of decoded files stays warm (a writer per commit
    /// re-read the store's files every interval). Taken for a commit and put
    /// back only once its store commit succeeded: a writer whose commit failed
    /// (a conflict, an I/O error, an abort) is dropped, and the next commit
    /// opens a new one from the store.
    write: Option<changelog_store::TableWrite>,
    /// The store snapshot `write`'s view is current at: its base, then its
    /// own latest commit.
    write_at: i64,
    /// Memory the store writer's caches take from, shared with the other
    /// entities' writers (`None`: the store table's own, from its options).
    budgets: Option<changelog_store::write::Budgets>,
}

/// What one compaction of Silver did.
#[derive(Debug, Clone)]
pub struct Compacted {
    /// The store snapshot that moved the rows (and whose Iceberg commit is the rewrite).
    pub store_snapshot: i64,
    pub snapshot_id: i64,
    pub stats: RewriteStats,
}

/// What materialising one store snapshot commits to Silver.
struct Plan {
    /// A compaction's rewrite (then nothing else is set).
    rewrite: Option<RewriteFiles>,
    data_files: Vec<DataFile>,
    doomed: Vec<(Arc<str>, i64)>,
    targets: Vec<ReferencedFile>,
    /// New rows that stay visible.
    rows: u64,
    summary: HashMap<String, String>,
}

impl Materializer {
    /// Opens (creating where absent) the Silver table `silver` with `schema`,
    /// partitioned by `partition` (a table that exists keeps its own spec),
    /// and the store table at `store_path`.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        catalog: SqlCatalog,
        silver: TableName,
        schema: SchemaRef,
        types: &BTreeMap<String, ColumnType>,
        key: &[String],
        partition: Option<&Partition>,
        buckets: usize,
        store_path: PathBuf,
        commit_user: String,
    ) -> Result<Self, MaterializeError> {
        let entity = silver.name.clone();
        let invalid = |message: String| MaterializeError::Invalid { entity: entity.clone(), message };
        let iceberg_schema = iceberg::arrow::arrow_schema_to_schema(&schema).map_err(|source| {
            MaterializeError::Iceberg { entity: entity.clone(), what: "converting the schema", source }
        })?;
        let partition_spec = partition_spec(&iceberg_schema, partition).map_err(&invalid)?;
        let spec = TableSpec {
            schema: iceberg_schema,
            partition_spec,
            properties: HashMap::from([
                ("write.format.default".to_string(), "parquet".to_string()),
                (COMPRESSION_CODEC.to_string(), "zstd".to_string()),
                (COMPRESSION_LEVEL.to_string(), ZSTD_LEVEL.to_string()),
                ("lakehouse.layer".to_string(), "silver".to_string()),
                (
                    "history.expire.max-snapshot-age-ms".to_string(),
                    (u64::from(RETENTION_DAYS) * 86_400_000).to_string(),
                ),
                (RETENTION_DAYS_KEY.to_string(), RETENTION_DAYS.to_string()),
                (lakehouse::table::rewrite::MAX_FILE_GROUP_SIZE_BYTES.to_string(), COMPACTION_GROUP_BYTES.to_string()),
            ]),
        };
        let head = load_or_create(&catalog, &silver, &spec).await?;
        let partitioner = Partitioner::new(&head.metadata).map_err(&invalid)?;
        if partitioner.is_partitioned() != partition.is_some() {
            tracing::warn!(
                table = %silver,
                contract = ?partition,
                table_spec = ?head.metadata.default_partition_spec().fields(),
                "the Silver table's partitioning differs from the contract's; the table keeps its own (no partition-spec evolution)"
            );
        }
        let store_err = |source| MaterializeError::Store { entity: entity.clone(), source };
        // Another refiner of the entity (a shard) may be creating the table right
        // now: a half-created table is opened again shortly, a lost create is opened.
        let mut attempt = 0;
        let store = loop {
            let tried = if store_path.join("schema").exists() {
                Table::open(&store_path)
            } else {
                let spec = store_spec(&schema, types, key, buckets).map_err(&invalid)?;
                Table::create(&store_path, spec)
            };
            match tried {
                Ok(t) => break t,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    tracing::debug!(entity = %entity, error = %e, "store table not ready; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(store_err(e)),
            }
        };
        let store_schema = changelog_store::data::arrow_conv::row_schema(store.info());
        Ok(Self {
            entity,
            committer: Committer::new(catalog.clone()),
            writer: DataFileWriter::new(catalog.file_io().clone(), Codec::Zstd(Codec::ZSTD_DEFAULT_LEVEL), 128 << 20),
            deletes: PositionDeleteWriter::new(catalog.file_io().clone()),
            store,
            commit_user,
            silver_schema: schema,
            store_schema,
            head,
            partitioner,
            touches: HashMap::new(),
            write: None,
            write_at: 0,
            budgets: None,
        })
    }

    /// Takes the store writer's cache memory from `budgets`, shared with other
    /// entities (from the next writer opened on).
    pub fn share_memory(&mut self, budgets: changelog_store::write::Budgets) {
        self.budgets = Some(budgets);
    }

    pub fn store(&self) -> &Table {
        &self.store
    }

    /// Schema evolution: adds `columns` (nullable) to the Silver Iceberg table
    /// (new field ids, or the ids they already have) and to the store table.
    /// Returns each column's Iceberg field id. Call
    /// [`Materializer::set_silver_schema`] with the evolved schema before the
    /// next [`Materializer::apply`].
    pub async fn add_columns(
        &mut self,
        columns: &[(String, ColumnType)],
    ) -> Result<Vec<(String, i32)>, MaterializeError> {
        let types = self.iceberg_types(columns)?;
        let (head, ids) = super::evolve::add_columns(self.committer.catalog(), &self.head, &types).await?;
        self.head = head;
        let store = self.store.add_columns(&store_types(columns)).map_err(self.store_err())?;
        self.set_store(store);
        Ok(ids)
    }

    /// `columns` with their Iceberg types.
    fn iceberg_types(
        &self,
        columns: &[(String, ColumnType)],
    ) -> Result<Vec<(String, iceberg::spec::Type)>, MaterializeError> {
        let invalid = |message: String| MaterializeError::Invalid { entity: self.entity.clone(), message };
        columns
            .iter()
            .map(|(n, t)| {
                iceberg::arrow::arrow_type_to_type(&crate::arrow::arrow_type(*t))
                    .map(|ty| (n.clone(), ty))
                    .map_err(|e| invalid(format!("column {n}: no Iceberg type for {t}: {e}")))
            })
            .collect()
    }

    /// Goes on with the store table at a new schema (after schema evolution).
    fn set_store(&mut self, store: Table) {
        self.store = store;
        self.write = None; // its schema is the old one
        self.store_schema = changelog_store::data::arrow_conv::row_schema(self.store.info());
    }

    /// Schema evolution: widens `columns` (name, wider type) in the Silver
    /// Iceberg table (type promotion, same field ids) and in the store table
    /// (`schema-<N+1>`), Iceberg first: a crash in between leaves Silver wider
    /// than the store, which the next open mends. Call
    /// [`Materializer::set_silver_schema`] before the next [`Materializer::apply`].
    pub async fn widen_columns(&mut self, columns: &[(String, ColumnType)]) -> Result<(), MaterializeError> {
        let types = self.iceberg_types(columns)?;
        self.head = super::evolve::widen_columns(self.committer.catalog(), &self.head, &types).await?;
        let store = self.store.widen_columns(&store_types(columns)).map_err(self.store_err())?;
        self.set_store(store);
        Ok(())
    }

    /// Reopens the store table at its newest schema (published by another
    /// writer of the entity, see [`Table::has_newer_schema`]); the kept store
    /// writer, which holds the older schema, goes with it.
    pub fn reopen_store(&mut self) -> Result<(), MaterializeError> {
        let store = Table::open(self.store.path()).map_err(self.store_err())?;
        self.set_store(store);
        Ok(())
    }

    /// The Silver schema of the batches [`Materializer::apply`] takes from now on
    /// (after [`Materializer::add_columns`]).
    pub fn set_silver_schema(&mut self, schema: SchemaRef) {
        self.silver_schema = schema;
    }

    pub fn head(&self) -> &LoadedTable {
        &self.head
    }

    fn store_err(&self) -> impl Fn(changelog_store::Error) -> MaterializeError + '_ {
        move |source| MaterializeError::Store { entity: self.entity.clone(), source }
    }

    /// The store snapshot the Silver head is materialised up to.
    pub fn materialized(&self) -> Option<i64> {
        recorded(&self.head.metadata)
    }

    /// The properties of the newest store snapshot (the upstream position it carries).
    pub fn store_position(&self) -> Result<Option<BTreeMap<String, String>>, MaterializeError> {
        let latest = self.store.latest_snapshot().map_err(self.store_err())?;
        Ok(latest.and_then(|s| s.properties))
    }

    /// Materialises every store snapshot Silver has not seen (after a crash
    /// between the store commit and the Iceberg commit).
    pub async fn recover(&mut self) -> Result<Vec<Silvered>, MaterializeError> {
        let Some(latest) = self.store.latest_snapshot_id().map_err(self.store_err())? else { return Ok(Vec::new()) };
        let from = self.materialized().unwrap_or(0) + 1;
        let mut out = Vec::new();
        if from <= latest {
            tracing::info!(entity = %self.entity, from, to = latest, "materialising store snapshots Silver lacks");
            out = self.materialize_through(latest).await?;
        }
        Ok(out)
    }

    /// Applies one batch: `upserts` and `deletes` are rows of the Silver schema
    /// (a delete needs its key columns and `_seq` only), at most one per key
    /// (the caller keeps the newest of each key). `properties` (the upstream
    /// position) go into the store snapshot and the Iceberg commit. The
    /// upserts are taken, so that only their copy grouped by partition is held.
    pub async fn apply(
        &mut self,
        upserts: RecordBatch,
        deletes: &RecordBatch,
        properties: BTreeMap<String, String>,
    ) -> Result<Silvered, MaterializeError> {
        let entity = self.entity.clone();
        let invalid = move |message: String| MaterializeError::Invalid { entity: entity.clone(), message };
        // 1. The upserts' new home in Silver, durable before the store points at it:
        //    rows grouped by partition (reordered so), files written per partition.
        let mut files = Vec::new();
        let upserts = if upserts.num_rows() > 0 {
            let groups = self.partitioner.groups(&upserts).map_err(&invalid)?;
            let order: Vec<u32> = groups.iter().flat_map(|(_, rows)| rows.iter().copied()).collect();
            let ordered = arrow_select::take::take_record_batch(&upserts, &arrow_array::UInt32Array::from(order))
                .map_err(|e| invalid(format!("grouping upserts by partition: {e}")))?;
            let mut offset = 0;
            for (key, rows) in &groups {
                let part = ordered.slice(offset, rows.len());
                offset += rows.len();
                let written = self
                    .writer
                    .write(&self.head.metadata, self.partitioner.tuple(*key), std::slice::from_ref(&part))
                    .await
                    .map_err(|source| MaterializeError::Iceberg {
                        entity: self.entity.clone(),
                        what: "writing data files",
                        source,
                    })?;
                files.extend(written);
            }
            drop(upserts);
            ordered
        } else {
            upserts
        };
        lakehouse::table::durable::sync_all(files.iter().map(|f| f.file_path().to_string()))
            .await
            .map_err(|e| invalid(format!("syncing data files: {e}")))?;
        let mut locations = Vec::with_capacity(upserts.num_rows());
        for f in &files {
            let path: Arc<str> = Arc::from(store_path(self.head.metadata.location(), f.file_path()));
            locations.extend((0..f.record_count() as i64).map(|pos| Some((path.clone(), pos))));
        }
        if locations.len() != upserts.num_rows() {
            return Err(invalid(format!("wrote {} rows for {} upserts", locations.len(), upserts.num_rows())));
        }
        // 2. The store: upserts with their locations, deletes; the files in the snapshot.
        let mut write = self.take_write()?;
        if upserts.num_rows() > 0 {
            let batch = to_store_batch(&upserts, &self.store_schema, &locations).map_err(&invalid)?;
            write.write_batch(&batch, &[RowKind::Insert]).map_err(self.store_err())?;
        }
        // The write buffer holds the store rows now; without the upserts it
        // is their only holder, and releases each column as the flush gathers it.
        drop(upserts);
        drop(locations);
        if deletes.num_rows() > 0 {
            let full = pad_to(deletes, &self.silver_schema).map_err(&invalid)?;
            let batch = to_store_batch(&full, &self.store_schema, &vec![None; full.num_rows()]).map_err(&invalid)?;
            write.write_batch(&batch, &[RowKind::Delete]).map_err(self.store_err())?;
        }
        let messages = write.prepare_commit().map_err(self.store_err())?;
        let mut props = properties;
        let encoded = lakehouse::table::data_files::encode(&self.head.metadata, &files).map_err(|source| {
            MaterializeError::Iceberg { entity: self.entity.clone(), what: "serialising data files", source }
        })?;
        props.insert(FILES_KEY.to_string(), encoded);
        let committer = self.store.new_committer(self.commit_user.clone());
        let identifier = committer.latest_identifier_of_user().map_err(self.store_err())?.unwrap_or(0) + 1;
        let outcome = committer.commit(identifier, messages, Some(props)).map_err(self.store_err())?;
        let ids = match outcome {
            changelog_store::CommitOutcome::Committed(ids) => ids,
            _ => Vec::new(),
        };
        let snapshot = ids.first().copied().ok_or_else(|| invalid("the store commit created no snapshot".into()))?;
        // The writer's view is the store at its own commit (an APPEND, and a
        // COMPACT when its compaction rode along): kept for the next batch.
        self.write_at = ids.iter().copied().max().unwrap_or(snapshot);
        self.write = Some(write);
        crate::failpoint::hit(crate::failpoint::AFTER_STORE_COMMIT);
        // 3. Silver follows the store (and any store snapshot of another writer before it).
        let mut done = self.materialize_through(snapshot).await?;
        Ok(done.pop().filter(|s| s.store_snapshot == snapshot).unwrap_or(Silvered {
            store_snapshot: snapshot,
            commit: None,
            deleted: 0,
        }))
    }

    /// The store writer for the next commit: the kept one while the store is
    /// where its last commit left it (or moved only by this writer's own
    /// commits and compactions), else a new one from the latest snapshot —
    /// another writer (a `lakehouse rejects replay`, a sibling shard)
    /// committed in between and the kept writer's view of the buckets is stale.
    fn take_write(&mut self) -> Result<changelog_store::TableWrite, MaterializeError> {
        if let Some(w) = self.write.take() {
            let latest = self.store.latest_snapshot_id().map_err(self.store_err())?.unwrap_or(0);
            let mut current = latest >= self.write_at;
            for id in self.write_at + 1..=latest {
                if !current {
                    break;
                }
                current = match self.store.resolve(changelog_store::ReadAt::Snapshot(id)) {
                    Ok(Some(s)) => {
                        s.commit_user == self.commit_user
                            || s.commit_kind == changelog_store::spec::snapshot::CommitKind::Compact
                    }
                    _ => false,
                };
            }
            if current {
                return Ok(w);
            }
            tracing::info!(entity = %self.entity, kept_at = self.write_at, latest,
                "another writer committed to the store; reopening the store writer");
            metrics::counter!(lakehouse::telemetry::names::SILVER_STORE_WRITER_REOPENED, "entity" => self.entity.clone())
                .increment(1);
        }
        let mut w = self.store.new_write().map_err(self.store_err())?;
        if let Some(b) = &self.budgets {
            w = w.with_budgets(b.clone());
        }
        self.write_at = w.base_snapshot();
        Ok(w)
    }

    /// Compacts Silver when a data file passes the table's thresholds
    /// ([`lakehouse::table::rewrite`]): the live rows of those files are
    /// written into new files, the store (Silver's index) moves every one of
    /// them to its new location in one store snapshot that records the
    /// rewrite ([`REWRITE_KEY`]), and materialising that snapshot commits the
    /// rewrite to Silver — so a crash after the store commit is finished by
    /// [`Materializer::recover`] like any other store snapshot.
    ///
    /// Run it between this writer's commits. The store commit goes in only if
    /// the store is still at the snapshot Silver was compacted at (no other
    /// writer moved a row in between); otherwise the rewrite is dropped
    /// (`Ok(None)`, its files left unreferenced) and tried again later.
    pub async fn compact(&mut self) -> Result<Option<Compacted>, MaterializeError> {
        let entity = self.entity.clone();
        let invalid = move |message: String| MaterializeError::Invalid { entity: entity.clone(), message };
        // The store snapshot the rewrite is based on, read first; then Silver
        // brought up to (at least) it on the catalog's head. If the store moves
        // past `base` meanwhile, the check before the store commit drops the rewrite.
        let base = self.store.latest_snapshot_id().map_err(self.store_err())?.unwrap_or(0);
        self.head = self.committer.catalog().require_table(&self.head.name).await?;
        self.recover().await?;
        let file_io = self.committer.catalog().file_io().clone();
        let props = self.head.metadata.properties();
        let mut policy = CompactionPolicy::from_properties(props)?;
        if !props.contains_key(lakehouse::table::rewrite::MAX_FILE_GROUP_SIZE_BYTES) {
            policy.max_group_bytes = COMPACTION_GROUP_BYTES; // a table created before the property
        }
        let Some(plan) = lakehouse::table::rewrite::plan(&file_io, &self.head.metadata, &policy).await? else {
            return Ok(None);
        };
        let rewritten = plan.write(&file_io, &self.head.metadata, &policy).await?;
        let record = rewritten.operation();
        let Operation::Rewrite(files) = record else { return Err(invalid("a rewrite that is not one".into())) };
        let encoded = files.encode(&self.head.metadata).map_err(|source| MaterializeError::Iceberg {
            entity: self.entity.clone(),
            what: "serialising the rewrite",
            source,
        })?;
        // The index moves: every rewritten row, same values and `_seq`, at its new
        // location (an equal `_seq` is won by the later write).
        let mut write = self.take_write()?;
        for o in &rewritten.outputs {
            let path: Arc<str> = Arc::from(store_path(self.head.metadata.location(), o.file.file_path()));
            let locations: Vec<Option<(Arc<str>, i64)>> =
                (0..o.rows.num_rows() as i64).map(|p| Some((path.clone(), p))).collect();
            let batch = to_store_batch(&o.rows, &self.store_schema, &locations).map_err(&invalid)?;
            write.write_batch(&batch, &[RowKind::Insert]).map_err(self.store_err())?;
        }
        let messages = write.prepare_commit().map_err(self.store_err())?;
        let latest = self.store.latest_snapshot_id().map_err(self.store_err())?.unwrap_or(0);
        if latest != base {
            metrics::counter!(names::COMPACTION_CONFLICTS, "layer" => "silver", "table" => self.head.name.to_string())
                .increment(1);
            tracing::info!(entity = %self.entity, base, latest,
                "compaction dropped: another writer committed to the store while it ran; tried again later");
            return Ok(None); // the writer (with the relocation buffered) is dropped
        }
        let props = BTreeMap::from([(REWRITE_KEY.to_string(), encoded)]);
        let committer = self.store.new_committer(self.commit_user.clone());
        let identifier = committer.latest_identifier_of_user().map_err(self.store_err())?.unwrap_or(0) + 1;
        let ids = match committer.commit(identifier, messages, Some(props)) {
            Ok(changelog_store::CommitOutcome::Committed(ids)) => ids,
            Ok(_) => Vec::new(),
            Err(changelog_store::Error::Conflict { message, .. }) => {
                metrics::counter!(names::COMPACTION_CONFLICTS, "layer" => "silver", "table" => self.head.name.to_string())
                    .increment(1);
                tracing::info!(entity = %self.entity, %message, "compaction dropped: the store commit conflicted");
                return Ok(None);
            }
            Err(e) => return Err(self.store_err()(e)),
        };
        let snapshot = ids.first().copied().ok_or_else(|| invalid("the store commit created no snapshot".into()))?;
        self.write_at = ids.iter().copied().max().unwrap_or(snapshot);
        self.write = Some(write);
        crate::failpoint::hit(crate::failpoint::AFTER_STORE_COMMIT);
        let done = self.materialize_through(snapshot).await?;
        let snapshot_id = done
            .iter()
            .find(|s| s.store_snapshot == snapshot)
            .and_then(|s| s.commit.as_ref().map(|c| c.snapshot_id))
            .ok_or_else(|| invalid(format!("the rewrite of store snapshot {snapshot} was not committed to Silver")))?;
        let stats = rewritten.stats;
        stats.record("silver", &self.head.name.to_string(), snapshot, snapshot_id);
        Ok(Some(Compacted { store_snapshot: snapshot, snapshot_id, stats }))
    }

    /// Materialises every store snapshot after Silver's up to `n`, in order.
    /// Another writer of the same entity (a `lakehouse rejects replay`, a second
    /// shard) may commit to the store and to Silver concurrently: a commit that
    /// finds Silver already past its snapshot, or lacking an earlier one, is
    /// fenced by the catalog's compare-and-swap check; the head is then reloaded
    /// and the missing snapshots are materialised from there. Materialising a
    /// store snapshot is deterministic (the store alone decides it), so it does
    /// not matter which writer commits it.
    async fn materialize_through(&mut self, n: i64) -> Result<Vec<Silvered>, MaterializeError> {
        let mut out = Vec::new();
        for _attempt in 0..32 {
            let from = self.materialized().unwrap_or(0) + 1;
            let mut fenced = false;
            for k in from..=n {
                match self.materialize(k).await {
                    Ok(s) => out.push(s),
                    Err(MaterializeError::Commit(CommitError::Fenced { reason, .. })) => {
                        tracing::info!(entity = %self.entity, store_snapshot = k, %reason,
                            "another writer moved Silver; reloading and materialising from its head");
                        self.head = self.committer.catalog().require_table(&self.head.name).await?;
                        fenced = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !fenced {
                return Ok(out);
            }
        }
        Err(MaterializeError::Invalid {
            entity: self.entity.clone(),
            message: format!("Silver did not settle at store snapshot {n} after 32 attempts (concurrent writers?)"),
        })
    }

    /// Whether materialising store snapshot `k` commits anything to Silver.
    fn touches_silver(&mut self, k: i64) -> Result<bool, MaterializeError> {
        if let Some(t) = self.touches.get(&k) {
            return Ok(*t);
        }
        let t = self.plan(k)?.is_some();
        self.touches.insert(k, t);
        Ok(t)
    }

    /// The newest store snapshot before `n` that changes Silver (0: none). Silver
    /// must record at least that one before `n` may be committed. A snapshot
    /// the store no longer has (expired) ends the search: Silver had it long ago.
    fn floor(&mut self, n: i64) -> i64 {
        let mut k = n - 1;
        while k >= 1 {
            match self.touches_silver(k) {
                Ok(true) => return k,
                Ok(false) => k -= 1,
                Err(_) => return 0,
            }
        }
        0
    }

    /// What store snapshot `n` changes in Silver; `None` when nothing.
    fn plan(&self, n: i64) -> Result<Option<Plan>, MaterializeError> {
        let invalid = |message: String| MaterializeError::Invalid { entity: self.entity.clone(), message };
        // Of the rows, only what places them: their Silver location and the
        // partition column (a changelog holds every column, twice per update).
        let columns: Vec<String> =
            self.partitioner.source_column().into_iter().chain([SILVER_FILE, SILVER_POS]).map(str::to_string).collect();
        let changes = self.store.change_batches_projected(n, &columns).map_err(self.store_err())?;
        if changes.commit_kind == changelog_store::spec::snapshot::CommitKind::Compact {
            // A compaction changes no row; its properties repeat the APPEND
            // snapshot's (files included), which is materialised on its own.
            return Ok(None);
        }
        let props = changes.properties.clone().unwrap_or_default();
        if let Some(json) = props.get(REWRITE_KEY) {
            let rewrite = RewriteFiles::decode(&self.head.metadata, json)
                .map_err(|e| invalid(format!("store snapshot {n}: {REWRITE_KEY}: {e}")))?;
            let summary = HashMap::from([(STORE_SNAPSHOT_KEY.to_string(), n.to_string())]);
            return Ok(Some(Plan {
                rewrite: Some(rewrite),
                data_files: Vec::new(),
                doomed: Vec::new(),
                targets: Vec::new(),
                rows: 0,
                summary,
            }));
        }
        let data_files = self.decode_files(props.get(FILES_KEY).map(String::as_str).unwrap_or("[]"))?;
        // Rows are located as (file, position), the file by its number in `files`.
        let mut files = SilverFiles::new(self.head.metadata.location());
        let mut kept: HashSet<(u32, i64), foldhash::fast::RandomState> = HashSet::default();
        let mut old: Vec<(u32, i64)> = Vec::new();
        // The partition of every data file a delete points into: for the rows
        // replaced or deleted, from their values (the same transform the writer
        // used); for this snapshot's new files, from their entries.
        let mut partition_of: HashMap<u32, Struct> = HashMap::new();
        for b in &changes.batches {
            let keys = self.partitioner.keys(&b.rows).map_err(&invalid)?;
            let file = b.rows.column_by_name(SILVER_FILE).map(|c| c.as_string::<i32>().clone());
            let pos = b.rows.column_by_name(SILVER_POS).map(|c| c.as_primitive::<Int64Type>().clone());
            let (Some(file), Some(pos)) = (file, pos) else {
                return Err(invalid(format!("store snapshot {n} has no location columns")));
            };
            for (i, key) in keys.iter().enumerate() {
                if file.is_null(i) || pos.is_null(i) {
                    continue; // a delete of a key Silver never had
                }
                let loc = (files.number(file.value(i)), pos.value(i));
                match RowKind::from_byte(b.kinds.value(i)) {
                    Some(RowKind::Insert | RowKind::UpdateAfter) => {
                        kept.insert(loc);
                    }
                    Some(RowKind::UpdateBefore | RowKind::Delete) => {
                        let tuple = self.partitioner.tuple(*key);
                        match partition_of.get(&loc.0) {
                            Some(p) if *p != tuple => {
                                return Err(invalid(format!(
                                    "store snapshot {n}: rows of Silver file {} compute to partitions {p:?} and {tuple:?}",
                                    files.path(loc.0)
                                )));
                            }
                            Some(_) => {}
                            None => {
                                partition_of.insert(loc.0, tuple);
                            }
                        }
                        old.push(loc)
                    }
                    None => return Err(invalid(format!("store snapshot {n}: bad row kind {}", b.kinds.value(i)))),
                }
            }
        }
        // Replaced and deleted rows; new rows that lost to a newer version of their key.
        let mut doomed: Vec<(u32, i64)> = old.into_iter().filter(|l| !kept.contains(l)).collect();
        let written: u64 = data_files.iter().map(|f| f.record_count()).sum();
        let before = doomed.len() as u64;
        for f in &data_files {
            let file = files.number(f.file_path());
            partition_of.insert(file, f.partition().clone());
            doomed.extend((0..f.record_count() as i64).map(|p| (file, p)).filter(|l| !kept.contains(l)));
        }
        // New rows that lost to a newer version are added and deleted in the same commit.
        let rows = written - (doomed.len() as u64 - before);
        let targets: Vec<ReferencedFile> = {
            let mut seen = HashSet::new();
            doomed
                .iter()
                .filter(|(f, _)| seen.insert(*f))
                .map(|(f, _)| {
                    let partition = partition_of.get(f).cloned().unwrap_or_else(|| self.partitioner.tuple(None));
                    ReferencedFile::new(files.path(*f).to_string(), partition)
                })
                .collect()
        };
        let doomed: Vec<(Arc<str>, i64)> = doomed.into_iter().map(|(f, p)| (files.path(f).clone(), p)).collect();
        if data_files.is_empty() && doomed.is_empty() {
            return Ok(None);
        }
        let mut summary: HashMap<String, String> =
            props.iter().filter(|(k, _)| k.as_str() != FILES_KEY).map(|(k, v)| (k.clone(), v.clone())).collect();
        summary.insert(STORE_SNAPSHOT_KEY.to_string(), n.to_string());
        Ok(Some(Plan { rewrite: None, data_files, doomed, targets, rows, summary }))
    }

    /// Commits store snapshot `n` to Silver. The check, run on every head the
    /// commit tries, fences it when Silver already has `n` (another writer
    /// materialised it) or lacks the newest earlier snapshot that changes Silver.
    async fn materialize(&mut self, n: i64) -> Result<Silvered, MaterializeError> {
        let started = Instant::now();
        let plan = self.plan(n)?;
        self.touches.retain(|k, _| *k + 64 >= n);
        self.touches.insert(n, plan.is_some());
        let Some(Plan { rewrite, data_files, doomed, targets, rows, summary }) = plan else {
            return Ok(Silvered { store_snapshot: n, commit: None, deleted: 0 });
        };
        let floor = self.floor(n);
        let deleted = doomed.len() as u64;
        let operation = match rewrite {
            Some(r) => Operation::Rewrite(r),
            None => {
                let delete_files = self.deletes.write(&self.head.metadata, &targets, doomed).await?;
                Operation::RowDelta { data_files, delete_files }
            }
        };
        let check = move |head: &TableMetadata| match recorded(head) {
            Some(m) if m >= n => Err(Fenced(format!("Silver already has store snapshot {m}, this commit is {n}"))),
            m if m.unwrap_or(0) < floor => Err(Fenced(format!(
                "Silver records store snapshot {m:?} but lacks {floor}, which this commit ({n}) follows"
            ))),
            _ => Ok(summary.clone()),
        };
        let done = self.committer.commit(&self.head, operation, &check).await?;
        self.head = done.table.clone();
        Ok(Silvered {
            store_snapshot: n,
            deleted,
            commit: Some(TableCommit {
                table: done.table,
                snapshot_id: done.snapshot_id,
                rows,
                conflicts: done.conflicts,
                duration: started.elapsed(),
                newest_event_ms: None,
            }),
        })
    }

    fn decode_files(&self, json: &str) -> Result<Vec<DataFile>, MaterializeError> {
        lakehouse::table::data_files::decode(&self.head.metadata, json).map_err(|e| MaterializeError::Invalid {
            entity: self.entity.clone(),
            message: format!("{FILES_KEY}: {e}"),
        })
    }
}

/// The store snapshot a Silver head records.
fn recorded(metadata: &TableMetadata) -> Option<i64> {
    newest_in_ancestry(metadata, STORE_SNAPSHOT_KEY).and_then(|(_, v)| v.parse().ok())
}

/// `batch` with every column of `schema`, the missing ones null.
fn pad_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let n = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => arrow_array::new_null_array(f.data_type(), n),
        })
        .collect();
    let relaxed = Arc::new(arrow_schema::Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(relaxed, columns).map_err(|e| format!("padding deletes to the Silver schema: {e}"))
}

/// `columns` with their store (Paimon) types.
fn store_types(columns: &[(String, ColumnType)]) -> Vec<(String, String)> {
    columns.iter().map(|(n, t)| (n.clone(), super::store_map::paimon_type(*t))).collect()
}
