//! End-to-end tests of XREAD / XREADGROUP `MAXCOUNT` and `MAXSIZE` (Redis 8.10): caps on the
//! whole reply, spent in the order the streams are listed, in RESP2 and RESP3.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use brooklet::{TestServer, blocked_clients, err, run};
use redis::Value;

const WAIT: Duration = Duration::from_secs(5);

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// A read reply as `(key, [entry id, ...])`, whichever protocol it came in.
fn served(v: Value) -> Vec<(String, Vec<String>)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Nil => return Vec::new(),
        Value::Map(pairs) => pairs,
        Value::Array(items) => items
            .into_iter()
            .map(|pair| match pair {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let v = kv.pop().unwrap();
                    (kv.pop().unwrap(), v)
                }
                other => panic!("not a key/entries pair: {other:?}"),
            })
            .collect(),
        other => panic!("not a read reply: {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, entries)| {
            let Value::BulkString(k) = k else {
                panic!("key {k:?}")
            };
            let Value::Array(entries) = entries else {
                panic!("entries {entries:?}")
            };
            let ids = entries
                .into_iter()
                .map(|e| match e {
                    Value::Array(mut e) if e.len() == 2 => {
                        let _ = e.pop();
                        match e.pop() {
                            Some(Value::BulkString(id)) => String::from_utf8(id).unwrap(),
                            other => panic!("id {other:?}"),
                        }
                    }
                    other => panic!("entry {other:?}"),
                })
                .collect();
            (String::from_utf8(k).unwrap(), ids)
        })
        .collect()
}

fn got(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(k, ids)| (k.to_string(), ids.iter().map(|i| i.to_string()).collect()))
        .collect()
}

/// Streams s1, s2, s3 with entries `<n>-0` for n in 1..=3 (field `f`, value `v`).
fn three_streams(c: &mut redis::Connection) {
    for key in ["s1", "s2", "s3"] {
        for n in 1..=3 {
            run(c, &["XADD", key, &format!("{n}"), "f", "v"]);
        }
    }
}

