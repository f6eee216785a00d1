//! XREAD and XREADGROUP, with BLOCK.
//!
//! A read that finds nothing and may block sets [`Ctx::block`] with its argv, `$` and `+`
//! already resolved to concrete IDs, so the re-run after a write neither misses entries nor
//! spins. A re-run that still finds nothing sets `ctx.block` again ("keep waiting"). A
//! blocked XREADGROUP whose stream or group disappeared is woken by its re-run with the
//! `-NOGROUP` a first run would get, as in Redis 8 (deleted, flushed or replaced alike).

use bytes::Bytes;
use std::time::Duration;

use brooklet_resp::{ArgError, Args, Reply};
use brooklet_streams::{MaybeEntry, ReadId, StreamError, StreamId};

use super::reply::{entries_reply, fields_reply, id_reply};
use super::stream::has_consumer;
use super::table::command;
use super::table::flags::*;
use super::write::Missing;
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

/// XREAD's and XREADGROUP's arguments.
#[derive(Debug)]
pub(crate) struct XReadArgs<'a> {
    /// GROUP group consumer (XREADGROUP).
    pub group: Option<(&'a Bytes, &'a Bytes)>,
    /// COUNT; 0 means no limit.
    pub count: u64,
    /// BLOCK: None without BLOCK, Some(None) for BLOCK 0 (forever).
    pub block: Option<Option<Duration>>,
    /// NOACK (XREADGROUP): delivered entries skip the pending list.
    pub noack: bool,
    /// The streams to read, in order.
    pub keys: &'a [Bytes],
    /// One ID per key, the last arguments of the command. Each is parsed as its key is
    /// served, after that key's lookup, so errors come in Redis's order.
    pub ids: &'a [Bytes],
}

impl<'a> XReadArgs<'a> {
    /// Parses the options up to STREAMS as Redis's `xreadCommand` does.
    ///
    /// # Format
    /// `[COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]` (XREAD), or
    /// `GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key
    /// [key ...] id [id ...]` (XREADGROUP), after the command name.
    pub fn parse(args: &mut Args<'a>, xreadgroup: bool) -> Result<Self, CommandError> {
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
                        "ERR Unbalanced 'xread' list of streams: for each stream key an ID, '+', or '$' must be specified."
                    }));
                }
                streams = Some(rest.split_at(rest.len() / 2));
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
        let Some((keys, ids)) = streams else {
            return Err(CommandError::syntax());
        };
        if xreadgroup && group.is_none() {
            return Err(CommandError::msg("ERR Missing GROUP option for XREADGROUP"));
        }
        Ok(XReadArgs {
            group,
            count,
            block,
            noack,
            keys,
            ids,
        })
    }
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
fn nothing(ctx: &mut Ctx<'_>, a: &XReadArgs<'_>, argv: Vec<Bytes>) -> Result<Reply, CommandError> {
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
    let a = XReadArgs::parse(&mut Args::new(&argv[1..]), false)?;
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
                ctx.key_miss(key);
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
            ctx.key_miss(key);
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
    let ids_at = argv.len() - a.ids.len();
    for (i, after) in afters.iter().enumerate() {
        rerun[ids_at + i] = Bytes::from(after.to_string());
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
    let a = XReadArgs::parse(&mut Args::new(&argv[1..]), true)?;
    let Some((group, consumer)) = a.group else {
        return Err(CommandError::syntax());
    };
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
            drop(shard);
            ctx.key_miss(key);
            return Err(no_key_or_group());
        };
        if v.stream()?.group(group).is_none() {
            return Err(no_key_or_group());
        }
        read_ids.push(ReadId::parse_xreadgroup(id)?);
    }
    let now = now_ms();
    let count = Some(a.count);
    let mut served = Vec::new();
    for (key, id) in a.keys.iter().zip(read_ids) {
        let got = ctx.write_stream(key, Missing::Reply(None), |s, out, fx| {
            let existed = has_consumer(s, group, consumer);
            // Persisted even on error: the consumer was touched before entries were read.
            let got = s.read_group(key, group, consumer, id, count, a.noack, now, out)?;
            // A consumer created on first use is announced as XGROUP CREATECONSUMER would.
            if !existed && has_consumer(s, group, consumer) {
                fx.announce("xgroup-createconsumer");
            }
            Ok(got)
        })?;
        if let Some(entries) = got {
            let body = Reply::Array(entries.into_iter().map(maybe_entry_reply).collect());
            served.push((key.clone(), body));
        }
    }
    if !served.is_empty() {
        return Ok(streams_reply(ctx, served));
    }
    nothing(ctx, &a, argv.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn e(line: &str, group: bool) -> String {
        let v = argv(line);
        error_of(XReadArgs::parse(&mut Args::new(&v), group))
    }

    #[test]
    fn xread_options_and_streams() {
        let v = argv("COUNT 5 BLOCK 0 STREAMS a b 1 $");
        let a = XReadArgs::parse(&mut Args::new(&v), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.count, 5);
        assert_eq!(a.block, Some(None));
        assert_eq!(a.keys, &v[5..7]);
        assert_eq!(a.ids, &v[7..]);
        let v = argv("GROUP g c NOACK BLOCK 10 COUNT -1 STREAMS a >");
        let a = XReadArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.noack);
        assert_eq!(a.count, 0);
        assert_eq!(a.block, Some(Some(Duration::from_millis(10))));
        assert_eq!(
            a.group.map(|(g, c)| (&g[..], &c[..])),
            Some((&b"g"[..], &b"c"[..]))
        );
    }

    #[test]
    fn xread_errors_are_redis_texts() {
        assert_eq!(
            e("COUNT x STREAMS s 0", false),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            e("BLOCK x STREAMS s 0", false),
            "ERR timeout is not an integer or out of range"
        );
        assert_eq!(e("BLOCK -1 STREAMS s 0", false), "ERR timeout is negative");
        assert_eq!(
            e("GROUP g c STREAMS s 0", false),
            "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(
            e("NOACK STREAMS s 0", false),
            "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(e("FOO STREAMS s 0", false), "ERR syntax error");
        assert_eq!(e("COUNT 1 BLOCK 1", false), "ERR syntax error");
        assert_eq!(
            e("STREAMS a b 0", false),
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID, '+', or '$' must be specified."
        );
        assert_eq!(
            e("GROUP g c STREAMS a b 0", true),
            "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."
        );
        assert_eq!(
            e("COUNT 1 BLOCK 1 STREAMS s 0", true),
            "ERR Missing GROUP option for XREADGROUP"
        );
        // STREAMS takes the rest: an option after it is a key.
        assert_eq!(e("STREAMS COUNT 0", false), "ok");
    }
}
