//! Several refiners on one entity: `shard = "2 of 4"` in `[silver]`.
//!
//! Shard `i of n` owns the entity's store buckets `b` with `b % n == i - 1`
//! (the store table needs at least `n` buckets: `silver.buckets`). Every shard
//! reads all new Bronze snapshots of the entity and keeps only the changes whose
//! key falls into its buckets (Paimon's bucket hash of the key, the store's own);
//! a truncate deletes the keys of its own buckets. Shard 1 also records the
//! entity's rejects (a rejected row may have no readable key).
//!
//! Each shard commits to the store under its own commit user
//! (`silver-refiner-<entity>-shard-2-of-4`) with its own Bronze position
//! (`lakehouse.silver.bronze-snapshot.shard-2-of-4`, found by walking the store's
//! snapshots back); buckets are disjoint, so the store's single-writer-per-bucket
//! check never trips between shards. All shards commit to the same Silver table:
//! the catalog's compare-and-swap with the store-order check makes a shard that
//! lost a race reload the head and materialise the store snapshots it lacks —
//! its own or another shard's — in order (see [`crate::materialize`]).

use std::fmt;
use std::str::FromStr;

use changelog_store::Datum;

use crate::value::Value;

/// `i of n`: this refiner is shard `i` (1-based) of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard {s:?} is not `<i> of <n>` with 1 <= i <= n");
        let (i, n) = s.split_once(" of ").ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.count)
    }
}

impl Shard {
    /// The suffix of this shard's position key and commit user: `shard-2-of-4`.
    pub fn suffix(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    pub fn owns_bucket(&self, bucket: i32) -> bool {
        bucket.rem_euclid(self.count as i32) as u32 == self.index - 1
    }

    /// Whether this shard records the entity's rejects.
    pub fn records_rejects(&self) -> bool {
        self.index == 1
    }
}

/// A key value as the store holds it (for its bucket hash).
pub fn datum(v: &Value) -> Result<Datum, String> {
    Ok(match v {
        Value::Bool(b) => Datum::Bool(*b),
        Value::Int(i) | Value::Date(i) => Datum::Int(*i),
        Value::Long(l) | Value::Time(l) => Datum::Long(*l),
        Value::String(s) => Datum::String(s.clone()),
        Value::Uuid(u) => Datum::Bytes(u.to_vec()),
        Value::Binary(b) => Datum::Bytes(b.clone()),
        other => return Err(format!("sharding by a {} key column is not supported", other.kind())),
    })
}

/// The key values of row `i` of a key batch (the contract's key columns in
/// Arrow form), as the store holds them.
pub fn datums_at(batch: &arrow_array::RecordBatch, i: usize) -> Result<Vec<Datum>, String> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Int32Type, Int64Type, Time64MicrosecondType};
    use arrow_schema::DataType;
    batch
        .columns()
        .iter()
        .map(|c| {
            if c.is_null(i) {
                return Ok(Datum::Null);
            }
            Ok(match c.data_type() {
                DataType::Boolean => Datum::Bool(c.as_boolean().value(i)),
                DataType::Int32 => Datum::Int(c.as_primitive::<Int32Type>().value(i)),
                DataType::Date32 => Datum::Int(c.as_primitive::<Date32Type>().value(i)),
                DataType::Int64 => Datum::Long(c.as_primitive::<Int64Type>().value(i)),
                DataType::Time64(_) => Datum::Long(c.as_primitive::<Time64MicrosecondType>().value(i)),
                DataType::Utf8 => Datum::String(c.as_string::<i32>().value(i).to_string()),
                DataType::Binary => Datum::Bytes(c.as_binary::<i32>().value(i).to_vec()),
                DataType::FixedSizeBinary(_) => Datum::Bytes(c.as_fixed_size_binary().value(i).to_vec()),
                other => return Err(format!("sharding by a {other} key column is not supported")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits_buckets() {
        let s: Shard = "2 of 4".parse().expect("valid");
        assert_eq!(s, Shard { index: 2, count: 4 });
        assert_eq!(s.suffix(), "shard-2-of-4");
        assert_eq!((0..8).filter(|b| s.owns_bucket(*b)).collect::<Vec<_>>(), [1, 5]);
        assert!(
            "0 of 2".parse::<Shard>().is_err() && "3 of 2".parse::<Shard>().is_err() && "2/4".parse::<Shard>().is_err()
        );
        assert!(!s.records_rejects() && "1 of 4".parse::<Shard>().is_ok_and(|s| s.records_rejects()));
    }
}
