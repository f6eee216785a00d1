//! A stream node: a run of consecutive entries packed into one byte buffer.
//!
//! Layout of `data` (all integers LEB128 varints):
//!
//! ```text
//! master: num-fields, then num-fields x (len, bytes)      -- field names shared by the node
//! entry:  flags(u8), ms-delta, zigzag(seq-delta),
//!         SAMEFIELDS ? values : (num-fields, field/value pairs),  each as (len, bytes)
//! ```
//!
//! IDs are deltas against the node's master ID (its key in the stream's map, the ID of
//! its first entry), and an entry whose field names equal the master's stores values
//! only. XDEL and trimming set the DELETED flag in place, as Redis does; the node goes
//! away when its last live entry is deleted. `lp_rest` tracks what Redis's listpack
//! for the same node would weigh, so nodes close exactly where Redis's do.

use bytes::Bytes;
use std::sync::{Arc, LazyLock};

use crate::id::StreamId;
use crate::listpack;
use crate::source::{NodeMeta, StoredEntry};

/// Entry is deleted (a tombstone).
pub(crate) const FLAG_DELETED: u8 = 1;
/// Entry has the master's field names and stores values only.
pub(crate) const FLAG_SAMEFIELDS: u8 = 2;

/// The `stream-node-max-bytes` / `stream-node-max-entries` limits (CONFIG SET-able).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    /// Close a node when its listpack-equivalent size plus the new entry's field and
    /// value bytes reaches this; 0 means no limit (Redis caps it at 1 GiB).
    pub max_bytes: u64,
    /// Close a node when it holds this many entries, deleted ones included; 0 means
    /// no limit.
    pub max_entries: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// Redis never lets a listpack grow past this, whatever the config says.
const LISTPACK_MAX_SIZE: u64 = 1 << 30;

impl NodeLimits {
    /// Effective byte limit, as streamAppendItem computes it.
    fn byte_limit(&self) -> u64 {
        if self.max_bytes == 0 || self.max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            self.max_bytes
        }
    }
}

/// The empty buffer of a cold node, one for all of them (a cold node of a 10M-entry stream
/// would otherwise hold an allocation of its own).
fn no_data() -> Arc<Vec<u8>> {
    static NONE: LazyLock<Arc<Vec<u8>>> = LazyLock::new(|| Arc::new(Vec::new()));
    NONE.clone()
}

/// One node of packed entries; see the module docs for the layout.
///
/// A cold node has an empty `data` (its entries are in storage only) but keeps its counts
/// and ID bounds, which is all that trimming, XLEN and first/last-ID bookkeeping need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// Shared, so that a copy of a node ([`crate::NodeCopies`]) costs a reference count
    /// rather than its bytes; a change to a node a copy still shares copies it first.
    data: Arc<Vec<u8>>,
    /// Offset of the first entry (end of the master fields).
    entries_start: u32,
    /// Number of master field names.
    master_fields: u32,
    /// Entries not deleted.
    pub(crate) live: u64,
    /// Entries flagged deleted (still in `data`).
    pub(crate) deleted: u64,
    /// Listpack-equivalent bytes of everything except the live/deleted counters.
    lp_rest: u64,
    /// Last entry, tombstones included.
    pub(crate) last: StreamId,
    /// First live entry (meaningless when `live` is 0).
    pub(crate) first_live: StreamId,
    /// Last live entry (meaningless when `live` is 0).
    pub(crate) last_live: StreamId,
}

/// One decoded entry header inside a node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEntry {
    pub(crate) id: StreamId,
    flags: u8,
    /// Offset of the flags byte (for marking deleted).
    flag_pos: usize,
    /// Offset of the first field (or value, with SAMEFIELDS).
    body_pos: usize,
    nfields: u64,
}

impl RawEntry {
    /// True if the entry is a tombstone.
    pub(crate) fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A read cursor over a node's buffer; `None` means the buffer ended early, which only
/// a bug could cause, so callers stop rather than panic.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    fn skip_bytes(&mut self, n: u64) -> Option<()> {
        for _ in 0..n {
            self.bytes()?;
        }
        Some(())
    }
}

/// Fields and values are given flattened: `[f1, v1, f2, v2, ...]`.
fn field_names(fields: &[Bytes]) -> impl Iterator<Item = &Bytes> {
    fields.iter().step_by(2)
}

