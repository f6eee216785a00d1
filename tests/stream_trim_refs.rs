//! End-to-end tests of Redis 8.2's reference policies on trims: XTRIM's and XADD's
//! `KEEPREF | DELREF | ACKED`, in RESP2 and RESP3, their errors, COMMAND DOCS, and their
//! durability across DEBUG RELOAD and a restart.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{TestServer, err, run};
use brooklet_server::Config;
use redis::{Value, cmd};

fn ids(c: &mut redis::Connection, key: &str) -> Vec<u64> {
    let entries: Vec<(String, Vec<(String, String)>)> =
        cmd("XRANGE").arg(key).arg("-").arg("+").query(c).unwrap();
    entries
        .iter()
        .map(|(id, _)| id.split('-').next().unwrap().parse().unwrap())
        .collect()
}

fn pending_ids(c: &mut redis::Connection, key: &str, group: &str) -> Vec<u64> {
    let rows: Vec<(String, String, u64, u64)> = cmd("XPENDING")
        .arg(key)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg("1000")
        .query(c)
        .unwrap();
    rows.iter()
        .map(|(id, ..)| id.split('-').next().unwrap().parse().unwrap())
        .collect()
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(n) => n,
        v => panic!("not an integer: {v:?}"),
    }
}

/// Entries 1..=n (`n-0`), group `g` delivered the first `read` to consumer `c`, which
/// acknowledged `acked`.
fn setup(c: &mut redis::Connection, n: u64, read: u64, acked: &[u64]) {
    run(c, &["DEL", "s"]);
    for i in 1..=n {
        run(c, &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()]);
    }
    run(c, &["XGROUP", "CREATE", "s", "g", "0"]);
    if read > 0 {
        let count = read.to_string();
        run(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                &count,
                "STREAMS",
                "s",
                ">",
            ],
        );
    }
    for a in acked {
        run(c, &["XACK", "s", "g", &format!("{a}-0")]);
    }
}

#[test]
fn trim_policies_as_redis_describes_them() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        // 1, 4, 5 pending; 2, 3 acknowledged; 6..8 never delivered.
        setup(&mut c, 8, 5, &[2, 3]);
        // ACKED skips what the group needs and goes on past it.
        assert_eq!(int(run(&mut c, &["XTRIM", "s", "MAXLEN", "3", "ACKED"])), 2);
        assert_eq!(ids(&mut c, "s"), vec![1, 4, 5, 6, 7, 8]);
        assert_eq!(pending_ids(&mut c, "s", "g"), vec![1, 4, 5]);
        // `~` does not stop DELREF at a node boundary; the references go with the entries.
        assert_eq!(
            int(run(&mut c, &["XTRIM", "s", "DELREF", "MAXLEN", "~", "4"])),
            2
        );
        assert_eq!(ids(&mut c, "s"), vec![5, 6, 7, 8]);
        assert_eq!(pending_ids(&mut c, "s", "g"), vec![5]);
        // XADD's trim: nothing delivered past 5, so ACKED takes nothing.
        run(
            &mut c,
            &["XADD", "s", "ACKED", "MAXLEN", "1", "9-0", "f", "v"],
        );
        assert_eq!(ids(&mut c, "s"), vec![5, 6, 7, 8, 9]);
        // KEEPREF (the default) leaves the reference to a trimmed entry.
        run(
            &mut c,
            &["XADD", "s", "MINID", "7", "KEEPREF", "10-0", "f", "v"],
        );
        assert_eq!(ids(&mut c, "s"), vec![7, 8, 9, 10]);
        assert_eq!(pending_ids(&mut c, "s", "g"), vec![5]);
        // A policy without a trim does nothing.
        run(&mut c, &["XADD", "s", "DELREF", "11-0", "f", "v"]);
        assert_eq!(ids(&mut c, "s").len(), 5);
        // XREADGROUP's history shows the trimmed entry as a null, as for KEEPREF.
        let history = run(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"],
        );
        assert!(format!("{history:?}").contains("5-0"), "{history:?}");
        // No groups: ACKED is an exact trim.
        run(&mut c, &["XGROUP", "DESTROY", "s", "g"]);
        assert_eq!(
            int(run(&mut c, &["XTRIM", "s", "MAXLEN", "~", "2", "ACKED"])),
            3
        );
        assert_eq!(ids(&mut c, "s"), vec![10, 11]);
    }
}

