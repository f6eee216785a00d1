//! The entry commands: XADD, XRANGE / XREVRANGE, XDEL, XSETID and XREAD's reads.

use bytes::Bytes;

use crate::entry::Entry;
use crate::error::StreamError;
use crate::id::{IdSpec, ReadId, StreamId};
use crate::mutation::Mutation;
use crate::node::{Node, NodeLimits, RawEntry};
use crate::source::NodeMeta;
use crate::trim::TrimArgs;

use super::{AddOutcome, Stream};

impl Stream {
    /// XADD EXPECTLAST (a Brooklet extension): succeeds only if `expected` is the stream's
    /// last generated ID (`0-0` for a stream that never had an entry).
    ///
    /// # Errors
    /// [`StreamError::LastIdConflict`] with the actual last ID.
    pub fn expect_last(&self, expected: StreamId) -> Result<(), StreamError> {
        if self.last_id == expected {
            Ok(())
        } else {
            Err(StreamError::LastIdConflict(self.last_id))
        }
    }

    /// XADD: appends one entry (`fields` flattened field, value, ...), then trims if
    /// `trim` is given. `now_ms` is the caller's clock; auto IDs never go backwards.
    ///
    /// # Errors
    /// Redis's XADD errors: odd/empty fields, `LIMIT` without `~`, ID `0-0`, exhausted
    /// IDs, an ID not above the top item. Nothing changes on error.
    pub fn add(
        &mut self,
        spec: IdSpec,
        fields: &[Bytes],
        trim: Option<&TrimArgs>,
        now_ms: u64,
        limits: &NodeLimits,
        out: &mut Vec<Mutation>,
    ) -> Result<AddOutcome, StreamError> {
        if fields.is_empty() || !fields.len().is_multiple_of(2) {
            return Err(StreamError::WrongArity("xadd"));
        }
        if let Some(t) = trim {
            t.validate()?;
        }
        if let IdSpec::Explicit(id) = spec
            && id.is_zero()
        {
            return Err(StreamError::XAddZeroId);
        }
        if self.last_id == StreamId::MAX {
            return Err(StreamError::IdsExhausted);
        }
        let last = self.last_id;
        let id = match spec {
            IdSpec::Auto if now_ms > last.ms => StreamId::new(now_ms, 0),
            IdSpec::Auto => last.next().ok_or(StreamError::IdsExhausted)?,
            IdSpec::AutoSeq(ms) if ms == last.ms => {
                if last.seq == u64::MAX {
                    return Err(StreamError::XAddIdTooSmall);
                }
                StreamId::new(ms, last.seq + 1)
            }
            IdSpec::AutoSeq(ms) => StreamId::new(ms, 0),
            IdSpec::Explicit(id) => id,
        };
        if id <= last {
            return Err(StreamError::XAddIdTooSmall);
        }
        // XSETID can move last-generated-id below tombstones still held by the last node
        // (after a trim emptied it and MAXDELETEDID was lowered). Redis would append below
        // them, out of order inside its node; refusing keeps every node in ID order, which
        // reads and storage rely on.
        if self
            .nodes
            .values()
            .next_back()
            .is_some_and(|n| id <= n.last)
        {
            return Err(StreamError::XAddIdTooSmall);
        }
        // The tail goes cold only when XDEL or a trim removed the node after it.
        if let Some((&tail, node)) = self.nodes.iter().next_back()
            && node.is_cold()
        {
            self.hydrate(tail)?;
        }
        let new_node = self.append(id, fields, limits, None);
        out.push(Mutation::EntryAdded {
            id,
            fields: fields.to_vec(),
            new_node,
        });
        let trimmed = match trim {
            Some(t) => self.trim(t, limits, out)?,
            None => 0,
        };
        Ok(AddOutcome { id, trimmed })
    }

