//! End-to-end tests of what operators use: MONITOR (with the `redis` crate in RESP2 and
//! RESP3, a raw socket for exact bytes, and redis-cli), SLOWLOG, LATENCY, INFO latencystats
//! and the sampled INFO figures, and their CONFIG settings.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::{TestServer, err, info_field, int, run};
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;

/// The next MONITOR line a `redis` crate connection receives, past the CLIENT SETINFO
/// the crate sends as it connects.
fn next_line(mon: &mut redis::Connection) -> String {
    loop {
        match mon.recv_response().unwrap() {
            Value::SimpleString(s) if s.contains("] \"CLIENT\" \"SETINFO\"") => {}
            Value::SimpleString(s) => return s,
            other => panic!("not a monitor line: {other:?}"),
        }
    }
}

/// A line without its timestamp: `[db addr] "arg" ...`.
fn body(line: &str) -> &str {
    let (stamp, rest) = line.split_once(' ').unwrap();
    let (secs, micros) = stamp.split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000, "{line}");
    assert_eq!(micros.len(), 6, "{line}");
    assert!(micros.bytes().all(|b| b.is_ascii_digit()), "{line}");
    rest
}

#[test]
fn monitor_shows_commands_as_redis_does_in_resp2_and_resp3() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut mon = server.client(resp3);
        mon.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let ok: String = cmd("MONITOR").query(&mut mon).unwrap();
        assert_eq!(ok, "OK");
        let mut c = server.client(false);
        run(&mut c, &["SET", "k", "a\"b\n\x01 c"]);
        run(&mut c, &["SELECT", "2"]);
        let _ = err(&mut c, &["AUTH", "secret"]);
        run(&mut c, &["CONFIG", "GET", "port"]);
        run(&mut c, &["PING"]);
        let set = next_line(&mut mon);
        let rest = body(&set);
        assert!(rest.starts_with("[0 127.0.0.1:"), "{set}");
        assert!(rest.ends_with(r#"] "SET" "k" "a\"b\n\x01 c""#), "{set}");
        let select = next_line(&mut mon);
        assert!(body(&select).starts_with("[2 "), "{select}");
        assert!(body(&select).ends_with(r#"] "SELECT" "2""#), "{select}");
        let auth = next_line(&mut mon);
        assert!(body(&auth).ends_with(r#"] "AUTH" "(redacted)""#), "{auth}");
        // CONFIG is administrative: not shown.
        let ping = next_line(&mut mon);
        assert!(body(&ping).ends_with(r#"] "PING""#), "{ping}");
    }
}

#[test]
fn monitor_lines_are_exact_bytes() {
    let server = TestServer::start();
    let mut mon = server.raw();
    mon.send_cmd(&[b"MONITOR"]);
    assert_eq!(mon.read2(), F2::SimpleString(b"OK".to_vec()));
    let mut c = server.raw();
    c.send_cmd(&[b"set", b"\t\x07\x08\\\"\r\xff", b"v"]);
    assert_eq!(c.read2(), F2::SimpleString(b"OK".to_vec()));
    c.send_cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"pw", b"SETNAME", b"n"]);
    let _ = c.read3();
    let line = mon.read_line2();
    let text = String::from_utf8(line).unwrap();
    assert!(text.starts_with('+'), "{text}");
    assert!(
        text.ends_with(" \"set\" \"\\t\\a\\b\\\\\\\"\\r\\xff\" \"v\"\r\n"),
        "{text:?}"
    );
    let hello = String::from_utf8(mon.read_line2()).unwrap();
    assert!(
        hello.ends_with(
            " \"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"
        ),
        "{hello:?}"
    );
}

#[test]
fn monitor_mode_shows_in_client_list_and_ends_with_reset() {
    let server = TestServer::start();
    let mut mon = server.raw();
    mon.send_cmd(&[b"MONITOR"]);
    assert_eq!(mon.read2(), F2::SimpleString(b"OK".to_vec()));
    let mut c = server.client(false);
    let list = |c: &mut redis::Connection| match run(c, &["CLIENT", "LIST"]) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::VerbatimString { text, .. } => text,
        v => panic!("{v:?}"),
    };
    assert!(list(&mut c).contains("flags=O "), "{}", list(&mut c));
    mon.send_cmd(&[b"RESET"]);
    // The CLIENT LIST above is shown first.
    loop {
        match mon.read2() {
            F2::SimpleString(s) if s == b"RESET" => break,
            F2::SimpleString(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(!list(&mut c).contains("flags=O "));
}

#[test]
fn monitor_refused_in_multi_and_with_arguments() {
    let server = TestServer::start();
    let mut c = server.client(false);
    assert_eq!(
        err(&mut c, &["MONITOR", "x"]),
        "ERR wrong number of arguments for 'monitor' command"
    );
    run(&mut c, &["MULTI"]);
    assert_eq!(
        err(&mut c, &["MONITOR"]),
        "ERR Command not allowed inside a transaction"
    );
}

#[test]
fn a_monitor_that_does_not_read_is_closed_at_the_normal_output_limit() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0",
        ],
    );
    let mut mon = server.raw();
    mon.send_cmd(&[b"MONITOR"]);
    assert_eq!(mon.read2(), F2::SimpleString(b"OK".to_vec()));
    // Never read again: the socket's buffers fill, then the queue passes the limit.
    let value = "x".repeat(256 * 1024);
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&mut c, "stats", "client_output_buffer_limit_disconnections").as_deref()
        == Some("0")
    {
        assert!(Instant::now() < deadline, "the monitor was never closed");
        for _ in 0..16 {
            run(&mut c, &["SET", "k", &value]);
        }
    }
    mon.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(mon.is_closed());
}

#[test]
fn redis_cli_monitor() {
    if !brooklet::redis_cli_available() {
        return;
    }
    let server = TestServer::start();
    let port = server.addr().port().to_string();
    let child = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port, "monitor"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = server.client(false);
    // Until the monitor is in place (redis-cli connects on its own time), keep writing.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "redis-cli never became a monitor"
        );
        let list = match run(&mut c, &["CLIENT", "LIST"]) {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::VerbatimString { text, .. } => text,
            v => panic!("{v:?}"),
        };
        if list.contains("flags=O ") {
            break;
        }
        std::thread::yield_now();
    }
    run(&mut c, &["SET", "greeting", "hello world"]);
    run(&mut c, &["QUIT"]);
    // The monitor's output ends when its connection does.
    let mut closer = server.client(false);
    run(
        &mut closer,
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
    );
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("OK\n"), "{text}");
    assert!(
        text.contains("] \"SET\" \"greeting\" \"hello world\"\n"),
        "{text}"
    );
}

