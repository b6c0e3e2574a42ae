//! Fault injection at the two instants of a commit that crash tests must
//! cover: right before and right after the catalog compare-and-swap.
//!
//! `LAKEHOUSE_FAULT=before-swap` or `after-swap` makes the process abort
//! (`std::process::abort`, no unwinding, no drain — as `kill -9` would) at that
//! point of the first commit, or of the N-th with `LAKEHOUSE_FAULT=after-swap:N`.
//! Anything else in the variable is refused at the first commit with a panic
//! naming it. Unset (production), this is one `OnceLock` read per commit.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a commit can be made to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Every file is written and durable; the catalog pointer has not moved.
    BeforeSwap,
    /// The catalog pointer moved; the writer has not learnt it.
    AfterSwap,
}

/// The variable that arms a fault.
pub const FAULT_ENV: &str = "LAKEHOUSE_FAULT";

fn armed() -> Option<(Point, u64)> {
    static ARMED: OnceLock<Option<(Point, u64)>> = OnceLock::new();
    *ARMED.get_or_init(|| {
        let raw = std::env::var(FAULT_ENV).ok()?;
        parse(&raw)
            .unwrap_or_else(|| {
                panic!("{FAULT_ENV}={raw:?}: expected before-swap or after-swap, optionally with :N (the N-th commit)")
            })
            .into()
    })
}

fn parse(raw: &str) -> Option<(Point, u64)> {
    let (point, n) = match raw.split_once(':') {
        Some((p, n)) => (p, n.parse::<u64>().ok().filter(|n| *n > 0)?),
        None => (raw, 1),
    };
    let point = match point {
        "before-swap" => Point::BeforeSwap,
        "after-swap" => Point::AfterSwap,
        _ => return None,
    };
    Some((point, n))
}

/// Aborts the process if a fault is armed at `point` and this is its commit.
pub fn inject(point: Point) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let Some((at, n)) = armed() else { return };
    if at != point {
        return;
    }
    if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == n {
        eprintln!("{FAULT_ENV}: aborting at {point:?} (commit {n})");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_counts() {
        assert_eq!(parse("before-swap"), Some((Point::BeforeSwap, 1)));
        assert_eq!(parse("after-swap:3"), Some((Point::AfterSwap, 3)));
        assert_eq!(parse("after-swap:0"), None);
        assert_eq!(parse("mid-swap"), None);
    }
}
