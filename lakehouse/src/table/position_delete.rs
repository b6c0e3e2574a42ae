//! Position-delete files: "row `pos` of data file `file_path` is gone".
//!
//! Silver and Gold express an upsert as a new row in a new data file plus a
//! position delete for the row it replaces (the changelog store knows where
//! that row lives, so nothing is scanned). iceberg-rust 0.10.1 reads position
//! deletes but cannot write them; this module writes them as the Iceberg v2
//! spec lays them out:
//!
//! - Parquet with two required columns, `file_path` (string, field id
//!   2147483546) and `pos` (long, field id 2147483545), in that order;
//! - rows sorted by `(file_path, pos)`;
//! - each file belongs to exactly one partition, the partition of the data
//!   files it points into, so deletes are grouped by the partition of their
//!   data file;
//! - the entry carries exact lower/upper bounds of `file_path` (readers prune
//!   delete files by them) and `referenced_data_file` when every row points
//!   into one data file.
//!
//! The returned [`DataFile`] entries go into
//! [`Operation::RowDelta`](crate::table::commit::Operation::RowDelta).
//!
//! ```no_run
//! # async fn f(file_io: iceberg::io::FileIO, metadata: &iceberg::spec::TableMetadata,
//! #            old: &iceberg::spec::DataFile) -> Result<(), Box<dyn std::error::Error>> {
//! use lakehouse::table::position_delete::{PositionDeleteWriter, ReferencedFile};
//! let writer = PositionDeleteWriter::new(file_io);
//! let deletes = vec![(old.file_path().to_string(), 3), (old.file_path().to_string(), 7)];
//! let delete_files = writer.write(metadata, &[ReferencedFile::from(old)], deletes).await?;
//! # Ok(()) }
//! ```
//!
//! Only the table's default partition spec is supported: the project never
//! evolves partition specs, and iceberg-rust 0.10.1 does not expose a
//! [`DataFile`]'s spec id, so the commit layer writes every manifest with the
//! default spec.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use iceberg::io::FileIO;
use iceberg::metadata_columns::{delete_file_path_field, delete_file_pos_field};
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, Datum, Literal, PartitionSpec, Schema, Struct, TableMetadata,
};
use iceberg::writer::CurrentFileStatus;
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
use parquet::file::properties::{WriterProperties, WriterVersion};

use crate::error::ErrorKind;
use crate::table::writer::Codec;

/// Field id of the `file_path` column of a position-delete file (spec-reserved).
pub const FILE_PATH_FIELD_ID: i32 = iceberg::metadata_columns::RESERVED_FIELD_ID_DELETE_FILE_PATH;
/// Field id of the `pos` column of a position-delete file (spec-reserved).
pub const POS_FIELD_ID: i32 = iceberg::metadata_columns::RESERVED_FIELD_ID_DELETE_FILE_POS;

/// Rows per Arrow batch handed to the Parquet writer (files roll between batches).
const BATCH_ROWS: usize = 64 * 1024;

/// A data file that deletes point into: its path exactly as the table's
/// manifests record it, and its partition in the table's default spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencedFile {
    pub path: String,
    pub partition: Struct,
}

impl ReferencedFile {
    pub fn new(path: impl Into<String>, partition: Struct) -> Self {
        Self { path: path.into(), partition }
    }
}

impl From<&DataFile> for ReferencedFile {
    fn from(file: &DataFile) -> Self {
        Self { path: file.file_path().to_string(), partition: file.partition().clone() }
    }
}

/// Errors of the position-delete writer. `table` is the table's location.
#[derive(Debug, thiserror::Error)]
pub enum PositionDeleteError {
    #[error("position delete of row {pos} of {path} (table {table}): positions start at 0")]
    NegativePosition { table: String, path: String, pos: i64 },
    #[error(
        "position delete of a row of {path} (table {table}): that data file is not among the referenced files given"
    )]
    UnknownDataFile { table: String, path: String },
    #[error("referenced data file {path} (table {table}) is given twice, with partitions {first:?} and {second:?}")]
    ConflictingPartitions { table: String, path: String, first: Struct, second: Struct },
    #[error(
        "referenced data file {path} (table {table}): partition {partition:?} does not fit partition spec {spec_id}: {reason}"
    )]
    BadPartition { table: String, path: String, partition: Struct, spec_id: i32, reason: String },
    #[error("position-delete file {path} of table {table}: {doing}: {source}")]
    Iceberg { table: String, path: String, doing: &'static str, source: iceberg::Error },
    #[error("position-delete files of table {table}: {reason}")]
    Codec { table: String, reason: String },
}

