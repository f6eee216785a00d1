//! Strings and key deadlines across a SIGKILL of the server process: every acknowledged
//! string write (APPEND's and SETRANGE's edits included) and deadline is there after the
//! restart, under `everysec` and `always`.

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
    out.push(q(c, &["GET", "edited"]));
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
        // Edited in place, each APPEND and SETRANGE logged as the bytes it writes.
        for i in 0..500 {
            q(&mut c, &["APPEND", "edited", &format!("{i};")]);
        }
        q(&mut c, &["SETRANGE", "edited", "3", "SET"]);
        q(&mut c, &["SETRANGE", "edited", "5000", "past the end"]);
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

/// What a client reads of the keys the stream/string test wrote.
fn mixed_state(c: &mut redis::Connection) -> Vec<redis::Value> {
    let mut out = Vec::new();
    for key in ["k", "j", "other"] {
        out.push(q(c, &["TYPE", key]));
        out.push(q(c, &["PEXPIRETIME", key]));
    }
    out.push(q(c, &["XRANGE", "k", "-", "+"]));
    out.push(q(c, &["GET", "j"]));
    out.push(q(c, &["GET", "other"]));
    for i in 0..2000 {
        out.push(q(c, &["GET", &format!("n{i}")]));
    }
    out
}

/// Keys turned from string to stream to string and back, with small segments so that
/// background checkpoints retire string records while more are logged, then SIGKILL:
/// the restart (and DEBUG RELOAD before it) reads back exactly the last state of each key.
#[test]
fn keys_turned_stream_and_string_replay_to_their_last_state_after_sigkill() {
    for policy in ["everysec", "always"] {
        let dir = tempfile::tempdir().unwrap();
        let spawn = || {
            common::spawn(
                Command::new(BIN)
                    .args(["--port", "0", "--appendfsync", policy])
                    .args(["--tail-log-segment-bytes", "4096"])
                    .args(["--enable-debug-command", "yes"])
                    .args(["--tail-log-checkpoint-bytes", "0", "--dir"])
                    .arg(dir.path()),
                LIMIT,
            )
        };
        let mut p = spawn();
        let mut c = connect(p.port);
        q(&mut c, &["SET", "k", "s1", "EX", "1000"]);
        q(&mut c, &["DEL", "k"]);
        q(&mut c, &["XADD", "k", "1-0", "f", "v"]);
        q(&mut c, &["EXPIRE", "k", "2000"]);
        q(&mut c, &["SET", "k", "s2", "KEEPTTL"]);
        q(&mut c, &["SET", "j", "a", "EX", "3000"]);
        for i in 0..1000 {
            q(&mut c, &["SET", &format!("n{i}"), &i.to_string()]);
        }
        q(&mut c, &["SAVE"]);
        q(&mut c, &["SET", "k", "s3", "PX", "500000"]);
        q(&mut c, &["DEL", "k"]);
        q(&mut c, &["XADD", "k", "2-0", "f", "w"]);
        q(&mut c, &["PEXPIRE", "k", "900000"]);
        q(&mut c, &["APPEND", "j", "b"]);
        q(&mut c, &["PERSIST", "j"]);
        q(&mut c, &["SET", "other", "1", "EX", "1000"]);
        q(&mut c, &["SET", "other", "2", "KEEPTTL"]);
        for i in 1000..2000 {
            q(&mut c, &["SET", &format!("n{i}"), &i.to_string()]);
            if i % 7 == 0 {
                q(&mut c, &["INCR", &format!("n{}", i - 1000)]);
            }
        }
        q(&mut c, &["DEL", "n5", "n1500"]);
        let before = mixed_state(&mut c);
        q(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(mixed_state(&mut c), before, "{policy}: DEBUG RELOAD");
        p.child.kill().unwrap();
        let _ = p.child.wait();
        let p = spawn();
        let mut c = connect(p.port);
        assert_eq!(mixed_state(&mut c), before, "{policy}: after SIGKILL");
    }
}

/// RENAME, COPY and MOVE of strings whose writes are still only in the tail log, and of a
/// stream onto a name a logged string had: after a SIGKILL each name holds what the last
/// acknowledged command left there (no logged write of an old name comes back, none under a
/// new name replays over what the move put there).
#[test]
fn moved_strings_replay_to_their_last_state_after_sigkill() {
    for policy in ["everysec", "always"] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = start(dir.path(), policy);
        let mut c = connect(p.port);
        q(&mut c, &["SET", "a", "1", "EX", "1000"]);
        q(&mut c, &["SET", "b", "old b"]);
        q(&mut c, &["RENAME", "a", "b"]);
        q(&mut c, &["SET", "c", "3"]);
        q(&mut c, &["COPY", "c", "d"]);
        q(&mut c, &["SET", "d2", "old d2"]);
        q(&mut c, &["COPY", "c", "d2", "REPLACE"]);
        q(&mut c, &["SET", "e", "5"]);
        q(&mut c, &["MOVE", "e", "1"]);
        q(&mut c, &["SET", "s", "string first"]);
        q(&mut c, &["DEL", "s"]);
        q(&mut c, &["XADD", "st", "1-0", "f", "v"]);
        q(&mut c, &["SET", "s", "string again"]);
        q(&mut c, &["RENAME", "st", "s"]);
        q(&mut c, &["XADD", "s", "2-0", "f", "w"]);
        let look = |c: &mut redis::Connection| {
            let mut out = vec![q(c, &["MGET", "a", "b", "c", "d", "d2", "e"])];
            out.push(q(c, &["PEXPIRETIME", "b"]));
            out.push(q(c, &["TYPE", "s"]));
            out.push(q(c, &["XLEN", "s"]));
            out.push(q(c, &["EXISTS", "st"]));
            q(c, &["SELECT", "1"]);
            out.push(q(c, &["GET", "e"]));
            q(c, &["SELECT", "0"]);
            out
        };
        let before = look(&mut c);
        p.child.kill().unwrap();
        let _ = p.child.wait();
        let p = start(dir.path(), policy);
        let mut c = connect(p.port);
        assert_eq!(look(&mut c), before, "{policy}");
    }
}