    /// Appends an entry with a valid ID, opening a new node when the tail is full (or
    /// when `force_new_node` says so, on replay). The tail must be resident. Returns
    /// whether a node was opened.
    pub(crate) fn append(
        &mut self,
        id: StreamId,
        fields: &[Bytes],
        limits: &NodeLimits,
        force_new_node: Option<bool>,
    ) -> bool {
        let incoming: u64 = fields.iter().map(|f| f.len() as u64).sum();
        let mut new_node = true;
        let mut before = 0;
        let mut after = 0;
        if let Some((_, tail)) = self.nodes.iter_mut().next_back() {
            new_node =
                tail.is_cold() || force_new_node.unwrap_or_else(|| tail.is_full(incoming, limits));
            before = tail.heap_bytes();
            if new_node {
                tail.shrink();
            }
            after = tail.heap_bytes();
        }
        if new_node {
            let mut node = Node::new(fields);
            node.push(id, id, fields);
            after += node.heap_bytes();
            self.nodes.insert(id, node);
            self.resident_order.push_back(id);
        } else if let Some((master, tail)) = self.nodes.iter_mut().next_back() {
            tail.push(*master, id, fields);
            after = tail.heap_bytes();
        }
        self.resident_bytes = (self.resident_bytes + after).saturating_sub(before);
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        if new_node {
            self.shed(None);
        }
        new_node
    }

    /// XRANGE (`rev == false`, `start..=end`) and XREVRANGE (`rev == true`, from `end`
    /// down to `start`): live entries, at most `count` if given (`Some(0)` gives none).
    ///
    /// # Errors
    /// [`StreamError::Storage`] when evicted entries cannot be read back.
    pub fn range(
        &mut self,
        start: StreamId,
        end: StreamId,
        count: Option<usize>,
        rev: bool,
    ) -> Result<Vec<Entry>, StreamError> {
        let mut out = Vec::new();
        let limit = count.unwrap_or(usize::MAX);
        if limit == 0 || start > end {
            return Ok(out);
        }
        let mut visit = |node: &Node, e: &RawEntry| {
            out.push(Entry {
                id: e.id,
                fields: node.fields(e),
            });
            out.len() < limit
        };
        if rev {
            self.for_each_rev(start, end, &mut visit)?;
        } else {
            self.for_each(start, end, &mut visit)?;
        }
        Ok(out)
    }

    /// Visits the live entries of `start..=end` (from the end when `rev`), at most `count`,
    /// handing `f` each one's ID and its fields and values as slices of its node, uncopied
    /// (XRANGE writes them straight into its reply); returns how many it visited.
    ///
    /// # Errors
    /// When a node evicted from memory cannot be read back.
    pub fn range_with(
        &mut self,
        start: StreamId,
        end: StreamId,
        count: Option<usize>,
        rev: bool,
        mut f: impl FnMut(StreamId, &mut dyn Iterator<Item = &[u8]>),
    ) -> Result<usize, StreamError> {
        let limit = count.unwrap_or(usize::MAX);
        let mut visited = 0;
        if limit == 0 || start > end {
            return Ok(0);
        }
        let mut visit = |node: &Node, e: &RawEntry| {
            f(e.id, &mut node.field_slices(e));
            visited += 1;
            visited < limit
        };
        if rev {
            self.for_each_rev(start, end, &mut visit)?;
        } else {
            self.for_each(start, end, &mut visit)?;
        }
        Ok(visited)
    }

