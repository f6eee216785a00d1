//! How a string command writes: under the key's shard lock it computes the new value,
//! persists it (one tail-log record, `Store::write_string`; a SET over a stream one fjall
//! batch) with the lock still held, updates memory, and once the lock is let go publishes
//! its events and marks the key changed. Shared by the string commands (`strings.rs`,
//! `string_edit.rs`) and RESTORE.

use bytes::Bytes;

use brooklet_persistence::Deadline;

use super::string_args::Ttl;
use super::{Ctx, store_error};
use crate::access::Access;
use crate::error::CommandError;
use crate::keyspace::{Shard, StringForm, Value};
use crate::notify::EventClass;
use crate::publish::keyspace_events;
use crate::small_bytes::SmallBytes;

/// Longest key a string may have: the store's keys are the key plus 8 bytes, and fjall
/// refuses keys over 64 KiB.
const MAX_KEY_LEN: usize = 65_000;

/// Refuses a key the store could not hold.
pub(super) fn check_key(key: &[u8]) -> Result<(), CommandError> {
    if key.len() > MAX_KEY_LEN {
        return Err(CommandError::text(format!(
            "ERR key longer than {MAX_KEY_LEN} bytes (a Brooklet storage limit)"
        )));
    }
    Ok(())
}

/// `proto-max-bulk-len`: the longest string a command may build.
pub(super) fn max_len(ctx: &Ctx<'_>) -> u64 {
    ctx.shared.config().proto_max_bulk_len
}

/// What a write did, for the events published once the shard lock is let go.
pub(crate) struct Written {
    /// The key did not exist before.
    pub(crate) created: bool,
}

/// Stores string `value`, written whole, at `key` in its locked shard, replacing whatever
/// was there (a stream is removed from the store first), and applies `ttl` to the key's
/// deadline.
pub(crate) fn put(
    ctx: &mut Ctx<'_>,
    shard: &mut Shard,
    key: &Bytes,
    value: impl Into<SmallBytes>,
    ttl: Ttl,
) -> Result<Written, CommandError> {
    put_as(ctx, shard, key, value.into(), ttl, StringForm::Whole)
}

/// [`put`] of a value in the given form.
pub(super) fn put_as(
    ctx: &mut Ctx<'_>,
    shard: &mut Shard,
    key: &Bytes,
    value: SmallBytes,
    ttl: Ttl,
    form: StringForm,
) -> Result<Written, CommandError> {
    check_key(key)?;
    let db = ctx.db();
    let dbn = ctx.client.db as u32;
    let store = &ctx.shared.store;
    // The deadline the key has now matters only when the write keeps or clears it (and a
    // shard without deadlines answers without a lookup).
    let had_deadline = match ttl {
        Ttl::At(_) => None,
        Ttl::Clear | Ttl::Keep => shard.deadline(key),
    };
    // One lookup for a key that exists, two for a new one.
    let slot = shard.get_mut(key);
    let seq = match slot.as_deref() {
        // A stream replaced by a string: its removal and the string are one batch.
        Some(Value::Stream(stream, _)) => {
            let deadline = match ttl {
                Ttl::Clear => None,
                Ttl::Keep => had_deadline,
                Ttl::At(ms) => Some(ms),
            };
            store.replace_stream_with_string(dbn, key, stream, &value, deadline)
        }
        _ => {
            let deadline = match ttl {
                // Memory knows every deadline: a key without one needs no removal (a
                // tombstone in `expires` for every plain SET).
                Ttl::Clear if had_deadline.is_none() => Deadline::Keep,
                Ttl::Clear => Deadline::Clear,
                Ttl::Keep => Deadline::Keep,
                Ttl::At(ms) => Deadline::At(ms),
            };
            store.write_string(dbn, key, &value, deadline)
        }
    }
    .map_err(store_error)?;
    ctx.write_seq = ctx.write_seq.max(seq);
    db.note_write(key, seq);
    let created = match slot {
        Some(slot) => {
            *slot = Value::String(value, Access::new(), form);
            false
        }
        None => {
            shard.insert(&key[..], Value::String(value, Access::new(), form));
            true
        }
    };
    let delta = match ttl {
        Ttl::Keep => 0,
        Ttl::Clear if had_deadline.is_none() => 0,
        Ttl::Clear => shard.set_deadline(key, None),
        Ttl::At(ms) => shard.set_deadline(key, Some(ms)),
    };
    db.note_deadlines(delta);
    Ok(Written { created })
}

/// The string at `key` in a locked shard: None when missing, `-WRONGTYPE` for a stream.
pub(super) fn string_in(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
) -> Result<Option<Bytes>, CommandError> {
    ctx.load_string(shard, key)?
        .map(|v| v.string().map(SmallBytes::to_bytes))
        .transpose()
}

/// After a write: `new` for a created key, the command's events, then the key is changed.
pub(super) fn announce(ctx: &mut Ctx<'_>, key: &Bytes, w: &Written, events: &[(EventClass, &str)]) {
    // One read of the setting for all of them (a SET NX EX of a new key has three).
    let new = w.created.then_some((EventClass::New, "new"));
    keyspace_events(
        ctx.shared,
        ctx.client.db,
        key,
        new.into_iter().chain(events.iter().copied()),
    );
    ctx.key_changed(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_past_the_store_limit_are_refused() {
        assert!(check_key(&vec![b'k'; MAX_KEY_LEN]).is_ok());
        assert_eq!(
            check_key(&vec![b'k'; MAX_KEY_LEN + 1]).map_err(|e| e.to_string()),
            Err("ERR key longer than 65000 bytes (a Brooklet storage limit)".into())
        );
    }
}
