//! RESP3 frames sent as requests.
//!
//! A client's request is always an array of bulk strings, whatever protocol HELLO chose; a
//! RESP3 client (or a confused one) may still send any RESP3 type. This target builds valid
//! RESP3 frames of every type from the fuzzer's bytes (maps, sets, pushes, attributes,
//! doubles, big numbers, verbatim strings, streamed strings and aggregates), optionally
//! corrupts them, and feeds them to the reader: on top of the `reader` checks, the first frame
//! must be read as Redis reads it. An array of bulk strings is a request; any other array
//! element is `expected '$', got 'X'`; `*?` and `$?` are invalid lengths; any other type
//! starts an inline request, split as Redis splits it.

use brooklet_resp::{Limits, ProtocolError};

use crate::inline;
use crate::input::Input;
use crate::reader;

/// A RESP3 value as it goes on the wire.
#[derive(Debug, Clone)]
enum Frame {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    BulkError(Vec<u8>),
    Verbatim(Vec<u8>),
    Null,
    Bool(bool),
    Double(&'static str),
    BigNumber(Vec<u8>),
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    /// Attributes, then the value they describe.
    Attribute(Vec<(Frame, Frame)>, Box<Frame>),
    /// `$?` then `;len` chunks, ended by `;0`.
    StreamedString(Vec<Vec<u8>>),
    /// `*?` then elements, ended by `.`.
    StreamedArray(Vec<Frame>),
}

const DOUBLES: &[&str] = &["1.5", "-0", "inf", "-inf", "nan", "1e300", "3"];

/// Text without CR or LF, for line-framed types.
fn line(input: &mut Input<'_>) -> Vec<u8> {
    input
        .bytes(12)
        .iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b'x' } else { b })
        .collect()
}

fn frame(input: &mut Input<'_>, depth: usize) -> Frame {
    let kinds = if depth >= 3 { 10 } else { 17 };
    // Bulk strings are what requests are made of: weigh them up.
    match input.below(kinds + 6) {
        0 => Frame::Simple(line(input)),
        1 => Frame::Error(line(input)),
        2 => Frame::Int(i64::from(input.byte() as i8) * 1_000_003),
        3 => Frame::BulkError(input.bytes(16).to_vec()),
        4 => Frame::Verbatim(input.bytes(16).to_vec()),
        5 => Frame::Null,
        6 => Frame::Bool(input.one_in(2)),
        7 => Frame::Double(DOUBLES[input.below(DOUBLES.len())]),
        8 => Frame::BigNumber(b"3492890328409238509324850943850943825024385".to_vec()),
        9 => Frame::StreamedString(
            (0..input.below(3))
                .map(|_| input.bytes(8).to_vec())
                .collect(),
        ),
        10 => Frame::Array(frames(input, depth)),
        11 => Frame::Map(pairs(input, depth)),
        12 => Frame::Set(frames(input, depth)),
        13 => Frame::Push(frames(input, depth)),
        14 => Frame::Attribute(pairs(input, depth), Box::new(frame(input, depth + 1))),
        15 => Frame::StreamedArray(frames(input, depth)),
        16 => Frame::Array(
            (0..1 + input.below(4))
                .map(|_| Frame::Bulk(input.bytes(12).to_vec()))
                .collect(),
        ),
        _ => Frame::Bulk(input.bytes(24).to_vec()),
    }
}

fn frames(input: &mut Input<'_>, depth: usize) -> Vec<Frame> {
    (0..input.below(5))
        .map(|_| frame(input, depth + 1))
        .collect()
}

fn pairs(input: &mut Input<'_>, depth: usize) -> Vec<(Frame, Frame)> {
    (0..input.below(3))
        .map(|_| (frame(input, depth + 1), frame(input, depth + 1)))
        .collect()
}

