//! DUMP and RESTORE: payloads in Redis's serialization format, their errors, TTL options,
//! streams with groups, consumers and pending entries kept whole (also across DEBUG
//! RELOAD), and payloads exchanged both ways with a real redis-server when one is installed.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brooklet::{TestServer, int, query, run};
use redis::Value;

const WAIT: Duration = Duration::from_secs(10);

fn dump(c: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    match redis::cmd("DUMP").arg(key).query::<Value>(c).unwrap() {
        Value::BulkString(b) => Some(b),
        Value::Nil => None,
        v => panic!("DUMP {key}: {v:?}"),
    }
}

fn restore(
    c: &mut redis::Connection,
    key: &str,
    ttl: i64,
    payload: &[u8],
    opts: &[&str],
) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd("RESTORE");
    cmd.arg(key).arg(ttl).arg(payload);
    for o in opts {
        cmd.arg(*o);
    }
    cmd.query(c)
}

fn restore_err(
    c: &mut redis::Connection,
    key: &str,
    ttl: &str,
    payload: &[u8],
    opts: &[&str],
) -> String {
    let mut cmd = redis::cmd("RESTORE");
    cmd.arg(key).arg(ttl).arg(payload);
    for o in opts {
        cmd.arg(*o);
    }
    match cmd.query::<Value>(c) {
        Ok(v) => panic!("RESTORE {key} succeeded: {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

/// Brooklet's own fields in XINFO STREAM FULL, which Redis 7.0's format has no place for
/// (or, for `active-time`, which it does not keep before 7.2).
const EXTENSIONS: &[&str] = &[
    "idmp-duration",
    "idmp-maxsize",
    "pids-tracked",
    "iids-tracked",
    "iids-added",
    "iids-duplicates",
    "max-age",
    "max-age-policy",
    "nacked-count",
    "active-time",
    "entries-delivered",
    "entries-acked",
    "entries-nacked",
    "entries-dead-lettered",
    "dlq-key",
    "dlq-max-deliveries",
];

/// `v` with the key-value pairs named in `EXTENSIONS` taken out of every map-shaped array.
fn strip(v: Value) -> Value {
    match v {
        Value::Array(items) => {
            let is_key = |x: &Value| matches!(x, Value::BulkString(b) if EXTENSIONS.iter().any(|e| e.as_bytes() == &b[..]));
            let mut out = Vec::new();
            let mut i = 0;
            while i < items.len() {
                if items.len() % 2 == 0 && i % 2 == 0 && is_key(&items[i]) {
                    i += 2;
                    continue;
                }
                out.push(strip(items[i].clone()));
                i += 1;
            }
            Value::Array(out)
        }
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .filter(|(k, _)| !matches!(k, Value::BulkString(b) if EXTENSIONS.iter().any(|e| e.as_bytes() == &b[..])))
                .map(|(k, v)| (k, strip(v)))
                .collect(),
        ),
        other => other,
    }
}

fn full(c: &mut redis::Connection, key: &str) -> Value {
    run(c, &["XINFO", "STREAM", key, "FULL"])
}

/// A stream with every feature RDB carries: several nodes, field sets that differ from the
/// node's first entry, integer-looking values, deletions, two groups, consumers with and
/// without pending entries, repeated deliveries, a group with unknown entries-read.
fn build_stream(c: &mut redis::Connection, key: &str) {
    for i in 1..=250 {
        let v = i.to_string();
        if i % 7 == 0 {
            run(c, &["XADD", key, &format!("1000-{i}"), "other", &v]);
        } else {
            run(
                c,
                &[
                    "XADD",
                    key,
                    &format!("1000-{i}"),
                    "f",
                    &v,
                    "name",
                    &format!("n{i}"),
                ],
            );
        }
    }
    run(c, &["XADD", key, "2000-1", "big", &"x".repeat(300)]);
    run(c, &["XDEL", key, "1000-5", "1000-150"]);
    run(c, &["XGROUP", "CREATE", key, "g1", "0"]);
    run(c, &["XGROUP", "CREATE", key, "g2", "1000-100"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            key,
            ">",
        ],
    );
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            key,
            ">",
        ],
    );
    run(c, &["XCLAIM", key, "g1", "bob", "0", "1000-1"]);
    run(c, &["XGROUP", "CREATECONSUMER", key, "g2", "carol"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g2",
            "dave",
            "COUNT",
            "2",
            "STREAMS",
            key,
            ">",
        ],
    );
    run(c, &["XGROUP", "SETID", key, "g2", "1000-120"]);
}

