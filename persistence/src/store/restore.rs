//! A stream built whole in memory and stored under a name (RESTORE, `--import-rdb`): one
//! batch writes every record of it, with the key's deadline, and removes whatever the name
//! held before (a string, or a stream small enough to go in the same batch), so a crash
//! keeps either the old key or the new one.

use brooklet_streams::Mutation;

use crate::error::StoreError;
use crate::keys::{consumer_key, entry_key, group_key, node_key, pending_key, stream_prefix};
use crate::stored::StoredStream;

use super::Store;

impl Store {
    /// Stores `stream`, new and built from `muts` (every record that makes it, in order),
    /// under `key` of database `db` with `deadline`, replacing a string there and the stream
    /// `replaced`, if any (which the caller has checked with
    /// [`Store::replaces_in_one_batch`], deleting a larger one first); returns the batch's
    /// sequence.
    ///
    /// # Errors
    /// When the engine refuses the batch; nothing is stored then.
    pub fn restore_stream(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
        deadline: Option<u64>,
        replaced: Option<&StoredStream>,
    ) -> Result<u64, StoreError> {
        let prefix = stream_prefix(db, key);
        self.purges.wait_clear(&prefix, None);
        self.wait_for_checkpoint();
        // What the replaced stream has in fjall and this batch does not write again: one key
        // is never both written and removed in a batch (fjall would keep both).
        let mut leftover = Vec::new();
        if replaced.is_some_and(StoredStream::is_stored) {
            let written = written_keys(&prefix, stream, muts);
            let [_, rest @ ..] = self.ks.stream_records();
            for ks in rest {
                for kv in ks.prefix(&prefix) {
                    let k = kv.key()?.to_vec();
                    if !written.contains(&k) {
                        leftover.push((ks, k));
                    }
                }
            }
        }
        let mut batch = self.batch();
        let removed = leftover.len() as u64;
        for (ks, k) in leftover {
            batch.remove(ks, k);
        }
        batch.remove(&self.ks.strings, prefix.clone());
        match deadline {
            Some(ms) => batch.insert(&self.ks.expires, prefix.as_slice(), ms.to_be_bytes()),
            None => batch.remove(&self.ks.expires, prefix.clone()),
        }
        // Strings and deadlines logged under the name, and a stream's logged creation, must
        // not replay over this one: a floor below its life, taken before it is numbered.
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        self.leave_floor(&mut batch, &prefix);
        let (taken, flushed) = self.take_for_batch(db, key, stream, muts, false);
        let filled = self
            .fill_batch(&mut batch, db, key, stream, muts, flushed)
            .and_then(|_| {
                self.add_group_records(&mut batch, &prefix, &taken.groups.current(stream))
            });
        let written = filled.and_then(|()| self.commit(batch));
        self.after_batch(db, key, stream, taken, written.is_ok());
        if written.is_ok() && removed > 0 {
            self.note_removed(removed);
        }
        written
    }
}

/// The keys a new stream's batch writes, besides its stream record: every entry, node,
/// group, consumer and pending entry.
fn written_keys(
    prefix: &[u8],
    stream: &StoredStream,
    muts: &[Mutation],
) -> hashbrown::HashSet<Vec<u8>> {
    let mut keys = hashbrown::HashSet::new();
    for node in stream.nodes() {
        keys.insert(node_key(prefix, node.master));
    }
    for m in muts {
        match m {
            Mutation::EntryAdded { id, .. } => {
                keys.insert(entry_key(prefix, *id));
            }
            Mutation::GroupCreated { group, .. } => {
                keys.insert(group_key(prefix, group));
            }
            Mutation::ConsumerUpserted {
                group, consumer, ..
            } => {
                keys.insert(consumer_key(&group_key(prefix, group), consumer));
            }
            Mutation::PendingUpserted { group, id, .. } => {
                keys.insert(pending_key(&group_key(prefix, group), *id));
            }
            _ => {}
        }
    }
    keys
}
