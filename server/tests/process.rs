//! The `brooklet-server` binary as a process: start-up from flags and config files, and
//! graceful shutdown on signals.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Seek, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Running};
const LIMIT: Duration = Duration::from_secs(20);

/// A server process and what it has logged so far.
struct Proc {
    child: Running,
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts the binary on port 0 over `dir` and reads the port it logged.
fn start_on(dir: &std::path::Path, extra: &[&str]) -> Proc {
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", "0", "--dir"])
            .arg(dir)
            .args(extra),
        LIMIT,
    );
    Proc {
        child: s.child,
        port: s.port,
        log: s.log,
    }
}

/// Starts the binary on port 0 with a fresh data directory.
fn spawn(extra: &[&str]) -> (Running, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let p = start_on(dir.path(), extra);
    (p.child, p.port, dir)
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

#[test]
fn an_unusable_tls_file_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    let conf = dir.path().join("tls.conf");
    std::fs::write(
        &conf,
        format!(
            "port 0\ntls-port 6380\ntls-cert-file {0}\ntls-key-file {0}\ntls-auth-clients no\n",
            missing.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .arg("--dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send(err);
    });
    let Ok(err) = rx.recv_timeout(LIMIT) else {
        let _ = child.kill();
        panic!("the server started with a missing certificate file");
    };
    assert!(!wait_exit(&mut child).success());
    assert!(
        err.contains("tls-cert-file") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    // Refused before anything was bound or opened.
    assert!(!data.exists());
}

/// One client's view of what the server acknowledged before it was killed.
#[derive(Default)]
struct Acked {
    added: Vec<String>,
    acked: Vec<String>,
    /// Delivered by an acknowledged XREADGROUP and never XACKed: pending for good.
    delivered: Vec<String>,
}

/// Adds entries, reads them in the group and acknowledges every other delivery, until the
/// connection fails.
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
                if (i / 3) % 2 == 1 {
                    acked.delivered.push(id);
                    continue;
                }
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
    let mut all_added: Vec<String> = Vec::new();
    let mut all_acked: Vec<String> = Vec::new();
    let mut all_delivered: Vec<String> = Vec::new();
    // Tail-log segments of 4 KiB close every few dozen appends. In even rounds each is
    // checkpointed at once, so checkpoints (ingestion, then the batch of node and stream
    // records) run all through the load and the kill lands in the middle of some; in odd
    // rounds the checkpoint waits for 64 KiB of closed segments, so the restart replays
    // many of them.
    for (round, kill_after_ms) in [150u64, 400, 50, 700].into_iter().enumerate() {
        let wait_for = if round % 2 == 0 { "0" } else { "65536" };
        let args = [
            "--appendfsync",
            "always",
            "--tail-log-segment-bytes",
            "4096",
            "--tail-log-checkpoint-bytes",
            wait_for,
        ];
        let Proc {
            mut child, port, ..
        } = start_on(dir.path(), &args);
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
            all_delivered.extend(a.delivered);
        }
        // Restart and check every acknowledged write is there and the state is consistent.
        let Proc {
            mut child, port, ..
        } = start_on(dir.path(), &args);
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
        for id in &all_delivered {
            assert!(
                pending_ids.contains(id),
                "round {round}: acknowledged delivery of {id} lost from the PEL"
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
        !all_added.is_empty() && !all_delivered.is_empty(),
        "no write or delivery was acknowledged in any round"
    );
}

fn connect(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let conn = c.get_connection_with_timeout(LIMIT).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn
}

fn q(conn: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Everything a client can read about the state, minus the clock-relative idle times.
fn snapshot(conn: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in ["0", "3"] {
        q(conn, &["SELECT", db]);
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(conn).unwrap();
        keys.sort();
        for k in keys {
            out.push(format!(
                "{db} {k} range {:?}",
                q(conn, &["XRANGE", &k, "-", "+"])
            ));
            out.push(format!(
                "{db} {k} full {:?}",
                q(conn, &["XINFO", "STREAM", &k, "FULL"])
            ));
            out.push(format!(
                "{db} {k} info {:?}",
                q(conn, &["XINFO", "STREAM", &k])
            ));
            let groups: Vec<redis::Value> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&k)
                .query(conn)
                .unwrap();
            out.push(format!("{db} {k} groups {groups:?}"));
            for g in ["g1", "g2"] {
                let Ok(summary) = redis::cmd("XPENDING")
                    .arg(&k)
                    .arg(g)
                    .query::<redis::Value>(conn)
                else {
                    continue;
                };
                out.push(format!("{db} {k} {g} pending {summary:?}"));
                let ext: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
                    .arg(&k)
                    .arg(g)
                    .arg("-")
                    .arg("+")
                    .arg(1000)
                    .query(conn)
                    .unwrap();
                let ext: Vec<_> = ext
                    .ids
                    .iter()
                    .map(|p| (p.id.clone(), p.consumer.clone(), p.times_delivered))
                    .collect();
                out.push(format!("{db} {k} {g} pel {ext:?}"));
                let consumers: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(&k)
                    .arg(g)
                    .query(conn)
                    .unwrap();
                let consumers: Vec<_> = consumers
                    .consumers
                    .iter()
                    .map(|c| (c.name.clone(), c.pending))
                    .collect();
                out.push(format!("{db} {k} {g} consumers {consumers:?}"));
            }
        }
    }
    q(conn, &["SELECT", "0"]);
    out
}

#[test]
fn every_stream_and_group_change_survives_a_process_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_on(dir.path(), &["--stream-node-max-entries", "5"]);
    let before = {
        let mut c = connect(p.port);
        for i in 1..=40 {
            q(
                &mut c,
                &[
                    "XADD",
                    "orders",
                    &format!("{i}-1"),
                    "item",
                    &format!("i{i}"),
                    "qty",
                    &i.to_string(),
                ],
            );
        }
        q(&mut c, &["XADD", "orders", "41-*", "item", "last"]);
        q(&mut c, &["XDEL", "orders", "3-1", "17-1"]);
        q(&mut c, &["XTRIM", "orders", "MAXLEN", "=", "33"]);
        q(&mut c, &["XTRIM", "orders", "MINID", "~", "12"]);
        q(&mut c, &["XGROUP", "CREATE", "orders", "g1", "0"]);
        q(
            &mut c,
            &["XGROUP", "CREATE", "orders", "g2", "$", "ENTRIESREAD", "3"],
        );
        q(
            &mut c,
            &["XGROUP", "CREATECONSUMER", "orders", "g1", "idle-one"],
        );
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g1",
                "alice",
                "COUNT",
                "6",
                "STREAMS",
                "orders",
                ">",
            ],
        );
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g1",
                "bob",
                "COUNT",
                "4",
                "STREAMS",
                "orders",
                ">",
            ],
        );
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g1",
                "alice",
                "STREAMS",
                "orders",
                "0",
            ],
        );
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g1",
                "carol",
                "NOACK",
                "COUNT",
                "2",
                "STREAMS",
                "orders",
                ">",
            ],
        );
        q(&mut c, &["XACK", "orders", "g1", "13-1", "14-1", "14-1"]);
        q(
            &mut c,
            &[
                "XCLAIM",
                "orders",
                "g1",
                "bob",
                "0",
                "15-1",
                "RETRYCOUNT",
                "7",
            ],
        );
        q(
            &mut c,
            &["XAUTOCLAIM", "orders", "g1", "dave", "0", "0", "COUNT", "2"],
        );
        q(&mut c, &["XGROUP", "DELCONSUMER", "orders", "g1", "carol"]);
        q(
            &mut c,
            &[
                "XGROUP",
                "SETID",
                "orders",
                "g2",
                "20-1",
                "ENTRIESREAD",
                "9",
            ],
        );
        q(
            &mut c,
            &[
                "XSETID",
                "orders",
                "41-5",
                "ENTRIESADDED",
                "60",
                "MAXDELETEDID",
                "30-0",
            ],
        );
        q(&mut c, &["XGROUP", "CREATE", "gone", "g1", "$", "MKSTREAM"]);
        q(&mut c, &["DEL", "gone"]);
        q(&mut c, &["XADD", "empty", "*", "a", "b"]);
        q(&mut c, &["XTRIM", "empty", "MAXLEN", "0"]);
        q(&mut c, &["SELECT", "3"]);
        q(&mut c, &["XADD", "other", "1-1", "k", "v"]);
        q(&mut c, &["XADD", "flushed", "1-1", "k", "v"]);
        q(&mut c, &["SELECT", "5"]);
        q(&mut c, &["XADD", "wiped", "1-1", "k", "v"]);
        q(&mut c, &["FLUSHDB"]);
        q(&mut c, &["SELECT", "3"]);
        q(&mut c, &["DEL", "flushed"]);
        let s = snapshot(&mut c);
        let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
        s
    };
    assert!(wait_exit(&mut p.child).success());
    let mut p = start_on(dir.path(), &["--stream-node-max-entries", "5"]);
    let mut c = connect(p.port);
    let after = snapshot(&mut c);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a);
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 2, "orders and empty in db 0");
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(wait_exit(&mut p.child).success());
}

