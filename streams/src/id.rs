//! Stream IDs and the ID forms commands accept, parsed with Redis's rules and errors.

use std::fmt;

use crate::error::StreamError;

/// A stream entry ID: milliseconds and a sequence number, ordered as a 128-bit number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part (usually a Unix time in ms).
    pub ms: u64,
    /// Sequence number within the millisecond.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`, the smallest ID; also "none" for last-generated and max-deleted IDs.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// `MAX-MAX`, the largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Builds an ID from its two parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// True for `0-0`.
    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID, or `None` after `MAX-MAX`.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, or `None` before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    /// Big-endian bytes, so byte order is ID order (storage keys).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Inverse of [`StreamId::to_be_bytes`].
    pub fn from_be_bytes(b: [u8; 16]) -> Self {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
    }

    /// Parses a "strict" ID (`ms-seq` or `ms`, seq defaulting to 0; `-`/`+` refused), the
    /// form XDEL, XACK, XCLAIM, XSETID, XGROUP and XREAD take.
    pub fn parse(arg: &[u8]) -> Result<StreamId, StreamError> {
        parse_generic(arg, 0, true).map(|(id, _)| id)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The longest text of an ID: two 20-digit numbers and the dash.
pub const ID_TEXT_MAX: usize = 41;

impl StreamId {
    /// Writes `ms-seq` into `buf` and returns its length: the text of every reply that carries
    /// an ID, without the formatting machinery's cost.
    pub fn write_text(&self, buf: &mut [u8; ID_TEXT_MAX]) -> usize {
        let mut digits = itoa::Buffer::new();
        let ms = digits.format(self.ms).as_bytes();
        buf[..ms.len()].copy_from_slice(ms);
        buf[ms.len()] = b'-';
        let at = ms.len() + 1;
        let seq = digits.format(self.seq).as_bytes();
        buf[at..at + seq.len()].copy_from_slice(seq);
        at + seq.len()
    }
}

/// Redis refuses IDs longer than its 128-byte parse buffer.
const MAX_ID_ARG_LEN: usize = 127;

/// Digits only, at least one, fitting in u64.
fn digits_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// One part of an ID, as Redis's `string2ull` reads it: a canonical negative `long long`
/// (`-` then digits without a leading zero, down to -2^63) is refused, and anything else
/// is taken if C's `strtoull` reads it whole: leading white space, then an optional sign
/// (`-` negating modulo 2^64, so `5- -3` is a valid ID), then digits.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if let [b'-', b'1'..=b'9', ..] = b
        && digits_u64(&b[1..]).is_some_and(|m| m <= 1 << 63)
    {
        return None;
    }
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let (negative, digits) = match &b[start..] {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    let v = digits_u64(digits)?;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// An argument as C sees it: Redis parses IDs as NUL-terminated strings.
fn c_string(arg: &[u8]) -> &[u8] {
    arg.iter()
        .position(|&c| c == 0)
        .map_or(arg, |nul| &arg[..nul])
}

/// How an ID argument's sequence was given (XADD's `ms-*` form).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seq {
    Given,
    Star,
}

/// Redis's one ID grammar: `-`, `+` (unless strict), `ms`, `ms-seq`, and `ms-*` when
/// the caller accepts it (`star_ok`); `missing_seq` fills the seq of a bare `ms`.
fn parse_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    star_ok: bool,
) -> Result<(StreamId, Seq), StreamError> {
    if arg.len() > MAX_ID_ARG_LEN {
        return Err(StreamError::InvalidId);
    }
    let arg = c_string(arg);
    match arg {
        b"-" if !strict => return Ok((StreamId::MIN, Seq::Given)),
        b"+" if !strict => return Ok((StreamId::MAX, Seq::Given)),
        _ => {}
    }
    let (ms_part, seq_part) = match arg.iter().position(|&c| c == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms_part).ok_or(StreamError::InvalidId)?;
    match seq_part {
        None => Ok((StreamId::new(ms, missing_seq), Seq::Given)),
        Some(b"*") if star_ok => Ok((StreamId::new(ms, 0), Seq::Star)),
        Some(s) => {
            let seq = parse_u64(s).ok_or(StreamError::InvalidId)?;
            Ok((StreamId::new(ms, seq), Seq::Given))
        }
    }
}

fn parse_generic(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
) -> Result<(StreamId, Seq), StreamError> {
    parse_full(arg, missing_seq, strict, false)
}

/// Parses an interval bound: `-`, `+`, `ms`, `ms-seq`, or exclusive `(ms[-seq]`;
/// returns the ID and whether it was exclusive.
fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), StreamError> {
    if arg.len() > 1 && arg[0] == b'(' {
        // Redis parses the rest strictly, so `(-` and `(+` are invalid IDs.
        let (id, _) = parse_generic(&arg[1..], missing_seq, true)?;
        Ok((id, true))
    } else {
        let (id, _) = parse_generic(arg, missing_seq, false)?;
        Ok((id, false))
    }
}

