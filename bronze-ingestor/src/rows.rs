//! Column builders for Bronze rows of one (table, day).

use std::sync::Arc;

use arrow_array::builder::{
    Int32Builder, Int64Builder, LargeBinaryBuilder as BinaryBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, LargeBinaryArray, RecordBatch, StringArray};
use arrow_schema::SchemaRef;

use lakehouse::cdc::{self, Decoded};
use lakehouse::config::ValueFormat;

/// One Kafka message, borrowed from the consumer.
pub struct Message<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// `[name, value]` pairs, already rendered as a JSON array; `None` without headers.
    pub headers_json: Option<String>,
}

/// Builds Bronze columns; [`RowsBuilder::finish`] yields a record batch in the
/// table's Arrow schema.
pub struct RowsBuilder {
    schema: SchemaRef,
    rows: usize,
    bytes: usize,
    key: StringBuilder,
    value: StringBuilder,
    key_bytes: BinaryBuilder,
    value_bytes: BinaryBuilder,
    event_kind: StringBuilder,
    op: StringBuilder,
    ts_ms: Int64Builder,
    source_ts_ms: Int64Builder,
    connector: StringBuilder,
    db: StringBuilder,
    source_schema: StringBuilder,
    table: StringBuilder,
    position: StringBuilder,
    decode_error: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    kafka_ts: TimestampMicrosecondBuilder,
    headers: StringBuilder,
    ingestion_ts: TimestampMicrosecondBuilder,
    source_system: StringBuilder,
    source_file: StringBuilder,
}

/// Outcome of appending one message, for metrics.
pub struct Appended {
    pub decode_error: bool,
}

impl RowsBuilder {
    pub fn new(schema: SchemaRef) -> Self {
        Self::with_capacity(schema, 1024, 1024 * 512)
    }

