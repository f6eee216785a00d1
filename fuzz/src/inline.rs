//! Inline requests (`PING`, `ECHO "a b"`) against a line-for-line port of Redis's parser.
//!
//! Redis cuts an inline request at `\n` (dropping one `\r` before it) and splits it with
//! `sdssplitargs` (src/sds.c). [`sdssplitargs`] below is that function transcribed with its C
//! string semantics (a 0 byte past the end), so the reader's arguments can be compared with
//! what Redis would make of the same line. Lines holding a NUL byte are left out of the
//! comparison: Redis looks for the newline with `strchr`, which stops at the NUL, so it never
//! finishes such a line (it waits until the 64 KiB limit closes the client), and copying that
//! would be a bug, not compatibility.

use brooklet_resp::{Limits, ProtocolError};

use crate::input::Input;
use crate::reader;

/// Redis's `PROTO_INLINE_MAX_SIZE`.
const INLINE_MAX_SIZE: usize = 64 * 1024;

/// The requests Redis would read from inline lines, up to the first line it has no opinion
/// on (a line holding a NUL byte, or one starting with `*`, which is a multibulk).
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    /// The requests, in order.
    pub requests: Vec<Vec<Vec<u8>>>,
    /// The protocol error that ends reading, if the lines read reach one.
    pub error: Option<ProtocolError>,
    /// Whether reading stopped at a line the model has no opinion on.
    pub partial: bool,
}

/// What Redis's `processInlineBuffer` makes of `buf`, line by line.
pub fn redis_inline(buf: &[u8]) -> Expected {
    let mut expected = Expected {
        requests: Vec::new(),
        error: None,
        partial: false,
    };
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > INLINE_MAX_SIZE {
                expected.error = Some(ProtocolError::TooBigInline);
            }
            break;
        };
        let mut line = &rest[..nl];
        if rest[0] == b'*' || line.contains(&0) {
            expected.partial = true;
            break;
        }
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        match sdssplitargs(line) {
            None => {
                expected.error = Some(ProtocolError::UnbalancedQuotes);
                break;
            }
            Some(argv) if argv.is_empty() => {}
            Some(argv) => expected.requests.push(argv),
        }
        pos += nl + 1;
    }
    expected
}

/// C's `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Redis's `sdssplitargs`, statement for statement, over a line without NUL bytes; `None` is
/// its NULL (unbalanced quotes, or a closing quote not followed by a space).
pub fn sdssplitargs(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // `*p` in C: the byte at p, and the terminating 0 past the end.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    let mut vector = Vec::new();
    loop {
        while at(p) != 0 && is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(vector);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut current = Vec::new();
        while !done {
            if inq {
                if at(p) == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    current.push(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
                    p += 3;
                } else if at(p) == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        c => c,
                    });
                } else if at(p) == b'"' {
                    // The closing quote must be followed by a space or nothing at all.
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if at(p) == 0 {
                    return None;
                } else {
                    current.push(at(p));
                }
            } else if insq {
                if at(p) == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if at(p) == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if at(p) == 0 {
                    return None;
                } else {
                    current.push(at(p));
                }
            } else {
                match at(p) {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => current.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        vector.push(current);
    }
}

/// Compares what the reader made of `payload` with what Redis would have.
pub fn compare_with_redis(payload: &[u8], outcome: &reader::Outcome) {
    let expected = redis_inline(payload);
    let got: Vec<Vec<Vec<u8>>> = outcome
        .requests
        .iter()
        .map(|argv| argv.iter().map(|a| a.to_vec()).collect())
        .collect();
    if expected.partial {
        assert!(
            got.len() >= expected.requests.len()
                && got[..expected.requests.len()] == expected.requests[..],
            "inline requests differ from Redis's: got {got:?}, Redis {:?}",
            expected.requests
        );
    } else {
        assert_eq!(
            (&got, &outcome.error),
            (&expected.requests, &expected.error),
            "inline requests differ from Redis's"
        );
    }
}

/// The `reader_inline` target: lines of arbitrary bytes (a `*` starting a line is replaced by
/// a space so every line is inline), checked like the `reader` target and against
/// [`sdssplitargs`].
pub fn check_inline(data: &[u8]) {
    let mut input = Input::new(data);
    let seed = input.byte();
    let mut payload = input.rest().to_vec();
    for i in 0..payload.len() {
        if payload[i] == b'*' && (i == 0 || payload[i - 1] == b'\n') {
            payload[i] = b' ';
        }
    }
    let outcome = reader::check_reader(&payload, Limits::default(), seed);
    compare_with_redis(&payload, &outcome);
}
