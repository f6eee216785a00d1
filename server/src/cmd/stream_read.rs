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
use brooklet_streams::{
    ClaimRead, EntryCost, MaybeEntry, Mutation, ReadBudget, ReadId, StreamError, StreamId,
};

use super::reply::{encoded_array, entries_reply, entry_size, put_entry};
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

/// MAXCOUNT's value is not an integer from 1 up (Redis 8.10).
const MAXCOUNT_NOT_POSITIVE: &str = "ERR MAXCOUNT must be a positive integer";
/// MAXSIZE's value is not an integer from 1 up (Redis 8.10).
const MAXSIZE_NOT_POSITIVE: &str = "ERR MAXSIZE must be a positive integer";
/// MAXCOUNT caps the whole reply, so it cannot be below the per-stream COUNT.
const MAXCOUNT_BELOW_COUNT: &str = "ERR MAXCOUNT must be greater than or equal to COUNT";

/// CLAIM's value is not an integer from 0 up (assumed wording, see `XReadArgs::parse`).
const CLAIM_IDLE_INVALID: &str = "ERR min-idle-time must be a positive integer";
/// CLAIM given to XREAD.
const CLAIM_WITHOUT_GROUP: &str =
    "ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead.";
/// CLAIM with an ID other than `>`: it claims into new deliveries only.
const CLAIM_WITH_HISTORY: &str = "ERR The CLAIM option is only supported with the '>' ID";

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
    /// CLAIM min-idle-time (XREADGROUP, Redis 8.4): idle pending entries are claimed
    /// before new ones are read.
    pub claim: Option<u64>,
    /// MAXCOUNT: entries of the whole reply, over all streams; 0 without it.
    pub max_count: u64,
    /// MAXSIZE: soft cap on the reply's bytes, over all streams; 0 without it.
    pub max_size: u64,
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
    /// `[COUNT count] [MAXCOUNT maxcount] [MAXSIZE maxsize] [BLOCK milliseconds] STREAMS
    /// key [key ...] id [id ...]` (XREAD), or `GROUP group consumer [COUNT count]
    /// [MAXCOUNT maxcount] [MAXSIZE maxsize] [BLOCK milliseconds] [CLAIM min-idle-time]
    /// [NOACK] STREAMS key [key ...] id [id ...]` (XREADGROUP), after the command name.
    /// Options come in any order before STREAMS; a repeated one takes its last value.
    pub fn parse(args: &mut Args<'a>, xreadgroup: bool) -> Result<Self, CommandError> {
        let mut group = None;
        let mut count = 0;
        let mut block = None;
        let mut noack = false;
        let mut claim = None;
        let mut max_count = 0;
        let mut max_size = 0;
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
            } else if more >= 1 && args.eat_keyword("MAXCOUNT") {
                max_count = positive(args, MAXCOUNT_NOT_POSITIVE)?;
            } else if more >= 1 && args.eat_keyword("CLAIM") {
                if !xreadgroup {
                    return Err(CommandError::msg(CLAIM_WITHOUT_GROUP));
                }
                claim = match args.next_i64() {
                    Ok(ms) if ms >= 0 => Some(ms as u64),
                    _ => return Err(CommandError::msg(CLAIM_IDLE_INVALID)),
                };
            } else if more >= 1 && args.eat_keyword("MAXSIZE") {
                max_size = positive(args, MAXSIZE_NOT_POSITIVE)?;
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
        if max_count > 0 && max_count < count {
            return Err(CommandError::msg(MAXCOUNT_BELOW_COUNT));
        }
        Ok(XReadArgs {
            group,
            count,
            block,
            noack,
            claim,
            max_count,
            max_size,
            keys,
            ids,
        })
    }
}

/// The value of MAXCOUNT or MAXSIZE: an integer from 1 up, else `error`.
fn positive(args: &mut Args<'_>, error: &'static str) -> Result<u64, CommandError> {
    match args.next_i64() {
        Ok(n) if n > 0 => Ok(n as u64),
        _ => Err(CommandError::msg(error)),
    }
}

/// The reply budget of a read with MAXCOUNT or MAXSIZE; `None` without them.
fn budget(ctx: &Ctx<'_>, a: &XReadArgs<'_>) -> Option<ReadBudget> {
    let cost: EntryCost = match (ctx.client.resp3, a.claim.is_some()) {
        (false, false) => reply_size::entry_resp2,
        (true, false) => reply_size::entry_resp3,
        (false, true) => reply_size::claim_entry_resp2,
        (true, true) => reply_size::claim_entry_resp3,
    };
    ReadBudget::new(a.max_count, a.max_size, cost)
}

/// What a read's reply costs against MAXSIZE, in the bytes Redis counts: everything
/// written as it is served (a stream's key and framing, each entry whole), but not the
/// lengths of the outer reply and of each stream's entry list, which Redis writes once
/// they are known, after the checks.
mod reply_size {
    use brooklet_streams::StreamId;
    use bytes::Bytes;

