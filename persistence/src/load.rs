//! Recovery: rebuilding every stream's metadata from the store at start-up.
//!
//! Only metadata is read: stream records, node records, groups, consumers and pending
//! entries, plus the entries of each stream's last node (appends to it do not rewrite its
//! record). Every other entry stays on disk until a command needs it, so start-up time and
//! memory follow the number of nodes, not of entries.

use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use brooklet_streams::{Mutation, NodeMeta, Stream, StreamId};

use crate::stored::StoredStream;

use crate::codec::{
    Reader, decode_node, decode_stream, read_consumer, read_group, read_group_sections,
    read_pending_change,
};
use crate::error::StoreError;
use crate::keys::{read_id, split_name, split_prefix, stream_prefix};
use crate::source::CacheMisses;
use crate::store::Keyspaces;

/// A stream found in the store.
pub struct LoadedStream {
    /// Its database.
    pub db: u32,
    /// Its key.
    pub key: Bytes,
    /// Its state.
    pub stream: StoredStream,
}

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Streams loaded.
    pub streams: u64,
    /// Live entries in them (most stay on disk).
    pub entries: u64,
    /// Nodes (runs of entries) in them.
    pub nodes: u64,
    /// Consumer groups loaded.
    pub groups: u64,
    /// Pending entries loaded.
    pub pending: u64,
    /// Bytes of journal the engine dropped as a torn or corrupt tail.
    pub torn_journal_bytes: u64,
    /// How long loading the streams took.
    pub elapsed: Duration,
    /// How long the storage engine took to open (journal replay included).
    pub engine_open: Duration,
    /// Journal bytes found at start-up (what the engine had to replay).
    pub journal_replayed_bytes: u64,
    /// Highest stream incarnation found (in stream records or the tail log).
    pub max_incarnation: u64,
    /// Tail-log bytes read.
    pub tail_bytes: u64,
    /// Tail-log records read.
    pub tail_records: u64,
    /// Of those, appends applied (the rest were in fjall already or of streams gone since).
    pub tail_applied: u64,
    /// Tail-log bytes dropped after a torn or corrupt record.
    pub tail_torn_bytes: u64,
}

impl RecoveryReport {
    /// Adds what the tail log's replay found.
    pub(crate) fn note_tail(&mut self, r: &crate::tail_log::ReplayReport) {
        self.max_incarnation = self.max_incarnation.max(r.max_incarnation);
        self.tail_bytes += r.bytes;
        self.tail_records += r.records;
        self.tail_applied += r.applied;
        self.tail_torn_bytes += r.torn_bytes;
    }
}

type StreamMap = HashMap<(u32, Bytes), StoredStream>;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("malformed {what} key"))
}

