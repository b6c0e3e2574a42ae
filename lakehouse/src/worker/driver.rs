//! The loop every worker runs ([`drive`]) and the contract of a stage ([`Stage`]).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::policy::{BatchPolicy, Pending};
use crate::catalog::LoadedTable;
use crate::telemetry::{Health, names};

/// One table's commit, as a stage reports it (the driver records the metrics).
#[derive(Debug, Clone)]
pub struct TableCommit {
    pub table: LoadedTable,
    pub snapshot_id: i64,
    /// Rows the commit made visible (added; a row delta's replaced rows count once).
    pub rows: u64,
    /// Lost compare-and-swaps before it won.
    pub conflicts: u32,
    /// From the start of writing the table's files to the published snapshot.
    pub duration: Duration,
    /// Newest event time (ms since the epoch) the commit made visible, for freshness.
    pub newest_event_ms: Option<i64>,
}

/// A pipeline stage driven by [`drive`].
///
/// The stage owns its in-flight batch and its positions. Its commits go
/// through the commit layer with a position check on every head tried; when
/// the check fences it (another writer is past its position), the stage
/// discards the batch, re-reads its positions from the tables and reports
/// no commit for that table. Nothing the stage does may leave a half-visible
/// commit: files become visible only through one atomic catalog swap.
#[allow(async_fn_in_trait)] // driven by concrete types only, never boxed
pub trait Stage {
    type Error: std::error::Error;

    /// Moves available input into the in-flight batch, waiting up to `wait`
    /// for some. Returns how many records it added.
    async fn fill(&mut self, wait: Duration) -> Result<usize, Self::Error>;

    /// What the in-flight batch holds.
    fn pending(&self) -> Pending;

    /// Writes and commits the in-flight batch (one snapshot per table); the
    /// batch is empty afterwards, committed or (fenced) discarded.
    async fn commit(&mut self) -> Result<Vec<TableCommit>, Self::Error>;

    /// Whether everything this worker is meant to consume is committed (for
    /// exit-when-idle). Called at most once a second, only with an empty batch.
    async fn caught_up(&mut self) -> Result<bool, Self::Error>;
}

/// What every worker's loop is given besides its stage.
#[derive(Clone)]
pub struct Control {
    /// `layer` label of the commit metrics: bronze, silver, gold.
    pub layer: &'static str,
    pub shutdown: CancellationToken,
    /// Bound for committing the in-flight batch after a shutdown request.
    pub shutdown_timeout: Duration,
    pub health: Health,
    /// Exit once caught up and nothing new arrived for this long.
    pub exit_when_idle: Option<Duration>,
}

/// Runs `stage` until shutdown (or idle, with `exit_when_idle`).
///
/// On shutdown the in-flight batch is committed within `shutdown_timeout`;
/// past it the commit is abandoned, which leaves at most unreferenced files
/// (the catalog pointer moves last, atomically).
pub async fn drive<S: Stage>(stage: &mut S, policy: &BatchPolicy, control: &Control) -> Result<(), S::Error> {
    let mut idle_since: Option<Instant> = None;
    let mut idle_checked: Option<Instant> = None;
    loop {
        control.health.beat();
        if control.shutdown.is_cancelled() {
            let pending = stage.pending();
            if !pending.is_empty() {
                tracing::info!(rows = pending.records, "shutdown: committing the in-flight batch");
                match tokio::time::timeout(control.shutdown_timeout, stage.commit()).await {
                    Ok(done) => record(control.layer, &done?),
                    Err(_) => tracing::warn!(
                        timeout = ?control.shutdown_timeout,
                        "shutdown: in-flight batch abandoned; nothing partial is visible"
                    ),
                }
            }
            return Ok(());
        }
        let added = stage.fill(policy.poll_wait).await?;
        let pending = stage.pending();
        if policy.due(&pending, Instant::now()) {
            record(control.layer, &stage.commit().await?);
        }
        let Some(grace) = control.exit_when_idle else { continue };
        if added > 0 || !stage.pending().is_empty() {
            idle_since = None;
            continue;
        }
        // Checking costs a round trip to the source: at most once a second.
        if idle_checked.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            continue;
        }
        idle_checked = Some(Instant::now());
        match stage.caught_up().await {
            Ok(true) => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= grace {
                    tracing::info!("everything is committed up to its end; exiting (exit-when-idle)");
                    return Ok(());
                }
            }
            Ok(false) => idle_since = None,
            Err(e) => {
                tracing::debug!(error = %e, "idle check failed; retrying");
                idle_since = None;
            }
        }
    }
}

