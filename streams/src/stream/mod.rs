//! The stream: packed nodes of entries plus Redis's metadata, and the entry commands
//! (XADD, XLEN, XRANGE/XREVRANGE, XDEL, XSETID, XREAD).
//!
//! With an [`EntrySource`] attached, only the tail node and a budget of recently used
//! nodes keep their entries in memory; the others are cold (metadata only) and are read
//! back from the source when a command needs their entries.
//!
//! `mod.rs` holds the type and its metadata; `entries.rs` the entry commands; `cache.rs`
//! the node cache (eviction, reading cold nodes back, pinning, copies for storage).

mod cache;
mod entries;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::group::ConsumerGroup;
use crate::id::StreamId;
use crate::idmp::Idmp;
use crate::node::Node;
use crate::retention::Retention;
use crate::source::{EntrySource, NodeMeta};

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
    /// Idempotent producers' remembered IDs and settings.
    pub(crate) idmp: Idmp,
    /// Time-based retention (XCFGSET MAXAGE).
    pub(crate) retention: Retention,
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
            && self.idmp == other.idmp
            && self.retention == other.retention
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::StreamError;
    use crate::id::{IdSpec, ReadId};
    use crate::node::NodeLimits;
    use crate::source::StoredEntry;
    use crate::trim::TrimArgs;

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

    #[test]
    fn expect_last_compares_with_the_last_generated_id() {
        let mut s = Stream::new();
        assert_eq!(s.expect_last(id(0, 0)), Ok(()));
        assert_eq!(
            s.expect_last(id(1, 0)).unwrap_err().to_string(),
            "CONFLICT last ID is 0-0"
        );
        add(&mut s, IdSpec::Explicit(id(3, 1)), 0).unwrap();
        s.delete(&[id(3, 1)], &mut Vec::new()).unwrap();
        assert_eq!(s.expect_last(id(3, 1)), Ok(()));
        assert_eq!(
            s.expect_last(id(0, 0)),
            Err(StreamError::LastIdConflict(id(3, 1)))
        );
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
