//! End-to-end tests of dead-letter streams (XGROUP SETDLQ, a Brooklet extension): every
//! redelivery path dead-letters an entry that reached MAXDELIVERIES, XNACK FATAL does at
//! once, the dead-letter entry's fields, the keyspace events, XINFO's fields, the error
//! texts, and the state through DEBUG RELOAD and a restart. RESP2 and RESP3.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{TestServer, err, map_field as field, run, value_int as int, value_text as text};
use brooklet_server::Config;
use redis::Value;

/// The entries of stream `key` as (id, field/value strings).
fn entries(c: &mut redis::Connection, key: &str) -> Vec<(String, Vec<String>)> {
    let Value::Array(rows) = run(c, &["XRANGE", key, "-", "+"]) else {
        panic!()
    };
    rows.iter()
        .map(|r| {
            let Value::Array(r) = r else { panic!() };
            let Value::Array(f) = &r[1] else { panic!() };
            (text(&r[0]), f.iter().map(text).collect())
        })
        .collect()
}

/// The dead-letter entries' fields of `key` as maps by name.
fn dead(c: &mut redis::Connection, key: &str) -> Vec<Vec<String>> {
    entries(c, key).into_iter().map(|(_, f)| f).collect()
}

fn pending_ids(c: &mut redis::Connection, key: &str, group: &str) -> Vec<String> {
    let Value::Array(rows) = run(c, &["XPENDING", key, group, "-", "+", "100"]) else {
        panic!()
    };
    rows.iter()
        .map(|r| {
            let Value::Array(r) = r else { panic!() };
            text(&r[0])
        })
        .collect()
}

/// How many entries an XREADGROUP reply of one stream holds, whichever protocol.
fn served(v: &Value) -> usize {
    let entries = match v {
        Value::Map(m) => m[0].1.clone(),
        Value::Array(a) => {
            let Value::Array(kv) = &a[0] else { panic!() };
            kv[1].clone()
        }
        other => panic!("{other:?}"),
    };
    let Value::Array(e) = entries else { panic!() };
    e.len()
}

fn group_info(c: &mut redis::Connection, key: &str) -> Value {
    let Value::Array(groups) = run(c, &["XINFO", "GROUPS", key]) else {
        panic!()
    };
    groups[0].clone()
}

/// Stream `s` with entries 1-0 ..= n-0 (field `f`, value `v<i>`), group `g` read by `c1`
/// once, and a dead-letter stream `dead` after `max` deliveries.
fn setup(c: &mut redis::Connection, n: u64, max: u64) {
    let _ = run(c, &["DEL", "s", "dead"]);
    for i in 1..=n {
        run(c, &["XADD", "s", &format!("{i}-0"), "f", &format!("v{i}")]);
    }
    run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
    assert_eq!(
        text(&run(
            c,
            &[
                "XGROUP",
                "SETDLQ",
                "s",
                "g",
                "dead",
                "MAXDELIVERIES",
                &max.to_string()
            ]
        )),
        "OK"
    );
    run(c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"]);
}

fn each_protocol(f: impl Fn(&mut redis::Connection)) {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        f(&mut c);
    }
}

fn expected(id: &str, value: Option<&str>, consumer: &str, n: u64, reason: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = value {
        out.extend(["f".to_string(), v.to_string()]);
    }
    for (k, v) in [
        ("dlq-stream", "s".to_string()),
        ("dlq-id", id.to_string()),
        ("dlq-group", "g".to_string()),
        ("dlq-consumer", consumer.to_string()),
        ("dlq-deliveries", n.to_string()),
        ("dlq-reason", reason.to_string()),
    ] {
        out.push(k.into());
        out.push(v);
    }
    out
}

