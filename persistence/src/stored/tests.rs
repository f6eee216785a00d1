//! The storage state against the streams it keeps: unflushed appends, group records
//! waiting for fjall, and a checkpoint's batch in flight.

#![allow(clippy::unwrap_used)]

use brooklet_streams::{GroupStartId, IdSpec, NodeLimits, ReadId, StoredEntry, Stream, StreamId};
use bytes::Bytes;

use super::{DirtyGroups, StoredStream};

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn add(s: &mut Stream, spec: IdSpec, now: u64) -> Result<StreamId, brooklet_streams::StreamError> {
    s.add(
        spec,
        &[Bytes::from("f"), Bytes::from("v")],
        None,
        now,
        &NodeLimits::default(),
        &mut Vec::new(),
    )
    .map(|o| o.id)
}

/// Replaying `current` onto a copy of the stream as it was before the changes gives the
/// stream as it is after them.
#[test]
fn current_records_rebuild_the_groups() {
    let mut s = Stream::new();
    let f = [Bytes::from("f"), Bytes::from("v")];
    for _ in 0..5 {
        s.add(
            IdSpec::Auto,
            &f,
            None,
            1,
            &NodeLimits::default(),
            &mut Vec::new(),
        )
        .unwrap();
    }
    let mut before = s.clone();
    let mut dirty = DirtyGroups::default();
    let mut muts = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut muts)
        .unwrap();
    s.create_group(b"h", GroupStartId::Id(StreamId::MIN), None, &mut muts)
        .unwrap();
    s.read_group(b"s", b"g", b"c", ReadId::New, Some(3), false, 10, &mut muts)
        .unwrap();
    s.read_group(b"s", b"h", b"c", ReadId::New, Some(3), false, 10, &mut muts)
        .unwrap();
    s.ack(b"g", &[StreamId::new(1, 0)], &mut muts);
    s.destroy_group(b"h", &mut muts);
    for m in &muts {
        dirty.note(m);
    }
    assert!(!dirty.is_empty());
    for m in dirty.current(&s) {
        before.apply(&m);
    }
    assert_eq!(before, s);
}

/// While a checkpoint commits some records, the stream's own batch takes those too: its
/// new incarnation hides their logged changes, and the checkpoint's batch may fail.
#[test]
fn a_batch_of_its_own_takes_the_records_being_checkpointed() {
    let mut s = StoredStream::new();
    let mut muts = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut muts)
        .unwrap();
    s.note_group_changes(&muts);
    let checkpointed = s.begin_group_flush();
    assert_eq!(checkpointed.len(), 1);
    assert!(!s.has_dirty_groups());
    muts.clear();
    s.create_consumer(b"s", b"g", b"c", 1, &mut muts).unwrap();
    s.note_group_changes(&muts);
    let own = s.take_dirty_groups_with_flushing();
    assert_eq!(own.len(), 2, "{own:?}");
    assert!(s.is_flushing(), "the checkpoint's batch is still out");
    assert!(
        s.take_dirty_groups_with_flushing().is_empty(),
        "a second batch must not write them again"
    );
    s.end_flush(false);
    assert!(
        !s.has_dirty_groups(),
        "the stream's own batch wrote what the failed checkpoint held"
    );
}
/// The nodes a checkpoint copies hold the same appends, flags and fields as the entries
/// `unflushed_upto` hands out, and name the nodes whose records the appends change.
#[test]
fn unflushed_nodes_match_the_unflushed_entries() {
    let mut s = StoredStream::new();
    for ms in 1..=250 {
        let fields = if ms % 7 == 0 {
            vec![Bytes::from("other"), Bytes::from(format!("v{ms}"))]
        } else {
            vec![
                Bytes::from("f"),
                Bytes::from(format!("v{ms}")),
                Bytes::from("g"),
                Bytes::new(),
            ]
        };
        let limits = NodeLimits::default();
        s.add(
            IdSpec::Explicit(id(ms, 0)),
            &fields,
            None,
            0,
            &limits,
            &mut Vec::new(),
        )
        .unwrap();
    }
    s.delete(&[id(120, 0)], &mut Vec::new()).unwrap();
    for from in [50, 101] {
        s.mark_unflushed(id(from, 0));
        for max in [1, 60, usize::MAX] {
            let (want, want_meta) = s.unflushed_upto(max).unwrap();
            let (nodes, meta) = s.unflushed_nodes(max).unwrap();
            assert_eq!(meta, want_meta);
            let got: Vec<_> = nodes
                .entries()
                .map(|e| {
                    let fields: Vec<Bytes> = e.fields().map(Bytes::copy_from_slice).collect();
                    assert_eq!(e.opened_node, s.node(e.id).is_some());
                    StoredEntry {
                        id: e.id,
                        deleted: e.deleted,
                        fields,
                    }
                })
                .collect();
            assert_eq!(got, want);
            assert_eq!(nodes.len(), want.len());
            assert_eq!(Some(nodes.last_id()), want.last().map(|e| e.id));
            let mut masters: Vec<u64> = nodes.node_records().map(|n| n.master.ms).collect();
            masters.dedup();
            let first = if from == 101 { vec![1, 101] } else { vec![1] };
            assert_eq!(masters[..first.len()], first[..]);
            for n in nodes.node_records() {
                assert_eq!(Some(n), s.node(n.master));
            }
        }
        s.begin_flush(id(250, 0));
        s.end_flush(true);
    }
}