#[test]
fn slowlog_logs_commands_past_the_threshold() {
    let server = TestServer::start();
    let mut c = server.client(false);
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 0);
    run(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    run(&mut c, &["CLIENT", "SETNAME", "app"]);
    let long = "y".repeat(200);
    let mut many = vec!["DEL"];
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    many.extend(keys.iter().map(String::as_str));
    run(&mut c, &many);
    run(&mut c, &["SET", "k", &long]);
    let got = run(&mut c, &["SLOWLOG", "GET", "2"]);
    let Value::Array(entries) = got else {
        panic!("{got:?}")
    };
    assert_eq!(entries.len(), 2);
    let Value::Array(set) = &entries[0] else {
        panic!()
    };
    assert_eq!(set.len(), 6);
    let Value::Array(args) = &set[3] else {
        panic!()
    };
    let mut want = "y".repeat(128);
    want.push_str("... (72 more bytes)");
    assert_eq!(args[2], Value::BulkString(want.into_bytes()));
    assert_eq!(set[5], Value::BulkString(b"app".to_vec()));
    let Value::BulkString(addr) = &set[4] else {
        panic!()
    };
    assert!(addr.starts_with(b"127.0.0.1:"));
    let Value::Array(del) = &entries[1] else {
        panic!()
    };
    let Value::Array(args) = &del[3] else {
        panic!()
    };
    assert_eq!(args.len(), 32);
    assert_eq!(
        args[31],
        Value::BulkString(b"... (10 more arguments)".to_vec())
    );
    // Newest first, ids increasing.
    let id = |e: &Value| match e {
        Value::Array(f) => match f[0] {
            Value::Int(n) => n,
            _ => panic!(),
        },
        _ => panic!(),
    };
    assert!(id(&entries[0]) > id(&entries[1]));
    assert!(int(&mut c, &["SLOWLOG", "LEN"]) >= 3);
    run(&mut c, &["CONFIG", "SET", "slowlog-max-len", "2"]);
    run(&mut c, &["PING"]);
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 2);
    // SLOWLOG RESET is logged itself, after it emptied the log, as in Redis.
    run(&mut c, &["SLOWLOG", "RESET"]);
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 1);
    run(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    run(&mut c, &["SLOWLOG", "RESET"]);
    run(&mut c, &["PING"]);
    assert_eq!(int(&mut c, &["SLOWLOG", "LEN"]), 0);
    assert_eq!(
        err(&mut c, &["SLOWLOG", "GET", "-2"]),
        "ERR count should be greater than or equal to -1"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-2"]),
        "ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - argument must be between -1 and 9223372036854775807 inclusive"
    );
    let Value::Array(help) = run(&mut c, &["SLOWLOG", "HELP"]) else {
        panic!()
    };
    assert!(help.len() > 5);
}

