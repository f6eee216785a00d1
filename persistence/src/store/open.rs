//! Opening the data directory: the engine, the format check, unfinished purges, the
//! streams' metadata, then the tail log's replay.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions};

use crate::durability::{Durability, FsyncPolicy};
use crate::error::StoreError;
use crate::latency::LatencyHook;
use crate::load::{LoadedStream, RecoveryReport};
use crate::purge::Purges;
use crate::source::CacheMisses;
use crate::tail_log::TailLog;

use super::replay::Replayer;
use super::stats::allocated_bytes;
use super::{DEFAULT_STREAM_CACHE_BYTES, FORMAT_VERSION, Keyspaces, Store};

/// Block cache for reads that miss memory: nodes evicted from the streams' own caches, trims
/// and start-up. Recent entries are served from the streams' memory, so this stays small.
const BLOCK_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Largest memtable per keyspace before it is flushed to a table. fjall's default (64 MiB per
/// keyspace) would hold a second, much less compact copy of recent entries in memory.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

/// fjall's smallest cap on journal bytes (its default is 512 MiB). Every journal byte is
/// replayed at start-up, so the less of it, the faster a restart. Past the cap, fjall's own
/// worker flushes the keyspaces that pin the oldest journal (the small ones, stream and node
/// records, fill their memtables too slowly to be flushed otherwise); flushing them from our
/// own thread stalls fjall's flush worker (see `docs/performance.md`, Storage).
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store in `dir`, recovers it, and returns every stream in it.
    ///
    /// # Errors
    /// When the directory is locked by another process, was written by a newer format, or
    /// cannot be read.
    pub fn open(
        dir: &Path,
        policy: FsyncPolicy,
    ) -> Result<(Store, Vec<LoadedStream>, RecoveryReport), StoreError> {
        std::fs::create_dir_all(dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("brooklet.lock"))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(dir.to_path_buf()));
        }
        let engine_dir = dir.join("fjall");
        let journals_before = journal_sizes(&engine_dir);
        let opening = std::time::Instant::now();
        // Three background workers. With one, fjall deadlocks under sustained writes: every
        // commit past the memtable limit queues a rotation request (up to the queue's 1000),
        // and the worker rotating the memtable then blocks sending itself a flush message
        // into that full queue; memtables then grow without bound. With more than one,
        // worker 0 only flushes: it hands every compaction request back to the queue and
        // takes it again at once until another worker is free. Each flush queues one
        // request per worker, so with two, worker 0 spins through every compaction the other
        // runs; with three, a second compactor usually takes it.
        let db = Database::builder(&engine_dir)
            .worker_threads(3)
            .cache_size(BLOCK_CACHE_BYTES)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StoreError::Locked(dir.to_path_buf()),
                fjall::Error::InvalidVersion(v) => StoreError::Corrupt(format!(
                    "the storage engine does not recognise the format of {} ({v:?})",
                    engine_dir.display()
                )),
                other => StoreError::Engine(other),
            })?;
        let engine_open = opening.elapsed();
        let journals_after = journal_sizes(&engine_dir);
        // LZ4 at every level: fjall compresses only from level 2 down by default, and most of
        // a stream's entries sit in levels 0 and 1.
        let open = |name: &str| {
            db.keyspace(name, || {
                let opts = KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4));
                // Entries are read by key range, and looked up one by one only where memory
                // says they exist (XDEL): a filter, built by hashing every key at every flush
                // and compaction, would never spare a read. Strings and deadlines are only
                // ever read whole, at start-up.
                if matches!(name, "entries" | "strings" | "expires") {
                    opts.filter_policy(fjall::config::FilterPolicy::disabled())
                } else {
                    opts
                }
            })
        };
        let ks = Keyspaces {
            meta: open("meta")?,
            streams: open("streams")?,
            entries: open("entries")?,
            nodes: open("nodes")?,
            groups: open("groups")?,
            consumers: open("consumers")?,
            pending: open("pending")?,
            strings: open("strings")?,
            expires: open("expires")?,
        };
        check_format(&ks.meta)?;
        // Deletions' purges end before anything is loaded (their streams' records would be
        // orphans); trims' go on in the background (loading skips what they remove).
        let (trims, left): (Vec<_>, Vec<_>) = crate::purge::pending(&ks)?
            .into_iter()
            .partition(|p| p.trim.is_some());
        if !left.is_empty() {
            let purging = std::time::Instant::now();
            for prefix in &left {
                crate::purge::purge(&ks, &db, prefix, &|| false, &|| {})?;
            }
            tracing::info!(
                "removed the records of {} deleted streams the last run left in {:?}",
                left.len(),
                purging.elapsed()
            );
        }
        let cache_budget = Arc::new(AtomicUsize::new(DEFAULT_STREAM_CACHE_BYTES));
        let latency = Arc::new(LatencyHook::default());
        let misses = Arc::new(CacheMisses {
            latency: latency.clone(),
            ..CacheMisses::default()
        });
        let (streams, mut report) = crate::load::load(&ks, &cache_budget, &misses)?;
        let mut replayer = Replayer::new(&ks, &cache_budget, &misses, streams)?;
        let (tail, replayed) = TailLog::open(&dir.join("tail"), &mut |a| replayer.apply(a))?;
        report.note_tail(&replayed);
        // A new stream's number must clear every floor left: one below it would be dead.
        let next_incarnation = (report.max_incarnation + 1).max(replayer.max_floor());
        let streams = replayer.finish(&mut report);
        // A journal the engine cut short at recovery lost a torn tail; journals it deleted
        // (already flushed into tables) lost nothing.
        report.torn_journal_bytes = journals_before
            .iter()
            .filter_map(|(path, before)| {
                journals_after
                    .iter()
                    .find(|(p, _)| p == path)
                    .map(|(_, after)| before.saturating_sub(*after))
            })
            .sum();
        report.journal_replayed_bytes = journals_before.iter().map(|(_, n)| n).sum();
        report.engine_open = engine_open;
        let tail = Arc::new(tail);
        let durability = Durability::new(policy, tail.clone(), &engine_dir, latency);
        let syncer = {
            let d = durability.clone();
            let db = db.clone();
            std::thread::Builder::new()
                .name("brooklet-fsync".into())
                .spawn(move || d.run(db))?
        };
        let purges = Arc::new(Purges::default());
        for trim in trims {
            purges.add(trim);
        }
        let purgers =
            crate::purge::spawn(purges.clone(), ks.clone(), db.clone(), durability.clone())?;
        let store = Store {
            db,
            ks,
            durability,
            syncer: Some(syncer),
            dir: dir.to_path_buf(),
            cache_budget,
            misses,
            tail,
            next_incarnation: AtomicU64::new(next_incarnation),
            committing: Mutex::new(()),
            checkpointing: Mutex::new(()),
            floors: Mutex::new(()),
            untracked: Mutex::default(),
            purges,
            purgers,
            _lock: lock,
        };
        Ok((store, streams, report))
    }

    /// Loads every stream from the store again (DEBUG RELOAD).
    ///
    /// # Errors
    /// When a record cannot be read or decoded.
    pub fn load_all(&self) -> Result<(Vec<LoadedStream>, RecoveryReport), StoreError> {
        // A stream being purged has no stream record, and its other records would look
        // like orphans.
        self.purges.wait_all();
        let (streams, mut report) = crate::load::load(&self.ks, &self.cache_budget, &self.misses)?;
        let mut replayer = Replayer::new(&self.ks, &self.cache_budget, &self.misses, streams)?;
        let replayed = self.tail.replay_again(&mut |a| replayer.apply(a))?;
        report.note_tail(&replayed);
        Ok((replayer.finish(&mut report), report))
    }
}

