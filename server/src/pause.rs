//! CLIENT PAUSE: while a pause holds, commands it covers are postponed (not refused) until
//! CLIENT UNPAUSE or the pause's end; WRITE covers commands that change data or may
//! propagate (writes, PUBLISH, SPUBLISH, EXEC of a transaction holding one), ALL covers
//! every command, as in Redis 6.2+.
//!
//! Dispatch asks [`Pause::postpones`] for every command: one relaxed atomic load while no
//! pause is set. A postponed connection waits on [`Pause::changed`] and the pause's end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::keyspace::lock;

/// What a pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum PauseMode {
    /// Nothing: no pause.
    None = 0,
    /// Commands that write or may propagate.
    Write = 1,
    /// Every command.
    All = 2,
}

/// The server's pause state.
#[derive(Debug, Default)]
pub struct Pause {
    /// The [`PauseMode`] in force, as its number.
    mode: AtomicU8,
    /// Unix ms at which the pause ends by itself.
    end_ms: AtomicU64,
    /// Serializes CLIENT PAUSE / UNPAUSE so mode and end change together.
    update: Mutex<()>,
    /// Set while a FAILOVER holds writes back (Redis's pause during failover): a pause of
    /// its own, which CLIENT UNPAUSE does not lift and which has no end time.
    failover: AtomicBool,
    /// Woken when the pause is lifted or changed.
    pub changed: Notify,
}

impl Pause {
    /// CLIENT PAUSE: pauses until `end_ms`. A pause in force is only lengthened, and a
    /// WRITE pause does not narrow an ALL one, as Redis keeps the most restrictive.
    pub fn pause(&self, end_ms: u64, mode: PauseMode) {
        let _guard = lock(&self.update);
        let current = self.current(crate::client::now_ms());
        let mode = mode.max(current);
        let end = if current == PauseMode::None {
            end_ms
        } else {
            end_ms.max(self.end_ms.load(Ordering::Relaxed))
        };
        self.end_ms.store(end, Ordering::Relaxed);
        self.mode.store(mode as u8, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// CLIENT UNPAUSE: lifts the pause and wakes the postponed clients.
    pub fn unpause(&self) {
        let _guard = lock(&self.update);
        self.mode.store(PauseMode::None as u8, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// FAILOVER's pause of writes: held from the command until the switch is done or
    /// aborted, apart from any CLIENT PAUSE.
    pub fn hold_for_failover(&self, on: bool) {
        let _guard = lock(&self.update);
        self.failover.store(on, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Whether a pause was set and not lifted (it may have ended by its time).
    pub fn is_set(&self) -> bool {
        self.mode.load(Ordering::Relaxed) != PauseMode::None as u8
            || self.failover.load(Ordering::Relaxed)
    }

    /// Whether a pause holds now.
    pub fn in_force(&self) -> bool {
        self.is_set() && self.current(crate::client::now_ms()) != PauseMode::None
    }

    /// The pause in force at `now_ms` (a pause whose end passed is none).
    pub fn current(&self, now_ms: u64) -> PauseMode {
        let client = match self.mode.load(Ordering::Acquire) {
            0 => PauseMode::None,
            _ if now_ms >= self.end_ms.load(Ordering::Relaxed) => PauseMode::None,
            1 => PauseMode::Write,
            _ => PauseMode::All,
        };
        if self.failover.load(Ordering::Acquire) {
            client.max(PauseMode::Write)
        } else {
            client
        }
    }

    /// When the pause in force ends by itself (unix ms): a failover's has no end, so its
    /// waiters look again every minute (and whenever it changes).
    fn end(&self, now_ms: u64) -> u64 {
        let client = self.end_ms.load(Ordering::Relaxed);
        if self.failover.load(Ordering::Relaxed) {
            client.max(now_ms + 60_000)
        } else {
            client
        }
    }

    /// The pause as Redis 8's INFO clients describes it: `paused_reason` (`none`,
    /// `client_pause` or `failover_in_progress`), `paused_actions` (`none`, `write` or
    /// `all`) and the milliseconds left (`paused_timeout_milliseconds`).
    pub fn describe(&self, now_ms: u64) -> (&'static str, &'static str, u64) {
        match self.current(now_ms) {
            PauseMode::None => ("none", "none", 0),
            PauseMode::Write if self.failover.load(Ordering::Relaxed) => {
                ("failover_in_progress", "write", 0)
            }
            mode => (
                "client_pause",
                if mode == PauseMode::All {
                    "all"
                } else {
                    "write"
                },
                self.end_ms.load(Ordering::Relaxed).saturating_sub(now_ms),
            ),
        }
    }

    /// Whether a command is postponed now (`write_like`: it writes or may propagate), and
    /// if so the unix ms at which the pause ends by itself.
    pub fn postpones(&self, write_like: impl FnOnce() -> bool) -> Option<u64> {
        if !self.is_set() {
            return None;
        }
        let now = crate::client::now_ms();
        match self.current(now) {
            PauseMode::None => None,
            PauseMode::Write if !write_like() => None,
            _ => Some(self.end(now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_restrictive_mode_and_latest_end_win() {
        let p = Pause::default();
        let now = crate::client::now_ms();
        assert_eq!(p.postpones(|| true), None);
        p.pause(now + 10_000, PauseMode::All);
        p.pause(now + 5_000, PauseMode::Write);
        assert_eq!(p.current(now), PauseMode::All);
        assert_eq!(p.postpones(|| false), Some(now + 10_000));
        p.unpause();
        assert_eq!(p.postpones(|| true), None);
        p.pause(now + 10_000, PauseMode::Write);
        assert_eq!(p.postpones(|| false), None);
        assert_eq!(p.postpones(|| true), Some(now + 10_000));
        assert_eq!(p.current(now + 10_000), PauseMode::None);
        assert_eq!(p.describe(now + 4_000), ("client_pause", "write", 6_000));
        p.unpause();
        assert_eq!(p.describe(now), ("none", "none", 0));
    }
}
