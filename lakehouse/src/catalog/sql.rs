use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableIdent};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::config::CatalogConfig;
use crate::error::ErrorKind;

/// Errors of the SQL catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open catalog database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("catalog query failed while {doing}: {source}")]
    Query { doing: String, source: sqlx::Error },
    #[error("table {0} already exists")]
    AlreadyExists(TableName),
    #[error("table {0} does not exist")]
    NoSuchTable(TableName),
    #[error("cannot {doing} metadata file {path}: {source}")]
    Metadata { doing: &'static str, path: String, source: iceberg::Error },
    #[error("invalid table name {0:?}: expected <namespace>.<table>")]
    BadName(String),
    #[error("unsupported catalog url {0:?}: expected sqlite://<file> or postgres://...")]
    BadUrl(String),
}

impl CatalogError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::Connect { .. } | CatalogError::Query { .. } => ErrorKind::Transient,
            CatalogError::Metadata { .. } => ErrorKind::Transient,
            CatalogError::AlreadyExists(_) | CatalogError::NoSuchTable(_) => ErrorKind::Data,
            CatalogError::BadName(_) | CatalogError::BadUrl(_) => ErrorKind::Config,
        }
    }
}

/// `<namespace>.<table>`, single-level namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub namespace: String,
    pub name: String,
}

impl TableName {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }

    pub fn ident(&self) -> TableIdent {
        TableIdent::new(NamespaceIdent::new(self.namespace.clone()), self.name.clone())
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

impl FromStr for TableName {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('.') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('.') => Ok(Self::new(ns, name)),
            _ => Err(CatalogError::BadName(s.to_string())),
        }
    }
}

/// A table as the catalog points at it right now.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub name: TableName,
    pub metadata_location: String,
    pub metadata: Arc<TableMetadata>,
}

impl LoadedTable {
    /// An iceberg-rust [`Table`] for scans (read-only). Must be called
    /// inside a tokio runtime (scans run on it).
    pub fn to_table(&self, file_io: &FileIO) -> Result<Table, iceberg::Error> {
        Table::builder()
            .runtime(iceberg::Runtime::try_current()?)
            .identifier(self.name.ident())
            .metadata(self.metadata.clone())
            .metadata_location(self.metadata_location.clone())
            .file_io(file_io.clone())
            .readonly(true)
            .build()
    }
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQL catalog: SQLite file (WAL, busy timeout) or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlCatalog {
    name: String,
    pool: Pool,
    file_io: FileIO,
    warehouse: String,
}

const CREATE_TABLES: &str = "CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name))";

const CREATE_NAMESPACES: &str = "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000),
    PRIMARY KEY (catalog_name, namespace, property_key))";

/// Rows of text columns: everything the catalog stores is text.
type Rows = Vec<Vec<Option<String>>>;