    /// Pre-sized for `rows` rows with about `value_bytes` of values, so the
    /// hot path never re-allocates (and copies) growing buffers.
    pub fn with_capacity(schema: SchemaRef, rows: usize, value_bytes: usize) -> Self {
        Self {
            schema,
            rows: 0,
            bytes: 0,
            key: StringBuilder::with_capacity(rows, rows * 24),
            value: StringBuilder::with_capacity(rows, value_bytes),
            key_bytes: BinaryBuilder::new(),
            value_bytes: BinaryBuilder::new(),
            event_kind: StringBuilder::with_capacity(rows, rows * 8),
            op: StringBuilder::with_capacity(rows, rows),
            ts_ms: Int64Builder::new(),
            source_ts_ms: Int64Builder::new(),
            connector: StringBuilder::new(),
            db: StringBuilder::new(),
            source_schema: StringBuilder::new(),
            table: StringBuilder::new(),
            position: StringBuilder::with_capacity(rows, rows * 16),
            decode_error: StringBuilder::new(),
            topic: StringBuilder::with_capacity(rows, rows * 32),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            kafka_ts: TimestampMicrosecondBuilder::new().with_timezone("+00:00"),
            headers: StringBuilder::new(),
            ingestion_ts: TimestampMicrosecondBuilder::new().with_timezone("+00:00"),
            source_system: StringBuilder::new(),
            source_file: StringBuilder::with_capacity(rows, rows * 48),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes buffered (message key + value sizes).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one message consumed at `ingestion_us` (µs since the epoch).
    pub fn append(&mut self, m: &Message<'_>, format: ValueFormat, source_system: &str, ingestion_us: i64) -> Appended {
        self.rows += 1;
        self.bytes += m.key.map_or(0, <[u8]>::len) + m.value.map_or(0, <[u8]>::len) + 64;

        push_text(&mut self.key, &mut self.key_bytes, m.key);
        let value_text = push_text(&mut self.value, &mut self.value_bytes, m.value);

        let mut decoded: Decoded<'_> = match value_text {
            Some(text) => cdc::decode_str(text, format),
            None => cdc::decode(m.value, format),
        };
        if m.value.is_some() && value_text.is_none() && decoded.error.is_none() {
            // Not UTF-8 but the format did not look (raw): still say so.
            decoded.error = Some("value is not valid UTF-8; kept in value_bytes".to_string());
        }
        let decode_error = decoded.error.is_some();
        self.event_kind.append_value(decoded.kind.as_str());
        self.op.append_option(decoded.op.as_deref());
        self.ts_ms.append_option(decoded.ts_ms);
        self.source_ts_ms.append_option(decoded.source_ts_ms);
        self.connector.append_option(decoded.connector.as_deref());
        self.db.append_option(decoded.db.as_deref());
        self.source_schema.append_option(decoded.schema.as_deref());
        self.table.append_option(decoded.table.as_deref());
        match &decoded.position {
            Some(p) => {
                use std::fmt::Write;
                let _ = write!(self.position, "{p}");
                self.position.append_value("");
            }
            None => self.position.append_null(),
        }
        self.decode_error.append_option(decoded.error.as_deref());

        self.topic.append_value(m.topic);
        self.partition.append_value(m.partition);
        self.offset.append_value(m.offset);
        self.kafka_ts.append_option(m.timestamp_ms.map(|t| t * 1000));
        self.headers.append_option(m.headers_json.as_deref());
        self.ingestion_ts.append_value(ingestion_us);
        self.source_system.append_value(source_system);
        {
            use std::fmt::Write;
            // Written straight into the builder's buffer, no temporary String.
            let _ = write!(self.source_file, "{}/{}/{}", m.topic, m.partition, m.offset);
            self.source_file.append_value("");
        }
        // record_hash is computed for all rows at once in `finish` (multi-lane MD5).
        Appended { decode_error }
    }

    /// The buffered rows as one record batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        let value = self.value.finish();
        let value_bytes = self.value_bytes.finish();
        let record_hash = record_hashes(&value, &value_bytes);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(value),
            Arc::new(self.key_bytes.finish()),
            Arc::new(value_bytes),
            Arc::new(self.event_kind.finish()),
            Arc::new(self.op.finish()),
            Arc::new(self.ts_ms.finish()),
            Arc::new(self.source_ts_ms.finish()),
            Arc::new(self.connector.finish()),
            Arc::new(self.db.finish()),
            Arc::new(self.source_schema.finish()),
            Arc::new(self.table.finish()),
            Arc::new(self.position.finish()),
            Arc::new(self.decode_error.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.kafka_ts.finish()),
            Arc::new(self.headers.finish()),
            Arc::new(self.ingestion_ts.finish()),
            Arc::new(self.source_system.finish()),
            Arc::new(self.source_file.finish()),
            Arc::new(record_hash),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), columns).expect("builders match the Bronze schema column for column")
    }
}

/// Hex MD5 of every raw value (text or binary); null for a tombstone.
fn record_hashes(value: &StringArray, value_bytes: &LargeBinaryArray) -> StringArray {
    let n = value.len();
    let raw: Vec<Option<&[u8]>> = (0..n)
        .map(|i| {
            if value.is_valid(i) {
                Some(value.value(i).as_bytes())
            } else if value_bytes.is_valid(i) {
                Some(value_bytes.value(i))
            } else {
                None
            }
        })
        .collect();
    let present: Vec<&[u8]> = raw.iter().flatten().copied().collect();
    let mut digests = lakehouse::md5x::md5_many(&present).into_iter();
    let mut out = StringBuilder::with_capacity(n, present.len() * 32);
    for r in &raw {
        match r {
            Some(_) => {
                let d = digests.next().expect("one digest per present value");
                out.append_value(std::str::from_utf8(&lakehouse::md5x::hex(&d)).expect("hex digits are ASCII"));
            }
            None => out.append_null(),
        }
    }
    out.finish()
}

