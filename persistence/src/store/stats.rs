//! The numbers INFO shows.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::Store;

/// Numbers for INFO persistence.
#[derive(Debug, Clone, Copy)]
pub struct StoreStats {
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Unix ms of the last fsync (0 = none).
    pub last_fsync_ms: u64,
    /// fsyncs done since start.
    pub fsyncs: u64,
    /// Batches committed since start.
    pub committed: u64,
    /// Batches known durable.
    pub durable: u64,
    /// Whether writes are refused (a full disk, a failed write or fsync: see [`Store::fault`]).
    pub failed: bool,
    /// Node reads served from the streams' memory.
    pub cache_hits: u64,
    /// Nodes read back from disk because they had left memory.
    pub nodes_read: u64,
    /// Entries in those nodes.
    pub entries_read: u64,
    /// Bytes in the engine's memtables (written, not yet flushed to tables).
    pub memtable_bytes: u64,
    /// Tables (SST files) over all keyspaces.
    pub tables: u64,
    /// Journal files.
    pub journals: u64,
    /// Tail-log segments on disk (the open one included).
    pub tail_segments: u64,
    /// Bytes of the records in the tail log's segments (closed and open).
    pub tail_bytes: u64,
}

impl Store {
    /// Deleted streams whose records are still being removed, and those removed since start
    /// (INFO `lazyfree_pending_objects`, `lazyfreed_objects`).
    pub fn purges(&self) -> (usize, u64) {
        (self.purges.pending(), self.purges.done())
    }

    /// Numbers for INFO.
    pub fn stats(&self) -> StoreStats {
        let (tail_segments, tail_bytes) = self.tail.segments_on_disk();
        StoreStats {
            disk_bytes: dir_bytes(&self.dir),
            last_fsync_ms: self.durability.last_fsync_ms.load(Ordering::Relaxed),
            fsyncs: self.durability.fsyncs.load(Ordering::Relaxed),
            committed: self.durability.committed.load(Ordering::Relaxed),
            durable: self.durability.durable.load(Ordering::Relaxed),
            failed: !self.durability.health.ok(),
            cache_hits: self.misses.hits.load(Ordering::Relaxed),
            nodes_read: self.misses.nodes.load(Ordering::Relaxed),
            entries_read: self.misses.entries.load(Ordering::Relaxed),
            memtable_bytes: self.db.write_buffer_size(),
            tables: [
                &self.ks.meta,
                &self.ks.streams,
                &self.ks.entries,
                &self.ks.nodes,
                &self.ks.groups,
                &self.ks.consumers,
                &self.ks.pending,
            ]
            .iter()
            .map(|ks| ks.table_count() as u64)
            .sum(),
            journals: self.db.journal_count() as u64,
            tail_segments,
            tail_bytes,
        }
    }
}

/// Bytes a file takes on disk (its blocks), which for a sparse file is less than its length.
pub(super) fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.blocks().saturating_mul(512)
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

/// Bytes on disk of every file below `dir`.
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&p),
                Ok(m) => allocated_bytes(&m),
                _ => 0,
            }
        })
        .sum()
}
