//! Consumer groups: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP;
//! SETDLQ is in `stream_dlq.rs`),
//! XACK, XACKDEL, XPENDING, XCLAIM, XAUTOCLAIM.
//!
//! As in `stream.rs`: a typed struct per command, parsed before the keyspace is touched,
//! with the errors Redis reports only after its key lookup kept as a `Result` in the struct;
//! every write is one [`Ctx::write_stream`] call.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};
use brooklet_streams::{
    AUTOCLAIM_DEFAULT_COUNT, AutoClaimArgs, ClaimArgs, Claimed, DeliveryTime, GroupStartId,
    PendingRangeArgs, StreamError, StreamId, parse_range_end, parse_range_start,
};

use super::reply::{entries_reply, help_reply, id_reply, subcommand_syntax};
use super::stream::{
    RefDeleteArgs, codes_reply, deletes_entries, has_consumer, strict_id, strict_ids,
};
use super::table::flags::*;
use super::table::{command, container, simple};
use super::write::Missing;
use super::{CommandSpec, Ctx};
use crate::client::now_ms;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    container(
        "xgroup",
        &[
            command("create", -5, WRITE | DENYOOM, (2, 2, 1), create),
            command("setid", -5, WRITE, (2, 2, 1), setid),
            command("destroy", 4, WRITE, (2, 2, 1), destroy),
            command(
                "createconsumer",
                5,
                WRITE | DENYOOM,
                (2, 2, 1),
                createconsumer,
            ),
            command("delconsumer", 5, WRITE, (2, 2, 1), delconsumer),
            command("setdlq", -5, WRITE, (2, 2, 1), super::stream_dlq::setdlq),
            simple("help", 2, LOADING, help),
        ],
    ),
    command("xack", -4, WRITE | FAST, (1, 1, 1), xack),
    command("xackdel", -6, WRITE | FAST, (1, 1, 1), xackdel),
    command("xpending", -3, READONLY, (1, 1, 1), xpending),
    command("xclaim", -6, WRITE | FAST, (1, 1, 1), xclaim),
    command("xautoclaim", -6, WRITE | FAST, (1, 1, 1), xautoclaim),
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
    "SETDLQ <key> <groupname> <dlq-key MAXDELIVERIES n|NONE>",
    "    Dead-letter pending entries delivered n times into the stream dlq-key (Brooklet).",
];

fn help(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(help_reply("XGROUP", HELP))
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

fn no_key_or_group(key: &Bytes, group: &Bytes) -> CommandError {
    StreamError::NoKeyOrGroup {
        key: key.clone(),
        group: group.clone(),
    }
    .into()
}

/// XGROUP CREATE's and SETID's arguments.
#[derive(Debug)]
pub(crate) struct XGroupSetArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The group's start, or the error Redis reports for it once it found the key (and,
    /// for SETID, the group): too many arguments, then an invalid ID.
    pub start: Result<GroupStartId, CommandError>,
    /// CREATE's MKSTREAM: a missing key becomes an empty stream.
    pub mkstream: bool,
    /// ENTRIESREAD: the group's entries-read counter (-1 for unknown).
    pub entries_read: Option<i64>,
}

impl<'a> XGroupSetArgs<'a> {
    /// # Format
    /// `CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]` or
    /// `SETID key group id|$ [ENTRIESREAD entries-read]`, after XGROUP: the subcommand is
    /// read too, as typed, for the error text.
    pub fn parse(args: &mut Args<'a>, create: bool) -> Result<Self, CommandError> {
        let sub = args.next_bytes()?;
        let argc = args.remaining() + 2;
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        let id = args.next_bytes()?;
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
                return Err(subcommand_syntax("XGROUP", sub));
            }
        }
        // Options may repeat, so the count is checked on its own, after the key lookup.
        let start = if argc > if create { 8 } else { 7 } {
            Err(subcommand_syntax("XGROUP", sub))
        } else if create {
            GroupStartId::parse(id).map_err(Into::into)
        } else {
            GroupStartId::parse_setid(id).map_err(Into::into)
        };
        Ok(XGroupSetArgs {
            key,
            group,
            start,
            mkstream,
            entries_read,
        })
    }
}

