//! End-to-end tests of pub/sub: every command and reply shape in RESP2 and RESP3, the
//! subscribed-mode rules, glob patterns, PUBSUB introspection, keyspace notifications, and slow
//! subscribers cut off at the output buffer limit without hurting anyone else.
//!
//! A subscription is ready once its confirmation was read; nothing here sleeps to wait for one.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::time::{Duration, Instant};

use brooklet::{RawConn, TestServer, error_text};
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;
use redis_protocol::resp3::types::OwnedFrame as F3;

/// A RESP2 array of bulk strings and integers, written as the bytes Redis sends.
fn frame2(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        p.write(&mut out, false);
    }
    out
}

/// The same as a RESP3 push frame.
fn push3(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = format!(">{}\r\n", parts.len()).into_bytes();
    for p in parts {
        p.write(&mut out, true);
    }
    out
}

enum Part<'a> {
    B(&'a [u8]),
    I(i64),
    Nil,
}
use Part::{B, I, Nil};

impl Part<'_> {
    fn write(&self, out: &mut Vec<u8>, resp3: bool) {
        match self {
            B(b) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            I(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
            Nil if resp3 => out.extend_from_slice(b"_\r\n"),
            Nil => out.extend_from_slice(b"$-1\r\n"),
        }
    }
}

/// Reads exactly `want.len()` bytes and compares them (exact RESP3 bytes, push frames included).
fn expect_bytes(raw: &mut RawConn, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    raw.stream.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "unexpected bytes"
    );
}

fn int2(raw: &mut RawConn) -> i64 {
    match raw.read2() {
        F2::Integer(i) => i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Polls `f` until it holds, for at most 10 s (for effects of a disconnect, which the server
/// processes asynchronously).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

fn numsub(c: &mut redis::Connection, channel: &str) -> i64 {
    let v: (String, i64) = cmd("PUBSUB").arg("NUMSUB").arg(channel).query(c).unwrap();
    v.1
}

#[test]
fn resp2_confirmations_messages_and_counts_are_redis_bytes() {
    let server = TestServer::start();
    let mut sub = server.raw();
    let mut publisher = server.client(false);

    sub.send_cmd(&[b"SUBSCRIBE", b"a", b"b", b"a"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"subscribe"), B(b"a"), I(1)]));
    assert_eq!(sub.read_raw2(), frame2(&[B(b"subscribe"), B(b"b"), I(2)]));
    assert_eq!(sub.read_raw2(), frame2(&[B(b"subscribe"), B(b"a"), I(2)]));
    sub.send_cmd(&[b"PSUBSCRIBE", b"a*"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"psubscribe"), B(b"a*"), I(3)]));
    // Shard channels have their own count.
    sub.send_cmd(&[b"SSUBSCRIBE", b"s"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"ssubscribe"), B(b"s"), I(1)]));

    let n: i64 = cmd("PUBLISH")
        .arg("a")
        .arg("hi")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 2, "once through the channel, once through the pattern");
    assert_eq!(sub.read_raw2(), frame2(&[B(b"message"), B(b"a"), B(b"hi")]));
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"pmessage"), B(b"a*"), B(b"a"), B(b"hi")])
    );
    let n: i64 = cmd("SPUBLISH")
        .arg("s")
        .arg("x")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"smessage"), B(b"s"), B(b"x")]));
    // PUBLISH never reaches shard subscribers, SPUBLISH never reaches patterns.
    let n: i64 = cmd("PUBLISH")
        .arg("s")
        .arg("x")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = cmd("SPUBLISH")
        .arg("a")
        .arg("x")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 0);

    sub.send_cmd(&[b"UNSUBSCRIBE", b"nope", b"a"]);
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"unsubscribe"), B(b"nope"), I(3)])
    );
    assert_eq!(sub.read_raw2(), frame2(&[B(b"unsubscribe"), B(b"a"), I(2)]));
    sub.send_cmd(&[b"UNSUBSCRIBE"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"unsubscribe"), B(b"b"), I(1)]));
    // Nothing left: one confirmation with a nil channel and the remaining count.
    sub.send_cmd(&[b"UNSUBSCRIBE"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"unsubscribe"), Nil, I(1)]));
    sub.send_cmd(&[b"PUNSUBSCRIBE"]);
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"punsubscribe"), B(b"a*"), I(0)])
    );
    sub.send_cmd(&[b"SUNSUBSCRIBE", b"zz"]);
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"sunsubscribe"), B(b"zz"), I(1)])
    );
    sub.send_cmd(&[b"SUNSUBSCRIBE"]);
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"sunsubscribe"), B(b"s"), I(0)])
    );
    sub.send_cmd(&[b"SUNSUBSCRIBE"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"sunsubscribe"), Nil, I(0)]));
    sub.send_cmd(&[b"PUNSUBSCRIBE"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"punsubscribe"), Nil, I(0)]));
    // Out of subscribed mode: ordinary commands again.
    sub.send_cmd(&[b"ECHO", b"back"]);
    assert_eq!(sub.read2(), F2::BulkString(b"back".to_vec()));
}

