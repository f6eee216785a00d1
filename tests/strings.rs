//! End-to-end tests of the string commands: replies in RESP2 and RESP3, Redis's error texts,
//! WRONGTYPE between strings and streams, blocked stream readers whose key becomes a string,
//! the generic key commands over strings, keyspace events, and durability across DEBUG
//! RELOAD and a restart.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::{TestServer, err, query, run};
use redis::Value;
use redis_protocol::resp2::types::OwnedFrame as F2;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn ok() -> Value {
    Value::Okay
}

/// Every key and value, sorted, with its type and deadline presence.
fn snapshot(c: &mut redis::Connection) -> Vec<(String, String, Value, i64)> {
    let Value::Array(keys) = run(c, &["KEYS", "*"]) else {
        panic!("KEYS")
    };
    let mut out = Vec::new();
    for k in keys {
        let Value::BulkString(k) = k else { panic!() };
        let k = String::from_utf8(k).unwrap();
        let t = match run(c, &["TYPE", &k]) {
            Value::SimpleString(t) => t,
            v => panic!("{v:?}"),
        };
        let v = if t == "string" {
            run(c, &["GET", &k])
        } else {
            run(c, &["XRANGE", &k, "-", "+"])
        };
        let Value::Int(ttl) = run(c, &["TTL", &k]) else {
            panic!()
        };
        out.push((k, t, v, ttl.signum()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn string_commands_reply_as_redis_does() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        let nil = Value::Nil;
        let cases: &[(&[&str], Value)] = &[
            (&["SET", "k", "v"], ok()),
            (&["GET", "k"], bulk("v")),
            (&["SET", "k", "v2", "NX"], nil.clone()),
            (&["SET", "k", "v2", "XX", "GET"], bulk("v")),
            (&["SET", "n", "x", "XX"], nil.clone()),
            (&["SET", "n", "x", "NX", "GET"], nil.clone()),
            (&["GET", "n"], bulk("x")),
            (&["SETNX", "n", "y"], Value::Int(0)),
            (&["SETNX", "m", "y"], Value::Int(1)),
            (&["GETSET", "m", "z"], bulk("y")),
            (&["GETDEL", "m"], bulk("z")),
            (&["GETDEL", "m"], nil.clone()),
            (&["EXISTS", "m"], Value::Int(0)),
            (&["MSET", "a", "1", "b", "2"], ok()),
            (
                &["MGET", "a", "nokey", "b"],
                Value::Array(vec![bulk("1"), nil.clone(), bulk("2")]),
            ),
            (&["MSETNX", "a", "9", "c", "3"], Value::Int(0)),
            (&["EXISTS", "c"], Value::Int(0)),
            (&["MSETNX", "c", "3", "d", "4"], Value::Int(1)),
            (&["APPEND", "a", "xyz"], Value::Int(4)),
            (&["APPEND", "new", "hello"], Value::Int(5)),
            (&["STRLEN", "new"], Value::Int(5)),
            (&["STRLEN", "nokey"], Value::Int(0)),
            (&["GETRANGE", "new", "1", "-2"], bulk("ell")),
            (&["SUBSTR", "new", "-3", "-1"], bulk("llo")),
            (&["GETRANGE", "new", "-1", "-5"], bulk("")),
            (&["GETRANGE", "nokey", "0", "-1"], bulk("")),
            (&["SETRANGE", "new", "7", "!"], Value::Int(8)),
            (&["GET", "new"], Value::BulkString(b"hello\0\0!".to_vec())),
            (&["SETRANGE", "empty", "3", ""], Value::Int(0)),
            (&["EXISTS", "empty"], Value::Int(0)),
            (&["INCR", "i"], Value::Int(1)),
            (&["INCRBY", "i", "41"], Value::Int(42)),
            (&["DECR", "i"], Value::Int(41)),
            (&["DECRBY", "i", "-9"], Value::Int(50)),
            (&["INCRBYFLOAT", "f", "10.5"], bulk("10.5")),
            (&["INCRBYFLOAT", "f", "0.1"], bulk("10.6")),
            (&["INCRBYFLOAT", "i", "5.0e3"], bulk("5050")),
            // strtold's hexadecimal floats, as Redis reads them.
            (&["INCRBYFLOAT", "i", "0x1.8p1"], bulk("5053")),
            (&["SET", "e", "v", "EX", "100"], ok()),
            (&["GETEX", "e", "PERSIST"], bulk("v")),
            (&["TTL", "e"], Value::Int(-1)),
            (&["GETEX", "e", "EX", "50"], bulk("v")),
            (&["SET", "e", "w", "KEEPTTL"], ok()),
            (&["PERSIST", "e"], Value::Int(1)),
            (&["SETEX", "e", "100", "x"], ok()),
            (&["PSETEX", "e", "100000", "y"], ok()),
            (&["TYPE", "e"], Value::SimpleString("string".into())),
        ];
        for (args, want) in cases {
            let got = run(&mut c, args);
            let got = match got {
                Value::Double(d) => bulk(&d.to_string()),
                g => g,
            };
            assert_eq!(&got, want, "resp3={resp3}: {args:?}");
        }
        let Value::Int(ttl) = run(&mut c, &["TTL", "e"]) else {
            panic!()
        };
        assert!((99..=100).contains(&ttl), "PSETEX then TTL: {ttl}");
    }
}

#[test]
fn errors_are_redis_texts_and_change_nothing() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["SET", "k", "v"]);
    run(&mut c, &["SET", "i", "10"]);
    run(&mut c, &["SET", "big", "9223372036854775807"]);
    let before = snapshot(&mut c);
    let cases: &[(&[&str], &str)] = &[
        (&["SET", "k", "x", "NX", "XX"], "ERR syntax error"),
        (
            &["SET", "k", "x", "EX", "10", "PX", "10"],
            "ERR syntax error",
        ),
        (
            &["SET", "k", "x", "EX", "0"],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SET", "k", "x", "EX", "abc"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["SETEX", "k", "-1", "x"],
            "ERR invalid expire time in 'setex' command",
        ),
        (
            &["PSETEX", "k", "0", "x"],
            "ERR invalid expire time in 'psetex' command",
        ),
        (&["GETEX", "k", "PERSIST", "EX", "1"], "ERR syntax error"),
        (
            &["GETEX", "k", "EX", "0"],
            "ERR invalid expire time in 'getex' command",
        ),
        (
            &["MSET", "a", "1", "b"],
            "ERR wrong number of arguments for 'mset' command",
        ),
        (
            &["MSETNX", "a"],
            "ERR wrong number of arguments for 'msetnx' command",
        ),
        (
            &["INCR", "k"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["INCRBY", "i", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["INCR", "big"],
            "ERR increment or decrement would overflow",
        ),
        (
            &["DECRBY", "i", "-9223372036854775808"],
            "ERR decrement would overflow",
        ),
        (&["INCRBYFLOAT", "k", "1"], "ERR value is not a valid float"),
        (&["INCRBYFLOAT", "i", "x"], "ERR value is not a valid float"),
        (
            &["INCRBYFLOAT", "i", "inf"],
            "ERR increment would produce NaN or Infinity",
        ),
        (&["SETRANGE", "k", "-1", "x"], "ERR offset is out of range"),
        (
            &["SETRANGE", "k", "536870912", "x"],
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ),
        (
            &["GETRANGE", "k", "a", "1"],
            "ERR value is not an integer or out of range",
        ),
        (&["GET"], "ERR wrong number of arguments for 'get' command"),
    ];
    for (args, want) in cases {
        assert_eq!(err(&mut c, args), *want, "{args:?}");
    }
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn wrongtype_between_strings_and_streams() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    run(&mut c, &["SET", "k", "v"]);
    const WT: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        &["GET", "s"][..],
        &["APPEND", "s", "x"],
        &["INCR", "s"],
        &["INCRBYFLOAT", "s", "1"],
        &["STRLEN", "s"],
        &["GETRANGE", "s", "0", "1"],
        &["SETRANGE", "s", "0", "x"],
        &["GETDEL", "s"],
        &["GETEX", "s"],
        &["GETSET", "s", "v"],
        &["SET", "s", "v", "GET"],
        &["XADD", "k", "*", "f", "v"],
        &["XLEN", "k"],
        &["XRANGE", "k", "-", "+"],
        &["XREAD", "STREAMS", "k", "0"],
        &["XGROUP", "CREATE", "k", "g", "$"],
        &["XINFO", "STREAM", "k"],
    ] {
        assert_eq!(err(&mut c, args), WT, "{args:?}");
    }
    // MGET answers nil for a key of another type; SET replaces a stream.
    assert_eq!(
        run(&mut c, &["MGET", "s", "k"]),
        Value::Array(vec![Value::Nil, bulk("v")])
    );
    assert_eq!(run(&mut c, &["SETNX", "s", "v"]), Value::Int(0));
    assert_eq!(run(&mut c, &["SET", "s", "now a string"]), ok());
    assert_eq!(
        run(&mut c, &["TYPE", "s"]),
        Value::SimpleString("string".into())
    );
    run(&mut c, &["MSET", "s", "again"]);
    assert_eq!(run(&mut c, &["GET", "s"]), bulk("again"));
}

#[test]
fn generic_key_commands_cover_strings() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s1", "1-0", "f", "v"]);
    run(&mut c, &["MSET", "k1", "a", "k2", "b"]);
    assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(3));
    assert_eq!(
        run(&mut c, &["EXISTS", "k1", "k2", "s1", "x"]),
        Value::Int(3)
    );
    let Value::Array(scan) = run(&mut c, &["SCAN", "0", "COUNT", "100", "TYPE", "string"]) else {
        panic!()
    };
    let Value::Array(mut keys) = scan[1].clone() else {
        panic!()
    };
    keys.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(keys, vec![bulk("k1"), bulk("k2")]);
    let Value::Array(mut all) = run(&mut c, &["KEYS", "k*"]) else {
        panic!()
    };
    all.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(all, vec![bulk("k1"), bulk("k2")]);
    assert_eq!(run(&mut c, &["DEL", "k1", "s1"]), Value::Int(2));
    assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(1));
    run(&mut c, &["SELECT", "1"]);
    run(&mut c, &["SET", "other", "db"]);
    run(&mut c, &["FLUSHDB"]);
    run(&mut c, &["SELECT", "0"]);
    assert_eq!(run(&mut c, &["GET", "k2"]), bulk("b"));
    run(&mut c, &["FLUSHALL"]);
    assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(0));
}

