//! Replication end to end: a replica follows a primary (full sync, then the change stream),
//! ends up with identical streams, groups, pending lists and deadlines, refuses writes,
//! wakes blocked readers, and continues after a dropped link or a restart.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::{TestServer, err, info_field, int, query, run};

const WAIT: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds, failing the test after [`WAIT`].
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn replicate(replica: &mut redis::Connection, primary: &TestServer) {
    let port = primary.addr().port().to_string();
    run(replica, &["REPLICAOF", "127.0.0.1", &port]);
    until("the link to come up", || {
        info_field(replica, "replication", "master_link_status").as_deref() == Some("up")
    });
}

/// Waits until the replica applied everything the primary wrote so far.
fn caught_up(primary: &mut redis::Connection, replica: &mut redis::Connection) {
    let target: u64 = info_field(primary, "replication", "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    until("the replica to catch up", || {
        info_field(replica, "replication", "slave_repl_offset")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|o| o >= target)
    });
}

/// Everything a test compares of a key on both servers.
fn state(c: &mut redis::Connection, stream_keys: &[&str], keys: &[&str]) -> Vec<redis::Value> {
    let mut out = Vec::new();
    for k in stream_keys {
        out.push(run(c, &["XINFO", "STREAM", k, "FULL"]));
        for g in ["g", "g2"] {
            // The extended form's idle times move with the clock; XINFO STREAM FULL above
            // holds every pending entry's delivery time.
            out.push(query(c, &["XPENDING", k, g]).unwrap_or(redis::Value::Nil));
        }
    }
    for k in keys {
        out.push(run(c, &["TYPE", k]));
        out.push(run(c, &["PEXPIRETIME", k]));
        if matches!(run(c, &["TYPE", k]), redis::Value::SimpleString(ref t) if t == "string") {
            out.push(run(c, &["GET", k]));
        }
    }
    out.push(run(c, &["DBSIZE"]));
    out
}

fn writes(c: &mut redis::Connection, round: usize) {
    for i in 0..20 {
        run(c, &["XADD", "s", "*", "n", &format!("{round}-{i}")]);
    }
    run(c, &["XADD", "s2", "MAXLEN", "5", "*", "f", "v"]);
    query(c, &["XGROUP", "CREATE", "s", "g", "0"]).ok();
    query(c, &["XGROUP", "CREATE", "s", "g2", "$"]).ok();
    run(c, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "5", "STREAMS", "s", ">"]);
    run(c, &["XREADGROUP", "GROUP", "g", "bob", "COUNT", "3", "STREAMS", "s", ">"]);
    let pending = run(c, &["XPENDING", "s", "g", "-", "+", "1", "alice"]);
    if let redis::Value::Array(items) = pending
        && let Some(redis::Value::Array(first)) = items.first()
        && let Some(redis::Value::BulkString(id)) = first.first()
    {
        let id = String::from_utf8_lossy(id).into_owned();
        run(c, &["XCLAIM", "s", "g", "bob", "0", &id]);
        run(c, &["XACK", "s", "g", &id]);
    }
    run(c, &["SET", &format!("str{round}"), "v", "EX", "1000"]);
    run(c, &["INCRBYFLOAT", "f", "1.5"]);
    run(c, &["EXPIRE", "s2", "5000"]);
    run(c, &["SET", "gone", "x"]);
    run(c, &["DEL", "gone"]);
    run(c, &["XDEL", "s", "0-1"]);
}

#[test]
fn a_replica_follows_its_primary_and_refuses_writes() {
    let primary = TestServer::start();
    let replica = TestServer::start();
    let mut p = primary.client(false);
    let mut r = replica.client(false);
    writes(&mut p, 0);
    replicate(&mut r, &primary);
    writes(&mut p, 1);
    assert_eq!(int(&mut p, &["WAIT", "1", "10000"]), 1);
    caught_up(&mut p, &mut r);
    let streams = ["s", "s2"];
    let keys = ["s", "s2", "str0", "str1", "f", "gone"];
    assert_eq!(state(&mut p, &streams, &keys), state(&mut r, &streams, &keys));

    assert_eq!(
        err(&mut r, &["XADD", "s", "*", "f", "v"]),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        err(&mut r, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        err(&mut r, &["SET", "k", "v"]),
        "READONLY You can't write against a read only replica."
    );
    run(&mut r, &["XRANGE", "s", "-", "+", "COUNT", "2"]);
    assert_eq!(info_field(&mut r, "replication", "role").as_deref(), Some("slave"));
    assert_eq!(info_field(&mut p, "replication", "connected_slaves").as_deref(), Some("1"));
    let run_id = info_field(&mut p, "server", "run_id").unwrap();
    assert_eq!(run_id.len(), 40);

    // A blocked XREAD on the replica is woken by a write on the primary.
    let raddr = replica.url(false);
    let reader = std::thread::spawn(move || {
        let mut c = redis::Client::open(raddr).unwrap().get_connection().unwrap();
        run(&mut c, &["XREAD", "BLOCK", "10000", "STREAMS", "s", "$"])
    });
    until("the reader to block", || brooklet::blocked_clients(&mut r) == 1);
    let id = run(&mut p, &["XADD", "s", "*", "woken", "yes"]);
    let got = reader.join().unwrap();
    let redis::Value::BulkString(id) = id else {
        panic!("XADD: {id:?}")
    };
    assert!(format!("{got:?}").contains(&format!("{:?}", id)) || format!("{got:?}").contains("woken"));

    // ROLE on both sides.
    let role = run(&mut r, &["ROLE"]);
    assert!(format!("{role:?}").contains("slave"));
    let role = run(&mut p, &["ROLE"]);
    assert!(format!("{role:?}").contains("master"));
}