impl Node {
    /// A new node whose master fields are the field names of its first entry.
    pub(crate) fn new(fields: &[Bytes]) -> Node {
        let nfields = (fields.len() / 2) as u64;
        let mut data = Vec::new();
        put_varint(&mut data, nfields);
        let mut lp_rest = listpack::HEADER_AND_END + listpack::int_elem(nfields as i64);
        for f in field_names(fields) {
            put_bytes(&mut data, f);
            lp_rest += listpack::str_elem(f);
        }
        lp_rest += listpack::int_elem(0); // master entry terminator
        Node {
            entries_start: data.len() as u32,
            data: Arc::new(data),
            master_fields: nfields as u32,
            live: 0,
            deleted: 0,
            lp_rest,
            last: StreamId::MIN,
            first_live: StreamId::MIN,
            last_live: StreamId::MIN,
        }
    }

    /// A cold node: metadata only, entries in storage.
    pub(crate) fn cold(meta: &NodeMeta) -> Node {
        Node {
            data: no_data(),
            entries_start: 0,
            master_fields: 0,
            live: meta.live,
            deleted: meta.deleted,
            lp_rest: 0,
            last: meta.last,
            first_live: meta.first_live,
            last_live: meta.last_live,
        }
    }

    /// Rebuilds a node from its stored entries (the first one opened it); `None` if there
    /// are none.
    pub(crate) fn rebuild(entries: &[StoredEntry]) -> Option<Node> {
        let first = entries.first()?;
        let mut node = Node::new(&first.fields);
        for e in entries {
            node.push(first.id, e.id, &e.fields);
        }
        let tombstones: Vec<RawEntry> = node
            .iter(first.id)
            .zip(entries)
            .filter(|(_, stored)| stored.deleted)
            .map(|(raw, _)| raw)
            .collect();
        for raw in &tombstones {
            node.mark_deleted(first.id, raw);
        }
        node.shrink();
        Some(node)
    }

    /// What storage keeps of this node.
    pub(crate) fn meta(&self, master: StreamId) -> NodeMeta {
        NodeMeta {
            master,
            last: self.last,
            live: self.live,
            deleted: self.deleted,
            first_live: self.first_live,
            last_live: self.last_live,
        }
    }

    /// Whether two versions of a node (one rebuilt from storage) agree on their counts and
    /// bounds.
    pub(crate) fn same_counts(&self, other: &Node) -> bool {
        let lives = self.live == 0
            || (self.first_live, self.last_live) == (other.first_live, other.last_live);
        (self.last, self.live, self.deleted) == (other.last, other.live, other.deleted) && lives
    }

    /// True when the entries are in storage only.
    pub(crate) fn is_cold(&self) -> bool {
        self.data.is_empty()
    }

    /// Drops the entries from memory, keeping the metadata.
    pub(crate) fn evict(&mut self) {
        self.data = no_data();
    }

    /// What `lpBytes()` of Redis's listpack for this node would be.
    pub(crate) fn lp_bytes(&self) -> u64 {
        self.lp_rest
            + listpack::int_elem(self.live as i64)
            + listpack::int_elem(self.deleted as i64)
    }

    /// Whether streamAppendItem would open a new node instead of appending an entry
    /// whose fields and values total `incoming` bytes.
    pub(crate) fn is_full(&self, incoming: u64, limits: &NodeLimits) -> bool {
        if self.lp_bytes() + incoming >= limits.byte_limit() {
            return true;
        }
        limits.max_entries != 0 && self.live + self.deleted >= limits.max_entries
    }

    /// Gives back spare capacity once the node will receive no more entries.
    pub(crate) fn shrink(&mut self) {
        // Data a copy still shares is left as it is rather than copied to shrink it.
        if let Some(data) = Arc::get_mut(&mut self.data) {
            data.shrink_to_fit();
        }
    }

    /// Bytes held on the heap by this node.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }

    /// True if `fields`' names equal the master field names, in order.
    fn same_fields(&self, fields: &[Bytes]) -> bool {
        if (fields.len() / 2) as u64 != u64::from(self.master_fields) {
            return false;
        }
        let mut c = Cursor {
            buf: &self.data,
            pos: 0,
        };
        if c.varint().is_none() {
            return false;
        }
        field_names(fields).all(|f| c.bytes() == Some(&f[..]))
    }

