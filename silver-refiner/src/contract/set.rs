//! Several entities' contracts: one file with `[[entity]]` sections, or a
//! directory of contract files (one or more entities each).

use std::path::Path;

use super::entity::{Contract, parse_entities};
use super::error::ContractError;

/// The contracts a refiner runs, by entity name (unique).
#[derive(Debug, Clone, Default)]
pub struct Contracts {
    entities: Vec<(Contract, String)>,
}

impl Contracts {
    /// Every entity of one contract text.
    pub fn from_toml_str(text: &str) -> Result<Contracts, ContractError> {
        let mut out = Contracts::default();
        out.add(parse_entities(text, "(string)")?, "(string)")?;
        Ok(out)
    }

    /// Every entity of one contract file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Contracts, ContractError> {
        let mut out = Contracts::default();
        out.add_file(path.as_ref())?;
        Ok(out)
    }

    /// Every entity of every `*.toml` file in a directory (not recursive), in
    /// file-name order. An entity declared in two files is an error.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Contracts, ContractError> {
        let dir = dir.as_ref();
        let read_err = |source| ContractError::Read { path: dir.to_path_buf(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut out = Contracts::default();
        for f in files {
            out.add_file(&f)?;
        }
        Ok(out)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), ContractError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ContractError::Read { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        self.add(parse_entities(&text, &origin)?, &origin)
    }

    fn add(&mut self, contracts: Vec<Contract>, origin: &str) -> Result<(), ContractError> {
        for c in contracts {
            if let Some((_, other)) = self.entities.iter().find(|(e, _)| e.name() == c.name()) {
                return Err(ContractError::Entity {
                    origin: origin.into(),
                    entity: c.name().into(),
                    problem: format!("already declared in {other}"),
                });
            }
            self.entities.push((c, origin.to_string()));
        }
        Ok(())
    }

    pub fn get(&self, entity: &str) -> Option<&Contract> {
        self.entities.iter().map(|(c, _)| c).find(|c| c.name() == entity)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Contract> {
        self.entities.iter().map(|(c, _)| c)
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    pub fn into_vec(self) -> Vec<Contract> {
        self.entities.into_iter().map(|(c, _)| c).collect()
    }
}