/// Appends `bytes` as text when it is UTF-8, else as binary; returns the text.
fn push_text<'a>(text: &mut StringBuilder, binary: &mut BinaryBuilder, bytes: Option<&'a [u8]>) -> Option<&'a str> {
    // SIMD validation: this runs on every key and value.
    match bytes.map(simdutf8::basic::from_utf8) {
        None => {
            text.append_null();
            binary.append_null();
            None
        }
        Some(Ok(s)) => {
            text.append_value(s);
            binary.append_null();
            Some(s)
        }
        Some(Err(_)) => {
            text.append_null();
            binary.append_value(bytes.expect("matched Some"));
            None
        }
    }
}

/// Renders Kafka headers as `[["name","value"],...]`; a value that is not
/// UTF-8 is rendered as `{"hex":"..."}`, a null value as `null`.
pub fn headers_json<'a>(headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) -> Option<String> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let v = match value {
            None => serde_json::Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => serde_json::Value::String(s.to_string()),
                Err(_) => {
                    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    serde_json::json!({ "hex": hex })
                }
            },
        };
        out.push(serde_json::json!([name, v]));
    }
    if out.is_empty() { None } else { Some(serde_json::Value::Array(out).to_string()) }
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;

    fn arrow_schema() -> SchemaRef {
        Arc::new(iceberg::arrow::schema_to_arrow_schema(&crate::schema::schema()).expect("converts"))
    }

    #[test]
    fn rows_keep_value_verbatim_and_hash_it() {
        let mut b = RowsBuilder::new(arrow_schema());
        let value = br#"{"op":"c","source":{"connector":"mysql","db":"inv","table":"t"},"ts_ms":7}"#;
        b.append(
            &Message {
                topic: "dbz.inv.t",
                partition: 2,
                offset: 41,
                timestamp_ms: Some(1000),
                key: Some(b"{\"id\":1}"),
                value: Some(value),
                headers_json: None,
            },
            ValueFormat::Debezium,
            "dbz",
            5,
        );
        b.append(
            &Message {
                topic: "dbz.inv.t",
                partition: 2,
                offset: 42,
                timestamp_ms: None,
                key: Some(&[0xff]),
                value: None,
                headers_json: None,
            },
            ValueFormat::Debezium,
            "dbz",
            6,
        );
        b.append(
            &Message {
                topic: "dbz.inv.t",
                partition: 2,
                offset: 43,
                timestamp_ms: None,
                key: None,
                value: Some(&[0xff, 0x01]),
                headers_json: None,
            },
            ValueFormat::Debezium,
            "dbz",
            7,
        );
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 3);
        let col = |n: &str| batch.column_by_name(n).expect("column").clone();
        assert_eq!(col("value").as_string::<i32>().value(0).as_bytes(), value);
        assert!(col("value").is_null(1));
        assert!(col("key").is_null(1));
        assert_eq!(col("key_bytes").as_binary::<i64>().value(1), &[0xff]);
        assert_eq!(col("op").as_string::<i32>().value(0), "c");
        assert_eq!(col("event_kind").as_string::<i32>().value(1), "tombstone");
        assert_eq!(col("source_file").as_string::<i32>().value(0), "dbz.inv.t/2/41");
        let expected = format!("{:x}", Md5::digest(value));
        assert_eq!(col("record_hash").as_string::<i32>().value(0), expected);
        assert!(col("record_hash").is_null(1));
        // A value that is not UTF-8 is hashed as the raw bytes it is kept as.
        assert_eq!(col("value_bytes").as_binary::<i64>().value(2), &[0xff, 0x01]);
        assert_eq!(col("record_hash").as_string::<i32>().value(2), format!("{:x}", Md5::digest([0xff, 0x01])));
        assert_eq!(b.rows(), 0);
    }

    #[test]
    fn headers_render_as_json() {
        let h = headers_json([("a", Some(&b"x"[..])), ("b", Some(&[0xffu8][..])), ("c", None)].into_iter());
        assert_eq!(h.as_deref(), Some(r#"[["a","x"],["b",{"hex":"ff"}],["c",null]]"#));
        assert_eq!(headers_json(std::iter::empty()), None);
    }
}
