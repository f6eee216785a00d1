//! A trim's records: what a trim (XTRIM, XADD's MAXLEN / MINID) writes in its command's
//! batch, and what it leaves to the purge thread.
//!
//! A trim far below a stream's length drops tens of thousands of nodes. Removing their
//! records in the command's batch meant one tombstone per entry, all read first: a batch of
//! 2M removals that held every client for 1.6-1.9 s. A trim that drops more than
//! [`LAZY_PURGE_RECORDS`] entry slots instead writes a floor (a `trim/` marker: the stream,
//! the highest ID whose records go, and the stream's incarnation) in the same batch, and the
//! purge thread removes the `entries` and `nodes` records up to it. Memory has dropped the
//! nodes already, so no read meets them; start-up finishes the purge before it loads
//! anything, so no reload does either.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use brooklet_streams::{Stream, StreamId};
use fjall::OwnedWriteBatch;

use crate::codec::{encode_entry, mark_deleted};
use crate::error::StoreError;
use crate::keys::{entry_key, node_key, read_id, split_prefix};
use crate::purge::{Purge, trim_key};
use crate::stored::StoredStream;

use super::Store;
use super::delete::LAZY_PURGE_RECORDS;

/// What a command's batch removes: records it removes itself, and a purge of a trim's
/// records to hand to the purge thread once the batch is committed.
#[derive(Default)]
pub(super) struct Removal {
    /// Records the batch removes.
    pub records: u64,
    /// The trim's purges, when it left its records to the purge thread.
    pub purges: Vec<Purge>,
}

