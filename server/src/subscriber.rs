//! The server's side of the pub/sub registry: a client handle as a subscriber, and the live
//! `client-output-buffer-limit pubsub` it is held to.

use bytes::Bytes;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brooklet_pubsub::{Delivery, Protocol, Subscriber};

use crate::client::{ClientHandle, now_ms};
use crate::config::OutputLimit;

/// The live `client-output-buffer-limit pubsub`, shared by every subscriber and read on every
/// delivery, so a CONFIG SET applies to existing subscriptions at once.
#[derive(Debug, Default)]
pub struct OutputLimits {
    hard: AtomicU64,
    soft: AtomicU64,
    soft_seconds: AtomicU64,
}

impl OutputLimits {
    /// Limits starting at `limit`.
    pub fn new(limit: &OutputLimit) -> Self {
        let limits = OutputLimits::default();
        limits.set(limit);
        limits
    }

    /// Replaces the limits (CONFIG SET).
    pub fn set(&self, limit: &OutputLimit) {
        self.hard.store(limit.hard, Ordering::Relaxed);
        self.soft.store(limit.soft, Ordering::Relaxed);
        self.soft_seconds
            .store(limit.soft_seconds, Ordering::Relaxed);
    }

    /// When a client over the soft limit since `since_ms` will have been over it for longer
    /// than allowed; None while it is not over it (or no soft limit is set). Redis checks
    /// this in its cron too, so a subscriber that stopped reading is closed even when no
    /// message follows.
    pub fn soft_deadline(&self, since_ms: &AtomicU64) -> Option<tokio::time::Instant> {
        let since = since_ms.load(Ordering::Relaxed);
        if since == 0 || self.soft.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let allowed_ms = self
            .soft_seconds
            .load(Ordering::Relaxed)
            .saturating_mul(1000);
        let at = since.saturating_add(allowed_ms).saturating_add(1);
        let wait = std::time::Duration::from_millis(at.saturating_sub(now_ms()));
        Some(tokio::time::Instant::now() + wait)
    }

    /// Whether a client with `used` bytes of pending output is over the limit, as Redis's
    /// `checkClientOutputBufferLimits` decides: at or above `hard` at once; at or above `soft`
    /// continuously for more than `soft_seconds` (the first time over starts the clock, which
    /// is kept in `since_ms` and reset once the client is back under).
    pub fn exceeded(&self, used: u64, since_ms: &AtomicU64) -> bool {
        let hard = self.hard.load(Ordering::Relaxed);
        if hard > 0 && used >= hard {
            return true;
        }
        let soft = self.soft.load(Ordering::Relaxed);
        if soft == 0 || used < soft {
            if since_ms.load(Ordering::Relaxed) != 0 {
                since_ms.store(0, Ordering::Relaxed);
            }
            return false;
        }
        let now = now_ms().max(1);
        let since = since_ms.load(Ordering::Relaxed);
        if since == 0 {
            since_ms.store(now, Ordering::Relaxed);
            return false;
        }
        let allowed_ms = self
            .soft_seconds
            .load(Ordering::Relaxed)
            .saturating_mul(1000);
        now.saturating_sub(since) > allowed_ms
    }
}

/// Pending output of a subscriber past which the publisher's connection yields after its
/// replies (see [`take_delivered`]): below it, the subscriber's connection keeps up unaided,
/// and a yield after every batch would add to delivery latency at low rates.
const YIELD_BACKLOG: u64 = 64 * 1024;

thread_local! {
    /// Whether this thread queued a frame for a subscriber with a backlog of at least
    /// [`YIELD_BACKLOG`] since [`take_delivered`] last ran.
    static DELIVERED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the command just run on this thread left a subscriber with a backlog (and clears
/// it). Commands run without an await, so the thread that ran one is the one that delivered.
pub fn take_delivered() -> bool {
    DELIVERED.with(|d| d.replace(false))
}

/// A connected client as the pub/sub registry sees it.
#[derive(Clone, Debug)]
pub struct ClientSubscriber {
    /// The client.
    pub handle: Arc<ClientHandle>,
    /// The server's live pub/sub output limits.
    pub limits: Arc<OutputLimits>,
}

impl Subscriber for ClientSubscriber {
    fn id(&self) -> u64 {
        self.handle.id
    }

    fn protocol(&self) -> Protocol {
        if self.handle.resp3.load(Ordering::Relaxed) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// Queues the frame unless the client is already closing, then checks the limits with the
    /// frame counted, as Redis appends the reply before it checks. The queue is unbounded, so
    /// the publisher never waits; a client over its limit is reported and the server kills it.
    fn deliver(&self, frame: &Bytes) -> Delivery {
        if self.handle.is_killed() || !self.handle.push_frame(frame.clone()) {
            // Already on its way out: nothing to queue, nothing to report again.
            return Delivery::Accepted;
        }
        let used = self.handle.queued_bytes.load(Ordering::Relaxed) as u64;
        if used >= YIELD_BACKLOG {
            DELIVERED.with(|d| d.set(true));
        }
        if self.limits.exceeded(used, &self.handle.soft_limit_since_ms) {
            Delivery::OverLimit
        } else {
            Delivery::Accepted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(hard: u64, soft: u64, soft_seconds: u64) -> OutputLimits {
        OutputLimits::new(&OutputLimit {
            hard,
            soft,
            soft_seconds,
        })
    }

    #[test]
    fn hard_limit_is_reached_at_the_limit() {
        let l = limits(100, 0, 0);
        let since = AtomicU64::new(0);
        assert!(!l.exceeded(99, &since));
        assert!(l.exceeded(100, &since));
        assert!(!limits(0, 0, 0).exceeded(u64::MAX, &since));
    }

    #[test]
    fn soft_limit_needs_to_last_and_resets_when_under() {
        let l = limits(0, 10, 60);
        let since = AtomicU64::new(0);
        assert!(!l.exceeded(10, &since));
        assert_ne!(since.load(Ordering::Relaxed), 0);
        assert!(!l.exceeded(20, &since));
        // Over for longer than allowed.
        since.store(now_ms() - 61_000, Ordering::Relaxed);
        assert!(l.exceeded(20, &since));
        // Back under: the clock restarts.
        assert!(!l.exceeded(5, &since));
        assert_eq!(since.load(Ordering::Relaxed), 0);
        // With zero seconds, the second sighting a millisecond later is enough.
        let l = limits(0, 10, 0);
        since.store(now_ms() - 5, Ordering::Relaxed);
        assert!(l.exceeded(10, &since));
    }

    #[test]
    fn set_changes_live_limits() {
        let l = limits(100, 0, 0);
        let since = AtomicU64::new(0);
        assert!(l.exceeded(150, &since));
        l.set(&OutputLimit {
            hard: 200,
            soft: 0,
            soft_seconds: 0,
        });
        assert!(!l.exceeded(150, &since));
    }
}
