//! The commit side of a rewrite ([`Operation::Rewrite`](crate::table::commit::Operation::Rewrite)):
//! on the head a commit attempt builds on, the manifests holding removed files
//! are rewritten with those entries `DELETED` (the others carried as
//! `EXISTING` with their snapshot ids and sequence numbers), after validating
//! that the rewrite still fits that head.

use std::collections::{HashMap, HashSet};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use iceberg::io::FileIO;
use iceberg::spec::{
    DataContentType, DataFile, Datum, ManifestContentType, ManifestFile, ManifestWriterBuilder, PrimitiveLiteral,
    Summary, TableMetadata,
};

use crate::table::position_delete::FILE_PATH_FIELD_ID;
use crate::table::rewrite::RewriteFiles;

pub(crate) enum RemoveError {
    Iceberg(iceberg::Error),
    /// The rewrite no longer fits the head: fence it.
    Conflict(String),
}

impl From<iceberg::Error> for RemoveError {
    fn from(e: iceberg::Error) -> Self {
        RemoveError::Iceberg(e)
    }
}

/// What a rewrite removes.
pub(crate) struct RemovedFiles {
    data: HashSet<String>,
    deletes: HashSet<String>,
    base_sequence_number: i64,
}

/// The carried manifests after the removal, and what it removed.
pub(crate) struct Removal {
    pub(crate) manifests: Vec<ManifestFile>,
    /// Manifests written by this attempt (garbage if it loses the swap).
    pub(crate) written: Vec<ManifestFile>,
    data: Vec<DataFile>,
    deletes: Vec<DataFile>,
}

