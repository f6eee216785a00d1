//! The stream: packed nodes of entries plus Redis's metadata, and the entry commands
//! (XADD, XLEN, XRANGE/XREVRANGE, XDEL, XSETID, XREAD).
//!
//! With an [`EntrySource`] attached, only the tail node and a budget of recently used
//! nodes keep their entries in memory; the others are cold (metadata only) and are read
//! back from the source when a command needs their entries.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::copy::NodeCopies;
use crate::entry::Entry;
use crate::error::StreamError;
use crate::group::ConsumerGroup;
use crate::id::{IdSpec, ReadId, StreamId};
use crate::mutation::Mutation;
use crate::node::{Node, NodeLimits, RawEntry};
use crate::source::{EntrySource, NodeMeta, StoredEntry};
use crate::trim::TrimArgs;

/// One Redis stream: its entries, metadata and consumer groups.
///
/// Invariants: `length` is the number of live entries; every node holds entries in ID
/// order, all above the previous node's; `last_id` is at least every entry's ID. The tail
/// node is never evicted; it can be cold only after XDEL dropped the node after it, and
/// an append reads it back first.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Nodes keyed by their master (first) entry ID.
    pub(crate) nodes: BTreeMap<StreamId, Node>,
    /// Live (not deleted) entries.
    pub(crate) length: u64,
    /// Last generated ID (`last-generated-id`); XSETID may move it past the top entry.
    pub(crate) last_id: StreamId,
    /// First live entry ID (`recorded-first-entry-id`), `0-0` when empty.
    pub(crate) first_id: StreamId,
    /// Largest ID ever deleted by XDEL (`max-deleted-entry-id`), `0-0` if none.
    pub(crate) max_deleted_id: StreamId,
    /// Count of entries ever added (`entries-added`).
    pub(crate) entries_added: u64,
    /// Consumer groups by name (byte order, as Redis's radix tree lists them).
    pub(crate) groups: BTreeMap<Bytes, ConsumerGroup>,
    /// Where cold nodes are read back from; `None` keeps every node in memory.
    source: Option<Arc<dyn EntrySource>>,
    /// Nodes in the order their entries came into memory, oldest first: eviction order.
    /// May hold masters of nodes gone or already cold; those are skipped.
    resident_order: VecDeque<StreamId>,
    /// Resident nodes eviction found holding pinned entries, kept out of `resident_order`
    /// until they are unpinned: passing over them on every new node would walk the whole
    /// order once the stream outgrew its cache.
    held_back: Vec<StreamId>,
    /// Heap bytes of every node whose entries are in memory, the tail included.
    resident_bytes: usize,
    /// First entry pinned in memory: nodes holding it or later entries are never evicted,
    /// because the source cannot give those entries back yet (see [`Stream::pin_from`]).
    pinned_from: Option<StreamId>,
}

/// Streams compare by content: which nodes happen to be in memory does not matter.
impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        let nodes_eq = self.nodes.len() == other.nodes.len()
            && self
                .nodes
                .iter()
                .zip(other.nodes.iter())
                .all(|((ka, a), (kb, b))| {
                    ka == kb && a.meta(*ka) == b.meta(*kb) && (a.is_cold() || b.is_cold() || a == b)
                });
        nodes_eq
            && self.length == other.length
            && self.last_id == other.last_id
            && self.first_id == other.first_id
            && self.max_deleted_id == other.max_deleted_id
            && self.entries_added == other.entries_added
            && self.groups == other.groups
    }
}

impl Eq for Stream {}

/// What XADD did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddOutcome {
    /// The new entry's ID (the reply).
    pub id: StreamId,
    /// Entries removed by the trim options, if any.
    pub trimmed: u64,
}

/// The stream's own metadata, as persistence records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamMeta {
    /// `last-generated-id`.
    pub last_id: StreamId,
    /// `entries-added`.
    pub entries_added: u64,
    /// `max-deleted-entry-id`.
    pub max_deleted_id: StreamId,
}