/// The number of entries in a group's PEL.
fn pending(c: &mut redis::Connection, key: &str, group: &str) -> i64 {
    match run(c, &["XPENDING", key, group]) {
        Value::Array(summary) => match &summary[0] {
            Value::Int(n) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// Each pending entry's `(id, times delivered)`.
fn deliveries(c: &mut redis::Connection, key: &str, group: &str) -> Vec<(String, i64)> {
    let Value::Array(rows) = run(c, &["XPENDING", key, group, "-", "+", "100"]) else {
        panic!()
    };
    rows.into_iter()
        .map(|row| match row {
            Value::Array(r) => match (&r[0], &r[3]) {
                (Value::BulkString(id), Value::Int(n)) => {
                    (String::from_utf8(id.clone()).unwrap(), *n)
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let deadline = Instant::now() + WAIT;
    while blocked_clients(c) != n {
        assert!(
            Instant::now() < deadline,
            "never reached {n} blocked clients"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn spawn_query(server: &TestServer, resp3: bool, args: &[&str]) -> mpsc::Receiver<Value> {
    let mut c = server.client(resp3);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = tx.send(run(&mut c, &args));
    });
    rx
}

#[test]
fn maxcount_caps_the_whole_reply_in_the_order_streams_are_listed() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        three_streams(&mut c);
        let all = ["s1", "s2", "s3", "0", "0", "0"];
        let read = |c: &mut redis::Connection, opts: &[&str]| {
            let mut args = vec!["XREAD"];
            args.extend_from_slice(opts);
            args.push("STREAMS");
            args.extend_from_slice(&all);
            served(run(c, &args))
        };
        // COUNT is per stream, MAXCOUNT over all of them; later streams are skipped.
        assert_eq!(
            read(&mut c, &["COUNT", "2", "MAXCOUNT", "3"]),
            got(&[("s1", &["1-0", "2-0"]), ("s2", &["1-0"])])
        );
        assert_eq!(
            read(&mut c, &["MAXCOUNT", "4"]),
            got(&[("s1", &["1-0", "2-0", "3-0"]), ("s2", &["1-0"])])
        );
        assert_eq!(
            read(&mut c, &["MAXCOUNT", "100", "COUNT", "1"]),
            got(&[("s1", &["1-0"]), ("s2", &["1-0"]), ("s3", &["1-0"])])
        );
        // A stream with nothing to serve costs nothing.
        let args = ["XREAD", "MAXCOUNT", "2", "STREAMS", "s1", "s2", "3", "1"];
        assert_eq!(served(run(&mut c, &args)), got(&[("s2", &["2-0", "3-0"])]));
    }
}

#[test]
fn maxsize_is_checked_before_each_entry_and_serves_at_least_one() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        three_streams(&mut c);
        // Counted as Redis counts reply bytes: a stream's key and framing (RESP2
        // `*2\r\n$2\r\ns1\r\n`, RESP3 `$2\r\ns1\r\n`) and each entry whole (31 bytes here:
        // `*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n`).
        let header = if resp3 { 8 } else { 12 };
        let one = header + 31;
        let read = |c: &mut redis::Connection, size: usize| {
            let size = size.to_string();
            let args = ["XREAD", "MAXSIZE", &size, "STREAMS", "s1", "s2", "0", "0"];
            served(run(c, &args))
        };
        // At least one entry, however small the cap.
        assert_eq!(read(&mut c, 1), got(&[("s1", &["1-0"])]));
        assert_eq!(read(&mut c, one), got(&[("s1", &["1-0"])]));
        // One byte more and the next entry starts below the cap: it is served whole.
        assert_eq!(read(&mut c, one + 1), got(&[("s1", &["1-0", "2-0"])]));
        // The next stream's framing counts before its first entry.
        let s1_all = header + 3 * 31;
        assert_eq!(
            read(&mut c, s1_all + header),
            got(&[("s1", &["1-0", "2-0", "3-0"])])
        );
        assert_eq!(
            read(&mut c, s1_all + header + 1),
            got(&[("s1", &["1-0", "2-0", "3-0"]), ("s2", &["1-0"])])
        );
        // An entry larger than the cap is still served when it is the first.
        let big = "x".repeat(10_000);
        run(&mut c, &["XADD", "big", "1", "f", &big]);
        run(&mut c, &["XADD", "big", "2", "f", "v"]);
        assert_eq!(
            served(run(
                &mut c,
                &["XREAD", "MAXSIZE", "100", "STREAMS", "big", "0"]
            )),
            got(&[("big", &["1-0"])])
        );
        // Both caps: whichever is reached first stops the reply.
        let args = [
            "XREAD", "MAXCOUNT", "2", "MAXSIZE", "100000", "STREAMS", "s1", "0",
        ];
        assert_eq!(served(run(&mut c, &args)), got(&[("s1", &["1-0", "2-0"])]));
    }
}

#[test]
fn xreadgroup_caps_leave_entries_out_of_the_pending_list() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        three_streams(&mut c);
        for key in ["s1", "s2", "s3"] {
            run(&mut c, &["XGROUP", "CREATE", key, "g", "0"]);
        }
        let group_read = |c: &mut redis::Connection, opts: &[&str], ids: &str| {
            let mut args = vec!["XREADGROUP", "GROUP", "g", "alice"];
            args.extend_from_slice(opts);
            args.extend_from_slice(&["STREAMS", "s1", "s2", "s3", ids, ids, ids]);
            served(run(c, &args))
        };
        assert_eq!(
            group_read(&mut c, &["COUNT", "2", "MAXCOUNT", "3"], ">"),
            got(&[("s1", &["1-0", "2-0"]), ("s2", &["1-0"])])
        );
        assert_eq!(pending(&mut c, "s1", "g"), 2);
        assert_eq!(pending(&mut c, "s2", "g"), 1);
        assert_eq!(pending(&mut c, "s3", "g"), 0);
        // What was left out is still new to the group.
        assert_eq!(
            group_read(&mut c, &["MAXSIZE", "1"], ">"),
            got(&[("s1", &["3-0"])])
        );
        assert_eq!(pending(&mut c, "s1", "g"), 3);
        assert_eq!(pending(&mut c, "s2", "g"), 1);
        assert_eq!(
            group_read(&mut c, &[], ">"),
            got(&[("s2", &["2-0", "3-0"]), ("s3", &["1-0", "2-0", "3-0"])])
        );
        // History reads are capped too, and only what is served counts as delivered.
        assert_eq!(
            group_read(&mut c, &["MAXCOUNT", "2"], "0"),
            got(&[("s1", &["1-0", "2-0"])])
        );
        assert_eq!(
            deliveries(&mut c, "s1", "g"),
            vec![("1-0".into(), 2), ("2-0".into(), 2), ("3-0".into(), 1)]
        );
        assert_eq!(deliveries(&mut c, "s2", "g")[0], ("1-0".into(), 1));
        // NOACK with a cap: the reply is capped and nothing is pending.
        run(&mut c, &["XGROUP", "CREATE", "s1", "n", "0"]);
        let args = [
            "XREADGROUP",
            "GROUP",
            "n",
            "bob",
            "MAXCOUNT",
            "1",
            "NOACK",
            "STREAMS",
            "s1",
            ">",
        ];
        assert_eq!(served(run(&mut c, &args)), got(&[("s1", &["1-0"])]));
        assert_eq!(pending(&mut c, "s1", "n"), 0);
    }
}

#[test]
fn bad_caps_get_redis_errors_and_change_nothing() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        run(&mut c, &["XADD", "s", "1", "f", "v"]);
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
        let below = "ERR MAXCOUNT must be greater than or equal to COUNT";
        assert_eq!(
            err(
                &mut c,
                &["XREAD", "COUNT", "5", "MAXCOUNT", "4", "STREAMS", "s", "0"]
            ),
            below
        );
        let args = [
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "MAXCOUNT",
            "1",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ];
        assert_eq!(err(&mut c, &args), below);
        assert_eq!(
            err(&mut c, &["XREAD", "MAXCOUNT", "0", "STREAMS", "s", "0"]),
            "ERR MAXCOUNT must be a positive integer"
        );
        assert_eq!(
            err(&mut c, &["XREAD", "MAXSIZE", "-3", "STREAMS", "s", "0"]),
            "ERR MAXSIZE must be a positive integer"
        );
        let args = [
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "MAXSIZE",
            "abc",
            "STREAMS",
            "s",
            ">",
        ];
        assert_eq!(err(&mut c, &args), "ERR MAXSIZE must be a positive integer");
        // The failed XREADGROUPs delivered nothing and created no consumer.
        assert_eq!(pending(&mut c, "s", "g"), 0);
        assert_eq!(
            run(&mut c, &["XINFO", "CONSUMERS", "s", "g"]),
            Value::Array(vec![])
        );
    }
}

