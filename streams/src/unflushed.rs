//! A checkpoint's copy of a stream's logged appends: the nodes holding them, copied while
//! the stream is held so that they can be encoded for storage after it is let go.

use crate::id::StreamId;
use crate::node::{Node, RawEntry};
use crate::source::NodeMeta;

/// Copies of the nodes holding a stream's logged appends, for a checkpoint to write.
#[derive(Debug)]
pub struct UnflushedNodes {
    /// The first logged append.
    pub(crate) from: StreamId,
    /// The nodes holding the appends, in ID order, with their first IDs.
    pub(crate) nodes: Vec<(StreamId, Node)>,
    /// The node before the first one, when the first append opened a node: that append
    /// closed it, so its record is final.
    pub(crate) before: Option<NodeMeta>,
    /// How many appends there are.
    pub(crate) count: usize,
    /// The last one.
    pub(crate) last: StreamId,
}

/// One logged append, as a checkpoint writes it.
pub struct UnflushedEntry<'a> {
    /// Its ID.
    pub id: StreamId,
    /// Deleted while its node lives on (a tombstone).
    pub deleted: bool,
    /// Whether it opened its node.
    pub opened_node: bool,
    node: &'a Node,
    raw: RawEntry,
}

impl<'a> UnflushedEntry<'a> {
    /// Its fields and values, flattened.
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.node.field_slices(&self.raw)
    }
}

impl UnflushedNodes {
    /// The logged appends, in ID order (tombstones included, flagged).
    pub fn entries(&self) -> impl Iterator<Item = UnflushedEntry<'_>> {
        let from = self.from;
        self.nodes.iter().flat_map(move |(master, node)| {
            node.iter(*master)
                .filter(move |e| e.id >= from)
                .map(move |raw| UnflushedEntry {
                    id: raw.id,
                    deleted: raw.is_deleted(),
                    opened_node: raw.id == *master,
                    node,
                    raw,
                })
        })
    }

    /// How many logged appends there are (at least one).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (never: a stream without appends to write has no copy).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last logged append's ID.
    pub fn last_id(&self) -> StreamId {
        self.last
    }

    /// The records of the nodes the appends went into, and of the node they closed.
    pub fn node_records(&self) -> impl Iterator<Item = NodeMeta> + '_ {
        self.before
            .into_iter()
            .chain(self.nodes.iter().map(|(master, node)| node.meta(*master)))
    }
}
