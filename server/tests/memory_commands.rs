//! MEMORY and the metrics endpoint on the binary, which runs on jemalloc (in-process test
//! servers run on the system allocator): MALLOC-STATS prints jemalloc's statistics, PURGE
//! purges its arenas, MEMORY STATS reads its figures, and `--metrics-port` serves a scrape.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::BIN;

const IO_LIMIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn jemalloc_figures_malloc_stats_purge_and_metrics_flag() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_port();
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--metrics-port", &metrics.to_string()])
            .arg("--dir")
            .arg(dir.path()),
        IO_LIMIT,
    );
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap();
    let mut c = client.get_connection().unwrap();
    let _: String = redis::cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let stats: String = redis::cmd("MEMORY")
        .arg("MALLOC-STATS")
        .query(&mut c)
        .unwrap();
    assert!(
        stats.starts_with("___ Begin jemalloc statistics ___"),
        "{stats}"
    );
    let ok: String = redis::cmd("MEMORY").arg("PURGE").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let fields: Vec<redis::Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    let get = |name: &str| {
        let at = fields
            .iter()
            .position(|v| *v == redis::Value::BulkString(name.as_bytes().to_vec()))
            .unwrap_or_else(|| panic!("{name}"));
        match &fields[at + 1] {
            redis::Value::Int(n) => *n,
            other => panic!("{name}: {other:?}"),
        }
    };
    assert!(get("startup.allocated") > 0);
    assert!(get("total.allocated") >= get("startup.allocated"));
    assert!(get("allocator.active") >= get("allocator.allocated"));
    assert!(get("allocator.resident") > 0);
    let mut http = std::net::TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    http.set_read_timeout(Some(IO_LIMIT)).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    http.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("brooklet_stream_length{db=\"0\",stream=\"s\"} 1\n"),
        "{text}"
    );
}
