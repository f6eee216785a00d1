//! Strings and key deadlines: each a record of its own keyspace (`strings`, `expires`),
//! keyed by the same prefix as a stream's records, written one fjall batch per command.
//! Neither goes through the tail log: a string write replaces a whole value, and the
//! checkpoint, which exists to fold appends into fjall, would have nothing to fold.

use bytes::Bytes;

use crate::error::StoreError;
use crate::keys::{read_u64, split_prefix, stream_prefix};
use crate::stored::StoredStream;

use super::Store;

/// What a string write does to its key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Leave it as it is (SET KEEPTTL, APPEND, INCR, SETRANGE...).
    Keep,
    /// Remove it (a plain SET).
    Clear,
    /// Set it to this unix time in milliseconds.
    At(u64),
}

/// A string as loaded from the store.
#[derive(Debug)]
pub struct LoadedString {
    /// Its database.
    pub db: u32,
    /// Its key.
    pub key: Bytes,
    /// Its value.
    pub value: Bytes,
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
    /// Writes string `key` with `value` and applies `deadline` to it, as one batch; returns
    /// its sequence.
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn write_string(
        &self,
        db: u32,
        key: &[u8],
        value: &[u8],
        deadline: Deadline,
    ) -> Result<u64, StoreError> {
        let prefix = stream_prefix(db, key);
        let mut batch = self.batch();
        batch.insert(&self.ks.strings, prefix.as_slice(), value);
        match deadline {
            Deadline::Keep => {}
            Deadline::Clear => batch.remove(&self.ks.expires, prefix.clone()),
            Deadline::At(ms) => batch.insert(&self.ks.expires, prefix.clone(), ms.to_be_bytes()),
        }
        self.commit(batch)
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

    /// Writes several strings of database `db` as one batch (MSET, MSETNX): (key, value,
    /// whether the key has a deadline to remove); returns its sequence.
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn write_strings<'a>(
        &self,
        db: u32,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
    ) -> Result<u64, StoreError> {
        let mut batch = self.batch();
        for (key, value, had_deadline) in pairs {
            let prefix = stream_prefix(db, key);
            batch.insert(&self.ks.strings, prefix.as_slice(), value);
            if had_deadline {
                batch.remove(&self.ks.expires, prefix);
            }
        }
        self.commit(batch)
    }

    /// Removes strings `keys` of database `db` with their deadlines, as one batch (DEL,
    /// GETDEL, expiry); returns its sequence.
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn delete_strings<'a>(
        &self,
        db: u32,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<u64, StoreError> {
        let mut batch = self.batch();
        for key in keys {
            let prefix = stream_prefix(db, key);
            batch.remove(&self.ks.strings, prefix.clone());
            batch.remove(&self.ks.expires, prefix);
        }
        self.commit(batch)
    }

    /// Sets (Some) or removes (None) the deadline of `key`, a string or a stream (EXPIRE,
    /// PERSIST), as one batch; returns its sequence.
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn set_deadline(&self, db: u32, key: &[u8], at_ms: Option<u64>) -> Result<u64, StoreError> {
        let prefix = stream_prefix(db, key);
        let mut batch = self.batch();
        match at_ms {
            Some(ms) => batch.insert(&self.ks.expires, prefix, ms.to_be_bytes()),
            None => batch.remove(&self.ks.expires, prefix),
        }
        self.commit(batch)
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

    /// Reads every string and every deadline (start-up, DEBUG RELOAD). A deadline whose key
    /// is gone (a stream whose logged creation a crash lost) is returned too: the caller
    /// drops it with [`Store::set_deadline`].
    ///
    /// # Errors
    /// When a record cannot be read or its key is malformed.
    pub fn load_keys(&self) -> Result<LoadedKeys, StoreError> {
        let mut out = LoadedKeys::default();
        for kv in self.ks.strings.iter() {
            let (k, v) = kv.into_inner()?;
            let (db, key, _) = split_prefix(&k)
                .filter(|(_, _, rest)| rest.is_empty())
                .ok_or_else(|| StoreError::Corrupt("string record key".into()))?;
            out.strings.push(LoadedString {
                db,
                key: Bytes::copy_from_slice(key),
                value: Bytes::copy_from_slice(&v),
            });
        }
        for kv in self.ks.expires.iter() {
            let (k, v) = kv.into_inner()?;
            let (db, key, _) = split_prefix(&k)
                .filter(|(_, _, rest)| rest.is_empty())
                .ok_or_else(|| StoreError::Corrupt("deadline record key".into()))?;
            let at_ms = read_u64(&v, 0)
                .filter(|_| v.len() == 8)
                .ok_or_else(|| StoreError::Corrupt("deadline record".into()))?;
            out.deadlines.push(LoadedDeadline {
                db,
                key: Bytes::copy_from_slice(key),
                at_ms,
            });
        }
        Ok(out)
    }
}
