//! End-to-end tests of the generic key commands: RENAME, RENAMENX, COPY, MOVE, SWAPDB,
//! TOUCH, RANDOMKEY, TYPE and SCAN TYPE on strings (OBJECT and MEMORY USAGE are in
//! `keys_object.rs`); streams moved with
//! their groups, consumers, pending entries, IDMP state and deadline, through DEBUG RELOAD
//! and a restart; blocked readers served by a RENAME or SWAPDB; keyspace events; refused
//! input that changes nothing.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use brooklet::{TestServer, blocked_clients, err, int, ok, run, text};
use redis::{Value, cmd};

const WAIT: Duration = Duration::from_secs(5);

fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let deadline = Instant::now() + WAIT;
    while blocked_clients(c) != n {
        assert!(
            Instant::now() < deadline,
            "never reached {n} blocked clients"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn spawn_query(
    server: &TestServer,
    resp3: bool,
    db: u32,
    args: &[&str],
) -> mpsc::Receiver<Result<Value, String>> {
    let mut c = server.client(resp3);
    if db != 0 {
        assert_eq!(run(&mut c, &["SELECT", &db.to_string()]), Value::Okay);
    }
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut command = cmd(&args[0]);
        for a in &args[1..] {
            command.arg(a.as_str());
        }
        let r = command
            .query::<Value>(&mut c)
            .map_err(|e| format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")));
        let _ = tx.send(r);
    });
    rx
}

/// A stream with every kind of state: entries, a deleted one, two groups, consumers,
/// pending entries, an IDMP producer and a deadline.
fn rich_stream(c: &mut redis::Connection, key: &str) {
    for i in 1..=20 {
        run(c, &["XADD", key, &format!("{i}-0"), "f", &format!("v{i}")]);
    }
    run(c, &["XDEL", key, "3-0"]);
    ok(c, &["XGROUP", "CREATE", key, "g1", "0"]);
    ok(c, &["XGROUP", "CREATE", key, "g2", "$"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "4",
            "STREAMS",
            key,
            ">",
        ],
    );
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            key,
            ">",
        ],
    );
    run(c, &["XACK", key, "g1", "1-0"]);
    run(c, &["XADD", key, "IDMP", "p1", "i1", "*", "f", "idem"]);
    run(c, &["EXPIRE", key, "1000"]);
}

/// What XINFO STREAM FULL, XPENDING and the deadline show of a stream (seen-times vary
/// between runs, so the test compares one server's views with themselves).
fn view(c: &mut redis::Connection, key: &str) -> Vec<Value> {
    vec![
        run(c, &["XINFO", "STREAM", key, "FULL"]),
        run(c, &["XPENDING", key, "g1"]),
        run(c, &["XRANGE", key, "-", "+"]),
        Value::Int(int(c, &["PEXPIRETIME", key])),
    ]
}

