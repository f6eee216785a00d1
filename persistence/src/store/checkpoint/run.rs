//! A whole checkpoint: the streams the closed tail-log segments name, taken in key order
//! into batches, each built under the streams' locks and committed after, then the
//! segments retired.

use bytes::Bytes;
use hashbrown::HashMap;

use crate::error::StoreError;
use crate::stored::StoredStream;

use super::{Added, Store};

/// Entries the checkpoint writes in one batch, about what a segment holds (ingested as a
/// table unless it is small and spread over many streams: see `PendingFlush::commit`).
/// Under a stream's lock a batch only takes shared copies of nodes, whatever its size; each
/// ingestion holds the lock every commit takes for a fixed few milliseconds (fsyncs of the
/// table and of fjall's version), so few large batches stall commands less than many small
/// ones.
const BATCH_ENTRIES: usize = 150_000;

/// Batches per database after which each batch takes every stream it reaches whole,
/// whatever its size (only a busy stream ends it early), so that a checkpoint always ends:
/// it retires the segments after its last batch, so it must leave no logged append behind.
const MAX_BATCHES: usize = 256;

/// The keyspace the streams live in (the server's): a checkpoint visits each stream under
/// the lock its commands take, as a command would.
pub trait StreamHost {
    /// Runs `f`, one checkpoint batch, while the keyspace cannot be replaced under it
    /// (DEBUG RELOAD waits for it).
    fn batch(&self, f: &mut dyn FnMut());

    /// Calls `f` with stream `key` of database `db`, if there is one, under the lock its
    /// commands take. When `wait` is false and the lock does not come free within a brief
    /// try, returns false without calling `f` (the lock's holder may be waiting for the
    /// batch being built); true otherwise.
    fn visit(&self, db: u32, key: &[u8], wait: bool, f: &mut dyn FnMut(&mut StoredStream)) -> bool;

    /// Calls `f` with what key `key` of database `db` holds now (its value if it is a
    /// string, its deadline whatever its type; a missing key holds neither), under the lock
    /// its commands take; `wait` and the result as for [`StreamHost::visit`].
    fn visit_key(&self, db: u32, key: &[u8], wait: bool, f: &mut dyn FnMut(KeyState)) -> bool;
}

/// What a key holds, as the checkpoint writes it into the `strings` and `expires` keyspaces.
#[derive(Debug, Clone, Default)]
pub struct KeyState {
    /// Its value, if it is a string held in memory.
    pub string: Option<Bytes>,
    /// Whether it is a string whose value is fjall's record already (loaded at start-up
    /// without its value and not written since): the checkpoint leaves that record be.
    pub string_on_disk: bool,
    /// Its deadline (unix ms), if it has one.
    pub deadline: Option<u64>,
}

impl Store {
    /// Whether the background checkpoint has work: the closed tail-log segments hold
    /// `tail-log-checkpoint-bytes` (see [`Store::set_checkpoint_bytes`]).
    pub fn checkpoint_due(&self) -> bool {
        self.tail.checkpoint_due()
    }

