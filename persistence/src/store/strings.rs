//! Strings and key deadlines: each a record of its own keyspace (`strings`, `expires`),
//! keyed by the same prefix as a stream's records.
//!
//! A command that sets strings or deadlines (SET, MSET, INCR, APPEND, EXPIRE, PERSIST...)
//! is one tail-log record, as a plain XADD is: one buffered append, handed to the
//! operating system with every other connection's in one write. A fjall batch each (a
//! journal write and memtable inserts per command) held SET to a third of Redis's rate.
//! The checkpoint writes the keys the retired segments name into fjall as memory has them
//! then. Each logged change is a whole value, or the bytes APPEND or SETRANGE wrote at a
//! known place, so replaying the log over fjall ends where the log ends. What removes a
//! string or a deadline from fjall in a batch of its own (DEL, GETDEL, expiry, a stream's
//! deletion, a SET replacing a stream) leaves a deletion floor while the log holds string
//! records, as a stream's deletion does for logged creations: every string record logged
//! before it is numbered below it, and replay skips them.

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;

use crate::error::StoreError;
use crate::keys::{FLOOR_PREFIX, read_u64, split_prefix, stream_prefix};
use crate::stored::StoredStream;
use crate::tail_log::{Record, StringOp, ValueChange};

pub use crate::tail_log::StringEdit;

use super::Store;

pub use crate::tail_log::Deadline;

/// A string as loaded from the store.
#[derive(Debug)]
pub struct LoadedString {
    /// Its database.
    pub db: u32,
    /// Its key.
    pub key: Bytes,
    /// Its value when the tail log holds it; None when only fjall does: start-up leaves
    /// those values on disk, and [`Store::read_string`] reads one when a command needs it.
    pub value: Option<Bytes>,
}

/// A key's deadline as loaded from the store (a string's or a stream's).
#[derive(Debug)]
pub struct LoadedDeadline {
    /// Its database.
    pub db: u32,
    /// Its key.
    pub key: Bytes,
    /// Unix time in milliseconds at which the key expires.
    pub at_ms: u64,
}

/// Every string and deadline the store holds.
#[derive(Debug, Default)]
pub struct LoadedKeys {
    /// Every string.
    pub strings: Vec<LoadedString>,
    /// Every deadline, of strings and streams alike.
    pub deadlines: Vec<LoadedDeadline>,
}

impl Store {
    /// Writes string `key` with `value` and applies `deadline` to it, as one tail-log
    /// record; returns its sequence.
    ///
    /// # Errors
    /// When the record cannot be logged (a segment could not be opened).
    pub fn write_string(
        &self,
        db: u32,
        key: &[u8],
        value: &[u8],
        deadline: Deadline,
    ) -> Result<u64, StoreError> {
        self.log_strings(db, 1, std::iter::once(StringOp::Set(key, value, deadline)))
    }

    /// Logs APPEND's or SETRANGE's `edit` of string `key`, `len` bytes long, as one tail-log
    /// record of the bytes it writes; returns its sequence.
    ///
    /// # Errors
    /// When the record cannot be logged (a segment could not be opened).
    pub fn edit_string(
        &self,
        db: u32,
        key: &[u8],
        len: u64,
        edit: StringEdit<'_>,
    ) -> Result<u64, StoreError> {
        self.log_strings(db, 1, std::iter::once(StringOp::Edit(key, len, edit)))
    }

    /// Logs one command's string and deadline changes as one record, numbered from the
    /// counter streams' lives take theirs from, so a deletion's floor covers it.
    fn log_strings<'a, I>(&self, db: u32, count: usize, ops: I) -> Result<u64, StoreError>
    where
        I: Iterator<Item = StringOp<'a>> + Clone,
    {
        // Not refused here, even after a fault: see `Store::commit`.
        let number = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.tail.log_strings(db, number, count, ops) {
            self.durability
                .health
                .fail_io(&e, false, "logging a string");
            return Err(self.durability.health.refusal());
        }
        Ok(self.durability.publish(true))
    }

    /// Replaces stream `key`, which `stream` held, with string `value` (SET over a stream):
    /// the stream's removal and the string are one batch. `deadline` is what the key's
    /// deadline record becomes (the stream's is removed with it).
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn replace_stream_with_string(
        &self,
        db: u32,
        key: &[u8],
        stream: &StoredStream,
        value: &[u8],
        deadline: Option<u64>,
    ) -> Result<u64, StoreError> {
        let prefix = stream_prefix(db, key);
        self.remove_under_then(prefix.clone(), [stream], |batch, ks| {
            batch.insert(&ks.strings, prefix.as_slice(), value);
            if let Some(ms) = deadline {
                batch.insert(&ks.expires, prefix.as_slice(), ms.to_be_bytes());
            }
        })
    }

