//! End-to-end tests of the persistence commands: DEBUG RELOAD, SAVE, LASTSAVE, INFO, and
//! switching the fsync policy at run time.

#![allow(clippy::unwrap_used)]

use brooklet::TestServer;
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;

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
        info_u64(&info, "brooklet_fsyncs")
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
    assert_eq!(
        info_u64(&info, "brooklet_batches_durable"),
        info_u64(&info, "brooklet_batches_committed"),
        "{info}"
    );
    assert!(fsyncs(&mut c) > start);
}

/// One numeric field of an INFO reply.
fn info_u64(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in:\n{info}"))
        .trim()
        .parse()
        .unwrap()
}

fn ids(v: &[(String, Vec<(String, String)>)]) -> Vec<u64> {
    v.iter()
        .map(|(id, _)| id.split('-').next().unwrap().parse().unwrap())
        .collect()
}

type Entries = Vec<(String, Vec<(String, String)>)>;

/// With `stream-cache-bytes 0` every node but the newest leaves memory as soon as it is
/// closed, so each read below of older entries goes to disk and back.
#[test]
fn a_stream_larger_than_its_cache_is_read_back_from_disk() {
    let server = TestServer::start_with(|c| {
        c.enable_debug_command = "yes".into();
        c.stream_cache_bytes = 0;
    });
    let mut c = server.client(false);
    let mut pipe = redis::pipe();
    for i in 1..=5000u64 {
        pipe.cmd("XADD")
            .arg("s")
            .arg(format!("{i}-0"))
            .arg("f")
            .arg(format!("v{i}"))
            .ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    // SAVE writes the appends still only in the tail log into fjall; from then on they can
    // leave memory.
    let _: () = cmd("SAVE").query(&mut c).unwrap();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let all: Entries = cmd("XRANGE")
            .arg("s")
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap();
        assert_eq!(ids(&all), (1..=5000).collect::<Vec<_>>());
        assert_eq!(all[41].1, vec![("f".to_string(), "v42".to_string())]);
        let last: Entries = cmd("XREVRANGE")
            .arg("s")
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(3)
            .query(&mut c)
            .unwrap();
        assert_eq!(ids(&last), vec![5000, 4999, 4998]);
        let mid: Entries = cmd("XRANGE")
            .arg("s")
            .arg(100)
            .arg(200)
            .query(&mut c)
            .unwrap();
        assert_eq!(ids(&mid), (100..=200).collect::<Vec<_>>());
        let read: Value = cmd("XREAD")
            .arg("COUNT")
            .arg(2)
            .arg("STREAMS")
            .arg("s")
            .arg("1234-0")
            .query(&mut c)
            .unwrap();
        let text = format!("{read:?}");
        assert!(text.contains("1235-0") && text.contains("1236-0"), "{text}");
    }
    let deleted: i64 = cmd("XDEL")
        .arg("s")
        .arg("10-0")
        .arg("2500-0")
        .arg("999999-0")
        .query(&mut c)
        .unwrap();
    assert_eq!(deleted, 2);
    let around: Entries = cmd("XRANGE").arg("s").arg(9).arg(11).query(&mut c).unwrap();
    assert_eq!(ids(&around), vec![9, 11]);
    let _: () = cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let got: Value = cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("alice")
        .arg("COUNT")
        .arg(300)
        .arg("STREAMS")
        .arg("s")
        .arg(">")
        .query(&mut c)
        .unwrap();
    assert!(format!("{got:?}").contains("301-0"));
    // Alice's history re-reads entries by ID from cold nodes; XCLAIM does too.
    let history: Value = cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("alice")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg("s")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let text = format!("{history:?}");
    assert!(text.contains("v1") && text.contains("v2"), "{text}");
    let claimed: Entries = cmd("XCLAIM")
        .arg("s")
        .arg("g")
        .arg("bob")
        .arg(0)
        .arg("3-0")
        .arg("4-0")
        .query(&mut c)
        .unwrap();
    assert_eq!(ids(&claimed), vec![3, 4]);
    assert_eq!(claimed[1].1, vec![("f".to_string(), "v4".to_string())]);
    // An exact trim cuts into a node that is on disk only.
    let removed: i64 = cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg(4000)
        .query(&mut c)
        .unwrap();
    assert_eq!(removed, 998);
    let first: Entries = cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    // 998 oldest live entries: 1..=9 and 11..=999 (10 was deleted).
    assert_eq!(ids(&first), vec![1000]);
    let info: String = cmd("INFO").arg("persistence").query(&mut c).unwrap();
    let misses = info_u64(&info, "brooklet_stream_cache_misses");
    assert!(misses > 10, "only {misses} reads went to disk:\n{info}");
    let hits = info_u64(&info, "brooklet_stream_cache_hits");
    assert!(hits > 0, "no read found its node in memory:\n{info}");
    let before = state(&mut c);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(state(&mut c), before, "DEBUG RELOAD changed the state");
    let len: u64 = cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(len, 4000);
}

