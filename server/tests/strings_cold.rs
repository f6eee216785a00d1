//! Start-up loads strings' keys, not their values: after a restart the values stay on disk
//! (used_memory does not grow with them), and every command that reads, changes, moves or
//! reports a string reads its value back first. A deadline set on such a string, then
//! checkpointed, keeps the value on disk.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

mod common;

use common::BIN;
use redis::Value;

const LIMIT: Duration = Duration::from_secs(30);
const KEYS: usize = 400;
const VALUE_BYTES: usize = 64 * 1024;

fn connect(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let conn = c.get_connection_with_timeout(LIMIT).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn
}

fn q(conn: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn start(dir: &std::path::Path) -> common::Spawned {
    common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--appendfsync", "everysec", "--dir"])
            .arg(dir),
        LIMIT,
    )
}

/// SHUTDOWN (which checkpoints everything into fjall), then waits for the process.
fn shutdown(mut s: common::Spawned, c: &mut redis::Connection) {
    let _ = redis::cmd("SHUTDOWN").query::<Value>(c);
    s.child.0.wait().unwrap();
}

fn used_memory(c: &mut redis::Connection) -> i64 {
    let Value::BulkString(info) = q(c, &["INFO", "memory"]) else {
        panic!("INFO is not a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn value(i: usize) -> String {
    format!("{i:08}").repeat(VALUE_BYTES / 8)
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// Asserts that GET `key` answers `expected`, saying only lengths when it does not.
fn assert_get(c: &mut redis::Connection, key: &str, expected: &str) {
    match q(c, &["GET", key]) {
        Value::BulkString(v) if v == expected.as_bytes() => {}
        Value::BulkString(v) => panic!(
            "GET {key}: {} bytes, not the {} expected",
            v.len(),
            expected.len()
        ),
        other => panic!("GET {key}: {other:?}"),
    }
}

#[test]
fn strings_stay_on_disk_after_a_restart_until_a_command_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let mut c = connect(s.port);
    let empty = used_memory(&mut c);
    for i in 0..KEYS {
        q(&mut c, &["SET", &format!("k{i}"), &value(i)]);
    }
    q(&mut c, &["SET", "n", "41"]);
    q(&mut c, &["SET", "app", "ab"]);
    shutdown(s, &mut c);

    let s = start(dir.path());
    let mut c = connect(s.port);
    let grown = used_memory(&mut c) - empty;
    let total = (KEYS * VALUE_BYTES) as i64;
    // Reading the keys fills fjall's block cache (8 MiB at most), nothing else.
    assert!(
        grown < total / 2,
        "used_memory grew by {grown} bytes at start-up for {total} bytes of values"
    );
    assert_eq!(q(&mut c, &["DBSIZE"]), Value::Int(KEYS as i64 + 2));
    assert_eq!(
        q(&mut c, &["TYPE", "k0"]),
        Value::SimpleString("string".into())
    );
    assert_get(&mut c, "k0", &value(0));
    assert_eq!(q(&mut c, &["STRLEN", "k1"]), Value::Int(VALUE_BYTES as i64));
    assert_eq!(
        q(&mut c, &["MGET", "k2", "missing", "n"]),
        Value::Array(vec![bulk(&value(2)), Value::Nil, bulk("41")])
    );
    assert_eq!(q(&mut c, &["GETRANGE", "k3", "0", "7"]), bulk("00000003"));
    assert_eq!(q(&mut c, &["APPEND", "app", "c"]), Value::Int(3));
    assert_eq!(q(&mut c, &["INCR", "n"]), Value::Int(42));
    assert_eq!(q(&mut c, &["GETDEL", "k4"]), bulk(&value(4)));
    assert_eq!(q(&mut c, &["SET", "k5", "new", "GET"]), bulk(&value(5)));
    assert_eq!(q(&mut c, &["OBJECT", "ENCODING", "k6"]), bulk("raw"));
    let Value::Int(usage) = q(&mut c, &["MEMORY", "USAGE", "k6"]) else {
        panic!("MEMORY USAGE is not an integer");
    };
    assert!(usage > VALUE_BYTES as i64, "MEMORY USAGE {usage}");
    q(&mut c, &["RENAME", "k7", "k7b"]);
    assert_eq!(q(&mut c, &["COPY", "k8", "k8c"]), Value::Int(1));
    assert_eq!(q(&mut c, &["MOVE", "k10", "1"]), Value::Int(1));
    // A deadline on a string still on disk: the checkpoint writes the deadline and must
    // leave the value where it is.
    assert_eq!(q(&mut c, &["EXPIRE", "k9", "100000"]), Value::Int(1));
    q(&mut c, &["SAVE"]);
    shutdown(s, &mut c);

    let s = start(dir.path());
    let mut c = connect(s.port);
    assert_get(&mut c, "k9", &value(9));
    let Value::Int(ttl) = q(&mut c, &["TTL", "k9"]) else {
        panic!("TTL is not an integer");
    };
    assert!(ttl > 99_000, "TTL {ttl}");
    assert_get(&mut c, "app", "abc");
    assert_get(&mut c, "n", "42");
    assert_eq!(q(&mut c, &["EXISTS", "k4", "k7"]), Value::Int(0));
    assert_get(&mut c, "k5", "new");
    assert_get(&mut c, "k7b", &value(7));
    assert_get(&mut c, "k8", &value(8));
    assert_get(&mut c, "k8c", &value(8));
    assert_get(&mut c, "k11", &value(11));
    q(&mut c, &["SELECT", "1"]);
    assert_get(&mut c, "k10", &value(10));
    shutdown(s, &mut c);
}
