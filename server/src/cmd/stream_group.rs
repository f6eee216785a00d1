//! Consumer groups: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP),
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};
use brooklet_streams::{
    AUTOCLAIM_DEFAULT_COUNT, AutoClaimArgs, ClaimArgs, Claimed, DeliveryTime, GroupStartId,
    PendingRangeArgs, StreamError, StreamId, parse_range_end, parse_range_start,
};

use super::flags::*;
use super::stream::{entry_reply, has_consumer, id_reply, journal, key_miss, notify, strict_id};
use super::{CommandError, CommandSpec, Ctx, Doc, command, container, help_reply, simple};
use crate::client::now_ms;
use crate::keyspace::Value;

const fn doc(
    summary: &'static str,
    since: &'static str,
    complexity: &'static str,
    syntax: &'static str,
) -> Doc {
    Doc::new("stream", summary, since, complexity, syntax)
}

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    container(
        "xgroup",
        &[
            command(
                "create",
                -5,
                WRITE,
                (2, 2, 1),
                create,
                doc(
                    "Creates a consumer group.",
                    "5.0.0",
                    "O(1)",
                    "key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]",
                ),
            ),
            command(
                "setid",
                -5,
                WRITE,
                (2, 2, 1),
                setid,
                doc(
                    "Sets the last-delivered ID of a consumer group.",
                    "5.0.0",
                    "O(1)",
                    "key group id|$ [ENTRIESREAD entries-read]",
                ),
            ),
            command(
                "destroy",
                4,
                WRITE,
                (2, 2, 1),
                destroy,
                doc(
                    "Destroys a consumer group.",
                    "5.0.0",
                    "O(N) where N is the number of entries in the group's pending entries list (PEL).",
                    "key group",
                ),
            ),
            command(
                "createconsumer",
                5,
                WRITE,
                (2, 2, 1),
                createconsumer,
                doc(
                    "Creates a consumer in a consumer group.",
                    "6.2.0",
                    "O(1)",
                    "key group consumer",
                ),
            ),
            command(
                "delconsumer",
                5,
                WRITE,
                (2, 2, 1),
                delconsumer,
                doc(
                    "Deletes a consumer from a consumer group.",
                    "5.0.0",
                    "O(1)",
                    "key group consumer",
                ),
            ),
            simple(
                "help",
                2,
                LOADING,
                help,
                doc(
                    "Returns helpful text about the different subcommands.",
                    "5.0.0",
                    "O(1)",
                    "",
                ),
            ),
        ],
        doc(
            "A container for consumer groups commands.",
            "5.0.0",
            "Depends on subcommand.",
            "",
        ),
    ),
    command(
        "xack",
        -4,
        WRITE | FAST,
        (1, 1, 1),
        xack,
        doc(
            "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
            "5.0.0",
            "O(1) for each message ID processed.",
            "key group id [id ...]",
        ),
    ),
    command(
        "xpending",
        -3,
        READONLY,
        (1, 1, 1),
        xpending,
        doc(
            "Returns the information and entries from a stream consumer group's pending entries list.",
            "5.0.0",
            "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
            "key group [[IDLE min-idle-time] start end count [consumer]]",
        ),
    ),
    command(
        "xclaim",
        -6,
        WRITE | FAST,
        (1, 1, 1),
        xclaim,
        doc(
            "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
            "5.0.0",
            "O(log N) with N being the number of messages in the PEL of the consumer group.",
            "key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]",
        ),
    ),
    command(
        "xautoclaim",
        -6,
        WRITE | FAST,
        (1, 1, 1),
        xautoclaim,
        doc(
            "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
            "6.2.0",
            "O(1) if COUNT is small.",
            "key group consumer min-idle-time start [COUNT count] [JUSTID]",
        ),
    ),
];

const HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

fn help(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(help_reply("XGROUP", HELP))
}

fn subcommand_syntax(argv: &[Bytes]) -> CommandError {
    super::stream::subcommand_syntax("XGROUP", argv)
}

/// `[MKSTREAM] [ENTRIESREAD n]` after CREATE/SETID's ID (MKSTREAM only for CREATE).
fn parse_group_options(argv: &[Bytes], create: bool) -> Result<(bool, Option<i64>), CommandError> {
    let mut args = Args::new(&argv[5..]);
    let mut mkstream = false;
    let mut entries_read = None;
    while !args.is_empty() {
        if create && args.eat_keyword("MKSTREAM") {
            mkstream = true;
        } else if args.remaining() > 1 && args.eat_keyword("ENTRIESREAD") {
            let n = args.next_i64()?;
            if n < -1 {
                return Err(StreamError::EntriesReadInvalid.into());
            }
            entries_read = Some(n);
        } else {
            return Err(subcommand_syntax(argv));
        }
    }
    Ok((mkstream, entries_read))
}

