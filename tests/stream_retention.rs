//! End-to-end tests of time-based retention (a Brooklet extension): `XCFGSET key MAXAGE ms
//! [KEEPREF|DELREF|ACKED]`, the background removal of expired entries under each policy,
//! XINFO STREAM's `max-age` / `max-age-policy`, the `stream-max-age` default, errors that
//! change nothing, durability across DEBUG RELOAD and a restart, and a large expired
//! stream emptied within a bounded time. Waits are bounded polls, never fixed sleeps.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brooklet::{TestServer, err, run};
use brooklet_server::Config;
use redis::{Value, cmd};

/// Longest wait for the background removal.
const WAIT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn xlen(c: &mut redis::Connection, key: &str) -> i64 {
    cmd("XLEN").arg(key).query(c).unwrap()
}

/// Polls until XLEN of `key` is `want` (panics after [`WAIT`]).
fn wait_len(c: &mut redis::Connection, key: &str, want: i64) {
    let start = Instant::now();
    loop {
        let len = xlen(c, key);
        if len == want {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{key}: XLEN {len}, want {want} after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// XINFO STREAM (or FULL) as name / value pairs, from RESP2 or RESP3.
fn info(c: &mut redis::Connection, key: &str, full: bool) -> Vec<(String, Value)> {
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
    pairs
        .into_iter()
        .map(|(k, v)| {
            let k = match k {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                Value::SimpleString(s) => s,
                k => panic!("{k:?}"),
            };
            (k, v)
        })
        .collect()
}

/// XINFO's `max-age` and `max-age-policy`, checking they follow the IDMP fields.
fn max_age(c: &mut redis::Connection, key: &str) -> (i64, String) {
    for full in [false, true] {
        let fields = info(c, key, full);
        let at = fields
            .iter()
            .position(|(k, _)| k == "iids-duplicates")
            .unwrap();
        assert_eq!(fields[at + 1].0, "max-age");
        assert_eq!(fields[at + 2].0, "max-age-policy");
    }
    let fields = info(c, key, false);
    let age = fields.iter().find(|(k, _)| k == "max-age").unwrap();
    let policy = fields.iter().find(|(k, _)| k == "max-age-policy").unwrap();
    let Value::Int(age) = age.1 else {
        panic!("{age:?}")
    };
    let policy = match &policy.1 {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        v => panic!("{v:?}"),
    };
    (age, policy)
}

/// Adds `n` entries with IDs `ms-0`, `ms+1-0`, ... in one pipeline.
fn fill(c: &mut redis::Connection, key: &str, from_ms: u64, n: u64) {
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("XADD")
            .arg(key)
            .arg(format!("{}-0", from_ms + i))
            .arg("f")
            .arg(i)
            .ignore();
    }
    let () = p.query(c).unwrap();
}

#[test]
fn maxage_removes_expired_entries_in_the_background() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        let now = now_ms();
        // 50 entries an hour old, 5 in the future (never expired during the test).
        fill(&mut c, "s", now - 3_600_000, 50);
        fill(&mut c, "s", now + 3_600_000, 5);
        assert_eq!(max_age(&mut c, "s"), (0, "keepref".into()));
        assert_eq!(
            run(&mut c, &["XCFGSET", "s", "MAXAGE", "60000"]),
            Value::Okay
        );
        assert_eq!(max_age(&mut c, "s"), (60000, "keepref".into()));
        wait_len(&mut c, "s", 5);
        // The last ID stays where it was; entries-added too.
        let fields = info(&mut c, "s", false);
        let added = fields.iter().find(|(k, _)| k == "entries-added").unwrap();
        assert_eq!(added.1, Value::Int(55));
        // Newly added old entries go too; MAXAGE 0 turns it off.
        run(&mut c, &["XCFGSET", "s", "MAXAGE", "0"]);
        assert_eq!(max_age(&mut c, "s"), (0, "keepref".into()));
        run(&mut c, &["DEL", "o"]);
        fill(&mut c, "o", 1, 3);
        run(&mut c, &["XCFGSET", "o", "MAXAGE", "1", "DELREF"]);
        assert_eq!(max_age(&mut c, "o"), (1, "delref".into()));
        wait_len(&mut c, "o", 0);
        // The key stays, empty, as after XTRIM.
        assert_eq!(run(&mut c, &["EXISTS", "o"]), Value::Int(1));
    }
}

