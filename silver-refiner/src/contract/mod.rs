//! Entity contracts: what a Silver table is (business key, typed columns,
//! cleansing and validation rules, partitioning, evolution) declared in TOML.
//!
//! One entity per file (top-level keys) or one `[[entity]]` section each:
//!
//! ```toml
//! name = "orders"                 # silver.orders
//! version = 3                     # recorded with every reject
//! source = "bronze.orders"        # the Bronze table
//! key = ["order_id"]              # one or more columns; implicitly not null
//! evolve = "add-columns"          # or "none" (default): unknown columns only go to `_extra`
//! ignore = ["__deleted"]          # source fields that are neither columns nor `_extra`
//! partition = { column = "order_date", transform = "day" }   # or "month"; optional
//!
//! [[column]]
//! name = "order_id"
//! type = "long"
//!
//! [[column]]
//! name = "order_date"
//! type = "date"
//! formats = ["%d.%m.%Y"]          # text dates; else ISO; bare integers are days (or `unit`)
//!
//! [[column]]
//! name = "amount"
//! type = "decimal(12,2)"          # a value needing more digits is a `precision` reject
//! source = "amount_cents"         # the Debezium field, when it differs
//! factor = "0.01"                 # exact for decimals
//! min = "0"
//! default = "0.00"
//!
//! [[column]]
//! name = "currency"
//! type = "string"
//! trim = true
//! empty_as_null = true
//! case = "upper"
//! allowed = ["EUR", "USD"]
//! not_null = true
//! ```
//!
//! Column keys — reading: `type`, `source`, `unit` (days|seconds|millis|micros|nanos),
//! `formats` (chrono), `assume_offset` ("+02:00", timestamptz only), `encoding`
//! (auto|text|base64|hex); cleansing: `trim`, `empty_as_null`, `case`
//! (lower|upper), `factor`, `default`; rules: `not_null`, `min`, `max`, `regex`
//! (unanchored unless written with `^…$`), `allowed`, `max_length` (characters,
//! bytes for binary). Every contract is validated when loaded: errors name the
//! file, the entity and the column.

pub(crate) mod column;
mod entity;
mod error;
mod set;
pub(crate) mod spec;
mod types;

pub use column::Column;
pub use entity::{Contract, DEFAULT_UNAVAILABLE_PLACEHOLDER, Partition};
pub use error::ContractError;
pub use set::Contracts;
pub use types::{Case, ColumnType, Encoding, Evolve, TimeUnit, Transform};
#[cfg(test)]
mod tests;