#[test]
fn xclaim_dead_letters_past_the_limit_and_leaves_it_out_of_its_reply() {
    each_protocol(|c| {
        setup(c, 2, 2);
        // Second delivery: claimed normally.
        let Value::Array(got) = run(c, &["XCLAIM", "s", "g", "c2", "0", "1-0"]) else {
            panic!()
        };
        assert_eq!(got.len(), 1);
        // Third would exceed 2: dead-lettered, not in the reply.
        let Value::Array(got) = run(c, &["XCLAIM", "s", "g", "c3", "0", "1-0", "2-0"]) else {
            panic!()
        };
        assert_eq!(got.len(), 1, "only 2-0 is claimed");
        assert_eq!(
            dead(c, "dead"),
            [expected("1-0", Some("v1"), "c2", 2, "maxdeliveries")]
        );
        assert_eq!(pending_ids(c, "s", "g"), ["2-0"]);
        let g = group_info(c, "s");
        assert_eq!(int(&field(&g, "entries-dead-lettered")), 1);
        assert_eq!(text(&field(&g, "dlq-key")), "dead");
        assert_eq!(int(&field(&g, "dlq-max-deliveries")), 2);
        // The dead-letter stream is an ordinary stream.
        run(c, &["XGROUP", "CREATE", "dead", "ops", "0"]);
        let r = run(
            c,
            &["XREADGROUP", "GROUP", "ops", "o", "STREAMS", "dead", ">"],
        );
        assert_eq!(served(&r), 1);
    });
}

#[test]
fn xautoclaim_xreadgroup_claim_and_history_dead_letter_too() {
    each_protocol(|c| {
        // XAUTOCLAIM: MAXDELIVERIES 1, so every redelivery dead-letters.
        setup(c, 3, 1);
        let got = run(c, &["XAUTOCLAIM", "s", "g", "c2", "0", "0"]);
        let Value::Array(parts) = got else { panic!() };
        let Value::Array(claimed) = &parts[1] else {
            panic!()
        };
        assert!(claimed.is_empty());
        let Value::Array(deleted) = &parts[2] else {
            panic!()
        };
        assert!(deleted.is_empty());
        assert_eq!(dead(c, "dead").len(), 3);
        assert!(pending_ids(c, "s", "g").is_empty());

        // XREADGROUP CLAIM.
        setup(c, 2, 1);
        run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c2",
                "CLAIM",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        );
        assert_eq!(dead(c, "dead").len(), 2);
        assert!(pending_ids(c, "s", "g").is_empty());

        // History re-read by its owner.
        setup(c, 2, 2);
        let r = run(c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"]);
        assert_eq!(served(&r), 2, "second deliveries are served");
        let r = run(c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"]);
        assert_eq!(served(&r), 0, "third deliveries are dead-lettered");
        assert_eq!(
            dead(c, "dead"),
            [
                expected("1-0", Some("v1"), "c1", 2, "maxdeliveries"),
                expected("2-0", Some("v2"), "c1", 2, "maxdeliveries")
            ]
        );
        let g = group_info(c, "s");
        assert_eq!(int(&field(&g, "entries-dead-lettered")), 2);
        assert_eq!(int(&field(&g, "entries-delivered")), 4);
    });
}

#[test]
fn xnack_fatal_dead_letters_at_once_even_a_deleted_entry() {
    each_protocol(|c| {
        setup(c, 3, 10);
        run(c, &["XDEL", "s", "2-0"]);
        assert_eq!(
            int(&run(
                c,
                &["XNACK", "s", "g", "FATAL", "IDS", "2", "1-0", "2-0"]
            )),
            2
        );
        assert_eq!(
            dead(c, "dead"),
            [
                expected("1-0", Some("v1"), "c1", 1, "fatal"),
                expected("2-0", None, "c1", 1, "fatal")
            ]
        );
        assert_eq!(pending_ids(c, "s", "g"), ["3-0"]);
        // FAIL only releases.
        run(c, &["XNACK", "s", "g", "FAIL", "IDS", "1", "3-0"]);
        assert_eq!(pending_ids(c, "s", "g"), ["3-0"]);
        // Without a dead-letter stream FATAL releases as Redis's does.
        run(c, &["XGROUP", "SETDLQ", "s", "g", "NONE"]);
        let g = group_info(c, "s");
        assert_eq!(field(&g, "dlq-key"), Value::Nil);
        run(c, &["XNACK", "s", "g", "FATAL", "IDS", "1", "3-0"]);
        assert_eq!(pending_ids(c, "s", "g"), ["3-0"]);
        assert_eq!(dead(c, "dead").len(), 2);
    });
}

#[test]
fn setdlq_errors_change_nothing() {
    each_protocol(|c| {
        setup(c, 1, 3);
        let before = format!("{:?}", run(c, &["XINFO", "STREAM", "s", "FULL"]));
        assert!(
            err(c, &["XGROUP", "SETDLQ", "nokey", "g", "NONE"])
                .starts_with("ERR The XGROUP subcommand requires the key to exist")
        );
        assert_eq!(
            err(
                c,
                &["XGROUP", "SETDLQ", "s", "nog", "dead", "MAXDELIVERIES", "1"]
            ),
            "NOGROUP No such consumer group 'nog' for key name 's'"
        );
        assert_eq!(
            err(
                c,
                &["XGROUP", "SETDLQ", "s", "g", "dead", "MAXDELIVERIES", "0"]
            ),
            "ERR MAXDELIVERIES must be > 0"
        );
        assert_eq!(
            err(
                c,
                &["XGROUP", "SETDLQ", "s", "g", "s", "MAXDELIVERIES", "2"]
            ),
            "ERR The dead-letter key must be another key than the stream"
        );
        assert_eq!(
            err(c, &["XGROUP", "SETDLQ", "s", "g", "dead", "LIMIT", "2"]),
            "ERR syntax error"
        );
        assert_eq!(
            format!("{:?}", run(c, &["XINFO", "STREAM", "s", "FULL"])),
            before
        );
    });
}

#[test]
fn keyspace_events_name_both_keys() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = server.client(false);
    let mut pubsub = sub.as_pubsub();
    pubsub.psubscribe("__keyspace@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    setup(&mut c, 1, 1);
    run(&mut c, &["XCLAIM", "s", "g", "c2", "0", "1-0"]);
    run(&mut c, &["PING"]);
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let msg = pubsub.get_message().unwrap();
        let channel = msg.get_channel_name().to_string();
        let event: String = msg.get_payload().unwrap();
        seen.push((channel, event.clone()));
        if event == "xadd" && seen.iter().any(|(_, e)| e == "xdeadletter") {
            break;
        }
    }
    let i = seen
        .iter()
        .position(|(ch, e)| ch == "__keyspace@0__:s" && e == "xdeadletter")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(
        seen[i..]
            .iter()
            .any(|(ch, e)| ch == "__keyspace@0__:dead" && e == "xadd"),
        "{seen:?}"
    );
}

