//! End-to-end tests of XNACK (Redis 8.8): released entries lose their owner and wait in the
//! group's NACK zone, in release order, until a claim hands them out again; what XPENDING
//! and XINFO show of them; Redis's error texts; and the zone kept through DEBUG RELOAD and
//! a restart. RESP2 and RESP3.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use brooklet::{
    TestServer, blocked_clients, err, map_field as field, now_ms, run, value_int as int,
    value_text as text,
};
use brooklet_server::Config;
use redis::Value;
use redis_protocol::resp2::types::OwnedFrame as F2;

const WAIT: Duration = Duration::from_secs(5);
const MAX: i64 = i64::MAX;

/// XPENDING's extended rows as `(id, consumer, idle, deliveries)`, idle kept only when it
/// is -1 (a NACKed entry) and otherwise reported as 0.
fn pel(c: &mut redis::Connection, key: &str, group: &str) -> Vec<(String, String, i64, i64)> {
    let Value::Array(rows) = run(c, &["XPENDING", key, group, "-", "+", "1000"]) else {
        panic!()
    };
    rows.into_iter()
        .map(|row| {
            let Value::Array(r) = row else { panic!() };
            let idle = int(&r[2]);
            assert!(idle >= -1, "{idle}");
            (text(&r[0]), text(&r[1]), idle.min(0), int(&r[3]))
        })
        .collect()
}

fn row(id: &str, consumer: &str, nacked: bool, n: i64) -> (String, String, i64, i64) {
    (id.into(), consumer.into(), if nacked { -1 } else { 0 }, n)
}

fn nack(c: &mut redis::Connection, args: &[&str]) -> i64 {
    let mut full = vec!["XNACK"];
    full.extend_from_slice(args);
    int(&run(c, &full))
}

