//! The store: opening the data directory, writing each command's changes as one batch,
//! deleting streams and databases, and the numbers INFO shows.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use brooklet_streams::{
    DirtyGroups, EntrySource, Mutation, Stream, StreamId, StreamMeta, UnflushedNodes,
};
use bytes::Bytes;
use fjall::config::CompressionPolicy;
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode,
};

use crate::codec::{Writer, encode_entry, encode_entry_slices, encode_node, mark_deleted};
use crate::durability::{Durability, FsyncPolicy, OnDurable};
use crate::error::StoreError;
use crate::keys::{
    FLOOR_PREFIX, consumer_key, db_prefix, entry_key, floor_key, group_key, node_key, pending_key,
    read_id, split_prefix, stream_prefix,
};
use crate::load::{LoadedStream, RecoveryReport};
use crate::purge::{Purges, purge_key};
use crate::source::{CacheMisses, FjallSource};
use crate::tail_log::{Probe, Record, StreamName, TailLog};

/// Block cache for reads that miss memory: nodes evicted from the streams' own caches, trims
/// and start-up. Recent entries are served from the streams' memory, so this stays small.
const BLOCK_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Default for `stream-cache-bytes`: node data one stream keeps in memory besides its tail.
pub const DEFAULT_STREAM_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Largest memtable per keyspace before it is flushed to a table. fjall's default (64 MiB per
/// keyspace) would hold a second, much less compact copy of recent entries in memory.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

/// fjall's smallest cap on journal bytes (its default is 512 MiB). Every journal byte is
/// replayed at start-up, so the less of it, the faster a restart. Past the cap, fjall's own
/// worker flushes the keyspaces that pin the oldest journal (the small ones, stream and node
/// records, fill their memtables too slowly to be flushed otherwise). Flushing them from our
/// own thread (fjall's hidden `rotate_memtable`) was tried and stalled fjall's flush worker
/// for good under load: memtables stopped flushing and grew past 1 GB.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// A checkpoint piece over at most this many streams has its entries ingested as a table of
/// their own rather than written through fjall's journal and memtable, whatever its size.
/// Ingested entries skip the journal (so a restart has little of it to replay: 1M entries
/// of one stream took 50 ms to open instead of 230-300) and the memtable's skiplist. A few
/// streams' newest entries lie past their older ones, which no table then needs rewriting
/// for.
const INGEST_MAX_STREAMS: usize = 8;

/// A checkpoint piece over more streams is ingested too once it holds this many entries;
/// a smaller one goes through fjall's journal. A small table spanning thousands of streams
/// overlaps every table below it, so compaction rewrites them all: ingesting 10,000-entry
/// pieces of a shard's streams, under XADD to 10,000 streams, made fjall's workers take 160
/// ticks instead of 45. The checkpoint now fills pieces of up to a segment's entries from
/// the streams of every shard in key order, so successive tables cover successive key
/// ranges.
const JOURNALED_MAX_ENTRIES: usize = 10_000;

/// The on-disk format this build writes and reads (2 added the `nodes` keyspace, 3 the tail
/// log and the stream record's incarnation, 4 streams created in the tail log and the
/// floors that keep deleted ones dead, 5 group changes in the tail log, 6 purge markers,
/// under which a deleted stream's records are not orphans). A format-3, 4 or 5 directory
/// is read as it is and stamped 6: it holds nothing format 6 reads differently.
pub const FORMAT_VERSION: u32 = 6;

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
}

