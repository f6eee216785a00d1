//! WATCH bookkeeping: which clients watch which keys, so a write can abort their EXEC.

use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::keyspace::lock;

type Watchers = Vec<(u64, Arc<AtomicBool>)>;

/// Watched keys by (database, key).
#[derive(Default)]
pub struct Watches {
    map: Mutex<HashMap<(usize, Bytes), Watchers>>,
    /// Number of watched (db, key) entries; lets writes skip the lock when nobody watches.
    count: AtomicUsize,
}

impl Watches {
    /// Registers a client's interest in a key.
    pub fn watch(&self, db: usize, key: Bytes, client: u64, dirty: &Arc<AtomicBool>) {
        let mut map = lock(&self.map);
        let list = map.entry((db, key)).or_insert_with(|| {
            self.count.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        });
        if !list.iter().any(|(id, _)| *id == client) {
            list.push((client, dirty.clone()));
        }
    }

    /// Drops a client's interest in the given keys.
    pub fn unwatch(&self, client: u64, keys: &[(usize, Bytes)]) {
        if keys.is_empty() {
            return;
        }
        let mut map = lock(&self.map);
        for key in keys {
            if let Some(list) = map.get_mut(key) {
                list.retain(|(id, _)| *id != client);
                if list.is_empty() {
                    map.remove(key);
                    self.count.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Marks every client watching `key` as dirty.
    pub fn touch(&self, db: usize, key: &Bytes) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(list) = lock(&self.map).get(&(db, key.clone())) {
            for (_, dirty) in list {
                dirty.store(true, Ordering::Release);
            }
        }
    }
}