/// Stream `key` with entries `1-0` ..= `<n>-0`, group `g` from the start, all read by `c1`.
fn setup(c: &mut redis::Connection, key: &str, n: u64) {
    let _ = run(c, &["DEL", key]);
    for i in 1..=n {
        run(c, &["XADD", key, &format!("{i}-0"), "f", &format!("v{i}")]);
    }
    run(c, &["XGROUP", "CREATE", key, "g", "0"]);
    run(c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", key, ">"]);
}

fn full_group(c: &mut redis::Connection, key: &str, i: usize) -> Value {
    let info = run(c, &["XINFO", "STREAM", key, "FULL"]);
    let Value::Array(groups) = field(&info, "groups") else {
        panic!()
    };
    groups[i].clone()
}

/// The IDs a one-stream `XREADGROUP ... CLAIM` reply served, with the idle times it gave.
fn claimed(v: Value) -> Vec<(String, i64, i64)> {
    let body = match v {
        Value::Nil => return Vec::new(),
        Value::Map(mut pairs) => pairs.pop().unwrap().1,
        Value::Array(mut items) => match items.pop().unwrap() {
            Value::Array(mut kv) => kv.pop().unwrap(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let Value::Array(list) = body else { panic!() };
    list.into_iter()
        .map(|e| {
            let Value::Array(e) = e else { panic!() };
            (text(&e[0]), int(&e[2]), int(&e[3]))
        })
        .collect()
}

fn claim_one(c: &mut redis::Connection, key: &str, consumer: &str) -> Vec<(String, i64, i64)> {
    claimed(run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            consumer,
            "COUNT",
            "1",
            "CLAIM",
            "0",
            "STREAMS",
            key,
            ">",
        ],
    ))
}

#[test]
fn modes_release_entries_and_xpending_shows_them_unowned() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        setup(&mut c, "s", 4);
        assert_eq!(nack(&mut c, &["s", "g", "FAIL", "IDS", "1", "1-0"]), 1);
        assert_eq!(nack(&mut c, &["s", "g", "fatal", "IDS", "1", "3-0"]), 1);
        assert_eq!(nack(&mut c, &["s", "g", "SILENT", "IDS", "1", "4-0"]), 1);
        assert_eq!(
            pel(&mut c, "s", "g"),
            vec![
                row("1-0", "", true, 1),
                row("2-0", "c1", false, 1),
                row("3-0", "", true, MAX),
                row("4-0", "", true, 0),
            ],
            "resp3={resp3}"
        );
        // IDLE keeps NACKed entries; a consumer's view has only its own.
        let Value::Array(idle) = run(
            &mut c,
            &["XPENDING", "s", "g", "IDLE", "99999999", "-", "+", "10"],
        ) else {
            panic!()
        };
        assert_eq!(idle.len(), 3, "resp3={resp3}");
        let Value::Array(mine) = run(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "c1"]) else {
            panic!()
        };
        assert_eq!(mine.len(), 1);
        // The summary counts them but names no owner for them.
        let Value::Array(summary) = run(&mut c, &["XPENDING", "s", "g"]) else {
            panic!()
        };
        assert_eq!(int(&summary[0]), 4);
        assert_eq!(
            (text(&summary[1]), text(&summary[2])),
            ("1-0".into(), "4-0".into())
        );
        let Value::Array(owners) = &summary[3] else {
            panic!()
        };
        assert_eq!(owners.len(), 1);
        // XINFO: the consumer keeps existing with fewer pending; FULL counts the zone and
        // shows delivery time 0 and no consumer.
        let Value::Array(consumers) = run(&mut c, &["XINFO", "CONSUMERS", "s", "g"]) else {
            panic!()
        };
        assert_eq!(int(&field(&consumers[0], "pending")), 1);
        let g = full_group(&mut c, "s", 0);
        assert_eq!(int(&field(&g, "pel-count")), 4);
        assert_eq!(int(&field(&g, "nacked-count")), 3);
        let Value::Array(rows) = field(&g, "pending") else {
            panic!()
        };
        let Value::Array(first) = &rows[0] else {
            panic!()
        };
        assert_eq!(
            (
                text(&first[0]),
                text(&first[1]),
                int(&first[2]),
                int(&first[3])
            ),
            ("1-0".into(), String::new(), 0, 1)
        );
        // Field order as Redis writes it: pel-count, nacked-count, pending (Brooklet's
        // counters follow Redis's fields).
        let names: Vec<String> = match &g {
            Value::Map(m) => m.iter().map(|(k, _)| text(k)).collect(),
            Value::Array(a) => a.iter().step_by(2).map(text).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            names[..8],
            [
                "name",
                "last-delivered-id",
                "entries-read",
                "lag",
                "pel-count",
                "nacked-count",
                "pending",
                "consumers"
            ]
        );
        let Value::Array(groups) = run(&mut c, &["XINFO", "GROUPS", "s"]) else {
            panic!()
        };
        assert_eq!(int(&field(&groups[0], "pending")), 4);
        assert_eq!(int(&field(&groups[0], "consumers")), 1);
    }
}

