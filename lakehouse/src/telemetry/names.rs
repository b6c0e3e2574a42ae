//! Metric names. They are an interface: dashboards and alert rules in
//! `deploy/` and `docs/metrics.md` use them; never rename one casually.

/// Total bytes of live data files (`total-files-size`). Labels: layer, table.
pub const TABLE_SIZE_BYTES: &str = "storage_table_size_bytes";
/// Live rows (`total-records`). Labels: layer, table.
pub const TABLE_ROWS: &str = "storage_table_rows_count";
/// Histogram of write phases. Labels: layer, operation (`write_files`, `commit`).
pub const WRITE_DURATION: &str = "storage_write_duration_seconds";
/// Snapshots in table metadata. Labels: layer, table.
pub const SNAPSHOT_COUNT: &str = "storage_snapshot_count";
/// Messages between the committed position and the high watermark. Labels: topic, partition.
pub const CONSUMER_LAG: &str = "lakehouse_consumer_lag_messages";
/// Labels: topic.
pub const RECORDS_CONSUMED: &str = "lakehouse_records_consumed_total";
/// Key + value bytes. Labels: topic.
pub const BYTES_CONSUMED: &str = "lakehouse_bytes_consumed_total";
/// Histogram from flush start to published snapshot. Labels: layer, table.
pub const COMMIT_LATENCY: &str = "lakehouse_commit_latency_seconds";
/// Labels: layer, table.
pub const COMMITS: &str = "lakehouse_commits_total";
/// Rows made visible by commits. Labels: layer, table.
pub const ROWS_COMMITTED: &str = "lakehouse_rows_committed_total";
/// Lost compare-and-swaps (retried). Labels: table.
pub const COMMIT_CONFLICTS: &str = "lakehouse_commit_conflicts_total";
/// Commits refused because another writer is past our position. Labels: table.
pub const COMMITS_FENCED: &str = "lakehouse_commits_fenced_total";
/// Values kept raw because they could not be decoded. Labels: topic.
pub const DECODE_ERRORS: &str = "lakehouse_decode_errors_total";
/// Commit time minus the newest Kafka timestamp it made visible. Labels: layer, table.
pub const FRESHNESS: &str = "lakehouse_freshness_seconds";
/// Kafka consume errors. Labels: kind.
pub const CONSUME_ERRORS: &str = "lakehouse_consume_errors_total";
/// Positions moved to the log start because retention deleted unread data. Labels: topic.
pub const OFFSET_RESETS: &str = "lakehouse_offset_resets_total";
/// 1 while a table has snapshots but no committed position for this worker's
/// group, so its partitions are not consumed (see the log). Labels: table.
pub const POSITION_MISSING: &str = "lakehouse_position_missing";
/// 1 while a topic's current Kafka topic id differs from the one recorded with
/// the table's offsets (the topic was deleted and re-created), so its
/// partitions are not consumed (see the log). Labels: topic.
pub const TOPIC_ID_MISMATCH: &str = "lakehouse_topic_id_mismatch";
/// Records the refiner could not take (in `silver._rejects`). Labels: layer, entity, rule.
pub const REJECTED_RECORDS: &str = "lakehouse_rejected_records_total";
/// Silver rows by outcome (upserted, deleted). Labels: entity, outcome.
pub const SILVER_ROWS: &str = "lakehouse_silver_rows_total";
/// Gauge: Bronze snapshots committed that Silver has not consumed yet. Labels: entity.
pub const SILVER_LAG_SNAPSHOTS: &str = "lakehouse_silver_lag_snapshots";
/// Gauge: age (seconds) of the oldest Bronze snapshot Silver has not consumed
/// (0 when caught up). Labels: entity.
pub const SILVER_LAG_SECONDS: &str = "lakehouse_silver_lag_seconds";
/// Histogram: Bronze commit → visible in Silver (seconds), per Silver commit,
/// from the oldest Bronze snapshot of the batch. Labels: entity.
pub const BRONZE_TO_SILVER: &str = "lakehouse_bronze_to_silver_seconds";
/// Rows carrying a source column the contract does not know (kept in `_extra`).
/// Labels: entity, column.
pub const SILVER_UNKNOWN_FIELDS: &str = "lakehouse_silver_unknown_fields_total";
pub const SILVER_CONTROL_EVENTS: &str = "lakehouse_silver_control_events_total";
/// Columns added to Silver by schema evolution (`evolve = "add-columns"`). Labels: entity.
pub const SILVER_COLUMNS_ADDED: &str = "lakehouse_silver_columns_added_total";
/// Columns widened in Silver by schema evolution (`evolve = "widen-types"`). Labels: entity.
pub const SILVER_COLUMNS_WIDENED: &str = "lakehouse_silver_columns_widened_total";
/// Store writers reopened because another writer (a rejects replay, a sibling
/// shard) committed to the entity's store since the kept writer's last commit. Labels: entity.
pub const SILVER_STORE_WRITER_REOPENED: &str = "lakehouse_silver_store_writer_reopened_total";
/// Compaction runs that committed a rewrite. Labels: layer, table.
pub const COMPACTIONS: &str = "lakehouse_compactions_total";
/// Files a compaction removed. Labels: layer, table, content (data, deletes).
pub const COMPACTION_FILES: &str = "lakehouse_compaction_files_total";
/// Bytes of data files a compaction read and wrote. Labels: layer, table, direction (read, written).
pub const COMPACTION_BYTES: &str = "lakehouse_compaction_bytes_total";
/// Histogram: duration of a compaction run, plan to commit (seconds). Labels: layer, table.
pub const COMPACTION_DURATION: &str = "lakehouse_compaction_duration_seconds";
/// Compactions dropped because another writer committed first (retried later). Labels: layer, table.
pub const COMPACTION_CONFLICTS: &str = "lakehouse_compaction_conflicts_total";