/// The key must exist for every XGROUP subcommand but CREATE ... MKSTREAM.
fn key_missing() -> CommandError {
    StreamError::XGroupKeyMissing.into()
}

fn no_group(key: &Bytes, group: &Bytes) -> CommandError {
    StreamError::NoGroup {
        key: key.clone(),
        group: group.clone(),
    }
    .into()
}

fn start_id(arg: &[u8]) -> Result<GroupStartId, CommandError> {
    Ok(GroupStartId::parse(arg)?)
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n]
fn create(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group) = (&argv[2], &argv[3]);
    let (mkstream, entries_read) = parse_group_options(argv, true)?;
    let mut created = false;
    {
        let mut shard = ctx.db().lock(key);
        if let Some(v) = shard.get(key) {
            v.stream()?;
        } else if !mkstream {
            return Err(key_missing());
        }
        if argv.len() > 8 {
            return Err(subcommand_syntax(argv));
        }
        let start = start_id(&argv[4])?;
        let mut out = journal();
        match shard.get_mut(key) {
            Some(v) => v
                .stream_mut()?
                .create_group(group, start, entries_read, &mut out)?,
            None => {
                let mut s = brooklet_persistence::StoredStream::new();
                s.create_group(group, start, entries_read, &mut out)?;
                shard.insert(crate::keyspace::keep(key), Value::Stream(Box::new(s)));
                created = true;
            }
        }
        if let Some(v) = shard.get_mut(key) {
            ctx.persist(key, v.stream_mut()?, &out)?;
        }
    }
    if created {
        super::stream::new_key(ctx, key);
    }
    notify(ctx, "xgroup-create", key);
    ctx.key_changed(key);
    Ok(Reply::Ok)
}

/// XGROUP SETID key group id|$ [ENTRIESREAD n]
fn setid(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group) = (&argv[2], &argv[3]);
    let (_, entries_read) = parse_group_options(argv, false)?;
    {
        let mut shard = ctx.db().lock(key);
        let s = shard.get_mut(key).ok_or_else(key_missing)?.stream_mut()?;
        if s.group(group).is_none() {
            return Err(no_group(key, group));
        }
        if argv.len() > 7 {
            return Err(subcommand_syntax(argv));
        }
        let start = GroupStartId::parse_setid(&argv[4])?;
        let mut out = journal();
        s.set_group_id(key, group, start, entries_read, &mut out)?;
        ctx.persist(key, s, &out)?;
    }
    notify(ctx, "xgroup-setid", key);
    ctx.key_changed(key);
    Ok(Reply::Ok)
}

/// XGROUP DESTROY key group: 1 if the group existed. Readers blocked on the group wake
/// with NOGROUP.
fn destroy(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group) = (&argv[2], &argv[3]);
    let destroyed = {
        let mut shard = ctx.db().lock(key);
        let s = shard.get_mut(key).ok_or_else(key_missing)?.stream_mut()?;
        let mut out = journal();
        let destroyed = s.destroy_group(group, &mut out);
        ctx.persist(key, s, &out)?;
        destroyed
    };
    if destroyed {
        notify(ctx, "xgroup-destroy", key);
        ctx.key_changed(key);
    }
    Ok(Reply::Int(i64::from(destroyed)))
}

/// XGROUP CREATECONSUMER key group consumer: 1 if created, 0 if it existed.
fn createconsumer(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group, consumer) = (&argv[2], &argv[3], &argv[4]);
    let created = {
        let mut shard = ctx.db().lock(key);
        let s = shard.get_mut(key).ok_or_else(key_missing)?.stream_mut()?;
        let mut out = journal();
        let created = s.create_consumer(key, group, consumer, now_ms(), &mut out)?;
        ctx.persist(key, s, &out)?;
        created
    };
    if created {
        notify(ctx, "xgroup-createconsumer", key);
        ctx.key_changed(key);
    }
    Ok(Reply::Int(i64::from(created)))
}