impl Store {
    /// Adds a trim's records to `batch` (`stream` is after the trim; `through` and
    /// `dropped` are the trim's: see `Mutation::Trimmed`). `added` holds the entries the
    /// batch writes, `touched` the nodes whose records it rewrites.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn trim_records(
        &self,
        batch: &mut OwnedWriteBatch,
        prefix: &[u8],
        stream: &mut StoredStream,
        through: StreamId,
        dropped: u64,
        added: &mut BTreeMap<StreamId, Vec<u8>>,
        touched: &mut Vec<StreamId>,
        removal: &mut Removal,
    ) -> Result<(), StoreError> {
        // Entries of dropped nodes go; those of a node the trim only cut into stay as
        // tombstones, as the node in memory keeps their slots.
        let first_kept = stream.first_node_id();
        let kept_from = first_kept.unwrap_or(StreamId::MAX);
        added.retain(|id, _| *id > through || *id >= kept_from);
        for (id, v) in added.range_mut(..=through) {
            if *id >= kept_from {
                mark_deleted(v);
            }
        }
        let floor = stream.trim_floor();
        // Entries at or below the floor were marked by an earlier trim.
        let mark_from = match floor.marked {
            None => Some(kept_from),
            Some(marked) => marked.next().map(|m| m.max(kept_from)),
        };
        if let Some(mark_from) = mark_from
            && mark_from <= through
        {
            // The node cut into: at most one node's entries.
            self.add_deleted_entries(prefix, stream, kept_from, mark_from, through, added)?;
        }
        // Every entry and node record below the first node kept goes.
        let upto = match first_kept {
            Some(first) => {
                touched.push(first);
                first.prev()
            }
            None => Some(through),
        };
        stream.propose_trim_floor(through, upto);
        let Some(upto) = upto else {
            return Ok(());
        };
        if floor.gone >= Some(upto) {
            return Ok(());
        }
        let incarnation = stream.incarnation();
        // Under a pending purge of the stream, fjall may hold far more below the floor than
        // this trim dropped: a scan of it here would meet them all.
        let lazy = dropped as usize > LAZY_PURGE_RECORDS || self.purges.overlaps(prefix);
        if lazy && incarnation != 0 {
            let purge = Purge::trimmed(prefix.to_vec(), StreamId::MIN, upto, incarnation);
            batch.insert(&self.ks.meta, trim_key(prefix, upto), purge.marker_value());
            removal.purges.push(purge);
            return Ok(());
        }
        // Records at or below the floor are gone: only tombstones are left there.
        let from = floor.gone.and_then(StreamId::next);
        let (start, end) = (from.map(|f| entry_key(prefix, f)), entry_key(prefix, upto));
        let start = start.as_deref().unwrap_or(prefix);
        for kv in self.ks.entries.range(start..=end.as_slice()) {
            batch.remove(&self.ks.entries, kv.key()?);
            removal.records += 1;
        }
        let (start, end) = (from.map(|f| node_key(prefix, f)), node_key(prefix, upto));
        let start = start.as_deref().unwrap_or(prefix);
        for kv in self.ks.nodes.range(start..=end.as_slice()) {
            batch.remove(&self.ks.nodes, kv.key()?);
        }
        Ok(())
    }

    /// Adds to `added` the entries from `from` through `through` of the node whose first
    /// entry is `master`, marked deleted (those already in `added` stay as they are). They
    /// are encoded from the node when it is in memory, and read from fjall only when it is
    /// cold: a read of fjall searches every table it has.
    pub(super) fn add_deleted_entries(
        &self,
        prefix: &[u8],
        stream: &Stream,
        master: StreamId,
        from: StreamId,
        through: StreamId,
        added: &mut BTreeMap<StreamId, Vec<u8>>,
    ) -> Result<(), StoreError> {
        if let Some(entries) = stream.resident_entries(master, from, through) {
            for e in entries {
                if let Entry::Vacant(slot) = added.entry(e.id) {
                    slot.insert(deleted(encode_entry(&e.fields, e.id == master)));
                }
            }
            return Ok(());
        }
        let (from, end) = (entry_key(prefix, from), entry_key(prefix, through));
        for kv in self.ks.entries.range(from.as_slice()..=end.as_slice()) {
            let (k, v) = kv.into_inner()?;
            if let Some(id) = split_prefix(&k).and_then(|(_, _, rest)| read_id(rest))
                && let Entry::Vacant(slot) = added.entry(id)
            {
                slot.insert(deleted(v.to_vec()));
            }
        }
        Ok(())
    }

    /// Adds to `batch` the removal of the nodes an ACKED trim took whole past a node it kept
    /// (`nodes`: see `Mutation::NodesTrimmed`; `stream` is after the trim). Runs of them with
    /// no kept node between are one range each; past [`LAZY_PURGE_RECORDS`] entry slots in
    /// all (or under a pending purge of the stream) each range is left to the purge thread,
    /// its marker written here, as a large KEEPREF trim leaves its floor.
    pub(super) fn nodes_trimmed_records(
        &self,
        batch: &mut OwnedWriteBatch,
        prefix: &[u8],
        stream: &StoredStream,
        nodes: &[(StreamId, StreamId, u64)],
        added: &mut BTreeMap<StreamId, Vec<u8>>,
        removal: &mut Removal,
    ) -> Result<(), StoreError> {
        let mut runs: Vec<(StreamId, StreamId)> = Vec::new();
        let mut slots = 0u64;
        for &(master, last, n) in nodes {
            slots += n;
            // Appends this batch takes out of the tail log into a node now gone go with it.
            let gone: Vec<StreamId> = added.range(master..=last).map(|(id, _)| *id).collect();
            for id in gone {
                added.remove(&id);
            }
            if let Some(run) = runs.last_mut()
                && stream
                    .node_before(master)
                    .is_none_or(|kept| kept.master < run.0)
            {
                run.1 = last;
                continue;
            }
            runs.push((master, last));
        }
        let incarnation = stream.incarnation();
        let lazy = slots as usize > LAZY_PURGE_RECORDS || self.purges.overlaps(prefix);
        for (from, upto) in runs {
            if lazy && incarnation != 0 {
                let purge = Purge::trimmed(prefix.to_vec(), from, upto, incarnation);
                batch.insert(&self.ks.meta, trim_key(prefix, upto), purge.marker_value());
                removal.purges.push(purge);
                continue;
            }
            let (lo, hi) = (entry_key(prefix, from), entry_key(prefix, upto));
            for kv in self.ks.entries.range(lo.as_slice()..=hi.as_slice()) {
                batch.remove(&self.ks.entries, kv.key()?);
                removal.records += 1;
            }
            let (lo, hi) = (node_key(prefix, from), node_key(prefix, upto));
            for kv in self.ks.nodes.range(lo.as_slice()..=hi.as_slice()) {
                batch.remove(&self.ks.nodes, kv.key()?);
            }
        }
        Ok(())
    }

    /// Counts what a committed batch removed, and hands its trim's purge, if any, to the
    /// purge thread.
    pub(super) fn removed(&self, removal: Removal) {
        self.note_removed(removal.records);
        for purge in removal.purges {
            self.purges.add(purge);
        }
    }
}

/// An entry record, marked deleted.
fn deleted(mut value: Vec<u8>) -> Vec<u8> {
    mark_deleted(&mut value);
    value
}
