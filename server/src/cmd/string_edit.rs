//! APPEND and SETRANGE: a string that exists is edited in place and only the bytes written
//! are logged, so a string built or patched by many commands costs time and log bytes in
//! proportion to what each writes, as Redis's in-place edits do, not to the string's length.

use bytes::{Bytes, BytesMut};

use brooklet_persistence::StringEdit;
use brooklet_resp::Reply;

use super::string_args::{TOO_LONG, Ttl, int_of};
use super::string_write::{Written, announce, max_len, put_as};
use super::{Ctx, store_error};
use crate::error::CommandError;
use crate::keyspace::{StringForm, Value};
use crate::notify::EventClass;
use crate::small_bytes::{INLINE, SmallBytes};

/// Above this length an edited string gets this much spare room rather than as much again
/// (Redis's rule for a string it grows).
const ROOM_STEP: usize = 1 << 20;

/// APPEND key value.
pub(super) fn append(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    // Redis appends in place to a string that exists; a new one is written whole.
    edit(
        ctx,
        &argv[1],
        StringEdit::Append(&argv[2]),
        "append",
        StringForm::Whole,
    )
}

/// SETRANGE key offset value.
pub(super) fn setrange(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let offset = int_of(&argv[2])?;
    let Ok(at) = usize::try_from(offset) else {
        return Err(CommandError::msg("ERR offset is out of range"));
    };
    // Redis edits the string in place, or makes a new one raw.
    edit(
        ctx,
        &argv[1],
        StringEdit::Write {
            at,
            patch: &argv[3],
        },
        "setrange",
        StringForm::Edited,
    )
}

/// Edits the string at `key`: a new one is created with `created_form`, one that exists is
/// edited in place; then `event` is published. Replies with the new length.
fn edit(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    edit: StringEdit<'_>,
    event: &'static str,
    created_form: StringForm,
) -> Result<Reply, CommandError> {
    let max = max_len(ctx);
    let db = ctx.db();
    let (written, after) = {
        let mut shard = db.lock(key);
        let len = match ctx.load_string(&mut shard, key)? {
            Some(v) => Some(v.string()?.len()),
            None => None,
        };
        // An empty SETRANGE changes nothing, not even a missing key (Redis replies first).
        if let StringEdit::Write { patch: &[], .. } = edit {
            return Ok(Reply::Int(len.unwrap_or(0) as i64));
        }
        if edit.end(len.unwrap_or(0)) as u64 > max {
            return Err(TOO_LONG);
        }
        let after = edit.len_after(len.unwrap_or(0));
        match len {
            None => {
                let mut value = vec![0u8; after];
                edit.apply(&mut value, 0);
                let value = SmallBytes::from_bytes(Bytes::from(value));
                let written = put_as(ctx, &mut shard, key, value, Ttl::Keep, created_form)?;
                (written, after)
            }
            Some(len) => {
                let seq = ctx
                    .shared
                    .store
                    .edit_string(ctx.client.db as u32, key, len as u64, edit)
                    .map_err(store_error)?;
                ctx.write_seq = ctx.write_seq.max(seq);
                db.note_write(key, seq);
                if let Some(Value::String(v, _, form)) = shard.get_mut(key) {
                    *v = edited(std::mem::replace(v, SmallBytes::copy_of(b"")), edit);
                    // Redis edits a string that exists in place, which leaves it raw.
                    *form = StringForm::Edited;
                }
                (Written { created: false }, after)
            }
        }
    };
    announce(ctx, key, &written, &[(EventClass::String, event)]);
    Ok(Reply::Int(after as i64))
}

/// `value` with `edit` applied: in the same buffer when nothing else holds the value and it
/// has room (or can grow), else in a new one with room to spare for the next edits.
fn edited(value: SmallBytes, edit: StringEdit<'_>) -> SmallBytes {
    let len = value.len();
    let after = edit.len_after(len);
    if after <= INLINE {
        let mut data = [0u8; INLINE];
        data[..len].copy_from_slice(&value);
        edit.apply(&mut data, len);
        return SmallBytes::copy_of(&data[..after]);
    }
    let unique = match value {
        SmallBytes::Shared(b) => b.try_into_mut().map_err(SmallBytes::Shared),
        inline => Err(inline),
    };
    let mut buf = match unique {
        Ok(buf) => buf,
        Err(held) => {
            let mut buf = BytesMut::with_capacity(after + after.min(ROOM_STEP));
            buf.extend_from_slice(&held);
            buf
        }
    };
    edit.apply_to(&mut buf);
    SmallBytes::Shared(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_reuse_one_buffer_when_nothing_else_holds_it() {
        let mut v = SmallBytes::copy_of(b"0123456789");
        v = edited(v, StringEdit::Append(b"abcdefghijklmnop"));
        assert_eq!(&v[..], b"0123456789abcdefghijklmnop");
        let first = v.as_ptr();
        for _ in 0..10 {
            v = edited(v, StringEdit::Append(b"x"));
        }
        v = edited(
            v,
            StringEdit::Write {
                at: 1,
                patch: b"AB",
            },
        );
        assert_eq!(&v[..], b"0AB3456789abcdefghijklmnopxxxxxxxxxx");
        assert_eq!(v.as_ptr(), first, "edited in place");
        // A reader holding the bytes keeps them as they were.
        let SmallBytes::Shared(held) = v.clone() else {
            panic!("a long value is shared")
        };
        v = edited(
            v,
            StringEdit::Write {
                at: 40,
                patch: b"y",
            },
        );
        assert_eq!(&held[..], &v[..36]);
        assert_eq!(&v[36..], b"\0\0\0\0y");
        assert_eq!(held.len(), 36);
        assert_ne!(v.as_ptr(), held.as_ptr());
    }

    #[test]
    fn short_results_stay_inline() {
        let v = edited(SmallBytes::copy_of(b"ab"), StringEdit::Append(b"cd"));
        assert!(matches!(v, SmallBytes::Inline { .. }));
        assert_eq!(&v[..], b"abcd");
        let v = edited(v, StringEdit::Write { at: 6, patch: b"z" });
        assert_eq!(&v[..], b"abcd\0\0z");
        let v = edited(v, StringEdit::Write { at: 1, patch: b"B" });
        assert_eq!(&v[..], b"aBcd\0\0z");
    }
}
