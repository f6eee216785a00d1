//! One producer's remembered idempotent IDs: their insertion order (for eviction and
//! expiry) and a table from each ID to its place in that order.

use std::collections::VecDeque;

use hashbrown::HashTable;

use crate::id::StreamId;
use crate::iid::Iid;

/// One remembered idempotent ID: the entry it added, and its hash (eviction and growth of
/// the table find it without hashing its bytes again).
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub(super) id: StreamId,
    pub(super) hash: u64,
    pub(super) iid: Iid,
}

/// One producer's remembered IDs.
#[derive(Clone, Debug, Default)]
pub(super) struct Producer {
    /// Insertion order, oldest first. Slot `n` (counting from the producer's first) is at
    /// `n - base`; a slot the table does not name (its ID recorded again, or removed) is
    /// stale and skipped.
    pub(super) ring: VecDeque<Slot>,
    /// The number of `ring[0]`.
    pub(super) base: u64,
    /// For each remembered ID, the number of its slot, hashed by the ID's bytes.
    pub(super) table: HashTable<u64>,
}

impl Producer {
    pub(super) fn slot(&self, n: u64) -> &Slot {
        &self.ring[(n - self.base) as usize]
    }

    /// The number of the slot remembering `iid` (hashed to `hash`).
    pub(super) fn find(&self, hash: u64, iid: &[u8]) -> Option<u64> {
        self.table
            .find(hash, |&n| self.slot(n).iid.as_bytes() == iid)
            .copied()
    }

    /// Whether slot `n`, hashed to `hash`, is the one its ID maps to.
    pub(super) fn is_live(&self, hash: u64, n: u64) -> bool {
        self.table.find(hash, |&m| m == n).is_some()
    }

    /// The remembered IDs in insertion order, stale slots left out.
    pub(super) fn live(&self) -> impl Iterator<Item = (&[u8], StreamId)> {
        (self.base..)
            .zip(&self.ring)
            .filter(|(n, s)| self.is_live(s.hash, *n))
            .map(|(_, s)| (s.iid.as_bytes(), s.id))
    }

    /// Forgets slot `n`'s ID if the table maps it there; returns whether it did.
    pub(super) fn forget(&mut self, hash: u64, n: u64) -> bool {
        match self.table.find_entry(hash, |&m| m == n) {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Drops the expired slots at the head of the order; returns how many of them were
    /// live. A stale slot that has not expired stays: eviction skips it when it comes to
    /// it, and checking each head here would cost every add a lookup.
    pub(super) fn expire_head(&mut self, duration: u32, now_ms: u64) -> u64 {
        let mut gone = 0;
        while let Some(s) = self.ring.front() {
            if !expired(s.id, duration, now_ms) {
                break;
            }
            if self.pop_front() {
                gone += 1;
            }
        }
        gone
    }

    /// Drops the oldest slot; returns whether it was live.
    pub(super) fn pop_front(&mut self) -> bool {
        let Some(s) = self.ring.pop_front() else {
            return false;
        };
        let n = self.base;
        self.base += 1;
        self.forget(s.hash, n)
    }

    /// Remembers `iid` (hashed to `hash`) as naming entry `id`, newest; returns whether the
    /// ID was new to the producer (rather than mapped again). `absent` says a lookup just
    /// found the ID missing, so it is inserted without being searched for again.
    pub(super) fn push(&mut self, hash: u64, iid: &[u8], id: StreamId, absent: bool) -> bool {
        // Kept at most half full: XADD IDMP removes an ID for each it adds, and a fuller
        // table fills with tombstones it must then rehash away. Rebuilt here (rather than
        // grown) whenever tombstones or growth leave it less room, so it never outgrows that.
        if self.table.len() * 2 >= self.table.capacity() {
            self.compact();
        }
        let n = self.base + self.ring.len() as u64;
        let (ring, base) = (&self.ring, self.base);
        let rehash = |&m: &u64| ring[(m - base) as usize].hash;
        let new = if absent {
            self.table.insert_unique(hash, n, rehash);
            true
        } else {
            match self.table.entry(
                hash,
                |&m| ring[(m - base) as usize].iid.as_bytes() == iid,
                rehash,
            ) {
                hashbrown::hash_table::Entry::Occupied(mut o) => {
                    *o.get_mut() = n;
                    false
                }
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(n);
                    true
                }
            }
        };
        self.ring.push_back(Slot {
            id,
            hash,
            iid: Iid::new(iid),
        });
        new
    }

    /// Drops the stale slots, numbering the rest again from `base`, and rebuilds the
    /// table at most half full.
    pub(super) fn compact(&mut self) {
        let mut n = self.base;
        let table = &self.table;
        self.ring.retain(|s| {
            let live = table.find(s.hash, |&m| m == n).is_some();
            n += 1;
            live
        });
        let (ring, base) = (&self.ring, self.base);
        let mut table = HashTable::with_capacity(2 * ring.len() + 8);
        for (n, s) in (base..).zip(ring) {
            table.insert_unique(s.hash, n, |&m| ring[(m - base) as usize].hash);
        }
        self.table = table;
    }
}

/// Whether an entry with this ID is past the window at `now_ms` (Redis: its time is at or
/// before now minus the duration).
pub(super) fn expired(id: StreamId, duration: u32, now_ms: u64) -> bool {
    id.ms <= now_ms.saturating_sub(u64::from(duration) * 1000)
}
