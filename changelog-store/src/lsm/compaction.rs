//! Universal compaction (Paimon's `UniversalCompaction`): picks sorted runs to merge
//! by size amplification, size ratio, then run count; outputs to a level >= 1.

use crate::lsm::levels::{FileRef, Levels, SortedRun};
use crate::options::CoreOptions;

/// What to compact: the files of the picked runs and the level to write to.
#[derive(Debug, Clone)]
pub struct CompactUnit {
    pub output_level: i32,
    pub files: Vec<FileRef>,
    /// Whether retract records may be dropped (nothing older lies below the output).
    pub drop_delete: bool,
}

/// Picks a compaction for `levels`, or `None` if no trigger fires.
pub fn pick(levels: &Levels, opts: &CoreOptions) -> Option<CompactUnit> {
    let runs = levels.sorted_runs();
    let max_level = levels.max_level();
    let trigger = opts.compaction_trigger;
    if runs.len() < trigger {
        return None;
    }
    // 1. Size amplification: everything but the oldest run vs the oldest run.
    let (last, rest) = runs.split_last()?;
    let candidate_size: i64 = rest.iter().map(SortedRun::total_size).sum();
    let earliest_size = last.total_size();
    if candidate_size as u128 * 100 > opts.max_size_amplification_percent as u128 * earliest_size as u128 {
        return Some(unit(levels, &runs, runs.len(), max_level));
    }
    // 2. Size ratio: grow a prefix while the next run is not much bigger than it.
    if let Some(u) = pick_for_size_ratio(levels, &runs, opts, max_level) {
        return Some(u);
    }
    // 3. Run count: take the newest runs down to the trigger, then keep growing that
    //    prefix by size ratio like step 2 (Paimon's `pickForSizeRatio(.., candidateCount)`).
    //    Without the growth the prefix stops at the first level >= 1 run, which then
    //    absorbs one level-0 file per flush and is rewritten over and over.
    if runs.len() > trigger {
        let count = runs.len() - trigger + 1;
        let count = grow_by_size_ratio(&runs, opts, count);
        return Some(unit(levels, &runs, count, max_level));
    }
    None
}

/// [`pick`], or else every level-0 run (grown by size ratio) into a level >= 1: Paimon's
/// `ForceUpLevel0Compaction`, which its lookup writers run before each commit. After it
/// the bucket holds no level-0 file; Java Paimon's batch scan of a `first-row` table
/// reads levels >= 1 only, so what such a commit leaves at level 0 it never returns.
pub fn pick_up_level0(levels: &Levels, opts: &CoreOptions) -> Option<CompactUnit> {
    if let Some(u) = pick(levels, opts) {
        return Some(u);
    }
    let runs = levels.sorted_runs();
    let level0 = runs.iter().take_while(|r| r.level == 0).count();
    if level0 == 0 {
        return None;
    }
    let count = grow_by_size_ratio(&runs, opts, level0);
    Some(unit(levels, &runs, count, levels.max_level()))
}

fn pick_for_size_ratio(levels: &Levels, runs: &[SortedRun], opts: &CoreOptions, max_level: i32) -> Option<CompactUnit> {
    let count = grow_by_size_ratio(runs, opts, 1);
    if count > 1 { Some(unit(levels, runs, count, max_level)) } else { None }
}

/// How many of the newest runs to take: `count`, extended by every following run that
/// is not bigger than the runs taken so far (by `compaction.size-ratio` percent).
fn grow_by_size_ratio(runs: &[SortedRun], opts: &CoreOptions, mut count: usize) -> usize {
    let mut candidate_size: i64 = runs[..count].iter().map(SortedRun::total_size).sum();
    for next in &runs[count..] {
        if (candidate_size as u128) * (100 + opts.size_ratio as u128) < next.total_size() as u128 * 100 {
            break;
        }
        candidate_size += next.total_size();
        count += 1;
    }
    count
}

fn unit(levels: &Levels, runs: &[SortedRun], mut count: usize, max_level: i32) -> CompactUnit {
    let mut output_level = if count == runs.len() { max_level } else { (runs[count].level - 1).max(0) };
    if output_level == 0 {
        // Never output to level 0: take in runs until one that lives in a level >= 1.
        while count < runs.len() {
            let next = &runs[count];
            count += 1;
            if next.level != 0 {
                output_level = next.level;
                break;
            }
        }
    }
    if count == runs.len() {
        output_level = max_level;
    }
    let files: Vec<FileRef> = runs[..count].iter().flat_map(|r| r.files.clone()).collect();
    let drop_delete = output_level != 0 && output_level >= levels.non_empty_highest_level();
    CompactUnit { output_level, files, drop_delete }
}

