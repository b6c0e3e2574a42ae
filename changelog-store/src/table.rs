//! [`Table`]: the public entry point (create/open, write, commit, read, changelog,
//! compaction, expiration).

use crate::clock::{self, SharedClock};
use crate::commit::{CommitOutcome, Committer};
use crate::consumer;
use crate::error::{Error, Result};
use crate::expire::{self, ExpireReport};
use crate::fs;
use crate::manifest_io::ManifestIo;
use crate::options::MergeEngine;
use crate::paths::TablePaths;
use crate::read::changelog_reader::{self, SnapshotChanges};
use crate::read::scan::{self, KeyRange};
use crate::read::snapshot_reader::SnapshotReader;
use crate::row::{Datum, Row};
use crate::snapshot_manager::SnapshotManager;
use crate::spec::schema::TableSchema;
use crate::spec::snapshot::Snapshot;
use crate::spec::types::DataType;
use crate::table_info::TableInfo;
use crate::write::TableWrite;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to create: columns (name, Paimon type string), keys and options.
#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    pub columns: Vec<(String, String)>,
    pub primary_keys: Vec<String>,
    pub partition_keys: Vec<String>,
    pub options: BTreeMap<String, String>,
}

/// Which version of the table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAt {
    #[default]
    Latest,
    Snapshot(i64),
    /// The newest snapshot committed at or before this time (epoch millis).
    Timestamp(i64),
}

/// A primary-key table in Paimon layout.
#[derive(Debug, Clone)]
pub struct Table {
    info: Arc<TableInfo>,
    paths: TablePaths,
    clock: SharedClock,
}

impl Table {
    /// Creates a table at `path` (`schema/schema-0`); fails if one exists.
    pub fn create(path: impl Into<PathBuf>, spec: TableSpec) -> Result<Table> {
        Table::create_with_clock(path, spec, clock::system())
    }

    /// Creates `<warehouse>/<database>.db/<table>`.
    pub fn create_in_warehouse(warehouse: &Path, database: &str, table: &str, spec: TableSpec) -> Result<Table> {
        Table::create(TablePaths::in_warehouse(warehouse, database, table).root(), spec)
    }

    pub fn create_with_clock(path: impl Into<PathBuf>, spec: TableSpec, clock: SharedClock) -> Result<Table> {
        let paths = TablePaths::new(path.into());
        let columns =
            spec.columns.iter().map(|(n, t)| Ok((n.clone(), DataType::parse(t)?))).collect::<Result<Vec<_>>>()?;
        let mut options = spec.options.clone();
        // `count` is not a Paimon aggregator: store it as `sum` of per-row ones so that
        // Paimon readers compute the same value, and remember it was a count.
        let counts: Vec<String> = options
            .iter()
            .filter(|(k, v)| k.starts_with("fields.") && k.ends_with(".aggregate-function") && v.trim() == "count")
            .map(|(k, _)| k.clone())
            .collect();
        for k in counts {
            let field = k["fields.".len()..k.len() - ".aggregate-function".len()].to_string();
            options.insert(k, "sum".into());
            options.insert(format!("fields.{field}.changelog-store.count"), "true".into());
        }
        let schema = TableSchema::new(
            columns,
            spec.partition_keys.clone(),
            spec.primary_keys.clone(),
            options,
            clock.now_millis(),
        )?;
        let info = TableInfo::new(schema)?;
        crate::merge::merge_function(&info)?;
        if !info.sequence_indices.is_empty()
            && matches!(info.options.merge_engine, MergeEngine::PartialUpdate | MergeEngine::FirstRow)
        {
            // Folding partial updates in the write buffer loses per-field order, so a
            // late record with a smaller sequence value could not be placed correctly.
            return Err(Error::Unsupported(format!(
                "`sequence.field` with merge-engine {:?}",
                info.options.merge_engine
            )));
        }
        fs::create_dir_all(&paths.schema_dir())?;
        if !fs::create_if_absent(&paths.schema_file(0), info.schema.to_json()?.as_bytes())? {
            return Err(Error::TableExists(paths.root().to_path_buf()));
        }
        Ok(Table { info: Arc::new(info), paths, clock })
    }

    /// Opens the table at `path` with its newest schema.
    pub fn open(path: impl Into<PathBuf>) -> Result<Table> {
        Table::open_with_clock(path, clock::system())
    }

