//! Where a refiner is in an entity's Bronze table.
//!
//! A batch is bounded by `silver.max_batch_records`, not by the size of
//! Bronze's snapshots: a snapshot Bronze committed after a long stop, or the
//! first snapshot of a table read from its start, can hold millions of rows.
//! So a position is a Bronze snapshot plus, while it is only partly consumed,
//! how many rows of its increment are: its data files in the fixed order
//! [`lakehouse::table::incremental::increment_of`] gives, counted by their
//! manifests' record counts.
//!
//! Encoded in the store's snapshot properties, the Silver commit summary and
//! the rejects table as `<snapshot>` (all of it consumed), `<snapshot>:<rows>`,
//! or `<snapshot>:<rows>:all` when the increment is every live file of the
//! snapshot (the oldest one left of a table read from its start); the flag is
//! kept so that resuming reads the same files, whatever expiry did since.

use iceberg::spec::TableMetadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BronzePosition {
    pub snapshot: i64,
    /// `None`: every row of the snapshot consumed; `Some(n)`: its increment's
    /// first `n` rows.
    pub rows: Option<u64>,
    /// The increment is every live file of the snapshot, not the ones it added.
    pub whole: bool,
}

impl BronzePosition {
    /// All of `snapshot` consumed.
    pub fn after(snapshot: i64) -> Self {
        Self { snapshot, rows: None, whole: false }
    }

    /// The first `rows` rows of `snapshot`'s increment consumed.
    pub fn within(snapshot: i64, rows: u64, whole: bool) -> Self {
        Self { snapshot, rows: Some(rows), whole }
    }

    /// The snapshot consumed entirely, if it is.
    pub fn complete(&self) -> Option<i64> {
        self.rows.is_none().then_some(self.snapshot)
    }

    pub fn encode(&self) -> String {
        match (self.rows, self.whole) {
            (None, _) => self.snapshot.to_string(),
            (Some(n), false) => format!("{}:{n}", self.snapshot),
            (Some(n), true) => format!("{}:{n}:all", self.snapshot),
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split(':');
        let snapshot = parts.next()?.parse().ok()?;
        let Some(rows) = parts.next() else { return Some(Self::after(snapshot)) };
        let rows = rows.parse().ok()?;
        let whole = match parts.next() {
            None => false,
            Some("all") => true,
            Some(_) => return None,
        };
        parts.next().is_none().then_some(Self::within(snapshot, rows, whole))
    }

    /// Whether everything up to `other` is consumed at `self`: the same
    /// snapshot with at least as many rows, or a descendant of `other`'s
    /// snapshot in `bronze`'s history (snapshot ids are random, not ordered;
    /// without `bronze` only the same snapshot is recognised).
    pub fn covers(&self, other: &Self, bronze: Option<&TableMetadata>) -> bool {
        if self.snapshot == other.snapshot {
            return match (self.rows, other.rows) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a >= b,
            };
        }
        let parent = |id: i64| bronze.and_then(|m| m.snapshot_by_id(id)).and_then(|s| s.parent_snapshot_id());
        let mut id = parent(self.snapshot);
        while let Some(i) = id {
            if i == other.snapshot {
                return true;
            }
            id = parent(i);
        }
        false
    }
}

impl std::fmt::Display for BronzePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        for p in [BronzePosition::after(-7), BronzePosition::within(42, 0, false), BronzePosition::within(42, 9, true)]
        {
            assert_eq!(BronzePosition::parse(&p.encode()), Some(p), "{p}");
        }
        // What refiners wrote before positions within a snapshot existed.
        assert_eq!(BronzePosition::parse("123"), Some(BronzePosition::after(123)));
        for bad in ["", "x", "1:", "1:x", "1:2:some", "1:2:all:3", "1:-2"] {
            assert_eq!(BronzePosition::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_position_covers_fewer_rows_of_its_snapshot_never_more() {
        let (all, half, less) =
            (BronzePosition::after(5), BronzePosition::within(5, 100, false), BronzePosition::within(5, 40, false));
        assert!(all.covers(&half, None) && all.covers(&all, None));
        assert!(half.covers(&less, None) && half.covers(&half, None));
        assert!(!half.covers(&all, None), "part of a snapshot does not cover all of it");
        assert!(!less.covers(&half, None));
        assert!(!all.covers(&BronzePosition::after(6), None), "another snapshot, no history to say");
    }
}
