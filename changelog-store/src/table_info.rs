//! Derived facts about a table schema that every layer needs (key columns, types, buckets).

use crate::error::{Error, Result};
use crate::options::CoreOptions;
use crate::row::{Datum, Key};
use crate::spec::binary_row;
use crate::spec::schema::TableSchema;
use crate::spec::types::DataType;

/// Schema + options + the column positions derived from them.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub schema: TableSchema,
    pub options: CoreOptions,
    pub value_types: Vec<DataType>,
    /// Positions of the trimmed primary key (primary key minus partition keys).
    pub key_indices: Vec<usize>,
    pub key_types: Vec<DataType>,
    pub key_names: Vec<String>,
    pub partition_indices: Vec<usize>,
    pub partition_types: Vec<DataType>,
    pub bucket_key_indices: Vec<usize>,
    pub bucket_key_types: Vec<DataType>,
    pub sequence_indices: Vec<usize>,
}

/// Paimon's rule for a primary-key table: the bucket key is a subset of the primary key
/// and shares no column with the partition key (a row's bucket must not depend on
/// anything but its key, or an update could land in another bucket than the row it
/// replaces).
fn check_bucket_key(schema: &TableSchema, value: &str) -> Result<()> {
    let bad = |message: String| Error::InvalidOption { key: "bucket-key".into(), value: value.to_string(), message };
    let names: Vec<&str> = value.split(',').map(str::trim).collect();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(bad("empty column name".into()));
        }
        if names[..i].contains(name) {
            return Err(bad(format!("column `{name}` listed twice")));
        }
        if schema.field_index(name).is_none() {
            return Err(bad(format!("unknown column `{name}`")));
        }
        if schema.partition_keys.iter().any(|p| p == name) {
            return Err(bad(format!(
                "column `{name}` is a partition key {:?}; bucket keys must not contain partition keys",
                schema.partition_keys
            )));
        }
        if !schema.primary_keys.iter().any(|p| p == name) {
            return Err(bad(format!(
                "column `{name}` is not in the primary key {:?}; bucket keys must be a subset of it",
                schema.primary_keys
            )));
        }
    }
    Ok(())
}

impl TableInfo {
    pub fn new(schema: TableSchema) -> Result<Self> {
        let options = CoreOptions::parse(&schema.options)?;
        let idx = |name: &str| {
            schema.field_index(name).ok_or_else(|| Error::InvalidSchema(format!("unknown column `{name}`")))
        };
        let key_names = schema.trimmed_primary_keys();
        let key_indices = key_names.iter().map(|k| idx(k)).collect::<Result<Vec<_>>>()?;
        let partition_indices = schema.partition_keys.iter().map(|k| idx(k)).collect::<Result<Vec<_>>>()?;
        let bucket_key_indices = match schema.options.get("bucket-key") {
            Some(v) if !v.trim().is_empty() => {
                check_bucket_key(&schema, v)?;
                v.split(',').map(|k| idx(k.trim())).collect::<Result<Vec<_>>>()?
            }
            _ => key_indices.clone(),
        };
        let sequence_indices = options.sequence_fields.iter().map(|k| idx(k)).collect::<Result<Vec<_>>>()?;
        let value_types: Vec<DataType> = schema.fields.iter().map(|f| f.data_type).collect();
        let pick = |ix: &[usize]| ix.iter().map(|i| value_types[*i]).collect::<Vec<_>>();
        Ok(TableInfo {
            key_types: pick(&key_indices),
            partition_types: pick(&partition_indices),
            bucket_key_types: pick(&bucket_key_indices),
            value_types,
            key_indices,
            key_names,
            partition_indices,
            bucket_key_indices,
            sequence_indices,
            options,
            schema,
        })
    }

    pub fn key_of(&self, row: &[Datum]) -> Key {
        self.key_indices.iter().map(|i| row[*i].clone()).collect()
    }

    pub fn partition_of(&self, row: &[Datum]) -> Vec<Datum> {
        self.partition_indices.iter().map(|i| row[*i].clone()).collect()
    }

    pub fn bucket_of(&self, row: &[Datum]) -> i32 {
        if let [i] = self.bucket_key_indices[..] {
            return binary_row::bucket(&self.bucket_key_types, &[&row[i]], self.options.bucket);
        }
        let vals: Vec<&Datum> = self.bucket_key_indices.iter().map(|i| &row[*i]).collect();
        binary_row::bucket(&self.bucket_key_types, &vals, self.options.bucket)
    }

    /// The bucket of a row whose bucket key columns hold `key` (in bucket key order).
    pub fn bucket_of_key(&self, key: &[Datum]) -> i32 {
        if let [k] = key {
            return binary_row::bucket(&self.bucket_key_types, &[k], self.options.bucket);
        }
        let vals: Vec<&Datum> = key.iter().collect();
        binary_row::bucket(&self.bucket_key_types, &vals, self.options.bucket)
    }

    pub fn serialize_key(&self, key: &Key) -> Vec<u8> {
        let refs: Vec<&Datum> = key.iter().collect();
        binary_row::serialize(&self.key_types, &refs)
    }

    pub fn deserialize_key(&self, bytes: &[u8]) -> Result<Key> {
        binary_row::deserialize(&self.key_types, bytes)
    }

    pub fn serialize_partition(&self, partition: &[Datum]) -> Vec<u8> {
        let refs: Vec<&Datum> = partition.iter().collect();
        binary_row::serialize(&self.partition_types, &refs)
    }

    pub fn deserialize_partition(&self, bytes: &[u8]) -> Result<Vec<Datum>> {
        binary_row::deserialize(&self.partition_types, bytes)
    }

    /// `(name, value)` pairs of a partition, for directory names.
    pub fn partition_spec(&self, partition: &[Datum]) -> Vec<(String, Datum)> {
        self.schema.partition_keys.iter().cloned().zip(partition.iter().cloned()).collect()
    }

    /// User sequence-field values of a row (empty if no `sequence.field`).
    pub fn user_sequence(&self, row: &[Datum]) -> Vec<Datum> {
        self.sequence_indices.iter().map(|i| row[*i].clone()).collect()
    }

    /// Checks a row against the schema (arity, types, NOT NULL).
    pub fn check_row(&self, row: &[Datum]) -> Result<()> {
        if row.len() != self.schema.fields.len() {
            return Err(Error::InvalidValue {
                column: "<row>".into(),
                message: format!("{} values for {} columns", row.len(), self.schema.fields.len()),
            });
        }
        for (f, d) in self.schema.fields.iter().zip(row.iter()) {
            d.check_type(&f.name, &f.data_type)?;
        }
        Ok(())
    }
}
