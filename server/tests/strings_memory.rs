//! `maxmemory` counts strings: SET fills a real server process until it is refused with
//! Redis's OOM error, reads keep working, and writes are accepted again once FLUSHALL freed
//! the memory.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::BIN;

const LIMIT: Duration = Duration::from_secs(30);

fn q(conn: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn)
}

#[test]
fn strings_fill_maxmemory_then_sets_are_refused_until_freed() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--appendfsync", "no", "--maxmemory", "24mb"])
            .arg("--dir")
            .arg(dir.path()),
        LIMIT,
    );
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap();
    let mut c = client.get_connection_with_timeout(LIMIT).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    let value = "v".repeat(64 * 1024);
    let started = Instant::now();
    let mut refused = None;
    for i in 0..4000 {
        assert!(started.elapsed() < LIMIT, "never refused after {i} keys");
        match q(&mut c, &["SET", &format!("k{i}"), &value]) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Some("OOM"), "{e}");
                refused = Some(i);
                break;
            }
        }
        if i % 50 == 49 {
            // The server reads its memory every 100 ms.
            std::thread::sleep(Duration::from_millis(120));
        }
    }
    let refused = refused.expect("4000 x 64 KiB of strings were never refused under 24mb");
    assert!(refused > 10, "refused after only {refused} keys");
    assert_eq!(
        q(&mut c, &["STRLEN", "k0"]).unwrap(),
        redis::Value::Int(64 * 1024)
    );
    q(&mut c, &["FLUSHALL"]).unwrap();
    let deadline = Instant::now() + LIMIT;
    while q(&mut c, &["SET", "after", "v"]).is_err() {
        assert!(
            Instant::now() < deadline,
            "SET still refused after FLUSHALL: {:?}",
            q(&mut c, &["INFO", "memory"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
