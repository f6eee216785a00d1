//! Replication end to end: a replica follows a primary (full sync, then the change stream),
//! ends up with identical streams, groups, pending lists and deadlines, refuses writes,
//! wakes blocked readers, and continues after a dropped link or a restart.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::{TestServer, blocked_clients, err, error_text, info_field, int, now_ms, query, run};

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
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
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
    // Sent as the bytes they write: the replica edits the same string.
    for i in 0..3 {
        run(c, &["APPEND", "log", &format!("round {round} line {i}; ")]);
    }
    run(c, &["APPEND", "short", "x"]);
    run(c, &["SETRANGE", "log", "2", &format!("R{round}")]);
    run(c, &["EXPIRE", "s2", "5000"]);
    run(c, &["SET", "gone", "x"]);
    run(c, &["DEL", "gone"]);
    run(c, &["XDEL", "s", "0-1"]);
    // A transaction reaches replicas as one.
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("tx")
        .arg(round)
        .cmd("INCR")
        .arg("n")
        .cmd("EXPIRE")
        .arg("s2")
        .arg(4000 + round)
        .query(c)
        .unwrap();
}

/// Two rounds of writes on `primary`, one before `replica` follows it and one after, until
/// the replica caught up; the clients of both.
fn following(primary: &TestServer, replica: &TestServer) -> (redis::Connection, redis::Connection) {
    let mut p = primary.client(false);
    let mut r = replica.client(false);
    writes(&mut p, 0);
    replicate(&mut r, primary);
    writes(&mut p, 1);
    caught_up(&mut p, &mut r);
    (p, r)
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
    let keys = ["s", "s2", "str0", "str1", "f", "log", "short", "gone"];
    assert_eq!(
        state(&mut p, &streams, &keys),
        state(&mut r, &streams, &keys)
    );
    // The replica ran the second append, so a string short enough for embstr is raw
    // there, as on the primary and on Redis's replica.
    let raw = redis::Value::BulkString(b"raw".to_vec());
    assert_eq!(run(&mut p, &["OBJECT", "ENCODING", "short"]), raw);
    assert_eq!(run(&mut r, &["OBJECT", "ENCODING", "short"]), raw);

    assert_eq!(
        err(&mut r, &["XADD", "s", "*", "f", "v"]),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        err(
            &mut r,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]
        ),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        err(&mut r, &["SET", "k", "v"]),
        "READONLY You can't write against a read only replica."
    );
    run(&mut r, &["XRANGE", "s", "-", "+", "COUNT", "2"]);
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("slave")
    );
    assert_eq!(
        info_field(&mut p, "replication", "connected_slaves").as_deref(),
        Some("1")
    );
    let run_id = info_field(&mut p, "server", "run_id").unwrap();
    assert_eq!(run_id.len(), 40);

    // A blocked XREAD on the replica is woken by a write on the primary.
    let raddr = replica.url(false);
    let reader = std::thread::spawn(move || {
        let mut c = redis::Client::open(raddr)
            .unwrap()
            .get_connection()
            .unwrap();
        run(&mut c, &["XREAD", "BLOCK", "10000", "STREAMS", "s", "$"])
    });
    until("the reader to block", || {
        brooklet::blocked_clients(&mut r) == 1
    });
    let id = run(&mut p, &["XADD", "s", "*", "woken", "yes"]);
    let got = reader.join().unwrap();
    let redis::Value::BulkString(id) = id else {
        panic!("XADD: {id:?}")
    };
    assert!(
        format!("{got:?}").contains(&format!("{:?}", id)) || format!("{got:?}").contains("woken")
    );

    // ROLE on both sides.
    let role = run(&mut r, &["ROLE"]);
    assert!(format!("{role:?}").contains("slave"));
    let role = run(&mut p, &["ROLE"]);
    assert!(format!("{role:?}").contains("master"));
}

fn stat(c: &mut redis::Connection, name: &str) -> u64 {
    info_field(c, "stats", name).unwrap().parse().unwrap()
}