impl Keyspaces {
    /// Every keyspace.
    fn all(&self) -> [&Keyspace; 7] {
        let [streams, entries, nodes, groups, consumers, pending] = self.stream_records();
        [
            &self.meta, streams, entries, nodes, groups, consumers, pending,
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

/// Numbers for INFO persistence.
#[derive(Debug, Clone, Copy)]
pub struct StoreStats {
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Unix ms of the last fsync (0 = none).
    pub last_fsync_ms: u64,
    /// fsyncs done since start.
    pub fsyncs: u64,
    /// Batches committed since start.
    pub committed: u64,
    /// Batches known durable.
    pub durable: u64,
    /// Whether an fsync failed.
    pub failed: bool,
    /// Node reads served from the streams' memory.
    pub cache_hits: u64,
    /// Nodes read back from disk because they had left memory.
    pub nodes_read: u64,
    /// Entries in those nodes.
    pub entries_read: u64,
    /// Bytes in the engine's memtables (written, not yet flushed to tables).
    pub memtable_bytes: u64,
    /// Tables (SST files) over all keyspaces.
    pub tables: u64,
    /// Journal files.
    pub journals: u64,
    /// Tail-log segments on disk (the open one included).
    pub tail_segments: u64,
    /// Bytes of the records in the tail log's segments (closed and open).
    pub tail_bytes: u64,
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
    /// Held for the life of the store: a second server on the same directory is refused.
    _lock: File,
}

impl Store {
    /// Opens (or creates) the store in `dir`, recovers it, and returns every stream in it.
    ///
    /// # Errors
    /// When the directory is locked by another process, was written by a newer format, or
    /// cannot be read.
    pub fn open(
        dir: &Path,
        policy: FsyncPolicy,
    ) -> Result<(Store, Vec<LoadedStream>, RecoveryReport), StoreError> {
        std::fs::create_dir_all(dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("brooklet.lock"))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(dir.to_path_buf()));
        }
        let engine_dir = dir.join("fjall");
        let journals_before = journal_sizes(&engine_dir);
        let opening = std::time::Instant::now();
        // Three background workers. With one, fjall deadlocks under sustained writes: every
        // commit past the memtable limit queues a rotation request (up to the queue's 1000),
        // and the worker rotating the memtable then blocks sending itself a flush message
        // into that full queue; memtables then grow without bound (seen at 1.5M XADDs of 100
        // bytes). With more than one, worker 0 only flushes: it hands every compaction
        // request back to the queue and takes it again at once until another worker is free.
        // Each flush queues one request per worker, so with two, worker 0 spun through every
        // compaction the other ran (13% of the server's CPU under XADD -P16 to 10,000
        // streams); with three, a second compactor usually takes it.
        let db = Database::builder(&engine_dir)
            .worker_threads(3)
            .cache_size(BLOCK_CACHE_BYTES)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StoreError::Locked(dir.to_path_buf()),
                fjall::Error::InvalidVersion(v) => StoreError::Corrupt(format!(
                    "the storage engine does not recognise the format of {} ({v:?})",
                    engine_dir.display()
                )),
                other => StoreError::Engine(other),
            })?;
        let engine_open = opening.elapsed();
        let journals_after = journal_sizes(&engine_dir);
        // LZ4 at every level: fjall compresses only from level 2 down by default, and most of
        // a stream's entries sit in levels 0 and 1 (1M small entries took 140 bytes each).
        let open = |name: &str| {
            db.keyspace(name, || {
                let opts = KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4));
                // Entries are read by key range, and looked up one by one only where memory
                // says they exist (XDEL): a filter, built by hashing every key at every flush
                // and compaction, would never spare a read.
                if name == "entries" {
                    opts.filter_policy(fjall::config::FilterPolicy::disabled())
                } else {
                    opts
                }
            })
        };
        let ks = Keyspaces {
            meta: open("meta")?,
            streams: open("streams")?,
            entries: open("entries")?,
            nodes: open("nodes")?,
            groups: open("groups")?,
            consumers: open("consumers")?,
            pending: open("pending")?,
        };
        check_format(&ks.meta)?;
        let left = crate::purge::pending(&ks)?;
        if !left.is_empty() {
            let purging = std::time::Instant::now();
            for prefix in &left {
                crate::purge::purge(&ks, &db, prefix, &|| false, &|| {})?;
            }
            tracing::info!(
                "removed the records of {} deleted streams the last run left in {:?}",
                left.len(),
                purging.elapsed()
            );
        }
        let cache_budget = Arc::new(AtomicUsize::new(DEFAULT_STREAM_CACHE_BYTES));
        let misses = Arc::new(CacheMisses::default());
        let (streams, mut report) = crate::load::load(&ks, &cache_budget, &misses)?;
        let mut replayer = Replayer::new(&ks, &cache_budget, &misses, streams)?;
        let (tail, replayed) = TailLog::open(&dir.join("tail"), &mut |a| replayer.apply(a))?;
        report.note_tail(&replayed);
        // A new stream's number must clear every floor left: one below it would be dead.
        let next_incarnation = (report.max_incarnation + 1).max(replayer.max_floor());
        let streams = replayer.finish(&mut report);
        // A journal the engine cut short at recovery lost a torn tail; journals it deleted
        // (already flushed into tables) lost nothing.
        report.torn_journal_bytes = journals_before
            .iter()
            .filter_map(|(path, before)| {
                journals_after
                    .iter()
                    .find(|(p, _)| p == path)
                    .map(|(_, after)| before.saturating_sub(*after))
            })
            .sum();
        report.journal_replayed_bytes = journals_before.iter().map(|(_, n)| n).sum();
        report.engine_open = engine_open;
        let tail = Arc::new(tail);
        let durability = Durability::new(policy, tail.clone(), &engine_dir);
        let syncer = {
            let d = durability.clone();
            let db = db.clone();
            std::thread::Builder::new()
                .name("brooklet-fsync".into())
                .spawn(move || d.run(db))?
        };
        let purges = Arc::new(Purges::default());
        let purgers =
            crate::purge::spawn(purges.clone(), ks.clone(), db.clone(), durability.clone())?;
        let store = Store {
            db,
            ks,
            durability,
            syncer: Some(syncer),
            dir: dir.to_path_buf(),
            cache_budget,
            misses,
            tail,
            next_incarnation: AtomicU64::new(next_incarnation),
            committing: Mutex::new(()),
            checkpointing: Mutex::new(()),
            floors: Mutex::new(()),
            purges,
            purgers,
            _lock: lock,
        };
        Ok((store, streams, report))
    }

    /// Writes one command's changes to stream `key`; returns its sequence.
    ///
    /// `stream` is the stream after the command; `muts` are the records the command produced.
    /// A plain append to an existing stream goes to the tail log; anything else is one atomic
    /// fjall batch, which also carries the stream's appends still only in the tail log.
    ///
    /// # Errors
    /// When the engine refuses the batch (disk full, a failed fsync earlier).
    pub fn write_stream(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut Stream,
        muts: &[Mutation],
    ) -> Result<u64, StoreError> {
        if stream.incarnation() == 0 {
            // Not while a purge may still remove records under its key.
            self.purges.wait_clear(&stream_prefix(db, key));
        }
        // A new stream whose one change is its first entry is created in the log too.
        let creates = stream.incarnation() == 0 && is_fresh(stream);
        if let [
            Mutation::EntryAdded {
                id,
                fields,
                new_node,
            },
        ] = muts
            && (stream.incarnation() != 0 || creates)
        {
            self.refuse_if_failed()?;
            if creates {
                stream.set_incarnation(self.next_incarnation.fetch_add(1, Ordering::Relaxed));
            }
            let logged = self.tail.append(
                db,
                key,
                stream.incarnation(),
                *new_node,
                creates,
                *id,
                fields,
                stream.log_segment(),
            );
            match logged {
                Ok(segment) => stream.set_log_segment(segment),
                Err(e) => {
                    if creates {
                        stream.set_incarnation(0);
                    }
                    self.durability.failed.store(true, Ordering::Release);
                    return Err(e.into());
                }
            }
            stream.mark_unflushed(*id);
            return Ok(self.durability.publish(true));
        }
        // A change to consumer groups alone (XREADGROUP, XACK, XCLAIM, ...) is logged in the
        // tail log too, and the records it changed are written into fjall later, as they
        // are then (see the tail log). A stream only the tail log has created yet gets its
        // record first, with the batch below: groups without it would be orphans after a
        // restart.
        if stream.is_stored() && !muts.is_empty() && muts.iter().all(Mutation::is_group_change) {
            self.refuse_if_failed()?;
            let logged = self.tail.log_group_changes(
                db,
                key,
                stream.incarnation(),
                muts,
                stream.log_segment(),
            );
            match logged {
                Ok(segment) => stream.set_log_segment(segment),
                Err(e) => {
                    self.durability.failed.store(true, Ordering::Release);
                    return Err(e.into());
                }
            }
            stream.note_group_changes(muts);
            return Ok(self.durability.publish(true));
        }
        if stream.is_flushing() {
            self.wait_for_checkpoint();
        }
        let flushed = stream.take_unflushed();
        let first_flushed = flushed.first().map(|e| e.id);
        // XSETID can move the last ID back below appends the tail log still holds (a trim
        // removed them since), which replay would then take for new ones. This batch writes
        // every logged append still in the stream, so a new incarnation makes replay skip
        // all the records logged so far.
        let incarnation = stream.incarnation();
        if incarnation != 0
            && muts
                .iter()
                .any(|m| matches!(m, Mutation::StreamMeta { .. }))
        {
            stream.set_incarnation(self.next_incarnation.fetch_add(1, Ordering::Relaxed));
        }
        // The batch writes every group record changed since fjall last had them, with this
        // command's: it may change the incarnation, after which replay skips the logged ones.
        let mut groups = stream.take_dirty_groups_with_flushing();
        for m in muts {
            groups.note(m);
        }
        let written = self.write_batch(db, key, stream, muts, flushed, &groups);
        if written.is_ok() {
            stream.set_stored();
        } else {
            stream.restore_dirty_groups(groups);
            // Nothing reached fjall: the stream's record keeps its old incarnation (or none).
            stream.set_incarnation(incarnation);
            if let Some(id) = first_flushed {
                stream.mark_unflushed(id);
            }
        }
        written
    }

    /// Writes the appends of stream `key` that are still only in the tail log into fjall
    /// (the checkpoint of one stream, start to end under the caller's hold of the stream);
    /// returns the batch's sequence, 0 when there was nothing to write.
    ///
    /// # Errors
    /// When the engine refuses the batch; the appends then still count as unflushed.
    pub fn flush_stream(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut Stream,
    ) -> Result<u64, StoreError> {
        let Some(pending) = self.prepare_flush(db, [(key, &mut *stream)], usize::MAX) else {
            return Ok(0);
        };
        let committed = pending.commit();
        stream.end_flush(committed.is_ok());
        committed
    }

    /// Takes a checkpoint's batch for streams of database `db`, under the caller's hold of
    /// them: see [`Store::begin_flush`] and [`PendingFlush::add`], which this calls for each
    /// stream until the batch holds `max_entries`. None when no stream had appends to write.
    pub fn prepare_flush<'a>(
        &self,
        db: u32,
        streams: impl IntoIterator<Item = (&'a [u8], &'a mut Stream)>,
        max_entries: usize,
    ) -> Option<PendingFlush<'_>> {
        let mut pending = self.begin_flush();
        for (key, stream) in streams {
            if pending.add(db, key, stream, max_entries) == Added::Full {
                break;
            }
        }
        (!pending.is_empty()).then_some(pending)
    }

    /// An empty checkpoint batch. Streams go into it with [`PendingFlush::add`], each under
    /// its shard's lock: only copies of the nodes holding their logged appends are taken.
    /// The caller lets the locks go, encodes and commits the batch with
    /// [`PendingFlush::commit`], then calls [`Stream::end_flush`] on each stream it names
    /// under the lock again. From the first stream added until the commit, a change of
    /// another kind to one of them waits (in [`Store::write_stream`], under its shard's
    /// lock), and so do DEL and FLUSH: so once the batch holds a stream, the caller must not
    /// wait for a shard's lock (see [`PendingFlush::is_empty`]).
    pub fn begin_flush(&self) -> PendingFlush<'_> {
        PendingFlush {
            store: self,
            pieces: Vec::new(),
            entries: 0,
            committing: None,
            more: false,
            keys: Vec::new(),
        }
    }

    /// Held through a checkpoint, from its first [`Store::prepare_flush`] to its
    /// [`Store::retire_tail`]: one checkpoint at a time.
    pub fn checkpoint_guard(&self) -> MutexGuard<'_, ()> {
        self.checkpointing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no checkpoint batch is being committed (before a change that must land
    /// after it: one to a stream in it, a DEL, a FLUSH).
    fn wait_for_checkpoint(&self) {
        drop(self.committing.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The closed tail-log segments not yet retired: the newest one's number and the streams
    /// with appends in them, for the checkpoint to [`Store::flush_stream`] before
    /// [`Store::retire_tail`]. Unless `all`, None until they hold the bytes set by
    /// [`Store::set_checkpoint_bytes`].
    pub fn stale_tail(&self, all: bool) -> Option<(u64, Vec<StreamName>)> {
        self.tail.stale(all)
    }

    /// Leaves closed tail-log segments to the background checkpoint once they hold `bytes`
    /// (default [`crate::DEFAULT_CHECKPOINT_BYTES`]).
    pub fn set_checkpoint_bytes(&self, bytes: u64) {
        self.tail.set_checkpoint_bytes(bytes);
    }

    /// Closes the open tail-log segment, so the next checkpoint writes every logged append
    /// into fjall (SAVE).
    ///
    /// # Errors
    /// When the segment cannot be written out or the next one created.
    pub fn close_tail_segment(&self) -> Result<(), StoreError> {
        Ok(self.tail.close_segment()?)
    }

    /// Closes tail-log segments at `bytes` (default 8 MiB): smaller means less to replay at
    /// start-up and more frequent checkpoints.
    pub fn set_tail_segment_bytes(&self, bytes: u64) {
        self.tail.set_segment_limit(bytes);
    }

    /// Syncs fjall and deletes the tail-log segments up to `upto`: call once every stream
    /// [`Store::stale_tail`] named has been flushed.
    ///
    /// # Errors
    /// When the fsync or a removal fails.
    pub fn retire_tail(&self, upto: u64) -> Result<(), StoreError> {
        self.durability.sync_now(&self.db)?;
        // Segments go first: a floor dropped before the creation it kills would let a crash
        // in between bring that stream back.
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = self.tail.retire(upto)?;
        let mut batch = self.batch();
        for kv in self.ks.meta.prefix(FLOOR_PREFIX) {
            let (k, v) = kv.into_inner()?;
            if crate::keys::read_u64(&v, 0).is_none_or(|floor| floor <= oldest) {
                batch.remove(&self.ks.meta, k);
            }
        }
        if !batch.is_empty() {
            self.commit(batch)?;
        }
        Ok(())
    }

    fn write_batch(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut Stream,
        muts: &[Mutation],
        flushed: Vec<brooklet_streams::StoredEntry>,
        groups: &DirtyGroups,
    ) -> Result<u64, StoreError> {
        let mut batch = self.batch();
        let removed = self.fill_batch(&mut batch, db, key, stream, muts, flushed)?;
        if !groups.is_empty() {
            self.add_group_records(&mut batch, &stream_prefix(db, key), &groups.current(stream))?;
        }
        let seq = self.commit(batch)?;
        self.note_removed(removed);
        Ok(seq)
    }

    /// Adds one command's changes to stream `key` (after the appends `flushed` takes out of
    /// the tail log) to `batch`; returns how many entry records it removes.
    fn fill_batch(
        &self,
        batch: &mut OwnedWriteBatch,
        db: u32,
        key: &[u8],
        stream: &mut Stream,
        muts: &[Mutation],
        flushed: Vec<brooklet_streams::StoredEntry>,
    ) -> Result<u64, StoreError> {
        let prefix = stream_prefix(db, key);
        // Entries added by this batch are kept aside so a trim in the same command (XADD
        // MAXLEN 0) removes them too, without reading them back from disk. Appends the tail
        // log held come first, as the command found them (tombstones if it deleted them).
        // Nodes whose record must be rewritten (or removed, if the node is gone by the end):
        // those the logged appends went into or opened, and those the command changed.
        let mut touched: Vec<StreamId> = Vec::new();
        let mut added: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
        let mut removed = 0;
        for e in flushed {
            let master = stream.node_holding(e.id).map(|n| n.master);
            if master.is_some() && touched.last() != master.as_ref() {
                // An entry that opened a node closed the one before, whose record is then
                // final (appends to a last node leave its record stale).
                if master == Some(e.id)
                    && let Some(prev) = stream.node_before(e.id)
                {
                    touched.push(prev.master);
                }
                touched.extend(master);
            }
            let mut v = encode_entry(&e.fields, master == Some(e.id));
            if e.deleted {
                mark_deleted(&mut v);
            }
            added.insert(e.id, v);
        }
        for m in muts {
            match m {
                Mutation::EntryAdded {
                    id,
                    fields,
                    new_node,
                } => {
                    added.insert(*id, encode_entry(fields, *new_node));
                    if *new_node {
                        touched.push(*id);
                        // The node before it is now closed: its final counts are recorded.
                        if let Some(prev) = stream.node_before(*id) {
                            touched.push(prev.master);
                        }
                    }
                }
                Mutation::EntriesDeleted { ids } => {
                    // The entry stays as a tombstone: its node keeps the slot, and a reload
                    // must rebuild the same nodes. Tombstones go when a trim passes them.
                    for id in ids {
                        let k = entry_key(&prefix, *id);
                        let value = match added.get_mut(id) {
                            Some(v) => v,
                            None => match self.ks.entries.get(&k)? {
                                Some(v) => added.entry(*id).or_insert_with(|| v.to_vec()),
                                None => continue,
                            },
                        };
                        mark_deleted(value);
                        if let Some(node) = stream.node_holding(*id) {
                            touched.push(node.master);
                        }
                    }
                }
                Mutation::NodeDropped { master, last } => {
                    added.retain(|id, _| id < master || id > last);
                    let from = entry_key(&prefix, *master);
                    let to = entry_key(&prefix, *last);
                    for kv in self.ks.entries.range(from.as_slice()..=to.as_slice()) {
                        batch.remove(&self.ks.entries, kv.key()?);
                        removed += 1;
                    }
                    batch.remove(&self.ks.nodes, node_key(&prefix, *master));
                }
                Mutation::Trimmed { through } => {
                    // Entries of dropped nodes go; those of a node the trim only cut into stay
                    // as tombstones, as the node in memory keeps their slots.
                    let kept_from = stream.first_node_id().unwrap_or(StreamId::MAX);
                    added.retain(|id, _| id > through || *id >= kept_from);
                    for (id, v) in added.range_mut(..=*through) {
                        if *id >= kept_from {
                            mark_deleted(v);
                        }
                    }
                    let end = entry_key(&prefix, *through);
                    for kv in self.ks.entries.range(prefix.as_slice()..=end.as_slice()) {
                        let (k, v) = kv.into_inner()?;
                        let id = split_prefix(&k).and_then(|(_, _, rest)| read_id(rest));
                        match id {
                            Some(id) if id >= kept_from => {
                                if added.contains_key(&id) {
                                    continue;
                                }
                                let mut v = v.to_vec();
                                mark_deleted(&mut v);
                                added.insert(id, v);
                            }
                            _ => {
                                batch.remove(&self.ks.entries, k);
                                removed += 1;
                            }
                        }
                    }
                    // Records of the nodes dropped whole; the one cut into is rewritten.
                    match stream.first_node_id() {
                        Some(first) => {
                            let end = node_key(&prefix, first);
                            for kv in self.ks.nodes.range(prefix.as_slice()..end.as_slice()) {
                                batch.remove(&self.ks.nodes, kv.key()?);
                            }
                            touched.push(first);
                        }
                        None => self.remove_prefix(batch, &self.ks.nodes, &prefix)?,
                    }
                }
                // Group records are written from the stream's groups (`write_batch`).
                _ => {}
            }
        }
        for (id, value) in added {
            batch.insert(&self.ks.entries, entry_key(&prefix, id), value);
        }
        touched.sort_unstable();
        touched.dedup();
        for master in touched {
            let k = node_key(&prefix, master);
            match stream.node(master) {
                Some(node) => batch.insert(&self.ks.nodes, k, encode_node(&node)),
                None => batch.remove(&self.ks.nodes, k),
            }
        }
        if stream.incarnation() == 0 {
            stream.set_incarnation(self.next_incarnation.fetch_add(1, Ordering::Relaxed));
        }
        let record = stream_record(&stream.meta(), stream.incarnation());
        batch.insert(&self.ks.streams, prefix, record);
        Ok(removed)
    }

    /// Adds to `batch` the group, consumer and pending records that `changes` write (as
    /// [`DirtyGroups::current`] gives them: a group's destruction first, then each record's
    /// value or removal). A key written twice is written once, with its last value: in one
    /// batch, fjall would keep both versions under one sequence number.
    fn add_group_records(
        &self,
        batch: &mut OwnedWriteBatch,
        prefix: &[u8],
        changes: &[Mutation],
    ) -> Result<(), StoreError> {
        const GROUPS: u8 = 0;
        const CONSUMERS: u8 = 1;
        const PENDING: u8 = 2;
        let mut records: hashbrown::HashMap<(u8, Vec<u8>), Option<Vec<u8>>> =
            hashbrown::HashMap::new();
        for m in changes {
            match m {
                Mutation::GroupCreated {
                    group,
                    last_id,
                    entries_read,
                }
                | Mutation::GroupUpdated {
                    group,
                    last_id,
                    entries_read,
                } => {
                    let value = Writer::default()
                        .u64(last_id.ms)
                        .u64(last_id.seq)
                        .opt_u64(*entries_read)
                        .0;
                    records.insert((GROUPS, group_key(prefix, group)), Some(value));
                }
                Mutation::GroupDestroyed { group } => {
                    let gk = group_key(prefix, group);
                    for (class, ks) in
                        [(CONSUMERS, &self.ks.consumers), (PENDING, &self.ks.pending)]
                    {
                        for kv in ks.prefix(&gk) {
                            records.insert((class, kv.key()?.to_vec()), None);
                        }
                    }
                    records.insert((GROUPS, gk), None);
                }
                Mutation::ConsumerUpserted {
                    group,
                    consumer,
                    seen_time,
                    active_time,
                } => {
                    let value = Writer::default().u64(*seen_time).opt_u64(*active_time).0;
                    let k = consumer_key(&group_key(prefix, group), consumer);
                    records.insert((CONSUMERS, k), Some(value));
                }
                Mutation::ConsumerDeleted { group, consumer } => {
                    let k = consumer_key(&group_key(prefix, group), consumer);
                    records.insert((CONSUMERS, k), None);
                }
                Mutation::PendingUpserted {
                    group,
                    id,
                    consumer,
                    delivery_time,
                    delivery_count,
                } => {
                    let value = Writer::default()
                        .bytes(consumer)
                        .u64(*delivery_time)
                        .u64(*delivery_count)
                        .0;
                    let k = pending_key(&group_key(prefix, group), *id);
                    records.insert((PENDING, k), Some(value));
                }
                Mutation::PendingRemoved { group, id } => {
                    let k = pending_key(&group_key(prefix, group), *id);
                    records.insert((PENDING, k), None);
                }
                _ => {}
            }
        }
        for ((class, k), v) in records {
            let ks = match class {
                GROUPS => &self.ks.groups,
                CONSUMERS => &self.ks.consumers,
                _ => &self.ks.pending,
            };
            match v {
                Some(v) => batch.insert(ks, k, v),
                None => batch.remove(ks, k),
            }
        }
        Ok(())
    }

    /// Removes stream `key` (DEL, UNLINK), which `stream` held, from the store; returns
    /// the batch's sequence. A stream with many records in fjall loses only its stream
    /// record here, and the purge thread removes the rest after (see [`crate::purge`]).
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn delete_stream(&self, db: u32, key: &[u8], stream: &Stream) -> Result<u64, StoreError> {
        self.remove_under(stream_prefix(db, key), [stream])
    }

    /// Removes every stream under `prefix`, which were `streams` (removed from memory
    /// already, so no checkpoint takes them any more), as one batch; or, when they have
    /// many records in fjall, only their stream records, and leaves the rest to the purge
    /// thread.
    fn remove_under<'a>(
        &self,
        prefix: Vec<u8>,
        streams: impl IntoIterator<Item = &'a Stream>,
    ) -> Result<u64, StoreError> {
        // The removal scans what fjall holds: a checkpoint batch committed after the scan
        // would bring the streams' records back.
        self.wait_for_checkpoint();
        let records: usize = streams
            .into_iter()
            .filter(|s| s.is_stored())
            .map(stored_records)
            .sum();
        // Under a pending purge, fjall may hold many records memory no longer counts.
        let lazy = records > LAZY_PURGE_RECORDS || self.purges.overlaps(&prefix);
        let mut batch = self.batch();
        if lazy {
            self.remove_prefix(&mut batch, &self.ks.streams, &prefix)?;
            batch.insert(&self.ks.meta, purge_key(&prefix), []);
        } else {
            // A stream record's key is its prefix, so the scan finds it too (a longer key's
            // prefix differs in its length word).
            for ks in self.ks.stream_records() {
                self.remove_prefix(&mut batch, ks, &prefix)?;
            }
        }
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        self.leave_floor(&mut batch, &prefix);
        let seq = self.commit(batch)?;
        if lazy {
            self.purges.add(prefix);
        } else {
            self.note_removed(records as u64);
        }
        Ok(seq)
    }

    /// Counts `n` records removed by a committed batch (see [`Purges::note_removed`]).
    fn note_removed(&self, n: u64) {
        self.purges.note_removed(n, &self.ks.entries);
    }

    /// Asks for a major compaction of the stream keyspaces in the background (BGREWRITEAOF:
    /// as Redis's AOF rewrite drops what deletions left behind, so does this).
    pub fn request_compaction(&self) {
        self.purges.request_compaction();
    }

    /// While the tail log holds stream creations, a deletion of the streams under `prefix`
    /// records in its own batch the next incarnation as their floor: replay creates none of
    /// them below it. Every stream it deleted was numbered below it, every later one will be
    /// numbered from it on. [`Store::retire_tail`] drops the floors once no creation they
    /// could kill is left.
    fn leave_floor(&self, batch: &mut OwnedWriteBatch, prefix: &[u8]) {
        if self.tail.oldest_creation() == u64::MAX {
            return;
        }
        let floor = self.next_incarnation.load(Ordering::Relaxed);
        batch.insert(&self.ks.meta, floor_key(prefix), floor.to_be_bytes());
    }

    /// Removes every stream of one database (FLUSHDB), or of all (FLUSHALL) when `db` is
    /// None: `streams`, removed from memory already. See [`Store::delete_stream`].
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn flush<'a>(
        &self,
        db: Option<u32>,
        streams: impl IntoIterator<Item = &'a Stream>,
    ) -> Result<u64, StoreError> {
        self.remove_under(db.map(db_prefix).unwrap_or_default(), streams)
    }

    fn remove_prefix(
        &self,
        batch: &mut OwnedWriteBatch,
        ks: &Keyspace,
        prefix: &[u8],
    ) -> Result<(), StoreError> {
        for kv in ks.prefix(prefix) {
            batch.remove(ks, kv.key()?);
        }
        Ok(())
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

    fn refuse_if_failed(&self) -> Result<(), StoreError> {
        if self.durability.failed.load(Ordering::Acquire) {
            return Err(StoreError::Corrupt(
                "an earlier write or fsync failed; refusing further writes".into(),
            ));
        }
        Ok(())
    }

    /// Writes a checkpoint's entry records straight into tables of their own (fjall's
    /// ingestion), durably, bypassing the journal and the memtable.
    fn ingest_entries(&self, mut entries: Vec<EntryRecord>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        let mut ingestion = self.ks.entries.start_ingestion()?;
        for (k, v) in entries {
            ingestion.write(k, v)?;
        }
        ingestion.finish()?;
        Ok(())
    }

    fn commit(&self, batch: OwnedWriteBatch) -> Result<u64, StoreError> {
        self.refuse_if_failed()?;
        batch.commit()?;
        Ok(self.durability.publish(false))
    }

    /// Writes fjall's memtables out as tables (shutdown, once no command runs), waiting at
    /// most `limit`: recovery skips journal batches already in tables, so the next start
    /// reads the journal instead of inserting all of it into memtables again (1M entries:
    /// 0.29 s to open the store before). Returns whether every flush finished in time.
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

    /// Whether an fsync has failed (writes can no longer be acknowledged as durable).
    pub fn failed(&self) -> bool {
        self.durability.failed.load(Ordering::Acquire)
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

    /// The highest sequence known to be on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durability.durable.load(Ordering::Acquire)
    }

    /// Deleted streams whose records are still being removed, and those removed since start
    /// (INFO `lazyfree_pending_objects`, `lazyfreed_objects`).
    pub fn purges(&self) -> (usize, u64) {
        (self.purges.pending(), self.purges.done())
    }

    /// Numbers for INFO.
    pub fn stats(&self) -> StoreStats {
        let (tail_segments, tail_bytes) = self.tail.segments_on_disk();
        StoreStats {
            disk_bytes: dir_bytes(&self.dir),
            last_fsync_ms: self.durability.last_fsync_ms.load(Ordering::Relaxed),
            fsyncs: self.durability.fsyncs.load(Ordering::Relaxed),
            committed: self.durability.committed.load(Ordering::Relaxed),
            durable: self.durability.durable.load(Ordering::Relaxed),
            failed: self.durability.failed.load(Ordering::Relaxed),
            cache_hits: self.misses.hits.load(Ordering::Relaxed),
            nodes_read: self.misses.nodes.load(Ordering::Relaxed),
            entries_read: self.misses.entries.load(Ordering::Relaxed),
            memtable_bytes: self.db.write_buffer_size(),
            tables: [
                &self.ks.meta,
                &self.ks.streams,
                &self.ks.entries,
                &self.ks.nodes,
                &self.ks.groups,
                &self.ks.consumers,
                &self.ks.pending,
            ]
            .iter()
            .map(|ks| ks.table_count() as u64)
            .sum(),
            journals: self.db.journal_count() as u64,
            tail_segments,
            tail_bytes,
        }
    }

    /// Loads every stream from the store again (DEBUG RELOAD).
    ///
    /// # Errors
    /// When a record cannot be read or decoded.
    pub fn load_all(&self) -> Result<(Vec<LoadedStream>, RecoveryReport), StoreError> {
        // A stream being purged has no stream record, and its other records would look
        // like orphans.
        self.purges.wait_all();
        let (streams, mut report) = crate::load::load(&self.ks, &self.cache_budget, &self.misses)?;
        let mut replayer = Replayer::new(&self.ks, &self.cache_budget, &self.misses, streams)?;
        let replayed = self.tail.replay_again(&mut |a| replayer.apply(a))?;
        report.note_tail(&replayed);
        Ok((replayer.finish(&mut report), report))
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

/// A checkpoint batch built under a shard's lock, to be committed after it is let go (see
/// [`Store::prepare_flush`]).
pub struct PendingFlush<'s> {
    store: &'s Store,
    /// Each stream's logged appends, copied while the shard was held.
    pieces: Vec<Piece>,
    /// Appends in `pieces`.
    entries: usize,
    /// Taken with the first stream and held until the batch is committed: changes that must
    /// land after it wait for it.
    committing: Option<MutexGuard<'s, ()>>,
    /// Whether appends were left for another batch.
    pub more: bool,
    /// The streams in the batch, each to be ended with [`Stream::end_flush`].
    pub keys: Vec<Bytes>,
}

/// One stream's part of a checkpoint batch.
struct Piece {
    prefix: Vec<u8>,
    /// Logged appends, with the stream's metadata as of the last of them; None when the
    /// piece only writes group records.
    appends: Option<(UnflushedNodes, StreamMeta)>,
    incarnation: u64,
    /// Group records changed since fjall last had them, as they were when copied.
    groups: Vec<Mutation>,
}

/// What [`PendingFlush::add`] did with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Nothing: the stream had no logged appends or group changes to write (or is in
    /// another batch).
    Nothing,
    /// Its logged appends, and the batch still has room.
    Taken,
    /// Nothing or part of its appends: the batch is full; the rest waits for the next one.
    Full,
}

impl PendingFlush<'_> {
    /// Adds the logged appends of stream `key` of database `db` (the caller holds it) while
    /// the batch holds fewer than `max_entries`; a stream is taken up to a node boundary
    /// only (at least one node), its record then saying what it was at that point.
    /// `usize::MAX` takes everything (a checkpoint's last batch, after which it retires the
    /// segments). Streams must come in the order of their keys (length, then bytes) for
    /// the entries to come out sorted; otherwise [`PendingFlush::commit`] sorts them.
    pub fn add(&mut self, db: u32, key: &[u8], stream: &mut Stream, max_entries: usize) -> Added {
        if !(stream.has_unflushed() || stream.has_dirty_groups()) || stream.is_flushing() {
            return Added::Nothing;
        }
        let budget = max_entries.saturating_sub(self.entries);
        if budget == 0 {
            self.more = true;
            return Added::Full;
        }
        let appends = stream.unflushed_nodes(budget);
        if appends.is_none() && !stream.has_dirty_groups() {
            return Added::Nothing;
        }
        if self.committing.is_none() {
            let store = self.store;
            self.committing = Some(store.committing.lock().unwrap_or_else(|p| p.into_inner()));
        }
        if stream.incarnation() == 0 {
            let next = self.store.next_incarnation.fetch_add(1, Ordering::Relaxed);
            stream.set_incarnation(next);
        }
        if let Some((nodes, _)) = &appends {
            let upto = nodes.last_id();
            self.entries += nodes.len();
            self.more |= upto < stream.last_id();
            stream.begin_flush(upto);
        }
        let groups = if stream.has_dirty_groups() {
            stream.begin_group_flush()
        } else {
            Vec::new()
        };
        self.entries += groups.len();
        self.pieces.push(Piece {
            prefix: stream_prefix(db, key),
            appends,
            incarnation: stream.incarnation(),
            groups,
        });
        self.keys.push(Bytes::copy_from_slice(key));
        if self.entries >= max_entries {
            self.more = true;
            Added::Full
        } else {
            Added::Taken
        }
    }

    /// Whether no stream went in yet. Until one has, the caller may wait for a shard's
    /// lock; after, a change waiting for this batch may hold the lock it waits for, so the
    /// caller must only try for it, and commit the batch when it cannot have it.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Encodes the pieces, ingests their entries when they span few streams
    /// ([`INGEST_MAX_STREAMS`]) or are many ([`JOURNALED_MAX_ENTRIES`] or more), then
    /// commits the node and stream records (and the entries not ingested) as one batch;
    /// returns its sequence.
    ///
    /// # Errors
    /// When the engine refuses the ingestion or the batch.
    pub fn commit(self) -> Result<u64, StoreError> {
        self.store.refuse_if_failed()?;
        let (entries, batch) = self.encode()?;
        self.store.ingest_entries(entries)?;
        self.store.commit(batch)
    }

    /// The entry records to ingest, and the batch with everything else.
    fn encode(&self) -> Result<(Vec<EntryRecord>, OwnedWriteBatch), StoreError> {
        let ks = &self.store.ks;
        let ingest =
            self.pieces.len() <= INGEST_MAX_STREAMS || self.entries >= JOURNALED_MAX_ENTRIES;
        let mut batch = self.store.batch();
        let mut entries = Vec::new();
        for p in &self.pieces {
            // Read outside the shard's lock: the group records in fjall change only with a
            // checkpoint batch or a stream's own batch, which waits for this one.
            self.store
                .add_group_records(&mut batch, &p.prefix, &p.groups)?;
            let Some((nodes, as_of)) = &p.appends else {
                continue;
            };
            for e in nodes.entries() {
                let mut value = encode_entry_slices(e.fields(), e.opened_node);
                if e.deleted {
                    mark_deleted(&mut value);
                }
                let key = entry_key(&p.prefix, e.id);
                if ingest {
                    entries.push((key, value));
                } else {
                    batch.insert(&ks.entries, key, value);
                }
            }
            for node in nodes.node_records() {
                batch.insert(
                    &ks.nodes,
                    node_key(&p.prefix, node.master),
                    encode_node(&node),
                );
            }
            let record = stream_record(as_of, p.incarnation);
            batch.insert(&ks.streams, p.prefix.clone(), record);
        }
        Ok((entries, batch))
    }
}

