//! The streams with a MAXAGE (XCFGSET MAXAGE, `stream-max-age`), so the retention task
//! (`retention_task.rs`) visits those alone instead of every stream on every tick. A key
//! is added under its shard lock when its retention is turned on, and removed, under the
//! shard lock too, only by the task once it finds the key gone or its retention off, so
//! a key turned on again meanwhile is never lost from the set. A key deleted (DEL, FLUSHALL,
//! DEBUG RELOAD) stays until the task next looks at it.

use std::sync::Mutex;

use bytes::Bytes;
use hashbrown::HashSet;

/// The set of (database, key) whose stream had retention on when last seen.
#[derive(Debug, Default)]
pub struct RetentionSet {
    keys: Mutex<HashSet<(usize, Bytes)>>,
}

impl RetentionSet {
    /// Notes that the stream at `key` of `db` has retention on (call under its shard lock).
    pub fn add(&self, db: usize, key: &Bytes) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if !keys.contains(&(db, key.clone())) {
            keys.insert((db, key.clone()));
        }
    }

    /// Forgets `key` of `db` (call under its shard lock, having found retention off).
    pub fn remove(&self, db: usize, key: &Bytes) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&(db, key.clone()));
    }

    /// SWAPDB: the streams of database `a` are now `b`'s and the other way round.
    pub fn swap_dbs(&self, a: usize, b: usize) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        *keys = keys
            .drain()
            .map(|(db, k)| match db {
                d if d == a => (b, k),
                d if d == b => (a, k),
                _ => (db, k),
            })
            .collect();
    }

    /// The keys now in the set.
    pub fn snapshot(&self) -> Vec<(usize, Bytes)> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().cloned().collect()
    }

    /// Whether no stream has retention on.
    pub fn is_empty(&self) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}
