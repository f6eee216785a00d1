//! The binary's RDB side: a RESTOREd stream survives a SIGKILL whole, and `--import-rdb`
//! loads an RDB file the installed redis-server wrote (every stream feature, strings in each
//! encoding, deadlines, other types skipped, several databases), refusing a damaged or
//! truncated file without touching the data directory.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

const LIMIT: Duration = Duration::from_secs(20);

fn connect(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let conn = c.get_connection_with_timeout(LIMIT).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn
}

fn q(conn: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn start(dir: &std::path::Path) -> common::Spawned {
    common::spawn(
        Command::new(BIN).args(["--port", "0", "--dir"]).arg(dir),
        LIMIT,
    )
}

/// Streams with groups, consumers, pending entries (one delivered twice), deletions, a
/// group whose entries-read is unknown.
fn fill(c: &mut redis::Connection, key: &str) {
    for i in 1..=300 {
        let v = i.to_string();
        q(
            c,
            &[
                "XADD",
                key,
                &format!("7-{i}"),
                "f",
                &v,
                "g",
                &format!("v{i}"),
            ],
        );
    }
    q(c, &["XDEL", key, "7-3", "7-200"]);
    q(c, &["XGROUP", "CREATE", key, "g", "0"]);
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "10",
            "STREAMS",
            key,
            ">",
        ],
    );
    q(c, &["XCLAIM", key, "g", "c2", "0", "7-1", "7-2"]);
    q(c, &["XGROUP", "CREATE", key, "h", "7-250"]);
    q(c, &["XGROUP", "SETID", key, "h", "7-100"]);
}

fn dump(c: &mut redis::Connection, key: &str) -> Vec<u8> {
    match q(c, &["DUMP", key]) {
        redis::Value::BulkString(b) => b,
        v => panic!("DUMP: {v:?}"),
    }
}

#[test]
fn a_restored_stream_survives_sigkill_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    let mut c = connect(s.port);
    fill(&mut c, "src");
    let p = dump(&mut c, "src");
    let _: redis::Value = redis::cmd("RESTORE")
        .arg("copy")
        .arg(600_000)
        .arg(&p)
        .query(&mut c)
        .unwrap();
    let before = q(&mut c, &["XINFO", "STREAM", "copy", "FULL"]);
    // Over a longer stream with other groups, checkpointed into fjall first: none of its
    // records may be left behind.
    for i in 1..=500 {
        q(&mut c, &["XADD", "over", &format!("9-{i}"), "x", "y"]);
    }
    q(&mut c, &["XGROUP", "CREATE", "over", "other", "0"]);
    q(
        &mut c,
        &["XREADGROUP", "GROUP", "other", "z", "STREAMS", "over", ">"],
    );
    q(&mut c, &["SAVE"]);
    let _: redis::Value = redis::cmd("RESTORE")
        .arg("over")
        .arg(0)
        .arg(&p)
        .arg("REPLACE")
        .query(&mut c)
        .unwrap();
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let s = start(dir.path());
    let mut c = connect(s.port);
    assert_eq!(q(&mut c, &["XINFO", "STREAM", "copy", "FULL"]), before);
    assert_eq!(q(&mut c, &["XINFO", "STREAM", "over", "FULL"]), before);
    assert_eq!(
        q(&mut c, &["XRANGE", "over", "-", "+"]),
        q(&mut c, &["XRANGE", "copy", "-", "+"])
    );
    assert!(matches!(q(&mut c, &["PTTL", "copy"]), redis::Value::Int(n) if n > 0));
    assert_eq!(dump(&mut c, "copy"), p);
}

