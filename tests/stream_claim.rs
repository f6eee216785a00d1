//! End-to-end tests of `XREADGROUP ... CLAIM min-idle-time` (Redis 8.4): idle pending entries
//! claimed before new ones under one COUNT, each entry carrying its idle time and prior
//! deliveries, in RESP2 and RESP3.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use brooklet::{TestServer, blocked_clients, err, run, value_text as text};
use redis::Value;

const WAIT: Duration = Duration::from_secs(5);

/// One served entry of a CLAIM read: `(id, idle ms, prior deliveries)`.
type Served = (String, i64, i64);

/// A one-stream CLAIM read reply as its entries, whichever protocol it came in.
fn entries(v: Value) -> Vec<Served> {
    let body = match v {
        Value::Nil => return Vec::new(),
        Value::Map(mut pairs) => {
            assert_eq!(pairs.len(), 1, "{pairs:?}");
            pairs.pop().unwrap().1
        }
        Value::Array(mut items) => {
            assert_eq!(items.len(), 1, "{items:?}");
            match items.pop().unwrap() {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop().unwrap(),
                other => panic!("not a key/entries pair: {other:?}"),
            }
        }
        other => panic!("not a read reply: {other:?}"),
    };
    let Value::Array(list) = body else {
        panic!("entries {body:?}")
    };
    list.into_iter()
        .map(|e| match e {
            Value::Array(e) if e.len() == 4 => {
                assert!(matches!(e[1], Value::Array(_)), "fields {:?}", e[1]);
                match (&e[2], &e[3]) {
                    (Value::Int(idle), Value::Int(n)) => (text(&e[0]), *idle, *n),
                    other => panic!("delivery metadata {other:?}"),
                }
            }
            other => panic!("not a 4-element entry: {other:?}"),
        })
        .collect()
}

/// Each pending entry's `(id, owner, times delivered)`.
fn pending(c: &mut redis::Connection, key: &str) -> Vec<(String, String, i64)> {
    let Value::Array(rows) = run(c, &["XPENDING", key, "g", "-", "+", "100"]) else {
        panic!()
    };
    rows.into_iter()
        .map(|row| match row {
            Value::Array(r) => match &r[3] {
                Value::Int(n) => (text(&r[0]), text(&r[1]), *n),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Stream `key` with entries `1-0` ..= `<n>-0` and group `g` from the start.
fn stream(c: &mut redis::Connection, key: &str, n: u64) {
    let _ = run(c, &["DEL", key]);
    for i in 1..=n {
        run(c, &["XADD", key, &format!("{i}-0"), "f", &format!("v{i}")]);
    }
    run(c, &["XGROUP", "CREATE", key, "g", "0"]);
}

fn owned(list: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    list.iter()
        .map(|(id, c, n)| (id.to_string(), c.to_string(), *n))
        .collect()
}

#[test]
fn idle_pending_entries_come_first_then_new_ones_under_one_count() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        stream(&mut c, "s", 5);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                ">",
            ],
        );
        thread::sleep(Duration::from_millis(60));
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">",
            ],
        );
        // 1 and 2 are idle >= 50 ms, 3 is not: they come first, then one new entry.
        let got = entries(run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "b",
                "COUNT",
                "3",
                "CLAIM",
                "50",
                "STREAMS",
                "s",
                ">",
            ],
        ));
        let ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0", "4-0"], "resp3={resp3}");
        assert!(got[0].1 >= 50 && got[1].1 >= 50, "{got:?}");
        assert_eq!((got[0].2, got[1].2), (1, 1), "{got:?}");
        assert_eq!((got[2].1, got[2].2), (0, 0), "{got:?}");
        // Claimed entries changed owner and count as XCLAIM would.
        assert_eq!(
            pending(&mut c, "s"),
            owned(&[
                ("1-0", "b", 2),
                ("2-0", "b", 2),
                ("3-0", "a", 1),
                ("4-0", "b", 1)
            ]),
            "resp3={resp3}"
        );
        // COUNT filled by claims alone: nothing new is read.
        let got = entries(run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "2",
                "CLAIM",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        ));
        assert_eq!(got.len(), 2, "{got:?}");
        let Value::Array(info) = run(&mut c, &["XINFO", "GROUPS", "s"]) else {
            panic!()
        };
        assert!(
            format!("{info:?}").contains("\"4-0\""),
            "last-delivered-id moved: {info:?}"
        );
    }
}

