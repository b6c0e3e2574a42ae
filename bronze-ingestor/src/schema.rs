//! The Bronze table layout: verbatim message, decoded envelope, Kafka
//! coordinates and audit columns. Partitioned by `day(ingestion_timestamp)`.

use std::collections::HashMap;

use iceberg::spec::{NestedField, PrimitiveType, Schema, Transform, Type, UnboundPartitionField, UnboundPartitionSpec};

use lakehouse::table::create::TableSpec;
use lakehouse::table::writer::Codec;

/// Column names, in field-id order (field id = index + 1).
pub mod col {
    pub const KEY: &str = "key";
    pub const VALUE: &str = "value";
    pub const KEY_BYTES: &str = "key_bytes";
    pub const VALUE_BYTES: &str = "value_bytes";
    pub const EVENT_KIND: &str = "event_kind";
    pub const OP: &str = "op";
    pub const TS_MS: &str = "ts_ms";
    pub const SOURCE_TS_MS: &str = "source_ts_ms";
    pub const SOURCE_CONNECTOR: &str = "source_connector";
    pub const SOURCE_DB: &str = "source_db";
    pub const SOURCE_SCHEMA: &str = "source_schema";
    pub const SOURCE_TABLE: &str = "source_table";
    pub const SOURCE_POSITION: &str = "source_position";
    pub const DECODE_ERROR: &str = "decode_error";
    pub const KAFKA_TOPIC: &str = "kafka_topic";
    pub const KAFKA_PARTITION: &str = "kafka_partition";
    pub const KAFKA_OFFSET: &str = "kafka_offset";
    pub const KAFKA_TIMESTAMP: &str = "kafka_timestamp";
    pub const KAFKA_HEADERS: &str = "kafka_headers";
    pub const INGESTION_TIMESTAMP: &str = "ingestion_timestamp";
    pub const SOURCE_SYSTEM: &str = "source_system";
    pub const SOURCE_FILE: &str = "source_file";
    pub const RECORD_HASH: &str = "record_hash";
}

/// Compression of Bronze data files.
pub const CODEC: Codec = Codec::Snappy;

/// Columns holding unique blobs: no dictionary, no min/max statistics.
pub const OPAQUE_COLUMNS: &[&str] = &[
    col::KEY,
    col::VALUE,
    col::KEY_BYTES,
    col::VALUE_BYTES,
    col::KAFKA_HEADERS,
    col::SOURCE_FILE,
    col::RECORD_HASH,
    col::DECODE_ERROR,
];

/// The writer Bronze uses.
pub fn data_file_writer(
    file_io: iceberg::io::FileIO,
    target_file_size: usize,
) -> lakehouse::table::writer::DataFileWriter {
    lakehouse::table::writer::DataFileWriter::with_opaque_columns(file_io, CODEC, target_file_size, OPAQUE_COLUMNS)
}

/// The Bronze schema.
pub fn schema() -> Schema {
    use PrimitiveType::*;
    let s = |p: PrimitiveType| Type::Primitive(p);
    let fields = [
        (col::KEY, s(String), false, "message key as received (UTF-8); null if absent or not UTF-8"),
        (
            col::VALUE,
            s(String),
            false,
            "message value as received, verbatim (UTF-8); null for a tombstone or if not UTF-8",
        ),
        (col::KEY_BYTES, s(Binary), false, "message key bytes, only when the key is not UTF-8"),
        (col::VALUE_BYTES, s(Binary), false, "message value bytes, only when the value is not UTF-8"),
        (
            col::EVENT_KIND,
            s(String),
            true,
            "change | tombstone | schema_change | transaction | row | undecodable | raw",
        ),
        (col::OP, s(String), false, "Debezium op (c, u, d, r, t, m), or BEGIN/END for transaction events"),
        (col::TS_MS, s(Long), false, "Debezium envelope ts_ms (connector processing time)"),
        (col::SOURCE_TS_MS, s(Long), false, "source.ts_ms (time of the change in the source database)"),
        (col::SOURCE_CONNECTOR, s(String), false, "source.connector"),
        (col::SOURCE_DB, s(String), false, "source.db"),
        (col::SOURCE_SCHEMA, s(String), false, "source.schema"),
        (col::SOURCE_TABLE, s(String), false, "source.table or source.collection"),
        (col::SOURCE_POSITION, s(String), false, "source log position (lsn=, file=..,pos=, ord=)"),
        (col::DECODE_ERROR, s(String), false, "why the value could not be decoded; null when it could"),
        (col::KAFKA_TOPIC, s(String), true, "Kafka topic"),
        (col::KAFKA_PARTITION, s(Int), true, "Kafka partition"),
        (col::KAFKA_OFFSET, s(Long), true, "Kafka offset"),
        (col::KAFKA_TIMESTAMP, s(Timestamptz), false, "Kafka message timestamp"),
        (col::KAFKA_HEADERS, s(String), false, "Kafka headers as a JSON array of [name, value] pairs"),
        (col::INGESTION_TIMESTAMP, s(Timestamptz), true, "when bronze-ingestor consumed the message"),
        (col::SOURCE_SYSTEM, s(String), true, "the source system the topic belongs to"),
        (col::SOURCE_FILE, s(String), true, "topic/partition/offset"),
        (col::RECORD_HASH, s(String), false, "hex MD5 of the raw value; null for a tombstone"),
    ];
    let fields = fields
        .into_iter()
        .enumerate()
        .map(|(i, (name, ty, required, doc))| {
            let id = i as i32 + 1;
            let f = if required { NestedField::required(id, name, ty) } else { NestedField::optional(id, name, ty) };
            f.with_doc(doc).into()
        })
        .collect::<Vec<_>>();
    Schema::builder().with_schema_id(0).with_fields(fields).build().expect("the Bronze schema is valid")
}

/// Field id of `ingestion_timestamp` (the partition source).
pub fn ingestion_timestamp_field_id() -> i32 {
    schema().field_id_by_name(col::INGESTION_TIMESTAMP).expect("column exists")
}

/// The full spec of a new Bronze table.
pub fn table_spec(retention_days: u32) -> TableSpec {
    let partition_spec = UnboundPartitionSpec::builder()
        .with_spec_id(0)
        .add_partition_fields([UnboundPartitionField {
            source_id: ingestion_timestamp_field_id(),
            field_id: Some(1000),
            name: "ingestion_timestamp_day".to_string(),
            transform: Transform::Day,
        }])
        .expect("partition field is valid")
        .build();
    let properties = HashMap::from([
        ("write.format.default".to_string(), "parquet".to_string()),
        ("write.parquet.compression-codec".to_string(), CODEC.property().to_string()),
        ("lakehouse.layer".to_string(), "bronze".to_string()),
        ("lakehouse.retention-days".to_string(), retention_days.to_string()),
    ]);
    TableSpec { schema: schema(), partition_spec, properties }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_ids_are_stable() {
        // Field ids are part of the on-disk format: never renumber.
        let s = schema();
        assert_eq!(s.field_id_by_name(col::KEY), Some(1));
        assert_eq!(s.field_id_by_name(col::KAFKA_OFFSET), Some(17));
        assert_eq!(s.field_id_by_name(col::INGESTION_TIMESTAMP), Some(20));
        assert_eq!(s.field_id_by_name(col::RECORD_HASH), Some(23));
        assert_eq!(s.as_struct().fields().len(), 23);
    }
}
