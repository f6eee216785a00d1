//! End-to-end tests of Redis 8.6's idempotent producers: XADD IDMP / IDMPAUTO, XCFGSET,
//! XIDMPRECORD, XINFO STREAM's IDMP fields in RESP2 and RESP3, their errors, keyspace
//! events, COMMAND entries, and their durability across DEBUG RELOAD and a restart.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{TestServer, err, run};
use brooklet_server::Config;
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;

fn xlen(c: &mut redis::Connection, key: &str) -> i64 {
    cmd("XLEN").arg(key).query(c).unwrap()
}

fn id(c: &mut redis::Connection, args: &[&str]) -> String {
    match run(c, args) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        v => panic!("{args:?}: not an ID: {v:?}"),
    }
}

/// XINFO STREAM's field `name`, as an integer (RESP2 array or RESP3 map).
fn info_int(c: &mut redis::Connection, key: &str, full: bool, name: &str) -> i64 {
    let mut args = vec!["XINFO", "STREAM", key];
    if full {
        args.push("FULL");
    }
    let pairs: Vec<(Value, Value)> = match run(c, &args) {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        Value::Map(m) => m,
        v => panic!("XINFO: {v:?}"),
    };
    for (k, v) in pairs {
        let k = match k {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::SimpleString(s) => s,
            k => panic!("key {k:?}"),
        };
        if k == name {
            let Value::Int(n) = v else {
                panic!("{name}: {v:?}")
            };
            return n;
        }
    }
    panic!("{name} missing")
}

/// The names XINFO STREAM lists, in order.
fn info_names(c: &mut redis::Connection, args: &[&str]) -> Vec<String> {
    let keys: Vec<Value> = match run(c, args) {
        Value::Array(items) => items.into_iter().step_by(2).collect(),
        Value::Map(m) => m.into_iter().map(|(k, _)| k).collect(),
        v => panic!("{v:?}"),
    };
    keys.into_iter()
        .map(|k| match k {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::SimpleString(s) => s,
            k => panic!("{k:?}"),
        })
        .collect()
}

#[test]
fn duplicates_return_the_original_id_and_append_nothing() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        let id1 = id(
            &mut c,
            &[
                "XADD",
                "s",
                "IDMP",
                "p1",
                "payment-abc",
                "*",
                "amount",
                "100",
            ],
        );
        let id2 = id(
            &mut c,
            &[
                "XADD",
                "s",
                "IDMP",
                "p1",
                "payment-abc",
                "*",
                "amount",
                "200",
            ],
        );
        assert_eq!(id1, id2);
        assert_eq!(xlen(&mut c, "s"), 1);
        // Another producer's namespace is its own.
        let id3 = id(
            &mut c,
            &["XADD", "s", "IDMP", "p2", "payment-abc", "*", "amount", "1"],
        );
        assert_ne!(id1, id3);
        // IDMPAUTO: the same pairs in another order are the same message.
        let a = id(
            &mut c,
            &["XADD", "s", "IDMPAUTO", "p1", "*", "f1", "a", "f2", "b"],
        );
        let b = id(
            &mut c,
            &["XADD", "s", "IDMPAUTO", "p1", "*", "f2", "b", "f1", "a"],
        );
        assert_eq!(a, b);
        let d = id(
            &mut c,
            &["XADD", "s", "IDMPAUTO", "p1", "*", "f2", "a", "f1", "b"],
        );
        assert_ne!(a, d);
        assert_eq!(xlen(&mut c, "s"), 4);
        // Options in any order, with trimming: a duplicate trims nothing.
        let e = id(
            &mut c,
            &[
                "XADD", "s", "MAXLEN", "~", "100", "IDMP", "p3", "r", "*", "f", "v",
            ],
        );
        let e2 = id(
            &mut c,
            &[
                "XADD", "s", "IDMP", "p3", "r", "MAXLEN", "=", "1", "*", "f", "v",
            ],
        );
        assert_eq!(e, e2);
        assert_eq!(xlen(&mut c, "s"), 5);
        // NOMKSTREAM on a missing key: a null, nothing created.
        run(&mut c, &["DEL", "gone"]);
        let v = run(
            &mut c,
            &[
                "XADD",
                "gone",
                "NOMKSTREAM",
                "IDMP",
                "p",
                "i",
                "*",
                "f",
                "v",
            ],
        );
        assert!(matches!(v, Value::Nil), "{v:?}");
        // The original ID even after the entry was deleted.
        run(&mut c, &["XDEL", "s", &id1]);
        let again = id(
            &mut c,
            &[
                "XADD",
                "s",
                "IDMP",
                "p1",
                "payment-abc",
                "*",
                "amount",
                "300",
            ],
        );
        assert_eq!(again, id1);
        assert_eq!(xlen(&mut c, "s"), 4);
        assert_eq!(info_int(&mut c, "s", false, "pids-tracked"), 3);
        assert_eq!(info_int(&mut c, "s", false, "iids-tracked"), 5);
        assert_eq!(info_int(&mut c, "s", false, "iids-added"), 5);
        assert_eq!(info_int(&mut c, "s", true, "iids-duplicates"), 4);
        assert_eq!(info_int(&mut c, "s", true, "idmp-duration"), 100);
        assert_eq!(info_int(&mut c, "s", true, "idmp-maxsize"), 100);
    }
}

