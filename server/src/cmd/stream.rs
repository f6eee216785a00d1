//! The stream entry commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XDELEX, XTRIM, XSETID.
//!
//! Each command is parsed into a typed struct (`XAddArgs`, ...) by its `parse`, which
//! reports every argument error with Redis's text before the keyspace is touched; errors
//! Redis reports only once it found the key are kept in the struct as a `Result` and
//! surface in the same order. The handler then makes one [`Ctx::write_stream`] call (or,
//! for a read, takes the shard lock itself); the semantics live in `brooklet-streams`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use brooklet_resp::{
    ARRAY_HEADER_ROOM, Args, Reply, parse_int, write_array_header, write_array_header_before,
    write_bulk,
};
use brooklet_streams::{
    IdSpec, IdmpAdd, IdmpKey, NodeLimits, RefPolicy, Stream, StreamError, StreamId, TrimArgs,
    TrimStrategy, parse_range_end, parse_range_start,
};

use super::reply::id_reply;
use super::stream_idmp::{IDMP_NEEDS_AUTO_ID, eat_idmp};
use super::table::command;
use super::table::flags::*;
use super::write::Missing;
use super::{CommandSpec, Ctx};
use crate::client::now_ms;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("xadd", -5, WRITE | DENYOOM | FAST, (1, 1, 1), xadd),
    command("xlen", 2, READONLY | FAST, (1, 1, 1), xlen),
    command("xrange", -4, READONLY, (1, 1, 1), xrange),
    command("xrevrange", -4, READONLY, (1, 1, 1), xrevrange),
    command("xdel", -3, WRITE | FAST, (1, 1, 1), xdel),
    command("xdelex", -5, WRITE | FAST, (1, 1, 1), xdelex),
    command("xtrim", -4, WRITE, (1, 1, 1), xtrim),
    command("xsetid", -3, WRITE | DENYOOM | FAST, (1, 1, 1), xsetid),
];

/// `-ERR no such key`.
pub(crate) const NO_SUCH_KEY: CommandError = CommandError::msg("ERR no such key");

/// A second EXPECTLAST in one XADD (worded as Redis words a repeated IDMP).
const EXPECTLAST_TWICE: CommandError = CommandError::msg("ERR EXPECTLAST specified multiple times");

/// XTRIM's error without MAXLEN or MINID.
const NO_TRIM_STRATEGY: CommandError =
    CommandError::msg("ERR syntax error, XTRIM must be called with a trimming strategy");

/// The node limits from `stream-node-max-entries` / `stream-node-max-bytes`.
pub(crate) fn node_limits(ctx: &Ctx<'_>) -> NodeLimits {
    let config = ctx.shared.config();
    NodeLimits {
        max_bytes: config.stream_node_max_bytes,
        max_entries: config.stream_node_max_entries,
    }
}

/// Whether `consumer` exists in `group` of `s` (to tell when a command created it).
pub(crate) fn has_consumer(s: &Stream, group: &[u8], consumer: &[u8]) -> bool {
    s.group(group)
        .is_some_and(|g| g.consumers().contains_key(consumer))
}

/// Parses a strict stream ID (no `-`, `+`, `*`).
pub(crate) fn strict_id(arg: &[u8]) -> Result<StreamId, CommandError> {
    Ok(StreamId::parse(arg)?)
}

/// Parses strict stream IDs, all of them or the first error.
pub(crate) fn strict_ids(args: &[Bytes]) -> Result<Vec<StreamId>, CommandError> {
    args.iter().map(|a| strict_id(a)).collect()
}

/// Parses a COUNT-like argument: an integer, negatives clamped to 0, as Redis does.
pub(crate) fn count_arg(args: &mut Args<'_>) -> Result<u64, CommandError> {
    Ok(args.next_i64()?.max(0) as u64)
}

/// XADD's arguments.
#[derive(Debug)]
pub(crate) struct XAddArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// NOMKSTREAM: a missing key is answered with a null instead of created.
    pub nomkstream: bool,
    /// MAXLEN / MINID, applied after the entry went in.
    pub trim: Option<TrimArgs>,
    /// The entry's ID, or how to make it (`*`, `ms-*`).
    pub id: IdSpec,
    /// Field-value pairs (an even, non-zero count).
    pub fields: &'a [Bytes],
    /// IDMP pid iid / IDMPAUTO pid (the ID is then `*`).
    pub idmp: Option<IdmpKey<'a>>,
    /// EXPECTLAST id (a Brooklet extension): append only if the stream's last generated
    /// ID is this one.
    pub expect_last: Option<StreamId>,
}

