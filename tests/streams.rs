//! End-to-end tests of the stream commands: XADD .. XINFO, blocking reads, and their effect
//! on WATCH, INFO and the generic key commands, in RESP2 and RESP3.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use brooklet::{TestServer, err, error_text, int, run};
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;
use redis_protocol::resp3::types::OwnedFrame as F3;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn text(c: &mut redis::Connection, args: &[&str]) -> String {
    match run(c, args) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::SimpleString(s) => s,
        Value::Okay => "OK".into(),
        v => panic!("{args:?}: not a string: {v:?}"),
    }
}

/// `[id, [f, v, ...]]`
fn entry(id: &str, fields: &[&str]) -> Value {
    Value::Array(vec![
        bulk(id),
        Value::Array(fields.iter().map(|f| bulk(f)).collect()),
    ])
}

/// One INFO field as a number.
fn info_field(c: &mut redis::Connection, section: &str, name: &str) -> i64 {
    let info = text(c, &["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits (bounded) until INFO reports `n` blocked clients.
fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(c, "clients", "blocked_clients") != n {
        assert!(
            Instant::now() < deadline,
            "never reached {n} blocked clients"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `args` on a new connection in a thread; the reply (or error text) arrives on the
/// channel.
fn spawn_query(
    server: &TestServer,
    resp3: bool,
    args: &[&str],
) -> mpsc::Receiver<Result<Value, String>> {
    let mut c = server.client(resp3);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut command = cmd(&args[0]);
        for a in &args[1..] {
            command.arg(a.as_str());
        }
        let r = command
            .query::<Value>(&mut c)
            .map_err(|e| format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")));
        let _ = tx.send(r);
    });
    rx
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn xadd_ids_errors_and_nomkstream() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        assert_eq!(text(&mut c, &["XADD", "s", "1-1", "a", "1"]), "1-1");
        assert_eq!(
            err(&mut c, &["XADD", "s", "1-1", "a", "1"]),
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        assert_eq!(
            err(&mut c, &["XADD", "s", "0-0", "a", "1"]),
            "ERR The ID specified in XADD must be greater than 0-0"
        );
        assert_eq!(
            err(&mut c, &["XADD", "new", "0", "a", "1"]),
            "ERR The ID specified in XADD must be greater than 0-0"
        );
        assert_eq!(int(&mut c, &["EXISTS", "new"]), 0);
        assert_eq!(text(&mut c, &["XADD", "s", "1-*", "b", "2"]), "1-2");
        assert_eq!(text(&mut c, &["XADD", "s", "5", "c", "3"]), "5-0");
        assert_eq!(
            err(&mut c, &["XADD", "s", "6", "c"]),
            "ERR wrong number of arguments for 'xadd' command"
        );
        assert_eq!(
            err(&mut c, &["XADD", "s", "abc", "c", "1"]),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(
            run(&mut c, &["XADD", "missing", "NOMKSTREAM", "*", "f", "v"]),
            Value::Nil
        );
        assert_eq!(int(&mut c, &["EXISTS", "missing"]), 0);
        let auto = text(&mut c, &["XADD", "s", "*", "f", "v"]);
        let (ms, seq) = auto.split_once('-').unwrap();
        assert!(ms.parse::<u64>().unwrap() > 1_600_000_000_000 && seq == "0");
        // The clock never goes backwards: an ID above now gets seq + 1.
        run(&mut c, &["XADD", "future", "99999999999999-5", "f", "v"]);
        assert_eq!(
            text(&mut c, &["XADD", "future", "*", "f", "v"]),
            "99999999999999-6"
        );
        assert_eq!(
            err(
                &mut c,
                &["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "f", "v"]
            ),
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
        );
        assert_eq!(
            err(
                &mut c,
                &["XADD", "s", "MAXLEN", "1", "LIMIT", "5", "*", "f", "v"]
            ),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
        assert_eq!(
            err(&mut c, &["XADD", "s", "MAXLEN", "-1", "*", "f", "v"]),
            "ERR The MAXLEN argument must be >= 0."
        );
        assert_eq!(text(&mut c, &["TYPE", "s"]), "stream");
        assert_eq!(int(&mut c, &["XLEN", "s"]), 4);
        assert_eq!(int(&mut c, &["XLEN", "nokey"]), 0);
        assert_eq!(
            err(&mut c, &["XADD", "s", "*"]),
            "ERR wrong number of arguments for 'xadd' command"
        );
    }
}

#[test]
fn xadd_and_xtrim_trim_exactly_and_by_whole_nodes() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for i in 1..=10 {
        run(
            &mut c,
            &["XADD", "s", "MAXLEN", "=", "3", &i.to_string(), "f", "v"],
        );
    }
    assert_eq!(int(&mut c, &["XLEN", "s"]), 3);
    assert_eq!(
        run(&mut c, &["XRANGE", "s", "-", "+"]),
        Value::Array(vec![
            entry("8-0", &["f", "v"]),
            entry("9-0", &["f", "v"]),
            entry("10-0", &["f", "v"]),
        ])
    );
    // `~` removes whole nodes of stream-node-max-entries (100) only: after 250 adds with
    // MAXLEN ~ 100 Redis keeps 150 entries.
    for i in 1..=250 {
        run(
            &mut c,
            &["XADD", "a", "MAXLEN", "~", "100", &i.to_string(), "f", "v"],
        );
    }
    assert_eq!(int(&mut c, &["XLEN", "a"]), 150);
    assert_eq!(int(&mut c, &["XTRIM", "a", "MAXLEN", "~", "10"]), 100);
    assert_eq!(int(&mut c, &["XTRIM", "a", "MAXLEN", "10"]), 40);
    assert_eq!(int(&mut c, &["XTRIM", "a", "MINID", "245"]), 4);
    assert_eq!(int(&mut c, &["XLEN", "a"]), 6);
    assert_eq!(int(&mut c, &["XTRIM", "nokey", "MAXLEN", "0"]), 0);
    // Options are checked before the key: a bad XTRIM on a missing key is still an error.
    assert_eq!(
        err(&mut c, &["XTRIM", "nokey", "FOO", "1"]),
        "ERR syntax error"
    );
    // Any LIMIT, even 0, needs `~`.
    assert_eq!(
        err(&mut c, &["XTRIM", "a", "MAXLEN", "1", "LIMIT", "0"]),
        "ERR syntax error, LIMIT cannot be used without the special ~ option"
    );
    assert_eq!(
        err(&mut c, &["XADD", "a", "LIMIT", "0", "*", "f", "v"]),
        "ERR syntax error, LIMIT cannot be used without the special ~ option"
    );
    assert_eq!(
        int(&mut c, &["XTRIM", "a", "MAXLEN", "~", "1", "LIMIT", "0"]),
        0
    );
    assert_eq!(
        err(&mut c, &["XTRIM", "a", "LIMIT", "5"]),
        "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
    );
    assert_eq!(err(&mut c, &["XTRIM", "a", "FOO", "1"]), "ERR syntax error");
    // stream-node-max-entries is read from the live configuration.
    run(&mut c, &["CONFIG", "SET", "stream-node-max-entries", "10"]);
    for i in 1..=25 {
        run(
            &mut c,
            &["XADD", "b", "MAXLEN", "~", "5", &i.to_string(), "f", "v"],
        );
    }
    assert_eq!(int(&mut c, &["XLEN", "b"]), 5);
}

#[test]
fn xrange_and_xrevrange_bounds_and_count() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        for id in ["1-1", "1-2", "2-0", "3-5"] {
            run(&mut c, &["XADD", "s", id, "f", id]);
        }
        let e = |id: &str| entry(id, &["f", id]);
        assert_eq!(
            run(&mut c, &["XRANGE", "s", "1", "1"]),
            Value::Array(vec![e("1-1"), e("1-2")])
        );
        assert_eq!(
            run(&mut c, &["XRANGE", "s", "(1-1", "(3-5"]),
            Value::Array(vec![e("1-2"), e("2-0")])
        );
        assert_eq!(
            run(&mut c, &["XREVRANGE", "s", "+", "-", "COUNT", "2"]),
            Value::Array(vec![e("3-5"), e("2-0")])
        );
        assert_eq!(
            run(&mut c, &["XRANGE", "s", "-", "+", "COUNT", "0"]),
            Value::Nil
        );
        assert_eq!(
            run(&mut c, &["XRANGE", "s", "-", "+", "COUNT", "-3"]),
            Value::Nil
        );
        assert_eq!(
            run(&mut c, &["XRANGE", "s", "+", "-"]),
            Value::Array(vec![])
        );
        assert_eq!(
            run(&mut c, &["XRANGE", "nokey", "-", "+"]),
            Value::Array(vec![])
        );
        assert_eq!(
            err(&mut c, &["XRANGE", "s", "-", "+", "COUNT"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&mut c, &["XRANGE", "s", "(-", "+"]),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(
            err(&mut c, &["XRANGE", "s", "-", "(0-0"]),
            "ERR invalid end ID for the interval"
        );
        assert_eq!(
            err(
                &mut c,
                &[
                    "XRANGE",
                    "s",
                    "(18446744073709551615-18446744073709551615",
                    "+"
                ]
            ),
            "ERR invalid start ID for the interval"
        );
    }
}

#[test]
fn xdel_and_xsetid() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for id in 1..=4 {
        run(&mut c, &["XADD", "s", &id.to_string(), "f", "v"]);
    }
    assert_eq!(
        err(&mut c, &["XDEL", "s", "1", "abc"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(int(&mut c, &["XLEN", "s"]), 4, "a bad ID deletes nothing");
    assert_eq!(int(&mut c, &["XDEL", "s", "2", "2", "99"]), 1);
    assert_eq!(int(&mut c, &["XDEL", "nokey", "1"]), 0);
    assert_eq!(
        err(&mut c, &["XSETID", "s", "3"]),
        "ERR The ID specified in XSETID is smaller than the target stream top item"
    );
    assert_eq!(
        err(&mut c, &["XSETID", "s", "10", "ENTRIESADDED", "1"]),
        "ERR The entries_added specified in XSETID is smaller than the target stream length"
    );
    assert_eq!(
        err(&mut c, &["XSETID", "s", "10", "ENTRIESADDED", "-1"]),
        "ERR entries_added must be positive"
    );
    assert_eq!(
        err(&mut c, &["XSETID", "s", "10", "MAXDELETEDID", "11"]),
        "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
    );
    assert_eq!(err(&mut c, &["XSETID", "nokey", "10"]), "ERR no such key");
    assert_eq!(
        err(&mut c, &["XSETID", "s", "10", "FOO"]),
        "ERR syntax error"
    );
    assert_eq!(
        run(
            &mut c,
            &[
                "XSETID",
                "s",
                "10",
                "ENTRIESADDED",
                "20",
                "MAXDELETEDID",
                "5"
            ]
        ),
        Value::Okay
    );
    assert_eq!(
        err(&mut c, &["XADD", "s", "9", "f", "v"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        text(&mut c, &["XADD", "s", "*", "f", "v"])
            .split('-')
            .count(),
        2
    );
}

/// XINFO STREAM as a map from field name to value, whichever the protocol.
fn as_map(v: Value) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(a) => a.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
        v => panic!("not a map: {v:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Value::BulkString(k) => (String::from_utf8(k).unwrap(), v),
            Value::SimpleString(k) => (k, v),
            k => panic!("bad key {k:?}"),
        })
        .collect()
}

#[test]
fn xinfo_stream_groups_and_consumers() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        run(&mut c, &["XADD", "s", "1", "a", "1"]);
        run(&mut c, &["XADD", "s", "2", "b", "2"]);
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">",
            ],
        );
        let info = as_map(run(&mut c, &["XINFO", "STREAM", "s"]));
        let names: Vec<&str> = info.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "length",
                "radix-tree-keys",
                "radix-tree-nodes",
                "last-generated-id",
                "max-deleted-entry-id",
                "entries-added",
                "recorded-first-entry-id",
                "idmp-duration",
                "idmp-maxsize",
                "pids-tracked",
                "iids-tracked",
                "iids-added",
                "iids-duplicates",
                "max-age",
                "max-age-policy",
                "groups",
                "first-entry",
                "last-entry"
            ]
        );
        assert_eq!(info[0].1, Value::Int(2));
        assert_eq!(info[2].1, Value::Int(2));
        assert_eq!(info[3].1, bulk("2-0"));
        assert_eq!(info[16].1, entry("1-0", &["a", "1"]));
        let groups = run(&mut c, &["XINFO", "GROUPS", "s"]);
        let Value::Array(groups) = groups else {
            panic!()
        };
        let g = as_map(groups[0].clone());
        // Redis's fields, then Brooklet's (tests/stream_counters.rs, tests/stream_dlq.rs).
        assert_eq!(
            g[..6],
            vec![
                ("name".into(), bulk("g")),
                ("consumers".into(), Value::Int(1)),
                ("pending".into(), Value::Int(1)),
                ("last-delivered-id".into(), bulk("1-0")),
                ("entries-read".into(), Value::Int(1)),
                ("lag".into(), Value::Int(1)),
            ]
        );
        let Value::Array(consumers) = run(&mut c, &["XINFO", "CONSUMERS", "s", "g"]) else {
            panic!()
        };
        let alice = as_map(consumers[0].clone());
        assert_eq!(alice[0], ("name".into(), bulk("alice")));
        assert_eq!(alice[1], ("pending".into(), Value::Int(1)));
        assert_eq!(alice[2].0, "idle");
        assert_eq!(alice[3].0, "inactive");
        let full = as_map(run(&mut c, &["XINFO", "STREAM", "s", "FULL", "COUNT", "1"]));
        // After the six IDMP fields (Redis 8.6) and Brooklet's two retention fields.
        assert_eq!(full[13].0, "max-age");
        assert_eq!(full[14].0, "max-age-policy");
        assert_eq!(
            full[15],
            (
                "entries".into(),
                Value::Array(vec![entry("1-0", &["a", "1"])])
            )
        );
        assert_eq!(full[16].0, "groups");
        assert_eq!(
            err(&mut c, &["XINFO", "STREAM", "nokey"]),
            "ERR no such key"
        );
        assert_eq!(
            err(&mut c, &["XINFO", "GROUPS", "nokey"]),
            "ERR no such key"
        );
        assert_eq!(
            err(&mut c, &["XINFO", "CONSUMERS", "s", "nog"]),
            "NOGROUP No such consumer group 'nog' for key name 's'"
        );
        assert_eq!(
            err(&mut c, &["XINFO", "STREAM", "s", "FOO"]),
            "ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP."
        );
        let Value::Array(help) = run(&mut c, &["XINFO", "HELP"]) else {
            panic!()
        };
        assert_eq!(help.len(), 9);
    }
}

#[test]
fn xgroup_subcommands_and_their_errors() {
    let server = TestServer::start();
    let mut c = server.client(false);
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]),
        "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
    );
    assert_eq!(
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        Value::Okay
    );
    assert_eq!(int(&mut c, &["XLEN", "s"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "s"]), 1);
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]),
        "BUSYGROUP Consumer Group name already exists"
    );
    assert_eq!(
        err(
            &mut c,
            &["XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "-2"]
        ),
        "ERR value for ENTRIESREAD must be positive or -1"
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g2", "0", "FOO"]),
        "ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP."
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "SETID", "s", "nog", "0"]),
        "NOGROUP No such consumer group 'nog' for key name 's'"
    );
    assert_eq!(
        int(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "alice"]),
        1
    );
    assert_eq!(
        int(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "alice"]),
        0
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATECONSUMER", "s", "nog", "alice"]),
        "NOGROUP No such consumer group 'nog' for key name 's'"
    );
    run(&mut c, &["XADD", "s", "1", "f", "v"]);
    run(&mut c, &["XADD", "s", "2", "f", "v"]);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
    );
    assert_eq!(int(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "bob"]), 2);
    assert_eq!(int(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "bob"]), 0);
    assert_eq!(
        run(&mut c, &["XPENDING", "s", "g"]),
        Value::Array(vec![Value::Int(0), Value::Nil, Value::Nil, Value::Nil])
    );
    assert_eq!(
        run(
            &mut c,
            &["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"]
        ),
        Value::Okay
    );
    assert_eq!(int(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 1);
    assert_eq!(int(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 0);
    assert_eq!(
        err(&mut c, &["XGROUP", "DESTROY", "nokey", "g"]),
        "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try XGROUP HELP."
    );
    let Value::Array(help) = run(&mut c, &["XGROUP", "HELP"]) else {
        panic!()
    };
    // Redis's 17 lines and Brooklet's SETDLQ (2).
    assert_eq!(help.len(), 19);
}

#[test]
fn xreadgroup_xack_xpending_xclaim_xautoclaim() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        for id in 1..=3 {
            run(
                &mut c,
                &["XADD", "s", &id.to_string(), "f", &id.to_string()],
            );
        }
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
        let got = run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
        );
        let body = Value::Array(vec![
            entry("1-0", &["f", "1"]),
            entry("2-0", &["f", "2"]),
            entry("3-0", &["f", "3"]),
        ]);
        let expected = if resp3 {
            Value::Map(vec![(bulk("s"), body)])
        } else {
            Value::Array(vec![Value::Array(vec![bulk("s"), body])])
        };
        assert_eq!(got, expected);
        // Nothing new: a null array.
        assert_eq!(
            run(
                &mut c,
                &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]
            ),
            Value::Nil
        );
        // History: own pending entries; a deleted one has a nil body.
        run(&mut c, &["XDEL", "s", "2"]);
        let history = run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                "0",
            ],
        );
        let body = Value::Array(vec![
            entry("1-0", &["f", "1"]),
            Value::Array(vec![bulk("2-0"), Value::Nil]),
        ]);
        let expected = if resp3 {
            Value::Map(vec![(bulk("s"), body)])
        } else {
            Value::Array(vec![Value::Array(vec![bulk("s"), body])])
        };
        assert_eq!(history, expected);
        // Another consumer has no history yet: an empty list, not nil.
        let empty = run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0"],
        );
        let expected = if resp3 {
            Value::Map(vec![(bulk("s"), Value::Array(vec![]))])
        } else {
            Value::Array(vec![Value::Array(vec![bulk("s"), Value::Array(vec![])])])
        };
        assert_eq!(empty, expected);
        assert_eq!(
            run(&mut c, &["XPENDING", "s", "g"]),
            Value::Array(vec![
                Value::Int(3),
                bulk("1-0"),
                bulk("3-0"),
                Value::Array(vec![Value::Array(vec![bulk("alice"), bulk("3")])]),
            ])
        );
        let Value::Array(ext) = run(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "alice"])
        else {
            panic!()
        };
        assert_eq!(ext.len(), 3);
        let Value::Array(first) = &ext[0] else {
            panic!()
        };
        assert_eq!(first[0], bulk("1-0"));
        assert_eq!(first[1], bulk("alice"));
        assert_eq!(
            first[3],
            Value::Int(2),
            "read once, then once more as history"
        );
        assert_eq!(
            run(
                &mut c,
                &["XPENDING", "s", "g", "IDLE", "100000", "-", "+", "10"]
            ),
            Value::Array(vec![])
        );
        assert_eq!(
            run(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "nobody"]),
            Value::Array(vec![])
        );
        assert_eq!(
            err(&mut c, &["XPENDING", "s", "g", "-", "+"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&mut c, &["XPENDING", "nokey", "g"]),
            "NOGROUP No such key 'nokey' or consumer group 'g'"
        );
        // XCLAIM: JUSTID keeps the delivery count; the deleted entry leaves the PEL.
        assert_eq!(
            run(
                &mut c,
                &["XCLAIM", "s", "g", "bob", "0", "3", "2", "JUSTID"]
            ),
            Value::Array(vec![bulk("3-0")])
        );
        assert_eq!(
            run(&mut c, &["XCLAIM", "s", "g", "bob", "0", "1"]),
            Value::Array(vec![entry("1-0", &["f", "1"])])
        );
        assert_eq!(
            err(&mut c, &["XCLAIM", "s", "g", "bob", "x", "1"]),
            "ERR Invalid min-idle-time argument for XCLAIM"
        );
        assert_eq!(
            err(&mut c, &["XCLAIM", "s", "g", "bob", "0", "1", "FOO"]),
            "ERR Unrecognized XCLAIM option 'FOO'"
        );
        assert_eq!(
            err(&mut c, &["XCLAIM", "s", "nog", "bob", "0", "1"]),
            "NOGROUP No such key 's' or consumer group 'nog'"
        );
        assert_eq!(
            run(&mut c, &["XCLAIM", "s", "g", "bob", "1000000", "1"]),
            Value::Array(vec![]),
            "not idle long enough"
        );
        // XAUTOCLAIM: claims idle entries, reports deleted ones, returns the next cursor.
        run(&mut c, &["XADD", "s", "4", "f", "4"]);
        run(&mut c, &["XADD", "s", "5", "f", "5"]);
        run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", ">"],
        );
        run(&mut c, &["XDEL", "s", "4"]);
        assert_eq!(
            run(
                &mut c,
                &[
                    "XAUTOCLAIM",
                    "s",
                    "g",
                    "carol",
                    "0",
                    "0",
                    "COUNT",
                    "2",
                    "JUSTID"
                ]
            ),
            Value::Array(vec![
                bulk("4-0"),
                Value::Array(vec![bulk("1-0"), bulk("3-0")]),
                Value::Array(vec![]),
            ])
        );
        assert_eq!(
            run(&mut c, &["XAUTOCLAIM", "s", "g", "carol", "0", "4"]),
            Value::Array(vec![
                bulk("0-0"),
                Value::Array(vec![entry("5-0", &["f", "5"])]),
                Value::Array(vec![bulk("4-0")]),
            ])
        );
        assert_eq!(
            err(
                &mut c,
                &["XAUTOCLAIM", "s", "g", "carol", "0", "0", "COUNT", "0"]
            ),
            "ERR COUNT must be > 0"
        );
        assert_eq!(
            err(&mut c, &["XAUTOCLAIM", "nokey", "g", "carol", "0", "0"]),
            "NOGROUP No such key 'nokey' or consumer group 'g'"
        );
        // XACK: repeated IDs count once; missing key or group acks nothing.
        assert_eq!(int(&mut c, &["XACK", "s", "g", "1", "1", "3", "99"]), 2);
        assert_eq!(int(&mut c, &["XACK", "s", "nog", "5"]), 0);
        assert_eq!(int(&mut c, &["XACK", "nokey", "g", "5"]), 0);
        assert_eq!(
            err(&mut c, &["XACK", "s", "g", "abc"]),
            "ERR Invalid stream ID specified as stream command argument"
        );
        // Errors of XREADGROUP itself.
        assert_eq!(
            err(
                &mut c,
                &["XREADGROUP", "GROUP", "nog", "a", "STREAMS", "s", ">"]
            ),
            "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
        );
        assert_eq!(
            err(
                &mut c,
                &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "$"]
            ),
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."
        );
        assert_eq!(
            err(
                &mut c,
                &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "s", ">"]
            ),
            "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."
        );
        assert_eq!(
            err(
                &mut c,
                &["XREADGROUP", "COUNT", "1", "NOACK", "STREAMS", "s", ">"]
            ),
            "ERR Missing GROUP option for XREADGROUP"
        );
        // NOACK delivers without a pending entry.
        run(&mut c, &["XADD", "s", "6", "f", "6"]);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "erin",
                "NOACK",
                "STREAMS",
                "s",
                ">",
            ],
        );
        assert_eq!(
            run(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "erin"]),
            Value::Array(vec![])
        );
    }
}

