//! A data directory written by an older build opens and serves the same data.
//!
//! `tests/fixtures/format6/` was written by the server at the commit before issue 20's
//! restructuring (on-disk format 6) and left by a SIGKILL with appends and group changes still
//! only in the tail log and batches only in fjall's journal; `tests/fixtures/format6.expected.txt`
//! is what that server answered about every key just before the kill. Both come from
//! `tests/fixtures/make-format6.sh` (see `tests/fixtures/README.md`). The test opens a copy,
//! asks the same questions, and expects the same answers; then writes, restarts and reads back.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use brooklet::{Config, TestServer};
use redis::cmd;
use redis_protocol::resp2::types::OwnedFrame as F2;

/// The fixture, as committed.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Copies the fixture into `to` and gives the files `format6.sparse` lists their real length
/// (the committed copies end after their last non-zero byte; the rest was never written).
fn copy_fixture(to: &Path) {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    copy_dir(&fixtures().join("format6"), to);
    let sparse = std::fs::read_to_string(fixtures().join("format6.sparse")).unwrap();
    for line in sparse.lines().filter(|l| !l.trim().is_empty()) {
        let (path, len) = line.rsplit_once(' ').unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(to.join(path))
            .unwrap();
        file.set_len(len.parse().unwrap()).unwrap();
    }
}

/// The settings the fixture was written under (make-format6.sh).
fn configure(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.dir = dir;
        c.appendfsync = brooklet_server::Fsync::Always;
        c.stream_node_max_entries = 3;
        c.tail_log_segment_bytes = 64 * 1024;
    }
}

/// The expected file as (command line, reply as redis-cli prints it) pairs, in order.
fn expected() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(fixtures().join("format6.expected.txt")).unwrap();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("> ") {
            pairs.push((command.to_string(), String::new()));
        } else {
            let (_, reply) = pairs.last_mut().expect("the file starts with a command");
            reply.push_str(line);
            reply.push('\n');
        }
    }
    pairs
}

/// A bulk string as redis-cli quotes it (`sdscatrepr`).
fn quoted(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

/// A reply as `redis-cli --no-raw` prints it (its `cliFormatReplyTTY`).
fn render(frame: &F2, prefix: &str, out: &mut String) {
    match frame {
        F2::SimpleString(s) => out.push_str(&String::from_utf8_lossy(s)),
        F2::Error(e) => out.push_str(&format!("(error) {e}")),
        F2::Integer(i) => out.push_str(&format!("(integer) {i}")),
        F2::BulkString(b) => quoted(b, out),
        F2::Null => out.push_str("(nil)"),
        F2::Array(items) if items.is_empty() => out.push_str("(empty array)"),
        F2::Array(items) => {
            let width = items.len().to_string().len();
            let inner = format!("{prefix}{}", " ".repeat(width + 2));
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(prefix);
                }
                out.push_str(&format!("{:>width$}) ", i + 1));
                render(item, &inner, out);
            }
            return;
        }
    }
    out.push('\n');
}

/// Takes out of a reply what depends on when it is asked rather than on the data: idle
/// times (XINFO CONSUMERS `idle` / `inactive`, the third field of each XPENDING entry) and the
/// order of KEYS. Delivery, seen and active times are stored, and kept.
fn normalize(command: &str, reply: &str) -> String {
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let lines: Vec<&str> = reply.lines().collect();
    match words.as_slice() {
        ["KEYS", ..] => {
            let mut keys: Vec<&str> = lines
                .iter()
                .map(|l| l.split_once(") ").map_or(*l, |(_, key)| key))
                .collect();
            keys.sort_unstable();
            keys.join("\n")
        }
        ["XINFO", "CONSUMERS", ..] => {
            let mut out = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let after_idle = i > 0 && {
                    let before = lines[i - 1].trim_end();
                    before.ends_with("\"idle\"") || before.ends_with("\"inactive\"")
                };
                out.push(if after_idle {
                    mask_integer(line)
                } else {
                    line.to_string()
                });
            }
            out.join("\n")
        }
        ["XPENDING", _, _, _, _, _, ..] => lines
            .iter()
            .map(|line| {
                if line.trim_start().starts_with("3) (integer) ") {
                    mask_integer(line)
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ["XINFO", "STREAM", _, "FULL", ..] => without_zero_nacked_count(reply.trim_end()),
        _ => reply.trim_end().to_string(),
    }
}

/// Where a rendered line's first `N)` index ends (the column of its `)`) and N.
fn first_index(line: &str) -> Option<(usize, u64)> {
    let start = line.len() - line.trim_start().len();
    let close = start + line[start..].find(')')?;
    let n = line[start..close].parse().ok()?;
    Some((close, n))
}

/// XINFO STREAM FULL without the groups' `nacked-count 0` pairs (XNACK's field, Redis 8.8,
/// which the server that wrote the fixture did not have; such a directory holds no NACKed
/// entry, so any other count is a difference), each group's later fields numbered as they
/// were before it.
fn without_zero_nacked_count(reply: &str) -> String {
    let lines: Vec<&str> = reply.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let pair = lines[i].trim_end().ends_with(") \"nacked-count\"")
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim_end().ends_with(") (integer) 0"));
        let Some((col, _)) = first_index(lines[i]).filter(|_| pair) else {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        };
        i += 2;
        while i < lines.len() {
            match first_index(lines[i]) {
                Some((c, n)) if c == col => {
                    let label = format!("{}) ", n - 2);
                    let rest = &lines[i][col + 2..];
                    out.push(format!("{label:>width$}{rest}", width = col + 2));
                }
                Some((c, _)) if c < col => break,
                _ => out.push(lines[i].to_string()),
            }
            i += 1;
        }
    }
    out.join("\n")
}