impl<'a> XAddArgs<'a> {
    /// # Format
    /// `key [NOMKSTREAM] [KEEPREF|DELREF|ACKED] [IDMPAUTO pid|IDMP pid iid] [EXPECTLAST id]
    /// [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]`,
    /// after the command name (the policy, kept in `trim`, matters only with a trim).
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let opts = parse_add_trim(args, true)?;
        let fields = args.rest();
        let Some(id) = opts.id else {
            // The options took every argument (`XADD k MAXLEN ~ 5`).
            return Err(StreamError::WrongArity("xadd").into());
        };
        if fields.is_empty() || !fields.len().is_multiple_of(2) {
            return Err(StreamError::WrongArity("xadd").into());
        }
        Ok(XAddArgs {
            key,
            nomkstream: opts.nomkstream,
            trim: opts.trim,
            id: id?,
            fields,
            idmp: opts.idmp,
            expect_last: opts.expect_last,
        })
    }
}

/// XTRIM's arguments.
#[derive(Debug)]
pub(crate) struct XTrimArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// MAXLEN or MINID, exact or `~`, with its LIMIT.
    pub trim: TrimArgs,
}

impl<'a> XTrimArgs<'a> {
    /// # Format
    /// `key MAXLEN|MINID [=|~] threshold [LIMIT count] [KEEPREF|DELREF|ACKED]`, after the
    /// command name; options in any order.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let opts = parse_add_trim(args, false)?;
        args.finish()?;
        Ok(XTrimArgs {
            key,
            trim: opts.trim.ok_or(NO_TRIM_STRATEGY)?,
        })
    }
}

/// XDEL's arguments.
#[derive(Debug)]
pub(crate) struct XDelArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The IDs, or the first invalid one's error, which Redis reports only for an existing
    /// key (a missing key deletes nothing whatever the IDs).
    pub ids: Result<Vec<StreamId>, CommandError>,
}

impl<'a> XDelArgs<'a> {
    /// # Format
    /// `key id [id ...]`, after the command name.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(XDelArgs {
            key,
            ids: strict_ids(args.rest()),
        })
    }
}

/// XDELEX's and XACKDEL's `numids` when it is not a count.
const IDS_NOT_POSITIVE: CommandError =
    CommandError::msg("ERR Number of IDs must be a positive integer");

/// And when fewer IDs follow it than it says.
const IDS_MISMATCH: CommandError =
    CommandError::msg("ERR The `numids` parameter must match the number of arguments");

/// The tail XDELEX and XACKDEL share: a reference policy and the IDs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RefDeleteArgs {
    /// KEEPREF unless given.
    pub policy: RefPolicy,
    /// The IDs, in command order.
    pub ids: Vec<StreamId>,
}

impl RefDeleteArgs {
    /// # Format
    /// `[KEEPREF|DELREF|ACKED] IDS numids id [id ...]`, in any order, as Redis reads it:
    /// a second policy or anything after the IDs is a syntax error. The IDs are checked
    /// here, before the key is looked up.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        let mut policy = None;
        let mut ids = None;
        while let Some(arg) = args.peek() {
            let word = |w: &str| arg.eq_ignore_ascii_case(w.as_bytes());
            let named = [
                ("KEEPREF", RefPolicy::KeepRef),
                ("DELREF", RefPolicy::DelRef),
                ("ACKED", RefPolicy::Acked),
            ]
            .into_iter()
            .find(|(w, _)| word(w));
            if let (Some((_, p)), None) = (named, policy) {
                policy = Some(p);
                args.next_bytes()?;
            } else if word("IDS") && args.remaining() > 1 {
                args.next_bytes()?;
                let n = args.next_bytes()?;
                let n = match parse_int(n) {
                    Some(n) if n >= 1 => n as u64,
                    _ => return Err(IDS_NOT_POSITIVE),
                };
                if n > args.remaining() as u64 {
                    return Err(IDS_MISMATCH);
                }
                let list = &args.rest()[..n as usize];
                ids = Some(strict_ids(list)?);
                for _ in 0..n {
                    args.next_bytes()?;
                }
            } else {
                return Err(CommandError::syntax());
            }
        }
        // Unreachable within the arity (three words without IDS hold a second policy or
        // a stray word); a syntax error all the same.
        let ids = ids.ok_or_else(CommandError::syntax)?;
        Ok(RefDeleteArgs {
            policy: policy.unwrap_or_default(),
            ids,
        })
    }
}

/// Whether a reference-policy deletion (XDELEX, XACKDEL) removed any entry: only then does
/// it publish `xdel`.
pub(super) fn deletes_entries(out: &[brooklet_streams::Mutation]) -> bool {
    out.iter()
        .any(|m| matches!(m, brooklet_streams::Mutation::EntriesDeleted { .. }))
}

/// One integer per ID, as XDELEX and XACKDEL reply.
pub(crate) fn codes_reply(codes: Vec<i64>) -> Reply {
    Reply::Array(codes.into_iter().map(Reply::Int).collect())
}

