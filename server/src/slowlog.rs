//! The slow log (SLOWLOG): the last `slowlog-max-len` commands that ran for at least
//! `slowlog-log-slower-than` microseconds, newest first, as Redis keeps it.
//!
//! The settings are mirrored in atomics so the check every command pays is two loads and
//! a compare; only a command that is logged takes the lock and allocates.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use crate::keyspace::lock;

/// Arguments kept per entry; the last one kept says how many more there were.
const MAX_ARGC: usize = 32;
/// Bytes kept of one argument; the rest is summarised.
const MAX_ARG_BYTES: usize = 128;

/// One logged command (SLOWLOG GET's six fields).
#[derive(Debug, Clone)]
pub struct SlowEntry {
    /// Increasing id, never reused (not even after SLOWLOG RESET).
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: u64,
    /// Execution time, microseconds.
    pub duration_us: u64,
    /// The arguments, shortened as Redis shortens them.
    pub args: Vec<Bytes>,
    /// The client's address (`ip:port`).
    pub addr: String,
    /// The client's name (CLIENT SETNAME), empty when none.
    pub name: Bytes,
}

/// The log and its live settings.
#[derive(Debug)]
pub struct SlowLog {
    /// `slowlog-log-slower-than`, microseconds; negative disables.
    slower_than: AtomicI64,
    /// `slowlog-max-len`.
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    /// An empty log with the given settings.
    pub fn new(slower_than: i64, max_len: usize) -> Self {
        SlowLog {
            slower_than: AtomicI64::new(slower_than),
            max_len: AtomicUsize::new(max_len),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Applies CONFIG SET; a shorter maximum takes effect at the next entry, as in Redis.
    pub fn configure(&self, slower_than: i64, max_len: usize) {
        self.slower_than.store(slower_than, Ordering::Relaxed);
        self.max_len.store(max_len, Ordering::Relaxed);
    }

    /// Whether a command that ran `duration_us` is to be logged.
    #[inline]
    pub fn wants(&self, duration_us: u64) -> bool {
        let t = self.slower_than.load(Ordering::Relaxed);
        t >= 0 && duration_us >= t as u64 && self.max_len.load(Ordering::Relaxed) > 0
    }

    /// Logs a command (the caller checked [`wants`](Self::wants)).
    pub fn push(&self, argv: &[Bytes], duration_us: u64, addr: String, name: Bytes) {
        let mut args = shorten(argv);
        // Passwords are hidden here as in MONITOR (Redis redacts them for both).
        // A shortened command's last kept slot counts the arguments left out.
        let kept = if args.len() == argv.len() {
            args.len()
        } else {
            args.len() - 1
        };
        for i in crate::monitor::redacted_args(argv) {
            if i < kept {
                args[i] = Bytes::from_static(b"(redacted)");
            }
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: crate::client::now_ms() / 1000,
            duration_us,
            args,
            addr,
            name,
        };
        let max = self.max_len.load(Ordering::Relaxed);
        let mut entries = lock(&self.entries);
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// The newest `count` entries, newest first.
    pub fn newest(&self, count: usize) -> Vec<SlowEntry> {
        lock(&self.entries).iter().take(count).cloned().collect()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SLOWLOG RESET.
    pub fn reset(&self) {
        lock(&self.entries).clear();
    }
}

/// The arguments as an entry keeps them: at most 32, the 32nd replaced by a count of those
/// left out, and each longer than 128 bytes cut there with a count of the bytes left out.
fn shorten(argv: &[Bytes]) -> Vec<Bytes> {
    let kept = argv.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (i, a) in argv.iter().take(kept).enumerate() {
        if kept != argv.len() && i == kept - 1 {
            let more = argv.len() - kept + 1;
            out.push(Bytes::from(format!("... ({more} more arguments)")));
        } else if a.len() > MAX_ARG_BYTES {
            let mut s = a[..MAX_ARG_BYTES].to_vec();
            let more = a.len() - MAX_ARG_BYTES;
            s.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
            out.push(Bytes::from(s));
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(i.to_string())).collect()
    }

    #[test]
    fn long_commands_keep_31_arguments_and_a_count() {
        let out = shorten(&args(40));
        assert_eq!(out.len(), 32);
        assert_eq!(out[30], Bytes::from("30"));
        assert_eq!(out[31], Bytes::from("... (9 more arguments)"));
        assert_eq!(shorten(&args(32)).len(), 32);
        assert_eq!(shorten(&args(32))[31], Bytes::from("31"));
        assert_eq!(
            shorten(&args(33))[31],
            Bytes::from("... (2 more arguments)")
        );
    }

    #[test]
    fn passwords_are_redacted_as_redis_redacts_them() {
        let log = SlowLog::new(0, 10);
        for line in [
            "AUTH default secret",
            "HELLO 3 AUTH default secret",
            "CONFIG SET masterauth secret hz 10 requirepass secret",
            "ACL SETUSER bob on >secret",
            "config set MASTERUSER bob",
            "XADD secret * f v",
        ] {
            let argv: Vec<Bytes> = line
                .split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            log.push(&argv, 1, String::new(), Bytes::new());
        }
        let shown: Vec<String> = log
            .newest(10)
            .iter()
            .rev()
            .map(|e| {
                let words: Vec<&str> = e
                    .args
                    .iter()
                    .map(|a| std::str::from_utf8(a).unwrap_or("?"))
                    .collect();
                words.join(" ")
            })
            .collect();
        let r = "(redacted)";
        assert_eq!(
            shown,
            [
                format!("AUTH {r} {r}"),
                format!("HELLO 3 AUTH {r} {r}"),
                format!("CONFIG SET masterauth {r} hz 10 requirepass {r}"),
                format!("ACL SETUSER {r} {r} {r}"),
                format!("config set MASTERUSER {r}"),
                "XADD secret * f v".to_string(),
            ]
        );
    }

    #[test]
    fn long_arguments_are_cut_at_128_bytes() {
        let long = Bytes::from(vec![b'a'; 200]);
        let out = shorten(&[long]);
        let mut want = vec![b'a'; 128];
        want.extend_from_slice(b"... (72 more bytes)");
        assert_eq!(out[0], Bytes::from(want));
        let exact = Bytes::from(vec![b'b'; 128]);
        assert_eq!(shorten(std::slice::from_ref(&exact))[0], exact);
    }

    #[test]
    fn newest_first_bounded_and_ids_survive_reset() {
        let log = SlowLog::new(0, 2);
        assert!(log.wants(0));
        for i in 0..3 {
            log.push(&args(i + 1), 5, "a:1".into(), Bytes::new());
        }
        let got = log.newest(10);
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 1]);
        log.reset();
        assert!(log.is_empty());
        log.push(&args(1), 5, "a:1".into(), Bytes::new());
        assert_eq!(log.newest(1)[0].id, 3);
    }

    #[test]
    fn thresholds() {
        let log = SlowLog::new(-1, 128);
        assert!(!log.wants(u64::MAX));
        log.configure(100, 128);
        assert!(!log.wants(99));
        assert!(log.wants(100));
        log.configure(0, 0);
        assert!(!log.wants(100));
    }
}
