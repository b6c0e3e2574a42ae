//! Fail points for crash tests. `LAKEHOUSE_FAILPOINT=<name>` makes the process
//! abort — as abruptly as SIGKILL: no destructor runs, nothing is flushed — the
//! first time it reaches the point of that name. Unset (production), a point
//! costs one load of a cached value.
//!
//! Points:
//! - `silver.after-store-commit`: the store has committed a batch, Silver has
//!   not (the next start materialises the store snapshot from the store alone).

use std::sync::OnceLock;

/// The store committed, the Silver RowDelta did not start.
pub const AFTER_STORE_COMMIT: &str = "silver.after-store-commit";

/// Aborts the process if `LAKEHOUSE_FAILPOINT` names `point`.
pub fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    if ARMED.get_or_init(|| std::env::var("LAKEHOUSE_FAILPOINT").ok()).as_deref() == Some(point) {
        eprintln!("LAKEHOUSE_FAILPOINT {point} reached: aborting");
        std::process::abort();
    }
}
