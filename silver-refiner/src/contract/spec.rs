//! The TOML form of a contract, exactly as written (no checks beyond the
//! shape). [`super::Contract`] validates and compiles it.

use serde::Deserialize;

use super::types::{Case, Encoding, Evolve, TimeUnit, Transform};

/// A file with one `[[entity]]` section per entity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSpec {
    pub entity: Vec<EntitySpec>,
}

/// One entity: a file of its own (top-level keys) or one `[[entity]]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntitySpec {
    pub name: String,
    pub version: u32,
    pub source: String,
    pub key: OneOrMany,
    #[serde(default)]
    pub evolve: Evolve,
    pub partition: Option<PartitionSpec>,
    /// Source fields that are neither columns nor `_extra` (e.g. `__deleted`).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Debezium's `unavailable.value.placeholder` (unchanged TOAST values).
    pub unavailable_placeholder: Option<String>,
    #[serde(rename = "column")]
    pub columns: Vec<ColumnSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartitionSpec {
    pub column: String,
    pub transform: Transform,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub source: Option<String>,
    // Reading.
    pub unit: Option<TimeUnit>,
    #[serde(default)]
    pub formats: Vec<String>,
    pub assume_offset: Option<String>,
    #[serde(default)]
    pub encoding: Encoding,
    // Cleansing.
    #[serde(default)]
    pub trim: bool,
    #[serde(default)]
    pub empty_as_null: bool,
    pub case: Option<Case>,
    pub factor: Option<toml::Value>,
    pub default: Option<toml::Value>,
    // Validation.
    #[serde(default)]
    pub not_null: bool,
    pub min: Option<toml::Value>,
    pub max: Option<toml::Value>,
    pub regex: Option<String>,
    pub allowed: Option<Vec<toml::Value>>,
    pub max_length: Option<u32>,
}