#[test]
fn only_claims_hand_nacked_entries_out_again_zone_first_in_release_order() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        setup(&mut c, "s", 4);
        assert_eq!(
            nack(&mut c, &["s", "g", "FAIL", "IDS", "3", "1-0", "2-0", "3-0"]),
            3
        );
        // Released again: to the back of the zone.
        assert_eq!(nack(&mut c, &["s", "g", "FAIL", "IDS", "1", "1-0"]), 1);
        // A history read of the former owner does not see them; a new read has nothing.
        let hist = run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"],
        );
        assert!(format!("{hist:?}").contains("4-0") && !format!("{hist:?}").contains("2-0"));
        assert_eq!(
            run(
                &mut c,
                &["XREADGROUP", "GROUP", "g", "c9", "STREAMS", "s", ">"]
            ),
            Value::Nil
        );
        // XREADGROUP CLAIM: the zone in release order, each idle since time 0, then the
        // longest idle owned entry (older by a few ms than the claims about to be made).
        thread::sleep(Duration::from_millis(3));
        let before = now_ms();
        let mut order = Vec::new();
        for _ in 0..4 {
            let got = claim_one(&mut c, "s", "c2");
            assert_eq!(got.len(), 1, "resp3={resp3}");
            order.push(got[0].clone());
        }
        let ids: Vec<&str> = order.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, ["2-0", "3-0", "1-0", "4-0"], "resp3={resp3}");
        for (id, idle, prior) in &order[..3] {
            assert!(*idle >= before, "{id}: idle {idle} is not since time 0");
            assert_eq!(*prior, 1, "{id}");
        }
        assert_eq!(
            pel(&mut c, "s", "g"),
            vec![
                row("1-0", "c2", false, 2),
                row("2-0", "c2", false, 2),
                row("3-0", "c2", false, 2),
                // Delivered by the read, again by the history read, then claimed.
                row("4-0", "c2", false, 3),
            ]
        );
        // XCLAIM and XAUTOCLAIM take NACKed entries whatever their min-idle-time.
        nack(&mut c, &["s", "g", "FATAL", "IDS", "2", "1-0", "2-0"]);
        let Value::Array(got) = run(
            &mut c,
            &["XCLAIM", "s", "g", "c3", "99999999", "1-0", "3-0"],
        ) else {
            panic!()
        };
        assert_eq!(got.len(), 1, "only the NACKed 1-0");
        let Value::Array(auto) = run(&mut c, &["XAUTOCLAIM", "s", "g", "c4", "99999999", "0"])
        else {
            panic!()
        };
        let Value::Array(list) = &auto[1] else {
            panic!()
        };
        assert_eq!(list.len(), 1, "only the NACKed 2-0: {auto:?}");
        // A delivery count at LLONG_MAX stays there.
        assert_eq!(
            pel(&mut c, "s", "g")[..2],
            [row("1-0", "c3", false, MAX), row("2-0", "c4", false, MAX)]
        );
        assert_eq!(int(&field(&full_group(&mut c, "s", 0), "nacked-count")), 0);
    }
}

#[test]
fn force_retrycount_duplicates_and_skipped_ids() {
    let server = TestServer::start();
    let mut c = server.client(false);
    setup(&mut c, "s", 3);
    run(&mut c, &["XGROUP", "CREATE", "s", "g2", "0"]);
    // FORCE: unowned entries for existing IDs only, count 0 (or RETRYCOUNT, or FATAL's).
    assert_eq!(
        nack(
            &mut c,
            &["s", "g2", "FAIL", "IDS", "2", "1-0", "9-9", "FORCE"]
        ),
        1
    );
    assert_eq!(
        nack(
            &mut c,
            &[
                "s",
                "g2",
                "SILENT",
                "RETRYCOUNT",
                "33",
                "FORCE",
                "IDS",
                "1",
                "2-0"
            ]
        ),
        1
    );
    assert_eq!(
        nack(&mut c, &["s", "g2", "FATAL", "IDS", "1", "3-0", "FORCE"]),
        1
    );
    assert_eq!(
        pel(&mut c, "s", "g2"),
        vec![
            row("1-0", "", true, 0),
            row("2-0", "", true, 33),
            row("3-0", "", true, MAX)
        ]
    );
    // Without FORCE, IDs not pending are skipped; a duplicate counts twice.
    assert_eq!(
        nack(&mut c, &["s", "g", "FAIL", "IDS", "3", "1-0", "1-0", "9-9"]),
        2
    );
    assert_eq!(
        nack(&mut c, &["s", "g", "SILENT", "IDS", "2", "2-0", "2-0"]),
        2
    );
    assert_eq!(pel(&mut c, "s", "g")[1], row("2-0", "", true, 0));
    // XACK of a NACKed entry removes it; an empty PEL releases nothing.
    assert_eq!(
        int(&run(&mut c, &["XACK", "s", "g", "1-0", "2-0", "3-0"])),
        3
    );
    assert_eq!(nack(&mut c, &["s", "g", "FAIL", "IDS", "1", "1-0"]), 0);
    // DELCONSUMER leaves NACKed entries; the group's destruction takes them.
    let _ = run(&mut c, &["XCLAIM", "s", "g2", "c5", "0", "1-0"]);
    assert_eq!(
        int(&run(&mut c, &["XGROUP", "DELCONSUMER", "s", "g2", "c5"])),
        1
    );
    assert_eq!(pel(&mut c, "s", "g2").len(), 2);
    // XDEL leaves a NACKed entry pending; XCLAIM then drops it.
    run(&mut c, &["XDEL", "s", "2-0"]);
    assert_eq!(pel(&mut c, "s", "g2").len(), 2);
    let Value::Array(got) = run(&mut c, &["XCLAIM", "s", "g2", "c6", "0", "2-0"]) else {
        panic!()
    };
    assert!(got.is_empty());
    assert_eq!(pel(&mut c, "s", "g2"), vec![row("3-0", "", true, MAX)]);
}

