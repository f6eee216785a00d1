//! `maxmemory` on a real `brooklet-server` process (jemalloc, its real allocator, so
//! `used_memory` is the server's own): filled for real until it refuses, what keeps working
//! then, writes accepted again once memory is freed, and a stream many times the limit
//! served from disk.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Running};
/// Bound on any single read or write of a test client.
const IO_LIMIT: Duration = Duration::from_secs(30);
/// Redis's refusal, byte for byte.
const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
/// The limit the servers run under: a few times what an idle server uses.
const LIMIT: u64 = 24 * 1024 * 1024;

/// The server process; killed when dropped.
struct Server {
    /// Kept for its drop, which kills the server.
    _child: Running,
    port: u16,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let s = common::spawn(
            Command::new(BIN)
                .args(["--port", "0", "--appendfsync", "no", "--maxmemory", "24mb"])
                .arg("--dir")
                .arg(dir),
            IO_LIMIT,
        );
        Server {
            _child: s.child,
            port: s.port,
        }
    }

    fn connect(&self) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(IO_LIMIT)).unwrap();
        s.set_write_timeout(Some(IO_LIMIT)).unwrap();
        Conn { s, buf: Vec::new() }
    }
}

/// A client speaking raw RESP, so replies are checked byte for byte.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn send(&mut self, args: &[&[u8]]) {
        self.s.write_all(&request(args)).unwrap();
    }

    /// Reads one reply (RESP2 or RESP3), as its bytes.
    fn reply(&mut self) -> Vec<u8> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // RESP3's own types (HELLO 3's map) by its decoder, which refuses RESP2's null
            // array and reports some incomplete frames as errors: read on either way.
            let used = if self.buf.first().is_some_and(|b| b"%~>_,#(=|".contains(b)) {
                redis_protocol::resp3::decode::complete::decode(&self.buf)
                    .ok()
                    .flatten()
                    .map(|(_, n)| n)
            } else {
                redis_protocol::resp2::decode::decode(&self.buf)
                    .unwrap()
                    .map(|(_, n)| n)
            };
            if let Some(used) = used {
                return self.buf.drain(..used).collect();
            }
            let got = self.s.read(&mut chunk).unwrap();
            assert!(got > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..got]);
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.reply()
    }

    /// Sends every request in one write, then reads their replies.
    fn pipeline(&mut self, requests: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for r in requests {
            let args: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
            out.extend(request(&args));
        }
        self.s.write_all(&out).unwrap();
        (0..requests.len()).map(|_| self.reply()).collect()
    }

    /// A field of an INFO section.
    fn info(&mut self, section: &str, name: &str) -> String {
        let reply = self.call(&[b"INFO", section.as_bytes()]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {name} in INFO {section}: {text}"))
    }

    fn used_memory(&mut self) -> u64 {
        self.info("memory", "used_memory").parse().unwrap()
    }
}

/// A request as a multibulk.
fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn xadd(key: &[u8], id: &[u8], value: &[u8]) -> Vec<Vec<u8>> {
    vec![
        b"XADD".to_vec(),
        key.to_vec(),
        id.to_vec(),
        b"f".to_vec(),
        value.to_vec(),
    ]
}