    /// Appends an entry; `master` is the node's key, `id` must be above every entry.
    pub(crate) fn push(&mut self, master: StreamId, id: StreamId, fields: &[Bytes]) {
        let same = self.same_fields(fields);
        let nfields = (fields.len() / 2) as u64;
        let flags = if same { FLAG_SAMEFIELDS } else { 0 };
        let ms_delta = id.ms.wrapping_sub(master.ms);
        let seq_delta = id.seq.wrapping_sub(master.seq) as i64;
        let data = Arc::make_mut(&mut self.data);
        data.push(flags);
        put_varint(data, ms_delta);
        put_varint(data, zigzag(seq_delta));
        // Redis's listpack: flags, ms-delta, seq-delta, [num-fields], [fields], values,
        // lp-count.
        let mut lp = listpack::int_elem(i64::from(flags))
            + listpack::int_elem(ms_delta as i64)
            + listpack::int_elem(seq_delta);
        let mut lp_count = nfields + 3;
        if !same {
            put_varint(data, nfields);
            lp += listpack::int_elem(nfields as i64);
            lp_count += nfields + 1;
        }
        for pair in fields.chunks(2) {
            if let [f, v] = pair {
                if !same {
                    put_bytes(data, f);
                    lp += listpack::str_elem(f);
                }
                put_bytes(data, v);
                lp += listpack::str_elem(v);
            }
        }
        lp += listpack::int_elem(lp_count as i64);
        self.lp_rest += lp;
        if self.live == 0 {
            self.first_live = id;
        }
        self.live += 1;
        self.last = id;
        self.last_live = id;
    }

    /// Iterates every entry (tombstones included) in ID order.
    pub(crate) fn iter(&self, master: StreamId) -> NodeIter<'_> {
        NodeIter {
            node: self,
            master,
            cur: Cursor {
                buf: &self.data,
                pos: self.entries_start as usize,
            },
        }
    }

    /// The node's last entry ID, tombstones included.
    pub(crate) fn last_id(&self) -> StreamId {
        self.last
    }

    /// The live entry with this ID, if any.
    pub(crate) fn find_live(&self, master: StreamId, id: StreamId) -> Option<RawEntry> {
        self.iter(master)
            .take_while(|e| e.id <= id)
            .find(|e| e.id == id && !e.is_deleted())
    }

    /// Flags a live entry deleted and moves it from the live to the deleted count.
    pub(crate) fn mark_deleted(&mut self, master: StreamId, e: &RawEntry) {
        if self
            .data
            .get(e.flag_pos)
            .is_some_and(|f| f & FLAG_DELETED == 0)
            && let Some(f) = Arc::make_mut(&mut self.data).get_mut(e.flag_pos)
        {
            *f |= FLAG_DELETED;
            self.live = self.live.saturating_sub(1);
            self.deleted += 1;
            if self.live > 0 && e.id == self.first_live {
                let next = self.iter(master).find(|x| x.id > e.id && !x.is_deleted());
                self.first_live = next.map_or(self.last, |x| x.id);
            }
            if self.live > 0 && e.id == self.last_live {
                let prev = self
                    .iter(master)
                    .take_while(|x| x.id < e.id)
                    .filter(|x| !x.is_deleted())
                    .last();
                self.last_live = prev.map_or(master, |x| x.id);
            }
        }
    }

    /// Copies an entry's fields and values out, flattened.
    pub(crate) fn fields(&self, e: &RawEntry) -> Vec<Bytes> {
        self.field_slices(e).map(Bytes::copy_from_slice).collect()
    }

    /// An entry's fields and values, flattened, as slices of the node.
    pub(crate) fn field_slices<'a>(
        &'a self,
        e: &RawEntry,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut master = Cursor {
            buf: &self.data,
            pos: 0,
        };
        let same = e.flags & FLAG_SAMEFIELDS != 0;
        let pairs = if same && master.varint().is_none() {
            0
        } else {
            e.nfields
        };
        let mut body = Cursor {
            buf: &self.data,
            pos: e.body_pos,
        };
        (0..pairs)
            .map_while(move |_| {
                let f = if same { master.bytes() } else { body.bytes() };
                Some([f?, body.bytes()?])
            })
            .flatten()
    }
}

/// Iterator over a node's entries.
pub(crate) struct NodeIter<'a> {
    node: &'a Node,
    master: StreamId,
    cur: Cursor<'a>,
}

