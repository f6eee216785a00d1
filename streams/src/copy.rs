//! Copies of the nodes holding a stream's newest entries, from some ID on: taken while the
//! stream is held, read after it is let go (see [`crate::Stream::copy_nodes_from`]).

use crate::id::StreamId;
use crate::node::{Node, RawEntry};
use crate::source::NodeMeta;

/// Copies of the nodes holding a stream's entries from some ID on.
#[derive(Debug)]
pub struct NodeCopies {
    /// The first entry taken.
    pub(crate) from: StreamId,
    /// The nodes holding the entries, in ID order, with their first IDs.
    pub(crate) nodes: Vec<(StreamId, Node)>,
    /// The node before the first one, when the first entry opened a node (and so closed
    /// that one).
    pub(crate) before: Option<NodeMeta>,
    /// How many entries were taken.
    pub(crate) count: usize,
    /// The last one.
    pub(crate) last: StreamId,
    /// Entries in the nodes after the last one copied, left out.
    pub(crate) left: u64,
}

/// One entry of [`NodeCopies`].
pub struct CopiedEntry<'a> {
    /// Its ID.
    pub id: StreamId,
    /// Deleted while its node lives on (a tombstone).
    pub deleted: bool,
    /// Whether it opened its node.
    pub opened_node: bool,
    node: &'a Node,
    raw: RawEntry,
}

impl<'a> CopiedEntry<'a> {
    /// Its fields and values, flattened.
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.node.field_slices(&self.raw)
    }
}

impl NodeCopies {
    /// The entries taken, in ID order (tombstones included, flagged).
    pub fn entries(&self) -> impl Iterator<Item = CopiedEntry<'_>> {
        let from = self.from;
        self.nodes.iter().flat_map(move |(master, node)| {
            node.iter(*master)
                .filter(move |e| e.id >= from)
                .map(move |raw| CopiedEntry {
                    id: raw.id,
                    deleted: raw.is_deleted(),
                    opened_node: raw.id == *master,
                    node,
                    raw,
                })
        })
    }

    /// How many entries were taken (at least one).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none were taken (never: [`crate::Stream::copy_nodes_from`] gives no copy then).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last entry's ID.
    pub fn last_id(&self) -> StreamId {
        self.last
    }

    /// How many entries the nodes after the last one copied hold (left out).
    pub fn left_out(&self) -> u64 {
        self.left
    }

    /// The metadata of the nodes the entries are in, and of the node the first one closed
    /// (when it opened a node).
    pub fn node_records(&self) -> impl Iterator<Item = NodeMeta> + '_ {
        self.before
            .into_iter()
            .chain(self.nodes.iter().map(|(master, node)| node.meta(*master)))
    }
}
