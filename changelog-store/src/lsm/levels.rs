//! Files of one bucket arranged in levels: every level-0 file is its own sorted run,
//! every level >= 1 is one sorted run of files with non-overlapping key ranges.

use crate::error::{Error, Result};
use crate::row::Key;
use crate::spec::manifest::DataFileMeta;
use crate::table_info::TableInfo;

/// A data file with its key range decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub meta: DataFileMeta,
    pub min_key: Key,
    pub max_key: Key,
}

impl FileRef {
    pub fn new(info: &TableInfo, meta: DataFileMeta) -> Result<Self> {
        let min_key = info.deserialize_key(&meta.min_key)?;
        let max_key = info.deserialize_key(&meta.max_key)?;
        Ok(FileRef { meta, min_key, max_key })
    }

    pub fn level(&self) -> i32 {
        self.meta.level
    }

    pub fn overlaps(&self, lo: Option<&Key>, hi: Option<&Key>) -> bool {
        lo.is_none_or(|lo| self.max_key >= *lo) && hi.is_none_or(|hi| self.min_key <= *hi)
    }
}

/// One sorted run: a level-0 file, or all files of a level >= 1.
#[derive(Debug, Clone)]
pub struct SortedRun {
    pub level: i32,
    pub files: Vec<FileRef>,
}

impl SortedRun {
    pub fn total_size(&self) -> i64 {
        self.files.iter().map(|f| f.meta.file_size).sum()
    }
}

/// The levels of one bucket.
#[derive(Debug, Clone)]
pub struct Levels {
    /// Level-0 files, newest first (by max sequence number).
    pub level0: Vec<FileRef>,
    /// `upper[i]` is level `i + 1`, sorted by min key.
    pub upper: Vec<Vec<FileRef>>,
}

impl Levels {
    pub fn new(num_levels: usize, files: Vec<FileRef>) -> Result<Self> {
        let mut levels = Levels { level0: Vec::new(), upper: vec![Vec::new(); num_levels.saturating_sub(1)] };
        for f in files {
            levels.add(f)?;
        }
        Ok(levels)
    }

    pub fn max_level(&self) -> i32 {
        self.upper.len() as i32
    }

    pub fn add(&mut self, f: FileRef) -> Result<()> {
        let level = f.level();
        if level == 0 {
            self.level0.push(f);
            self.level0.sort_by(|a, b| b.meta.max_sequence_number.cmp(&a.meta.max_sequence_number));
        } else {
            let run = self
                .upper
                .get_mut(level as usize - 1)
                .ok_or_else(|| Error::corrupt(&f.meta.file_name, format!("level {level} beyond num-levels")))?;
            run.push(f);
            run.sort_by(|a, b| a.min_key.cmp(&b.min_key));
        }
        Ok(())
    }

    pub fn remove(&mut self, name: &str, level: i32) {
        if level == 0 {
            self.level0.retain(|f| f.meta.file_name != name);
        } else if let Some(run) = self.upper.get_mut(level as usize - 1) {
            run.retain(|f| f.meta.file_name != name);
        }
    }

    /// Sorted runs, newest first: level-0 files, then non-empty levels 1..max.
    pub fn sorted_runs(&self) -> Vec<SortedRun> {
        let mut runs: Vec<SortedRun> =
            self.level0.iter().map(|f| SortedRun { level: 0, files: vec![f.clone()] }).collect();
        for (i, files) in self.upper.iter().enumerate() {
            if !files.is_empty() {
                runs.push(SortedRun { level: i as i32 + 1, files: files.clone() });
            }
        }
        runs
    }

    pub fn number_of_sorted_runs(&self) -> usize {
        self.level0.len() + self.upper.iter().filter(|l| !l.is_empty()).count()
    }

    /// Highest level holding files (-1 if empty).
    pub fn non_empty_highest_level(&self) -> i32 {
        for (i, l) in self.upper.iter().enumerate().rev() {
            if !l.is_empty() {
                return i as i32 + 1;
            }
        }
        if self.level0.is_empty() { -1 } else { 0 }
    }

    pub fn all_files(&self) -> impl Iterator<Item = &FileRef> {
        self.level0.iter().chain(self.upper.iter().flatten())
    }

    pub fn max_sequence_number(&self) -> i64 {
        self.all_files().map(|f| f.meta.max_sequence_number).max().unwrap_or(-1)
    }

    /// Checks that every level >= 1 has non-overlapping key ranges.
    pub fn check_non_overlapping(&self) -> std::result::Result<(), String> {
        for (i, run) in self.upper.iter().enumerate() {
            for w in run.windows(2) {
                if w[0].max_key >= w[1].min_key {
                    return Err(format!(
                        "level {} files `{}` and `{}` overlap",
                        i + 1,
                        w[0].meta.file_name,
                        w[1].meta.file_name
                    ));
                }
            }
        }
        Ok(())
    }
}
