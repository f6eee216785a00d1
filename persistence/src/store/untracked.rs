//! Changes Redis does not count as writes: an existing consumer's seen-time, and the
//! delivery time and count a consumer's re-read of its own pending entries bumps
//! (XREADGROUP with an ID other than `>`). Redis changes them in memory without dirtying
//! the dataset or propagating anything, so INFO's `rdb_changes_since_last_save` stays put
//! and only a snapshot taken later holds them; an AOF never does.
//!
//! Logging them cost a tail-log record and a sequence number per read, and counted each as
//! a change. They are instead marked on the stream as dirty group records, which the
//! stream's next batch or the next checkpoint writes as memory has them then, and the
//! stream is listed for the checkpoints until one retires the whole log (SAVE, BGSAVE,
//! shutdown): before that, replay of older logged values of those records would set them
//! back. A crash before it loses them, as Redis's AOF loses them; replay of the
//! records logged before can then only set them back to what was last logged. DEBUG
//! RELOAD, which replays the tail log rather than checkpointing it, first writes each such
//! stream in a batch of its own under a new life ([`Store::write_untracked`]), as Redis's
//! reload saves a snapshot first.

use brooklet_streams::Mutation;
use bytes::Bytes;

use crate::error::StoreError;
use crate::stored::StoredStream;
use crate::tail_log::{Probe, StreamName};

use super::Store;
use super::checkpoint::StreamHost;

impl Store {
    /// Takes changes Redis does not count as writes (see the module doc) without logging
    /// them; false (nothing done) when the stream has no record in fjall yet, whose group
    /// changes must go in a batch ([`Store::write_stream`]).
    pub fn note_untracked(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
    ) -> bool {
        if !stream.is_stored() || !muts.iter().all(Mutation::is_group_change) {
            return false;
        }
        stream.note_group_changes(muts);
        let mut names = self.untracked.lock().unwrap_or_else(|p| p.into_inner());
        if !names.contains(&Probe(db, key)) {
            names.insert((db, Bytes::copy_from_slice(key)));
        }
        true
    }

    /// Writes every stream with untracked changes in a batch of its own, with a new life so
    /// that replay skips what was logged of it before (DEBUG RELOAD, under its exclusive
    /// hold of the keyspace: `streams` is only visited).
    ///
    /// # Errors
    /// When a batch fails; the streams not written stay listed.
    pub fn write_untracked(&self, streams: &dyn StreamHost) -> Result<(), StoreError> {
        let mut names = self.take_untracked().into_iter();
        while let Some((db, key)) = names.next() {
            let mut done = Ok(());
            // Even with no record dirty now (a batch of the stream's since wrote them): the
            // log may hold older values of those records, which replay would set back.
            streams.visit(db, &key, true, &mut |s| {
                done = self.write_own_batch_as(db, &key, s, &[], true).map(|_| ());
            });
            if let Err(e) = done {
                let mut again = vec![(db, key)];
                again.extend(names);
                self.restore_untracked(again);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The streams with untracked changes, for a checkpoint to write.
    pub(super) fn take_untracked(&self) -> Vec<StreamName> {
        let mut names = self.untracked.lock().unwrap_or_else(|p| p.into_inner());
        names.drain().collect()
    }

    /// Lists streams again whose untracked changes a failed checkpoint did not write.
    pub(super) fn restore_untracked(&self, again: Vec<StreamName>) {
        let mut names = self.untracked.lock().unwrap_or_else(|p| p.into_inner());
        names.extend(again);
    }
}
