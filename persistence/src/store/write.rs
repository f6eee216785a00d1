//! Each command's changes: a plain append or a change to consumer groups alone goes to
//! the tail log; anything else is one fjall batch.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use brooklet_streams::{IdmpConfig, Mutation, StreamId};
use bytes::Bytes;
use fjall::OwnedWriteBatch;

use crate::codec::{
    encode_entry, encode_node, encode_stream, encode_stream_sections, mark_deleted,
};
use crate::error::StoreError;
use crate::keys::{consumer_key, entry_key, group_key, node_key, pending_key, stream_prefix};
use crate::stored::{DirtyGroups, Route, StoredStream};

use super::Store;
use super::trim::Removal;

/// What a stream's own batch took from it ([`Store::take_for_batch`]).
pub(super) struct Taken {
    /// Its incarnation before the batch.
    incarnation: u64,
    /// The first append the batch took out of the tail log.
    first_flushed: Option<StreamId>,
    /// The group records the batch writes.
    pub(super) groups: DirtyGroups,
    /// Pending trims' markers carried over to the new life.
    pub(super) floors: Vec<crate::purge::Purge>,
}

impl Store {
    /// Writes one command's changes to stream `key`; returns its sequence.
    ///
    /// `stream` is the stream after the command; `muts` are the records the command produced.
    /// A plain append (the first entry of a new stream included) or a change to consumer
    /// groups alone is one tail-log record; anything else is one atomic fjall batch, which
    /// also carries what the tail log still holds of the stream.
    ///
    /// The stream remembers the sequence ([`StoredStream::seq`]). A change the store could
    /// not take is already in memory, where only a restart, which reads the store back,
    /// removes it: the stream is marked in doubt, and the store refuses writes until then
    /// (a refusal is how its readers learn that the stream cannot be shown).
    ///
    /// # Errors
    /// When the engine refuses the batch (disk full, a failed fsync earlier).
    pub fn write_stream(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
    ) -> Result<u64, StoreError> {
        let written = self.route_write(db, key, stream, muts);
        match &written {
            Ok(seq) => stream.set_seq(*seq),
            Err(e) => {
                let health = &self.durability.health;
                if !health.broken() {
                    health.fail(
                        crate::FaultKind::EngineFailed,
                        format!("storing a change already made in memory: {e}"),
                    );
                }
                stream.set_in_doubt();
            }
        }
        written
    }

    fn route_write(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
    ) -> Result<u64, StoreError> {
        match stream.route(muts) {
            Route::Append {
                id,
                fields,
                new_node,
                creates,
                idmp,
            } => self.log_append(db, key, stream, id, fields, new_node, creates, idmp),
            Route::GroupChanges => self.log_group_changes(db, key, stream, muts),
            Route::Batch => self.write_own_batch(db, key, stream, muts),
        }
    }

    /// Logs a plain append (one creating its stream when `creates`).
    #[allow(clippy::too_many_arguments)]
    fn log_append(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        id: StreamId,
        fields: &[Bytes],
        new_node: bool,
        creates: bool,
        idmp: Option<&Mutation>,
    ) -> Result<u64, StoreError> {
        // Not refused here, even after a fault: see `Store::commit`.
        if creates {
            stream.set_incarnation(self.next_incarnation.fetch_add(1, Ordering::Relaxed));
        }
        // A created stream's IDMP settings ride with its first entry unless they are the
        // defaults a stream is read back with.
        let config = stream.idmp().config();
        let idmp_config = (creates && config != IdmpConfig::default()).then_some(config);
        let logged = self.tail.append(
            db,
            key,
            stream.incarnation(),
            new_node,
            creates,
            id,
            fields,
            idmp,
            idmp_config,
            stream.log_segment(),
        );
        match logged {
            Ok(segment) => stream.set_log_segment(segment),
            Err(e) => {
                if creates {
                    stream.set_incarnation(0);
                }
                self.durability
                    .health
                    .fail_io(&e, false, "logging an append");
                return Err(self.durability.health.refusal());
            }
        }
        stream.mark_unflushed(id);
        Ok(self.durability.publish(true))
    }

    /// Logs a change to consumer groups alone; the records it changed are written into
    /// fjall later, as they are then.
    fn log_group_changes(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
    ) -> Result<u64, StoreError> {
        let logged =
            self.tail
                .log_group_changes(db, key, stream.incarnation(), muts, stream.log_segment());
        match logged {
            Ok(segment) => stream.set_log_segment(segment),
            Err(e) => {
                self.durability
                    .health
                    .fail_io(&e, false, "logging group changes");
                return Err(self.durability.health.refusal());
            }
        }
        stream.note_group_changes(muts);
        Ok(self.durability.publish(true))
    }