    pub fn open_with_clock(path: impl Into<PathBuf>, clock: SharedClock) -> Result<Table> {
        let paths = TablePaths::new(path.into());
        let latest = fs::list(&paths.schema_dir())?
            .iter()
            .filter_map(|n| n.strip_prefix("schema-").and_then(|s| s.parse::<i64>().ok()))
            .max()
            .ok_or_else(|| Error::TableNotFound(paths.root().to_path_buf()))?;
        let file = paths.schema_file(latest);
        let schema: TableSchema = serde_json::from_slice(&fs::read(&file)?).map_err(|source| Error::Json {
            op: "parsing schema",
            path: file,
            source,
        })?;
        Ok(Table { info: Arc::new(TableInfo::new(schema)?), paths, clock })
    }

    /// Adds nullable columns at the end of the schema — Paimon's schema evolution:
    /// `schema/schema-<N+1>` with field ids after `highestFieldId`, published with
    /// create-if-absent (a concurrent writer that publishes the same schema id first
    /// makes this look again). `columns` are `(name, type)` as in [`TableSpec`];
    /// names the table already has are skipped. Rows written before read the new
    /// columns as null. Returns the table at its newest schema: writers keep the
    /// schema they were opened with, so open new ones from the returned table.
    pub fn add_columns(&self, columns: &[(String, String)]) -> Result<Table> {
        self.evolve("columns added", |schema, _| {
            let mut added = false;
            for (name, ty) in columns {
                if schema.field_index(name).is_some() {
                    continue;
                }
                if name.starts_with("_KEY_") || ["_SEQUENCE_NUMBER", "_VALUE_KIND"].contains(&name.as_str()) {
                    return Err(Error::InvalidSchema(format!("column name `{name}` is reserved")));
                }
                let data_type = DataType::parse(ty)?;
                if !data_type.nullable {
                    return Err(Error::InvalidSchema(format!(
                        "an added column must be nullable (rows written before have none): `{name}` {ty}"
                    )));
                }
                schema.highest_field_id += 1;
                schema.fields.push(crate::spec::schema::DataField {
                    id: schema.highest_field_id,
                    name: name.clone(),
                    data_type,
                    description: None,
                });
                added = true;
            }
            Ok(added)
        })
    }

    /// Widens value columns in place — Paimon's `ALTER COLUMN … TYPE` for the lossless
    /// promotions of [`DataType::widens_to`]: `schema/schema-<N+1>` with each named
    /// field's type replaced (same field id, nullability kept), published with
    /// create-if-absent like [`Table::add_columns`]. Files written before keep their
    /// types and are widened as they are read. Key, partition, bucket-key and
    /// sequence columns cannot change type (a key's bucket and sort order are computed
    /// from its encoding); neither can a column to a type it does not widen to.
    /// Columns already of the requested type are skipped. Returns the table at its
    /// newest schema: open new writers from it.
    pub fn widen_columns(&self, columns: &[(String, String)]) -> Result<Table> {
        self.evolve("columns widened", |schema, info| {
            let mut changed = false;
            for (name, ty) in columns {
                let refuse = |why: String| {
                    Err(Error::InvalidSchema(format!("column `{name}` cannot change type to {ty}: {why}")))
                };
                let Some(i) = schema.field_index(name) else { return refuse("no such column".into()) };
                let pinned = info.key_indices.contains(&i)
                    || info.partition_indices.contains(&i)
                    || info.bucket_key_indices.contains(&i)
                    || info.sequence_indices.contains(&i)
                    || schema.primary_keys.iter().any(|k| k == name);
                let field = &mut schema.fields[i];
                let to = DataType::parse(ty)?.with_nullable(field.data_type.nullable);
                if to == field.data_type {
                    continue;
                }
                if pinned {
                    return refuse("it is a key, partition, bucket-key or sequence column".into());
                }
                if !field.data_type.widens_to(&to) {
                    return refuse(format!("{} does not widen to it without loss", field.data_type));
                }
                field.data_type = to;
                changed = true;
            }
            Ok(changed)
        })
    }

    /// Publishes the schema `change` makes of the newest one (it returns whether it
    /// changed anything) as `schema/schema-<N+1>`, with create-if-absent: when a
    /// concurrent writer publishes that id first, it looks again from there.
    fn evolve(&self, what: &str, change: impl Fn(&mut TableSchema, &TableInfo) -> Result<bool>) -> Result<Table> {
        for _attempt in 0..16 {
            let current = Table::open_with_clock(self.paths.root(), self.clock.clone())?;
            let mut schema = current.info.schema.clone();
            if !change(&mut schema, &current.info)? {
                return Ok(current);
            }
            schema.id += 1;
            schema.time_millis = self.clock.now_millis();
            let info = TableInfo::new(schema.clone())?;
            if fs::create_if_absent(&self.paths.schema_file(schema.id), schema.to_json()?.as_bytes())? {
                tracing::info!(table = %self.paths.root().display(), schema_id = schema.id, "{what}");
                return Ok(Table { info: Arc::new(info), paths: self.paths.clone(), clock: self.clock.clone() });
            }
        }
        Err(Error::Unsupported(format!(
            "{what} in {}: lost to 16 concurrent schema changes in a row",
            self.paths.root().display()
        )))
    }

