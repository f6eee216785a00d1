//! End-to-end tests of XADD EXPECTLAST (a Brooklet extension, conditional append for event
//! sourcing): the append happens only if the stream's last generated ID is the one given,
//! otherwise `-CONFLICT last ID is <id>` and nothing changes; with NOMKSTREAM, trims,
//! IDMP, inside MULTI, in COMMAND DOCS, in RESP2 and RESP3, and across DEBUG RELOAD and a
//! restart (the last generated ID it compares with is durable).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{TestServer, err, run};
use brooklet_server::Config;
use redis::{Value, cmd};

fn id(c: &mut redis::Connection, args: &[&str]) -> String {
    match run(c, args) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        v => panic!("{args:?}: not an ID: {v:?}"),
    }
}

fn xlen(c: &mut redis::Connection, key: &str) -> i64 {
    cmd("XLEN").arg(key).query(c).unwrap()
}

/// XINFO STREAM's `last-generated-id` and `entries-added`.
fn last_and_added(c: &mut redis::Connection, key: &str) -> (String, i64) {
    let pairs: Vec<(Value, Value)> = match run(c, &["XINFO", "STREAM", key]) {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        Value::Map(m) => m,
        v => panic!("XINFO: {v:?}"),
    };
    let mut last = None;
    let mut added = None;
    for (k, v) in pairs {
        let k = match k {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::SimpleString(s) => s,
            k => panic!("{k:?}"),
        };
        match (k.as_str(), v) {
            ("last-generated-id", Value::BulkString(b)) => {
                last = Some(String::from_utf8(b).unwrap())
            }
            ("entries-added", Value::Int(n)) => added = Some(n),
            _ => {}
        }
    }
    (last.unwrap(), added.unwrap())
}

#[test]
fn appends_only_when_the_last_id_matches() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        // 0-0: the stream never had an entry; the key is created.
        assert_eq!(
            id(&mut c, &["XADD", "s", "EXPECTLAST", "0-0", "1-1", "f", "v"]),
            "1-1"
        );
        assert_eq!(
            id(&mut c, &["XADD", "s", "EXPECTLAST", "1-1", "2-0", "f", "v"]),
            "2-0"
        );
        // An auto ID works the same way; "2" reads as 2-0.
        run(&mut c, &["DEL", "t"]);
        run(&mut c, &["XADD", "t", "2-0", "f", "v"]);
        let auto = id(&mut c, &["XADD", "t", "EXPECTLAST", "2", "*", "f", "v"]);
        assert_ne!(auto, "2-0");
        // A stale expectation: nothing changes.
        let before = (
            run(&mut c, &["XRANGE", "s", "-", "+"]),
            last_and_added(&mut c, "s"),
        );
        assert_eq!(
            err(&mut c, &["XADD", "s", "EXPECTLAST", "1-1", "*", "f", "v"]),
            "CONFLICT last ID is 2-0"
        );
        assert_eq!(
            err(&mut c, &["XADD", "s", "EXPECTLAST", "0-0", "*", "f", "v"]),
            "CONFLICT last ID is 2-0"
        );
        // The conflict comes before the explicit ID's own check.
        assert_eq!(
            err(&mut c, &["XADD", "s", "EXPECTLAST", "9-9", "1-0", "f", "v"]),
            "CONFLICT last ID is 2-0"
        );
        // A matching expectation with a bad ID is the ID's error.
        assert_eq!(
            err(&mut c, &["XADD", "s", "EXPECTLAST", "2-0", "1-0", "f", "v"]),
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        let after = (
            run(&mut c, &["XRANGE", "s", "-", "+"]),
            last_and_added(&mut c, "s"),
        );
        assert_eq!(before, after);
        // The last generated ID, not the last entry: XDEL does not move it.
        run(&mut c, &["XDEL", "s", "2-0"]);
        assert_eq!(
            err(&mut c, &["XADD", "s", "EXPECTLAST", "1-1", "*", "f", "v"]),
            "CONFLICT last ID is 2-0"
        );
        assert_eq!(
            id(&mut c, &["XADD", "s", "EXPECTLAST", "2-0", "3-0", "f", "v"]),
            "3-0"
        );
        // An empty stream made by XGROUP CREATE MKSTREAM never had an entry.
        run(&mut c, &["DEL", "g"]);
        run(&mut c, &["XGROUP", "CREATE", "g", "grp", "$", "MKSTREAM"]);
        assert_eq!(
            id(&mut c, &["XADD", "g", "EXPECTLAST", "0-0", "5-0", "f", "v"]),
            "5-0"
        );
    }
}