#[test]
fn a_dropped_link_and_a_restarted_replica_continue_from_the_backlog() {
    let primary = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let replica = TestServer::start_with(|c| c.dir = path.clone());
    let mut p = primary.client(false);
    let mut r = replica.client(false);
    writes(&mut p, 0);
    replicate(&mut r, &primary);
    assert_eq!(stat(&mut p, "sync_full"), 1);

    // The link is cut (from the replica's side): it reconnects and continues.
    run(&mut r, &["CLIENT", "KILL", "TYPE", "master"]);
    writes(&mut p, 1);
    until("a partial resync", || stat(&mut p, "sync_partial_ok") == 1);
    caught_up(&mut p, &mut r);
    let streams = ["s", "s2"];
    let keys = ["s", "s2", "str0", "str1", "f", "log"];
    assert_eq!(
        state(&mut p, &streams, &keys),
        state(&mut r, &streams, &keys)
    );
    assert_eq!(stat(&mut p, "sync_full"), 1);

    // Cut from the primary's side.
    run(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
    writes(&mut p, 2);
    until("a second partial resync", || {
        stat(&mut p, "sync_partial_ok") == 2
    });
    caught_up(&mut p, &mut r);
    let keys = ["s", "s2", "str0", "str1", "str2", "f", "log"];
    assert_eq!(
        state(&mut p, &streams, &keys),
        state(&mut r, &streams, &keys)
    );

    // The replica stops cleanly, misses writes, and comes back with its ID and offset.
    drop(r);
    replica.stop();
    writes(&mut p, 3);
    let port = primary.addr().port();
    let replica = TestServer::start_with(|c| {
        c.dir = path.clone();
        c.repl.replicaof = Some(("127.0.0.1".into(), port));
    });
    let mut r = replica.client(false);
    until("a partial resync after the restart", || {
        stat(&mut p, "sync_partial_ok") == 3
    });
    caught_up(&mut p, &mut r);
    let keys = ["s", "s2", "str0", "str1", "str2", "str3", "f", "log"];
    assert_eq!(
        state(&mut p, &streams, &keys),
        state(&mut r, &streams, &keys)
    );
    assert_eq!(stat(&mut p, "sync_full"), 1);
}

#[test]
fn a_replica_pointed_at_itself_or_at_another_server_keeps_its_data() {
    let replica = TestServer::start();
    let mut r = replica.client(false);
    run(&mut r, &["XADD", "mine", "1-0", "f", "v"]);
    let own = replica.addr().port().to_string();
    run(&mut r, &["REPLICAOF", "127.0.0.1", &own]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        info_field(&mut r, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    assert_eq!(int(&mut r, &["XLEN", "mine"]), 1);

    // A server that is not Brooklet (it refuses Brooklet's REPLCONF, as Redis does).
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for conn in fake.incoming().take(2) {
            let Ok(conn) = conn else { continue };
            let mut w = conn.try_clone().unwrap();
            let mut lines = BufReader::new(conn).lines();
            while let Some(Ok(line)) = lines.next() {
                let answer: &[u8] = if line.eq_ignore_ascii_case("brooklet-runid") {
                    b"-ERR Unrecognized REPLCONF option: brooklet-runid\r\n"
                } else if line.eq_ignore_ascii_case("ping") {
                    b"+PONG\r\n"
                } else if line.eq_ignore_ascii_case("listening-port")
                    || line.eq_ignore_ascii_case("capa")
                {
                    b"+OK\r\n"
                } else {
                    continue;
                };
                if w.write_all(answer).is_err() {
                    break;
                }
            }
        }
    });
    run(&mut r, &["REPLICAOF", "127.0.0.1", &fake_port]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        info_field(&mut r, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    assert_eq!(int(&mut r, &["XLEN", "mine"]), 1);
    run(&mut r, &["REPLICAOF", "NO", "ONE"]);
    run(&mut r, &["XADD", "mine", "2-0", "f", "v"]);
    assert_eq!(int(&mut r, &["XLEN", "mine"]), 2);
}

#[test]
fn a_promoted_replica_keeps_its_data_and_its_old_primary_follows_it() {
    let (primary, replica) = (TestServer::start(), TestServer::start());
    let (mut p, mut r) = following(&primary, &replica);
    let old_id = info_field(&mut r, "replication", "master_replid").unwrap();
    run(&mut r, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("master")
    );
    assert_eq!(
        info_field(&mut r, "replication", "master_replid2").as_deref(),
        Some(old_id.as_str())
    );
    assert_ne!(
        info_field(&mut r, "replication", "master_replid").unwrap(),
        old_id
    );
    writes(&mut r, 2);
    // The old primary follows the new one: its own history is replaced by the new one's.
    run(&mut p, &["XADD", "lost", "*", "f", "v"]);
    replicate(&mut p, &replica);
    caught_up(&mut r, &mut p);
    let streams = ["s", "s2"];
    let keys = ["s", "s2", "str0", "str1", "str2", "f", "log", "lost"];
    assert_eq!(
        state(&mut r, &streams, &keys),
        state(&mut p, &streams, &keys)
    );
    assert_eq!(int(&mut p, &["EXISTS", "lost"]), 0);
}

/// A TCP proxy to `target` whose connections can be cut at any moment.
struct Proxy {
    port: u16,
    live: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let live = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let conns = live.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                let Ok(outbound) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                {
                    let mut l = conns.lock().unwrap();
                    l.push(inbound.try_clone().unwrap());
                    l.push(outbound.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                    (outbound, inbound),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, live }
    }

    /// Cuts every connection through the proxy.
    fn cut(&self) {
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn writes_during_a_full_sync_and_links_cut_at_random_points_lose_and_duplicate_nothing() {
    let primary = TestServer::start();
    let replica = TestServer::start();
    let mut p = primary.client(false);
    let mut r = replica.client(false);
    for k in 0..50 {
        run(&mut p, &["XADD", &format!("k{k}"), "*", "f", "v"]);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let url = primary.url(false);
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                run(
                    &mut c,
                    &["XADD", &format!("k{}", n % 50), "*", "n", &n.to_string()],
                );
                if n.is_multiple_of(7) {
                    run(&mut c, &["SET", &format!("s{}", n % 13), &n.to_string()]);
                }
                n += 1;
            }
            n
        })
    };
    let proxy = Proxy::start(primary.addr());
    let port = proxy.port.to_string();
    run(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    until("the link to come up", || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
    });
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(50 + seed % 250));
        proxy.cut();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let produced = producer.join().unwrap();
    assert!(produced > 0);
    until("the link to come back", || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
    });
    caught_up(&mut p, &mut r);
    let streams: Vec<String> = (0..50).map(|k| format!("k{k}")).collect();
    let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
    let strings: Vec<String> = (0..13).map(|k| format!("s{k}")).collect();
    let strings: Vec<&str> = strings.iter().map(String::as_str).collect();
    assert_eq!(
        state(&mut p, &streams, &strings),
        state(&mut r, &streams, &strings)
    );
    assert!(stat(&mut p, "sync_partial_ok") >= 1);
}

