//! Operators' commands: MEMORY STATS / DOCTOR / MALLOC-STATS / PURGE, COMMAND GETKEYS /
//! GETKEYSANDFLAGS / LIST FILTERBY, CLIENT PAUSE / UNPAUSE / NO-EVICT, CONFIG REWRITE, and
//! the Prometheus endpoint.

use brooklet::{TestServer, err, int, run};
use redis::Value;

/// The map a MEMORY STATS reply holds, whichever protocol carried it.
fn map_of(v: Value) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(a) => a.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
        other => panic!("not a map: {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Value::BulkString(b) => (String::from_utf8_lossy(&b).into_owned(), v),
            other => panic!("key {other:?}"),
        })
        .collect()
}

fn text_of(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        Value::SimpleString(s) => s,
        other => panic!("not text: {other:?}"),
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Int(n) => *n as f64,
        Value::Double(d) => *d,
        Value::BulkString(b) => String::from_utf8_lossy(b).parse().unwrap_or(f64::NAN),
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn memory_stats_fields_in_both_protocols() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["XADD", "s", "*", "f", "v"]);
        run(&mut c, &["SET", "k", "v"]);
        let stats = map_of(run(&mut c, &["MEMORY", "STATS"]));
        let names: Vec<&str> = stats.iter().map(|(k, _)| k.as_str()).collect();
        for want in [
            "peak.allocated",
            "total.allocated",
            "startup.allocated",
            "replication.backlog",
            "clients.slaves",
            "clients.normal",
            "aof.buffer",
            "db.0",
            "overhead.total",
            "keys.count",
            "keys.bytes-per-key",
            "dataset.bytes",
            "dataset.percentage",
            "peak.percentage",
            "allocator.allocated",
            "fragmentation",
            "fragmentation.bytes",
            "brooklet.disk.bytes",
            "brooklet.tail-log.bytes",
            "brooklet.stream-cache.budget",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let get = |name: &str| {
            stats
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(number(&get("keys.count")), 2.0);
        assert!(number(&get("peak.allocated")) >= number(&get("total.allocated")));
        assert!(number(&get("peak.percentage")) <= 100.0);
        assert!(matches!(get("db.0"), Value::Map(_) | Value::Array(_)));
        run(&mut c, &["FLUSHALL"]);
    }
}

#[test]
fn memory_doctor_purge_malloc_stats_and_help() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let doctor = text_of(run(&mut c, &["MEMORY", "DOCTOR"]));
        assert!(doctor.starts_with("Hi Sam") || doctor.starts_with("Sam, I detected"));
        // The in-process server runs on the system allocator, as Redis built without jemalloc.
        assert_eq!(
            text_of(run(&mut c, &["MEMORY", "MALLOC-STATS"])),
            "Stats not supported for the current allocator"
        );
        assert_eq!(run(&mut c, &["MEMORY", "PURGE"]), Value::Okay);
        let help = match run(&mut c, &["MEMORY", "HELP"]) {
            Value::Array(a) => a.into_iter().map(text_of).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(help[1], "DOCTOR");
        assert!(help.iter().any(|l| l == "STATS"));
        assert_eq!(
            err(&mut c, &["MEMORY", "STATS", "x"]),
            "ERR wrong number of arguments for 'memory|stats' command"
        );
        assert_eq!(
            err(&mut c, &["MEMORY", "NOPE"]),
            "ERR unknown subcommand 'NOPE'. Try MEMORY HELP."
        );
        assert!(int(&mut c, &["DBSIZE"]) >= 0);
    }
}

/// Waits (bounded) until INFO's `blocked_clients` reads `n`.
fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while brooklet::blocked_clients(c) != n {
        assert!(
            std::time::Instant::now() < deadline,
            "blocked_clients never reached {n}"
        );
        std::thread::yield_now();
    }
}