/// With small tail-log segments, the background checkpoint writes the appends of closed
/// segments into fjall and deletes the segments while clients keep writing to many streams;
/// a reload then finds every entry, in order, whichever log it was in.
#[test]
fn the_checkpoint_retires_closed_tail_log_segments_and_loses_nothing() {
    let server = TestServer::start_with(|c| {
        c.enable_debug_command = "yes".into();
        c.tail_log_segment_bytes = 4096;
        c.tail_log_checkpoint_bytes = 0;
    });
    let mut c = server.client(false);
    let streams = 200u64;
    let per_stream = 25u64;
    for round in 1..=per_stream {
        let mut pipe = redis::pipe();
        for s in 0..streams {
            pipe.cmd("XADD")
                .arg(format!("s{s}"))
                .arg(format!("{round}-0"))
                .arg("f")
                .arg(format!("v{s}-{round}"))
                .ignore();
        }
        let _: () = pipe.query(&mut c).unwrap();
    }
    // Each segment holds about a hundred appends: dozens were closed, and the checkpoint
    // retires them within its 100 ms poll. Bounded wait, no fixed sleep.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let info: String = cmd("INFO").arg("persistence").query(&mut c).unwrap();
        if info_u64(&info, "brooklet_tail_log_segments") == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "closed segments never retired:\n{info}"
        );
        std::thread::yield_now();
    }
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    for s in 0..streams {
        let all: Entries = cmd("XRANGE")
            .arg(format!("s{s}"))
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap();
        assert_eq!(
            ids(&all),
            (1..=per_stream).collect::<Vec<_>>(),
            "stream s{s}"
        );
        let want = vec![("f".to_string(), format!("v{s}-{per_stream}"))];
        assert_eq!(all.last().map(|e| e.1.clone()), Some(want), "stream s{s}");
    }
}

/// A checkpoint batch spans streams of every shard, while clients append to them and trim
/// them (a trim waits, under its shard's lock, for a batch holding its stream): the
/// checkpoint must never wait for that lock in turn. Every client gets every reply (the
/// client's read timeout fails the test if the server wedges), and the server still answers.
#[test]
fn checkpoints_over_many_streams_never_wedge_trims() {
    let server = TestServer::start_with(|c| {
        c.tail_log_segment_bytes = 2048;
        c.tail_log_checkpoint_bytes = 0;
    });
    // Raw connections, whose every read has the harness's timeout, made before the load.
    let mut clients: Vec<_> = (0..4).map(|_| server.raw()).collect();
    let mut after = server.raw();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    std::thread::scope(|scope| {
        for (client, c) in (0u64..).zip(clients.iter_mut()) {
            scope.spawn(move || {
                let value = "x".repeat(40);
                let mut round = 0u64;
                while std::time::Instant::now() < deadline {
                    for i in 0..50u64 {
                        let key = format!("s{}", (round * 50 + i * 7 + client * 13) % 256);
                        let key = key.as_bytes();
                        if client < 2 {
                            c.send_cmd(&[b"XADD", key, b"*", b"f", value.as_bytes()]);
                        } else if i % 2 == 0 {
                            c.send_cmd(&[b"XTRIM", key, b"MAXLEN", b"5"]);
                        } else {
                            c.send_cmd(&[b"XADD", key, b"MAXLEN", b"3", b"*", b"f", b"v"]);
                        }
                    }
                    for _ in 0..50 {
                        let reply = c.read2();
                        assert!(
                            !matches!(reply, F2::Error(_)),
                            "client {client} round {round}: {reply:?}"
                        );
                    }
                    round += 1;
                }
            });
        }
    });
    after.send_cmd(&[b"PING"]);
    assert_eq!(after.read2(), F2::SimpleString(b"PONG".to_vec()));
}

