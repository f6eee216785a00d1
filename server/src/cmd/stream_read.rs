//! XREAD and XREADGROUP, with BLOCK.
//!
//! A read that finds nothing and may block sets [`Ctx::block`] with its argv, `$` and `+`
//! already resolved to concrete IDs, so the re-run after a write neither misses entries nor
//! spins. A re-run that still finds nothing sets `ctx.block` again ("keep waiting"). A
//! blocked XREADGROUP whose stream disappeared is woken with `-UNBLOCKED`, one whose group
//! was destroyed with `-NOGROUP`, as in Redis 7.4.

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Duration;

use brooklet_resp::{ArgError, Args, Reply};
use brooklet_streams::{MaybeEntry, ReadId, StreamError, StreamId};

use super::stream::{
    entries_reply, fields_reply, has_consumer, id_reply, journal, key_miss, notify,
};
use super::table::command;
use super::table::flags::*;
use super::{BlockSpec, CommandSpec, Ctx};
use crate::client::now_ms;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command(
        "xread",
        -4,
        READONLY | BLOCKING | MOVABLE_KEYS,
        (0, 0, 0),
        xread,
    ),
    command(
        "xreadgroup",
        -7,
        WRITE | BLOCKING | MOVABLE_KEYS,
        (0, 0, 0),
        xreadgroup,
    ),
];

/// The text a blocked XREADGROUP gets when its stream was deleted (Redis 7.4).
const UNBLOCKED_NO_KEY: &str = "UNBLOCKED the stream key no longer exists";

/// XREAD's and XREADGROUP's arguments.
struct ReadArgs<'a> {
    /// GROUP group consumer (XREADGROUP).
    group: Option<(&'a Bytes, &'a Bytes)>,
    /// COUNT; 0 means no limit.
    count: u64,
    /// BLOCK: None without BLOCK, Some(None) for BLOCK 0 (forever).
    block: Option<Option<Duration>>,
    noack: bool,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
    /// Index in argv of the first ID (to rewrite `$` before blocking).
    ids_at: usize,
}