#[test]
fn dump_of_a_missing_key_is_nil_in_both_protocols() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        assert_eq!(dump(&mut c, "nope"), None);
    }
}

#[test]
fn string_payloads_round_trip_with_their_encodings_and_ttl() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let big = "compressible ".repeat(200);
    for (k, v) in [
        ("raw", "hello"),
        ("int", "12345"),
        ("neg", "-7"),
        ("wide", "123456789012"),
        ("big", big.as_str()),
    ] {
        run(&mut c, &["SET", k, v]);
        let p = dump(&mut c, k).unwrap();
        restore(&mut c, &format!("{k}2"), 0, &p, &[]).unwrap();
        assert_eq!(
            run(&mut c, &["GET", &format!("{k}2")]),
            Value::BulkString(v.as_bytes().to_vec())
        );
        assert_eq!(int(&mut c, &["TTL", &format!("{k}2")]), -1);
    }
    // Redis 7.0.15's DUMP of "hello", byte for byte.
    assert_eq!(
        dump(&mut c, "raw").unwrap(),
        b"\x00\x05hello\x0a\x00\x63\x72\xdf\x76\x65\x34\x20\x0a"
    );
    let p = dump(&mut c, "raw").unwrap();
    restore(&mut c, "t", 100_000, &p, &[]).unwrap();
    let pttl = int(&mut c, &["PTTL", "t"]);
    assert!((90_000..=100_000).contains(&pttl), "{pttl}");
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 500_000;
    restore(&mut c, "abs", at, &p, &["ABSTTL"]).unwrap();
    assert_eq!(int(&mut c, &["PEXPIRETIME", "abs"]), at);
    restore(&mut c, "idle", 0, &p, &["IDLETIME", "10"]).unwrap();
    let idle = int(&mut c, &["OBJECT", "IDLETIME", "idle"]);
    assert!((10..=11).contains(&idle), "{idle}");
    restore(&mut c, "freq", 0, &p, &["FREQ", "5"]).unwrap();
}