/// The arguments of XGROUP DESTROY, CREATECONSUMER and DELCONSUMER.
#[derive(Debug)]
pub(crate) struct XGroupMemberArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The consumer (CREATECONSUMER, DELCONSUMER); None for DESTROY.
    pub consumer: Option<&'a Bytes>,
}

impl<'a> XGroupMemberArgs<'a> {
    /// # Format
    /// `DESTROY key group`, `CREATECONSUMER key group consumer` or
    /// `DELCONSUMER key group consumer`, after XGROUP (arity is checked by the table).
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let _sub = args.next_bytes()?;
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        let consumer = args.next_bytes().ok();
        args.finish()?;
        Ok(XGroupMemberArgs {
            key,
            group,
            consumer,
        })
    }

    fn consumer(&self) -> Result<&'a Bytes, CommandError> {
        self.consumer.ok_or(CommandError::syntax())
    }
}

/// XACK's arguments.
#[derive(Debug)]
pub(crate) struct XAckArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The IDs, or the first invalid one's error, which Redis reports only when the key
    /// and group exist.
    pub ids: Result<Vec<StreamId>, CommandError>,
}

impl<'a> XAckArgs<'a> {
    /// # Format
    /// `key group id [id ...]`, after the command name.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        Ok(XAckArgs {
            key,
            group,
            ids: strict_ids(args.rest()),
        })
    }
}

/// XPENDING's arguments.
#[derive(Debug)]
pub(crate) struct XPendingArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The extended form's range; None for the summary.
    pub range: Option<PendingRangeArgs>,
}

impl<'a> XPendingArgs<'a> {
    /// # Format
    /// `key group [[IDLE min-idle-time] start end count [consumer]]`, after the command name.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let argc = args.remaining() + 1;
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        if argc != 3 && !(6..=9).contains(&argc) {
            return Err(CommandError::syntax());
        }
        let mut range = None;
        if argc >= 6 {
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
        Ok(XPendingArgs { key, group, range })
    }
}

/// XCLAIM's arguments.
#[derive(Debug)]
pub(crate) struct XClaimArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The consumer.
    pub consumer: &'a Bytes,
    /// What to claim, or the first argument error: Redis parses them only after it found
    /// the key and the group.
    pub claim: Result<ClaimArgs, CommandError>,
}

impl<'a> XClaimArgs<'a> {
    /// # Format
    /// `key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds]
    /// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]`, after the command name.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        let consumer = args.next_bytes()?;
        Ok(XClaimArgs {
            key,
            group,
            consumer,
            claim: parse_claim(args),
        })
    }
}

/// XCLAIM's arguments after the consumer.
fn parse_claim(args: &mut Args<'_>) -> Result<ClaimArgs, CommandError> {
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
    Ok(claim)
}

/// XAUTOCLAIM's arguments.
#[derive(Debug)]
pub(crate) struct XAutoClaimArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The consumer.
    pub consumer: &'a Bytes,
    /// What to claim: min-idle-time, start, COUNT, JUSTID.
    pub claim: AutoClaimArgs,
}

impl<'a> XAutoClaimArgs<'a> {
    /// # Format
    /// `key group consumer min-idle-time start [COUNT count] [JUSTID]`, after the command
    /// name.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        let consumer = args.next_bytes()?;
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
        Ok(XAutoClaimArgs {
            key,
            group,
            consumer,
            claim: AutoClaimArgs {
                min_idle_ms: min_idle_ms.max(0),
                start,
                count,
                just_id,
            },
        })
    }
}

/// XGROUP CREATE: a new group (and with MKSTREAM, a new empty stream).
fn create(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XGroupSetArgs::parse(&mut Args::new(&argv[1..]), true)?;
    let missing = if a.mkstream {
        Missing::Create
    } else {
        Missing::Fail(&key_missing)
    };
    ctx.write_stream(a.key, missing, |s, out, fx| {
        s.create_group(a.group, a.start?, a.entries_read, out)?;
        fx.changed("xgroup-create");
        Ok(Reply::Ok)
    })
}

