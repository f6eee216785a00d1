//! Randomized argument fuzzing of every command in the table: random argument vectors built
//! from the tokens Brooklet's parsers look for. Each must get a reply (any reply) and the
//! connection must stay usable; a panic in a handler would close it. Seeded; the seed and the
//! offending command are printed on failure.

#![allow(clippy::unwrap_used)]

use brooklet::TestServer;
use redis_protocol::resp2::types::OwnedFrame as F2;

/// Tokens the parsers react to, plus hostile values.
const TOKENS: &[&[u8]] = &[
    b"s",
    b"t",
    b"g",
    b"c",
    b"0",
    b"1",
    b"2",
    b"-1",
    b"100",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"0-0",
    b"0-1",
    b"1-1",
    b"1-*",
    b"*",
    b"$",
    b">",
    b"+",
    b"-",
    b"(1",
    b"(-",
    b"(+",
    b"1-18446744073709551615",
    b"18446744073709551615-18446744073709551615",
    b"MAXLEN",
    b"MINID",
    b"~",
    b"=",
    b"LIMIT",
    b"COUNT",
    b"STREAMS",
    b"GROUP",
    b"NOACK",
    b"NOMKSTREAM",
    b"MKSTREAM",
    b"ENTRIESREAD",
    b"IDLE",
    b"TIME",
    b"RETRYCOUNT",
    b"FORCE",
    b"JUSTID",
    b"LASTID",
    b"FULL",
    b"CREATE",
    b"SETID",
    b"DESTROY",
    b"CREATECONSUMER",
    b"DELCONSUMER",
    b"MATCH",
    b"TYPE",
    b"ID",
    b"ADDR",
    b"SKIPME",
    b"yes",
    b"no",
    b"ON",
    b"OFF",
    b"SKIP",
    b"GET",
    b"SET",
    b"*max*",
    b"[",
    b"\\",
    b"",
    b"\x00\xff\r\n",
    b"ENTRIESADDED",
    b"MAXDELETEDID",
    b"AUTH",
    b"SETNAME",
    b"3",
    b"2",
    b"LIB-NAME",
    b"LIB-VER",
    b"HELP",
    b"FILTERBY",
    b"PATTERN",
    b"ACLCAT",
    b"stream",
    b"ASYNC",
    b"SYNC",
];

/// Commands that end or change the connection or the server in ways this test cannot undo.
const SKIP: &[&str] = &[
    "shutdown",
    "debug",
    "quit",
    "monitor",
    "client|kill",
    "client|reply",
    "hello",
    "auth",
    "select",
    // Replication: PSYNC / SYNC hand the connection over to a replica's feed, REPLICAOF
    // makes the server a replica, WAIT / WAITAOF block until replicas answer.
    "sync",
    "psync",
    "replicaof",
    "slaveof",
    "wait",
    "waitaof",
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn send(raw: &mut brooklet::RawConn, argv: &[&[u8]]) -> F2 {
    raw.send_cmd(argv);
    raw.read2()
}

#[test]
fn random_arguments_to_every_command_never_break_the_connection() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let server = TestServer::start();
    let mut raw = server.raw();
    let F2::Array(names) = send(&mut raw, &[b"COMMAND", b"LIST"]) else {
        panic!("COMMAND LIST is not an array")
    };
    let names: Vec<String> = names
        .into_iter()
        .filter_map(|n| match n {
            F2::BulkString(b) => Some(String::from_utf8(b).unwrap()),
            _ => None,
        })
        .filter(|n| !SKIP.contains(&n.as_str()))
        .collect();
    assert!(names.len() > 40, "{names:?}");
    let mut rng = Lcg(seed);
    let mut sent = 0;
    for round in 0..60 {
        // Some state for the commands to find: a stream with a group and pending entries.
        send(&mut raw, &[b"RESET"]);
        send(&mut raw, &[b"XADD", b"s", b"*", b"f", b"v"]);
        send(&mut raw, &[b"XGROUP", b"CREATE", b"s", b"g", b"0"]);
        send(
            &mut raw,
            &[b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"s", b">"],
        );
        for name in &names {
            let mut argv: Vec<Vec<u8>> = name.split('|').map(|p| p.as_bytes().to_vec()).collect();
            for _ in 0..rng.next(9) {
                argv.push(TOKENS[rng.next(TOKENS.len())].to_vec());
            }
            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            raw.send_cmd(&refs);
            if name.ends_with("subscribe") {
                // Confirmations: one per channel, or one for none; then leave subscribed mode.
                raw.send_cmd(&[b"RESET"]);
                loop {
                    if let F2::SimpleString(s) = raw.read2()
                        && s == b"RESET"
                    {
                        break;
                    }
                }
                continue;
            }
            let reply = raw.read2();
            let _ = reply;
            sent += 1;
            if name == "multi" {
                send(&mut raw, &[b"DISCARD"]);
            }
        }
        let pong = send(&mut raw, &[b"PING"]);
        assert!(
            matches!(pong, F2::SimpleString(ref s) if s == b"PONG") || matches!(pong, F2::Array(_)),
            "seed {seed} round {round}: {pong:?}"
        );
    }
    assert!(sent > 2000);
}
