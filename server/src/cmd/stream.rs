//! The stream entry commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, and the
//! helpers the other stream families share (replies of IDs and entries, stream lookup,
//! node limits, keyspace events).
//!
//! The semantics live in `brooklet-streams`; a handler here parses argv into typed
//! arguments, takes the shard lock, calls the stream, drops the lock, then publishes the
//! keyspace events and records the changed key (which dirties WATCHers and wakes readers).

use bytes::{Bytes, BytesMut};

use brooklet_resp::{Args, Reply, write_array_header, write_bulk};
use brooklet_streams::{
    Entry, IdSpec, Mutation, NodeLimits, Stream, StreamError, StreamId, TrimArgs, TrimStrategy,
    parse_range_end, parse_range_start,
};

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Doc, command};
use crate::client::now_ms;
use crate::keyspace::Value;
use crate::notify::{EventClass, keyspace_event};

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
    command(
        "xadd",
        -5,
        WRITE | FAST,
        (1, 1, 1),
        xadd,
        doc(
            "Appends a new message to a stream. Creates the key if it doesn't exist.",
            "5.0.0",
            "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
            "key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]",
        ),
    ),
    command(
        "xlen",
        2,
        READONLY | FAST,
        (1, 1, 1),
        xlen,
        doc(
            "Return the number of messages in a stream.",
            "5.0.0",
            "O(1)",
            "key",
        ),
    ),
    command(
        "xrange",
        -4,
        READONLY,
        (1, 1, 1),
        xrange,
        doc(
            "Returns the messages from a stream within a range of IDs.",
            "5.0.0",
            "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            "key start end [COUNT count]",
        ),
    ),
    command(
        "xrevrange",
        -4,
        READONLY,
        (1, 1, 1),
        xrevrange,
        doc(
            "Returns the messages from a stream within a range of IDs in reverse order.",
            "5.0.0",
            "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            "key end start [COUNT count]",
        ),
    ),
    command(
        "xdel",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        xdel,
        doc(
            "Returns the number of messages after removing them from a stream.",
            "5.0.0",
            "O(1) for each single item to delete in the stream, regardless of the stream size.",
            "key id [id ...]",
        ),
    ),
    command(
        "xtrim",
        -4,
        WRITE,
        (1, 1, 1),
        xtrim,
        doc(
            "Deletes messages from the beginning of a stream.",
            "5.0.0",
            "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.",
            "key MAXLEN|MINID [=|~] threshold [LIMIT count]",
        ),
    ),
    command(
        "xsetid",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        xsetid,
        doc(
            "An internal command for replicating stream values.",
            "5.0.0",
            "O(1)",
            "key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]",
        ),
    ),
];

impl From<StreamError> for CommandError {
    fn from(e: StreamError) -> Self {
        CommandError::text(e.to_string())
    }
}

/// `-ERR no such key`.
pub(crate) const NO_SUCH_KEY: CommandError = CommandError::msg("ERR no such key");

/// Redis's reply to a container's subcommand with the wrong arguments (`argv[1]` as typed).
pub(crate) fn subcommand_syntax(container: &str, argv: &[Bytes]) -> CommandError {
    CommandError::text(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&argv[1][..argv[1].len().min(128)])
    ))
}

/// A stream ID as a bulk string.
pub(crate) fn id_reply(id: StreamId) -> Reply {
    let mut buf = [0u8; brooklet_streams::ID_TEXT_MAX];
    let n = id.write_text(&mut buf);
    Reply::Bulk(Bytes::copy_from_slice(&buf[..n]))
}

/// Field-value pairs as a flat array.
pub(crate) fn fields_reply(fields: Vec<Bytes>) -> Reply {
    Reply::Array(fields.into_iter().map(Reply::Bulk).collect())
}

/// One entry as `[id, [field, value, ...]]`.
pub(crate) fn entry_reply(e: Entry) -> Reply {
    Reply::Array(vec![id_reply(e.id), fields_reply(e.fields)])
}

/// Entries as an array of `[id, fields]`.
pub(crate) fn entries_reply(entries: Vec<Entry>) -> Reply {
    Reply::Array(entries.into_iter().map(entry_reply).collect())
}

/// The node limits from `stream-node-max-entries` / `stream-node-max-bytes`.
pub(crate) fn node_limits(ctx: &Ctx<'_>) -> NodeLimits {
    let config = ctx.shared.config();
    NodeLimits {
        max_bytes: config.stream_node_max_bytes,
        max_entries: config.stream_node_max_entries,
    }
}

