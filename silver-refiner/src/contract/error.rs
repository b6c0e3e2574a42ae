//! Why a contract was refused. Every message names the file (or origin), the
//! entity and, where it applies, the column.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("reading contract {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("contract {origin}{}: not the shape of a contract: {source}", entity.as_ref().map(|e| format!(", entity `{e}`")).unwrap_or_default())]
    Syntax {
        origin: String,
        /// The entity whose section is wrong, when its `name` could be read.
        entity: Option<String>,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("contract {origin}: {problem}")]
    File { origin: String, problem: String },
    #[error("contract {origin}, entity `{entity}`: {problem}")]
    Entity { origin: String, entity: String, problem: String },
    #[error("contract {origin}, entity `{entity}`, column `{column}`: {problem}")]
    Column { origin: String, entity: String, column: String, problem: String },
}

impl ContractError {
    /// The entity the error is about, when it is about one.
    pub fn entity(&self) -> Option<&str> {
        match self {
            ContractError::Entity { entity, .. } | ContractError::Column { entity, .. } => Some(entity),
            ContractError::Syntax { entity, .. } => entity.as_deref(),
            _ => None,
        }
    }

    /// The column the error is about, when it is about one.
    pub fn column(&self) -> Option<&str> {
        match self {
            ContractError::Column { column, .. } => Some(column),
            _ => None,
        }
    }
}
