//! Iceberg SQL catalog, in the table layout pyiceberg, iceberg-rust and
//! Iceberg's JDBC catalog share (`iceberg_tables`, `iceberg_namespace_properties`).
//!
//! We own this instead of using `iceberg-catalog-sql` because the commit layer
//! needs the catalog's raw compare-and-swap ([`SqlCatalog::swap_metadata`]), not
//! a transaction API that rebases and retries on its own.

mod sql;

pub use sql::{CatalogError, LoadedTable, SqlCatalog, TableName};
