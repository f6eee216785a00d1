//! The string commands: GET, SET and its variants, MGET / MSET, STRLEN, GETRANGE /
//! SETRANGE, INCR and its variants; APPEND and SETRANGE are in `string_edit.rs`. They write as
//! `string_write.rs` says. Values stay in memory.

use bytes::{Bytes, BytesMut};

use brooklet_resp::{Args, Reply};

use super::long_double::LongDouble;
use super::string_args::{
    Cond, GetExArgs, NOT_FLOAT, SetArgs, Ttl, Unit, int_of, positive_expire, range_of,
};
use super::string_edit::{append, setrange};
use super::string_write::{Written, announce, check_key, put, put_as, string_in};
use super::table::command;
use super::table::flags::*;
use super::{CommandSpec, Ctx, store_error};
use crate::client::now_ms;
use crate::error::CommandError;
use crate::keyspace::{Shard, StringForm, Value, keep};
use crate::notify::EventClass;
use crate::publish::keyspace_event;
use crate::small_bytes::SmallBytes;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("get", 2, READONLY | FAST, (1, 1, 1), get),
    command("set", -3, WRITE | DENYOOM, (1, 1, 1), set),
    command("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), setnx),
    command("setex", 4, WRITE | DENYOOM, (1, 1, 1), setex),
    command("psetex", 4, WRITE | DENYOOM, (1, 1, 1), psetex),
    command("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), getset),
    command("getdel", 2, WRITE | FAST, (1, 1, 1), getdel),
    command("getex", -2, WRITE | FAST, (1, 1, 1), getex),
    command("mget", -2, READONLY | FAST, (1, -1, 1), mget),
    command("mset", -3, WRITE | DENYOOM, (1, -1, 2), mset),
    command("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), msetnx),
    command("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), append),
    command("strlen", 2, READONLY | FAST, (1, 1, 1), strlen),
    command("getrange", 4, READONLY, (1, 1, 1), getrange),
    command("substr", 4, READONLY, (1, 1, 1), getrange),
    command("setrange", 4, WRITE | DENYOOM, (1, 1, 1), setrange),
    command("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), incr),
    command("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), decr),
    command("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), incrby),
    command("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), decrby),
    command(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        incrbyfloat,
    ),
];

/// Publishes a generic event (`expire`, `persist`, `del`).
fn generic_event(ctx: &Ctx<'_>, event: &str, key: &Bytes) {
    keyspace_event(ctx.shared, EventClass::Generic, event, ctx.client.db, key);
}

/// The value as a bulk reply, or null.
fn bulk_or_null(v: Option<Bytes>) -> Reply {
    v.map_or(Reply::Null, Reply::Bulk)
}

fn get(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let v = ctx
        .load_string(&mut ctx.db().lock(key), key)?
        .map(|v| v.string().map(SmallBytes::to_reply))
        .transpose()?;
    if v.is_none() {
        ctx.key_miss(key)?;
    } else {
        ctx.show_key(key)?;
    }
    Ok(v.unwrap_or(Reply::Null))
}

/// SET and the commands that are SET with fixed options.
fn set_with(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    value: &Bytes,
    a: SetArgs,
) -> Result<(bool, Option<Bytes>), CommandError> {
    let db = ctx.db();
    // Copied before the lock (a large value would hold the shard's other clients), and
    // copied at all so the key does not keep the whole request buffer it arrived in.
    let value = SmallBytes::copy_of(value);
    let (written, old) = {
        let mut shard = db.lock(key);
        // Only NX and XX ask; `put` finds the key again either way.
        let exists = a.cond != Cond::Always && shard.contains_key(key);
        let old = if a.get {
            string_in(ctx, &mut shard, key)?
        } else {
            None
        };
        let refused = match a.cond {
            Cond::Always => false,
            Cond::Nx => exists,
            Cond::Xx => !exists,
        };
        if refused {
            drop(shard);
            if a.get && old.is_none() {
                ctx.key_miss(key)?;
            }
            return Ok((false, old));
        }
        let w = put(ctx, &mut shard, key, value, a.ttl)?;
        (w, old)
    };
    if a.get && old.is_none() {
        ctx.key_miss(key)?;
    }
    let events = [(EventClass::String, "set"), (EventClass::Generic, "expire")];
    let n = if matches!(a.ttl, Ttl::At(_)) { 2 } else { 1 };
    announce(ctx, key, &written, &events[..n]);
    Ok((true, old))
}

fn set(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = SetArgs::parse(&mut Args::new(&argv[3..]), now_ms)?;
    let (done, old) = set_with(ctx, &argv[1], &argv[2], a)?;
    Ok(if a.get {
        bulk_or_null(old)
    } else if done {
        Reply::Ok
    } else {
        Reply::Null
    })
}

fn setnx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = SetArgs {
        cond: Cond::Nx,
        ..SetArgs::default()
    };
    let (done, _) = set_with(ctx, &argv[1], &argv[2], a)?;
    Ok(Reply::Int(done.into()))
}

/// SETEX and PSETEX: a time then a value.
fn set_expiring(
    ctx: &mut Ctx<'_>,
    argv: &[Bytes],
    unit: Unit,
    name: &str,
) -> Result<Reply, CommandError> {
    let at = positive_expire(&argv[2], unit, now_ms(), name)?;
    let a = SetArgs {
        ttl: Ttl::At(at),
        ..SetArgs::default()
    };
    set_with(ctx, &argv[1], &argv[3], a)?;
    Ok(Reply::Ok)
}

fn setex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    set_expiring(ctx, argv, Unit::Seconds, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    set_expiring(ctx, argv, Unit::Millis, "psetex")
}

fn getset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = SetArgs {
        get: true,
        ..SetArgs::default()
    };
    let (_, old) = set_with(ctx, &argv[1], &argv[2], a)?;
    Ok(bulk_or_null(old))
}

fn getdel(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let db = ctx.db();
    let old = {
        let mut shard = db.lock(key);
        let old = string_in(ctx, &mut shard, key)?;
        if old.is_some()
            && let Some((gone, delta)) = shard.remove_key(key)
        {
            db.note_deadlines(delta);
            ctx.persist_delete(key, &gone)?;
        }
        old
    };
    match &old {
        Some(_) => {
            generic_event(ctx, "del", key);
            ctx.key_changed(key);
        }
        None => ctx.key_miss(key)?,
    }
    Ok(bulk_or_null(old))
}

fn getex(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let now = now_ms();
    let a = GetExArgs::parse(&mut Args::new(&argv[2..]), now)?;
    let db = ctx.db();
    let mut event = None;
    let value = {
        let mut shard = db.lock(key);
        let Some(value) = string_in(ctx, &mut shard, key)? else {
            drop(shard);
            ctx.key_miss(key)?;
            return Ok(Reply::Null);
        };
        match a {
            GetExArgs::Get => {}
            GetExArgs::At(at) if at <= now => {
                if let Some((gone, delta)) = shard.remove_key(key) {
                    db.note_deadlines(delta);
                    ctx.persist_delete(key, &gone)?;
                }
                event = Some("del");
            }
            GetExArgs::At(at) => {
                set_deadline_locked(ctx, &mut shard, key, Some(at))?;
                event = Some("expire");
            }
            GetExArgs::Persist => {
                if shard.deadline(key).is_some() {
                    set_deadline_locked(ctx, &mut shard, key, None)?;
                    event = Some("persist");
                }
            }
        }
        value
    };
    if let Some(event) = event {
        generic_event(ctx, event, key);
        ctx.key_changed(key);
    }
    Ok(Reply::Bulk(value))
}

/// Sets or removes the deadline of an existing key in its locked shard, store first.
pub(crate) fn set_deadline_locked(
    ctx: &mut Ctx<'_>,
    shard: &mut Shard,
    key: &Bytes,
    at: Option<u64>,
) -> Result<(), CommandError> {
    let seq = ctx
        .shared
        .store
        .set_deadline(ctx.client.db as u32, key, at)
        .map_err(store_error)?;
    ctx.write_seq = ctx.write_seq.max(seq);
    ctx.db().note_write(key, seq);
    if shard.contains_key(key) {
        let delta = shard.set_deadline(key, at);
        ctx.db().note_deadlines(delta);
    }
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let db = ctx.db();
    let mut out = Vec::with_capacity(argv.len() - 1);
    for key in &argv[1..] {
        let v = {
            let mut shard = db.lock(key);
            ctx.load_string(&mut shard, key)?
                .and_then(|v| v.string().ok().map(SmallBytes::to_reply))
        };
        if v.is_none() {
            ctx.key_miss(key)?;
        } else {
            ctx.show_key(key)?;
        }
        out.push(v.unwrap_or(Reply::Null));
    }
    Ok(Reply::Array(out))
}

/// MSET and MSETNX: every shard involved locked at once, in index order, so no client sees
/// some of the keys set and not the others; the strings are one store batch.
fn mset_with(ctx: &mut Ctx<'_>, argv: &[Bytes], nx: bool) -> Result<bool, CommandError> {
    if argv.len().is_multiple_of(2) {
        return Err(CommandError::text(format!(
            "ERR wrong number of arguments for '{}' command",
            if nx { "msetnx" } else { "mset" }
        )));
    }
    let pairs: Vec<(&Bytes, &Bytes)> = argv[1..].chunks_exact(2).map(|p| (&p[0], &p[1])).collect();
    for (k, _) in &pairs {
        check_key(k)?;
    }
    let db = ctx.db();
    let mut idxs: Vec<usize> = pairs.iter().map(|(k, _)| db.shard_of(k)).collect();
    idxs.sort_unstable();
    idxs.dedup();
    // Per pair, whether it created its key (a key given twice is created by its first).
    let mut created = vec![false; pairs.len()];
    {
        let mut guards: Vec<_> = idxs.iter().map(|&i| (i, db.lock_shard(i))).collect();
        let shard_of = |k: &[u8]| idxs.binary_search(&db.shard_of(k)).unwrap_or(0);
        if nx
            && pairs
                .iter()
                .any(|(k, _)| guards[shard_of(k)].1.contains_key(k))
        {
            return Ok(false);
        }
        for (k, _) in &pairs {
            let shard = &mut guards[shard_of(k)].1;
            if let Some(old @ Value::Stream(..)) = shard.get(k) {
                ctx.persist_delete(k, old)?;
            }
        }
        let seq = ctx
            .shared
            .store
            .write_strings(
                ctx.client.db as u32,
                pairs.iter().map(|(k, v)| {
                    let had = guards[shard_of(k)].1.deadline(k).is_some();
                    (&k[..], &v[..], had)
                }),
            )
            .map_err(store_error)?;
        ctx.write_seq = ctx.write_seq.max(seq);
        for ((k, v), created) in pairs.iter().zip(created.iter_mut()) {
            ctx.db().note_write(k, seq);
            let shard = &mut guards[shard_of(k)].1;
            let value = Value::string_value(Bytes::copy_from_slice(v), StringForm::Whole);
            match shard.get_mut(k) {
                Some(slot) => *slot = value,
                None => {
                    shard.insert(keep(k), value);
                    *created = true;
                }
            }
            let delta = shard.set_deadline(k, None);
            db.note_deadlines(delta);
        }
    }
    for ((k, _), created) in pairs.iter().zip(created) {
        announce(ctx, k, &Written { created }, &[(EventClass::String, "set")]);
    }
    Ok(true)
}

fn mset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    mset_with(ctx, argv, false)?;
    Ok(Reply::Ok)
}

fn msetnx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Int(mset_with(ctx, argv, true)?.into()))
}

/// A read-modify-write of the string at `key`: `f` gets the current value (None when
/// missing) and returns the new one with the reply, or None to change nothing. The
/// deadline is kept; `event` is published when the value changed. `form` gives the new
/// value's form from whether the key existed.
fn modify(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    event: &'static str,
    form: fn(bool) -> StringForm,
    f: impl FnOnce(Option<&Bytes>) -> Result<(Option<Bytes>, Reply), CommandError>,
) -> Result<Reply, CommandError> {
    let db = ctx.db();
    let (written, reply) = {
        let mut shard = db.lock(key);
        let current = string_in(ctx, &mut shard, key)?;
        let existed = current.is_some();
        let (new, reply) = f(current.as_ref())?;
        let Some(new) = new else {
            return Ok(reply);
        };
        let form = form(existed);
        (
            put_as(ctx, &mut shard, key, new.into(), Ttl::Keep, form)?,
            reply,
        )
    };
    announce(ctx, key, &written, &[(EventClass::String, event)]);
    Ok(reply)
}

fn strlen(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let v = string_in(ctx, &mut ctx.db().lock(&argv[1]), &argv[1])?;
    if v.is_none() {
        ctx.key_miss(&argv[1])?;
    } else {
        ctx.show_key(&argv[1])?;
    }
    Ok(Reply::Int(v.map_or(0, |v| v.len() as i64)))
}

fn getrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let start = int_of(&argv[2])?;
    let end = int_of(&argv[3])?;
    let v = string_in(ctx, &mut ctx.db().lock(&argv[1]), &argv[1])?;
    let Some(v) = v else {
        ctx.key_miss(&argv[1])?;
        return Ok(Reply::Bulk(Bytes::new()));
    };
    ctx.show_key(&argv[1])?;
    Ok(Reply::Bulk(match range_of(start, end, v.len()) {
        Some((s, e)) => v.slice(s..=e),
        None => Bytes::new(),
    }))
}

/// INCR, DECR, INCRBY, DECRBY: adds `by` to the integer at `key`.
fn incr_by(ctx: &mut Ctx<'_>, key: &Bytes, by: i64) -> Result<Reply, CommandError> {
    modify(
        ctx,
        key,
        "incrby",
        |_| StringForm::Whole,
        |cur| {
            let old = match cur {
                Some(v) => int_of(v)?,
                None => 0,
            };
            let new = old.checked_add(by).ok_or(CommandError::msg(
                "ERR increment or decrement would overflow",
            ))?;
            let mut buf = itoa_bytes(new);
            Ok((Some(buf.split().freeze()), Reply::Int(new)))
        },
    )
}

/// An integer's decimal text.
fn itoa_bytes(n: i64) -> BytesMut {
    use std::fmt::Write;
    let mut b = BytesMut::with_capacity(20);
    let _ = write!(b, "{n}");
    b
}

fn incr(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    incr_by(ctx, &argv[1], 1)
}

fn decr(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    incr_by(ctx, &argv[1], -1)
}

fn incrby(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let by = int_of(&argv[2])?;
    incr_by(ctx, &argv[1], by)
}

fn decrby(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let by = int_of(&argv[2])?;
    let by = by
        .checked_neg()
        .ok_or(CommandError::msg("ERR decrement would overflow"))?;
    incr_by(ctx, &argv[1], by)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    const NAN_OR_INF: CommandError =
        CommandError::msg("ERR increment would produce NaN or Infinity");
    let by = &argv[2];
    modify(
        ctx,
        &argv[1],
        "incrbyfloat",
        |_| StringForm::Text,
        |cur| {
            // The stored value first, then the increment, as Redis reads them.
            let old = cur.map_or(Ok(LongDouble::zero(false)), |v| LongDouble::parse(v));
            let incr = LongDouble::parse(by);
            let (old, incr) = match (old, incr) {
                (Err(false), _) | (_, Err(false)) => return Err(NOT_FLOAT),
                (Ok(old), Ok(incr)) => (old, incr),
                _ => return Err(NAN_OR_INF),
            };
            let text = Bytes::from(old.add(incr).ok_or(NAN_OR_INF)?.text());
            Ok((Some(text.clone()), Reply::Bulk(text)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_in_decimal() {
        assert_eq!(&itoa_bytes(-42)[..], b"-42");
        assert_eq!(&itoa_bytes(i64::MIN)[..], b"-9223372036854775808");
    }
}