/// Loads every stream's metadata; `budget` is the `stream-cache-bytes` their sources share.
pub(crate) fn load(
    ks: &Keyspaces,
    budget: &Arc<AtomicUsize>,
    misses: &Arc<CacheMisses>,
) -> Result<(Vec<LoadedStream>, RecoveryReport), StoreError> {
    let started = Instant::now();
    let mut report = RecoveryReport::default();
    let mut nodes: HashMap<(u32, Bytes), Vec<NodeMeta>> = HashMap::new();
    // A stream's node records come one after another (keys are ordered by stream), so they
    // are gathered in one list and filed once, not looked up record by record (10M entries
    // are 277,778 node records).
    let mut run: Option<((u32, Bytes), Vec<NodeMeta>)> = None;
    for kv in ks.nodes.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("node"))?;
        let master = read_id(rest).ok_or_else(|| corrupt("node"))?;
        let node = decode_node(master, &v)?;
        match &mut run {
            Some(((d, k), list)) if *d == db && k[..] == *key => list.push(node),
            _ => {
                if let Some((name, list)) =
                    run.replace(((db, Bytes::copy_from_slice(key)), vec![node]))
                {
                    nodes.insert(name, list);
                }
            }
        }
        report.nodes += 1;
    }
    if let Some((name, list)) = run {
        nodes.insert(name, list);
    }
    let floors = trim_floors(ks)?;
    let mut streams: StreamMap = HashMap::new();
    for kv in ks.streams.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("stream"))?;
        if !rest.is_empty() {
            return Err(corrupt("stream"));
        }
        let (meta, incarnation, idmp) = decode_stream(&v)?;
        report.max_incarnation = report.max_incarnation.max(incarnation);
        let key = Bytes::copy_from_slice(key);
        let mut its_nodes = nodes.remove(&(db, key.clone())).unwrap_or_default();
        let prefix = stream_prefix(db, &key);
        // Node records a trim's purge has yet to remove are no longer the stream's.
        if let Some(ranges) = floors.get(&prefix) {
            // This life's ranges, by their first ID (an ACKED trim may leave thousands:
            // each node is looked up, not compared with all of them); floors overlap ranges.
            let mut mine: Vec<(StreamId, StreamId)> = ranges
                .iter()
                .filter(|(_, _, life)| *life == incarnation)
                .map(|(from, upto, _)| (*from, *upto))
                .collect();
            let floor = mine
                .iter()
                .filter(|(from, _)| *from == StreamId::MIN)
                .map(|(_, upto)| *upto)
                .max();
            mine.retain(|(from, _)| *from != StreamId::MIN);
            mine.sort_unstable();
            its_nodes.retain(|n| {
                if floor.is_some_and(|f| n.master <= f) {
                    return false;
                }
                let i = mine.partition_point(|(from, _)| *from <= n.master);
                i == 0 || mine[i - 1].1 < n.master
            });
        }
        let source = crate::store::source(ks, budget, misses, prefix);
        let mut stream: StoredStream = Stream::restore(meta, &its_nodes, source)
            .map_err(|e| {
                StoreError::Corrupt(format!("stream '{}': {e}", String::from_utf8_lossy(&key)))
            })?
            .into();
        stream.set_incarnation(incarnation);
        if let Some(idmp) = idmp {
            stream.restore_idmp(idmp);
        }
        report.entries += stream.len();
        streams.insert((db, key), stream);
    }
    if let Some(((_, key), _)) = nodes.iter().next() {
        return Err(StoreError::Corrupt(format!(
            "node records of stream '{}', which has no stream record",
            String::from_utf8_lossy(key)
        )));
    }
    for kv in ks.groups.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("group"))?;
        let (group, rest) = split_name(rest).ok_or_else(|| corrupt("group"))?;
        if !rest.is_empty() {
            return Err(corrupt("group"));
        }
        let mut r = Reader::new(&v, "group");
        let (last_id, entries_read) = read_group(&mut r)?;
        let group = Bytes::copy_from_slice(group);
        let sections = read_group_sections(&mut r, &group)?;
        let stream = find(&mut streams, db, key)?;
        stream.apply(&Mutation::GroupCreated {
            group,
            last_id,
            entries_read,
        });
        for m in &sections {
            stream.apply(m);
        }
        report.groups += 1;
    }
    for kv in ks.consumers.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("consumer"))?;
        let (group, rest) = split_name(rest).ok_or_else(|| corrupt("consumer"))?;
        let (consumer, rest) = split_name(rest).ok_or_else(|| corrupt("consumer"))?;
        if !rest.is_empty() {
            return Err(corrupt("consumer"));
        }
        let (seen_time, active_time) = read_consumer(&mut Reader::new(&v, "consumer"))?;
        let m = Mutation::ConsumerUpserted {
            group: Bytes::copy_from_slice(group),
            consumer: Bytes::copy_from_slice(consumer),
            seen_time,
            active_time,
        };
        find(&mut streams, db, key)?.apply(&m);
    }
    for kv in ks.pending.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("pending"))?;
        let (group, rest) = split_name(rest).ok_or_else(|| corrupt("pending"))?;
        let id = read_id(rest).ok_or_else(|| corrupt("pending"))?;
        let m = read_pending_change(
            &mut Reader::new(&v, "pending"),
            Bytes::copy_from_slice(group),
            id,
            Bytes::copy_from_slice,
        )?;
        find(&mut streams, db, key)?.apply(&m);
        report.pending += 1;
    }
    report.streams = streams.len() as u64;
    report.elapsed = started.elapsed();
    let out = streams
        .into_iter()
        .map(|((db, key), stream)| LoadedStream { db, key, stream })
        .collect();
    Ok((out, report))
}

/// Per stream prefix, the ranges of the trims whose purges are still pending: the lowest
/// and highest IDs whose records go (`0-0` to a floor), and the life of the stream trimmed.
type TrimFloors = HashMap<Vec<u8>, Vec<(StreamId, StreamId, u64)>>;

/// The pending trims' floors (see [`TrimFloors`]).
fn trim_floors(ks: &Keyspaces) -> Result<TrimFloors, StoreError> {
    let mut out = TrimFloors::new();
    for purge in crate::purge::pending(ks)? {
        if let Some((upto, life)) = purge.trim {
            out.entry(purge.prefix)
                .or_default()
                .push((purge.from, upto, life));
        }
    }
    Ok(out)
}

fn find<'a>(
    streams: &'a mut StreamMap,
    db: u32,
    key: &[u8],
) -> Result<&'a mut StoredStream, StoreError> {
    streams
        .get_mut(&(db, Bytes::copy_from_slice(key)))
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "a record of stream '{}' with no stream record",
                String::from_utf8_lossy(key)
            ))
        })
}