/// `N) (integer) 123` as `N) (integer) <ms>`; a negative figure (-1: never active) is kept.
fn mask_integer(line: &str) -> String {
    match line.rsplit_once("(integer) ") {
        Some((head, n)) if !n.starts_with('-') => format!("{head}(integer) <ms>"),
        _ => line.to_string(),
    }
}

/// XINFO STREAM's fields added since the fixture was written (Redis 8.6's IDMP fields;
/// Brooklet's group counters and dead-letter settings, in XINFO GROUPS too), taken out of a reply so the rest compares with the old server's answers.
fn without_idmp_fields(command: &str, frame: F2) -> F2 {
    const IDMP: [&[u8]; 6] = [
        b"idmp-duration",
        b"idmp-maxsize",
        b"pids-tracked",
        b"iids-tracked",
        b"iids-added",
        b"iids-duplicates",
    ];
    let upper = command.to_ascii_uppercase();
    match frame {
        F2::Array(items) if upper.starts_with("XINFO STREAM") => F2::Array(
            items
                .chunks(2)
                .filter(|pair| !matches!(&pair[0], F2::BulkString(k) if IDMP.contains(&&k[..])))
                .flat_map(|pair| match (&pair[0], &pair[1]) {
                    (F2::BulkString(k), F2::Array(groups)) if &k[..] == b"groups" => vec![
                        pair[0].clone(),
                        F2::Array(groups.iter().cloned().map(without_group_fields).collect()),
                    ],
                    _ => pair.to_vec(),
                })
                .collect(),
        ),
        F2::Array(groups) if upper.starts_with("XINFO GROUPS") => {
            F2::Array(groups.into_iter().map(without_group_fields).collect())
        }
        frame => frame,
    }
}

/// A group's fields Brooklet adds after Redis's (counters, dead-letter settings), taken
/// out of one group of XINFO GROUPS or XINFO STREAM FULL.
fn without_group_fields(group: F2) -> F2 {
    const ADDED: [&[u8]; 6] = [
        b"entries-delivered",
        b"entries-acked",
        b"entries-nacked",
        b"entries-dead-lettered",
        b"dlq-key",
        b"dlq-max-deliveries",
    ];
    match group {
        F2::Array(items) => F2::Array(
            items
                .chunks(2)
                .filter(|pair| !matches!(&pair[0], F2::BulkString(k) if ADDED.contains(&&k[..])))
                .flatten()
                .cloned()
                .collect(),
        ),
        other => other,
    }
}

