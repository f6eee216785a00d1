//! Idempotent producers (Redis 8.6's IDMP): per producer ID, the idempotent IDs recently
//! added with XADD IDMP / IDMPAUTO and the entry each added, so a retried XADD returns the
//! original entry's ID instead of appending again.
//!
//! Each producer keeps at most `maxsize` IDs, oldest evicted first, and an ID is forgotten
//! once its entry's millisecond time is `duration` seconds behind the clock (Redis compares
//! the entry ID's time, not the time it was recorded). Expiry is applied lazily, with the
//! caller's clock: the set of IDs a command can see at time `t` is the same whatever
//! purges ran before, so purging needs no record of its own and replay may purge whenever.

use std::collections::VecDeque;

use bytes::Bytes;
use hashbrown::HashMap;

use crate::error::StreamError;
use crate::id::{IdSpec, StreamId};
use crate::mutation::Mutation;
use crate::node::NodeLimits;
use crate::stream::{AddOutcome, Stream};
use crate::trim::TrimArgs;

/// `stream-idmp-duration`'s default, seconds.
pub const IDMP_DURATION_DEFAULT: u32 = 100;
/// The largest IDMP-DURATION, seconds.
pub const IDMP_DURATION_MAX: u32 = 86_400;
/// `stream-idmp-maxsize`'s default.
pub const IDMP_MAXSIZE_DEFAULT: u32 = 100;
/// The largest IDMP-MAXSIZE.
pub const IDMP_MAXSIZE_MAX: u32 = 10_000;

/// A stream's IDMP settings (XCFGSET; new streams take the server's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdmpConfig {
    /// Seconds an idempotent ID is remembered.
    pub duration: u32,
    /// Idempotent IDs remembered per producer.
    pub maxsize: u32,
}

impl Default for IdmpConfig {
    fn default() -> Self {
        IdmpConfig {
            duration: IDMP_DURATION_DEFAULT,
            maxsize: IDMP_MAXSIZE_DEFAULT,
        }
    }
}

/// How XADD names its message: a producer ID and either an idempotent ID or none, in
/// which case one is derived from the field-value pairs (IDMPAUTO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdmpKey<'a> {
    /// IDMP pid iid.
    Explicit {
        /// Producer ID.
        pid: &'a [u8],
        /// Idempotent ID.
        iid: &'a [u8],
    },
    /// IDMPAUTO pid.
    Auto {
        /// Producer ID.
        pid: &'a [u8],
    },
}

/// What XADD with IDMP did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdmpAdd {
    /// The entry went in (and the ID is remembered).
    Added(AddOutcome),
    /// The producer sent this ID within the window: nothing was appended; the original
    /// entry's ID (which may have been deleted since) is the reply.
    Duplicate(StreamId),
}

/// XINFO STREAM's IDMP fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdmpInfo {
    /// `idmp-duration`.
    pub duration: u32,
    /// `idmp-maxsize`.
    pub maxsize: u32,
    /// `pids-tracked`: producers with at least one ID remembered.
    pub pids_tracked: u64,
    /// `iids-tracked`: IDs remembered, all producers together.
    pub iids_tracked: u64,
    /// `iids-added`: entries ever added with IDMP / IDMPAUTO.
    pub iids_added: u64,
    /// `iids-duplicates`: duplicates ever refused.
    pub iids_duplicates: u64,
}

/// IDMPAUTO's idempotent ID: the XOR of each pair's 128-bit XXH3 of field then value, as
/// Redis derives it, so the order of the pairs does not matter.
pub fn auto_iid(fields: &[Bytes]) -> [u8; 16] {
    // field || value hashed in one call where the pair fits a stack buffer: the streaming
    // hasher's set-up costs more than hashing a short pair.
    let mut buf = [0u8; 256];
    let mut acc: u128 = 0;
    for pair in fields.chunks_exact(2) {
        let (f, v) = (&pair[0][..], &pair[1][..]);
        let n = f.len() + v.len();
        acc ^= if n <= buf.len() {
            buf[..f.len()].copy_from_slice(f);
            buf[f.len()..n].copy_from_slice(v);
            xxhash_rust::xxh3::xxh3_128(&buf[..n])
        } else {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(f);
            h.update(v);
            h.digest128()
        };
    }
    acc.to_le_bytes()
}