#[test]
fn a_missing_key_and_nomkstream() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "m"]);
        // A missing key's last ID is 0-0: any other expectation creates nothing.
        assert_eq!(
            err(&mut c, &["XADD", "m", "EXPECTLAST", "1-0", "*", "f", "v"]),
            "CONFLICT last ID is 0-0"
        );
        assert_eq!(run(&mut c, &["EXISTS", "m"]), Value::Int(0));
        // NOMKSTREAM answers a missing key with a null whatever the expectation.
        for expected in ["0-0", "1-0"] {
            let reply = run(
                &mut c,
                &[
                    "XADD",
                    "m",
                    "NOMKSTREAM",
                    "EXPECTLAST",
                    expected,
                    "*",
                    "f",
                    "v",
                ],
            );
            assert!(matches!(reply, Value::Nil), "{reply:?}");
        }
        assert_eq!(run(&mut c, &["EXISTS", "m"]), Value::Int(0));
        run(&mut c, &["XADD", "m", "1-0", "f", "v"]);
        assert_eq!(
            id(
                &mut c,
                &[
                    "XADD",
                    "m",
                    "NOMKSTREAM",
                    "EXPECTLAST",
                    "1-0",
                    "2-0",
                    "f",
                    "v"
                ]
            ),
            "2-0"
        );
        // A wrong type is still WRONGTYPE, before any comparison.
        run(&mut c, &["SET", "str", "x"]);
        assert!(
            err(&mut c, &["XADD", "str", "EXPECTLAST", "0-0", "*", "f", "v"])
                .starts_with("WRONGTYPE")
        );
    }
}