/// Parses an inclusive-or-exclusive range start (XRANGE, XPENDING, XAUTOCLAIM) into the
/// inclusive ID it stands for; a bare `ms` means `ms-0`.
pub fn parse_range_start(arg: &[u8]) -> Result<StreamId, StreamError> {
    let (id, exclusive) = parse_interval(arg, 0)?;
    if exclusive {
        id.next().ok_or(StreamError::InvalidStartInterval)
    } else {
        Ok(id)
    }
}

/// Parses a range end into the inclusive ID it stands for; a bare `ms` means `ms-MAX`.
pub fn parse_range_end(arg: &[u8]) -> Result<StreamId, StreamError> {
    let (id, exclusive) = parse_interval(arg, u64::MAX)?;
    if exclusive {
        id.prev().ok_or(StreamError::InvalidEndInterval)
    } else {
        Ok(id)
    }
}

/// The ID argument of XADD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSpec {
    /// `*`: from the clock, never below the last ID.
    Auto,
    /// `ms-*`: the given milliseconds, next free sequence.
    AutoSeq(u64),
    /// `ms-seq` (or `ms`, meaning `ms-0`).
    Explicit(StreamId),
}

impl IdSpec {
    /// Parses XADD's ID argument; refuses `0-0` as Redis does.
    pub fn parse(arg: &[u8]) -> Result<IdSpec, StreamError> {
        if c_string(arg) == b"*" {
            return Ok(IdSpec::Auto);
        }
        match parse_full(arg, 0, true, true)? {
            (id, Seq::Star) => Ok(IdSpec::AutoSeq(id.ms)),
            (id, Seq::Given) if id.is_zero() => Err(StreamError::XAddZeroId),
            (id, Seq::Given) => Ok(IdSpec::Explicit(id)),
        }
    }
}

/// The ID argument of XREAD / XREADGROUP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadId {
    /// An explicit ID: entries strictly after it (XREAD) or the consumer's pending
    /// entries after it (XREADGROUP).
    Id(StreamId),
    /// `$` (XREAD only): entries after the stream's last ID at call time.
    Last,
    /// `+` (XREAD only, 7.4): the stream's last entry.
    LastEntry,
    /// `>` (XREADGROUP only): entries never delivered to the group.
    New,
}

impl ReadId {
    /// Parses an XREAD ID: `$`, `+` or a strict ID; `>` gets Redis's error.
    pub fn parse_xread(arg: &[u8]) -> Result<ReadId, StreamError> {
        match arg {
            b"$" => Ok(ReadId::Last),
            b"+" => Ok(ReadId::LastEntry),
            b">" => Err(StreamError::GreaterInXRead),
            _ => StreamId::parse(arg).map(ReadId::Id),
        }
    }

    /// Parses an XREADGROUP ID: `>` or a strict ID; `$` gets Redis's error.
    pub fn parse_xreadgroup(arg: &[u8]) -> Result<ReadId, StreamError> {
        match arg {
            b">" => Ok(ReadId::New),
            b"$" => Err(StreamError::DollarInXReadGroup),
            b"+" => Err(StreamError::PlusInXReadGroup),
            _ => StreamId::parse(arg).map(ReadId::Id),
        }
    }
}

/// The ID argument of XGROUP CREATE / SETID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupStartId {
    /// An explicit last-delivered ID.
    Id(StreamId),
    /// `$`: the stream's last ID.
    Last,
}

impl GroupStartId {
    /// Parses `$` or a strict ID (XGROUP CREATE).
    pub fn parse(arg: &[u8]) -> Result<GroupStartId, StreamError> {
        if arg == b"$" {
            Ok(GroupStartId::Last)
        } else {
            StreamId::parse(arg).map(GroupStartId::Id)
        }
    }

