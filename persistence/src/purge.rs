//! Lazy removal of a deleted stream's records, and of those below a large trim's floor
//! (Redis's lazy free, for the disk).
//!
//! Removing a stream means one tombstone per record: for 1.2M entries, a 1.2M-key batch
//! that held every client behind the DEL for a second (the server runs commands on one
//! thread, as Redis does). A DEL of a large stream now removes its stream record and leaves
//! a purge marker (`purge/` + prefix in `meta`) in one small batch; a large trim leaves a
//! `trim/` marker (see `store/trim.rs`). This module's thread then removes the rest in small
//! batches, oldest purge first, the marker with the last. Until a purge ends, a stream it
//! could reach writes nothing into fjall ([`Purges::wait_clear`], [`Purges::blocks`]): a new
//! stream under a deleted key, or another life of a trimmed one; their plain appends go to
//! the tail log meanwhile, so XADD never waits. Start-up finishes the deletions' purges a
//! previous run left before it loads anything (their streams' other records would be
//! orphans), and resumes the trims' in the background (loading skips the node records
//! below a pending trim's floor).
//!
//! A second thread compacts the stream keyspaces when asked ([`Purges::request_compaction`]):
//! after its purges, after many records were trimmed, and on BGREWRITEAOF. fjall's leveled
//! compaction alone left a deleted stream's tombstones and data on disk indefinitely, so disk
//! usage did not follow the data, as Redis's AOF rewrite makes it do (docs/performance.md,
//! Storage).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fjall::{Database, PersistMode};

use brooklet_streams::StreamId;

use crate::durability::Durability;
use crate::keys::{entry_key, read_id, read_u64};
use crate::store::Keyspaces;

/// Where purge markers live in the `meta` keyspace.
pub const PURGE_PREFIX: &[u8] = b"purge/";

/// Removals below this never ask for a compaction (see [`Purges::note_removed`]).
const MIN_REMOVED_TO_COMPACT: u64 = BATCH_KEYS as u64;

/// Items of `entries` above which removals no longer ask for a compaction by themselves
/// (about 4M): a major compaction holds off fjall's other compactions for as long as it
/// runs, which grows with the items compacted.
const AUTO_COMPACT_MAX_ITEMS: u64 = 1 << 22;

/// Records removed per batch: a batch holds fjall's journal lock, which every write waits
/// for, through its commit: small batches keep that wait short.
const BATCH_KEYS: usize = 4096;

/// Where the markers of trims' purges live in the `meta` keyspace.
pub const TRIM_PREFIX: &[u8] = b"trim/";

/// A purge marker's key: [`PURGE_PREFIX`] + the prefix whose records go.
pub fn purge_key(prefix: &[u8]) -> Vec<u8> {
    [PURGE_PREFIX, prefix].concat()
}

/// A trim's purge marker key: [`TRIM_PREFIX`] + the stream prefix + the highest ID whose
/// records go (ms, seq). Its value is the incarnation of the stream trimmed.
pub fn trim_key(prefix: &[u8], upto: StreamId) -> Vec<u8> {
    [TRIM_PREFIX, &entry_key(prefix, upto)].concat()
}

/// Records to remove in the background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purge {
    /// Every record under this prefix (a stream's, a database's, or all).
    pub prefix: Vec<u8>,
    /// For a trim: only the `entries` and `nodes` records of the stream `prefix` names with
    /// IDs up to this one (and from [`Purge::from`]), and `incarnation` is the life of the
    /// stream that was trimmed.
    pub trim: Option<(StreamId, u64)>,
    /// For a trim, the lowest ID whose records go: `0-0` below a floor, the first node of a
    /// run of nodes an ACKED trim took past a node it kept.
    pub from: StreamId,
}

impl Purge {
    /// A deletion's purge: every record under `prefix`.
    pub fn deleted(prefix: Vec<u8>) -> Purge {
        Purge {
            prefix,
            trim: None,
            from: StreamId::MIN,
        }
    }

    /// A trim's purge: the records of stream `prefix` from `from` to `upto`, of its life
    /// `incarnation`.
    pub fn trimmed(prefix: Vec<u8>, from: StreamId, upto: StreamId, incarnation: u64) -> Purge {
        Purge {
            prefix,
            trim: Some((upto, incarnation)),
            from,
        }
    }