impl PositionDeleteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PositionDeleteError::Iceberg { .. } => ErrorKind::Transient,
            _ => ErrorKind::Internal,
        }
    }
}

/// Writes the position-delete files of one commit.
#[derive(Clone, Debug)]
pub struct PositionDeleteWriter {
    file_io: FileIO,
    codec: Codec,
    target_file_size: usize,
}

impl PositionDeleteWriter {
    /// zstd level 3 where the table names no codec (its data files' or
    /// `write.delete.parquet.compression-codec`), files rolled at 64 MiB.
    pub fn new(file_io: FileIO) -> Self {
        Self { file_io, codec: Codec::Zstd(3), target_file_size: 64 << 20 }
    }

    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Size at which a file is closed and the next one started (checked
    /// between batches of 64Ki rows, so files overshoot by up to one batch).
    #[must_use]
    pub fn with_target_file_size(mut self, bytes: usize) -> Self {
        self.target_file_size = bytes.max(1);
        self
    }

    /// The writer's properties for `metadata`'s table: its delete codec
    /// ([`Codec::of_table_deletes`]), else the writer's own.
    fn properties(&self, metadata: &TableMetadata) -> Result<WriterProperties, String> {
        let codec = Codec::of_table_deletes(metadata.properties())?.unwrap_or(self.codec);
        Ok(WriterProperties::builder()
            .set_compression(codec.parquet())
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_max_row_group_row_count(Some(1 << 20))
            // Exact statistics: a truncated min/max of `file_path` would be no bound at all.
            .set_statistics_truncate_length(None)
            .build())
    }

    /// Writes `deletes` (`(data file path, 0-based row position)`, in any
    /// order, duplicates allowed) as position-delete files under
    /// `<location>/data/<partition path>/`, one or more files per partition,
    /// and returns their entries. Every path must be one of `targets`, which
    /// says which partition it lives in. No deletes, no files. A path is any
    /// string type (`String`, or `Arc<str>` shared by the rows of one file).
    pub async fn write<P: AsRef<str> + Ord>(
        &self,
        metadata: &TableMetadata,
        targets: &[ReferencedFile],
        mut deletes: Vec<(P, i64)>,
    ) -> Result<Vec<DataFile>, PositionDeleteError> {
        let table = metadata.location().to_string();
        let spec = metadata.default_partition_spec();
        let mut partition_of: HashMap<&str, &Struct> = HashMap::with_capacity(targets.len());
        for t in targets {
            match partition_of.insert(&t.path, &t.partition) {
                Some(first) if *first != t.partition => {
                    return Err(PositionDeleteError::ConflictingPartitions {
                        table,
                        path: t.path.clone(),
                        first: first.clone(),
                        second: t.partition.clone(),
                    });
                }
                Some(_) => {}
                None => check_partition(metadata, spec, t).map_err(|reason| PositionDeleteError::BadPartition {
                    table: table.clone(),
                    path: t.path.clone(),
                    partition: t.partition.clone(),
                    spec_id: spec.spec_id(),
                    reason,
                })?,
            }
        }

        deletes.sort_unstable();
        deletes.dedup();
        // One group of rows per partition; rows stay sorted within a group.
        let mut groups: Vec<(Struct, Vec<(P, i64)>)> = Vec::new();
        let mut group_of: HashMap<Struct, usize> = HashMap::new();
        for (path, pos) in deletes {
            if pos < 0 {
                return Err(PositionDeleteError::NegativePosition { table, path: path.as_ref().to_string(), pos });
            }
            let Some(partition) = partition_of.get(path.as_ref()) else {
                return Err(PositionDeleteError::UnknownDataFile { table, path: path.as_ref().to_string() });
            };
            let i = *group_of.entry((*partition).clone()).or_insert_with(|| {
                groups.push(((*partition).clone(), Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push((path, pos));
        }

        let mut files = Vec::new();
        for (partition, rows) in groups {
            files.extend(self.write_partition(metadata, &table, partition, &rows).await?);
        }
        Ok(files)
    }

    /// Writes the sorted `rows` of one partition, rolling at the target size.
    async fn write_partition<P: AsRef<str>>(
        &self,
        metadata: &TableMetadata,
        table: &str,
        partition: Struct,
        rows: &[(P, i64)],
    ) -> Result<Vec<DataFile>, PositionDeleteError> {
        let spec = metadata.default_partition_spec();
        let partition_dir = if spec.is_unpartitioned() {
            String::new()
        } else {
            format!("{}/", spec.partition_to_path(&partition, metadata.current_schema().clone()))
        };
        let schema = Arc::new(delete_schema());
        let err = |path: &str, doing: &'static str| {
            let (table, path) = (table.to_string(), path.to_string());
            move |source| PositionDeleteError::Iceberg { table, path, doing, source }
        };
        let dir = format!("{}/data/{partition_dir}", metadata.location());
        let arrow_schema = Arc::new(
            iceberg::arrow::schema_to_arrow_schema(&schema)
                .map_err(err(&dir, "converting the delete schema to Arrow"))?,
        );
        let props = self
            .properties(metadata)
            .map_err(|reason| PositionDeleteError::Codec { table: table.to_string(), reason })?;
        let builder = ParquetWriterBuilder::new(props, schema);
        let prefix = uuid::Uuid::new_v4();
        let mut files = Vec::new();
        let mut open: Option<(String, _, FileStats)> = None;
        let mut n = 0;
        for chunk in rows.chunks(BATCH_ROWS) {
            if open.is_none() {
                let path = format!("{dir}{prefix}-{n:05}-deletes.parquet");
                n += 1;
                let output = self.file_io.new_output(&path).map_err(err(&path, "creating the file"))?;
                let writer = builder.build(output).await.map_err(err(&path, "opening the Parquet writer"))?;
                open = Some((path, writer, FileStats::default()));
            }
            let (path, writer, stats) = open.as_mut().expect("opened above");
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|(p, _)| p.as_ref()))),
                Arc::new(Int64Array::from_iter_values(chunk.iter().map(|(_, pos)| *pos))),
            ];
            let batch = RecordBatch::try_new(arrow_schema.clone(), columns).map_err(|e| {
                err(path, "building a batch")(iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()))
            })?;
            writer.write(&batch).await.map_err(err(path, "writing rows"))?;
            stats.add(chunk);
            if writer.current_written_size() >= self.target_file_size {
                let (path, writer, stats) = open.take().expect("opened above");
                let built = writer.close().await.map_err(err(&path, "closing the Parquet writer"))?;
                files.extend(finish(built, &partition, spec, stats).map_err(err(&path, "building its entry"))?);
            }
        }
        if let Some((path, writer, stats)) = open {
            let built = writer.close().await.map_err(err(&path, "closing the Parquet writer"))?;
            files.extend(finish(built, &partition, spec, stats).map_err(err(&path, "building its entry"))?);
        }
        Ok(files)
    }
}