    /// Writes every append and group change logged in the closed tail-log segments into
    /// fjall, then syncs fjall and deletes the segments. Unless `all` (SAVE, SHUTDOWN), only
    /// once they hold `tail-log-checkpoint-bytes`. Call with no stream's lock held and
    /// outside any exclusive use of `streams`.
    ///
    /// Per database, the streams are taken in the order of their keys in fjall (length,
    /// then bytes) into batches of about `BATCH_ENTRIES` entries: each batch's entries
    /// come out sorted, and successive batches cover successive key ranges, so the tables
    /// they are ingested as do not overlap one another. Each stream is copied under its
    /// lock, which is let go at once; the batch is committed with no lock held. A batch
    /// also ends early at a stream whose lock stays taken.
    ///
    /// # Errors
    /// When a batch, the sync or a segment's removal fails; the segments then stay.
    ///
    /// With the segments' streams go those with group changes no log holds
    /// ([`Store::note_untracked`]); with `all` (SAVE, shutdown) even when no segment is
    /// stale, and then only fjall is synced.
    pub fn checkpoint(&self, streams: &dyn StreamHost, all: bool) -> Result<(), StoreError> {
        let stale = self.tail.stale(all);
        if stale.is_none() && !all {
            return Ok(());
        }
        let untracked = self.take_untracked();
        let strings = stale
            .as_ref()
            .map(|(upto, _)| self.tail.stale_strings(*upto))
            .unwrap_or_default();
        let (upto, mut names) = match stale {
            Some((upto, names)) => (Some(upto), names),
            None if untracked.is_empty() => return Ok(()),
            None => (None, Vec::new()),
        };
        names.extend(untracked.iter().cloned());
        names.sort_unstable();
        names.dedup();
        let started = self.durability.latency.start();
        let done = self.checkpoint_names(streams, upto, names, &strings.names());
        self.durability
            .latency
            .since(crate::latency::events::CHECKPOINT, started);
        if done.is_err() {
            self.restore_untracked(untracked);
            return done;
        }
        if !all {
            // The open segment may still hold older values of the records written: replay
            // after a DEBUG RELOAD would set them back, so the streams stay listed for it.
            self.restore_untracked(untracked);
            return done;
        }
        // A stream the checkpoint had to leave out (being flushed, or under a purge) keeps
        // its changes: it stays listed for the next.
        let left: Vec<_> = untracked
            .into_iter()
            .filter(|(db, key)| {
                let mut dirty = None;
                let seen = streams.visit(*db, key, false, &mut |s| {
                    dirty = Some(s.has_dirty_groups());
                });
                // A stream whose lock stays taken is kept listed; one gone is not.
                !seen || dirty == Some(true)
            })
            .collect();
        if !left.is_empty() {
            self.restore_untracked(left);
        }
        done
    }

    /// The checkpoint of `names`, then the retirement of the segments up to `upto`.
    fn checkpoint_names(
        &self,
        streams: &dyn StreamHost,
        upto: Option<u64>,
        names: Vec<crate::tail_log::StreamName>,
        strings: &[&crate::tail_log::StreamName],
    ) -> Result<(), StoreError> {
        let _one_at_a_time = self.checkpoint_guard();
        self.wait_for_deletions(&names);
        let mut by_db: HashMap<u32, Vec<Bytes>> = HashMap::new();
        for (db, key) in names {
            by_db.entry(db).or_default().push(key);
        }
        for (db, mut keys) in by_db {
            keys.sort_unstable_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
            let mut next = 0;
            for batch in 0.. {
                if next == keys.len() {
                    break;
                }
                // Past MAX_BATCHES, batches are unbounded: a stream whose appends kept ahead
                // of the batches is then taken whole, so the checkpoint ends.
                let max = if batch >= MAX_BATCHES {
                    usize::MAX
                } else {
                    BATCH_ENTRIES
                };
                let mut done = Ok(());
                streams.batch(&mut || {
                    done = self.checkpoint_batch(streams, db, &keys, &mut next, max)
                });
                done?;
            }
        }
        self.checkpoint_strings(streams, strings)?;
        match upto {
            Some(upto) => self.retire_tail(upto),
            None => self.durability.sync_now(&self.db),
        }
    }

    /// One batch of a checkpoint: the streams of `keys` from `next` on, until it holds
    /// `max` entries; `next` moves past the streams it took whole.
    fn checkpoint_batch(
        &self,
        streams: &dyn StreamHost,
        db: u32,
        keys: &[Bytes],
        next: &mut usize,
        max: usize,
    ) -> Result<(), StoreError> {
        let mut pending = self.begin_flush();
        while let Some(key) = keys.get(*next) {
            // Once the batch holds a stream, a change to it waits for the batch under the
            // stream's lock: waiting for that lock then would never end, so a stream that
            // stays busy ends the batch.
            let mut added = Added::Nothing;
            let wait = pending.is_empty();
            if !streams.visit(db, key, wait, &mut |s| added = pending.add(db, key, s, max)) {
                break;
            }
            if added == Added::Full {
                // This stream may have appends left: the next batch starts with it.
                break;
            }
            *next += 1;
        }
        if pending.is_empty() {
            return Ok(());
        }
        let flushed = std::mem::take(&mut pending.keys);
        let committed = pending.commit();
        for key in &flushed {
            // A stream deleted (and perhaps created again) since is not the one marked.
            streams.visit(db, key, true, &mut |s| s.end_flush(committed.is_ok()));
        }
        committed.map(|_| ())
    }
}