/// Polls `f` every 50 ms until it holds, for at most 20 s (the server reads its memory
/// every 100 ms, and freed memory may take a checkpoint to show).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Many small streams: each keeps its newest node in memory, so they fill the limit for
/// good. Writes are refused with Redis's text in RESP2 and RESP3, MULTI refuses to queue
/// them, reads, deletes and other writes keep working for this client and another, and
/// once DEL freed memory writes are accepted again.
#[test]
fn small_streams_fill_the_limit_then_writes_are_refused_until_del() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.connect();
    let mut other = server.connect();
    assert_eq!(c.info("memory", "maxmemory"), LIMIT.to_string());
    assert_eq!(c.info("memory", "maxmemory_human"), "24.00M");
    assert_eq!(c.info("memory", "maxmemory_policy"), "noeviction");
    assert_eq!(
        text(&c.call(&[b"CONFIG", b"GET", b"maxmemory"])),
        "*2\r\n$9\r\nmaxmemory\r\n$8\r\n25165824\r\n"
    );
    assert!(c.call(&[b"XGROUP", b"CREATE", b"g0", b"grp", b"$", b"MKSTREAM"]) == b"+OK\r\n");

    // Fill: one 2 KB entry per new key, 200 keys a round trip, until the first refusal.
    let value = vec![b'v'; 2048];
    let mut keys = 0usize;
    let started = Instant::now();
    let refused_at = loop {
        assert!(
            keys < 200_000 && started.elapsed() < Duration::from_secs(60),
            "{keys} streams and never refused; used_memory {}",
            other.used_memory()
        );
        let batch: Vec<_> = (keys..keys + 200)
            .map(|k| xadd(format!("k{k}").as_bytes(), b"1-1", &value))
            .collect();
        let replies = c.pipeline(&batch);
        keys += 200;
        if let Some(r) = replies.iter().find(|r| r.starts_with(b"-")) {
            assert_eq!(text(r), text(OOM));
            // Refused for good only if still refused once the cache, the checkpoint and
            // fjall's flushes have given back what they can; else fill on.
            std::thread::sleep(Duration::from_secs(1));
            if c.call(&[b"XADD", b"k0", b"*", b"f", b"v"]) == OOM {
                break keys;
            }
        }
    };
    eprintln!(
        "refused after {refused_at} streams, used_memory {}",
        other.used_memory()
    );

    // Refused: denyoom commands, in RESP2 and RESP3, on both clients.
    assert_eq!(
        text(&c.call(&[b"XADD", b"k0", b"*", b"f", b"v"])),
        text(OOM)
    );
    assert_eq!(
        text(&other.call(&[b"XADD", b"new", b"*", b"f", b"v"])),
        text(OOM)
    );
    assert_eq!(
        text(&other.call(&[b"XGROUP", b"CREATE", b"k1", b"g", b"$"])),
        text(OOM)
    );
    assert_eq!(
        text(&other.call(&[b"XGROUP", b"CREATE", b"fresh", b"g", b"$", b"MKSTREAM"])),
        text(OOM)
    );
    assert_eq!(
        text(&other.call(&[b"XGROUP", b"CREATECONSUMER", b"g0", b"grp", b"alice"])),
        text(OOM)
    );
    let mut resp3 = server.connect();
    assert!(resp3.call(&[b"HELLO", b"3"]).starts_with(b"%"));
    assert_eq!(
        text(&resp3.call(&[b"XADD", b"k0", b"*", b"f", b"v"])),
        text(OOM)
    );
    // Inside MULTI the command is refused as it is queued, and EXEC then aborts.
    assert_eq!(c.call(&[b"MULTI"]), b"+OK\r\n");
    assert_eq!(
        text(&c.call(&[b"XADD", b"k0", b"*", b"f", b"v"])),
        text(OOM)
    );
    assert_eq!(
        text(&c.call(&[b"EXEC"])),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );

    // Working: reads, deletes, non-denyoom writes, PING, INFO, on both clients.
    for conn in [&mut c, &mut other, &mut resp3] {
        assert_eq!(conn.call(&[b"PING"]), b"+PONG\r\n");
        assert_eq!(conn.call(&[b"XLEN", b"k0"]), b":1\r\n");
        let range = conn.call(&[b"XRANGE", b"k1", b"-", b"+"]);
        assert!(text(&range).contains("1-1"), "{}", text(&range));
    }
    assert_eq!(
        c.call(&[
            b"XREADGROUP",
            b"GROUP",
            b"grp",
            b"bob",
            b"STREAMS",
            b"g0",
            b">"
        ])
        .first(),
        Some(&b'*')
    );
    assert_eq!(c.call(&[b"XDEL", b"k2", b"1-1"]), b":1\r\n");
    assert_eq!(c.call(&[b"XTRIM", b"k3", b"MAXLEN", b"0"]), b":1\r\n");
    assert_eq!(c.call(&[b"XACK", b"g0", b"grp", b"1-1"]), b":0\r\n");

    // DEL of most streams frees their memory: writes are accepted again.
    for chunk in (0..refused_at).collect::<Vec<_>>().chunks(500) {
        let mut del = vec![b"DEL".to_vec()];
        del.extend(chunk.iter().map(|k| format!("k{k}").into_bytes()));
        let args: Vec<&[u8]> = del.iter().map(Vec::as_slice).collect();
        assert!(other.call(&args).starts_with(b":"));
    }
    eventually("XADD accepted again after DEL", || {
        c.call(&[b"XADD", b"after", b"*", b"f", b"v"])
            .starts_with(b"$")
    });
    assert!(
        resp3
            .call(&[b"XADD", b"after", b"*", b"f", b"v"])
            .starts_with(b"$")
    );

    // CONFIG SET takes memory units; 0 lifts the limit.
    assert_eq!(
        c.call(&[b"CONFIG", b"SET", b"maxmemory", b"1gb"]),
        b"+OK\r\n"
    );
    assert_eq!(c.info("memory", "maxmemory_human"), "1.00G");
    assert_eq!(c.call(&[b"CONFIG", b"SET", b"maxmemory", b"0"]), b"+OK\r\n");
    assert_eq!(c.info("memory", "maxmemory"), "0");
}

