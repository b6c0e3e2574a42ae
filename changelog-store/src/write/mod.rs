//! The write path: buffers, level-0 flushes, changelog production, compaction.

pub mod batch_cache;
pub mod bucket_writer;
pub mod changelog;
pub mod file_cache;
pub mod table_write;
pub mod write_buffer;

pub use bucket_writer::Budgets;
pub use table_write::TableWrite;
