//! The checkpoint's batches against a real directory.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::FsyncPolicy;
use crate::stored::StoredStream;
use brooklet_streams::{IdSpec, NodeLimits, StreamId};

fn add(store: &Store, s: &mut StoredStream, ids: std::ops::RangeInclusive<u64>) {
    add_to(store, b"k", s, ids);
}

fn add_to(store: &Store, key: &[u8], s: &mut StoredStream, ids: std::ops::RangeInclusive<u64>) {
    for i in ids {
        let mut muts = Vec::new();
        let fields = [Bytes::from("f"), Bytes::from(format!("v{i}"))];
        s.add(
            IdSpec::Explicit(StreamId::new(i, 0)),
            &fields,
            None,
            0,
            &NodeLimits::default(),
            &mut muts,
        )
        .unwrap();
        store.write_stream(0, key, s, &muts).unwrap();
    }
}

/// A crash between a checkpoint's ingestion and its batch leaves entries in fjall past
/// the stream's recorded last ID, in nodes it has no records of. The load must not take
/// them for the tail of the last node: the tail log still holds them, and its replay
/// rebuilds the same nodes.
#[test]
fn entries_ingested_without_their_records_are_replayed_from_the_tail_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        // Nodes of 100 entries, all logged (the first append created the stream).
        add(&store, &mut s, 1..=250);
        let pending = store
            .prepare_flush(0, [(&b"k"[..], &mut s)], usize::MAX)
            .unwrap();
        let (entries, _batch) = pending.encode().unwrap();
        assert_eq!(entries.len(), 250);
        store.ingest_entries(entries).unwrap();
        // The batch with the node and stream records is never committed.
        drop(pending);
        s.end_flush(false);
        let stored = store.source(0, b"k").load(StreamId::MIN, StreamId::MAX);
        assert_eq!(stored.unwrap().len(), 250);
    }
    let (_store, loaded, report) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    assert_eq!(report.tail_applied, 250);
    let loaded = loaded.into_iter().next().unwrap().stream;
    assert_eq!(loaded, s);
    assert_eq!(loaded.len(), 250);
    assert_eq!(loaded.entries_added(), 250);
    assert_eq!(loaded.last_id(), StreamId::new(250, 0));
    let masters: Vec<u64> = loaded.nodes().map(|n| n.master.ms).collect();
    assert_eq!(masters, [1, 101, 201]);
}

/// A checkpoint piece over few streams, or with many entries, is ingested; a small one
/// over many streams goes through fjall's journal. A piece stops once it holds its
/// budget (at a node boundary), and `usize::MAX` takes everything.
#[test]
fn pieces_are_ingested_unless_small_and_spread() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    let keys: Vec<Vec<u8>> = (0..=INGEST_MAX_STREAMS)
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    let fill = |sizes: &dyn Fn(usize) -> u64| {
        let mut streams: Vec<StoredStream> = keys.iter().map(|_| StoredStream::new()).collect();
        for (i, (k, s)) in keys.iter().zip(&mut streams).enumerate() {
            add_to(&store, k, s, 1..=sizes(i));
        }
        streams
    };
    let pieces = |streams: &mut [StoredStream], max: usize| {
        let mut pending = store.begin_flush();
        let mut last = Added::Nothing;
        for (k, s) in keys.iter().zip(streams.iter_mut()) {
            last = pending.add(0, k, s, max);
            if last == Added::Full {
                break;
            }
        }
        let sizes: Vec<usize> = pending
            .pieces
            .iter()
            .map(|p| p.appends.as_ref().map_or(0, |a| a.0.len()))
            .collect();
        let ingested = pending.encode().unwrap().0.len();
        (sizes, ingested, last)
    };

    // Nine streams, few entries: through the journal. (Every append is logged, the
    // first one, which created its stream, included.)
    let mut small = fill(&|_| 10);
    let (sizes, ingested, last) = pieces(&mut small, 150_000);
    assert_eq!(sizes, vec![10; INGEST_MAX_STREAMS + 1]);
    assert_eq!((ingested, last), (0, Added::Taken));

    // Nine streams, many entries: ingested, up to the budget.
    let mut large = fill(&|i| if i < INGEST_MAX_STREAMS { 10 } else { 30_000 });
    let (sizes, ingested, last) = pieces(&mut large, 20_000);
    let ninth = sizes[INGEST_MAX_STREAMS];
    let room = 20_000 - 10 * INGEST_MAX_STREAMS;
    assert!((room..room + 100).contains(&ninth), "{ninth}");
    assert_eq!(ingested, 10 * INGEST_MAX_STREAMS + ninth);
    assert_eq!(last, Added::Full);

    // A checkpoint's last piece takes everything: the segments are retired after it.
    let mut all = fill(&|i| if i < INGEST_MAX_STREAMS { 10 } else { 30_000 });
    let named = keys.iter().map(|k| &k[..]).zip(all.iter_mut());
    let pending = store.prepare_flush(0, named, usize::MAX).unwrap();
    assert_eq!(
        pending
            .pieces
            .last()
            .and_then(|p| p.appends.as_ref())
            .map(|a| a.0.len()),
        Some(30_000)
    );
    assert!(!pending.more);
}