/// XGROUP SETID: moves a group's last-delivered ID.
fn setid(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XGroupSetArgs::parse(&mut Args::new(&argv[1..]), false)?;
    ctx.write_stream(a.key, Missing::Fail(&key_missing), |s, out, fx| {
        if s.group(a.group).is_none() {
            return Err(no_group(a.key, a.group));
        }
        s.set_group_id(a.key, a.group, a.start?, a.entries_read, out)?;
        fx.changed("xgroup-setid");
        Ok(Reply::Ok)
    })
}

/// XGROUP DESTROY: 1 if the group existed. Readers blocked on the group wake with NOGROUP.
fn destroy(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XGroupMemberArgs::parse(&mut Args::new(&argv[1..]))?;
    ctx.write_stream(a.key, Missing::Fail(&key_missing), |s, out, fx| {
        let destroyed = s.destroy_group(a.group, out);
        if destroyed {
            fx.changed("xgroup-destroy");
        }
        Ok(Reply::Int(i64::from(destroyed)))
    })
}

/// XGROUP CREATECONSUMER: 1 if created, 0 if it existed.
fn createconsumer(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XGroupMemberArgs::parse(&mut Args::new(&argv[1..]))?;
    let consumer = a.consumer()?;
    let now = now_ms();
    ctx.write_stream(a.key, Missing::Fail(&key_missing), |s, out, fx| {
        let created = s.create_consumer(a.key, a.group, consumer, now, out)?;
        if created {
            fx.changed("xgroup-createconsumer");
        }
        Ok(Reply::Int(i64::from(created)))
    })
}

/// XGROUP DELCONSUMER: the consumer's pending count (0 if unknown).
fn delconsumer(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XGroupMemberArgs::parse(&mut Args::new(&argv[1..]))?;
    let consumer = a.consumer()?;
    ctx.write_stream(a.key, Missing::Fail(&key_missing), |s, out, fx| {
        let g = s.group(a.group).ok_or_else(|| no_group(a.key, a.group))?;
        let existed = g.consumers().contains_key(&consumer[..]);
        let pending = s.delete_consumer(a.key, a.group, consumer, out)?;
        if existed {
            fx.changed("xgroup-delconsumer");
        }
        Ok(Reply::Int(pending as i64))
    })
}

/// XACK: how many were pending (0 without key or group). Like Redis, acknowledging neither
/// dirties WATCH nor wakes readers.
fn xack(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XAckArgs::parse(&mut Args::new(&argv[1..]))?;
    let acked = ctx.write_stream(a.key, Missing::MissReply(0), |s, out, _| {
        if s.group(a.group).is_none() {
            return Ok(0);
        }
        Ok(s.ack(a.group, &a.ids?, out))
    })?;
    Ok(Reply::Int(acked as i64))
}

/// XACKDEL: acknowledges the IDs in the group and deletes them under a reference policy,
/// in one write; one code per ID (all -1 without the key or the group).
fn xackdel(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mut args = Args::new(&argv[1..]);
    let key = args.next_bytes()?;
    let group = args.next_bytes()?;
    let a = RefDeleteArgs::parse(&mut args)?;
    let missing = vec![brooklet_streams::REF_NOT_FOUND; a.ids.len()];
    let codes = ctx.write_stream(key, Missing::MissReply(missing), |s, out, fx| {
        let codes = s.ack_delete(group, &a.ids, a.policy, out)?;
        if deletes_entries(out) {
            fx.changed("xdel");
        }
        Ok(codes)
    })?;
    Ok(codes_reply(codes))
}

/// XPENDING: the group's pending summary, or its pending entries in a range.
fn xpending(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let XPendingArgs { key, group, range } = XPendingArgs::parse(&mut Args::new(&argv[1..]))?;
    let shard = ctx.db().lock(key);
    let s = match shard.get(key) {
        Some(v) => v.stream()?,
        None => {
            drop(shard);
            ctx.key_miss(key)?;
            return Err(no_key_or_group(key, group));
        }
    };
    ctx.show(s)?;
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
                            Reply::Int(p.idle_ms),
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
        Claimed::Entries(entries) => entries_reply(entries),
    }
}

