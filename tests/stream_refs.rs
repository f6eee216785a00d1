//! End-to-end tests of Redis 8.2's reference policies: XDELEX and XACKDEL, their replies in
//! RESP2 and RESP3, their errors, keyspace events, COMMAND entries, and their durability
//! across DEBUG RELOAD and a restart.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{TestServer, err, run};
use brooklet_server::Config;
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;

/// A reply of one integer per ID.
fn codes(c: &mut redis::Connection, args: &[&str]) -> Vec<i64> {
    match run(c, args) {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(n) => n,
                v => panic!("{args:?}: not an integer: {v:?}"),
            })
            .collect(),
        v => panic!("{args:?}: not an array: {v:?}"),
    }
}

fn xlen(c: &mut redis::Connection, key: &str) -> i64 {
    cmd("XLEN").arg(key).query(c).unwrap()
}

/// XPENDING's summary: the count, its bounds, then the consumers and their counts.
type Summary = (u64, Option<String>, Option<String>, Vec<(String, String)>);

/// XPENDING's summary without its bounds.
fn pending(c: &mut redis::Connection, key: &str, group: &str) -> (u64, Vec<(String, String)>) {
    let (n, _, _, consumers): Summary = cmd("XPENDING").arg(key).arg(group).query(c).unwrap();
    (n, consumers)
}

/// Two entries, two groups that both read them.
fn two_groups(c: &mut redis::Connection) {
    run(c, &["DEL", "s"]);
    run(c, &["XADD", "s", "1-0", "f", "v"]);
    run(c, &["XADD", "s", "2-0", "f", "v"]);
    for (g, consumer) in [("g1", "c1"), ("g2", "c2")] {
        run(c, &["XGROUP", "CREATE", "s", g, "0"]);
        run(
            c,
            &["XREADGROUP", "GROUP", g, consumer, "STREAMS", "s", ">"],
        );
    }
}

#[test]
fn xackdel_policies_as_redis_tests_them() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        let ids = ["IDS", "2", "1-0", "2-0"];
        let with = |head: &[&'static str]| -> Vec<&'static str> {
            head.iter().chain(ids.iter()).copied().collect()
        };
        assert_eq!(codes(&mut c, &with(&["XACKDEL", "s", "g"])), [-1, -1]);
        run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
        assert_eq!(codes(&mut c, &with(&["XACKDEL", "s", "g"])), [-1, -1]);

        // DELREF: gone from the stream and from both groups.
        two_groups(&mut c);
        assert_eq!(
            codes(&mut c, &with(&["XACKDEL", "s", "g1", "DELREF"])),
            [1, 1]
        );
        assert_eq!(xlen(&mut c, "s"), 0);
        assert_eq!(pending(&mut c, "s", "g1").0, 0);
        assert_eq!(pending(&mut c, "s", "g2").0, 0);
        assert_eq!(
            codes(&mut c, &with(&["XACKDEL", "s", "g2", "DELREF"])),
            [-1, -1]
        );

        // ACKED: kept while g2 still holds them, deleted once it acknowledges them too.
        two_groups(&mut c);
        assert_eq!(
            codes(&mut c, &with(&["XACKDEL", "s", "g1", "ACKED"])),
            [2, 2]
        );
        assert_eq!(xlen(&mut c, "s"), 2);
        assert_eq!(pending(&mut c, "s", "g1").0, 0);
        assert_eq!(
            pending(&mut c, "s", "g2"),
            (2, vec![("c2".into(), "2".into())])
        );
        assert_eq!(
            codes(&mut c, &with(&["XACKDEL", "s", "g2", "ACKED"])),
            [1, 1]
        );
        assert_eq!(xlen(&mut c, "s"), 0);
        assert_eq!(pending(&mut c, "s", "g2").0, 0);

        // KEEPREF (and the default): deleted, g2's references left for it to acknowledge.
        two_groups(&mut c);
        assert_eq!(
            codes(&mut c, &with(&["XACKDEL", "s", "g1", "KEEPREF"])),
            [1, 1]
        );
        assert_eq!(xlen(&mut c, "s"), 0);
        assert_eq!(pending(&mut c, "s", "g2").0, 2);
        assert_eq!(codes(&mut c, &with(&["XACKDEL", "s", "g2"])), [1, 1]);
        assert_eq!(pending(&mut c, "s", "g2").0, 0);

        // Many IDs, none pending.
        let many: Vec<String> = (0..50).map(|i| format!("{i}-1")).collect();
        let mut args = vec!["XACKDEL", "s", "g1", "IDS", "50"];
        args.extend(many.iter().map(String::as_str));
        assert_eq!(codes(&mut c, &args), vec![-1; 50]);
    }
}