/// One producer's remembered IDs.
#[derive(Clone, Debug, Default)]
struct Producer {
    /// Idempotent ID to the entry it added.
    map: HashMap<Bytes, StreamId>,
    /// Insertion order, oldest first. An element whose ID the map no longer maps to its
    /// entry (replaced or removed) is stale and skipped.
    order: VecDeque<(StreamId, Bytes)>,
}

impl Producer {
    /// The remembered IDs in insertion order, stale elements left out.
    fn live(&self) -> impl Iterator<Item = (&Bytes, StreamId)> {
        self.order
            .iter()
            .filter(|(id, iid)| self.map.get(iid) == Some(id))
            .map(|(id, iid)| (iid, *id))
    }

    /// Drops the expired elements at the head of the order; returns how many of them were
    /// live. A stale element that has not expired stays: eviction skips it when it comes
    /// to it, and looking each head up here would cost every add a hash lookup.
    fn expire_head(&mut self, duration: u32, now_ms: u64) -> u64 {
        let mut gone = 0;
        while let Some(&(id, _)) = self.order.front() {
            if !expired(id, duration, now_ms) {
                break;
            }
            if self.pop_front() {
                gone += 1;
            }
        }
        gone
    }

    /// Drops the oldest element; returns whether it was live.
    fn pop_front(&mut self) -> bool {
        let Some((id, iid)) = self.order.pop_front() else {
            return false;
        };
        if self.map.get(&iid) == Some(&id) {
            self.map.remove(&iid);
            true
        } else {
            false
        }
    }
}

/// Producers by ID.
type Producers = HashMap<Bytes, Producer>;

/// No producers (what a stream without IDMP reads).
static NO_PRODUCERS: std::sync::LazyLock<Producers> = std::sync::LazyLock::new(Producers::default);

/// A stream's IDMP state.
#[derive(Clone, Debug, Default)]
pub struct Idmp {
    config: IdmpConfig,
    /// Allocated with the first producer: every stream carries this state, few use it.
    producers: Option<Box<Producers>>,
    /// Remembered IDs, all producers together.
    tracked: u64,
    added: u64,
    duplicates: u64,
}

/// Compared by what they remember, in order (stale bookkeeping left out).
impl PartialEq for Idmp {
    fn eq(&self, other: &Idmp) -> bool {
        self.config == other.config
            && self.added == other.added
            && self.duplicates == other.duplicates
            && self.tracked == other.tracked
            && self.map().len() == other.map().len()
            && self
                .map()
                .iter()
                .all(|(pid, p)| other.map().get(pid).is_some_and(|q| p.live().eq(q.live())))
    }
}

impl Eq for Idmp {}

/// Whether an entry with this ID is past the window at `now_ms` (Redis: its time is at or
/// before now minus the duration).
fn expired(id: StreamId, duration: u32, now_ms: u64) -> bool {
    id.ms <= now_ms.saturating_sub(u64::from(duration) * 1000)
}

impl Idmp {
    fn map(&self) -> &Producers {
        self.producers.as_deref().unwrap_or(&NO_PRODUCERS)
    }

    /// The settings.
    pub fn config(&self) -> IdmpConfig {
        self.config
    }

    /// `iids-added`.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// `iids-duplicates`.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Every producer with its remembered IDs, oldest first (for storage).
    pub fn producers(
        &self,
    ) -> impl Iterator<Item = (&Bytes, impl Iterator<Item = (&Bytes, StreamId)>)> {
        self.map()
            .iter()
            .filter(|(_, p)| !p.map.is_empty())
            .map(|(pid, p)| (pid, p.live()))
    }

    /// State as storage recorded it: settings, counters, and per producer its IDs oldest
    /// first.
    pub fn restore(
        config: IdmpConfig,
        added: u64,
        duplicates: u64,
        producers: Vec<(Bytes, Vec<(Bytes, StreamId)>)>,
    ) -> Idmp {
        let mut idmp = Idmp {
            config,
            added,
            duplicates,
            ..Idmp::default()
        };
        for (pid, ids) in producers {
            for (iid, id) in ids {
                idmp.record(&pid, iid, id);
            }
        }
        idmp
    }

