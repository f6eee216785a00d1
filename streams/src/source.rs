//! Where a stream's evicted nodes are read back from.
//!
//! Only recent nodes stay in memory; older ones keep their metadata (ID bounds, live and
//! deleted counts) and drop their entries, which the storage layer holds. This trait is the
//! one door back to them, so this crate stays free of I/O: persistence implements it on its
//! store, and a stream without a source simply never evicts.

use std::fmt;

use bytes::Bytes;

use crate::id::StreamId;

/// One entry as storage holds it: tombstones included, because a node keeps their slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry's ID.
    pub id: StreamId,
    /// Deleted (by XDEL or cut by an exact trim) while its node lives on.
    pub deleted: bool,
    /// Fields and values, flattened.
    pub fields: Vec<Bytes>,
}

/// The storage behind one stream.
pub trait EntrySource: Send + Sync + fmt::Debug {
    /// Every stored entry with `first <= id <= last`, tombstones included, in ID order.
    ///
    /// # Errors
    /// A description of why storage could not be read.
    fn load(&self, first: StreamId, last: StreamId) -> Result<Vec<StoredEntry>, String>;

    /// How many bytes of node data the stream may keep in memory besides its tail node.
    fn budget(&self) -> usize;

    /// Told each time a read found the node it needed in memory (for cache statistics).
    fn note_hit(&self) {}
}

/// What persistence keeps of a node so it can be rebuilt without reading its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeMeta {
    /// ID of the node's first entry (its key).
    pub master: StreamId,
    /// ID of its last entry, tombstones included.
    pub last: StreamId,
    /// Live entries.
    pub live: u64,
    /// Tombstones.
    pub deleted: u64,
    /// First live entry (meaningless when `live` is 0).
    pub first_live: StreamId,
    /// Last live entry (meaningless when `live` is 0).
    pub last_live: StreamId,
}
