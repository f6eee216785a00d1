//! Idempotent producers (Redis 8.6's IDMP): per producer ID, the idempotent IDs recently
//! added with XADD IDMP / IDMPAUTO and the entry each added, so a retried XADD returns the
//! original entry's ID instead of appending again.
//!
//! Each producer keeps at most `maxsize` IDs, oldest evicted first, and an ID is forgotten
//! once its entry's millisecond time is `duration` seconds behind the clock (Redis compares
//! the entry ID's time, not the time it was recorded). Expiry is applied lazily, with the
//! caller's clock: the set of IDs a command can see at time `t` is the same whatever
//! purges ran before, so purging needs no record of its own and replay may purge whenever.

use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashTable};

mod producer;

use producer::{Producer, expired};

use crate::error::StreamError;
use crate::id::{IdSpec, StreamId};
use crate::iid::Iid;
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
    let mut acc: u128 = 0;
    for pair in fields.chunks_exact(2) {
        acc ^= pair_hash(&pair[0], &pair[1]);
    }
    acc.to_le_bytes()
}

/// XXH3-128 of `f || v`: hashed in one call from a stack buffer where the pair fits one,
/// since the streaming hasher's set-up costs more than hashing a short pair. The buffer is
/// the smallest of a few sizes that fits (zeroing a large one costs as much as the hash).
fn pair_hash(f: &[u8], v: &[u8]) -> u128 {
    fn joined<const N: usize>(f: &[u8], v: &[u8]) -> u128 {
        let mut buf = [0u8; N];
        let n = f.len() + v.len();
        buf[..f.len()].copy_from_slice(f);
        buf[f.len()..n].copy_from_slice(v);
        xxhash_rust::xxh3::xxh3_128(&buf[..n])
    }
    match f.len() + v.len() {
        0..=32 => joined::<32>(f, v),
        33..=256 => joined::<256>(f, v),
        _ => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(f);
            h.update(v);
            h.digest128()
        }
    }
}

/// Producers by ID, and the hasher of producer and idempotent IDs.
#[derive(Clone, Debug, Default)]
struct Producers {
    hasher: DefaultHashBuilder,
    table: HashTable<(Bytes, Producer)>,
}

impl Producers {
    fn hash(&self, b: &[u8]) -> u64 {
        self.hasher.hash_one(b)
    }

    fn get(&self, pid: &[u8]) -> Option<&Producer> {
        self.table
            .find(self.hash(pid), |(k, _)| &k[..] == pid)
            .map(|(_, p)| p)
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&Bytes, &Producer)> {
        self.table.iter().map(|(k, p)| (k, p))
    }
}

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
        let (mine, theirs) = (self.pids(), other.pids());
        self.config == other.config
            && self.added == other.added
            && self.duplicates == other.duplicates
            && self.tracked == other.tracked
            && mine == theirs
            && self
                .producers
                .iter()
                .flat_map(|p| p.iter())
                .all(|(pid, p)| {
                    other
                        .producers
                        .as_ref()
                        .and_then(|o| o.get(pid))
                        .is_some_and(|q| p.live().eq(q.live()))
                })
    }
}

impl Eq for Idmp {}

/// A pair [`Idmp::lookup`] did not find: the bucket of its producer, if tracked.
#[derive(Clone, Copy)]
struct Absent(Option<usize>);

/// Where XADD IDMP's pair hashes: a lookup and the recording after the append hash the
/// IDs once.
#[derive(Clone, Copy)]
struct Hashed<'a> {
    pid: &'a [u8],
    pid_hash: u64,
    iid: &'a [u8],
    iid_hash: u64,
}