    /// The ID `iid` of `pid` added, if remembered at `now_ms` (expired IDs of the producer
    /// are forgotten on the way). One lookup of the producer: this runs on every XADD IDMP.
    fn lookup(&mut self, pid: &[u8], iid: &[u8], now_ms: u64) -> Option<StreamId> {
        let duration = self.config.duration;
        let producers = self.producers.as_mut()?;
        let p = producers.get_mut(pid)?;
        self.tracked -= p.expire_head(duration, now_ms);
        if p.map.is_empty() {
            producers.remove(pid);
            return None;
        }
        let id = *p.map.get(iid)?;
        // Only an ID recorded out of order (XIDMPRECORD) can be expired behind a live head.
        if expired(id, duration, now_ms) {
            p.map.remove(iid);
            self.tracked -= 1;
            return None;
        }
        Some(id)
    }

    /// Remembers that `iid` of `pid` added entry `id` (replacing an older mapping of it),
    /// then evicts the producer's oldest IDs beyond `maxsize`. Returns the producer ID as
    /// the state holds it (a record can share it rather than copy it again).
    fn record(&mut self, pid: &[u8], iid: Bytes, id: StreamId) -> Bytes {
        let maxsize = self.config.maxsize.max(1) as usize;
        let producers = self.producers.get_or_insert_with(Box::default);
        let (key, p) = match producers.get_key_value_mut(pid) {
            Some((k, p)) => (k.clone(), p),
            None => {
                let key = Bytes::copy_from_slice(pid);
                (key.clone(), producers.entry(key).or_default())
            }
        };
        if p.map.insert(iid.clone(), id).is_none() {
            self.tracked += 1;
        }
        p.order.push_back((id, iid));
        // Stale elements (an ID recorded again) are otherwise dropped only when they reach
        // the head: compacting once they are half the order keeps it bounded, amortized O(1).
        if p.order.len() > 2 * p.map.len() + 16 {
            let map = &p.map;
            p.order.retain(|(id, iid)| map.get(iid) == Some(id));
        }
        while p.map.len() > maxsize {
            if p.pop_front() {
                self.tracked -= 1;
            }
        }
        key
    }

    /// Forgets every expired ID at `now_ms` (what Redis's cron does every second).
    pub fn expire(&mut self, now_ms: u64) {
        let duration = self.config.duration;
        let mut gone = 0;
        let Some(producers) = self.producers.as_mut() else {
            return;
        };
        producers.retain(|_, p| {
            while let Some(&(id, _)) = p.order.front() {
                if !expired(id, duration, now_ms) && p.map.get(&p.order[0].1) == Some(&id) {
                    break;
                }
                if p.pop_front() {
                    gone += 1;
                }
            }
            !p.map.is_empty()
        });
        self.tracked -= gone;
    }

    /// Sets the settings; a change forgets every producer's IDs (the counters stay).
    /// Returns whether anything changed.
    pub fn set_config(&mut self, config: IdmpConfig) -> bool {
        if config == self.config {
            return false;
        }
        self.config = config;
        self.producers = None;
        self.tracked = 0;
        true
    }

    /// XINFO STREAM's fields, as they stand (call [`Idmp::expire`] first).
    pub fn info(&self) -> IdmpInfo {
        IdmpInfo {
            duration: self.config.duration,
            maxsize: self.config.maxsize,
            pids_tracked: self.map().len() as u64,
            iids_tracked: self.tracked,
            iids_added: self.added,
            iids_duplicates: self.duplicates,
        }
    }

    /// Replays a logged addition: applied again over state that already holds it (storage
    /// may replay what a checkpoint wrote) it changes nothing.
    pub(crate) fn apply_added(&mut self, pid: &[u8], iid: &Bytes, id: StreamId, added: u64) {
        self.added = self.added.max(added);
        let known = self
            .map()
            .get(pid)
            .and_then(|p| p.map.get(iid))
            .is_some_and(|&have| have >= id);
        if !known {
            self.record(pid, iid.clone(), id);
        }
    }

    /// Replays the duplicates counter (a count only grows, so an older record is a no-op).
    pub(crate) fn apply_duplicates(&mut self, count: u64) {
        self.duplicates = self.duplicates.max(count);
    }
}

impl Stream {
    /// The IDMP state.
    pub fn idmp(&self) -> &Idmp {
        &self.idmp
    }

    /// Replaces the IDMP state (a stream read back from storage).
    pub fn restore_idmp(&mut self, idmp: Idmp) {
        self.idmp = idmp;
    }

    /// Sets a new stream's IDMP settings (the server's defaults), recording nothing: a
    /// stream's first record carries them.
    pub fn init_idmp_config(&mut self, config: IdmpConfig) {
        self.idmp.config = config;
    }