#[test]
fn wait_waitaof_publish_and_min_replicas_to_write() {
    let primary = TestServer::start();
    let replica = TestServer::start();
    let mut p = primary.client(false);
    let mut r = replica.client(false);
    // No replica yet: WAIT times out with 0.
    run(&mut p, &["XADD", "s", "*", "f", "v"]);
    assert_eq!(int(&mut p, &["WAIT", "1", "50"]), 0);
    assert_eq!(int(&mut p, &["WAIT", "0", "0"]), 0);
    assert_eq!(err(&mut p, &["WAIT", "1", "-1"]), "ERR timeout is negative");
    replicate(&mut r, &primary);
    run(&mut p, &["XADD", "s", "*", "f", "v"]);
    assert_eq!(
        run(&mut p, &["WAITAOF", "1", "1", "5000"]),
        redis::Value::Array(vec![redis::Value::Int(1), redis::Value::Int(1)])
    );
    assert!(
        err(&mut r, &["WAIT", "1", "10"])
            .starts_with("ERR WAIT cannot be used with replica instances")
    );

    // PUBLISH on the primary reaches a subscriber on the replica.
    let mut sub = redis::Client::open(replica.url(false))
        .unwrap()
        .get_connection()
        .unwrap();
    sub.set_read_timeout(Some(WAIT)).unwrap();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("news").unwrap();
    until("the publish to reach the replica's subscriber", || {
        run(&mut p, &["PUBLISH", "news", "hello"]);
        pubsub
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        pubsub
            .get_message()
            .is_ok_and(|m| m.get_payload::<String>().unwrap() == "hello")
    });

    // min-replicas-to-write: one replica is enough, two are not.
    run(&mut p, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    until("writes to be refused", || {
        query(&mut p, &["XADD", "s", "*", "f", "v"]).is_err()
    });
    assert_eq!(
        err(&mut p, &["XADD", "s", "*", "f", "v"]),
        "NOREPLICAS Not enough good replicas to write."
    );
    run(&mut p, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    until("writes to be accepted again", || {
        query(&mut p, &["XADD", "s", "*", "f", "v"]).is_ok()
    });
}

#[test]
fn config_rewrite_keeps_the_file_and_records_the_replication_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("brooklet.conf");
    std::fs::write(
        &file,
        "# my settings\nport 0\n\n# keep this comment\nhz 10\n",
    )
    .unwrap();
    let server = TestServer::start_with(|c| c.load_file(&file).unwrap());
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "replica-priority", "7"]);
    run(&mut c, &["CONFIG", "SET", "hz", "20"]);
    run(&mut c, &["CONFIG", "REWRITE"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# my settings\nport 0\n\n# keep this comment\nhz 20\n"),
        "{text}"
    );
    assert!(text.contains("# Generated by CONFIG REWRITE\n"), "{text}");
    assert!(text.contains("\nreplica-priority 7\n"), "{text}");
    let plain = TestServer::start();
    let mut c = plain.client(false);
    assert_eq!(
        err(&mut c, &["CONFIG", "REWRITE"]),
        "ERR The server is running without a config file"
    );
}