/// The background checkpoint leaves appends in the tail log until it holds
/// `tail-log-checkpoint-bytes`; SHUTDOWN writes them into fjall, so the next start replays
/// none of them and still finds every entry.
#[test]
fn shutdown_checkpoints_the_tail_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_on(dir.path(), &[]);
    let mut c = connect(p.port);
    q(&mut c, &["XADD", "s", "1-1", "f", "v"]);
    for i in 2..=500u64 {
        q(
            &mut c,
            &["XADD", "s", &format!("{i}-1"), "f", &format!("v{i}")],
        );
    }
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(
        info.contains("brooklet_tail_log_bytes:") && !info.contains("brooklet_tail_log_bytes:0\r"),
        "the appends went to the tail log:\n{info}"
    );
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(wait_exit(&mut p.child).success());
    let mut p = start_on(dir.path(), &[]);
    let mut c = connect(p.port);
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    assert!(
        info.contains("brooklet_loaded_tail_appends:0\r"),
        "the restart replayed appends:\n{info}"
    );
    let len: u64 = redis::cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(len, 500);
    let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg("s")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(last[0].0, "500-1");
    assert_eq!(last[0].1, [("f".to_string(), "v500".to_string())]);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(wait_exit(&mut p.child).success());
}

#[test]
fn a_second_server_on_the_same_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start_on(dir.path(), &[]);
    let out = Command::new(BIN)
        .args(["--port", "0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another brooklet-server"), "{err}");
    assert_eq!(ping(first.port), b"+PONG\r\n");
    signal(&first.child, "-TERM");
    assert!(wait_exit(&mut first.child).success());
}