/// XCLAIM: takes over pending entries idle long enough.
fn xclaim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XClaimArgs::parse(&mut Args::new(&argv[1..]))?;
    let (key, group, consumer) = (a.key, a.group, a.consumer);
    let now = now_ms();
    let no_key = || no_key_or_group(key, group);
    let missing = Missing::MissFail(&no_key);
    let claimed = ctx.write_stream(key, missing, |s, out, fx| {
        if s.group(group).is_none() {
            return Err(no_key_or_group(key, group));
        }
        let claim = a.claim?;
        let existed = has_consumer(s, group, consumer);
        let claimed = s.claim(key, group, consumer, &claim, now, out)?;
        if !existed && has_consumer(s, group, consumer) {
            fx.announce("xgroup-createconsumer");
        }
        Ok(claimed)
    })?;
    Ok(claimed_reply(claimed))
}

/// XAUTOCLAIM: takes over pending entries idle long enough, scanning from a start ID.
fn xautoclaim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XAutoClaimArgs::parse(&mut Args::new(&argv[1..]))?;
    let (key, group, consumer) = (a.key, a.group, a.consumer);
    let now = now_ms();
    let no_key = || no_key_or_group(key, group);
    let missing = Missing::MissFail(&no_key);
    let outcome = ctx.write_stream(key, missing, |s, out, fx| {
        let existed = has_consumer(s, group, consumer);
        let outcome = s.auto_claim(key, group, consumer, &a.claim, now, out)?;
        if !existed && has_consumer(s, group, consumer) {
            fx.announce("xgroup-createconsumer");
        }
        Ok(outcome)
    })?;
    Ok(Reply::Array(vec![
        id_reply(outcome.next),
        claimed_reply(outcome.claimed),
        Reply::Array(outcome.deleted.into_iter().map(id_reply).collect()),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    const BAD_ID: &str = "ERR Invalid stream ID specified as stream command argument";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    fn group_set(line: &str, create: bool) -> (String, String) {
        let v = argv(line);
        match XGroupSetArgs::parse(&mut Args::new(&v), create) {
            Ok(a) => ("ok".into(), error_of(a.start)),
            Err(e) => (e.to_string(), String::new()),
        }
    }

    #[test]
    fn xgroup_create_and_setid_errors_are_redis_texts() {
        let v = argv("CREATE s g $ MKSTREAM ENTRIESREAD 5");
        let a = XGroupSetArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.mkstream);
        assert_eq!(a.entries_read, Some(5));
        assert_eq!(a.start, Ok(GroupStartId::Last));
        assert_eq!(group_set("CREATE s g 0 ENTRIESREAD -1", true).1, "ok");
        assert_eq!(
            group_set("CREATE s g 0 ENTRIESREAD -2", true).0,
            "ERR value for ENTRIESREAD must be positive or -1"
        );
        assert_eq!(group_set("CREATE s g 0 ENTRIESREAD x", true).0, NOT_INT);
        assert_eq!(
            group_set("CREATE s g 0 FOO", true).0,
            "ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP."
        );
        assert_eq!(
            group_set("SETID s g 0 MKSTREAM", false).0,
            "ERR unknown subcommand or wrong number of arguments for 'SETID'. Try XGROUP HELP."
        );
        // Found only once the key (and for SETID the group) exists, so kept for later.
        assert_eq!(
            group_set("CREATE s g bad", true),
            ("ok".into(), BAD_ID.into())
        );
        assert_eq!(
            group_set("setid s g bad", false),
            ("ok".into(), BAD_ID.into())
        );
        assert_eq!(
            group_set("create s g 0 MKSTREAM MKSTREAM MKSTREAM MKSTREAM", true),
            (
                "ok".into(),
                "ERR unknown subcommand or wrong number of arguments for 'create'. Try XGROUP HELP."
                    .into()
            )
        );
        assert_eq!(
            group_set("SETID s g 0 ENTRIESREAD 1 ENTRIESREAD 2", false).1,
            "ERR unknown subcommand or wrong number of arguments for 'SETID'. Try XGROUP HELP."
        );
    }

    #[test]
    fn xack_keeps_its_id_error_for_after_the_lookup() {
        let v = argv("s g 1-1 bad");
        let a = XAckArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&a.group[..], b"g");
        assert_eq!(error_of(a.ids), BAD_ID);
    }

    #[test]
    fn xpending_errors_are_redis_texts() {
        let e = |line: &str| {
            let v = argv(line);
            error_of(XPendingArgs::parse(&mut Args::new(&v)))
        };
        assert_eq!(e("s g"), "ok");
        assert_eq!(e("s g IDLE 5 - + 10 c"), "ok");
        assert_eq!(e("s g - + x"), NOT_INT);
        assert_eq!(e("s g IDLE x - + 1"), NOT_INT);
        assert_eq!(e("s g IDLE 5 - +"), "ERR syntax error");
        assert_eq!(e("s g -"), "ERR syntax error");
        assert_eq!(e("s g bad + 1"), BAD_ID);
        assert_eq!(e("s g - bad 1"), BAD_ID);
        let v = argv("s g IDLE 5 (1-1 + -3 c");
        let a = XPendingArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        let r = a.range.unwrap_or_else(|| panic!("no range"));
        assert_eq!(r.min_idle_ms, 5);
        assert_eq!(r.start, StreamId::new(1, 2));
        assert_eq!(r.count, 0);
        assert_eq!(r.consumer.as_deref(), Some(&b"c"[..]));
    }

    #[test]
    fn xclaim_errors_are_redis_texts() {
        let e = |line: &str| {
            let v = argv(line);
            let a = XClaimArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
            error_of(a.claim)
        };
        assert_eq!(
            e("s g c 0 1-1 2-2 IDLE 5 RETRYCOUNT 2 FORCE JUSTID LASTID 3-3"),
            "ok"
        );
        assert_eq!(
            e("s g c x 1-1"),
            "ERR Invalid min-idle-time argument for XCLAIM"
        );
        for opt in ["IDLE", "TIME", "RETRYCOUNT"] {
            assert_eq!(
                e(&format!("s g c 0 1-1 {opt} x")),
                format!("ERR Invalid {opt} option argument for XCLAIM")
            );
        }
        assert_eq!(e("s g c 0 1-1 LASTID bad"), BAD_ID);
        assert_eq!(e("s g c 0 1-1 FOO"), "ERR Unrecognized XCLAIM option 'FOO'");
        // A keyword without its value is an unknown option, as in Redis.
        assert_eq!(
            e("s g c 0 1-1 IDLE"),
            "ERR Unrecognized XCLAIM option 'IDLE'"
        );
        let v = argv("s g c -5 1-1 2-2 TIME 7 JUSTID");
        let a = XClaimArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        let claim = a.claim.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claim.min_idle_ms, 0);
        assert_eq!(claim.ids, vec![StreamId::new(1, 1), StreamId::new(2, 2)]);
        assert_eq!(claim.delivery_time, Some(DeliveryTime::Time(7)));
        assert!(claim.just_id && !claim.force);
    }

    #[test]
    fn xautoclaim_errors_are_redis_texts() {
        let e = |line: &str| {
            let v = argv(line);
            error_of(XAutoClaimArgs::parse(&mut Args::new(&v)))
        };
        assert_eq!(e("s g c 0 0 COUNT 5 JUSTID"), "ok");
        assert_eq!(
            e("s g c x 0"),
            "ERR Invalid min-idle-time argument for XAUTOCLAIM"
        );
        assert_eq!(e("s g c 0 bad"), BAD_ID);
        for count in ["0", "x", "-1", "576460752303423488"] {
            assert_eq!(
                e(&format!("s g c 0 0 COUNT {count}")),
                "ERR COUNT must be > 0"
            );
        }
        assert_eq!(e("s g c 0 0 FOO"), "ERR syntax error");
        assert_eq!(e("s g c 0 0 COUNT"), "ERR syntax error");
    }
}