/// The journal a command records its changes into; the handler hands it to `Ctx::persist`
/// with the shard lock still held, so it reaches the store as one batch, in order.
pub(crate) fn journal() -> Vec<Mutation> {
    Vec::new()
}

/// Publishes a stream keyspace event for `key` (call after the shard lock is released).
pub(crate) fn notify(ctx: &Ctx<'_>, event: &str, key: &Bytes) {
    keyspace_event(ctx.shared, EventClass::Stream, event, ctx.client.db, key);
}

/// Publishes the `new` event of a key a command just created (before the command's own).
pub(crate) fn new_key(ctx: &Ctx<'_>, key: &Bytes) {
    keyspace_event(ctx.shared, EventClass::New, "new", ctx.client.db, key);
}

/// Publishes the `keymiss` event of a read that found no key.
pub(crate) fn key_miss(ctx: &Ctx<'_>, key: &Bytes) {
    keyspace_event(
        ctx.shared,
        EventClass::KeyMiss,
        "keymiss",
        ctx.client.db,
        key,
    );
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

/// Parses a COUNT-like argument: an integer, negatives clamped to 0, as Redis does.
pub(crate) fn count_arg(args: &mut Args<'_>) -> Result<u64, CommandError> {
    Ok(args.next_i64()?.max(0) as u64)
}

/// XADD's and XTRIM's shared options (Redis's `streamAddTrimArgs`).
struct AddTrimOptions {
    trim: Option<TrimArgs>,
    nomkstream: bool,
    /// XADD's ID, when arguments were left for one (`Err` only for `0-0`, which Redis
    /// refuses after checking the field count).
    id: Option<Result<IdSpec, StreamError>>,
}

/// Parses `[NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]` as Redis's
/// `streamParseAddOrTrimArgsOrReply`, stopping (for XADD) at the first argument that is not
/// an option, which is the ID, parsed there: a bad ID is reported before a misused LIMIT.
///
/// # Format
/// After the key: options in any order; for XADD then `*|id field value ...` is left.
fn parse_add_trim(args: &mut Args<'_>, xadd: bool) -> Result<AddTrimOptions, CommandError> {
    let mut strategy: Option<TrimStrategy> = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut nomkstream = false;
    let mut id = None;
    const BOTH: CommandError = CommandError::msg(
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
    );
    while let Some(opt) = args.peek() {
        let more = args.remaining() > 1;
        if xadd && &opt[..] == b"*" {
            id = Some(xadd_id(args)?);
            break;
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
        } else if xadd && args.eat_keyword("NOMKSTREAM") {
            nomkstream = true;
        } else if xadd {
            id = Some(xadd_id(args)?);
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
    });
    Ok(AddTrimOptions {
        trim,
        nomkstream,
        id,
    })
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

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
fn xadd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let mut args = Args::new(&argv[2..]);
    let opts = parse_add_trim(&mut args, true)?;
    let fields = args.rest();
    let Some(spec) = opts.id else {
        // The options took every argument (`XADD k MAXLEN ~ 5`).
        return Err(StreamError::WrongArity("xadd").into());
    };
    if fields.is_empty() || !fields.len().is_multiple_of(2) {
        return Err(StreamError::WrongArity("xadd").into());
    }
    let spec = spec?;
    let limits = node_limits(ctx);
    let now = now_ms();
    let mut created = false;
    let outcome = {
        let mut shard = ctx.db().lock(key);
        let mut out = journal();
        // One lookup of the key on the hot path (an existing stream): with 10,000 streams
        // each lookup is a cache miss or two.
        let outcome = match shard.get_mut(key) {
            Some(v) => {
                let stream = v.stream_mut()?;
                let outcome = stream.add(spec, fields, opts.trim.as_ref(), now, &limits, &mut out);
                // Even a failed XADD may have changed the stream (its trim step can fail to
                // read an evicted node after the entry went in): what changed is written
                // either way.
                ctx.persist(key, stream, &out)?;
                outcome
            }
            None if opts.nomkstream => return Ok(Reply::Null),
            None => {
                let mut s = Box::new(brooklet_persistence::StoredStream::new());
                let outcome = s.add(spec, fields, opts.trim.as_ref(), now, &limits, &mut out)?;
                ctx.persist(key, &mut s, &out)?;
                shard.insert(crate::keyspace::keep(key), Value::Stream(s));
                created = true;
                Ok(outcome)
            }
        };
        if outcome.is_err() && !out.is_empty() {
            // The entry went in before the trim failed: watchers and blocked readers must
            // hear of it all the same.
            drop(shard);
            notify(ctx, "xadd", key);
            ctx.key_changed(key);
        }
        outcome?
    };
    if created {
        new_key(ctx, key);
    }
    notify(ctx, "xadd", key);
    if outcome.trimmed > 0 {
        notify(ctx, "xtrim", key);
    }
    ctx.key_changed(key);
    Ok(id_reply(outcome.id))
}

/// XLEN key
fn xlen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let shard = ctx.db().lock(&argv[1]);
    let len = match shard.get(&argv[1]) {
        Some(v) => v.stream()?.len(),
        None => {
            drop(shard);
            key_miss(ctx, &argv[1]);
            0
        }
    };
    Ok(Reply::Int(len as i64))
}

