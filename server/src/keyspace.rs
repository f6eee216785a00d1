//! The keyspace: databases split into shards, each a lock around a map from key to value.
//!
//! A std `Mutex` (not tokio's) guards each shard: critical sections are short, never cross an
//! `.await`, and an uncontended std mutex is a couple of atomic operations.

use bytes::Bytes;
use hashbrown::HashMap;
use std::cell::Cell;
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use brooklet_persistence::{Store, StoredStream};

use crate::access::Access;
use crate::deadlines::Deadlines;
use crate::error::CommandError;
use crate::small_bytes::SmallBytes;

/// Shards per database: enough that two cores rarely meet on one lock.
const SHARDS: usize = 16;

/// A value stored under a key, with its access history (OBJECT IDLETIME / FREQ); the accessors
/// are where `-WRONGTYPE` comes from, and they count as an access.
#[derive(Debug)]
pub enum Value {
    /// A Redis stream (XADD, XGROUP CREATE MKSTREAM create one), with its storage state.
    Stream(Box<StoredStream>, Access),
    /// A Redis string (SET, INCR, APPEND...).
    String(SmallBytes, Access, StringForm),
    /// A string whose value only the store holds: start-up loads keys, not values, and the
    /// first command that needs the value reads it back ([`Shard::load_string`]).
    StoredString(Access),
}

/// How a string came to hold its bytes, which decides the encoding Redis reports for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StringForm {
    /// Written whole from a client's argument (SET, INCR, RESTORE...): `int`, `embstr` or
    /// `raw` by its content.
    #[default]
    Whole,
    /// Written whole as text Redis formats (INCRBYFLOAT): `embstr` or `raw` by its length,
    /// never `int`.
    Text,
    /// Edited in place (APPEND to a key that exists, SETRANGE): Redis holds such a string
    /// `raw` whatever its content, until it is written whole again.
    Edited,
}

impl Value {
    /// A new stream value, accessed now.
    pub fn stream_value(stream: Box<StoredStream>) -> Self {
        Value::Stream(stream, Access::new())
    }

    /// A new string value, accessed now.
    pub fn string_value(value: impl Into<SmallBytes>, form: StringForm) -> Self {
        Value::String(value.into(), Access::new(), form)
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Stream(..) => "stream",
            Value::String(..) | Value::StoredString(_) => "string",
        }
    }

    /// The value's access history (read without counting as an access).
    pub fn access(&self) -> &Access {
        match self {
            Value::Stream(_, a) | Value::String(_, a, _) | Value::StoredString(a) => a,
        }
    }

    /// The stream stored here, or `-WRONGTYPE` for a value of another type.
    pub fn stream(&self) -> Result<&StoredStream, CommandError> {
        match self {
            Value::Stream(s, a) => {
                a.touch();
                Ok(s)
            }
            Value::String(..) | Value::StoredString(_) => Err(CommandError::WrongType),
        }
    }

    /// The stream stored here, mutably, or `-WRONGTYPE` for a value of another type.
    pub fn stream_mut(&mut self) -> Result<&mut StoredStream, CommandError> {
        match self {
            Value::Stream(s, a) => {
                a.touch();
                Ok(s)
            }
            Value::String(..) | Value::StoredString(_) => Err(CommandError::WrongType),
        }
    }

    /// The string stored here, or `-WRONGTYPE` for a value of another type. A string still
    /// on disk is an error: the caller reads it first with [`Shard::load_string`].
    pub fn string(&self) -> Result<&SmallBytes, CommandError> {
        match self {
            Value::String(s, a, _) => {
                a.touch();
                Ok(s)
            }
            Value::StoredString(_) => Err(CommandError::msg("ERR string value not loaded")),
            Value::Stream(..) => Err(CommandError::WrongType),
        }
    }
}

/// One shard: its keys and their deadlines. It reads as its map; a key's deadline changes
/// only through the methods below, which keep both in step. A key leaves with
/// [`Shard::remove_key`], which takes its deadline too: a deadline left behind would expire
/// the next key of that name.
#[derive(Debug, Default)]
pub struct Shard {
    map: HashMap<SmallBytes, Value>,
    expires: Deadlines,
}