#[test]
fn xread_dollar_plus_and_several_streams() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        run(&mut c, &["XADD", "a", "1", "f", "a1"]);
        run(&mut c, &["XADD", "a", "2", "f", "a2"]);
        run(&mut c, &["XADD", "b", "1", "f", "b1"]);
        let got = run(
            &mut c,
            &[
                "XREAD", "COUNT", "1", "STREAMS", "a", "b", "nokey", "0", "0", "0",
            ],
        );
        let pairs = vec![
            (bulk("a"), Value::Array(vec![entry("1-0", &["f", "a1"])])),
            (bulk("b"), Value::Array(vec![entry("1-0", &["f", "b1"])])),
        ];
        let expected = if resp3 {
            Value::Map(pairs)
        } else {
            Value::Array(
                pairs
                    .into_iter()
                    .map(|(k, v)| Value::Array(vec![k, v]))
                    .collect(),
            )
        };
        assert_eq!(got, expected);
        assert_eq!(run(&mut c, &["XREAD", "STREAMS", "a", "$"]), Value::Nil);
        let last = run(&mut c, &["XREAD", "STREAMS", "a", "+"]);
        let body = Value::Array(vec![entry("2-0", &["f", "a2"])]);
        let expected = if resp3 {
            Value::Map(vec![(bulk("a"), body)])
        } else {
            Value::Array(vec![Value::Array(vec![bulk("a"), body])])
        };
        assert_eq!(last, expected);
        assert_eq!(
            err(&mut c, &["XREAD", "STREAMS", "a", ">"]),
            "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
        );
        assert_eq!(
            err(&mut c, &["XREAD", "STREAMS", "a", "b", "0"]),
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID, '+', or '$' must be specified."
        );
        assert_eq!(
            err(&mut c, &["XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"]),
            "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(
            err(&mut c, &["XREAD", "BLOCK", "-1", "STREAMS", "a", "$"]),
            "ERR timeout is negative"
        );
        assert_eq!(
            err(&mut c, &["XREAD", "BLOCK", "x", "STREAMS", "a", "$"]),
            "ERR timeout is not an integer or out of range"
        );
        assert_eq!(
            err(&mut c, &["XREAD", "COUNT", "1", "a", "0"]),
            "ERR syntax error"
        );
    }
}

