//! Redis's serialization format (RDB), as an interchange format: DUMP payloads written and
//! read, RESTORE's checks, and whole RDB files read for `--import-rdb`. Brooklet's own
//! storage is `brooklet-persistence`'s and knows nothing of this.
//!
//! Reading covers what Redis 5 to 7.4 write for the two kinds of value Brooklet holds
//! (strings: raw, integer-encoded, LZF-compressed; streams: types 15, 19 and 21, with
//! consumer groups, consumers and pending entries); other types are recognised, so a file
//! can skip them, but not loaded. Writing produces RDB version 10, the newest Redis 7.0
//! reads, with streams as type 19.
//!
//! `crc64` and `lzf` are the checksum and compression; `reader` and `writer` the format's
//! primitives; `listpack` the node layout inside a stream; `stream_decode` and
//! `stream_encode` a stream's value; `value` a DUMP payload; `file` a whole RDB file.

mod crc64;
pub(crate) use crc64::crc64;
pub(crate) mod file;
mod listpack;
mod lzf;
mod reader;
mod stream_decode;
mod stream_encode;
pub(crate) mod value;
mod writer;

use std::fmt;

/// Why RDB bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RdbError {
    /// The bytes ended before the value did.
    Truncated,
    /// The bytes are not a valid encoding (what is wrong with them).
    Corrupt(String),
    /// A type Brooklet does not hold (its RDB type number).
    Unsupported(u8),
}

impl RdbError {
    pub(crate) fn corrupt(what: &str) -> Self {
        RdbError::Corrupt(what.to_string())
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbError::Truncated => f.write_str("unexpected end of data"),
            RdbError::Corrupt(what) => f.write_str(what),
            RdbError::Unsupported(t) => {
                write!(
                    f,
                    "a value of type {} ({t}), which Brooklet does not hold",
                    type_name(*t)
                )
            }
        }
    }
}

/// The type a value of RDB type `t` has in Redis (TYPE's answer), or "unknown".
pub(crate) fn type_name(t: u8) -> &'static str {
    match t {
        0 => "string",
        1 | 10 | 14 | 18 => "list",
        2 | 11 | 20 => "set",
        3 | 5 | 12 | 17 => "zset",
        4 | 9 | 13 | 16 | 22..=25 => "hash",
        6 | 7 => "module",
        15 | 19 | 21 => "stream",
        _ => "unknown",
    }
}