impl Deref for Shard {
    type Target = HashMap<SmallBytes, Value>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl DerefMut for Shard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

std::thread_local!(static HIDE_DUE_AT: Cell<u64> = const { Cell::new(0) });

/// Runs `f` with the keys whose deadline passed at `now` (when given) missing to lookups:
/// a replica's clients read such keys as gone while they wait for their primary's DEL, as
/// Redis 3.2+ replicas do. Commands run synchronously on one thread, so the setting covers
/// exactly the command that `f` runs.
pub fn hiding_expired<R>(now: Option<u64>, f: impl FnOnce() -> R) -> R {
    let Some(now) = now else {
        return f();
    };
    struct Reset(u64);
    impl Drop for Reset {
        fn drop(&mut self) {
            HIDE_DUE_AT.set(self.0);
        }
    }
    let _reset = Reset(HIDE_DUE_AT.replace(now.max(1)));
    f()
}

impl Shard {
    /// An empty shard.
    pub fn new() -> Self {
        Shard::default()
    }

    /// Whether `key` reads as missing to the running command (see [`hiding_expired`]).
    fn hidden(&self, key: &[u8]) -> bool {
        if self.expires.is_empty() {
            return false;
        }
        let at = HIDE_DUE_AT.get();
        at != 0 && self.expires.get(key).is_some_and(|d| d <= at)
    }

    /// The value of `key`. Shadows the map's own lookups so that no command sees a key
    /// [`hiding_expired`] hides; the same goes for the two lookups below.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        if self.hidden(key) {
            return None;
        }
        self.map.get(key)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        if self.hidden(key) {
            return None;
        }
        self.map.get_mut(key)
    }

    /// Whether `key` exists.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        !self.hidden(key) && self.map.contains_key(key)
    }

    /// The deadline of `key` (unix ms), if it has one.
    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        self.expires.get(key)
    }

    /// The deadline of `key` if it passed at `now` (see [`Deadlines::due`]).
    pub fn due(&self, key: &[u8], now: u64) -> Option<u64> {
        self.expires.due(key, now)
    }

    /// Sets (Some) or removes (None) the deadline of `key`; returns how the number of keys
    /// with a deadline changed (+1, 0, -1).
    pub fn set_deadline(&mut self, key: &[u8], at: Option<u64>) -> isize {
        let old = self.expires.set(key, at);
        match (old.is_some(), at.is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        }
    }

    /// Removes `key` with its deadline; returns its value and how the number of keys with a
    /// deadline changed (0 or -1).
    pub fn remove_key(&mut self, key: &[u8]) -> Option<(Value, isize)> {
        let v = self.map.remove(key)?;
        Some((v, self.set_deadline(key, None)))
    }

    /// The key with the earliest deadline at or before `now`, if any.
    pub fn first_due(&self, now: u64) -> Option<&SmallBytes> {
        self.expires.first_due(now)
    }

    /// Adds or replaces `key` (its deadline, if it had one, stays: see
    /// [`Shard::remove_key`]); returns the value it had.
    pub fn insert(&mut self, key: impl Into<SmallBytes>, value: Value) -> Option<Value> {
        self.map.insert(key.into(), value)
    }

    /// Takes `key`'s value out, leaving its deadline (the caller sees to it).
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.map.remove(key)
    }

    /// How many keys have a deadline.
    pub fn with_deadline(&self) -> usize {
        self.expires.len()
    }

    /// The value of `key` (of database `db`), with a string that start-up left in the store
    /// read back first, so the key holds it in memory from now on. One lookup: commands
    /// that read a value call this instead of looking the key up themselves.
    ///
    /// # Errors
    /// When the store cannot read the record, or has none (the key then stays as it was).
    pub fn load_string(
        &mut self,
        store: &Store,
        db: usize,
        key: &[u8],
    ) -> Result<Option<&mut Value>, CommandError> {
        if self.hidden(key) {
            return Ok(None);
        }
        let Some(slot) = self.map.get_mut(key) else {
            return Ok(None);
        };
        if let Value::StoredString(access) = slot {
            let read = u32::try_from(db)
                .map_err(|_| CommandError::msg("ERR DB index is out of range"))
                .and_then(|db| {
                    store.read_string(db, key).map_err(|e| {
                        CommandError::text(format!("ERR failed to read a string from disk: {e}"))
                    })
                })?;
            let value = read.ok_or_else(|| {
                CommandError::msg("ERR failed to read a string from disk: no record")
            })?;
            let access = access.clone();
            *slot = Value::String(SmallBytes::from_bytes(value), access, StringForm::Whole);
        }
        Ok(Some(slot))
    }
}