/// XSETID's arguments.
#[derive(Debug)]
pub(crate) struct XSetIdArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The stream's new last ID.
    pub last_id: StreamId,
    /// ENTRIESADDED: the stream's new entries-added counter.
    pub entries_added: Option<i64>,
    /// MAXDELETEDID: the stream's new max-deleted-entry-id.
    pub max_deleted: Option<StreamId>,
}

impl<'a> XSetIdArgs<'a> {
    /// # Format
    /// `key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`, after the
    /// command name.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let last_id = strict_id(args.next_bytes()?)?;
        let mut entries_added = None;
        let mut max_deleted = None;
        while !args.is_empty() {
            let more = args.remaining() > 1;
            if more && args.eat_keyword("ENTRIESADDED") {
                let n = args.next_i64()?;
                if n < 0 {
                    return Err(StreamError::EntriesAddedNegative.into());
                }
                entries_added = Some(n);
            } else if more && args.eat_keyword("MAXDELETEDID") {
                let m = strict_id(args.next_bytes()?)?;
                if last_id < m {
                    return Err(StreamError::SetIdBelowGivenMaxDeleted.into());
                }
                max_deleted = Some(m);
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(XSetIdArgs {
            key,
            last_id,
            entries_added,
            max_deleted,
        })
    }
}

/// XRANGE's and XREVRANGE's arguments.
#[derive(Debug)]
pub(crate) struct RangeArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The lower bound, inclusive (an exclusive `(id` is already moved past).
    pub start: StreamId,
    /// The upper bound, inclusive.
    pub end: StreamId,
    /// COUNT: at most this many entries (negative is 0).
    pub count: Option<u64>,
    /// XREVRANGE: highest first.
    pub rev: bool,
}

