//! Entries as read out for a reply.

use bytes::Bytes;

use crate::id::StreamId;

/// One stream entry copied out of its node: the ID and its fields and values flattened
/// (`field, value, field, value, ...`), in the order XADD gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's ID.
    pub id: StreamId,
    /// Field names and values, alternating.
    pub fields: Vec<Bytes>,
}

/// An entry that may have been deleted meanwhile: XREADGROUP's history reads return the
/// pending ID with a nil body for entries no longer in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaybeEntry {
    /// The pending entry's ID.
    pub id: StreamId,
    /// Its fields and values, or `None` if the entry was deleted.
    pub fields: Option<Vec<Bytes>>,
}
