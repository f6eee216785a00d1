//! End-to-end tests of protections against idle and misbehaving clients.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::TestServer;
use redis::cmd;
use redis_protocol::resp2::types::OwnedFrame as F2;

#[test]
fn idle_clients_are_closed_after_timeout_but_subscribers_and_blocked_readers_are_not() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg(1)
        .query(&mut admin)
        .unwrap();
    let mut idle = server.raw();
    idle.send_cmd(&[b"PING"]);
    assert_eq!(idle.read2(), F2::SimpleString(b"PONG".to_vec()));
    let mut subscriber = server.raw();
    subscriber.send_cmd(&[b"SUBSCRIBE", b"news"]);
    let _ = subscriber.read2();
    let mut blocked = server.raw();
    blocked.send_cmd(&[b"XREAD", b"BLOCK", b"2500", b"STREAMS", b"s", b"$"]);
    let started = Instant::now();
    assert!(idle.is_closed(), "the idle client was not closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "closed too early: {waited:?}"
    );
    // The blocked reader times out normally (nil), it is not cut off.
    assert_eq!(blocked.read2(), F2::Null);
    // The admin connection was idle too and is gone; a fresh one publishes.
    let mut publisher = server.client(false);
    let n: i64 = cmd("PUBLISH")
        .arg("news")
        .arg("still here")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1, "the subscriber was closed for idleness");
    let _ = subscriber.read2();
}
