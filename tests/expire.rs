//! End-to-end tests of key deadlines on strings and streams: EXPIRE and its conditions, TTL
//! and its variants, PERSIST, lazy and active expiry, the `expired` event, INFO's counts,
//! and deadlines that survive DEBUG RELOAD and a restart (a key whose deadline passed while
//! the server was down is gone when it comes back).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::{TestServer, err, info_field, int, now_ms, run};
use redis::Value;
use redis_protocol::resp2::types::OwnedFrame as F2;

/// Polls `f` until it holds, for at most `limit`.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn expire_ttl_and_persist_on_strings_and_streams() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["FLUSHALL"]);
        run(&mut c, &["SET", "k", "v"]);
        run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
        for key in ["k", "s"] {
            assert_eq!(int(&mut c, &["TTL", key]), -1);
            assert_eq!(int(&mut c, &["EXPIRE", key, "100"]), 1);
            assert_eq!(int(&mut c, &["TTL", key]), 100);
            let pttl = int(&mut c, &["PTTL", key]);
            assert!((99_000..=100_000).contains(&pttl), "{pttl}");
            let at = int(&mut c, &["PEXPIRETIME", key]);
            assert!((at - now_ms() - 100_000).abs() < 2_000, "{at}");
            assert_eq!(int(&mut c, &["EXPIRETIME", key]), (at + 500) / 1000);
            assert_eq!(int(&mut c, &["EXPIRE", key, "50", "NX"]), 0);
            assert_eq!(int(&mut c, &["EXPIRE", key, "50", "GT"]), 0);
            assert_eq!(int(&mut c, &["EXPIRE", key, "200", "GT"]), 1);
            assert_eq!(int(&mut c, &["PEXPIRE", key, "300000", "LT"]), 0);
            assert_eq!(int(&mut c, &["PEXPIRE", key, "150000", "XX", "LT"]), 1);
            assert_eq!(int(&mut c, &["TTL", key]), 150);
            assert_eq!(int(&mut c, &["PERSIST", key]), 1);
            assert_eq!(int(&mut c, &["PERSIST", key]), 0);
            assert_eq!(int(&mut c, &["EXPIRE", key, "10", "XX"]), 0);
            assert_eq!(int(&mut c, &["EXPIRE", key, "10", "GT"]), 0);
            assert_eq!(int(&mut c, &["EXPIRE", key, "10", "LT"]), 1);
            let at = (now_ms() / 1000 + 1000).to_string();
            assert_eq!(int(&mut c, &["EXPIREAT", key, &at]), 1);
            assert_eq!(int(&mut c, &["EXPIRETIME", key]).to_string(), at);
            assert_eq!(int(&mut c, &["EXPIRETIME", key]).to_string(), at);
        }
        for what in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(int(&mut c, &[what, "nokey"]), -2);
        }
        assert_eq!(int(&mut c, &["EXPIRE", "nokey", "10"]), 0);
        assert_eq!(int(&mut c, &["PERSIST", "nokey"]), 0);
        // A deadline in the past removes the key at once.
        assert_eq!(int(&mut c, &["EXPIRE", "k", "-1"]), 1);
        assert_eq!(int(&mut c, &["PEXPIREAT", "s", "1"]), 1);
        assert_eq!(int(&mut c, &["EXISTS", "k", "s"]), 0);
        // SET without KEEPTTL clears the deadline; SET KEEPTTL keeps it.
        run(&mut c, &["SET", "k", "v", "EX", "100"]);
        run(&mut c, &["SET", "k", "w", "KEEPTTL"]);
        assert_eq!(int(&mut c, &["TTL", "k"]), 100);
        run(&mut c, &["APPEND", "k", "x"]);
        run(&mut c, &["SET", "k", "w"]);
        assert_eq!(int(&mut c, &["TTL", "k"]), -1);
    }
}

#[test]
fn expire_errors_are_redis_texts() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["SET", "k", "v"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["EXPIRE", "k", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["EXPIRE", "k", "10", "FOO"], "ERR Unsupported option FOO"),
        (
            &["EXPIRE", "k", "10", "NX", "XX"],
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ),
        (
            &["PEXPIRE", "k", "10", "GT", "LT"],
            "ERR GT and LT options at the same time are not compatible",
        ),
        (
            &["EXPIRE", "k", "9223372036854775807"],
            "ERR invalid expire time in 'expire' command",
        ),
        (
            &["PEXPIRE", "k", "9223372036854775807"],
            "ERR invalid expire time in 'pexpire' command",
        ),
        (
            &["EXPIREAT", "k", "9223372036854775807"],
            "ERR invalid expire time in 'expireat' command",
        ),
        (&["TTL"], "ERR wrong number of arguments for 'ttl' command"),
        (
            &["PERSIST", "a", "b"],
            "ERR wrong number of arguments for 'persist' command",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(err(&mut c, args), *want, "{args:?}");
    }
    assert_eq!(int(&mut c, &["TTL", "k"]), -1);
}