#[test]
fn block_timeouts_answer_a_null_array_in_both_protocols() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut raw = server.raw();
    raw.send_cmd(&[b"XREAD", b"BLOCK", b"50", b"STREAMS", b"s", b"$"]);
    assert_eq!(raw.read_raw2(), b"*-1\r\n");
    raw.send_cmd(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"50",
        b"STREAMS",
        b"s",
        b">",
    ]);
    assert_eq!(raw.read_raw2(), b"*-1\r\n");
    raw.send_cmd(&[b"HELLO", b"3"]);
    let _ = raw.read3();
    raw.send_cmd(&[b"XREAD", b"BLOCK", b"50", b"STREAMS", b"s", b"$"]);
    assert!(matches!(raw.read3(), F3::Null));
    raw.send_cmd(&[b"XREAD", b"BLOCK", b"50", b"STREAMS", b"nokey", b"+"]);
    assert!(matches!(raw.read3(), F3::Null));
    assert_eq!(info_field(&mut c, "clients", "blocked_clients"), 0);
    // Inside MULTI a blocking read does not block: it answers nil at once.
    run(&mut c, &["MULTI"]);
    run(&mut c, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    assert_eq!(run(&mut c, &["EXEC"]), Value::Array(vec![Value::Nil]));
}

#[test]
fn blocked_xread_clients_are_woken_by_xadd_with_dollar_resolved() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "1", "f", "old"]);
    let first = spawn_query(
        &server,
        false,
        &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
    );
    wait_blocked(&mut c, 1);
    let second = spawn_query(
        &server,
        true,
        &["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "$", "$"],
    );
    wait_blocked(&mut c, 2);
    assert_eq!(info_field(&mut c, "clients", "total_blocking_keys"), 2);
    // A write to another key leaves them blocked.
    run(&mut c, &["XADD", "unrelated", "*", "f", "v"]);
    run(&mut c, &["XADD", "s", "2", "f", "new"]);
    let body = Value::Array(vec![entry("2-0", &["f", "new"])]);
    assert_eq!(
        first.recv_timeout(WAIT).unwrap().unwrap(),
        Value::Array(vec![Value::Array(vec![bulk("s"), body.clone()])])
    );
    assert_eq!(
        second.recv_timeout(WAIT).unwrap().unwrap(),
        Value::Map(vec![(bulk("s"), body)])
    );
    wait_blocked(&mut c, 0);
    // A reader blocked on a missing key is served when XADD creates it.
    let third = spawn_query(
        &server,
        false,
        &["XREAD", "BLOCK", "0", "STREAMS", "fresh", "$"],
    );
    wait_blocked(&mut c, 1);
    run(&mut c, &["XADD", "fresh", "7", "f", "v"]);
    let Value::Array(got) = third.recv_timeout(WAIT).unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(got.len(), 1);
}

