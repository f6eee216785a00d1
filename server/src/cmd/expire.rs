//! Key deadlines, on keys of any type: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX, XX, GT,
//! LT), TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST. Removing keys once their deadline
//! passed is `expiry.rs`'s.

use bytes::Bytes;

use brooklet_resp::{Args, Reply, upper_keyword};

use super::string_args::{NOT_INTEGER, Unit, invalid_expire};
use super::strings::set_deadline_locked;
use super::table::command;
use super::table::flags::*;
use super::{CommandSpec, Ctx};
use crate::client::now_ms;
use crate::error::CommandError;
use crate::notify::EventClass;
use crate::publish::keyspace_event;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("expire", -3, WRITE | FAST, (1, 1, 1), expire),
    command("pexpire", -3, WRITE | FAST, (1, 1, 1), pexpire),
    command("expireat", -3, WRITE | FAST, (1, 1, 1), expireat),
    command("pexpireat", -3, WRITE | FAST, (1, 1, 1), pexpireat),
    command("ttl", 2, READONLY | FAST, (1, 1, 1), ttl),
    command("pttl", 2, READONLY | FAST, (1, 1, 1), pttl),
    command("expiretime", 2, READONLY | FAST, (1, 1, 1), expiretime),
    command("pexpiretime", 2, READONLY | FAST, (1, 1, 1), pexpiretime),
    command("persist", 2, WRITE | FAST, (1, 1, 1), persist),
];

/// EXPIRE's condition on the key's current deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum When {
    /// Always.
    #[default]
    Always,
    /// NX: only when it has none.
    Nx,
    /// XX: only when it has one.
    Xx,
    /// GT: only when the new one is later (none counts as never).
    Gt,
    /// LT: only when the new one is earlier (none counts as never).
    Lt,
}

impl When {
    /// Whether a key whose deadline is `current` takes the deadline `new`.
    pub(crate) fn allows(self, current: Option<u64>, new: u64) -> bool {
        match self {
            When::Always => true,
            When::Nx => current.is_none(),
            When::Xx => current.is_some(),
            When::Gt => current.is_some_and(|c| new > c),
            When::Lt => current.is_none_or(|c| new < c),
        }
    }
}

/// EXPIRE's arguments after the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpireArgs {
    /// The deadline, unix ms; at or before now removes the key. May be negative (long ago).
    pub at: i64,
    /// NX / XX / GT / LT (GT or LT when given, whether or not XX is).
    pub when: When,
    /// XX, which also holds beside GT or LT.
    pub xx: bool,
}