impl RemovedFiles {
    pub(crate) fn of(r: &RewriteFiles) -> Self {
        Self {
            data: r.removed_data.iter().cloned().collect(),
            deletes: r.removed_deletes.iter().cloned().collect(),
            base_sequence_number: r.base_sequence_number,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty() && self.deletes.is_empty()
    }

    /// Validates the rewrite against the head whose manifests are `carried`
    /// and rewrites the manifests holding removed files.
    pub(crate) async fn apply(
        &self,
        file_io: &FileIO,
        metadata: &TableMetadata,
        carried: Vec<ManifestFile>,
        snapshot_id: i64,
        path: impl Fn(usize) -> String,
    ) -> Result<Removal, RemoveError> {
        let mut out = Removal { manifests: Vec::new(), written: Vec::new(), data: Vec::new(), deletes: Vec::new() };
        let mut newer_deletes = Vec::new();
        for m in carried {
            let manifest = m.load_manifest(file_io).await?;
            let hit = manifest.entries().iter().any(|e| {
                e.is_alive() && {
                    let p = e.data_file().file_path();
                    self.data.contains(p) || self.deletes.contains(p)
                }
            });
            for e in manifest.entries() {
                let f = e.data_file();
                if e.is_alive()
                    && f.content_type() == DataContentType::PositionDeletes
                    && !self.deletes.contains(f.file_path())
                    && e.sequence_number().unwrap_or(i64::MAX) > self.base_sequence_number
                {
                    newer_deletes.push(f.clone());
                }
            }
            if !hit {
                out.manifests.push(m);
                continue;
            }
            let spec = metadata.partition_spec_by_id(m.partition_spec_id).ok_or_else(|| {
                RemoveError::Conflict(format!(
                    "manifest {} has unknown partition spec {}",
                    m.manifest_path, m.partition_spec_id
                ))
            })?;
            let builder = ManifestWriterBuilder::new(
                file_io.new_output(path(out.written.len()))?,
                Some(snapshot_id),
                metadata.current_schema().clone(),
                spec.as_ref().clone(),
            );
            let mut writer = match m.content {
                ManifestContentType::Data => builder.build_v2_data(),
                ManifestContentType::Deletes => builder.build_v2_deletes(),
            };
            for e in manifest.entries() {
                if !e.is_alive() {
                    continue;
                }
                let f = e.data_file().clone();
                let missing = |what: &str| {
                    RemoveError::Iceberg(iceberg::Error::new(
                        iceberg::ErrorKind::DataInvalid,
                        format!("entry {} of manifest {} has no {what}", f.file_path(), m.manifest_path),
                    ))
                };
                let seq = e.sequence_number().ok_or_else(|| missing("sequence number"))?;
                let file_seq = e.file_sequence_number;
                let removed = self.data.contains(f.file_path()) || self.deletes.contains(f.file_path());
                if removed {
                    match f.content_type() {
                        DataContentType::Data => out.data.push(f.clone()),
                        _ => out.deletes.push(f.clone()),
                    }
                    writer.add_delete_file(f, seq, file_seq)?;
                } else {
                    let sid = e.snapshot_id().ok_or_else(|| missing("snapshot id"))?;
                    writer.add_existing_file(f, sid, seq, file_seq)?;
                }
            }
            let written = writer.write_manifest_file().await?;
            out.written.push(written.clone());
            out.manifests.push(written);
        }
        let found: HashSet<&str> = out.data.iter().chain(&out.deletes).map(|f| f.file_path()).collect();
        if let Some(p) = self.data.iter().chain(&self.deletes).find(|p| !found.contains(p.as_str())) {
            return Err(RemoveError::Conflict(format!(
                "{p}, which the rewrite replaces, is no longer live (another commit removed it)"
            )));
        }
        for d in newer_deletes {
            if let Some(hit) = self.points_into_removed(file_io, &d).await? {
                return Err(RemoveError::Conflict(format!(
                    "delete file {}, committed after the rewrite's base, deletes rows of {hit}, which the rewrite \
                     replaces: those deletes would be lost",
                    d.file_path()
                )));
            }
        }
        Ok(out)
    }

    /// A removed data file `delete` has rows for, if any: by its exact
    /// `file_path` bounds when they exclude every removed file, else by its rows.
    async fn points_into_removed(&self, file_io: &FileIO, delete: &DataFile) -> Result<Option<String>, RemoveError> {
        let bound = |m: &HashMap<i32, Datum>| match m.get(&FILE_PATH_FIELD_ID).map(Datum::literal) {
            Some(PrimitiveLiteral::String(s)) => Some(s.clone()),
            _ => None,
        };
        if let (Some(lo), Some(hi)) = (bound(delete.lower_bounds()), bound(delete.upper_bounds()))
            && !self.data.iter().any(|p| lo.as_str() <= p.as_str() && p.as_str() <= hi.as_str())
        {
            return Ok(None);
        }
        let batches = crate::table::incremental::read_data_file(file_io, delete.file_path(), &["file_path"])
            .await
            .map_err(|e| {
                RemoveError::Iceberg(iceberg::Error::new(
                    iceberg::ErrorKind::Unexpected,
                    format!("reading delete file {}: {e}", delete.file_path()),
                ))
            })?;
        for b in &batches {
            let Some(col) = b.column_by_name("file_path") else { continue };
            let col = col.as_string::<i32>();
            for i in 0..col.len() {
                if col.is_valid(i) && self.data.contains(col.value(i)) {
                    return Ok(Some(col.value(i).to_string()));
                }
            }
        }
        Ok(None)
    }
}

impl Removal {
    /// The summary counts Java writes for removed files (`deleted-data-files`,
    /// `deleted-records`, `removed-*`), and the totals lowered by them.
    pub(crate) fn summarize(&self, summary: &mut Summary) {
        let props = &mut summary.additional_properties;
        let records: u64 = self.data.iter().map(|f| f.record_count()).sum();
        let data_size: u64 = self.data.iter().map(|f| f.file_size_in_bytes()).sum();
        let delete_size: u64 = self.deletes.iter().map(|f| f.file_size_in_bytes()).sum();
        let positions: u64 = self.deletes.iter().map(|f| f.record_count()).sum();
        let mut set = |k: &str, v: u64| {
            if v > 0 {
                props.insert(k.to_string(), v.to_string());
            }
        };
        set("deleted-data-files", self.data.len() as u64);
        set("deleted-records", records);
        set("removed-files-size", data_size + delete_size);
        set("removed-delete-files", self.deletes.len() as u64);
        set("removed-position-deletes", positions);
        for (total, minus) in [
            ("total-records", records),
            ("total-data-files", self.data.len() as u64),
            ("total-files-size", data_size + delete_size),
            ("total-delete-files", self.deletes.len() as u64),
            ("total-position-deletes", positions),
        ] {
            let before = props.get(total).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            props.insert(total.to_string(), (before - minus as i64).max(0).to_string());
        }
    }
}
