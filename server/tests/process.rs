//! The `brooklet-server` binary as a process: start-up from flags and config files, and
//! graceful shutdown on signals.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_brooklet-server");
const LIMIT: Duration = Duration::from_secs(20);

/// Starts the binary on port 0 and reads the port it logged.
fn spawn(extra: &[&str]) -> (Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--dir"])
        .arg(dir.path())
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let port = addr
                    .trim()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap();
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(LIMIT)
        .expect("the server never logged its port");
    (child, port, dir)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < LIMIT, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    buf.to_vec()
}

#[cfg(unix)]
fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_stop_the_server_with_exit_code_zero() {
    for sig in ["-TERM", "-INT"] {
        let (mut child, port, _dir) = spawn(&[]);
        assert_eq!(ping(port), b"+PONG\r\n");
        // A connected idle client must not keep the server from exiting.
        let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
        signal(&child, sig);
        assert!(wait_exit(&mut child).success(), "exit after {sig}");
    }
}

#[test]
fn shutdown_command_exits_zero() {
    let (mut child, port, _dir) = spawn(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"SHUTDOWN\r\n").unwrap();
    assert!(wait_exit(&mut child).success());
}

#[test]
fn config_file_and_flags_use_the_same_directives() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("brooklet.conf");
    std::fs::write(&conf, "# test\nrequirepass \"pw\"\nmaxclients 7\n").unwrap();
    let (mut child, port, _data) =
        spawn(&["--config", conf.to_str().unwrap(), "--appendfsync", "no"]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"AUTH pw\r\nCONFIG GET maxclients\r\nCONFIG GET appendfsync\r\n")
        .unwrap();
    let mut got = Vec::new();
    let expect =
        b"+OK\r\n*2\r\n$10\r\nmaxclients\r\n$1\r\n7\r\n*2\r\n$11\r\nappendfsync\r\n$2\r\nno\r\n";
    while got.len() < expect.len() {
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got[..], &expect[..]);
    s.write_all(b"SHUTDOWN\r\n").unwrap();
    assert!(wait_exit(&mut child).success());
}

#[test]
fn a_bad_config_line_stops_start_up_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "port 0\nappendfsync sometimes\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("at line 2") && err.contains("appendfsync sometimes"),
        "{err}"
    );
    let out = Command::new(BIN).args(["--nosuch", "1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

/// One client's view of what the server acknowledged before it was killed.
#[derive(Default)]
struct Acked {
    added: Vec<String>,
    acked: Vec<String>,
}

/// Adds entries and acknowledges deliveries until the connection fails.
fn crash_load(port: u16, client: usize, deadline: Instant) -> Acked {
    let mut acked = Acked::default();
    let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return acked;
    };
    let Ok(mut conn) = c.get_connection_with_timeout(LIMIT) else {
        return acked;
    };
    let _ = conn.set_read_timeout(Some(LIMIT));
    let consumer = format!("c{client}");
    for i in 0..100_000u64 {
        if Instant::now() > deadline {
            break;
        }
        let id: redis::RedisResult<String> = redis::cmd("XADD")
            .arg("orders")
            .arg("*")
            .arg("client")
            .arg(client)
            .arg("n")
            .arg(i)
            .query(&mut conn);
        match id {
            Ok(id) => acked.added.push(id),
            Err(_) => break,
        }
        if i % 3 == 0 {
            let read: redis::RedisResult<redis::streams::StreamReadReply> =
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("workers")
                    .arg(&consumer)
                    .arg("COUNT")
                    .arg(1)
                    .arg("STREAMS")
                    .arg("orders")
                    .arg(">")
                    .query(&mut conn);
            let Ok(read) = read else { break };
            for id in read
                .keys
                .iter()
                .flat_map(|k| k.ids.iter().map(|e| e.id.clone()))
            {
                let n: redis::RedisResult<i64> = redis::cmd("XACK")
                    .arg("orders")
                    .arg("workers")
                    .arg(&id)
                    .query(&mut conn);
                match n {
                    Ok(1) => acked.acked.push(id),
                    _ => return acked,
                }
            }
        }
    }
    acked
}

#[cfg(unix)]
#[test]
fn acknowledged_writes_survive_sigkill_under_appendfsync_always() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let mut all_added: Vec<String> = Vec::new();
    let mut all_acked: Vec<String> = Vec::new();
    for (round, kill_after_ms) in [150u64, 400, 50, 700].into_iter().enumerate() {
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--appendfsync", "always", "--dir", &data])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let port = read_port(&mut child);
        if round == 0 {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            let _: () = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg("orders")
                .arg("workers")
                .arg("$")
                .arg("MKSTREAM")
                .query(&mut c)
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let workers: Vec<_> = (0..3)
            .map(|i| std::thread::spawn(move || crash_load(port, i, deadline)))
            .collect();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        signal(&child, "-KILL");
        let _ = wait_exit(&mut child);
        for w in workers {
            let a = w.join().unwrap();
            all_added.extend(a.added);
            all_acked.extend(a.acked);
        }
        // Restart and check every acknowledged write is there and the state is consistent.
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--appendfsync", "always", "--dir", &data])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let port = read_port(&mut child);
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg("orders")
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap();
        let present: std::collections::HashSet<String> =
            entries.ids.iter().map(|e| e.id.clone()).collect();
        for id in &all_added {
            assert!(
                present.contains(id),
                "round {round}: acknowledged XADD {id} lost"
            );
        }
        for e in &entries.ids {
            assert!(
                e.map.contains_key("client") && e.map.contains_key("n"),
                "round {round}: half an entry {}",
                e.id
            );
        }
        let len: usize = redis::cmd("XLEN").arg("orders").query(&mut c).unwrap();
        assert_eq!(
            len,
            entries.ids.len(),
            "round {round}: XLEN disagrees with XRANGE"
        );
        let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg("orders")
            .arg("workers")
            .arg("-")
            .arg("+")
            .arg(1_000_000)
            .query(&mut c)
            .unwrap();
        let pending_ids: std::collections::HashSet<String> =
            pending.ids.iter().map(|p| p.id.clone()).collect();
        for id in &all_acked {
            assert!(
                !pending_ids.contains(id),
                "round {round}: acknowledged XACK of {id} lost"
            );
        }
        let summary: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg("orders")
            .arg("workers")
            .query(&mut c)
            .unwrap();
        assert_eq!(
            summary.count(),
            pending.ids.len(),
            "round {round}: PEL summary and range disagree"
        );
        let _: () = redis::cmd("SHUTDOWN").query(&mut c).unwrap_or(());
        let _ = wait_exit(&mut child);
    }
    assert!(
        !all_added.is_empty(),
        "no write was acknowledged in any round"
    );
}

/// Reads the port a child logged.
fn read_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let port = addr
                    .trim()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap();
                let _ = tx.send(port);
            }
        }
    });
    rx.recv_timeout(LIMIT)
        .expect("the server never logged its port")
}