#[test]
fn resp2_subscribed_mode_allows_only_subscription_commands_ping_quit_reset() {
    let server = TestServer::start();
    let mut sub = server.raw();
    sub.send_cmd(&[b"SSUBSCRIBE", b"s"]);
    sub.read2();
    for (args, name) in [
        (&[&b"ECHO"[..], b"x"][..], "echo"),
        (&[b"PUBLISH", b"c", b"m"], "publish"),
        (&[b"PUBSUB", b"NUMPAT"], "pubsub|numpat"),
        (&[b"GET", b"k"], "get"),
    ] {
        sub.send_cmd(args);
        let reply = sub.read2();
        assert_eq!(
            error_text(&reply).unwrap(),
            format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )
        );
    }
    sub.send_cmd(&[b"PING"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"pong"), B(b"")]));
    sub.send_cmd(&[b"PING", b"hey"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"pong"), B(b"hey")]));
    sub.send_cmd(&[b"SUBSCRIBE", b"c"]);
    assert_eq!(sub.read_raw2(), frame2(&[B(b"subscribe"), B(b"c"), I(1)]));
    // RESET leaves every subscription.
    sub.send_cmd(&[b"RESET"]);
    assert_eq!(sub.read2(), F2::SimpleString(b"RESET".to_vec()));
    sub.send_cmd(&[b"PING"]);
    assert_eq!(sub.read2(), F2::SimpleString(b"PONG".to_vec()));
    let mut c = server.client(false);
    assert_eq!(numsub(&mut c, "c"), 0);
    let shard: Vec<Value> = cmd("PUBSUB").arg("SHARDCHANNELS").query(&mut c).unwrap();
    assert!(shard.is_empty());
    // QUIT is allowed and answered.
    sub.send_cmd(&[b"SUBSCRIBE", b"c"]);
    sub.read2();
    sub.send_cmd(&[b"QUIT"]);
    assert_eq!(sub.read2(), F2::SimpleString(b"OK".to_vec()));
    assert!(sub.is_closed());
}

#[test]
fn resp3_pushes_interleave_with_ordinary_replies() {
    let server = TestServer::start();
    let mut sub = server.raw();
    sub.send_cmd(&[b"HELLO", b"3"]);
    sub.read3();
    sub.send_cmd(&[b"SUBSCRIBE", b"a", b"b"]);
    expect_bytes(
        &mut sub,
        &[
            push3(&[B(b"subscribe"), B(b"a"), I(1)]),
            push3(&[B(b"subscribe"), B(b"b"), I(2)]),
        ]
        .concat(),
    );
    sub.send_cmd(&[b"PSUBSCRIBE", b"*"]);
    expect_bytes(&mut sub, &push3(&[B(b"psubscribe"), B(b"*"), I(3)]));
    sub.send_cmd(&[b"SSUBSCRIBE", b"s"]);
    expect_bytes(&mut sub, &push3(&[B(b"ssubscribe"), B(b"s"), I(1)]));

    // Every command stays allowed; PING is an ordinary PONG.
    sub.send_cmd(&[b"ECHO", b"e"]);
    expect_bytes(&mut sub, b"$1\r\ne\r\n");
    sub.send_cmd(&[b"PING"]);
    expect_bytes(&mut sub, b"+PONG\r\n");

    // Publishing to oneself: the messages come after PUBLISH's own reply, as Redis 7.2+
    // defers them.
    sub.send_cmd(&[b"PUBLISH", b"a", b"m"]);
    expect_bytes(
        &mut sub,
        &[
            b":2\r\n".to_vec(),
            push3(&[B(b"message"), B(b"a"), B(b"m")]),
            push3(&[B(b"pmessage"), B(b"*"), B(b"a"), B(b"m")]),
        ]
        .concat(),
    );
    sub.send_cmd(&[b"SPUBLISH", b"s", b"q"]);
    expect_bytes(
        &mut sub,
        &[
            b":1\r\n".to_vec(),
            push3(&[B(b"smessage"), B(b"s"), B(b"q")]),
        ]
        .concat(),
    );
    // Inside MULTI they follow the whole EXEC array instead of breaking into it.
    sub.send_cmd(&[b"MULTI"]);
    sub.send_cmd(&[b"PUBLISH", b"a", b"1"]);
    sub.send_cmd(&[b"PING"]);
    sub.send_cmd(&[b"EXEC"]);
    expect_bytes(
        &mut sub,
        &[
            b"+OK\r\n+QUEUED\r\n+QUEUED\r\n".to_vec(),
            b"*2\r\n:2\r\n+PONG\r\n".to_vec(),
            push3(&[B(b"message"), B(b"a"), B(b"1")]),
            push3(&[B(b"pmessage"), B(b"*"), B(b"a"), B(b"1")]),
        ]
        .concat(),
    );

    // A message from someone else arrives before the reply to the next command.
    let mut publisher = server.client(true);
    let n: i64 = cmd("PUBLISH")
        .arg("b")
        .arg("x")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 2);
    sub.send_cmd(&[b"PUBSUB", b"NUMSUB", b"a", b"zz"]);
    expect_bytes(
        &mut sub,
        &[
            push3(&[B(b"message"), B(b"b"), B(b"x")]),
            push3(&[B(b"pmessage"), B(b"*"), B(b"b"), B(b"x")]),
            // NUMSUB is a flat array in RESP3 too.
            frame2(&[B(b"a"), I(1), B(b"zz"), I(0)]),
        ]
        .concat(),
    );

    sub.send_cmd(&[b"UNSUBSCRIBE"]);
    expect_bytes(
        &mut sub,
        &[
            push3(&[B(b"unsubscribe"), B(b"a"), I(2)]),
            push3(&[B(b"unsubscribe"), B(b"b"), I(1)]),
        ]
        .concat(),
    );
    sub.send_cmd(&[b"UNSUBSCRIBE"]);
    expect_bytes(&mut sub, &push3(&[B(b"unsubscribe"), Nil, I(1)]));
    sub.send_cmd(&[b"PUNSUBSCRIBE", b"*"]);
    expect_bytes(&mut sub, &push3(&[B(b"punsubscribe"), B(b"*"), I(0)]));
    sub.send_cmd(&[b"SUNSUBSCRIBE"]);
    expect_bytes(&mut sub, &push3(&[B(b"sunsubscribe"), B(b"s"), I(0)]));
    sub.send_cmd(&[b"SUNSUBSCRIBE"]);
    expect_bytes(&mut sub, &push3(&[B(b"sunsubscribe"), Nil, I(0)]));
    // Still decodable as RESP3 by an independent decoder.
    sub.send_cmd(&[b"SUBSCRIBE", b"z"]);
    match sub.read3() {
        F3::Push { data, .. } => assert_eq!(data.len(), 3),
        other => panic!("expected a push, got {other:?}"),
    }
}

