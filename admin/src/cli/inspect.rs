//! Read-only commands: tables, describe, snapshots, scan.

use futures::TryStreamExt;
use serde_json::json;

use super::render;
use lakehouse::catalog::{SqlCatalog, TableName};

pub async fn tables(catalog: &SqlCatalog, namespace: Option<&str>, as_json: bool) -> anyhow::Result<()> {
    let tables = catalog.list_tables(namespace).await?;
    if as_json {
        let v: Vec<_> = tables.iter().map(|t| json!({"namespace": t.namespace, "table": t.name})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for t in tables {
            println!("{t}");
        }
    }
    Ok(())
}

pub async fn describe(catalog: &SqlCatalog, name: &TableName, as_json: bool) -> anyhow::Result<()> {
    let t = catalog.require_table(name).await?;
    let m = &t.metadata;
    let current = m.current_snapshot();
    if as_json {
        let v = json!({
            "table": name.to_string(),
            "location": m.location(),
            "metadata_location": t.metadata_location,
            "format_version": format!("{:?}", m.format_version()),
            "schema": m.current_schema().as_ref(),
            "partition_spec": m.default_partition_spec().as_ref(),
            "properties": m.properties(),
            "current_snapshot_id": m.current_snapshot_id(),
            "snapshot_count": m.snapshots().len(),
            "summary": current.map(|s| &s.summary().additional_properties),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("table:             {name}");
    println!("location:          {}", m.location());
    println!("metadata:          {}", t.metadata_location);
    println!("format version:    {:?}", m.format_version());
    println!("current snapshot:  {}", m.current_snapshot_id().map_or("none".into(), |i| i.to_string()));
    println!("snapshots:         {}", m.snapshots().len());
    if let Some(s) = current {
        let p = &s.summary().additional_properties;
        let g = |k: &str| p.get(k).cloned().unwrap_or_else(|| "0".into());
        println!("rows:              {}", g("total-records"));
        println!("data files:        {} ({} bytes)", g("total-data-files"), g("total-files-size"));
    }
    println!("schema:");
    for f in m.current_schema().as_struct().fields() {
        println!(
            "  {:>3} {:<22} {:<14} {}{}",
            f.id,
            f.name,
            f.field_type.to_string(),
            if f.required { "required" } else { "optional" },
            f.doc.as_deref().map(|d| format!("  -- {d}")).unwrap_or_default()
        );
    }
    println!("partitioning:");
    for pf in m.default_partition_spec().fields() {
        let source = m.current_schema().field_by_id(pf.source_id).map_or("?".to_string(), |f| f.name.clone());
        println!("  {} = {}({})", pf.name, pf.transform, source);
    }
    println!("properties:");
    let mut props: Vec<_> = m.properties().iter().collect();
    props.sort();
    for (k, v) in props {
        println!("  {k} = {v}");
    }
    Ok(())
}

pub async fn snapshots(catalog: &SqlCatalog, name: &TableName, as_json: bool) -> anyhow::Result<()> {
    let t = catalog.require_table(name).await?;
    let mut snaps: Vec<_> = t.metadata.snapshots().cloned().collect();
    snaps.sort_by_key(|s| (s.sequence_number(), s.timestamp_ms()));
    let current = t.metadata.current_snapshot_id();
    if as_json {
        let v: Vec<_> = snaps
            .iter()
            .map(|s| {
                json!({
                    "snapshot_id": s.snapshot_id(),
                    "parent_snapshot_id": s.parent_snapshot_id(),
                    "sequence_number": s.sequence_number(),
                    "timestamp_ms": s.timestamp_ms(),
                    "operation": s.summary().operation.as_str(),
                    "current": Some(s.snapshot_id()) == current,
                    "summary": s.summary().additional_properties,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for s in snaps {
        let ts = chrono::DateTime::from_timestamp_millis(s.timestamp_ms()).map_or("?".into(), |d| d.to_rfc3339());
        let mark = if Some(s.snapshot_id()) == current { " (current)" } else { "" };
        println!(
            "snapshot {} seq {} {} {}{}",
            s.snapshot_id(),
            s.sequence_number(),
            ts,
            s.summary().operation.as_str(),
            mark
        );
        let mut props: Vec<_> = s.summary().additional_properties.iter().collect();
        props.sort();
        for (k, v) in props {
            println!("    {k} = {v}");
        }
    }
    Ok(())
}

/// The snapshot that was current at `as_of` (RFC 3339 or epoch millis).
fn snapshot_as_of(m: &iceberg::spec::TableMetadata, as_of: &str) -> anyhow::Result<i64> {
    let ms = match as_of.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => chrono::DateTime::parse_from_rfc3339(as_of)
            .map_err(|e| anyhow::anyhow!("--as-of {as_of:?}: not RFC 3339 or epoch millis: {e}"))?
            .timestamp_millis(),
    };
    m.history()
        .iter()
        .filter(|l| l.timestamp_ms <= ms)
        .max_by_key(|l| l.timestamp_ms)
        .map(|l| l.snapshot_id)
        .ok_or_else(|| anyhow::anyhow!("no snapshot was current at {as_of}"))
}

pub async fn scan(
    catalog: &SqlCatalog,
    name: &TableName,
    snapshot_id: Option<i64>,
    as_of: Option<&str>,
    limit: usize,
    columns: &[String],
    as_json: bool,
) -> anyhow::Result<()> {
    let t = catalog.require_table(name).await?;
    let snapshot_id = match (snapshot_id, as_of) {
        (Some(id), _) => Some(id),
        (None, Some(ts)) => Some(snapshot_as_of(&t.metadata, ts)?),
        (None, None) => t.metadata.current_snapshot_id(),
    };
    let Some(snapshot_id) = snapshot_id else {
        if as_json {
            println!("[]");
        } else {
            println!("(table has no snapshot yet)");
        }
        return Ok(());
    };
    if t.metadata.snapshot_by_id(snapshot_id).is_none() {
        anyhow::bail!("table {name} has no snapshot {snapshot_id}");
    }
    let table = t.to_table(catalog.file_io())?;
    let mut builder = table.scan().snapshot_id(snapshot_id);
    if !columns.is_empty() {
        builder = builder.select(columns.iter().cloned());
    }
    let mut stream = builder.build()?.to_arrow().await?;
    let mut batches = Vec::new();
    let mut rows = 0;
    while rows < limit {
        let Some(batch) = stream.try_next().await? else { break };
        let take = (limit - rows).min(batch.num_rows());
        rows += take;
        batches.push(batch.slice(0, take));
    }
    if as_json {
        let mut all = Vec::new();
        for b in &batches {
            all.extend(render::to_json_rows(b)?);
        }
        println!("{}", serde_json::to_string(&all)?);
    } else {
        print!("{}", render::to_text(&batches, 60)?);
        println!("({rows} rows, snapshot {snapshot_id})");
    }
    Ok(())
}