/// A stream record: last ID, entries-added, max-deleted ID and incarnation.
fn stream_record(meta: &StreamMeta, incarnation: u64) -> Vec<u8> {
    Writer::default()
        .u64(meta.last_id.ms)
        .u64(meta.last_id.seq)
        .u64(meta.entries_added)
        .u64(meta.max_deleted_id.ms)
        .u64(meta.max_deleted_id.seq)
        .u64(incarnation)
        .0
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

/// Above this many records in fjall, a deleted stream's are removed by the purge thread:
/// 4,096 tombstones in one batch took about 2 ms here.
const LAZY_PURGE_RECORDS: usize = 4096;

/// About how many records `stream` has in fjall: its entries (deleted ones still have
/// theirs until their node goes), its nodes, and its group records.
fn stored_records(stream: &Stream) -> usize {
    let groups: usize = stream
        .groups()
        .values()
        .map(|g| 1 + g.consumers().len() + g.pending().len())
        .sum();
    let entries: u64 = stream.nodes().map(|n| 1 + n.live + n.deleted).sum();
    entries as usize + groups
}

/// Whether `stream` is new, with its first entry its only change (what a plain XADD to a
/// missing key makes): the tail log can create it.
fn is_fresh(stream: &Stream) -> bool {
    stream.entries_added() == 1
        && stream.len() == 1
        && stream.max_deleted_id() == StreamId::MIN
        && stream.groups().is_empty()
}

/// Applies the tail log's records to the streams fjall holds, creating the streams it
/// created unless a deletion's floor says that life of the key is over.
struct Replayer<'a> {
    streams: Vec<LoadedStream>,
    /// Where each stream sits in `streams`, by name.
    index: hashbrown::HashMap<StreamName, usize>,
    /// Deletion floors by the prefix they cover (a stream's, a database's, or empty).
    floors: hashbrown::HashMap<Vec<u8>, u64>,
    ks: &'a Keyspaces,
    budget: &'a Arc<AtomicUsize>,
    misses: &'a Arc<CacheMisses>,
}