/// Closed segments stay in the tail log until they hold `tail-log-checkpoint-bytes`; set at
/// run time to 0, the background checkpoint retires them, and nothing is lost.
#[test]
fn config_set_tail_log_checkpoint_bytes_releases_the_checkpoint() {
    let server = TestServer::start_with(|c| {
        c.enable_debug_command = "yes".into();
        c.tail_log_segment_bytes = 4096;
    });
    let mut c = server.client(false);
    let got: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("tail-log-checkpoint-bytes")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, ["tail-log-checkpoint-bytes", "67108864"]);
    let err = cmd("CONFIG")
        .arg("SET")
        .arg("tail-log-checkpoint-bytes")
        .arg("lots")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("argument must be a memory value"),
        "{err}"
    );
    let _: () = cmd("XADD")
        .arg("s")
        .arg("1-0")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let mut pipe = redis::pipe();
    for ms in 2..=2000u64 {
        pipe.cmd("XADD")
            .arg("s")
            .arg(format!("{ms}-0"))
            .arg("f")
            .arg(format!("v{ms}"))
            .ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let segments = |c: &mut redis::Connection| {
        let info: String = cmd("INFO").arg("persistence").query(c).unwrap();
        info_u64(&info, "brooklet_tail_log_segments")
    };
    // About 60 KB of appends in 4 KiB segments, far below the default 64 MB: none retired.
    assert!(segments(&mut c) > 10, "{}", segments(&mut c));
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("tail-log-checkpoint-bytes")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while segments(&mut c) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "closed segments never retired"
        );
        std::thread::yield_now();
    }
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    let len: u64 = cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(len, 2000);
    let last: Entries = cmd("XREVRANGE")
        .arg("s")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(ids(&last), [2000]);
}

/// The checkpoint writes its batches after letting the shard's lock go: appends, deletions,
/// trims, group reads and acknowledgements, and DEL of the same streams all run meanwhile,
/// from several clients, with segments small enough that checkpoints run throughout.
/// Whatever they left, DEBUG RELOAD and SAVE followed by a reload find it again.
#[test]
fn checkpoints_racing_every_kind_of_change_reload_identically() {
    let server = TestServer::start_with(|c| {
        c.enable_debug_command = "yes".into();
        c.tail_log_segment_bytes = 2048;
        c.tail_log_checkpoint_bytes = 0;
    });
    let keys = ["k0", "k1", "k2", "k3"];
    let mut setup = server.client(false);
    for k in keys {
        let _: () = cmd("XGROUP")
            .arg("CREATE")
            .arg(k)
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut setup)
            .unwrap();
    }
    std::thread::scope(|scope| {
        // Appends to every stream, in pipelines.
        scope.spawn(|| {
            let mut c = server.client(false);
            for round in 0..150 {
                let mut pipe = redis::pipe();
                for i in 0..40 {
                    pipe.cmd("XADD")
                        .arg(keys[(round + i) % keys.len()])
                        .arg("*")
                        .arg("f")
                        .arg(format!("{round}-{i}"))
                        .ignore();
                }
                let _: () = pipe.query(&mut c).unwrap();
            }
        });
        // Group reads and acknowledgements on k0, deletions on k1, trims on k2.
        scope.spawn(|| {
            let mut c = server.client(true);
            for round in 0..300 {
                let read: Value = cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg("c1")
                    .arg("COUNT")
                    .arg(20)
                    .arg("STREAMS")
                    .arg("k0")
                    .arg(">")
                    .query(&mut c)
                    .unwrap();
                if round % 2 == 0 {
                    let ids = entry_ids(&read);
                    if !ids.is_empty() {
                        let _: i64 = cmd("XACK")
                            .arg("k0")
                            .arg("g")
                            .arg(&ids[..ids.len() / 2 + 1])
                            .query(&mut c)
                            .unwrap();
                    }
                }
                let some: Entries = cmd("XRANGE")
                    .arg("k1")
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(3)
                    .query(&mut c)
                    .unwrap();
                if let Some((id, _)) = some.get(round % 3) {
                    let _: i64 = cmd("XDEL").arg("k1").arg(id).query(&mut c).unwrap();
                }
                let _: i64 = cmd("XTRIM")
                    .arg("k2")
                    .arg("MAXLEN")
                    .arg(if round % 2 == 0 { "~" } else { "=" })
                    .arg(500)
                    .query(&mut c)
                    .unwrap();
            }
        });
        // k3 is deleted now and then; the next append creates it again.
        scope.spawn(|| {
            let mut c = server.client(false);
            for _ in 0..40 {
                let _: i64 = cmd("DEL").arg("k3").query(&mut c).unwrap();
                let _: Value = cmd("XRANGE")
                    .arg("k3")
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(200)
                    .query(&mut c)
                    .unwrap();
            }
        });
    });
    // XPENDING's extended form also reports idle times, which move on by themselves: only
    // the IDs, consumers and delivery counts are compared.
    let snapshot = |c: &mut redis::Connection| -> Vec<StreamState> {
        keys.iter()
            .map(|k| {
                let range: Value = cmd("XRANGE").arg(*k).arg("-").arg("+").query(c).unwrap();
                let full: Value = cmd("XINFO")
                    .arg("STREAM")
                    .arg(*k)
                    .arg("FULL")
                    .query(c)
                    .unwrap_or(Value::Nil);
                let pending: Vec<(String, String, i64, i64)> = cmd("XPENDING")
                    .arg(*k)
                    .arg("g")
                    .arg("-")
                    .arg("+")
                    .arg(100_000)
                    .query(c)
                    .unwrap_or_default();
                let pending = pending
                    .into_iter()
                    .map(|(id, consumer, _idle, count)| (id, consumer, count))
                    .collect();
                (range, full, pending)
            })
            .collect()
    };
    let mut c = server.client(false);
    let before = snapshot(&mut c);
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert!(snapshot(&mut c) == before, "DEBUG RELOAD changed the state");
    let _: () = cmd("SAVE").query(&mut c).unwrap();
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert!(
        snapshot(&mut c) == before,
        "SAVE then DEBUG RELOAD changed the state"
    );
}

