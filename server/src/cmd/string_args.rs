//! The string commands' arguments: SET's and GETEX's options, expire times and integers as
//! Redis reads them, each with Redis's error text (floats: `long_double.rs`).

use bytes::Bytes;

use brooklet_resp::{Args, parse_int, upper_keyword};

use crate::error::CommandError;

/// `ERR value is not an integer or out of range`.
pub(crate) const NOT_INTEGER: CommandError =
    CommandError::msg("ERR value is not an integer or out of range");

/// `ERR value is not a valid float`.
pub(crate) const NOT_FLOAT: CommandError = CommandError::msg("ERR value is not a valid float");

/// `ERR string exceeds maximum allowed size (proto-max-bulk-len)`.
pub(crate) const TOO_LONG: CommandError =
    CommandError::msg("ERR string exceeds maximum allowed size (proto-max-bulk-len)");

/// The expire-time error of command `name` (`set`, `setex`, `getex`, `expire`...).
pub(crate) fn invalid_expire(name: &str) -> CommandError {
    CommandError::text(format!("ERR invalid expire time in '{name}' command"))
}

/// How an expire time is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// EX / SETEX / EXPIRE: seconds from now.
    Seconds,
    /// PX / PSETEX / PEXPIRE: milliseconds from now.
    Millis,
    /// EXAT / EXPIREAT: unix seconds.
    UnixSeconds,
    /// PXAT / PEXPIREAT: unix milliseconds.
    UnixMillis,
}

impl Unit {
    /// The absolute deadline in unix ms for `n` of this unit at `now`; None when it
    /// overflows (Redis's "invalid expire time").
    pub(crate) fn deadline(self, n: i64, now: u64) -> Option<i64> {
        let ms = match self {
            Unit::Seconds | Unit::UnixSeconds => n.checked_mul(1000)?,
            Unit::Millis | Unit::UnixMillis => n,
        };
        match self {
            Unit::Seconds | Unit::Millis => ms.checked_add(i64::try_from(now).ok()?),
            Unit::UnixSeconds | Unit::UnixMillis => Some(ms),
        }
    }
}

/// An expire time as SET, SETEX and GETEX take it: positive, and in range once made
/// absolute; returns the deadline in unix ms.
pub(crate) fn positive_expire(
    arg: &[u8],
    unit: Unit,
    now: u64,
    name: &str,
) -> Result<u64, CommandError> {
    let n = parse_int(arg).ok_or(NOT_INTEGER)?;
    if n <= 0 {
        return Err(invalid_expire(name));
    }
    unit.deadline(n, now)
        .and_then(|d| u64::try_from(d).ok())
        .ok_or_else(|| invalid_expire(name))
}

/// SET's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Cond {
    /// Always.
    #[default]
    Always,
    /// NX: only when the key does not exist.
    Nx,
    /// XX: only when it does.
    Xx,
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Ttl {
    /// Removes it (a plain SET).
    #[default]
    Clear,
    /// KEEPTTL.
    Keep,
    /// EX / PX / EXAT / PXAT: this unix ms.
    At(u64),
}

/// SET's arguments after the key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SetArgs {
    /// NX / XX.
    pub cond: Cond,
    /// GET: answer the old value.
    pub get: bool,
    /// What happens to the deadline.
    pub ttl: Ttl,
}

