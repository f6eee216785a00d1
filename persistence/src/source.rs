//! Reading evicted stream nodes back from the `entries` keyspace.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use brooklet_streams::{EntrySource, StoredEntry, StreamId};
use fjall::Keyspace;

use crate::codec::{DELETED, decode_entry};
use crate::keys::{entry_key, read_id, split_prefix};
use crate::latency::{LatencyHook, events};

/// One stream's entries in the store, as its [`EntrySource`].
pub(crate) struct FjallSource {
    pub(crate) entries: Keyspace,
    /// The stream's key prefix (database and key).
    pub(crate) prefix: Vec<u8>,
    /// Bytes of node data a stream may keep in memory besides its tail, shared by every
    /// stream so CONFIG SET reaches them all.
    pub(crate) budget: Arc<AtomicUsize>,
    /// Store-wide counters of reads that missed the streams' memory.
    pub(crate) reads: Arc<CacheMisses>,
}

/// How often streams found the nodes they read in memory, and how often they had to go to
/// disk for entries no longer there (INFO).
#[derive(Debug, Default)]
pub(crate) struct CacheMisses {
    /// Node reads served from memory.
    pub(crate) hits: AtomicU64,
    /// Nodes (or tails at start-up) read back.
    pub(crate) nodes: AtomicU64,
    /// Entries in them.
    pub(crate) entries: AtomicU64,
    /// Where the time of each read from disk is reported.
    pub(crate) latency: Arc<LatencyHook>,
}

impl std::fmt::Debug for FjallSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallSource")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish()
    }
}

impl EntrySource for FjallSource {
    fn load(&self, first: StreamId, last: StreamId) -> Result<Vec<StoredEntry>, String> {
        let from = entry_key(&self.prefix, first);
        let to = entry_key(&self.prefix, last);
        let started = self.reads.latency.start();
        let mut out = Vec::new();
        for kv in self.entries.range(from.as_slice()..=to.as_slice()) {
            let (k, v) = kv.into_inner().map_err(|e| e.to_string())?;
            let id = split_prefix(&k)
                .and_then(|(_, _, rest)| read_id(rest))
                .ok_or("malformed entry key")?;
            let (fields, flags) = decode_entry(&v).map_err(|e| e.to_string())?;
            out.push(StoredEntry {
                id,
                deleted: flags & DELETED != 0,
                fields,
            });
        }
        self.reads.latency.since(events::DISK_READ, started);
        self.reads.nodes.fetch_add(1, Ordering::Relaxed);
        self.reads
            .entries
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    fn budget(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    fn note_hit(&self) {
        self.reads.hits.fetch_add(1, Ordering::Relaxed);
    }
}