impl<'a> RangeArgs<'a> {
    /// # Format
    /// `key start end [COUNT count]` (XRANGE) or `key end start [COUNT count]` (XREVRANGE),
    /// after the command name.
    pub fn parse(args: &mut Args<'a>, rev: bool) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let first = args.next_bytes()?;
        let second = args.next_bytes()?;
        let (start_arg, end_arg) = if rev {
            (second, first)
        } else {
            (first, second)
        };
        let start = parse_range_start(start_arg)?;
        let end = parse_range_end(end_arg)?;
        let mut count: Option<u64> = None;
        while !args.is_empty() {
            if args.remaining() > 1 && args.eat_keyword("COUNT") {
                count = Some(count_arg(args)?);
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(RangeArgs {
            key,
            start,
            end,
            count,
            rev,
        })
    }
}

/// XADD's and XTRIM's shared options (Redis's `streamAddTrimArgs`).
struct AddTrimOptions<'a> {
    trim: Option<TrimArgs>,
    /// XADD's IDMP / IDMPAUTO.
    idmp: Option<IdmpKey<'a>>,
    nomkstream: bool,
    /// XADD's EXPECTLAST.
    expect_last: Option<StreamId>,
    /// XADD's ID, when arguments were left for one (`Err` only for `0-0`, which Redis
    /// refuses after checking the field count).
    id: Option<Result<IdSpec, StreamError>>,
}

/// Parses `[NOMKSTREAM] [KEEPREF|DELREF|ACKED] [MAXLEN|MINID [=|~] threshold [LIMIT
/// count]]` as Redis's
/// `streamParseAddOrTrimArgsOrReply`, stopping (for XADD) at the first argument that is not
/// an option, which is the ID, parsed there: a bad ID is reported before a misused LIMIT.
///
/// # Format
/// After the key: options in any order; for XADD then `*|id field value ...` is left.
fn parse_add_trim<'a>(args: &mut Args<'a>, xadd: bool) -> Result<AddTrimOptions<'a>, CommandError> {
    let mut strategy: Option<TrimStrategy> = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut nomkstream = false;
    let mut policy: Option<RefPolicy> = None;
    let mut id = None;
    let mut idmp = None;
    let mut expect_last = None;
    const BOTH: CommandError = CommandError::msg(
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
    );
    while let Some(opt) = args.peek() {
        let more = args.remaining() > 1;
        if xadd && &opt[..] == b"*" {
            id = Some(xadd_id(args)?);
            break;
        } else if xadd && eat_idmp(args, &mut idmp)? {
        } else if xadd && more && args.eat_keyword("EXPECTLAST") {
            if expect_last.is_some() {
                return Err(EXPECTLAST_TWICE);
            }
            expect_last = Some(strict_id(args.next_bytes()?)?);
        } else if more && args.eat_keyword("MAXLEN") {
            if strategy.is_some() {
                return Err(BOTH);
            }
            approx = eat_approx(args);
            let max = args.next_i64()?;
            if max < 0 {
                return Err(StreamError::MaxLenNegative.into());
            }
            strategy = Some(TrimStrategy::MaxLen(max as u64));
        } else if more && args.eat_keyword("MINID") {
            if strategy.is_some() {
                return Err(BOTH);
            }
            approx = eat_approx(args);
            strategy = Some(TrimStrategy::MinId(strict_id(args.next_bytes()?)?));
        } else if more && args.eat_keyword("LIMIT") {
            let n = args.next_i64()?;
            if n < 0 {
                return Err(StreamError::LimitNegative.into());
            }
            limit = Some(n);
        } else if let Some(p) = policy.is_none().then(|| ref_policy(args)).flatten() {
            // A second policy is no option: XADD takes it for the ID, XTRIM refuses it.
            policy = Some(p);
        } else if xadd && args.eat_keyword("NOMKSTREAM") {
            nomkstream = true;
        } else if xadd {
            id = Some(xadd_id(args)?);
            if idmp.is_some() && id != Some(Ok(IdSpec::Auto)) {
                return Err(IDMP_NEEDS_AUTO_ID);
            }
            break;
        } else {
            return Err(CommandError::syntax());
        }
    }
    if limit.is_some_and(|l| l != 0) && strategy.is_none() {
        return Err(CommandError::msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(CommandError::msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    // Any LIMIT, even 0, needs `~`; only a non-zero one needs a strategy (Redis's order).
    if limit.is_some() && !approx {
        return Err(StreamError::LimitWithoutApprox.into());
    }
    let trim = strategy.map(|strategy| TrimArgs {
        strategy,
        approx,
        // An explicit LIMIT 0 with an exact trim means "no limit", which is the default.
        limit: if approx {
            limit.map(|l| l as u64)
        } else {
            None
        },
        policy: policy.unwrap_or_default(),
    });
    Ok(AddTrimOptions {
        trim,
        idmp,
        nomkstream,
        expect_last,
        id,
    })
}

/// Consumes KEEPREF, DELREF or ACKED if the next argument is one (no argument need follow).
fn ref_policy(args: &mut Args<'_>) -> Option<RefPolicy> {
    [
        ("KEEPREF", RefPolicy::KeepRef),
        ("DELREF", RefPolicy::DelRef),
        ("ACKED", RefPolicy::Acked),
    ]
    .into_iter()
    .find(|(w, _)| args.eat_keyword(w))
    .map(|(_, p)| p)
}

/// Takes XADD's ID argument; an invalid one is an error now, `0-0` only after the fields.
fn xadd_id(args: &mut Args<'_>) -> Result<Result<IdSpec, StreamError>, CommandError> {
    let spec = IdSpec::parse(args.next_bytes()?);
    match spec {
        Err(e) if e != StreamError::XAddZeroId => Err(e.into()),
        spec => Ok(spec),
    }
}

/// Consumes `~` (returning true) or `=` after MAXLEN / MINID when a threshold follows.
fn eat_approx(args: &mut Args<'_>) -> bool {
    if args.remaining() < 2 {
        return false;
    }
    match args.peek().map(|a| &a[..]) {
        Some(b"~") => {
            let _ = args.next_bytes();
            true
        }
        Some(b"=") => {
            let _ = args.next_bytes();
            false
        }
        _ => false,
    }
}

/// XADD: appends an entry, creating the stream unless NOMKSTREAM, then trims.
fn xadd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XAddArgs::parse(&mut Args::new(&argv[1..]))?;
    let limits = node_limits(ctx);
    let now = now_ms();
    let missing = if a.nomkstream {
        Missing::Reply(None)
    } else {
        Missing::Create
    };
    let id = ctx.write_stream(a.key, missing, |s, out, fx| {
        let added = match a.idmp {
            None => {
                // Checked before the ID: a conflict is what the caller needs to know.
                if let Some(expected) = a.expect_last {
                    s.expect_last(expected)?;
                }
                s.add(a.id, a.fields, a.trim.as_ref(), now, &limits, out)
            }
            Some(k) => {
                let trim = a.trim.as_ref();
                match s.add_idempotent(k, a.id, a.fields, trim, a.expect_last, now, &limits, out) {
                    // A duplicate changes only a counter: no event, nothing woken (as Redis).
                    Ok(IdmpAdd::Duplicate(id)) => return Ok(Some(id)),
                    Ok(IdmpAdd::Added(added)) => Ok(added),
                    Err(e) => Err(e),
                }
            }
        };
        // The entry may have gone in before the trim failed (it could not read back an
        // evicted node): watchers and blocked readers hear of it all the same.
        if added.is_ok() || !out.is_empty() {
            fx.changed("xadd");
        }
        let added = added?;
        if added.trimmed > 0 {
            fx.changed("xtrim");
        }
        Ok(Some(added.id))
    })?;
    // A missing key under NOMKSTREAM is answered with a null.
    Ok(id.map_or(Reply::Null, id_reply))
}

/// XLEN key
fn xlen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let shard = ctx.db().lock(&argv[1]);
    let len = match shard.get(&argv[1]) {
        Some(v) => {
            let s = v.stream()?;
            ctx.show(s)?;
            s.len()
        }
        None => {
            drop(shard);
            ctx.key_miss(&argv[1])?;
            0
        }
    };
    Ok(Reply::Int(len as i64))
}

