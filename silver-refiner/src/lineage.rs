//! Lineage columns every Silver row carries after the contract's columns,
//! and the source order (`_seq`) that decides which version of a key wins.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Source order of the change: the Debezium position, Kafka offset as tie-breaker.
pub const SEQ: &str = "_seq";
pub const BRONZE_SNAPSHOT: &str = "_bronze_snapshot_id";
pub const KAFKA_TOPIC: &str = "_kafka_topic";
pub const KAFKA_PARTITION: &str = "_kafka_partition";
pub const KAFKA_OFFSET: &str = "_kafka_offset";
pub const SOURCE_OP: &str = "_source_op";
pub const RECORD_HASH: &str = "_record_hash";
pub const REFINED_AT: &str = "_refined_at";

/// The lineage fields, with field ids from `first_id` on.
pub fn fields(first_id: i32) -> Vec<Field> {
    let f = |i: i32, name: &str, ty: DataType, nullable: bool| {
        Field::new(name, ty, nullable)
            .with_metadata([("PARQUET:field_id".to_string(), (first_id + i).to_string())].into_iter().collect())
    };
    vec![
        f(0, SEQ, DataType::Int64, false),
        f(1, BRONZE_SNAPSHOT, DataType::Int64, true),
        f(2, KAFKA_TOPIC, DataType::Utf8, true),
        f(3, KAFKA_PARTITION, DataType::Int32, true),
        f(4, KAFKA_OFFSET, DataType::Int64, true),
        f(5, SOURCE_OP, DataType::Utf8, true),
        f(6, RECORD_HASH, DataType::Utf8, true),
        f(7, REFINED_AT, DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true),
    ]
}

/// The Silver schema of an entity in field-id order, which is the Iceberg
/// table's column order: the declared columns, `_extra`, the lineage columns,
/// then columns added by schema evolution.
pub fn silver_schema(contract: &crate::Contract) -> SchemaRef {
    let base = contract.arrow_schema();
    let mut all: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    all.extend(fields(contract.extra_field_id() + 1));
    all.sort_by_key(field_id);
    Arc::new(Schema::new(all))
}

/// The Iceberg field id of a field (`PARQUET:field_id`), 0 when absent.
pub fn field_id(f: &Field) -> i32 {
    f.metadata().get("PARQUET:field_id").and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The first field id schema evolution may use: after the lineage columns.
pub fn first_added_id(contract: &crate::Contract) -> i32 {
    contract.extra_field_id() + 1 + fields(0).len() as i32
}