/// A copy of a client's argument to keep beyond the command. Arguments are zero-copy slices of
/// the connection's read buffer, and one slice kept alive keeps that whole buffer allocated: a
/// stream key that arrived in the same read as a 1 MB value would hold the megabyte for as
/// long as the stream exists.
pub fn keep(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// One SELECT-able database.
pub struct Db {
    shards: Box<[Mutex<Shard>]>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Per shard, the store sequence of the last write to one of its keys that no stream
    /// tracks (a removal, a string, a deadline): a reply that shows such a key, or says a key
    /// is missing, waits for it, as one that shows a stream waits for the stream's last
    /// change, so no reader learns of a change the store could lose.
    written: Box<[AtomicU64]>,
    /// Keys with a deadline, across shards: zero spares every command the expiry check.
    expiring: AtomicUsize,
}

impl Db {
    #[cfg(test)]
    fn new() -> Self {
        Db::with_hasher(hashbrown::DefaultHashBuilder::default())
    }

    /// An empty database whose keys go to shards by `hasher`: every database of a keyspace
    /// shares one, so a key has the same shard in each and SWAPDB swaps shard for shard.
    fn with_hasher(hasher: hashbrown::DefaultHashBuilder) -> Self {
        Db {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            hasher,
            written: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            expiring: AtomicUsize::new(0),
        }
    }

    /// Records that the store write `seq` changed or removed `key` (call under its shard lock).
    pub fn note_write(&self, key: &[u8], seq: u64) {
        self.written[self.shard_of(key)].fetch_max(seq, Ordering::Relaxed);
    }

    /// Records that every key was removed by the store write `seq`.
    pub fn note_removal_of_all(&self, seq: u64) {
        for r in self.written.iter() {
            r.fetch_max(seq, Ordering::Relaxed);
        }
    }

    /// The store sequence a reply that shows `key` (a string, a deadline) or says it is
    /// missing waits for.
    pub fn key_seq(&self, key: &[u8]) -> u64 {
        self.written[self.shard_of(key)].load(Ordering::Relaxed)
    }

    /// How many keys have a deadline (INFO's `expires=`).
    pub fn expiring(&self) -> usize {
        self.expiring.load(Ordering::Relaxed)
    }

    /// Records a change of the number of keys with a deadline, as returned by
    /// [`Shard::set_deadline`] or [`Shard::remove_key`] (call with the shard still locked).
    pub fn note_deadlines(&self, delta: isize) {
        match delta {
            1.. => self.expiring.fetch_add(delta as usize, Ordering::Relaxed),
            ..0 => self
                .expiring
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed),
            0 => 0,
        };
    }

    /// How many shards there are.
    pub fn shard_count(&self) -> usize {
        SHARDS
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Locks the shard that owns `key`.
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.shard_of(key)])
    }

    /// Which shard owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        (self.hash(key) as usize) % SHARDS
    }

    /// Locks the shard that owns `key` if it comes free within about 100 us; None if it does
    /// not (its holder may be waiting for something the caller holds).
    pub fn lock_briefly(&self, key: &[u8]) -> Option<MutexGuard<'_, Shard>> {
        let shard = &self.shards[self.shard_of(key)];
        let started = std::time::Instant::now();
        loop {
            match shard.try_lock() {
                Ok(guard) => return Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if started.elapsed() > std::time::Duration::from_micros(100) {
                        return None;
                    }
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Locks shard number `idx` (from [`Db::shard_of`]).
    pub fn lock_shard(&self, idx: usize) -> MutexGuard<'_, Shard> {
        lock(&self.shards[idx % SHARDS])
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Removes every key; returns what was there (so watchers and waiters can be told).
    pub fn flush(&self) -> Vec<(Bytes, Value)> {
        let mut removed = Vec::new();
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *lock(shard));
            removed.extend(taken.map.into_iter().map(|(k, v)| (k.to_bytes(), v)));
        }
        self.expiring.store(0, Ordering::Relaxed);
        removed
    }

    /// Locks every shard, in order (SWAPDB: call with the other database's shards locked
    /// after these, always the lower-numbered database first).
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, Shard>> {
        self.shards.iter().map(lock).collect()
    }

    /// Swaps what counts keys with a deadline and the last writes with `other`'s (SWAPDB,
    /// with both databases' shards locked).
    pub fn swap_counts(&self, other: &Db) {
        let n = self
            .expiring
            .swap(other.expiring.load(Ordering::Relaxed), Ordering::Relaxed);
        other.expiring.store(n, Ordering::Relaxed);
        for (a, b) in self.written.iter().zip(other.written.iter()) {
            let top = a.load(Ordering::Relaxed).max(b.load(Ordering::Relaxed));
            a.store(top, Ordering::Relaxed);
            b.store(top, Ordering::Relaxed);
        }
    }

    /// Visits every key with its value, shard by shard (each shard locked while visited).
    pub fn for_each(&self, mut f: impl FnMut(&SmallBytes, &Value)) {
        for shard in self.shards.iter() {
            for (k, v) in lock(shard).iter() {
                f(k, v);
            }
        }
    }

    /// Visits every key whose deadline has not passed at `now` (unix ms), with its value,
    /// shard by shard (each shard locked while visited).
    pub fn for_each_live(&self, now: u64, mut f: impl FnMut(&SmallBytes, &Value)) {
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for (k, v) in shard.iter() {
                if shard.deadline(k).is_none_or(|at| at > now) {
                    f(k, v);
                }
            }
        }
    }

    /// Visits every value mutably, shard by shard (each shard locked while visited).
    pub fn for_each_value_mut(&self, mut f: impl FnMut(&mut Value)) {
        for shard in self.shards.iter() {
            for v in lock(shard).values_mut() {
                f(v);
            }
        }
    }

    /// One SCAN step: keys of one shard whose position is past `cursor`, at most about `count`.
    ///
    /// The cursor is the shard index in the top 4 bits and a 60-bit key hash below, and keys are
    /// visited in hash order inside a shard, so a key present for the whole scan is returned
    /// even when the map is resized between calls.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&SmallBytes, &Value, Option<u64>),
    ) -> u64 {
        const HASH_BITS: u32 = 60;
        const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
        let mut shard_idx = (cursor >> HASH_BITS) as usize;
        let mut after = cursor & HASH_MASK;
        let mut visited = 0;
        while shard_idx < SHARDS {
            let shard = lock(&self.shards[shard_idx]);
            let mut keys: Vec<(u64, &SmallBytes, &Value)> = shard
                .iter()
                .map(|(k, v)| ((self.hash(k) & HASH_MASK).max(1), k, v))
                .filter(|(h, _, _)| *h > after)
                .collect();
            keys.sort_unstable_by_key(|(h, _, _)| *h);
            for (h, k, v) in keys {
                if visited >= count {
                    // Resume at this hash: step back one so it is included next time.
                    return ((shard_idx as u64) << HASH_BITS) | (h - 1);
                }
                f(k, v, shard.deadline(k));
                visited += 1;
            }
            shard_idx += 1;
            after = 0;
        }
        0
    }
}

