//! Errors of the changelog store.
//!
//! Every module reports through [`Error`]; its [`ErrorKind`] is the coarse,
//! stable classification callers branch on (`is_retryable`).

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Coarse error classes a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Filesystem or encoding failure while reading or writing table files.
    Io,
    /// The table files are not what the Paimon format says they should be.
    Corrupt,
    /// The caller asked for something invalid (bad schema, wrong value type, ...).
    Invalid,
    /// Another committer changed the table in a way that conflicts with this commit.
    Conflict,
    /// The requested table, snapshot or file does not exist.
    NotFound,
    /// The requested snapshot was expired: what it held is gone for good (Paimon's
    /// `OutOfRangeException`). A consumer that gets this has lost changes.
    OutOfRange,
}

/// Errors of the changelog store. Messages name the operation and the ids involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error while {op} `{path}`: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Parquet error while {op} `{path}`: {source}")]
    Parquet {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("Arrow error while {op}: {source}")]
    Arrow {
        op: &'static str,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("Avro error while {op} `{path}`: {source}")]
    Avro {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Box<apache_avro::Error>,
    },
    #[error("JSON error while {op} `{path}`: {source}")]
    Json {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt table file `{path}`: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    #[error("invalid option `{key}` = `{value}`: {message}")]
    InvalidOption { key: String, value: String, message: String },
    #[error("invalid value for column `{column}`: {message}")]
    InvalidValue { column: String, message: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("table already exists at `{0}`")]
    TableExists(PathBuf),
    #[error("table not found at `{0}`")]
    TableNotFound(PathBuf),
    #[error("snapshot {id} not found in `{table}`")]
    SnapshotNotFound { table: PathBuf, id: i64 },
    #[error(
        "snapshot {requested} of `{table}` has expired (earliest retained snapshot: {earliest}); its changes are \
         gone. Register a consumer id (`Table::register_consumer`) so that expiry keeps the snapshots a reader \
         still needs, or retain snapshots longer (`snapshot.num-retained.min`, `snapshot.time-retained`)"
    )]
    SnapshotExpired { table: PathBuf, requested: i64, earliest: i64 },
    #[error("invalid consumer id `{id}` for `{table}`: {message}")]
    InvalidConsumerId { table: PathBuf, id: String, message: String },
    #[error("commit conflict on `{table}` (base snapshot {base:?}): {message}")]
    Conflict { table: PathBuf, base: Option<i64>, message: String },
    #[error("commit of `{table}` gave up after {attempts} attempts: snapshot ids kept being taken")]
    CommitRetriesExhausted { table: PathBuf, attempts: u32 },
}

impl Error {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Parquet { .. } | Error::Arrow { .. } => ErrorKind::Io,
            Error::Avro { .. } | Error::Json { .. } | Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::InvalidSchema(_)
            | Error::InvalidOption { .. }
            | Error::InvalidValue { .. }
            | Error::Unsupported(_)
            | Error::InvalidConsumerId { .. }
            | Error::TableExists(_) => ErrorKind::Invalid,
            Error::Conflict { .. } | Error::CommitRetriesExhausted { .. } => ErrorKind::Conflict,
            Error::TableNotFound(_) | Error::SnapshotNotFound { .. } => ErrorKind::NotFound,
            Error::SnapshotExpired { .. } => ErrorKind::OutOfRange,
        }
    }

    /// Whether retrying the same operation (after reloading the table) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Io | ErrorKind::Conflict)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), message: message.into() }
    }

    pub(crate) fn value(column: &str, message: impl Into<String>) -> Self {
        Error::InvalidValue { column: column.to_string(), message: message.into() }
    }
}