#[test]
fn blocked_xreadgroup_consumers_get_distinct_entries_first_blocked_first() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let read = |name: &'static str| {
        spawn_query(
            &server,
            false,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                name,
                "COUNT",
                "1",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        )
    };
    let alice = read("alice");
    wait_blocked(&mut c, 1);
    let bob = read("bob");
    wait_blocked(&mut c, 2);
    run(&mut c, &["XADD", "s", "1", "n", "1"]);
    let got = alice.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        got,
        Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![entry("1-0", &["n", "1"])])
        ])])
    );
    // The one entry went to alice only; bob still waits.
    assert!(bob.recv_timeout(Duration::from_millis(200)).is_err());
    wait_blocked(&mut c, 1);
    run(&mut c, &["XADD", "s", "2", "n", "2"]);
    let got = bob.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        got,
        Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![entry("2-0", &["n", "2"])])
        ])])
    );
    let Value::Array(summary) = run(&mut c, &["XPENDING", "s", "g"]) else {
        panic!()
    };
    assert_eq!(summary[0], Value::Int(2));
}

#[test]
fn blocked_xreadgroup_is_woken_with_nogroup_when_key_or_group_goes() {
    // Redis 8 re-runs the blocked command, so a stream deleted, flushed or replaced by one
    // without the group gets the NOGROUP a first run would get, every time.
    const NOGROUP: &str =
        "NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option";
    let server = TestServer::start();
    let mut c = server.client(false);
    let args = [
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ];
    let ways: [&[&[&str]]; 6] = [
        &[&["DEL", "s"]],
        &[&["UNLINK", "s"]],
        &[&["FLUSHDB"]],
        &[&["FLUSHALL"]],
        &[&["XGROUP", "DESTROY", "s", "g"]],
        &[
            &["MULTI"],
            &["DEL", "s"],
            &["XADD", "s", "*", "f", "v"],
            &["EXEC"],
        ],
    ];
    let mut errors = 0;
    for resp3 in [false, true] {
        for way in ways {
            run(&mut c, &["DEL", "s"]);
            run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
            let waiting = spawn_query(&server, resp3, &args);
            wait_blocked(&mut c, 1);
            for step in way {
                run(&mut c, step);
            }
            assert_eq!(
                waiting.recv_timeout(WAIT).unwrap().unwrap_err(),
                NOGROUP,
                "{way:?} resp3={resp3}"
            );
            wait_blocked(&mut c, 0);
            errors += 1;
        }
    }
    // Errors count in errorstats under their code.
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "GROUP", "nogroup", "c", "STREAMS", "s", ">"]
        ),
        "NOGROUP No such key 's' or consumer group 'nogroup' in XREADGROUP with GROUP option"
    );
    let stats = text(&mut c, &["INFO", "errorstats"]);
    assert!(
        stats.contains(&format!("errorstat_NOGROUP:count={}", errors + 1)),
        "{stats}"
    );
    assert!(!stats.contains("errorstat_UNBLOCKED"), "{stats}");
}