#[test]
fn keys_expire_lazily_and_in_the_background() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__keyevent@0__:expired"]);
    let _ = sub.read2();
    run(&mut c, &["SET", "lazy", "v", "PX", "50"]);
    run(&mut c, &["SET", "active", "v", "PX", "50"]);
    run(&mut c, &["XADD", "stream", "1-0", "f", "v"]);
    run(&mut c, &["XGROUP", "CREATE", "stream", "g", "0"]);
    run(&mut c, &["PEXPIRE", "stream", "50"]);
    run(&mut c, &["SET", "stays", "v", "EX", "1000"]);
    assert_eq!(
        info_field(&mut c, "keyspace", "db0").as_deref(),
        Some("keys=4,expires=4,avg_ttl=0,subexpiry=0")
    );
    std::thread::sleep(Duration::from_millis(60));
    // Whether the sweep or this read removes it, the reader sees no key.
    assert_eq!(run(&mut c, &["GET", "lazy"]), Value::Nil);
    eventually(Duration::from_secs(5), "active expiry", || {
        int(&mut c, &["DBSIZE"]) == 1
    });
    let mut expired = Vec::new();
    for _ in 0..3 {
        let F2::Array(parts) = sub.read2() else {
            panic!("not a message")
        };
        let F2::BulkString(key) = &parts[3] else {
            panic!()
        };
        expired.push(String::from_utf8(key.clone()).unwrap());
    }
    expired.sort();
    assert_eq!(expired, ["active", "lazy", "stream"]);
    assert_eq!(
        info_field(&mut c, "stats", "expired_keys").as_deref(),
        Some("3")
    );
    assert_eq!(
        info_field(&mut c, "keyspace", "db0").as_deref(),
        Some("keys=1,expires=1,avg_ttl=0,subexpiry=0")
    );
    // The expired stream went as DEL goes: a new one under its key starts empty.
    run(&mut c, &["XADD", "stream", "5-0", "f", "v"]);
    assert_eq!(int(&mut c, &["XLEN", "stream"]), 1);
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "stream", ">"]
        ),
        "NOGROUP No such key 'stream' or consumer group 'g' in XREADGROUP with GROUP option"
    );
    assert_eq!(int(&mut c, &["TTL", "stream"]), -1);
}

#[test]
fn many_keys_expiring_together_leave_other_clients_served() {
    let server = TestServer::start();
    let mut c = server.client(false);
    const N: usize = 20_000;
    let at = (now_ms() + 300).to_string();
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET")
                .arg(format!("key:{i}"))
                .arg("v")
                .arg("PXAT")
                .arg(&at)
                .ignore();
        }
        let () = pipe.query(&mut c).unwrap();
    }
    run(&mut c, &["SET", "other", "v"]);
    let mut other = server.client(false);
    let mut slowest = Duration::ZERO;
    eventually(Duration::from_secs(20), "every key expired", || {
        let started = Instant::now();
        assert_eq!(
            run(&mut other, &["GET", "other"]),
            Value::BulkString(b"v".to_vec())
        );
        slowest = slowest.max(started.elapsed());
        int(&mut c, &["DBSIZE"]) == 1
    });
    // Generous for a debug build on a shared machine: one shard batch is far below it.
    assert!(
        slowest < Duration::from_millis(250),
        "a GET took {slowest:?}"
    );
    assert_eq!(
        info_field(&mut c, "stats", "expired_keys").as_deref(),
        Some(N.to_string().as_str())
    );
}

#[test]
fn deadlines_survive_reload_and_restart_and_pass_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        c.dir = path.clone();
        c.enable_debug_command = "yes".into();
    });
    let mut c = server.client(false);
    run(&mut c, &["SET", "long", "v", "EX", "1000"]);
    run(&mut c, &["XADD", "slong", "1-0", "f", "v"]);
    run(&mut c, &["EXPIRE", "slong", "1000"]);
    // Long enough that a loaded machine still reloads before it passes.
    let short_at = now_ms() + 3000;
    let at = short_at.to_string();
    run(&mut c, &["SET", "short", "v", "PXAT", &at]);
    run(&mut c, &["XADD", "sshort", "1-0", "f", "v"]);
    run(&mut c, &["PEXPIREAT", "sshort", &at]);
    run(&mut c, &["SET", "none", "v"]);
    let long = int(&mut c, &["PEXPIRETIME", "long"]);
    let slong = int(&mut c, &["PEXPIRETIME", "slong"]);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(int(&mut c, &["PEXPIRETIME", "long"]), long);
    assert_eq!(int(&mut c, &["PEXPIRETIME", "slong"]), slong);
    assert_eq!(int(&mut c, &["DBSIZE"]), 5);
    drop(c);
    server.stop();
    // The short deadlines pass while the server is down.
    while now_ms() <= short_at + 50 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(true);
    assert_eq!(int(&mut c, &["EXISTS", "short", "sshort"]), 0);
    assert_eq!(int(&mut c, &["PEXPIRETIME", "long"]), long);
    assert_eq!(int(&mut c, &["PEXPIRETIME", "slong"]), slong);
    assert_eq!(int(&mut c, &["TTL", "none"]), -1);
    assert_eq!(int(&mut c, &["DBSIZE"]), 3);
    // A new stream under an expired one's key is a life of its own after another restart.
    run(&mut c, &["XADD", "sshort", "9-0", "f", "v"]);
    drop(c);
    server.stop();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(false);
    assert_eq!(int(&mut c, &["XLEN", "sshort"]), 1);
    assert_eq!(int(&mut c, &["TTL", "sshort"]), -1);
}

#[test]
fn watch_sees_a_key_expire() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["SET", "k", "v", "PX", "30"]);
    run(&mut c, &["WATCH", "k"]);
    std::thread::sleep(Duration::from_millis(50));
    let mut other = server.client(false);
    eventually(Duration::from_secs(5), "expiry", || {
        int(&mut other, &["EXISTS", "k"]) == 0
    });
    run(&mut c, &["MULTI"]);
    run(&mut c, &["SET", "k", "w"]);
    assert_eq!(run(&mut c, &["EXEC"]), Value::Nil);
}