impl Stream {
    /// An empty stream (what XADD, XGROUP CREATE MKSTREAM create).
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Rebuilds a stream from storage without reading its entries: every node but the
    /// last starts cold; the last one is read from `source` (its recorded metadata may be
    /// stale, since plain appends do not rewrite it). Entries found past the recorded
    /// last-generated-id advance it and entries-added (they came from appends that did not
    /// rewrite the stream's record).
    ///
    /// # Errors
    /// [`StreamError::Storage`] when the tail cannot be read.
    pub fn restore(
        meta: StreamMeta,
        nodes: &[NodeMeta],
        source: Arc<dyn EntrySource>,
    ) -> Result<Stream, StreamError> {
        let mut s = Stream {
            last_id: meta.last_id,
            entries_added: meta.entries_added,
            max_deleted_id: meta.max_deleted_id,
            source: Some(source.clone()),
            ..Stream::default()
        };
        // Built in one pass from the records, which come in ID order.
        s.nodes = nodes.iter().map(|n| (n.master, Node::cold(n))).collect();
        if let Some(tail) = nodes.last() {
            let mut stored = source
                .load(tail.master, StreamId::MAX)
                .map_err(StreamError::Storage)?;
            // Live entries past the recorded last ID are not part of the stream the metadata
            // describes (the source may hold entries whose metadata never reached it; its
            // owner adds them again). Tombstones there are XSETID's, kept by their node.
            stored.retain(|e| e.id <= s.last_id || e.deleted);
            let node = rebuild(tail.master, &stored)?;
            s.make_resident(tail.master, node);
        }
        s.length = s.nodes.values().map(|n| n.live).sum();
        s.refresh_first_id();
        Ok(s)
    }

    /// Attaches the storage that cold nodes are read back from; from now on nodes beyond
    /// the source's budget are evicted.
    pub fn attach_source(&mut self, source: Arc<dyn EntrySource>) {
        self.source = Some(source);
        self.resident_order = self.nodes.keys().copied().collect();
        self.held_back.clear();
        self.resident_bytes = self.nodes.values().map(Node::heap_bytes).sum();
        self.shed(None);
    }

    /// Pins every entry from `id` on in memory (an earlier pin stays): nodes holding them
    /// are not evicted, since the source cannot give them back yet. Appends after `id`
    /// are pinned too, until [`Stream::unpin`] or [`Stream::unpin_through`].
    pub fn pin_from(&mut self, id: StreamId) {
        self.pinned_from.get_or_insert(id);
    }

    /// The first pinned entry, if any.
    pub fn pinned_from(&self) -> Option<StreamId> {
        self.pinned_from
    }

    /// Unpins every entry.
    pub fn unpin(&mut self) {
        self.pinned_from = None;
        self.release_held_back();
    }

    /// Unpins the entries up to `upto`; those after it stay pinned.
    pub fn unpin_through(&mut self, upto: StreamId) {
        if self.pinned_from.is_none_or(|from| from > upto) {
            return;
        }
        let next = self
            .nodes
            .range(..=upto)
            .next_back()
            .map(|(m, _)| *m)
            .into_iter()
            .flat_map(|m| self.nodes.range(m..))
            .find_map(|(master, node)| node.iter(*master).map(|e| e.id).find(|id| *id > upto));
        self.pinned_from = next;
        self.release_held_back();
    }

    /// The entries from `from` on (tombstones included, flagged) as copies, at least one
    /// node's and at most about `max` (it stops at the first node boundary past `max`),
    /// with how many entries the nodes after the last one taken hold; None when no
    /// resident node holds an entry from `from` on.
    pub fn entries_from(&self, from: StreamId, max: usize) -> Option<(Vec<StoredEntry>, u64)> {
        let Span {
            from, nodes, left, ..
        } = self.span_from(from, max)?;
        let entries = nodes
            .into_iter()
            .flat_map(|(master, node)| {
                node.iter(master)
                    .filter(move |e| e.id >= from)
                    .map(move |e| StoredEntry {
                        id: e.id,
                        deleted: e.is_deleted(),
                        fields: node.fields(&e),
                    })
            })
            .collect();
        Some((entries, left))
    }

    /// What [`Stream::entries_from`] takes, as copies of the nodes holding it: copying
    /// nodes is cheap enough to do while the stream is held, and their entries can be
    /// encoded after it is let go.
    pub fn copy_nodes_from(&self, from: StreamId, max: usize) -> Option<NodeCopies> {
        let Span {
            from,
            nodes,
            count,
            last,
            left,
        } = self.span_from(from, max)?;
        let before = match nodes.first() {
            Some((master, _)) if *master == from => self.node_before(from),
            _ => None,
        };
        let nodes = nodes.into_iter().map(|(m, n)| (m, n.clone())).collect();
        Some(NodeCopies {
            from,
            nodes,
            before,
            count,
            last,
            left,
        })
    }

