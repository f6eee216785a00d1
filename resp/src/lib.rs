//! The Redis wire protocol as Brooklet speaks it.
//!
//! This crate owns three things and nothing else:
//! - [`RequestReader`]: cuts complete client requests (RESP multibulk or inline) out of a
//!   connection's read buffer, enforcing the protocol limits before anything is allocated;
//! - [`Reply`]: a reply value and its RESP2 / RESP3 encoding;
//! - [`Args`]: a cursor over a request's arguments for typed parsing.
//!
//! It knows nothing of sockets, tokio, commands or storage: bytes in, values out.

mod args;
mod inline;
mod reply;
mod request;

pub use args::{ArgError, Args, parse_int, upper_keyword};
pub use reply::{
    ARRAY_HEADER_ROOM, Reply, SHORT_BULK_MAX, ShortBytes, write_array_header,
    write_array_header_before, write_bulk,
};
pub use request::{Limits, ProtocolError, RequestReader};