/// XGROUP DELCONSUMER key group consumer: the consumer's pending count (0 if unknown).
fn delconsumer(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group, consumer) = (&argv[2], &argv[3], &argv[4]);
    let (existed, pending) = {
        let mut shard = ctx.db().lock(key);
        let s = shard.get_mut(key).ok_or_else(key_missing)?.stream_mut()?;
        let g = s.group(group).ok_or_else(|| no_group(key, group))?;
        let existed = g.consumers().contains_key(&consumer[..]);
        let mut out = journal();
        let pending = s.delete_consumer(key, group, consumer, &mut out)?;
        ctx.persist(key, s, &out)?;
        (existed, pending)
    };
    if existed {
        notify(ctx, "xgroup-delconsumer", key);
        ctx.key_changed(key);
    }
    Ok(Reply::Int(pending as i64))
}

/// XACK key group id [id ...]: how many were pending (0 without key or group).
fn xack(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group) = (&argv[1], &argv[2]);
    // Like Redis, acknowledging neither dirties WATCH nor wakes readers.
    let acked = {
        let mut shard = ctx.db().lock(key);
        let Some(v) = shard.get_mut(key) else {
            drop(shard);
            key_miss(ctx, key);
            return Ok(Reply::Int(0));
        };
        let s = v.stream_mut()?;
        if s.group(group).is_none() {
            return Ok(Reply::Int(0));
        }
        let ids = argv[3..]
            .iter()
            .map(|a| strict_id(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = journal();
        let acked = s.ack(group, &ids, &mut out);
        ctx.persist(key, s, &out)?;
        acked
    };
    Ok(Reply::Int(acked as i64))
}

/// [`no_key_or_group`] for a key not found, after the `keymiss` event its lookup publishes.
fn missing_key_or_group(ctx: &Ctx<'_>, key: &Bytes, group: &Bytes) -> CommandError {
    key_miss(ctx, key);
    no_key_or_group(key, group)
}

fn no_key_or_group(key: &Bytes, group: &Bytes) -> CommandError {
    StreamError::NoKeyOrGroup {
        key: key.clone(),
        group: group.clone(),
    }
    .into()
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
fn xpending(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group) = (&argv[1], &argv[2]);
    let argc = argv.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CommandError::syntax());
    }
    let mut range = None;
    if argc >= 6 {
        let mut args = Args::new(&argv[3..]);
        let mut min_idle_ms = 0;
        if args.eat_keyword("IDLE") {
            min_idle_ms = args.next_i64()?;
            if argc < 8 {
                return Err(CommandError::syntax());
            }
        }
        let start_arg = args.next_bytes()?;
        let end_arg = args.next_bytes()?;
        let count = args.next_i64()?.max(0) as u64;
        let start = parse_range_start(start_arg)?;
        let end = parse_range_end(end_arg)?;
        let consumer = args.next_bytes().ok().cloned();
        range = Some(PendingRangeArgs {
            min_idle_ms,
            start,
            end,
            count,
            consumer,
        });
    }
    let shard = ctx.db().lock(key);
    let s = match shard.get(key) {
        Some(v) => v.stream()?,
        None => {
            drop(shard);
            return Err(missing_key_or_group(ctx, key, group));
        }
    };
    match range {
        None => {
            let p = s.pending_summary(key, group)?;
            let Some((first, last)) = p.bounds else {
                return Ok(Reply::Array(vec![
                    Reply::Int(0),
                    Reply::Null,
                    Reply::Null,
                    Reply::NullArray,
                ]));
            };
            let consumers = p
                .consumers
                .into_iter()
                .map(|(name, n)| Reply::Array(vec![Reply::Bulk(name), Reply::bulk(n.to_string())]))
                .collect();
            Ok(Reply::Array(vec![
                Reply::Int(p.count as i64),
                id_reply(first),
                id_reply(last),
                Reply::Array(consumers),
            ]))
        }
        Some(args) => {
            let items = s.pending_range(key, group, &args, now_ms())?;
            Ok(Reply::Array(
                items
                    .into_iter()
                    .map(|p| {
                        Reply::Array(vec![
                            id_reply(p.id),
                            Reply::Bulk(p.consumer),
                            Reply::Int(p.idle_ms.max(0)),
                            Reply::Int(p.delivery_count as i64),
                        ])
                    })
                    .collect(),
            ))
        }
    }
}