/// Locks a mutex, recovering from poisoning: a panic in one command must not wedge a shard.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every database of the server.
pub struct Keyspace {
    dbs: Vec<Db>,
}

impl Keyspace {
    /// A keyspace of `databases` empty databases.
    pub fn new(databases: usize) -> Self {
        let hasher = hashbrown::DefaultHashBuilder::default();
        Keyspace {
            dbs: (0..databases)
                .map(|_| Db::with_hasher(hasher.clone()))
                .collect(),
        }
    }

    /// Database number `idx` (callers validate the index at SELECT time).
    pub fn db(&self, idx: usize) -> &Db {
        &self.dbs[idx.min(self.dbs.len() - 1)]
    }

    /// How many databases there are.
    pub fn count(&self) -> usize {
        self.dbs.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_access_history_fits_beside_the_type_tag() {
        // Every key's map slot holds a Value: the 4-byte history must not widen it.
        assert_eq!(std::mem::size_of::<Value>(), 40);
    }

    #[test]
    fn scan_with_count_7_visits_each_of_500_keys_exactly_once() {
        let db = Db::new();
        for i in 0..500 {
            let key = Bytes::from(format!("key:{i}"));
            db.lock(&key).insert(
                key.clone(),
                Value::stream_value(Box::new(StoredStream::new())),
            );
        }
        let mut seen: HashMap<Bytes, usize> = HashMap::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            let mut batch = 0;
            cursor = db.scan(cursor, 7, |k, v, _| {
                assert_eq!(v.type_name(), "stream");
                *seen.entry(k.to_bytes()).or_default() += 1;
                batch += 1;
            });
            assert!(batch <= 7, "a step returned {batch} keys");
            steps += 1;
            if cursor == 0 {
                break;
            }
            assert!(steps < 10_000, "SCAN does not terminate");
        }
        assert_eq!(seen.len(), 500);
        assert!(seen.values().all(|&n| n == 1), "a key was returned twice");
    }
}
