//! The reply encoder against an independent decoder.
//!
//! A [`Reply`] built from the fuzzer's bytes is encoded in RESP2 and in RESP3, and each
//! encoding must decode, with redis-protocol's decoders, into exactly one frame that uses every
//! byte and has the shape the protocol calls for: maps and sets as flat arrays in RESP2,
//! booleans as 1 / 0, doubles as bulk strings with the same value, error lines with CR and LF
//! replaced by spaces.

use brooklet_resp::Reply;
use bytes::Bytes;
use redis_protocol::resp2::types::OwnedFrame as F2;
use redis_protocol::resp3::types::OwnedFrame as F3;

use crate::input::Input;

/// A decoded value, protocol aside; maps and sets sorted so order does not matter.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Shape>),
    Map(Vec<(Shape, Shape)>),
    Set(Vec<Shape>),
    /// A RESP3 double, by bits so NaN equals NaN.
    Double(u64),
    /// What a double must be in RESP2: a bulk string whose text has this value.
    DoubleText(u64),
    Bool(bool),
    Verbatim(Vec<u8>),
    Push(Vec<Shape>),
}

fn double_bits(d: f64) -> u64 {
    if d.is_nan() {
        f64::NAN.to_bits()
    } else {
        d.to_bits()
    }
}

fn sorted<T: std::fmt::Debug>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by_key(|x| format!("{x:?}"));
    v
}

fn expected(r: &Reply, resp3: bool) -> Shape {
    let all = |items: &[Reply]| items.iter().map(|i| expected(i, resp3)).collect();
    match r {
        Reply::Ok => Shape::Simple(b"OK".to_vec()),
        Reply::Simple(s) => Shape::Simple(s.to_vec()),
        Reply::Error(e) => Shape::Error(
            e.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                .collect(),
        ),
        Reply::Int(n) => Shape::Int(*n),
        Reply::Bulk(b) => Shape::Bulk(b.to_vec()),
        Reply::ShortBulk(b) => Shape::Bulk(b.as_bytes().to_vec()),
        Reply::Null | Reply::NullArray => Shape::Null,
        Reply::Array(items) => Shape::Array(all(items)),
        Reply::Map(pairs) if resp3 => Shape::Map(sorted(
            pairs
                .iter()
                .map(|(k, v)| (expected(k, resp3), expected(v, resp3)))
                .collect(),
        )),
        Reply::Map(pairs) => Shape::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [expected(k, resp3), expected(v, resp3)])
                .collect(),
        ),
        Reply::Set(items) if resp3 => Shape::Set(sorted(all(items))),
        Reply::Set(items) => Shape::Array(all(items)),
        Reply::Double(d) if resp3 => Shape::Double(double_bits(*d)),
        Reply::Double(d) => Shape::DoubleText(double_bits(*d)),
        Reply::Bool(b) if resp3 => Shape::Bool(*b),
        Reply::Bool(b) => Shape::Int(i64::from(*b)),
        Reply::Verbatim(_, text) if resp3 => Shape::Verbatim(text.to_vec()),
        Reply::Verbatim(_, text) => Shape::Bulk(text.to_vec()),
        Reply::Push(items) if resp3 => Shape::Push(all(items)),
        Reply::Push(items) => Shape::Array(all(items)),
        Reply::Raw(_) => unreachable!("raw replies are not generated"),
    }
}

fn from_resp2(f: F2) -> Shape {
    match f {
        F2::SimpleString(s) => Shape::Simple(s),
        F2::Error(e) => Shape::Error(e.into_bytes()),
        F2::Integer(n) => Shape::Int(n),
        F2::BulkString(b) => Shape::Bulk(b),
        F2::Array(items) => Shape::Array(items.into_iter().map(from_resp2).collect()),
        F2::Null => Shape::Null,
    }
}

fn from_resp3(f: F3) -> Shape {
    match f {
        F3::BlobString { data, .. } => Shape::Bulk(data),
        F3::SimpleString { data, .. } => Shape::Simple(data),
        F3::SimpleError { data, .. } => Shape::Error(data.into_bytes()),
        F3::Number { data, .. } => Shape::Int(data),
        F3::Double { data, .. } => Shape::Double(double_bits(data)),
        F3::Boolean { data, .. } => Shape::Bool(data),
        F3::Null => Shape::Null,
        F3::Array { data, .. } => Shape::Array(data.into_iter().map(from_resp3).collect()),
        F3::Push { data, .. } => Shape::Push(data.into_iter().map(from_resp3).collect()),
        F3::Set { data, .. } => Shape::Set(sorted(data.into_iter().map(from_resp3).collect())),
        F3::Map { data, .. } => Shape::Map(sorted(
            data.into_iter()
                .map(|(k, v)| (from_resp3(k), from_resp3(v)))
                .collect(),
        )),
        F3::VerbatimString { data, .. } => Shape::Verbatim(data),
        other => panic!("the encoder produced a frame type it never should: {other:?}"),
    }
}