#[test]
fn redis_crate_pubsub_api_in_resp2() {
    let server = TestServer::start();
    let mut publisher = server.client(false);
    let mut conn = server.client(false);
    let mut ps = conn.as_pubsub();
    ps.subscribe("news").unwrap();
    ps.psubscribe("n*").unwrap();
    let n: i64 = cmd("PUBLISH")
        .arg("news")
        .arg(&b"\x00bin\r\n"[..])
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 2);
    let m = ps.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "news");
    assert_eq!(m.get_payload_bytes(), b"\x00bin\r\n");
    assert!(!m.from_pattern());
    let m = ps.get_message().unwrap();
    assert!(m.from_pattern());
    assert_eq!(m.get_pattern::<String>().unwrap(), "n*");
    assert_eq!(m.get_channel_name(), "news");
    ps.unsubscribe("news").unwrap();
    ps.punsubscribe("n*").unwrap();
    drop(ps);
    // Out of subscribed mode, the same connection runs commands again.
    let pong: String = cmd("PING").query(&mut conn).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn redis_crate_resp3_push_sender_receives_messages() {
    let server = TestServer::start();
    let mut publisher = server.client(true);
    let mut conn = server.client(true);
    let (tx, rx) = std::sync::mpsc::channel();
    conn.set_push_sender(tx);
    conn.subscribe_resp3("ch").unwrap();
    conn.psubscribe_resp3("c?").unwrap();
    // The confirmations precede this PONG, so both subscriptions are live once it arrives.
    let _: String = cmd("PING").query(&mut conn).unwrap();
    let n: i64 = cmd("PUBLISH")
        .arg("ch")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 2);
    // The pushes arrive before the reply to the next command.
    let _: String = cmd("PING").query(&mut conn).unwrap();
    let mut kinds = Vec::new();
    while let Ok(push) = rx.recv_timeout(Duration::from_millis(100)) {
        kinds.push((format!("{:?}", push.kind), push.data));
    }
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["Subscribe", "PSubscribe", "Message", "PMessage"]);
    assert_eq!(
        kinds[2].1,
        [
            Value::BulkString(b"ch".to_vec()),
            Value::BulkString(b"hello".to_vec())
        ]
    );
    assert_eq!(
        kinds[3].1,
        [
            Value::BulkString(b"c?".to_vec()),
            Value::BulkString(b"ch".to_vec()),
            Value::BulkString(b"hello".to_vec())
        ]
    );
}

