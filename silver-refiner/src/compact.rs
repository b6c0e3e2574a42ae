//! `lakehouse compact silver.<entity>`: one compaction of an entity's Silver
//! table by hand ([`crate::materialize::Materializer::compact`]), under its
//! own store commit user. Safe while the refiner runs: the relocation's store
//! commit conflicts with any commit of the refiner to the same buckets since
//! the compaction read the store (and is then dropped), and the refiner
//! reopens its store writer after seeing this one's commit.

use lakehouse::catalog::SqlCatalog;

use crate::config::Config;
use crate::contract::Contracts;
use crate::materialize::Compacted;
use crate::stage::{RefineError, Refinery};

/// Compacts `entity`'s Silver table once; `None` when nothing passes the
/// thresholds or another writer got in first.
pub async fn compact(config: &Config, entity: &str) -> Result<Option<Compacted>, RefineError> {
    let fail = |message: String| RefineError::Entity { entity: entity.to_string(), message };
    let contracts = if config.silver.contracts.is_dir() {
        Contracts::from_dir(&config.silver.contracts)?
    } else {
        Contracts::from_file(&config.silver.contracts)?
    };
    let contract = contracts
        .get(entity)
        .cloned()
        .ok_or_else(|| fail(format!("no contract for this entity in {}", config.silver.contracts.display())))?;
    let catalog = SqlCatalog::connect(&config.catalog).await?;
    let mut e =
        Refinery::open_entity(config, &catalog, contract, Some(format!("lakehouse-compact-{entity}")), None).await?;
    Ok(e.materializer.compact().await?)
}
