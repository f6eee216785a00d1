//! Recovery: rebuilding every stream from the store at start-up.
//!
//! Records are replayed through `Stream::apply`, the same code that defines what each
//! mutation means, so a reloaded stream is built by the rules that built the original.

use bytes::Bytes;
use hashbrown::HashMap;
use std::time::{Duration, Instant};

use brooklet_streams::{Mutation, Stream, StreamId};

use crate::codec::{DELETED, NEW_NODE, Reader, decode_entry};
use crate::error::StoreError;
use crate::keys::{read_id, split_name, split_prefix};
use crate::store::Keyspaces;

/// A stream found in the store.
pub struct LoadedStream {
    /// Its database.
    pub db: u32,
    /// Its key.
    pub key: Bytes,
    /// Its state.
    pub stream: Stream,
}

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Streams loaded.
    pub streams: u64,
    /// Entries loaded.
    pub entries: u64,
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
}

type StreamMap = HashMap<(u32, Bytes), Stream>;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("malformed {what} key"))
}

/// Loads every stream.
pub(crate) fn load(ks: &Keyspaces) -> Result<(Vec<LoadedStream>, RecoveryReport), StoreError> {
    let started = Instant::now();
    let mut report = RecoveryReport::default();
    let mut streams: StreamMap = HashMap::new();
    let mut metas: HashMap<(u32, Bytes), (StreamId, u64, StreamId)> = HashMap::new();
    for kv in ks.streams.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("stream"))?;
        if !rest.is_empty() {
            return Err(corrupt("stream"));
        }
        let mut r = Reader::new(&v, "stream");
        let last_id = StreamId::new(r.u64()?, r.u64()?);
        let entries_added = r.u64()?;
        let max_deleted_id = StreamId::new(r.u64()?, r.u64()?);
        let key = Bytes::copy_from_slice(key);
        streams.insert((db, key.clone()), Stream::new());
        metas.insert((db, key), (last_id, entries_added, max_deleted_id));
    }
    let mut tombstones: HashMap<(u32, Bytes), Vec<StreamId>> = HashMap::new();
    for kv in ks.entries.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("entry"))?;
        let id = read_id(rest).ok_or_else(|| corrupt("entry"))?;
        let (fields, flags) = decode_entry(&v)?;
        let stream = find(&mut streams, db, key)?;
        stream.apply(&Mutation::EntryAdded {
            id,
            fields,
            new_node: flags & NEW_NODE != 0,
        });
        // Entries past the recorded last-id were added by plain XADDs since the record was
        // written: they advance last-id and entries-added.
        if let Some(meta) = metas.get_mut(&(db, Bytes::copy_from_slice(key)))
            && id > meta.0
        {
            meta.0 = id;
            meta.1 += 1;
        }
        if flags & DELETED != 0 {
            tombstones
                .entry((db, Bytes::copy_from_slice(key)))
                .or_default()
                .push(id);
        } else {
            report.entries += 1;
        }
    }
    // Deletions after every entry is in place: deleting a node's last live entry drops the
    // node, and the entries after it must still find it while they are appended.
    for (k, ids) in tombstones {
        if let Some(s) = streams.get_mut(&k) {
            s.apply(&Mutation::EntriesDeleted { ids });
        }
    }
    // Metadata after entries: replaying an entry refuses IDs at or below last-id.
    for (k, (last_id, entries_added, max_deleted_id)) in metas {
        if let Some(s) = streams.get_mut(&k) {
            s.apply(&Mutation::StreamMeta {
                last_id,
                entries_added,
                max_deleted_id,
            });
        }
    }
    for kv in ks.groups.iter() {
        let (k, v) = kv.into_inner()?;
        let (db, key, rest) = split_prefix(&k).ok_or_else(|| corrupt("group"))?;
        let (group, rest) = split_name(rest).ok_or_else(|| corrupt("group"))?;
        if !rest.is_empty() {
            return Err(corrupt("group"));
        }
        let mut r = Reader::new(&v, "group");
        let last_id = StreamId::new(r.u64()?, r.u64()?);
        let entries_read = r.opt_u64()?;
        let group = Bytes::copy_from_slice(group);
        find(&mut streams, db, key)?.apply(&Mutation::GroupCreated {
            group,
            last_id,
            entries_read,
        });
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
        let mut r = Reader::new(&v, "consumer");
        let seen_time = r.u64()?;
        let active_time = r.opt_u64()?;
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
        let mut r = Reader::new(&v, "pending");
        let consumer = r.bytes()?;
        let delivery_time = r.u64()?;
        let delivery_count = r.u64()?;
        let m = Mutation::PendingUpserted {
            group: Bytes::copy_from_slice(group),
            id,
            consumer,
            delivery_time,
            delivery_count,
        };
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

fn find<'a>(streams: &'a mut StreamMap, db: u32, key: &[u8]) -> Result<&'a mut Stream, StoreError> {
    streams
        .get_mut(&(db, Bytes::copy_from_slice(key)))
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "a record of stream '{}' with no stream record",
                String::from_utf8_lossy(key)
            ))
        })
}