impl Iterator for NodeIter<'_> {
    type Item = RawEntry;

    fn next(&mut self) -> Option<RawEntry> {
        if self.cur.pos >= self.node.data.len() {
            return None;
        }
        let flag_pos = self.cur.pos;
        let flags = self.cur.u8()?;
        let ms = self.master.ms.wrapping_add(self.cur.varint()?);
        let seq = self
            .master
            .seq
            .wrapping_add(unzigzag(self.cur.varint()?) as u64);
        let same = flags & FLAG_SAMEFIELDS != 0;
        let nfields = if same {
            u64::from(self.node.master_fields)
        } else {
            self.cur.varint()?
        };
        let body_pos = self.cur.pos;
        let per_field = if same { 1 } else { 2 };
        self.cur.skip_bytes(nfields.checked_mul(per_field)?)?;
        Some(RawEntry {
            id: StreamId::new(ms, seq),
            flags,
            flag_pos,
            body_pos,
            nfields,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// A copy (what `Stream::copy_nodes_from` takes) keeps the entries as they were when it was taken,
    /// whatever the stream does to its own node afterwards.
    #[test]
    fn a_copy_is_unchanged_by_later_appends_and_deletions() {
        let master = StreamId::new(1, 0);
        let mut n = Node::new(&[b("f"), b("v")]);
        n.push(master, master, &[b("f"), b("a")]);
        n.push(master, StreamId::new(2, 0), &[b("f"), b("b")]);
        let copy = n.clone();
        assert!(Arc::ptr_eq(&copy.data, &n.data));
        n.push(master, StreamId::new(3, 0), &[b("f"), b("c")]);
        let first = n.iter(master).next().unwrap();
        n.mark_deleted(master, &first);
        let seen: Vec<(StreamId, bool)> =
            copy.iter(master).map(|e| (e.id, e.is_deleted())).collect();
        assert_eq!(seen, [(master, false), (StreamId::new(2, 0), false)]);
        assert_eq!((copy.live, copy.deleted), (2, 0));
        let now: Vec<(StreamId, bool)> = n.iter(master).map(|e| (e.id, e.is_deleted())).collect();
        assert_eq!(
            now,
            [
                (master, true),
                (StreamId::new(2, 0), false),
                (StreamId::new(3, 0), false)
            ]
        );
    }

    #[test]
    fn packs_and_reads_back_with_shared_fields() {
        let master = StreamId::new(1000, 5);
        let mut n = Node::new(&[b("f"), b("v")]);
        n.push(master, master, &[b("f"), b("v")]);
        n.push(master, StreamId::new(1001, 0), &[b("f"), b("w")]);
        n.push(
            master,
            StreamId::new(1001, 1),
            &[b("g"), b("x"), b("h"), b("y")],
        );
        let es: Vec<_> = n.iter(master).collect();
        assert_eq!(es.len(), 3);
        assert_eq!(es[1].id, StreamId::new(1001, 0));
        assert_eq!(n.fields(&es[1]), vec![b("f"), b("w")]);
        assert_eq!(n.fields(&es[2]), vec![b("g"), b("x"), b("h"), b("y")]);
        // Shared-field entries cost flags + two deltas + one value.
        assert!(n.data.len() < 40, "{}", n.data.len());
        let e = es[1];
        n.mark_deleted(master, &e);
        assert_eq!((n.live, n.deleted), (2, 1));
        assert!(n.find_live(master, e.id).is_none());
        assert_eq!(n.last_id(), StreamId::new(1001, 1));
        n.mark_deleted(master, &es[0]);
        assert_eq!(n.first_live, StreamId::new(1001, 1));
        assert_eq!(n.last_live, StreamId::new(1001, 1));
        let stored: Vec<StoredEntry> = es
            .iter()
            .map(|raw| StoredEntry {
                id: raw.id,
                deleted: raw.id != StreamId::new(1001, 1),
                fields: n.fields(raw),
            })
            .collect();
        let rebuilt = Node::rebuild(&stored).unwrap();
        assert_eq!(rebuilt.meta(master), n.meta(master));
        assert_eq!(rebuilt.data, n.data);
    }

    #[test]
    fn lp_bytes_tracks_redis_listpack_size() {
        // XADD s 1-1 f v on a fresh node: header 7, master (count 1, deleted 0,
        // numfields 1, "f", 0) = 2+2+2+3+2, entry (flags, 0, 0, "v", lp-count 4)
        // = 2+2+2+3+2.
        let master = StreamId::new(1, 1);
        let mut n = Node::new(&[b("f"), b("v")]);
        n.push(master, master, &[b("f"), b("v")]);
        assert_eq!(n.lp_bytes(), 7 + 11 + 11);
    }
}