impl<'a> Replayer<'a> {
    fn new(
        ks: &'a Keyspaces,
        budget: &'a Arc<AtomicUsize>,
        misses: &'a Arc<CacheMisses>,
        mut streams: Vec<LoadedStream>,
    ) -> Result<Self, StoreError> {
        let mut floors = hashbrown::HashMap::new();
        for kv in ks.meta.prefix(FLOOR_PREFIX) {
            let (k, v) = kv.into_inner()?;
            let floor = crate::keys::read_u64(&v, 0)
                .ok_or_else(|| StoreError::Corrupt("malformed floor record".into()))?;
            floors.insert(k[FLOOR_PREFIX.len()..].to_vec(), floor);
        }
        for s in &mut streams {
            s.stream.set_stored();
            s.stream.mark_groups_stored();
        }
        let index = streams
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.db, s.key.clone()), i))
            .collect();
        Ok(Replayer {
            streams,
            index,
            floors,
            ks,
            budget,
            misses,
        })
    }

    /// The highest floor (0: none).
    fn max_floor(&self) -> u64 {
        self.floors.values().copied().max().unwrap_or(0)
    }

    /// Whether a deletion ended the life `incarnation` of stream `key`.
    fn dead(&self, db: u32, key: &[u8], incarnation: u64) -> bool {
        let prefix = stream_prefix(db, key);
        [&prefix[..], &prefix[..4], &[]]
            .iter()
            .any(|p| self.floors.get(*p).is_some_and(|&f| incarnation < f))
    }

    /// Applies one logged append if it belongs to the stream's life and is past what fjall
    /// holds of it (creating the stream if the record did and the key is free); the entry
    /// then counts as unflushed, as before the restart.
    fn apply(&mut self, record: Record<'_>) -> bool {
        let a = match record {
            Record::Append(a) => a,
            Record::Groups(g) => {
                // Applied again even where fjall has them already: see the tail log.
                let Some(s) = self
                    .index
                    .get(&Probe(g.db, g.key))
                    .and_then(|&i| self.streams.get_mut(i))
                    .filter(|s| s.stream.incarnation() == g.incarnation)
                else {
                    return false;
                };
                for m in &g.changes {
                    s.stream.apply(m);
                }
                s.stream.note_group_changes(&g.changes);
                return true;
            }
        };
        let i = match self.index.get(&Probe(a.db, a.key)) {
            Some(&i) => i,
            None if a.creates && !self.dead(a.db, a.key, a.incarnation) => {
                let key = Bytes::copy_from_slice(a.key);
                let mut stream = Stream::new();
                stream.attach_source(source(
                    self.ks,
                    self.budget,
                    self.misses,
                    stream_prefix(a.db, &key),
                ));
                stream.set_incarnation(a.incarnation);
                self.index.insert((a.db, key.clone()), self.streams.len());
                self.streams.push(LoadedStream {
                    db: a.db,
                    key,
                    stream,
                });
                self.streams.len() - 1
            }
            None => return false,
        };
        let stream = &mut self.streams[i].stream;
        if stream.incarnation() != a.incarnation || a.id <= stream.last_id() {
            return false;
        }
        stream.apply(&Mutation::EntryAdded {
            id: a.id,
            fields: a.fields,
            new_node: a.new_node,
        });
        stream.mark_unflushed(a.id);
        true
    }

    /// The streams, with the count in `report` including those the log created.
    fn finish(self, report: &mut RecoveryReport) -> Vec<LoadedStream> {
        report.streams = self.streams.len() as u64;
        self.streams
    }
}