/// Silver changes a Gold table consumed. Labels: table.
pub const GOLD_CHANGES: &str = "lakehouse_gold_changes_total";
/// Of those, retractions (`-U`, `-D`). Labels: table.
pub const GOLD_RETRACTIONS: &str = "lakehouse_gold_retractions_total";
/// Changes to a day older than the newest day the Gold table has seen. Labels: table.
pub const GOLD_LATE_EVENTS: &str = "lakehouse_gold_late_events_total";
/// Gold rows by outcome (written, deleted). Labels: table, outcome.
pub const GOLD_ROWS: &str = "lakehouse_gold_rows_total";
/// Histogram: Silver store commit → visible in Gold (seconds). Labels: table.
pub const GOLD_BEHIND_SILVER: &str = "lakehouse_gold_behind_silver_seconds";
/// Histogram: source event time → visible in Gold (seconds), one sample per
/// Silver snapshot consumed (its newest event). Labels: table.
pub const GOLD_FRESHNESS: &str = "lakehouse_gold_freshness_seconds";
/// Gauge: what a Gold table holds in memory, after each commit: groups
/// (rollups), facts (wide tables), events (feature tables). Labels: table.
pub const GOLD_WORKING_SET: &str = "lakehouse_gold_working_set_rows";

/// Counter: snapshots removed by expiry. Labels: table.
pub const SNAPSHOTS_EXPIRED: &str = "lakehouse_snapshots_expired_total";
/// Counter: carried manifests rewritten into merged ones. Labels: table.
pub const MANIFESTS_MERGED: &str = "lakehouse_manifests_merged_total";
/// Counter: files deleted by expiry cleanup. Labels: table, kind (manifest_list, manifest, content, metadata).
pub const FILES_DELETED: &str = "lakehouse_files_deleted_total";
/// Counter: table maintenance steps that failed or were skipped (bad property, unreadable file). Labels: table, step.
pub const MAINTENANCE_ERRORS: &str = "lakehouse_maintenance_errors_total";

/// Times a consumer left its group and joined again because it held no
/// partition past the session timeout while partitions were owned by nobody.
pub const KAFKA_REJOINS: &str = "lakehouse_kafka_rejoins_total";

