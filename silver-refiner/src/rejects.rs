//! `silver._rejects`: every record the refiner could not take, with the rule,
//! the column, the reason, the raw Bronze value and where it came from.
//! Nothing is dropped silently. Commits are exactly once per entity: each
//! carries the Bronze position the entity's batch read up to
//! ([`BronzePosition`]), and a batch whose rejects are already in (a replay
//! after a crash) adds none again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use iceberg::spec::{Struct, TableMetadata, UnboundPartitionSpec};
use lakehouse::catalog::{CatalogError, LoadedTable, SqlCatalog, TableName};
use lakehouse::table::commit::{CommitError, Committer, Fenced, Operation};
use lakehouse::table::create::{TableSpec, load_or_create};
use lakehouse::table::position::newest_in_ancestry;
use lakehouse::table::writer::{Codec, DataFileWriter};
use lakehouse::worker::TableCommit;

use crate::position::BronzePosition;

/// Summary key prefix: the Bronze position an entity's rejects are committed up to.
const POSITION_PREFIX: &str = "lakehouse.rejects.bronze-snapshot.";

/// One rejected record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RejectRow {
    pub entity: String,
    pub rule: String,
    pub column: Option<String>,
    pub reason: String,
    pub raw_value: Option<String>,
    pub bronze_table: String,
    pub bronze_snapshot_id: i64,
    /// The record's row in its Bronze snapshot's increment, as the refiner
    /// read it (not stored): a commit leaves out the rejects an earlier commit
    /// of the entity covers already.
    #[serde(skip)]
    pub bronze_row: Option<u64>,
    pub kafka_topic: Option<String>,
    pub kafka_partition: Option<i32>,
    pub kafka_offset: Option<i64>,
    pub contract_version: i32,
    pub rejected_at_us: i64,
}

fn schema() -> SchemaRef {
    let f = |id: i32, name: &str, ty: DataType, nullable: bool| {
        Field::new(name, ty, nullable).with_metadata(HashMap::from([("PARQUET:field_id".to_string(), id.to_string())]))
    };
    Arc::new(Schema::new(vec![
        f(1, "entity", DataType::Utf8, false),
        f(2, "rule", DataType::Utf8, false),
        f(3, "column", DataType::Utf8, true),
        f(4, "reason", DataType::Utf8, false),
        f(5, "raw_value", DataType::Utf8, true),
        f(6, "bronze_table", DataType::Utf8, false),
        f(7, "bronze_snapshot_id", DataType::Int64, false),
        f(8, "kafka_topic", DataType::Utf8, true),
        f(9, "kafka_partition", DataType::Int32, true),
        f(10, "kafka_offset", DataType::Int64, true),
        f(11, "contract_version", DataType::Int32, false),
        f(12, "rejected_at", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), false),
    ]))
}

fn to_batch(rows: &[RejectRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let s = |f: fn(&RejectRow) -> Option<&str>| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<StringArray>()) };
    let columns: Vec<ArrayRef> = vec![
        s(|r| Some(&r.entity)),
        s(|r| Some(&r.rule)),
        s(|r| r.column.as_deref()),
        s(|r| Some(&r.reason)),
        s(|r| r.raw_value.as_deref()),
        s(|r| Some(&r.bronze_table)),
        Arc::new(rows.iter().map(|r| r.bronze_snapshot_id).collect::<Int64Array>()),
        s(|r| r.kafka_topic.as_deref()),
        Arc::new(rows.iter().map(|r| r.kafka_partition).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| r.kafka_offset).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.contract_version).collect::<Int32Array>()),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.rejected_at_us).collect::<Vec<i64>>())
                .with_timezone("+00:00"),
        ),
    ];
    RecordBatch::try_new(schema(), columns)
}

#[derive(Debug, thiserror::Error)]
pub enum RejectsError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("silver._rejects: {what}: {message}")]
    Write { what: &'static str, message: String },
}

/// The rejects table of a Silver namespace.
pub struct Rejects {
    committer: Committer,
    writer: DataFileWriter,
    head: LoadedTable,
}

impl Rejects {
    pub async fn open(catalog: SqlCatalog, namespace: &str) -> Result<Self, RejectsError> {
        let name = TableName::new(namespace, "_rejects");
        let iceberg_schema = iceberg::arrow::arrow_schema_to_schema(&schema())
            .map_err(|e| RejectsError::Write { what: "schema", message: e.to_string() })?;
        let spec = TableSpec {
            schema: iceberg_schema,
            partition_spec: UnboundPartitionSpec::builder().build(),
            properties: HashMap::from([("write.parquet.compression-codec".to_string(), "zstd".to_string())]),
        };
        let head = load_or_create(&catalog, &name, &spec).await?;
        Ok(Self {
            writer: DataFileWriter::new(catalog.file_io().clone(), Codec::Zstd(3), 64 << 20),
            committer: Committer::new(catalog),
            head,
        })
    }