    /// Whether another schema was published after the one this handle holds
    /// (columns added or widened since it was opened): reopen to read files
    /// written with it (a widened column's files are refused by this handle).
    pub fn has_newer_schema(&self) -> bool {
        fs::exists(&self.paths.schema_file(self.info.schema.id + 1))
    }

    pub fn path(&self) -> &Path {
        self.paths.root()
    }

    pub fn schema(&self) -> &TableSchema {
        &self.info.schema
    }

    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    fn snapshots_mgr(&self) -> SnapshotManager {
        SnapshotManager::new(self.paths.clone())
    }

    fn manifests(&self) -> ManifestIo {
        ManifestIo::new(self.paths.clone(), self.info.options.manifest_compression.clone(), self.info.schema.id)
    }

    /// A writer continuing from the latest snapshot (phase one of the commit).
    pub fn new_write(&self) -> Result<TableWrite> {
        TableWrite::new(self.info.clone(), self.paths.clone(), self.clock.clone())
    }

    /// A committer for `commit_user` (phase two). Use a stable user per logical writer:
    /// `(commit_user, identifier)` makes a retried commit idempotent.
    pub fn new_committer(&self, commit_user: impl Into<String>) -> Committer {
        Committer::new(self.info.clone(), self.paths.clone(), commit_user.into(), self.clock.clone())
    }

