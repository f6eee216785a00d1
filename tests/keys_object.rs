//! End-to-end tests of OBJECT (ENCODING, REFCOUNT, IDLETIME, FREQ, HELP) and MEMORY USAGE,
//! with RESTORE's IDLETIME and FREQ.
//!
//! Alone in its own test binary: the access clock and the LFU settings are process-wide
//! (`server/src/access.rs`), and every server started in the process sets them from its
//! configuration, so a test in the same process starting a server while this one runs under
//! an LFU policy would turn the policy back for it.

#![allow(clippy::unwrap_used)]

use brooklet::{TestServer, err, int, ok, run, text};
use redis::{Value, cmd};

/// RESTOREs a copy of `from` at `to` with RESTORE's extra arguments `extra`.
fn restore_copy(c: &mut redis::Connection, from: &str, to: &str, extra: &[&str]) {
    let payload: Vec<u8> = cmd("DUMP").arg(from).query(c).unwrap();
    let reply: Value = cmd("RESTORE")
        .arg(to)
        .arg(0)
        .arg(payload)
        .arg(extra)
        .query(c)
        .unwrap();
    assert_eq!(reply, Value::Okay);
}

/// OBJECT IDLETIME counts from the last access: reads and writes are accesses, TYPE, EXISTS
/// and OBJECT are not (Redis looks those keys up without touching them).
fn check_idle_time(c: &mut redis::Connection) {
    let idle = |c: &mut redis::Connection, k: &str| int(c, &["OBJECT", "IDLETIME", k]);
    restore_copy(c, "e", "old-string", &["IDLETIME", "1000"]);
    restore_copy(c, "s", "old-stream", &["IDLETIME", "500"]);
    assert!((1000..=1001).contains(&idle(c, "old-string")));
    assert!((500..=501).contains(&idle(c, "old-stream")));
    run(c, &["TYPE", "old-string"]);
    run(c, &["EXISTS", "old-string", "old-stream"]);
    run(c, &["OBJECT", "ENCODING", "old-stream"]);
    assert!(idle(c, "old-string") >= 1000);
    assert!(idle(c, "old-stream") >= 500);
    text(c, &["GET", "old-string"]);
    run(c, &["XLEN", "old-stream"]);
    assert!(idle(c, "old-string") <= 1);
    assert!(idle(c, "old-stream") <= 1);
    restore_copy(c, "e", "touched", &["REPLACE", "IDLETIME", "1000"]);
    assert_eq!(int(c, &["TOUCH", "touched"]), 1);
    assert!(idle(c, "touched") <= 1);
    restore_copy(c, "s", "appended", &["IDLETIME", "1000"]);
    run(c, &["XADD", "appended", "*", "f", "v"]);
    assert!(idle(c, "appended") <= 1);
    assert!(idle(c, "i") <= 60, "a key written by this test");
    // A NO-TOUCH client reads without changing it; its TOUCH still counts.
    restore_copy(c, "e", "quiet", &["IDLETIME", "1000"]);
    ok(c, &["CLIENT", "NO-TOUCH", "ON"]);
    text(c, &["GET", "quiet"]);
    assert!(idle(c, "quiet") >= 1000);
    assert_eq!(int(c, &["TOUCH", "quiet"]), 1);
    assert!(idle(c, "quiet") <= 1);
    ok(c, &["CLIENT", "NO-TOUCH", "OFF"]);
    let names = ["old-string", "old-stream", "touched", "appended", "quiet"];
    assert_eq!(int(c, &[&["DEL"][..], &names].concat()), 5);
}

/// Under an LFU policy OBJECT FREQ is Redis's logarithmic counter: 5 for a new key, one more
/// per access while `lfu-log-factor` is 0, what RESTORE FREQ gives.
fn check_access_counter(c: &mut redis::Connection) {
    ok(
        c,
        &[
            "CONFIG",
            "SET",
            "lfu-log-factor",
            "0",
            "lfu-decay-time",
            "0",
        ],
    );
    ok(c, &["SET", "lfu", "v"]);
    assert_eq!(int(c, &["OBJECT", "FREQ", "lfu"]), 5);
    for _ in 0..10 {
        text(c, &["GET", "lfu"]);
    }
    assert_eq!(int(c, &["OBJECT", "FREQ", "lfu"]), 15);
    restore_copy(c, "lfu", "hot", &["FREQ", "200"]);
    assert_eq!(int(c, &["OBJECT", "FREQ", "hot"]), 200);
    ok(
        c,
        &[
            "CONFIG",
            "SET",
            "lfu-log-factor",
            "10",
            "lfu-decay-time",
            "1",
        ],
    );
    assert_eq!(int(c, &["DEL", "lfu", "hot"]), 2);
}