    /// Writes a command's changes as one fjall batch, with everything the tail log still
    /// holds of the stream.
    fn write_own_batch(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
    ) -> Result<u64, StoreError> {
        self.write_own_batch_as(db, key, stream, muts, false)
    }

    /// [`Self::write_own_batch`]; `renumber` gives the stream a new life even when `muts`
    /// do not ask for one, so that replay skips what was logged of it before.
    pub(super) fn write_own_batch_as(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
        renumber: bool,
    ) -> Result<u64, StoreError> {
        let (taken, flushed) = self.take_for_batch(db, key, stream, muts, renumber);
        let written =
            self.write_batch(db, key, stream, muts, flushed, &taken.groups, &taken.floors);
        self.after_batch(db, key, stream, taken, written.is_ok());
        written
    }

    /// Readies `stream` for a batch of its own carrying `muts`: waits for what the batch
    /// must not overtake, takes its logged appends and dirty group records, and gives it a
    /// new life where replay must skip what was logged before (`renumber`, or as `muts`
    /// ask). What it took goes back through [`Store::after_batch`] if the batch fails.
    pub(super) fn take_for_batch(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
        renumber: bool,
    ) -> (Taken, Vec<brooklet_streams::StoredEntry>) {
        self.wait_for_purges(db, key, stream, muts);
        if stream.is_flushing() {
            self.wait_for_checkpoint();
        }
        let flushed = stream.take_unflushed();
        let first_flushed = flushed.first().map(|e| e.id);
        // XSETID can move the last ID back below appends the tail log still holds (a trim
        // removed them since), which replay would then take for new ones; and a pending entry
        // removed in a batch (XDELEX / XACKDEL) would come back with the logged delivery
        // replayed over it. This batch writes every logged append and group record still in
        // the stream, so a new incarnation makes replay skip all the records logged so far.
        let incarnation = stream.incarnation();
        let mut floors = Vec::new();
        if incarnation != 0
            && (renumber
                || muts.iter().any(|m| {
                    matches!(
                        m,
                        Mutation::StreamMeta { .. } | Mutation::PendingRemoved { .. }
                    )
                }))
        {
            let renumbered = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
            stream.set_incarnation(renumbered);
            // Removing pending entries leaves the last ID where it was: a pending trim's
            // floor holds for the new life as for the old (XSETID waited for it instead).
            let moves_back = muts
                .iter()
                .any(|m| matches!(m, Mutation::StreamMeta { .. }));
            if !moves_back && self.purges.pending() > 0 {
                floors = self
                    .purges
                    .relabel(&stream_prefix(db, key), incarnation, renumbered);
            }
        }
        // The batch writes every group record changed since fjall last had them, with this
        // command's: it may change the incarnation, after which replay skips the logged ones.
        let mut groups = stream.take_dirty_groups_with_flushing();
        for m in muts {
            groups.note(m);
        }
        (
            Taken {
                incarnation,
                first_flushed,
                groups,
                floors,
            },
            flushed,
        )
    }