/// The Iceberg schema of a position-delete file without the optional `row` column.
fn delete_schema() -> Schema {
    Schema::builder()
        .with_fields([delete_file_path_field().clone(), delete_file_pos_field().clone()])
        .build()
        .expect("two distinct reserved primitive fields make a valid schema")
}

/// Checks that `target`'s partition has the shape of `spec` (computing its
/// path would panic otherwise).
fn check_partition(metadata: &TableMetadata, spec: &PartitionSpec, target: &ReferencedFile) -> Result<(), String> {
    let partition_type = spec.partition_type(metadata.current_schema()).map_err(|e| e.to_string())?;
    let (want, got) = (partition_type.fields(), target.partition.fields());
    if want.len() != got.len() {
        return Err(format!("{} values for {} partition fields", got.len(), want.len()));
    }
    for (field, value) in want.iter().zip(got) {
        let fits = match (field.field_type.as_primitive_type(), value) {
            (_, None) => true,
            (Some(ty), Some(Literal::Primitive(v))) => ty.compatible(v),
            _ => false,
        };
        if !fits {
            return Err(format!("value {value:?} does not fit field {} of type {}", field.name, field.field_type));
        }
    }
    Ok(())
}

/// What the file's entry needs to know about its rows beyond Parquet's statistics.
#[derive(Default)]
struct FileStats {
    first_path: Option<String>,
    last_path: Option<String>,
    min_pos: Option<i64>,
    max_pos: Option<i64>,
}

