//! How long the store's own work took, told to whoever watches for stalls (the server's
//! LATENCY monitor): fsyncs, hand-overs of the tail log to the OS, checkpoints, purges,
//! compactions and reads of evicted nodes. The store only measures; what counts as slow is
//! the watcher's business.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Called with an event's name and how long it took.
pub type OnLatency = Box<dyn Fn(&'static str, Duration) + Send + Sync>;

/// Event names, Redis's where Redis measures the same thing.
pub mod events {
    /// An fsync a reply waited for (`appendfsync always`).
    pub const FSYNC_ALWAYS: &str = "aof-fsync-always";
    /// A background fsync (`everysec`, `no` on SAVE), which Redis does not time.
    pub const FSYNC: &str = "brooklet-fsync";
    /// The tail log's buffer written to the OS.
    pub const WRITE: &str = "aof-write";
    /// A checkpoint of the tail log into fjall.
    pub const CHECKPOINT: &str = "brooklet-checkpoint";
    /// A major compaction of the stream keyspaces.
    pub const COMPACTION: &str = "brooklet-compaction";
    /// The removal of a deleted or trimmed stream's records.
    pub const PURGE: &str = "brooklet-purge";
    /// A node of entries evicted from memory, read back from disk.
    pub const DISK_READ: &str = "brooklet-disk-read";
}

/// Where the store reports durations; a no-op until the server registers its callback.
#[derive(Default)]
pub(crate) struct LatencyHook {
    hook: OnceLock<OnLatency>,
    /// Whether anyone is watching (the server's `latency-monitor-threshold` is set): while
    /// not, nothing is timed, so the store's hot paths read no clock for it.
    watching: AtomicBool,
}

impl std::fmt::Debug for LatencyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHook")
            .field("set", &self.hook.get().is_some())
            .finish()
    }
}

impl LatencyHook {
    /// Registers the callback; a second registration is ignored.
    pub(crate) fn set(&self, f: OnLatency) {
        let _ = self.hook.set(f);
    }

    /// Turns the timing on or off.
    pub(crate) fn watch(&self, on: bool) {
        self.watching.store(on, Ordering::Relaxed);
    }

    /// The start of something to time: the current instant while someone watches.
    #[inline]
    pub(crate) fn start(&self) -> Option<Instant> {
        self.watching.load(Ordering::Relaxed).then(Instant::now)
    }

    /// Reports that `event` ran from `started` (from [`start`](Self::start)) until now.
    pub(crate) fn since(&self, event: &'static str, started: Option<Instant>) {
        if let (Some(started), Some(f)) = (started, self.hook.get()) {
            f(event, started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::Mutex;

    #[test]
    fn nothing_is_timed_or_reported_unless_watched() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = LatencyHook::default();
        let sink = seen.clone();
        hook.set(Box::new(move |e, _| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e)
        }));
        let started = hook.start();
        assert!(started.is_none());
        hook.since(events::CHECKPOINT, started);
        hook.watch(true);
        hook.since(events::PURGE, hook.start());
        assert_eq!(
            *seen.lock().unwrap_or_else(|p| p.into_inner()),
            [events::PURGE]
        );
    }
}
