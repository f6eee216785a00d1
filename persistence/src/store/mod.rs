//! The store: the open data directory and its keyspaces. Its work is split by concern:
//! `open` (opening and recovery), `replay` (the tail log applied to the loaded streams),
//! `write` (each command's changes), `checkpoint` (the tail log into fjall), `delete`
//! (deletions and the purges they start) and `stats` (the numbers INFO shows).

mod checkpoint;
mod delete;
mod open;
mod pair;
mod relocate;
mod replay;
mod restore;
mod stats;
mod strings;
mod trim;
mod untracked;
mod write;

pub use checkpoint::{KeyState, PendingFlush, StreamHost};
pub use pair::StreamChange;
pub use stats::StoreStats;
pub use strings::{Deadline, LoadedDeadline, LoadedKeys, LoadedString, StringEdit};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use brooklet_streams::EntrySource;
use fjall::{Database, Keyspace, OwnedWriteBatch, PersistMode};

use crate::durability::{Durability, FsyncPolicy, OnDurable};
use crate::error::StoreError;
use crate::keys::stream_prefix;
use crate::purge::Purges;
use crate::source::{CacheMisses, FjallSource};
use crate::tail_log::TailLog;

/// Default for `stream-cache-bytes`: node data one stream keeps in memory besides its tail.
pub const DEFAULT_STREAM_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// The on-disk format this build writes and reads (2 added the `nodes` keyspace, 3 the tail
/// log and the stream record's incarnation, 4 streams created in the tail log and the
/// floors that keep deleted ones dead, 5 group changes in the tail log, 6 purge markers,
/// under which a deleted stream's records are not orphans, 7 tail-log bodies in the record
/// encodings fjall uses, 8 trims' purge markers, below which a stream's records are not
/// its own any more, 9 pending records and tail-log changes of entries XNACK released, the
/// stream record's IDMP section with its tail-log records, and trims' purge markers of a
/// range of nodes, with its lowest ID after the life; strings and key deadlines, in keyspaces
/// of their own and as tail-log records of their own, flag 0x80, numbered as stream lives
/// are so deletion floors cover them; the group record's sections (counters, dead-letter
/// settings) with their tail-log changes; the stream record's retention section, after the
/// IDMP section; 10 APPEND's string change, the bytes added rather than the whole value). A
/// format-3 to 9 directory is read as it is and stamped 10: its tail-log records say by a
/// flag that their bodies are in the older layout, which replay still reads; the stamp
/// keeps an older build, which could not, from opening it (nor a format-7 build from
/// loading records a trim's purge had yet to remove, nor a format-8 build from reading a
/// released entry's record as an owned one, or from loading or purging as a floor what a
/// range's purge removes, nor a format-9 build from refusing a log with APPEND's changes).
pub const FORMAT_VERSION: u32 = 10;

/// An entry record's key and value in the `entries` keyspace.
type EntryRecord = (Vec<u8>, Vec<u8>);

/// The fjall keyspaces, one per class of record.
#[derive(Clone)]
pub(crate) struct Keyspaces {
    /// Format version and other store-wide facts.
    pub meta: Keyspace,
    /// One record per stream: last-id, entries-added, max-deleted-id.
    pub streams: Keyspace,
    /// One record per entry, ordered by stream then ID.
    pub entries: Keyspace,
    /// One record per node: its ID bounds and counts, so start-up need not read entries.
    pub nodes: Keyspace,
    /// One record per consumer group.
    pub groups: Keyspace,
    /// One record per consumer.
    pub consumers: Keyspace,
    /// One record per pending entry.
    pub pending: Keyspace,
    /// One record per string: its value (format 9).
    pub strings: Keyspace,
    /// One record per key with a deadline, string or stream: unix ms, u64 (format 9).
    pub expires: Keyspace,
}

impl Keyspaces {
    /// Every keyspace.
    fn all(&self) -> [&Keyspace; 9] {
        let [streams, entries, nodes, groups, consumers, pending] = self.stream_records();
        [
            &self.meta,
            streams,
            entries,
            nodes,
            groups,
            consumers,
            pending,
            &self.strings,
            &self.expires,
        ]
    }

    /// The keyspaces whose keys start with a stream's prefix: all but `meta`.
    pub(crate) fn stream_records(&self) -> [&Keyspace; 6] {
        [
            &self.streams,
            &self.entries,
            &self.nodes,
            &self.groups,
            &self.consumers,
            &self.pending,
        ]
    }
}