#[test]
fn a_client_disconnecting_while_blocked_leaves_nothing_behind() {
    let server = TestServer::start();
    let mut c = server.client(false);
    {
        let mut raw = server.raw();
        raw.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]);
        wait_blocked(&mut c, 1);
        assert_eq!(info_field(&mut c, "clients", "total_blocking_keys"), 1);
    }
    wait_blocked(&mut c, 0);
    assert_eq!(info_field(&mut c, "clients", "total_blocking_keys"), 0);
    // A later XADD serves nobody and the server is fine.
    run(&mut c, &["XADD", "s", "*", "f", "v"]);
    assert_eq!(int(&mut c, &["XLEN", "s"]), 1);
}

#[test]
fn watch_on_a_stream_key_is_dirtied_by_xadd() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let mut other = server.client(false);
    run(&mut c, &["XADD", "s", "1", "f", "v"]);
    run(&mut c, &["WATCH", "s"]);
    run(&mut other, &["XADD", "s", "2", "f", "v"]);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["XLEN", "s"]);
    assert_eq!(run(&mut c, &["EXEC"]), Value::Nil);
    // Unwatched, the same transaction runs.
    run(&mut c, &["MULTI"]);
    run(&mut c, &["XLEN", "s"]);
    assert_eq!(run(&mut c, &["EXEC"]), Value::Array(vec![Value::Int(2)]));
}

