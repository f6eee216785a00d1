//! Reply values and their RESP2 / RESP3 encoding.

use bytes::{BufMut, Bytes, BytesMut};

/// A reply to a client, independent of the protocol version it will be encoded in.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string (`+...`); must not contain CR or LF.
    Simple(Bytes),
    /// An error line without the leading `-`, e.g. `ERR syntax error`.
    Error(Bytes),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Bytes),
    /// A short bulk string held in the reply itself (a stream ID's text): built and
    /// written without an allocation. Made by [`Reply::short_bulk`].
    ShortBulk(ShortBytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// An array.
    Array(Vec<Reply>),
    /// A map in RESP3; a flat key, value, ... array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3; an array in RESP2.
    Set(Vec<Reply>),
    /// A double in RESP3; a bulk string in RESP2.
    Double(f64),
    /// A boolean in RESP3; the integer 1 or 0 in RESP2.
    Bool(bool),
    /// Verbatim text (`=` with a 3-letter format) in RESP3; a bulk string in RESP2.
    Verbatim(&'static str, Bytes),
    /// An out-of-band push in RESP3; an array in RESP2.
    Push(Vec<Reply>),
    /// Bytes already encoded for this client's protocol, written as they are.
    Raw(Bytes),
}

/// The most bytes a [`Reply::ShortBulk`] holds: what fits beside the tag in the room the
/// largest other variant takes, and more than the longest stream ID's 41.
pub const SHORT_BULK_MAX: usize = 46;

/// A short bulk string's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortBytes {
    len: u8,
    buf: [u8; SHORT_BULK_MAX],
}

impl ShortBytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl Reply {
    /// A bulk string of `b`, held in the reply when it is short.
    pub fn short_bulk(b: &[u8]) -> Reply {
        if b.len() > SHORT_BULK_MAX {
            return Reply::Bulk(Bytes::copy_from_slice(b));
        }
        let mut buf = [0u8; SHORT_BULK_MAX];
        buf[..b.len()].copy_from_slice(b);
        Reply::ShortBulk(ShortBytes {
            len: b.len() as u8,
            buf,
        })
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// A simple string from a static text.
    pub fn simple(s: &'static str) -> Reply {
        Reply::Simple(Bytes::from_static(s.as_bytes()))
    }

    /// An error reply from its full text (code first, e.g. `ERR ...`).
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(Bytes::from(text.into()))
    }

    /// An error reply from a static text.
    pub fn static_error(text: &'static str) -> Reply {
        Reply::Error(Bytes::from_static(text.as_bytes()))
    }

    /// Whether this reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding of this reply to `out`, in RESP3 when `resp3` is set.
    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Simple(s) => line(out, b'+', s),
            Reply::Error(e) => line(out, b'-', &sanitize(e)),
            Reply::Int(n) => number_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b),
            Reply::ShortBulk(b) => bulk(out, b.as_bytes()),
            Reply::Null if resp3 => out.put_slice(b"_\r\n"),
            Reply::Null => out.put_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NullArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                header(out, b'*', items.len());
                items.iter().for_each(|i| i.encode(out, resp3));
            }
            Reply::Map(pairs) => {
                if resp3 {
                    header(out, b'%', pairs.len());
                } else {
                    header(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Set(items) => {
                header(out, if resp3 { b'~' } else { b'*' }, items.len());
                items.iter().for_each(|i| i.encode(out, resp3));
            }
            Reply::Push(items) => {
                header(out, if resp3 { b'>' } else { b'*' }, items.len());
                items.iter().for_each(|i| i.encode(out, resp3));
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Reply::Verbatim(format, text) if resp3 => {
                header(out, b'=', text.len() + 4);
                out.put_slice(format.as_bytes());
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(_, text) => bulk(out, text),
            Reply::Raw(bytes) => out.put_slice(bytes),
        }
    }

    /// The encoding of this reply as a fresh buffer.
    pub fn to_bytes(&self, resp3: bool) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out, resp3);
        out.freeze()
    }
}