impl Idmp {
    /// Producers tracked.
    fn pids(&self) -> usize {
        self.producers.as_ref().map_or(0, |p| p.len())
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
    ) -> impl Iterator<Item = (&Bytes, impl Iterator<Item = (&[u8], StreamId)>)> {
        self.producers
            .iter()
            .flat_map(|p| p.iter())
            .filter(|(_, p)| !p.table.is_empty())
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
                let h = idmp.hashed(&pid, &iid);
                idmp.record(h, id);
            }
        }
        idmp
    }

    /// The pair with its hashes (the producers' table allocated first).
    fn hashed<'a>(&mut self, pid: &'a [u8], iid: &'a [u8]) -> Hashed<'a> {
        let producers = self.producers.get_or_insert_with(Box::default);
        Hashed {
            pid,
            pid_hash: producers.hash(pid),
            iid,
            iid_hash: producers.hash(iid),
        }
    }

    /// The ID the pair's producer added with its idempotent ID, if remembered at `now_ms`
    /// (expired IDs of the producer are forgotten on the way); otherwise where the producer
    /// is, for [`Idmp::record_absent`]. One lookup of the producer: this runs on every
    /// XADD IDMP.
    fn lookup(&mut self, h: Hashed<'_>, now_ms: u64) -> Result<StreamId, Absent> {
        let duration = self.config.duration;
        let Some(producers) = self.producers.as_mut() else {
            return Err(Absent(None));
        };
        let Ok(mut entry) = producers
            .table
            .find_entry(h.pid_hash, |(k, _)| &k[..] == h.pid)
        else {
            return Err(Absent(None));
        };
        let p = &mut entry.get_mut().1;
        self.tracked -= p.expire_head(duration, now_ms);
        if p.table.is_empty() {
            entry.remove();
            return Err(Absent(None));
        }
        let bucket = Absent(Some(entry.bucket_index()));
        let p = &mut entry.get_mut().1;
        let Some(n) = p.find(h.iid_hash, h.iid) else {
            return Err(bucket);
        };
        let id = p.slot(n).id;
        // Only an ID recorded out of order (XIDMPRECORD) can be expired behind a live head.
        if expired(id, duration, now_ms) {
            p.forget(h.iid_hash, n);
            self.tracked -= 1;
            return Err(bucket);
        }
        Ok(id)
    }

    /// Remembers that the pair's idempotent ID added entry `id` (replacing an older mapping
    /// of it), then evicts the producer's oldest IDs beyond `maxsize`.
    fn record(&mut self, h: Hashed<'_>, id: StreamId) {
        self.record_in(h, None, id);
    }

    /// [`Idmp::record`] of a pair [`Idmp::lookup`] found absent, with nothing changed
    /// since: neither the producer nor the ID is searched for again.
    fn record_absent(&mut self, h: Hashed<'_>, absent: Absent, id: StreamId) {
        self.record_in(h, Some(absent), id);
    }

    fn record_in(&mut self, h: Hashed<'_>, absent: Option<Absent>, id: StreamId) {
        let maxsize = self.config.maxsize.max(1) as usize;
        let producers = self.producers.get_or_insert_with(Box::default);
        let hasher = &producers.hasher;
        let found = match absent {
            Some(Absent(Some(bucket))) => producers.table.get_bucket_entry(bucket).ok(),
            Some(Absent(None)) => None,
            None => producers
                .table
                .find_entry(h.pid_hash, |(k, _)| &k[..] == h.pid)
                .ok(),
        };
        let p = match found {
            Some(o) => {
                let (k, p) = o.into_mut();
                debug_assert_eq!(&k[..], h.pid);
                p
            }
            None => {
                let key = Bytes::copy_from_slice(h.pid);
                let (_, p) = producers
                    .table
                    .insert_unique(h.pid_hash, (key, Producer::default()), |(k, _)| {
                        hasher.hash_one(&k[..])
                    })
                    .into_mut();
                p
            }
        };
        if p.push(h.iid_hash, h.iid, id, absent.is_some()) {
            self.tracked += 1;
        }
        // Stale slots (an ID recorded again) are otherwise dropped only when they reach
        // the head: compacting once they are half the order keeps it bounded, amortized O(1).
        if p.ring.len() > 2 * p.table.len() + 16 {
            p.compact();
        }
        while p.table.len() > maxsize {
            if p.pop_front() {
                self.tracked -= 1;
            }
        }
    }

    /// Forgets every expired ID at `now_ms` (what Redis's cron does every second).
    pub fn expire(&mut self, now_ms: u64) {
        let duration = self.config.duration;
        let mut gone = 0;
        let Some(producers) = self.producers.as_mut() else {
            return;
        };
        producers.table.retain(|(_, p)| {
            while let Some(s) = p.ring.front() {
                if !expired(s.id, duration, now_ms) && p.is_live(s.hash, p.base) {
                    break;
                }
                if p.pop_front() {
                    gone += 1;
                }
            }
            !p.table.is_empty()
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
            pids_tracked: self.pids() as u64,
            iids_tracked: self.tracked,
            iids_added: self.added,
            iids_duplicates: self.duplicates,
        }
    }

    /// Replays a logged addition: applied again over state that already holds it (storage
    /// may replay what a checkpoint wrote) it changes nothing.
    pub(crate) fn apply_added(&mut self, pid: &[u8], iid: &[u8], id: StreamId, added: u64) {
        self.added = self.added.max(added);
        let h = self.hashed(pid, iid);
        let known = self.producers.as_ref().is_some_and(|ps| {
            ps.table
                .find(h.pid_hash, |(k, _)| &k[..] == pid)
                .and_then(|(_, p)| p.find(h.iid_hash, iid).map(|n| p.slot(n).id))
                .is_some_and(|have| have >= id)
        });
        if !known {
            self.record(h, id);
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
    /// nothing, trims nothing and only counts itself; otherwise, once `expect_last` (XADD
    /// EXPECTLAST) holds, [`Stream::add`], and the ID is remembered.
    ///
    /// # Errors
    /// [`Stream::add`]'s, or [`StreamError::LastIdConflict`].
    #[allow(clippy::too_many_arguments)]
    pub fn add_idempotent(
        &mut self,
        key: IdmpKey<'_>,
        spec: IdSpec,
        fields: &[Bytes],
        trim: Option<&TrimArgs>,
        expect_last: Option<StreamId>,
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
        let h = self.idmp.hashed(pid, iid);
        let absent = match self.idmp.lookup(h, now_ms) {
            Ok(id) => {
                self.idmp.duplicates += 1;
                out.push(Mutation::IdmpDuplicates {
                    count: self.idmp.duplicates,
                });
                return Ok(IdmpAdd::Duplicate(id));
            }
            Err(absent) => absent,
        };
        // A retried append whose first attempt went in is answered above with its entry,
        // not refused because that attempt moved the last ID.
        if let Some(expected) = expect_last {
            self.expect_last(expected)?;
        }
        let added = self.add(spec, fields, trim, now_ms, limits, out)?;
        // Nothing touched the IDMP state since the lookup.
        self.idmp.record_absent(h, absent, added.id);
        self.idmp.added += 1;
        out.push(Mutation::IdmpAdded {
            // A copy, not the state's shared key: a short one costs no count to raise and
            // drop again.
            pid: Iid::new(pid),
            iid: Iid::new(iid),
            id: added.id,
            added: self.idmp.added,
            auto: matches!(key, IdmpKey::Auto { .. }),
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
        let h = self.idmp.hashed(pid, iid);
        match self.idmp.lookup(h, now_ms) {
            Ok(have) if have == id => return Ok(()),
            Ok(_) => return Err(StreamError::IdmpConflict),
            Err(_) => {}
        }
        // A restored mapping, not a new message: `iids-added` stays as it is.
        self.idmp.record(h, id);
        out.push(Mutation::IdmpAdded {
            pid: Iid::new(pid),
            iid: Iid::new(iid),
            id,
            added: self.idmp.added,
            auto: false,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recording, looking up, evicting and expiring, with IDs recorded again and out of
    /// order (as XIDMPRECORD and replay do, leaving stale slots and compacting them), agree
    /// with a list per producer in insertion order.
    #[test]
    fn state_matches_a_list_per_producer() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for maxsize in [1u32, 3, 40] {
            let config = IdmpConfig {
                duration: 5,
                maxsize,
            };
            let mut idmp = Idmp {
                config,
                ..Idmp::default()
            };
            // Per producer, its (iid, entry) oldest first.
            type Ids = Vec<(Vec<u8>, StreamId)>;
            let mut model: Vec<(Vec<u8>, Ids)> = Vec::new();
            let mut now = 10_000u64;
            for step in 0..20_000 {
                now += rnd(40);
                let pid = format!("p{}", rnd(3)).into_bytes();
                // Long IDs too, held on the heap.
                let iid =
                    format!("{:0w$}", rnd(60), w = if rnd(4) == 0 { 50 } else { 1 }).into_bytes();
                let cut = now.saturating_sub(5_000);
                let list = match model.iter().position(|(p, _)| *p == pid) {
                    Some(i) => i,
                    None => {
                        model.push((pid.clone(), Vec::new()));
                        model.len() - 1
                    }
                };
                let h = idmp.hashed(&pid, &iid);
                if rnd(3) == 0 {
                    // Out of order: an entry up to 6 s old.
                    let id = StreamId::new(now - rnd(6_000), step);
                    let l = &mut model[list].1;
                    l.retain(|(i, _)| *i != iid);
                    l.push((iid.clone(), id));
                    while l.len() > maxsize as usize {
                        l.remove(0);
                    }
                    idmp.record(h, id);
                } else {
                    let l = &mut model[list].1;
                    while l.first().is_some_and(|(_, id)| id.ms <= cut) {
                        l.remove(0);
                    }
                    let want = l
                        .iter()
                        .find(|(i, _)| *i == iid)
                        .map(|(_, id)| *id)
                        .filter(|id| id.ms > cut);
                    let found = idmp.lookup(h, now);
                    assert_eq!(found.ok(), want, "step {step}");
                    if want.is_none() {
                        l.retain(|(i, _)| *i != iid);
                    }
                    // XADD IDMP's append and recording after a miss.
                    if let (Err(absent), 0) = (found, rnd(2)) {
                        let id = StreamId::new(now, step);
                        l.push((iid.clone(), id));
                        while l.len() > maxsize as usize {
                            l.remove(0);
                        }
                        idmp.record_absent(h, absent, id);
                    }
                }
                if rnd(50) == 0 {
                    idmp.expire(now);
                    for (_, l) in &mut model {
                        while l.first().is_some_and(|(_, id)| id.ms <= cut) {
                            l.remove(0);
                        }
                    }
                    model.retain(|(_, l)| !l.is_empty());
                    assert_eq!(idmp.pids(), model.len(), "step {step}");
                    let tracked: usize = model.iter().map(|(_, l)| l.len()).sum();
                    assert_eq!(idmp.tracked, tracked as u64, "step {step}");
                    for (pid, l) in &model {
                        let p = idmp.producers.as_ref().and_then(|ps| ps.get(pid));
                        let live: Vec<(Vec<u8>, StreamId)> = p
                            .into_iter()
                            .flat_map(|p| p.live())
                            .map(|(i, id)| (i.to_vec(), id))
                            .collect();
                        assert_eq!(&live, l, "step {step}");
                        let p = p.map(|p| (p.ring.len(), p.table.len()));
                        assert!(p.is_some_and(|(r, t)| r <= 2 * t + 16), "step {step}");
                    }
                }
            }
        }
    }

    /// A pair's hash is XXH3-128 of field || value whether it fits the stack buffer or not.
    #[test]
    fn auto_iid_hashes_short_and_long_pairs_alike() {
        for (f, v) in [
            (1usize, 1usize),
            (1, 12),
            (16, 16),
            (16, 17),
            (100, 156),
            (100, 157),
            (300, 5),
            (0, 0),
        ] {
            let field = Bytes::from(vec![b'f'; f]);
            let value = Bytes::from(vec![b'v'; v]);
            let mut whole = field.to_vec();
            whole.extend_from_slice(&value);
            let want = xxhash_rust::xxh3::xxh3_128(&whole).to_le_bytes();
            assert_eq!(auto_iid(&[field, value]), want, "{f} + {v} bytes");
        }
    }
}