#[test]
fn generic_key_commands_see_streams() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s1", "*", "f", "v"]);
    run(&mut c, &["XGROUP", "CREATE", "s2", "g", "$", "MKSTREAM"]);
    assert_eq!(int(&mut c, &["DBSIZE"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "s1", "s2", "s3"]), 2);
    assert_eq!(
        run(&mut c, &["SCAN", "0", "TYPE", "stream", "COUNT", "100"]),
        run(&mut c, &["SCAN", "0", "COUNT", "100"])
    );
    assert_eq!(text(&mut c, &["TYPE", "nokey"]), "none");
    assert_eq!(int(&mut c, &["DEL", "s1"]), 1);
    assert_eq!(int(&mut c, &["DBSIZE"]), 1);
    let mut raw = server.raw();
    raw.send_cmd(&[b"XLEN", b"s2"]);
    assert_eq!(raw.read2(), F2::Integer(0));
    raw.send_cmd(&[b"XADD", b"s2"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR wrong number of arguments for 'xadd' command"
    );
    run(&mut c, &["FLUSHALL"]);
    assert_eq!(int(&mut c, &["DBSIZE"]), 0);
}

/// Runs each command of `script`, whatever it answers.
fn run_script(c: &mut redis::Connection, script: &[&[&str]]) {
    for args in script {
        let mut command = cmd(args[0]);
        for a in &args[1..] {
            command.arg(*a);
        }
        let _: Value = command.query(c).unwrap();
    }
}

/// Reads one keyevent message per `(event, key)`, in order, from a pattern subscriber.
fn expect_keyevents(sub: &mut brooklet::RawConn, expected: &[(&str, &str)]) {
    for (event, key) in expected {
        let F2::Array(parts) = sub.read2() else {
            panic!("not a message")
        };
        assert_eq!(
            (parts[2].clone(), parts[3].clone()),
            (
                F2::BulkString(format!("__keyevent@0__:{event}").into_bytes()),
                F2::BulkString(key.as_bytes().to_vec())
            )
        );
    }
}

#[test]
fn stream_commands_publish_redis_keyspace_events() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    let _ = sub.read2();
    let script: &[&[&str]] = &[
        &["XADD", "s", "1", "f", "v"],
        &["XADD", "s", "MAXLEN", "1", "2", "f", "v"],
        &["XDEL", "s", "2"],
        &["XDEL", "s", "99"],
        &["XADD", "s", "3", "f", "v"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["XSETID", "s", "10"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "new", "STREAMS", "m", "0"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XADD", "n", "NOMKSTREAM", "*", "f", "v"],
        &["XADD", "last", "*", "f", "v"],
    ];
    run_script(&mut c, script);
    let expected = [
        ("xadd", "s"),
        ("xadd", "s"),
        ("xtrim", "s"),
        ("xdel", "s"),
        ("xadd", "s"),
        ("xtrim", "s"),
        ("xsetid", "s"),
        ("xgroup-create", "s"),
        ("xgroup-create", "m"),
        ("xgroup-createconsumer", "s"),
        ("xgroup-delconsumer", "s"),
        ("xgroup-setid", "s"),
        ("xgroup-createconsumer", "m"),
        ("xgroup-destroy", "s"),
        ("xadd", "last"),
    ];
    expect_keyevents(&mut sub, &expected);
}

#[test]
fn xclaim_options_set_idle_retry_count_force_and_last_id() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for id in 1..=3 {
        run(
            &mut c,
            &["XADD", "s", &id.to_string(), "f", &id.to_string()],
        );
    }
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(
        run(
            &mut c,
            &[
                "XCLAIM",
                "s",
                "g",
                "bob",
                "0",
                "1",
                "RETRYCOUNT",
                "7",
                "IDLE",
                "50000",
                "JUSTID"
            ]
        ),
        Value::Array(vec![bulk("1-0")])
    );
    let Value::Array(idle) = run(
        &mut c,
        &["XPENDING", "s", "g", "IDLE", "40000", "-", "+", "10"],
    ) else {
        panic!()
    };
    let Value::Array(p) = &idle[0] else { panic!() };
    assert_eq!(
        (&p[0], &p[1], &p[3]),
        (&bulk("1-0"), &bulk("bob"), &Value::Int(7))
    );
    let Value::Int(ms) = p[2] else { panic!() };
    assert!((50_000..60_000).contains(&ms), "idle {ms}");
    // FORCE creates a pending entry for an existing entry, never for a missing one.
    assert_eq!(
        run(&mut c, &["XCLAIM", "s", "g", "carol", "0", "2", "FORCE"]),
        Value::Array(vec![entry("2-0", &["f", "2"])])
    );
    assert_eq!(
        run(&mut c, &["XCLAIM", "s", "g", "carol", "0", "9", "FORCE"]),
        Value::Array(vec![])
    );
    run(
        &mut c,
        &[
            "XCLAIM", "s", "g", "carol", "0", "3", "FORCE", "JUSTID", "LASTID", "100",
        ],
    );
    let Value::Array(groups) = run(&mut c, &["XINFO", "GROUPS", "s"]) else {
        panic!()
    };
    let g = as_map(groups[0].clone());
    assert_eq!(g[3], ("last-delivered-id".into(), bulk("100-0")));
    assert_eq!(g[2], ("pending".into(), Value::Int(3)));
    assert_eq!(
        err(
            &mut c,
            &["XCLAIM", "s", "g", "dave", "0", "2", "RETRYCOUNT", "abc"]
        ),
        "ERR Invalid RETRYCOUNT option argument for XCLAIM"
    );
    assert_eq!(
        err(
            &mut c,
            &["XCLAIM", "s", "g", "dave", "0", "2", "LASTID", "abc"]
        ),
        "ERR Invalid stream ID specified as stream command argument"
    );
}

#[test]
fn blocked_xread_keeps_waiting_when_its_key_is_deleted() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "5", "f", "old"]);
    let waiting = spawn_query(&server, true, &["XREAD", "BLOCK", "0", "STREAMS", "s", "+"]);
    // `+` on a non-empty stream reads its last entry at once.
    assert_eq!(
        waiting.recv_timeout(WAIT).unwrap().unwrap(),
        Value::Map(vec![(
            bulk("s"),
            Value::Array(vec![entry("5-0", &["f", "old"])])
        )])
    );
    let waiting = spawn_query(
        &server,
        false,
        &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
    );
    wait_blocked(&mut c, 1);
    run(&mut c, &["DEL", "s"]);
    assert!(waiting.recv_timeout(Duration::from_millis(200)).is_err());
    assert_eq!(info_field(&mut c, "clients", "blocked_clients"), 1);
    // `$` was resolved to 5-0 when it blocked: a recreated stream is served above it.
    run(&mut c, &["XADD", "s", "3", "f", "low"]);
    run(&mut c, &["XADD", "s", "6", "f", "high"]);
    assert_eq!(
        waiting.recv_timeout(WAIT).unwrap().unwrap(),
        Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![entry("6-0", &["f", "high"])])
        ])])
    );
}

