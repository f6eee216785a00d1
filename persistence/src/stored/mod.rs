//! A stream as the keyspace holds it: the data model ([`Stream`]) and its storage state,
//! the one place that knows where each of its changes is on disk.
//!
//! A stream's changes live in three places over time: in memory, in the tail log (plain
//! appends, and changes to consumer groups alone), and in fjall (its own records, written by
//! the stream's own batches and by the checkpoint). The state here says which is which:
//! the life of the key the stream is (its incarnation, which replay matches logged records
//! against), whether fjall has the stream's record yet, which appends are logged but not in
//! fjall (the stream's pinned entries, kept in memory until then), which group records were
//! changed since fjall last had them, and what a checkpoint's batch still being committed
//! holds.

mod dirty;
#[cfg(test)]
mod tests;

use std::ops::{Deref, DerefMut};

use brooklet_streams::{Mutation, NodeCopies, StoredEntry, Stream, StreamId, StreamMeta};
use bytes::Bytes;

pub(crate) use dirty::DirtyGroups;

/// A stream and its storage state. Dereferences to the [`Stream`], so commands run on it as
/// on the stream itself; only the store changes the storage state.
#[derive(Clone, Debug, Default)]
pub struct StoredStream {
    /// The data model.
    stream: Stream,
    /// Which life of its key this stream is (0 until the store numbers it), so records
    /// logged for an earlier stream under the same key are never replayed into this one.
    incarnation: u64,
    /// The tail-log segment this stream's last logged record went to (0: none yet), so the
    /// log need not look the stream up in that segment's list for every append. A stream
    /// object lives with one open store: reloads and restarts build new ones, which start
    /// at 0.
    log_segment: u64,
    /// Whether fjall holds the stream's own record: a stream created by a plain append lives
    /// only in the tail log until its first checkpoint or other change.
    stored: bool,
    /// The last logged append that a checkpoint's batch, built but not yet committed, holds:
    /// until [`StoredStream::end_flush`], those appends still count as unflushed.
    flushing: Option<StreamId>,
    /// Group records whose changes were logged but not yet written into fjall.
    dirty_groups: DirtyGroups,
    /// Those a checkpoint's batch, built but not yet committed, is writing (given back to
    /// `dirty_groups` if the batch fails).
    flushing_groups: Option<DirtyGroups>,
    /// Per group, an ID no pending record fjall holds is above: the removal of a pending
    /// entry above it need not be written (an entry delivered and acknowledged between two
    /// checkpoints costs fjall nothing).
    stored_pending_max: hashbrown::HashMap<Bytes, StreamId>,
    /// IDMP state changed by a logged record alone (a duplicate's count): fjall's stream
    /// record must be written again.
    idmp_dirty: bool,
    /// A checkpoint's batch, built but not yet committed, writes the stream record for
    /// that (given back to `idmp_dirty` if the batch fails).
    flushing_idmp: bool,
    /// The store sequence of the last change made to the stream ([`IN_DOUBT`] once a change
    /// reached memory but not the store): a reply that shows the stream waits until the store
    /// says that sequence is safe, so no reader is shown what the store could still lose.
    seq: u64,
    /// How far committed trims already took the stream's records in fjall, so a trim reads
    /// only what it newly drops: a scan from the stream's start would walk the tombstones of
    /// every trim before it (XADD MAXLEN at a steady length slowed to milliseconds per call).
    trim_floor: TrimFloor,
    /// What the batch being built raises `trim_floor` to once committed.
    trim_floor_next: Option<TrimFloor>,
}

/// The IDs below which a stream's entry records in fjall are already dealt with by trims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrimFloor {
    /// Every entry record at or below it is removed or marked deleted.
    pub marked: Option<StreamId>,
    /// No entry or node record at or below it is left (or a purge is removing them).
    pub gone: Option<StreamId>,
}

impl TrimFloor {
    /// The floor after a trim that marked entries through `marked` and removed (or left to
    /// the purge thread) every record through `gone`.
    fn raised(self, marked: StreamId, gone: Option<StreamId>) -> TrimFloor {
        TrimFloor {
            marked: self.marked.max(Some(marked)),
            gone: self.gone.max(gone),
        }
    }
}

/// The sequence of a stream whose memory holds a change the store refused: never safe.
pub(crate) const IN_DOUBT: u64 = u64::MAX;

/// Streams compare by content: where their changes are stored does not matter.
impl PartialEq for StoredStream {
    fn eq(&self, other: &StoredStream) -> bool {
        self.stream == other.stream
    }
}

impl Eq for StoredStream {}

impl PartialEq<Stream> for StoredStream {
    fn eq(&self, other: &Stream) -> bool {
        self.stream == *other
    }
}

impl Deref for StoredStream {
    type Target = Stream;