#[test]
fn errors_are_redis_texts_and_change_nothing() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["DEL", "s"]);
    for (args, want) in [
        (
            &["XADD", "s", "IDMP", "p1", "*", "f", "v"][..],
            "ERR Invalid stream ID specified as stream command argument",
        ),
        (
            &["XADD", "s", "IDMP", "p1", "i", "1-1", "f", "v"],
            "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs",
        ),
        (
            &["XADD", "s", "IDMPAUTO", "p1", "1-*", "f", "v"],
            "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs",
        ),
        (
            &[
                "XADD", "s", "IDMP", "p1", "i", "IDMP", "p2", "j", "*", "f", "v",
            ],
            "ERR IDMP/IDMPAUTO specified multiple times",
        ),
        (
            &[
                "XADD", "s", "IDMPAUTO", "p1", "IDMP", "p2", "j", "*", "f", "v",
            ],
            "ERR IDMP/IDMPAUTO specified multiple times",
        ),
        (
            &["XADD", "s", "IDMP", "", "i", "*", "f", "v"],
            "ERR IDMP requires a non-empty producer ID",
        ),
        (
            &["XADD", "s", "IDMP", "p", "", "*", "f", "v"],
            "ERR IDMP requires a non-empty idempotent ID",
        ),
        (
            &["XADD", "s", "IDMPAUTO", "", "*", "f", "v"],
            "ERR IDMPAUTO requires a non-empty producer ID",
        ),
        (&["XCFGSET", "s", "IDMP-DURATION", "5"], "ERR no such key"),
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    assert_eq!(run(&mut c, &["EXISTS", "s"]), Value::Int(0));
    run(&mut c, &["XADD", "s", "IDMP", "p1", "r", "*", "f", "v"]);
    run(&mut c, &["XCFGSET", "s", "IDMP-DURATION", "86400"]);
    for (args, want) in [
        (
            &["XCFGSET", "s"][..],
            "ERR At least one parameter must be specified",
        ),
        (&["XCFGSET", "s", "IDMP-DURATION"], "ERR syntax error"),
        (&["XCFGSET", "s", "INVALID"], "ERR syntax error"),
        (
            &["XCFGSET", "s", "IDMP-DURATION", "A"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["XCFGSET", "s", "IDMP-DURATION", "86401"],
            "ERR IDMP-DURATION must be between 1 and 86400 seconds",
        ),
        (
            &["XCFGSET", "s", "IDMP-MAXSIZE", "0"],
            "ERR IDMP-MAXSIZE must be between 1 and 10000 entries",
        ),
        (
            &["XCFGSET", "s", "IDMP-MAXSIZE", "5", "IDMP-DURATION", "0"],
            "ERR IDMP-DURATION must be between 1 and 86400 seconds",
        ),
        (
            &["XIDMPRECORD", "s", "p", "i", "9-9"],
            "ERR The specified stream ID was deleted or doesn't exist",
        ),
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    // Nothing changed: the settings, and the remembered iid.
    assert_eq!(info_int(&mut c, "s", false, "idmp-duration"), 86400);
    assert_eq!(info_int(&mut c, "s", false, "idmp-maxsize"), 100);
    assert_eq!(xlen(&mut c, "s"), 1);
    // CONFIG's bounds.
    for (name, bad) in [
        ("stream-idmp-duration", "0"),
        ("stream-idmp-duration", "86401"),
        ("stream-idmp-maxsize", "0"),
        ("stream-idmp-maxsize", "10001"),
    ] {
        let e = err(&mut c, &["CONFIG", "SET", name, bad]);
        assert!(e.contains("must be between"), "{e}");
    }
}

#[test]
fn xcfgset_clears_on_change_only_and_new_streams_take_the_defaults() {
    let server = TestServer::start();
    let mut c = server.client(true);
    run(&mut c, &["DEL", "s"]);
    let id1 = id(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "v"]);
    run(&mut c, &["XADD", "s", "IDMP", "p2", "req-1", "*", "f", "v"]);
    // Setting the same value keeps the history.
    assert_eq!(
        run(
            &mut c,
            &[
                "XCFGSET",
                "s",
                "IDMP-DURATION",
                "100",
                "IDMP-MAXSIZE",
                "100"
            ]
        ),
        Value::Okay
    );
    assert_eq!(
        id(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "v"]),
        id1
    );
    // A change forgets every producer's iids, not the counters.
    run(&mut c, &["XCFGSET", "s", "IDMP-MAXSIZE", "2"]);
    assert_eq!(info_int(&mut c, "s", false, "pids-tracked"), 0);
    assert_eq!(info_int(&mut c, "s", false, "iids-tracked"), 0);
    assert_eq!(info_int(&mut c, "s", false, "iids-added"), 2);
    assert_eq!(info_int(&mut c, "s", false, "iids-duplicates"), 1);
    assert_ne!(
        id(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "v"]),
        id1
    );
    // MAXSIZE 2: the oldest is evicted; a duplicate does not refresh an iid.
    let r2 = id(&mut c, &["XADD", "s", "IDMP", "p1", "req-2", "*", "f", "v"]);
    run(&mut c, &["XADD", "s", "IDMP", "p1", "req-3", "*", "f", "v"]);
    assert_eq!(
        id(&mut c, &["XADD", "s", "IDMP", "p1", "req-2", "*", "f", "v"]),
        r2
    );
    assert_eq!(info_int(&mut c, "s", false, "iids-tracked"), 2);
    // XIDMPRECORD maps a pair to an existing entry, once.
    assert_eq!(
        run(&mut c, &["XIDMPRECORD", "s", "p9", "x", &id1]),
        Value::Okay
    );
    assert_eq!(
        run(&mut c, &["XIDMPRECORD", "s", "p9", "x", &id1]),
        Value::Okay
    );
    assert_eq!(
        err(&mut c, &["XIDMPRECORD", "s", "p9", "x", &r2]),
        "ERR The specified IDMP producer-id/idempotent-id pair maps to a different stream ID"
    );
    assert_eq!(
        id(&mut c, &["XADD", "s", "IDMP", "p9", "x", "*", "f", "v"]),
        id1
    );
    // New streams take the server's defaults at creation.
    run(&mut c, &["CONFIG", "SET", "stream-idmp-duration", "7"]);
    run(&mut c, &["CONFIG", "SET", "stream-idmp-maxsize", "9"]);
    run(&mut c, &["DEL", "t"]);
    run(&mut c, &["XADD", "t", "*", "f", "v"]);
    assert_eq!(info_int(&mut c, "t", false, "idmp-duration"), 7);
    assert_eq!(info_int(&mut c, "t", false, "idmp-maxsize"), 9);
    assert_eq!(info_int(&mut c, "s", false, "idmp-duration"), 100);
    // Redis's positions: after recorded-first-entry-id, before groups / entries.
    let names = info_names(&mut c, &["XINFO", "STREAM", "t"]);
    let at = names
        .iter()
        .position(|n| n == "recorded-first-entry-id")
        .unwrap();
    assert_eq!(
        names[at + 1..at + 10],
        [
            "idmp-duration",
            "idmp-maxsize",
            "pids-tracked",
            "iids-tracked",
            "iids-added",
            "iids-duplicates",
            "max-age",
            "max-age-policy",
            "groups"
        ]
    );
    let names = info_names(&mut c, &["XINFO", "STREAM", "t", "FULL"]);
    let at = names
        .iter()
        .position(|n| n == "recorded-first-entry-id")
        .unwrap();
    assert_eq!(names[at + 1], "idmp-duration");
    assert_eq!(names[at + 7], "max-age");
    assert_eq!(names[at + 9], "entries");
}