fn simple(frame: redis_protocol::resp2::types::OwnedFrame) -> String {
    match frame {
        redis_protocol::resp2::types::OwnedFrame::SimpleString(s) => {
            String::from_utf8_lossy(&s).into_owned()
        }
        redis_protocol::resp2::types::OwnedFrame::BulkString(s) => {
            String::from_utf8_lossy(&s).into_owned()
        }
        redis_protocol::resp2::types::OwnedFrame::Integer(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn client_pause_write_postpones_writes_and_publish_not_reads() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let mut reader = server.client(true);
    run(&mut admin, &["XADD", "s", "1-1", "f", "v"]);
    assert_eq!(
        run(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]),
        Value::Okay
    );
    let mut writer = server.raw();
    writer.send_cmd(&[b"XADD", b"s", b"2-1", b"f", b"v"]);
    wait_blocked(&mut reader, 1);
    let mut publisher = server.raw();
    publisher.send_cmd(&[b"PUBLISH", b"ch", b"m"]);
    wait_blocked(&mut reader, 2);
    // Reads go on, and see nothing of the postponed write.
    assert_eq!(int(&mut reader, &["XLEN", "s"]), 1);
    let list = text_of(run(&mut reader, &["CLIENT", "LIST"]));
    let held: Vec<&str> = list
        .lines()
        .filter(|l| l.contains(" flags=b "))
        .filter_map(|l| l.split(" cmd=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(held, ["xadd", "publish"]);
    // A write queued in MULTI is held back too, as Redis checks before queueing.
    let mut tx = server.raw();
    tx.send_cmd(&[b"MULTI"]);
    assert_eq!(simple(tx.read2()), "OK");
    tx.send_cmd(&[b"SET", b"k", b"v"]);
    wait_blocked(&mut reader, 3);
    assert_eq!(run(&mut admin, &["CLIENT", "UNPAUSE"]), Value::Okay);
    assert_eq!(simple(writer.read2()), "2-1");
    assert_eq!(simple(publisher.read2()), "0");
    assert_eq!(simple(tx.read2()), "QUEUED");
    wait_blocked(&mut reader, 0);
    assert_eq!(int(&mut reader, &["XLEN", "s"]), 2);
}

#[test]
fn client_pause_all_holds_every_command_until_its_end() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let started = std::time::Instant::now();
    assert_eq!(
        run(&mut admin, &["CLIENT", "PAUSE", "300", "ALL"]),
        Value::Okay
    );
    let mut other = server.raw();
    other.send_cmd(&[b"PING"]);
    assert_eq!(simple(other.read2()), "PONG");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    // A later WRITE pause does not narrow an ALL one in force, and the end only grows.
    run(&mut admin, &["CLIENT", "PAUSE", "0", "WRITE"]);
    assert_eq!(
        run(&mut admin, &["PING"]),
        Value::SimpleString("PONG".into())
    );
}

#[test]
fn client_pause_errors_and_no_evict_flags() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        assert_eq!(
            err(&mut c, &["CLIENT", "PAUSE", "10", "READ"]),
            "ERR CLIENT PAUSE mode must be WRITE or ALL"
        );
        assert_eq!(
            err(&mut c, &["CLIENT", "PAUSE", "x"]),
            "ERR timeout is not an integer or out of range"
        );
        assert_eq!(
            err(&mut c, &["CLIENT", "PAUSE", "-5"]),
            "ERR timeout is negative"
        );
        assert_eq!(
            err(&mut c, &["CLIENT", "PAUSE", "1", "ALL", "x"]),
            "ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP."
        );
        assert_eq!(
            err(&mut c, &["CLIENT", "UNPAUSE", "x"]),
            "ERR wrong number of arguments for 'client|unpause' command"
        );
        assert_eq!(run(&mut c, &["CLIENT", "NO-EVICT", "on"]), Value::Okay);
        assert!(text_of(run(&mut c, &["CLIENT", "INFO"])).contains(" flags=e "));
        assert_eq!(run(&mut c, &["CLIENT", "NO-TOUCH", "ON"]), Value::Okay);
        assert!(text_of(run(&mut c, &["CLIENT", "INFO"])).contains(" flags=eT "));
        run(&mut c, &["CLIENT", "NO-EVICT", "off"]);
        run(&mut c, &["CLIENT", "NO-TOUCH", "off"]);
        assert!(text_of(run(&mut c, &["CLIENT", "INFO"])).contains(" flags=N "));
        assert_eq!(
            err(&mut c, &["CLIENT", "NO-EVICT", "maybe"]),
            "ERR syntax error"
        );
    }
}

