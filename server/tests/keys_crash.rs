//! RENAME, MOVE and SWAPDB of a stream with consumer groups across a SIGKILL of the server
//! process at any moment: after the restart the stream is under exactly one name, whole,
//! never lost and never under both.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

fn q(conn: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn)
}

fn start(dir: &std::path::Path) -> common::Spawned {
    common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--dir"])
            .arg(dir)
            .args(["--tail-log-segment-bytes", "65536"]),
        LIMIT,
    )
}

/// A stream of `n` entries and more, in fjall and in the tail log both: groups, pending entries, appends after.
fn fill(c: &mut redis::Connection, n: usize) {
    let mut pipe = redis::pipe();
    for i in 1..=n {
        pipe.cmd("XADD")
            .arg("a")
            .arg(format!("{i}-0"))
            .arg("f")
            .arg("x".repeat(100));
    }
    let _: redis::Value = pipe.query(c).unwrap();
    q(c, &["XGROUP", "CREATE", "a", "g", "0"]).unwrap();
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
            "a",
            ">",
        ],
    )
    .unwrap();
    q(c, &["XACK", "a", "g", "3-0"]).unwrap();
    q(c, &["XDEL", "a", "5-0"]).unwrap();
    for i in n + 1..=n + 20 {
        q(c, &["XADD", "a", &format!("{i}-0"), "f", "tail"]).unwrap();
    }
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "COUNT",
            "5",
            "STREAMS",
            "a",
            ">",
        ],
    )
    .unwrap();
    q(c, &["EXPIRE", "a", "100000"]).unwrap();
}

/// The stream as a client sees it, whatever its name (seen-times are fixed: no reads).
fn view(c: &mut redis::Connection, key: &str) -> Vec<redis::Value> {
    vec![
        q(c, &["XINFO", "STREAM", key, "FULL"]).unwrap(),
        q(c, &["XPENDING", key, "g"]).unwrap(),
        q(c, &["XLEN", key]).unwrap(),
    ]
}

fn exists(c: &mut redis::Connection, key: &str) -> bool {
    q(c, &["EXISTS", key]).unwrap() == redis::Value::Int(1)
}

#[test]
fn a_renamed_stream_is_under_exactly_one_name_after_sigkill() {
    // The larger stream's records are copied in several batches (over 4,096 records).
    for (round, n) in [(0u64, 300), (1, 300), (2, 6000), (3, 6000), (4, 6000)] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = start(dir.path());
        let mut c = connect(p.port);
        fill(&mut c, n);
        let expected = view(&mut c, "a");
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (done, stop) = (done.clone(), stop.clone());
            let port = p.port;
            std::thread::spawn(move || {
                let mut c = connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (from, to) = if n.is_multiple_of(2) {
                        ("a", "b")
                    } else {
                        ("b", "a")
                    };
                    if q(&mut c, &["RENAME", from, to]).is_err() {
                        return;
                    }
                    n += 1;
                    done.store(n, Ordering::Relaxed);
                }
            })
        };
        // Kill at a different moment each round, mid-stream of renames.
        std::thread::sleep(Duration::from_millis(30 + 47 * round));
        while done.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let acked = done.load(Ordering::Relaxed);
        p.child.kill().unwrap();
        let _ = p.child.wait();
        stop.store(true, Ordering::Relaxed);
        let _ = worker.join();
        let after = done.load(Ordering::Relaxed);
        assert!(acked > 0, "no rename was acknowledged before the kill");
        let p = start(dir.path());
        let mut c = connect(p.port);
        let (a, b) = (exists(&mut c, "a"), exists(&mut c, "b"));
        assert!(a ^ b, "round {round}: a={a} b={b}");
        let name = if a { "a" } else { "b" };
        // The name is that of the last acknowledged rename, or of the one in flight.
        let names: Vec<&str> = (acked..=after + 1)
            .map(|n| if n.is_multiple_of(2) { "a" } else { "b" })
            .collect();
        assert!(
            names.contains(&name),
            "round {round}: {name} after {acked}..{after}"
        );
        assert_eq!(view(&mut c, name), expected, "round {round}");
        let ttl = q(&mut c, &["TTL", name]).unwrap();
        assert!(matches!(ttl, redis::Value::Int(t) if t > 99_000), "{ttl:?}");
    }
}

