//! The coarse public error kind shared by every module.
//!
//! Each module has its own `thiserror` enum with rich messages; callers that
//! only need to decide "retry, re-seek or give up" look at [`ErrorKind`].

/// What a caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad configuration or arguments: fix and restart.
    Config,
    /// Another writer committed past our position: discard the batch and re-seek.
    Fenced,
    /// A transient failure (network, lock, CAS lost repeatedly): retry later.
    Transient,
    /// Input we cannot interpret.
    Data,
    /// A bug or a broken invariant.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same operation may succeed.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Transient | ErrorKind::Fenced)
    }
}