impl FileStats {
    /// `rows` are sorted and follow the rows added before.
    fn add<P: AsRef<str>>(&mut self, rows: &[(P, i64)]) {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return;
        };
        if self.first_path.is_none() {
            self.first_path = Some(first.0.as_ref().to_string());
        }
        self.last_path = Some(last.0.as_ref().to_string());
        for (_, pos) in rows {
            self.min_pos = Some(self.min_pos.map_or(*pos, |m| m.min(*pos)));
            self.max_pos = Some(self.max_pos.map_or(*pos, |m| m.max(*pos)));
        }
    }
}

fn finish(
    builders: Vec<DataFileBuilder>,
    partition: &Struct,
    spec: &PartitionSpec,
    stats: FileStats,
) -> iceberg::Result<Vec<DataFile>> {
    let FileStats { first_path: Some(first), last_path: Some(last), min_pos: Some(min), max_pos: Some(max) } = stats
    else {
        return Ok(Vec::new());
    };
    let referenced = (first == last).then(|| first.clone());
    let lower = HashMap::from([(FILE_PATH_FIELD_ID, Datum::string(first)), (POS_FIELD_ID, Datum::long(min))]);
    let upper = HashMap::from([(FILE_PATH_FIELD_ID, Datum::string(last)), (POS_FIELD_ID, Datum::long(max))]);
    builders
        .into_iter()
        .map(|mut b| {
            b.content(DataContentType::PositionDeletes)
                .partition(partition.clone())
                .partition_spec_id(spec.spec_id())
                .lower_bounds(lower.clone())
                .upper_bounds(upper.clone())
                .referenced_data_file(referenced.clone());
            b.build().map_err(|e| {
                iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("position-delete file entry: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use iceberg::spec::{
        FormatVersion, NestedField, PrimitiveType, SortOrder, TableMetadataBuilder, Transform, Type,
        UnboundPartitionField, UnboundPartitionSpec,
    };
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Compression;

    use super::*;

    /// A table `(id long, region string)` partitioned by `identity(region)`, at a temp location.
    fn table(dir: &tempfile::TempDir) -> TableMetadata {
        table_with(dir, &[])
    }

    fn table_with(dir: &tempfile::TempDir, properties: &[(&str, &str)]) -> TableMetadata {
        let schema = Schema::builder()
            .with_fields([
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::required(2, "region", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .expect("schema");
        let spec = UnboundPartitionSpec::builder()
            .add_partition_fields([UnboundPartitionField {
                source_id: 2,
                field_id: Some(1000),
                name: "region".into(),
                transform: Transform::Identity,
            }])
            .expect("partition field")
            .build();
        let location = format!("file://{}/t", dir.path().display());
        TableMetadataBuilder::new(
            schema,
            spec,
            SortOrder::unsorted_order(),
            location,
            FormatVersion::V2,
            properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        )
        .and_then(|b| b.build())
        .expect("metadata")
        .metadata
    }

    fn region(r: &str) -> Struct {
        Struct::from_iter([Some(Literal::string(r))])
    }

    /// `(file_path, pos)` rows of a written file, in file order, and its Parquet reader builder.
    async fn read(file_io: &FileIO, f: &DataFile) -> (Vec<(String, i64)>, ParquetRecordBatchReaderBuilder<Bytes>) {
        let bytes = file_io.new_input(f.file_path()).expect("input").read().await.expect("read");
        assert_eq!(bytes.len() as u64, f.file_size_in_bytes());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).expect("parquet");
        let mut rows = Vec::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet").build().expect("reader") {
            let batch = batch.expect("batch");
            let paths = batch.column(0).as_any().downcast_ref::<StringArray>().expect("file_path is a string");
            let pos = batch.column(1).as_any().downcast_ref::<Int64Array>().expect("pos is a long");
            rows.extend((0..batch.num_rows()).map(|i| (paths.value(i).to_string(), pos.value(i))));
        }
        (rows, builder)
    }

    #[tokio::test]
    async fn sorted_deduplicated_rows_one_file_per_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metadata = table(&dir);
        let file_io = FileIO::new_with_fs();
        let loc = metadata.location();
        let (a, b, c) = (
            format!("{loc}/data/region=eu/a.parquet"),
            format!("{loc}/data/region=eu/b.parquet"),
            format!("{loc}/data/region=us/c.parquet"),
        );
        let targets = [
            ReferencedFile::new(&a, region("eu")),
            ReferencedFile::new(&b, region("eu")),
            ReferencedFile::new(&c, region("us")),
            ReferencedFile::new(&a, region("eu")), // the same file twice is fine
        ];
        let deletes =
            vec![(b.clone(), 4), (c.clone(), 9), (a.clone(), 12), (a.clone(), 2), (b.clone(), 0), (a.clone(), 2)];
        let files =
            PositionDeleteWriter::new(file_io.clone()).write(&metadata, &targets, deletes).await.expect("writes");
        assert_eq!(files.len(), 2);
        let eu = files.iter().find(|f| *f.partition() == region("eu")).expect("an eu file");
        let us = files.iter().find(|f| *f.partition() == region("us")).expect("a us file");

        assert!(eu.file_path().starts_with(&format!("{loc}/data/region=eu/")), "{}", eu.file_path());
        assert!(eu.file_path().ends_with("-deletes.parquet"), "{}", eu.file_path());
        let (rows, parquet) = read(&file_io, eu).await;
        assert_eq!(rows, vec![(a.clone(), 2), (a.clone(), 12), (b.clone(), 0), (b.clone(), 4)], "sorted, deduplicated");
        assert_eq!(eu.content_type(), DataContentType::PositionDeletes);
        assert_eq!(eu.record_count(), 4);
        assert_eq!(eu.referenced_data_file(), None, "two data files");
        assert_eq!(eu.lower_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&a)));
        assert_eq!(eu.upper_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&b)));
        assert_eq!(eu.lower_bounds().get(&POS_FIELD_ID), Some(&Datum::long(0)));
        assert_eq!(eu.upper_bounds().get(&POS_FIELD_ID), Some(&Datum::long(12)));
        assert_eq!(eu.sort_order_id(), None);
        // The spec's layout: file_path then pos, reserved field ids, zstd.
        let columns = parquet.parquet_schema().columns();
        let ids: Vec<_> = columns.iter().map(|c| (c.name().to_string(), c.self_type().get_basic_info().id())).collect();
        assert_eq!(ids, vec![("file_path".to_string(), FILE_PATH_FIELD_ID), ("pos".to_string(), POS_FIELD_ID)]);
        let chunk = parquet.metadata().row_group(0).column(0);
        assert!(matches!(chunk.compression(), Compression::ZSTD(_)), "{:?}", chunk.compression());

        let (rows, _) = read(&file_io, us).await;
        assert_eq!(rows, vec![(c.clone(), 9)]);
        assert_eq!(us.referenced_data_file(), Some(c.clone()));
        assert_eq!(us.lower_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&c)));
        assert_eq!(us.upper_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&c)));
    }

    /// The table's delete codec, else its data codec, else the writer's zstd;
    /// one the writer does not have is refused before a file is written.
    #[tokio::test]
    async fn delete_files_take_the_tables_codec() {
        use crate::table::writer::{COMPRESSION_CODEC, DELETE_COMPRESSION_CODEC};
        for (properties, expected) in [
            (&[(COMPRESSION_CODEC, "snappy")][..], Compression::SNAPPY),
            (
                &[(COMPRESSION_CODEC, "snappy"), (DELETE_COMPRESSION_CODEC, "uncompressed")][..],
                Compression::UNCOMPRESSED,
            ),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let metadata = table_with(&dir, properties);
            let file_io = FileIO::new_with_fs();
            let a = format!("{}/data/region=eu/a.parquet", metadata.location());
            let targets = [ReferencedFile::new(&a, region("eu"))];
            let files = PositionDeleteWriter::new(file_io.clone())
                .write(&metadata, &targets, vec![(a.clone(), 1)])
                .await
                .expect("writes");
            let (_, parquet) = read(&file_io, &files[0]).await;
            assert_eq!(parquet.metadata().row_group(0).column(0).compression(), expected, "{properties:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let metadata = table_with(&dir, &[(DELETE_COMPRESSION_CODEC, "gzip")]);
        let a = format!("{}/data/region=eu/a.parquet", metadata.location());
        let err = PositionDeleteWriter::new(FileIO::new_with_fs())
            .write(&metadata, &[ReferencedFile::new(&a, region("eu"))], vec![(a.clone(), 1)])
            .await
            .expect_err("gzip is not built in");
        assert!(err.to_string().contains("write.delete.parquet.compression-codec = \"gzip\""), "{err}");
        assert!(!dir.path().join("t/data").exists(), "no file written");
    }

    #[tokio::test]
    async fn files_roll_with_their_own_bounds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metadata = table(&dir);
        let file_io = FileIO::new_with_fs();
        let (a, b) =
            (format!("{}/data/a.parquet", metadata.location()), format!("{}/data/b.parquet", metadata.location()));
        let targets = [ReferencedFile::new(&a, region("eu")), ReferencedFile::new(&b, region("eu"))];
        // One batch of a, the next of a then b: with a 1-byte target every batch closes a file.
        let n = BATCH_ROWS as i64;
        let mut deletes: Vec<_> = (0..n + 10).map(|p| (a.clone(), p)).collect();
        deletes.extend((0..5).map(|p| (b.clone(), p)));
        let writer = PositionDeleteWriter::new(file_io.clone()).with_target_file_size(1);
        let mut files = writer.write(&metadata, &targets, deletes).await.expect("writes");
        assert_eq!(files.len(), 2);
        files.sort_by_key(|f| std::cmp::Reverse(f.record_count()));
        let (first, second) = (&files[0], &files[1]);
        assert_ne!(first.file_path(), second.file_path());
        assert_eq!((first.record_count(), second.record_count()), (n as u64, 15));
        assert_eq!(first.referenced_data_file(), Some(a.clone()));
        assert_eq!(first.upper_bounds().get(&POS_FIELD_ID), Some(&Datum::long(n - 1)));
        assert_eq!(second.referenced_data_file(), None);
        assert_eq!(second.lower_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&a)));
        assert_eq!(second.upper_bounds().get(&FILE_PATH_FIELD_ID), Some(&Datum::string(&b)));
        assert_eq!(second.lower_bounds().get(&POS_FIELD_ID), Some(&Datum::long(0)));
        assert_eq!(second.upper_bounds().get(&POS_FIELD_ID), Some(&Datum::long(n + 9)));
        let (rows, _) = read(&file_io, second).await;
        assert_eq!(rows.first(), Some(&(a.clone(), n)));
        assert_eq!(rows.last(), Some(&(b.clone(), 4)));
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metadata = table(&dir);
        let writer = PositionDeleteWriter::new(FileIO::new_with_fs());
        let a = format!("{}/data/a.parquet", metadata.location());
        let targets = [ReferencedFile::new(&a, region("eu"))];

        let none = writer.write(&metadata, &targets, Vec::<(String, i64)>::new()).await.expect("nothing to write");
        assert!(none.is_empty());
        let err = writer.write(&metadata, &targets, vec![(a.clone(), -1)]).await.expect_err("negative");
        assert!(matches!(err, PositionDeleteError::NegativePosition { pos: -1, .. }), "{err}");
        let err = writer.write(&metadata, &targets, vec![("elsewhere".to_string(), 0)]).await.expect_err("unknown");
        assert!(matches!(&err, PositionDeleteError::UnknownDataFile { path, .. } if path == "elsewhere"), "{err}");
        let twice = [ReferencedFile::new(&a, region("eu")), ReferencedFile::new(&a, region("us"))];
        let err = writer.write(&metadata, &twice, vec![(a.clone(), 0)]).await.expect_err("two partitions");
        assert!(matches!(err, PositionDeleteError::ConflictingPartitions { .. }), "{err}");
        let wrong_type = [ReferencedFile::new(&a, Struct::from_iter([Some(Literal::long(1))]))];
        let err = writer.write(&metadata, &wrong_type, vec![(a.clone(), 0)]).await.expect_err("long for a string");
        assert!(matches!(err, PositionDeleteError::BadPartition { .. }), "{err}");
        let unpartitioned = [ReferencedFile::new(&a, Struct::empty())];
        let err = writer.write(&metadata, &unpartitioned, vec![(a.clone(), 0)]).await.expect_err("no partition");
        assert!(matches!(err, PositionDeleteError::BadPartition { .. }), "{err}");
        assert!(err.to_string().contains(&a), "errors name the data file: {err}");
    }
}