#[test]
fn object_and_memory_usage() {
    for resp3 in [false, true] {
        let server = TestServer::start();
        let mut c = server.client(resp3);
        ok(&mut c, &["SET", "i", "12345"]);
        ok(&mut c, &["SET", "e", "hello"]);
        ok(&mut c, &["SET", "r", &"x".repeat(45)]);
        ok(&mut c, &["SET", "z", "007"]);
        run(&mut c, &["XADD", "s", "*", "f", "v"]);
        for (k, enc) in [
            ("i", "int"),
            ("e", "embstr"),
            ("r", "raw"),
            ("z", "embstr"),
            ("s", "stream"),
        ] {
            assert_eq!(text(&mut c, &["OBJECT", "ENCODING", k]), enc, "{k}");
        }
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", "nope"]), Value::Nil);
        ok(&mut c, &["SET", "small", "1"]);
        assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "small"]), 2147483647);
        assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "i"]), 1);
        assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "s"]), 1);
        check_idle_time(&mut c);
        assert!(
            err(&mut c, &["OBJECT", "FREQ", "s"])
                .starts_with("ERR An LFU maxmemory policy is not selected")
        );
        // The key is looked up before the policy: a missing one is Null under any policy.
        assert_eq!(run(&mut c, &["OBJECT", "FREQ", "nope"]), Value::Nil);
        assert_eq!(
            err(&mut c, &["OBJECT", "ENCODING"]),
            "ERR wrong number of arguments for 'object|encoding' command"
        );
        assert!(matches!(run(&mut c, &["OBJECT", "HELP"]), Value::Array(_)));
        ok(
            &mut c,
            &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"],
        );
        assert_eq!(
            err(&mut c, &["OBJECT", "IDLETIME", "s"]),
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time to \
             adjust."
        );
        check_access_counter(&mut c);
        assert_eq!(run(&mut c, &["OBJECT", "FREQ", "nope"]), Value::Nil);
        assert_eq!(run(&mut c, &["OBJECT", "IDLETIME", "nope"]), Value::Nil);
        ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        // Redis 7 gives these sizes for these strings.
        assert_eq!(int(&mut c, &["MEMORY", "USAGE", "small"]), 48);
        assert_eq!(int(&mut c, &["MEMORY", "USAGE", "e"]), 64);
        assert_eq!(int(&mut c, &["MEMORY", "USAGE", "r"]), 112);
        assert_eq!(run(&mut c, &["MEMORY", "USAGE", "nope"]), Value::Nil);
        assert_eq!(
            err(&mut c, &["MEMORY", "USAGE", "e", "SAMPLES"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&mut c, &["MEMORY", "USAGE", "e", "SAMPLES", "-1"]),
            "ERR syntax error"
        );
        let small = int(&mut c, &["MEMORY", "USAGE", "s", "SAMPLES", "0"]);
        for i in 0..2000 {
            run(
                &mut c,
                &["XADD", "s", "*", "field", &format!("value number {i}")],
            );
        }
        let big = int(&mut c, &["MEMORY", "USAGE", "s"]);
        assert!(big > small + 2000 * 20, "{small} {big}");
        assert_eq!(text(&mut c, &["TYPE", "e"]), "string");
        let Value::Array(scan) = run(&mut c, &["SCAN", "0", "TYPE", "string", "COUNT", "1000"])
        else {
            panic!()
        };
        let Value::Array(keys) = &scan[1] else {
            panic!()
        };
        assert_eq!(keys.len(), 5);
    }
}

/// A string's encoding follows how it was last written, as in Redis: APPEND to a key that
/// exists and SETRANGE leave it `raw` whatever it holds, INCRBYFLOAT's text is never `int`,
/// COPY keeps the encoding, and a write of the whole value or a reload judges it by its
/// content again.
#[test]
fn string_encodings_follow_the_last_write() {
    let server = TestServer::start_with(|c| c.enable_debug_command = "yes".into());
    let mut c = server.client(false);
    let enc = |c: &mut redis::Connection, k: &str| text(c, &["OBJECT", "ENCODING", k]);
    ok(&mut c, &["SET", "n", "1"]);
    assert_eq!(enc(&mut c, "n"), "int");
    assert_eq!(int(&mut c, &["APPEND", "n", "2"]), 2);
    assert_eq!(enc(&mut c, "n"), "raw");
    // Raw, not one of the shared integers.
    assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "n"]), 1);
    assert_eq!(int(&mut c, &["MEMORY", "USAGE", "n"]), 56);
    assert_eq!(int(&mut c, &["INCR", "n"]), 13);
    assert_eq!(enc(&mut c, "n"), "int");
    // An empty patch changes nothing, so nothing is edited.
    assert_eq!(int(&mut c, &["SETRANGE", "n", "0", ""]), 2);
    assert_eq!(enc(&mut c, "n"), "int");
    assert_eq!(int(&mut c, &["SETRANGE", "n", "0", "5"]), 2);
    assert_eq!(enc(&mut c, "n"), "raw");
    assert_eq!(int(&mut c, &["SETRANGE", "fresh", "0", "5"]), 1);
    assert_eq!(enc(&mut c, "fresh"), "raw");
    // APPEND to a missing key writes it whole.
    assert_eq!(int(&mut c, &["APPEND", "new", "12"]), 2);
    assert_eq!(enc(&mut c, "new"), "int");
    assert_eq!(int(&mut c, &["APPEND", "new", "3"]), 3);
    assert_eq!(int(&mut c, &["COPY", "new", "copied"]), 1);
    assert_eq!(enc(&mut c, "copied"), "raw");
    ok(&mut c, &["RENAME", "copied", "renamed"]);
    assert_eq!(enc(&mut c, "renamed"), "raw");
    assert_eq!(text(&mut c, &["INCRBYFLOAT", "f", "2"]), "2");
    assert_eq!(enc(&mut c, "f"), "embstr");
    assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "f"]), 1);
    ok(&mut c, &["SET", "new", "7"]);
    assert_eq!(enc(&mut c, "new"), "int");
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(enc(&mut c, "n"), "int");
    assert_eq!(enc(&mut c, "f"), "int");
    assert_eq!(enc(&mut c, "renamed"), "int");
}