#[test]
fn a_dead_letter_stream_that_cannot_take_an_id_suspends_dead_lettering() {
    each_protocol(|c| {
        setup(c, 2, 1);
        let max = "18446744073709551615-18446744073709551615";
        run(c, &["XADD", "dead", max, "x", "y"]);
        // Delivered as without a dead-letter stream; nothing lost.
        let Value::Array(got) = run(c, &["XCLAIM", "s", "g", "c2", "0", "1-0"]) else {
            panic!()
        };
        assert_eq!(got.len(), 1);
        assert_eq!(pending_ids(c, "s", "g"), ["1-0", "2-0"]);
        assert_eq!(int(&run(c, &["XLEN", "dead"])), 1);
        // Other writes to the source go on.
        run(c, &["XADD", "s", "9-0", "f", "v9"]);
        // Once the dead-letter stream can take entries again, dead-lettering resumes.
        run(c, &["DEL", "dead"]);
        run(c, &["XCLAIM", "s", "g", "c2", "0", "1-0"]);
        assert_eq!(pending_ids(c, "s", "g"), ["2-0"]);
        assert_eq!(entries(c, "dead").len(), 1);
    });
}

fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.enable_debug_command = "yes".into();
        c.stream_node_max_entries = 3;
    }
}

fn snapshot(c: &mut redis::Connection) -> Vec<String> {
    ["s", "dead"]
        .iter()
        .map(|k| format!("{:?}", run(c, &["XINFO", "STREAM", k, "FULL"])))
        .collect()
}

#[test]
fn dead_letters_survive_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    setup(&mut c, 6, 1);
    run(&mut c, &["XCLAIM", "s", "g", "c2", "0", "1-0", "2-0"]);
    let before = snapshot(&mut c);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD changed the state");
    run(
        &mut c,
        &["XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "2"],
    );
    run(&mut c, &["XNACK", "s", "g", "FATAL", "IDS", "1", "5-0"]);
    let before = snapshot(&mut c);
    assert_eq!(dead(&mut c, "dead").len(), 5);
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    assert_eq!(snapshot(&mut c), before, "a restart changed the state");
    let g = group_info(&mut c, "s");
    assert_eq!(text(&field(&g, "dlq-key")), "dead");
    assert_eq!(int(&field(&g, "entries-dead-lettered")), 5);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(snapshot(&mut c), before);
}