#[test]
fn acked_keeps_what_a_group_still_needs_and_delref_lets_go() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for (key, policy) in [("a", "ACKED"), ("d", "DELREF")] {
        fill(&mut c, key, 1, 10);
        run(&mut c, &["XGROUP", "CREATE", key, "g", "0"]);
        // Delivered 1..=6; 1..=3 acknowledged, 4..=6 pending; 7..=10 never delivered.
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "6",
                "STREAMS",
                key,
                ">",
            ],
        );
        run(&mut c, &["XACK", key, "g", "1-0", "2-0", "3-0"]);
        run(&mut c, &["XCFGSET", key, "MAXAGE", "1000", policy]);
    }
    wait_len(&mut c, "d", 0);
    // DELREF let go of the pending references.
    let Value::Array(summary) = run(&mut c, &["XPENDING", "d", "g"]) else {
        panic!()
    };
    assert_eq!(summary[0], Value::Int(0));
    // ACKED removes only what every group has delivered and none holds pending.
    wait_len(&mut c, "a", 7);
    let Value::Array(left) = run(&mut c, &["XRANGE", "a", "-", "+"]) else {
        panic!()
    };
    let ids: Vec<String> = left
        .iter()
        .map(|e| {
            let Value::Array(e) = e else { panic!() };
            let Value::BulkString(b) = &e[0] else {
                panic!()
            };
            String::from_utf8(b.clone()).unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        ["4-0", "5-0", "6-0", "7-0", "8-0", "9-0", "10-0"].map(String::from)
    );
    // Once acknowledged and delivered, they go too.
    run(&mut c, &["XACK", "a", "g", "4-0", "5-0", "6-0"]);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", ">"],
    );
    run(&mut c, &["XACK", "a", "g", "7-0", "8-0", "9-0", "10-0"]);
    wait_len(&mut c, "a", 0);
}

#[test]
fn errors_change_nothing_and_command_docs_describe_maxage() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
        run(&mut c, &["XCFGSET", "s", "MAXAGE", "99999999999999"]);
        let before = run(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
        for (args, want) in [
            (&["XCFGSET", "s", "MAXAGE"][..], "ERR syntax error"),
            (&["XCFGSET", "s", "MAXAGE", "5", "NONE"], "ERR syntax error"),
            (
                &["XCFGSET", "s", "MAXAGE", "x"],
                "ERR value is not an integer or out of range",
            ),
            (
                &["XCFGSET", "s", "MAXAGE", "-1"],
                "ERR The MAXAGE argument must be >= 0.",
            ),
            // A later error leaves the earlier settings unapplied.
            (
                &["XCFGSET", "s", "MAXAGE", "5", "IDMP-DURATION", "0"],
                "ERR IDMP-DURATION must be between 1 and 86400 seconds",
            ),
            (&["XCFGSET", "nokey", "MAXAGE", "5"], "ERR no such key"),
        ] {
            assert_eq!(err(&mut c, args), want, "{args:?}");
        }
        assert_eq!(run(&mut c, &["XINFO", "STREAM", "s", "FULL"]), before);
        assert_eq!(run(&mut c, &["EXISTS", "nokey"]), Value::Int(0));
        run(&mut c, &["SET", "str", "x"]);
        assert!(err(&mut c, &["XCFGSET", "str", "MAXAGE", "5"]).starts_with("WRONGTYPE"));
        // IDMP settings and MAXAGE together; a MAXAGE change keeps the remembered IDs.
        run(&mut c, &["XADD", "s", "IDMP", "p", "i", "*", "f", "v"]);
        run(
            &mut c,
            &[
                "XCFGSET",
                "s",
                "IDMP-MAXSIZE",
                "100",
                "MAXAGE",
                "99999999999",
                "ACKED",
            ],
        );
        let fields = info(&mut c, "s", false);
        let tracked = fields.iter().find(|(k, _)| k == "iids-tracked").unwrap();
        assert_eq!(tracked.1, Value::Int(1));
        assert_eq!(max_age(&mut c, "s"), (99999999999, "acked".into()));
    }
    let mut c = server.client(false);
    let docs = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", "xcfgset"]));
    for word in ["MAXAGE", "KEEPREF", "DELREF", "ACKED"] {
        assert!(docs.contains(word), "{word} missing from {docs}");
    }
}