    fn deref(&self) -> &Stream {
        &self.stream
    }
}

impl DerefMut for StoredStream {
    fn deref_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl From<Stream> for StoredStream {
    /// A stream the store has not seen yet.
    fn from(stream: Stream) -> Self {
        StoredStream {
            stream,
            ..StoredStream::default()
        }
    }
}

/// Where a command's changes go (see [`StoredStream::route`]).
pub(crate) enum Route<'m> {
    /// One tail-log record: a plain append, creating the stream when `creates`.
    Append {
        id: StreamId,
        fields: &'m [Bytes],
        new_node: bool,
        creates: bool,
        /// The IDMP addition the XADD made, logged in the same record.
        idmp: Option<&'m Mutation>,
    },
    /// One tail-log record: a change to consumer groups alone.
    GroupChanges,
    /// One fjall batch, which also writes what the tail log holds of the stream.
    Batch,
}

impl StoredStream {
    /// Where the changes `muts` a command made go. The tail log takes a plain append to a
    /// stream it or fjall numbered, or the first entry of a new stream that is its only
    /// change (creating streams costs no fjall batch each); and a change to consumer groups
    /// alone of a stream fjall has the record of (groups of a stream only the tail log has
    /// created would be orphans after a restart: its first such change goes in a batch,
    /// which writes the stream's record). Anything else is a fjall batch.
    pub(crate) fn route<'m>(&self, muts: &'m [Mutation]) -> Route<'m> {
        let (append, idmp) = match muts {
            [a @ Mutation::EntryAdded { .. }] => (Some(a), None),
            [
                a @ Mutation::EntryAdded { .. },
                i @ Mutation::IdmpAdded { .. },
            ] => (Some(a), Some(i)),
            _ => (None, None),
        };
        if let Some(Mutation::EntryAdded {
            id,
            fields,
            new_node,
        }) = append
        {
            let creates = self.incarnation == 0 && self.is_fresh();
            if self.incarnation != 0 || creates {
                return Route::Append {
                    id: *id,
                    fields,
                    new_node: *new_node,
                    creates,
                    idmp,
                };
            }
        }
        if self.stored && !muts.is_empty() && muts.iter().all(Mutation::is_group_change) {
            return Route::GroupChanges;
        }
        Route::Batch
    }

    /// Applies a logged append at replay if it belongs to this life of the stream and is
    /// past what fjall holds of it (appends already written, or of a stream deleted since,
    /// are skipped); it then counts as unflushed, as before the restart. Returns whether it
    /// was applied.
    pub(crate) fn replay_append(
        &mut self,
        incarnation: u64,
        id: StreamId,
        fields: Vec<Bytes>,
        new_node: bool,
        idmp: Option<&Mutation>,
    ) -> bool {
        if self.incarnation != incarnation || id <= self.stream.last_id() {
            return false;
        }
        self.stream.apply(&Mutation::EntryAdded {
            id,
            fields,
            new_node,
        });
        if let Some(m) = idmp {
            self.stream.apply(m);
        }
        self.mark_unflushed(id);
        true
    }

    /// Applies logged group changes at replay if they belong to this life of the stream.
    /// They are applied again even where fjall has them already: each sets a record to a
    /// value or removes it, so the result is the same. Returns whether they were applied.
    pub(crate) fn replay_group_changes(&mut self, incarnation: u64, changes: &[Mutation]) -> bool {
        if self.incarnation != incarnation {
            return false;
        }
        for m in changes {
            self.stream.apply(m);
        }
        self.note_group_changes(changes);
        true
    }

    /// Whether IDMP state changed by a logged record only (the duplicates counter) since
    /// fjall last had the stream's record: the checkpoint then writes that record.
    pub(crate) fn has_dirty_idmp(&self) -> bool {
        self.idmp_dirty
    }

    /// Takes the flag [`StoredStream::has_dirty_idmp`] reads (the stream's own batch wrote
    /// the record).
    pub(crate) fn take_dirty_idmp(&mut self) -> bool {
        std::mem::take(&mut self.idmp_dirty)
    }

    /// Starts a checkpoint's write of the stream record for IDMP state changed by logged
    /// records alone; [`StoredStream::end_flush`] ends it. Returns whether there was any.
    pub(crate) fn begin_idmp_flush(&mut self) -> bool {
        self.flushing_idmp = std::mem::take(&mut self.idmp_dirty);
        self.flushing_idmp
    }

    /// Whether the stream is new, with its first entry its only change (what a plain XADD
    /// to a missing key makes): the tail log can create it.
    fn is_fresh(&self) -> bool {
        let s = &self.stream;
        s.entries_added() == 1
            && s.len() == 1
            && s.max_deleted_id() == StreamId::MIN
            && s.groups().is_empty()
    }

    /// An empty stream the store has not seen yet (what XADD, XGROUP CREATE MKSTREAM create).
    pub fn new() -> StoredStream {
        StoredStream::default()
    }

    /// The stream.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The stream, to change (the caller hands what it did to [`crate::Store::write_stream`]).
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// The stream, without its storage state.
    pub fn into_stream(self) -> Stream {
        self.stream
    }

    /// Notes that the append of `id` is logged but not yet in fjall: the entry stays in
    /// memory (pinned) until [`StoredStream::take_unflushed`] or a checkpoint writes it.
    pub(crate) fn mark_unflushed(&mut self, id: StreamId) {
        self.stream.pin_from(id);
    }

    /// Whether some appends are logged but not yet written into fjall.
    pub fn has_unflushed(&self) -> bool {
        self.stream.pinned_from().is_some()
    }

    /// Every entry since the first unflushed one that is still in the stream (tombstones
    /// included, with their flag), for a batch of the stream's own to write; they count as
    /// flushed after.
    pub(crate) fn take_unflushed(&mut self) -> Vec<StoredEntry> {
        let taken = self
            .stream
            .pinned_from()
            .and_then(|from| self.stream.entries_from(from, usize::MAX));
        self.stream.unpin();
        taken.map(|(entries, _)| entries).unwrap_or_default()
    }

    /// The logged appends a checkpoint would write now, at least one node's and at most
    /// about `max` (it stops at the first node boundary past `max`), with the stream's
    /// metadata as it was after the last of them; None when there are none.
    #[cfg(test)]
    pub(crate) fn unflushed_upto(&self, max: usize) -> Option<(Vec<StoredEntry>, StreamMeta)> {
        let from = self.stream.pinned_from()?;
        let (entries, left) = self.stream.entries_from(from, max)?;
        let last = entries.last()?.id;
        Some((entries, self.meta_as_of(last, left)))
    }

    /// The logged appends a checkpoint would write now (as for `unflushed_upto`), as copies
    /// of the nodes holding them: copying them is all a checkpoint does while it holds the
    /// stream, and it encodes them once it has let the stream go.
    pub(crate) fn unflushed_nodes(&self, max: usize) -> Option<(NodeCopies, StreamMeta)> {
        let from = self.stream.pinned_from()?;
        let nodes = self.stream.copy_nodes_from(from, max)?;
        let as_of = self.meta_as_of(nodes.last_id(), nodes.left_out());
        Some((nodes, as_of))
    }

    /// The stream's metadata as it was when entry `last` was added, `left` entries ago.
    /// Every entry still unflushed is a plain append (any other change writes them all),
    /// each of which raised the last ID to its own and entries-added by one.
    fn meta_as_of(&self, last: StreamId, left: u64) -> StreamMeta {
        let s = &self.stream;
        StreamMeta {
            last_id: if left == 0 { s.last_id() } else { last },
            entries_added: s.entries_added().saturating_sub(left),
            max_deleted_id: s.max_deleted_id(),
        }
    }

    /// Notes that a checkpoint's batch holding the logged appends up to `upto` is being
    /// committed (the stream's lock is let go meanwhile).
    pub(crate) fn begin_flush(&mut self, upto: StreamId) {
        self.flushing = Some(upto);
    }

    /// Whether a checkpoint's batch for this stream is being committed: a change of another
    /// kind must wait for it, or its own batch could land first and be overwritten.
    pub fn is_flushing(&self) -> bool {
        self.flushing.is_some() || self.flushing_groups.is_some() || self.flushing_idmp
    }

    /// Names the group records `muts` change as not yet written into fjall.
    pub(crate) fn note_group_changes(&mut self, muts: &[Mutation]) {
        for m in muts {
            if let Mutation::PendingRemoved { group, id } = m
                && self
                    .stored_pending_max
                    .get(group)
                    .is_none_or(|max| id > max)
            {
                self.dirty_groups.forget_pending(group, *id);
                continue;
            }
            if matches!(m, Mutation::IdmpDuplicates { .. }) {
                self.idmp_dirty = true;
            }
            self.dirty_groups.note(m);
        }
    }

    /// Records that fjall holds (or is about to hold) every group record as it is now: no
    /// pending record it holds is above each group's highest pending ID. Call when the
    /// groups are loaded from fjall, and when their records are taken to be written.
    pub(crate) fn mark_groups_stored(&mut self) {
        for (name, g) in self.stream.groups() {
            let Some(&top) = g.pending().keys().next_back() else {
                continue;
            };
            let max = self
                .stored_pending_max
                .entry(name.clone())
                .or_insert(StreamId::MIN);
            *max = (*max).max(top);
        }
    }

    /// Whether group changes were logged that fjall does not have yet.
    pub(crate) fn has_dirty_groups(&self) -> bool {
        !self.dirty_groups.is_empty()
    }

    /// Takes the group records not yet written, for a batch to write now (see
    /// [`StoredStream::restore_dirty_groups`] if that fails).
    pub(crate) fn take_dirty_groups(&mut self) -> DirtyGroups {
        self.mark_groups_stored();
        std::mem::take(&mut self.dirty_groups)
    }

    /// Takes the group records not yet written, with those a checkpoint's batch is still
    /// committing: a batch of the stream's own that changes its incarnation must write them
    /// all, since replay skips the records logged before it and the checkpoint's batch may
    /// yet fail. Taken, not copied: written again by a later batch, a group destroyed then
    /// would remove the records of the group created since under its name.
    pub(crate) fn take_dirty_groups_with_flushing(&mut self) -> DirtyGroups {
        let mut dirty = self.take_dirty_groups();
        if let Some(flushing) = &mut self.flushing_groups {
            dirty.merge(std::mem::take(flushing));
        }
        dirty
    }

    /// Gives back what [`StoredStream::take_dirty_groups`] took, when it could not be
    /// written.
    pub(crate) fn restore_dirty_groups(&mut self, dirty: DirtyGroups) {
        self.dirty_groups.merge(dirty);
    }

    /// Starts a checkpoint's write of the group records not yet written: the records as
    /// they are now; [`StoredStream::end_flush`] ends it.
    pub(crate) fn begin_group_flush(&mut self) -> Vec<Mutation> {
        let dirty = self.take_dirty_groups();
        let current = dirty.current(&self.stream);
        self.flushing_groups = Some(dirty);
        current
    }

    /// Ends what `begin_flush` and `begin_group_flush` began (a checkpoint's batch): once the batch is committed, the appends up to its last one count as flushed
    /// (unless a change since took them all already); if it failed, its group records count
    /// as unwritten.
    pub fn end_flush(&mut self, committed: bool) {
        if let Some(groups) = self.flushing_groups.take()
            && !committed
        {
            self.dirty_groups.merge(groups);
        }
        if std::mem::take(&mut self.flushing_idmp) && !committed {
            self.idmp_dirty = true;
        }
        let Some(upto) = self.flushing.take() else {
            return;
        };
        self.stored |= committed;
        if committed {
            self.stream.unpin_through(upto);
        }
    }

    /// The tail-log segment the stream's last logged record went to (0: none yet).
    pub(crate) fn log_segment(&self) -> u64 {
        self.log_segment
    }

    /// Records the tail-log segment a record of this stream went to.
    pub(crate) fn set_log_segment(&mut self, segment: u64) {
        self.log_segment = segment;
    }

    /// Which life of its key this stream is (0 until the store numbers it).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Sets the number the store gave this stream's creation. A new life may reuse IDs a
    /// trim of the old one passed (XSETID moves the last ID back), so what trims reached is
    /// forgotten: the next trim scans from the start once.
    pub(crate) fn set_incarnation(&mut self, n: u64) {
        self.incarnation = n;
        self.trim_floor = TrimFloor::default();
        self.trim_floor_next = None;
    }

    /// How far committed trims took the stream's records in fjall.
    pub(crate) fn trim_floor(&self) -> TrimFloor {
        self.trim_floor
    }

    /// Notes how far the trim the batch being built takes the records, for
    /// [`StoredStream::end_batch_trim`].
    pub(crate) fn propose_trim_floor(&mut self, marked: StreamId, gone: Option<StreamId>) {
        let base = self.trim_floor_next.unwrap_or(self.trim_floor);
        self.trim_floor_next = Some(base.raised(marked, gone));
    }

    /// Ends the batch's trim: its floor holds once the batch is committed.
    pub(crate) fn end_batch_trim(&mut self, committed: bool) {
        if let Some(next) = self.trim_floor_next.take()
            && committed
        {
            self.trim_floor = next;
        }
    }

    /// Whether fjall holds the stream's own record: written by a batch of its own, read back
    /// at start-up, or written by a committed checkpoint batch.
    pub fn is_stored(&self) -> bool {
        self.stored
    }

    /// The store sequence a reply showing this stream must wait for: that of its last
    /// change (`u64::MAX` if the store refused one after it reached memory; 0 if no
    /// change was made since the stream was loaded).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Records the sequence of the change just made.
    pub(crate) fn set_seq(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// Records that a change reached memory and not the store.
    pub(crate) fn set_in_doubt(&mut self) {
        self.seq = IN_DOUBT;
    }

    /// Records that the stream's own record was written (or read back); a committed
    /// checkpoint batch ([`StoredStream::end_flush`]) writes it too.
    pub(crate) fn set_stored(&mut self) {
        self.stored = true;
    }
}
