//! Retention settings (XCFGSET MAXAGE, a stream created under `stream-max-age`) and the
//! entries retention removed survive a SIGKILL: the restarted server shows the same XINFO
//! STREAM FULL and goes on removing expired entries.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use common::BIN;

const LIMIT: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path) -> (common::Running, redis::Connection) {
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--dir"])
            .arg(dir)
            .args(["--stream-node-max-entries", "4"]),
        LIMIT,
    );
    let c = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port))
        .unwrap()
        .get_connection_with_timeout(LIMIT)
        .unwrap();
    (s.child, c)
}

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

fn snapshot(c: &mut redis::Connection) -> Vec<redis::Value> {
    ["s", "t", "old"]
        .iter()
        .map(|k| q(c, &["XINFO", "STREAM", k, "FULL"]))
        .collect()
}

fn wait_len(c: &mut redis::Connection, key: &str, want: i64) {
    let start = Instant::now();
    loop {
        let len: i64 = q(c, &["XLEN", key]);
        if len == want {
            return;
        }
        assert!(start.elapsed() < LIMIT, "{key}: XLEN {len}, want {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn retention_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let far = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    let (mut child, mut c) = start(dir.path());
    for i in 0..10 {
        let _: String = q(&mut c, &["XADD", "s", &format!("{}-0", far + i), "f", "v"]);
    }
    let _: () = q(&mut c, &["XCFGSET", "s", "MAXAGE", "60000", "DELREF"]);
    let _: String = q(&mut c, &["XADD", "s", "*", "f", "late"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "stream-max-age", "5000"]);
    let _: String = q(&mut c, &["XADD", "t", &format!("{far}-0"), "f", "v"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "stream-max-age", "0"]);
    // Old entries removed before the kill stay removed.
    for i in 1..=30 {
        let _: String = q(&mut c, &["XADD", "old", &format!("{i}-0"), "f", "v"]);
    }
    let _: () = q(&mut c, &["XCFGSET", "old", "MAXAGE", "1000"]);
    wait_len(&mut c, "old", 0);
    let _: String = q(&mut c, &["XADD", "old", &format!("{far}-0"), "f", "v"]);
    let before = snapshot(&mut c);
    child.kill().unwrap();
    let _ = child.wait();
    drop(c);

    let (_child, mut c) = start(dir.path());
    assert_eq!(snapshot(&mut c), before, "SIGKILL changed the state");
    // Still applied after the restart.
    let _: String = q(&mut c, &["XADD", "new", "1-0", "f", "v"]);
    let _: () = q(&mut c, &["XCFGSET", "new", "MAXAGE", "1"]);
    wait_len(&mut c, "new", 0);
}