#[test]
fn trim_policy_errors_are_redis_texts() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["DEL", "s"]);
        run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
        assert_eq!(
            err(&mut c, &["XADD", "s", "KEEPREF", "ACKED", "*", "f", "v"]),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(
            err(&mut c, &["XTRIM", "s", "MAXLEN", "0", "DELREF", "ACKED"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&mut c, &["XTRIM", "s", "ACKED", "LIMIT", "0"]),
            "ERR syntax error, XTRIM must be called with a trimming strategy"
        );
        assert_eq!(
            err(
                &mut c,
                &["XTRIM", "s", "ACKED", "MAXLEN", "0", "LIMIT", "5"]
            ),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
        assert_eq!(ids(&mut c, "s"), vec![1]);
    }
}

#[test]
fn command_docs_describe_the_policy() {
    let server = TestServer::start();
    let mut c = server.client(false);
    for name in ["xadd", "xtrim"] {
        let docs = format!("{:?}", run(&mut c, &["COMMAND", "DOCS", name]));
        for word in ["KEEPREF", "DELREF", "ACKED", "MAXLEN", "LIMIT"] {
            assert!(docs.contains(word), "{name}: {word} missing from {docs}");
        }
    }
}

/// Everything the trims change, for comparing before and after a reload.
fn snapshot(c: &mut redis::Connection) -> Vec<Value> {
    let mut out = Vec::new();
    for (key, groups) in [
        ("s", &["g1", "g2"][..]),
        ("big", &["g1"][..]),
        ("acked", &["g1"][..]),
    ] {
        out.push(run(c, &["XRANGE", key, "-", "+"]));
        out.push(run(c, &["XINFO", "STREAM", key, "FULL"]));
        for g in groups {
            out.push(run(c, &["XPENDING", key, g]));
        }
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

#[test]
fn trims_by_policy_survive_debug_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    for i in 1..=30 {
        run(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    for (g, consumer) in [("g1", "a"), ("g2", "b")] {
        run(&mut c, &["XGROUP", "CREATE", "s", g, "0"]);
        run(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                g,
                consumer,
                "COUNT",
                "24",
                "STREAMS",
                "s",
                ">",
            ],
        );
    }
    let all: Vec<String> = (1..=24).map(|i| format!("{i}-0")).collect();
    let mut ack = vec!["XACK", "s", "g1"];
    ack.extend(all.iter().map(String::as_str));
    run(&mut c, &ack);
    // g2 keeps 2 and 14 pending; nodes of three: [1,2,3] [4,5,6] ... [28,29,30].
    let mut ack = vec!["XACK", "s", "g2"];
    ack.extend(
        all.iter()
            .map(String::as_str)
            .filter(|id| !["2-0", "14-0"].contains(id)),
    );
    run(&mut c, &ack);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    // Past 2: whole nodes go until the node holding 14, then past it until 24.
    assert_eq!(
        int(run(&mut c, &["XTRIM", "s", "MAXLEN", "0", "ACKED"])),
        22
    );
    assert_eq!(ids(&mut c, "s"), vec![2, 14, 25, 26, 27, 28, 29, 30]);
    // DELREF through 14: its reference goes, 2's (a live entry) too.
    assert_eq!(
        int(run(&mut c, &["XTRIM", "s", "MINID", "20", "DELREF"])),
        2
    );
    assert_eq!(pending_ids(&mut c, "s", "g2"), Vec::<u64>::new());
    run(
        &mut c,
        &["XADD", "s", "ACKED", "MAXLEN", "3", "31-0", "f", "v"],
    );

    // A large DELREF trim leaves its records to the purge thread, its references go now.
    let mut pipe = redis::pipe();
    for i in 1..=6000u64 {
        pipe.cmd("XADD")
            .arg("big")
            .arg(format!("{i}-0"))
            .arg("f")
            .arg(i)
            .ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    run(&mut c, &["XGROUP", "CREATE", "big", "g1", "0"]);
    run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "x",
            "COUNT",
            "10",
            "STREAMS",
            "big",
            ">",
        ],
    );
    run(&mut c, &["SAVE"]);
    assert_eq!(
        int(run(&mut c, &["XTRIM", "big", "MAXLEN", "5", "DELREF"])),
        5995
    );
    assert_eq!(pending_ids(&mut c, "big", "g1"), Vec::<u64>::new());

    // A large ACKED trim past kept entries leaves its runs of nodes to the purge thread.
    let mut pipe = redis::pipe();
    for i in 1..=6000u64 {
        pipe.cmd("XADD")
            .arg("acked")
            .arg(format!("{i}-0"))
            .arg("f")
            .arg(i)
            .ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    run(&mut c, &["XGROUP", "CREATE", "acked", "g1", "0"]);
    run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "x",
            "COUNT",
            "6000",
            "STREAMS",
            "acked",
            ">",
        ],
    );
    let all: Vec<String> = (1..=6000u64)
        .filter(|i| ![50, 3000].contains(i))
        .map(|i| format!("{i}-0"))
        .collect();
    let mut ack = vec!["XACK", "acked", "g1"];
    ack.extend(all.iter().map(String::as_str));
    run(&mut c, &ack);
    run(&mut c, &["SAVE"]);
    assert_eq!(
        int(run(&mut c, &["XTRIM", "acked", "MAXLEN", "10", "ACKED"])),
        5990
    );
    assert_eq!(ids(&mut c, "acked")[..3], [50, 3000, 5993]);
    let before = snapshot(&mut c);

    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(snapshot(&mut c), before, "DEBUG RELOAD changed the state");
    drop(c);
    server.stop();

    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c3 = server.client(true);
    let mut c = server.client(false);
    assert_eq!(snapshot(&mut c), before, "a restart changed the state");
    assert_eq!(ids(&mut c3, "big"), (5996..=6000).collect::<Vec<u64>>());
}
