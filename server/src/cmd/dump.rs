//! DUMP and RESTORE: a key's value in Redis's serialization format (`crate::rdb`), so keys
//! move between Brooklet and Redis (5 to 7.4 payloads read; RDB version 10 written).
//!
//! RESTORE decodes the whole payload before it takes the key's shard lock, then under it
//! stores the value as one batch or record (a stream through `Store::restore_stream`, with
//! its deadline and the removal of what the key held; a string as SET stores one), and only
//! then puts it in memory: a damaged payload or a refused write changes nothing.

use bytes::Bytes;

use brooklet_persistence::StoredStream;
use brooklet_resp::{Args, Reply};

use super::string_args::{Ttl, int_of};
use super::table::command;
use super::table::flags::*;
use super::{CommandSpec, Ctx, store_error};
use crate::client::now_ms;
use crate::error::CommandError;
use crate::keyspace::{Value, keep};
use crate::notify::EventClass;
use crate::publish::keyspace_event;
use crate::rdb::value::{self, PayloadError};

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("dump", 2, READONLY, (1, 1, 1), dump),
    command("restore", -4, WRITE | DENYOOM, (1, 1, 1), restore),
];

fn busy_key() -> CommandError {
    CommandError::msg("BUSYKEY Target key name already exists.")
}

fn payload_error(e: PayloadError) -> CommandError {
    match e {
        PayloadError::VersionOrChecksum => {
            CommandError::msg("ERR DUMP payload version or checksum are wrong")
        }
        PayloadError::BadFormat(crate::rdb::RdbError::Unsupported(t)) => {
            CommandError::text(format!(
                "ERR Bad data format: a {} value, which Brooklet does not hold (it holds streams and strings)",
                crate::rdb::type_name(t)
            ))
        }
        PayloadError::BadFormat(_) => CommandError::msg("ERR Bad data format"),
    }
}

/// RESTORE's options after the key, TTL and payload.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RestoreArgs {
    /// REPLACE: overwrite an existing key.
    pub replace: bool,
    /// ABSTTL: the TTL is a Unix time in milliseconds.
    pub absttl: bool,
    /// IDLETIME seconds (accepted; Brooklet keeps no access times).
    pub idletime: Option<i64>,
    /// FREQ (accepted; Brooklet keeps no access counts).
    pub freq: Option<i64>,
}

