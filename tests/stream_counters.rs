//! End-to-end tests of the group counters Brooklet adds to XINFO GROUPS and XINFO STREAM
//! FULL (`entries-delivered`, `entries-acked`, `entries-nacked`, `entries-dead-lettered`):
//! what each command counts, that a refused command counts nothing, and that the totals
//! survive DEBUG RELOAD, a restart and a checkpoint. RESP2 and RESP3.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{
    TestServer, err, map_field as field, map_pairs as pairs, run, value_int as int,
    value_text as text,
};
use brooklet_server::Config;
use redis::Value;

const NAMES: [&str; 4] = [
    "entries-delivered",
    "entries-acked",
    "entries-nacked",
    "entries-dead-lettered",
];

/// The four counters of `group` in XINFO GROUPS, checked equal to XINFO STREAM FULL's.
fn counters(c: &mut redis::Connection, key: &str, group: &str) -> [i64; 4] {
    let Value::Array(groups) = run(c, &["XINFO", "GROUPS", key]) else {
        panic!()
    };
    let g = groups
        .iter()
        .find(|g| text(&field(g, "name")) == group)
        .unwrap();
    let out = NAMES.map(|n| int(&field(g, n)));
    let full = run(c, &["XINFO", "STREAM", key, "FULL"]);
    let Value::Array(groups) = field(&full, "groups") else {
        panic!()
    };
    let g = groups
        .iter()
        .find(|g| text(&field(g, "name")) == group)
        .unwrap();
    assert_eq!(NAMES.map(|n| int(&field(g, n))), out, "FULL disagrees");
    out
}

/// Stream `s` with entries 1-0 ..= n-0 and group `g` from the start.
fn setup(c: &mut redis::Connection, n: u64) {
    let _ = run(c, &["DEL", "s"]);
    for i in 1..=n {
        run(c, &["XADD", "s", &format!("{i}-0"), "f", &format!("v{i}")]);
    }
    run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
}

fn each_protocol(f: impl Fn(&mut redis::Connection)) {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        f(&mut c);
    }
}

#[test]
fn a_new_group_counts_nothing_and_the_fields_follow_redis_own() {
    each_protocol(|c| {
        setup(c, 3);
        assert_eq!(counters(c, "s", "g"), [0, 0, 0, 0]);
        let Value::Array(groups) = run(c, &["XINFO", "GROUPS", "s"]) else {
            panic!()
        };
        let names: Vec<String> = pairs(&groups[0]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "name",
                "consumers",
                "pending",
                "last-delivered-id",
                "entries-read",
                "lag",
                "entries-delivered",
                "entries-acked",
                "entries-nacked",
                "entries-dead-lettered",
                "dlq-key",
                "dlq-max-deliveries"
            ]
        );
        // In XINFO STREAM FULL too they follow every field Redis writes.
        let full = run(c, &["XINFO", "STREAM", "s", "FULL"]);
        let Value::Array(groups) = field(&full, "groups") else {
            panic!()
        };
        let names: Vec<String> = pairs(&groups[0]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names[7], "consumers");
        assert_eq!(names[8..12], NAMES);
        assert_eq!(names[12..], ["dlq-key", "dlq-max-deliveries"]);
    });
}