/// Parses the options up to STREAMS as Redis's `xreadCommand` does.
///
/// # Format
/// `XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...`,
/// `XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...`; `argv[0]`
/// is the command name.
fn parse(argv: &[Bytes], xreadgroup: bool) -> Result<ReadArgs<'_>, CommandError> {
    let mut args = Args::new(&argv[1..]);
    let mut group = None;
    let mut count = 0;
    let mut block = None;
    let mut noack = false;
    let mut streams = None;
    while !args.is_empty() {
        let more = args.remaining() - 1;
        if more >= 1 && args.eat_keyword("BLOCK") {
            let ms = args.next_i64().map_err(|_| ArgError::Timeout)?;
            if ms < 0 {
                return Err(ArgError::NegativeTimeout.into());
            }
            block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if more >= 1 && args.eat_keyword("COUNT") {
            count = args.next_i64()?.max(0) as u64;
        } else if more >= 1 && args.eat_keyword("STREAMS") {
            let rest = args.rest();
            if !rest.len().is_multiple_of(2) {
                return Err(CommandError::msg(if xreadgroup {
                    "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."
                } else {
                    "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
                }));
            }
            streams = Some(argv.len() - rest.len());
            break;
        } else if more >= 2 && args.eat_keyword("GROUP") {
            if !xreadgroup {
                return Err(CommandError::msg(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            let g = args.next_bytes()?;
            let c = args.next_bytes()?;
            group = Some((g, c));
        } else if args.eat_keyword("NOACK") {
            if !xreadgroup {
                return Err(CommandError::msg(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(CommandError::syntax());
        }
    }
    let Some(first_key) = streams else {
        return Err(CommandError::syntax());
    };
    if xreadgroup && group.is_none() {
        return Err(CommandError::msg("ERR Missing GROUP option for XREADGROUP"));
    }
    let n = (argv.len() - first_key) / 2;
    Ok(ReadArgs {
        group,
        count,
        block,
        noack,
        keys: &argv[first_key..first_key + n],
        ids: &argv[first_key + n..],
        ids_at: first_key + n,
    })
}

/// The reply of a read that served some streams: a map in RESP3, pairs in RESP2.
fn streams_reply(ctx: &Ctx<'_>, served: Vec<(Bytes, Reply)>) -> Reply {
    if ctx.client.resp3 {
        Reply::Map(
            served
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(k), v))
                .collect(),
        )
    } else {
        Reply::Array(
            served
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                .collect(),
        )
    }
}

/// Nothing to serve: block when asked and allowed, else answer with a null array.
fn nothing(ctx: &mut Ctx<'_>, a: &ReadArgs<'_>, argv: Vec<Bytes>) -> Result<Reply, CommandError> {
    match a.block {
        Some(timeout) if ctx.may_block() => {
            ctx.block = Some(BlockSpec {
                keys: a.keys.to_vec(),
                timeout,
                argv,
                timeout_reply: Reply::NullArray,
            });
            Ok(Reply::NullArray)
        }
        _ => Ok(Reply::NullArray),
    }
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...
fn xread(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = parse(argv, false)?;
    let db = ctx.db();
    // Resolve every ID first (`$` and `+` against the stream as it is now).
    let mut afters = Vec::with_capacity(a.keys.len());
    // Like Redis, this looks every key up twice (here and to serve it), and a missing key
    // is a `keymiss` event each time.
    for (key, id) in a.keys.iter().zip(a.ids) {
        let found = {
            let shard = db.lock(key);
            match shard.get(key) {
                Some(v) => Some(v.stream()?.resolve_read_id(ReadId::parse_xread(id)?)),
                None => None,
            }
        };
        let after = match found {
            Some(after) => after,
            None => {
                key_miss(ctx, key);
                match ReadId::parse_xread(id)? {
                    ReadId::Id(id) => id,
                    _ => StreamId::MIN,
                }
            }
        };
        afters.push(after);
    }
    let count = usize::try_from(a.count).ok().filter(|&c| c > 0);
    let mut served = Vec::new();
    for (key, after) in a.keys.iter().zip(&afters) {
        let mut shard = db.lock(key);
        let Some(v) = shard.get_mut(key) else {
            drop(shard);
            key_miss(ctx, key);
            continue;
        };
        let entries = v.stream_mut()?.read_after(*after, count)?;
        if !entries.is_empty() {
            served.push((key.clone(), entries_reply(entries)));
        }
    }
    if !served.is_empty() {
        return Ok(streams_reply(ctx, served));
    }
    let mut rerun = argv.to_vec();
    for (i, after) in afters.iter().enumerate() {
        rerun[a.ids_at + i] = Bytes::from(after.to_string());
    }
    nothing(ctx, &a, rerun)
}

/// One entry of a group read: a deleted entry has a nil body.
fn maybe_entry_reply(e: MaybeEntry) -> Reply {
    let body = match e.fields {
        Some(fields) => fields_reply(fields),
        None => Reply::NullArray,
    };
    Reply::Array(vec![id_reply(e.id), body])
}

/// XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
fn xreadgroup(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = parse(argv, true)?;
    let Some((group, consumer)) = a.group else {
        return Err(CommandError::syntax());
    };
    // A re-run of a blocked read (the client is marked blocked while it waits).
    let rerun = ctx.client.handle.blocked.load(Ordering::Relaxed);
    let db = ctx.db();
    // Check every key, group and ID before serving anything, as Redis does.
    let mut read_ids = Vec::with_capacity(a.keys.len());
    for (key, id) in a.keys.iter().zip(a.ids) {
        let no_key_or_group = || {
            CommandError::from(StreamError::NoKeyOrGroupRead {
                key: key.clone(),
                group: group.clone(),
            })
        };
        let shard = db.lock(key);
        let Some(v) = shard.get(key) else {
            if rerun {
                return Err(CommandError::msg(UNBLOCKED_NO_KEY));
            }
            drop(shard);
            key_miss(ctx, key);
            return Err(no_key_or_group());
        };
        if v.stream()?.group(group).is_none() {
            return Err(no_key_or_group());
        }
        read_ids.push(ReadId::parse_xreadgroup(id)?);
    }
    let now = now_ms();
    let mut served = Vec::new();
    let mut created = Vec::new();
    for (key, id) in a.keys.iter().zip(read_ids) {
        let mut shard = db.lock(key);
        let Some(v) = shard.get_mut(key) else {
            continue;
        };
        let s = v.stream_mut()?;
        let existed = has_consumer(s, group, consumer);
        let count = Some(a.count);
        let mut out = journal();
        // Written even on error: the consumer was touched before entries were read.
        let got = s.read_group(key, group, consumer, id, count, a.noack, now, &mut out);
        ctx.persist(key, s, &out)?;
        let got = got?;
        if !existed && has_consumer(s, group, consumer) {
            created.push(key);
        }
        if let Some(entries) = got {
            let body = Reply::Array(entries.into_iter().map(maybe_entry_reply).collect());
            served.push((key.clone(), body));
        }
    }
    // Consumers created on first use are announced as XGROUP CREATECONSUMER would.
    for key in created {
        notify(ctx, "xgroup-createconsumer", key);
    }
    if !served.is_empty() {
        return Ok(streams_reply(ctx, served));
    }
    nothing(ctx, &a, argv.to_vec())
}