pub(super) fn check_format(meta: &Keyspace) -> Result<(), StoreError> {
    match meta.get("format")? {
        None => {
            meta.insert("format", FORMAT_VERSION.to_be_bytes())?;
            Ok(())
        }
        Some(v) => {
            let found = crate::keys::read_u32(&v, 0)
                .ok_or_else(|| StoreError::Corrupt("format record".into()))?;
            if found > FORMAT_VERSION {
                return Err(StoreError::NewerFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            if (3..FORMAT_VERSION).contains(&found) {
                meta.insert("format", FORMAT_VERSION.to_be_bytes())?;
                return Ok(());
            }
            if found < FORMAT_VERSION {
                return Err(StoreError::OlderFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
    }
}

/// Every journal file below `dir` with the bytes written to it. fjall sizes a new journal at
/// 64 MiB before writing to it and cuts it to its last complete batch at recovery, so the
/// file's length says nothing of what was written: the written end is found as the end of its
/// last non-zero byte.
pub(super) fn journal_sizes(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if p.extension().is_some_and(|x| x == "jnl") => {
                    let end = written_end(&p, &m).unwrap_or(m.len());
                    out.push((p, end));
                }
                _ => {}
            }
        }
    }
    out
}

/// Where the last non-zero byte of a file ends. The search starts at the end of the blocks the
/// file has on disk when that is short of its length (the pre-sized part of a journal is a
/// hole), so it reads a block or two, not 64 MiB of zeros.
pub(super) fn written_end(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const STEP: u64 = 64 * 1024;
    let mut end = meta.len().min(allocated_bytes(meta));
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; STEP as usize];
    while end > 0 {
        let start = end.saturating_sub(STEP);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}
