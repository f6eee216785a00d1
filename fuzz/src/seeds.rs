//! The seed scripts of the `commands` target: what real clients do, written as scripts.
//!
//! Stream producers and consumer groups, blocking reads served by another client, pub/sub
//! with keyspace notifications, transactions with WATCH, RESP3, pipelines and inline commands.
//! `server/tests/fuzz_regressions.rs` checks that `fuzz/corpus/commands/` holds exactly these
//! scripts, encoded ([`encode_script`](crate::commands::encode_script)), and rewrites them
//! when run with `BROOKLET_WRITE_SEEDS=1`.

use crate::commands::{Script, Step};

/// Client `client` sends a command written as space-separated words.
fn cmd(client: usize, line: &str) -> Step {
    Step::Command(
        client,
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect(),
    )
}

fn script(clients: usize, steps: Vec<Step>) -> Script {
    Script { clients, steps }
}

/// Every seed script with the file name it is stored under.
pub fn command_scripts() -> Vec<(&'static str, Script)> {
    vec![
        (
            "producer-xadd-xrange-xtrim",
            script(
                1,
                vec![
                    cmd(0, "XADD s 1-1 f v"),
                    cmd(0, "XADD s MAXLEN ~ 100 * f v2"),
                    cmd(0, "XADD s NOMKSTREAM MINID = 0 2-* f v3"),
                    cmd(0, "XLEN s"),
                    cmd(0, "XRANGE s - + COUNT 2"),
                    cmd(0, "XREVRANGE s + (1-1"),
                    cmd(0, "XDEL s 1-1"),
                    cmd(0, "XTRIM s MAXLEN ~ 1 LIMIT 10"),
                    cmd(
                        0,
                        "XSETID s 18446744073709551615-18446744073709551615 ENTRIESADDED 10 MAXDELETEDID 1-1",
                    ),
                    cmd(0, "XINFO STREAM s"),
                ],
            ),
        ),
        (
            "consumer-group-lifecycle",
            script(
                2,
                vec![
                    cmd(0, "XGROUP CREATE s g $ MKSTREAM ENTRIESREAD 0"),
                    cmd(0, "XADD s 1-1 f v"),
                    cmd(0, "XADD s 2-1 f v"),
                    cmd(0, "XADD s 3-1 f v"),
                    cmd(1, "XREADGROUP GROUP g c COUNT 2 STREAMS s >"),
                    cmd(1, "XREADGROUP GROUP g d NOACK STREAMS s >"),
                    cmd(0, "XPENDING s g"),
                    cmd(0, "XPENDING s g IDLE 0 - + 10 c"),
                    cmd(1, "XACK s g 1-1"),
                    cmd(1, "XCLAIM s g d 0 2-1 IDLE 0 RETRYCOUNT 3 FORCE"),
                    cmd(1, "XCLAIM s g d 0 2-1 JUSTID LASTID 2-1"),
                    cmd(1, "XAUTOCLAIM s g c 0 0-0 COUNT 10 JUSTID"),
                    cmd(0, "XINFO STREAM s FULL"),
                    cmd(0, "XINFO GROUPS s"),
                    cmd(0, "XINFO CONSUMERS s g"),
                    cmd(0, "XGROUP SETID s g 0 ENTRIESREAD 0"),
                    cmd(0, "XGROUP CREATECONSUMER s g h"),
                    cmd(0, "XGROUP DELCONSUMER s g c"),
                    cmd(0, "XGROUP DESTROY s g"),
                ],
            ),
        ),
        (
            "blocked-readers-served-by-a-writer",
            script(
                3,
                vec![
                    cmd(0, "XGROUP CREATE s g $ MKSTREAM"),
                    cmd(1, "XREAD BLOCK 0 STREAMS s $"),
                    cmd(2, "XREADGROUP GROUP g c BLOCK 0 COUNT 1 STREAMS s >"),
                    cmd(1, "PING"),
                    cmd(0, "XADD s * f v"),
                    cmd(0, "XADD s * f v"),
                    cmd(1, "XREAD BLOCK 100 STREAMS s t $ $"),
                    Step::TimeOut(1),
                    cmd(2, "XREADGROUP GROUP g d BLOCK 0 STREAMS s 0"),
                    cmd(0, "XGROUP DESTROY s g"),
                    cmd(0, "DEL s"),
                ],
            ),
        ),
        (
            "pubsub-and-keyspace-notifications",
            script(
                2,
                vec![
                    cmd(0, "SUBSCRIBE ch __keyspace@0__:s"),
                    cmd(0, "PSUBSCRIBE h? __key*__:*"),
                    cmd(0, "SSUBSCRIBE ch"),
                    cmd(1, "CONFIG SET notify-keyspace-events KEA"),
                    cmd(1, "PUBLISH ch m"),
                    cmd(1, "SPUBLISH ch m"),
                    cmd(1, "XADD s * f v"),
                    cmd(1, "PUBSUB CHANNELS"),
                    cmd(1, "PUBSUB NUMSUB ch"),
                    cmd(1, "PUBSUB NUMPAT"),
                    cmd(1, "PUBSUB SHARDCHANNELS"),
                    cmd(0, "PING"),
                    cmd(0, "XLEN s"),
                    cmd(0, "UNSUBSCRIBE"),
                    cmd(0, "PUNSUBSCRIBE h?"),
                    cmd(0, "RESET"),
                ],
            ),
        ),
        (
            "watch-multi-exec",
            script(
                2,
                vec![
                    cmd(0, "WATCH s"),
                    cmd(0, "MULTI"),
                    cmd(0, "XADD s * f v"),
                    cmd(0, "XLEN s"),
                    cmd(0, "EXEC"),
                    cmd(0, "WATCH s"),
                    cmd(1, "XADD s * f v"),
                    cmd(0, "MULTI"),
                    cmd(0, "XADD s * f v"),
                    cmd(0, "EXEC"),
                    cmd(0, "MULTI"),
                    cmd(0, "XADD s"),
                    cmd(0, "EXEC"),
                    cmd(0, "MULTI"),
                    cmd(0, "DISCARD"),
                    cmd(0, "UNWATCH"),
                ],
            ),
        ),
        (
            "resp3-connection-and-introspection",
            script(
                1,
                vec![
                    cmd(0, "HELLO 3 SETNAME c"),
                    cmd(0, "CLIENT SETINFO LIB-NAME c"),
                    cmd(0, "CLIENT ID"),
                    cmd(0, "CLIENT INFO"),
                    cmd(0, "CLIENT LIST TYPE normal"),
                    cmd(0, "XADD s * f v"),
                    cmd(0, "XINFO STREAM s FULL COUNT 10"),
                    cmd(0, "XREAD COUNT 1 STREAMS s 0"),
                    cmd(0, "INFO keyspace"),
                    cmd(0, "CONFIG GET stream-node-max-entries"),
                    cmd(0, "COMMAND INFO xadd"),
                    cmd(0, "COMMAND DOCS xreadgroup"),
                    cmd(0, "TYPE s"),
                    cmd(0, "SCAN 0 MATCH * COUNT 10 TYPE stream"),
                    cmd(0, "SELECT 1"),
                    cmd(0, "XADD t * f v"),
                    cmd(0, "DBSIZE"),
                    cmd(0, "FLUSHDB"),
                    cmd(0, "HELLO 2"),
                ],
            ),
        ),
        (
            "pipeline-and-inline",
            script(
                2,
                vec![
                    Step::Raw(0, b"PING\r\nXADD s * f \"a b\"\r\nXLEN s\n".to_vec()),
                    Step::Raw(
                        1,
                        b"*3\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
                    ),
                    Step::Raw(1, b"*2\r\n$4\r\nECHO\r\n$10\r\nabc".to_vec()),
                    Step::Raw(1, b"defghij\r\n".to_vec()),
                    Step::Raw(0, b"*1\r\n$-1\r\n".to_vec()),
                    Step::Reconnect(0),
                    cmd(0, "QUIT"),
                    Step::Reconnect(0),
                    cmd(0, "PING"),
                ],
            ),
        ),
        (
            "node-limits-and-reload",
            script(
                1,
                vec![
                    cmd(0, "CONFIG SET stream-node-max-entries 2"),
                    cmd(0, "XADD s 1-1 f v"),
                    cmd(0, "XADD s 1-2 g v"),
                    cmd(0, "XADD s 1-3 f v"),
                    cmd(0, "XADD s 2 f v f v"),
                    cmd(0, "XDEL s 1-2"),
                    cmd(0, "XGROUP CREATE s g 0"),
                    cmd(0, "XREADGROUP GROUP g c STREAMS s >"),
                    cmd(0, "DEBUG RELOAD"),
                    cmd(0, "XINFO STREAM s FULL"),
                    cmd(0, "SAVE"),
                ],
            ),
        ),
        (
            "xnack-release-and-claim",
            script(
                2,
                vec![
                    cmd(0, "XGROUP CREATE s g $ MKSTREAM"),
                    cmd(0, "XADD s 1-1 f v"),
                    cmd(0, "XADD s 2-1 f v"),
                    cmd(0, "XADD s 3-1 f v"),
                    cmd(0, "XREADGROUP GROUP g c STREAMS s >"),
                    cmd(1, "XREADGROUP GROUP g d BLOCK 0 CLAIM 100000 STREAMS s >"),
                    cmd(0, "XNACK s g FAIL IDS 2 2-1 1-1"),
                    cmd(0, "XNACK s g FATAL IDS 1 3-1 RETRYCOUNT 7"),
                    cmd(0, "XNACK s g SILENT FORCE IDS 2 3-1 9-9"),
                    cmd(0, "XNACK s g BAD IDS 1 1-1"),
                    cmd(0, "XPENDING s g - + 10"),
                    cmd(0, "XINFO STREAM s FULL"),
                    cmd(0, "XCLAIM s g e 999999 3-1"),
                    cmd(0, "XACK s g 1-1 2-1 3-1"),
                ],
            ),
        ),
    ]
}