/// A redis-server in `dir` on a free port; None (with a note) when none is installed.
fn redis_server(dir: &std::path::Path) -> Option<(common::Running, u16)> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("redis-server is not installed: the import of its RDB file is skipped");
        return None;
    }
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
        // Every key then carries its idle time in the file (the IDLE opcode).
        .args(["--maxmemory-policy", "allkeys-lru"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = common::Running(child);
    let deadline = Instant::now() + LIMIT;
    loop {
        let up = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        if up.is_ok() {
            return Some((running, port));
        }
        assert!(Instant::now() < deadline, "redis-server did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn import(dir: &std::path::Path, rdb: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .arg("--import-rdb")
        .arg(rdb)
        .output()
        .unwrap()
}

#[test]
fn import_rdb_loads_what_redis_saved_and_refuses_damage() {
    let rdir = tempfile::tempdir().unwrap();
    let Some((_redis, port)) = redis_server(rdir.path()) else {
        return;
    };
    let mut r = connect(port);
    fill(&mut r, "s");
    q(&mut r, &["SET", "int", "42"]);
    q(&mut r, &["SET", "embstr", "short text"]);
    q(
        &mut r,
        &[
            "SET",
            "raw",
            "raw text that is longer than forty-four bytes, so raw",
        ],
    );
    q(
        &mut r,
        &["SET", "large", &"compress me please ".repeat(1000)],
    );
    q(&mut r, &["SET", "ttl", "v", "EX", "5000"]);
    q(&mut r, &["PEXPIRE", "s", "9000000"]);
    q(&mut r, &["RPUSH", "list", "a", "b"]);
    q(&mut r, &["HSET", "hash", "f", "v"]);
    q(&mut r, &["SELECT", "5"]);
    fill(&mut r, "s5");
    q(&mut r, &["SET", "k5", "v5"]);
    q(
        &mut r,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('one', function() return 1 end)",
        ],
    );
    q(&mut r, &["SAVE"]);
    let rdb = rdir.path().join("dump.rdb");

    // Damaged and truncated files are refused and leave the directory as it was.
    let bytes = std::fs::read(&rdb).unwrap();
    let bdir = tempfile::tempdir().unwrap();
    let data = bdir.path().join("data");
    for (name, bad) in [
        ("flipped.rdb", {
            let mut b = bytes.clone();
            b[bytes.len() / 2] ^= 0x10;
            b
        }),
        ("cut.rdb", bytes[..bytes.len() * 2 / 3].to_vec()),
    ] {
        let path = bdir.path().join(name);
        std::fs::write(&path, bad).unwrap();
        let out = import(&data, &path);
        assert!(!out.status.success(), "{name} was imported");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not valid"),
            "{out:?}"
        );
        assert!(!data.exists(), "{name} created the data directory");
    }

    let out = import(&data, &rdb);
    assert!(out.status.success(), "{out:?}");
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "db0: 1 stream",
        "db0: 5 string",
        "db5: 1 stream",
        "db5: 1 string",
        "skipped 1 list",
        "skipped 1 hash",
        "skipped 1 functions",
    ] {
        assert!(summary.contains(line), "{line} missing from:\n{summary}");
    }

    let s = start(&data);
    let mut b = connect(s.port);
    q(&mut r, &["SELECT", "0"]);
    for key in ["int", "embstr", "raw", "large"] {
        assert_eq!(q(&mut b, &["GET", key]), q(&mut r, &["GET", key]), "{key}");
    }
    let strip = |v: redis::Value| strip_extensions(v);
    assert_eq!(
        strip(q(&mut b, &["XINFO", "STREAM", "s", "FULL"])),
        strip(q(&mut r, &["XINFO", "STREAM", "s", "FULL"]))
    );
    let pexpiretime = |c: &mut redis::Connection, k: &str| q(c, &["PEXPIRETIME", k]);
    assert_eq!(pexpiretime(&mut b, "s"), pexpiretime(&mut r, "s"));
    assert_eq!(pexpiretime(&mut b, "ttl"), pexpiretime(&mut r, "ttl"));
    assert_eq!(q(&mut b, &["EXISTS", "list", "hash"]), redis::Value::Int(0));
    q(&mut b, &["SELECT", "5"]);
    q(&mut r, &["SELECT", "5"]);
    assert_eq!(
        strip(q(&mut b, &["XINFO", "STREAM", "s5", "FULL"])),
        strip(q(&mut r, &["XINFO", "STREAM", "s5", "FULL"]))
    );
    assert_eq!(q(&mut b, &["GET", "k5"]), q(&mut r, &["GET", "k5"]));
}

/// Brooklet's own XINFO fields (and `active-time`, which Redis 7.0 does not keep).
fn strip_extensions(v: redis::Value) -> redis::Value {
    const EXT: &[&str] = &[
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
    match v {
        redis::Value::Array(items) => {
            let ext = |x: &redis::Value| matches!(x, redis::Value::BulkString(b) if EXT.iter().any(|e| e.as_bytes() == &b[..]));
            let mut out = Vec::new();
            let mut i = 0;
            while i < items.len() {
                if items.len() % 2 == 0 && i % 2 == 0 && ext(&items[i]) {
                    i += 2;
                    continue;
                }
                out.push(strip_extensions(items[i].clone()));
                i += 1;
            }
            redis::Value::Array(out)
        }
        other => other,
    }
}
