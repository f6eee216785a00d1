//! The node cache: which nodes keep their entries in memory, reading cold ones back from
//! the [`EntrySource`], eviction, pinning the entries the source cannot give back yet, and
//! copies of the newest entries for storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::copy::NodeCopies;
use crate::error::StreamError;
use crate::id::StreamId;
use crate::node::Node;
use crate::source::{EntrySource, NodeMeta, StoredEntry};

use super::{Stream, StreamMeta};

impl Stream {
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

    /// Every entry of the node whose first entry is `master`, tombstones included (a cold
    /// node is read back first); empty if there is no such node.
    ///
    /// # Errors
    /// When a cold node cannot be read back from storage.
    pub fn node_entries(&mut self, master: StreamId) -> Result<Vec<StoredEntry>, StreamError> {
        self.hydrate(master)?;
        let entries = match self.nodes.get(&master) {
            Some(node) => node
                .iter(master)
                .map(|e| StoredEntry {
                    id: e.id,
                    deleted: e.is_deleted(),
                    fields: node.fields(&e),
                })
                .collect(),
            None => Vec::new(),
        };
        self.shed(Some(master));
        Ok(entries)
    }

    /// The entries from `from` through `through` of the node whose first entry is `master`
    /// (tombstones included, flagged) when that node is in memory; None when it is cold or
    /// gone.
    pub fn resident_entries(
        &self,
        master: StreamId,
        from: StreamId,
        through: StreamId,
    ) -> Option<Vec<StoredEntry>> {
        let node = self.nodes.get(&master).filter(|n| !n.is_cold())?;
        let entries = node
            .iter(master)
            .skip_while(|e| e.id < from)
            .take_while(|e| e.id <= through)
            .map(|e| StoredEntry {
                id: e.id,
                deleted: e.is_deleted(),
                fields: node.fields(&e),
            })
            .collect();
        Some(entries)
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