    fn digits(mut n: u64) -> u64 {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }

    /// `*n\r\n` (or any one-letter aggregate header).
    fn header(n: u64) -> u64 {
        digits(n) + 3
    }

    /// `$n\r\n...\r\n`.
    fn bulk(n: u64) -> u64 {
        header(n) + n + 2
    }

    fn entry(id: StreamId, fields: Option<&[Bytes]>, nil: u64) -> u64 {
        let id_len = digits(id.ms) + 1 + digits(id.seq);
        let body = match fields {
            Some(f) => header(f.len() as u64) + f.iter().map(|b| bulk(b.len() as u64)).sum::<u64>(),
            None => nil,
        };
        header(2) + bulk(id_len) + body
    }

    /// One entry in RESP2 (a deleted one's body is `*-1`).
    pub(super) fn entry_resp2(id: StreamId, fields: Option<&[Bytes]>) -> u64 {
        entry(id, fields, 5)
    }

    /// One entry in RESP3 (a deleted one's body is `_`).
    pub(super) fn entry_resp3(id: StreamId, fields: Option<&[Bytes]>) -> u64 {
        entry(id, fields, 3)
    }

    /// The two integers a CLAIM read adds to each entry, counted as `:0\r\n` each: exact for
    /// a new entry; a claimed one's idle time is not known to the budget before the claim.
    const CLAIM_EXTRA: u64 = 8;

    /// One entry of a CLAIM read in RESP2 (never deleted).
    pub(super) fn claim_entry_resp2(id: StreamId, fields: Option<&[Bytes]>) -> u64 {
        entry_resp2(id, fields) + CLAIM_EXTRA
    }

    /// One entry of a CLAIM read in RESP3 (never deleted).
    pub(super) fn claim_entry_resp3(id: StreamId, fields: Option<&[Bytes]>) -> u64 {
        entry_resp3(id, fields) + CLAIM_EXTRA
    }