impl ExpireArgs {
    /// # Format
    /// `time [NX | XX | GT | LT]`; `name` is the command's, for the error text.
    pub(crate) fn parse(
        args: &mut Args<'_>,
        unit: Unit,
        now: u64,
        name: &str,
    ) -> Result<Self, CommandError> {
        let time = args.next_bytes()?;
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        let mut buf = [0u8; 2];
        for opt in args.rest() {
            match upper_keyword(opt, &mut buf) {
                b"NX" => nx = true,
                b"XX" => xx = true,
                b"GT" => gt = true,
                b"LT" => lt = true,
                _ => {
                    return Err(CommandError::text(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(opt)
                    )));
                }
            }
        }
        if nx && (xx || gt || lt) {
            return Err(CommandError::msg(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if gt && lt {
            return Err(CommandError::msg(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        let n = brooklet_resp::parse_int(time).ok_or(NOT_INTEGER)?;
        let at = unit.deadline(n, now).ok_or_else(|| invalid_expire(name))?;
        let when = match (nx, xx, gt, lt) {
            (true, ..) => When::Nx,
            (_, _, true, _) => When::Gt,
            (_, _, _, true) => When::Lt,
            (_, true, ..) => When::Xx,
            _ => When::Always,
        };
        Ok(ExpireArgs { at, when, xx })
    }
}

/// The four EXPIRE commands.
fn expire_with(
    ctx: &mut Ctx<'_>,
    argv: &[Bytes],
    unit: Unit,
    name: &str,
) -> Result<Reply, CommandError> {
    let now = now_ms();
    let a = ExpireArgs::parse(&mut Args::new(&argv[2..]), unit, now, name)?;
    let key = &argv[1];
    let db = ctx.db();
    let event = {
        let mut shard = db.lock(key);
        if !shard.contains_key(key) {
            return Ok(Reply::Int(0));
        }
        let current = shard.deadline(key);
        let new = u64::try_from(a.at).unwrap_or(0);
        if !a.when.allows(current, new) || (a.xx && current.is_none()) {
            return Ok(Reply::Int(0));
        }
        if a.at <= now as i64 {
            if let Some((gone, delta)) = shard.remove_key(key) {
                db.note_deadlines(delta);
                ctx.persist_delete(key, &gone)?;
            }
            "del"
        } else {
            set_deadline_locked(ctx, &mut shard, key, Some(new))?;
            "expire"
        }
    };
    keyspace_event(ctx.shared, EventClass::Generic, event, ctx.client.db, key);
    ctx.key_changed(key);
    Ok(Reply::Int(1))
}

fn expire(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    expire_with(ctx, argv, Unit::Seconds, "expire")
}

fn pexpire(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    expire_with(ctx, argv, Unit::Millis, "pexpire")
}

fn expireat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    expire_with(ctx, argv, Unit::UnixSeconds, "expireat")
}

fn pexpireat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    expire_with(ctx, argv, Unit::UnixMillis, "pexpireat")
}

/// TTL and its variants: -2 for a missing key, -1 for one without a deadline, else the time
/// left (`absolute`: the deadline), in ms or rounded to seconds.
fn ttl_with(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    absolute: bool,
    ms: bool,
) -> Result<Reply, CommandError> {
    let found = {
        let shard = ctx.db().lock(key);
        shard.contains_key(key).then(|| shard.deadline(key))
    };
    let Some(deadline) = found else {
        ctx.key_miss(key)?;
        return Ok(Reply::Int(-2));
    };
    ctx.show_key(key)?;
    let Some(at) = deadline else {
        return Ok(Reply::Int(-1));
    };
    let t = if absolute {
        at as i64
    } else {
        (at as i64 - now_ms() as i64).max(0)
    };
    Ok(Reply::Int(if ms { t } else { (t + 500) / 1000 }))
}

fn ttl(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    ttl_with(ctx, &argv[1], false, false)
}

fn pttl(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    ttl_with(ctx, &argv[1], false, true)
}

fn expiretime(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    ttl_with(ctx, &argv[1], true, false)
}

fn pexpiretime(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    ttl_with(ctx, &argv[1], true, true)
}

fn persist(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[1];
    let db = ctx.db();
    {
        let mut shard = db.lock(key);
        if !shard.contains_key(key) || shard.deadline(key).is_none() {
            return Ok(Reply::Int(0));
        }
        set_deadline_locked(ctx, &mut shard, key, None)?;
    }
    keyspace_event(
        ctx.shared,
        EventClass::Generic,
        "persist",
        ctx.client.db,
        key,
    );
    ctx.key_changed(key);
    Ok(Reply::Int(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    const NOW: u64 = 1_700_000_000_000;

    fn p(line: &str, unit: Unit) -> Result<ExpireArgs, CommandError> {
        let v = argv(line);
        ExpireArgs::parse(&mut Args::new(&v), unit, NOW, "expire")
    }

    #[test]
    fn expire_times_become_deadlines() {
        let at = |l: &str, u| p(l, u).map(|a| a.at).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(at("10", Unit::Seconds), NOW as i64 + 10_000);
        assert_eq!(at("10", Unit::Millis), NOW as i64 + 10);
        assert_eq!(at("10", Unit::UnixSeconds), 10_000);
        assert_eq!(at("-10", Unit::UnixMillis), -10);
        assert_eq!(p("1 nx", Unit::Seconds).map(|a| a.when), Ok(When::Nx));
        assert_eq!(p("1 GT xx", Unit::Seconds).map(|a| a.when), Ok(When::Gt));
    }

    #[test]
    fn expire_errors_are_redis_texts() {
        let e = |l: &str| error_of(p(l, Unit::Seconds));
        assert_eq!(e("x"), "ERR value is not an integer or out of range");
        assert_eq!(e("1 FOO"), "ERR Unsupported option FOO");
        assert_eq!(
            e("1 NX XX"),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            e("1 NX GT"),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            e("1 GT LT"),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            e("9223372036854775807"),
            "ERR invalid expire time in 'expire' command"
        );
        assert_eq!(
            e("x FOO"),
            "ERR Unsupported option FOO",
            "options are checked before the time"
        );
    }

    #[test]
    fn conditions_compare_as_redis_does() {
        assert!(When::Nx.allows(None, 5));
        assert!(!When::Nx.allows(Some(1), 5));
        assert!(When::Xx.allows(Some(1), 5));
        assert!(!When::Xx.allows(None, 5));
        assert!(When::Gt.allows(Some(1), 5));
        assert!(!When::Gt.allows(Some(5), 5));
        assert!(!When::Gt.allows(None, 5), "no deadline counts as never");
        assert!(When::Lt.allows(None, 5));
        assert!(When::Lt.allows(Some(9), 5));
        assert!(!When::Lt.allows(Some(5), 5));
    }
}