#[test]
fn command_getkeys_and_flags() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let keys = |c: &mut redis::Connection, args: &[&str]| match run(c, args) {
            Value::Array(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            keys(
                &mut c,
                &[
                    "COMMAND",
                    "GETKEYS",
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c",
                    "STREAMS",
                    "a",
                    "b",
                    ">",
                    ">"
                ]
            ),
            vec![
                Value::BulkString(b"a".to_vec()),
                Value::BulkString(b"b".to_vec())
            ]
        );
        // What redis-server 7.0 answers: the flags of the key spec that found each key.
        let flagged = |k: &str, flags: &[&str]| {
            Value::Array(vec![
                Value::BulkString(k.as_bytes().to_vec()),
                Value::Array(
                    flags
                        .iter()
                        .map(|f| Value::SimpleString(f.to_string()))
                        .collect(),
                ),
            ])
        };
        assert_eq!(
            keys(&mut c, &["COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v"]),
            vec![flagged("k", &["OW", "update"])]
        );
        assert_eq!(
            keys(
                &mut c,
                &["COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "GET"]
            ),
            vec![flagged("k", &["RW", "access", "update"])]
        );
        assert_eq!(
            keys(&mut c, &["COMMAND", "GETKEYSANDFLAGS", "RENAME", "a", "b"]),
            vec![
                flagged("a", &["RW", "access", "delete"]),
                flagged("b", &["OW", "update"])
            ]
        );
        assert_eq!(
            keys(
                &mut c,
                &[
                    "COMMAND",
                    "GETKEYSANDFLAGS",
                    "XREAD",
                    "STREAMS",
                    "a",
                    "b",
                    "0",
                    "0"
                ]
            ),
            vec![
                flagged("a", &["RO", "access"]),
                flagged("b", &["RO", "access"])
            ]
        );
        assert_eq!(
            err(&mut c, &["COMMAND", "GETKEYS", "NOPE", "k"]),
            "ERR Invalid command specified"
        );
        assert_eq!(
            err(&mut c, &["COMMAND", "GETKEYS", "PING", "x"]),
            "ERR The command has no key arguments"
        );
        assert_eq!(
            err(&mut c, &["COMMAND", "GETKEYS", "XREAD", "STREAMS", "s"]),
            "ERR Invalid number of arguments specified for command"
        );
        assert_eq!(
            err(
                &mut c,
                &["COMMAND", "GETKEYS", "XREAD", "COUNT", "1", "s", "0"]
            ),
            "ERR Invalid arguments specified for command"
        );
        // Redis 7's arity: the command and at least one argument.
        assert_eq!(
            err(&mut c, &["COMMAND", "GETKEYS", "GET"]),
            "ERR wrong number of arguments for 'command|getkeys' command"
        );
        let listed = keys(
            &mut c,
            &["COMMAND", "LIST", "FILTERBY", "PATTERN", "COMMAND|GetKeys*"],
        );
        assert_eq!(listed.len(), 2);
        assert!(keys(&mut c, &["COMMAND", "LIST", "FILTERBY", "MODULE", "m"]).is_empty());
    }
}