/// The open data directory.
pub struct Store {
    db: Database,
    ks: Keyspaces,
    durability: Arc<Durability>,
    syncer: Option<JoinHandle<()>>,
    dir: PathBuf,
    /// `stream-cache-bytes`, shared with every stream's entry source.
    cache_budget: Arc<AtomicUsize>,
    /// Reads of evicted nodes, counted by every stream's entry source.
    misses: Arc<CacheMisses>,
    /// Plain appends to existing streams, not yet written into fjall.
    tail: Arc<TailLog>,
    /// The next stream creation's incarnation.
    next_incarnation: AtomicU64,
    /// Held from building a checkpoint batch (under a shard's lock) to its commit (after).
    committing: Mutex<()>,
    /// Held through a whole checkpoint: a second one (SAVE beside the background task) would
    /// skip streams the first has in flight and could retire their segments too early.
    checkpointing: Mutex<()>,
    /// Held by a deletion from writing its floor to committing it, and by `retire_tail` from
    /// finding the oldest creation left to committing the floors it drops: a floor written
    /// in between could otherwise be dropped and its stream brought back by replay.
    floors: Mutex<()>,
    /// Deleted large streams whose records are still being removed, and requests for a
    /// compaction.
    purges: Arc<Purges>,
    /// The purge and compaction threads.
    purgers: Vec<JoinHandle<()>>,
    /// Streams with group changes no log holds (see [`Store::note_untracked`]): the next
    /// checkpoint writes them.
    untracked: Mutex<hashbrown::HashSet<crate::tail_log::StreamName>>,
    /// Held for the life of the store: a second server on the same directory is refused.
    _lock: File,
}

impl Store {
    /// Asks for a major compaction of the stream keyspaces in the background (BGREWRITEAOF:
    /// as Redis's AOF rewrite drops what deletions left behind, so does this).
    pub fn request_compaction(&self) {
        self.purges.request_compaction();
    }

    /// A batch whose commit hands it to the OS (one `write`, under the journal lock the commit
    /// holds anyway); fsyncing is the sync thread's. A hand-over of many batches at once
    /// would take that lock a second time, and wait there, for every reply, whenever fjall's
    /// flush worker holds it through an fsync.
    fn batch(&self) -> OwnedWriteBatch {
        self.db.batch().durability(Some(PersistMode::Buffer))
    }

    /// Makes sure batch `seq` is at least in the operating system's buffers (call before
    /// acknowledging it); one write covers every batch committed meanwhile.
    ///
    /// # Errors
    /// When the write fails.
    pub fn flush_to_os(&self, seq: u64) -> Result<(), StoreError> {
        self.durability.flush_to_os(seq)
    }

    /// Asks the sync thread for an fsync that covers `seq` (under `appendfsync always`, a
    /// reply waits for it).
    pub fn request_sync(&self, seq: u64) {
        self.durability.request(seq);
    }

    /// The highest sequence known to be in the operating system's hands.
    pub fn in_os_seq(&self) -> u64 {
        self.durability.in_os.load(Ordering::Acquire)
    }

    /// The highest sequence a reply may show or acknowledge: on disk under `appendfsync
    /// always`, in the operating system's hands otherwise.
    pub fn safe_seq(&self) -> u64 {
        match self.durability.policy() {
            FsyncPolicy::Always => self.durability.durable.load(Ordering::Acquire),
            _ => self.durability.in_os.load(Ordering::Acquire),
        }
    }

    /// Refuses a write before it changes anything, while the disk is full or after a write
    /// or fsync failed: call it before applying a command, so a refused write never reaches
    /// memory. One atomic load while the disk has room to spare.
    ///
    /// # Errors
    /// [`StoreError::Fault`], whose text says why and whether writes resume by themselves.
    pub fn admit(&self) -> Result<(), StoreError> {
        self.durability.health.admit()
    }

    /// As [`Store::admit`], for a command that changes consumer groups alone (XREADGROUP,
    /// XACK): on a full disk it is still admitted while 1 MiB is free, so consumers keep
    /// draining what is stored.
    ///
    /// # Errors
    /// [`StoreError::Fault`], as for [`Store::admit`].
    pub fn admit_group_change(&self) -> Result<(), StoreError> {
        self.durability.health.admit_group_change()
    }

    /// Why writes are refused, if they are.
    pub fn fault(&self) -> Option<crate::StoreFault> {
        self.durability.health.fault()
    }

    /// Records how the last checkpoint (background, SAVE or BGSAVE) ended, for INFO.
    pub fn note_checkpoint(&self, ok: bool) {
        self.durability.health.set_checkpoint_failed(!ok);
    }

    /// Whether the last checkpoint failed (INFO `rdb_last_bgsave_status:err`).
    pub fn checkpoint_failed(&self) -> bool {
        self.durability.health.checkpoint_failed()
    }