#[test]
fn glob_patterns_follow_redis_rules_and_each_match_is_one_delivery() {
    let server = TestServer::start();
    let mut sub = server.raw();
    let patterns: &[&[u8]] = &[
        b"h?llo",
        b"h*llo",
        b"h[ae]llo",
        b"h[^e]llo",
        b"h[a-b]llo",
        b"h\\*llo",
        b"*",
        b"\x00*\xff",
    ];
    let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
    args.extend_from_slice(patterns);
    sub.send_cmd(&args);
    for (i, p) in patterns.iter().enumerate() {
        assert_eq!(
            sub.read_raw2(),
            frame2(&[B(b"psubscribe"), B(p), I(i as i64 + 1)])
        );
    }
    let mut publisher = server.raw();
    let cases: &[(&[u8], &[&[u8]])] = &[
        (b"hello", &[b"h?llo", b"h*llo", b"h[ae]llo", b"*"]),
        (
            b"hallo",
            &[
                b"h?llo",
                b"h*llo",
                b"h[ae]llo",
                b"h[^e]llo",
                b"h[a-b]llo",
                b"*",
            ],
        ),
        (b"hllo", &[b"h*llo", b"*"]),
        (
            b"h*llo",
            &[b"h?llo", b"h*llo", b"h[^e]llo", b"h\\*llo", b"*"],
        ),
        (b"\x00mid\xff", &[b"*", b"\x00*\xff"]),
        (b"", &[b"*"]),
    ];
    for (channel, matching) in cases {
        publisher.send_cmd(&[b"PUBLISH", channel, b"p"]);
        assert_eq!(
            int2(&mut publisher),
            matching.len() as i64,
            "receivers of {:?}",
            String::from_utf8_lossy(channel)
        );
        let mut got: Vec<Vec<u8>> = (0..matching.len()).map(|_| sub.read_raw2()).collect();
        let mut want: Vec<Vec<u8>> = matching
            .iter()
            .map(|p| frame2(&[B(b"pmessage"), B(p), B(channel), B(b"p")]))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
    // PUNSUBSCRIBE compares patterns byte for byte; it does not match them.
    sub.send_cmd(&[b"PUNSUBSCRIBE", b"hello", b"h?llo"]);
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"punsubscribe"), B(b"hello"), I(8)])
    );
    assert_eq!(
        sub.read_raw2(),
        frame2(&[B(b"punsubscribe"), B(b"h?llo"), I(7)])
    );
    let mut c = server.client(false);
    let numpat: i64 = cmd("PUBSUB").arg("NUMPAT").query(&mut c).unwrap();
    assert_eq!(numpat, 7);
}

#[test]
fn pubsub_introspection_and_disconnect_cleanup() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let mut a = server.raw();
    let mut b = server.raw();
    a.send_cmd(&[b"SUBSCRIBE", b"news.tech", b"news.art", b"sport"]);
    for _ in 0..3 {
        a.read2();
    }
    a.send_cmd(&[b"PSUBSCRIBE", b"news.*"]);
    a.read2();
    a.send_cmd(&[b"SSUBSCRIBE", b"shard.a"]);
    a.read2();
    b.send_cmd(&[b"SUBSCRIBE", b"news.tech"]);
    b.read2();
    b.send_cmd(&[b"PSUBSCRIBE", b"news.*", b"x*"]);
    b.read2();
    b.read2();

    let mut all: Vec<String> = cmd("PUBSUB").arg("CHANNELS").query(&mut c).unwrap();
    all.sort();
    assert_eq!(all, ["news.art", "news.tech", "sport"]);
    let mut news: Vec<String> = cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("news.*")
        .query(&mut c)
        .unwrap();
    news.sort();
    assert_eq!(news, ["news.art", "news.tech"]);
    let counts: Vec<Value> = cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news.tech")
        .arg("sport")
        .arg("none")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        counts,
        [
            Value::BulkString(b"news.tech".to_vec()),
            Value::Int(2),
            Value::BulkString(b"sport".to_vec()),
            Value::Int(1),
            Value::BulkString(b"none".to_vec()),
            Value::Int(0),
        ]
    );
    let empty: Vec<Value> = cmd("PUBSUB").arg("NUMSUB").query(&mut c).unwrap();
    assert!(empty.is_empty());
    let numpat: i64 = cmd("PUBSUB").arg("NUMPAT").query(&mut c).unwrap();
    assert_eq!(numpat, 2, "distinct patterns");
    let shard: Vec<String> = cmd("PUBSUB").arg("SHARDCHANNELS").query(&mut c).unwrap();
    assert_eq!(shard, ["shard.a"]);
    let shard: Vec<String> = cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .arg("x*")
        .query(&mut c)
        .unwrap();
    assert!(shard.is_empty());
    let counts: (String, i64) = cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg("shard.a")
        .query(&mut c)
        .unwrap();
    assert_eq!(counts, ("shard.a".into(), 1));
    let n: i64 = cmd("PUBLISH")
        .arg("news.tech")
        .arg("m")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 4);

    // INFO and CLIENT LIST see the subscriptions.
    assert_eq!(info_field(&mut c, "stats", "pubsub_channels"), "3");
    assert_eq!(info_field(&mut c, "stats", "pubsub_patterns"), "2");
    assert_eq!(info_field(&mut c, "stats", "pubsubshard_channels"), "1");
    assert_eq!(info_field(&mut c, "clients", "pubsub_clients"), "2");
    let list: String = cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(list.contains("sub=3 psub=1 ssub=1"), "{list}");
    assert!(list.contains("sub=1 psub=2 ssub=0"), "{list}");

    // Errors as Redis words them.
    let err = cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("a")
        .arg("b")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
        ),
        "{err}"
    );
    let err = cmd("PUBSUB")
        .arg("NUMPAT")
        .arg("x")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'pubsub|numpat' command"),
        "{err}"
    );
    let err = cmd("PUBSUB").arg("FOO").query::<Value>(&mut c).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown subcommand 'FOO'. Try PUBSUB HELP."),
        "{err}"
    );
    let help: Vec<String> = cmd("PUBSUB").arg("HELP").query(&mut c).unwrap();
    assert!(help[0].starts_with("PUBSUB <subcommand>"));
    assert!(help.iter().any(|l| l.starts_with("SHARDNUMSUB")));

    // A disconnect removes every subscription of the client.
    drop(a);
    eventually("a's subscriptions to go", || {
        numsub(&mut c, "news.tech") == 1
    });
    assert_eq!(numsub(&mut c, "sport"), 0);
    let shard: Vec<String> = cmd("PUBSUB").arg("SHARDCHANNELS").query(&mut c).unwrap();
    assert!(shard.is_empty());
    let n: i64 = cmd("PUBLISH")
        .arg("news.tech")
        .arg("m")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    drop(b);
    eventually("b's subscriptions to go", || {
        numsub(&mut c, "news.tech") == 0
            && cmd("PUBSUB").arg("NUMPAT").query::<i64>(&mut c).unwrap() == 0
    });
    assert_eq!(info_field(&mut c, "clients", "pubsub_clients"), "0");
    assert_eq!(info_field(&mut c, "stats", "pubsub_channels"), "0");
}