#[test]
fn stream_max_age_is_the_default_for_new_streams() {
    let server = TestServer::start();
    let mut c = server.client(true);
    run(&mut c, &["XADD", "before", "1-0", "f", "v"]);
    assert_eq!(
        run(&mut c, &["CONFIG", "SET", "stream-max-age", "1000"]),
        Value::Okay
    );
    let got = format!("{:?}", run(&mut c, &["CONFIG", "GET", "stream-max-age"]));
    assert!(got.contains("1000"), "{got}");
    assert!(err(&mut c, &["CONFIG", "SET", "stream-max-age", "-1"]).starts_with("ERR"));
    // A stream that existed keeps none.
    assert_eq!(max_age(&mut c, "before"), (0, "keepref".into()));
    run(&mut c, &["XADD", "new", "1-0", "f", "v"]);
    fill(&mut c, "new", 2, 20);
    run(&mut c, &["XGROUP", "CREATE", "made", "g", "$", "MKSTREAM"]);
    assert_eq!(max_age(&mut c, "new"), (1000, "keepref".into()));
    assert_eq!(max_age(&mut c, "made"), (1000, "keepref".into()));
    wait_len(&mut c, "new", 0);
    assert_eq!(xlen(&mut c, "before"), 1);
    run(&mut c, &["CONFIG", "SET", "stream-max-age", "0"]);
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
fn the_setting_survives_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(true);
    let far = now_ms() + 3_600_000;
    fill(&mut c, "s", far, 10);
    run(&mut c, &["XCFGSET", "s", "MAXAGE", "60000", "ACKED"]);
    fill(&mut c, "s", far + 100, 3);
    run(&mut c, &["CONFIG", "SET", "stream-max-age", "7000"]);
    fill(&mut c, "t", far, 4);
    // Old entries a group has yet to read: ACKED keeps them until it has.
    run(&mut c, &["CONFIG", "SET", "stream-max-age", "0"]);
    fill(&mut c, "r", 1, 5);
    run(&mut c, &["XGROUP", "CREATE", "r", "g", "0"]);
    run(&mut c, &["XCFGSET", "r", "MAXAGE", "1000", "ACKED"]);
    run(&mut c, &["CONFIG", "SET", "stream-max-age", "7000"]);
    let snapshot = |c: &mut redis::Connection| {
        vec![
            run(c, &["XINFO", "STREAM", "s", "FULL"]),
            run(c, &["XINFO", "STREAM", "t", "FULL"]),
        ]
    };
    let before = snapshot(&mut c);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD changed the state");
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(true);
    assert_eq!(snapshot(&mut c), before, "a restart changed the state");
    assert_eq!(max_age(&mut c, "s"), (60000, "acked".into()));
    assert_eq!(max_age(&mut c, "t"), (7000, "keepref".into()));
    // The restarted server applies it: once read and acknowledged, the old entries go.
    assert_eq!(xlen(&mut c, "r"), 5);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "r", ">"],
    );
    run(
        &mut c,
        &["XACK", "r", "g", "1-0", "2-0", "3-0", "4-0", "5-0"],
    );
    wait_len(&mut c, "r", 0);
    assert_eq!(xlen(&mut c, "s"), 13);
    drop(c);
    server.stop();
}