#[test]
fn config_rewrite_keeps_the_file_and_changes_what_changed() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("brooklet.conf");
    std::fs::write(
        &path,
        "# Brooklet test config\n\ntimeout 5\n\n# limits\nmaxclients 1000\ntimeout 6\n",
    )
    .expect("write the config file");
    let file = path.display().to_string();
    let server = TestServer::start_with(|c| {
        c.apply_args(&[file]).expect("the config file loads");
    });
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(
            &mut c,
            &["CONFIG", "SET", "timeout", "30", "maxmemory", "2mb"],
        );
        assert_eq!(run(&mut c, &["CONFIG", "REWRITE"]), Value::Okay);
        let text = std::fs::read_to_string(&path).expect("read the config file");
        // The harness's port and data folder differ from the defaults, so they are added.
        assert_eq!(
            text,
            format!(
                "# Brooklet test config\n\ntimeout 30\n\n# limits\nmaxclients 1000\n\n\
                 # Generated by CONFIG REWRITE\nport 0\ndir \"{}\"\nmaxmemory 2mb\n",
                server.dir().display()
            )
        );
    }
    // The rewritten file starts a server with the configuration in force.
    let mut reread = brooklet_server::Config::default();
    reread
        .apply_args(&[path.display().to_string()])
        .expect("the rewritten file loads");
    assert_eq!((reread.timeout, reread.maxmemory), (30, 2 << 20));
    let plain = TestServer::start();
    let mut c = plain.client(false);
    assert_eq!(
        err(&mut c, &["CONFIG", "REWRITE"]),
        "ERR The server is running without a config file"
    );
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` over plain HTTP/1.1; the status line and the body.
fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels as the text format writes them).
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{body}"))
}

#[test]
fn prometheus_endpoint_reports_server_stream_and_group_figures() {
    let port = free_port();
    let server = TestServer::start_with(|c| c.metrics_port = port);
    let mut c2 = server.client(false);
    let mut c3 = server.client(true);
    for i in 0..5 {
        run(
            &mut c2,
            &["XADD", "orders", &format!("{}-1", i + 1), "n", "1"],
        );
    }
    run(&mut c3, &["XGROUP", "CREATE", "orders", "billing", "0"]);
    run(
        &mut c3,
        &[
            "XREADGROUP",
            "GROUP",
            "billing",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "orders",
            ">",
        ],
    );
    assert_eq!(int(&mut c2, &["XACK", "orders", "billing", "1-1"]), 1);
    run(&mut c2, &["SET", "plain", "string"]);
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let g = r#"{db="0",stream="orders",group="billing"}"#;
    assert_eq!(
        sample(&body, r#"brooklet_stream_length{db="0",stream="orders"}"#),
        5.0
    );
    assert_eq!(
        sample(&body, r#"brooklet_stream_groups{db="0",stream="orders"}"#),
        1.0
    );
    assert_eq!(sample(&body, &format!("brooklet_group_lag{g}")), 2.0);
    assert_eq!(sample(&body, &format!("brooklet_group_pending{g}")), 2.0);
    assert_eq!(sample(&body, &format!("brooklet_group_consumers{g}")), 1.0);
    assert_eq!(
        sample(&body, &format!("brooklet_group_entries_delivered_total{g}")),
        3.0
    );
    assert_eq!(
        sample(&body, &format!("brooklet_group_entries_acked_total{g}")),
        1.0
    );
    assert_eq!(
        sample(&body, &format!("brooklet_group_entries_nacked_total{g}")),
        0.0
    );
    assert_eq!(
        sample(
            &body,
            &format!("brooklet_group_entries_dead_lettered_total{g}")
        ),
        0.0
    );
    assert!(
        sample(
            &body,
            &format!("brooklet_group_oldest_pending_idle_seconds{g}")
        ) >= 0.0
    );
    assert_eq!(sample(&body, r#"brooklet_db_keys{db="0"}"#), 2.0);
    assert!(sample(&body, "brooklet_connected_clients") >= 2.0);
    assert!(sample(&body, "brooklet_commands_processed_total") >= 8.0);
    assert!(sample(&body, "brooklet_memory_used_bytes") > 0.0);
    assert!(sample(&body, "brooklet_tail_log_bytes") >= 0.0);
    assert!(body.contains("# TYPE brooklet_group_lag gauge"));
    assert!(body.contains("# TYPE brooklet_commands_processed_total counter"));
    assert!(!body.contains("stream=\"plain\""));
    assert_eq!(
        sample(
            &body,
            r#"brooklet_client_pause_remaining_milliseconds{actions="none"}"#
        ),
        0.0
    );
    run(&mut c3, &["CLIENT", "PAUSE", "60000", "WRITE"]);
    let (_, paused) = http_get(port, "/metrics");
    assert!(
        sample(
            &paused,
            r#"brooklet_client_pause_remaining_milliseconds{actions="write"}"#
        ) > 0.0
    );
    run(&mut c3, &["CLIENT", "UNPAUSE"]);
    let (status, _) = http_get(port, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let shown = map_of(run(&mut c2, &["CONFIG", "GET", "metrics-port"]));
    assert_eq!(shown[0].0, "metrics-port");
    assert_eq!(text_of(shown[0].1.clone()), port.to_string());
}