#[test]
fn slow_subscriber_is_cut_off_while_a_reading_one_gets_every_message_in_order() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 256kb 128kb 1")
        .query(&mut admin)
        .unwrap();

    // The slow subscriber never reads after its confirmation.
    let mut slow = server.raw();
    slow.send_cmd(&[b"SUBSCRIBE", b"flood"]);
    slow.read2();
    let mut fast = server.raw();
    fast.send_cmd(&[b"SUBSCRIBE", b"flood"]);
    fast.read2();

    const MESSAGES: usize = 20_000;
    let message = |i: usize| {
        let payload = [format!("{i:08}").as_bytes(), &[b'x'; 1016][..]].concat();
        frame2(&[B(b"message"), B(b"flood"), B(&payload)])
    };
    let frame_len = message(0).len();
    // The reading subscriber only copies bytes off its socket (checking comes afterwards), and
    // says how far it got: the publisher stays at most two batches ahead of it, so a reader
    // thread the OS leaves unscheduled for a while (two cores, many threads) is not mistaken
    // for a slow subscriber at the 256 KB limit. The slow one is far past it either way.
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            let mut got = vec![0u8; MESSAGES * frame_len];
            let mut at = 0;
            while at < got.len() {
                let n = fast.stream.read(&mut got[at..]).unwrap();
                assert!(
                    n > 0,
                    "the reading subscriber was disconnected after {at} bytes"
                );
                at += n;
                progress.store(at, std::sync::atomic::Ordering::Release);
            }
            (got, fast)
        })
    };

    // 20 000 messages of 1 KiB: far more than the slow client's socket buffers hold.
    let mut publisher = server.raw();
    // Pipelined in batches of 20: a subscriber's connection may only run once the publisher's
    // batch is done, so one batch (20 KiB) sits queued for the reading subscriber at times.
    const BATCH: usize = 20;
    for batch in 0..MESSAGES / BATCH {
        let behind = batch.saturating_sub(2) * BATCH * frame_len;
        let deadline = Instant::now() + Duration::from_secs(30);
        while progress.load(std::sync::atomic::Ordering::Acquire) < behind {
            assert!(
                Instant::now() < deadline,
                "the reading subscriber stopped reading"
            );
            std::thread::yield_now();
        }
        let mut out = Vec::new();
        for i in batch * BATCH..(batch + 1) * BATCH {
            let payload = [format!("{i:08}").as_bytes(), &[b'x'; 1016][..]].concat();
            out.extend_from_slice(
                format!(
                    "*3\r\n$7\r\nPUBLISH\r\n$5\r\nflood\r\n${}\r\n",
                    payload.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(&payload);
            out.extend_from_slice(b"\r\n");
        }
        publisher.send(&out);
        for _ in 0..BATCH {
            let n = int2(&mut publisher);
            assert!(n == 1 || n == 2, "receivers: {n}");
        }
    }
    let (got, _fast) = reader.join().unwrap();
    for (i, frame) in got.chunks(frame_len).enumerate() {
        assert!(frame == message(i), "message {i} lost or out of order");
    }

    eventually("the slow subscriber to be disconnected", || {
        info_field(
            &mut admin,
            "stats",
            "client_output_buffer_limit_disconnections",
        ) == "1"
    });
    eventually("its subscription to go", || {
        numsub(&mut admin, "flood") == 1
    });
    // What the slow client can still read ends with the connection closed, not a hang.
    assert!(slow.is_closed());
    let n: i64 = cmd("PUBLISH")
        .arg("flood")
        .arg("after")
        .query(&mut admin)
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn output_limit_config_set_applies_to_existing_subscribers() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let mut slow = server.raw();
    slow.send_cmd(&[b"SUBSCRIBE", b"c"]);
    slow.read2();
    // Subscribed under the default 32 MB limit, then lowered: the new limit applies.
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 64kb 0 0")
        .query(&mut admin)
        .unwrap();
    let big = vec![b'y'; 64 * 1024];
    let mut publisher = server.raw();
    let mut sent = 0;
    while info_field(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
    ) == "0"
    {
        assert!(
            sent < 1000,
            "64 MB sent and the subscriber still not cut off"
        );
        publisher.send_cmd(&[b"PUBLISH", b"c", &big]);
        int2(&mut publisher);
        sent += 1;
    }
    assert!(slow.is_closed());
}

#[test]
fn keyspace_notifications_follow_the_configured_flags() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let mut sub = server.raw();
    sub.send_cmd(&[b"PSUBSCRIBE", b"__key*@0__:*"]);
    sub.read2();
    let set_flags = |c: &mut redis::Connection, flags: &str| {
        let _: () = cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(flags)
            .query(c)
            .unwrap();
    };
    let make_key = |c: &mut redis::Connection| {
        let _: String = cmd("XADD")
            .arg("k")
            .arg("*")
            .arg("f")
            .arg("v")
            .query(c)
            .unwrap();
    };
    // Every channel up to the PING's pong was published between the two.
    let notifications = |sub: &mut RawConn| {
        sub.send_cmd(&[b"PING"]);
        let mut got = Vec::new();
        loop {
            let F2::Array(parts) = sub.read2() else {
                panic!("expected an array");
            };
            let text: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    F2::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("{other:?}"),
                })
                .collect();
            if text[0] == "pong" {
                return got;
            }
            got.push((text[2].clone(), text[3].clone()));
        }
    };

    // Off by default.
    make_key(&mut c);
    let _: i64 = cmd("DEL").arg("k").query(&mut c).unwrap();
    assert!(notifications(&mut sub).is_empty());

    // Classes without K or E publish nothing; K or E without the class neither.
    for flags in ["g", "A", "KE", "Kt"] {
        set_flags(&mut c, "");
        make_key(&mut c);
        set_flags(&mut c, flags);
        let _: i64 = cmd("DEL").arg("k").query(&mut c).unwrap();
        assert!(notifications(&mut sub).is_empty(), "flags {flags}");
    }

    let cases: &[(&str, &[(&str, &str)])] = &[
        ("Kg", &[("__keyspace@0__:k", "del")]),
        ("Eg", &[("__keyevent@0__:del", "k")]),
        (
            "KEA",
            &[("__keyspace@0__:k", "del"), ("__keyevent@0__:del", "k")],
        ),
    ];
    for (flags, want) in cases {
        set_flags(&mut c, "");
        make_key(&mut c);
        set_flags(&mut c, flags);
        let n: i64 = cmd("DEL").arg("k").arg("missing").query(&mut c).unwrap();
        assert_eq!(n, 1);
        let got = notifications(&mut sub);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want, "flags {flags}");
    }
    // CONFIG GET shows the flags as Redis spells them.
    let got: (String, String) = cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut c)
        .unwrap();
    assert_eq!(got.1, "AKE");
    // Deleting nothing notifies nothing.
    let _: i64 = cmd("DEL").arg("missing").query(&mut c).unwrap();
    assert!(notifications(&mut sub).is_empty());
}