impl RestoreArgs {
    /// # Format
    /// `[REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`, after the key, TTL and
    /// payload. IDLETIME and FREQ exclude each other: the second is a syntax error, as in
    /// Redis.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        let mut out = RestoreArgs::default();
        while !args.is_empty() {
            let more = args.remaining() > 1;
            if args.eat_keyword("REPLACE") {
                out.replace = true;
            } else if args.eat_keyword("ABSTTL") {
                out.absttl = true;
            } else if more && out.freq.is_none() && args.eat_keyword("IDLETIME") {
                let v = int_of(args.next_bytes()?)?;
                if v < 0 {
                    return Err(CommandError::msg(
                        "ERR Invalid IDLETIME value, must be >= 0",
                    ));
                }
                out.idletime = Some(v);
            } else if more && out.idletime.is_none() && args.eat_keyword("FREQ") {
                let v = int_of(args.next_bytes()?)?;
                if !(0..=255).contains(&v) {
                    return Err(CommandError::msg(
                        "ERR Invalid FREQ value, must be >= 0 and <= 255",
                    ));
                }
                out.freq = Some(v);
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(out)
    }
}

/// RESTORE's TTL argument: milliseconds (0: none).
fn parse_ttl(arg: &[u8]) -> Result<i64, CommandError> {
    let ttl = int_of(arg)?;
    if ttl < 0 {
        return Err(CommandError::msg("ERR Invalid TTL value, must be >= 0"));
    }
    Ok(ttl)
}

fn dump(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let payload = {
        let mut shard = ctx.db().lock(key);
        match ctx.load_string(&mut shard, key)? {
            None => None,
            Some(v) => {
                // The reply shows the value: it waits for the write that made it.
                ctx.show_value(key, v)?;
                Some(match v {
                    Value::String(s, _, _) => value::dump_string(s),
                    Value::StoredString(_) => {
                        return Err(CommandError::msg("ERR string value not loaded"));
                    }
                    Value::Stream(s, _) => value::dump_stream(s).map_err(CommandError::from)?,
                })
            }
        }
    };
    match payload {
        Some(p) => Ok(Reply::Bulk(Bytes::from(p))),
        None => {
            ctx.key_miss(key)?;
            Ok(Reply::Null)
        }
    }
}

fn exists(ctx: &mut Ctx<'_>, key: &Bytes) -> bool {
    ctx.db().lock(key).contains_key(key)
}

fn restore(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let a = RestoreArgs::parse(&mut Args::new(&argv[4..]))?;
    if !a.replace && exists(ctx, key) {
        return Err(busy_key());
    }
    let ttl = parse_ttl(&argv[2])?;
    let decoded = value::decode_payload(&argv[3]).map_err(payload_error)?;
    let now = now_ms() as i64;
    let deadline = match ttl {
        0 => None,
        t if a.absttl => Some(t),
        t => Some(t.saturating_add(now)),
    };
    // Already past: nothing is created, and REPLACE still removes what was there.
    if let Some(at) = deadline
        && at <= now
    {
        if a.replace && remove(ctx, key)? {
            ctx.key_changed(key);
            keyspace_event(ctx.shared, EventClass::Generic, "del", ctx.client.db, key);
        }
        return Ok(Reply::Ok);
    }
    let deadline = deadline.map(|at| at as u64);
    match decoded {
        value::Value::String(v) => {
            let mut shard = ctx.db().lock(key);
            if !a.replace && shard.contains_key(key) {
                return Err(busy_key());
            }
            let ttl = deadline.map_or(Ttl::Clear, Ttl::At);
            super::string_write::put(ctx, &mut shard, key, v, ttl)?;
        }
        value::Value::Stream(d) => {
            let (stream, muts) = d.build();
            let mut stored = StoredStream::new();
            *stored.stream_mut() = stream;
            restore_stream(ctx, key, stored, &muts, deadline, a.replace)?;
        }
    }
    if a.idletime.is_some() || a.freq.is_some() {
        let idle = a.idletime.and_then(|s| u64::try_from(s).ok());
        let freq = a.freq.and_then(|f| u8::try_from(f).ok());
        if let Some(v) = ctx.db().lock(key).get(key) {
            v.access().restore(idle, freq);
        }
    }
    ctx.key_changed(key);
    keyspace_event(
        ctx.shared,
        EventClass::Generic,
        "restore",
        ctx.client.db,
        key,
    );
    Ok(Reply::Ok)
}

/// Removes `key` as DEL does; whether it was there.
fn remove(ctx: &mut Ctx<'_>, key: &Bytes) -> Result<bool, CommandError> {
    let db = ctx.db();
    let mut shard = db.lock(key);
    let deadline = shard.deadline(key);
    let Some((gone, delta)) = shard.remove_key(key) else {
        return Ok(false);
    };
    db.note_deadlines(delta);
    if let Err(e) = ctx.persist_delete(key, &gone) {
        let k = keep(key);
        shard.insert(k.clone(), gone);
        db.note_deadlines(shard.set_deadline(&k, deadline));
        return Err(e);
    }
    Ok(true)
}

/// Stores the new stream `stream` (built from `muts`) at `key` with `deadline`, replacing
/// what is there when `replace`, then puts it in memory.
fn restore_stream(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    mut stream: StoredStream,
    muts: &[brooklet_streams::Mutation],
    deadline: Option<u64>,
    replace: bool,
) -> Result<(), CommandError> {
    let dbn = ctx.client.db;
    let store = &ctx.shared.store;
    let db = ctx.db();
    let mut shard = db.lock(key);
    if !replace && shard.contains_key(key) {
        return Err(busy_key());
    }
    // A stream too large to be replaced in the same batch is deleted first, in its own.
    if let Some(Value::Stream(old, _)) = shard.get(key)
        && !store.replaces_in_one_batch((dbn as u32, key), old, Some(&stream))
    {
        let deadline_before = shard.deadline(key);
        if let Some((gone, delta)) = shard.remove_key(key) {
            db.note_deadlines(delta);
            if let Err(e) = ctx.persist_delete(key, &gone) {
                let k = keep(key);
                shard.insert(k.clone(), gone);
                db.note_deadlines(shard.set_deadline(&k, deadline_before));
                return Err(e);
            }
        }
    }
    let replaced = match shard.get(key) {
        Some(Value::Stream(old, _)) => Some(&**old),
        _ => None,
    };
    let seq = store
        .restore_stream(dbn as u32, key, &mut stream, muts, deadline, replaced)
        .map_err(store_error)?;
    ctx.write_seq = ctx.write_seq.max(seq);
    db.note_write(key, seq);
    stream.attach_source(store.source(dbn as u32, key));
    if let Some((_, delta)) = shard.remove_key(key) {
        db.note_deadlines(delta);
    }
    let k = keep(key);
    shard.insert(k.clone(), Value::stream_value(Box::new(stream)));
    db.note_deadlines(shard.set_deadline(&k, deadline));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn e(line: &str) -> String {
        let v = argv(line);
        error_of(RestoreArgs::parse(&mut Args::new(&v)))
    }

    #[test]
    fn restore_options() {
        let v = argv("replace absttl idletime 10");
        let a = RestoreArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a,
            RestoreArgs {
                replace: true,
                absttl: true,
                idletime: Some(10),
                freq: None
            }
        );
        let v = argv("FREQ 255");
        let a = RestoreArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.freq, Some(255));
    }

    #[test]
    fn restore_errors_are_redis_texts() {
        assert_eq!(e("FOO"), "ERR syntax error");
        assert_eq!(e("IDLETIME"), "ERR syntax error");
        assert_eq!(e("FREQ 1 IDLETIME 1"), "ERR syntax error");
        assert_eq!(e("IDLETIME 1 FREQ 1"), "ERR syntax error");
        assert_eq!(
            e("IDLETIME x"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(e("IDLETIME -1"), "ERR Invalid IDLETIME value, must be >= 0");
        assert_eq!(
            e("FREQ 256"),
            "ERR Invalid FREQ value, must be >= 0 and <= 255"
        );
        assert_eq!(
            e("FREQ -1"),
            "ERR Invalid FREQ value, must be >= 0 and <= 255"
        );
        assert_eq!(
            error_of(parse_ttl(b"-1")),
            "ERR Invalid TTL value, must be >= 0"
        );
        assert_eq!(
            error_of(parse_ttl(b"x")),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            payload_error(PayloadError::VersionOrChecksum).to_string(),
            "ERR DUMP payload version or checksum are wrong"
        );
        assert_eq!(
            payload_error(PayloadError::BadFormat(crate::rdb::RdbError::Truncated)).to_string(),
            "ERR Bad data format"
        );
    }
}
