//! Strings and key deadlines across a SIGKILL of the server process: every acknowledged
//! string write and deadline is there after the restart, under `everysec` and `always`.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

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

fn start(dir: &std::path::Path, policy: &str) -> common::Spawned {
    common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--appendfsync", policy, "--dir"])
            .arg(dir),
        LIMIT,
    )
}

/// What a client reads of the keys the test wrote.
fn state(c: &mut redis::Connection) -> Vec<redis::Value> {
    let mut out = Vec::new();
    for i in 0..200 {
        out.push(q(c, &["GET", &format!("k{i}")]));
    }
    out.push(q(c, &["MGET", "m1", "m2", "n", "gone", "was-stream"]));
    out.push(q(c, &["PEXPIRETIME", "k7"]));
    out.push(q(c, &["PEXPIRETIME", "stream"]));
    out.push(q(c, &["XLEN", "stream"]));
    out.push(q(c, &["EXISTS", "short"]));
    out
}

#[test]
fn string_writes_and_deadlines_survive_sigkill() {
    for policy in ["everysec", "always"] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = start(dir.path(), policy);
        let mut c = connect(p.port);
        for i in 0..200 {
            q(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")]);
        }
        q(&mut c, &["SET", "k7", "v", "EX", "1000"]);
        q(&mut c, &["APPEND", "k8", "+more"]);
        q(&mut c, &["MSET", "m1", "a", "m2", "b"]);
        q(&mut c, &["INCRBY", "n", "5"]);
        q(&mut c, &["SET", "gone", "x"]);
        q(&mut c, &["DEL", "gone"]);
        q(&mut c, &["XADD", "was-stream", "1-0", "f", "v"]);
        q(&mut c, &["SET", "was-stream", "string now"]);
        q(&mut c, &["XADD", "stream", "1-0", "f", "v"]);
        q(&mut c, &["EXPIRE", "stream", "1000"]);
        q(&mut c, &["SET", "short", "v", "PX", "300"]);
        let mut before = state(&mut c);
        // `short` is gone after the restart: its deadline passes meanwhile.
        *before.last_mut().unwrap() = redis::Value::Int(0);
        p.child.kill().unwrap();
        let _ = p.child.wait();
        std::thread::sleep(Duration::from_millis(300));
        let p = start(dir.path(), policy);
        let mut c = connect(p.port);
        assert_eq!(state(&mut c), before, "{policy}");
    }
}