    /// A served stream's own framing: its key, in a pair (RESP2) or as a map key (RESP3).
    pub(super) fn stream(key: &[u8], resp3: bool) -> u64 {
        let pair = if resp3 { 0 } else { header(2) };
        pair + bulk(key.len() as u64)
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
                // A blocked XREAD whose key now holds another type waits on, as in Redis.
                Some(v) if ctx.rerun && v.stream().is_err() => None,
                Some(v) => Some(v.stream()?.resolve_read_id(ReadId::parse_xread(id)?)),
                None => None,
            }
        };
        let after = match found {
            Some(after) => after,
            None => {
                ctx.key_miss(key)?;
                match ReadId::parse_xread(id)? {
                    ReadId::Id(id) => id,
                    _ => StreamId::MIN,
                }
            }
        };
        afters.push(after);
    }
    let count = usize::try_from(a.count).ok().filter(|&c| c > 0);
    let mut budget = budget(ctx, &a);
    let mut served = Vec::new();
    for (key, after) in a.keys.iter().zip(&afters) {
        // The caps are spent in the order the streams are listed; the rest are skipped.
        if budget.as_ref().is_some_and(ReadBudget::exhausted) {
            break;
        }
        let mut shard = db.lock(key);
        let Some(v) = shard.get_mut(key) else {
            drop(shard);
            ctx.key_miss(key)?;
            continue;
        };
        if ctx.rerun && v.stream().is_err() {
            continue;
        }
        let limit = match &budget {
            Some(b) => usize::try_from(b.limit(count.map_or(u64::MAX, |c| c as u64))).ok(),
            None => count,
        };
        let s = v.stream_mut()?;
        ctx.show(s)?;
        let mut entries = s.read_after(*after, limit)?;
        if let Some(b) = budget.as_mut() {
            b.open_stream(reply_size::stream(key, ctx.client.resp3));
            b.take_entries(&mut entries);
        }
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

/// The entries of a group read: a deleted entry has a nil body.
fn group_entries_reply(entries: Vec<MaybeEntry>, resp3: bool) -> Reply {
    encoded_array(
        entries,
        |e| entry_size(e.fields.as_deref()),
        |out, e| put_entry(out, e.id, e.fields.as_deref(), &[], resp3),
    )
}

/// The entries of a CLAIM read (Redis 8.4): `[id, fields, idle ms, prior deliveries]`,
/// the two integers 0 for a new entry; the same array in RESP2 and RESP3.
fn claim_reads_reply(entries: Vec<ClaimRead>) -> Reply {
    encoded_array(
        entries,
        |e| entry_size(Some(&e.entry.fields)),
        |out, e| {
            let extra = [
                i64::try_from(e.idle_ms).unwrap_or(i64::MAX),
                i64::try_from(e.prior_deliveries).unwrap_or(i64::MAX),
            ];
            put_entry(out, e.entry.id, Some(&e.entry.fields), &extra, false);
        },
    )
}

/// XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [CLAIM min-idle-time] [NOACK] STREAMS key ... id ...
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
            ctx.key_miss(key)?;
            return Err(no_key_or_group());
        };
        if v.stream()?.group(group).is_none() {
            return Err(no_key_or_group());
        }
        let read_id = ReadId::parse_xreadgroup(id)?;
        if a.claim.is_some() && !matches!(read_id, ReadId::New | ReadId::Id(StreamId::MAX)) {
            return Err(CommandError::msg(CLAIM_WITH_HISTORY));
        }
        read_ids.push(read_id);
    }
    let now = now_ms();
    let count = Some(a.count);
    let mut budget = budget(ctx, &a);
    let resp3 = ctx.client.resp3;
    let mut served = Vec::new();
    for (key, id) in a.keys.iter().zip(read_ids) {
        // The caps are spent in the order the streams are listed; the rest are skipped.
        if let Some(b) = budget.as_mut() {
            if b.exhausted() {
                break;
            }
            b.open_stream(reply_size::stream(key, resp3));
        }
        let got = ctx.write_stream(key, Missing::Reply(None), |s, out, fx| {
            let existed = has_consumer(s, group, consumer);
            // Persisted even on error: the consumer was touched before entries were read.
            let got = match a.claim {
                None => s
                    .read_group_within(
                        key,
                        group,
                        consumer,
                        id,
                        count,
                        a.noack,
                        now,
                        budget.as_mut(),
                        out,
                    )?
                    .map(|entries| group_entries_reply(entries, resp3)),
                Some(min_idle) => s
                    .read_group_claim(
                        key,
                        group,
                        consumer,
                        min_idle,
                        count,
                        a.noack,
                        now,
                        budget.as_mut(),
                        out,
                    )?
                    .map(claim_reads_reply),
            };
            // A consumer created on first use is announced as XGROUP CREATECONSUMER would.
            if !existed && has_consumer(s, group, consumer) {
                fx.announce("xgroup-createconsumer");
            }
            // Redis counts neither an existing consumer's seen-time nor a re-read of its
            // own pending entries (their delivery time and count) as a change.
            let history = matches!(id, ReadId::Id(i) if i != StreamId::MAX);
            if existed
                && out.iter().all(|m| match m {
                    Mutation::ConsumerUpserted { .. } => true,
                    // The group's counters move with the re-read deliveries (Brooklet's
                    // entries-delivered): part of the same change that is none.
                    Mutation::PendingUpserted { .. } | Mutation::GroupCounters { .. } => history,
                    _ => false,
                })
            {
                fx.untracked();
            }
            Ok(got)
        })?;
        if let Some(body) = got {
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

    #[test]
    fn maxcount_and_maxsize_parse_in_any_order() {
        let v = argv("MAXSIZE 100 COUNT 2 MAXCOUNT 3 STREAMS a 0");
        let a = XReadArgs::parse(&mut Args::new(&v), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.count, a.max_count, a.max_size), (2, 3, 100));
        let v = argv("GROUP g c MAXCOUNT 5 NOACK STREAMS a >");
        let a = XReadArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.count, a.max_count, a.max_size), (0, 5, 0));
        let v = argv("STREAMS a 0");
        let a = XReadArgs::parse(&mut Args::new(&v), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.max_count, a.max_size), (0, 0));
        // Equal is allowed; COUNT 0 or negative means no per-stream limit.
        assert_eq!(e("COUNT 3 MAXCOUNT 3 STREAMS s 0", false), "ok");
        assert_eq!(e("COUNT -5 MAXCOUNT 1 STREAMS s 0", false), "ok");
    }

    #[test]
    fn maxcount_and_maxsize_errors_are_redis_texts() {
        for group in [false, true] {
            let g = if group { "GROUP g c " } else { "" };
            let e = |rest: &str| e(&format!("{g}{rest}"), group);
            assert_eq!(e("MAXCOUNT 0 STREAMS s 0"), MAXCOUNT_NOT_POSITIVE);
            assert_eq!(e("MAXCOUNT -1 STREAMS s 0"), MAXCOUNT_NOT_POSITIVE);
            assert_eq!(e("MAXCOUNT x STREAMS s 0"), MAXCOUNT_NOT_POSITIVE);
            assert_eq!(e("MAXSIZE 0 STREAMS s 0"), MAXSIZE_NOT_POSITIVE);
            assert_eq!(e("MAXSIZE -1 STREAMS s 0"), MAXSIZE_NOT_POSITIVE);
            assert_eq!(e("MAXSIZE 1.5 STREAMS s 0"), MAXSIZE_NOT_POSITIVE);
            assert_eq!(e("COUNT 3 MAXCOUNT 2 STREAMS s 0"), MAXCOUNT_BELOW_COUNT);
            assert_eq!(e("MAXCOUNT 2 COUNT 3 STREAMS s 0"), MAXCOUNT_BELOW_COUNT);
            // Without its value the keyword is a syntax error, like COUNT's.
            assert_eq!(e("MAXCOUNT"), "ERR syntax error");
        }
        assert_eq!(
            MAXCOUNT_NOT_POSITIVE,
            "ERR MAXCOUNT must be a positive integer"
        );
        assert_eq!(
            MAXSIZE_NOT_POSITIVE,
            "ERR MAXSIZE must be a positive integer"
        );
        assert_eq!(
            MAXCOUNT_BELOW_COUNT,
            "ERR MAXCOUNT must be greater than or equal to COUNT"
        );
    }

    #[test]
    fn claim_parses_and_its_errors_are_redis_texts() {
        let v = argv("GROUP g c COUNT 2 CLAIM 100 NOACK STREAMS a >");
        let a = XReadArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.claim, a.count, a.noack), (Some(100), 2, true));
        // 0 claims every pending entry; a repeated CLAIM takes its last value.
        let v = argv("GROUP g c CLAIM 5 CLAIM 0 STREAMS a >");
        let a = XReadArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.claim, Some(0));
        let v = argv("GROUP g c STREAMS a >");
        let a = XReadArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.claim, None);
        assert_eq!(
            e("GROUP g c CLAIM -1 STREAMS s >", true),
            CLAIM_IDLE_INVALID
        );
        assert_eq!(e("GROUP g c CLAIM x STREAMS s >", true), CLAIM_IDLE_INVALID);
        assert_eq!(
            e("GROUP g c CLAIM 1.5 STREAMS s >", true),
            CLAIM_IDLE_INVALID
        );
        assert_eq!(e("CLAIM 10 STREAMS s 0", false), CLAIM_WITHOUT_GROUP);
        // Without its value the keyword is a syntax error, like COUNT's.
        assert_eq!(e("GROUP g c CLAIM", true), "ERR syntax error");
        assert_eq!(
            CLAIM_IDLE_INVALID,
            "ERR min-idle-time must be a positive integer"
        );
        assert_eq!(
            CLAIM_WITHOUT_GROUP,
            "ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(
            CLAIM_WITH_HISTORY,
            "ERR The CLAIM option is only supported with the '>' ID"
        );
    }

    /// The bytes of the one entry in a reply of one entry (less the `*1` in front).
    fn one_entry_len(r: &Reply, resp3: bool) -> u64 {
        let b = r.to_bytes(resp3);
        assert!(b.starts_with(b"*1\r\n"));
        b.len() as u64 - 4
    }

    #[test]
    fn claim_reply_sizes_match_the_encoding_of_new_entries() {
        let fields = vec![Bytes::from_static(b"field"), Bytes::from_static(b"v")];
        let id = StreamId::new(1_700_000_000_000, 12);
        for resp3 in [false, true] {
            let r = claim_reads_reply(vec![ClaimRead {
                entry: brooklet_streams::Entry {
                    id,
                    fields: fields.clone(),
                },
                idle_ms: 0,
                prior_deliveries: 0,
            }]);
            let cost = if resp3 {
                reply_size::claim_entry_resp3
            } else {
                reply_size::claim_entry_resp2
            };
            assert_eq!(cost(id, Some(&fields)), one_entry_len(&r, resp3));
        }
    }

    #[test]
    fn reply_sizes_match_the_encoding() {
        use brooklet_resp::Reply;
        let fields = vec![Bytes::from_static(b"field"), Bytes::from_static(b"v")];
        let id = StreamId::new(1_700_000_000_000, 12);
        for resp3 in [false, true] {
            let full = group_entries_reply(
                vec![MaybeEntry {
                    id,
                    fields: Some(fields.clone()),
                }],
                resp3,
            );
            let cost = if resp3 {
                reply_size::entry_resp3
            } else {
                reply_size::entry_resp2
            };
            assert_eq!(cost(id, Some(&fields)), one_entry_len(&full, resp3));
            let nil = group_entries_reply(vec![MaybeEntry { id, fields: None }], resp3);
            assert_eq!(cost(id, None), one_entry_len(&nil, resp3));
            // A stream's framing: the reply of one stream with no entries, less the
            // deferred lengths (the outer one and its entry list's `*0`).
            let key = Bytes::from_static(b"mystream");
            let one = if resp3 {
                Reply::Map(vec![(Reply::Bulk(key.clone()), Reply::Array(vec![]))])
            } else {
                Reply::Array(vec![Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Array(vec![]),
                ])])
            };
            assert_eq!(
                reply_size::stream(&key, resp3),
                one.to_bytes(resp3).len() as u64 - 8
            );
        }
    }
}