#[test]
fn errors_are_redis_texts_and_change_nothing() {
    let server = TestServer::start();
    let mut c = server.client(false);
    setup(&mut c, "s", 2);
    let before = (
        pel(&mut c, "s", "g"),
        run(&mut c, &["XINFO", "STREAM", "s", "FULL"]),
    );
    let arity = "ERR wrong number of arguments for 'xnack' command";
    for args in [
        &["XNACK"][..],
        &["XNACK", "s", "g", "FAIL", "IDS", "1"],
        &["XNACK", "s", "g", "FAIL", "RETRYCOUNT"],
    ] {
        assert_eq!(err(&mut c, args), arity);
    }
    let e = |c: &mut redis::Connection, rest: &str| {
        let mut args = vec!["XNACK"];
        args.extend(rest.split(' '));
        err(c, &args)
    };
    // The key and group come first, before any argument is read.
    assert_eq!(
        e(&mut c, "nokey g BADMODE IDS 1 1-0"),
        "NOGROUP No such key 'nokey' or consumer group 'g'"
    );
    assert_eq!(
        e(&mut c, "s nogroup FAIL IDS 1 bad"),
        "NOGROUP No such key 's' or consumer group 'nogroup'"
    );
    // Redis sends several of these with ERR twice.
    for (args, want) in [
        (
            "s g BADMODE IDS 1 1-0",
            "ERR ERR mode must be SILENT, FAIL, or FATAL",
        ),
        (
            "s g FAIL FATAL IDS 1 1-0",
            "ERR ERR Unrecognized XNACK option 'FATAL'",
        ),
        (
            "s g FAIL IDS 1 1-0 BADOPT",
            "ERR ERR Unrecognized XNACK option 'BADOPT'",
        ),
        (
            "s g FAIL IDS 1 1-0 2-0",
            "ERR ERR Unrecognized XNACK option '2-0'",
        ),
        (
            "s g FAIL IDS 1 1-0 RETRYCOUNT",
            "ERR ERR Unrecognized XNACK option 'RETRYCOUNT'",
        ),
        (
            "s g SILENT FORCE RETRYCOUNT 5",
            "ERR ERR syntax error, expected IDS keyword",
        ),
        (
            "s g SILENT IDS 0 1-0",
            "ERR numids must be a positive integer",
        ),
        (
            "s g SILENT IDS abc 1-0",
            "ERR numids must be a positive integer",
        ),
        (
            "s g SILENT IDS 2 1-0",
            "ERR ERR number of IDs doesn't match numids",
        ),
        (
            "s g FAIL IDS 1 not-an-id",
            "ERR Invalid stream ID specified as stream command argument",
        ),
        (
            "s g FAIL IDS 1 1-0 RETRYCOUNT abc",
            "ERR value is not an integer or out of range",
        ),
        (
            "s g FAIL IDS 1 1-0 RETRYCOUNT -1",
            "ERR ERR Invalid RETRYCOUNT value, must be >= 0",
        ),
        // An invalid ID after a valid one: nothing is released.
        (
            "s g FAIL IDS 2 1-0 bad",
            "ERR Invalid stream ID specified as stream command argument",
        ),
    ] {
        assert_eq!(e(&mut c, args), want, "{args}");
    }
    let after = (
        pel(&mut c, "s", "g"),
        run(&mut c, &["XINFO", "STREAM", "s", "FULL"]),
    );
    assert_eq!(after, before);
    let Value::BulkString(stats) = run(&mut c, &["INFO", "commandstats"]) else {
        panic!()
    };
    let stats = String::from_utf8(stats).unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_xnack:"))
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        line.contains("calls=15,") && line.contains("failed_calls=15"),
        "{line}"
    );
    assert!(line.contains("rejected_calls=3"), "{line}");
    let Value::BulkString(errs) = run(&mut c, &["INFO", "errorstats"]) else {
        panic!()
    };
    let errs = String::from_utf8(errs).unwrap();
    assert!(errs.contains("errorstat_NOGROUP:count=2"), "{errs}");
    assert!(errs.contains("errorstat_ERR:count=16"), "{errs}");
}