/// Asks every question of the expected file and checks every answer.
fn check_served_as_before(server: &TestServer) {
    let mut conn = server.raw();
    let mut wrong = Vec::new();
    let pairs = expected();
    assert!(pairs.len() > 80, "the expected file lost its commands");
    for (command, want) in &pairs {
        // An inline command is split as redis-cli split it (Redis's sdssplitargs), so the
        // binary key's escapes mean the same bytes.
        conn.send(format!("{command}\r\n").as_bytes());
        let mut got = String::new();
        render(&without_idmp_fields(command, conn.read2()), "", &mut got);
        let (want, got) = (normalize(command, want), normalize(command, &got));
        if want != got {
            wrong.push(format!(
                "> {command}\n--- expected\n{want}\n--- served\n{got}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answers differ from the old server's:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_renderer_prints_replies_as_redis_cli_does() {
    // The comparison relies on replies printed exactly as `redis-cli --no-raw` prints them
    // (nesting, index widths, escapes) and on the idle-time masks finding their lines in
    // redis-cli's captured text.
    let pairs = expected();
    let orders_pending = pairs
        .iter()
        .find(|(c, _)| c == "XPENDING orders workers - + 100")
        .unwrap();
    let got = normalize(&orders_pending.0, &orders_pending.1);
    assert!(got.contains("1) \"1-3\"\n   2) \"bob\"\n   3) (integer) <ms>\n   4) (integer) 2"));
    let mut out = String::new();
    render(
        &F2::Array(vec![
            F2::BulkString(b"bin\x00\xffkey".to_vec()),
            F2::Array((1..=10).map(F2::Integer).collect()),
            F2::Array(vec![]),
            F2::Null,
            F2::SimpleString(b"OK".to_vec()),
        ]),
        "",
        &mut out,
    );
    assert_eq!(
        out,
        "1) \"bin\\x00\\xffkey\"\n2)  1) (integer) 1\n    2) (integer) 2\n    3) (integer) 3\n    \
         4) (integer) 4\n    5) (integer) 5\n    6) (integer) 6\n    7) (integer) 7\n    \
         8) (integer) 8\n    9) (integer) 9\n   10) (integer) 10\n3) (empty array)\n4) (nil)\n5) OK\n"
    );
}

#[test]
fn a_format6_directory_from_the_previous_build_serves_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());

    // Start-up replays fjall's journal and the tail log the kill left.
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    check_served_as_before(&server);
    // A few figures spelled out, as the old server gave them (format6.expected.txt).
    let mut c = server.client(false);
    let len: usize = cmd("XLEN").arg("orders").query(&mut c).unwrap();
    assert_eq!(len, 9);
    let pending: (usize, String, String, Vec<(String, String)>) = cmd("XPENDING")
        .arg("orders")
        .arg("workers")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        pending,
        (
            5,
            "1-3".into(),
            "1-8".into(),
            vec![
                ("alice".into(), "1".into()),
                ("bob".into(), "2".into()),
                ("carol".into(), "2".into())
            ]
        )
    );
    drop(c);
    // A graceful stop checkpoints what the tail log held; the next start reads it from fjall.
    server.stop();
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    check_served_as_before(&server);

    // Writes go on where the old server stopped.
    let mut c = server.client(false);
    let id: String = cmd("XADD")
        .arg("orders")
        .arg("1-11")
        .arg("item")
        .arg("rye")
        .arg("qty")
        .arg("11")
        .query(&mut c)
        .unwrap();
    assert_eq!(id, "1-11");
    let low: redis::RedisResult<String> = cmd("XADD")
        .arg("orders")
        .arg("1-10")
        .arg("f")
        .arg("v")
        .query(&mut c);
    let low = low.unwrap_err().to_string();
    assert!(
        low.contains(
            "The ID specified in XADD is equal or smaller than the target stream top item"
        ),
        "{low}"
    );
    let read: redis::streams::StreamReadReply = cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("alice")
        .arg("STREAMS")
        .arg("orders")
        .arg(">")
        .query(&mut c)
        .unwrap();
    let ids: Vec<&str> = read.keys[0].ids.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1-9", "1-10", "1-11"]);
    let acked: usize = cmd("XACK")
        .arg("orders")
        .arg("workers")
        .arg("1-3")
        .arg("1-5")
        .arg("1-9")
        .query(&mut c)
        .unwrap();
    assert_eq!(acked, 3);
    let deleted: usize = cmd("XDEL").arg("orders").arg("1-1").query(&mut c).unwrap();
    assert_eq!(deleted, 1);
    let id: String = cmd("XADD")
        .arg(&b"bin\x00\xffkey"[..])
        .arg("1-3")
        .arg(&b"f\x00\xfe"[..])
        .arg("third")
        .query(&mut c)
        .unwrap();
    assert_eq!(id, "1-3");
    let _: () = cmd("SELECT").arg(1).query(&mut c).unwrap();
    let id: String = cmd("XADD")
        .arg("only1")
        .arg("*")
        .arg("x")
        .arg("z")
        .query(&mut c)
        .unwrap();
    let ms: u64 = id.split_once('-').unwrap().0.parse().unwrap();
    assert!(ms > 9, "{id}");
    drop(c);
    server.stop();

    // And survive a restart.
    let server = TestServer::try_start_with(configure(dir.path())).unwrap();
    let mut c = server.client(false);
    let ids: Vec<(String, Vec<String>)> = cmd("XRANGE")
        .arg("orders")
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    let ids: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1-3", "1-4", "1-5", "1-6", "1-7", "1-8", "1-9", "1-10", "1-11"
        ]
    );
    let pending: (usize, String, String, Vec<(String, String)>) = cmd("XPENDING")
        .arg("orders")
        .arg("workers")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        pending,
        (
            5,
            "1-6".into(),
            "1-11".into(),
            vec![
                ("alice".into(), "2".into()),
                ("bob".into(), "1".into()),
                ("carol".into(), "2".into())
            ]
        )
    );
    let binary: Vec<(String, Vec<Vec<u8>>)> = cmd("XRANGE")
        .arg(&b"bin\x00\xffkey"[..])
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    assert_eq!(binary.len(), 3);
    assert_eq!(binary[2].1, [b"f\x00\xfe".to_vec(), b"third".to_vec()]);
    let _: () = cmd("SELECT").arg(1).query(&mut c).unwrap();
    let len: usize = cmd("XLEN").arg("only1").query(&mut c).unwrap();
    assert_eq!(len, 2);
    let keys: usize = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(keys, 2);
}
