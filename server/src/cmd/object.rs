//! What a key's value is made of: OBJECT, MEMORY USAGE; and TOUCH, RANDOMKEY.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};

use super::reply::help_reply;
use super::table::flags::*;
use super::table::{command, container, simple};
use super::{CommandSpec, Ctx};
use crate::error::CommandError;
use crate::keyspace::{StringForm, Value};

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    container(
        "object",
        &[
            command("encoding", 3, READONLY, (2, 2, 1), encoding),
            command("freq", 3, READONLY, (2, 2, 1), freq),
            command("idletime", 3, READONLY, (2, 2, 1), idletime),
            command("refcount", 3, READONLY, (2, 2, 1), refcount),
            simple("help", 2, LOADING, object_help),
        ],
    ),
    container(
        "memory",
        &[
            command("usage", -3, READONLY, (2, 2, 1), memory_usage),
            simple("stats", 2, 0, super::memory::stats),
            simple("doctor", 2, 0, super::memory::doctor),
            simple("malloc-stats", 2, 0, super::memory::malloc_stats),
            simple("purge", 2, 0, super::memory::purge),
            simple("help", 2, LOADING, memory_help),
        ],
    ),
    command("touch", -2, READONLY | FAST, (1, -1, 1), touch),
    simple("randomkey", 1, READONLY, randomkey),
];

/// Redis's encoding of a string value in `form`: written whole, `int` for a canonical
/// 64-bit integer, `embstr` up to 44 bytes, `raw` beyond; INCRBYFLOAT's text never `int`;
/// an edited string `raw`.
pub(crate) fn string_encoding(v: &[u8], form: StringForm) -> &'static str {
    match form {
        StringForm::Edited => "raw",
        StringForm::Whole if as_int(v).is_some() => "int",
        _ if v.len() <= 44 => "embstr",
        _ => "raw",
    }
}

/// The value as Redis's strict integer parse reads it (no sign on zero, no leading zeros,
/// no spaces, at most 20 bytes).
fn as_int(v: &[u8]) -> Option<i64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(v).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == v).then_some(n)
}

fn encoding(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    with_value(ctx, &argv[2], |v| {
        // A bulk string, as Redis replies (not a status).
        Ok(Reply::bulk(match v {
            Value::Stream(..) => "stream",
            Value::String(s, _, form) => string_encoding(s, *form),
            Value::StoredString(_) => "raw",
        }))
    })
}

/// Runs `f` on the value of `key` (Null when there is none), after the reply's wait for it.
fn with_value(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    f: impl FnOnce(&Value) -> Result<Reply, CommandError>,
) -> Result<Reply, CommandError> {
    let db = ctx.db();
    let mut shard = db.lock(key);
    // What it reports (encoding, size) depends on the value.
    let Some(v) = ctx.load_string(&mut shard, key)? else {
        drop(shard);
        ctx.key_miss(key)?;
        return Ok(Reply::Null);
    };
    match v {
        Value::Stream(s, _) => ctx.show(s)?,
        Value::String(..) | Value::StoredString(_) => ctx.show_key(key)?,
    }
    f(&*v)
}

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.shared.config().maxmemory_policy.contains("lfu")
}

// FREQ and IDLETIME look the key up before the policy, as Redis does: a missing key is
// Null under any policy.
fn freq(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let lfu = lfu_policy(ctx);
    with_value(ctx, &argv[2], |v| {
        if !lfu {
            return Err(CommandError::msg(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU \
                 data will take some time to adjust.",
            ));
        }
        Ok(Reply::Int(i64::from(v.access().decayed())))
    })
}

fn idletime(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let lfu = lfu_policy(ctx);
    with_value(ctx, &argv[2], |v| {
        if lfu {
            return Err(CommandError::msg(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note \
                 that when switching between policies at runtime LRU and LFU data will take \
                 some time to adjust.",
            ));
        }
        Ok(Reply::Int(
            i64::try_from(v.access().idle_secs()).unwrap_or(i64::MAX),
        ))
    })
}

/// The reference count Redis reports for its shared integers (0 to 9999).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

fn refcount(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    with_value(ctx, &argv[2], |v| {
        Ok(Reply::Int(match v {
            Value::String(s, _, StringForm::Whole)
                if as_int(s).is_some_and(|n| (0..10_000).contains(&n)) =>
            {
                SHARED_REFCOUNT
            }
            _ => 1,
        }))
    })
}

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

fn object_help(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(help_reply("OBJECT", OBJECT_HELP))
}

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

fn memory_help(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(help_reply("MEMORY", MEMORY_HELP))
}