    /// The resident nodes holding the entries from `from` on, up to about `max` of them.
    fn span_from(&self, from: StreamId, max: usize) -> Option<Span<'_>> {
        // The entries from `from` start in the node holding it and fill every node after.
        let first_holding = self
            .nodes
            .range(..=from)
            .next_back()
            .map_or(from, |(m, _)| *m);
        let mut nodes = Vec::new();
        let mut taken: usize = 0;
        let mut last = None;
        let mut left: u64 = 0;
        for (master, node) in self.nodes.range(first_holding..) {
            if taken >= max && *master > from {
                left += node.live + node.deleted;
                continue;
            }
            if node.is_cold() {
                continue;
            }
            let mut ids = node.iter(*master).map(|e| e.id).filter(|id| *id >= from);
            let Some(first) = ids.next() else {
                continue;
            };
            let (n, end) = ids.fold((1, first), |(n, _), id| (n + 1, id));
            taken += n;
            last = Some(end);
            nodes.push((*master, node));
        }
        Some(Span {
            from,
            nodes,
            count: taken,
            last: last?,
            left,
        })
    }

    /// Gives eviction back the nodes it held back for their pinned entries, first in line
    /// (they came into memory before the others); those still pinned are held back again
    /// when reached.
    fn release_held_back(&mut self) {
        for master in self.held_back.drain(..).rev() {
            self.resident_order.push_front(master);
        }
    }

    /// Whether a source is attached.
    pub fn has_source(&self) -> bool {
        self.source.is_some()
    }

    /// XLEN: live entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// True when the stream has no live entries (the key may still exist).
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// `last-generated-id`.
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// `recorded-first-entry-id`.
    pub fn first_id(&self) -> StreamId {
        self.first_id
    }

    /// `max-deleted-entry-id`.
    pub fn max_deleted_id(&self) -> StreamId {
        self.max_deleted_id
    }

    /// `entries-added`.
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// The stream's own metadata, as persistence records it.
    pub fn meta(&self) -> StreamMeta {
        StreamMeta {
            last_id: self.last_id,
            entries_added: self.entries_added,
            max_deleted_id: self.max_deleted_id,
        }
    }

    /// Number of nodes (`radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The master ID of the first node: entries below it are gone for good, entries from it
    /// on that are not live are tombstones still holding a slot in their node.
    pub fn first_node_id(&self) -> Option<StreamId> {
        self.nodes.keys().next().copied()
    }

    /// The node whose ID span (first to last entry, tombstones included) holds `id`.
    pub fn node_holding(&self, id: StreamId) -> Option<NodeMeta> {
        let (master, node) = self.nodes.range(..=id).next_back()?;
        (id <= node.last).then(|| node.meta(*master))
    }

    /// The node whose first entry is `master`.
    pub fn node(&self, master: StreamId) -> Option<NodeMeta> {
        self.nodes.get(&master).map(|n| n.meta(master))
    }

    /// The node just before the one starting at `master`.
    pub fn node_before(&self, master: StreamId) -> Option<NodeMeta> {
        let (k, n) = self.nodes.range(..master).next_back()?;
        Some(n.meta(*k))
    }

    /// Every node's metadata, in ID order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeMeta> + '_ {
        self.nodes.iter().map(|(k, n)| n.meta(*k))
    }

    /// Approximate heap bytes held by entries in memory (node buffers only).
    pub fn entry_heap_bytes(&self) -> usize {
        self.resident_bytes
    }

    /// Nodes whose entries are in memory.
    pub fn resident_nodes(&self) -> usize {
        self.nodes.values().filter(|n| !n.is_cold()).count()
    }

    /// Reads a cold node's entries back into memory (no-op for a resident one). Does not
    /// evict: callers that hydrate several nodes before changing them call [`Self::shed`]
    /// when done.
    pub(crate) fn hydrate(&mut self, master: StreamId) -> Result<(), StreamError> {
        let Some(node) = self.nodes.get(&master) else {
            return Ok(());
        };
        if !node.is_cold() {
            if let Some(source) = &self.source {
                source.note_hit();
            }
            return Ok(());
        }
        let Some(source) = &self.source else {
            return Err(StreamError::Storage("no storage attached".into()));
        };
        let stored = source
            .load(master, node.last)
            .map_err(StreamError::Storage)?;
        let rebuilt = rebuild(master, &stored)?;
        if !rebuilt.same_counts(node) {
            return Err(StreamError::Storage(format!(
                "node {master} does not match its recorded counts"
            )));
        }
        self.make_resident(master, rebuilt);
        Ok(())
    }

    /// Puts a node read back from storage in place, counted as resident.
    fn make_resident(&mut self, master: StreamId, node: Node) {
        self.resident_bytes += node.heap_bytes();
        self.resident_order.push_back(master);
        self.nodes.insert(master, node);
    }

    /// Evicts the longest-resident nodes until the budget holds; never the tail (appends
    /// go there) nor `keep` (the node a caller is reading).
    pub(crate) fn shed(&mut self, keep: Option<StreamId>) {
        let Some(source) = &self.source else {
            return;
        };
        let tail = self.nodes.keys().next_back().copied();
        let tail_bytes = tail
            .and_then(|t| self.nodes.get(&t))
            .map_or(0, Node::heap_bytes);
        let budget = source.budget().saturating_add(tail_bytes);
        let mut rotations = self.resident_order.len();
        while self.resident_bytes > budget && rotations > 0 {
            let Some(master) = self.resident_order.pop_front() else {
                break;
            };
            let Some(node) = self.nodes.get_mut(&master) else {
                continue;
            };
            if node.is_cold() {
                continue;
            }
            if self.pinned_from.is_some_and(|from| node.last >= from) {
                self.held_back.push(master);
                continue;
            }
            if Some(master) == tail || Some(master) == keep {
                self.resident_order.push_back(master);
                rotations -= 1;
                continue;
            }
            self.resident_bytes = self.resident_bytes.saturating_sub(node.heap_bytes());
            node.evict();
        }
        // Masters of nodes since trimmed or deleted pile up when nothing needs evicting.
        if self.resident_order.len() > 2 * self.nodes.len() + 16 {
            let nodes = &self.nodes;
            self.resident_order
                .retain(|m| nodes.get(m).is_some_and(|n| !n.is_cold()));
        }
    }

    /// Evicts cached nodes down to the source's budget now rather than at the stream's next
    /// read or write (the server calls it on every stream when memory runs short).
    pub fn shed_cache(&mut self) {
        self.shed(None);
    }

    /// Removes every node before `first_kept` (all of them when None) in one split,
    /// keeping the resident-bytes count right; returns them. A trim of millions of entries
    /// drops tens of thousands of nodes, most of them cold.
    pub(crate) fn remove_nodes_before(
        &mut self,
        first_kept: Option<StreamId>,
    ) -> BTreeMap<StreamId, Node> {
        let kept = match first_kept {
            Some(master) => self.nodes.split_off(&master),
            None => BTreeMap::new(),
        };
        let gone = std::mem::replace(&mut self.nodes, kept);
        for node in gone.values() {
            self.resident_bytes = self.resident_bytes.saturating_sub(node.heap_bytes());
        }
        gone
    }

    /// Removes a node, keeping the resident-bytes count right.
    pub(crate) fn remove_node(&mut self, master: StreamId) -> Option<Node> {
        let node = self.nodes.remove(&master)?;
        self.resident_bytes = self.resident_bytes.saturating_sub(node.heap_bytes());
        Some(node)
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
        let mut next = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(StreamId::MIN, |(k, _)| *k);
        loop {
            let Some((&master, node)) = self.nodes.range(next..).next() else {
                return Ok(());
            };
            if master > end {
                return Ok(());
            }
            let Some(after) = master.next() else {
                return Ok(());
            };
            next = after;
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

/// A run of entries from some ID on (see [`Stream::entries_from`]).
struct Span<'a> {
    /// The first of them.
    from: StreamId,
    /// The resident nodes holding them, with their first IDs.
    nodes: Vec<(StreamId, &'a Node)>,
    /// How many there are.
    count: usize,
    /// The last of them.
    last: StreamId,
    /// Entries in the nodes after the last one taken.
    left: u64,
}

/// Rebuilds the node starting at `master` from its stored entries, which must begin with
/// that entry.
fn rebuild(master: StreamId, stored: &[StoredEntry]) -> Result<Node, StreamError> {
    match Node::rebuild(stored) {
        Some(node) if stored.first().is_some_and(|e| e.id == master) => Ok(node),
        _ => Err(StreamError::Storage(format!(
            "node {master} is missing its first entry"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn fv() -> Vec<Bytes> {
        vec![b("f"), b("v")]
    }

    fn add(s: &mut Stream, spec: IdSpec, now: u64) -> Result<StreamId, StreamError> {
        s.add(
            spec,
            &fv(),
            None,
            now,
            &NodeLimits::default(),
            &mut Vec::new(),
        )
        .map(|o| o.id)
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    /// A store that holds nothing: evicted nodes are never read back in these tests.
    #[derive(Debug)]
    struct Budget(usize);

    impl EntrySource for Budget {
        fn load(&self, _: StreamId, _: StreamId) -> Result<Vec<StoredEntry>, String> {
            Err("nothing stored".into())
        }
        fn budget(&self) -> usize {
            self.0
        }
    }

    /// Nodes holding pinned entries stay in memory past the budget; once they are
    /// unpinned, the next node opened evicts them down to it.
    #[test]
    fn nodes_held_for_pinned_entries_are_evicted_once_unpinned() {
        let mut s = Stream::new();
        s.attach_source(Arc::new(Budget(1000)));
        let append = |s: &mut Stream, ms: u64| {
            let id = add(s, IdSpec::Explicit(id(ms, 0)), 0).unwrap();
            s.pin_from(id);
        };
        for ms in 1..=2000 {
            append(&mut s, ms);
        }
        assert_eq!(s.resident_nodes(), 20, "pinned nodes were evicted");
        assert!(s.resident_bytes > 1000);
        s.unpin();
        append(&mut s, 2001);
        let tail = s.nodes.values().next_back().map_or(0, Node::heap_bytes);
        assert!(s.resident_bytes <= 1000 + tail, "{}", s.resident_bytes);
        assert!(s.resident_nodes() < 20);
        // The nodes opened since are pinned again and stay.
        for ms in 2002..=2400 {
            append(&mut s, ms);
        }
        let masters: Vec<u64> = s
            .nodes
            .iter()
            .filter(|(_, n)| !n.is_cold())
            .map(|(m, _)| m.ms)
            .collect();
        assert!(
            [2001, 2101, 2201, 2301].iter().all(|m| masters.contains(m)),
            "{masters:?}"
        );
    }

    #[test]
    fn xadd_auto_ids_never_go_backwards() {
        let mut s = Stream::new();
        assert_eq!(add(&mut s, IdSpec::Auto, 100), Ok(id(100, 0)));
        assert_eq!(add(&mut s, IdSpec::Auto, 100), Ok(id(100, 1)));
        assert_eq!(add(&mut s, IdSpec::Auto, 50), Ok(id(100, 2)));
        assert_eq!(add(&mut s, IdSpec::Auto, 101), Ok(id(101, 0)));
        assert_eq!(s.len(), 4);
        assert_eq!(s.entries_added(), 4);
        assert_eq!(s.first_id(), id(100, 0));
    }

    #[test]
    fn xadd_auto_seq_and_explicit_errors() {
        let mut s = Stream::new();
        assert_eq!(add(&mut s, IdSpec::AutoSeq(0), 0), Ok(id(0, 1)));
        assert_eq!(add(&mut s, IdSpec::AutoSeq(5), 0), Ok(id(5, 0)));
        assert_eq!(add(&mut s, IdSpec::AutoSeq(5), 0), Ok(id(5, 1)));
        assert_eq!(
            add(&mut s, IdSpec::AutoSeq(4), 0),
            Err(StreamError::XAddIdTooSmall)
        );
        assert_eq!(
            add(&mut s, IdSpec::Explicit(id(5, 1)), 0),
            Err(StreamError::XAddIdTooSmall)
        );
        assert_eq!(
            StreamError::XAddIdTooSmall.to_string(),
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        assert_eq!(
            add(&mut s, IdSpec::Explicit(id(0, 0)), 0),
            Err(StreamError::XAddZeroId)
        );
        assert_eq!(
            add(&mut s, IdSpec::Explicit(id(5, u64::MAX)), 0),
            Ok(id(5, u64::MAX))
        );
        assert_eq!(
            add(&mut s, IdSpec::AutoSeq(5), 0),
            Err(StreamError::XAddIdTooSmall)
        );
        assert_eq!(add(&mut s, IdSpec::Auto, 0), Ok(id(6, 0)));
        assert_eq!(
            add(&mut s, IdSpec::Explicit(StreamId::MAX), 0),
            Ok(StreamId::MAX)
        );
        assert_eq!(add(&mut s, IdSpec::Auto, 0), Err(StreamError::IdsExhausted));
        assert_eq!(
            add(&mut s, IdSpec::Explicit(id(9, 9)), 0),
            Err(StreamError::IdsExhausted)
        );
        let r = s.add(
            IdSpec::Auto,
            &[b("f")],
            None,
            0,
            &NodeLimits::default(),
            &mut Vec::new(),
        );
        assert_eq!(r.map(|o| o.id), Err(StreamError::WrongArity("xadd")));
    }

    #[test]
    fn xrange_bounds_count_and_reverse() {
        let mut s = Stream::new();
        for i in 1..=250u64 {
            add(&mut s, IdSpec::Explicit(id(i, 0)), 0).unwrap();
        }
        assert_eq!(s.node_count(), 3);
        let all = s.range(StreamId::MIN, StreamId::MAX, None, false).unwrap();
        assert_eq!(all.len(), 250);
        assert_eq!(all[0].fields, fv());
        let r = s.range(id(99, 0), id(102, u64::MAX), None, false).unwrap();
        assert_eq!(
            r.iter().map(|e| e.id.ms).collect::<Vec<_>>(),
            vec![99, 100, 101, 102]
        );
        let r = s
            .range(id(99, 0), id(102, u64::MAX), Some(2), true)
            .unwrap();
        assert_eq!(
            r.iter().map(|e| e.id.ms).collect::<Vec<_>>(),
            vec![102, 101]
        );
        assert!(s.range(id(5, 0), id(4, 0), None, false).unwrap().is_empty());
        assert!(
            s.range(StreamId::MIN, StreamId::MAX, Some(0), false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.last_entry().unwrap().unwrap().id, id(250, 0));
    }

    #[test]
    fn xdel_marks_tombstones_and_drops_empty_nodes() {
        let mut s = Stream::new();
        for i in 1..=150u64 {
            add(&mut s, IdSpec::Explicit(id(i, 0)), 0).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(s.delete(&[id(1, 0), id(1, 0), id(999, 0)], &mut out), Ok(1));
        assert_eq!(s.first_id(), id(2, 0));
        assert_eq!(s.max_deleted_id(), id(1, 0));
        let ids: Vec<_> = (2..=100).map(|i| id(i, 0)).collect();
        assert_eq!(s.delete(&ids, &mut out), Ok(99));
        assert_eq!(s.node_count(), 1);
        assert_eq!(s.len(), 50);
        assert_eq!(s.first_id(), id(101, 0));
        // A node closes on entries counted with tombstones.
        s.delete(&[id(150, 0)], &mut out).unwrap();
        add(&mut s, IdSpec::Explicit(id(151, 0)), 0).unwrap();
        assert_eq!(s.node_count(), 1);
    }

    #[test]
    fn xsetid_errors_and_effects() {
        let mut s = Stream::new();
        let mut out = Vec::new();
        add(&mut s, IdSpec::Explicit(id(5, 0)), 0).unwrap();
        assert_eq!(
            s.set_id(id(4, 0), None, None, &mut out),
            Err(StreamError::SetIdBelowTop)
        );
        assert_eq!(
            s.set_id(id(6, 0), Some(0), None, &mut out),
            Err(StreamError::SetIdEntriesAddedBelowLength)
        );
        assert_eq!(
            s.set_id(id(6, 0), None, Some(id(7, 0)), &mut out),
            Err(StreamError::SetIdBelowGivenMaxDeleted)
        );
        assert_eq!(
            s.set_id(id(6, 0), Some(-1), None, &mut out),
            Err(StreamError::EntriesAddedNegative)
        );
        s.set_id(id(9, 0), Some(10), Some(id(3, 0)), &mut out)
            .unwrap();
        assert_eq!(
            (s.last_id(), s.entries_added(), s.max_deleted_id()),
            (id(9, 0), 10, id(3, 0))
        );
        assert_eq!(
            s.set_id(id(2, 0), None, None, &mut out),
            Err(StreamError::SetIdBelowCurrentMaxDeleted)
        );
        // Last ID may move below last_id as long as it stays above the top entry.
        s.set_id(id(5, 0), None, None, &mut out).unwrap();
        assert_eq!(add(&mut s, IdSpec::Auto, 0), Ok(id(5, 1)));
    }

    #[test]
    fn xadd_below_tombstones_left_by_xsetid_is_refused() {
        // A trim leaves the only node all tombstones; XSETID then lowers max-deleted-id and
        // last-generated-id below them. Appending under them would break the node's order.
        let mut s = Stream::new();
        let mut out = Vec::new();
        for i in 1..=5u64 {
            add(&mut s, IdSpec::Explicit(id(i, 0)), 0).unwrap();
        }
        s.delete(&[id(5, 0)], &mut out).unwrap();
        let trim = TrimArgs::exact(crate::trim::TrimStrategy::MinId(id(5, 0)));
        s.trim(&trim, &NodeLimits::default(), &mut out).unwrap();
        assert_eq!((s.len(), s.node_count()), (0, 1));
        s.set_id(id(5, 0), None, Some(id(0, 1)), &mut out).unwrap();
        s.set_id(id(0, 2), None, None, &mut out).unwrap();
        assert_eq!(
            add(&mut s, IdSpec::Explicit(id(0, 3)), 0),
            Err(StreamError::XAddIdTooSmall)
        );
        assert_eq!(add(&mut s, IdSpec::Explicit(id(6, 0)), 0), Ok(id(6, 0)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn xread_resolves_dollar_and_plus() {
        let mut s = Stream::new();
        assert_eq!(s.resolve_read_id(ReadId::LastEntry), StreamId::MIN);
        for i in 1..=3u64 {
            add(&mut s, IdSpec::Explicit(id(i, 0)), 0).unwrap();
        }
        assert!(
            s.read_after(s.resolve_read_id(ReadId::Last), None)
                .unwrap()
                .is_empty()
        );
        let r = s
            .read_after(s.resolve_read_id(ReadId::LastEntry), None)
            .unwrap();
        assert_eq!(r.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id(3, 0)]);
        assert_eq!(s.read_after(id(1, 0), Some(1)).unwrap()[0].id, id(2, 0));
        assert_eq!(s.read_after(id(1, 0), Some(0)).unwrap().len(), 2);
        assert!(s.read_after(StreamId::MAX, None).unwrap().is_empty());
    }

    #[test]
    fn nodes_close_on_bytes_like_redis() {
        // Each entry carries a 100-byte value; Redis closes a 4096-byte node once
        // lpBytes + 101 >= 4096.
        let mut s = Stream::new();
        let v = Bytes::from(vec![b'x'; 100]);
        for i in 1..=100u64 {
            s.add(
                IdSpec::Explicit(id(i, 0)),
                &[b("f"), v.clone()],
                None,
                0,
                &NodeLimits::default(),
                &mut Vec::new(),
            )
            .unwrap();
        }
        // Master: header 7 + count 2 + deleted 2 + numfields 2 + "f" 3 + term 2 = 18;
        // each entry: flags 2 + ms 2 + seq 2 + value (2+100, backlen 1) 103 + lp-count 2
        // = 111. Node n entries weighs 18 + 111n (counts < 128), closes when
        // 18 + 111n + 101 >= 4096, i.e. at n = 36.
        let sizes: Vec<u64> = s.nodes.values().map(|n| n.live).collect();
        assert_eq!(sizes[0], 36);
        assert_eq!(sizes.iter().sum::<u64>(), 100);
    }

    #[test]
    fn small_entries_stay_compact() {
        let mut s = Stream::new();
        for i in 0..10_000u64 {
            s.add(
                IdSpec::Auto,
                &[b("field"), Bytes::from(i.to_string())],
                None,
                1_700_000_000_000 + i / 3,
                &NodeLimits::default(),
                &mut Vec::new(),
            )
            .unwrap();
        }
        let per_entry = s.entry_heap_bytes() as f64 / 10_000.0;
        assert!(per_entry < 16.0, "{per_entry} bytes per entry");
    }
}
