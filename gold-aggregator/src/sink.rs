//! [`GoldTable`]: one Gold Iceberg table and its state table in the changelog
//! store, kept equal the way Silver is kept equal to its store
//! (see `silver_refiner::materialize`):
//!
//! 1. the changed groups' Gold rows are written as new data files (one or
//!    more per partition), durable before anything points at them;
//! 2. the state table commits each changed group's state with the location
//!    of its new Gold row (`_gold_file`, `_gold_pos`), deletes the groups left
//!    empty, and carries the Silver positions consumed and the new data files
//!    in its snapshot properties;
//! 3. that state snapshot is materialised: its lookup changelog's `-U`/`-D`
//!    records carry the replaced rows' old locations, which become position
//!    deletes; one Iceberg RowDelta commits data and delete files with the
//!    state snapshot id, checked against the head (fencing).
//!
//! A crash after 2 leaves the state ahead of Gold: on start every state
//! snapshot Gold lacks is materialised again from the store alone. A crash
//! before 2 leaves unreferenced files only.
//!
//! Compaction ([`GoldTable::compact`]) follows the same three steps: the live
//! rows of the data files with the most deletes are rewritten into new files,
//! one state snapshot moves every moved row's location (and records the
//! rewrite, [`REWRITE_KEY`]), and materialising that snapshot commits the
//! rewrite as an Iceberg `replace`. Any writer that materialises state
//! snapshots does so through every snapshot Gold lacks, in order, so the
//! aggregator and `lakehouse compact gold.<table>` can run side by side.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use changelog_store::{ReadAt, RowKind, Table};
use iceberg::spec::{DataFile, Literal, PrimitiveLiteral, Struct, TableMetadata, Transform, UnboundPartitionSpec};
use lakehouse::catalog::{CatalogError, LoadedTable, SqlCatalog, TableName};
use lakehouse::table::commit::{CommitError, Committer, Fenced, Operation};
use lakehouse::table::create::{TableSpec, load_or_create_sorted};
use lakehouse::table::position::newest_in_ancestry;
use lakehouse::table::position_delete::{PositionDeleteError, PositionDeleteWriter, ReferencedFile};
use lakehouse::table::rewrite::{CompactionPolicy, RewriteError, RewriteFiles, RewriteStats, RewrittenFile};
use lakehouse::table::writer::{Codec, DataFileWriter};
use lakehouse::telemetry::names;
use lakehouse::worker::TableCommit;

use crate::accum::GroupState;
use crate::rollup::GroupKey;
use crate::scalar::Scalar;
use crate::spec::{PartitionBy, WINDOW, WINDOW_START};
use crate::window::{Window, month_ordinal, year_ordinal};