/// MEMORY USAGE's options after the key: `[SAMPLES count]` (every value is counted whole,
/// so the count is checked and otherwise unused).
pub(crate) fn parse_usage(args: &mut Args<'_>) -> Result<(), CommandError> {
    while !args.is_empty() {
        if args.eat_keyword("SAMPLES") && !args.is_empty() {
            if args.next_i64()? < 0 {
                return Err(CommandError::syntax());
            }
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(())
}

fn memory_usage(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    parse_usage(&mut Args::new(&argv[3..]))?;
    let key = &argv[2];
    with_value(ctx, key, |v| Ok(Reply::Int(usage(key, v) as i64)))
}

/// The size jemalloc gives an allocation of `n` bytes (its small size classes, then pages).
fn alloc_size(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    // Four classes per doubling above 128.
    let pow = usize::BITS - (n - 1).leading_zeros();
    let step = 1usize << (pow - 3);
    n.div_ceil(step) * step
}

/// An sds string's allocation for `len` bytes (header by length, then the NUL).
fn sds_size(len: usize) -> usize {
    let header = match len {
        0..32 => 1,
        32..256 => 3,
        256..65_536 => 5,
        _ => 9,
    };
    alloc_size(header + len + 1)
}

/// Bytes a node that is not in memory still costs: its record.
const COLD_NODE_BYTES: usize = 130;

/// An estimate of the bytes `key` and its value take, counted the way Redis's MEMORY USAGE
/// counts them: the key, its dictionary entry and the value's allocations. A stream counts
/// its nodes in memory (entries and their overhead), the records of those that are not,
/// and its groups, consumers and pending entries.
pub(crate) fn usage(key: &[u8], v: &Value) -> usize {
    const DICT_ENTRY: usize = 24;
    const OBJECT: usize = 16;
    let value = match v {
        // A raw string's sds is apart from its object (an appended one's without the room
        // Redis leaves after an append, which this does not track).
        Value::String(s, _, form) => match string_encoding(s, *form) {
            "int" => OBJECT,
            "embstr" => alloc_size(OBJECT + 3 + s.len() + 1),
            _ => OBJECT + sds_size(s.len()),
        },
        // Its value is on disk only.
        Value::StoredString(_) => OBJECT,
        Value::Stream(s, _) => {
            const STREAM: usize = 96;
            const GROUP: usize = 80;
            const CONSUMER: usize = 64;
            const PENDING: usize = 48;
            let nodes = s.node_count();
            let resident = s.resident_nodes();
            let mut total = OBJECT
                + STREAM
                + s.entry_heap_bytes()
                + nodes.saturating_sub(resident) * COLD_NODE_BYTES
                + resident * 64;
            for (name, g) in s.groups() {
                total += GROUP + sds_size(name.len()) + g.pending().len() * PENDING * 2;
                for c in g.consumers().keys() {
                    total += CONSUMER + sds_size(c.len());
                }
            }
            total
        }
    };
    DICT_ENTRY + sds_size(key.len()) + value
}

fn touch(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mut found = 0;
    for key in &argv[1..] {
        if let Some(v) = ctx.db().lock(key).get(key) {
            v.access().touch();
            found += 1;
        } else {
            ctx.key_miss(key)?;
        }
    }
    Ok(Reply::Int(found))
}

/// Keys RANDOMKEY draws from a shard before it counts the shard's live keys.
const RANDOM_DRAWS: usize = 3;

fn randomkey(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    let db = ctx.db();
    let now = crate::client::now_ms();
    let shards = db.shard_count();
    let start = crate::random::below(shards);
    for i in 0..shards {
        let shard = db.lock_shard((start + i) % shards);
        // A key drawn at random is looked up for its deadline alone (one walk of the shard,
        // no lookup per key); only when a few draws all meet expired keys is every key's
        // deadline read, to pick among the live ones or to find there are none.
        let drawn = (0..RANDOM_DRAWS).find_map(|_| {
            let k = shard.keys().nth(crate::random::below(shard.len().max(1)))?;
            shard.deadline(k).is_none_or(|at| at > now).then_some(k)
        });
        let key = drawn.cloned().or_else(|| {
            let live = || {
                shard
                    .keys()
                    .filter(|k| shard.deadline(k).is_none_or(|at| at > now))
            };
            match live().count() {
                0 => None,
                n => live().nth(crate::random::below(n)).cloned(),
            }
        });
        drop(shard);
        if let Some(k) = key {
            ctx.show_key(&k)?;
            return Ok(Reply::Bulk(k.to_bytes()));
        }
    }
    Ok(Reply::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    #[test]
    fn encodings_as_redis_decides() {
        assert_eq!(string_encoding(b"12345", StringForm::Whole), "int");
        assert_eq!(string_encoding(b"-7", StringForm::Whole), "int");
        assert_eq!(string_encoding(b"007", StringForm::Whole), "embstr");
        assert_eq!(string_encoding(b"+7", StringForm::Whole), "embstr");
        assert_eq!(
            string_encoding(b"9223372036854775808", StringForm::Whole),
            "embstr"
        );
        assert_eq!(string_encoding(&[b'a'; 44], StringForm::Whole), "embstr");
        assert_eq!(string_encoding(&[b'a'; 45], StringForm::Whole), "raw");
        assert_eq!(string_encoding(b"", StringForm::Whole), "embstr");
        assert_eq!(string_encoding(b"12", StringForm::Text), "embstr");
        assert_eq!(string_encoding(&[b'a'; 45], StringForm::Text), "raw");
        assert_eq!(string_encoding(b"12", StringForm::Edited), "raw");
    }

    #[test]
    fn usage_options() {
        let e = |line: &str| error_of(parse_usage(&mut Args::new(&argv(line))));
        assert!(parse_usage(&mut Args::new(&argv("SAMPLES 0"))).is_ok());
        assert_eq!(e("SAMPLES"), "ERR syntax error");
        assert_eq!(e("FOO"), "ERR syntax error");
        assert_eq!(
            e("SAMPLES x"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(e("SAMPLES -1"), "ERR syntax error");
    }

    #[test]
    fn jemalloc_classes() {
        assert_eq!(alloc_size(1), 8);
        assert_eq!(alloc_size(17), 32);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(257), 320);
    }
}
