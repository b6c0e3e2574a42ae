//! Tuning of mimalloc, the global allocator of `silver-refiner` and
//! `gold-aggregator` (each binary declares it; this crate's `mimalloc` feature).

/// How long mimalloc keeps memory freed before it returns it to the system, in
/// milliseconds, unless `MIMALLOC_PURGE_DELAY` says otherwise. mimalloc 3's
/// default is 1000: a refiner batch allocates and frees a few hundred MB within
/// about a second, so RSS followed what a round allocated rather than what it
/// held. With `MIMALLOC_PURGE_DELAY=250` the 5M Silver backlog peaked at 589–610
/// MiB against 660–683 at 1000, rows per CPU-second within the runs' spread; at 0
/// (purge at once) it cost 28% more CPU (docs/benchmarks.md).
pub const PURGE_DELAY_MS: i32 = 250;

/// mimalloc 3's `mi_option_purge_delay` (`mimalloc.h`; libmimalloc-sys does
/// not export it for mimalloc 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless the environment
/// sets `MIMALLOC_PURGE_DELAY` (an operator's value wins). Call it first in
/// `main`, before any other thread starts.
#[allow(unsafe_code)]
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores a number in mimalloc's option table (an
    // index out of range is ignored); no pointer crosses the call. It is not
    // synchronised, hence called before the process starts other threads.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS.into()) }
}
