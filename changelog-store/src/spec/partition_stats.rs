//! `_PARTITION_STATS` of a manifest list record: min, max and null count of each
//! partition field over the entries of the manifest, as Paimon's `ManifestFile` writer
//! collects them (`SimpleStatsCollector` over every entry's partition row). Readers
//! (Java's `ManifestsReader`) prune manifests on partition-filtered scans with them, so
//! they must be the real values: empty stats of a partitioned table would be read as
//! field 0 of an arity-0 row.

use crate::error::Result;
use crate::row::Datum;
use crate::spec::binary_row;
use crate::spec::manifest::{ManifestEntry, SimpleStats};
use crate::spec::types::DataType;
use std::collections::HashMap;

/// Partition stats of `entries`, whose partitions are rows of `types`. A field whose
/// values are all null has null min and max. Unpartitioned: arity-0 rows, no counts.
pub fn partition_stats(types: &[DataType], entries: &[ManifestEntry]) -> Result<SimpleStats> {
    let mut min: Vec<Option<Datum>> = vec![None; types.len()];
    let mut max: Vec<Option<Datum>> = vec![None; types.len()];
    let mut nulls = vec![0i64; types.len()];
    // Entries of a manifest share few partitions: decode each distinct one once.
    let mut decoded: HashMap<&[u8], Vec<Datum>> = HashMap::new();
    for e in entries {
        if !decoded.contains_key(e.partition.as_slice()) {
            decoded.insert(&e.partition, binary_row::deserialize(types, &e.partition)?);
        }
        let Some(values) = decoded.get(e.partition.as_slice()) else { continue };
        for (i, v) in values.iter().enumerate().take(types.len()) {
            if v.is_null() {
                nulls[i] += 1;
                continue;
            }
            if min[i].as_ref().is_none_or(|m| v < m) {
                min[i] = Some(v.clone());
            }
            if max[i].as_ref().is_none_or(|m| v > m) {
                max[i] = Some(v.clone());
            }
        }
    }
    let row = |vals: &[Option<Datum>]| {
        let vals: Vec<Datum> = vals.iter().map(|v| v.clone().unwrap_or(Datum::Null)).collect();
        binary_row::serialize(types, &vals.iter().collect::<Vec<_>>())
    };
    Ok(SimpleStats {
        min_values: row(&min),
        max_values: row(&max),
        null_counts: Some(nulls.into_iter().map(Some).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::manifest::{DataFileMeta, FileKind};

    fn entry(types: &[DataType], partition: &[Datum]) -> ManifestEntry {
        ManifestEntry {
            kind: FileKind::Add,
            partition: binary_row::serialize(types, &partition.iter().collect::<Vec<_>>()),
            bucket: 0,
            total_buckets: 1,
            file: DataFileMeta {
                file_name: "data-x-0.parquet".into(),
                file_size: 10,
                row_count: 1,
                min_key: Vec::new(),
                max_key: Vec::new(),
                key_stats: SimpleStats::empty(),
                value_stats: SimpleStats::empty(),
                min_sequence_number: 0,
                max_sequence_number: 0,
                schema_id: 0,
                level: 0,
                extra_files: vec![],
                creation_time_millis: None,
                delete_row_count: None,
                embedded_index: None,
                file_source: None,
                value_stats_cols: None,
                external_path: None,
                first_row_id: None,
                write_cols: None,
                write_cols_sequences: None,
            },
        }
    }

    #[test]
    fn min_max_and_null_counts_per_field() {
        let types = [DataType::parse("STRING").expect("type"), DataType::parse("INT").expect("type")];
        let s = |v: &str| Datum::String(v.into());
        let entries = [
            entry(&types, &[s("2026-11-03"), Datum::Null]),
            entry(&types, &[s("2026-11-01"), Datum::Null]),
            entry(&types, &[Datum::Null, Datum::Null]),
            entry(&types, &[s("2026-11-03"), Datum::Null]),
        ];
        let stats = partition_stats(&types, &entries).expect("stats");
        let min = binary_row::deserialize(&types, &stats.min_values).expect("min row");
        let max = binary_row::deserialize(&types, &stats.max_values).expect("max row");
        assert_eq!(min, vec![s("2026-11-01"), Datum::Null]);
        assert_eq!(max, vec![s("2026-11-03"), Datum::Null]);
        assert_eq!(stats.null_counts, Some(vec![Some(1), Some(4)]));
    }

    #[test]
    fn unpartitioned_stats_are_the_empty_stats() {
        let entries = [entry(&[], &[])];
        assert_eq!(partition_stats(&[], &entries).expect("stats"), SimpleStats::empty());
    }
}