#[test]
fn nacks_dead_letters_idempotent_ids_retention_and_key_moves_replicate_exactly() {
    let primary = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let replica = TestServer::start_with(|c| c.dir = path.clone());
    let mut p = primary.client(false);
    let mut r = replica.client(false);
    replicate(&mut r, &primary);
    for i in 1..=30 {
        run(
            &mut p,
            &["XADD", "q", &format!("{i}-0"), "n", &i.to_string()],
        );
    }
    run(&mut p, &["XGROUP", "CREATE", "q", "g", "0"]);
    run(
        &mut p,
        &["XGROUP", "SETDLQ", "q", "g", "dead", "MAXDELIVERIES", "2"],
    );
    run(
        &mut p,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "10",
            "STREAMS",
            "q",
            ">",
        ],
    );
    run(
        &mut p,
        &["XNACK", "q", "g", "FAIL", "IDS", "3", "1-0", "2-0", "3-0"],
    );
    run(&mut p, &["XNACK", "q", "g", "SILENT", "IDS", "1", "4-0"]);
    run(&mut p, &["XCLAIM", "q", "g", "b", "0", "5-0", "6-0"]);
    run(
        &mut p,
        &["XAUTOCLAIM", "q", "g", "b", "0", "0", "COUNT", "3"],
    );
    // Delivered again past MAXDELIVERIES: dead-lettered into `dead`.
    run(&mut p, &["XCLAIM", "q", "g", "c", "0", "7-0"]);
    run(&mut p, &["XCLAIM", "q", "g", "c", "0", "7-0"]);
    run(
        &mut p,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "5",
            "CLAIM",
            "0",
            "STREAMS",
            "q",
            ">",
        ],
    );
    run(&mut p, &["XACK", "q", "g", "8-0"]);
    run(&mut p, &["XGROUP", "CREATECONSUMER", "q", "g", "idle"]);
    run(&mut p, &["XGROUP", "DELCONSUMER", "q", "g", "b"]);
    run(&mut p, &["XADD", "ip", "IDMP", "p1", "i1", "*", "f", "v"]);
    run(&mut p, &["XADD", "ip", "IDMP", "p1", "i1", "*", "f", "v"]);
    run(&mut p, &["XADD", "ip", "IDMPAUTO", "p2", "*", "f", "w"]);
    run(
        &mut p,
        &["XCFGSET", "ip", "IDMP-DURATION", "50", "IDMP-MAXSIZE", "7"],
    );
    run(&mut p, &["XADD", "ip", "IDMP", "p1", "i2", "*", "f", "v"]);
    run(&mut p, &["XADD", "old", "1-0", "f", "v"]);
    run(&mut p, &["XADD", "old", "2-0", "f", "v"]);
    run(&mut p, &["XCFGSET", "old", "MAXAGE", "1"]);
    run(&mut p, &["XTRIM", "q", "MINID", "3-0"]);
    run(&mut p, &["XDEL", "q", "12-0", "13-0"]);
    run(
        &mut p,
        &[
            "XSETID",
            "q",
            "99-0",
            "ENTRIESADDED",
            "500",
            "MAXDELETEDID",
            "50-0",
        ],
    );
    run(&mut p, &["XGROUP", "CREATE", "q", "gone", "$"]);
    run(&mut p, &["XGROUP", "DESTROY", "q", "gone"]);
    run(&mut p, &["XADD", "m", "1-0", "f", "v"]);
    run(&mut p, &["COPY", "m", "m2"]);
    run(&mut p, &["RENAME", "m", "m3"]);
    run(&mut p, &["MULTI"]);
    run(&mut p, &["XADD", "m3", "2-0", "f", "v"]);
    run(&mut p, &["SET", "str", "v", "PX", "100000"]);
    run(&mut p, &["EXEC"]);
    run(&mut p, &["SELECT", "1"]);
    run(&mut p, &["XADD", "other", "1-0", "f", "v"]);
    run(&mut p, &["SWAPDB", "0", "1"]);
    run(&mut p, &["SWAPDB", "0", "1"]);
    run(&mut p, &["FLUSHDB"]);
    run(&mut p, &["SELECT", "0"]);
    // Retention removes `old`'s entries on the primary; the replica gets the trim.
    until("retention to trim", || int(&mut p, &["XLEN", "old"]) == 0);
    assert_eq!(int(&mut p, &["WAIT", "1", "10000"]), 1);
    caught_up(&mut p, &mut r);
    let streams = ["q", "dead", "ip", "old", "m2", "m3"];
    let keys = ["q", "dead", "ip", "old", "m", "m2", "m3", "str"];
    assert_eq!(
        state(&mut p, &streams, &keys),
        state(&mut r, &streams, &keys)
    );
    let mut r1 = replica.client(false);
    run(&mut r1, &["SELECT", "1"]);
    assert_eq!(int(&mut r1, &["DBSIZE"]), 0);
    assert!(int(&mut r, &["XLEN", "dead"]) >= 1);
    // What the replica stored survives its restart identically (its own durable copy).
    let before = state(&mut r, &streams, &keys);
    drop((r, r1));
    replica.stop();
    let port = primary.addr().port();
    let replica = TestServer::start_with(|c| {
        c.dir = path.clone();
        c.repl.replicaof = Some(("127.0.0.1".into(), port));
    });
    let mut r = replica.client(false);
    assert_eq!(state(&mut r, &streams, &keys), before);
    until("the restarted replica to continue", || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
    });
    assert_eq!(stat(&mut p, "sync_full"), 1);
}