    /// Its marker's value in `meta`: the life trimmed, then `from` unless it is `0-0`
    /// (since format 9).
    pub fn marker_value(&self) -> Vec<u8> {
        let mut v = self.trim.map_or(0, |t| t.1).to_be_bytes().to_vec();
        if self.from != StreamId::MIN {
            v.extend_from_slice(&self.from.ms.to_be_bytes());
            v.extend_from_slice(&self.from.seq.to_be_bytes());
        }
        v
    }

    /// Whether this purge could remove records that stream `prefix` writes now, if it is
    /// the life `incarnation` (None: a life not yet numbered, or being renumbered). A
    /// deletion's purge takes every record under its prefix; a trim's only records below
    /// its floor, which the trimmed life never writes again, but another life of the key
    /// (after DEL, or XSETID moving the last ID back) may.
    fn blocks(&self, prefix: &[u8], incarnation: Option<u64>) -> bool {
        match self.trim {
            None => prefix.starts_with(&self.prefix),
            Some((_, trimmed)) => self.prefix == prefix && incarnation != Some(trimmed),
        }
    }

    /// Its marker's key in `meta`.
    fn marker(&self) -> Vec<u8> {
        match self.trim {
            None => purge_key(&self.prefix),
            Some((upto, _)) => trim_key(&self.prefix, upto),
        }
    }
}

/// The prefixes whose records are still being removed.
#[derive(Default)]
pub struct Purges {
    state: Mutex<State>,
    /// Signalled when a purge is added, ends, or the thread must stop.
    changed: Condvar,
    /// How many are pending: a new stream looks here before taking the lock.
    count: AtomicUsize,
    /// How many have ended since start (INFO `lazyfreed_objects`).
    done: AtomicU64,
    /// Records removed (by purges and commands' own batches) since a compaction was last
    /// asked for.
    removed: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Oldest first: a trim's purge ends before a later deletion of its stream does, so a
    /// new stream waiting for that deletion's purge never meets the trim's.
    prefixes: Vec<Purge>,
    /// A compaction of the stream keyspaces is wanted (run once no purge is pending).
    compact: bool,
    /// Removals asked for one: it runs as `compact` does, but not within
    /// [`AUTO_COMPACT_INTERVAL`] of the last one's start.
    compact_auto: bool,
    /// When the last compaction started.
    last_compaction: Option<Instant>,
    stop: bool,
}

/// Least time between the starts of two compactions that removals asked for. A stream capped
/// at a few thousand entries removes a quarter of what fjall holds every few thousand XADDs:
/// dozens of major compactions a second, a quarter of the server's CPU, for disk space one
/// compaction a second gives back as well.
const AUTO_COMPACT_INTERVAL: Duration = Duration::from_secs(1);

impl Purges {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the records `purge` names to the purge thread (once its marker is committed).
    pub fn add(&self, purge: Purge) {
        let mut g = self.lock();
        // Under a pending purge no stream writes into fjall, so the one pending covers it all.
        // (The ranges of an ACKED trim, thousands at times, are distinct by construction.)
        if purge.from == StreamId::MIN && g.prefixes.contains(&purge) {
            return;
        }
        g.prefixes.push(purge);
        self.count.store(g.prefixes.len(), Ordering::Release);
        self.changed.notify_all();
    }