#[test]
fn restore_errors_are_redis_texts_and_change_nothing() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["SET", "k", "v"]);
    let p = dump(&mut c, "k").unwrap();
    assert_eq!(
        restore_err(&mut c, "k", "0", &p, &[]),
        "BUSYKEY Target key name already exists."
    );
    assert_eq!(
        restore_err(&mut c, "n", "-1", &p, &[]),
        "ERR Invalid TTL value, must be >= 0"
    );
    assert_eq!(
        restore_err(&mut c, "n", "x", &p, &[]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        restore_err(&mut c, "n", "0", &p, &["BOGUS"]),
        "ERR syntax error"
    );
    assert_eq!(
        restore_err(&mut c, "n", "0", &p, &["FREQ", "300"]),
        "ERR Invalid FREQ value, must be >= 0 and <= 255"
    );
    assert_eq!(
        restore_err(&mut c, "n", "0", &p, &["IDLETIME", "-1"]),
        "ERR Invalid IDLETIME value, must be >= 0"
    );
    let mut flipped = p.clone();
    flipped[3] ^= 1;
    assert_eq!(
        restore_err(&mut c, "n", "0", &flipped, &[]),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(
        restore_err(&mut c, "n", "0", &p[..p.len() - 1], &[]),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(
        restore_err(&mut c, "n", "0", b"short", &[]),
        "ERR DUMP payload version or checksum are wrong"
    );
    // A stream payload cut short, resealed with a right checksum: the format is wrong.
    build_stream(&mut c, "s");
    let sp = dump(&mut c, "s").unwrap();
    let body = &sp[..sp.len() - 10];
    for cut in [1, 20, body.len() / 2, body.len() - 1] {
        let resealed = reseal(&body[..cut], &sp[sp.len() - 10..sp.len() - 8]);
        assert_eq!(
            restore_err(&mut c, "s", "0", &resealed, &["REPLACE"]),
            "ERR Bad data format"
        );
    }
    assert_eq!(run(&mut c, &["GET", "k"]), Value::BulkString(b"v".to_vec()));
    assert_eq!(int(&mut c, &["EXISTS", "n"]), 0);
    assert_eq!(
        dump(&mut c, "s").unwrap(),
        sp,
        "a refused REPLACE changed the stream"
    );
}

/// `body` with a DUMP footer: `version` (2 bytes) and the CRC-64 over both.
fn reseal(body: &[u8], version: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(version);
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// CRC-64 Jones, reflected, as Redis's crc64.c (written out here so the test checks the
/// server's, not shares it).
fn crc64(bytes: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in bytes {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn replace_with_a_past_deadline_deletes_the_key() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["SET", "k", "v"]);
    let p = dump(&mut c, "k").unwrap();
    assert_eq!(
        restore(&mut c, "k", 1, &p, &["REPLACE", "ABSTTL"]).unwrap(),
        Value::Okay
    );
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
    assert_eq!(
        restore(&mut c, "gone", 1, &p, &["ABSTTL"]).unwrap(),
        Value::Okay
    );
    assert_eq!(int(&mut c, &["EXISTS", "gone"]), 0);
}

#[test]
fn restore_replaces_strings_with_streams_and_back() {
    let server = TestServer::start();
    let mut c = server.client(false);
    build_stream(&mut c, "s");
    run(&mut c, &["SET", "str", "v"]);
    let sp = dump(&mut c, "s").unwrap();
    let strp = dump(&mut c, "str").unwrap();
    restore(&mut c, "str", 0, &sp, &["REPLACE"]).unwrap();
    assert_eq!(strip(full(&mut c, "str")), strip(full(&mut c, "s")));
    restore(&mut c, "s", 0, &strp, &["REPLACE"]).unwrap();
    assert_eq!(run(&mut c, &["GET", "s"]), Value::BulkString(b"v".to_vec()));
    run(&mut c, &["XADD", "other", "1-1", "a", "b"]);
    restore(&mut c, "other", 0, &sp, &["REPLACE"]).unwrap();
    assert_eq!(strip(full(&mut c, "other")), strip(full(&mut c, "str")));
    assert_eq!(int(&mut c, &["XLEN", "other"]), 249);
}

#[test]
fn a_restored_stream_is_whole_and_survives_debug_reload() {
    let server = TestServer::start_with(|c| c.enable_debug_command = "yes".into());
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        build_stream(&mut c, "s");
        let p = dump(&mut c, "s").unwrap();
        restore(&mut c, "copy", 60_000, &p, &[]).unwrap();
        assert_eq!(strip(full(&mut c, "copy")), strip(full(&mut c, "s")));
        // What Brooklet writes, it reads back to the same payload.
        assert_eq!(dump(&mut c, "copy").unwrap(), p);
        let before = full(&mut c, "copy");
        run(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(full(&mut c, "copy"), before);
        assert!(int(&mut c, &["PTTL", "copy"]) > 0);
        // The restored stream takes new writes as any other.
        run(&mut c, &["XADD", "copy", "*", "f", "v"]);
        run(&mut c, &["XACK", "copy", "g1", "1000-1"]);
        let after = full(&mut c, "copy");
        run(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(full(&mut c, "copy"), after);
    }
}

#[test]
fn restore_publishes_its_keyspace_event() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    run(&mut c, &["SET", "k", "v"]);
    let p = dump(&mut c, "k").unwrap();
    let mut subscriber = server.client(false);
    let mut sub = subscriber.as_pubsub();
    sub.psubscribe("__keyevent@*").unwrap();
    sub.set_read_timeout(Some(WAIT)).unwrap();
    restore(&mut c, "k2", 0, &p, &[]).unwrap();
    let m = sub.get_message().unwrap();
    let payload: String = m.get_payload().unwrap();
    assert_eq!(
        format!("{} {payload}", m.get_channel_name()),
        "__keyevent@0__:restore k2"
    );
}

/// A redis-server started for one test on a free port in a temporary directory, stopped
/// when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// None, with a note, when redis-server is not installed.
    fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("redis-server is not installed: the exchange with Redis is skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut c) = redis.try_client()
                && query(&mut c, &["PING"]).is_ok()
            {
                return Some(redis);
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_client(&self) -> redis::RedisResult<redis::Connection> {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        let conn = c.get_connection_with_timeout(WAIT)?;
        conn.set_read_timeout(Some(WAIT))?;
        Ok(conn)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn payloads_cross_between_redis_and_brooklet_both_ways() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let mut r = redis.try_client().unwrap();
    let server = TestServer::start();
    let mut b = server.client(false);
    // Redis to Brooklet.
    build_stream(&mut r, "s");
    run(&mut r, &["SET", "str", "hello"]);
    run(&mut r, &["SET", "num", "4242"]);
    run(&mut r, &["SET", "long", &"abc".repeat(500)]);
    for key in ["s", "str", "num", "long"] {
        let p = dump(&mut r, key).unwrap();
        restore(&mut b, key, 0, &p, &[]).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    assert_eq!(strip(full(&mut b, "s")), strip(full(&mut r, "s")));
    for key in ["str", "num", "long"] {
        assert_eq!(run(&mut b, &["GET", key]), run(&mut r, &["GET", key]));
    }
    // Brooklet to Redis: a stream built in Brooklet, and the one Redis sent.
    build_stream(&mut b, "mine");
    for key in ["mine", "s", "long"] {
        let p = dump(&mut b, key).unwrap();
        restore(&mut r, &format!("{key}-back"), 0, &p, &[])
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    assert_eq!(
        strip(full(&mut r, "mine-back")),
        strip(full(&mut b, "mine"))
    );
    assert_eq!(full(&mut r, "s-back"), full(&mut r, "s"));
    assert_eq!(
        run(&mut r, &["GET", "long-back"]),
        run(&mut r, &["GET", "long"])
    );
    // A damaged payload from Brooklet is refused by Redis as Brooklet refuses Redis's.
    let mut p = dump(&mut b, "mine").unwrap();
    p[10] ^= 1;
    let refused = restore(&mut r, "x", 0, &p, &[]).unwrap_err();
    assert_eq!(
        refused.detail(),
        Some("DUMP payload version or checksum are wrong")
    );
}

#[test]
fn entries_xnack_released_stay_behind_and_the_rest_crosses() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for i in 1..=5 {
        run(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
    );
    run(
        &mut c,
        &["XNACK", "s", "g", "FAIL", "IDS", "2", "2-0", "4-0"],
    );
    let p = dump(&mut c, "s").unwrap();
    restore(&mut c, "copy", 0, &p, &[]).unwrap();
    // Redis requires an owner for every pending entry: the released ones are not written.
    let pending = run(&mut c, &["XPENDING", "copy", "g", "-", "+", "10"]);
    let Value::Array(rows) = pending else {
        panic!("{pending:?}")
    };
    let ids: Vec<Value> = rows
        .into_iter()
        .map(|r| match r {
            Value::Array(mut f) => f.remove(0),
            v => v,
        })
        .collect();
    let want: Vec<Value> = ["1-0", "3-0", "5-0"]
        .iter()
        .map(|s| Value::BulkString(s.as_bytes().to_vec()))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(int(&mut c, &["XLEN", "copy"]), 5);
}