#[test]
fn move_and_swapdb_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start(dir.path());
    let mut c = connect(p.port);
    fill(&mut c, 5000);
    let expected = view(&mut c, "a");
    q(&mut c, &["MOVE", "a", "1"]).unwrap();
    q(&mut c, &["SWAPDB", "1", "2"]).unwrap();
    q(&mut c, &["COPY", "a", "a", "DB", "0"]).unwrap_err();
    q(&mut c, &["SELECT", "2"]).unwrap();
    q(&mut c, &["COPY", "a", "copy", "DB", "3"]).unwrap();
    // Replacing a stream with groups: its records go in the same batch.
    q(&mut c, &["SELECT", "5"]).unwrap();
    for i in 1..=50 {
        q(&mut c, &["XADD", "small", &format!("{i}-0"), "f", "v"]).unwrap();
        q(&mut c, &["XADD", "victim", &format!("{i}-1"), "f", "w"]).unwrap();
    }
    q(&mut c, &["XGROUP", "CREATE", "victim", "gv", "0"]).unwrap();
    q(
        &mut c,
        &["XREADGROUP", "GROUP", "gv", "c", "STREAMS", "victim", ">"],
    )
    .unwrap();
    q(&mut c, &["EXPIRE", "victim", "500"]).unwrap();
    let small = vec![
        q(&mut c, &["XINFO", "STREAM", "small", "FULL"]).unwrap(),
        q(&mut c, &["XINFO", "GROUPS", "small"]).unwrap(),
    ];
    q(&mut c, &["RENAME", "small", "victim"]).unwrap();
    q(&mut c, &["SET", "str", "text"]).unwrap();
    q(&mut c, &["XADD", "other", "1-0", "f", "v"]).unwrap();
    q(&mut c, &["RENAME", "str", "other"]).unwrap();
    p.child.kill().unwrap();
    let _ = p.child.wait();
    let p = start(dir.path());
    let mut c = connect(p.port);
    assert!(!exists(&mut c, "a"));
    q(&mut c, &["SELECT", "1"]).unwrap();
    assert!(!exists(&mut c, "a"));
    q(&mut c, &["SELECT", "2"]).unwrap();
    assert_eq!(view(&mut c, "a"), expected);
    q(&mut c, &["SELECT", "3"]).unwrap();
    assert_eq!(view(&mut c, "copy"), expected);
    q(&mut c, &["SELECT", "5"]).unwrap();
    assert!(!exists(&mut c, "small"));
    let victim = vec![
        q(&mut c, &["XINFO", "STREAM", "victim", "FULL"]).unwrap(),
        q(&mut c, &["XINFO", "GROUPS", "victim"]).unwrap(),
    ];
    assert_eq!(victim, small);
    assert_eq!(
        q(&mut c, &["TTL", "victim"]).unwrap(),
        redis::Value::Int(-1)
    );
    assert_eq!(
        q(&mut c, &["GET", "other"]).unwrap(),
        redis::Value::BulkString(b"text".to_vec())
    );
}

#[test]
fn appends_after_a_move_survive_a_checkpoint_then_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start(dir.path());
    let mut c = connect(p.port);
    let run = |c: &mut redis::Connection, args: &[&str]| q(c, args).unwrap();
    run(&mut c, &["XADD", "y", "1-1", "f", "v"]);
    run(&mut c, &["XADD", "m", "1-1", "f", "v"]);
    run(&mut c, &["SWAPDB", "0", "1"]);
    run(&mut c, &["SELECT", "1"]);
    run(&mut c, &["XADD", "y", "2-1", "after", "swapdb"]);
    run(&mut c, &["MOVE", "m", "2"]);
    run(&mut c, &["SELECT", "2"]);
    run(&mut c, &["XADD", "m", "2-1", "after", "move"]);
    run(&mut c, &["SELECT", "1"]);
    run(&mut c, &["XADD", "x", "1-1", "f", "v"]);
    run(&mut c, &["RENAME", "x", "x2"]);
    run(&mut c, &["XADD", "x2", "2-1", "after", "rename"]);
    run(&mut c, &["XGROUP", "CREATE", "x2", "g", "0"]);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "x2", ">"],
    );
    run(&mut c, &["COPY", "x2", "copy"]);
    run(&mut c, &["XACK", "copy", "g", "1-1"]);
    // SAVE closes the open segment and retires it once the checkpoint wrote the streams
    // listed in it: the appends above must be listed under the names they were made under.
    run(&mut c, &["SAVE"]);
    p.child.kill().unwrap();
    let _ = p.child.wait();
    let p = start(dir.path());
    let mut c = connect(p.port);
    run(&mut c, &["SELECT", "1"]);
    assert_eq!(run(&mut c, &["XLEN", "y"]), redis::Value::Int(2));
    assert_eq!(run(&mut c, &["XLEN", "x2"]), redis::Value::Int(2));
    // An entry acknowledged in the copy stays acknowledged; the original still has it.
    let pending = |c: &mut redis::Connection, key: &str| match run(c, &["XPENDING", key, "g"]) {
        redis::Value::Array(v) => v[0].clone(),
        v => panic!("{v:?}"),
    };
    assert_eq!(pending(&mut c, "copy"), redis::Value::Int(1));
    assert_eq!(pending(&mut c, "x2"), redis::Value::Int(2));
    run(&mut c, &["SELECT", "2"]);
    assert_eq!(run(&mut c, &["XLEN", "m"]), redis::Value::Int(2));
}