#[test]
fn every_delivery_path_counts_and_acks_and_nacks_count_once_each() {
    each_protocol(|c| {
        setup(c, 6);
        // 4 new deliveries.
        run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "COUNT",
                "4",
                "STREAMS",
                "s",
                ">",
            ],
        );
        assert_eq!(counters(c, "s", "g"), [4, 0, 0, 0]);
        // History re-read of 2 entries: 2 more.
        run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                "0",
            ],
        );
        assert_eq!(counters(c, "s", "g"), [6, 0, 0, 0]);
        // XCLAIM with its entries counts; JUSTID does not.
        run(c, &["XCLAIM", "s", "g", "c2", "0", "1-0"]);
        run(c, &["XCLAIM", "s", "g", "c2", "0", "2-0", "JUSTID"]);
        assert_eq!(counters(c, "s", "g"), [7, 0, 0, 0]);
        // XAUTOCLAIM: 3-0 and 4-0 (c1's); JUSTID none.
        run(c, &["XAUTOCLAIM", "s", "g", "c3", "0", "3-0", "COUNT", "2"]);
        run(c, &["XAUTOCLAIM", "s", "g", "c3", "0", "0", "JUSTID"]);
        assert_eq!(counters(c, "s", "g"), [9, 0, 0, 0]);
        // XACK counts entries that were pending, a repeat or a stranger not.
        assert_eq!(int(&run(c, &["XACK", "s", "g", "1-0", "1-0", "9-0"])), 1);
        assert_eq!(counters(c, "s", "g"), [9, 1, 0, 0]);
        // XNACK counts each release.
        run(c, &["XNACK", "s", "g", "FAIL", "IDS", "2", "2-0", "3-0"]);
        assert_eq!(counters(c, "s", "g"), [9, 1, 2, 0]);
        // XREADGROUP CLAIM: the 2 released entries and c3's 4-0, then 5-0 and 6-0 as new.
        run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c4",
                "CLAIM",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        );
        assert_eq!(counters(c, "s", "g"), [14, 1, 2, 0]);
        // XACKDEL counts its acknowledgements.
        run(c, &["XACKDEL", "s", "g", "IDS", "2", "2-0", "5-0"]);
        assert_eq!(counters(c, "s", "g"), [14, 3, 2, 0]);
        // NOACK reads are deliveries too.
        run(c, &["XADD", "s", "7-0", "f", "v"]);
        run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "NOACK",
                "STREAMS",
                "s",
                ">",
            ],
        );
        assert_eq!(counters(c, "s", "g"), [15, 3, 2, 0]);
    });
}

#[test]
fn refused_commands_count_nothing() {
    each_protocol(|c| {
        setup(c, 3);
        run(c, &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"]);
        let before = counters(c, "s", "g");
        assert!(err(c, &["XACK", "s", "g", "bad-id"]).starts_with("ERR Invalid stream ID"));
        assert!(err(c, &["XCLAIM", "s", "g", "c", "x", "1-0"]).starts_with("ERR"));
        assert!(err(c, &["XNACK", "s", "g", "NOPE", "IDS", "1", "1-0"]).starts_with("ERR"));
        assert!(
            err(c, &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"])
                .starts_with("NOGROUP")
        );
        assert_eq!(counters(c, "s", "g"), before);
        // Another group's counters are its own.
        run(c, &["XGROUP", "CREATE", "s", "h", "0"]);
        assert_eq!(counters(c, "s", "h"), [0, 0, 0, 0]);
        // Destroying and creating the group again starts from zero.
        run(c, &["XGROUP", "DESTROY", "s", "g"]);
        run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
        assert_eq!(counters(c, "s", "g"), [0, 0, 0, 0]);
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

fn full(c: &mut redis::Connection) -> String {
    format!("{:?}", run(c, &["XINFO", "STREAM", "s", "FULL"]))
}

fn work(c: &mut redis::Connection) {
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(c, &["XACK", "s", "g", "1-0"]);
    run(c, &["XNACK", "s", "g", "FAIL", "IDS", "1", "2-0"]);
    run(c, &["XCLAIM", "s", "g", "c2", "0", "2-0"]);
}

#[test]
fn counters_survive_debug_reload_a_restart_and_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    setup(&mut c, 8);
    work(&mut c);
    assert_eq!(counters(&mut c, "s", "g"), [4, 1, 1, 0]);
    let before = full(&mut c);
    // Logged only, then written into fjall by DEBUG RELOAD's checkpoint.
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(full(&mut c), before, "DEBUG RELOAD changed the state");
    work(&mut c);
    run(&mut c, &["XGROUP", "CREATE", "s", "h", "0"]);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "h", "x", "STREAMS", "s", ">"],
    );
    let before = full(&mut c);
    drop(c);
    server.stop();

    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    assert_eq!(full(&mut c), before, "a restart changed the state");
    let mut c = server.client(true);
    // The second XACK of 1-0 found nothing pending.
    assert_eq!(counters(&mut c, "s", "g"), [8, 1, 2, 0]);
    assert_eq!(counters(&mut c, "s", "h"), [8, 0, 0, 0]);
    run(&mut c, &["SAVE"]);
    run(&mut c, &["XACK", "s", "g", "3-0"]);
    let mut c = server.client(false);
    let before = full(&mut c);
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    assert_eq!(
        full(&mut c),
        before,
        "a restart after SAVE changed the state"
    );
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(full(&mut c), before);
}