#[test]
fn a_replica_that_stops_reading_is_dropped_at_its_output_buffer_limit() {
    use std::io::{Read, Write};
    let primary = TestServer::start();
    let mut p = primary.client(false);
    // A backlog large enough that only the output buffer limit can end the link.
    run(&mut p, &["CONFIG", "SET", "repl-backlog-size", "256mb"]);
    run(
        &mut p,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0",
        ],
    );
    run(&mut p, &["XADD", "s", "*", "f", "v"]);
    // A replica that asks for a full sync, reads the first line of the answer, then stops.
    let mut stalled = std::net::TcpStream::connect(primary.addr()).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stalled
        .write_all(b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        .unwrap();
    let mut first = [0u8; 11];
    stalled.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"+FULLRESYNC");
    until("the replica to be listed", || {
        info_field(&mut p, "replication", "connected_slaves").as_deref() == Some("1")
    });
    // Far more than the socket buffers and the 1 MB limit hold: 40 MB of entries.
    let value = "x".repeat(10_000);
    let deadline = Instant::now() + WAIT;
    let mut written = 0;
    while info_field(&mut p, "replication", "connected_slaves").as_deref() != Some("0") {
        assert!(
            Instant::now() < deadline && written < 4_000,
            "the stalled replica was never dropped"
        );
        for _ in 0..100 {
            run(&mut p, &["XADD", "s", "*", "f", &value]);
        }
        written += 100;
    }
    // The primary goes on serving, with every entry it acknowledged.
    assert_eq!(int(&mut p, &["XLEN", "s"]), written + 1);
    // The dropped replica's socket ends once what was sent before is drained.
    let mut sink = vec![0u8; 1 << 16];
    let drained_by = Instant::now() + WAIT;
    loop {
        match stalled.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => assert!(Instant::now() < drained_by, "the link was not closed"),
            Err(e) => panic!("reading the dropped link: {e}"),
        }
    }
}