    /// Purges not finished yet (INFO `lazyfree_pending_objects`).
    pub fn pending(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Purges ended since start.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Whether a pending purge covers records under `prefix`, or `prefix` covers one's.
    pub fn overlaps(&self, prefix: &[u8]) -> bool {
        self.pending() > 0
            && self
                .lock()
                .prefixes
                .iter()
                .any(|p| prefix.starts_with(&p.prefix) || p.prefix.starts_with(prefix))
    }

    /// Whether a pending purge could remove records stream `prefix` would write now as the
    /// life `incarnation` (see [`Purge::blocks`]).
    pub fn blocks(&self, prefix: &[u8], incarnation: Option<u64>) -> bool {
        self.pending() > 0
            && self
                .lock()
                .prefixes
                .iter()
                .any(|p| p.blocks(prefix, incarnation))
    }

    /// Waits until no pending purge covers records under `prefix` nor `prefix` covers one's
    /// (before records under it are rewritten whole, as SWAPDB does).
    pub fn wait_overlaps(&self, prefix: &[u8]) {
        if self.pending() == 0 {
            return;
        }
        let mut g = self.lock();
        while !g.stop
            && g.prefixes
                .iter()
                .any(|p| prefix.starts_with(&p.prefix) || p.prefix.starts_with(prefix))
        {
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until no pending purge could remove records that stream `prefix` writes as
    /// the life `incarnation` (see [`Purge::blocks`]).
    pub fn wait_clear(&self, prefix: &[u8], incarnation: Option<u64>) {
        if self.pending() == 0 {
            return;
        }
        let mut g = self.lock();
        while !g.stop && g.prefixes.iter().any(|p| p.blocks(prefix, incarnation)) {
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until no pending deletion's purge covers records under `prefix`.
    pub fn wait_deletions(&self, prefix: &[u8]) {
        if self.pending() == 0 {
            return;
        }
        let mut g = self.lock();
        while !g.stop
            && g.prefixes
                .iter()
                .any(|p| p.trim.is_none() && prefix.starts_with(&p.prefix))
        {
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Counts `n` records removed and asks for a compaction once the removals since the last
    /// request reach a quarter of what `entries` holds (fjall's count, tombstones included,
    /// so never less than what is live): the compaction rewrites the keyspaces, so its cost
    /// stays within four times what was removed; and then at most one a second
    /// ([`AUTO_COMPACT_INTERVAL`]). Not above [`AUTO_COMPACT_MAX_ITEMS`]: a
    /// major compaction holds off fjall's other compactions while it runs, and there a run
    /// long enough to stall writes is left to BGREWRITEAOF, when an operator chooses.
    pub fn note_removed(&self, n: u64, entries: &fjall::Keyspace) {
        if n == 0 {
            return;
        }
        let total = self.removed.fetch_add(n, Ordering::Relaxed) + n;
        if total < MIN_REMOVED_TO_COMPACT {
            return;
        }
        let held = entries.approximate_len() as u64;
        if total.saturating_mul(4) >= held && held <= AUTO_COMPACT_MAX_ITEMS {
            self.removed.store(0, Ordering::Relaxed);
            self.lock().compact_auto = true;
            self.changed.notify_all();
        }
    }

    /// Asks for a major compaction of the stream keyspaces, once no purge is pending.
    pub fn request_compaction(&self) {
        self.removed.store(0, Ordering::Relaxed);
        self.lock().compact = true;
        self.changed.notify_all();
    }

    /// Stops the purge thread after its current batch; what is left resumes at the next start.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// The next purge to run, waiting for one; None once stopped.
    fn next_purge(&self) -> Option<Purge> {
        let mut g = self.lock();
        loop {
            if g.stop {
                return None;
            }
            if let Some(p) = g.prefixes.first() {
                return Some(p.clone());
            }
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until a compaction is asked for and no purge is pending (so it takes their
    /// tombstones along); false once stopped.
    fn next_compaction(&self) -> bool {
        let mut g = self.lock();
        loop {
            if g.stop {
                return false;
            }
            // How long an automatic compaction must still wait (zero: it may run).
            let auto_wait = g.last_compaction.map_or(Duration::ZERO, |t| {
                AUTO_COMPACT_INTERVAL.saturating_sub(t.elapsed())
            });
            if g.prefixes.is_empty() && (g.compact || (g.compact_auto && auto_wait.is_zero())) {
                g.compact = false;
                g.compact_auto = false;
                g.last_compaction = Some(Instant::now());
                return true;
            }
            g = if g.compact_auto && !auto_wait.is_zero() {
                self.changed
                    .wait_timeout(g, auto_wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0)
            } else {
                self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
            };
        }
    }

    /// Waits until every pending purge has ended (DEBUG RELOAD, which would otherwise find
    /// records of streams it has no record of).
    pub fn wait_all(&self) {
        let mut g = self.lock();
        while !g.stop && !g.prefixes.is_empty() {
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Moves the pending trims' purges of stream `prefix` from its life `from` to `to`: a
    /// batch renumbered the stream without moving its last ID back (it removed pending
    /// entries), so their floors still hold for it. Returns those purges, whose markers the
    /// batch rewrites with `to`: a restart applies a floor only to the life it names.
    pub fn relabel(&self, prefix: &[u8], from: u64, to: u64) -> Vec<Purge> {
        let mut g = self.lock();
        let mut moved = Vec::new();
        for p in g.prefixes.iter_mut() {
            if let Some((_, life)) = &mut p.trim
                && p.prefix == prefix
                && *life == from
            {
                *life = to;
                moved.push(p.clone());
            }
        }
        moved
    }

    fn finish(&self, purge: &Purge) {
        let mut g = self.lock();
        // By prefix and floor: the purge may have been relabelled since the thread took it.
        let same =
            |p: &Purge| p.prefix == purge.prefix && p.trim.map(|t| t.0) == purge.trim.map(|t| t.0);
        if let Some(i) = g.prefixes.iter().position(same) {
            g.prefixes.remove(i);
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        self.count.store(g.prefixes.len(), Ordering::Release);
        self.changed.notify_all();
    }
}

/// The purge thread: removes the records of each pending purge, a batch at a time.
fn run(
    purges: &Purges,
    ks: &Keyspaces,
    db: &Database,
    durability: &Durability,
) -> Result<(), fjall::Error> {
    let health = &durability.health;
    // Before each batch: on a full disk, wait for room (no batch may meet it: fjall refuses
    // every write for good once one of its own failed), looking again every 200 ms.
    let stop = || {
        while !purges.stopped() && !health.broken() && health.ensure_room().is_err() {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        purges.stopped() || health.broken()
    };
    while let Some(next) = purges.next_purge() {
        let published = || {
            durability.publish(false);
        };
        let started = durability.latency.start();
        let purged = purge(ks, db, &next, &stop, &published)?;
        durability
            .latency
            .since(crate::latency::events::PURGE, started);
        let Some(removed) = purged else {
            // After a failed write or fsync nothing more is written; whoever waits for a
            // purge is let go, to meet that refusal.
            if health.broken() {
                purges.stop();
            }
            return Ok(());
        };
        purges.finish(&next);
        purges.note_removed(removed, &ks.entries);
    }
    Ok(())
}

/// Removes every record `purge` names, then its marker; returns how many records it
/// removed, None if `stop` said to stop first. `committed` runs after each batch.
pub(crate) fn purge(
    ks: &Keyspaces,
    db: &Database,
    purge: &Purge,
    stop: &dyn Fn() -> bool,
    committed: &dyn Fn(),
) -> Result<Option<u64>, fjall::Error> {
    let prefix = purge.prefix.as_slice();
    let (spaces, end) = match purge.trim {
        None => (ks.stream_records().to_vec(), None),
        // A trim takes entries and nodes (whose keys are the stream's prefix and an ID) up
        // to its floor, never the stream's record or its groups'.
        Some((upto, _)) => (vec![&ks.entries, &ks.nodes], Some(entry_key(prefix, upto))),
    };
    let mut removed = 0;
    for space in spaces {
        // Each batch scans on from the last key it removed: starting again at the prefix
        // would walk over every tombstone already written.
        let mut from = if purge.from == StreamId::MIN {
            prefix.to_vec()
        } else {
            entry_key(prefix, purge.from)
        };
        loop {
            if stop() {
                return Ok(None);
            }
            let mut batch = db.batch().durability(Some(PersistMode::Buffer));
            let mut taken = 0;
            let mut last = None;
            for kv in space.range(from.as_slice()..).take(BATCH_KEYS) {
                let key = kv.key()?;
                if !key.starts_with(prefix) || end.as_deref().is_some_and(|end| &key[..] > end) {
                    break;
                }
                taken += 1;
                last = Some(key.to_vec());
                batch.remove(space, key);
            }
            let Some(last) = last else { break };
            batch.commit()?;
            committed();
            removed += taken as u64;
            if taken < BATCH_KEYS {
                break;
            }
            from = last;
        }
    }
    let mut batch = db.batch().durability(Some(PersistMode::Buffer));
    batch.remove(&ks.meta, purge.marker());
    batch.commit()?;
    committed();
    Ok(Some(removed))
}

/// The purges a previous run left pending: trims', then deletions'.
pub(crate) fn pending(ks: &Keyspaces) -> Result<Vec<Purge>, fjall::Error> {
    let mut out = Vec::new();
    for kv in ks.meta.prefix(TRIM_PREFIX) {
        let (k, v) = kv.into_inner()?;
        let rest = &k[TRIM_PREFIX.len()..];
        // A marker this build cannot read names nothing it could safely remove.
        let Some(split) = rest.len().checked_sub(16) else {
            continue;
        };
        let (Some(upto), Some(incarnation)) = (read_id(&rest[split..]), read_u64(&v, 0)) else {
            continue;
        };
        let from = read_id(v.get(8..).unwrap_or_default()).unwrap_or(StreamId::MIN);
        out.push(Purge::trimmed(
            rest[..split].to_vec(),
            from,
            upto,
            incarnation,
        ));
    }
    for kv in ks.meta.prefix(PURGE_PREFIX) {
        out.push(Purge::deleted(kv.key()?[PURGE_PREFIX.len()..].to_vec()));
    }
    Ok(out)
}

/// Starts the purge thread and the compaction thread. Compactions run on their own thread,
/// so a purge (which a new stream under its key waits for) never waits behind one.
pub(crate) fn spawn(
    purges: Arc<Purges>,
    ks: Keyspaces,
    db: Database,
    durability: Arc<Durability>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let stopper = purges.clone();
    let compactor = {
        let (purges, ks, db, durability) =
            (purges.clone(), ks.clone(), db.clone(), durability.clone());
        std::thread::Builder::new()
            .name("brooklet-compact".into())
            .spawn(move || {
                let health = &durability.health;
                // A compaction writes a batch (which fjall would be poisoned by on a full
                // disk) and new tables: it stops while the disk is below the reserve, and
                // runs again once it has room, looking every 200 ms as the purges do.
                let stop = || purges.stopped() || !health.ok() || health.ensure_room().is_err();
                while purges.next_compaction() {
                    while !purges.stopped() && !health.broken() && health.ensure_room().is_err() {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    if purges.stopped() || health.broken() {
                        continue;
                    }
                    // Stopped for want of room: asked again, to run once there is room.
                    let started = durability.latency.start();
                    let done = crate::compaction::compact(&ks, &db, &stop);
                    durability
                        .latency
                        .since(crate::latency::events::COMPACTION, started);
                    if !done && !purges.stopped() && !health.ok() && !health.broken() {
                        purges.request_compaction();
                    }
                }
            })?
    };
    let purger = std::thread::Builder::new()
        .name("brooklet-purge".into())
        .spawn(move || {
            if let Err(e) = run(&purges, &ks, &db, &durability) {
                // The markers stay, and the next start resumes the purges. Until then a new
                // stream under a pending purge's prefix must not be written (the purge would
                // take its records), so writes stop, as after a failed fsync, and whoever
                // waits for a purge is let go to meet that refusal.
                tracing::error!("purging deleted streams failed, refusing writes: {e}");
                let cause = format!("purging deleted streams: {e}");
                durability
                    .health
                    .fail(crate::FaultKind::EngineFailed, cause);
                purges.stop();
            }
        });
    match purger {
        Ok(purger) => Ok(vec![purger, compactor]),
        Err(e) => {
            // The compaction thread would otherwise wait for good.
            stopper.stop();
            let _ = compactor.join();
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Runs `next_compaction` on another thread; its answer, if it came within `wait`.
    fn next_within(purges: &Arc<Purges>, wait: Duration) -> Option<bool> {
        let (tx, rx) = mpsc::channel();
        let p = purges.clone();
        std::thread::spawn(move || tx.send(p.next_compaction()));
        let got = rx.recv_timeout(wait).ok();
        if got.is_none() {
            purges.stop();
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(false));
        }
        got
    }

    #[test]
    fn removals_compact_at_most_once_a_second_explicit_requests_at_once() {
        let purges = Arc::new(Purges::default());
        // A compaction that started "now" as far as the next hour is concerned.
        let recent = || Some(Instant::now() + Duration::from_secs(3600));
        {
            let mut g = purges.lock();
            g.last_compaction = recent();
            g.compact_auto = true;
        }
        // Held back (the stop ends the wait).
        assert_eq!(next_within(&purges, Duration::from_millis(1500)), None);

        let purges = Arc::new(Purges::default());
        purges.lock().last_compaction = recent();
        purges.request_compaction();
        assert_eq!(next_within(&purges, Duration::from_secs(10)), Some(true));

        // Once the second is up, a held request runs with nothing more removed.
        let purges = Arc::new(Purges::default());
        let before = Instant::now();
        {
            let mut g = purges.lock();
            g.last_compaction = Some(before);
            g.compact_auto = true;
        }
        assert_eq!(next_within(&purges, Duration::from_secs(10)), Some(true));
        assert!(before.elapsed() >= AUTO_COMPACT_INTERVAL);
        assert!(!purges.lock().compact_auto);
    }
}
