//! Idempotent producers' state survives a SIGKILL: what the tail log alone holds (IDMP
//! appends, a created stream's settings, duplicates' count) and what a checkpoint wrote is
//! replayed to the same XINFO STREAM FULL, and duplicates are still recognised.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

mod common;

use common::BIN;

const LIMIT: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, extra: &[&str]) -> (common::Running, redis::Connection) {
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--dir"])
            .arg(dir)
            .args(["--stream-idmp-maxsize", "7"])
            .args(extra),
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
    ["s", "t"]
        .iter()
        .map(|k| q(c, &["XINFO", "STREAM", k, "FULL"]))
        .collect()
}

#[test]
fn idmp_state_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of 4 KiB checkpointed at once in the first life, so part of the state is in
    // fjall when the kill lands; the rest is replayed from the log.
    for (round, extra) in [
        &[
            "--tail-log-segment-bytes",
            "4096",
            "--tail-log-checkpoint-bytes",
            "0",
        ][..],
        &["--tail-log-checkpoint-bytes", "1000000000"],
    ]
    .into_iter()
    .enumerate()
    {
        let (mut child, mut c) = start(dir.path(), extra);
        let mut sent = Vec::new();
        for i in 0..60 {
            let pid = format!("p{}", i % 4);
            let iid = format!("r{round}-{i}");
            let id: String = q(&mut c, &["XADD", "s", "IDMP", &pid, &iid, "*", "n", &iid]);
            sent.push((pid, iid, id));
            if i % 7 == 0 {
                let (pid, iid, id) = sent[i].clone();
                let again: String = q(&mut c, &["XADD", "s", "IDMP", &pid, &iid, "*", "x", "y"]);
                assert_eq!(again, id);
            }
        }
        let _: String = q(&mut c, &["XADD", "t", "IDMPAUTO", "a", "*", "f", "v"]);
        if round == 0 {
            let _: () = q(&mut c, &["XCFGSET", "t", "IDMP-DURATION", "500"]);
        }
        let auto: String = q(&mut c, &["XADD", "t", "IDMPAUTO", "a", "*", "g", "w"]);
        let _: String = q(&mut c, &["XADD", "t", "IDMPAUTO", "a", "*", "g", "w"]);
        let before = snapshot(&mut c);
        child.kill().unwrap();
        let _ = child.wait();
        drop(c);

        let (_child, mut c) = start(dir.path(), extra);
        assert_eq!(
            snapshot(&mut c),
            before,
            "round {round}: SIGKILL changed the state"
        );
        let len: i64 = q(&mut c, &["XLEN", "s"]);
        // The last 7 of each producer are remembered (IDMP-MAXSIZE from the flag).
        for (pid, iid, id) in sent.iter().rev().take(28) {
            let again: String = q(&mut c, &["XADD", "s", "IDMP", pid, iid, "*", "x", "y"]);
            assert_eq!(&again, id, "round {round}: {pid} {iid}");
        }
        let after: i64 = q(&mut c, &["XLEN", "s"]);
        assert_eq!(after, len, "round {round}: a duplicate was appended");
        // IDMPAUTO's ID, left out of its log record, is derived again at replay.
        let t_len: i64 = q(&mut c, &["XLEN", "t"]);
        let other = format!("r{round}");
        let again: String = q(&mut c, &["XADD", "t", "IDMPAUTO", "a", "*", "w", &other]);
        assert_ne!(
            again, auto,
            "round {round}: another pair is another message"
        );
        let again: String = q(&mut c, &["XADD", "t", "IDMPAUTO", "a", "*", "g", "w"]);
        assert_eq!(
            again, auto,
            "round {round}: IDMPAUTO's duplicate after replay"
        );
        let t_after: i64 = q(&mut c, &["XLEN", "t"]);
        assert_eq!(t_after, t_len + 1, "round {round}");
    }
}
