//! Keys under another name or database: RENAME, RENAMENX, COPY, MOVE.
//!
//! Both names' shards are locked (in database then shard order, so two such commands never
//! wait on each other) for the whole change, memory and store alike. A stream's records are
//! rewritten under the new name by the store (`Store::move_stream`, `Store::copy_stream`),
//! a string's is one record.

use bytes::Bytes;
use std::sync::MutexGuard;

use brooklet_resp::{Args, Reply};

use super::table::flags::*;
use super::table::{command, simple};
use super::{CommandSpec, Ctx, store_error};
use crate::error::CommandError;
use crate::keyspace::{Shard, Value, keep};
use crate::notify::EventClass;
use crate::publish::keyspace_event;
use crate::small_bytes::SmallBytes;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("rename", 3, WRITE, (1, 2, 1), rename),
    command("renamenx", 3, WRITE | FAST, (1, 2, 1), renamenx),
    command("copy", -3, WRITE | DENYOOM, (1, 2, 1), copy),
    command("move", 3, WRITE | FAST, (1, 1, 1), move_cmd),
    simple("swapdb", 3, WRITE | FAST | EXCLUSIVE, swapdb),
];

fn no_such_key() -> CommandError {
    CommandError::msg("ERR no such key")
}

fn same_object() -> CommandError {
    CommandError::msg("ERR source and destination objects are the same")
}

fn db_out_of_range() -> CommandError {
    CommandError::msg("ERR DB index is out of range")
}

/// A database index argument (COPY's DB, MOVE's), checked against `databases`.
fn parse_db(arg: &[u8], databases: usize) -> Result<usize, CommandError> {
    let n = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(CommandError::msg(
            "ERR value is not an integer or out of range",
        ))?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n < databases)
        .ok_or_else(db_out_of_range)
}

/// COPY's options.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CopyArgs {
    /// DB: the destination's database (None: the client's).
    pub db: Option<usize>,
    /// REPLACE: overwrite an existing destination.
    pub replace: bool,
}