fn claimed_reply(claimed: Claimed) -> Reply {
    match claimed {
        Claimed::Ids(ids) => Reply::Array(ids.into_iter().map(id_reply).collect()),
        Claimed::Entries(entries) => Reply::Array(entries.into_iter().map(entry_reply).collect()),
    }
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]
fn xclaim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group, consumer) = (&argv[1], &argv[2], &argv[3]);
    let mut shard = ctx.db().lock(key);
    let s = match shard.get_mut(key) {
        Some(v) => v.stream_mut()?,
        None => {
            drop(shard);
            return Err(missing_key_or_group(ctx, key, group));
        }
    };
    if s.group(group).is_none() {
        return Err(no_key_or_group(key, group));
    }
    let mut args = Args::new(&argv[4..]);
    let min_idle_ms = args
        .next_i64()
        .map_err(|_| CommandError::msg("ERR Invalid min-idle-time argument for XCLAIM"))?;
    let mut ids = Vec::new();
    while let Some(Ok(id)) = args.peek().map(|a| StreamId::parse(a)) {
        ids.push(id);
        let _ = args.next_bytes();
    }
    let mut claim = ClaimArgs {
        min_idle_ms: min_idle_ms.max(0),
        ids,
        delivery_time: None,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: None,
    };
    while let Some(opt) = args.peek() {
        let more = args.remaining() > 1;
        let bad = |what: &str| {
            CommandError::text(format!("ERR Invalid {what} option argument for XCLAIM"))
        };
        if args.eat_keyword("FORCE") {
            claim.force = true;
        } else if args.eat_keyword("JUSTID") {
            claim.just_id = true;
        } else if more && args.eat_keyword("IDLE") {
            let v = args.next_i64().map_err(|_| bad("IDLE"))?;
            claim.delivery_time = Some(DeliveryTime::Idle(v));
        } else if more && args.eat_keyword("TIME") {
            let v = args.next_i64().map_err(|_| bad("TIME"))?;
            claim.delivery_time = Some(DeliveryTime::Time(v));
        } else if more && args.eat_keyword("RETRYCOUNT") {
            let v = args.next_i64().map_err(|_| bad("RETRYCOUNT"))?;
            claim.retry_count = Some(v);
        } else if more && args.eat_keyword("LASTID") {
            claim.last_id = Some(strict_id(args.next_bytes()?)?);
        } else {
            return Err(CommandError::text(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    let existed = has_consumer(s, group, consumer);
    let mut out = journal();
    // Written even on error: a claim that failed to read an evicted entry back may have
    // claimed others first.
    let claimed = s.claim(key, group, consumer, &claim, now_ms(), &mut out);
    ctx.persist(key, s, &out)?;
    let claimed = claimed?;
    let created = !existed && has_consumer(s, group, consumer);
    drop(shard);
    if created {
        notify(ctx, "xgroup-createconsumer", key);
    }
    Ok(claimed_reply(claimed))
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
fn xautoclaim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group, consumer) = (&argv[1], &argv[2], &argv[3]);
    let mut args = Args::new(&argv[4..]);
    let min_idle_ms = args
        .next_i64()
        .map_err(|_| CommandError::msg("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?;
    let start = parse_range_start(args.next_bytes()?)?;
    let mut count = AUTOCLAIM_DEFAULT_COUNT;
    let mut just_id = false;
    while !args.is_empty() {
        if args.remaining() > 1 && args.eat_keyword("COUNT") {
            count = args
                .next_i64()
                .ok()
                .filter(|&c| (1..=i64::MAX / 16).contains(&c))
                .ok_or(CommandError::from(StreamError::CountMustBePositive))?;
        } else if args.eat_keyword("JUSTID") {
            just_id = true;
        } else {
            return Err(CommandError::syntax());
        }
    }
    let (outcome, created) = {
        let mut shard = ctx.db().lock(key);
        let s = match shard.get_mut(key) {
            Some(v) => v.stream_mut()?,
            None => {
                drop(shard);
                return Err(missing_key_or_group(ctx, key, group));
            }
        };
        let a = AutoClaimArgs {
            min_idle_ms: min_idle_ms.max(0),
            start,
            count,
            just_id,
        };
        let existed = has_consumer(s, group, consumer);
        let mut out = journal();
        let outcome = s.auto_claim(key, group, consumer, &a, now_ms(), &mut out);
        ctx.persist(key, s, &out)?;
        let outcome = outcome?;
        (outcome, !existed && has_consumer(s, group, consumer))
    };
    if created {
        notify(ctx, "xgroup-createconsumer", key);
    }
    Ok(Reply::Array(vec![
        id_reply(outcome.next),
        claimed_reply(outcome.claimed),
        Reply::Array(outcome.deleted.into_iter().map(id_reply).collect()),
    ]))
}