#[test]
fn command_info_and_docs_describe_xnack() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let Value::Array(info) = run(&mut c, &["COMMAND", "INFO", "xnack"]) else {
        panic!()
    };
    let Value::Array(ref fields) = info[0] else {
        panic!("{info:?}")
    };
    assert_eq!(text(&fields[0]), "xnack");
    assert_eq!(int(&fields[1]), -7);
    let flags = format!("{:?}", fields[2]);
    assert!(flags.contains("write") && flags.contains("fast"), "{flags}");
    assert_eq!(
        (int(&fields[3]), int(&fields[4]), int(&fields[5])),
        (1, 1, 1)
    );
    let docs = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", "xnack"]));
    for word in [
        "8.8.0",
        "SILENT",
        "FAIL",
        "FATAL",
        "IDS",
        "numids",
        "RETRYCOUNT",
        "FORCE",
    ] {
        assert!(docs.contains(word), "{word} missing from {docs}");
    }
}

#[test]
fn a_blocked_claim_read_is_served_by_a_release_which_leaves_watch_alone() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        setup(&mut c, "s", 2);
        let mut reader = server.client(resp3);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let args = [
                "XREADGROUP",
                "GROUP",
                "g",
                "c2",
                "BLOCK",
                "0",
                "CLAIM",
                "100000",
                "STREAMS",
                "s",
                ">",
            ];
            let _ = tx.send(run(&mut reader, &args));
        });
        let mut admin = server.client(false);
        let deadline = Instant::now() + WAIT;
        while blocked_clients(&mut admin) != 1 {
            assert!(Instant::now() < deadline, "never blocked");
            thread::sleep(Duration::from_millis(5));
        }
        // Nothing released: still blocked.
        assert_eq!(nack(&mut c, &["s", "g", "FAIL", "IDS", "1", "9-0"]), 0);
        assert_eq!(blocked_clients(&mut admin), 1);
        nack(&mut c, &["s", "g", "FAIL", "IDS", "2", "2-0", "1-0"]);
        let got = claimed(rx.recv_timeout(WAIT).unwrap());
        let ids: Vec<&str> = got.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, ["2-0", "1-0"], "resp3={resp3}");
        // Redis does not signal a WATCHed key modified for XNACK.
        let mut w = server.client(false);
        run(&mut w, &["WATCH", "s"]);
        nack(&mut c, &["s", "g", "FAIL", "IDS", "1", "1-0"]);
        run(&mut w, &["MULTI"]);
        run(&mut w, &["PING"]);
        assert_ne!(run(&mut w, &["EXEC"]), Value::Nil, "resp3={resp3}");
    }
}