/// Sets `client-output-buffer-limit` to `limit` and subscribes a raw client to `c` that
/// will read nothing more; returns an admin connection and that client.
fn never_reading_subscriber(server: &TestServer, limit: &str) -> (redis::Connection, RawConn) {
    let mut admin = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg(limit)
        .query(&mut admin)
        .unwrap();
    let mut slow = server.raw();
    slow.send_cmd(&[b"SUBSCRIBE", b"c"]);
    slow.read2();
    (admin, slow)
}

fn disconnections(admin: &mut redis::Connection) -> String {
    info_field(admin, "stats", "client_output_buffer_limit_disconnections")
}

#[test]
fn soft_output_limit_disconnects_only_after_its_seconds() {
    let server = TestServer::start();
    // No hard limit: only staying over 64 KiB for more than a second gets a client cut off.
    let (mut admin, mut slow) = never_reading_subscriber(&server, "pubsub 0 64kb 1");
    let mut publisher = server.raw();
    let big = vec![b'z'; 64 * 1024];
    let started = Instant::now();
    // The limit is checked when a message is queued, so keep publishing (paced: the point is
    // time spent over the soft limit, not volume) until the client is cut off.
    while disconnections(&mut admin) == "0" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never cut off by the soft limit"
        );
        publisher.send_cmd(&[b"PUBLISH", b"c", &big]);
        int2(&mut publisher);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "cut off before the soft limit's second was up"
    );
    assert!(slow.is_closed());
}

