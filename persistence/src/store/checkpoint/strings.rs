//! The checkpoint's strings: the keys whose strings or deadlines the retired segments set,
//! written into fjall as memory holds them, in batches built under their shards' locks.

use crate::error::StoreError;
use crate::keys::stream_prefix;
use crate::tail_log::StreamName;

use super::run::{KeyState, StreamHost};
use super::{PendingFlush, Store};

/// Keys per batch: a batch is encoded and committed with no lock held, but the DELs of its
/// keys wait for it.
const BATCH_KEYS: usize = 10_000;

impl Store {
    /// Writes the strings and deadlines of `names` into fjall as memory has them now (a
    /// checkpoint, before it retires the segments that logged them).
    pub(super) fn checkpoint_strings(
        &self,
        streams: &dyn StreamHost,
        names: &[&StreamName],
    ) -> Result<(), StoreError> {
        let mut next = 0;
        while next < names.len() {
            let mut done = Ok(());
            streams.batch(&mut || done = self.strings_batch(streams, names, &mut next));
            done?;
        }
        Ok(())
    }

    /// One batch of [`Store::checkpoint_strings`]: `names` from `next` on; `next` moves
    /// past those it took.
    fn strings_batch(
        &self,
        streams: &dyn StreamHost,
        names: &[&StreamName],
        next: &mut usize,
    ) -> Result<(), StoreError> {
        let mut pending = self.begin_flush();
        while let Some((db, key)) = names.get(*next) {
            if pending.strings.len() >= BATCH_KEYS {
                break;
            }
            // As for streams: once the batch holds a key, a DEL of it waits for the batch
            // under its shard's lock, so a shard that stays busy ends the batch.
            let wait = pending.is_empty();
            let mut seen = false;
            let visited = streams.visit_key(*db, key, wait, &mut |state| {
                seen = true;
                pending.add_key(*db, key, state);
            });
            if !visited {
                break;
            }
            if !seen {
                // A database this server does not have: the key is not in memory.
                pending.add_key(*db, key, KeyState::default());
            }
            *next += 1;
        }
        if pending.is_empty() {
            return Ok(());
        }
        pending.commit().map(|_| ())
    }
}

impl PendingFlush<'_> {
    /// Adds key `key` of database `db` as `state` says it is (the caller holds its shard):
    /// from here to the commit, a deletion of it waits for the batch, which would otherwise
    /// bring back what the deletion removed.
    fn add_key(&mut self, db: u32, key: &[u8], state: KeyState) {
        if self.committing.is_none() {
            let store = self.store;
            self.committing = Some(store.committing.lock().unwrap_or_else(|p| p.into_inner()));
        }
        self.strings.push((stream_prefix(db, key), state));
    }
}