#[test]
fn xnack_publishes_no_keyspace_event() {
    let server = TestServer::start();
    let mut c = server.client(false);
    run(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    setup(&mut c, "s", 2);
    let mut sub = server.raw();
    sub.send_cmd(&[b"SUBSCRIBE", b"__keyspace@0__:s"]);
    sub.read2();
    nack(&mut c, &["s", "g", "FAIL", "IDS", "2", "1-0", "2-0"]);
    nack(&mut c, &["s", "g", "FAIL", "IDS", "1", "3-0", "FORCE"]);
    run(&mut c, &["XDEL", "s", "1-0"]);
    // The first event the subscriber sees is XDEL's.
    let F2::Array(parts) = sub.read2() else {
        panic!()
    };
    assert_eq!(parts[1], F2::BulkString(b"__keyspace@0__:s".to_vec()));
    assert_eq!(parts[2], F2::BulkString(b"xdel".to_vec()));
}

/// What a reload must keep: the entries, XINFO STREAM FULL, each group's pending rows
/// (without the clock-relative idle times of owned entries) and summary.
fn snapshot(c: &mut redis::Connection) -> Vec<String> {
    let mut out = vec![
        format!("{:?}", run(c, &["XRANGE", "s", "-", "+"])),
        format!("{:?}", run(c, &["XINFO", "STREAM", "s", "FULL"])),
    ];
    for g in ["g", "g2"] {
        out.push(format!("{:?}", pel(c, "s", g)));
        out.push(format!("{:?}", run(c, &["XPENDING", "s", g])));
    }
    out
}

fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.enable_debug_command = "yes".into();
        c.stream_node_max_entries = 3;
    }
}

/// Releases in both groups, some logged only (the tail log), some after a DEBUG RELOAD.
fn build(c: &mut redis::Connection) {
    setup(c, "s", 8);
    run(c, &["XGROUP", "CREATE", "s", "g2", "0"]);
    nack(c, &["s", "g", "FAIL", "IDS", "1", "5-0"]);
    nack(c, &["s", "g", "FATAL", "IDS", "1", "2-0"]);
    nack(
        c,
        &[
            "s",
            "g2",
            "FAIL",
            "RETRYCOUNT",
            "77",
            "IDS",
            "2",
            "7-0",
            "3-0",
            "FORCE",
        ],
    );
}

#[test]
fn the_nack_zone_survives_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    build(&mut c);
    let before = snapshot(&mut c);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD changed the state");
    // More after the reload: a release again moves 5-0 behind 4-0 and 1-0.
    nack(
        &mut c,
        &["s", "g", "SILENT", "IDS", "3", "4-0", "1-0", "5-0"],
    );
    run(&mut c, &["XACK", "s", "g", "2-0"]);
    let before = snapshot(&mut c);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(
        snapshot(&mut c),
        before,
        "second DEBUG RELOAD changed the state"
    );
    drop(c);
    server.stop();

    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    assert_eq!(snapshot(&mut c), before, "a restart changed the state");
    let mut c = server.client(true);
    // The zone's order came back: 4-0, 1-0, 5-0, then g2's 7-0, 3-0.
    let order: Vec<String> = (0..3)
        .map(|_| claim_one(&mut c, "s", "x")[0].0.clone())
        .collect();
    assert_eq!(order, ["4-0", "1-0", "5-0"]);
    let g2: Vec<String> = (0..2)
        .map(|_| {
            claimed(run(
                &mut c,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g2",
                    "y",
                    "COUNT",
                    "1",
                    "CLAIM",
                    "0",
                    "STREAMS",
                    "s",
                    ">",
                ],
            ))[0]
                .0
                .clone()
        })
        .collect();
    assert_eq!(g2, ["7-0", "3-0"]);
}