impl CopyArgs {
    /// # Format
    /// `[DB destination-db] [REPLACE]`, after the two keys; `databases` bounds DB.
    pub fn parse(args: &mut Args<'_>, databases: usize) -> Result<Self, CommandError> {
        let mut out = CopyArgs {
            db: None,
            replace: false,
        };
        while !args.is_empty() {
            if args.eat_keyword("REPLACE") {
                out.replace = true;
            } else if args.eat_keyword("DB") {
                if args.is_empty() {
                    return Err(CommandError::syntax());
                }
                out.db = Some(parse_db(args.next_bytes()?, databases)?);
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(out)
    }
}

/// The shards of two keys, locked in a fixed order; one guard when they share a shard.
enum Pair<'a> {
    One(MutexGuard<'a, Shard>),
    Two {
        src: MutexGuard<'a, Shard>,
        dst: MutexGuard<'a, Shard>,
    },
}

impl<'a> Pair<'a> {
    fn lock(ctx: &Ctx<'a>, from: (usize, &[u8]), to: (usize, &[u8])) -> Pair<'a> {
        let ks = &ctx.shared.keyspace;
        let (a, b) = (ks.db(from.0), ks.db(to.0));
        let ia = (from.0, a.shard_of(from.1));
        let ib = (to.0, b.shard_of(to.1));
        if ia == ib {
            return Pair::One(a.lock(from.1));
        }
        if ia < ib {
            let src = a.lock(from.1);
            let dst = b.lock(to.1);
            Pair::Two { src, dst }
        } else {
            let dst = b.lock(to.1);
            let src = a.lock(from.1);
            Pair::Two { src, dst }
        }
    }

    /// Both shards, to read: (source's, destination's).
    fn both(&self) -> (&Shard, &Shard) {
        match self {
            Pair::One(s) => (s, s),
            Pair::Two { src, dst } => (src, dst),
        }
    }

    fn src(&mut self) -> &mut Shard {
        match self {
            Pair::One(s) => s,
            Pair::Two { src, .. } => src,
        }
    }

    fn dst(&mut self) -> &mut Shard {
        match self {
            Pair::One(s) => s,
            Pair::Two { dst, .. } => dst,
        }
    }
}

/// Puts back the stream a move was to replace, when the store refused the move.
fn put_back(
    shard: &mut Shard,
    db: &crate::keyspace::Db,
    key: &Bytes,
    replaced: Option<(Value, Option<u64>)>,
) {
    if let Some((value, deadline)) = replaced {
        let k = keep(key);
        shard.insert(k.clone(), value);
        db.note_deadlines(shard.set_deadline(&k, deadline));
    }
}

/// A string the move meets still on disk: [`Shard::load_string`] reads it first, so this
/// is never expected.
fn not_loaded() -> brooklet_persistence::StoreError {
    brooklet_persistence::StoreError::Corrupt("string value not loaded".into())
}

/// What [`relocate`] found.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    NoSource,
    TargetExists,
}

/// Moves (or copies, when `copy`) key `from` to `to`, each a database and a name;
/// `replace` lets it overwrite an existing `to`. Persists before it answers.
fn relocate(
    ctx: &mut Ctx<'_>,
    from: (usize, &Bytes),
    to: (usize, &Bytes),
    copy: bool,
    replace: bool,
) -> Result<Outcome, CommandError> {
    let shared = ctx.shared;
    let store = &shared.store;
    let (sdb, ddb) = (shared.keyspace.db(from.0), shared.keyspace.db(to.0));
    let mut seq = 0;
    // A stream at `to` that the move's own batch replaces, with its deadline.
    let mut replaced: Option<(Value, Option<u64>)> = None;
    {
        let mut pair = Pair::lock(ctx, (from.0, from.1), (to.0, to.1));
        if !pair.src().contains_key(from.1) {
            drop(pair);
            ctx.key_miss(from.1)?;
            return Ok(Outcome::NoSource);
        }
        // The new name's records are written with the value.
        pair.src().load_string(store, from.0, from.1)?;
        if pair.dst().contains_key(to.1) {
            if !replace {
                // The reply says the key is there: it waits for the key as a read would.
                match pair.dst().get(to.1) {
                    Some(Value::Stream(s, _)) => ctx.show(s)?,
                    _ => {
                        drop(pair);
                        let seq = ddb.key_seq(to.1);
                        ctx.write_seq = ctx.write_seq.max(seq);
                    }
                }
                return Ok(Outcome::TargetExists);
            }
            // A stream there goes in the move's own batch when the store can do that;
            // otherwise it is deleted first, in a batch of its own.
            let (src_shard, dst_shard) = pair.both();
            if let Some(Value::Stream(d, _)) = dst_shard.get(to.1) {
                let src_stream = match src_shard.get(from.1) {
                    Some(Value::Stream(s, _)) => Some(&**s),
                    _ => None,
                };
                let one_batch = store.replaces_in_one_batch((to.0 as u32, to.1), d, src_stream);
                let deadline = pair.dst().deadline(to.1);
                let Some((gone, delta)) = pair.dst().remove_key(to.1) else {
                    return Ok(Outcome::NoSource);
                };
                ddb.note_deadlines(delta);
                if one_batch {
                    replaced = Some((gone, deadline));
                } else {
                    let Value::Stream(s, _) = &gone else {
                        return Ok(Outcome::NoSource);
                    };
                    match store.delete_stream(to.0 as u32, to.1, s) {
                        Ok(n) => {
                            seq = n;
                            ddb.note_write(to.1, n);
                        }
                        Err(e) => {
                            let k = keep(to.1);
                            pair.dst().insert(k.clone(), gone);
                            ddb.note_deadlines(pair.dst().set_deadline(&k, deadline));
                            return Err(store_error(e));
                        }
                    }
                }
            }
        }
        let deadline = pair.src().deadline(from.1);
        let fk = (from.0 as u32, &from.1[..]);
        let tk = (to.0 as u32, &to.1[..]);
        let gone = match &replaced {
            Some((Value::Stream(s, _), _)) => Some(&**s),
            _ => None,
        };
        let moved = if copy {
            let made = match pair.src().get_mut(from.1) {
                Some(Value::String(v, _, form)) => {
                    // Redis's copy keeps the encoding.
                    let (v, form) = (v.clone(), *form);
                    store
                        .move_string(fk, tk, &v, deadline, false, gone)
                        .map(|n| (n, Value::string_value(v, form)))
                }
                Some(Value::StoredString(_)) => Err(not_loaded()),
                Some(Value::Stream(s, _)) => {
                    store
                        .copy_stream(fk, tk, s, deadline, gone)
                        .map(|(n, mut c)| {
                            c.attach_source(store.source(tk.0, tk.1));
                            (n, Value::stream_value(Box::new(c)))
                        })
                }
                None => return Ok(Outcome::NoSource),
            };
            match made {
                Ok(made) => made,
                Err(e) => {
                    put_back(pair.dst(), ddb, to.1, replaced);
                    return Err(store_error(e));
                }
            }
        } else {
            let Some((mut value, delta)) = pair.src().remove_key(from.1) else {
                return Ok(Outcome::NoSource);
            };
            sdb.note_deadlines(delta);
            let written = match &mut value {
                Value::String(v, _, _) => store.move_string(fk, tk, v, deadline, true, gone),
                Value::StoredString(_) => Err(not_loaded()),
                Value::Stream(s, _) => store.move_stream(fk, tk, s, deadline, gone).inspect(|_| {
                    s.attach_source(store.source(tk.0, tk.1));
                }),
            };
            match written {
                Ok(n) => (n, value),
                Err(e) => {
                    let k = keep(from.1);
                    pair.src().insert(k.clone(), value);
                    sdb.note_deadlines(pair.src().set_deadline(&k, deadline));
                    put_back(pair.dst(), ddb, to.1, replaced);
                    return Err(store_error(e));
                }
            }
        };
        let (n, value) = moved;
        seq = seq.max(n);
        let k = keep(to.1);
        // A string there (REPLACE, or RENAME's overwrite) goes with its deadline.
        if let Some((_, delta)) = pair.dst().remove_key(&k) {
            ddb.note_deadlines(delta);
        }
        // Retention follows the stream to its new name (the task drops the old one lazily).
        if let Value::Stream(st, _) = &value
            && st.retention().max_age > 0
        {
            shared.retention.add(to.0, &k);
        }
        pair.dst().insert(k.clone(), value);
        ddb.note_deadlines(pair.dst().set_deadline(&k, deadline));
        sdb.note_write(from.1, seq);
        ddb.note_write(to.1, seq);
    }
    ctx.write_seq = ctx.write_seq.max(seq);
    ctx.touched.push((to.0, to.1.clone()));
    if !copy {
        ctx.touched.push((from.0, from.1.clone()));
    }
    Ok(Outcome::Done)
}

fn rename_with(ctx: &mut Ctx<'_>, argv: &[Bytes], nx: bool) -> Result<Reply, CommandError> {
    let (src, dst) = (&argv[1], &argv[2]);
    let db = ctx.client.db;
    if src == dst {
        if !ctx.db().lock(src).contains_key(src) {
            ctx.key_miss(src)?;
            return Err(no_such_key());
        }
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    match relocate(ctx, (db, src), (db, dst), false, !nx)? {
        Outcome::NoSource => Err(no_such_key()),
        Outcome::TargetExists => Ok(Reply::Int(0)),
        Outcome::Done => {
            keyspace_event(ctx.shared, EventClass::Generic, "rename_from", db, src);
            keyspace_event(ctx.shared, EventClass::Generic, "rename_to", db, dst);
            Ok(if nx { Reply::Int(1) } else { Reply::Ok })
        }
    }
}

fn rename(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    rename_with(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    rename_with(ctx, argv, true)
}

fn copy(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = CopyArgs::parse(&mut Args::new(&argv[3..]), ctx.shared.keyspace.count())?;
    let (src, dst) = (&argv[1], &argv[2]);
    let from = ctx.client.db;
    let to = a.db.unwrap_or(from);
    if from == to && src == dst {
        return Err(same_object());
    }
    if to != from {
        // The destination database's key may have a deadline that passed: it is gone.
        crate::expiry::expire_if_due(ctx.shared, to, dst, crate::client::now_ms());
    }
    match relocate(ctx, (from, src), (to, dst), true, a.replace)? {
        Outcome::Done => {
            keyspace_event(ctx.shared, EventClass::Generic, "copy_to", to, dst);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

fn move_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let from = ctx.client.db;
    let to = parse_db(&argv[2], ctx.shared.keyspace.count())?;
    if from == to {
        return Err(same_object());
    }
    let key = &argv[1];
    // The destination database's key may have a deadline that passed: it is gone.
    crate::expiry::expire_if_due(ctx.shared, to, key, crate::client::now_ms());
    match relocate(ctx, (from, key), (to, key), false, false)? {
        Outcome::Done => {
            keyspace_event(ctx.shared, EventClass::Generic, "move_from", from, key);
            keyspace_event(ctx.shared, EventClass::Generic, "move_to", to, key);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

/// SWAPDB's two database indexes, checked against `databases`.
pub(crate) fn parse_swapdb(
    argv: &[Bytes],
    databases: usize,
) -> Result<(usize, usize), CommandError> {
    let index = |arg: &[u8], what: &'static str| {
        std::str::from_utf8(arg)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(CommandError::msg(what))
    };
    let a = index(&argv[1], "ERR invalid first DB index")?;
    let b = index(&argv[2], "ERR invalid second DB index")?;
    let check = |n: i64| {
        usize::try_from(n)
            .ok()
            .filter(|&n| n < databases)
            .ok_or_else(db_out_of_range)
    };
    Ok((check(a)?, check(b)?))
}

/// The streams of one database's locked shards, each with its database and name.
fn streams_of<'g>(
    db: usize,
    guards: &'g mut [MutexGuard<'_, Shard>],
) -> Vec<(u32, &'g [u8], &'g mut brooklet_persistence::StoredStream)> {
    guards
        .iter_mut()
        .flat_map(|g| g.iter_mut())
        .filter_map(|(k, v)| match v {
            Value::Stream(s, _) => Some((db as u32, &k[..], &mut **s)),
            Value::String(..) | Value::StoredString(_) => None,
        })
        .collect()
}

/// SWAPDB: under the exclusive hold of the keyspace, every shard of both databases is
/// locked, the store rewrites both (`Store::swap_dbs`), then memory swaps shard for shard.
/// Every key either database held is touched, so blocked readers and WATCH see it as Redis
/// has them see it.
fn swapdb(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (a, b) = parse_swapdb(argv, ctx.shared.keyspace.count())?;
    if a == b {
        return Ok(Reply::Ok);
    }
    let (lo, hi) = (a.min(b), a.max(b));
    let shared = ctx.shared;
    let store = &shared.store;
    let (dlo, dhi) = (shared.keyspace.db(lo), shared.keyspace.db(hi));
    let mut keys: hashbrown::HashSet<Bytes> = hashbrown::HashSet::new();
    let seq = {
        let mut glo = dlo.lock_all();
        let mut ghi = dhi.lock_all();
        for g in glo.iter().chain(ghi.iter()) {
            keys.extend(g.keys().map(SmallBytes::to_bytes));
        }
        let mut all = streams_of(lo, &mut glo);
        all.extend(streams_of(hi, &mut ghi));
        let seq = store
            .swap_dbs(lo as u32, hi as u32, all)
            .map_err(store_error)?;
        for (x, y) in glo.iter_mut().zip(ghi.iter_mut()) {
            std::mem::swap(&mut **x, &mut **y);
        }
        dlo.swap_counts(dhi);
        shared.retention.swap_dbs(lo, hi);
        for (db, guards) in [(lo, &mut glo), (hi, &mut ghi)] {
            for g in guards.iter_mut() {
                for (k, v) in g.iter_mut() {
                    if let Value::Stream(s, _) = v {
                        s.attach_source(store.source(db as u32, k));
                    }
                }
            }
        }
        dlo.note_removal_of_all(seq);
        dhi.note_removal_of_all(seq);
        seq
    };
    ctx.write_seq = ctx.write_seq.max(seq);
    for k in keys {
        ctx.touched.push((lo, k.clone()));
        ctx.touched.push((hi, k));
    }
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn e(line: &str) -> String {
        let v = argv(line);
        error_of(CopyArgs::parse(&mut Args::new(&v), 16))
    }

    #[test]
    fn copy_options() {
        let v = argv("db 3 replace");
        let a = CopyArgs::parse(&mut Args::new(&v), 16).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a,
            CopyArgs {
                db: Some(3),
                replace: true
            }
        );
    }

    #[test]
    fn copy_errors_are_redis_texts() {
        assert_eq!(e("DB"), "ERR syntax error");
        assert_eq!(e("FOO"), "ERR syntax error");
        assert_eq!(e("DB x"), "ERR value is not an integer or out of range");
        assert_eq!(e("DB 16"), "ERR DB index is out of range");
        assert_eq!(e("DB -1"), "ERR DB index is out of range");
    }

    #[test]
    fn swapdb_errors_are_redis_texts() {
        let e = |line: &str| error_of(parse_swapdb(&argv(line), 16));
        assert_eq!(e("swapdb x 0"), "ERR invalid first DB index");
        assert_eq!(e("swapdb 0 x"), "ERR invalid second DB index");
        assert_eq!(e("swapdb x y"), "ERR invalid first DB index");
        assert_eq!(e("swapdb 0 16"), "ERR DB index is out of range");
        assert_eq!(e("swapdb -1 0"), "ERR DB index is out of range");
        assert_eq!(parse_swapdb(&argv("swapdb 3 4"), 16).ok(), Some((3, 4)));
    }

    #[test]
    fn move_db_errors_are_redis_texts() {
        assert_eq!(
            error_of(parse_db(b"x", 16)),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            error_of(parse_db(b"16", 16)),
            "ERR DB index is out of range"
        );
        assert_eq!(
            error_of(parse_db(b"-1", 16)),
            "ERR DB index is out of range"
        );
    }
}
