//! APPEND: a string that exists grows in place and only the bytes added are logged, so a
//! string built by many appends costs time and log bytes in proportion to its length, as
//! Redis's in-place append does, not to its square.

use bytes::{Bytes, BytesMut};

use brooklet_resp::Reply;

use super::string_args::{TOO_LONG, Ttl};
use super::string_write::{Written, announce, max_len, put};
use super::{Ctx, store_error};
use crate::error::CommandError;
use crate::keyspace::{StringForm, Value};
use crate::notify::EventClass;
use crate::small_bytes::{INLINE, SmallBytes};

/// Above this length a grown string gets this much spare room rather than as much again
/// (Redis's rule for a string it appends to).
const ROOM_STEP: usize = 1 << 20;

/// APPEND key value.
pub(super) fn append(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, add) = (&argv[1], &argv[2]);
    let max = max_len(ctx);
    let db = ctx.db();
    let (written, len) = {
        let mut shard = db.lock(key);
        let at = match ctx.load_string(&mut shard, key)? {
            Some(v) => Some(v.string()?.len()),
            None => None,
        };
        let len = at.unwrap_or(0) + add.len();
        if len as u64 > max {
            return Err(TOO_LONG);
        }
        let Some(at) = at else {
            // A new string is written whole.
            let written = put(ctx, &mut shard, key, SmallBytes::copy_of(add), Ttl::Keep)?;
            drop(shard);
            return Ok(announced(ctx, key, &written, len));
        };
        let seq = ctx
            .shared
            .store
            .append_string(ctx.client.db as u32, key, at as u64, add)
            .map_err(store_error)?;
        ctx.write_seq = ctx.write_seq.max(seq);
        db.note_write(key, seq);
        if let Some(Value::String(v, _, form)) = shard.get_mut(key) {
            *v = grown(std::mem::replace(v, SmallBytes::copy_of(b"")), add);
            // Redis appends in place to a string that exists, which leaves it raw.
            *form = StringForm::Edited;
        }
        (Written { created: false }, len)
    };
    Ok(announced(ctx, key, &written, len))
}

/// Publishes APPEND's events once the shard lock is let go; the reply is the new length.
fn announced(ctx: &mut Ctx<'_>, key: &Bytes, written: &Written, len: usize) -> Reply {
    announce(ctx, key, written, &[(EventClass::String, "append")]);
    Reply::Int(len as i64)
}
/// `value` with `add` after it: in the same buffer when nothing else holds the value and it
/// has room (or can grow), else in a new one with room to spare for the next appends.
fn grown(value: SmallBytes, add: &[u8]) -> SmallBytes {
    let len = value.len() + add.len();
    if len <= INLINE {
        let mut joined = [0u8; INLINE];
        joined[..value.len()].copy_from_slice(&value);
        joined[value.len()..len].copy_from_slice(add);
        return SmallBytes::copy_of(&joined[..len]);
    }
    let unique = match value {
        SmallBytes::Shared(b) => b.try_into_mut().map_err(SmallBytes::Shared),
        inline => Err(inline),
    };
    let mut buf = match unique {
        Ok(buf) => buf,
        Err(held) => {
            let mut buf = BytesMut::with_capacity(len + len.min(ROOM_STEP));
            buf.extend_from_slice(&held);
            buf
        }
    };
    buf.extend_from_slice(add);
    SmallBytes::Shared(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_grow_one_buffer_when_nothing_else_holds_it() {
        let mut v = SmallBytes::copy_of(b"0123456789");
        v = grown(v, b"abcdefghijklmnop");
        assert_eq!(&v[..], b"0123456789abcdefghijklmnop");
        let first = v.as_ptr();
        for _ in 0..10 {
            v = grown(v, b"x");
        }
        assert_eq!(v.len(), 36);
        assert_eq!(v.as_ptr(), first, "grown in place");
        // A reader holding the bytes keeps them as they were.
        let SmallBytes::Shared(held) = v.clone() else {
            panic!("a long value is shared")
        };
        v = grown(v, b"y");
        assert_eq!(&held[..], &v[..36]);
        assert_eq!(held.len(), 36);
        assert_ne!(v.as_ptr(), held.as_ptr());
        assert!(grown(SmallBytes::copy_of(b"ab"), b"cd").len() == 4);
    }
}