/// Cases a differential run against redis-server found, with what Redis 7.4's
/// `t_stream.c` and `util.c` do: argument order, option parsing, and IDs read as `strtoull`
/// reads numbers.
#[test]
fn argument_parsing_matches_redis_74() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
        // IDs: a sign or leading white space is accepted, and `-` wraps modulo 2^64.
        assert_eq!(text(&mut c, &["XADD", "q", "+6-1", "a", "b"]), "6-1");
        assert_eq!(text(&mut c, &["XADD", "q", " 7-1", "a", "b"]), "7-1");
        assert_eq!(text(&mut c, &["XADD", "q", "0008", "a", "b"]), "8-0");
        assert_eq!(
            text(&mut c, &["XADD", "q", "10- -5", "a", "b"]),
            "10-18446744073709551611"
        );
        assert_eq!(err(&mut c, &["XADD", "q", "11--5", "a", "b"]), INVALID_ID);
        assert_eq!(err(&mut c, &["XADD", "q", "11-5 ", "a", "b"]), INVALID_ID);
        assert_eq!(err(&mut c, &["XADD", "q", "11-+", "a", "b"]), INVALID_ID);
        // The ID is parsed with the options, before LIMIT's rules are checked.
        assert_eq!(
            err(
                &mut c,
                &["XADD", "f", "MAXLEN", "5", "LIMIT", "10", "bad", "a", "b"]
            ),
            INVALID_ID
        );
        assert_eq!(
            err(&mut c, &["XADD", "f", "LIMIT", "10", "bad", "a", "b"]),
            INVALID_ID
        );
        // Options that take every argument leave XADD without an ID: an arity error.
        for tail in [
            &["MAXLEN", "~", "5"][..],
            &["MINID", "=", "5"],
            &["MAXLEN", "5"],
        ] {
            let mut args = vec!["XADD", "f"];
            args.extend_from_slice(tail);
            assert_eq!(
                err(&mut c, &args),
                "ERR wrong number of arguments for 'xadd' command"
            );
        }
        // XGROUP SETID takes `-` and `+`; CREATE does not.
        run(&mut c, &["XGROUP", "CREATE", "q", "g", "0"]);
        assert_eq!(text(&mut c, &["XGROUP", "SETID", "q", "g", "+"]), "OK");
        assert_eq!(text(&mut c, &["XGROUP", "SETID", "q", "g", "-"]), "OK");
        assert_eq!(
            err(&mut c, &["XGROUP", "CREATE", "q", "h", "+"]),
            INVALID_ID
        );
        assert_eq!(
            err(
                &mut c,
                &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", "+"]
            ),
            "ERR The + ID is meaningless in the context of XREADGROUP: you want to read the \
             history of this consumer by specifying a proper ID, or use the > ID to get new \
             messages. The + ID would just return an empty result set."
        );
        assert_eq!(
            err(&mut c, &["XREAD", "STREAMS", "a", "b", "0"]),
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID, '+', or '$' must be specified."
        );
        // XINFO STREAM looks the key up before reading its options; a negative COUNT is
        // the default of 10.
        assert_eq!(
            err(&mut c, &["XINFO", "STREAM", "nokey", "FOO"]),
            "ERR no such key"
        );
        for i in 1..=15 {
            run(&mut c, &["XADD", "full", &format!("{i}-0"), "f", "v"]);
        }
        for (count, entries) in [("-1", 10), ("0", 15), ("3", 3)] {
            let info = as_map(run(
                &mut c,
                &["XINFO", "STREAM", "full", "FULL", "COUNT", count],
            ));
            let listed = info
                .into_iter()
                .find(|(k, _)| k == "entries")
                .map(|(_, v)| match v {
                    Value::Array(a) => a.len(),
                    v => panic!("entries: {v:?}"),
                });
            assert_eq!(listed, Some(entries), "COUNT {count}");
        }
    }
}

#[test]
fn new_key_and_key_miss_events_are_published_when_asked_for() {
    let server = TestServer::start();
    let mut c = server.client(false);
    // `n` and `m` are not part of `A`; CONFIG GET shows `m` but not `n` next to `A`, as
    // Redis does, and `n` stays on all the same.
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "EAnm"]);
    let Value::Array(got) = run(&mut c, &["CONFIG", "GET", "notify-keyspace-events"]) else {
        panic!("not an array")
    };
    assert_eq!(got[1], bulk("AEm"));
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    let _ = sub.read2();
    let script: &[&[&str]] = &[
        &["XADD", "s", "1", "f", "v"],
        &["XADD", "s", "2", "f", "v"],
        &["XLEN", "nokey"],
        &["XRANGE", "r", "-", "+"],
        &["XREAD", "STREAMS", "rd", "0"],
        &["TYPE", "t"],
        &["EXISTS", "e", "s"],
        &["XACK", "a", "g", "1"],
        &["XDEL", "d", "1"],
        &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
    ];
    run_script(&mut c, script);
    assert!(
        err(&mut c, &["XINFO", "STREAM", "i"]).contains("no such key"),
        "XINFO STREAM of a missing key"
    );
    run(&mut c, &["XADD", "last", "*", "f", "v"]);
    let expected = [
        ("new", "s"),
        ("xadd", "s"),
        ("xadd", "s"),
        ("keymiss", "nokey"),
        ("keymiss", "r"),
        ("keymiss", "rd"),
        ("keymiss", "rd"),
        ("keymiss", "t"),
        ("keymiss", "e"),
        ("keymiss", "a"),
        ("new", "m"),
        ("xgroup-create", "m"),
        ("keymiss", "i"),
        ("new", "last"),
        ("xadd", "last"),
    ];
    expect_keyevents(&mut sub, &expected);
}