impl SetArgs {
    /// # Format
    /// `[NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]`, in any order.
    /// `now` is read only for a relative expiry.
    pub(crate) fn parse(
        args: &mut Args<'_>,
        now: impl FnOnce() -> u64,
    ) -> Result<Self, CommandError> {
        let mut a = SetArgs::default();
        let mut expiry_given = false;
        let mut expire: Option<(Unit, &Bytes)> = None;
        let mut buf = [0u8; 8];
        while let Some(word) = args.peek() {
            let word = upper_keyword(word, &mut buf);
            args.next_bytes()?;
            match word {
                b"NX" if a.cond != Cond::Xx => a.cond = Cond::Nx,
                b"XX" if a.cond != Cond::Nx => a.cond = Cond::Xx,
                b"GET" => a.get = true,
                b"KEEPTTL" if !expiry_given => {
                    a.ttl = Ttl::Keep;
                    expiry_given = true;
                }
                b"EX" | b"PX" | b"EXAT" | b"PXAT" if !expiry_given && !args.is_empty() => {
                    let unit = match word {
                        b"EX" => Unit::Seconds,
                        b"PX" => Unit::Millis,
                        b"EXAT" => Unit::UnixSeconds,
                        _ => Unit::UnixMillis,
                    };
                    expire = Some((unit, args.next_bytes()?));
                    expiry_given = true;
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        // The time is read once every option was, as Redis does.
        if let Some((unit, n)) = expire {
            a.ttl = Ttl::At(positive_expire(n, unit, now(), "set")?);
        }
        Ok(a)
    }
}

/// GETEX's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GetExArgs {
    /// No option: a plain GET.
    Get,
    /// PERSIST.
    Persist,
    /// EX / PX / EXAT / PXAT, as unix ms.
    At(u64),
}

impl GetExArgs {
    /// # Format
    /// `[EX s | PX ms | EXAT s | PXAT ms | PERSIST]`, after the key.
    pub(crate) fn parse(args: &mut Args<'_>, now: u64) -> Result<Self, CommandError> {
        let mut persist = false;
        let mut expire: Option<(Unit, &Bytes)> = None;
        let mut buf = [0u8; 8];
        while let Some(word) = args.peek() {
            let word = upper_keyword(word, &mut buf);
            args.next_bytes()?;
            let unit = match word {
                b"PERSIST" if !persist && expire.is_none() => {
                    persist = true;
                    continue;
                }
                b"EX" => Unit::Seconds,
                b"PX" => Unit::Millis,
                b"EXAT" => Unit::UnixSeconds,
                b"PXAT" => Unit::UnixMillis,
                _ => return Err(CommandError::syntax()),
            };
            if persist || expire.is_some() || args.is_empty() {
                return Err(CommandError::syntax());
            }
            expire = Some((unit, args.next_bytes()?));
        }
        Ok(match expire {
            Some((unit, n)) => GetExArgs::At(positive_expire(n, unit, now, "getex")?),
            None if persist => GetExArgs::Persist,
            None => GetExArgs::Get,
        })
    }
}

/// An integer argument or stored value, as Redis's `string2ll` reads it.
pub(crate) fn int_of(b: &[u8]) -> Result<i64, CommandError> {
    parse_int(b).ok_or(NOT_INTEGER)
}

/// GETRANGE's byte range of a `len`-byte value (Redis's clamping), or None when empty.
pub(crate) fn range_of(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    const NOW: u64 = 1_700_000_000_000;

    fn set(line: &str) -> Result<SetArgs, CommandError> {
        let v = argv(line);
        SetArgs::parse(&mut Args::new(&v), || NOW)
    }

    fn getex(line: &str) -> Result<GetExArgs, CommandError> {
        let v = argv(line);
        GetExArgs::parse(&mut Args::new(&v), NOW)
    }

    #[test]
    fn set_options() {
        assert_eq!(set("").ok(), Some(SetArgs::default()));
        let a = set("nx get ex 10").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.cond, Cond::Nx);
        assert!(a.get);
        assert_eq!(a.ttl, Ttl::At(NOW + 10_000));
        assert_eq!(set("PX 5").ok().map(|a| a.ttl), Some(Ttl::At(NOW + 5)));
        assert_eq!(set("EXAT 5").ok().map(|a| a.ttl), Some(Ttl::At(5000)));
        assert_eq!(set("PXAT 5").ok().map(|a| a.ttl), Some(Ttl::At(5)));
        assert_eq!(set("KEEPTTL XX").ok().map(|a| a.ttl), Some(Ttl::Keep));
    }

    #[test]
    fn set_errors_are_redis_texts() {
        let e = |l: &str| error_of(set(l));
        assert_eq!(e("NX XX"), "ERR syntax error");
        assert_eq!(e("EX 10 PX 10"), "ERR syntax error");
        assert_eq!(e("EX 10 KEEPTTL"), "ERR syntax error");
        assert_eq!(e("KEEPTTL EX 10"), "ERR syntax error");
        assert_eq!(e("EX"), "ERR syntax error");
        assert_eq!(e("FOO"), "ERR syntax error");
        assert_eq!(e("EX 0 FOO"), "ERR syntax error");
        assert_eq!(e("EX x"), "ERR value is not an integer or out of range");
        assert_eq!(e("EX 0"), "ERR invalid expire time in 'set' command");
        assert_eq!(e("PX -1"), "ERR invalid expire time in 'set' command");
        assert_eq!(
            e("EX 9223372036854775807"),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            e("PX 9223372036854775807"),
            "ERR invalid expire time in 'set' command"
        );
    }

    #[test]
    fn getex_options_and_errors() {
        assert_eq!(getex("").ok(), Some(GetExArgs::Get));
        assert_eq!(getex("persist").ok(), Some(GetExArgs::Persist));
        assert_eq!(getex("EX 1").ok(), Some(GetExArgs::At(NOW + 1000)));
        let e = |l: &str| error_of(getex(l));
        assert_eq!(e("EX 1 PX 1"), "ERR syntax error");
        assert_eq!(e("PERSIST EX 1"), "ERR syntax error");
        assert_eq!(e("EX"), "ERR syntax error");
        assert_eq!(e("FOO"), "ERR syntax error");
        assert_eq!(e("EX 0"), "ERR invalid expire time in 'getex' command");
        assert_eq!(e("EX a"), "ERR value is not an integer or out of range");
    }

    #[test]
    fn numbers_as_redis_reads_them() {
        assert_eq!(int_of(b"-12").ok(), Some(-12));
        for bad in ["", " 1", "1 ", "+1", "01", "1.0", "9223372036854775808"] {
            assert_eq!(
                error_of(int_of(bad.as_bytes())),
                "ERR value is not an integer or out of range",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ranges_clamp_as_redis_does() {
        assert_eq!(range_of(0, -1, 5), Some((0, 4)));
        assert_eq!(range_of(-3, -1, 5), Some((2, 4)));
        assert_eq!(range_of(-1, -3, 5), None);
        assert_eq!(range_of(2, 100, 5), Some((2, 4)));
        assert_eq!(range_of(4, 2, 5), None);
        assert_eq!(range_of(0, -1, 0), None);
        assert_eq!(range_of(-100, 1, 5), Some((0, 1)));
    }
}