#[test]
fn transactions_run_string_commands_atomically() {
    let server = TestServer::start();
    let mut c = server.client(true);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["SET", "k", "1"]);
    run(&mut c, &["INCR", "k"]);
    run(&mut c, &["GET", "k"]);
    assert_eq!(
        run(&mut c, &["EXEC"]),
        Value::Array(vec![ok(), Value::Int(2), bulk("2")])
    );
}

/// Reads messages from a raw pattern subscriber until `n` arrived, as (channel, payload).
fn messages(sub: &mut brooklet::RawConn, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let F2::Array(parts) = sub.read2() else {
            panic!("not a message")
        };
        let text = |f: &F2| match f {
            F2::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        };
        out.push((text(&parts[2]), text(&parts[3])));
    }
    out
}

#[test]
fn keyspace_events_as_redis_publishes_them() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "E$g"]);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    let _ = sub.read2();
    for args in [
        &["SET", "k", "1", "EX", "100"][..],
        &["INCR", "k"],
        &["DECRBY", "k", "2"],
        &["INCRBYFLOAT", "k", "1.5"],
        &["APPEND", "k", "0"],
        &["SETRANGE", "k", "0", "9"],
        &["PERSIST", "k"],
        &["MSET", "a", "1"],
        &["GETDEL", "a"],
        &["EXPIRE", "k", "100"],
        &["GET", "k"],
        &["SET", "last", "v"],
    ] {
        run(&mut c, args);
    }
    let e = |event: &str, key: &str| (format!("__keyevent@0__:{event}"), key.to_string());
    assert_eq!(
        messages(&mut sub, 11),
        vec![
            e("set", "k"),
            e("expire", "k"),
            e("incrby", "k"),
            e("incrby", "k"),
            e("incrbyfloat", "k"),
            e("append", "k"),
            e("setrange", "k"),
            e("persist", "k"),
            e("set", "a"),
            e("del", "a"),
            e("expire", "k"),
        ]
    );
    assert_eq!(messages(&mut sub, 1), vec![e("set", "last")]);
    // A key given twice to MSET is new once, set twice (as Redis's setKey per pair).
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "E$n"]);
    run(&mut c, &["MSET", "twice", "1", "twice", "2", "once", "3"]);
    run(&mut c, &["SET", "last", "v"]);
    assert_eq!(
        messages(&mut sub, 6),
        vec![
            e("new", "twice"),
            e("set", "twice"),
            e("set", "twice"),
            e("new", "once"),
            e("set", "once"),
            e("set", "last"),
        ]
    );
}