    /// Visits live entries in `start..=end` in order until `f` returns false, reading
    /// cold nodes back as it reaches them.
    pub(crate) fn for_each(
        &mut self,
        start: StreamId,
        end: StreamId,
        mut f: impl FnMut(&Node, &RawEntry) -> bool,
    ) -> Result<(), StreamError> {
        let mut next = Some(
            self.nodes
                .range(..=start)
                .next_back()
                .map_or(StreamId::MIN, |(k, _)| *k),
        );
        // `None` once the node mastered by the highest possible ID has been visited.
        while let Some(from) = next {
            let Some((&master, node)) = self.nodes.range(from..).next() else {
                return Ok(());
            };
            if master > end {
                return Ok(());
            }
            next = master.next();
            if node.live == 0 || node.last < start {
                continue;
            }
            self.hydrate(master)?;
            self.shed(Some(master));
            let Some(node) = self.nodes.get(&master) else {
                continue;
            };
            for e in node.iter(master) {
                if e.id > end {
                    return Ok(());
                }
                if e.id < start || e.is_deleted() {
                    continue;
                }
                if !f(node, &e) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Visits live entries in `start..=end` from the highest down until `f` returns false.
    fn for_each_rev(
        &mut self,
        start: StreamId,
        end: StreamId,
        mut f: impl FnMut(&Node, &RawEntry) -> bool,
    ) -> Result<(), StreamError> {
        let mut below = end;
        loop {
            let Some((&master, node)) = self.nodes.range(..=below).next_back() else {
                return Ok(());
            };
            if node.last < start {
                return Ok(());
            }
            let skip = node.live == 0;
            if !skip {
                self.hydrate(master)?;
                self.shed(Some(master));
                if let Some(node) = self.nodes.get(&master) {
                    let entries: Vec<_> = node.iter(master).collect();
                    for e in entries.iter().rev() {
                        if e.id < start {
                            return Ok(());
                        }
                        if e.id > end || e.is_deleted() {
                            continue;
                        }
                        if !f(node, e) {
                            return Ok(());
                        }
                    }
                }
            }
            match master.prev() {
                Some(p) => below = p,
                None => return Ok(()),
            }
        }
    }

    /// The live entry with this ID.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when evicted entries cannot be read back.
    pub fn get(&mut self, id: StreamId) -> Result<Option<Entry>, StreamError> {
        Ok(self.range(id, id, Some(1), false)?.pop())
    }

    /// True if a live entry has this ID.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when evicted entries cannot be read back.
    pub fn contains(&mut self, id: StreamId) -> Result<bool, StreamError> {
        let mut found = false;
        self.for_each(id, id, |_, _| {
            found = true;
            false
        })?;
        Ok(found)
    }

    /// The first live entry.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when evicted entries cannot be read back.
    pub fn first_entry(&mut self) -> Result<Option<Entry>, StreamError> {
        Ok(self
            .range(StreamId::MIN, StreamId::MAX, Some(1), false)?
            .pop())
    }

    /// The last live entry.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when evicted entries cannot be read back.
    pub fn last_entry(&mut self) -> Result<Option<Entry>, StreamError> {
        Ok(self
            .range(StreamId::MIN, StreamId::MAX, Some(1), true)?
            .pop())
    }

    /// The ID of the last live entry (Redis's streamLastValidID), from node metadata.
    pub(crate) fn last_live_id(&self) -> Option<StreamId> {
        self.nodes
            .values()
            .rev()
            .find(|n| n.live > 0)
            .map(|n| n.last_live)
    }

    /// The ID of the first live entry, from node metadata.
    pub(crate) fn first_live_id(&self) -> Option<StreamId> {
        self.nodes
            .values()
            .find(|n| n.live > 0)
            .map(|n| n.first_live)
    }

    /// Recomputes `first_id` after entries left (0-0 when empty).
    pub(crate) fn refresh_first_id(&mut self) {
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.first_live_id().unwrap_or(StreamId::MIN)
        };
    }

    /// Deletes one live entry of a resident node, dropping the node when it was its last
    /// live one: `None` if no live entry has the ID, else the node dropped, if one was.
    fn delete_entry(&mut self, id: StreamId) -> Option<Option<NodeMeta>> {
        let (&master, node) = self.nodes.range_mut(..=id).next_back()?;
        let e = node.find_live(master, id)?;
        let mut dropped = None;
        if node.live <= 1 {
            dropped = self.remove_node(master).map(|n| n.meta(master));
        } else {
            node.mark_deleted(master, &e);
        }
        self.length = self.length.saturating_sub(1);
        Some(dropped)
    }

    /// XDEL: deletes the given IDs; returns how many were actually deleted.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when the nodes holding the IDs cannot be read back;
    /// nothing changes then.
    pub fn delete(
        &mut self,
        ids: &[StreamId],
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        for &id in ids {
            if let Some(node) = self.node_holding(id) {
                self.hydrate(node.master)?;
            }
        }
        let (deleted, dropped) = self.delete_ids(ids);
        let n = deleted.len() as u64;
        if !deleted.is_empty() {
            out.push(Mutation::EntriesDeleted { ids: deleted });
        }
        for node in dropped {
            out.push(Mutation::NodeDropped {
                master: node.master,
                last: node.last,
            });
        }
        self.shed(None);
        Ok(n)
    }

    /// XDEL's effect, shared with replay (nodes holding `ids` must be resident): returns
    /// the IDs deleted and the nodes dropped.
    pub(crate) fn delete_ids(&mut self, ids: &[StreamId]) -> (Vec<StreamId>, Vec<NodeMeta>) {
        let mut deleted = Vec::new();
        let mut dropped = Vec::new();
        let mut first_gone = false;
        for &id in ids {
            if let Some(gone) = self.delete_entry(id) {
                first_gone |= id == self.first_id;
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                deleted.push(id);
                dropped.extend(gone);
            }
        }
        if !deleted.is_empty() && (self.length == 0 || first_gone) {
            self.refresh_first_id();
        }
        (deleted, dropped)
    }

    /// XSETID: moves last-generated-id, optionally entries-added and max-deleted-id.
    ///
    /// # Errors
    /// Redis's XSETID errors, checked in Redis's order.
    pub fn set_id(
        &mut self,
        id: StreamId,
        entries_added: Option<i64>,
        max_deleted: Option<StreamId>,
        out: &mut Vec<Mutation>,
    ) -> Result<(), StreamError> {
        if entries_added.is_some_and(|n| n < 0) {
            return Err(StreamError::EntriesAddedNegative);
        }
        if max_deleted.is_some_and(|m| id < m) {
            return Err(StreamError::SetIdBelowGivenMaxDeleted);
        }
        if id < self.max_deleted_id {
            return Err(StreamError::SetIdBelowCurrentMaxDeleted);
        }
        let entries_added = entries_added.map(|n| n as u64);
        if self.length > 0 {
            if let Some(top) = self.last_live_id()
                && id < top
            {
                return Err(StreamError::SetIdBelowTop);
            }
            if entries_added.is_some_and(|n| self.length > n) {
                return Err(StreamError::SetIdEntriesAddedBelowLength);
            }
        }
        self.last_id = id;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if let Some(m) = max_deleted.filter(|m| !m.is_zero()) {
            self.max_deleted_id = m;
        }
        out.push(Mutation::StreamMeta {
            last_id: self.last_id,
            entries_added: self.entries_added,
            max_deleted_id: self.max_deleted_id,
        });
        Ok(())
    }

    /// Resolves an XREAD ID to the exclusive lower bound to read after: `$` is the last
    /// generated ID, `+` the ID just below the last live entry (so that entry is read).
    /// Resolve before blocking so a re-run after wake-up cannot miss entries.
    /// `>` is not an XREAD ID; it resolves like `$`.
    pub fn resolve_read_id(&self, id: ReadId) -> StreamId {
        match id {
            ReadId::Id(id) => id,
            ReadId::Last | ReadId::New => self.last_id,
            ReadId::LastEntry => match self.last_live_id() {
                Some(top) => top.prev().unwrap_or(StreamId::MIN),
                None => self.last_id,
            },
        }
    }

    /// XREAD for one stream: live entries strictly after `after`, at most `count`
    /// (`None` or `Some(0)`: all). Empty means "nothing to serve" (block or omit).
    ///
    /// # Errors
    /// [`StreamError::Storage`] when evicted entries cannot be read back.
    pub fn read_after(
        &mut self,
        after: StreamId,
        count: Option<usize>,
    ) -> Result<Vec<Entry>, StreamError> {
        let Some(start) = after.next() else {
            return Ok(Vec::new());
        };
        let count = count.filter(|&c| c > 0);
        self.range(start, StreamId::MAX, count, false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;

    use super::*;
    use crate::id::IdSpec;
    use crate::node::NodeLimits;

    #[test]
    fn a_node_mastered_by_the_highest_id_is_visited() {
        let mut s = Stream::new();
        let fields = vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")];
        let limits = NodeLimits::default();
        s.add(
            IdSpec::Explicit(StreamId::MAX),
            &fields,
            None,
            0,
            &limits,
            &mut Vec::new(),
        )
        .unwrap();
        let ids = |r: Vec<Entry>| r.iter().map(|e| e.id).collect::<Vec<_>>();
        let all = s.range(StreamId::MIN, StreamId::MAX, None, false).unwrap();
        assert_eq!(ids(all), vec![StreamId::MAX]);
        let rev = s.range(StreamId::MIN, StreamId::MAX, None, true).unwrap();
        assert_eq!(ids(rev), vec![StreamId::MAX]);
        assert!(s.contains(StreamId::MAX).unwrap());
    }
}
