//! What OBJECT IDLETIME and OBJECT FREQ report: every value keeps 24 bits of access history,
//! as Redis keeps them in its objects' `lru` field. Under an LFU `maxmemory-policy` they hold
//! the minute of the last decrement (16 bits) and a logarithmic access counter (8 bits);
//! otherwise the second of the last access, on a clock that wraps every 194 days.
//!
//! Nothing evicts by these figures: Brooklet answers a full memory with OOM errors, never by
//! dropping keys. They are kept so operators and tools read what Redis would show them.
//!
//! The clock and the LFU settings are process-wide, as one server runs per process (servers
//! started in-process by tests share them).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest value of the 24-bit clock (Redis's `LRU_CLOCK_MAX`).
const CLOCK_MAX: u32 = (1 << 24) - 1;
/// The counter a new value starts with under LFU (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u8 = 5;

/// The clock in seconds, refreshed by [`tick`] (Redis reads its cached `lruclock` the same way).
static CLOCK: AtomicU32 = AtomicU32::new(0);
/// Whether `maxmemory-policy` is an LFU one.
static LFU: AtomicBool = AtomicBool::new(false);
/// `lfu-log-factor`.
static LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
/// `lfu-decay-time`, in minutes.
static DECAY_TIME: AtomicU32 = AtomicU32::new(1);

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Refreshes the clock; the server calls it every 100 ms, as Redis's cron refreshes its own.
pub fn tick() {
    CLOCK.store((unix_secs() as u32) & CLOCK_MAX, Ordering::Relaxed);
}

/// Takes `maxmemory-policy`, `lfu-log-factor` and `lfu-decay-time` from `c` (at start-up and
/// on CONFIG SET).
pub fn configure(c: &crate::config::Config) {
    let to_u32 = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    LFU.store(c.maxmemory_policy.contains("lfu"), Ordering::Relaxed);
    LOG_FACTOR.store(to_u32(c.lfu_log_factor), Ordering::Relaxed);
    DECAY_TIME.store(to_u32(c.lfu_decay_time), Ordering::Relaxed);
    tick();
}

fn clock() -> u32 {
    match CLOCK.load(Ordering::Relaxed) {
        // Before the first tick (a unit test, or a command racing start-up).
        0 => (unix_secs() as u32) & CLOCK_MAX,
        c => c,
    }
}

/// The current minute in 16 bits (Redis's `LFUGetTimeInMinutes`).
fn minutes() -> u32 {
    ((unix_secs() / 60) & 0xffff) as u32
}

/// One value's access history.
#[derive(Debug)]
pub struct Access(AtomicU32);

impl Default for Access {
    fn default() -> Self {
        Access::new()
    }
}

impl Clone for Access {
    fn clone(&self) -> Self {
        Access(AtomicU32::new(self.0.load(Ordering::Relaxed)))
    }
}

impl Access {
    /// The history of a value created now.
    pub fn new() -> Self {
        Access(AtomicU32::new(if LFU.load(Ordering::Relaxed) {
            (minutes() << 8) | u32::from(LFU_INIT_VAL)
        } else {
            clock()
        }))
    }

    /// Records an access (Redis's lookups without `LOOKUP_NOTOUCH`), unless it happens
    /// inside [`untouched`].
    pub fn touch(&self) {
        if UNTOUCHED.get() {
            return;
        }
        let v = if LFU.load(Ordering::Relaxed) {
            let counter = log_incr(self.decayed());
            (minutes() << 8) | u32::from(counter)
        } else {
            clock()
        };
        self.0.store(v, Ordering::Relaxed);
    }

    /// Seconds since the last access (OBJECT IDLETIME), read from the LRU clock.
    pub fn idle_secs(&self) -> u64 {
        let (now, then) = (clock(), self.0.load(Ordering::Relaxed) & CLOCK_MAX);
        u64::from(if now >= then {
            now - then
        } else {
            now + (CLOCK_MAX - then)
        })
    }

    /// The access counter after its decay (OBJECT FREQ, Redis's `LFUDecrAndReturn`).
    pub fn decayed(&self) -> u8 {
        let v = self.0.load(Ordering::Relaxed);
        let (ldt, counter) = (v >> 8 & 0xffff, (v & 0xff) as u8);
        let decay = DECAY_TIME.load(Ordering::Relaxed);
        let now = minutes();
        let elapsed = if now >= ldt {
            now - ldt
        } else {
            65535 - ldt + now
        };
        // A decay time of 0 turns the decay off.
        let periods = elapsed.checked_div(decay).unwrap_or(0);
        counter.saturating_sub(u8::try_from(periods).unwrap_or(u8::MAX))
    }

    /// Sets the history RESTORE's IDLETIME / FREQ or an RDB file's records give, as Redis's
    /// `objectSetLRUOrLFU` does: a frequency counts under an LFU policy, an idle time otherwise.
    pub fn restore(&self, idle_secs: Option<u64>, freq: Option<u8>) {
        if LFU.load(Ordering::Relaxed) {
            if let Some(f) = freq {
                self.0
                    .store((minutes() << 8) | u32::from(f), Ordering::Relaxed);
            }
        } else if let Some(idle) = idle_secs {
            let idle = (idle.min(u64::from(CLOCK_MAX))) as u32;
            let now = clock();
            let at = if idle <= now {
                now - idle
            } else {
                CLOCK_MAX - (idle - now)
            };
            self.0.store(at, Ordering::Relaxed);
        }
    }
}

std::thread_local!(static UNTOUCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

/// Runs `f` with accesses not recorded: a command of a CLIENT NO-TOUCH client (commands run
/// synchronously on one thread, so the flag covers exactly that command).
pub fn untouched<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            UNTOUCHED.set(self.0);
        }
    }
    let _reset = Reset(UNTOUCHED.replace(true));
    f()
}

/// Redis's `LFULogIncr`: the counter grows with probability 1 / ((counter - 5) * factor + 1).
fn log_incr(counter: u8) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(LOG_FACTOR.load(Ordering::Relaxed)) + 1.0);
    if crate::random::unit() < p {
        counter + 1
    } else {
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_counts_from_the_last_access_and_wraps_with_the_clock() {
        let a = Access(AtomicU32::new(clock().wrapping_sub(30) & CLOCK_MAX));
        assert_eq!(a.idle_secs(), 30);
        a.touch();
        assert_eq!(a.idle_secs(), 0);
        a.restore(Some(1000), None);
        assert_eq!(a.idle_secs(), 1000);
        a.restore(Some(100), None);
        untouched(|| a.touch());
        assert_eq!(a.idle_secs(), 100);
        let b = Access(AtomicU32::new(CLOCK_MAX));
        assert!(b.idle_secs() <= u64::from(clock()));
    }

    #[test]
    fn the_counter_decays_one_per_period_and_grows_ever_more_slowly() {
        let now = minutes();
        let a = Access(AtomicU32::new((now.wrapping_sub(3) & 0xffff) << 8 | 10));
        assert_eq!(a.decayed(), 7);
        let b = Access(AtomicU32::new(now << 8 | 2));
        assert_eq!(b.decayed(), 2);
        // From 5 the first step is certain; at 255 it stays.
        assert_eq!(log_incr(LFU_INIT_VAL - 1), LFU_INIT_VAL);
        assert_eq!(log_incr(255), 255);
        let mut c = LFU_INIT_VAL;
        for _ in 0..1000 {
            c = log_incr(c);
        }
        // Redis's table for factor 10: about 10 after a thousand hits, far from 255.
        assert!((12..=30).contains(&c), "counter {c}");
    }
}