#[test]
fn blocked_readers_when_their_key_becomes_a_string() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "666-0", "f", "v"]);
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
    run(&mut c, &["XADD", "t", "666-0", "f", "v"]);
    let mut group = server.raw();
    group.send_cmd(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"alice",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"s",
        b">",
    ]);
    let mut reader = server.raw();
    reader.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"t", b"$"]);
    wait_blocked(&mut c, 2);
    run(&mut c, &["SET", "s", "v"]);
    run(&mut c, &["SET", "t", "v"]);
    assert_eq!(
        brooklet::error_text(&group.read2()).as_deref(),
        Some("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    // XREAD waits on, and is served by the stream created after the string goes.
    wait_blocked(&mut c, 1);
    run(&mut c, &["DEL", "t"]);
    run(&mut c, &["XADD", "t", "667-0", "f", "v"]);
    let F2::Array(reply) = reader.read2() else {
        panic!("XREAD did not answer with entries")
    };
    assert_eq!(reply.len(), 1);
}

/// Waits until `n` clients are blocked (bounded).
fn wait_blocked(c: &mut redis::Connection, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Value::BulkString(info) = run(c, &["INFO", "clients"]) else {
            panic!()
        };
        let info = String::from_utf8(info).unwrap();
        let blocked = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if blocked == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} blocked clients");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn strings_survive_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        c.dir = path.clone();
        c.enable_debug_command = "yes".into();
    });
    let mut c = server.client(false);
    run(&mut c, &["SET", "plain", "v"]);
    run(&mut c, &["SET", "ttl", "v", "EX", "1000"]);
    run(&mut c, &["MSET", "m1", "a", "m2", "b"]);
    run(&mut c, &["INCRBY", "n", "7"]);
    run(&mut c, &["APPEND", "plain", "+"]);
    // A string built by appends (each logged as the bytes it adds), in a pipeline.
    let mut pipe = redis::pipe();
    for i in 0..3_000 {
        pipe.cmd("APPEND")
            .arg("log")
            .arg(format!("line {i}\n"))
            .ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    // Patched where it is (each logged as the bytes it writes), and past its end.
    run(&mut c, &["SETRANGE", "log", "5", "LINE"]);
    run(&mut c, &["SETRANGE", "log", "30000", "end"]);
    run(&mut c, &["SETRANGE", "r", "3", "x"]);
    run(&mut c, &["SET", "gone", "v"]);
    run(&mut c, &["GETDEL", "gone"]);
    run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    run(&mut c, &["SET", "s", "was a stream"]);
    run(&mut c, &["XADD", "s2", "1-0", "f", "v"]);
    run(&mut c, &["EXPIRE", "s2", "1000"]);
    run(&mut c, &["SELECT", "3"]);
    run(&mut c, &["SET", "in3", "v"]);
    run(&mut c, &["SELECT", "0"]);
    let before = snapshot(&mut c);
    let expire_time = run(&mut c, &["PEXPIRETIME", "ttl"]);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD");
    assert_eq!(run(&mut c, &["PEXPIRETIME", "ttl"]), expire_time);
    drop(c);
    server.stop();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(true);
    assert_eq!(snapshot(&mut c), before, "restart");
    assert_eq!(run(&mut c, &["PEXPIRETIME", "ttl"]), expire_time);
    run(&mut c, &["SELECT", "3"]);
    assert_eq!(run(&mut c, &["GET", "in3"]), bulk("v"));
    assert_eq!(query(&mut c, &["GET", "gone"]).unwrap(), Value::Nil);
}

