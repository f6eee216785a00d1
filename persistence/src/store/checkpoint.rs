//! The checkpoint: logged appends and group changes written into fjall in batches, then
//! the tail-log segments that held them retired.

mod run;
mod strings;

pub use run::{KeyState, StreamHost};

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use brooklet_streams::{Mutation, NodeCopies, StreamMeta};

use crate::stored::StoredStream;
use bytes::Bytes;
use fjall::OwnedWriteBatch;

use crate::codec::{
    encode_entry_slices, encode_node, encode_stream, encode_stream_sections, mark_deleted,
};
use crate::error::StoreError;
use crate::keys::{FLOOR_PREFIX, entry_key, node_key, stream_prefix};
use crate::tail_log::StreamName;

use super::{EntryRecord, Store};

/// A checkpoint piece over at most this many streams has its entries ingested as a table of
/// their own rather than written through fjall's journal and memtable, whatever its size.
/// Ingested entries skip the journal (so a restart has little of it to replay) and the
/// memtable's skiplist. A few
/// streams' newest entries lie past their older ones, which no table then needs rewriting
/// for.
pub(super) const INGEST_MAX_STREAMS: usize = 8;

/// A checkpoint piece over more streams is ingested too once it holds this many entries;
/// a smaller one goes through fjall's journal. A small table spanning thousands of streams
/// overlaps every table below it, so compaction rewrites them all. The checkpoint fills
/// pieces of up to a segment's entries from the streams of every shard in key order, so
/// successive tables cover successive key ranges.
pub(super) const JOURNALED_MAX_ENTRIES: usize = 10_000;