#[test]
fn noack_leaves_new_entries_out_but_claimed_ones_stay_pending() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        stream(&mut c, "s", 3);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                ">",
            ],
        );
        let got = entries(run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "b",
                "CLAIM",
                "0",
                "NOACK",
                "STREAMS",
                "s",
                ">",
            ],
        ));
        let ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0", "3-0"], "resp3={resp3}");
        assert_eq!(
            pending(&mut c, "s"),
            owned(&[("1-0", "b", 2), ("2-0", "b", 2)]),
            "resp3={resp3}"
        );
        // Nothing idle enough and nothing new: a null reply.
        assert_eq!(
            run(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "b",
                    "CLAIM",
                    "100000",
                    "STREAMS",
                    "s",
                    ">"
                ]
            ),
            Value::Nil
        );
    }
}

#[test]
fn bad_claims_get_errors_and_change_nothing() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        stream(&mut c, "s", 2);
        run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"],
        );
        let before = pending(&mut c, "s");
        assert_eq!(
            err(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "b",
                    "CLAIM",
                    "0",
                    "STREAMS",
                    "s",
                    "0"
                ]
            ),
            "ERR The CLAIM option is only supported with the '>' ID"
        );
        assert_eq!(
            err(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "b",
                    "CLAIM",
                    "-1",
                    "STREAMS",
                    "s",
                    ">"
                ]
            ),
            "ERR min-idle-time must be a positive integer"
        );
        assert_eq!(
            err(&mut c, &["XREAD", "CLAIM", "0", "STREAMS", "s", "0"]),
            "ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(pending(&mut c, "s"), before, "resp3={resp3}");
    }
}

#[test]
fn maxcount_covers_claimed_entries() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        stream(&mut c, "s", 4);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                ">",
            ],
        );
        let got = entries(run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "b",
                "MAXCOUNT",
                "3",
                "CLAIM",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        ));
        let ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0", "3-0"], "resp3={resp3}");
        // 4 was left out: not pending.
        assert_eq!(pending(&mut c, "s").len(), 3, "resp3={resp3}");
    }
}

#[test]
fn a_blocked_claim_read_is_served_when_new_entries_arrive() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        stream(&mut c, "s", 1);
        run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"],
        );
        let mut reader = server.client(resp3);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let args = [
                "XREADGROUP",
                "GROUP",
                "g",
                "b",
                "BLOCK",
                "0",
                "CLAIM",
                "100000",
                "STREAMS",
                "s",
                ">",
            ];
            let _ = tx.send(run(&mut reader, &args));
        });
        let mut admin = server.client(false);
        let deadline = Instant::now() + WAIT;
        while blocked_clients(&mut admin) != 1 {
            assert!(Instant::now() < deadline, "never blocked");
            thread::sleep(Duration::from_millis(5));
        }
        run(&mut c, &["XADD", "s", "2-0", "f", "v"]);
        let got = entries(rx.recv_timeout(WAIT).unwrap());
        assert_eq!(got, vec![("2-0".to_string(), 0, 0)], "resp3={resp3}");
        assert_eq!(
            pending(&mut c, "s"),
            owned(&[("1-0", "a", 1), ("2-0", "b", 1)]),
            "resp3={resp3}"
        );
    }
}

#[test]
fn claims_survive_debug_reload() {
    let server = TestServer::start_with(|c| c.enable_debug_command = "yes".into());
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        stream(&mut c, "s", 4);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "COUNT",
                "3",
                "STREAMS",
                "s",
                ">",
            ],
        );
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "b",
                "COUNT",
                "3",
                "CLAIM",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        );
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "1",
                "CLAIM",
                "0",
                "NOACK",
                "STREAMS",
                "s",
                ">",
            ],
        );
        let full = run(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
        let owners = pending(&mut c, "s");
        run(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(
            run(&mut c, &["XINFO", "STREAM", "s", "FULL"]),
            full,
            "resp3={resp3}"
        );
        assert_eq!(pending(&mut c, "s"), owners, "resp3={resp3}");
    }
}

#[test]
fn command_docs_name_claim() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let text = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", "XREADGROUP"]));
    for word in ["min-idle-time", "CLAIM"] {
        let word = Value::BulkString(word.as_bytes().to_vec());
        assert!(
            text.contains(&format!("{word:?}")),
            "lacks {word:?}: {text}"
        );
    }
}

#[test]
fn claims_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(false);
    stream(&mut c, "s", 4);
    run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "COUNT",
            "2",
            "CLAIM",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let full = run(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
    let owners = pending(&mut c, "s");
    drop(c);
    server.stop();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(false);
    assert_eq!(run(&mut c, &["XINFO", "STREAM", "s", "FULL"]), full);
    assert_eq!(pending(&mut c, "s"), owners);
    assert_eq!(
        owners,
        owned(&[("1-0", "b", 2), ("2-0", "b", 2), ("3-0", "a", 1)])
    );
}