#[cfg(unix)]
#[test]
fn a_torn_journal_tail_is_dropped_and_reported() {
    torn_log_tail_is_dropped_and_reported(
        |dir| walk_files(&dir.join("fjall")),
        "jnl",
        "brooklet_torn_journal_bytes_dropped",
    );
}

#[cfg(unix)]
#[test]
fn a_torn_tail_log_record_is_dropped_and_reported() {
    torn_log_tail_is_dropped_and_reported(
        |dir| walk_files(&dir.join("tail")),
        "log",
        "brooklet_torn_tail_log_bytes_dropped",
    );
}

/// 50 acknowledged XADDs (the first opens the stream in fjall's journal, the others are plain
/// appends in the tail log), a kill, then garbage after the newest file of one log, as a write
/// torn half-way leaves it: the restart keeps all 50, and says what it dropped.
#[cfg(unix)]
fn torn_log_tail_is_dropped_and_reported(
    files: fn(&std::path::Path) -> Vec<std::path::PathBuf>,
    ext: &str,
    info_field: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_on(dir.path(), &["--appendfsync", "always"]);
    {
        let mut c = connect(p.port);
        for i in 1..=50 {
            q(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
        }
    }
    signal(&p.child, "-KILL");
    let _ = wait_exit(&mut p.child);
    let mut logs: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == ext))
        .collect();
    logs.sort_by_key(|f| std::fs::metadata(f).and_then(|m| m.modified()).unwrap());
    let newest = logs.last().expect("no log file");
    // Both logs size a file before writing it (fjall a journal at 64 MiB, Brooklet a tail
    // segment at 8 MiB): the torn write goes a few zero bytes past the last written byte, not
    // past the end of the file.
    let bytes = std::fs::read(newest).unwrap();
    let at = bytes.iter().rposition(|&b| b != 0).unwrap() + 1 + 8;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(newest)
        .unwrap();
    f.seek(std::io::SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&[0xA5; 777]).unwrap();
    drop(f);
    let mut p = start_on(dir.path(), &[]);
    let mut c = connect(p.port);
    let len: i64 = redis::cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(len, 50, "acknowledged entries lost to the torn tail");
    let dropped = info_number(&mut c, info_field);
    assert!(
        (777..=785).contains(&dropped),
        "{dropped} bytes said dropped"
    );
    assert!(
        p.log.lock().unwrap().contains("torn or corrupt"),
        "not reported in the log"
    );
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    let _ = wait_exit(&mut p.child);
    // A restart after a clean shutdown has nothing to report.
    let mut p = start_on(dir.path(), &[]);
    let mut c = connect(p.port);
    assert_eq!(info_number(&mut c, info_field), 0);
    assert!(!p.log.lock().unwrap().contains("torn or corrupt"));
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    let _ = wait_exit(&mut p.child);
}