#[test]
fn keys_past_their_deadline_read_as_gone_on_a_replica_and_during_a_pause() {
    let primary = TestServer::start();
    let replica = TestServer::start();
    let mut p = primary.client(false);
    let mut r = replica.client(true);
    replicate(&mut r, &primary);
    let at = (now_ms() + 500).to_string();
    run(&mut p, &["SET", "k", "v", "PXAT", &at]);
    run(&mut p, &["XADD", "s", "*", "f", "v"]);
    run(&mut p, &["PEXPIREAT", "s", &at]);
    run(&mut p, &["SET", "keep", "v"]);
    caught_up(&mut p, &mut r);
    assert_eq!(
        run(&mut r, &["GET", "k"]),
        redis::Value::BulkString(b"v".to_vec())
    );
    // The primary holds its removals while paused, so the replica gets no DEL meanwhile.
    run(&mut p, &["CLIENT", "PAUSE", "30000", "WRITE"]);
    let due = at.parse::<i64>().unwrap();
    until("the deadline to pass", || now_ms() > due);
    for c in [&mut p, &mut r] {
        assert_eq!(run(c, &["GET", "k"]), redis::Value::Nil);
        assert_eq!(int(c, &["EXISTS", "k", "s", "keep"]), 1);
        assert_eq!(int(c, &["TTL", "k"]), -2);
        assert_eq!(int(c, &["XLEN", "s"]), 0);
        assert_eq!(
            run(c, &["TYPE", "s"]),
            redis::Value::SimpleString("none".into())
        );
        assert_eq!(
            run(c, &["KEYS", "*"]),
            redis::Value::Array(vec![redis::Value::BulkString(b"keep".to_vec())])
        );
        // Still there, as Redis counts them until they are removed.
        assert_eq!(int(c, &["DBSIZE"]), 3);
    }
    assert_eq!(
        info_field(&mut p, "stats", "expired_keys").as_deref(),
        Some("0")
    );
    // Unpaused, the primary removes them and its DELs reach the replica.
    run(&mut p, &["CLIENT", "UNPAUSE"]);
    until("the primary to remove the keys", || {
        int(&mut p, &["DBSIZE"]) == 1
    });
    caught_up(&mut p, &mut r);
    assert_eq!(int(&mut r, &["DBSIZE"]), 1);
    assert_eq!(
        info_field(&mut p, "stats", "expired_keys").as_deref(),
        Some("2")
    );
}

#[test]
fn failover_refuses_bad_requests_holds_writes_and_gives_up_on_abort_or_timeout() {
    let primary = TestServer::start();
    let mut p = primary.client(false);
    assert_eq!(
        err(&mut p, &["FAILOVER"]),
        "ERR FAILOVER requires connected replicas."
    );
    assert_eq!(
        err(&mut p, &["FAILOVER", "ABORT"]),
        "ERR No failover in progress."
    );
    assert_eq!(
        err(&mut p, &["FAILOVER", "TIMEOUT", "0"]),
        "ERR FAILOVER timeout must be greater than 0"
    );
    assert_eq!(
        err(&mut p, &["FAILOVER", "TIMEOUT", "x"]),
        "ERR value is not an integer or out of range"
    );
    for bad in [
        &["FAILOVER", "TO", "127.0.0.1"][..],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "ABORT", "TIMEOUT", "5"],
        &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"],
    ] {
        assert_eq!(err(&mut p, bad), "ERR syntax error", "{bad:?}");
    }
    // A replica that never acknowledges anything: no failover can find it caught up.
    let mut silent = primary.raw();
    silent.send_cmd(&[b"REPLCONF", b"listening-port", b"7777"]);
    assert_eq!(silent.read_line2(), b"+OK\r\n");
    silent.send_cmd(&[b"PSYNC", b"?", b"-1"]);
    assert!(silent.read_line2().starts_with(b"+FULLRESYNC"));
    until("the silent replica to be online", || {
        info_field(&mut p, "replication", "slave0").is_some_and(|l| l.contains("state=online"))
    });
    run(&mut p, &["XADD", "s", "*", "f", "v"]);
    assert_eq!(
        err(&mut p, &["FAILOVER", "TO", "127.0.0.1", "7777", "FORCE"]),
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    assert_eq!(
        err(&mut p, &["FAILOVER", "TO", "127.0.0.1", "9"]),
        "ERR FAILOVER target HOST and PORT is not a replica."
    );
    assert_eq!(run(&mut p, &["FAILOVER"]), redis::Value::Okay);
    assert_eq!(
        info_field(&mut p, "replication", "master_failover_state").as_deref(),
        Some("waiting-for-sync")
    );
    assert_eq!(
        err(&mut p, &["FAILOVER"]),
        "ERR FAILOVER already in progress."
    );
    assert_eq!(
        err(&mut p, &["REPLICAOF", "127.0.0.1", "1"]),
        "ERR REPLICAOF not allowed while failing over."
    );
    // Writes wait, reads do not, and CLIENT UNPAUSE does not lift a failover's hold.
    let mut writer = primary.raw();
    writer.send_cmd(&[b"XADD", b"s", b"*", b"f", b"held"]);
    until("the write to be held", || blocked_clients(&mut p) == 1);
    assert_eq!(int(&mut p, &["XLEN", "s"]), 1);
    run(&mut p, &["CLIENT", "UNPAUSE"]);
    assert_eq!(blocked_clients(&mut p), 1);
    assert_eq!(run(&mut p, &["FAILOVER", "ABORT"]), redis::Value::Okay);
    assert!(matches!(
        writer.read2(),
        redis_protocol::resp2::types::OwnedFrame::BulkString(_)
    ));
    assert_eq!(int(&mut p, &["XLEN", "s"]), 2);
    assert_eq!(
        info_field(&mut p, "replication", "role").as_deref(),
        Some("master")
    );
    // A timeout without FORCE gives up by itself.
    assert_eq!(
        run(&mut p, &["FAILOVER", "TIMEOUT", "100"]),
        redis::Value::Okay
    );
    until("the failover to time out", || {
        info_field(&mut p, "replication", "master_failover_state").as_deref() == Some("no-failover")
    });
    run(&mut p, &["XADD", "s", "*", "f", "after"]);
    assert_eq!(int(&mut p, &["XLEN", "s"]), 3);
}