/// One stream many times the limit: its older nodes leave memory for disk, so writes keep
/// being accepted (after brief refusals while the checkpoint writes them out), and every
/// entry, the oldest first, is read back from disk.
#[test]
fn a_stream_larger_than_the_limit_is_written_and_read_back_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.connect();
    let value = vec![b'x'; 1000];
    // 80 MB of entries, over three times the limit.
    let total: u64 = 80_000;
    // IDs of the entries accepted: a refused one leaves a gap, never reused.
    let mut accepted: Vec<u64> = Vec::new();
    let mut attempts = 0u64;
    let mut refusals = 0u64;
    let started = Instant::now();
    while (accepted.len() as u64) < total {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} entries written; used_memory {}",
            accepted.len(),
            c.used_memory()
        );
        let ids: Vec<u64> = (attempts + 1..=attempts + 500).collect();
        attempts += 500;
        let batch: Vec<_> = ids
            .iter()
            .map(|i| xadd(b"big", format!("{i}-1").as_bytes(), &value))
            .collect();
        let mut refused = false;
        for (id, r) in ids.iter().zip(c.pipeline(&batch)) {
            if r.starts_with(b"$") {
                accepted.push(*id);
            } else {
                assert_eq!(text(&r), text(OOM));
                refusals += 1;
                refused = true;
            }
        }
        if refused {
            // Refused: give the checkpoint time to move nodes to disk, then go on.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let used = c.used_memory();
    let len = accepted.len();
    eprintln!("{len} entries, {refusals} refusals on the way, used_memory {used}");
    assert_eq!(
        c.call(&[b"XLEN", b"big"]),
        format!(":{len}\r\n").into_bytes()
    );

    // Every entry, read back in order, most of them from disk.
    let misses_before: u64 = c
        .info("persistence", "brooklet_stream_cache_misses")
        .parse()
        .unwrap();
    for chunk in accepted.chunks(1000) {
        let first = format!("{}-1", chunk[0]);
        let last = format!("{}-1", chunk[chunk.len() - 1]);
        let reply = c.call(&[b"XRANGE", b"big", first.as_bytes(), b"+", b"COUNT", b"1000"]);
        let body = text(&reply);
        assert!(
            body.starts_with(&format!(
                "*{}\r\n*2\r\n${}\r\n{first}\r\n",
                chunk.len(),
                first.len()
            )),
            "at {first}: {}",
            &body[..body.len().min(200)]
        );
        assert!(
            body.contains(&format!("${}\r\n{last}\r\n", last.len())),
            "no {last}"
        );
        assert_eq!(body.matches(&"x".repeat(1000)).count(), chunk.len());
    }
    let misses: u64 = c
        .info("persistence", "brooklet_stream_cache_misses")
        .parse()
        .unwrap();
    assert!(misses > misses_before, "no node was read back from disk");
    assert!(
        c.call(&[b"XADD", b"big", b"*", b"f", b"v"])
            .starts_with(b"$")
    );
}