#[test]
fn xdelex_policies() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        assert_eq!(
            codes(&mut c, &["XDELEX", "s", "IDS", "2", "1-0", "2-0"]),
            [-1, -1]
        );
        assert_eq!(run(&mut c, &["EXISTS", "s"]), Value::Int(0));

        // KEEPREF by default: deleted, the references stay.
        two_groups(&mut c);
        assert_eq!(
            codes(&mut c, &["XDELEX", "s", "IDS", "3", "1-0", "3-0", "1-0"]),
            [1, -1, -1]
        );
        assert_eq!(xlen(&mut c, "s"), 1);
        assert_eq!(pending(&mut c, "s", "g1").0, 2);

        // DELREF: every group lets go of them.
        two_groups(&mut c);
        assert_eq!(
            codes(&mut c, &["XDELEX", "s", "DELREF", "IDS", "1", "1-0"]),
            [1]
        );
        assert_eq!(pending(&mut c, "s", "g1").0, 1);
        assert_eq!(pending(&mut c, "s", "g2").0, 1);
        // DELREF of an entry deleted before: not found, but its references go.
        run(&mut c, &["XDEL", "s", "2-0"]);
        assert_eq!(
            codes(&mut c, &["XDELEX", "s", "DELREF", "IDS", "1", "2-0"]),
            [-1]
        );
        assert_eq!(pending(&mut c, "s", "g1").0, 0);
        assert_eq!(pending(&mut c, "s", "g2").0, 0);

        // ACKED: kept while pending anywhere, or not yet delivered to a group.
        two_groups(&mut c);
        run(&mut c, &["XACK", "s", "g1", "1-0", "2-0"]);
        assert_eq!(
            codes(&mut c, &["XDELEX", "s", "ACKED", "IDS", "2", "1-0", "2-0"]),
            [2, 2]
        );
        run(&mut c, &["XACK", "s", "g2", "1-0", "2-0"]);
        run(&mut c, &["XADD", "s", "3-0", "f", "v"]);
        run(&mut c, &["XGROUP", "CREATE", "s", "late", "1-0"]);
        assert_eq!(
            codes(
                &mut c,
                &["XDELEX", "s", "ACKED", "IDS", "3", "1-0", "2-0", "3-0"]
            ),
            [1, 2, 2]
        );
        assert_eq!(xlen(&mut c, "s"), 2);
        // Without any group, ACKED deletes.
        run(&mut c, &["DEL", "t"]);
        run(&mut c, &["XADD", "t", "1-0", "f", "v"]);
        assert_eq!(
            codes(&mut c, &["XDELEX", "t", "ACKED", "IDS", "1", "1-0"]),
            [1]
        );
    }
}

#[test]
fn xdelex_and_xackdel_errors_are_redis_texts() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    const NOT_POSITIVE: &str = "ERR Number of IDs must be a positive integer";
    const MISMATCH: &str = "ERR The `numids` parameter must match the number of arguments";
    for head in [&["XDELEX", "s"][..], &["XACKDEL", "s", "g"][..]] {
        let e = |c: &mut redis::Connection, tail: &[&str]| {
            let args: Vec<&str> = head.iter().chain(tail).copied().collect();
            err(c, &args)
        };
        assert_eq!(e(&mut c, &["IDS", "abc", "1-1"]), NOT_POSITIVE);
        assert_eq!(e(&mut c, &["IDS", "0", "1-1"]), NOT_POSITIVE);
        assert_eq!(e(&mut c, &["IDS", "-5", "1-1"]), NOT_POSITIVE);
        assert_eq!(e(&mut c, &["IDS", "3", "1-1", "2-2"]), MISMATCH);
        assert_eq!(e(&mut c, &["IDS", "1", "1-1", "2-2"]), "ERR syntax error");
        assert_eq!(
            e(&mut c, &["KEEPREF", "DELREF", "IDS", "1", "1-1"]),
            "ERR syntax error"
        );
        assert_eq!(e(&mut c, &["BOGUS", "IDS", "1", "1-1"]), "ERR syntax error");
        assert_eq!(
            e(&mut c, &["IDS", "1", "bad"]),
            "ERR Invalid stream ID specified as stream command argument"
        );
    }
    let arity = |name: &str| format!("ERR wrong number of arguments for '{name}' command");
    assert_eq!(err(&mut c, &["XDELEX", "s", "IDS", "1"]), arity("xdelex"));
    assert_eq!(
        err(&mut c, &["XACKDEL", "s", "g", "IDS", "1"]),
        arity("xackdel")
    );
    // Nothing changed.
    assert_eq!(xlen(&mut c, "s"), 1);
}