    /// The Bronze position `entity`'s rejects are committed up to.
    pub fn position(&self, entity: &str) -> Option<BronzePosition> {
        recorded(&self.head.metadata, entity)
    }

    /// Commits `rows` of `entity` read up to Bronze position `upto`, unless a
    /// commit already covers it (a replay; [`BronzePosition::covers`] in
    /// `bronze`'s history). Returns the commit, if one was made.
    pub async fn commit(
        &mut self,
        entity: &str,
        upto: BronzePosition,
        rows: &[RejectRow],
        bronze: Option<Arc<TableMetadata>>,
    ) -> Result<Option<TableCommit>, RejectsError> {
        let committed = self.position(entity);
        if rows.is_empty() || committed.is_some_and(|p| p.covers(&upto, bronze.as_deref())) {
            return Ok(None);
        }
        // A batch read again after a crash can start before the recorded
        // position and end past it (batches need not fall the same way twice).
        let rows = match committed {
            Some(p) => uncovered(&p, rows, bronze.as_deref()),
            None => rows.to_vec(),
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let batch = to_batch(&rows).map_err(|e| RejectsError::Write { what: "batch", message: e.to_string() })?;
        let files = self
            .writer
            .write(&self.head.metadata, Struct::empty(), &[batch])
            .await
            .map_err(|e| RejectsError::Write { what: "data files", message: e.to_string() })?;
        let key = format!("{POSITION_PREFIX}{entity}");
        let entity_name = entity.to_string();
        let props: HashMap<String, String> = HashMap::from([(key, upto.encode())]);
        let check = move |head: &TableMetadata| match recorded(head, &entity_name) {
            Some(p) if p.covers(&upto, bronze.as_deref()) => {
                Err(Fenced(format!("rejects of {entity_name} are in up to Bronze position {p}")))
            }
            _ => Ok(props.clone()),
        };
        match self.committer.commit(&self.head, Operation::Append { files }, &check).await {
            Ok(done) => {
                self.head = done.table.clone();
                for (rule, n) in count_by_rule(&rows) {
                    metrics::counter!(lakehouse::telemetry::names::REJECTED_RECORDS, "layer" => "silver", "entity" => entity.to_string(), "rule" => rule.to_string())
                        .increment(n);
                }
                Ok(Some(TableCommit {
                    table: done.table,
                    snapshot_id: done.snapshot_id,
                    rows: rows.len() as u64,
                    conflicts: done.conflicts,
                    duration: started.elapsed(),
                    newest_event_ms: None,
                }))
            }
            Err(CommitError::Fenced { .. }) => {
                self.head = self.committer.catalog().require_table(&self.head.name).await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The rows of `rows` that `recorded` does not cover (a row whose place in its
/// snapshot is unknown is covered only by all of the snapshot).
fn uncovered(recorded: &BronzePosition, rows: &[RejectRow], bronze: Option<&TableMetadata>) -> Vec<RejectRow> {
    // Whether each other snapshot is behind the recorded one: one walk each.
    let mut behind: HashMap<i64, bool> = HashMap::new();
    rows.iter()
        .filter(|r| {
            let covered = if r.bronze_snapshot_id == recorded.snapshot {
                let at = match r.bronze_row {
                    Some(i) => BronzePosition::within(r.bronze_snapshot_id, i + 1, false),
                    None => BronzePosition::after(r.bronze_snapshot_id),
                };
                recorded.covers(&at, None)
            } else {
                *behind
                    .entry(r.bronze_snapshot_id)
                    .or_insert_with(|| recorded.covers(&BronzePosition::after(r.bronze_snapshot_id), bronze))
            };
            !covered
        })
        .cloned()
        .collect()
}

/// The newest position of `entity` in the head's ancestry.
fn recorded(metadata: &TableMetadata, entity: &str) -> Option<BronzePosition> {
    newest_in_ancestry(metadata, &format!("{POSITION_PREFIX}{entity}")).and_then(|(_, v)| BronzePosition::parse(v))
}

/// Rejects per rule, for logs and metrics.
pub fn count_by_rule(rows: &[RejectRow]) -> BTreeMap<&str, u64> {
    let mut out = BTreeMap::new();
    for r in rows {
        *out.entry(r.rule.as_str()).or_default() += 1;
    }
    out
}

/// Every reject of `silver._rejects` (the namespace's), with the rejects-table
/// snapshot that added it, oldest first, and the head snapshot read. A lake
/// without the table has none.
pub async fn read_all(
    catalog: &SqlCatalog,
    namespace: &str,
) -> Result<(Vec<(i64, RejectRow)>, Option<i64>), RejectsError> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
    let name = TableName::new(namespace, "_rejects");
    let Some(table) = catalog.load_table(&name).await? else { return Ok((Vec::new(), None)) };
    let read_err = |e: lakehouse::table::incremental::IncrementalError| RejectsError::Write {
        what: "reading",
        message: e.to_string(),
    };
    let incs = lakehouse::table::incremental::increments(catalog.file_io(), &table.metadata, None, usize::MAX)
        .await
        .map_err(read_err)?;
    let columns: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for inc in incs {
        let snapshot = inc.snapshot.snapshot_id();
        for f in &inc.files {
            for b in lakehouse::table::incremental::read_data_file(catalog.file_io(), f.file_path(), &columns)
                .await
                .map_err(read_err)?
            {
                let missing = |c: &str| RejectsError::Write { what: "reading", message: format!("no column {c}") };
                let s = |c: &str| b.column_by_name(c).map(|a| a.as_string::<i32>().clone()).ok_or_else(|| missing(c));
                let (entity, rule, column, reason, raw, bronze, topic) = (
                    s("entity")?,
                    s("rule")?,
                    s("column")?,
                    s("reason")?,
                    s("raw_value")?,
                    s("bronze_table")?,
                    s("kafka_topic")?,
                );
                let l = |c: &str| {
                    b.column_by_name(c).map(|a| a.as_primitive::<Int64Type>().clone()).ok_or_else(|| missing(c))
                };
                let i = |c: &str| {
                    b.column_by_name(c).map(|a| a.as_primitive::<Int32Type>().clone()).ok_or_else(|| missing(c))
                };
                let (bronze_snapshot, offset, partition, version) =
                    (l("bronze_snapshot_id")?, l("kafka_offset")?, i("kafka_partition")?, i("contract_version")?);
                let at = b
                    .column_by_name("rejected_at")
                    .map(|a| a.as_primitive::<TimestampMicrosecondType>().clone())
                    .ok_or_else(|| missing("rejected_at"))?;
                let opt_s = |a: &arrow_array::StringArray, r: usize| a.is_valid(r).then(|| a.value(r).to_string());
                for r in 0..b.num_rows() {
                    out.push((
                        snapshot,
                        RejectRow {
                            entity: entity.value(r).to_string(),
                            rule: rule.value(r).to_string(),
                            column: opt_s(&column, r),
                            reason: reason.value(r).to_string(),
                            raw_value: opt_s(&raw, r),
                            bronze_table: bronze.value(r).to_string(),
                            bronze_snapshot_id: bronze_snapshot.value(r),
                            bronze_row: None,
                            kafka_topic: opt_s(&topic, r),
                            kafka_partition: partition.is_valid(r).then(|| partition.value(r)),
                            kafka_offset: offset.is_valid(r).then(|| offset.value(r)),
                            contract_version: version.value(r),
                            rejected_at_us: at.value(r),
                        },
                    ));
                }
            }
        }
    }
    Ok((out, table.metadata.current_snapshot_id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(snapshot: i64, at: Option<u64>) -> RejectRow {
        RejectRow {
            entity: "orders".into(),
            rule: "parse".into(),
            column: None,
            reason: "not JSON".into(),
            raw_value: Some("{".into()),
            bronze_table: "bronze.orders".into(),
            bronze_snapshot_id: snapshot,
            bronze_row: at,
            kafka_topic: None,
            kafka_partition: None,
            kafka_offset: at.map(|a| a as i64),
            contract_version: 1,
            rejected_at_us: 0,
        }
    }

    #[test]
    fn a_batch_read_again_commits_only_the_rejects_past_the_recorded_position() {
        let rows = [row(7, Some(3)), row(7, Some(4)), row(7, Some(5)), row(7, None), row(8, Some(0))];
        let kept = |p: BronzePosition| -> Vec<(i64, Option<u64>)> {
            uncovered(&p, &rows, None).iter().map(|r| (r.bronze_snapshot_id, r.bronze_row)).collect()
        };
        // Rows 0..5 of snapshot 7 are in: rows 3 and 4 are not committed again.
        assert_eq!(kept(BronzePosition::within(7, 5, false)), [(7, Some(5)), (7, None), (8, Some(0))]);
        assert_eq!(kept(BronzePosition::after(7)), [(8, Some(0))], "all of 7 is in");
        // Without Bronze's history another snapshot is not known to be behind.
        assert_eq!(kept(BronzePosition::after(6)).len(), rows.len());
    }
}