impl Store {
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
        stream: &mut StoredStream,
    ) -> Result<u64, StoreError> {
        let life = (stream.incarnation() != 0).then(|| stream.incarnation());
        self.purges.wait_clear(&stream_prefix(db, key), life);
        let Some(pending) = self.prepare_flush(db, [(key, &mut *stream)], usize::MAX) else {
            return Ok(0);
        };
        let committed = pending.commit();
        stream.end_flush(committed.is_ok());
        committed
    }

    /// Takes a checkpoint's batch for streams of database `db`, under the caller's hold of
    /// them: see `Store::begin_flush` and `PendingFlush::add`, which this calls for each
    /// stream until the batch holds `max_entries`. None when no stream had appends to write.
    pub fn prepare_flush<'a>(
        &self,
        db: u32,
        streams: impl IntoIterator<Item = (&'a [u8], &'a mut StoredStream)>,
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
    /// [`PendingFlush::commit`], then calls [`StoredStream::end_flush`] on each stream it names
    /// under the lock again. From the first stream added until the commit, a change of
    /// another kind to one of them waits (in [`Store::write_stream`], under its shard's
    /// lock), and so do DEL and FLUSH: so once the batch holds a stream, the caller must not
    /// wait for a shard's lock (see [`PendingFlush::is_empty`]).
    pub(crate) fn begin_flush(&self) -> PendingFlush<'_> {
        PendingFlush {
            store: self,
            pieces: Vec::new(),
            entries: 0,
            committing: None,
            more: false,
            keys: Vec::new(),
            strings: Vec::new(),
        }
    }

    /// Held through a checkpoint, from its first [`Store::prepare_flush`] to its
    /// [`Store::retire_tail`]: one checkpoint at a time.
    pub(crate) fn checkpoint_guard(&self) -> MutexGuard<'_, ()> {
        self.checkpointing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no checkpoint batch is being committed (before a change that must land
    /// after it: one to a stream in it, a DEL, a FLUSH).
    pub(super) fn wait_for_checkpoint(&self) {
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
        self.durability.health.set_segment_bytes(bytes);
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

    /// Writes a checkpoint's entry records straight into tables of their own (fjall's
    /// ingestion), durably, bypassing the journal and the memtable.
    pub(super) fn ingest_entries(&self, mut entries: Vec<EntryRecord>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        let ingested = (|| {
            let mut ingestion = self.ks.entries.start_ingestion()?;
            for (k, v) in entries {
                ingestion.write(k, v)?;
            }
            ingestion.finish()
        })();
        // A table that could not be written is not part of the database: the checkpoint is
        // tried again once the disk has room, and the tail log keeps the appends until then.
        ingested.map_err(|e| {
            if crate::health::is_engine_disk_full(&e) {
                let cause = format!("writing a checkpoint's table: {e}");
                self.durability
                    .health
                    .fail(crate::FaultKind::DiskFull, cause);
            }
            StoreError::from(e)
        })
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
    /// The streams in the batch, each to be ended with [`StoredStream::end_flush`].
    pub(crate) keys: Vec<Bytes>,
    /// Keys whose logged strings or deadlines the batch writes: each one's prefix and what
    /// it held when copied.
    strings: Vec<(Vec<u8>, run::KeyState)>,
}

/// One stream's part of a checkpoint batch.
struct Piece {
    prefix: Vec<u8>,
    /// Logged appends, with the stream's metadata as of the last of them; None when the
    /// piece only writes group records.
    appends: Option<(NodeCopies, StreamMeta)>,
    incarnation: u64,
    /// Group records changed since fjall last had them, as they were when copied.
    groups: Vec<Mutation>,
    /// The stream's IDMP state and retention, encoded when copied
    /// ([`encode_stream_sections`]).
    idmp: Vec<u8>,
    /// With no appends, the stream's metadata when its IDMP state alone changed (its record
    /// is then written as it is).
    idmp_only: Option<StreamMeta>,
}

/// What [`PendingFlush::add`] did with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
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
    pub(crate) fn add(
        &mut self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        max_entries: usize,
    ) -> Added {
        if !(stream.has_unflushed() || stream.has_dirty_groups() || stream.has_dirty_idmp())
            || stream.is_flushing()
        {
            return Added::Nothing;
        }
        if self.store.blocked_by_purge(db, key, stream) {
            return Added::Nothing;
        }
        let budget = max_entries.saturating_sub(self.entries);
        if budget == 0 {
            self.more = true;
            return Added::Full;
        }
        let appends = stream.unflushed_nodes(budget);
        if appends.is_none() && !stream.has_dirty_groups() && !stream.has_dirty_idmp() {
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
        // Logged IDMP changes are replayed safely over state holding them already (an
        // addition already remembered, a count already reached, change nothing), so the
        // state as it is now may go with a record written as of an earlier append.
        // A record written as the stream is now must not claim appends fjall lacks.
        let idmp_dirty =
            (appends.is_some() || !stream.has_unflushed()) && stream.begin_idmp_flush();
        let idmp_only = (appends.is_none() && idmp_dirty).then(|| stream.meta());
        self.pieces.push(Piece {
            prefix: stream_prefix(db, key),
            appends,
            incarnation: stream.incarnation(),
            groups,
            idmp: encode_stream_sections(stream),
            idmp_only,
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
        self.pieces.is_empty() && self.strings.is_empty()
    }

    /// Encodes the pieces, ingests their entries when they span few streams
    /// (`INGEST_MAX_STREAMS`) or are many (`JOURNALED_MAX_ENTRIES` or more), then
    /// commits the node and stream records (and the entries not ingested) as one batch;
    /// returns its sequence.
    ///
    /// # Errors
    /// When the engine refuses the ingestion or the batch.
    pub fn commit(self) -> Result<u64, StoreError> {
        self.store.refuse_if_broken()?;
        self.store.durability.health.ensure_room()?;
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
        for (prefix, state) in &self.strings {
            match &state.string {
                Some(v) => batch.insert(&ks.strings, prefix.as_slice(), v.as_ref()),
                None if state.string_on_disk => {}
                None => batch.remove(&ks.strings, prefix.as_slice()),
            }
            match state.deadline {
                Some(ms) => batch.insert(&ks.expires, prefix.as_slice(), ms.to_be_bytes()),
                None => batch.remove(&ks.expires, prefix.as_slice()),
            }
        }
        for p in &self.pieces {
            // Read outside the shard's lock: the group records in fjall change only with a
            // checkpoint batch or a stream's own batch, which waits for this one.
            self.store
                .add_group_records(&mut batch, &p.prefix, &p.groups)?;
            if let Some(meta) = &p.idmp_only {
                let record = encode_stream(meta, p.incarnation, &p.idmp);
                batch.insert(&ks.streams, p.prefix.clone(), record);
            }
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
            let record = encode_stream(as_of, p.incarnation, &p.idmp);
            batch.insert(&ks.streams, p.prefix.clone(), record);
        }
        Ok((entries, batch))
    }
}

#[cfg(test)]
mod tests;
