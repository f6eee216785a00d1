//! One shard's key deadlines: by key, and grouped by time so that active expiry finds the
//! due ones without looking at the others.
//!
//! The keys due at one millisecond share a bucket, and each key knows its place in its
//! bucket. Setting a deadline is a map insert and a push; no key is compared with another,
//! which an ordered set of `(time, key)` did at every insert among keys due at the same
//! millisecond (a burst of `SET ... EX 60` puts hundreds in each).

use std::collections::BTreeMap;

use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;

use crate::small_bytes::SmallBytes;

/// Where a key's deadline is kept: its time, and its index in that time's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    at: u64,
    index: usize,
}

/// Bytes a deadline costs, for MEMORY STATS: its slot by key (with hashbrown's control
/// byte) and its place in its bucket; a bucket's own cost is shared by its keys.
pub const DEADLINE_BYTES: usize =
    std::mem::size_of::<(SmallBytes, Place)>() + 1 + std::mem::size_of::<SmallBytes>();

/// The deadlines of one shard's keys.
#[derive(Debug, Default)]
pub struct Deadlines {
    by_key: HashMap<SmallBytes, Place>,
    by_time: BTreeMap<u64, Vec<SmallBytes>>,
}

impl Deadlines {
    /// The deadline of `key` (unix ms), if it has one.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        if self.by_key.is_empty() {
            return None;
        }
        self.by_key.get(key).map(|p| p.at)
    }

    /// The deadline of `key` if it is at or before `now`. While no key of the shard is due,
    /// the earliest deadline answers for every key, without a lookup by key: lazy expiry
    /// checks each key a command names, and a key without a deadline, or with a future one,
    /// is the usual case.
    pub fn due(&self, key: &[u8], now: u64) -> Option<u64> {
        let (&earliest, _) = self.by_time.first_key_value()?;
        if earliest > now {
            return None;
        }
        self.get(key).filter(|&at| at <= now)
    }

    /// How many keys have a deadline.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Sets (Some) or removes (None) the deadline of `key`; returns the one it had.
    pub fn set(&mut self, key: &[u8], at: Option<u64>) -> Option<u64> {
        let Some(at) = at else {
            let old = self.by_key.remove(key)?;
            self.unlink(old);
            return Some(old.at);
        };
        // One probe for a key without a deadline, the common case of SET ... EX.
        let old = match self.by_key.entry_ref(key) {
            EntryRef::Vacant(v) => {
                v.insert(link(&mut self.by_time, at, SmallBytes::copy_of(key)));
                return None;
            }
            EntryRef::Occupied(o) => *o.get(),
        };
        if old.at == at {
            return Some(at);
        }
        let stored = self.unlink(old).unwrap_or_else(|| SmallBytes::copy_of(key));
        let place = link(&mut self.by_time, at, stored);
        if let Some(p) = self.by_key.get_mut(key) {
            *p = place;
        }
        Some(old.at)
    }

    /// The key with the earliest deadline at or before `now`, if any.
    pub fn first_due(&self, now: u64) -> Option<&SmallBytes> {
        let (at, bucket) = self.by_time.first_key_value()?;
        // The last of its bucket: removing it moves no other key.
        (*at <= now).then(|| bucket.last()).flatten()
    }

    /// Takes the key at `place` out of its bucket and returns it; the bucket's last key
    /// moves into its place, and a bucket left empty goes. None only if `place` named no
    /// key, which the two maps kept in step never do.
    fn unlink(&mut self, place: Place) -> Option<SmallBytes> {
        let bucket = self.by_time.get_mut(&place.at)?;
        if place.index >= bucket.len() {
            return None;
        }
        let key = bucket.swap_remove(place.index);
        if let Some(moved) = bucket.get(place.index)
            && let Some(p) = self.by_key.get_mut(&moved[..])
        {
            p.index = place.index;
        }
        if bucket.is_empty() {
            self.by_time.remove(&place.at);
        }
        Some(key)
    }
}

/// Puts `key` in the bucket of `at` in `by_time`; returns its place there.
fn link(by_time: &mut BTreeMap<u64, Vec<SmallBytes>>, at: u64, key: SmallBytes) -> Place {
    let bucket = by_time.entry(at).or_insert_with(|| Vec::with_capacity(1));
    bucket.push(key);
    Place {
        at,
        index: bucket.len() - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Checks every key's place against its bucket, and every bucket's keys against their
    /// places.
    fn check(d: &Deadlines) {
        let mut placed = 0;
        for (at, bucket) in &d.by_time {
            assert!(!bucket.is_empty());
            for (index, key) in bucket.iter().enumerate() {
                assert_eq!(d.by_key.get(&key[..]), Some(&Place { at: *at, index }));
                placed += 1;
            }
        }
        assert_eq!(placed, d.by_key.len());
    }

    /// Random sets, changes and removals against an ordered set of (time, key), with due
    /// keys taken out as active expiry takes them.
    #[test]
    fn matches_an_ordered_set() {
        let mut d = Deadlines::default();
        let mut model: BTreeSet<(u64, Vec<u8>)> = BTreeSet::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for step in 0..20_000u64 {
            let key = format!("k{}", next() % 300).into_bytes();
            let old = model.iter().find(|(_, k)| *k == key).cloned();
            let at = match next() % 4 {
                0 => None,
                _ => Some(step / 50 + next() % 8),
            };
            assert_eq!(d.set(&key, at), old.as_ref().map(|(t, _)| *t));
            if let Some(o) = old {
                model.remove(&o);
            }
            if let Some(t) = at {
                model.insert((t, key.clone()));
            }
            assert_eq!(d.get(&key), at);
            // `due` agrees with the model for a key of each kind: the one just set, and
            // one that may be missing.
            let now = step / 50 + next() % 4;
            for k in [key.clone(), format!("k{}", next() % 300).into_bytes()] {
                let want = model
                    .iter()
                    .find(|(_, m)| *m == k)
                    .map(|(t, _)| *t)
                    .filter(|t| *t <= now);
                assert_eq!(d.due(&k, now), want);
            }
            if step % 7 == 0 {
                let now = step / 50;
                while let Some(k) = d.first_due(now).map(|k| k.to_vec()) {
                    let t = d.set(&k, None).expect("a due key has a deadline");
                    assert!(t <= now);
                    assert!(model.remove(&(t, k)));
                }
                assert!(model.first().is_none_or(|(t, _)| *t > now));
            }
            if step % 1000 == 0 {
                check(&d);
            }
            assert_eq!(d.len(), model.len());
        }
        check(&d);
    }
}