#[test]
fn a_blocked_read_is_woken_with_the_caps_applied() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(false);
        run(&mut c, &["FLUSHALL"]);
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        let reader = spawn_query(
            &server,
            resp3,
            &["XREAD", "MAXCOUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"],
        );
        let consumer = spawn_query(
            &server,
            resp3,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "MAXSIZE",
                "1",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        );
        wait_blocked(&mut c, 2);
        // Two entries arrive at once; each woken reader gets one.
        run(&mut c, &["MULTI"]);
        run(&mut c, &["XADD", "s", "1", "f", "v"]);
        run(&mut c, &["XADD", "s", "2", "f", "v"]);
        run(&mut c, &["EXEC"]);
        assert_eq!(
            served(reader.recv_timeout(WAIT).unwrap()),
            got(&[("s", &["1-0"])])
        );
        assert_eq!(
            served(consumer.recv_timeout(WAIT).unwrap()),
            got(&[("s", &["1-0"])])
        );
        wait_blocked(&mut c, 0);
        assert_eq!(deliveries(&mut c, "s", "g"), vec![("1-0".into(), 1)]);
        // The entry left out is the next one new to the group.
        let args = ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"];
        assert_eq!(served(run(&mut c, &args)), got(&[("s", &["2-0"])]));
    }
}

#[test]
fn command_docs_name_the_new_options() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for name in ["XREAD", "XREADGROUP"] {
        let text = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", name]));
        for option in ["maxcount", "MAXCOUNT", "maxsize", "MAXSIZE"] {
            assert!(
                text.contains(&format!("{:?}", bulk(option))),
                "{name} lacks {option}: {text}"
            );
        }
    }
}