/// Registers help texts with the recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(TABLE_SIZE_BYTES, Unit::Bytes, "Total size of live data files");
    describe_gauge!(TABLE_ROWS, Unit::Count, "Live rows in the table");
    describe_histogram!(WRITE_DURATION, Unit::Seconds, "Duration of write phases");
    describe_gauge!(SNAPSHOT_COUNT, Unit::Count, "Snapshots in the table metadata");
    describe_gauge!(CONSUMER_LAG, Unit::Count, "Messages not yet committed to the table");
    describe_counter!(RECORDS_CONSUMED, Unit::Count, "Kafka messages consumed");
    describe_counter!(BYTES_CONSUMED, Unit::Bytes, "Kafka key+value bytes consumed");
    describe_histogram!(COMMIT_LATENCY, Unit::Seconds, "Flush start to published snapshot");
    describe_counter!(COMMITS, Unit::Count, "Snapshots committed");
    describe_counter!(ROWS_COMMITTED, Unit::Count, "Rows committed");
    describe_counter!(COMMIT_CONFLICTS, Unit::Count, "Lost compare-and-swaps, retried");
    describe_counter!(COMMITS_FENCED, Unit::Count, "Commits refused: another writer is past our position");
    describe_counter!(DECODE_ERRORS, Unit::Count, "Values kept raw with a decode error");
    describe_gauge!(FRESHNESS, Unit::Seconds, "Commit time minus newest committed event time");
    describe_counter!(CONSUME_ERRORS, Unit::Count, "Kafka consume errors");
    describe_counter!(KAFKA_REJOINS, Unit::Count, "Group rejoins of a member left without partitions");
    describe_counter!(OFFSET_RESETS, Unit::Count, "Positions reset to the log start: unread data deleted by retention");
    describe_counter!(REJECTED_RECORDS, Unit::Count, "Records rejected with a rule and a reason");
    describe_counter!(SILVER_ROWS, Unit::Count, "Silver rows upserted or deleted");
    describe_gauge!(SILVER_LAG_SNAPSHOTS, Unit::Count, "Bronze snapshots not yet consumed by Silver");
    describe_gauge!(SILVER_LAG_SECONDS, Unit::Seconds, "Age of the oldest Bronze snapshot not yet in Silver");
    describe_histogram!(BRONZE_TO_SILVER, Unit::Seconds, "Bronze commit to visible in Silver");
    describe_counter!(SILVER_UNKNOWN_FIELDS, Unit::Count, "Rows with a source column the contract does not know");
    describe_counter!(
        SILVER_CONTROL_EVENTS,
        Unit::Count,
        "Debezium events that describe no row (schema changes, transaction boundaries), skipped"
    );
    describe_counter!(SILVER_COLUMNS_ADDED, Unit::Count, "Columns added to Silver by schema evolution");
    describe_counter!(SILVER_COLUMNS_WIDENED, Unit::Count, "Columns widened in Silver by schema evolution");
    describe_counter!(
        SILVER_STORE_WRITER_REOPENED,
        Unit::Count,
        "Store writers reopened after another writer committed"
    );
    describe_counter!(COMPACTIONS, Unit::Count, "Compactions committed");
    describe_counter!(COMPACTION_FILES, Unit::Count, "Data and delete files removed by compaction");
    describe_counter!(COMPACTION_BYTES, Unit::Bytes, "Bytes read and written by compaction");
    describe_histogram!(COMPACTION_DURATION, Unit::Seconds, "Compaction run, plan to commit");
    describe_counter!(COMPACTION_CONFLICTS, Unit::Count, "Compactions dropped after losing to another writer");
    describe_counter!(GOLD_CHANGES, Unit::Count, "Silver changes consumed by a Gold table");
    describe_counter!(GOLD_RETRACTIONS, Unit::Count, "Silver retractions (-U, -D) consumed by a Gold table");
    describe_counter!(GOLD_LATE_EVENTS, Unit::Count, "Changes to a day older than the newest seen");
    describe_counter!(GOLD_ROWS, Unit::Count, "Gold rows written or deleted");
    describe_histogram!(GOLD_BEHIND_SILVER, Unit::Seconds, "Silver store commit to visible in Gold");
    describe_histogram!(GOLD_FRESHNESS, Unit::Seconds, "Source event time to visible in Gold");
    describe_gauge!(GOLD_WORKING_SET, Unit::Count, "Groups, facts or events a Gold table holds in memory");
    describe_counter!(SNAPSHOTS_EXPIRED, Unit::Count, "Snapshots removed by expiry");
    describe_counter!(MANIFESTS_MERGED, Unit::Count, "Manifests rewritten into merged manifests");
    describe_counter!(FILES_DELETED, Unit::Count, "Files deleted after snapshot expiry");
    describe_counter!(MAINTENANCE_ERRORS, Unit::Count, "Table maintenance steps that failed or were skipped");
    describe_gauge!(POSITION_MISSING, Unit::Count, "1 while a table with snapshots has no committed position");
    describe_gauge!(
        TOPIC_ID_MISMATCH,
        Unit::Count,
        "1 while a topic's id differs from the one its offsets were recorded for"
    );
}