#[test]
fn rename_and_friends_reply_as_redis() {
    for resp3 in [false, true] {
        let server = TestServer::start();
        let mut c = server.client(resp3);
        assert_eq!(err(&mut c, &["RENAME", "nope", "x"]), "ERR no such key");
        assert_eq!(err(&mut c, &["RENAMENX", "nope", "x"]), "ERR no such key");
        ok(&mut c, &["SET", "a", "1"]);
        ok(&mut c, &["RENAME", "a", "a"]);
        assert_eq!(int(&mut c, &["RENAMENX", "a", "a"]), 0);
        ok(&mut c, &["SET", "b", "2"]);
        assert_eq!(int(&mut c, &["RENAMENX", "a", "b"]), 0);
        assert_eq!(text(&mut c, &["GET", "b"]), "2");
        ok(&mut c, &["RENAME", "a", "b"]);
        assert_eq!(text(&mut c, &["GET", "b"]), "1");
        assert_eq!(int(&mut c, &["EXISTS", "a"]), 0);
        assert_eq!(int(&mut c, &["RENAMENX", "b", "c"]), 1);

        assert_eq!(int(&mut c, &["COPY", "c", "d"]), 1);
        assert_eq!(int(&mut c, &["COPY", "c", "d"]), 0);
        ok(&mut c, &["SET", "c", "new"]);
        assert_eq!(int(&mut c, &["COPY", "c", "d", "REPLACE"]), 1);
        assert_eq!(text(&mut c, &["GET", "d"]), "new");
        assert_eq!(int(&mut c, &["COPY", "nope", "d"]), 0);
        assert_eq!(
            err(&mut c, &["COPY", "c", "c"]),
            "ERR source and destination objects are the same"
        );
        assert_eq!(int(&mut c, &["COPY", "c", "c", "DB", "1"]), 1);
        assert_eq!(
            err(&mut c, &["COPY", "c", "c", "DB", "16"]),
            "ERR DB index is out of range"
        );
        assert_eq!(
            err(&mut c, &["COPY", "c", "c", "DB", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(err(&mut c, &["COPY", "c", "e", "DB"]), "ERR syntax error");
        assert_eq!(err(&mut c, &["COPY", "c", "e", "FOO"]), "ERR syntax error");

        assert_eq!(
            err(&mut c, &["MOVE", "c", "0"]),
            "ERR source and destination objects are the same"
        );
        assert_eq!(
            err(&mut c, &["MOVE", "c", "16"]),
            "ERR DB index is out of range"
        );
        assert_eq!(
            err(&mut c, &["MOVE", "c", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(int(&mut c, &["MOVE", "c", "1"]), 0);
        assert_eq!(int(&mut c, &["MOVE", "nope", "1"]), 0);
        assert_eq!(int(&mut c, &["MOVE", "d", "1"]), 1);
        assert_eq!(int(&mut c, &["EXISTS", "d"]), 0);

        assert_eq!(
            err(&mut c, &["SWAPDB", "x", "0"]),
            "ERR invalid first DB index"
        );
        assert_eq!(
            err(&mut c, &["SWAPDB", "0", "x"]),
            "ERR invalid second DB index"
        );
        assert_eq!(
            err(&mut c, &["SWAPDB", "0", "16"]),
            "ERR DB index is out of range"
        );
        ok(&mut c, &["SWAPDB", "1", "1"]);
        ok(&mut c, &["SWAPDB", "0", "1"]);
        assert_eq!(text(&mut c, &["GET", "d"]), "new");
        assert_eq!(int(&mut c, &["DBSIZE"]), 2);

        assert_eq!(int(&mut c, &["TOUCH", "c", "d", "nope"]), 2);
        let k = text(&mut c, &["RANDOMKEY"]);
        assert!(k == "c" || k == "d", "{k}");
        ok(&mut c, &["SELECT", "5"]);
        assert_eq!(run(&mut c, &["RANDOMKEY"]), Value::Nil);
    }
}

#[test]
fn a_stream_keeps_everything_through_rename_copy_move_and_swapdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        c.dir = path.clone();
        c.enable_debug_command = "yes".into();
    });
    let mut c = server.client(false);
    rich_stream(&mut c, "s");
    let before = view(&mut c, "s");
    ok(&mut c, &["RENAME", "s", "t"]);
    assert_eq!(int(&mut c, &["EXISTS", "s"]), 0);
    assert_eq!(view(&mut c, "t"), before);
    // The IDMP producer's ID is still known under the new name.
    let Value::Array(top) = run(&mut c, &["XREVRANGE", "t", "+", "-", "COUNT", "1"]) else {
        panic!()
    };
    let Value::Array(entry) = &top[0] else {
        panic!()
    };
    let Value::BulkString(id) = &entry[0] else {
        panic!()
    };
    let id = String::from_utf8(id.clone()).unwrap();
    assert_eq!(
        text(&mut c, &["XADD", "t", "IDMP", "p1", "i1", "*", "f", "idem"]),
        id
    );
    let before = view(&mut c, "t");
    assert_eq!(int(&mut c, &["COPY", "t", "u"]), 1);
    assert_eq!(view(&mut c, "u"), before);
    // A copy is a stream of its own.
    run(&mut c, &["XADD", "u", "*", "f", "only in u"]);
    assert_eq!(int(&mut c, &["XLEN", "t"]), 20);
    assert_eq!(int(&mut c, &["MOVE", "u", "3"]), 1);
    ok(&mut c, &["SWAPDB", "3", "4"]);
    ok(&mut c, &["SELECT", "4"]);
    assert_eq!(int(&mut c, &["XLEN", "u"]), 21);
    ok(&mut c, &["SELECT", "0"]);
    // A new stream under the old name is a life of its own.
    run(&mut c, &["XADD", "s", "1-1", "new", "life"]);
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(view(&mut c, "t"), before);
    assert_eq!(int(&mut c, &["XLEN", "s"]), 1);
    drop(c);
    server.stop();
    let server = TestServer::start_with(|c| c.dir = path.clone());
    let mut c = server.client(true);
    assert_eq!(int(&mut c, &["XLEN", "s"]), 1);
    assert_eq!(int(&mut c, &["XLEN", "t"]), 20);
    let Value::Array(p) = run(&mut c, &["XPENDING", "t", "g1", "-", "+", "100"]) else {
        panic!()
    };
    assert_eq!(p.len(), 5);
    assert!(int(&mut c, &["TTL", "t"]) > 900);
    ok(&mut c, &["SELECT", "4"]);
    assert_eq!(int(&mut c, &["XLEN", "u"]), 21);
    assert!(int(&mut c, &["TTL", "u"]) > 900);
}

#[test]
fn blocked_readers_are_served_by_rename_and_swapdb() {
    for resp3 in [false, true] {
        let server = TestServer::start();
        let mut c = server.client(false);
        run(&mut c, &["XADD", "src", "1-0", "f", "v"]);
        let waiting = spawn_query(
            &server,
            resp3,
            0,
            &["XREAD", "BLOCK", "0", "STREAMS", "dst", "0"],
        );
        wait_blocked(&mut c, 1);
        ok(&mut c, &["RENAME", "src", "dst"]);
        let got = waiting.recv_timeout(WAIT).unwrap().unwrap();
        assert!(format!("{got:?}").contains("dst"), "{got:?}");
        wait_blocked(&mut c, 0);

        // SWAPDB brings a stream to a reader blocked in the other database.
        ok(&mut c, &["SELECT", "1"]);
        run(&mut c, &["XADD", "k", "1-0", "f", "v"]);
        ok(&mut c, &["SELECT", "0"]);
        let waiting = spawn_query(
            &server,
            resp3,
            0,
            &["XREAD", "BLOCK", "0", "STREAMS", "k", "0"],
        );
        wait_blocked(&mut c, 1);
        ok(&mut c, &["SWAPDB", "0", "1"]);
        let got = waiting.recv_timeout(WAIT).unwrap().unwrap();
        assert!(format!("{got:?}").contains("1-0"), "{got:?}");

        // A group reader whose key is renamed away is answered as after a DEL.
        ok(&mut c, &["XGROUP", "CREATE", "k", "g", "$"]);
        let waiting = spawn_query(
            &server,
            resp3,
            0,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "k",
                ">",
            ],
        );
        wait_blocked(&mut c, 1);
        ok(&mut c, &["RENAME", "k", "elsewhere"]);
        assert_eq!(
            waiting.recv_timeout(WAIT).unwrap().unwrap_err(),
            "NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option"
        );
    }
}

#[test]
fn keyspace_events_as_redis() {
    let server = TestServer::start();
    let mut c = server.client(false);
    ok(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    let mut subscriber = server.client(false);
    let mut sub = subscriber.as_pubsub();
    sub.psubscribe("__keyevent@*").unwrap();
    sub.set_read_timeout(Some(WAIT)).unwrap();
    ok(&mut c, &["SET", "a", "1"]);
    ok(&mut c, &["RENAME", "a", "b"]);
    run(&mut c, &["COPY", "b", "c"]);
    run(&mut c, &["MOVE", "c", "2"]);
    let mut got = Vec::new();
    for _ in 0..5 {
        let m = sub.get_message().unwrap();
        let payload: String = m.get_payload().unwrap();
        got.push(format!("{} {payload}", m.get_channel_name()));
    }
    assert_eq!(
        got,
        [
            "__keyevent@0__:rename_from a",
            "__keyevent@0__:rename_to b",
            "__keyevent@0__:copy_to c",
            "__keyevent@0__:move_from c",
            "__keyevent@2__:move_to c",
        ]
    );
}

#[test]
fn refused_input_changes_nothing() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    ok(&mut c, &["SET", "x", "1"]);
    for args in [
        &["COPY", "s", "x", "DB", "99"][..],
        &["COPY", "s", "x", "BOGUS"],
        &["MOVE", "s", "-1"],
        &["SWAPDB", "0", "99"],
        &["RENAME", "missing", "x"],
    ] {
        err(&mut c, args);
    }
    assert_eq!(int(&mut c, &["COPY", "s", "x"]), 0);
    assert_eq!(int(&mut c, &["RENAMENX", "s", "x"]), 0);
    assert_eq!(text(&mut c, &["TYPE", "s"]), "stream");
    assert_eq!(text(&mut c, &["GET", "x"]), "1");
    assert_eq!(int(&mut c, &["DBSIZE"]), 2);
    // RENAME over a key of the other type replaces it, deadline and all.
    run(&mut c, &["EXPIRE", "x", "100"]);
    ok(&mut c, &["RENAME", "s", "x"]);
    assert_eq!(text(&mut c, &["TYPE", "x"]), "stream");
    assert_eq!(int(&mut c, &["TTL", "x"]), -1);
}

#[test]
fn watch_sees_rename_and_swapdb_and_multi_runs_them() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let mut other = server.client(false);
    ok(&mut c, &["SET", "a", "1"]);
    for (watched, change) in [
        ("b", &["RENAME", "a", "b"][..]),
        ("b", &["SWAPDB", "0", "1"]),
        ("b", &["SWAPDB", "0", "1"]),
        ("b", &["RENAME", "b", "a"]),
    ] {
        ok(&mut c, &["WATCH", watched]);
        run(&mut other, change);
        ok(&mut c, &["MULTI"]);
        run(&mut c, &["GET", "a"]);
        assert_eq!(run(&mut c, &["EXEC"]), Value::Nil, "{change:?}");
    }
    ok(&mut c, &["MULTI"]);
    run(&mut c, &["SWAPDB", "0", "1"]);
    run(&mut c, &["MOVE", "a", "1"]);
    assert_eq!(
        run(&mut c, &["EXEC"]),
        Value::Array(vec![Value::Okay, Value::Int(0)])
    );
    ok(&mut c, &["SELECT", "1"]);
    assert_eq!(text(&mut c, &["GET", "a"]), "1");
}

/// RANDOMKEY never answers a key whose deadline passed, even when nearly every key in the
/// shards it draws from has one (expiry's removals held by a pause, so they are all there).
#[test]
fn randomkey_skips_keys_past_their_deadline() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.cmd("SET")
            .arg(format!("gone{i}"))
            .arg("v")
            .arg("PX")
            .arg(30)
            .ignore();
    }
    pipe.cmd("SET").arg("live").arg("v").ignore();
    let () = pipe.query(&mut c).unwrap();
    ok(&mut c, &["CLIENT", "PAUSE", "10000", "WRITE"]);
    thread::sleep(Duration::from_millis(60));
    for _ in 0..30 {
        assert_eq!(text(&mut c, &["RANDOMKEY"]), "live");
    }
    ok(&mut c, &["CLIENT", "UNPAUSE"]);
}
