//! End-to-end tests of the persistence commands: DEBUG RELOAD, SAVE, LASTSAVE, INFO, and
//! switching the fsync policy at run time.

#![allow(clippy::unwrap_used)]

use brooklet::TestServer;
use redis::{Value, cmd};

fn state(c: &mut redis::Connection) -> (Value, Value, Value, Value) {
    let range: Value = cmd("XRANGE").arg("s").arg("-").arg("+").query(c).unwrap();
    let full: Value = cmd("XINFO")
        .arg("STREAM")
        .arg("s")
        .arg("FULL")
        .query(c)
        .unwrap();
    let groups: Value = cmd("XINFO").arg("GROUPS").arg("s").query(c).unwrap();
    let pending: Value = cmd("XPENDING").arg("s").arg("g").query(c).unwrap();
    (range, full, groups, pending)
}

#[test]
fn debug_reload_rebuilds_the_same_state_from_disk() {
    let server = TestServer::start_with(|c| c.enable_debug_command = "yes".into());
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let _: () = cmd("FLUSHALL").query(&mut c).unwrap();
        for i in 1..=30 {
            let _: String = cmd("XADD")
                .arg("s")
                .arg(format!("{i}-0"))
                .arg("f")
                .arg(i)
                .query(&mut c)
                .unwrap();
        }
        let _: () = cmd("XGROUP")
            .arg("CREATE")
            .arg("s")
            .arg("g")
            .arg("0")
            .query(&mut c)
            .unwrap();
        let _: Value = cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("a")
            .arg("COUNT")
            .arg(7)
            .arg("STREAMS")
            .arg("s")
            .arg(">")
            .query(&mut c)
            .unwrap();
        let _: i64 = cmd("XACK")
            .arg("s")
            .arg("g")
            .arg("2-0")
            .query(&mut c)
            .unwrap();
        let _: i64 = cmd("XDEL").arg("s").arg("5-0").query(&mut c).unwrap();
        let _: i64 = cmd("XTRIM")
            .arg("s")
            .arg("MAXLEN")
            .arg(25)
            .query(&mut c)
            .unwrap();
        let before = state(&mut c);
        let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
        assert_eq!(
            state(&mut c),
            before,
            "resp3={resp3}: DEBUG RELOAD changed the state"
        );
        let _: () = cmd("DEBUG").arg("LOADAOF").query(&mut c).unwrap();
        assert_eq!(
            state(&mut c),
            before,
            "resp3={resp3}: DEBUG LOADAOF changed the state"
        );
    }
}

#[test]
fn debug_is_refused_unless_enabled() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let err = cmd("DEBUG").arg("RELOAD").query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string().contains(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\""
        ),
        "{err}"
    );
    let local = TestServer::start_with(|c| c.enable_debug_command = "local".into());
    let mut c = local.client(false);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
}

#[test]
fn save_lastsave_and_info_persistence() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let _: String = cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let before: i64 = cmd("LASTSAVE").query(&mut c).unwrap();
    let _: () = cmd("SAVE").query(&mut c).unwrap();
    let after: i64 = cmd("LASTSAVE").query(&mut c).unwrap();
    assert!(after >= before);
    let started: String = cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(started, "Background saving started");
    let info: String = cmd("INFO").arg("persistence").query(&mut c).unwrap();
    for field in [
        "aof_enabled:1",
        "appendfsync:everysec",
        "brooklet_disk_bytes:",
        "brooklet_fsyncs:",
        "rdb_last_save_time:",
    ] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
    let on: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query(&mut c)
        .unwrap();
    assert_eq!(on, ["appendonly", "yes"]);
}

#[test]
fn appendfsync_always_at_run_time_acknowledges_after_fsync() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg("always")
        .query(&mut c)
        .unwrap();
    let fsyncs = |c: &mut redis::Connection| -> u64 {
        let info: String = cmd("INFO").arg("persistence").query(c).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("brooklet_fsyncs:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let start = fsyncs(&mut c);
    for i in 0..20 {
        let _: String = cmd("XADD")
            .arg("s")
            .arg("*")
            .arg("i")
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    // Each acknowledged XADD was covered by an fsync before its reply.
    let info: String = cmd("INFO").arg("persistence").query(&mut c).unwrap();
    let get = |k: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        get("brooklet_batches_durable:"),
        get("brooklet_batches_committed:"),
        "{info}"
    );
    assert!(fsyncs(&mut c) > start);
}