#[test]
fn client_unblock_answers_a_blocked_read_with_its_timeout_or_an_error() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for resp3 in [false, true] {
        // TIMEOUT (the default): the blocked XREAD gets what its timeout would give.
        let mut raw = server.raw();
        if resp3 {
            raw.send_cmd(&[b"HELLO", b"3"]);
            let _ = raw.read3();
        }
        raw.send_cmd(&[b"CLIENT", b"ID"]);
        let id = if resp3 {
            match raw.read3() {
                F3::Number { data, .. } => data,
                f => panic!("{f:?}"),
            }
        } else {
            match raw.read2() {
                F2::Integer(n) => n,
                f => panic!("{f:?}"),
            }
        };
        raw.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]);
        wait_blocked(&mut c, 1);
        assert_eq!(int(&mut c, &["CLIENT", "UNBLOCK", &id.to_string()]), 1);
        if resp3 {
            assert!(matches!(raw.read3(), F3::Null), "RESP3 timeout reply");
        } else {
            assert_eq!(raw.read_raw2(), b"*-1\r\n");
        }
        wait_blocked(&mut c, 0);
        // ERROR: the UNBLOCKED error; the connection then serves commands again.
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        raw.send_cmd(&[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"c",
            b"BLOCK",
            b"0",
            b"STREAMS",
            b"s",
            b">",
        ]);
        wait_blocked(&mut c, 1);
        assert_eq!(
            int(&mut c, &["CLIENT", "UNBLOCK", &id.to_string(), "error"]),
            1
        );
        let text = if resp3 {
            match raw.read3() {
                F3::SimpleError { data, .. } => data.to_string(),
                f => panic!("{f:?}"),
            }
        } else {
            error_text(&raw.read2()).unwrap()
        };
        assert_eq!(text, "UNBLOCKED client unblocked via CLIENT UNBLOCK");
        wait_blocked(&mut c, 0);
        raw.send_cmd(&[b"PING"]);
        if resp3 {
            assert!(matches!(raw.read3(), F3::SimpleString { data, .. } if &data[..] == b"PONG"));
        } else {
            assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
        }
        // Nobody blocked: 0. Bad reason, bad id: Redis's errors.
        assert_eq!(int(&mut c, &["CLIENT", "UNBLOCK", &id.to_string()]), 0);
        assert_eq!(int(&mut c, &["CLIENT", "UNBLOCK", "999999"]), 0);
        assert_eq!(
            err(&mut c, &["CLIENT", "UNBLOCK", "1", "LATER"]),
            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
        );
        assert_eq!(
            err(&mut c, &["CLIENT", "UNBLOCK", "x"]),
            "ERR value is not an integer or out of range"
        );
        run(&mut c, &["DEL", "s"]);
    }
}

#[test]
fn xgroup_entriesread_beyond_entries_added_is_capped_so_lag_is_zero() {
    let server = TestServer::start_with(|c| c.enable_debug_command = "yes".into());
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        for id in ["1-0", "2-0", "3-0"] {
            run(&mut c, &["XADD", "s", id, "f", "v"]);
        }
        let group = |c: &mut redis::Connection| {
            let Value::Array(groups) = run(c, &["XINFO", "GROUPS", "s"]) else {
                panic!("not an array")
            };
            let fields = as_map(groups[0].clone());
            let field = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
            (field("entries-read"), field("lag"))
        };
        run(
            &mut c,
            &["XGROUP", "CREATE", "s", "g", "$", "ENTRIESREAD", "100"],
        );
        assert_eq!(
            group(&mut c),
            (Value::Int(3), Value::Int(0)),
            "resp3={resp3}"
        );
        run(
            &mut c,
            &["XGROUP", "SETID", "s", "g", "1-0", "ENTRIESREAD", "1"],
        );
        assert_eq!(
            group(&mut c),
            (Value::Int(1), Value::Int(2)),
            "resp3={resp3}"
        );
        run(
            &mut c,
            &["XGROUP", "SETID", "s", "g", "3-0", "ENTRIESREAD", "7"],
        );
        assert_eq!(
            group(&mut c),
            (Value::Int(3), Value::Int(0)),
            "resp3={resp3}"
        );
        // The capped counter is what is stored: it survives a reload.
        run(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(
            group(&mut c),
            (Value::Int(3), Value::Int(0)),
            "resp3={resp3}"
        );
    }
}

/// The `calls` and `failed_calls` of a command in INFO commandstats (0, 0 if never called).
fn command_calls(c: &mut redis::Connection, name: &str) -> (i64, i64) {
    let stats = text(c, &["INFO", "commandstats"]);
    let Some(line) = stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
    else {
        return (0, 0);
    };
    let field = |f: &str| {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("calls"), field("failed_calls"))
}

#[test]
fn a_blocked_read_is_one_call_in_commandstats_however_often_it_is_rerun() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for resp3 in [false, true] {
        run(&mut c, &["DEL", "s"]);
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        run(&mut c, &["CONFIG", "RESETSTAT"]);
        let args = [
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ];
        // Two consumers wait; the first XADD serves one and re-runs the other for nothing.
        let first = spawn_query(&server, resp3, &args);
        wait_blocked(&mut c, 1);
        let second = spawn_query(&server, resp3, &args);
        wait_blocked(&mut c, 2);
        run(&mut c, &["XADD", "s", "*", "f", "1"]);
        first.recv_timeout(WAIT).unwrap().unwrap();
        wait_blocked(&mut c, 1);
        run(&mut c, &["XADD", "s", "*", "f", "2"]);
        second.recv_timeout(WAIT).unwrap().unwrap();
        wait_blocked(&mut c, 0);
        assert_eq!(command_calls(&mut c, "xreadgroup"), (2, 0), "resp3={resp3}");
        // A timeout answers without a run: it counts the call.
        let mut timed = args;
        timed[5] = "20";
        let nothing = spawn_query(&server, resp3, &timed);
        assert!(matches!(
            nothing.recv_timeout(WAIT).unwrap().unwrap(),
            Value::Nil
        ));
        assert_eq!(command_calls(&mut c, "xreadgroup"), (3, 0), "resp3={resp3}");
        // So does CLIENT UNBLOCK ... ERROR, as a failed call; XREAD alike.
        let mut raw = server.raw();
        raw.send_cmd(&[b"CLIENT", b"ID"]);
        let F2::Integer(id) = raw.read2() else {
            panic!("no id")
        };
        raw.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]);
        wait_blocked(&mut c, 1);
        run(&mut c, &["XADD", "other", "*", "f", "v"]);
        assert_eq!(
            int(&mut c, &["CLIENT", "UNBLOCK", &id.to_string(), "ERROR"]),
            1
        );
        assert!(error_text(&raw.read2()).unwrap().starts_with("UNBLOCKED"));
        wait_blocked(&mut c, 0);
        assert_eq!(command_calls(&mut c, "xread"), (1, 1), "resp3={resp3}");
        assert_eq!(command_calls(&mut c, "xreadgroup"), (3, 0), "resp3={resp3}");
    }
}