#[test]
fn command_info_and_docs_describe_them() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for (name, arity) in [("set", -3), ("getex", -2), ("mset", -3), ("incrbyfloat", 3)] {
        let Value::Array(info) = run(&mut c, &["COMMAND", "INFO", name]) else {
            panic!("no info")
        };
        let Value::Array(ref fields) = info[0] else {
            panic!("{name}: {info:?}")
        };
        assert_eq!(fields[0], bulk(name));
        assert_eq!(fields[1], Value::Int(arity));
        let docs = run(&mut c, &["COMMAND", "DOCS", name]);
        assert!(format!("{docs:?}").contains("string"), "{name}: {docs:?}");
    }
}

#[test]
fn a_string_replacing_a_stream_is_one_change_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(false);
    // Large enough that its records are purged in the background once it is replaced.
    let mut pipe = redis::pipe();
    for i in 1..=5000 {
        pipe.cmd("XADD")
            .arg("big")
            .arg(format!("{i}-0"))
            .arg("f")
            .arg("v")
            .ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    run(&mut c, &["XADD", "small", "1-0", "f", "v"]);
    run(&mut c, &["EXPIRE", "small", "1000"]);
    run(&mut c, &["SAVE"]);
    run(&mut c, &["SET", "big", "now a string"]);
    run(&mut c, &["SET", "small", "kept ttl", "KEEPTTL"]);
    let ttl = run(&mut c, &["PEXPIRETIME", "small"]);
    drop(c);
    server.stop();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(false);
    assert_eq!(run(&mut c, &["GET", "big"]), bulk("now a string"));
    assert_eq!(run(&mut c, &["GET", "small"]), bulk("kept ttl"));
    assert_eq!(run(&mut c, &["PEXPIRETIME", "small"]), ttl);
    // A stream under the key again starts empty.
    run(&mut c, &["DEL", "big"]);
    run(&mut c, &["XADD", "big", "1-0", "f", "v"]);
    assert_eq!(run(&mut c, &["XLEN", "big"]), Value::Int(1));
}
