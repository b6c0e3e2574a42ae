//! The byte sink of a new data or changelog file.
//!
//! On Linux the file is opened with `O_DIRECT` and written from an aligned, reused buffer:
//! the bytes go from that buffer to the device without being copied into the page cache.
//! That copy — into freshly allocated, cold page-cache pages — was the largest kernel cost
//! of the write path (~8% of the store benchmark's CPU), and the page cache gains little
//! from these files: the store reads a file it just wrote from the batches it kept
//! (`write/batch_cache.rs`), and the files are synced before any snapshot names them
//! anyway. RocksDB offers the same for flushes and compactions.
//!
//! Where the file system refuses direct I/O (tmpfs, some network file systems), at open
//! or at the first write, the sink falls back to ordinary buffered writes of the same
//! bytes; nothing else changes. [`DataFileSink::finish`] is the point where the file is
//! complete and durable: the last partial block is written padded, the file cut to its
//! real length, and synced.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Alignment of buffer addresses, lengths and file offsets for `O_DIRECT`: 4 KiB covers
/// every logical block size Linux file systems use.
const ALIGN: usize = 4096;

/// Bytes written per system call.
const BUF: usize = 1 << 20;

/// Idle buffers kept for the next file (a fresh 1 MiB buffer costs 256 page faults).
const POOL_MAX: usize = 8;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn take_buffer() -> Vec<u8> {
    let pooled = POOL.lock().ok().and_then(|mut p| p.pop());
    pooled.unwrap_or_else(|| vec![0u8; BUF + ALIGN])
}

fn return_buffer(buf: Vec<u8>) {
    if let Ok(mut p) = POOL.lock()
        && p.len() < POOL_MAX
    {
        p.push(buf);
    }
}

fn open_direct(path: &Path) -> io::Result<Option<File>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => return Ok(Some(f)),
            Err(e) if refuses_direct_io(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let _ = path;
    Ok(None)
}

/// See the module documentation.
pub struct DataFileSink {
    path: PathBuf,
    file: File,
    direct: bool,
    /// `BUF + ALIGN` bytes; the window `start..start + BUF` is aligned.
    buf: Vec<u8>,
    start: usize,
    /// Bytes buffered in the window.
    len: usize,
    /// Bytes already in the file.
    written: u64,
}

impl DataFileSink {
    /// Creates `path`, which must not exist yet.
    pub fn create_new(path: &Path) -> io::Result<Self> {
        let (file, direct) = match open_direct(path)? {
            Some(f) => (f, true),
            None => (File::create_new(path)?, false),
        };
        let buf = take_buffer();
        let start = buf.as_ptr().align_offset(ALIGN);
        if start + BUF > buf.len() {
            return Err(io::Error::other("cannot align the write buffer"));
        }
        Ok(DataFileSink { path: path.to_path_buf(), file, direct, buf, start, len: 0, written: 0 })
    }

    /// Whether the file is being written with direct I/O (false after a fallback).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct
    }

    /// Writes `len` bytes of the window (a multiple of [`ALIGN`] while direct), switching
    /// to buffered writes if the file system refuses direct I/O.
    fn write_window(&mut self, len: usize) -> io::Result<()> {
        let mut done = 0;
        while done < len {
            let chunk = &self.buf[self.start + done..self.start + len];
            match self.file.write(chunk) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "data file write returned 0")),
                Ok(n) => {
                    done += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && refuses_direct_io(&e) => self.fall_back()?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Continues the same file without `O_DIRECT`, from where the direct writes ended.
    fn fall_back(&mut self) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(&self.path)?;
        file.seek(SeekFrom::Start(self.written))?;
        self.file = file;
        self.direct = false;
        Ok(())
    }

    /// Writes what is buffered, makes the file its exact length and durable, and returns
    /// that length.
    pub fn finish(mut self) -> io::Result<u64> {
        let tail = self.len;
        if tail > 0 {
            let padded = if self.direct { tail.next_multiple_of(ALIGN) } else { tail };
            self.buf[self.start + tail..self.start + padded].fill(0);
            self.write_window(padded)?;
            let size = self.written - (padded - tail) as u64;
            if self.written != size {
                self.file.set_len(size)?;
                self.written = size;
            }
            self.len = 0;
        }
        self.file.sync_all()?;
        Ok(self.written)
    }
}

/// `EINVAL`: what Linux returns when a file system does not take direct I/O (or not with
/// this alignment).
fn refuses_direct_io(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        e.raw_os_error() == Some(libc::EINVAL)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

impl Write for DataFileSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BUF - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == BUF {
            self.write_window(BUF)?;
            self.len = 0;
        }
        Ok(n)
    }

    /// Writes only whole aligned blocks while direct: the rest stays buffered until
    /// [`DataFileSink::finish`], the point where the file is complete.
    fn flush(&mut self) -> io::Result<()> {
        let whole = if self.direct { self.len / ALIGN * ALIGN } else { self.len };
        if whole > 0 {
            self.write_window(whole)?;
            self.buf.copy_within(self.start + whole..self.start + self.len, self.start);
            self.len -= whole;
        }
        Ok(())
    }
}

impl Drop for DataFileSink {
    fn drop(&mut self) {
        return_buffer(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every size around the block and buffer edges comes back byte for byte, with the
    /// exact length, whatever the write sizes and flushes in between.
    #[test]
    fn writes_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let sizes = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BUF - 1, BUF, BUF + 1, 3 * BUF + 12_345];
        for (i, &size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..size).map(|_| next() as u8).collect();
            let path = dir.path().join(format!("f{i}"));
            let mut sink = DataFileSink::create_new(&path).unwrap();
            let mut at = 0;
            while at < size {
                let n = ((next() % 300_000) as usize + 1).min(size - at);
                sink.write_all(&data[at..at + n]).unwrap();
                if next() % 4 == 0 {
                    sink.flush().unwrap();
                }
                at += n;
            }
            assert_eq!(sink.finish().unwrap(), size as u64);
            assert_eq!(std::fs::read(&path).unwrap(), data, "size {size}");
        }
    }

    #[test]
    fn refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::write(&path, b"x").unwrap();
        assert!(DataFileSink::create_new(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }

    /// The buffered fallback writes the same bytes as the direct path.
    #[test]
    fn fallback_continues_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(BUF + 5000)).map(|i| (i * 7) as u8).collect();
        let mut sink = DataFileSink::create_new(&path).unwrap();
        sink.write_all(&data[..BUF + 100]).unwrap();
        sink.fall_back().unwrap();
        sink.write_all(&data[BUF + 100..]).unwrap();
        assert!(!sink.is_direct());
        assert_eq!(sink.finish().unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