#[test]
fn exec_is_not_logged_but_its_commands_are() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    run(&mut c, &["SLOWLOG", "RESET"]);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["SET", "a", "1"]);
    run(&mut c, &["EXEC"]);
    let Value::Array(entries) = run(&mut c, &["SLOWLOG", "GET", "-1"]) else {
        panic!()
    };
    let names: Vec<Value> = entries
        .iter()
        .map(|e| match e {
            Value::Array(f) => match &f[3] {
                Value::Array(a) => a[0].clone(),
                _ => panic!(),
            },
            _ => panic!(),
        })
        .collect();
    assert!(names.contains(&Value::BulkString(b"SET".to_vec())));
    assert!(!names.contains(&Value::BulkString(b"EXEC".to_vec())));
}

#[test]
fn latency_monitor_records_slow_commands() {
    let server = TestServer::start();
    let mut c = server.client(false);
    assert_eq!(run(&mut c, &["LATENCY", "LATEST"]), Value::Array(vec![]));
    let doctor = run(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(format!("{doctor:?}").contains("latency-monitor-threshold"));
    run(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    // One MSET of many keys takes well over a millisecond.
    let mut mset = vec!["MSET".to_string()];
    for i in 0..5_000 {
        mset.push(format!("key:{i}"));
        mset.push("v".into());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let words: Vec<&str> = mset.iter().map(String::as_str).collect();
        run(&mut c, &words);
        if format!("{:?}", run(&mut c, &["LATENCY", "LATEST"])).contains("\"command\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no latency event was recorded");
    }
    let Value::Array(latest) = run(&mut c, &["LATENCY", "LATEST"]) else {
        panic!()
    };
    // The store's own events (an fsync, a checkpoint) may be there too.
    let event = latest
        .iter()
        .find_map(|e| match e {
            Value::Array(f) if f[0] == Value::BulkString(b"command".to_vec()) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(event.len(), 4);
    let (Value::Int(time), Value::Int(last), Value::Int(max)) = (&event[1], &event[2], &event[3])
    else {
        panic!("{event:?}")
    };
    assert!(*time > 1_600_000_000 && *last >= 1 && max >= last);
    let Value::Array(history) = run(&mut c, &["LATENCY", "HISTORY", "command"]) else {
        panic!()
    };
    assert!(!history.is_empty());
    assert_eq!(
        run(&mut c, &["LATENCY", "HISTORY", "nosuch"]),
        Value::Array(vec![])
    );
    let graph = format!("{:?}", run(&mut c, &["LATENCY", "GRAPH", "command"]));
    assert!(graph.contains("command - high "), "{graph}");
    assert_eq!(
        err(&mut c, &["LATENCY", "GRAPH", "nosuch"]),
        "ERR No samples available for event 'nosuch'"
    );
    let doctor = format!("{:?}", run(&mut c, &["LATENCY", "DOCTOR"]));
    assert!(doctor.contains("command"), "{doctor}");
    assert_eq!(int(&mut c, &["LATENCY", "RESET", "nosuch"]), 0);
    assert_eq!(int(&mut c, &["LATENCY", "RESET", "command", "nosuch"]), 1);
    run(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "0"]);
    run(&mut c, &["LATENCY", "RESET"]);
    assert_eq!(run(&mut c, &["LATENCY", "LATEST"]), Value::Array(vec![]));
}

#[test]
fn latency_histogram_and_info_latencystats() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["SET", "a", "1"]);
        run(&mut c, &["GET", "a"]);
        let h = run(&mut c, &["LATENCY", "HISTOGRAM", "set", "config", "nosuch"]);
        let text = format!("{h:?}");
        assert!(text.contains("\"set\""), "{text}");
        assert!(text.contains("calls"), "{text}");
        assert!(text.contains("histogram_usec"), "{text}");
        let stats = match run(&mut c, &["INFO", "latencystats"]) {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::VerbatimString { text, .. } => text,
            v => panic!("{v:?}"),
        };
        let line = stats
            .lines()
            .find(|l| l.starts_with("latency_percentiles_usec_set:"))
            .unwrap_or_else(|| panic!("{stats}"));
        let values = line.split_once(':').unwrap().1;
        let keys: Vec<&str> = values
            .split(',')
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        assert_eq!(keys, ["p50", "p99", "p99.9"]);
        for kv in values.split(',') {
            let v = kv.split_once('=').unwrap().1;
            assert_eq!(v.split_once('.').unwrap().1.len(), 3, "{line}");
        }
    }
    let mut c = server.client(false);
    // Not in the default INFO.
    let default = format!("{:?}", run(&mut c, &["INFO"]));
    assert!(!default.contains("Latencystats"));
    run(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "50 99.99",
        ],
    );
    let stats = format!("{:?}", run(&mut c, &["INFO", "latencystats"]));
    assert!(stats.contains(",p99.99="), "{stats}");
    assert_eq!(
        err(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "latency-tracking-info-percentiles",
                "50 101"
            ]
        ),
        "ERR CONFIG SET failed (possibly related to argument 'latency-tracking-info-percentiles') - latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
    );
    run(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]);
    run(&mut c, &["CONFIG", "RESETSTAT"]);
    run(&mut c, &["ECHO", "x"]);
    let stats = format!("{:?}", run(&mut c, &["INFO", "latencystats"]));
    assert!(!stats.contains("latency_percentiles_usec_echo"), "{stats}");
}

