//! The state `maxmemory` shares with every command: the limit, and the verdict of the last
//! reading of the memory in use (`memory.rs` takes the readings). A command's check is one
//! atomic load, as Redis's reads a counter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Redis's refusal of a `denyoom` command over the limit.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The limit and the task's last verdict, shared with every command.
#[derive(Debug, Default)]
pub struct MemoryGuard {
    /// `maxmemory` in bytes; 0 for none.
    pub(crate) limit: AtomicU64,
    /// Whether the memory in use was over the limit at the last reading: `denyoom`
    /// commands are refused.
    pub(crate) over: AtomicBool,
    /// Whether the node cache's budget is cut to zero because of the limit.
    pub(crate) squeezed: AtomicBool,
}

impl MemoryGuard {
    /// A guard for `limit` bytes (0: no limit).
    pub fn new(limit: u64) -> Self {
        let guard = MemoryGuard::default();
        guard.limit.store(limit, Ordering::Relaxed);
        guard
    }

    /// Sets `maxmemory` (CONFIG SET); the next reading applies it.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The node cache's budget per stream: `configured`, or nothing while memory is short.
    pub fn cache_budget(&self, configured: u64) -> usize {
        if self.squeezed.load(Ordering::Relaxed) {
            0
        } else {
            usize::try_from(configured).unwrap_or(usize::MAX)
        }
    }

    /// Whether `denyoom` commands are refused: one atomic load.
    pub fn is_over(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }
}