    /// All retained snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        self.snapshots_mgr().all()
    }

    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>> {
        self.snapshots_mgr().latest()
    }

    /// The newest snapshot's id, without reading the snapshot (a poller's
    /// check: a snapshot file can hold tens of KiB of properties).
    pub fn latest_snapshot_id(&self) -> Result<Option<i64>> {
        self.snapshots_mgr().latest_id()
    }

    /// Resolves `at` to a snapshot (`None` for an empty table / before the first commit).
    pub fn resolve(&self, at: ReadAt) -> Result<Option<Snapshot>> {
        let m = self.snapshots_mgr();
        match at {
            ReadAt::Latest => m.latest(),
            ReadAt::Snapshot(id) => m.snapshot(id).map(Some),
            ReadAt::Timestamp(ts) => m.at_or_before(ts),
        }
    }

    /// Every visible row (merge engine applied), per bucket in key order.
    pub fn scan(&self, at: ReadAt) -> Result<Vec<Row>> {
        self.scan_range(at, &KeyRange::all())
    }

    /// Rows whose trimmed primary key lies in `range`.
    pub fn scan_range(&self, at: ReadAt, range: &KeyRange) -> Result<Vec<Row>> {
        let Some(snapshot) = self.resolve(at)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for b in scan::plan(&self.info, &self.manifests(), &snapshot)? {
            out.extend(scan::read_bucket(&self.info, &self.paths, &b, range)?);
        }
        Ok(out)
    }

    /// The row with this primary key (values in `primary-key` order), if visible.
    /// For many lookups, pin a [`SnapshotReader`] with [`Table::reader`] instead.
    pub fn lookup(&self, at: ReadAt, primary_key: &[Datum]) -> Result<Option<Row>> {
        self.reader(at)?.lookup(primary_key)
    }

    /// A reader pinned to one snapshot (plan resolved once, file footers cached).
    pub fn reader(&self, at: ReadAt) -> Result<SnapshotReader> {
        let snapshot = self.resolve(at)?;
        SnapshotReader::new(self.info.clone(), self.paths.clone(), &self.manifests(), snapshot)
    }

    /// Every visible row as Arrow batches of the table columns (per bucket in key order).
    pub fn scan_batches(&self, at: ReadAt) -> Result<Vec<arrow_array::RecordBatch>> {
        self.reader(at)?.scan_batches()
    }

    /// Changes of snapshots `from..=latest` (see [`changelog_reader`]);
    /// [`Error::SnapshotExpired`] if `from` was expired (the consumer fell behind).
    pub fn changes_since(&self, from: i64) -> Result<Vec<SnapshotChanges>> {
        changelog_reader::changes_since(&self.info, &self.paths, &self.manifests(), &self.snapshots_mgr(), from)
    }

    /// Ids of the snapshots whose changes [`Table::changes_since`] would return: from
    /// `from` to the latest; [`Error::SnapshotExpired`] if `from` was expired. A consumer that wants one
    /// snapshot in memory at a time walks them with [`Table::changes_of`].
    pub fn snapshot_ids_since(&self, from: i64) -> Result<std::ops::RangeInclusive<i64>> {
        changelog_reader::ids_since(&self.snapshots_mgr(), from)
    }

    /// Changes of snapshot `snapshot_id` as rows.
    pub fn changes_of(&self, snapshot_id: i64) -> Result<SnapshotChanges> {
        let snapshot = changelog_reader::snapshot_to_read(&self.snapshots_mgr(), snapshot_id)?;
        changelog_reader::snapshot_changes(&self.info, &self.paths, &self.manifests(), &snapshot)
    }

    /// Changes of snapshot `snapshot_id` as Arrow batches (see [`changelog_reader`]); a
    /// consumer streams the changelog by calling it for each id from where it stopped.
    pub fn change_batches(&self, snapshot_id: i64) -> Result<changelog_reader::SnapshotChangeBatches> {
        let snapshot = changelog_reader::snapshot_to_read(&self.snapshots_mgr(), snapshot_id)?;
        changelog_reader::snapshot_change_batches(&self.info, &self.paths, &self.manifests(), &snapshot, None)
    }

    /// [`Table::change_batches`] with only the value columns named in `columns` (in
    /// schema order; names the table lacks are left out): a consumer that uses a few
    /// of a wide table's columns does not pay for decoding the rest.
    pub fn change_batches_projected(
        &self,
        snapshot_id: i64,
        columns: &[String],
    ) -> Result<changelog_reader::SnapshotChangeBatches> {
        let snapshot = changelog_reader::snapshot_to_read(&self.snapshots_mgr(), snapshot_id)?;
        changelog_reader::snapshot_change_batches(&self.info, &self.paths, &self.manifests(), &snapshot, Some(columns))
    }

    /// Compacts the table and commits a COMPACT snapshot: `full` rewrites every bucket
    /// into the highest level; otherwise universal compaction picks per bucket.
    pub fn compact(&self, commit_user: &str, identifier: i64, full: bool) -> Result<CommitOutcome> {
        let mut w = self.new_write()?.with_compaction(true);
        let messages = if full {
            w.full_compact()?
        } else {
            // Open every bucket so universal compaction can look at it.
            let mut all = w.full_compact_candidates()?;
            all.retain(|m| !m.is_empty());
            all
        };
        self.new_committer(commit_user).commit(identifier, messages, None)
    }

    /// Re-derives every file's metadata of a snapshot from its data and checks it
    /// (row counts, key ranges, delete counts, sequence ranges, non-overlapping levels).
    pub fn verify(&self, at: ReadAt) -> Result<()> {
        let Some(snapshot) = self.resolve(at)? else {
            return Ok(());
        };
        let buckets = scan::plan(&self.info, &self.manifests(), &snapshot)?;
        crate::verify::verify_buckets(&self.info, &self.paths, &buckets)
    }

    /// Expires snapshots per retention options and deletes files no retained snapshot needs.
    pub fn expire(&self) -> Result<ExpireReport> {
        expire::expire(&self.info, &self.paths, self.clock.now_millis())
    }

    /// Deletes files no snapshot references that are older than `older_than` (Paimon's
    /// `remove_orphan_files`; Paimon's default margin is one day); `dry_run` only reports.
    pub fn remove_orphan_files(&self, older_than: std::time::Duration, dry_run: bool) -> Result<expire::OrphanReport> {
        let cutoff = self.clock.now_millis() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        expire::remove_orphan_files(&self.info, &self.paths, cutoff, dry_run)
    }

    /// Registers consumer `id`, or advances it: snapshots from `next_snapshot` on are
    /// not expired while it is registered (see [`crate::consumer`]). A changelog reader
    /// calls it with the id after the last snapshot it has durably processed.
    /// [`Error::SnapshotExpired`] if `next_snapshot` is already gone.
    pub fn register_consumer(&self, id: &str, next_snapshot: i64) -> Result<()> {
        consumer::register(&self.paths, id, next_snapshot)
    }

    /// The next snapshot consumer `id` will read, if it is registered.
    pub fn consumer(&self, id: &str) -> Result<Option<i64>> {
        Ok(consumer::get(&self.paths, id)?.map(|c| c.next_snapshot))
    }

    /// Unregisters consumer `id`: expiry no longer keeps snapshots for it.
    pub fn remove_consumer(&self, id: &str) -> Result<()> {
        consumer::remove(&self.paths, id)
    }

    /// A row as a JSON object keyed by column name.
    pub fn row_to_json(&self, row: &Row) -> serde_json::Value {
        let map = self.info.schema.fields.iter().zip(row.iter()).map(|(f, d)| (f.name.clone(), d.to_json())).collect();
        serde_json::Value::Object(map)
    }
}