/// Whether a decoded value is what was expected; a RESP2 double may be any text of its value.
fn same(expected: &Shape, got: &Shape) -> bool {
    match (expected, got) {
        (Shape::DoubleText(bits), Shape::Bulk(text)) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(|d| double_bits(d) == *bits),
        (Shape::Array(a), Shape::Array(b))
        | (Shape::Set(a), Shape::Set(b))
        | (Shape::Push(a), Shape::Push(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Shape::Map(a), Shape::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => expected == got,
    }
}

const DOUBLES: &[f64] = &[
    0.0,
    -0.0,
    1.5,
    -3.0,
    1e17,
    1e-300,
    f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    0.1,
];

/// Bytes of one of a few kinds: anything, text without CR/LF, printable text with CR/LF.
fn text(input: &mut Input<'_>, line: bool) -> Vec<u8> {
    let raw = input.bytes(20);
    if line {
        raw.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b'_' } else { b })
            .collect()
    } else {
        raw.to_vec()
    }
}

/// Error text as handlers build it: UTF-8 (from `String`), possibly with CR or LF in it.
fn error_text(input: &mut Input<'_>) -> Vec<u8> {
    input
        .bytes(20)
        .iter()
        .map(|&b| match b % 97 {
            0 => b'\r',
            1 => b'\n',
            n => b' ' + (n % 95),
        })
        .collect()
}

fn reply(input: &mut Input<'_>, depth: usize) -> Reply {
    let kinds = if depth >= 3 { 11 } else { 16 };
    match input.below(kinds) {
        0 => Reply::Ok,
        1 => Reply::Simple(Bytes::from(text(input, true))),
        2 => Reply::Error(Bytes::from(error_text(input))),
        3 => Reply::Int(match input.below(4) {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => i64::from(input.byte() as i8) * 7919,
        }),
        4 => Reply::Bulk(Bytes::from(text(input, false))),
        5 => Reply::short_bulk(&text(input, false)),
        6 => Reply::Null,
        7 => Reply::NullArray,
        8 => Reply::Double(DOUBLES[input.below(DOUBLES.len())]),
        9 => Reply::Bool(input.one_in(2)),
        10 => Reply::Verbatim("txt", Bytes::from(text(input, false))),
        11 => Reply::Array(replies(input, depth)),
        12 => Reply::Set(distinct(input)),
        13 => Reply::Push(replies(input, depth)),
        _ => Reply::Map(
            distinct(input)
                .into_iter()
                .map(|k| (k, reply(input, depth + 1)))
                .collect(),
        ),
    }
}

fn replies(input: &mut Input<'_>, depth: usize) -> Vec<Reply> {
    (0..input.below(5))
        .map(|_| reply(input, depth + 1))
        .collect()
}

/// Distinct bulk strings: the decoder's maps and sets would merge duplicates.
fn distinct(input: &mut Input<'_>) -> Vec<Reply> {
    (0..input.below(5))
        .map(|i| {
            let mut b = format!("{i}:").into_bytes();
            b.extend_from_slice(input.bytes(6));
            Reply::Bulk(Bytes::from(b))
        })
        .collect()
}

/// The `reply` target.
pub fn check_reply(data: &[u8]) {
    let mut input = Input::new(data);
    let r = reply(&mut input, 0);
    let two = r.to_bytes(false);
    let (frame, used) = redis_protocol::resp2::decode::decode(&two)
        .unwrap_or_else(|e| panic!("RESP2 encoding of {r:?} does not decode: {e:?}: {two:?}"))
        .unwrap_or_else(|| panic!("RESP2 encoding of {r:?} is incomplete: {two:?}"));
    assert_eq!(
        used,
        two.len(),
        "RESP2 encoding of {r:?} has trailing bytes"
    );
    let got = from_resp2(frame);
    assert!(
        same(&expected(&r, false), &got),
        "RESP2: {r:?} decoded as {got:?}"
    );
    let three = r.to_bytes(true);
    let (frame, used) = redis_protocol::resp3::decode::complete::decode(&three)
        .unwrap_or_else(|e| panic!("RESP3 encoding of {r:?} does not decode: {e:?}: {three:?}"))
        .unwrap_or_else(|| panic!("RESP3 encoding of {r:?} is incomplete: {three:?}"));
    assert_eq!(
        used,
        three.len(),
        "RESP3 encoding of {r:?} has trailing bytes"
    );
    let got = from_resp3(frame);
    assert!(
        same(&expected(&r, true), &got),
        "RESP3: {r:?} decoded as {got:?}"
    );
}
