//! End-to-end tests of protections against idle and misbehaving clients.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use brooklet::TestServer;
use redis::cmd;
use redis_protocol::resp2::types::OwnedFrame as F2;

#[test]
fn idle_clients_are_closed_after_timeout_but_subscribers_and_blocked_readers_are_not() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg(1)
        .query(&mut admin)
        .unwrap();
    let mut idle = server.raw();
    idle.send_cmd(&[b"PING"]);
    assert_eq!(idle.read2(), F2::SimpleString(b"PONG".to_vec()));
    let mut subscriber = server.raw();
    subscriber.send_cmd(&[b"SUBSCRIBE", b"news"]);
    let _ = subscriber.read2();
    let mut blocked = server.raw();
    blocked.send_cmd(&[b"XREAD", b"BLOCK", b"2500", b"STREAMS", b"s", b"$"]);
    let started = Instant::now();
    assert!(idle.is_closed(), "the idle client was not closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "closed too early: {waited:?}"
    );
    // The blocked reader times out normally (nil), it is not cut off.
    assert_eq!(blocked.read2(), F2::Null);
    // The admin connection was idle too and is gone; a fresh one publishes.
    let mut publisher = server.client(false);
    let n: i64 = cmd("PUBLISH")
        .arg("news")
        .arg("still here")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1, "the subscriber was closed for idleness");
    let _ = subscriber.read2();
}

fn connected(c: &mut redis::Connection) -> u64 {
    let info: String = cmd("INFO").arg("clients").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn thousands_of_clients_connecting_and_leaving_leave_nothing_behind() {
    let server = TestServer::start();
    let mut watcher = server.client(false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    std::io::Write::write_all(&mut s, b"PING\r\n").unwrap();
                    let mut buf = [0u8; 7];
                    s.set_read_timeout(Some(brooklet::IO_TIMEOUT)).unwrap();
                    std::io::Read::read_exact(&mut s, &mut buf).unwrap();
                    assert_eq!(&buf, b"+PONG\r\n");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Disconnects are noticed asynchronously: wait, bounded, for the count to settle.
    let settle = Instant::now() + Duration::from_secs(10);
    while connected(&mut watcher) != 1 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(connected(&mut watcher), 1);
}

#[test]
fn half_sent_frames_that_never_complete_do_not_stop_other_clients() {
    let server = TestServer::start();
    let mut stalled = Vec::new();
    for i in 0..200 {
        let mut c = server.raw();
        // Every stage of a frame left hanging: header, bulk length, half a bulk.
        let partial: &[u8] = match i % 3 {
            0 => b"*2\r\n",
            1 => b"*2\r\n$4\r\nECHO\r\n$100",
            _ => b"*2\r\n$4\r\nECHO\r\n$10\r\nabc",
        };
        c.send(partial);
        stalled.push(c);
    }
    let mut c = server.client(true);
    for _ in 0..100 {
        let pong: String = cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG");
    }
    // Completing one of them still works: the server kept its state.
    stalled[2].send(b"defghij\r\n");
    assert_eq!(stalled[2].read2(), F2::BulkString(b"abcdefghij".to_vec()));
}

#[test]
fn replies_to_whole_requests_are_sent_when_the_client_closes_mid_request() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$10\r\nabc");
    raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
}

#[test]
fn a_pipelined_batch_of_large_values_sent_in_pieces_is_answered_in_order() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let mut batch = Vec::new();
    for i in 0..64u8 {
        let value = vec![b'a' + i % 26; 1000 + usize::from(i)];
        batch.extend_from_slice(format!("*2\r\n$4\r\nECHO\r\n${}\r\n", value.len()).as_bytes());
        batch.extend_from_slice(&value);
        batch.extend_from_slice(b"\r\n");
    }
    // Pieces that end inside requests, sent as the server reads, so its reads stop mid-request.
    let mut writer = raw.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for piece in batch.chunks(700) {
            std::io::Write::write_all(&mut writer, piece).unwrap();
        }
    });
    for i in 0..64u8 {
        let value = vec![b'a' + i % 26; 1000 + usize::from(i)];
        assert_eq!(raw.read2(), F2::BulkString(value));
    }
    sender.join().unwrap();
}

#[test]
fn a_pipeline_of_100000_commands_in_one_write_is_answered_in_order() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let mut batch = Vec::with_capacity(100_000 * 14);
    for _ in 0..100_000 {
        batch.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    }
    // Write on a thread: the server answers while we are still sending.
    let mut writer = raw.stream.try_clone().unwrap();
    let sender =
        std::thread::spawn(move || std::io::Write::write_all(&mut writer, &batch).unwrap());
    for _ in 0..100_000 {
        assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
    }
    sender.join().unwrap();
}

#[test]
fn a_command_with_a_million_arguments_is_served() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let mut exists = cmd("EXISTS");
    for i in 0..1_000_000 {
        exists.arg(i);
    }
    let n: i64 = exists.query(&mut c).unwrap();
    assert_eq!(n, 0);
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn overlong_stream_names_are_refused_and_the_connection_lives() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let long = "k".repeat(70_000);
    let err = cmd("XADD")
        .arg(&long)
        .arg("*")
        .arg("f")
        .arg("v")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("longer than 16384 bytes"), "{err}");
    let _: String = cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let err = cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg(&long)
        .arg("0")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    // A large field value is fine: values are not part of any storage key.
    let big = "v".repeat(200_000);
    let _: String = cmd("XADD")
        .arg("s")
        .arg("*")
        .arg("f")
        .arg(&big)
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("XLEN").arg("s").query(&mut c).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn watch_multi_exec_never_loses_a_concurrent_update() {
    let server = TestServer::start();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let url = server.url(false);
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url)
                    .unwrap()
                    .get_connection_with_timeout(brooklet::IO_TIMEOUT)
                    .unwrap();
                c.set_read_timeout(Some(brooklet::IO_TIMEOUT)).unwrap();
                let mut committed = 0;
                for _ in 0..150 {
                    let _: () = cmd("WATCH").arg("counter").query(&mut c).unwrap();
                    let len: i64 = cmd("XLEN").arg("counter").query(&mut c).unwrap();
                    let res: Option<(String,)> = redis::pipe()
                        .atomic()
                        .cmd("XADD")
                        .arg("counter")
                        .arg("*")
                        .arg("seen")
                        .arg(len)
                        .query(&mut c)
                        .unwrap();
                    committed += usize::from(res.is_some());
                }
                committed
            })
        })
        .collect();
    let committed: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let mut c = server.client(false);
    let entries: redis::streams::StreamRangeReply = cmd("XRANGE")
        .arg("counter")
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    assert_eq!(entries.ids.len(), committed);
    // Each committed EXEC saw the length it extended: the values are 0, 1, 2, ... exactly once.
    let mut seen: Vec<i64> = entries
        .ids
        .iter()
        .map(|e| e.get::<i64>("seen").unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..committed as i64).collect::<Vec<_>>());
}