impl SqlCatalog {
    /// Opens (and creates if needed) the catalog described by `config`.
    ///
    /// Several workers starting at once on a new SQLite file race to switch it
    /// to WAL and create the tables; SQLite answers "database is locked"
    /// without waiting for its busy timeout there, so opening is retried for
    /// up to 30 s on such transient errors.
    pub async fn connect(config: &CatalogConfig) -> Result<Self, CatalogError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match Self::connect_once(config).await {
                Err(e) if e.kind() == ErrorKind::Transient && std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "catalog not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(config: &CatalogConfig) -> Result<Self, CatalogError> {
        let url = config.url.as_str();
        let connect_err = |source| CatalogError::Connect { url: url.to_string(), source };
        let pool = if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(parent) = std::path::Path::new(path).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30));
            Pool::Sqlite(SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(connect_err)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
                    .map_err(connect_err)?,
            )
        } else {
            return Err(CatalogError::BadUrl(url.to_string()));
        };
        let warehouse = normalize_warehouse(&config.warehouse);
        let catalog = Self { name: config.name.clone(), pool, file_io: FileIO::new_with_fs(), warehouse };
        catalog.exec("creating iceberg_tables", CREATE_TABLES, &[]).await?;
        catalog.exec("creating iceberg_namespace_properties", CREATE_NAMESPACES, &[]).await?;
        Ok(catalog)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// `file:///...` location of the warehouse root.
    pub fn warehouse(&self) -> &str {
        &self.warehouse
    }

    /// Default location of a new table: `<warehouse>/<namespace>/<table>`.
    pub fn default_location(&self, name: &TableName) -> String {
        format!("{}/{}/{}", self.warehouse, name.namespace, name.name)
    }

    /// `?` placeholders, rewritten to `$n` for PostgreSQL.
    fn sql(&self, sql: &str) -> String {
        match self.pool {
            Pool::Sqlite(_) => sql.to_string(),
            Pool::Postgres(_) => {
                let mut out = String::with_capacity(sql.len() + 8);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    async fn exec(&self, doing: &str, sql: &str, args: &[&str]) -> Result<u64, CatalogError> {
        let sql = self.sql(sql);
        let err = |source| CatalogError::Query { doing: doing.to_string(), source };
        // Same code for both pools; the macro only spares repeating it per driver type.
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.execute($pool).await.map_err(err)?.rows_affected()
            }};
        }
        Ok(match &self.pool {
            Pool::Sqlite(pool) => run!(pool),
            Pool::Postgres(pool) => run!(pool),
        })
    }

    async fn fetch(&self, doing: &str, sql: &str, args: &[&str], cols: usize) -> Result<Rows, CatalogError> {
        let sql = self.sql(sql);
        let err = |source| CatalogError::Query { doing: doing.to_string(), source };
        let mut out = Vec::new();
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                for row in q.fetch_all($pool).await.map_err(err)? {
                    let mut r = Vec::with_capacity(cols);
                    for i in 0..cols {
                        r.push(row.try_get::<Option<String>, _>(i).map_err(err)?);
                    }
                    out.push(r);
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => run!(pool),
            Pool::Postgres(pool) => run!(pool),
        }
        Ok(out)
    }

    /// Creates the namespace if it does not exist (pyiceberg's `exists` marker property).
    pub async fn create_namespace_if_absent(&self, namespace: &str) -> Result<(), CatalogError> {
        let insert = match self.pool {
            Pool::Sqlite(_) => {
                "INSERT OR IGNORE INTO iceberg_namespace_properties \
                 (catalog_name, namespace, property_key, property_value) VALUES (?, ?, 'exists', 'true')"
            }
            Pool::Postgres(_) => {
                "INSERT INTO iceberg_namespace_properties \
                 (catalog_name, namespace, property_key, property_value) VALUES (?, ?, 'exists', 'true') \
                 ON CONFLICT DO NOTHING"
            }
        };
        self.exec(&format!("creating namespace {namespace}"), insert, &[&self.name, namespace]).await?;
        Ok(())
    }

    /// Every namespace that has a property row or a table.
    pub async fn list_namespaces(&self) -> Result<Vec<String>, CatalogError> {
        let rows = self
            .fetch(
                "listing namespaces",
                "SELECT namespace FROM iceberg_namespace_properties WHERE catalog_name = ? \
                 UNION SELECT table_namespace FROM iceberg_tables WHERE catalog_name = ?",
                &[&self.name, &self.name],
                1,
            )
            .await?;
        let mut out: Vec<String> = rows.into_iter().filter_map(|mut r| r.remove(0)).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Tables of one namespace, or of all.
    pub async fn list_tables(&self, namespace: Option<&str>) -> Result<Vec<TableName>, CatalogError> {
        let rows = match namespace {
            Some(ns) => {
                self.fetch(
                    "listing tables",
                    "SELECT table_namespace, table_name FROM iceberg_tables \
                     WHERE catalog_name = ? AND table_namespace = ? \
                     AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
                    &[&self.name, ns],
                    2,
                )
                .await?
            }
            None => {
                self.fetch(
                    "listing tables",
                    "SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = ? \
                     AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
                    &[&self.name],
                    2,
                )
                .await?
            }
        };
        let mut out: Vec<TableName> =
            rows.into_iter().filter_map(|r| Some(TableName::new(r[0].clone()?, r[1].clone()?))).collect();
        out.sort();
        Ok(out)
    }

    /// Where the catalog points for `name`, if the table exists.
    pub async fn metadata_location(&self, name: &TableName) -> Result<Option<String>, CatalogError> {
        let rows = self
            .fetch(
                &format!("loading table {name}"),
                "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? \
                 AND table_namespace = ? AND table_name = ? \
                 AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
                &[&self.name, &name.namespace, &name.name],
                1,
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|mut r| r.remove(0)))
    }

    /// Loads the current metadata of `name`, or `None` if the table does not exist.
    pub async fn load_table(&self, name: &TableName) -> Result<Option<LoadedTable>, CatalogError> {
        let Some(location) = self.metadata_location(name).await? else {
            return Ok(None);
        };
        let metadata = TableMetadata::read_from(&self.file_io, &location)
            .await
            .map_err(|source| CatalogError::Metadata { doing: "read", path: location.clone(), source })?;
        Ok(Some(LoadedTable { name: name.clone(), metadata_location: location, metadata: Arc::new(metadata) }))
    }

    /// Loads `name` or fails with [`CatalogError::NoSuchTable`].
    pub async fn require_table(&self, name: &TableName) -> Result<LoadedTable, CatalogError> {
        self.load_table(name).await?.ok_or_else(|| CatalogError::NoSuchTable(name.clone()))
    }

    /// Registers a new table whose first metadata file is already written.
    pub async fn register_table(&self, name: &TableName, metadata_location: &str) -> Result<(), CatalogError> {
        self.create_namespace_if_absent(&name.namespace).await?;
        let result = self
            .exec(
                &format!("creating table {name}"),
                "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                 metadata_location, previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')",
                &[&self.name, &name.namespace, &name.name, metadata_location],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(CatalogError::Query { source: sqlx::Error::Database(db), .. }) if db.is_unique_violation() => {
                Err(CatalogError::AlreadyExists(name.clone()))
            }
            Err(e) => Err(e),
        }
    }

    /// Compare-and-swap of the table pointer: succeeds only if the catalog still
    /// points at `expected`. Returns whether it swapped.
    pub async fn swap_metadata(&self, name: &TableName, expected: &str, new: &str) -> Result<bool, CatalogError> {
        let n = self
            .exec(
                &format!("committing table {name}"),
                "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
                 WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
                &[new, expected, &self.name, &name.namespace, &name.name, expected],
            )
            .await?;
        Ok(n == 1)
    }

    /// Removes the table from the catalog (files are left alone).
    pub async fn drop_table(&self, name: &TableName) -> Result<bool, CatalogError> {
        let n = self
            .exec(
                &format!("dropping table {name}"),
                "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
                &[&self.name, &name.namespace, &name.name],
            )
            .await?;
        Ok(n == 1)
    }
}

/// A warehouse given as a plain path becomes an absolute `file://` URL.
fn normalize_warehouse(warehouse: &str) -> String {
    let trimmed = warehouse.trim_end_matches('/');
    if trimmed.contains("://") {
        return trimmed.to_string();
    }
    let path = std::path::Path::new(trimmed);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    format!("file://{}", abs.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_parse() {
        let t: TableName = "bronze.orders".parse().expect("valid");
        assert_eq!(t, TableName::new("bronze", "orders"));
        assert!("orders".parse::<TableName>().is_err());
        assert!("a.b.c".parse::<TableName>().is_err());
        assert!(".x".parse::<TableName>().is_err());
    }

    #[test]
    fn relative_warehouse_becomes_absolute_file_url() {
        let w = normalize_warehouse("rel/wh/");
        assert!(w.starts_with("file:///"), "{w}");
        assert!(w.ends_with("/rel/wh"), "{w}");
        assert_eq!(normalize_warehouse("s3://bucket/wh"), "s3://bucket/wh");
    }
}
