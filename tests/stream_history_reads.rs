//! A consumer re-reading its own pending entries (XREADGROUP with an ID other than `>`)
//! bumps their delivery time and count, as Redis 8 does, but is no write: INFO's
//! `rdb_changes_since_last_save` stays put, as Redis leaves its dirty counter. The bumped
//! counts are still what SAVE, DEBUG RELOAD and a restart keep.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use brooklet::{TestServer, run};
use brooklet_server::{Config, Fsync};
use redis::{Value, cmd};

fn changes(c: &mut redis::Connection) -> u64 {
    let info: String = cmd("INFO").arg("persistence").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Each pending entry's ID, owner and delivery count.
fn deliveries(c: &mut redis::Connection) -> Vec<(String, String, u64)> {
    let rows: Vec<(String, String, u64, u64)> = cmd("XPENDING")
        .arg("s")
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(10)
        .query(c)
        .unwrap();
    rows.into_iter()
        .map(|(id, who, _, n)| (id, who, n))
        .collect()
}

fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.enable_debug_command = "yes".into();
        // Nothing is synced between two looks at the counter but by SAVE.
        c.appendfsync = Fsync::No;
    }
}

#[test]
fn history_rereads_are_no_change_yet_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    for i in 1..=3 {
        run(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(&mut c, &["SAVE"]);
    assert_eq!(changes(&mut c), 0);
    for resp3 in [false, true] {
        let mut r = server.client(resp3);
        let got = run(
            &mut r,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"],
        );
        assert!(format!("{got:?}").contains("2-0"), "{got:?}");
        assert_eq!(changes(&mut r), 0, "a history re-read counted as a change");
        // Nothing new for an existing consumer: its seen-time alone, no change either.
        run(
            &mut r,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "2-0"],
        );
        assert_eq!(changes(&mut r), 0);
    }
    let counts: Vec<u64> = deliveries(&mut c).iter().map(|d| d.2).collect();
    assert_eq!(counts, vec![3, 3]);
    // A real change is counted (the counter works).
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
    );
    assert!(changes(&mut c) > 0);
    // The history bumps are kept by DEBUG RELOAD and a restart, the whole stream alike.
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"],
    );
    let before: Value = run(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
    let pel = deliveries(&mut c);
    assert_eq!(pel.iter().map(|d| d.2).collect::<Vec<_>>(), vec![4, 4, 2]);
    run(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(run(&mut c, &["XINFO", "STREAM", "s", "FULL"]), before);
    assert_eq!(deliveries(&mut c), pel);
    run(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "1-0"],
    );
    let before: Value = run(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
    drop(c);
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(true);
    assert_eq!(changes(&mut c), 0);
    let mut c2 = server.client(false);
    assert_eq!(run(&mut c2, &["XINFO", "STREAM", "s", "FULL"]), before);
    assert_eq!(
        deliveries(&mut c2).iter().map(|d| d.2).collect::<Vec<_>>(),
        vec![4, 5, 3]
    );
}