#[test]
fn failover_switches_primary_and_replica_without_a_full_resync() {
    let (primary, replica) = (TestServer::start(), TestServer::start());
    let (mut p, mut r) = following(&primary, &replica);
    assert_eq!(
        err(&mut r, &["FAILOVER"]),
        "ERR FAILOVER is not valid when server is a replica."
    );
    // A reader blocked on the primary is told the server changed role, then disconnected.
    let mut reader = primary.raw();
    reader.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]);
    until("the reader to block", || blocked_clients(&mut p) == 1);
    let port = replica.addr().port().to_string();
    assert_eq!(
        run(
            &mut p,
            &["FAILOVER", "TO", "127.0.0.1", &port, "TIMEOUT", "20000"]
        ),
        redis::Value::Okay
    );
    // Held until the switch, then refused: the old primary is a replica by then.
    assert_eq!(
        err(&mut p, &["XADD", "s", "*", "f", "late"]),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        error_text(&reader.read2()).as_deref(),
        Some(
            "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
        )
    );
    assert!(reader.is_closed());
    until("the switch", || {
        info_field(&mut p, "replication", "master_link_status").as_deref() == Some("up")
            && info_field(&mut p, "replication", "master_failover_state").as_deref()
                == Some("no-failover")
    });
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("master")
    );
    assert_eq!(
        info_field(&mut p, "replication", "master_port").as_deref(),
        Some(port.as_str())
    );
    // The old primary continued from its own history: nobody sent a snapshot.
    assert_eq!(stat(&mut r, "sync_full"), 0);
    assert_eq!(stat(&mut r, "sync_partial_ok"), 1);
    writes(&mut r, 2);
    caught_up(&mut r, &mut p);
    let streams = ["s", "s2"];
    let keys = ["s", "s2", "str0", "str1", "str2", "f", "log"];
    assert_eq!(
        state(&mut r, &streams, &keys),
        state(&mut p, &streams, &keys)
    );
}

