//! Arrow batches → Parquet data files (with Iceberg column statistics).

use arrow_array::RecordBatch;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, Struct, TableMetadata};
use iceberg::writer::CurrentFileStatus;
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Compression of a layer's data files (Parquet's default is none: never use it).
#[derive(Debug, Clone, Copy)]
pub enum Codec {
    Snappy,
    Zstd(i32),
}

impl Codec {
    pub(crate) fn parquet(self) -> Compression {
        match self {
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
        }
    }

    /// The `write.parquet.compression-codec` table property value.
    pub fn property(self) -> &'static str {
        match self {
            Codec::Snappy => "snappy",
            Codec::Zstd(_) => "zstd",
        }
    }
}

/// Writes the data files of one commit.
#[derive(Clone, Debug)]
pub struct DataFileWriter {
    file_io: FileIO,
    props: WriterProperties,
    target_file_size: usize,
}

impl DataFileWriter {
    pub fn new(file_io: FileIO, codec: Codec, target_file_size: usize) -> Self {
        Self::with_opaque_columns(file_io, codec, target_file_size, &[])
    }

    /// Like [`DataFileWriter::new`], with `opaque` columns (large, unique
    /// blobs such as raw message values) written without dictionary and
    /// without min/max statistics: a dictionary never pays off for them and
    /// their bounds prune nothing.
    pub fn with_opaque_columns(file_io: FileIO, codec: Codec, target_file_size: usize, opaque: &[&str]) -> Self {
        let mut props = WriterProperties::builder()
            .set_compression(codec.parquet())
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_max_row_group_row_count(Some(1 << 20));
        for name in opaque {
            let col = ColumnPath::from(*name);
            props = props
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_statistics_enabled(col, EnabledStatistics::None);
        }
        Self { file_io, props: props.build(), target_file_size: target_file_size.max(1 << 20) }
    }

    /// Writes `batches` (all of one partition, in the table's current schema)
    /// into one or more files under `<location>/data/<partition path>/`,
    /// rolling at the target size.
    pub async fn write(
        &self,
        metadata: &TableMetadata,
        partition: Struct,
        batches: &[RecordBatch],
    ) -> iceberg::Result<Vec<DataFile>> {
        let schema = metadata.current_schema().clone();
        let spec = metadata.default_partition_spec();
        let arrow_schema = std::sync::Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?);
        let partition_dir = if spec.is_unpartitioned() {
            String::new()
        } else {
            format!("{}/", spec.partition_to_path(&partition, schema.clone()))
        };
        let builder = ParquetWriterBuilder::new(self.props.clone(), schema);
        let prefix = uuid::Uuid::new_v4();
        let mut files = Vec::new();
        let mut writer = None;
        let mut n = 0;
        for batch in batches {
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = batch.clone().with_schema(arrow_schema.clone()).map_err(|e| {
                iceberg::Error::new(iceberg::ErrorKind::DataInvalid, format!("batch does not match table schema: {e}"))
            })?;
            if writer.is_none() {
                let path = format!("{}/data/{partition_dir}{prefix}-{n:05}.parquet", metadata.location());
                n += 1;
                writer = Some(builder.build(self.file_io.new_output(path)?).await?);
            }
            let w = writer.as_mut().expect("opened above");
            w.write(&batch).await?;
            if w.current_written_size() >= self.target_file_size {
                let done = writer.take().expect("opened above");
                files.extend(finish(done.close().await?, &partition, metadata)?);
            }
        }
        if let Some(w) = writer {
            files.extend(finish(w.close().await?, &partition, metadata)?);
        }
        Ok(files)
    }
}

fn finish(
    builders: Vec<iceberg::spec::DataFileBuilder>,
    partition: &Struct,
    metadata: &TableMetadata,
) -> iceberg::Result<Vec<DataFile>> {
    builders
        .into_iter()
        .map(|mut b| {
            b.partition(partition.clone()).partition_spec_id(metadata.default_partition_spec_id());
            b.build().map_err(|e| iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("data file entry: {e}")))
        })
        .collect()
}