/// A stream's XRANGE, XINFO STREAM FULL, and its pending entries (ID, consumer, deliveries).
type StreamState = (Value, Value, Vec<(String, String, i64)>);

/// The IDs of the entries in an XREADGROUP reply (RESP3 map or RESP2 array).
fn entry_ids(reply: &Value) -> Vec<String> {
    let streams: Vec<&Value> = match reply {
        Value::Map(m) => m.iter().map(|(_, v)| v).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) => kv.get(1),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for s in streams {
        if let Value::Array(entries) = s {
            for e in entries {
                if let Value::Array(parts) = e
                    && let Some(Value::BulkString(id)) = parts.first()
                {
                    out.push(String::from_utf8_lossy(id).into_owned());
                }
            }
        }
    }
    out
}

/// Trims far below a large stream's length (XTRIM, XADD MAXLEN / MINID), XDEL of many IDs,
/// and DEL followed at once by XADD to the same key: each takes effect for readers at once,
/// reads after it never meet what went (from memory or, with `stream-cache-bytes 0`, from
/// disk while the records are still being purged), and DEBUG RELOAD rebuilds the same
/// state from disk.
#[test]
fn large_trims_and_deletes_take_effect_at_once_and_reload_the_same() {
    let server = TestServer::start_with(|c| {
        c.enable_debug_command = "yes".into();
        c.stream_cache_bytes = 0;
    });
    let mut c = server.client(false);
    let fill = |c: &mut redis::Connection, key: &str, from: u64, n: u64| {
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
    };
    let all = |c: &mut redis::Connection, key: &str| -> Vec<u64> {
        let e: Entries = cmd("XRANGE").arg(key).arg("-").arg("+").query(c).unwrap();
        ids(&e)
    };
    for key in ["s", "m", "d"] {
        fill(&mut c, key, 1, 20_000);
    }
    // Into fjall: the trims below meet records on disk, most of them cold.
    let _: () = cmd("SAVE").query(&mut c).unwrap();
    let n: u64 = cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg(150)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 19_850);
    assert_eq!(all(&mut c, "s"), (19_851..=20_000).collect::<Vec<_>>());
    let _: String = cmd("XADD")
        .arg("s")
        .arg("MAXLEN")
        .arg(100)
        .arg("20001-1")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    assert_eq!(all(&mut c, "s"), (19_902..=20_001).collect::<Vec<_>>());
    let _: String = cmd("XADD")
        .arg("m")
        .arg("MINID")
        .arg("19990")
        .arg("20001-1")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    assert_eq!(all(&mut c, "m"), (19_990..=20_001).collect::<Vec<_>>());
    let gone: Vec<String> = (19_902..19_950).map(|i| format!("{i}-1")).collect();
    let n: u64 = cmd("XDEL").arg("s").arg(&gone).query(&mut c).unwrap();
    assert_eq!(n, 48);
    assert_eq!(all(&mut c, "s"), (19_950..=20_001).collect::<Vec<_>>());
    let n: u64 = cmd("DEL").arg("d").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: String = cmd("XADD")
        .arg("d")
        .arg("5-1")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    assert_eq!(all(&mut c, "d"), vec![5]);
    // XDEL of the new life: a batch of its own, which waits for the old life's purge.
    fill(&mut c, "d", 6, 3);
    let n: u64 = cmd("XDEL").arg("d").arg("6-1").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let before: Vec<_> = ["s", "m", "d"]
        .iter()
        .map(|k| {
            (
                all(&mut c, k),
                cmd("XINFO")
                    .arg("STREAM")
                    .arg(*k)
                    .query::<Value>(&mut c)
                    .unwrap(),
            )
        })
        .collect();
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    let after: Vec<_> = ["s", "m", "d"]
        .iter()
        .map(|k| {
            (
                all(&mut c, k),
                cmd("XINFO")
                    .arg("STREAM")
                    .arg(*k)
                    .query::<Value>(&mut c)
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(before, after);
    assert_eq!(after[2].0, vec![5, 7, 8]);
    let info: String = cmd("INFO").arg("memory").query(&mut c).unwrap();
    assert_eq!(info_u64(&info, "lazyfree_pending_objects"), 0);
}