impl From<Bytes> for Reply {
    fn from(b: Bytes) -> Self {
        Reply::Bulk(b)
    }
}

impl From<i64> for Reply {
    fn from(n: i64) -> Self {
        Reply::Int(n)
    }
}

/// Redis replaces CR and LF in error lines with spaces so the framing cannot break.
fn sanitize(e: &Bytes) -> std::borrow::Cow<'_, [u8]> {
    if e.iter().any(|&c| c == b'\r' || c == b'\n') {
        std::borrow::Cow::Owned(
            e.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(&e[..])
    }
}

/// Writes an array header (`*len`), the same in RESP2 and RESP3, for a reply built as
/// [`Reply::Raw`].
pub fn write_array_header(out: &mut BytesMut, len: usize) {
    header(out, b'*', len);
}

/// Room enough for any array header: `*`, 20 digits and CRLF.
pub const ARRAY_HEADER_ROOM: usize = 24;

/// Writes an array header (`*len`) at the end of `room`, which holds at least
/// [`ARRAY_HEADER_ROOM`] bytes, and returns where it starts: the header of an array whose
/// length is known only once its elements follow the room, so the reply needs no second
/// buffer and copy.
pub fn write_array_header_before(room: &mut [u8], len: usize) -> usize {
    let (line, n) = number_text(b'*', len);
    let start = room.len() - n;
    room[start..].copy_from_slice(&line[..n]);
    start
}

/// Writes a bulk string, the same in RESP2 and RESP3, for a reply built as [`Reply::Raw`].
pub fn write_bulk(out: &mut BytesMut, body: &[u8]) {
    bulk(out, body);
}

fn line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(prefix);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, prefix: u8, len: usize) {
    // Most lengths are one or two digits: a fixed-size line is stored without a copy loop.
    match len {
        0..10 => out.put_slice(&[prefix, b'0' + len as u8, b'\r', b'\n']),
        10..100 => out.put_slice(&[
            prefix,
            b'0' + (len / 10) as u8,
            b'0' + (len % 10) as u8,
            b'\r',
            b'\n',
        ]),
        _ => number_line(out, prefix, len),
    }
}

/// `prefix`, `n` in decimal and CRLF, in one `put`: replies are mostly such lines (seven
/// headers for each stream entry).
fn number_line(out: &mut BytesMut, prefix: u8, n: impl itoa::Integer) {
    let (line, len) = number_text(prefix, n);
    out.put_slice(&line[..len]);
}

/// The line `prefix`, `n` in decimal, CRLF (a sign and 20 digits at most), and its length.
fn number_text(prefix: u8, n: impl itoa::Integer) -> ([u8; ARRAY_HEADER_ROOM], usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    let mut line = [0u8; ARRAY_HEADER_ROOM];
    line[0] = prefix;
    line[1..=digits.len()].copy_from_slice(digits);
    line[digits.len() + 1..digits.len() + 3].copy_from_slice(b"\r\n");
    (line, digits.len() + 3)
}