#[test]
fn xdelex_and_xackdel_publish_xdel_when_they_delete() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    two_groups(&mut c);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    let _ = sub.read2();
    for args in [
        &["XDELEX", "s", "IDS", "1", "9-0"][..],
        &["XDELEX", "s", "ACKED", "IDS", "1", "1-0"],
        &["XDELEX", "s", "IDS", "1", "1-0"],
        &["XACKDEL", "s", "g1", "ACKED", "IDS", "1", "2-0"],
        &["XACKDEL", "s", "g2", "IDS", "1", "2-0"],
        &["XADD", "last", "*", "f", "v"],
    ] {
        run(&mut c, args);
    }
    for (event, key) in [("xdel", "s"), ("xdel", "s"), ("xadd", "last")] {
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
    for (name, arity) in [("xdelex", -5), ("xackdel", -6)] {
        let Value::Array(info) = run(&mut c, &["COMMAND", "INFO", name]) else {
            panic!("no info")
        };
        let Value::Array(ref fields) = info[0] else {
            panic!("{name}: {info:?}")
        };
        assert_eq!(fields[0], Value::BulkString(name.as_bytes().to_vec()));
        assert_eq!(fields[1], Value::Int(arity));
        let flags = format!("{:?}", fields[2]);
        assert!(flags.contains("write") && flags.contains("fast"), "{flags}");
        let docs = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", name]));
        for word in ["8.2.0", "KEEPREF", "DELREF", "ACKED", "IDS", "numids"] {
            assert!(docs.contains(word), "{name}: {word} missing from {docs}");
        }
    }
}

/// Everything the policies change, for comparing before and after a reload.
fn snapshot(c: &mut redis::Connection) -> Vec<Value> {
    let mut out = vec![
        run(c, &["XRANGE", "s", "-", "+"]),
        run(c, &["XINFO", "STREAM", "s", "FULL"]),
    ];
    for g in ["g1", "g2", "g3"] {
        // The summary: the extended form's idle times move with the clock.
        out.push(run(c, &["XPENDING", "s", g]));
    }
    out
}

fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.enable_debug_command = "yes".into();
        c.stream_node_max_entries = 3;
    }
}

#[test]
fn deletions_by_policy_survive_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    for i in 1..=20 {
        run(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    for (g, consumer) in [("g1", "a"), ("g2", "b"), ("g3", "c")] {
        run(&mut c, &["XGROUP", "CREATE", "s", g, "0"]);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                g,
                consumer,
                "COUNT",
                "12",
                "STREAMS",
                "s",
                ">",
            ],
        );
    }
    // Through the tail log first (group changes alone), then the deletions.
    run(&mut c, &["XACK", "s", "g3", "1-0", "2-0", "3-0"]);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    run(
        &mut c,
        &["XDELEX", "s", "DELREF", "IDS", "3", "1-0", "2-0", "15-0"],
    );
    run(
        &mut c,
        &["XDELEX", "s", "KEEPREF", "IDS", "2", "4-0", "5-0"],
    );
    run(&mut c, &["XDELEX", "s", "ACKED", "IDS", "2", "3-0", "6-0"]);
    run(
        &mut c,
        &[
            "XACKDEL", "s", "g1", "DELREF", "IDS", "3", "6-0", "7-0", "13-0",
        ],
    );
    run(
        &mut c,
        &["XACKDEL", "s", "g2", "ACKED", "IDS", "2", "8-0", "9-0"],
    );
    run(
        &mut c,
        &["XACKDEL", "s", "g3", "KEEPREF", "IDS", "2", "8-0", "4-0"],
    );
    run(&mut c, &["XACK", "s", "g1", "8-0"]);
    run(&mut c, &["XACKDEL", "s", "g3", "ACKED", "IDS", "1", "9-0"]);
    run(&mut c, &["XACKDEL", "s", "g1", "ACKED", "IDS", "1", "9-0"]);
    let before = snapshot(&mut c);
    assert_eq!(xlen(&mut c, "s"), 11);

    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD changed the state");
    drop(c);
    server.stop();

    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(true);
    let mut c2 = server.client(false);
    assert_eq!(snapshot(&mut c2), before, "a restart changed the state");
    // And the RESP3 view agrees on the length.
    assert_eq!(xlen(&mut c, "s"), 11);
}
