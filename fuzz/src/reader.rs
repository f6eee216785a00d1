//! The request reader on arbitrary bytes, whole and split into arbitrary chunks.
//!
//! Checked: the reader never panics; never returns an empty request; never holds or returns
//! more bytes than it was given; gives the same requests and the same error however the bytes
//! are split across reads (whole, in random chunks, byte by byte); and every request it
//! returns, encoded again as a multibulk, reads back as the same request.

use brooklet_resp::{Limits, ProtocolError, RequestReader};
use bytes::{Bytes, BytesMut};

use crate::input::{Chunks, Input};

/// Past Redis's 64 KiB line limit an unterminated line is an error, so whether a long line is
/// refused depends on how much of it had arrived when the reader looked, as in Redis. Below it
/// the outcome must not depend on the split.
const SPLIT_INDEPENDENT_UP_TO: usize = 64 * 1024;

/// Inputs up to this size are also fed one byte at a time.
const BYTEWISE_UP_TO: usize = 4096;

/// What the reader made of a byte string.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The requests returned, in order.
    pub requests: Vec<Vec<Bytes>>,
    /// The protocol error that ended reading, if any.
    pub error: Option<ProtocolError>,
    /// Bytes left in the read buffer after the last request when no error ended reading.
    pub left: Option<usize>,
}

/// Feeds `input` to a fresh reader in chunks of `chunk()` bytes, cutting every request after
/// each chunk as a connection does after each read.
pub fn read(input: &[u8], limits: Limits, mut chunk: impl FnMut() -> usize) -> Outcome {
    let mut reader = RequestReader::new();
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut returned = 0;
    let mut fed = 0;
    while fed < input.len() {
        let end = fed.saturating_add(chunk()).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let before = buf.len();
            match reader.next_request(&mut buf, limits) {
                Ok(Some(argv)) => {
                    assert!(!argv.is_empty(), "an empty request was returned");
                    returned += argv.iter().map(Bytes::len).sum::<usize>();
                    requests.push(argv);
                }
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        requests,
                        error: Some(error),
                        left: None,
                    };
                }
            }
            assert!(buf.len() <= before, "the reader grew the read buffer");
        }
        // Arguments are cut out of the input (quoted inline ones only shrink when unescaped),
        // so what was returned or is held can never exceed what was consumed.
        let consumed = fed - buf.len();
        assert!(
            returned + reader.buffered_bytes() <= consumed,
            "returned {returned} + held {} bytes out of {consumed} consumed",
            reader.buffered_bytes()
        );
    }
    Outcome {
        requests,
        error: None,
        left: Some(buf.len()),
    }
}

/// The checks every reader target shares: the same outcome for every split, and the
/// multibulk round trip of what was read. Returns the outcome of the whole input.
pub fn check_reader(payload: &[u8], limits: Limits, seed: u8) -> Outcome {
    let whole = read(payload, limits, || usize::MAX);
    if payload.len() <= SPLIT_INDEPENDENT_UP_TO {
        let mut chunks = Chunks::new(u64::from(seed));
        let chunked = read(payload, limits, || chunks.next(64));
        assert_eq!(whole, chunked, "a different outcome when read in chunks");
        if payload.len() <= BYTEWISE_UP_TO {
            let bytewise = read(payload, limits, || 1);
            assert_eq!(
                whole, bytewise,
                "a different outcome when read byte by byte"
            );
        }
    }
    let again = read(
        &encode_multibulk(&whole.requests),
        Limits::default(),
        || usize::MAX,
    );
    assert_eq!(
        (&again.requests, &again.error, again.left),
        (&whole.requests, &None, Some(0)),
        "the requests read, encoded again, read differently"
    );
    whole
}

/// The requests as RESP multibulks, as a client library would send them.
pub fn encode_multibulk(requests: &[Vec<Bytes>]) -> Vec<u8> {
    let mut out = Vec::new();
    for argv in requests {
        out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
        for arg in argv {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// The `reader` target: arbitrary bytes, after two bytes that choose the limits in force and
/// how the rest is split.
pub fn check_requests(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let seed = input.byte();
    let max_bulk_len = match (flags >> 1) & 3 {
        0 => Limits::default().max_bulk_len,
        1 => 0,
        2 => 16,
        _ => 1024,
    };
    let limits = Limits {
        max_bulk_len,
        unauthenticated: flags & 1 != 0,
    };
    check_reader(input.rest(), limits, seed);
}