/// A numeric field of INFO persistence.
fn info_number(c: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Appends `n` entries `1-1`, `2-1`, ... to `key` through one pipeline.
fn fill(c: &mut redis::Connection, key: &str, from: u64, n: u64) {
    let mut pipe = redis::pipe();
    for i in from..from + n {
        pipe.cmd("XADD")
            .arg(key)
            .arg(format!("{i}-1"))
            .arg("f")
            .arg(i)
            .ignore();
    }
    let () = pipe.query(c).unwrap();
}

fn ids_in(c: &mut redis::Connection, key: &str) -> Vec<u64> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(c)
        .unwrap();
    entries
        .iter()
        .map(|(id, _)| id.split('-').next().unwrap().parse().unwrap())
        .collect()
}

/// XPENDING's IDs of group `g` on `key`.
fn pending_of(c: &mut redis::Connection, key: &str) -> Vec<String> {
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(key)
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query(c)
        .unwrap();
    rows.into_iter().map(|(id, ..)| id).collect()
}

/// Trims under ACKED (entries flagged and nodes dropped past pending ones) and DELREF
/// (references let go, a large floor left to the purge thread), then a renumbering batch
/// (XDELEX DELREF) right after a large trim whose purge may still run: a SIGKILL brings
/// nothing back and loses nothing, entries and pending lists alike.
#[test]
fn trims_by_reference_policy_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--appendfsync", "always"];
    let mut p = start_on(dir.path(), &args);
    let mut c = connect(p.port);
    fill(&mut c, "r", 1, 20_000);
    q(&mut c, &["XGROUP", "CREATE", "r", "g", "0"]);
    q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "15000",
            "STREAMS",
            "r",
            ">",
        ],
    );
    let acked: Vec<String> = (1..=15_000u64)
        .filter(|i| ![3, 17, 5000].contains(i))
        .map(|i| format!("{i}-1"))
        .collect();
    let mut ack = vec!["XACK", "r", "g"];
    ack.extend(acked.iter().map(String::as_str));
    q(&mut c, &ack);
    q(&mut c, &["SAVE"]);
    assert_eq!(
        q(&mut c, &["XTRIM", "r", "MAXLEN", "10000", "ACKED"]),
        redis::Value::Int(10_000)
    );
    let kept = ids_in(&mut c, "r");
    assert_eq!(kept[..3], [3, 17, 5000]);
    q(&mut c, &["XTRIM", "r", "DELREF", "MINID", "15000"]);
    assert!(pending_of(&mut c, "r").is_empty());
    q(&mut c, &["XTRIM", "r", "MAXLEN", "1000"]);
    q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "5",
            "STREAMS",
            "r",
            ">",
        ],
    );
    q(&mut c, &["XDELEX", "r", "DELREF", "IDS", "1", "19001-1"]);
    let want = (ids_in(&mut c, "r"), pending_of(&mut c, "r"));
    assert_eq!(want.0.len(), 999);
    assert_eq!(want.1.len(), 4);
    for round in 0..2 {
        p.child.kill().unwrap();
        let _ = p.child.wait();
        p = start_on(dir.path(), &args);
        c = connect(p.port);
        let got = (ids_in(&mut c, "r"), pending_of(&mut c, "r"));
        assert!(
            got == want,
            "round {round}: {} entries from {:?}, {} pending",
            got.0.len(),
            got.0.first(),
            got.1.len()
        );
    }
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(wait_exit(&mut p.child).success());
}