fn check_format(meta: &Keyspace) -> Result<(), StoreError> {
    match meta.get("format")? {
        None => {
            meta.insert("format", FORMAT_VERSION.to_be_bytes())?;
            Ok(())
        }
        Some(v) => {
            let found = crate::keys::read_u32(&v, 0)
                .ok_or_else(|| StoreError::Corrupt("format record".into()))?;
            if found > FORMAT_VERSION {
                return Err(StoreError::NewerFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            if (3..FORMAT_VERSION).contains(&found) {
                meta.insert("format", FORMAT_VERSION.to_be_bytes())?;
                return Ok(());
            }
            if found < FORMAT_VERSION {
                return Err(StoreError::OlderFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
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

/// Every journal file below `dir` with the bytes written to it. fjall sizes a new journal at
/// 64 MiB before writing to it and cuts it to its last complete batch at recovery, so the
/// file's length says nothing of what was written: the written end is found as the end of its
/// last non-zero byte.
fn journal_sizes(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if p.extension().is_some_and(|x| x == "jnl") => {
                    let end = written_end(&p, &m).unwrap_or(m.len());
                    out.push((p, end));
                }
                _ => {}
            }
        }
    }
    out
}

/// Where the last non-zero byte of a file ends. The search starts at the end of the blocks the
/// file has on disk when that is short of its length (the pre-sized part of a journal is a
/// hole), so it reads a block or two, not 64 MiB of zeros.
fn written_end(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const STEP: u64 = 64 * 1024;
    let mut end = meta.len().min(allocated_bytes(meta));
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; STEP as usize];
    while end > 0 {
        let start = end.saturating_sub(STEP);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Bytes a file takes on disk (its blocks), which for a sparse file is less than its length.
fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.blocks().saturating_mul(512)
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

/// Bytes on disk of every file below `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&p),
                Ok(m) => allocated_bytes(&m),
                _ => 0,
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use brooklet_streams::{IdSpec, NodeLimits};

    fn add(store: &Store, s: &mut Stream, ids: std::ops::RangeInclusive<u64>) {
        add_to(store, b"k", s, ids);
    }

    fn add_to(store: &Store, key: &[u8], s: &mut Stream, ids: std::ops::RangeInclusive<u64>) {
        for i in ids {
            let mut muts = Vec::new();
            let fields = [Bytes::from("f"), Bytes::from(format!("v{i}"))];
            s.add(
                IdSpec::Explicit(StreamId::new(i, 0)),
                &fields,
                None,
                0,
                &NodeLimits::default(),
                &mut muts,
            )
            .unwrap();
            store.write_stream(0, key, s, &muts).unwrap();
        }
    }

    /// A crash between a checkpoint's ingestion and its batch leaves entries in fjall past
    /// the stream's recorded last ID, in nodes it has no records of. The load must not take
    /// them for the tail of the last node: the tail log still holds them, and its replay
    /// rebuilds the same nodes.
    #[test]
    fn entries_ingested_without_their_records_are_replayed_from_the_tail_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Stream::new();
        {
            let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
            // Nodes of 100 entries, all logged (the first append created the stream).
            add(&store, &mut s, 1..=250);
            let pending = store
                .prepare_flush(0, [(&b"k"[..], &mut s)], usize::MAX)
                .unwrap();
            let (entries, _batch) = pending.encode().unwrap();
            assert_eq!(entries.len(), 250);
            store.ingest_entries(entries).unwrap();
            // The batch with the node and stream records is never committed.
            drop(pending);
            s.end_flush(false);
            let stored = store.source(0, b"k").load(StreamId::MIN, StreamId::MAX);
            assert_eq!(stored.unwrap().len(), 250);
        }
        let (_store, loaded, report) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        assert_eq!(report.tail_applied, 250);
        let loaded = loaded.into_iter().next().unwrap().stream;
        assert_eq!(loaded, s);
        assert_eq!(loaded.len(), 250);
        assert_eq!(loaded.entries_added(), 250);
        assert_eq!(loaded.last_id(), StreamId::new(250, 0));
        let masters: Vec<u64> = loaded.nodes().map(|n| n.master.ms).collect();
        assert_eq!(masters, [1, 101, 201]);
    }

    /// A checkpoint piece over few streams, or with many entries, is ingested; a small one
    /// over many streams goes through fjall's journal. A piece stops once it holds its
    /// budget (at a node boundary), and `usize::MAX` takes everything.
    #[test]
    fn pieces_are_ingested_unless_small_and_spread() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let keys: Vec<Vec<u8>> = (0..=INGEST_MAX_STREAMS)
            .map(|i| format!("k{i}").into_bytes())
            .collect();
        let fill = |sizes: &dyn Fn(usize) -> u64| {
            let mut streams: Vec<Stream> = keys.iter().map(|_| Stream::new()).collect();
            for (i, (k, s)) in keys.iter().zip(&mut streams).enumerate() {
                add_to(&store, k, s, 1..=sizes(i));
            }
            streams
        };
        let pieces = |streams: &mut [Stream], max: usize| {
            let mut pending = store.begin_flush();
            let mut last = Added::Nothing;
            for (k, s) in keys.iter().zip(streams.iter_mut()) {
                last = pending.add(0, k, s, max);
                if last == Added::Full {
                    break;
                }
            }
            let sizes: Vec<usize> = pending
                .pieces
                .iter()
                .map(|p| p.appends.as_ref().map_or(0, |a| a.0.len()))
                .collect();
            let ingested = pending.encode().unwrap().0.len();
            (sizes, ingested, last)
        };

        // Nine streams, few entries: through the journal. (Every append is logged, the
        // first one, which created its stream, included.)
        let mut small = fill(&|_| 10);
        let (sizes, ingested, last) = pieces(&mut small, 150_000);
        assert_eq!(sizes, vec![10; INGEST_MAX_STREAMS + 1]);
        assert_eq!((ingested, last), (0, Added::Taken));

        // Nine streams, many entries: ingested, up to the budget.
        let mut large = fill(&|i| if i < INGEST_MAX_STREAMS { 10 } else { 30_000 });
        let (sizes, ingested, last) = pieces(&mut large, 20_000);
        let ninth = sizes[INGEST_MAX_STREAMS];
        let room = 20_000 - 10 * INGEST_MAX_STREAMS;
        assert!((room..room + 100).contains(&ninth), "{ninth}");
        assert_eq!(ingested, 10 * INGEST_MAX_STREAMS + ninth);
        assert_eq!(last, Added::Full);

        // A checkpoint's last piece takes everything: the segments are retired after it.
        let mut all = fill(&|i| if i < INGEST_MAX_STREAMS { 10 } else { 30_000 });
        let named = keys.iter().map(|k| &k[..]).zip(all.iter_mut());
        let pending = store.prepare_flush(0, named, usize::MAX).unwrap();
        assert_eq!(
            pending
                .pieces
                .last()
                .and_then(|p| p.appends.as_ref())
                .map(|a| a.0.len()),
            Some(30_000)
        );
        assert!(!pending.more);
    }
}