/// The commit metrics every layer shares.
fn record(layer: &'static str, commits: &[TableCommit]) {
    for c in commits {
        let table = c.table.name.to_string();
        metrics::histogram!(names::COMMIT_LATENCY, "layer" => layer, "table" => table.clone())
            .record(c.duration.as_secs_f64());
        metrics::counter!(names::COMMITS, "layer" => layer, "table" => table.clone()).increment(1);
        metrics::counter!(names::ROWS_COMMITTED, "layer" => layer, "table" => table.clone()).increment(c.rows);
        if let Some(ts) = c.newest_event_ms {
            let fresh = (chrono::Utc::now().timestamp_millis() - ts).max(0) as f64 / 1000.0;
            metrics::gauge!(names::FRESHNESS, "layer" => layer, "table" => table.clone()).set(fresh);
        }
        record_table_gauges(&c.table, layer);
        tracing::info!(
            %layer, table = %table, snapshot_id = c.snapshot_id, rows = c.rows, conflicts = c.conflicts,
            ms = c.duration.as_millis() as u64, "committed"
        );
    }
}

/// Table-level gauges from the head's snapshot summary.
pub fn record_table_gauges(table: &LoadedTable, layer: &'static str) {
    let label = table.name.to_string();
    let m = &table.metadata;
    metrics::gauge!(names::SNAPSHOT_COUNT, "layer" => layer, "table" => label.clone()).set(m.snapshots().len() as f64);
    if let Some(s) = m.current_snapshot() {
        let get = |k: &str| s.summary().additional_properties.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        metrics::gauge!(names::TABLE_SIZE_BYTES, "layer" => layer, "table" => label.clone())
            .set(get("total-files-size"));
        metrics::gauge!(names::TABLE_ROWS, "layer" => layer, "table" => label).set(get("total-records"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage fed from a script: each fill adds the next number of records.
    struct Scripted {
        fills: std::collections::VecDeque<usize>,
        pending: Pending,
        commits: Vec<usize>,
        caught_up_after: usize,
        shutdown_on_empty: Option<CancellationToken>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("scripted")]
    struct Never;

    impl Stage for Scripted {
        type Error = Never;
        async fn fill(&mut self, _wait: Duration) -> Result<usize, Never> {
            let n = self.fills.pop_front().unwrap_or(0);
            if n == 0
                && let Some(t) = &self.shutdown_on_empty
            {
                t.cancel();
            }
            if n > 0 {
                self.pending.records += n;
                self.pending.since.get_or_insert_with(Instant::now);
            }
            Ok(n)
        }
        fn pending(&self) -> Pending {
            self.pending
        }
        async fn commit(&mut self) -> Result<Vec<TableCommit>, Never> {
            self.commits.push(self.pending.records);
            self.pending = Pending::default();
            Ok(Vec::new())
        }
        async fn caught_up(&mut self) -> Result<bool, Never> {
            Ok(self.fills.len() <= self.caught_up_after)
        }
    }

    fn control(shutdown: CancellationToken, idle: Option<Duration>) -> Control {
        Control {
            layer: "test",
            shutdown,
            shutdown_timeout: Duration::from_secs(5),
            health: Health::default(),
            exit_when_idle: idle,
        }
    }

    #[tokio::test]
    async fn commits_by_size_and_on_shutdown() {
        let shutdown = CancellationToken::new();
        let mut s = Scripted {
            fills: [3, 3, 3, 1].into(),
            pending: Pending::default(),
            commits: Vec::new(),
            caught_up_after: 0,
            shutdown_on_empty: Some(shutdown.clone()),
        };
        let policy = BatchPolicy::new(Duration::from_secs(3600), 5, usize::MAX);
        drive(&mut s, &policy, &control(shutdown, None)).await.expect("runs");
        // 3+3 reaches 5 → commit 6; 3+1 is committed by the shutdown drain.
        assert_eq!(s.commits, vec![6, 4]);
    }

    #[tokio::test]
    async fn exits_when_idle_only_with_nothing_pending() {
        let mut s = Scripted {
            fills: [2, 0, 0].into(),
            pending: Pending::default(),
            commits: Vec::new(),
            caught_up_after: usize::MAX,
            shutdown_on_empty: None,
        };
        let policy = BatchPolicy::new(Duration::from_millis(1), 100, usize::MAX);
        let c = control(CancellationToken::new(), Some(Duration::from_millis(10)));
        tokio::time::timeout(Duration::from_secs(10), drive(&mut s, &policy, &c))
            .await
            .expect("exits when idle")
            .expect("runs");
        assert_eq!(s.commits, vec![2], "the batch was committed before exiting");
    }
}