/// A SIGKILL right after trims and a DEL of large streams (their records still being
/// purged in the background) brings no trimmed or deleted entry back and loses none above
/// the trim point; the key reused at once after the DEL comes back as its new life alone.
/// Killed twice: once while the purges run, once after the restart finished them.
#[test]
fn trims_and_deletes_of_large_streams_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--appendfsync", "always"];
    let mut p = start_on(dir.path(), &args);
    let mut c = connect(p.port);
    for key in ["t", "a", "d"] {
        fill(&mut c, key, 1, 30_000);
    }
    // Into fjall, so the trims and the DEL meet records on disk.
    q(&mut c, &["SAVE"]);
    assert_eq!(
        q(&mut c, &["XTRIM", "t", "MAXLEN", "1000"]),
        redis::Value::Int(29_000)
    );
    q(&mut c, &["XADD", "a", "MAXLEN", "10", "30001-1", "f", "v"]);
    assert_eq!(
        q(&mut c, &["XDEL", "t", "29002-1", "29003-1"]),
        redis::Value::Int(2)
    );
    fill(&mut c, "t", 30_001, 5);
    assert_eq!(q(&mut c, &["DEL", "d"]), redis::Value::Int(1));
    fill(&mut c, "d", 7, 3);
    let t: Vec<u64> = (29_001..=30_005)
        .filter(|i| ![29_002, 29_003].contains(i))
        .collect();
    let a: Vec<u64> = (29_992..=30_001).collect();
    for round in 0..2 {
        p.child.kill().unwrap();
        let _ = p.child.wait();
        p = start_on(dir.path(), &args);
        c = connect(p.port);
        assert_eq!(ids_in(&mut c, "t"), t, "round {round}");
        assert_eq!(ids_in(&mut c, "a"), a, "round {round}");
        assert_eq!(ids_in(&mut c, "d"), vec![7, 8, 9], "round {round}");
        let len: u64 = redis::cmd("XLEN").arg("t").query(&mut c).unwrap();
        assert_eq!(len, 1003);
    }
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(wait_exit(&mut p.child).success());
}

/// XNACK's view of a group: its `XINFO STREAM FULL` and the pending rows without the idle
/// times of owned entries (the clock moves); NACKed rows keep their -1.
fn nack_view(c: &mut redis::Connection) -> Vec<String> {
    let mut out = vec![format!("{:?}", q(c, &["XINFO", "STREAM", "s", "FULL"]))];
    for g in ["g", "g2"] {
        let redis::Value::Array(rows) = q(c, &["XPENDING", "s", g, "-", "+", "100"]) else {
            panic!()
        };
        for row in rows {
            let redis::Value::Array(mut r) = row else {
                panic!()
            };
            if r[2] != redis::Value::Int(-1) {
                r[2] = redis::Value::Int(0);
            }
            out.push(format!("{g} {r:?}"));
        }
    }
    out
}

/// Released entries, their counts and the NACK zone's order come back after a SIGKILL:
/// from fjall (released before a SAVE) and from the tail log (released after it).
#[cfg(unix)]
#[test]
fn released_entries_and_their_order_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_on(dir.path(), &[]);
    let mut c = connect(p.port);
    for i in 1..=6 {
        q(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    q(&mut c, &["XGROUP", "CREATE", "s", "g2", "0"]);
    q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"],
    );
    q(
        &mut c,
        &["XNACK", "s", "g", "FAIL", "IDS", "2", "6-0", "1-0"],
    );
    q(&mut c, &["SAVE"]);
    q(
        &mut c,
        &["XNACK", "s", "g", "FAIL", "IDS", "3", "5-0", "2-0", "4-0"],
    );
    q(&mut c, &["XNACK", "s", "g", "FATAL", "IDS", "1", "1-0"]);
    q(&mut c, &["XCLAIM", "s", "g", "c2", "0", "6-0"]);
    q(
        &mut c,
        &[
            "XNACK",
            "s",
            "g2",
            "SILENT",
            "IDS",
            "1",
            "3-0",
            "RETRYCOUNT",
            "9",
            "FORCE",
        ],
    );
    let before = nack_view(&mut c);
    assert!(before[0].contains("nacked-count"), "{}", before[0]);
    signal(&p.child, "-KILL");
    let _ = wait_exit(&mut p.child);
    let mut p = start_on(dir.path(), &[]);
    let mut c = connect(p.port);
    assert_eq!(nack_view(&mut c), before);
    // The zone's order: 5-0, 2-0, 4-0, then 1-0 (released again last).
    let mut order = Vec::new();
    for _ in 0..4 {
        let v = q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c3",
                "COUNT",
                "1",
                "CLAIM",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        );
        let text = format!("{v:?}");
        let id = ["5-0", "2-0", "4-0", "1-0", "3-0", "6-0"]
            .into_iter()
            .find(|id| text.contains(&format!("\"{id}\"")))
            .unwrap_or_else(|| panic!("{text}"));
        order.push(id);
    }
    assert_eq!(order, ["5-0", "2-0", "4-0", "1-0"]);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(wait_exit(&mut p.child).success());
}