/// A full compaction of every file of the bucket into the highest level.
pub fn full(levels: &Levels) -> Option<CompactUnit> {
    let files: Vec<FileRef> = levels.all_files().cloned().collect();
    if files.is_empty() {
        return None;
    }
    Some(CompactUnit { output_level: levels.max_level(), files, drop_delete: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::manifest::{DataFileMeta, SimpleStats};
    use std::collections::BTreeMap;

    fn file(name: &str, level: i32, size: i64, seq: i64) -> FileRef {
        FileRef {
            meta: DataFileMeta {
                file_name: name.into(),
                file_size: size,
                row_count: 1,
                min_key: vec![],
                max_key: vec![],
                key_stats: SimpleStats::empty(),
                value_stats: SimpleStats::empty(),
                min_sequence_number: seq,
                max_sequence_number: seq,
                schema_id: 0,
                level,
                extra_files: vec![],
                creation_time_millis: None,
                delete_row_count: Some(0),
                embedded_index: None,
                file_source: Some(0),
                value_stats_cols: None,
                external_path: None,
                first_row_id: None,
                write_cols: None,
                write_cols_sequences: None,
            },
            min_key: vec![],
            max_key: vec![],
        }
    }

    fn opts() -> CoreOptions {
        let mut raw = BTreeMap::new();
        raw.insert("bucket".to_string(), "1".to_string());
        CoreOptions::parse(&raw).expect("options")
    }

    #[test]
    fn no_pick_below_trigger() {
        let levels = Levels::new(6, (0..4).map(|i| file(&format!("f{i}"), 0, 10, i)).collect()).expect("levels");
        assert!(pick(&levels, &opts()).is_none());
    }

    #[test]
    fn size_amplification_triggers_full_compaction() {
        let mut files: Vec<FileRef> = (0..4).map(|i| file(&format!("f{i}"), 0, 10, i + 10)).collect();
        files.push(file("big", 5, 15, 1));
        let levels = Levels::new(6, files).expect("levels");
        let u = pick(&levels, &opts()).expect("picks");
        assert_eq!(u.output_level, 5);
        assert_eq!(u.files.len(), 5);
        assert!(u.drop_delete);
    }

    #[test]
    fn size_ratio_merges_similar_small_runs_above_big_run() {
        let mut files: Vec<FileRef> = (0..4).map(|i| file(&format!("f{i}"), 0, 10, i + 10)).collect();
        files.push(file("big", 5, 1000, 1));
        let levels = Levels::new(6, files).expect("levels");
        let u = pick(&levels, &opts()).expect("picks");
        assert_eq!(u.files.len(), 4);
        assert_eq!(u.output_level, 4);
        assert!(!u.drop_delete);
    }

    #[test]
    fn run_count_pick_grows_by_size_ratio() {
        // Six runs: size amplification and size ratio do not fire; the run count takes
        // the two newest runs and then every following run not bigger than the prefix.
        let files = vec![
            file("l0", 0, 10, 50),
            file("l1", 1, 100, 40),
            file("l2", 2, 50, 30),
            file("l3", 3, 60, 20),
            file("l4", 4, 70, 10),
            file("l5", 5, 1000, 1),
        ];
        let levels = Levels::new(6, files).expect("levels");
        let u = pick(&levels, &opts()).expect("picks");
        let names: Vec<&str> = u.files.iter().map(|f| f.meta.file_name.as_str()).collect();
        assert_eq!(names, ["l0", "l1", "l2", "l3", "l4"]);
        assert_eq!(u.output_level, 4);
        assert!(!u.drop_delete);
    }

    #[test]
    fn up_level0_takes_every_level0_run_into_a_higher_level() {
        // One level-0 run above a big run: no universal trigger fires.
        let levels = Levels::new(6, vec![file("new", 0, 10, 9), file("big", 5, 1000, 1)]).expect("levels");
        assert!(pick(&levels, &opts()).is_none());
        let u = pick_up_level0(&levels, &opts()).expect("picks level 0");
        let names: Vec<&str> = u.files.iter().map(|f| f.meta.file_name.as_str()).collect();
        assert_eq!(names, ["new"]);
        assert_eq!(u.output_level, 4, "just above the big run, which stays");
        assert!(!u.drop_delete);
        // Two level-0 runs over a level-1 run of their size: all three go just above the big run.
        let levels = Levels::new(
            6,
            vec![file("a", 0, 10, 9), file("b", 0, 10, 8), file("c", 1, 15, 2), file("big", 5, 1000, 1)],
        )
        .expect("levels");
        let u = pick_up_level0(&levels, &opts()).expect("picks level 0");
        let names: Vec<&str> = u.files.iter().map(|f| f.meta.file_name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(u.output_level, 4);
        // Nothing at level 0: nothing to do.
        let levels = Levels::new(6, vec![file("big", 5, 1000, 1)]).expect("levels");
        assert!(pick_up_level0(&levels, &opts()).is_none());
    }
}