    /// Parses `$` or an ID where `-` and `+` are allowed too (XGROUP SETID, as Redis).
    pub fn parse_setid(arg: &[u8]) -> Result<GroupStartId, StreamError> {
        if arg == b"$" {
            Ok(GroupStartId::Last)
        } else {
            parse_generic(arg, 0, false).map(|(id, _)| GroupStartId::Id(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    #[test]
    fn write_text_matches_display() {
        for v in [
            id(0, 0),
            id(1, 0),
            id(9, 10),
            id(1_700_000_000_123, 42),
            id(u64::MAX, u64::MAX),
            id(10, u64::MAX - 1),
            id(99, 100),
            id(1_000_000_000_000_000_000, 9_999_999_999),
        ] {
            let mut buf = [0u8; ID_TEXT_MAX];
            let n = v.write_text(&mut buf);
            assert_eq!(&buf[..n], v.to_string().as_bytes());
        }
    }

    #[test]
    fn strict_parse_accepts_full_and_bare_ms() {
        assert_eq!(StreamId::parse(b"5-3"), Ok(id(5, 3)));
        assert_eq!(StreamId::parse(b"5"), Ok(id(5, 0)));
        assert_eq!(
            StreamId::parse(b"18446744073709551615-18446744073709551615"),
            Ok(StreamId::MAX)
        );
    }

    #[test]
    fn strict_parse_refuses_specials_and_garbage() {
        for bad in [
            &b"-"[..],
            b"+",
            b"",
            b"5-",
            b"-5",
            b"a",
            b"5-x",
            b"1-2-3",
            b"18446744073709551616",
            b"5-*",
        ] {
            assert_eq!(StreamId::parse(bad), Err(StreamError::InvalidId), "{bad:?}");
        }
        assert_eq!(StreamId::parse(&[b'1'; 128]), Err(StreamError::InvalidId));
    }

    #[test]
    fn range_bounds_follow_redis() {
        assert_eq!(parse_range_start(b"-"), Ok(StreamId::MIN));
        assert_eq!(parse_range_end(b"+"), Ok(StreamId::MAX));
        assert_eq!(parse_range_start(b"5"), Ok(id(5, 0)));
        assert_eq!(parse_range_end(b"5"), Ok(id(5, u64::MAX)));
        assert_eq!(parse_range_start(b"(5-1"), Ok(id(5, 2)));
        assert_eq!(parse_range_start(b"(5"), Ok(id(5, 1)));
        assert_eq!(parse_range_end(b"(5"), Ok(id(5, u64::MAX - 1)));
        assert_eq!(parse_range_end(b"(5-0"), Ok(id(4, u64::MAX)));
        assert_eq!(parse_range_start(b"(-"), Err(StreamError::InvalidId));
        assert_eq!(parse_range_end(b"(+"), Err(StreamError::InvalidId));
        assert_eq!(
            parse_range_start(b"(18446744073709551615-18446744073709551615"),
            Err(StreamError::InvalidStartInterval)
        );
        assert_eq!(
            parse_range_end(b"(0-0"),
            Err(StreamError::InvalidEndInterval)
        );
        assert_eq!(parse_range_end(b"(0"), Ok(id(0, u64::MAX - 1)));
        assert_eq!(parse_range_start(b"("), Err(StreamError::InvalidId));
    }

    #[test]
    fn xadd_id_forms() {
        assert_eq!(IdSpec::parse(b"*"), Ok(IdSpec::Auto));
        assert_eq!(IdSpec::parse(b"7-*"), Ok(IdSpec::AutoSeq(7)));
        assert_eq!(IdSpec::parse(b"7-1"), Ok(IdSpec::Explicit(id(7, 1))));
        assert_eq!(IdSpec::parse(b"7"), Ok(IdSpec::Explicit(id(7, 0))));
        assert_eq!(IdSpec::parse(b"0-0"), Err(StreamError::XAddZeroId));
        assert_eq!(IdSpec::parse(b"0"), Err(StreamError::XAddZeroId));
        assert_eq!(IdSpec::parse(b"0-*"), Ok(IdSpec::AutoSeq(0)));
        assert_eq!(IdSpec::parse(b"+"), Err(StreamError::InvalidId));
        assert_eq!(IdSpec::parse(b"*-1"), Err(StreamError::InvalidId));
        assert_eq!(
            StreamError::XAddZeroId.to_string(),
            "ERR The ID specified in XADD must be greater than 0-0"
        );
    }

    #[test]
    fn id_parts_are_read_as_redis_string2ull_reads_them() {
        assert_eq!(parse_u64(b"-0"), Some(0));
        assert_eq!(parse_u64(b"-5"), None);
        assert_eq!(parse_u64(b"-9223372036854775808"), None);
        assert_eq!(
            parse_u64(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        assert_eq!(parse_u64(b" \t+5"), Some(5));
        assert_eq!(parse_u64(b" -5"), Some(5u64.wrapping_neg()));
        assert_eq!(parse_u64(b"007"), Some(7));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b" ",
            b"+",
            b"-",
            b"5 ",
            b"18446744073709551616",
            b"0x5",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        // C strings end at a NUL: `5\0-3` is `5`.
        assert_eq!(StreamId::parse(b"5\0-3"), Ok(id(5, 0)));
        assert_eq!(IdSpec::parse(b"*\0x"), Ok(IdSpec::Auto));
    }

    #[test]
    fn read_ids() {
        assert_eq!(ReadId::parse_xread(b"$"), Ok(ReadId::Last));
        assert_eq!(ReadId::parse_xread(b"+"), Ok(ReadId::LastEntry));
        assert_eq!(ReadId::parse_xread(b">"), Err(StreamError::GreaterInXRead));
        assert_eq!(ReadId::parse_xreadgroup(b">"), Ok(ReadId::New));
        assert_eq!(
            ReadId::parse_xreadgroup(b"$"),
            Err(StreamError::DollarInXReadGroup)
        );
        assert_eq!(
            ReadId::parse_xreadgroup(b"0"),
            Ok(ReadId::Id(StreamId::MIN))
        );
    }

    #[test]
    fn next_prev_and_bytes() {
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(StreamId::from_be_bytes(id(3, 4).to_be_bytes()), id(3, 4));
        assert_eq!(id(3, 4).to_string(), "3-4");
        assert!(id(1, 9) < id(2, 0));
    }
}