    /// Ends what [`Store::take_for_batch`] began, once the batch was committed or failed.
    pub(super) fn after_batch(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        taken: Taken,
        committed: bool,
    ) {
        stream.end_batch_trim(committed);
        if committed {
            stream.set_stored();
            // The batch wrote the stream record, IDMP state included.
            stream.take_dirty_idmp();
        } else {
            stream.restore_dirty_groups(taken.groups);
            if !taken.floors.is_empty() {
                self.purges.relabel(
                    &stream_prefix(db, key),
                    stream.incarnation(),
                    taken.incarnation,
                );
            }
            // Nothing reached fjall: the stream's record keeps its old incarnation (or none).
            stream.set_incarnation(taken.incarnation);
            if let Some(id) = taken.first_flushed {
                stream.mark_unflushed(id);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_batch(
        &self,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
        flushed: Vec<brooklet_streams::StoredEntry>,
        groups: &DirtyGroups,
        floors: &[crate::purge::Purge],
    ) -> Result<u64, StoreError> {
        let mut batch = self.batch();
        self.add_floors(&mut batch, floors);
        let removed = self.fill_batch(&mut batch, db, key, stream, muts, flushed)?;
        if !groups.is_empty() {
            self.add_group_records(&mut batch, &stream_prefix(db, key), &groups.current(stream))?;
        }
        let seq = self.commit(batch)?;
        self.removed(removed);
        Ok(seq)
    }

    /// Adds to `batch` the trim markers a new life of a stream carries over (`floors`).
    pub(super) fn add_floors(&self, batch: &mut OwnedWriteBatch, floors: &[crate::purge::Purge]) {
        for purge in floors {
            if let Some((upto, _)) = purge.trim {
                batch.insert(
                    &self.ks.meta,
                    crate::purge::trim_key(&purge.prefix, upto),
                    purge.marker_value(),
                );
            }
        }
    }

    /// Adds one command's changes to stream `key` (after the appends `flushed` takes out of
    /// the tail log) to `batch`; returns how many entry records it removes.
    pub(super) fn fill_batch(
        &self,
        batch: &mut OwnedWriteBatch,
        db: u32,
        key: &[u8],
        stream: &mut StoredStream,
        muts: &[Mutation],
        flushed: Vec<brooklet_streams::StoredEntry>,
    ) -> Result<Removal, StoreError> {
        let prefix = stream_prefix(db, key);
        // Entries added by this batch are kept aside so a trim in the same command (XADD
        // MAXLEN 0) removes them too, without reading them back from disk. Appends the tail
        // log held come first, as the command found them (tombstones if it deleted them).
        // Nodes whose record must be rewritten (or removed, if the node is gone by the end):
        // those the logged appends went into or opened, and those the command changed.
        let mut touched: Vec<StreamId> = Vec::new();
        let mut added: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
        let mut removal = Removal::default();
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
                Mutation::EntriesDeleted { ids } | Mutation::EntriesTrimmed { ids } => {
                    // The entry stays as a tombstone: its node keeps the slot, and a reload
                    // must rebuild the same nodes. Tombstones go when a trim passes them.
                    for id in ids {
                        // A node the command dropped whole goes with its `NodeDropped` (or
                        // its trim): its entries need no tombstone, nor a read of their value.
                        let Some(node) = stream.node_holding(*id) else {
                            continue;
                        };
                        let master = node.master;
                        self.add_deleted_entries(&prefix, stream, master, *id, *id, &mut added)?;
                        // Already in the batch (a logged append), or found: marked either way.
                        let Some(value) = added.get_mut(id) else {
                            continue;
                        };
                        mark_deleted(value);
                        touched.push(master);
                    }
                }
                Mutation::NodeDropped { master, last } => {
                    // Only the node's own range: a retain over every entry for each node
                    // dropped made XDEL of 100,000 IDs quadratic.
                    let gone: Vec<StreamId> =
                        added.range(*master..=*last).map(|(id, _)| *id).collect();
                    for id in gone {
                        added.remove(&id);
                    }
                    let from = entry_key(&prefix, *master);
                    let to = entry_key(&prefix, *last);
                    for kv in self.ks.entries.range(from.as_slice()..=to.as_slice()) {
                        batch.remove(&self.ks.entries, kv.key()?);
                        removal.records += 1;
                    }
                    batch.remove(&self.ks.nodes, node_key(&prefix, *master));
                }
                Mutation::Trimmed { through, dropped } => self.trim_records(
                    batch,
                    &prefix,
                    stream,
                    *through,
                    *dropped,
                    &mut added,
                    &mut touched,
                    &mut removal,
                )?,
                Mutation::NodesTrimmed { nodes } => self.nodes_trimmed_records(
                    batch,
                    &prefix,
                    stream,
                    nodes,
                    &mut added,
                    &mut removal,
                )?,
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
        let record = encode_stream(
            &stream.meta(),
            stream.incarnation(),
            &encode_stream_sections(stream),
        );
        batch.insert(&self.ks.streams, prefix, record);
        Ok(removal)
    }

    /// Adds to `batch` the group, consumer and pending records that `changes` write (as
    /// [`DirtyGroups::current`] gives them: a group's destruction first, then each record's
    /// value or removal). A key written twice is written once, with its last value: in one
    /// batch, fjall would keep both versions under one sequence number.
    pub(super) fn add_group_records(
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
            let value = crate::codec::group_record_value(m);
            match m {
                Mutation::GroupCreated { group, .. } | Mutation::GroupUpdated { group, .. } => {
                    records.insert((GROUPS, group_key(prefix, group)), value);
                }
                Mutation::GroupCounters { group, counters } => {
                    if let Some(Some(v)) = records.get_mut(&(GROUPS, group_key(prefix, group))) {
                        crate::codec::put_group_sections(v, counters, None);
                    }
                }
                Mutation::GroupDlqSet { group, dlq } => {
                    if let Some(Some(v)) = records.get_mut(&(GROUPS, group_key(prefix, group))) {
                        let none = brooklet_streams::GroupCounters::default();
                        crate::codec::put_group_sections(v, &none, dlq.as_ref());
                    }
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
                    group, consumer, ..
                }
                | Mutation::ConsumerDeleted { group, consumer } => {
                    let k = consumer_key(&group_key(prefix, group), consumer);
                    records.insert((CONSUMERS, k), value);
                }
                Mutation::PendingUpserted { group, id, .. }
                | Mutation::PendingNacked { group, id, .. }
                | Mutation::PendingRemoved { group, id } => {
                    let k = pending_key(&group_key(prefix, group), *id);
                    records.insert((PENDING, k), value);
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
}
