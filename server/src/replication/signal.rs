//! `master_repl_offset` as the feeders wait on it: an atomic, and a wake-up sent only when a
//! feeder is waiting. Every write moves the offset, so the common case (feeders busy
//! writing, or none) costs one store and one load, where a watch channel would lock and
//! wake its eight notifiers on every write.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The change stream's end offset, with waiting for it to move.
#[derive(Debug, Default)]
pub struct OffsetSignal {
    end: AtomicU64,
    waiting: AtomicUsize,
    moved: Notify,
}

impl OffsetSignal {
    /// The offset now.
    pub fn get(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// Sets the offset and wakes the waiters, if any.
    pub fn set(&self, end: u64) {
        self.end.store(end, Ordering::SeqCst);
        // Paired with `moved_from`: either the waiter sees the new offset after counting
        // itself in, or this load sees it counted and wakes its enabled future.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.moved.notify_waiters();
        }
    }

    /// Waits until the offset differs from `seen`; returns it.
    pub async fn moved_from(&self, seen: u64) -> u64 {
        loop {
            let notified = self.moved.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _counted = Counted(&self.waiting);
            let now = self.get();
            if now != seen {
                return now;
            }
            notified.await;
        }
    }
}

/// Takes a waiter out of the count when its wait ends or is dropped (a `select!` branch
/// that lost).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_waiter_sees_every_move_and_leaves_the_count() {
        let s = Arc::new(OffsetSignal::default());
        assert_eq!(s.moved_from(5).await, 0);
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.moved_from(0).await })
        };
        tokio::task::yield_now().await;
        s.set(42);
        assert_eq!(waiter.await.unwrap(), 42);
        assert_eq!(s.waiting.load(Ordering::SeqCst), 0);
        let lost = tokio::time::timeout(std::time::Duration::from_millis(10), s.moved_from(42));
        assert!(lost.await.is_err());
        assert_eq!(s.waiting.load(Ordering::SeqCst), 0);
    }
}