#[test]
fn info_has_redis_figures_computed_for_real() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let num = |c: &mut redis::Connection, section: &str, field: &str| -> f64 {
        info_field(c, section, field)
            .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
            .trim_end_matches('%')
            .parse()
            .unwrap_or_else(|_| panic!("{field}"))
    };
    let hits = num(&mut c, "stats", "keyspace_hits");
    let misses = num(&mut c, "stats", "keyspace_misses");
    run(&mut c, &["SET", "k", "v"]);
    run(&mut c, &["GET", "k"]);
    run(&mut c, &["GET", "nosuch"]);
    run(&mut c, &["XADD", "s", "*", "f", "v"]);
    run(&mut c, &["XRANGE", "s", "-", "+"]);
    assert_eq!(num(&mut c, "stats", "keyspace_hits"), hits + 2.0);
    assert_eq!(num(&mut c, "stats", "keyspace_misses"), misses + 1.0);
    // The rates are sampled every 100 ms over 16 samples: a burst shows within a few.
    let deadline = Instant::now() + Duration::from_secs(20);
    while num(&mut c, "stats", "instantaneous_ops_per_sec") == 0.0 {
        assert!(
            Instant::now() < deadline,
            "instantaneous_ops_per_sec stayed 0"
        );
        for _ in 0..50 {
            run(&mut c, &["PING"]);
        }
    }
    assert!(num(&mut c, "stats", "instantaneous_input_kbps") >= 0.0);
    assert!(num(&mut c, "stats", "instantaneous_output_kbps") >= 0.0);
    let used = num(&mut c, "memory", "used_memory");
    assert!(num(&mut c, "memory", "used_memory_peak") >= used);
    assert!(num(&mut c, "memory", "used_memory_peak_perc") <= 100.0);
    assert!(num(&mut c, "memory", "total_system_memory") > 0.0);
    assert!(num(&mut c, "memory", "mem_fragmentation_ratio") > 0.0);
    assert!(info_field(&mut c, "memory", "maxmemory_human").is_some());
    assert!(info_field(&mut c, "memory", "total_system_memory_human").is_some());
    assert!(num(&mut c, "cpu", "used_cpu_user_main_thread") >= 0.0);
    assert!(num(&mut c, "cpu", "used_cpu_sys_main_thread") >= 0.0);
    assert!(num(&mut c, "stats", "total_reads_processed") > 0.0);
    assert!(num(&mut c, "stats", "total_writes_processed") > 0.0);
    run(&mut c, &["CONFIG", "RESETSTAT"]);
    assert_eq!(num(&mut c, "stats", "keyspace_hits"), 0.0);
    // As redis-server 7.0 counts it: RESETSTAT itself, the INFO above, then 3 PINGs (an
    // INFO is counted once it has answered).
    for _ in 0..3 {
        run(&mut c, &["PING"]);
    }
    assert_eq!(num(&mut c, "stats", "total_commands_processed"), 5.0);
}

#[test]
fn new_settings_in_config_get() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let got = run(&mut c, &["CONFIG", "GET", "slowlog*"]);
    let text = format!("{got:?}");
    assert!(text.contains("10000") && text.contains("128"), "{text}");
    let got = format!("{:?}", run(&mut c, &["CONFIG", "GET", "latency*"]));
    assert!(got.contains("50 99 99.9"), "{got}");
    assert!(got.contains("latency-monitor-threshold"), "{got}");
}