/// Every metric name defined here.
pub const ALL: &[&str] = &[
    TABLE_SIZE_BYTES,
    TABLE_ROWS,
    WRITE_DURATION,
    SNAPSHOT_COUNT,
    CONSUMER_LAG,
    RECORDS_CONSUMED,
    BYTES_CONSUMED,
    COMMIT_LATENCY,
    COMMITS,
    ROWS_COMMITTED,
    COMMIT_CONFLICTS,
    COMMITS_FENCED,
    DECODE_ERRORS,
    FRESHNESS,
    CONSUME_ERRORS,
    KAFKA_REJOINS,
    OFFSET_RESETS,
    POSITION_MISSING,
    TOPIC_ID_MISMATCH,
    REJECTED_RECORDS,
    SILVER_ROWS,
    SILVER_LAG_SNAPSHOTS,
    SILVER_LAG_SECONDS,
    BRONZE_TO_SILVER,
    SILVER_UNKNOWN_FIELDS,
    SILVER_CONTROL_EVENTS,
    SILVER_COLUMNS_ADDED,
    SILVER_COLUMNS_WIDENED,
    SILVER_STORE_WRITER_REOPENED,
    COMPACTIONS,
    COMPACTION_FILES,
    COMPACTION_BYTES,
    COMPACTION_DURATION,
    COMPACTION_CONFLICTS,
    GOLD_CHANGES,
    GOLD_RETRACTIONS,
    GOLD_LATE_EVENTS,
    GOLD_ROWS,
    GOLD_BEHIND_SILVER,
    GOLD_FRESHNESS,
    GOLD_WORKING_SET,
    SNAPSHOTS_EXPIRED,
    MANIFESTS_MERGED,
    FILES_DELETED,
    MAINTENANCE_ERRORS,
];

#[cfg(test)]
mod tests {
    use super::ALL;

    /// Dashboards, alert rules and docs may only use metric names that exist.
    #[test]
    fn dashboards_alerts_and_docs_use_defined_names() {
        let files = [
            ("deploy/grafana/bronze.json", include_str!("../../../deploy/grafana/bronze.json")),
            ("deploy/prometheus/alerts.yml", include_str!("../../../deploy/prometheus/alerts.yml")),
            ("docs/metrics.md", include_str!("../../../docs/metrics.md")),
        ];
        for (file, text) in files {
            let mut used = 0;
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !(word.starts_with("lakehouse_") || word.starts_with("storage_")) {
                    continue;
                }
                let base = word.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
                let known = ALL.contains(&word) || ALL.contains(&base);
                assert!(known, "{file} uses unknown metric {word}");
                used += 1;
            }
            assert!(used > 0, "{file} names no metric");
        }
    }
}
