//! `silver._rejects`: every record the refiner could not take, with the rule,
//! the column, the reason, the raw Bronze value and where it came from.
//! Nothing is dropped silently. Commits are exactly once per entity: each
//! carries the Bronze snapshot the entity's batch read up to, and a batch
//! whose rejects are already in (a replay after a crash) adds none again.

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

/// Summary key prefix: the Bronze snapshot an entity's rejects are committed up to.
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

    /// The Bronze snapshot `entity`'s rejects are committed up to.
    pub fn position(&self, entity: &str) -> Option<i64> {
        recorded(&self.head.metadata, entity)
    }

    /// Commits `rows` of `entity` read up to Bronze snapshot `upto`, unless a
    /// commit already covers it (a replay). Returns the commit, if one was made.
    ///
    /// Snapshot ids are random, not ordered: "covers" means the recorded
    /// snapshot is `upto` or a descendant of it in `bronze`'s history.
    pub async fn commit(
        &mut self,
        entity: &str,
        upto: i64,
        rows: &[RejectRow],
        bronze: Option<Arc<TableMetadata>>,
    ) -> Result<Option<TableCommit>, RejectsError> {
        if rows.is_empty() || self.position(entity).is_some_and(|p| covers(bronze.as_deref(), p, upto)) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let batch = to_batch(rows).map_err(|e| RejectsError::Write { what: "batch", message: e.to_string() })?;
        let files = self
            .writer
            .write(&self.head.metadata, Struct::empty(), &[batch])
            .await
            .map_err(|e| RejectsError::Write { what: "data files", message: e.to_string() })?;
        let key = format!("{POSITION_PREFIX}{entity}");
        let entity_name = entity.to_string();
        let props: HashMap<String, String> = HashMap::from([(key, upto.to_string())]);
        let check = move |head: &TableMetadata| match recorded(head, &entity_name) {
            Some(p) if covers(bronze.as_deref(), p, upto) => {
                Err(Fenced(format!("rejects of {entity_name} are in up to Bronze snapshot {p}")))
            }
            _ => Ok(props.clone()),
        };
        match self.committer.commit(&self.head, Operation::Append { files }, &check).await {
            Ok(done) => {
                self.head = done.table.clone();
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

/// Whether rejects recorded up to Bronze snapshot `recorded` include those of
/// `upto`: `upto` is `recorded` or one of its ancestors.
fn covers(bronze: Option<&TableMetadata>, recorded: i64, upto: i64) -> bool {
    let mut id = Some(recorded);
    while let Some(i) = id {
        if i == upto {
            return true;
        }
        id = bronze.and_then(|m| m.snapshot_by_id(i)).and_then(|s| s.parent_snapshot_id());
    }
    false
}

/// The newest position of `entity` in the head's ancestry.
fn recorded(metadata: &TableMetadata, entity: &str) -> Option<i64> {
    newest_in_ancestry(metadata, &format!("{POSITION_PREFIX}{entity}")).and_then(|(_, v)| v.parse().ok())
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