fn xrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    range(ctx, argv, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    range(ctx, argv, true)
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
fn range(ctx: &mut Ctx<'_>, argv: &[Bytes], rev: bool) -> Result<Reply, CommandError> {
    let (start_arg, end_arg) = if rev {
        (&argv[3], &argv[2])
    } else {
        (&argv[2], &argv[3])
    };
    let start = parse_range_start(start_arg)?;
    let end = parse_range_end(end_arg)?;
    let mut args = Args::new(&argv[4..]);
    let mut count: Option<u64> = None;
    while !args.is_empty() {
        if args.remaining() > 1 && args.eat_keyword("COUNT") {
            count = Some(count_arg(&mut args)?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    // Locked mutably: reading a node evicted from memory brings it back in.
    let mut shard = ctx.db().lock(&argv[1]);
    let Some(v) = shard.get_mut(&argv[1]) else {
        drop(shard);
        key_miss(ctx, &argv[1]);
        return Ok(Reply::Array(Vec::new()));
    };
    let s = v.stream_mut()?;
    if count == Some(0) {
        return Ok(Reply::NullArray);
    }
    let count = count.map(|c| usize::try_from(c).unwrap_or(usize::MAX));
    // Encoded here from the nodes' bytes (arrays and bulk strings read the same in RESP2
    // and RESP3): a copy of every field and a reply tree per entry were a fifth of XRANGE's
    // time under -P16.
    let mut body = BytesMut::new();
    let mut fields = BytesMut::new();
    let mut id_text = [0u8; brooklet_streams::ID_TEXT_MAX];
    let visited = s.range_with(start, end, count, rev, |id, values| {
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
    let mut out = BytesMut::with_capacity(body.len() + 16);
    write_array_header(&mut out, visited);
    out.extend_from_slice(&body);
    Ok(Reply::Raw(out.freeze()))
}

/// XDEL key id [id ...]
fn xdel(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let deleted = {
        let mut shard = ctx.db().lock(key);
        let Some(v) = shard.get_mut(key) else {
            return Ok(Reply::Int(0));
        };
        let s = v.stream_mut()?;
        let ids = argv[2..]
            .iter()
            .map(|a| strict_id(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = journal();
        let deleted = s.delete(&ids, &mut out)?;
        ctx.persist(key, s, &out)?;
        deleted
    };
    if deleted > 0 {
        notify(ctx, "xdel", key);
        ctx.key_changed(key);
    }
    Ok(Reply::Int(deleted as i64))
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
fn xtrim(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let limits = node_limits(ctx);
    // The options are checked before the key is looked up, as Redis does.
    let mut args = Args::new(&argv[2..]);
    let opts = parse_add_trim(&mut args, false)?;
    args.finish()?;
    let removed = {
        let mut shard = ctx.db().lock(key);
        let Some(v) = shard.get_mut(key) else {
            return Ok(Reply::Int(0));
        };
        let s = v.stream_mut()?;
        let mut out = journal();
        let removed = match opts.trim {
            Some(t) => s.trim(&t, &limits, &mut out)?,
            None => 0,
        };
        ctx.persist(key, s, &out)?;
        removed
    };
    if removed > 0 {
        notify(ctx, "xtrim", key);
        ctx.key_changed(key);
    }
    Ok(Reply::Int(removed as i64))
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]
fn xsetid(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let id = strict_id(&argv[2])?;
    let mut args = Args::new(&argv[3..]);
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
            if id < m {
                return Err(StreamError::SetIdBelowGivenMaxDeleted.into());
            }
            max_deleted = Some(m);
        } else {
            return Err(CommandError::syntax());
        }
    }
    {
        let mut shard = ctx.db().lock(key);
        let s = shard.get_mut(key).ok_or(NO_SUCH_KEY)?.stream_mut()?;
        let mut out = journal();
        s.set_id(id, entries_added, max_deleted, &mut out)?;
        ctx.persist(key, s, &out)?;
    }
    notify(ctx, "xsetid", key);
    ctx.key_changed(key);
    Ok(Reply::Ok)
}