    /// Writes several strings of database `db` as one tail-log record (MSET, MSETNX): (key,
    /// value, whether the key has a deadline to remove); returns its sequence.
    ///
    /// # Errors
    /// When the record cannot be logged.
    pub fn write_strings<'a>(
        &self,
        db: u32,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
    ) -> Result<u64, StoreError> {
        let ops: Vec<StringOp<'a>> = pairs
            .into_iter()
            .map(|(key, value, had_deadline)| {
                let deadline = if had_deadline {
                    Deadline::Clear
                } else {
                    Deadline::Keep
                };
                StringOp::Set(key, value, deadline)
            })
            .collect();
        self.log_strings(db, ops.len(), ops.iter().copied())
    }

    /// Removes strings `keys` of database `db` with their deadlines, as one fjall batch
    /// (DEL, GETDEL, expiry); returns its sequence. While the tail log holds string records
    /// the batch leaves a floor under each key, so replay skips those logged before it.
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn delete_strings<'a>(
        &self,
        db: u32,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<u64, StoreError> {
        // A checkpoint batch holding these keys' values, committed after this one, would
        // bring them back once it retired the records that set them.
        self.wait_for_checkpoint();
        let mut batch = self.batch();
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let prefix = stream_prefix(db, key);
            // Only over records of its own: an expiry sweep would otherwise leave a floor
            // for every key it removes.
            if self.tail.has_strings(db, key) {
                self.leave_floor(&mut batch, &prefix);
            }
            batch.remove(&self.ks.strings, prefix.clone());
            batch.remove(&self.ks.expires, prefix);
        }
        self.commit(batch)
    }

    /// Sets (Some) or removes (None) the deadline of `key`, a string or a stream (EXPIRE,
    /// PERSIST), as one tail-log record; returns its sequence.
    ///
    /// # Errors
    /// When the record cannot be logged.
    pub fn set_deadline(&self, db: u32, key: &[u8], at_ms: Option<u64>) -> Result<u64, StoreError> {
        let deadline = at_ms.map_or(Deadline::Clear, Deadline::At);
        self.log_strings(db, 1, std::iter::once(StringOp::Deadline(key, deadline)))
    }

    /// Seals the memtable of the strings' keyspace, so fjall writes it out as a table and
    /// frees it: until then every string written holds its value there as well as in the
    /// keyspace's memory (maxmemory near its limit).
    ///
    /// # Errors
    /// When the engine refuses the rotation.
    pub fn shed_string_memtable(&self) -> Result<(), StoreError> {
        self.ks.strings.rotate_memtable()?;
        Ok(())
    }

    /// The value fjall holds for string `key` of database `db`: what a string loaded
    /// without its value (see [`LoadedString::value`]) holds, as long as no command has
    /// written it since (every write after start-up is in memory).
    ///
    /// # Errors
    /// When the record cannot be read.
    pub fn read_string(&self, db: u32, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let v = self.ks.strings.get(stream_prefix(db, key))?;
        Ok(v.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Reads every string and every deadline (start-up, DEBUG RELOAD): fjall's records,
    /// then the tail log's string records over them, oldest first, but those a deletion's
    /// floor covers. A deadline whose key is gone (a stream whose logged creation a crash
    /// lost) is returned too: the caller drops it with [`Store::set_deadline`].
    ///
    /// # Errors
    /// When a record cannot be read or its key is malformed, or the log cannot be read.
    pub fn load_keys(&self) -> Result<LoadedKeys, StoreError> {
        let mut strings: HashMap<(u32, Bytes), Loading> = HashMap::new();
        let mut deadlines: HashMap<(u32, Bytes), u64> = HashMap::new();
        for kv in self.ks.strings.iter() {
            let k = kv.key()?;
            let (db, key, _) = split_prefix(&k)
                .filter(|(_, _, rest)| rest.is_empty())
                .ok_or_else(|| StoreError::Corrupt("string record key".into()))?;
            strings.insert((db, Bytes::copy_from_slice(key)), Loading::OnDisk);
        }
        for kv in self.ks.expires.iter() {
            let (k, v) = kv.into_inner()?;
            let (db, key, _) = split_prefix(&k)
                .filter(|(_, _, rest)| rest.is_empty())
                .ok_or_else(|| StoreError::Corrupt("deadline record key".into()))?;
            let at_ms = read_u64(&v, 0)
                .filter(|_| v.len() == 8)
                .ok_or_else(|| StoreError::Corrupt("deadline record".into()))?;
            deadlines.insert((db, Bytes::copy_from_slice(key)), at_ms);
        }
        let floors = read_floors(&self.ks.meta)?;
        let mut failed = None;
        self.tail.replay_again(&mut |record| {
            let Record::Strings(r) = record else {
                return false;
            };
            for c in r.changes {
                if covered(&floors, r.db, &c.key, r.number) {
                    continue;
                }
                let name = (r.db, c.key);
                match c.deadline {
                    Deadline::Keep => {}
                    Deadline::Clear => {
                        deadlines.remove(&name);
                    }
                    Deadline::At(ms) => {
                        deadlines.insert(name.clone(), ms);
                    }
                }
                match c.value {
                    ValueChange::Unchanged => {}
                    ValueChange::Set(v) => {
                        strings.insert(name, Loading::Whole(v));
                    }
                    edit => {
                        let base = strings.remove(&name);
                        match self.edited(r.db, &name.1, base, &edit) {
                            Ok(Some(state)) => {
                                strings.insert(name, state);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                failed = Some(e);
                                return false;
                            }
                        }
                    }
                }
            }
            true
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let out = LoadedKeys {
            strings: strings
                .into_iter()
                .map(|((db, key), value)| LoadedString {
                    db,
                    key,
                    value: value.into_value(),
                })
                .collect(),
            deadlines: deadlines
                .into_iter()
                .map(|((db, key), at_ms)| LoadedDeadline { db, key, at_ms })
                .collect(),
        };
        Ok(out)
    }

    /// A logged APPEND or SETRANGE replayed over `base`, the key's state so far (None:
    /// missing), in place when replay already edited the string. An append cuts the string
    /// to its length before and adds its bytes; a range write zero-fills the string to its
    /// offset if shorter and writes its bytes there. An append over a shorter string, or
    /// either over a missing key, is skipped: only a state a later record of the key sets
    /// right meets it (see the tail log's string records).
    fn edited(
        &self,
        db: u32,
        key: &[u8],
        base: Option<Loading>,
        edit: &ValueChange,
    ) -> Result<Option<Loading>, StoreError> {
        let current = match base {
            Some(Loading::Growing(v)) => Some(v),
            Some(Loading::Whole(v)) => Some(BytesMut::from(&v[..])),
            Some(Loading::OnDisk) => self.read_string(db, key)?.map(|v| BytesMut::from(&v[..])),
            None => None,
        };
        let Some(mut v) = current else {
            return Ok(None);
        };
        match edit {
            ValueChange::Append { at, tail } => {
                let at = usize::try_from(*at).unwrap_or(usize::MAX);
                if v.len() >= at {
                    v.truncate(at);
                    StringEdit::Append(tail).apply_to(&mut v);
                }
            }
            ValueChange::Range { at, patch } => {
                let at = usize::try_from(*at)
                    .map_err(|_| StoreError::Corrupt("string range offset".into()))?;
                StringEdit::Write { at, patch }.apply_to(&mut v);
            }
            ValueChange::Unchanged | ValueChange::Set(_) => {}
        }
        Ok(Some(Loading::Growing(v)))
    }
}

/// A string's value while start-up reads the log over fjall's records.
enum Loading {
    /// fjall's record holds it: left on disk.
    OnDisk,
    /// A logged whole value.
    Whole(Bytes),
    /// Edited by logged appends and range writes (in place, so a string of many edits
    /// replays in time linear in what they wrote).
    Growing(BytesMut),
}

impl Loading {
    fn into_value(self) -> Option<Bytes> {
        match self {
            Loading::OnDisk => None,
            Loading::Whole(v) => Some(v),
            Loading::Growing(v) => Some(v.freeze()),
        }
    }
}

/// Deletion floors by the prefix they cover (a stream's, a database's, or empty).
pub(super) fn read_floors(meta: &fjall::Keyspace) -> Result<HashMap<Vec<u8>, u64>, StoreError> {
    let mut floors = HashMap::new();
    for kv in meta.prefix(FLOOR_PREFIX) {
        let (k, v) = kv.into_inner()?;
        let floor =
            read_u64(&v, 0).ok_or_else(|| StoreError::Corrupt("malformed floor record".into()))?;
        floors.insert(k[FLOOR_PREFIX.len()..].to_vec(), floor);
    }
    Ok(floors)
}

/// Whether a deletion's floor covers what was numbered `n` under key `key` of `db`.
pub(super) fn covered(floors: &HashMap<Vec<u8>, u64>, db: u32, key: &[u8], n: u64) -> bool {
    if floors.is_empty() {
        return false;
    }
    let prefix = stream_prefix(db, key);
    [&prefix[..], &prefix[..4], &[]]
        .iter()
        .any(|p| floors.get(*p).is_some_and(|&f| n < f))
}
