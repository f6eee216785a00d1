//! Dead-lettering survives a SIGKILL in the middle of claim loops: after the restart every
//! entry of the source streams is exactly one of acknowledged, pending or dead-lettered
//! (never both pending and dead-lettered, never dead-lettered twice, never lost), and the
//! group counters agree with what the streams hold.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use common::BIN;
use redis::Value;

const LIMIT: Duration = Duration::from_secs(20);
const SOURCES: [&str; 3] = ["jobs:a", "jobs:b", "jobs:c"];
const ENTRIES: usize = 200;

fn start(dir: &std::path::Path, extra: &[&str]) -> (common::Running, u16) {
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--dir"])
            .arg(dir)
            .args(extra),
        LIMIT,
    );
    (s.child, s.port)
}

fn connect(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection_with_timeout(LIMIT)
        .unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c
}

fn q(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Value::Array(a) => a.chunks(2).map(|p| (text(&p[0]), p[1].clone())).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

/// One worker's loop: claims (XCLAIM, XAUTOCLAIM, XREADGROUP CLAIM, history re-reads),
/// acknowledges some, NACKs some FATAL, until the server goes away.
fn worker(port: u16, n: usize, stop: Arc<AtomicBool>) {
    let mut c = connect(port);
    let consumer = format!("w{n}");
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = SOURCES[i % SOURCES.len()];
        let id = format!("{}-0", 1 + (i * 7) % (4 * ENTRIES));
        let r = match i % 6 {
            0 => q(&mut c, &["XCLAIM", key, "g", &consumer, "0", &id]),
            1 => q(
                &mut c,
                &["XAUTOCLAIM", key, "g", &consumer, "0", "0", "COUNT", "4"],
            ),
            2 => q(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    &consumer,
                    "COUNT",
                    "3",
                    "CLAIM",
                    "0",
                    "STREAMS",
                    key,
                    ">",
                ],
            ),
            3 => q(
                &mut c,
                &["XREADGROUP", "GROUP", "g", &consumer, "STREAMS", key, "0"],
            ),
            4 if i.is_multiple_of(5) => q(&mut c, &["XNACK", key, "g", "FATAL", "IDS", "1", &id]),
            _ => q(&mut c, &["XACK", key, "g", &id]),
        };
        if r.is_err() {
            return;
        }
    }
}

fn check(c: &mut redis::Connection, round: usize) -> usize {
    let Value::Array(dead) = q(c, &["XRANGE", "dead", "-", "+"]).unwrap() else {
        panic!()
    };
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &dead {
        let Value::Array(e) = e else { panic!() };
        let Value::Array(f) = &e[1] else { panic!() };
        let f: Vec<String> = f.iter().map(text).collect();
        let get = |name: &str| {
            let at = f.iter().position(|x| x == name).unwrap();
            f[at + 1].clone()
        };
        // The original fields come first and are intact, unless the entry was deleted.
        assert_eq!(f[0], "n", "round {round}: {f:?}");
        assert_eq!(f[1], get("dlq-id"), "round {round}: {f:?}");
        *seen.entry((get("dlq-stream"), get("dlq-id"))).or_default() += 1;
    }
    for (k, n) in &seen {
        assert_eq!(*n, 1, "round {round}: {k:?} dead-lettered {n} times");
    }
    for key in SOURCES {
        let Value::Array(rows) = q(c, &["XPENDING", key, "g", "-", "+", "100000"]).unwrap() else {
            panic!()
        };
        let pending: BTreeSet<String> = rows
            .iter()
            .map(|r| {
                let Value::Array(r) = r else { panic!() };
                text(&r[0])
            })
            .collect();
        let dead: BTreeSet<String> = seen
            .keys()
            .filter(|(s, _)| s == key)
            .map(|(_, id)| id.clone())
            .collect();
        assert!(
            pending.is_disjoint(&dead),
            "round {round}: {key}: pending and dead-lettered: {:?}",
            pending.intersection(&dead).collect::<Vec<_>>()
        );
        let Value::Array(groups) = q(c, &["XINFO", "GROUPS", key]).unwrap() else {
            panic!()
        };
        let g = pairs(&groups[0]);
        let num = |name: &str| match &g.iter().find(|(k, _)| k == name).unwrap().1 {
            Value::Int(n) => *n as usize,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            num("entries-dead-lettered"),
            dead.len(),
            "round {round}: {key}: counter and dead-letter stream disagree"
        );
        // Every entry the group read went into the PEL once and left it at most once.
        assert_eq!(
            num("entries-acked") + pending.len() + dead.len(),
            num("entries-read"),
            "round {round}: {key}: an entry was lost or counted twice"
        );
    }
    eprintln!("round {round}: {} dead-lettered", dead.len());
    dead.len()
}

#[test]
fn dead_lettering_survives_sigkill_mid_claim_loops() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for (round, extra) in [
        &[
            "--tail-log-segment-bytes",
            "4096",
            "--tail-log-checkpoint-bytes",
            "0",
        ][..],
        &["--tail-log-checkpoint-bytes", "1000000000"],
        &["--appendfsync", "always"],
    ]
    .into_iter()
    .enumerate()
    {
        let (mut child, port) = start(dir.path(), extra);
        let mut c = connect(port);
        if round > 0 {
            total = check(&mut c, round);
        }
        // More work each round, so the kill lands while entries are still being claimed.
        for key in SOURCES {
            for i in round * ENTRIES + 1..=(round + 1) * ENTRIES {
                let id = format!("{i}-0");
                q(&mut c, &["XADD", key, &id, "n", &id]).unwrap();
            }
            if round == 0 {
                q(&mut c, &["XGROUP", "CREATE", key, "g", "0"]).unwrap();
                q(
                    &mut c,
                    &["XGROUP", "SETDLQ", key, "g", "dead", "MAXDELIVERIES", "3"],
                )
                .unwrap();
            }
            q(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "first",
                    "COUNT",
                    "50",
                    "STREAMS",
                    key,
                    ">",
                ],
            )
            .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|n| {
                let stop = stop.clone();
                std::thread::spawn(move || worker(port, n, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150));
        child.kill().unwrap();
        let _ = child.wait();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
    }
    let (_child, port) = start(dir.path(), &[]);
    let mut c = connect(port);
    let last = check(&mut c, 9);
    assert!(
        last > total && total > 0,
        "the loops dead-lettered nothing ({last})"
    );
}