#[test]
fn duplicates_publish_nothing_and_xcfgset_publishes_on_change() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    run(&mut c, &["DEL", "s"]);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    let _ = sub.read2();
    for args in [
        &["XADD", "s", "IDMP", "p", "i", "*", "f", "v"][..],
        &["XADD", "s", "IDMP", "p", "i", "*", "f", "v"],
        &["XCFGSET", "s", "IDMP-DURATION", "100"],
        &["XCFGSET", "s", "IDMP-DURATION", "50"],
        &["XADD", "last", "*", "f", "v"],
    ] {
        run(&mut c, args);
    }
    for (event, key) in [("xadd", "s"), ("xcfgset", "s"), ("xadd", "last")] {
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
fn command_info_and_docs_describe_them() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for (name, arity, words) in [
        (
            "xcfgset",
            -2,
            &["8.6.0", "IDMP-DURATION", "IDMP-MAXSIZE"][..],
        ),
        ("xidmprecord", 5, &["pid", "iid", "stream-id"]),
        ("xadd", -5, &["IDMPAUTO", "IDMP", "pid", "iid"]),
    ] {
        let Value::Array(info) = run(&mut c, &["COMMAND", "INFO", name]) else {
            panic!("no info")
        };
        let Value::Array(ref fields) = info[0] else {
            panic!("{name}: {info:?}")
        };
        assert_eq!(fields[1], Value::Int(arity), "{name}");
        let docs = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", name]));
        for word in words {
            assert!(docs.contains(word), "{name}: {word} missing from {docs}");
        }
    }
    run(&mut c, &["XADD", "s", "IDMP", "p", "i", "*", "f", "v"]);
    let stats = format!("{:?}", run(&mut c, &["INFO", "commandstats"]));
    assert!(stats.contains("cmdstat_xadd"), "{stats}");
}

