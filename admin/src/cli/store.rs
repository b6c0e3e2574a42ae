//! `lakehouse store …`: admin commands for changelog-store tables (Paimon layout,
//! `<warehouse>/<db>.db/<table>`). They work on the files directly; no Iceberg catalog.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use changelog_store::{ReadAt, RowKind, Table, TableSpec};
use clap::{Args, Subcommand};

#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Warehouse directory holding `<db>.db/<table>`.
    #[arg(long = "store-warehouse", short = 'w', env = "LAKEHOUSE_STORE_WAREHOUSE", global = true)]
    pub store_warehouse: Option<PathBuf>,
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Subcommand, Clone, Debug)]
pub enum StoreCommand {
    /// Create a primary-key table.
    Create {
        /// <db>.<table>
        table: String,
        /// Column as `name:TYPE` (Paimon type, e.g. `id:BIGINT NOT NULL`); repeatable.
        #[arg(long = "column", env = "LAKEHOUSE_STORE_COLUMNS", value_delimiter = ';')]
        columns: Vec<String>,
        /// Primary key columns (comma separated).
        #[arg(long, env = "LAKEHOUSE_STORE_PRIMARY_KEY", value_delimiter = ',')]
        primary_key: Vec<String>,
        /// Partition columns (comma separated).
        #[arg(long, env = "LAKEHOUSE_STORE_PARTITION_KEY", value_delimiter = ',')]
        partition_key: Vec<String>,
        /// Table option `key=value` (Paimon names, e.g. `bucket=4`); repeatable.
        #[arg(long = "option", short = 'o')]
        options: Vec<String>,
        /// JSON file: {"columns": [["id","BIGINT"], ...], "primary_keys": [...],
        /// "partition_keys": [...], "options": {...}}; flags add to it.
        #[arg(long, env = "LAKEHOUSE_STORE_SPEC_FILE")]
        spec_file: Option<PathBuf>,
    },
    /// Write JSON Lines rows from stdin and commit them as one snapshot.
    Write {
        table: String,
        /// Field holding the row kind (`+I`, `-U`, `+U`, `-D`; default `+I`). Removed from the row.
        #[arg(long, env = "LAKEHOUSE_STORE_KIND_FIELD", default_value = "_row_kind")]
        kind_field: String,
        /// Commit user (with the identifier, makes a retried commit idempotent).
        #[arg(long, env = "LAKEHOUSE_STORE_COMMIT_USER", default_value = "lakehouse-cli")]
        commit_user: String,
        /// Commit identifier (default: the commit user's last one + 1).
        #[arg(long, env = "LAKEHOUSE_STORE_COMMIT_IDENTIFIER")]
        identifier: Option<i64>,
    },
    /// Print the rows of the latest (or a given) snapshot.
    Scan {
        table: String,
        #[arg(long)]
        snapshot_id: Option<i64>,
        /// JSON Lines instead of tab-separated text.
        #[arg(long)]
        json: bool,
    },
    /// Print the changes (+I/-U/+U/-D) of snapshots from N on, as JSON Lines.
    Changelog {
        table: String,
        #[arg(long)]
        from_snapshot: i64,
    },
    /// List retained snapshots.
    Snapshots {
        table: String,
        #[arg(long)]
        json: bool,
    },
    /// Compact the table (universal compaction per bucket, or everything with --full).
    Compact {
        table: String,
        #[arg(long)]
        full: bool,
        #[arg(long, env = "LAKEHOUSE_STORE_COMMIT_USER", default_value = "lakehouse-cli-compact")]
        commit_user: String,
    },
    /// Expire snapshots per the table's retention options and delete unreferenced files.
    Expire { table: String },
    /// Delete data, changelog and manifest files no snapshot references (left by a
    /// writer that died before committing), if older than `--older-than`.
    RemoveOrphanFiles {
        table: String,
        /// Safety margin: files newer than this may belong to a commit in flight.
        #[arg(long, default_value = "1 d")]
        older_than: String,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

fn table_path(warehouse: Option<&Path>, table: &str) -> anyhow::Result<PathBuf> {
    let warehouse = warehouse.context("no warehouse: pass --store-warehouse or set LAKEHOUSE_STORE_WAREHOUSE")?;
    let (db, name) = table
        .split_once('.')
        .filter(|(d, t)| !d.is_empty() && !t.is_empty() && !t.contains('.'))
        .with_context(|| format!("table `{table}` is not `<db>.<table>`"))?;
    Ok(warehouse.join(format!("{db}.db")).join(name))
}

/// Parses a row kind as Paimon prints it.
pub fn parse_kind(s: &str) -> anyhow::Result<RowKind> {
    Ok(match s {
        "+I" => RowKind::Insert,
        "-U" => RowKind::UpdateBefore,
        "+U" => RowKind::UpdateAfter,
        "-D" => RowKind::Delete,
        other => bail!("unknown row kind `{other}` (expected +I, -U, +U or -D)"),
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default)]
    columns: Vec<(String, String)>,
    #[serde(default)]
    primary_keys: Vec<String>,
    #[serde(default)]
    partition_keys: Vec<String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

fn build_spec(
    columns: &[String],
    primary_key: &[String],
    partition_key: &[String],
    options: &[String],
    spec_file: Option<&Path>,
) -> anyhow::Result<TableSpec> {
    let mut spec = match spec_file {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str::<SpecFile>(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => SpecFile::default(),
    };
    for c in columns {
        let (name, ty) = c.split_once(':').with_context(|| format!("column `{c}` is not `name:TYPE`"))?;
        spec.columns.push((name.trim().to_string(), ty.trim().to_string()));
    }
    spec.primary_keys.extend(primary_key.iter().map(|s| s.trim().to_string()));
    spec.partition_keys.extend(partition_key.iter().map(|s| s.trim().to_string()));
    for o in options {
        let (k, v) = o.split_once('=').with_context(|| format!("option `{o}` is not `key=value`"))?;
        spec.options.insert(k.trim().to_string(), v.trim().to_string());
    }
    if spec.columns.is_empty() {
        bail!("no columns: pass --column name:TYPE or --spec-file");
    }
    if spec.primary_keys.is_empty() {
        bail!("no primary key: pass --primary-key or set primary_keys in the spec file");
    }
    Ok(TableSpec {
        columns: spec.columns,
        primary_keys: spec.primary_keys,
        partition_keys: spec.partition_keys,
        options: spec.options,
    })
}

/// Writes JSON Lines from `input` into `table` and commits; returns the rows written.
pub fn write_lines(
    table: &Table,
    input: impl BufRead,
    kind_field: &str,
    commit_user: &str,
    identifier: Option<i64>,
) -> anyhow::Result<(usize, changelog_store::CommitOutcome)> {
    let mut write = table.new_write()?;
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let mut value: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("line {}: not JSON", i + 1))?;
        let kind = match value.as_object_mut().and_then(|o| o.remove(kind_field)) {
            None => RowKind::Insert,
            Some(serde_json::Value::String(k)) => parse_kind(&k).with_context(|| format!("line {}", i + 1))?,
            Some(other) => bail!("line {}: `{kind_field}` must be a string, got {other}", i + 1),
        };
        write.write_json(&value, kind).with_context(|| format!("line {}", i + 1))?;
        n += 1;
    }
    let committer = table.new_committer(commit_user);
    let identifier = match identifier {
        Some(id) => id,
        None => committer.latest_identifier_of_user()?.map_or(1, |id| id + 1),
    };
    let outcome = committer.commit(identifier, write.prepare_commit()?, None)?;
    Ok((n, outcome))
}

fn text_row(row: &serde_json::Value) -> String {
    match row.as_object() {
        Some(map) => map
            .values()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\t"),
        None => row.to_string(),
    }
}

/// Runs a `lakehouse store` command.
pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    let wh = args.store_warehouse.as_deref();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.command {
        StoreCommand::Create { table, columns, primary_key, partition_key, options, spec_file } => {
            let path = table_path(wh, &table)?;
            let spec = build_spec(&columns, &primary_key, &partition_key, &options, spec_file.as_deref())?;
            let t = Table::create(&path, spec)?;
            writeln!(out, "created {}", t.path().display())?;
        }
        StoreCommand::Write { table, kind_field, commit_user, identifier } => {
            let t = Table::open(table_path(wh, &table)?)?;
            let (n, outcome) = write_lines(&t, std::io::stdin().lock(), &kind_field, &commit_user, identifier)?;
            writeln!(out, "wrote {n} rows: {outcome:?}")?;
        }
        StoreCommand::Scan { table, snapshot_id, json } => {
            let t = Table::open(table_path(wh, &table)?)?;
            let at = snapshot_id.map_or(ReadAt::Latest, ReadAt::Snapshot);
            if !json {
                let names: Vec<&str> = t.schema().fields.iter().map(|f| f.name.as_str()).collect();
                writeln!(out, "{}", names.join("\t"))?;
            }
            for row in t.scan(at)? {
                let v = t.row_to_json(&row);
                if json {
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{}", text_row(&v))?;
                }
            }
        }
        StoreCommand::Changelog { table, from_snapshot } => {
            let t = Table::open(table_path(wh, &table)?)?;
            // One snapshot in memory at a time, however long the changelog.
            for id in t.snapshot_ids_since(from_snapshot)? {
                let s = t.changes_of(id)?;
                for c in &s.changes {
                    let line = serde_json::json!({
                        "snapshot_id": s.snapshot_id,
                        "kind": c.kind.short_string(),
                        "row": t.row_to_json(&c.row),
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        StoreCommand::Snapshots { table, json } => {
            let t = Table::open(table_path(wh, &table)?)?;
            for s in t.snapshots()? {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&s)?)?;
                } else {
                    writeln!(
                        out,
                        "{}\t{:?}\t{}\t{}#{}\ttotal={}\tdelta={}",
                        s.id,
                        s.commit_kind,
                        s.time_millis,
                        s.commit_user,
                        s.commit_identifier,
                        s.total_record_count,
                        s.delta_record_count
                    )?;
                }
            }
        }
        StoreCommand::Compact { table, full, commit_user } => {
            let t = Table::open(table_path(wh, &table)?)?;
            let committer = t.new_committer(commit_user.as_str());
            let id = committer.latest_identifier_of_user()?.map_or(1, |id| id + 1);
            let outcome = t.compact(&commit_user, id, full)?;
            writeln!(out, "compact: {outcome:?}")?;
        }
        StoreCommand::RemoveOrphanFiles { table, older_than, dry_run } => {
            let margin = changelog_store::options::parse_duration(&older_than).with_context(|| {
                format!("--older-than `{older_than}` is not a duration like `1 d`, `12 h`, `30 min`")
            })?;
            let t = Table::open(table_path(wh, &table)?)?;
            let r = t.remove_orphan_files(margin, dry_run)?;
            for p in &r.orphans {
                writeln!(out, "{} {}", if dry_run { "would delete" } else { "deleted" }, p.display())?;
            }
            writeln!(
                out,
                "orphan files: {} {}, {} newer than {older_than} kept, {} referenced",
                r.orphans.len(),
                if dry_run { "to delete" } else { "deleted" },
                r.recent_unreferenced,
                r.referenced
            )?;
        }
        StoreCommand::Expire { table } => {
            let t = Table::open(table_path(wh, &table)?)?;
            let r = t.expire()?;
            writeln!(
                out,
                "expired snapshots {:?}; deleted {} data files, {} manifest files",
                r.expired_snapshots, r.deleted_data_files, r.deleted_manifest_files
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_need_db_and_table() {
        let wh = Path::new("/wh");
        assert_eq!(table_path(Some(wh), "db.t").expect("ok"), PathBuf::from("/wh/db.db/t"));
        assert!(table_path(Some(wh), "t").is_err());
        assert!(table_path(Some(wh), "a.b.c").is_err());
        assert!(table_path(None, "db.t").is_err());
    }

    #[test]
    fn spec_from_flags() {
        let s = build_spec(
            &["id:BIGINT NOT NULL".into(), "name:STRING".into()],
            &["id".into()],
            &[],
            &["bucket=2".into()],
            None,
        )
        .expect("spec");
        assert_eq!(s.columns[0], ("id".to_string(), "BIGINT NOT NULL".to_string()));
        assert_eq!(s.options.get("bucket").map(String::as_str), Some("2"));
        assert!(build_spec(&["id".into()], &["id".into()], &[], &[], None).is_err());
    }

    #[test]
    fn write_then_scan_with_row_kinds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = build_spec(
            &["id:BIGINT NOT NULL".into(), "v:STRING".into()],
            &["id".into()],
            &[],
            &["bucket=2".into()],
            None,
        )
        .expect("spec");
        let t = Table::create(dir.path().join("db.db/t"), spec).expect("creates");
        let input = "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n\n{\"id\":1,\"v\":\"c\",\"_row_kind\":\"+U\"}\n{\"id\":2,\"_row_kind\":\"-D\"}\n";
        let (n, _) = write_lines(&t, input.as_bytes(), "_row_kind", "test", None).expect("writes");
        assert_eq!(n, 4);
        let rows: Vec<_> = t.scan(ReadAt::Latest).expect("scans").iter().map(|r| t.row_to_json(r)).collect();
        assert_eq!(rows, vec![serde_json::json!({"id": 1, "v": "c"})]);
        let bad = write_lines(&t, "{\"id\":3,\"_row_kind\":\"??\"}\n".as_bytes(), "_row_kind", "test", None);
        assert!(bad.is_err());
        // The second commit of the same user gets the next identifier.
        let (_, outcome) =
            write_lines(&t, "{\"id\":3,\"v\":\"x\"}\n".as_bytes(), "_row_kind", "test", None).expect("writes");
        assert!(matches!(outcome, changelog_store::CommitOutcome::Committed(_)));
    }
}
