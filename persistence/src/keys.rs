//! Key encoding. Every class of record lives in its own fjall keyspace, and every key starts
//! with the database number and the length-prefixed stream key, so no two streams' keys and
//! no two classes can ever overlap. Integers are big-endian so byte order is numeric order.

use brooklet_streams::StreamId;

/// `db` (u32) + key length (u32) + key: the prefix of everything stored for one stream.
pub fn stream_prefix(db: u32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len() + 16);
    out.extend_from_slice(&db.to_be_bytes());
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The prefix of everything stored for one database.
pub fn db_prefix(db: u32) -> Vec<u8> {
    db.to_be_bytes().to_vec()
}

/// Where deletion floors live in the `meta` keyspace (see `Store::delete_stream`).
pub const FLOOR_PREFIX: &[u8] = b"floor/";

/// A deletion floor's key: [`FLOOR_PREFIX`] + the prefix the deletion covered (a stream's,
/// a database's, or empty for FLUSHALL).
pub fn floor_key(prefix: &[u8]) -> Vec<u8> {
    [FLOOR_PREFIX, prefix].concat()
}

/// An entry's key: stream prefix + ms + seq.
pub fn entry_key(prefix: &[u8], id: StreamId) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 16);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
    out
}

/// A node record's key: stream prefix + the node's first entry ID.
pub fn node_key(prefix: &[u8], master: StreamId) -> Vec<u8> {
    entry_key(prefix, master)
}

/// A group's key: stream prefix + name length + name.
pub fn group_key(prefix: &[u8], group: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 4 + group.len() + 16);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&(group.len() as u32).to_be_bytes());
    out.extend_from_slice(group);
    out
}

/// A consumer's key: group key + name length + name.
pub fn consumer_key(group_key: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut out = group_key.to_vec();
    out.extend_from_slice(&(consumer.len() as u32).to_be_bytes());
    out.extend_from_slice(consumer);
    out
}

/// A pending entry's key: group key + ms + seq.
pub fn pending_key(group_key: &[u8], id: StreamId) -> Vec<u8> {
    entry_key(group_key, id)
}

/// Reads a big-endian u32 at `at`.
pub fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a big-endian u64 at `at`.
pub fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Splits a stream prefix off a key: (db, stream key, rest).
pub fn split_prefix(k: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let db = read_u32(k, 0)?;
    let len = read_u32(k, 4)? as usize;
    let key = k.get(8..8 + len)?;
    Some((db, key, &k[8 + len..]))
}

/// Splits a length-prefixed name off the front of `b`.
pub fn split_name(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = read_u32(b, 0)? as usize;
    Some((b.get(4..4 + len)?, &b[4 + len..]))
}

/// Reads an ID (ms, seq) that is exactly the rest of a key.
pub fn read_id(b: &[u8]) -> Option<StreamId> {
    if b.len() != 16 {
        return None;
    }
    Some(StreamId::new(read_u64(b, 0)?, read_u64(b, 8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_different_streams_never_overlap() {
        // "a" with a long ID must not sort inside "ab"'s range, nor share its prefix.
        let a = stream_prefix(0, b"a");
        let ab = stream_prefix(0, b"ab");
        assert!(!ab.starts_with(&a));
        assert!(!entry_key(&a, StreamId::new(u64::MAX, u64::MAX)).starts_with(&ab));
        assert_ne!(stream_prefix(1, b"a")[..4], a[..4]);
    }

    #[test]
    fn keys_round_trip() {
        let p = stream_prefix(3, b"orders");
        let g = group_key(&p, b"workers");
        let k = pending_key(&g, StreamId::new(7, 9));
        let (db, key, rest) = split_prefix(&k).expect("prefix");
        assert_eq!((db, key), (3, &b"orders"[..]));
        let (group, rest) = split_name(rest).expect("group");
        assert_eq!(group, b"workers");
        assert_eq!(read_id(rest), Some(StreamId::new(7, 9)));
    }
}