    /// Forgets expired idempotent IDs at `now_ms` (XINFO STREAM calls this first). It
    /// changes nothing a command can observe, so it records nothing.
    pub fn expire_idmp(&mut self, now_ms: u64) {
        self.idmp.expire(now_ms);
    }

    /// XADD with IDMP pid iid or IDMPAUTO pid: a duplicate within the window appends
    /// nothing, trims nothing and only counts itself; otherwise [`Stream::add`], and the
    /// ID is remembered.
    ///
    /// # Errors
    /// [`Stream::add`]'s.
    #[allow(clippy::too_many_arguments)]
    pub fn add_idempotent(
        &mut self,
        key: IdmpKey<'_>,
        spec: IdSpec,
        fields: &[Bytes],
        trim: Option<&TrimArgs>,
        now_ms: u64,
        limits: &NodeLimits,
        out: &mut Vec<Mutation>,
    ) -> Result<IdmpAdd, StreamError> {
        let auto;
        let (pid, iid): (&[u8], &[u8]) = match key {
            IdmpKey::Explicit { pid, iid } => (pid, iid),
            IdmpKey::Auto { pid } => {
                auto = auto_iid(fields);
                (pid, &auto[..])
            }
        };
        if let Some(id) = self.idmp.lookup(pid, iid, now_ms) {
            self.idmp.duplicates += 1;
            out.push(Mutation::IdmpDuplicates {
                count: self.idmp.duplicates,
            });
            return Ok(IdmpAdd::Duplicate(id));
        }
        let added = self.add(spec, fields, trim, now_ms, limits, out)?;
        let iid = Bytes::copy_from_slice(iid);
        let pid = self.idmp.record(pid, iid.clone(), added.id);
        self.idmp.added += 1;
        out.push(Mutation::IdmpAdded {
            pid,
            iid,
            id: added.id,
            added: self.idmp.added,
        });
        Ok(IdmpAdd::Added(added))
    }

    /// XCFGSET: sets the settings given; a change forgets every remembered ID. Records the
    /// settings whenever one was given (the record applies the same rule on replay).
    pub fn set_idmp_config(
        &mut self,
        duration: Option<u32>,
        maxsize: Option<u32>,
        out: &mut Vec<Mutation>,
    ) -> bool {
        let old = self.idmp.config;
        let config = IdmpConfig {
            duration: duration.unwrap_or(old.duration),
            maxsize: maxsize.unwrap_or(old.maxsize),
        };
        let changed = self.idmp.set_config(config);
        if changed {
            out.push(Mutation::IdmpConfigSet {
                duration: config.duration,
                maxsize: config.maxsize,
            });
        }
        changed
    }

    /// XIDMPRECORD: remembers that `iid` of `pid` added the live entry `id`. Already so
    /// mapped, it changes nothing.
    ///
    /// # Errors
    /// [`StreamError::IdmpNoSuchEntry`] when `id` is not a live entry; a conflict when the pair
    /// maps to another entry ([`StreamError::IdmpConflict`]); [`StreamError::Storage`] when a node cannot be read back.
    pub fn idmp_record(
        &mut self,
        pid: &[u8],
        iid: &[u8],
        id: StreamId,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<(), StreamError> {
        if self.range(id, id, Some(1), false)?.is_empty() {
            return Err(StreamError::IdmpNoSuchEntry);
        }
        match self.idmp.lookup(pid, iid, now_ms) {
            Some(have) if have == id => return Ok(()),
            Some(_) => return Err(StreamError::IdmpConflict),
            None => {}
        }
        // A restored mapping, not a new message: `iids-added` stays as it is.
        let iid = Bytes::copy_from_slice(iid);
        let pid = self.idmp.record(pid, iid.clone(), id);
        out.push(Mutation::IdmpAdded {
            pid,
            iid,
            id,
            added: self.idmp.added,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pair's hash is XXH3-128 of field || value whether it fits the stack buffer or not.
    #[test]
    fn auto_iid_hashes_short_and_long_pairs_alike() {
        for (f, v) in [(1usize, 1usize), (100, 156), (100, 157), (300, 5), (0, 0)] {
            let field = Bytes::from(vec![b'f'; f]);
            let value = Bytes::from(vec![b'v'; v]);
            let mut whole = field.to_vec();
            whole.extend_from_slice(&value);
            let want = xxhash_rust::xxh3::xxh3_128(&whole).to_le_bytes();
            assert_eq!(auto_iid(&[field, value]), want, "{f} + {v} bytes");
        }
    }
}
