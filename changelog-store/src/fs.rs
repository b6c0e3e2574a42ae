//! Local filesystem operations with the atomicity the commit protocol needs.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()))
}

fn write_tmp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    let tmp = tmp_path(path);
    let mut f = fs::File::create_new(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("writing", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
    Ok(tmp)
}

/// Creates `path` with `bytes` only if it does not exist yet; the file appears complete
/// or not at all (written to a temp file, then hard-linked). Returns `false` when the
/// path was already taken by someone else.
pub fn create_if_absent(path: &Path, bytes: &[u8]) -> Result<bool> {
    let tmp = write_tmp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("publishing", path, e)),
    }
}

/// Atomically replaces `path` with `bytes` (temp file + rename). Used for hints.
pub fn overwrite(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_tmp(path, bytes)?;
    fs::rename(&tmp, path).map_err(|e| Error::io("renaming into", path, e))
}

/// Writes a file that must not exist yet (fresh unique names: data files, manifests).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create_new(path).map_err(|e| Error::io("creating", path, e))?;
    f.write_all(bytes).map_err(|e| Error::io("writing", path, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", path, e))
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io("reading", path, e))
}

/// Reads a file, `None` if it does not exist.
pub fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

pub fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| Error::io("creating directory", path, e))
}

/// Deletes a file; a file that is already gone is not an error.
pub fn delete(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("deleting", path, e)),
    }
}

pub fn file_size(path: &Path) -> Result<u64> {
    fs::metadata(path).map(|m| m.len()).map_err(|e| Error::io("stat", path, e))
}

/// Last modification time of a file, in epoch millis.
pub fn modified_millis(path: &Path) -> Result<i64> {
    let t = fs::metadata(path).and_then(|m| m.modified()).map_err(|e| Error::io("stat", path, e))?;
    Ok(match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    })
}

/// Whether `path` is a directory (false if it does not exist).
pub fn is_dir(path: &Path) -> bool {
    path.is_dir()
}

/// Names of the entries of a directory (empty if it does not exist).
pub fn list(dir: &Path) -> Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut out = Vec::new();
            for e in rd {
                let e = e.map_err(|e| Error::io("listing", dir, e))?;
                out.push(e.file_name().to_string_lossy().into_owned());
            }
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("listing", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_if_absent_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("snapshot-1");
        assert!(create_if_absent(&p, b"first").expect("creates"));
        assert!(!create_if_absent(&p, b"second").expect("no error"));
        assert_eq!(read(&p).expect("reads"), b"first");
        assert_eq!(list(dir.path()).expect("lists"), vec!["snapshot-1".to_string()]);
    }
}