/// A large expired stream is emptied within a bounded time by slices, and stays
/// consistent across a restart afterwards (no latency is measured here: benchmarks do).
#[test]
fn a_large_expired_stream_empties_within_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(|c: &mut Config| {
        c.dir = dir.path().to_path_buf();
    })
    .unwrap();
    let mut c = server.client(false);
    let n = 100_000u64;
    for chunk in 0..(n / 10_000) {
        fill(&mut c, "big", 1 + chunk * 10_000, 10_000);
    }
    fill(&mut c, "big", now_ms() + 3_600_000, 1);
    run(&mut c, &["XGROUP", "CREATE", "big", "g", "$"]);
    assert_eq!(xlen(&mut c, "big"), n as i64 + 1);
    run(&mut c, &["XCFGSET", "big", "MAXAGE", "1000"]);
    let start = Instant::now();
    wait_len(&mut c, "big", 1);
    eprintln!("{n} expired entries removed in {:?}", start.elapsed());
    // Other commands ran meanwhile and still do.
    assert_eq!(run(&mut c, &["PING"]), Value::SimpleString("PONG".into()));
    let before = run(&mut c, &["XINFO", "STREAM", "big", "FULL"]);
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(|c: &mut Config| {
        c.dir = dir.path().to_path_buf();
    })
    .unwrap();
    let mut c = server.client(false);
    assert_eq!(run(&mut c, &["XINFO", "STREAM", "big", "FULL"]), before);
    drop(c);
    server.stop();
}

#[test]
fn keyspace_events_xcfgset_on_change_then_xtrim() {
    use redis_protocol::resp2::types::OwnedFrame as F2;
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    fill(&mut c, "s", now_ms() + 3_600_000, 1);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    let _ = sub.read2();
    // A setting that changes nothing publishes nothing (as XCFGSET's IDMP settings).
    run(&mut c, &["XCFGSET", "s", "MAXAGE", "0"]);
    run(&mut c, &["XCFGSET", "s", "MAXAGE", "60000"]);
    run(&mut c, &["XCFGSET", "s", "MAXAGE", "60000"]);
    // A conflicting EXPECTLAST publishes nothing either.
    assert!(
        err(&mut c, &["XADD", "s", "EXPECTLAST", "1-0", "*", "f", "v"]).starts_with("CONFLICT")
    );
    run(&mut c, &["XADD", "old", "1-0", "f", "v"]);
    run(&mut c, &["XCFGSET", "old", "MAXAGE", "1"]);
    for (event, key) in [
        ("xcfgset", "s"),
        ("xadd", "old"),
        ("xcfgset", "old"),
        ("xtrim", "old"),
    ] {
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

/// Retention follows a stream that RENAME, MOVE or SWAPDB gives another name or database:
/// its entries still go once they are older than MAXAGE.
#[test]
fn retention_follows_a_renamed_or_moved_stream() {
    let server = TestServer::start();
    let mut c = server.client(false);
    // Entries of now, under a MAXAGE of 3 s: they expire after the rename.
    fill(&mut c, "r", now_ms(), 3);
    run(&mut c, &["XCFGSET", "r", "MAXAGE", "3000"]);
    run(&mut c, &["RENAME", "r", "r2"]);
    wait_len(&mut c, "r2", 0);
    fill(&mut c, "r2", now_ms() + 10, 3);
    run(&mut c, &["MOVE", "r2", "1"]);
    run(&mut c, &["SWAPDB", "0", "1"]);
    assert_eq!(max_age(&mut c, "r2"), (3000, "keepref".into()));
    wait_len(&mut c, "r2", 0);
}