fn encode(f: &Frame, out: &mut Vec<u8>) {
    let header = |out: &mut Vec<u8>, prefix: char, n: usize| {
        out.extend_from_slice(format!("{prefix}{n}\r\n").as_bytes());
    };
    match f {
        Frame::Simple(s) => line_frame(out, b'+', s),
        Frame::Error(s) => line_frame(out, b'-', s),
        Frame::Int(n) => line_frame(out, b':', n.to_string().as_bytes()),
        Frame::Bulk(b) => blob(out, b'$', b),
        Frame::BulkError(b) => blob(out, b'!', b),
        Frame::Verbatim(b) => {
            let mut body = b"txt:".to_vec();
            body.extend_from_slice(b);
            blob(out, b'=', &body);
        }
        Frame::Null => out.extend_from_slice(b"_\r\n"),
        Frame::Bool(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Frame::Double(d) => line_frame(out, b',', d.as_bytes()),
        Frame::BigNumber(n) => line_frame(out, b'(', n),
        Frame::Array(items) => {
            header(out, '*', items.len());
            items.iter().for_each(|i| encode(i, out));
        }
        Frame::Set(items) => {
            header(out, '~', items.len());
            items.iter().for_each(|i| encode(i, out));
        }
        Frame::Push(items) => {
            header(out, '>', items.len());
            items.iter().for_each(|i| encode(i, out));
        }
        Frame::Map(pairs) => {
            header(out, '%', pairs.len());
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
        }
        Frame::Attribute(pairs, value) => {
            header(out, '|', pairs.len());
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
            encode(value, out);
        }
        Frame::StreamedString(chunks) => {
            out.extend_from_slice(b"$?\r\n");
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                blob(out, b';', c);
            }
            out.extend_from_slice(b";0\r\n");
        }
        Frame::StreamedArray(items) => {
            out.extend_from_slice(b"*?\r\n");
            items.iter().for_each(|i| encode(i, out));
            out.extend_from_slice(b".\r\n");
        }
    }
}

fn line_frame(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn blob(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// What Redis does with the first frame of a request stream.
enum First {
    /// It is a request with these arguments.
    Request(Vec<Vec<u8>>),
    /// It ends the connection with this error.
    Error(ProtocolError),
    /// It is skipped or read as inline, which [`inline::redis_inline`] decides.
    Inline,
    /// It is skipped (`*0`), so it says nothing about the first request.
    Skipped,
}

fn first(f: &Frame) -> First {
    match f {
        Frame::StreamedArray(_) => First::Error(ProtocolError::InvalidMultibulkLength),
        Frame::Array(items) if items.is_empty() => First::Skipped,
        Frame::Array(items) => {
            let mut args = Vec::new();
            for item in items {
                match item {
                    Frame::Bulk(b) => args.push(b.clone()),
                    Frame::StreamedString(_) => {
                        return First::Error(ProtocolError::InvalidBulkLength);
                    }
                    other => {
                        let mut bytes = Vec::new();
                        encode(other, &mut bytes);
                        return First::Error(ProtocolError::ExpectedDollar(bytes[0]));
                    }
                }
            }
            First::Request(args)
        }
        _ => First::Inline,
    }
}

/// The `reader_resp3` target.
pub fn check_resp3(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let seed = input.byte();
    let frames: Vec<Frame> = (0..1 + input.below(4))
        .map(|_| frame(&mut input, 0))
        .collect();
    let mut payload = Vec::new();
    frames.iter().for_each(|f| encode(f, &mut payload));
    // Corruption: the remaining input bytes overwrite bytes at positions they choose.
    let corrupt = flags & 2 != 0 && !payload.is_empty();
    if corrupt {
        while !input.is_empty() {
            let at = input.below(payload.len());
            payload[at] = input.byte();
        }
    }
    let limits = Limits {
        unauthenticated: flags & 1 != 0,
        ..Limits::default()
    };
    let outcome = reader::check_reader(&payload, limits, seed);
    if corrupt || limits.unauthenticated {
        return;
    }
    match first(&frames[0]) {
        First::Request(args) => {
            let got: Option<Vec<Vec<u8>>> = outcome
                .requests
                .first()
                .map(|r| r.iter().map(|a| a.to_vec()).collect());
            assert_eq!(
                got,
                Some(args),
                "an array of bulk strings was not read as a request"
            );
        }
        First::Error(e) => {
            assert!(
                outcome.requests.is_empty(),
                "a request before the bad frame"
            );
            assert_eq!(outcome.error, Some(e), "not the error Redis gives");
        }
        First::Inline => {
            let mut end = payload.len();
            if let Some(nl) = payload.iter().position(|&b| b == b'\n') {
                end = nl + 1;
            }
            let first_line = &payload[..end];
            let expected = inline::redis_inline(first_line);
            if !expected.partial && first_line.ends_with(b"\n") {
                let got = reader::read(first_line, limits, || usize::MAX);
                inline::compare_with_redis(first_line, &got);
                match (got.requests.first(), &got.error) {
                    (Some(request), _) => assert_eq!(
                        outcome.requests.first(),
                        Some(request),
                        "the first line read differently inside the stream"
                    ),
                    (None, Some(e)) => assert_eq!(
                        (outcome.requests.len(), outcome.error.as_ref()),
                        (0, Some(e)),
                        "the first line's error differs inside the stream"
                    ),
                    (None, None) => {}
                }
            }
        }
        First::Skipped => {}
    }
}