#[test]
fn combines_with_trims_and_idmp() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for i in 1..=5 {
        run(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    // A conflict trims nothing.
    assert_eq!(
        err(
            &mut c,
            &[
                "XADD",
                "s",
                "MAXLEN",
                "2",
                "EXPECTLAST",
                "4-0",
                "*",
                "f",
                "v"
            ]
        ),
        "CONFLICT last ID is 5-0"
    );
    assert_eq!(xlen(&mut c, "s"), 5);
    assert_eq!(
        id(
            &mut c,
            &[
                "XADD",
                "s",
                "MAXLEN",
                "2",
                "ACKED",
                "EXPECTLAST",
                "5-0",
                "6-0",
                "f",
                "v"
            ]
        ),
        "6-0"
    );
    assert_eq!(xlen(&mut c, "s"), 2);
    // IDMP: a retried append whose first attempt went in gets its entry back, though the
    // first attempt moved the last ID; a new idempotent ID still needs the last ID.
    let first = id(
        &mut c,
        &[
            "XADD",
            "s",
            "IDMP",
            "p",
            "r1",
            "EXPECTLAST",
            "6-0",
            "*",
            "f",
            "v",
        ],
    );
    let retry = id(
        &mut c,
        &[
            "XADD",
            "s",
            "IDMP",
            "p",
            "r1",
            "EXPECTLAST",
            "6-0",
            "*",
            "f",
            "v",
        ],
    );
    assert_eq!(first, retry);
    assert_eq!(
        err(
            &mut c,
            &[
                "XADD",
                "s",
                "IDMP",
                "p",
                "r2",
                "EXPECTLAST",
                "6-0",
                "*",
                "f",
                "v"
            ]
        ),
        format!("CONFLICT last ID is {first}")
    );
    // The refused append did not remember r2.
    let r2 = id(
        &mut c,
        &[
            "XADD",
            "s",
            "IDMP",
            "p",
            "r2",
            "EXPECTLAST",
            &first,
            "*",
            "f",
            "v",
        ],
    );
    assert_ne!(r2, first);
    assert_eq!(xlen(&mut c, "s"), 4);
}

#[test]
fn inside_multi_and_with_bad_input() {
    let server = TestServer::start();
    let mut c = server.client(true);
    run(&mut c, &["XADD", "s", "3-0", "f", "v"]);
    // EXEC's array read raw: the client library turns an error inside it into an error
    // of the whole transaction.
    let mut raw = server.raw();
    raw.send(b"MULTI\r\n");
    raw.send(b"XADD s EXPECTLAST 3-0 4-0 f v\r\n");
    raw.send(b"XADD s EXPECTLAST 3-0 5-0 f v\r\n");
    raw.send(b"XADD s EXPECTLAST 4-0 5-0 f v\r\n");
    raw.send(b"EXEC\r\n");
    for _ in 0..4 {
        raw.read_line2();
    }
    let exec = String::from_utf8(raw.read_raw2()).unwrap();
    assert_eq!(
        exec, "*3\r\n$3\r\n4-0\r\n-CONFLICT last ID is 4-0\r\n$3\r\n5-0\r\n",
        "{exec}"
    );
    assert_eq!(xlen(&mut c, "s"), 3);
    // Malformed input is refused with Redis's texts and changes nothing.
    let before = run(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
    for (args, want) in [
        (
            &["XADD", "s", "EXPECTLAST", "x", "*", "f", "v"][..],
            "ERR Invalid stream ID specified as stream command argument",
        ),
        (
            &[
                "XADD",
                "s",
                "EXPECTLAST",
                "5-0",
                "EXPECTLAST",
                "5-0",
                "*",
                "f",
                "v",
            ],
            "ERR EXPECTLAST specified multiple times",
        ),
        (
            &["XADD", "s", "EXPECTLAST", "5-0", "*", "f"],
            "ERR wrong number of arguments for 'xadd' command",
        ),
        (
            &["XADD", "s", "EXPECTLAST", "5-0"],
            "ERR wrong number of arguments for 'xadd' command",
        ),
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    assert_eq!(run(&mut c, &["XINFO", "STREAM", "s", "FULL"]), before);
    let docs = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", "xadd"]));
    assert!(docs.contains("EXPECTLAST"), "{docs}");
    assert!(docs.contains("last-id"), "{docs}");
}

fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.enable_debug_command = "yes".into();
    }
}

#[test]
fn the_last_id_compared_survives_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "EXPECTLAST", "0-0", "1-0", "f", "v"]);
    run(&mut c, &["XADD", "s", "EXPECTLAST", "1-0", "7-0", "f", "v"]);
    run(&mut c, &["XDEL", "s", "7-0"]);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(
        err(&mut c, &["XADD", "s", "EXPECTLAST", "1-0", "*", "f", "v"]),
        "CONFLICT last ID is 7-0"
    );
    // A restart straight after a logged append.
    run(&mut c, &["XADD", "s", "EXPECTLAST", "7-0", "8-0", "f", "v"]);
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(true);
    assert_eq!(
        err(&mut c, &["XADD", "s", "EXPECTLAST", "7-0", "*", "f", "v"]),
        "CONFLICT last ID is 8-0"
    );
    assert_eq!(
        id(&mut c, &["XADD", "s", "EXPECTLAST", "8-0", "9-0", "f", "v"]),
        "9-0"
    );
    drop(c);
    server.stop();
}