fn bulk(out: &mut BytesMut, body: &[u8]) {
    out.reserve(body.len() + 16);
    header(out, b'$', body.len());
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

/// Formats a double as Redis does (`%.17g`-like, `inf`, `-inf`, `nan`).
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf".into() } else { "-inf".into() }
    } else if d == 0.0 && d.is_sign_negative() {
        // The integer path below would lose the sign: Redis prints "-0".
        "-0".into()
    } else if d == d.trunc() && d.abs() < 1e17 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enc(r: &Reply, resp3: bool) -> String {
        String::from_utf8(r.to_bytes(resp3).to_vec()).unwrap()
    }

    /// A short bulk string is written as any bulk string, in both protocols; a longer text
    /// falls back to a shared one; holding it in place costs the reply no room.
    #[test]
    fn short_bulk_strings() {
        for resp3 in [false, true] {
            assert_eq!(enc(&Reply::short_bulk(b"1-1"), resp3), "$3\r\n1-1\r\n");
            assert_eq!(enc(&Reply::short_bulk(b""), resp3), "$0\r\n\r\n");
        }
        let long = [b'x'; SHORT_BULK_MAX + 1];
        assert!(matches!(Reply::short_bulk(&long), Reply::Bulk(b) if b[..] == long[..]));
        let most = [b'y'; SHORT_BULK_MAX];
        assert!(matches!(Reply::short_bulk(&most), Reply::ShortBulk(b) if b.as_bytes() == most));
        assert_eq!(std::mem::size_of::<Reply>(), 56);
    }

    /// A header written before its elements reads as one written in front of them.
    #[test]
    fn array_header_written_before() {
        for len in [0usize, 9, 10, 12_345, usize::MAX] {
            let mut room = [b'?'; ARRAY_HEADER_ROOM];
            let start = write_array_header_before(&mut room, len);
            let mut want = BytesMut::new();
            write_array_header(&mut want, len);
            assert_eq!(&room[start..], &want[..], "{len}");
        }
    }

    /// Header lines at the edges of the one- and two-digit forms, and integers of every sign.
    #[test]
    fn length_and_integer_lines() {
        for len in [0usize, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 123_456] {
            let body = vec![b'x'; len];
            let want = format!("${len}\r\n{}\r\n", "x".repeat(len));
            assert_eq!(enc(&Reply::Bulk(Bytes::from(body)), false), want);
            let items = vec![Reply::Null; len.min(1000)];
            let head = format!("*{}\r\n", len.min(1000));
            assert!(enc(&Reply::Array(items), false).starts_with(&head));
        }
        for n in [0i64, 7, -7, 10, -10, 99, 100, i64::MAX, i64::MIN] {
            assert_eq!(enc(&Reply::Int(n), false), format!(":{n}\r\n"));
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(&Reply::Ok, false), "+OK\r\n");
        assert_eq!(enc(&Reply::Int(-42), false), ":-42\r\n");
        assert_eq!(
            enc(&Reply::Int(i64::MIN), false),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(enc(&Reply::bulk("ab"), false), "$2\r\nab\r\n");
        assert_eq!(enc(&Reply::Null, false), "$-1\r\n");
        assert_eq!(enc(&Reply::Null, true), "_\r\n");
        assert_eq!(enc(&Reply::NullArray, false), "*-1\r\n");
        assert_eq!(enc(&Reply::error("ERR a\r\nb"), false), "-ERR a  b\r\n");
        assert_eq!(enc(&Reply::Double(1.5), true), ",1.5\r\n");
        assert_eq!(enc(&Reply::Double(3.0), false), "$1\r\n3\r\n");
        assert_eq!(enc(&Reply::Double(-0.0), true), ",-0\r\n");
        assert_eq!(enc(&Reply::Bool(true), true), "#t\r\n");
        assert_eq!(enc(&Reply::Bool(true), false), ":1\r\n");
    }

    #[test]
    fn aggregates_by_protocol() {
        let m = Reply::Map(vec![(Reply::bulk("k"), Reply::Int(1))]);
        assert_eq!(enc(&m, true), "%1\r\n$1\r\nk\r\n:1\r\n");
        assert_eq!(enc(&m, false), "*2\r\n$1\r\nk\r\n:1\r\n");
        let p = Reply::Push(vec![Reply::bulk("a")]);
        assert_eq!(enc(&p, true), ">1\r\n$1\r\na\r\n");
        assert_eq!(enc(&p, false), "*1\r\n$1\r\na\r\n");
        let v = Reply::Verbatim("txt", Bytes::from("hi"));
        assert_eq!(enc(&v, true), "=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&v, false), "$2\r\nhi\r\n");
    }

    #[test]
    fn an_independent_decoder_reads_what_we_encode() {
        use redis_protocol::resp3::decode::complete::decode_bytes;
        let r = Reply::Map(vec![(
            Reply::bulk("a"),
            Reply::Array(vec![Reply::Int(1), Reply::Null, Reply::Double(0.5)]),
        )]);
        let bytes = r.to_bytes(true);
        let (frame, used) = decode_bytes(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert!(matches!(
            frame,
            redis_protocol::resp3::types::BytesFrame::Map { .. }
        ));
    }
}