/// A checkpoint's piece stops at the first node boundary past its budget and reports the
/// metadata as of its last entry; appends made while it is committed stay unflushed.
#[test]
fn unflushed_pieces_stop_at_node_boundaries() {
    let mut s = StoredStream::new();
    for ms in 1..=250 {
        add(&mut s, IdSpec::Explicit(id(ms, 0)), 0).unwrap();
    }
    assert!(s.unflushed_upto(10).is_none());
    s.mark_unflushed(id(50, 0));
    // Nodes of 100: the rest of node 1 (50-100), then node 2 once the budget allows.
    let (piece, as_of) = s.unflushed_upto(10).unwrap();
    assert_eq!(piece.len(), 51);
    assert_eq!(piece.last().unwrap().id, id(100, 0));
    assert_eq!(as_of.last_id, id(100, 0));
    assert_eq!(as_of.entries_added, 100);
    let (piece, as_of) = s.unflushed_upto(60).unwrap();
    assert_eq!(piece.len(), 151);
    assert_eq!((as_of.last_id, as_of.entries_added), (id(200, 0), 200));
    let (piece, as_of) = s.unflushed_upto(usize::MAX).unwrap();
    assert_eq!(piece.len(), 201);
    assert_eq!((as_of.last_id, as_of.entries_added), (id(250, 0), 250));
    s.begin_flush(id(200, 0));
    assert!(s.is_flushing());
    add(&mut s, IdSpec::Explicit(id(251, 0)), 0).unwrap();
    s.end_flush(true);
    assert!(!s.is_flushing());
    assert_eq!(s.unflushed_upto(usize::MAX).unwrap().0[0].id, id(201, 0));
    // A failed commit leaves everything unflushed; a full one, nothing.
    s.begin_flush(id(251, 0));
    s.end_flush(false);
    assert_eq!(s.unflushed_upto(usize::MAX).unwrap().0.len(), 51);
    s.begin_flush(id(251, 0));
    s.end_flush(true);
    assert!(!s.has_unflushed());
}

/// An XADD IDMP stays one tail-log append, creating its stream or not; a duplicate's count
/// is logged like a group change once fjall has the stream, and XCFGSET is a batch.
#[test]
fn idmp_changes_take_the_tail_log_where_plain_ones_do() {
    use brooklet_streams::{IdmpAdd, IdmpKey};

    use super::Route;

    let fields = [Bytes::from("f"), Bytes::from("v")];
    let key = IdmpKey::Explicit {
        pid: b"p",
        iid: b"i",
    };
    let limits = NodeLimits::default();
    let mut s = StoredStream::new();
    let mut muts = Vec::new();
    let added = s
        .stream_mut()
        .add_idempotent(
            key,
            IdSpec::Auto,
            &fields,
            None,
            None,
            10,
            &limits,
            &mut muts,
        )
        .unwrap();
    assert!(matches!(added, IdmpAdd::Added(_)));
    assert!(matches!(
        s.route(&muts),
        Route::Append {
            creates: true,
            idmp: Some(_),
            ..
        }
    ));
    s.set_incarnation(1);
    let mut muts = Vec::new();
    s.stream_mut()
        .add_idempotent(
            IdmpKey::Auto { pid: b"p" },
            IdSpec::Auto,
            &fields,
            None,
            None,
            11,
            &limits,
            &mut muts,
        )
        .unwrap();
    assert!(matches!(
        s.route(&muts),
        Route::Append {
            creates: false,
            idmp: Some(_),
            ..
        }
    ));
    let mut muts = Vec::new();
    let dup = s
        .stream_mut()
        .add_idempotent(
            key,
            IdSpec::Auto,
            &fields,
            None,
            None,
            12,
            &limits,
            &mut muts,
        )
        .unwrap();
    assert!(matches!(dup, IdmpAdd::Duplicate(_)));
    // Only the tail log has the stream: its first such change is a batch.
    assert!(matches!(s.route(&muts), Route::Batch));
    s.set_stored();
    assert!(matches!(s.route(&muts), Route::GroupChanges));
    s.note_group_changes(&muts);
    assert!(s.take_dirty_idmp());
    let mut muts = Vec::new();
    assert!(s.stream_mut().set_idmp_config(Some(5), None, &mut muts));
    assert!(matches!(s.route(&muts), Route::Batch));
}