fn xrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    range(ctx, RangeArgs::parse(&mut Args::new(&argv[1..]), false)?)
}

fn xrevrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    range(ctx, RangeArgs::parse(&mut Args::new(&argv[1..]), true)?)
}

/// XRANGE / XREVRANGE: the entries between two IDs, encoded straight from the nodes.
fn range(ctx: &mut Ctx<'_>, a: RangeArgs<'_>) -> Result<Reply, CommandError> {
    // Locked mutably: reading a node evicted from memory brings it back in.
    let mut shard = ctx.db().lock(a.key);
    let Some(v) = shard.get_mut(a.key) else {
        drop(shard);
        ctx.key_miss(a.key)?;
        return Ok(Reply::Array(Vec::new()));
    };
    let s = v.stream_mut()?;
    ctx.show(s)?;
    if a.count == Some(0) {
        return Ok(Reply::NullArray);
    }
    let count = a.count.map(|c| usize::try_from(c).unwrap_or(usize::MAX));
    // Encoded here from the nodes' bytes (arrays and bulk strings read the same in RESP2
    // and RESP3), without copying each field into a reply tree first. The count of entries
    // goes in the room left in front once they are written. Sized so that a short range
    // does not grow the buffers step by step.
    let mut body = BytesMut::with_capacity(2048);
    body.put_bytes(0, ARRAY_HEADER_ROOM);
    let mut fields = BytesMut::with_capacity(512);
    let mut id_text = [0u8; brooklet_streams::ID_TEXT_MAX];
    let visited = s.range_with(a.start, a.end, count, a.rev, |id, values| {
        fields.clear();
        let mut n = 0;
        for v in values {
            write_bulk(&mut fields, v);
            n += 1;
        }
        write_array_header(&mut body, 2);
        let len = id.write_text(&mut id_text);
        write_bulk(&mut body, &id_text[..len]);
        write_array_header(&mut body, n);
        body.extend_from_slice(&fields);
    })?;
    let start = write_array_header_before(&mut body[..ARRAY_HEADER_ROOM], visited);
    body.advance(start);
    Ok(Reply::Raw(body.freeze()))
}

/// XDEL: how many of the IDs were deleted (0 without the key).
fn xdel(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XDelArgs::parse(&mut Args::new(&argv[1..]))?;
    let deleted = ctx.write_stream(a.key, Missing::Reply(0), |s, out, fx| {
        let deleted = s.delete(&a.ids?, out)?;
        if deleted > 0 {
            fx.changed("xdel");
        }
        Ok(deleted)
    })?;
    Ok(Reply::Int(deleted as i64))
}

/// XDELEX: deletes the IDs under a reference policy; one code per ID (all -1 without
/// the key).
fn xdelex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mut args = Args::new(&argv[1..]);
    let key = args.next_bytes()?;
    let a = RefDeleteArgs::parse(&mut args)?;
    let missing = vec![brooklet_streams::REF_NOT_FOUND; a.ids.len()];
    let codes = ctx.write_stream(key, Missing::Reply(missing), |s, out, fx| {
        let codes = s.delete_ex(&a.ids, a.policy, out)?;
        if deletes_entries(out) {
            fx.changed("xdel");
        }
        Ok(codes)
    })?;
    Ok(codes_reply(codes))
}

/// XTRIM: how many entries the trim removed (0 without the key).
fn xtrim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    // The options are checked before the key is looked up, as Redis does.
    let a = XTrimArgs::parse(&mut Args::new(&argv[1..]))?;
    let limits = node_limits(ctx);
    let removed = ctx.write_stream(a.key, Missing::Reply(0), |s, out, fx| {
        let removed = s.trim(&a.trim, &limits, out)?;
        if removed > 0 {
            fx.changed("xtrim");
        }
        Ok(removed)
    })?;
    Ok(Reply::Int(removed as i64))
}

