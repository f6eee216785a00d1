//! Reading client requests off a byte buffer.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

use crate::inline::split_inline;

/// Longest header line (`*<count>` / `$<len>`) or inline request Redis accepts before a newline.
const INLINE_MAX_SIZE: usize = 64 * 1024;
/// Redis's cap on a multibulk count (`INT_MAX`).
const MAX_MULTIBULK_COUNT: i64 = i32::MAX as i64;
/// Arguments allowed before authentication, as in Redis.
const UNAUTH_MAX_ARGS: i64 = 10;
/// Bulk length allowed before authentication, as in Redis.
const UNAUTH_MAX_BULK: i64 = 16 * 1024;
/// Upper bound on the argv capacity reserved from an announced count, so a huge count
/// costs nothing until its arguments actually arrive.
const ARGV_PREALLOC_CAP: usize = 1024;

/// The protocol limits in force for one client at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk string accepted.
    pub max_bulk_len: u64,
    /// Whether the client must still authenticate (tighter limits apply).
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            unauthenticated: false,
        }
    }
}

/// A request Redis would answer with `-ERR Protocol error: ...` and then close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*<count>` was not a number, or above Redis's limit.
    InvalidMultibulkLength,
    /// `$<len>` was not a number, negative, or above `proto-max-bulk-len`.
    InvalidBulkLength,
    /// An unauthenticated client announced more than 10 arguments.
    UnauthenticatedMultibulkLength,
    /// An unauthenticated client announced a bulk over 16 KB.
    UnauthenticatedBulkLength,
    /// Something other than `$` where a bulk header was expected.
    ExpectedDollar(u8),
    /// No newline within 64 KB of a `*` header.
    TooBigMultibulkCount,
    /// No newline within 64 KB of a `$` header.
    TooBigBulkCount,
    /// No newline within 64 KB of an inline request.
    TooBigInline,
    /// An inline request with an unterminated quote.
    UnbalancedQuotes,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ERR Protocol error: ")?;
        match self {
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::UnauthenticatedMultibulkLength => {
                f.write_str("unauthenticated multibulk length")
            }
            ProtocolError::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
            ProtocolError::ExpectedDollar(b) => {
                write!(f, "expected '$', got '{}'", char::from(*b))
            }
            ProtocolError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Incremental request parser for one connection.
///
/// A multibulk request is consumed from the buffer argument by argument as the bytes arrive,
/// so a request that trickles in over many reads is parsed once, not re-scanned on every read,
/// and each argument is a zero-copy `Bytes` slice of the read buffer.
#[derive(Debug, Default)]
pub struct RequestReader {
    /// Arguments of the multibulk request being read.
    argv: Vec<Bytes>,
    /// Arguments still to read of that request; 0 when between requests.
    remaining: usize,
    /// Announced length of the bulk being read, once its header is consumed.
    bulk_len: Option<usize>,
    /// Bytes held in `argv` (counted against the query buffer limit).
    argv_bytes: usize,
    /// An emptied argument vector handed back by [`RequestReader::recycle`], filled by the
    /// next request instead of allocating one.
    spare: Vec<Bytes>,
}

impl RequestReader {
    /// A reader between requests.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a request has been started but not completed.
    pub fn in_request(&self) -> bool {
        self.remaining > 0
    }

    /// Takes back a request's argument vector once its command ran, so the next request
    /// reuses its allocation (a small one only: a huge request's is let go).
    pub fn recycle(&mut self, mut argv: Vec<Bytes>) {
        if argv.capacity() <= WHOLE_MAX_ARGS && argv.capacity() > self.spare.capacity() {
            argv.clear();
            self.spare = argv;
        }
    }

    /// Bytes of a request in progress already moved out of the read buffer.
    pub fn buffered_bytes(&self) -> usize {
        self.argv_bytes
    }

    /// Bytes the reader still needs for the bulk in progress, if it knows.
    pub fn bulk_bytes_wanted(&self, buf: &BytesMut) -> Option<usize> {
        self.bulk_len.map(|len| (len + 2).saturating_sub(buf.len()))
    }

    /// Cuts the next complete request out of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed (what was already parsed is kept), and an
    /// empty `Vec` never: empty requests (`\r\n`, `*0`, `*-1`) are skipped as Redis does.
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match self.read_inline(buf)? {
                        Step::NeedMore => return Ok(None),
                        Step::Skipped => continue,
                        Step::Done(argv) => return Ok(Some(argv)),
                    }
                }
                if whole_request(buf, limits, &mut self.spare) {
                    return Ok(Some(std::mem::take(&mut self.spare)));
                }
                match self.read_multibulk_header(buf, limits)? {
                    Step::NeedMore => return Ok(None),
                    Step::Skipped => continue,
                    Step::Done(_) => {}
                }
            }
            while self.remaining > 0 {
                if !self.read_bulk(buf, limits)? {
                    return Ok(None);
                }
            }
            self.argv_bytes = 0;
            return Ok(Some(std::mem::take(&mut self.argv)));
        }
    }

    fn read_inline(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let Some(nl) = memchr(b'\n', buf) else {
            if buf.len() > INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(Step::NeedMore);
        };
        let line = buf.split_to(nl + 1).freeze();
        let mut end = nl;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        let argv = split_inline(&line.slice(..end)).ok_or(ProtocolError::UnbalancedQuotes)?;
        if argv.is_empty() {
            return Ok(Step::Skipped);
        }
        Ok(Step::Done(argv))
    }

    fn read_multibulk_header(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Step, ProtocolError> {
        let Some(line) = header_line(buf, ProtocolError::TooBigMultibulkCount)? else {
            return Ok(Step::NeedMore);
        };
        let count = parse_i64(&buf[1..line]).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count > MAX_MULTIBULK_COUNT {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        if limits.unauthenticated && count > UNAUTH_MAX_ARGS {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        buf.advance(line + 2);
        if count <= 0 {
            return Ok(Step::Skipped);
        }
        let count = count as usize;
        self.remaining = count;
        self.argv = Vec::with_capacity(count.min(ARGV_PREALLOC_CAP));
        Ok(Step::Done(Vec::new()))
    }

    /// Reads one bulk argument; false when more bytes are needed.
    fn read_bulk(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<bool, ProtocolError> {
        let len = match self.bulk_len {
            Some(len) => len,
            None => {
                let Some(&first) = buf.first() else {
                    return Ok(false);
                };
                if first != b'$' {
                    return Err(ProtocolError::ExpectedDollar(first));
                }
                let Some(line) = header_line(buf, ProtocolError::TooBigBulkCount)? else {
                    return Ok(false);
                };
                let len = parse_i64(&buf[1..line]).ok_or(ProtocolError::InvalidBulkLength)?;
                if len < 0 || len as u64 > limits.max_bulk_len {
                    return Err(ProtocolError::InvalidBulkLength);
                }
                if limits.unauthenticated && len > UNAUTH_MAX_BULK {
                    return Err(ProtocolError::UnauthenticatedBulkLength);
                }
                buf.advance(line + 2);
                let len = len as usize;
                self.bulk_len = Some(len);
                len
            }
        };
        if buf.len() < len + 2 {
            return Ok(false);
        }
        let arg = buf.split_to(len).freeze();
        // Redis skips the two bytes after the payload without checking them.
        buf.advance(2);
        self.argv_bytes += arg.len();
        self.argv.push(arg);
        self.bulk_len = None;
        self.remaining -= 1;
        Ok(true)
    }
}

/// Most arguments a request may have to be cut by [`whole_request`].
const WHOLE_MAX_ARGS: usize = 16;

/// Cuts a multibulk request that is already whole in `buf` in one piece and puts its
/// arguments, slices of that piece, in the empty `argv`: one cut of the read buffer per
/// request rather than one per argument. False (with `buf` and `argv` untouched) for
/// anything else: a request still arriving, one with many arguments, or one breaking a
/// limit, which the argument-by-argument path then reads or refuses with its error.
fn whole_request(buf: &mut BytesMut, limits: Limits, argv: &mut Vec<Bytes>) -> bool {
    let Some((count, mut at)) = header_value(buf, 0, b'*') else {
        return false;
    };
    if count <= 0 || count as usize > WHOLE_MAX_ARGS {
        return false;
    }
    if limits.unauthenticated && count > UNAUTH_MAX_ARGS {
        return false;
    }
    let mut spans = [(0usize, 0usize); WHOLE_MAX_ARGS];
    let spans = &mut spans[..count as usize];
    for span in spans.iter_mut() {
        let Some((start, end)) = bulk_span(buf, at, limits) else {
            return false;
        };
        *span = (start, end);
        at = end + 2;
    }
    let Some((&(last_start, last_end), rest)) = spans.split_last() else {
        return false;
    };
    let mut frame = buf.split_to(at).freeze();
    argv.reserve(count as usize);
    argv.extend(rest.iter().map(|&(s, e)| frame.slice(s..e)));
    // The last argument is the piece itself, narrowed: one reference count fewer to raise
    // and to drop again.
    frame.truncate(last_end);
    frame.advance(last_start);
    argv.push(frame);
    true
}

/// Where the payload of the bulk string whose header starts at `at` lies, if it is whole
/// (with the two bytes after it, which Redis skips unchecked) and within `limits`.
fn bulk_span(buf: &[u8], at: usize, limits: Limits) -> Option<(usize, usize)> {
    let (len, start) = header_value(buf, at, b'$')?;
    if len as u64 > limits.max_bulk_len || (limits.unauthenticated && len > UNAUTH_MAX_BULK) {
        return None;
    }
    let end = start.checked_add(len as usize)?;
    (buf.len() >= end.checked_add(2)?).then_some((start, end))
}

/// The number on the header line starting at `at` with `kind` (`*` or `$`), and where the
/// line after it starts; `None` unless the line is whole and holds a plain non-negative
/// number (a sign, a leading zero or a long line is the slow path's to judge).
fn header_value(buf: &[u8], at: usize, kind: u8) -> Option<(i64, usize)> {
    let rest = buf.get(at..)?;
    if rest.first() != Some(&kind) {
        return None;
    }
    // Nearly every header holds one or two digits: read those without the loop.
    match *rest {
        [_, d @ b'1'..=b'9', b'\r', _, ..] => return Some((i64::from(d - b'0'), at + 4)),
        [_, d @ b'1'..=b'9', e @ b'0'..=b'9', b'\r', _, ..] => {
            return Some((i64::from(d - b'0') * 10 + i64::from(e - b'0'), at + 5));
        }
        _ => {}
    }
    let mut n: i64 = 0;
    // At most 18 digits, so `n` cannot overflow.
    for (i, &b) in rest.iter().enumerate().skip(1).take(19) {
        match b {
            b'0'..=b'9' if !(i == 2 && rest[1] == b'0') => n = n * 10 + i64::from(b - b'0'),
            b'\r' if i > 1 && i + 1 < rest.len() => return Some((n, at + i + 2)),
            _ => return None,
        }
    }
    None
}

enum Step {
    NeedMore,
    Skipped,
    Done(Vec<Bytes>),
}

/// Position of the `\r` ending the header line at the start of `buf`.
fn header_line(buf: &BytesMut, too_big: ProtocolError) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[..buf.len().min(INLINE_MAX_SIZE + 2)];
    match memchr(b'\r', window) {
        Some(cr) if cr + 1 < buf.len() => Ok(Some(cr)),
        Some(_) => Ok(None),
        None if buf.len() > INLINE_MAX_SIZE => Err(too_big),
        None => Ok(None),
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Parses a decimal integer the way Redis's `string2ll` does: no spaces, no `+`, no leading zeros.
pub(crate) fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (neg, body) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if body.is_empty() || body.len() > 20 || (body.len() > 1 && body[0] == b'0') {
        return None;
    }
    if body == b"0" && neg {
        return None;
    }
    let mut value: i64 = 0;
    for &b in body {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        value = if neg {
            value.checked_mul(10)?.checked_sub(d)?
        } else {
            value.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], limits: Limits) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut reader = RequestReader::new();
        let mut out = Vec::new();
        while let Some(req) = reader.next_request(&mut buf, limits)? {
            out.push(req);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_requests_are_cut_whole() {
        let reqs = read_all(
            b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
            Limits::default(),
        );
        assert_eq!(
            reqs.unwrap(),
            vec![
                vec![Bytes::from("PING")],
                vec![Bytes::from("ECHO"), Bytes::from("hi")]
            ]
        );
    }

    #[test]
    fn a_request_fed_byte_by_byte_is_parsed_once_complete() {
        let input = b"*3\r\n$4\r\nXLEN\r\n$0\r\n\r\n$3\r\nabc\r\n";
        let mut reader = RequestReader::new();
        let mut buf = BytesMut::new();
        for (i, b) in input.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = reader.next_request(&mut buf, Limits::default()).unwrap();
            if i + 1 < input.len() {
                assert!(got.is_none(), "complete too early at byte {i}");
            } else {
                assert_eq!(
                    got.unwrap(),
                    vec![Bytes::from("XLEN"), Bytes::new(), Bytes::from("abc")]
                );
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn inline_requests_split_on_spaces_and_quotes() {
        let reqs = read_all(b"PING\r\nECHO \"a b\" 'c'\n\r\n", Limits::default()).unwrap();
        assert_eq!(
            reqs,
            vec![
                vec![Bytes::from("PING")],
                vec![Bytes::from("ECHO"), Bytes::from("a b"), Bytes::from("c")]
            ]
        );
    }

    #[test]
    fn empty_and_negative_multibulk_counts_are_skipped() {
        let reqs = read_all(b"*0\r\n*-10\r\n*1\r\n$4\r\nPING\r\n", Limits::default()).unwrap();
        assert_eq!(reqs, vec![vec![Bytes::from("PING")]]);
    }

    #[test]
    fn huge_announced_count_allocates_nothing_up_front() {
        let mut buf = BytesMut::from(&b"*100000000\r\n"[..]);
        let mut reader = RequestReader::new();
        assert!(
            reader
                .next_request(&mut buf, Limits::default())
                .unwrap()
                .is_none()
        );
        assert!(reader.argv.capacity() <= ARGV_PREALLOC_CAP);
        assert!(reader.in_request());
    }

    #[test]
    fn limits_give_redis_errors() {
        let d = Limits::default();
        assert_eq!(
            read_all(b"*3000000000\r\n", d),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            read_all(b"*x\r\n", d),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            read_all(b"*1\r\n$-1\r\n", d),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            read_all(b"*1\r\n$600000000\r\n", d),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            read_all(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", d),
            Err(ProtocolError::ExpectedDollar(b'f'))
        );
        let unauth = Limits {
            unauthenticated: true,
            ..d
        };
        assert_eq!(
            read_all(b"*11\r\n", unauth),
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        );
        assert_eq!(
            read_all(b"*1\r\n$16385\r\n", unauth),
            Err(ProtocolError::UnauthenticatedBulkLength)
        );
        assert_eq!(
            read_all(&vec![b'a'; INLINE_MAX_SIZE + 1], d),
            Err(ProtocolError::TooBigInline)
        );
        let mut long = b"*".to_vec();
        long.extend(vec![b'1'; INLINE_MAX_SIZE + 1]);
        assert_eq!(read_all(&long, d), Err(ProtocolError::TooBigMultibulkCount));
        assert_eq!(
            read_all(b"ECHO \"ab\r\n", d),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn error_text_matches_redis() {
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_string(),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'f').to_string(),
            "ERR Protocol error: expected '$', got 'f'"
        );
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"12"), Some(12));
        assert_eq!(parse_i64(b"-3"), Some(-3));
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }
}