/// A subscriber that stays over the soft limit is cut off when its seconds are up even if no
/// message comes after (Redis checks in its cron too), not only at the next PUBLISH.
#[test]
fn soft_output_limit_is_enforced_without_further_messages() {
    let server = TestServer::start();
    let (mut admin, mut slow) = never_reading_subscriber(&server, "pubsub 0 64kb 2");
    // 32 MB, far more than the sockets between the two hold, in well under two seconds.
    let mut publisher = server.raw();
    let big = vec![b'z'; 64 * 1024];
    for _ in 0..512 {
        publisher.send_cmd(&[b"PUBLISH", b"c", &big]);
        assert_eq!(int2(&mut publisher), 1);
    }
    assert_eq!(disconnections(&mut admin), "0", "cut off too early");
    eventually("the slow subscriber to be cut off", || {
        disconnections(&mut admin) == "1"
    });
    assert!(slow.is_closed());
}

/// Redis never sends a channel's message before the `subscribe` reply that starts it: with a
/// publisher flooding the channel while clients subscribe, the first frame each subscriber
/// reads is its confirmation, in RESP2 and in RESP3.
#[test]
fn subscribe_confirmation_comes_before_any_message_of_the_channel() {
    let server = TestServer::start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let mut publisher = server.client(false);
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let mut pipe = redis::pipe();
                for _ in 0..64 {
                    pipe.cmd("PUBLISH").arg("busy").arg("m").ignore();
                }
                let _: () = pipe.query(&mut publisher).unwrap();
            }
        })
    };
    for round in 0..150 {
        let mut sub = server.raw();
        if round % 2 == 0 {
            sub.send_cmd(&[b"SUBSCRIBE", b"busy"]);
            assert_eq!(
                sub.read_raw2(),
                frame2(&[B(b"subscribe"), B(b"busy"), I(1)]),
                "round {round}"
            );
            assert_eq!(
                sub.read_raw2(),
                frame2(&[B(b"message"), B(b"busy"), B(b"m")])
            );
        } else {
            sub.send_cmd(&[b"HELLO", b"3"]);
            let _hello = sub.read3();
            sub.send_cmd(&[b"SUBSCRIBE", b"busy"]);
            assert_eq!(
                sub.read3(),
                F3::Push {
                    data: vec![
                        F3::BlobString {
                            data: "subscribe".into(),
                            attributes: None
                        },
                        F3::BlobString {
                            data: "busy".into(),
                            attributes: None
                        },
                        F3::Number {
                            data: 1,
                            attributes: None
                        },
                    ],
                    attributes: None
                },
                "round {round}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
}

/// A frame of `parts` in the protocol at hand: a RESP3 push or a RESP2 array.
fn frame(resp3: bool, parts: &[Part<'_>]) -> Vec<u8> {
    if resp3 { push3(parts) } else { frame2(parts) }
}

/// A raw client in RESP2 or, after HELLO 3, RESP3.
fn raw_client(server: &TestServer, resp3: bool) -> RawConn {
    let mut raw = server.raw();
    if resp3 {
        raw.send_cmd(&[b"HELLO", b"3"]);
        let _hello = raw.read3();
    }
    raw
}

/// Under CLIENT REPLY OFF, as redis-server 7.0.15 does (checked byte for byte against it):
/// every (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE confirmation and every message is sent, in RESP2
/// as in RESP3; ordinary replies (PING's, even in RESP2's subscribed mode) are not.
#[test]
fn client_reply_off_still_sends_confirmations_and_messages() {
    let server = TestServer::start();
    let mut publisher = server.client(false);
    for resp3 in [false, true] {
        let mut sub = raw_client(&server, resp3);
        sub.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
        sub.send_cmd(&[b"SUBSCRIBE", b"ch1", b"ch2"]);
        sub.send_cmd(&[b"PSUBSCRIBE", b"p*"]);
        sub.send_cmd(&[b"SSUBSCRIBE", b"sh"]);
        sub.send_cmd(&[b"PING"]);
        let mut want = frame(resp3, &[B(b"subscribe"), B(b"ch1"), I(1)]);
        want.extend(frame(resp3, &[B(b"subscribe"), B(b"ch2"), I(2)]));
        want.extend(frame(resp3, &[B(b"psubscribe"), B(b"p*"), I(3)]));
        want.extend(frame(resp3, &[B(b"ssubscribe"), B(b"sh"), I(1)]));
        expect_bytes(&mut sub, &want);
        let _: i64 = cmd("PUBLISH")
            .arg("ch1")
            .arg("hello")
            .query(&mut publisher)
            .unwrap();
        let _: i64 = cmd("SPUBLISH")
            .arg("sh")
            .arg("m")
            .query(&mut publisher)
            .unwrap();
        sub.send_cmd(&[b"UNSUBSCRIBE", b"ch1"]);
        sub.send_cmd(&[b"PUNSUBSCRIBE"]);
        sub.send_cmd(&[b"SUNSUBSCRIBE"]);
        sub.send_cmd(&[b"UNSUBSCRIBE"]);
        // Out of pub/sub mode: nothing to leave is confirmed with a null name, still sent.
        sub.send_cmd(&[b"UNSUBSCRIBE"]);
        sub.send_cmd(&[b"PUNSUBSCRIBE"]);
        sub.send_cmd(&[b"ECHO", b"dropped"]);
        sub.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
        sub.send_cmd(&[b"PING"]);
        let mut want = frame(resp3, &[B(b"message"), B(b"ch1"), B(b"hello")]);
        want.extend(frame(resp3, &[B(b"smessage"), B(b"sh"), B(b"m")]));
        want.extend(frame(resp3, &[B(b"unsubscribe"), B(b"ch1"), I(2)]));
        want.extend(frame(resp3, &[B(b"punsubscribe"), B(b"p*"), I(1)]));
        want.extend(frame(resp3, &[B(b"sunsubscribe"), B(b"sh"), I(0)]));
        want.extend(frame(resp3, &[B(b"unsubscribe"), B(b"ch2"), I(0)]));
        want.extend(frame(resp3, &[B(b"unsubscribe"), Nil, I(0)]));
        want.extend(frame(resp3, &[B(b"punsubscribe"), Nil, I(0)]));
        want.extend_from_slice(b"+OK\r\n+PONG\r\n");
        expect_bytes(&mut sub, &want);
    }
}

/// CLIENT REPLY SKIP drops the next command's reply but not its confirmations, which come in
/// order with the replies around them.
#[test]
fn client_reply_skip_still_sends_confirmations() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut sub = raw_client(&server, resp3);
        sub.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
        sub.send_cmd(&[b"UNSUBSCRIBE"]);
        sub.send_cmd(&[b"PING"]);
        sub.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
        sub.send_cmd(&[b"SUBSCRIBE", b"a"]);
        sub.send_cmd(&[b"PING"]);
        sub.send_cmd(&[b"UNSUBSCRIBE"]);
        let mut want = frame(resp3, &[B(b"unsubscribe"), Nil, I(0)]);
        want.extend_from_slice(b"+PONG\r\n");
        want.extend(frame(resp3, &[B(b"subscribe"), B(b"a"), I(1)]));
        if resp3 {
            want.extend_from_slice(b"+PONG\r\n");
        } else {
            want.extend(frame2(&[B(b"pong"), B(b"")]));
        }
        want.extend(frame(resp3, &[B(b"unsubscribe"), B(b"a"), I(0)]));
        expect_bytes(&mut sub, &want);
    }
}

/// Inside EXEC under CLIENT REPLY OFF, Redis drops EXEC's array but still sends the
/// confirmations it holds; under SKIP (which drops MULTI's OK) the array comes whole.
#[test]
fn client_reply_off_inside_exec_sends_only_the_confirmations() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        for mode in [&b"OFF"[..], b"SKIP"] {
            let mut sub = raw_client(&server, resp3);
            sub.send_cmd(&[b"CLIENT", b"REPLY", mode]);
            sub.send_cmd(&[b"MULTI"]);
            sub.send_cmd(&[b"SUBSCRIBE", b"m1"]);
            sub.send_cmd(&[b"UNSUBSCRIBE", b"m1"]);
            sub.send_cmd(&[b"EXEC"]);
            sub.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
            sub.send_cmd(&[b"PING"]);
            let mut want = Vec::new();
            if mode == b"SKIP" {
                want.extend_from_slice(b"+QUEUED\r\n+QUEUED\r\n*2\r\n");
            }
            want.extend(frame(resp3, &[B(b"subscribe"), B(b"m1"), I(1)]));
            want.extend(frame(resp3, &[B(b"unsubscribe"), B(b"m1"), I(0)]));
            want.extend_from_slice(b"+OK\r\n+PONG\r\n");
            expect_bytes(&mut sub, &want);
        }
    }
}

/// Keyspace notifications reach a RESP3 subscriber under CLIENT REPLY OFF, its own write's
/// too, whose reply alone is dropped.
#[test]
fn client_reply_off_still_sends_keyspace_notifications() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEA")
        .query(&mut admin)
        .unwrap();
    let mut sub = raw_client(&server, true);
    sub.send_cmd(&[b"PSUBSCRIBE", b"__key*__:*"]);
    expect_bytes(
        &mut sub,
        &push3(&[B(b"psubscribe"), B(b"__key*__:*"), I(1)]),
    );
    sub.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    sub.send_cmd(&[b"XADD", b"own", b"1-1", b"f", b"v"]);
    sub.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    let mut want = push3(&[
        B(b"pmessage"),
        B(b"__key*__:*"),
        B(b"__keyspace@0__:own"),
        B(b"xadd"),
    ]);
    want.extend(push3(&[
        B(b"pmessage"),
        B(b"__key*__:*"),
        B(b"__keyevent@0__:xadd"),
        B(b"own"),
    ]));
    want.extend_from_slice(b"+OK\r\n");
    expect_bytes(&mut sub, &want);
}