    /// Refuses a background write (a checkpoint's) after a fault that needs a restart.
    fn refuse_if_broken(&self) -> Result<(), StoreError> {
        if self.durability.health.broken() {
            return Err(self.durability.health.refusal());
        }
        Ok(())
    }

    /// Commits a batch to fjall.
    ///
    /// A command's batch is not refused here: the command was admitted before it changed the
    /// stream ([`Store::admit`], which on a disk near full looked at its free space), and a
    /// refusal now would leave memory ahead of the disk until a restart (as a failed commit
    /// does: [`Store::write_stream`] then holds the stream back from readers). After a fault
    /// that needs a restart the batch is never acknowledged, nor shown (its client is
    /// disconnected: whether it is on disk is unknown), and a restart drops what memory
    /// holds of it. The background writers check the free space themselves first.
    fn commit(&self, batch: OwnedWriteBatch) -> Result<u64, StoreError> {
        if let Err(e) = batch.commit() {
            self.durability.health.fail(
                crate::FaultKind::EngineFailed,
                format!("committing a batch: {e}"),
            );
            return Err(self.durability.health.refusal());
        }
        Ok(self.durability.publish(false))
    }

    /// Writes fjall's memtables out as tables (shutdown, once no command runs), waiting at
    /// most `limit`: recovery skips journal batches already in tables, so the next start
    /// reads the journal instead of inserting all of it into memtables again. Returns whether every flush finished in time.
    ///
    /// # Errors
    /// When the engine refuses a rotation.
    pub fn flush_memtables(&self, limit: std::time::Duration) -> Result<bool, StoreError> {
        let all = self.ks.all();
        for ks in &all {
            ks.rotate_memtable()?;
        }
        let deadline = std::time::Instant::now() + limit;
        while all.iter().any(|ks| ks.sealed_memtable_count() > 0) {
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(true)
    }

    /// fsyncs every committed batch now (SAVE, BGSAVE, shutdown).
    ///
    /// # Errors
    /// When the fsync fails.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.durability.sync_now(&self.db)
    }

    /// Whether a write or fsync failed in a way only a restart recovers from: writes not yet
    /// acknowledged never will be. (A full disk is not such a failure: writes wait for room.)
    pub fn failed(&self) -> bool {
        self.durability.health.broken()
    }

    /// The policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        self.durability.policy()
    }

    /// Changes the policy (CONFIG SET appendfsync).
    pub fn set_policy(&self, p: FsyncPolicy) {
        self.durability.set_policy(p);
    }

    /// Registers the callback told of each new durable sequence (group-commit waiters).
    pub fn on_durable(&self, f: OnDurable) {
        self.durability.set_on_durable(f);
    }

    /// Registers the callback told how long each fsync, tail-log write, checkpoint, purge,
    /// compaction and read of evicted entries took (names in
    /// [`latency_events`](crate::latency_events)); only the first registration counts.
    pub fn on_latency(&self, f: crate::OnLatency) {
        self.durability.latency.set(f);
    }

    /// Turns the timing reported to [`on_latency`](Self::on_latency)'s callback on or off
    /// (off by default: nothing is timed).
    pub fn watch_latency(&self, on: bool) {
        self.durability.latency.watch(on);
    }

    /// The sequence of the last write committed, safe or not (what a reply that shows the
    /// whole key space waits for).
    pub fn committed_seq(&self) -> u64 {
        self.durability.committed.load(Ordering::Acquire)
    }

    /// The highest sequence known to be on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durability.durable.load(Ordering::Acquire)
    }

    /// Where stream `key` of database `db` reads its evicted nodes back from.
    pub fn source(&self, db: u32, key: &[u8]) -> Arc<dyn EntrySource> {
        source(
            &self.ks,
            &self.cache_budget,
            &self.misses,
            stream_prefix(db, key),
        )
    }

    /// Sets `stream-cache-bytes` for every stream (streams shed the excess on their next
    /// append or read).
    pub fn set_stream_cache_bytes(&self, bytes: usize) {
        self.cache_budget.store(bytes, Ordering::Relaxed);
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.purges.stop();
        for t in self.purgers.drain(..) {
            let _ = t.join();
        }
        self.durability.stop();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        if let Err(e) = self.durability.sync_now(&self.db) {
            tracing::error!("final fsync failed: {e}");
        }
    }
}

/// The entry source of the stream whose records start with `prefix`.
pub(crate) fn source(
    ks: &Keyspaces,
    budget: &Arc<AtomicUsize>,
    misses: &Arc<CacheMisses>,
    prefix: Vec<u8>,
) -> Arc<dyn EntrySource> {
    Arc::new(FjallSource {
        entries: ks.entries.clone(),
        prefix,
        budget: budget.clone(),
        reads: misses.clone(),
    })
}