#[test]
fn a_transaction_reaches_replicas_inside_multi_and_exec() {
    use std::io::Read;
    let primary = TestServer::start();
    let mut p = primary.client(false);
    let mut feed = primary.raw();
    feed.send_cmd(&[b"PSYNC", b"?", b"-1"]);
    assert!(feed.read_line2().starts_with(b"+FULLRESYNC"));
    // The snapshot of an empty server, which holds no command this test looks for.
    assert!(feed.read_line2().starts_with(b"$"));
    // Reads only: nothing goes into the stream for it.
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg("k")
        .query(&mut p)
        .unwrap();
    let _: redis::Value = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("k")
        .arg("v")
        .cmd("XADD")
        .arg("s")
        .arg("1-1")
        .arg("f")
        .arg("v")
        .query(&mut p)
        .unwrap();
    run(&mut p, &["SET", "after", "x"]);
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !got.windows(5).any(|w| w == b"after") {
        assert!(
            Instant::now() < deadline,
            "the stream never carried the writes"
        );
        let mut chunk = [0u8; 4096];
        let n = feed.stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the primary closed the feed");
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let multi = text
        .find("*1\r\n$5\r\nMULTI\r\n")
        .expect("no MULTI in the stream");
    let set = text
        .find("$1\r\nk\r\n$1\r\nv")
        .expect("no SET in the stream");
    let xadd = text
        .find("REPLSTREAM")
        .expect("no stream records in the stream");
    let exec = text
        .find("*1\r\n$4\r\nEXEC\r\n")
        .expect("no EXEC in the stream");
    let after = text.find("after").unwrap();
    assert!(
        multi < set && set < xadd && xadd < exec && exec < after,
        "{text:?}"
    );
    assert_eq!(text.matches("MULTI").count(), 1, "{text:?}");
}

/// Reads one line (CRLF included) from a raw socket.
fn read_line(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "the connection closed");
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Reads one RESP command a peer sent (a multibulk of bulk strings).
fn read_command(s: &mut std::net::TcpStream) -> Vec<String> {
    use std::io::Read;
    let head = read_line(s);
    let n: usize = head.trim_end()[1..].parse().unwrap();
    (0..n)
        .map(|_| {
            let len: usize = read_line(s).trim_end()[1..].parse().unwrap();
            let mut arg = vec![0u8; len + 2];
            s.read_exact(&mut arg).unwrap();
            String::from_utf8_lossy(&arg[..len]).into_owned()
        })
        .collect()
}

#[test]
fn a_failover_whose_target_refuses_the_psync_is_aborted_and_writes_go_on() {
    use std::io::{Read, Write};
    let primary = TestServer::start();
    let mut p = primary.client(false);
    run(&mut p, &["XADD", "s", "*", "f", "v"]);
    // A "replica" that follows the primary and acknowledges all it got, and that will
    // refuse the failover's PSYNC when the primary connects to it.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = target.local_addr().unwrap().port().to_string();
    let mut link = std::net::TcpStream::connect(primary.addr()).unwrap();
    link.set_read_timeout(Some(WAIT)).unwrap();
    let send = |s: &mut std::net::TcpStream, args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes()).unwrap();
    };
    send(&mut link, &["REPLCONF", "listening-port", &target_port]);
    assert_eq!(read_line(&mut link), "+OK\r\n");
    send(&mut link, &["PSYNC", "?", "-1"]);
    let fullresync = read_line(&mut link);
    let offset: u64 = fullresync
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let len: usize = read_line(&mut link).trim_end()[1..].parse().unwrap();
    let mut snapshot = vec![0u8; len];
    link.read_exact(&mut snapshot).unwrap();
    until("the replica to be online", || {
        info_field(&mut p, "replication", "slave0").is_some_and(|l| l.contains("state=online"))
    });
    let old_id = info_field(&mut p, "replication", "master_replid").unwrap();
    assert_eq!(
        info_field(&mut p, "replication", "master_repl_offset")
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        offset
    );
    send(&mut link, &["REPLCONF", "ACK", &offset.to_string()]);
    assert_eq!(
        run(&mut p, &["FAILOVER", "TO", "127.0.0.1", &target_port]),
        redis::Value::Okay
    );
    // The primary, now following the target, goes through the handshake and asks with
    // PSYNC ... FAILOVER, which the target refuses.
    let (mut back, _) = target.accept().unwrap();
    back.set_read_timeout(Some(WAIT)).unwrap();
    let psync = loop {
        let cmd = read_command(&mut back);
        if cmd[0].eq_ignore_ascii_case("psync") {
            break cmd;
        }
        let answer = if cmd[0].eq_ignore_ascii_case("ping") {
            "+PONG\r\n"
        } else {
            "+OK\r\n"
        };
        back.write_all(answer.as_bytes()).unwrap();
    };
    assert_eq!(psync[1], old_id);
    assert_eq!(psync[2], (offset + 1).to_string());
    assert_eq!(psync[3], "FAILOVER");
    back.write_all(b"-ERR PSYNC FAILOVER replid must match my replid.\r\n")
        .unwrap();
    until("the failover to be aborted", || {
        info_field(&mut p, "replication", "role").as_deref() == Some("master")
            && info_field(&mut p, "replication", "master_failover_state").as_deref()
                == Some("no-failover")
    });
    // A primary again, under a new history, and writes go on.
    assert_ne!(
        info_field(&mut p, "replication", "master_replid").unwrap(),
        old_id
    );
    assert_eq!(
        info_field(&mut p, "replication", "master_replid2").as_deref(),
        Some(old_id.as_str())
    );
    run(&mut p, &["XADD", "s", "*", "f", "after"]);
    assert_eq!(int(&mut p, &["XLEN", "s"]), 2);
}
