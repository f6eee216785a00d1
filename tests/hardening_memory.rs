//! Memory bound for a client that never reads its replies. Alone in its own test binary:
//! the RSS it measures is the whole process's, so no other test may run beside it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use brooklet::TestServer;
use redis::cmd;

fn rss(c: &mut redis::Connection) -> u64 {
    let info: String = cmd("INFO").arg("memory").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory_rss:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_client_that_never_reads_its_replies_costs_bounded_memory() {
    // Replies are written as they pass 256 KiB, so the growth stays far below what a whole
    // read's worth of piled-up replies would take (docs/performance.md, Tests).
    let server = TestServer::start();
    let mut c = server.client(false);
    let value = "x".repeat(1000);
    for _ in 0..100 {
        let _: String = cmd("XADD")
            .arg("big")
            .arg("*")
            .arg("f")
            .arg(&value)
            .query(&mut c)
            .unwrap();
    }
    let before = rss(&mut c);
    // 20,000 XRANGEs of ~100 KB each: 2 GB of replies that are never read.
    let greedy = server.raw();
    let request = b"*4\r\n$6\r\nXRANGE\r\n$3\r\nbig\r\n$1\r\n-\r\n$1\r\n+\r\n".repeat(20_000);
    let mut writer = greedy.stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _sender = std::thread::spawn(move || {
        // Stops with a timeout once the server stops reading from it; that is the point.
        let _ = std::io::Write::write_all(&mut writer, &request);
    });
    std::thread::sleep(Duration::from_millis(1500));
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let grown = rss(&mut c).saturating_sub(before);
    assert!(
        grown < 16 * 1024 * 1024,
        "RSS grew by {grown} bytes for a client that never reads"
    );
    greedy.stream.shutdown(std::net::Shutdown::Both).unwrap();
}
