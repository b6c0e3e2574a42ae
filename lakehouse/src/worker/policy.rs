//! When an in-flight batch is committed.

use std::time::{Duration, Instant};

/// What a stage holds uncommitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub records: usize,
    pub bytes: usize,
    /// When the first record of the batch arrived.
    pub since: Option<Instant>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// A batch is committed when it is `interval` old or reaches either size bound,
/// whichever comes first.
#[derive(Debug, Clone)]
pub struct BatchPolicy {
    pub interval: Duration,
    pub max_records: usize,
    pub max_bytes: usize,
    /// How long one [`crate::worker::Stage::fill`] call may wait for input.
    pub poll_wait: Duration,
}

impl BatchPolicy {
    #[must_use]
    pub fn new(interval: Duration, max_records: usize, max_bytes: usize) -> Self {
        Self { interval, max_records, max_bytes, poll_wait: Duration::from_millis(100).min(interval) }
    }

    #[must_use]
    pub fn with_poll_wait(mut self, wait: Duration) -> Self {
        self.poll_wait = wait;
        self
    }

    /// Whether `pending` should be committed now.
    pub fn due(&self, pending: &Pending, now: Instant) -> bool {
        if pending.is_empty() {
            return false;
        }
        pending.records >= self.max_records
            || pending.bytes >= self.max_bytes
            || pending.since.is_some_and(|t| now.duration_since(t) >= self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_by_age_or_size_never_when_empty() {
        let p = BatchPolicy::new(Duration::from_secs(5), 100, 1000);
        let now = Instant::now();
        let young = Pending { records: 1, bytes: 10, since: Some(now) };
        assert!(!p.due(&young, now));
        assert!(p.due(&young, now + Duration::from_secs(5)));
        assert!(p.due(&Pending { records: 100, ..young }, now));
        assert!(p.due(&Pending { bytes: 1000, ..young }, now));
        assert!(!p.due(&Pending::default(), now + Duration::from_secs(60)), "nothing to commit");
        assert_eq!(p.poll_wait, Duration::from_millis(100));
        assert_eq!(BatchPolicy::new(Duration::from_millis(20), 1, 1).poll_wait, Duration::from_millis(20));
    }
}
