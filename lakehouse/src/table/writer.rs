//! Arrow batches → Parquet data files (with Iceberg column statistics).

use std::collections::HashMap;

use arrow_array::RecordBatch;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, Struct, TableMetadata};
use iceberg::writer::CurrentFileStatus;
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

/// Iceberg's table property naming the Parquet codec of new data files.
pub const COMPRESSION_CODEC: &str = "write.parquet.compression-codec";
/// Iceberg's table property for the codec's level (zstd: 1–22).
pub const COMPRESSION_LEVEL: &str = "write.parquet.compression-level";

/// Iceberg's table properties for position-delete files (default: the data files').
pub const DELETE_COMPRESSION_CODEC: &str = "write.delete.parquet.compression-codec";
pub const DELETE_COMPRESSION_LEVEL: &str = "write.delete.parquet.compression-level";

/// Compression of a layer's data files (Parquet's default is none: never use it
/// unless a table asks for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Snappy,
    Zstd(i32),
    Uncompressed,
}

impl Codec {
    /// zstd's level where a table names none (parquet-java's, which Java Iceberg uses).
    pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

    pub(crate) fn parquet(self) -> Compression {
        match self {
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
            Codec::Uncompressed => Compression::UNCOMPRESSED,
        }
    }

    /// The [`COMPRESSION_CODEC`] table property value.
    pub fn property(self) -> &'static str {
        match self {
            Codec::Snappy => "snappy",
            Codec::Zstd(_) => "zstd",
            Codec::Uncompressed => "uncompressed",
        }
    }

    /// The codec a table's properties name ([`COMPRESSION_CODEC`] and
    /// [`COMPRESSION_LEVEL`], as Java Iceberg reads them); `None` when they name
    /// none. An unknown codec, one this writer does not have, or a level the
    /// codec does not take is an error naming the property.
    pub fn of_table(properties: &HashMap<String, String>) -> Result<Option<Codec>, String> {
        Self::named(properties, COMPRESSION_CODEC, COMPRESSION_LEVEL)
    }

    /// The codec of a table's position-delete files: [`DELETE_COMPRESSION_CODEC`]
    /// and [`DELETE_COMPRESSION_LEVEL`] where the table sets the codec, else the
    /// data files' ([`Codec::of_table`]).
    pub fn of_table_deletes(properties: &HashMap<String, String>) -> Result<Option<Codec>, String> {
        match properties.contains_key(DELETE_COMPRESSION_CODEC) {
            true => Self::named(properties, DELETE_COMPRESSION_CODEC, DELETE_COMPRESSION_LEVEL),
            false => Self::of_table(properties),
        }
    }

    fn named(properties: &HashMap<String, String>, codec_key: &str, level_key: &str) -> Result<Option<Codec>, String> {
        let Some(name) = properties.get(codec_key) else { return Ok(None) };
        let level = properties
            .get(level_key)
            .map(|l| l.trim().parse::<i32>().map_err(|_| format!("{level_key} = {l:?} is not an integer")))
            .transpose()?;
        match name.trim().to_ascii_lowercase().as_str() {
            "zstd" => {
                let level = level.unwrap_or(Self::ZSTD_DEFAULT_LEVEL);
                ZstdLevel::try_new(level).map_err(|_| format!("{level_key} = {level}: zstd takes 1 to 22"))?;
                Ok(Some(Codec::Zstd(level)))
            }
            "snappy" => Ok(Some(Codec::Snappy)),
            "uncompressed" => Ok(Some(Codec::Uncompressed)),
            other => Err(format!("{codec_key} = {other:?}: this writer has zstd, snappy and uncompressed")),
        }
    }
}

/// Writes the data files of one commit.
#[derive(Clone, Debug)]
pub struct DataFileWriter {
    file_io: FileIO,
    /// Built with `codec`, for tables whose properties name no other.
    props: WriterProperties,
    codec: Codec,
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
        Self { file_io, props: props.build(), codec, target_file_size: target_file_size.max(1 << 20) }
    }

    /// Writes `batches` (all of one partition, in the table's current schema)
    /// into one or more files under `<location>/data/<partition path>/`,
    /// rolling at the target size, compressed as the table's properties say
    /// ([`Codec::of_table`]; the writer's own codec where they say nothing).
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
        let codec = Codec::of_table(metadata.properties())
            .map_err(|e| iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e))?
            .unwrap_or(self.codec);
        let props = match codec == self.codec {
            true => self.props.clone(),
            false => self.props.clone().into_builder().set_compression(codec.parquet()).build(),
        };
        let builder = ParquetWriterBuilder::new(props, schema);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_from_table_properties() {
        let of = |pairs: &[(&str, &str)]| {
            Codec::of_table(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        assert_eq!(of(&[]), Ok(None));
        assert_eq!(of(&[(COMPRESSION_LEVEL, "1")]), Ok(None), "a level alone names no codec");
        assert_eq!(of(&[(COMPRESSION_CODEC, "zstd")]), Ok(Some(Codec::Zstd(3))));
        assert_eq!(of(&[(COMPRESSION_CODEC, "ZSTD"), (COMPRESSION_LEVEL, " 1 ")]), Ok(Some(Codec::Zstd(1))));
        assert_eq!(of(&[(COMPRESSION_CODEC, "snappy"), (COMPRESSION_LEVEL, "9")]), Ok(Some(Codec::Snappy)));
        assert_eq!(of(&[(COMPRESSION_CODEC, "uncompressed")]), Ok(Some(Codec::Uncompressed)));
        let deletes = |pairs: &[(&str, &str)]| {
            Codec::of_table_deletes(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        assert_eq!(deletes(&[(COMPRESSION_CODEC, "snappy")]), Ok(Some(Codec::Snappy)), "the data files' codec");
        assert_eq!(
            deletes(&[
                (COMPRESSION_CODEC, "snappy"),
                (DELETE_COMPRESSION_CODEC, "zstd"),
                (DELETE_COMPRESSION_LEVEL, "7")
            ]),
            Ok(Some(Codec::Zstd(7)))
        );
        assert_eq!(
            deletes(&[(DELETE_COMPRESSION_CODEC, "zstd"), (COMPRESSION_LEVEL, "7")]),
            Ok(Some(Codec::Zstd(3))),
            "the data level is not the delete level"
        );
        for (pairs, says) in [
            (&[(COMPRESSION_CODEC, "zstd"), (COMPRESSION_LEVEL, "30")][..], "zstd takes 1 to 22"),
            (&[(COMPRESSION_CODEC, "zstd"), (COMPRESSION_LEVEL, "high")][..], "is not an integer"),
            (&[(COMPRESSION_CODEC, "brotli")][..], "this writer has zstd, snappy and uncompressed"),
        ] {
            let err = of(pairs).expect_err("refused");
            assert!(err.contains(says), "{err}");
        }
    }
}