/// XSETID: sets the stream's last ID (and entries-added, max-deleted-id).
fn xsetid(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XSetIdArgs::parse(&mut Args::new(&argv[1..]))?;
    ctx.write_stream(a.key, Missing::Fail(&|| NO_SUCH_KEY), |s, out, fx| {
        s.set_id(a.last_id, a.entries_added, a.max_deleted, out)?;
        fx.changed("xsetid");
        Ok(Reply::Ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    const ARITY: &str = "ERR wrong number of arguments for 'xadd' command";
    const BAD_ID: &str = "ERR Invalid stream ID specified as stream command argument";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    fn xadd_error(line: &str) -> String {
        let v = argv(line);
        error_of(XAddArgs::parse(&mut Args::new(&v)))
    }

    fn xtrim_error(line: &str) -> String {
        let v = argv(line);
        error_of(XTrimArgs::parse(&mut Args::new(&v)))
    }

    #[test]
    fn xadd_parses_options_id_and_fields() {
        let v = argv("k NOMKSTREAM MAXLEN ~ 10 LIMIT 5 1-1 f v g w");
        let a = XAddArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&a.key[..], b"k");
        assert!(a.nomkstream);
        let trim = a.trim.unwrap_or_else(|| panic!("no trim"));
        assert_eq!(trim.strategy, TrimStrategy::MaxLen(10));
        assert!(trim.approx);
        assert_eq!(trim.limit, Some(5));
        assert_eq!(
            a.id,
            IdSpec::parse(b"1-1").unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(a.fields.len(), 4);

        let v = argv("k MINID = 5-0 * f v");
        let a = XAddArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        let trim = a.trim.unwrap_or_else(|| panic!("no trim"));
        assert_eq!(trim.strategy, TrimStrategy::MinId(StreamId::new(5, 0)));
        assert!(!trim.approx);
        assert!(!a.nomkstream);
        assert_eq!(a.id, IdSpec::Auto);
    }

    #[test]
    fn xadd_errors_are_redis_texts() {
        assert_eq!(xadd_error("k MAXLEN ~ 5"), ARITY);
        assert_eq!(xadd_error("k * f"), ARITY);
        assert_eq!(xadd_error("k * f v g"), ARITY);
        assert_eq!(xadd_error("k 0-0 f"), ARITY);
        assert_eq!(
            xadd_error("k 0-0 f v"),
            "ERR The ID specified in XADD must be greater than 0-0"
        );
        assert_eq!(xadd_error("k bad f v"), BAD_ID);
        assert_eq!(xadd_error("k bad f v g"), BAD_ID);
        assert_eq!(
            xadd_error("k MAXLEN 1 MINID 0 * f v"),
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
        );
        assert_eq!(
            xadd_error("k MAXLEN -1 * f v"),
            "ERR The MAXLEN argument must be >= 0."
        );
        assert_eq!(xadd_error("k MAXLEN x * f v"), NOT_INT);
        assert_eq!(xadd_error("k MINID bad * f v"), BAD_ID);
        assert_eq!(
            xadd_error("k MAXLEN ~ 1 LIMIT -1 * f v"),
            "ERR The LIMIT argument must be >= 0."
        );
        assert_eq!(xadd_error("k MAXLEN ~ 1 LIMIT x * f v"), NOT_INT);
        assert_eq!(
            xadd_error("k LIMIT 5 * f v"),
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        );
        for line in ["k MAXLEN 1 LIMIT 5 * f v", "k LIMIT 0 * f v"] {
            assert_eq!(
                xadd_error(line),
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
                "{line}"
            );
        }
        // The ID is parsed where the options stop, before LIMIT's checks.
        assert_eq!(xadd_error("k MAXLEN = 1 LIMIT 0 bad f v"), BAD_ID);
    }

    #[test]
    fn xadd_expectlast_parses_anywhere_among_the_options() {
        let expect = |line: &str| {
            let v = argv(line);
            let a = XAddArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{line}: {e}"));
            (
                a.expect_last,
                a.nomkstream,
                a.trim.is_some(),
                a.idmp.is_some(),
            )
        };
        let five = Some(StreamId::new(5, 0));
        assert_eq!(
            expect("k EXPECTLAST 5-0 * f v"),
            (five, false, false, false)
        );
        assert_eq!(expect("k expectlast 5 * f v"), (five, false, false, false));
        assert_eq!(
            expect("k NOMKSTREAM MAXLEN 3 EXPECTLAST 5-0 ACKED IDMP p i * f v"),
            (five, true, true, true)
        );
        assert_eq!(
            expect("k EXPECTLAST 0-0 1-1 f v"),
            (Some(StreamId::new(0, 0)), false, false, false)
        );
        assert_eq!(expect("k * EXPECTLAST 5-0").0, None);
    }

    #[test]
    fn xadd_expectlast_errors_are_redis_texts() {
        for bad in [
            "k EXPECTLAST x * f v",
            "k EXPECTLAST * * f v",
            "k EXPECTLAST $ * f v",
            "k EXPECTLAST 1-x * f v",
            "k EXPECTLAST - * f v",
        ] {
            assert_eq!(xadd_error(bad), BAD_ID, "{bad}");
        }
        assert_eq!(
            xadd_error("k EXPECTLAST 1-0 EXPECTLAST 2-0 * f v"),
            "ERR EXPECTLAST specified multiple times"
        );
        assert_eq!(xadd_error("k EXPECTLAST 1-0"), ARITY);
        assert_eq!(xadd_error("k EXPECTLAST 1-0 * f"), ARITY);
        // Without an ID after it, the word is taken for the ID, as Redis would.
        assert_eq!(xadd_error("k EXPECTLAST"), BAD_ID);
    }

    #[test]
    fn xtrim_errors_are_redis_texts() {
        assert_eq!(xtrim_error("k MAXLEN ~ 1 LIMIT 0"), "ok");
        assert_eq!(
            xtrim_error("k LIMIT 5"),
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        );
        assert_eq!(
            xtrim_error("k MAXLEN 1 LIMIT 5"),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
        assert_eq!(xtrim_error("k MAXLEN 1 extra"), "ERR syntax error");
        assert_eq!(xtrim_error("k FOO 1"), "ERR syntax error");
        assert_eq!(xtrim_error("k NOMKSTREAM MAXLEN 1"), "ERR syntax error");
        assert_eq!(
            xtrim_error("k MAXLEN 1 MINID 1"),
            "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
        );
        assert_eq!(xtrim_error("k MAXLEN ~ x"), NOT_INT);
        assert_eq!(xtrim_error("k MINID bad"), BAD_ID);
        assert_eq!(
            xtrim_error("k MAXLEN -5"),
            "ERR The MAXLEN argument must be >= 0."
        );
        assert_eq!(
            xtrim_error("k LIMIT 0"),
            "ERR syntax error, XTRIM must be called with a trimming strategy"
        );
    }

    #[test]
    fn trim_reference_policy_anywhere_among_the_options() {
        let policy = |cmd: &str, line: &str| {
            let v = argv(line);
            let trim = if cmd == "xadd" {
                XAddArgs::parse(&mut Args::new(&v)).map(|a| a.trim)
            } else {
                XTrimArgs::parse(&mut Args::new(&v)).map(|a| Some(a.trim))
            };
            trim.unwrap_or_else(|e| panic!("{line}: {e}"))
                .map(|t| t.policy)
        };
        assert_eq!(policy("xadd", "k MAXLEN 1 * f v"), Some(RefPolicy::KeepRef));
        assert_eq!(
            policy("xadd", "k acked MAXLEN 1 * f v"),
            Some(RefPolicy::Acked)
        );
        assert_eq!(
            policy("xadd", "k NOMKSTREAM MINID ~ 5 LIMIT 9 DELREF 9-1 f v"),
            Some(RefPolicy::DelRef)
        );
        // Without a trim the policy is accepted and does nothing.
        assert_eq!(policy("xadd", "k KEEPREF * f v"), None);
        assert_eq!(
            policy("xtrim", "k DELREF MAXLEN 0"),
            Some(RefPolicy::DelRef)
        );
        assert_eq!(policy("xtrim", "k MINID = 5 ACKED"), Some(RefPolicy::Acked));
        assert_eq!(
            policy("xtrim", "k MAXLEN ~ 5 KEEPREF LIMIT 3"),
            Some(RefPolicy::KeepRef)
        );
    }

    #[test]
    fn trim_reference_policy_errors_are_redis_texts() {
        // A second policy is not an option: XADD reads it as the ID, XTRIM refuses it.
        assert_eq!(xadd_error("k KEEPREF DELREF * f v"), BAD_ID);
        assert_eq!(xadd_error("k MAXLEN 1 ACKED ACKED * f v"), BAD_ID);
        assert_eq!(xadd_error("k ACKED f v"), BAD_ID);
        assert_eq!(xadd_error("k DELREF MAXLEN 1"), ARITY);
        assert_eq!(xtrim_error("k MAXLEN 1 ACKED DELREF"), "ERR syntax error");
        assert_eq!(
            xtrim_error("k KEEPREF MAXLEN 1 KEEPREF"),
            "ERR syntax error"
        );
        assert_eq!(
            xtrim_error("k ACKED LIMIT 0"),
            "ERR syntax error, XTRIM must be called with a trimming strategy"
        );
        assert_eq!(xtrim_error("k MAXLEN ~ ACKED"), NOT_INT);
        assert_eq!(
            xtrim_error("k DELREF MAXLEN 1 LIMIT 2"),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
    }

    #[test]
    fn xdel_keeps_its_id_error_for_after_the_lookup() {
        let v = argv("k 1-1 bad");
        let a = XDelArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(error_of(a.ids), BAD_ID);
        let v = argv("k 1-1 2");
        let a = XDelArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.ids.unwrap_or_else(|e| panic!("{e}")),
            vec![StreamId::new(1, 1), StreamId::new(2, 0)]
        );
    }

    #[test]
    fn ref_delete_args_parse_policy_and_ids() {
        let p = |line: &str| {
            let v = argv(line);
            RefDeleteArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"))
        };
        let a = p("IDS 2 1-1 2");
        assert_eq!(a.policy, RefPolicy::KeepRef);
        assert_eq!(a.ids, vec![StreamId::new(1, 1), StreamId::new(2, 0)]);
        assert_eq!(p("delref IDS 1 1-1").policy, RefPolicy::DelRef);
        assert_eq!(p("ACKED ids 1 1-1").policy, RefPolicy::Acked);
        assert_eq!(p("KEEPREF IDS 1 1").policy, RefPolicy::KeepRef);
        // The policy may follow the IDs, as Redis reads the options in any order.
        assert_eq!(p("IDS 1 1-1 ACKED").policy, RefPolicy::Acked);
    }

    #[test]
    fn ref_delete_errors_are_redis_texts() {
        const NOT_POSITIVE: &str = "ERR Number of IDs must be a positive integer";
        const MISMATCH: &str = "ERR The `numids` parameter must match the number of arguments";
        const SYNTAX: &str = "ERR syntax error";
        let e = |line: &str| {
            let v = argv(line);
            error_of(RefDeleteArgs::parse(&mut Args::new(&v)))
        };
        assert_eq!(e("IDS abc 1-1"), NOT_POSITIVE);
        assert_eq!(e("IDS 0 1-1"), NOT_POSITIVE);
        assert_eq!(e("IDS -5 1-1"), NOT_POSITIVE);
        assert_eq!(e("IDS 3 1-1 2-2"), MISMATCH);
        assert_eq!(e("IDS 1 1-1 2-2"), SYNTAX);
        assert_eq!(e("KEEPREF DELREF IDS 1 1-1"), SYNTAX);
        assert_eq!(e("KEEPREF ACKED IDS 1 1-1"), SYNTAX);
        assert_eq!(e("DELREF ACKED IDS 1 1-1"), SYNTAX);
        assert_eq!(e("ACKED IDS 1 1-1 ACKED"), SYNTAX);
        assert_eq!(e("BOGUS IDS 1 1-1"), SYNTAX);
        assert_eq!(e("KEEPREF 1 1-1"), SYNTAX);
        assert_eq!(e("KEEPREF IDS"), SYNTAX);
        assert_eq!(e("KEEPREF"), SYNTAX);
        assert_eq!(e("IDS 2 1-1 bad"), BAD_ID);
        assert_eq!(e("IDS 1 *"), BAD_ID);
        assert_eq!(e("IDS 1 -"), BAD_ID);
    }

    #[test]
    fn xsetid_errors_are_redis_texts() {
        let e = |line: &str| {
            let v = argv(line);
            error_of(XSetIdArgs::parse(&mut Args::new(&v)))
        };
        assert_eq!(e("k 5-0 ENTRIESADDED 3 MAXDELETEDID 2-0"), "ok");
        assert_eq!(e("k bad"), BAD_ID);
        assert_eq!(
            e("k 5-0 ENTRIESADDED -1"),
            "ERR entries_added must be positive"
        );
        assert_eq!(e("k 5-0 ENTRIESADDED x"), NOT_INT);
        assert_eq!(e("k 5-0 MAXDELETEDID bad"), BAD_ID);
        assert_eq!(
            e("k 5-0 MAXDELETEDID 6-0"),
            "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
        );
        assert_eq!(e("k 5-0 ENTRIESADDED"), "ERR syntax error");
        assert_eq!(e("k 5-0 FOO 1"), "ERR syntax error");
    }

    #[test]
    fn range_bounds_and_count() {
        let v = argv("k + (1-5 COUNT -3");
        let a = RangeArgs::parse(&mut Args::new(&v), true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.start, StreamId::new(1, 6));
        assert_eq!(a.end, StreamId::MAX);
        assert_eq!(a.count, Some(0));
        let e = |line: &str| {
            let v = argv(line);
            error_of(RangeArgs::parse(&mut Args::new(&v), false))
        };
        assert_eq!(e("k - + COUNT 2"), "ok");
        assert_eq!(e("k bad +"), BAD_ID);
        assert_eq!(e("k - + COUNT"), "ERR syntax error");
        assert_eq!(e("k - + LIMIT 2"), "ERR syntax error");
        assert_eq!(e("k - + COUNT x"), NOT_INT);
        assert_eq!(
            e("k (18446744073709551615-18446744073709551615 +"),
            "ERR invalid start ID for the interval"
        );
        assert_eq!(e("k - (0-0"), "ERR invalid end ID for the interval");
    }
}
