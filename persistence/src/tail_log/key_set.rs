//! The keys a segment's string records name, for the checkpoint. Every string write adds
//! its key, so the set grows by one entry per new key on the write path: entries keep their
//! hash, so growing the table rehashes from the table alone instead of reading every key
//! back from the heap (a cache miss per key), and a closed segment's set is shared with
//! the checkpoint (an `Arc`) instead of copied under the log's lock.

use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use hashbrown::HashTable;

use super::StreamName;

/// A set of (database, key), each stored with its hash.
#[derive(Clone, Default)]
pub struct KeySet {
    table: HashTable<(u64, StreamName)>,
    state: hashbrown::DefaultHashBuilder,
}

impl KeySet {
    fn hash(&self, db: u32, key: &[u8]) -> u64 {
        let mut h = self.state.build_hasher();
        h.write_u32(db);
        h.write(key);
        h.finish()
    }

    /// Adds `key` of `db`, copying it, unless it is there.
    pub fn insert(&mut self, db: u32, key: &[u8]) {
        let hash = self.hash(db, key);
        let eq = |e: &(u64, StreamName)| e.0 == hash && e.1.0 == db && e.1.1[..] == *key;
        if let hashbrown::hash_table::Entry::Vacant(slot) = self.table.entry(hash, eq, |e| e.0) {
            slot.insert((hash, (db, Bytes::copy_from_slice(key))));
        }
    }

    /// Whether `key` of `db` is there.
    pub fn contains(&self, db: u32, key: &[u8]) -> bool {
        let hash = self.hash(db, key);
        self.table
            .find(hash, |e| e.0 == hash && e.1.0 == db && e.1.1[..] == *key)
            .is_some()
    }

    /// The keys, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &StreamName> {
        self.table.iter().map(|e| &e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_once_per_database() {
        let mut s = KeySet::default();
        for round in 0..3 {
            for i in 0..1000u32 {
                s.insert(i % 2, format!("k{i}").as_bytes());
            }
            assert_eq!(s.iter().count(), 1000, "round {round}");
        }
        assert!(s.contains(0, b"k0"));
        assert!(!s.contains(1, b"k0"));
        assert!(s.contains(1, b"k999"));
        assert_eq!(s.iter().filter(|(db, _)| *db == 1).count(), 500);
    }
}
