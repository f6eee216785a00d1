//! MONITOR: the clients that watch every command, and the line each command is shown as,
//! in Redis's format: `+<secs>.<micros> [<db> <addr>] "arg" "arg"`, each argument quoted
//! as Redis's `sdscatrepr` quotes it, with the passwords of AUTH and HELLO ... AUTH replaced
//! by `(redacted)`.
//!
//! With no monitor the cost to a command is one atomic load ([`Monitors::any`]).

use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::client::ClientHandle;
use crate::keyspace::lock;
use crate::subscriber::OutputLimits;

/// The clients in MONITOR mode.
#[derive(Debug, Default)]
pub struct Monitors {
    count: AtomicUsize,
    clients: Mutex<Vec<Arc<ClientHandle>>>,
}

impl Monitors {
    /// Whether any client is monitoring.
    #[inline]
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Adds a client; false if it already monitors.
    pub fn add(&self, client: Arc<ClientHandle>) -> bool {
        let mut clients = lock(&self.clients);
        if clients.iter().any(|c| c.id == client.id) {
            return false;
        }
        client.monitoring.store(true, Ordering::Relaxed);
        clients.push(client);
        self.count.store(clients.len(), Ordering::Relaxed);
        true
    }

    /// Removes a client (RESET, disconnection); false if it did not monitor.
    pub fn remove(&self, id: u64) -> bool {
        let mut clients = lock(&self.clients);
        let before = clients.len();
        clients.retain(|c| {
            if c.id == id {
                c.monitoring.store(false, Ordering::Relaxed);
            }
            c.id != id
        });
        self.count.store(clients.len(), Ordering::Relaxed);
        before != clients.len()
    }

    /// Sends `line` to every monitor, holding each to `limits` (Redis holds monitors to the
    /// normal clients' `client-output-buffer-limit`); returns the ids of those over it.
    pub fn feed(&self, line: &Bytes, limits: &OutputLimits) -> Vec<u64> {
        let clients = lock(&self.clients);
        let mut over = Vec::new();
        for c in clients.iter() {
            if c.is_killed() || !c.push_frame(line.clone()) {
                continue;
            }
            let used = c.queued_bytes.load(Ordering::Relaxed) as u64;
            if limits.exceeded(used, &c.soft_limit_since_ms) {
                over.push(c.id);
            }
        }
        over
    }
}

/// The line a monitor is sent for a command run at `micros` (since the epoch) in database
/// `db` by the client at `addr`.
pub fn line(micros: u128, db: usize, addr: &str, argv: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + argv.iter().map(|a| a.len() + 3).sum::<usize>());
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    out.extend_from_slice(format!("+{secs}.{frac:06} [{db} {addr}]").as_bytes());
    let redacted = redacted_args(argv);
    for (i, a) in argv.iter().enumerate() {
        out.extend_from_slice(b" ");
        if redacted.contains(&i) {
            repr(b"(redacted)", &mut out);
        } else {
            repr(a, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// The settings whose values CONFIG SET hides (Redis's sensitive configs).
const SENSITIVE_SETTINGS: [&[u8]; 5] = [
    b"requirepass",
    b"masterauth",
    b"masteruser",
    b"tls-key-file-pass",
    b"tls-client-key-file-pass",
];

/// Positions of the arguments Redis hides in MONITOR and SLOWLOG: AUTH's password (and user
/// name), HELLO's AUTH user name and password, every argument of ACL SETUSER after the
/// subcommand, the value of a sensitive setting in CONFIG SET.
pub(crate) fn redacted_args(argv: &[Bytes]) -> Vec<usize> {
    let Some(name) = argv.first() else {
        return Vec::new();
    };
    if name.eq_ignore_ascii_case(b"auth") {
        return (1..argv.len()).collect();
    }
    let sub = |s: &[u8]| argv.get(1).is_some_and(|a| a.eq_ignore_ascii_case(s));
    if name.eq_ignore_ascii_case(b"acl") && sub(b"setuser") {
        return (2..argv.len()).collect();
    }
    if name.eq_ignore_ascii_case(b"config") && sub(b"set") {
        return (2..argv.len())
            .step_by(2)
            .filter(|&i| {
                i + 1 < argv.len()
                    && SENSITIVE_SETTINGS
                        .iter()
                        .any(|s| argv[i].eq_ignore_ascii_case(s))
            })
            .map(|i| i + 1)
            .collect();
    }
    if name.eq_ignore_ascii_case(b"hello") {
        let mut hidden = Vec::new();
        let mut i = 2;
        while i < argv.len() {
            if argv[i].eq_ignore_ascii_case(b"auth") && i + 2 < argv.len() {
                hidden.extend([i + 1, i + 2]);
                i += 3;
            } else if argv[i].eq_ignore_ascii_case(b"setname") {
                i += 2;
            } else {
                i += 1;
            }
        }
        return hidden;
    }
    Vec::new()
}

/// Appends `s` quoted as Redis's `sdscatrepr` quotes it.
pub fn repr(s: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(b"\"");
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            // C's isprint in the C locale: space to tilde.
            0x20..=0x7e => out.extend_from_slice(&[b]),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.extend_from_slice(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&[u8]]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s)).collect()
    }

    #[test]
    fn quoting_matches_sdscatrepr() {
        let mut out = BytesMut::new();
        repr(b"a\tb\x07\x08\\\"\r\n\x01\xff ~", &mut out);
        assert_eq!(&out[..], br#""a\tb\a\b\\\"\r\n\x01\xff ~""#);
    }

    #[test]
    fn line_format() {
        let l = line(
            1_796_617_711_000_042,
            3,
            "127.0.0.1:5000",
            &argv(&[b"SET", b"k", b"x y"]),
        );
        assert_eq!(
            &l[..],
            b"+1796617711.000042 [3 127.0.0.1:5000] \"SET\" \"k\" \"x y\"\r\n"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let l = line(0, 0, "a:1", &argv(&[b"auth", b"u", b"p"]));
        assert!(l.ends_with(b"\"auth\" \"(redacted)\" \"(redacted)\"\r\n"));
        let l = line(
            0,
            0,
            "a:1",
            &argv(&[b"HELLO", b"3", b"SETNAME", b"auth", b"AUTH", b"u", b"p"]),
        );
        assert!(
            l.ends_with(
                b"\"HELLO\" \"3\" \"SETNAME\" \"auth\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"
            ),
            "{l:?}"
        );
        let l = line(0, 0, "a:1", &argv(&[b"HELLO", b"2"]));
        assert!(l.ends_with(b"\"HELLO\" \"2\"\r\n"));
    }
}