/// Iceberg summary key: the state snapshot Gold is materialised up to.
pub const STATE_SNAPSHOT_KEY: &str = "lakehouse.gold.state-snapshot";
/// State snapshot property: the Gold data files written for that snapshot (JSON).
const FILES_KEY: &str = "lakehouse.gold.files";
/// State snapshot property of a compaction: the Iceberg rewrite it commits
/// (JSON, [`RewriteFiles`]). Its changelog only moves locations, so tables
/// reading this state table's changelog skip such snapshots.
pub const REWRITE_KEY: &str = "lakehouse.gold.rewrite";
const GROUP: &str = "_group";
const STATE: &str = "_state";
const GOLD_FILE: &str = "_gold_file";
const GOLD_POS: &str = "_gold_pos";
/// Gold tables keep seven years (a table property; enforcement is the table-operations work).
const RETENTION_DAYS: u64 = 2555;
/// A new Gold table's `lakehouse.compaction.max-file-group-size-bytes`: one
/// compaction reads at most this much Parquet (one file if larger) and holds
/// its live rows, decoded, until the state commit that relocates them. The
/// aggregator compacts a table group after group, one per commit round.
const COMPACTION_GROUP_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    PositionDelete(#[from] PositionDeleteError),
    #[error(transparent)]
    Rewrite(Box<RewriteError>),
    #[error("state of gold.{table}: {source}")]
    Store { table: String, source: changelog_store::Error },
    #[error("gold.{table}: {what}: {source}")]
    Iceberg { table: String, what: &'static str, source: iceberg::Error },
    #[error("gold.{table}: {message}")]
    Invalid { table: String, message: String },
}

/// What one materialisation committed.
#[derive(Debug, Clone)]
pub struct Golded {
    pub state_snapshot: i64,
    pub commit: Option<TableCommit>,
    /// Gold rows replaced or removed.
    pub deleted: u64,
}

impl From<RewriteError> for SinkError {
    fn from(e: RewriteError) -> Self {
        SinkError::Rewrite(Box::new(e))
    }
}

/// What one compaction committed.
#[derive(Debug, Clone)]
pub struct Compacted {
    pub state_snapshot: i64,
    pub snapshot_id: i64,
    pub stats: RewriteStats,
}

/// What [`GoldTable::load`] finds: every group with its state, and the state snapshot's properties.
pub type Loaded = (Vec<(GroupKey, GroupState)>, BTreeMap<String, String>);

pub struct GoldTable {
    name: String,
    committer: Committer,
    writer: DataFileWriter,
    deletes: PositionDeleteWriter,
    state: Table,
    commit_user: String,
    layout: Layout,
    /// Columns the rows of each Gold data file are sorted by (the table's sort order).
    sort_by: Vec<String>,
    head: LoadedTable,
    /// The state table's writer, kept across commits so its lookup cache (the
    /// decoded files the `lookup` changelog producer searches) stays warm: a
    /// fresh writer per commit re-reads the table's files every interval.
    /// Dropped after any failure, so the next commit starts from the store.
    write: Option<changelog_store::TableWrite>,
    /// Memory the state writer's caches take from, shared with the other Gold
    /// tables' writers (`None`: the state table's own, from its options).
    budgets: Option<changelog_store::write::Budgets>,
}

/// How a Gold table is partitioned and where its state rows keep their
/// partition: rollups derive it from `window_start`; keyed tables (wide,
/// features) keep it in the state column [`PART`] (null = the null partition).
#[derive(Debug, Clone)]
pub enum Layout {
    Windowed(PartitionBy),
    Keyed { column: String, partition: PartitionBy },
}

impl Layout {
    fn partition_column(&self) -> &str {
        match self {
            Layout::Windowed(_) => WINDOW_START,
            Layout::Keyed { column, .. } => column,
        }
    }

    fn partition(&self) -> PartitionBy {
        match self {
            Layout::Windowed(p) | Layout::Keyed { partition: p, .. } => *p,
        }
    }
}

/// State column of keyed Gold tables: the Gold row's partition value.
pub const PART: &str = "_part";

impl GoldTable {
    /// Opens (creating where absent) `gold` with `schema` and its state table;
    /// the rows of every data file are sorted by `sort_by`, the table's
    /// declared sort order.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        catalog: SqlCatalog,
        gold: TableName,
        schema: &SchemaRef,
        layout: Layout,
        sort_by: Vec<String>,
        state_path: PathBuf,
        state: changelog_store::TableSpec,
        commit_user: String,
    ) -> Result<Self, SinkError> {
        let name = gold.name.clone();
        let iceberg_err = |what, source| SinkError::Iceberg { table: name.clone(), what, source };
        let iceberg_schema =
            iceberg::arrow::arrow_schema_to_schema(schema).map_err(|e| iceberg_err("converting the schema", e))?;
        let column = layout.partition_column();
        let start_id = iceberg_schema.field_by_name(column).map(|f| f.id).ok_or_else(|| SinkError::Invalid {
            table: name.clone(),
            message: format!("no partition column {column}"),
        })?;
        let partition = layout.partition();
        let (transform, field) = match partition {
            PartitionBy::Month => (Transform::Month, format!("{column}_month")),
            PartitionBy::Year => (Transform::Year, format!("{column}_year")),
        };
        let partition_spec = UnboundPartitionSpec::builder()
            .add_partition_field(start_id, field, transform)
            .map_err(|e| iceberg_err("building the partition spec", e))?
            .build();
        let spec = TableSpec {
            schema: iceberg_schema,
            partition_spec,
            properties: HashMap::from([
                ("write.parquet.compression-codec".to_string(), "zstd".to_string()),
                ("lakehouse.retention-days".to_string(), RETENTION_DAYS.to_string()),
                (lakehouse::table::rewrite::MAX_FILE_GROUP_SIZE_BYTES.to_string(), COMPACTION_GROUP_BYTES.to_string()),
            ]),
        };
        let head = load_or_create_sorted(&catalog, &gold, &spec, &sort_by).await?;
        // A Gold table made with other column types (by an older version, whose
        // narrow integers and decimals kept the Silver column's type) is not
        // written with files of this one's types.
        let existing = head.metadata.current_schema();
        for f in spec.schema.as_struct().fields() {
            if let Some(e) = existing.field_by_name(&f.name)
                && e.field_type != f.field_type
            {
                return Err(SinkError::Invalid {
                    table: name.clone(),
                    message: format!(
                        "column {} is {} in the Gold table but {} in this definition; rebuild the table \
                         (drop it and its state directory {}) or restore the definition",
                        f.name,
                        e.field_type,
                        f.field_type,
                        state_path.display()
                    ),
                });
            }
        }
        let store_err = |source| SinkError::Store { table: name.clone(), source };
        let state = if state_path.join("schema").exists() {
            Table::open(&state_path).map_err(store_err)?
        } else {
            Table::create(&state_path, state).map_err(store_err)?
        };
        Ok(GoldTable {
            name,
            committer: Committer::new(catalog.clone()),
            writer: DataFileWriter::new(catalog.file_io().clone(), Codec::Zstd(3), 128 << 20),
            deletes: PositionDeleteWriter::new(catalog.file_io().clone()),
            state,
            commit_user,
            layout,
            sort_by,
            head,
            write: None,
            budgets: None,
        })
    }

    /// Takes the state writer's cache memory from `budgets`, shared with other
    /// Gold tables (from the next writer opened on).
    pub fn share_memory(&mut self, budgets: changelog_store::write::Budgets) {
        self.budgets = Some(budgets);
        self.write = None;
    }

    fn store_err(&self) -> impl Fn(changelog_store::Error) -> SinkError + use<> {
        let table = self.name.clone();
        move |source| SinkError::Store { table: table.clone(), source }
    }

    fn invalid(&self) -> impl Fn(String) -> SinkError + use<> {
        let table = self.name.clone();
        move |message| SinkError::Invalid { table: table.clone(), message }
    }

    /// The state table's rows and its latest snapshot's properties (keyed tables).
    pub fn scan_state(&self) -> Result<(Vec<RecordBatch>, BTreeMap<String, String>), SinkError> {
        let Some(latest) = self.state.latest_snapshot().map_err(self.store_err())? else {
            return Ok((Vec::new(), BTreeMap::new()));
        };
        let batches = self.state.scan_batches(ReadAt::Snapshot(latest.id)).map_err(self.store_err())?;
        Ok((batches, latest.properties.unwrap_or_default()))
    }

    /// The state table's Arrow row schema.
    pub fn state_schema(&self) -> SchemaRef {
        changelog_store::data::arrow_conv::row_schema(self.state.info())
    }

    /// The Gold table's head as this writer last saw it.
    pub fn head(&self) -> &LoadedTable {
        &self.head
    }

    /// The state table (a changelog other Gold tables may read).
    pub fn state(&self) -> &Table {
        &self.state
    }

    /// Every group in the latest state snapshot, and that snapshot's properties (rollups).
    pub fn load(&self) -> Result<Loaded, SinkError> {
        let invalid = self.invalid();
        let Some(latest) = self.state.latest_snapshot().map_err(self.store_err())? else {
            return Ok((Vec::new(), BTreeMap::new()));
        };
        let mut groups = Vec::new();
        for b in self.state.scan_batches(ReadAt::Snapshot(latest.id)).map_err(self.store_err())? {
            let col = |n: &str| b.column_by_name(n).cloned().ok_or_else(|| invalid(format!("state has no column {n}")));
            let (window, start, group, state) = (col(WINDOW)?, col(WINDOW_START)?, col(GROUP)?, col(STATE)?);
            let (window, start) = (window.as_string::<i32>(), start.as_primitive::<Date32Type>());
            let (group, state) = (group.as_string::<i32>(), state.as_string::<i32>());
            for i in 0..b.num_rows() {
                let w = Window::parse(window.value(i))
                    .ok_or_else(|| invalid(format!("state row with window {:?}", window.value(i))))?;
                let g: Vec<Scalar> = serde_json::from_str(group.value(i))
                    .map_err(|e| invalid(format!("unreadable group {:?}: {e}", group.value(i))))?;
                let s: GroupState =
                    serde_json::from_str(state.value(i)).map_err(|e| invalid(format!("unreadable state: {e}")))?;
                groups.push(((w, start.value(i), g), s));
            }
        }
        Ok((groups, latest.properties.unwrap_or_default()))
    }

    /// Materialises every state snapshot Gold lacks (after a crash between
    /// the state commit and the Iceberg commit).
    pub async fn recover(&mut self) -> Result<Vec<Golded>, SinkError> {
        let Some(latest) = self.state.latest_snapshot_id().map_err(self.store_err())? else { return Ok(Vec::new()) };
        let from = self.materialized()?.unwrap_or(0) + 1;
        if from > latest {
            return Ok(Vec::new());
        }
        tracing::info!(table = %self.name, from, to = latest, "materialising the state snapshots Gold lacks");
        self.materialize_through(latest).await
    }

    /// The state snapshot the Gold head is materialised up to.
    pub fn materialized(&self) -> Result<Option<i64>, SinkError> {
        recorded(&self.head.metadata).map_err(self.invalid())
    }

    /// Commits the changed groups of a rollup: `live` (with their Gold rows,
    /// same order) and `gone` (groups left empty). `properties` (the Silver
    /// positions) go into the state snapshot and the Iceberg commit.
    pub async fn apply(
        &mut self,
        live: &[(GroupKey, GroupState)],
        rows: &RecordBatch,
        gone: &[GroupKey],
        properties: BTreeMap<String, String>,
    ) -> Result<Golded, SinkError> {
        let invalid = self.invalid();
        if rows.num_rows() != live.len() {
            return Err(invalid(format!("{} Gold rows for {} groups", rows.num_rows(), live.len())));
        }
        let schema = self.state_schema();
        let partitions: Vec<Option<i32>> =
            live.iter().map(|((_, start, _), _)| Some(self.partition_value(*start))).collect();
        let gone = if gone.is_empty() {
            None
        } else {
            Some(state_batch(&schema, gone.iter().map(|k| (k, None)), &vec![None; gone.len()]).map_err(&invalid)?)
        };
        let state_rows = |locations: &[Option<(Arc<str>, i64)>]| {
            state_batch(&schema, live.iter().map(|(k, s)| (k, Some(s))), locations)
        };
        self.commit_rows(rows, &partitions, state_rows, gone, properties).await
    }

    /// Commits changed rows of a keyed table: `rows` (Gold rows, each with its
    /// partition value) replace the rows of the same key; `gone` (state rows
    /// with the key columns set) are deleted.
    pub async fn apply_keyed(
        &mut self,
        rows: &RecordBatch,
        partitions: &[Option<i32>],
        gone: Option<RecordBatch>,
        properties: BTreeMap<String, String>,
    ) -> Result<Golded, SinkError> {
        let schema = self.state_schema();
        let gone = gone
            .filter(|g| g.num_rows() > 0)
            .map(|g| keyed_state_batch(&schema, &g, &vec![None; g.num_rows()], &vec![None; g.num_rows()]))
            .transpose()
            .map_err(self.invalid())?;
        let state_rows =
            |locations: &[Option<(Arc<str>, i64)>]| keyed_state_batch(&schema, rows, partitions, locations);
        self.commit_rows(rows, partitions, state_rows, gone, properties).await
    }

    /// The three steps of the module docs: Gold rows written, the state
    /// committed (`state_rows` gets each Gold row's location), Gold materialised.
    async fn commit_rows(
        &mut self,
        rows: &RecordBatch,
        partitions: &[Option<i32>],
        state_rows: impl FnOnce(&[Option<(Arc<str>, i64)>]) -> Result<RecordBatch, String>,
        gone: Option<RecordBatch>,
        properties: BTreeMap<String, String>,
    ) -> Result<Golded, SinkError> {
        let invalid = self.invalid();
        if rows.num_rows() != partitions.len() {
            return Err(invalid(format!("{} Gold rows for {} partition values", rows.num_rows(), partitions.len())));
        }
        // 1. New Gold rows, one write per partition, sorted within it.
        let started = std::time::Instant::now();
        let mut by_partition: BTreeMap<Option<i32>, Vec<u32>> = BTreeMap::new();
        for i in self.sorted(rows).map_err(&invalid)? {
            by_partition.entry(partitions[i as usize]).or_default().push(i);
        }
        let mut files = Vec::new();
        let mut locations: Vec<Option<(Arc<str>, i64)>> = vec![None; rows.num_rows()];
        for (value, indices) in &by_partition {
            let take = arrow_array::UInt32Array::from(indices.clone());
            let part = arrow_select::take::take_record_batch(rows, &take)
                .map_err(|e| invalid(format!("splitting rows by partition: {e}")))?;
            let written = self
                .writer
                .write(&self.head.metadata, partition_struct(*value), std::slice::from_ref(&part))
                .await
                .map_err(|source| SinkError::Iceberg {
                    table: self.name.clone(),
                    what: "writing data files",
                    source,
                })?;
            let mut next = indices.iter();
            for f in &written {
                let path: Arc<str> = Arc::from(f.file_path());
                for pos in 0..f.record_count() as i64 {
                    let i = next.next().ok_or_else(|| invalid("more rows written than given".into()))?;
                    locations[*i as usize] = Some((path.clone(), pos));
                }
            }
            if next.next().is_some() {
                return Err(invalid("fewer rows written than given".into()));
            }
            files.extend(written);
        }
        lakehouse::table::durable::sync_all(files.iter().map(|f| f.file_path().to_string()))
            .await
            .map_err(|e| invalid(format!("syncing data files: {e}")))?;
        // 2. The state: changed rows with their new locations, gone ones deleted.
        // A kept writer that finds another commit user in its buckets since it
        // last committed (a `lakehouse compact`) is refused by the store: the
        // state is then written again by a fresh writer from the latest snapshot.
        let batch = if rows.num_rows() > 0 { vec![state_rows(&locations).map_err(&invalid)?] } else { Vec::new() };
        let gone = gone.filter(|b| b.num_rows() > 0);
        let encoded = lakehouse::table::data_files::encode(&self.head.metadata, &files).map_err(|source| {
            SinkError::Iceberg { table: self.name.clone(), what: "serialising data files", source }
        })?;
        let mut props = properties;
        props.insert(FILES_KEY.to_string(), encoded);
        let written_at = started.elapsed();
        let mut attempt = 0;
        let snapshot = loop {
            attempt += 1;
            match self.commit_state(&batch, gone.as_ref(), props.clone(), true) {
                Ok(s) => break s,
                Err(SinkError::Store { source: changelog_store::Error::Conflict { message, .. }, .. })
                    if attempt < 3 =>
                {
                    tracing::info!(table = %self.name, %message,
                        "another writer committed to the state table; writing the state again from its latest snapshot");
                }
                Err(e) => return Err(e),
            }
        };
        // 3. Gold follows the state.
        let state_at = started.elapsed();
        let mut done = self.materialize_through(snapshot).await?;
        tracing::debug!(table = %self.name, rows = rows.num_rows(), write_ms = written_at.as_millis() as u64,
            state_ms = (state_at - written_at).as_millis() as u64,
            materialize_ms = (started.elapsed() - state_at).as_millis() as u64, "commit phases");
        done.pop().filter(|g| g.state_snapshot == snapshot).ok_or_else(|| {
            invalid(format!("state snapshot {snapshot} was not materialised (another writer is ahead?)"))
        })
    }

    /// State rows of a keyed table at the rewritten rows' new locations. A
    /// keyed table's state row is its Gold row (cast to the state's types) with
    /// the row's partition and location, and every live Gold row is its key's
    /// current state row (the state is the index of Gold's live rows), so the
    /// rows come from the rewrite itself: no scan of the state.
    fn relocate_keyed(&self, outputs: &[RewrittenFile]) -> Result<Vec<RecordBatch>, SinkError> {
        let schema = self.state_schema();
        let mut out = Vec::with_capacity(outputs.len());
        for o in outputs {
            let part = match o.file.partition().fields().first() {
                Some(Some(Literal::Primitive(PrimitiveLiteral::Int(v)))) => Some(*v),
                _ => None,
            };
            let path: Arc<str> = Arc::from(o.file.file_path());
            let n = o.rows.num_rows();
            let locations: Vec<Option<(Arc<str>, i64)>> = (0..n as i64).map(|p| Some((path.clone(), p))).collect();
            out.push(keyed_state_batch(&schema, &o.rows, &vec![part; n], &locations).map_err(self.invalid())?);
        }
        Ok(out)
    }

    /// State rows of a rollup at the rewritten rows' new locations: the Gold
    /// row does not carry the group's accumulators, so the state rows located
    /// in the rewritten files are found by a scan of the state at `base` (a
    /// rollup's state is one row per window and group, small beside its
    /// source). Every row the rewrite kept must be found there.
    fn relocate_scanned(
        &self,
        outputs: &[RewrittenFile],
        base: i64,
        rows_kept: u64,
    ) -> Result<Vec<RecordBatch>, SinkError> {
        let invalid = self.invalid();
        // Old location → new, for every row the rewrite kept.
        let mut moved: HashMap<&str, HashMap<i64, (Arc<str>, i64)>> = HashMap::new();
        for o in outputs {
            let path: Arc<str> = Arc::from(o.file.file_path());
            for (new_pos, (old_file, old_pos)) in o.sources.iter().enumerate() {
                moved.entry(old_file.as_ref()).or_default().insert(*old_pos, (path.clone(), new_pos as i64));
            }
        }
        let schema = self.state_schema();
        let mut relocated = Vec::new();
        let mut count = 0u64;
        for b in self.state.scan_batches(ReadAt::Snapshot(base)).map_err(self.store_err())? {
            let col = |n: &str| b.column_by_name(n).ok_or_else(|| invalid(format!("state has no column {n}")));
            let (file, pos) = (col(GOLD_FILE)?.as_string::<i32>(), col(GOLD_POS)?.as_primitive::<Int64Type>());
            let mut take = Vec::new();
            let mut locations = Vec::new();
            for i in 0..b.num_rows() {
                if file.is_null(i) || pos.is_null(i) {
                    continue;
                }
                if let Some(to) = moved.get(file.value(i)).and_then(|m| m.get(&pos.value(i))) {
                    take.push(i as u32);
                    locations.push(Some(to.clone()));
                }
            }
            if take.is_empty() {
                continue;
            }
            count += take.len() as u64;
            let rows = arrow_select::take::take_record_batch(&b, &arrow_array::UInt32Array::from(take))
                .map_err(|e| invalid(format!("selecting moved state rows: {e}")))?;
            let [new_file, new_pos] = location_columns(&locations);
            let columns = schema
                .fields()
                .iter()
                .map(|f| match f.name().as_str() {
                    GOLD_FILE => Ok(new_file.clone()),
                    GOLD_POS => Ok(new_pos.clone()),
                    n => rows.column_by_name(n).cloned().ok_or_else(|| invalid(format!("state has no column {n}"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            relocated.push(
                RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|e| invalid(format!("building moved state rows: {e}")))?,
            );
        }
        if count != rows_kept {
            return Err(invalid(format!(
                "the rewrite kept {rows_kept} rows but the state locates {count} of them there: state and Gold disagree"
            )));
        }
        Ok(relocated)
    }

    /// Writes and commits one state snapshot (step 2): `rows` upserted, `gone`
    /// deleted. The writer is kept for the next commit, dropped on failure.
    fn commit_state(
        &mut self,
        rows: &[RecordBatch],
        gone: Option<&RecordBatch>,
        props: BTreeMap<String, String>,
        changelog: bool,
    ) -> Result<i64, SinkError> {
        let invalid = self.invalid();
        let mut write = match self.write.take() {
            Some(w) => w,
            None => {
                let w = self.state.new_write().map_err(self.store_err())?;
                match &self.budgets {
                    Some(b) => w.with_budgets(b.clone()),
                    None => w,
                }
            }
        };
        write.set_changelog(changelog);
        for batch in rows {
            write.write_batch(batch, &[RowKind::Insert]).map_err(self.store_err())?;
        }
        if let Some(batch) = gone {
            write.write_batch(batch, &[RowKind::Delete]).map_err(self.store_err())?;
        }
        let messages = write.prepare_commit().map_err(self.store_err())?;
        write.set_changelog(true);
        let committer = self.state.new_committer(self.commit_user.clone());
        let identifier = committer.latest_identifier_of_user().map_err(self.store_err())?.unwrap_or(0) + 1;
        let outcome = committer.commit(identifier, messages, Some(props)).map_err(self.store_err())?;
        let snapshot = match outcome {
            changelog_store::CommitOutcome::Committed(ids) => ids.into_iter().next(),
            _ => None,
        };
        let snapshot = snapshot.ok_or_else(|| invalid("the state commit created no snapshot".into()))?;
        self.write = Some(write);
        Ok(snapshot)
    }

    /// Materialises every state snapshot after Gold's head up to `n`, in
    /// order. Another writer of the same Gold table (`lakehouse compact`) may
    /// materialise some of them first: a commit finding Gold already past its
    /// snapshot is fenced, the head is reloaded and materialising goes on from
    /// there. A state snapshot's materialisation is decided by the store alone,
    /// so it does not matter which writer commits it.
    async fn materialize_through(&mut self, n: i64) -> Result<Vec<Golded>, SinkError> {
        let mut out = Vec::new();
        for _attempt in 0..32 {
            let from = self.materialized()?.unwrap_or(0) + 1;
            let mut fenced = false;
            for k in from..=n {
                match self.materialize(k).await {
                    Ok(g) => out.push(g),
                    Err(SinkError::Commit(CommitError::Fenced { reason, .. })) => {
                        tracing::info!(table = %self.name, state_snapshot = k, %reason,
                            "another writer moved Gold; reloading and materialising from its head");
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
        Err(self.invalid()(format!("Gold did not settle at state snapshot {n} after 32 attempts")))
    }

    /// Compacts the Gold table: the data files whose deleted fraction passes
    /// the table's thresholds (`lakehouse.compaction.*`) are rewritten without
    /// their deleted rows, the state moves every moved row's location in one
    /// snapshot that records the rewrite, and materialising that snapshot
    /// commits it as an Iceberg `replace`. Run between this writer's commits.
    /// `Ok(None)`: nothing to do, or another writer committed to the state
    /// while it ran (its files are left unreferenced; tried again later).
    pub async fn compact(&mut self) -> Result<Option<Compacted>, SinkError> {
        let invalid = self.invalid();
        let Some(base) = self.state.latest_snapshot().map_err(self.store_err())? else { return Ok(None) };
        self.head = self.committer.catalog().require_table(&self.head.name).await?;
        self.recover().await?;
        let file_io = self.committer.catalog().file_io().clone();
        let policy = CompactionPolicy::from_properties(self.head.metadata.properties())?;
        let Some(plan) = lakehouse::table::rewrite::plan(&file_io, &self.head.metadata, &policy).await? else {
            return Ok(None);
        };
        let rewritten = plan.write(&file_io, &self.head.metadata, &policy).await?;
        let Operation::Rewrite(files) = rewritten.operation() else {
            return Err(invalid("a rewrite that is not one".into()));
        };
        let encoded = files.encode(&self.head.metadata).map_err(|source| SinkError::Iceberg {
            table: self.name.clone(),
            what: "serialising the rewrite",
            source,
        })?;
        let relocated = match &self.layout {
            Layout::Keyed { .. } => self.relocate_keyed(&rewritten.outputs)?,
            Layout::Windowed(_) => self.relocate_scanned(&rewritten.outputs, base.id, rewritten.stats.rows_kept)?,
        };
        let table = self.head.name.to_string();
        let dropped = |why: String| {
            metrics::counter!(names::COMPACTION_CONFLICTS, "layer" => "gold", "table" => table.clone()).increment(1);
            tracing::info!(table = %table, %why, "compaction dropped: another writer got in first; tried again later");
        };
        let latest = self.state.latest_snapshot_id().map_err(self.store_err())?.unwrap_or(0);
        if latest != base.id {
            dropped(format!("the state moved from snapshot {} to {latest} while it ran", base.id));
            return Ok(None);
        }
        // The positions consumed stay those of the base (a restart reads them
        // from the latest state snapshot); the data files are the rewrite's.
        let mut props: BTreeMap<String, String> =
            base.properties.unwrap_or_default().into_iter().filter(|(k, _)| k != FILES_KEY).collect();
        props.insert(REWRITE_KEY.to_string(), encoded);
        // A commit racing it since (the store's bucket check) drops it too.
        // No changelog for it: only locations move, its materialisation takes the
        // rewrite from the properties, and tables reading this one skip it; the
        // `lookup` producer would look up every moved row for nothing.
        let snapshot = match self.commit_state(&relocated, None, props, false) {
            Ok(s) => s,
            Err(SinkError::Store { source: changelog_store::Error::Conflict { message, .. }, .. }) => {
                dropped(message);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let done = self.materialize_through(snapshot).await?;
        let snapshot_id = done
            .iter()
            .find(|g| g.state_snapshot == snapshot)
            .and_then(|g| g.commit.as_ref().map(|c| c.snapshot_id))
            .ok_or_else(|| invalid(format!("the rewrite of state snapshot {snapshot} was not committed to Gold")))?;
        let stats = rewritten.stats;
        stats.record("gold", &table, snapshot, snapshot_id);
        Ok(Some(Compacted { state_snapshot: snapshot, snapshot_id, stats }))
    }

    /// Row indices of `rows` in the table's sort order.
    fn sorted(&self, rows: &RecordBatch) -> Result<Vec<u32>, String> {
        let n = rows.num_rows() as u32;
        if n < 2 || self.sort_by.is_empty() {
            return Ok((0..n).collect());
        }
        let options = arrow_ord::sort::SortOptions { descending: false, nulls_first: true };
        let columns = self
            .sort_by
            .iter()
            .map(|c| {
                let values = rows.column_by_name(c).ok_or_else(|| format!("no sort column {c}"))?.clone();
                Ok(arrow_ord::sort::SortColumn { values, options: Some(options) })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let order = arrow_ord::sort::lexsort_to_indices(&columns, None).map_err(|e| format!("sorting rows: {e}"))?;
        Ok(order.values().to_vec())
    }

    fn partition_value(&self, window_start: i32) -> i32 {
        partition_ordinal(self.layout.partition(), window_start)
    }

    /// Brings Gold to state snapshot `n` (which must follow what Gold has).
    async fn materialize(&mut self, n: i64) -> Result<Golded, SinkError> {
        let started = Instant::now();
        let invalid = self.invalid();
        // Only the locations (and what gives their partitions) are read.
        let partition_column = match &self.layout {
            Layout::Windowed(_) => WINDOW_START,
            Layout::Keyed { .. } => PART,
        };
        let columns = [GOLD_FILE, GOLD_POS, partition_column].map(String::from);
        let changes = self.state.change_batches_projected(n, &columns).map_err(self.store_err())?;
        if changes.commit_kind == changelog_store::spec::snapshot::CommitKind::Compact {
            // A compaction changes no group; its properties repeat the APPEND
            // snapshot's (files included), which is materialised on its own.
            return Ok(Golded { state_snapshot: n, commit: None, deleted: 0 });
        }
        let props = changes.properties.clone().unwrap_or_default();
        if let Some(record) = props.get(REWRITE_KEY) {
            return self.materialize_rewrite(n, record, &props, started).await;
        }
        let data_files = self.decode_files(props.get(FILES_KEY).map(String::as_str).unwrap_or("[]"))?;
        let mut kept: HashSet<(String, i64)> = HashSet::new();
        let mut old: Vec<(String, i64)> = Vec::new();
        let mut partition_of: HashMap<String, Option<i32>> = HashMap::new();
        for b in &changes.batches {
            let col = |n: &str| b.rows.column_by_name(n).ok_or_else(|| invalid(format!("state has no column {n}")));
            let (file, pos) = (col(GOLD_FILE)?, col(GOLD_POS)?);
            let (file, pos) = (file.as_string::<i32>(), pos.as_primitive::<Int64Type>());
            let part = match &self.layout {
                Layout::Windowed(p) => {
                    let start = col(WINDOW_START)?.as_primitive::<Date32Type>().clone();
                    let p = *p;
                    Box::new(move |i: usize| Some(partition_ordinal(p, start.value(i))))
                        as Box<dyn Fn(usize) -> Option<i32>>
                }
                Layout::Keyed { .. } => {
                    let part = col(PART)?.as_primitive::<Int32Type>().clone();
                    Box::new(move |i: usize| (!part.is_null(i)).then(|| part.value(i)))
                }
            };
            for i in 0..b.rows.num_rows() {
                if file.is_null(i) || pos.is_null(i) {
                    continue; // a delete's own record carries no location
                }
                let loc = (file.value(i).to_string(), pos.value(i));
                match RowKind::from_byte(b.kinds.value(i)) {
                    Some(RowKind::Insert | RowKind::UpdateAfter) => {
                        kept.insert(loc);
                    }
                    Some(RowKind::UpdateBefore | RowKind::Delete) => {
                        partition_of.insert(loc.0.clone(), part(i));
                        old.push(loc);
                    }
                    None => return Err(invalid(format!("state snapshot {n}: bad row kind {}", b.kinds.value(i)))),
                }
            }
        }
        let doomed: Vec<(String, i64)> = old.into_iter().filter(|l| !kept.contains(l)).collect();
        let rows: u64 = data_files.iter().map(|f| f.record_count()).sum();
        let deleted = doomed.len() as u64;
        if data_files.is_empty() && doomed.is_empty() {
            return Ok(Golded { state_snapshot: n, commit: None, deleted: 0 });
        }
        let targets: Vec<ReferencedFile> =
            partition_of.iter().map(|(p, v)| ReferencedFile::new(p.clone(), partition_struct(*v))).collect();
        let delete_files = self.deletes.write(&self.head.metadata, &targets, doomed).await?;
        self.commit_snapshot(n, Operation::RowDelta { data_files, delete_files }, &props, rows, deleted, started).await
    }

    /// Commits the rewrite state snapshot `n` records (its changelog only
    /// moves locations: no position deletes).
    async fn materialize_rewrite(
        &mut self,
        n: i64,
        record: &str,
        props: &BTreeMap<String, String>,
        started: Instant,
    ) -> Result<Golded, SinkError> {
        let files = RewriteFiles::decode(&self.head.metadata, record).map_err(self.invalid())?;
        let rows: u64 = files.added.iter().map(|f| f.record_count()).sum();
        self.commit_snapshot(n, Operation::Rewrite(files), props, rows, 0, started).await
    }

    /// Commits `operation` to Gold as the materialisation of state snapshot
    /// `n` (whose properties, the Silver positions, go into the summary),
    /// fenced if Gold already has `n` or a later one.
    async fn commit_snapshot(
        &mut self,
        n: i64,
        operation: Operation,
        props: &BTreeMap<String, String>,
        rows: u64,
        deleted: u64,
        started: Instant,
    ) -> Result<Golded, SinkError> {
        let mut summary: HashMap<String, String> = props
            .iter()
            .filter(|(k, _)| k.as_str() != FILES_KEY && k.as_str() != REWRITE_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        summary.insert(STATE_SNAPSHOT_KEY.to_string(), n.to_string());
        let check = move |head: &TableMetadata| match recorded(head) {
            Ok(Some(m)) if m >= n => Err(Fenced(format!("Gold already has state snapshot {m}, this commit is {n}"))),
            Ok(_) => Ok(summary.clone()),
            Err(e) => Err(Fenced(e)),
        };
        let done = self.committer.commit(&self.head, operation, &check).await?;
        self.head = done.table.clone();
        Ok(Golded {
            state_snapshot: n,
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

    fn decode_files(&self, json: &str) -> Result<Vec<DataFile>, SinkError> {
        lakehouse::table::data_files::decode(&self.head.metadata, json)
            .map_err(|e| SinkError::Invalid { table: self.name.clone(), message: format!("{FILES_KEY}: {e}") })
    }
}

/// The state snapshot a Gold head records; an unreadable value is an error.
fn recorded(metadata: &TableMetadata) -> Result<Option<i64>, String> {
    newest_in_ancestry(metadata, STATE_SNAPSHOT_KEY)
        .map(|(_, v)| v.parse().map_err(|_| format!("unreadable {STATE_SNAPSHOT_KEY} {v:?}")))
        .transpose()
}

fn partition_struct(value: Option<i32>) -> Struct {
    Struct::from_iter([value.map(Literal::int)])
}

/// The Iceberg month or year transform of a day (days since 1970-01-01).
pub fn partition_ordinal(partition: PartitionBy, day: i32) -> i32 {
    match partition {
        PartitionBy::Month => month_ordinal(day),
        PartitionBy::Year => year_ordinal(day),
    }
}

/// The state table: one row per (window, window start, group) with the
/// group's accumulators (JSON) and where its Gold row lives.
pub fn state_spec(buckets: usize) -> changelog_store::TableSpec {
    changelog_store::TableSpec {
        columns: vec![
            (WINDOW.into(), "STRING NOT NULL".into()),
            (WINDOW_START.into(), "DATE NOT NULL".into()),
            (GROUP.into(), "STRING NOT NULL".into()),
            (STATE.into(), "STRING".into()),
            (GOLD_FILE.into(), "STRING".into()),
            (GOLD_POS.into(), "BIGINT".into()),
        ],
        primary_keys: vec![WINDOW.into(), WINDOW_START.into(), GROUP.into()],
        partition_keys: Vec::new(),
        options: state_options(buckets),
    }
}

/// Options of every Gold state table: Gold's own index, deduplicated by key,
/// with the `lookup` changelog the materialisation (and readers) consume.
fn state_options(buckets: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("bucket".to_string(), buckets.max(1).to_string()),
        ("merge-engine".to_string(), "deduplicate".to_string()),
        ("changelog-producer".to_string(), "lookup".to_string()),
        // The writer lives across commits; one Gold worker holds one per table.
        // (A running aggregator shares one budget over its tables instead:
        // `gold.state_cache_mib`.)
        ("lookup.cache-max-memory-size".to_string(), "32 mb".to_string()),
        // A Gold round writes a few MiB per table, far below Paimon's 256 MiB
        // default; the size also bounds what a compaction keeps of its output
        // for the next one (an eighth: 8 MiB instead of 32 per writer).
        ("write-buffer-size".to_string(), "64 mb".to_string()),
    ])
}

/// The `_gold_file` and `_gold_pos` columns of state rows (null for a delete).
fn location_columns(locations: &[Option<(Arc<str>, i64)>]) -> [ArrayRef; 2] {
    [
        Arc::new(locations.iter().map(|l| l.as_ref().map(|(p, _)| p.as_ref())).collect::<StringArray>()),
        Arc::new(locations.iter().map(|l| l.as_ref().map(|(_, pos)| *pos)).collect::<Int64Array>()),
    ]
}

/// State rows: `(group, state or none for a delete)` with their locations.
fn state_batch<'a>(
    schema: &SchemaRef,
    rows: impl Iterator<Item = (&'a GroupKey, Option<&'a GroupState>)>,
    locations: &[Option<(Arc<str>, i64)>],
) -> Result<RecordBatch, String> {
    let (mut windows, mut starts, mut groups, mut states) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((w, start, g), s) in rows {
        windows.push(w.as_str());
        starts.push(*start);
        groups.push(serde_json::to_string(g).map_err(|e| e.to_string())?);
        states.push(s.map(serde_json::to_string).transpose().map_err(|e| e.to_string())?);
    }
    let [file, pos] = location_columns(locations);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(windows)),
        Arc::new(Date32Array::from(starts)),
        Arc::new(StringArray::from(groups)),
        Arc::new(StringArray::from(states)),
        file,
        pos,
    ];
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| format!("building state rows: {e}"))
}

/// The state table of a keyed Gold table (wide, features): the Gold row's
/// columns (key columns NOT NULL, the rest nullable so a delete carries the
/// key alone), its partition value and its location. Other Gold tables may
/// read its changelog like a Silver entity's (a rollup over a wide table).
pub fn keyed_state_spec(
    gold: &SchemaRef,
    key: &[String],
    buckets: usize,
) -> Result<changelog_store::TableSpec, String> {
    let mut columns = Vec::new();
    for f in gold.fields() {
        let ty = changelog_store::data::arrow_conv::paimon_type_of(f.data_type())
            .ok_or_else(|| format!("column {} of type {} has no store type", f.name(), f.data_type()))?;
        let ty = if key.contains(f.name()) { format!("{ty} NOT NULL") } else { ty };
        columns.push((f.name().clone(), ty));
    }
    columns.push((PART.into(), "INT".into()));
    columns.push((GOLD_FILE.into(), "STRING".into()));
    columns.push((GOLD_POS.into(), "BIGINT".into()));
    Ok(changelog_store::TableSpec {
        columns,
        primary_keys: key.to_vec(),
        partition_keys: Vec::new(),
        options: state_options(buckets),
    })
}

/// State rows of a keyed table: the Gold rows cast to the state's types, with
/// their partition values and locations (none for a delete).
pub fn keyed_state_batch(
    schema: &SchemaRef,
    rows: &RecordBatch,
    partitions: &[Option<i32>],
    locations: &[Option<(Arc<str>, i64)>],
) -> Result<RecordBatch, String> {
    let [file, pos] = location_columns(locations);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let col: ArrayRef = match f.name().as_str() {
            PART => Arc::new(arrow_array::Int32Array::from(partitions.to_vec())),
            GOLD_FILE => file.clone(),
            GOLD_POS => pos.clone(),
            name => {
                let src = rows.column_by_name(name).ok_or_else(|| format!("the Gold rows have no column {name}"))?;
                arrow_cast::cast(src, f.data_type())
                    .map_err(|e| format!("column {name}: {} → {}: {e}", src.data_type(), f.data_type()))?
            }
        };
        columns.push(col);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| format!("building state rows: {e}"))
}