fn snapshot(c: &mut redis::Connection) -> Vec<Value> {
    vec![
        run(c, &["XRANGE", "s", "-", "+"]),
        run(c, &["XINFO", "STREAM", "s", "FULL"]),
        run(c, &["XINFO", "STREAM", "t", "FULL"]),
    ]
}

fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.enable_debug_command = "yes".into();
        c.stream_node_max_entries = 3;
        c.stream_idmp_maxsize = 50;
    }
}

/// Adds IDMP entries, duplicates, settings and records in every way storage takes them:
/// appends to the tail log, a duplicate's count, an XCFGSET batch, XIDMPRECORD.
fn fill(c: &mut redis::Connection) -> Vec<(String, String, String)> {
    let mut sent = Vec::new();
    for i in 0..20 {
        let iid = format!("r{i}");
        let pid = format!("p{}", i % 3);
        let got = id(c, &["XADD", "s", "IDMP", &pid, &iid, "*", "n", &iid]);
        sent.push((pid, iid, got));
    }
    run(
        c,
        &["XADD", "s", "IDMPAUTO", "auto", "*", "a", "1", "b", "2"],
    );
    run(c, &["XADD", "s", "IDMP", "p0", "r0", "*", "dup", "1"]);
    run(c, &["XADD", "t", "IDMP", "q", "only", "*", "f", "v"]);
    run(c, &["XCFGSET", "t", "IDMP-MAXSIZE", "4"]);
    run(c, &["XADD", "t", "IDMP", "q", "after", "*", "f", "v"]);
    run(c, &["XADD", "t", "IDMP", "q", "after", "*", "f", "v"]);
    sent
}

fn duplicates_still_found(c: &mut redis::Connection, sent: &[(String, String, String)]) {
    let len = xlen(c, "s");
    for (pid, iid, want) in sent {
        assert_eq!(
            &id(c, &["XADD", "s", "IDMP", pid, iid, "*", "x", "y"]),
            want
        );
    }
    run(
        c,
        &["XADD", "s", "IDMPAUTO", "auto", "*", "b", "2", "a", "1"],
    );
    assert_eq!(xlen(c, "s"), len, "a duplicate was appended after a reload");
}

#[test]
fn idmp_state_survives_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(true);
    let sent = fill(&mut c);
    let before = snapshot(&mut c);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD changed the state");
    // A restart straight after appends: the tail log alone holds them.
    run(&mut c, &["XADD", "s", "IDMP", "late", "l1", "*", "f", "v"]);
    run(&mut c, &["XADD", "s", "IDMP", "late", "l1", "*", "f", "v"]);
    let before = snapshot(&mut c);
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    let mut c3 = server.client(true);
    assert_eq!(snapshot(&mut c3), before, "a restart changed the state");
    duplicates_still_found(&mut c, &sent);
    assert_eq!(info_int(&mut c, "t", false, "idmp-maxsize"), 4);
    assert_eq!(info_int(&mut c, "s", false, "idmp-maxsize"), 50);
    drop((c, c3));
    server.stop();
}

/// An iid is forgotten once its entry is IDMP-DURATION behind the clock (a sleep here is
/// the semantics under test, not waiting for readiness).
#[test]
fn iids_expire_after_the_duration() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["DEL", "s"]);
    run(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "v"]);
    run(&mut c, &["XCFGSET", "s", "IDMP-DURATION", "1"]);
    let id1 = id(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "v"]);
    assert_eq!(
        id(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "w"]),
        id1
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(info_int(&mut c, "s", false, "pids-tracked"), 0);
    assert_eq!(info_int(&mut c, "s", false, "iids-tracked"), 0);
    let id3 = id(&mut c, &["XADD", "s", "IDMP", "p1", "req-1", "*", "f", "x"]);
    assert_ne!(id3, id1);
    assert_eq!(xlen(&mut c, "s"), 3);
}
