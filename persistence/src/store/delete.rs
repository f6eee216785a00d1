//! Deleting streams and databases: one small batch, the floors that keep a deleted
//! stream's logged creation dead, and the purges that remove large streams' records later.

use std::sync::atomic::Ordering;

use crate::stored::StoredStream;
use fjall::{Keyspace, OwnedWriteBatch};

use crate::error::StoreError;
use crate::keys::{db_prefix, floor_key, stream_prefix};
use crate::purge::{Purge, purge_key};

use super::Store;

impl Store {
    /// Removes stream `key` (DEL, UNLINK), which `stream` held, from the store; returns
    /// the batch's sequence. A stream with many records in fjall loses only its stream
    /// record here, and the purge thread removes the rest after (see the `purge` module).
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn delete_stream(
        &self,
        db: u32,
        key: &[u8],
        stream: &StoredStream,
    ) -> Result<u64, StoreError> {
        self.remove_under(stream_prefix(db, key), [stream])
    }

    /// Removes every stream under `prefix`, which were `streams` (removed from memory
    /// already, so no checkpoint takes them any more), as one batch; or, when they have
    /// many records in fjall, only their stream records, and leaves the rest to the purge
    /// thread.
    pub(super) fn remove_under<'a>(
        &self,
        prefix: Vec<u8>,
        streams: impl IntoIterator<Item = &'a StoredStream>,
    ) -> Result<u64, StoreError> {
        self.remove_under_then(prefix, streams, |_, _| {})
    }

    /// As [`Store::remove_under`], with `then` adding its own records to the same batch,
    /// after the removals (a string replacing the stream: one batch, so a crash keeps
    /// either the stream or the string).
    pub(super) fn remove_under_then<'a>(
        &self,
        prefix: Vec<u8>,
        streams: impl IntoIterator<Item = &'a StoredStream>,
        then: impl FnOnce(&mut OwnedWriteBatch, &super::Keyspaces),
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
        // Strings and deadlines are one record per key: removed here, never by a purge,
        // whose later batches could otherwise take a string written after this deletion.
        self.remove_prefix(&mut batch, &self.ks.strings, &prefix)?;
        self.remove_prefix(&mut batch, &self.ks.expires, &prefix)?;
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
        then(&mut batch, &self.ks);
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        self.leave_floor(&mut batch, &prefix);
        let seq = self.commit(batch)?;
        if lazy {
            self.purges.add(Purge::deleted(prefix));
        } else {
            self.note_removed(records as u64);
        }
        Ok(seq)
    }

    /// Waits, before a batch of stream `key`'s own, until no pending purge could remove
    /// what the batch writes: a deletion's purge of its key (the stream is a new life of
    /// it; a plain append to it only goes to the tail log, and never waits), or a trim's
    /// purge of another life of it (this batch numbers the stream, or renumbers it for
    /// XSETID, which can move its last ID back below the trim's floor).
    pub(super) fn wait_for_purges(
        &self,
        db: u32,
        key: &[u8],
        stream: &StoredStream,
        muts: &[brooklet_streams::Mutation],
    ) {
        if self.purges.pending() == 0 {
            return;
        }
        let renumbers = stream.incarnation() == 0
            || muts
                .iter()
                .any(|m| matches!(m, brooklet_streams::Mutation::StreamMeta { .. }));
        let life = (!renumbers).then(|| stream.incarnation());
        self.purges.wait_clear(&stream_prefix(db, key), life);
    }

    /// Whether a checkpoint must leave stream `key` out for now: a pending purge could
    /// remove what it would write. Such a stream is a life of its key created after the
    /// checkpoint began (it waited for the deletions' purges of the streams it names,
    /// [`Store::wait_for_deletions`]), so its appends are in segments it does not retire.
    pub(super) fn blocked_by_purge(&self, db: u32, key: &[u8], stream: &StoredStream) -> bool {
        self.purges.pending() > 0 && {
            let life = (stream.incarnation() != 0).then(|| stream.incarnation());
            self.purges.blocks(&stream_prefix(db, key), life)
        }
    }

    /// Waits, with no lock held, until no deletion's purge covers the streams `names` (a
    /// checkpoint's, before it takes them): one of them may be a new life of a deleted
    /// key, whose records the purge would take, and whose appends the checkpoint must
    /// write before it retires their segments.
    pub(super) fn wait_for_deletions(&self, names: &[crate::tail_log::StreamName]) {
        if self.purges.pending() == 0 {
            return;
        }
        for (db, key) in names {
            self.purges.wait_deletions(&stream_prefix(*db, key));
        }
    }

    /// Counts `n` records removed by a committed batch (see [`Purges::note_removed`]).
    pub(super) fn note_removed(&self, n: u64) {
        self.purges.note_removed(n, &self.ks.entries);
    }

    /// While the tail log holds stream creations, a deletion of the streams under `prefix`
    /// records in its own batch the next incarnation as their floor: replay creates none of
    /// them below it. Every stream it deleted was numbered below it, every later one will be
    /// numbered from it on. [`Store::retire_tail`] drops the floors once no creation they
    /// could kill is left.
    pub(super) fn leave_floor(&self, batch: &mut OwnedWriteBatch, prefix: &[u8]) {
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
        streams: impl IntoIterator<Item = &'a StoredStream>,
    ) -> Result<u64, StoreError> {
        self.remove_under(db.map(db_prefix).unwrap_or_default(), streams)
    }

    pub(super) fn remove_prefix(
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
}

/// Above this many records in fjall, a deleted stream's are removed by the purge thread, so
/// no DEL holds every client behind one huge batch.
pub(super) const LAZY_PURGE_RECORDS: usize = 4096;

/// About how many records `stream` has in fjall: its entries (deleted ones still have
/// theirs until their node goes), its nodes, and its group records.
pub(super) fn stored_records(stream: &StoredStream) -> usize {
    let groups: usize = stream
        .groups()
        .values()
        .map(|g| 1 + g.consumers().len() + g.pending().len())
        .sum();
    let entries: u64 = stream.nodes().map(|n| 1 + n.live + n.deleted).sum();
    entries as usize + groups
}
