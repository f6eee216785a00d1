//! The tail log: plain appends to existing streams, logged here instead of being written into
//! the LSM one entry at a time.
//!
//! An XADD that only appends (to the last node, or opening a new one) is the hottest write
//! there is, and inserting each such entry into fjall (a journal record plus a memtable
//! insert, then flushes and compactions) cost most of its time. Such appends are instead
//! encoded into this log's buffer, which reaches the operating system before the reply and
//! the disk under the fsync policy, like any batch. The entries go into fjall later, in one
//! batch: with the next change to the stream that is not a plain append (XDEL, a trim, a group
//! change), or when the checkpoint retires the segment they are in.
//!
//! A segment is retired (deleted) once every stream with appends in it has written them into
//! fjall and fjall is synced. Replay at start-up applies a logged append only to the same
//! life of its stream (its incarnation) and only past the stream's last ID in fjall, so an
//! append written since, or one of a stream deleted since, is never applied twice.
//!
//! The first append to a new stream creates it here too (flag 2), with the stream's number
//! (incarnation), so that creating streams costs no fjall batch each (see
//! `docs/performance.md`, Storage). Replay creates such a stream
//! unless fjall has the key or a deletion since killed that life of it: DEL and FLUSH leave
//! a floor (see `Store::delete_stream`) below which logged creations of the key are dead,
//! as long as a segment holding creations is not retired.
//!
//! A change to consumer groups alone (XREADGROUP, XACK, XCLAIM, ...) of a stream fjall holds
//! is logged here too (flag 4), as the list of its changes: committed to fjall one by one,
//! those batches waited for fjall's journal lock, which its flush worker holds through an
//! fsync of the journal. The stream names the group, consumer and pending records changed
//! (`DirtyGroups`, in [`crate::StoredStream`]); the checkpoint, or the stream's next fjall batch, writes
//! them as memory has them then. Replay applies every logged group change of the stream's
//! life again, in order: each sets a record to a value or removes it (destroying a group
//! removes all of its own), so applying them over records that already hold some of them
//! ends in the same state.
//!
//! A command that sets strings or key deadlines (SET, MSET, INCR, APPEND, EXPIRE,
//! PERSIST...) is one record too (flag 0x80, format 9; see [`strings`]): each change a whole
//! value or, for APPEND, the bytes added at a known length, so the last record for a key
//! wins at replay. The segment lists the keys; the checkpoint writes them into fjall as
//! memory has them then.
//!
//! Record: payload length (u32), checksum of the payload (u64), payload: db (u32), key
//! (u32 length + bytes), incarnation (u64), flags (u8: 1 = the entry opened a node, 2 = it
//! created the stream, 4 = group changes), then for an append its ID ms and seq (u64 each),
//! field count (u32), then each field and value (u32 length + bytes); for group changes
//! their count (u32), then each as a tag byte and its fields (see `record::put_group_change`).
//! Integers are little-endian. A record whose length or checksum does not hold ends its
//! segment (a write torn by a crash).

mod key_set;
mod legacy;
mod record;
mod replay;
mod segment;
mod strings;
#[cfg(test)]
mod tests;

pub use record::Record;
pub use replay::ReplayReport;
pub use strings::{Deadline, StringEdit, StringOp, ValueChange};

use bytes::Bytes;
use hashbrown::HashSet;
use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use brooklet_streams::{IdmpConfig, Mutation, StreamId};

use record::{
    CREATED, GROUP_CHANGES, HEADER, OPENED_NODE, SHARED_ENCODING, STRINGS, checksum, put_append,
    put_group_changes, put_head,
};
use replay::replay;
use segment::{Segment, create_segment, rotate, segment_path, write_buffer};

/// A segment past this many bytes is closed and a new one started; closed ones are retired
/// by the checkpoint once they hold [`CHECKPOINT_BYTES`]. Smaller segments mean more,
/// smaller checkpoints, which cost XADD throughput.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes of closed segments the background checkpoint waits for before it writes their
/// appends into fjall, as Redis waits for its AOF to reach `auto-aof-rewrite-min-size` (64
/// MB) before rewriting it: a burst of appends costs one write to the log each, and the
/// checkpoint's work (encoding, fjall's journal and memtable, compaction) comes later, in
/// fewer and larger batches. The cost: a restart after a crash replays up to this much
/// more of the log, and the appends not yet checkpointed stay in memory.
/// SAVE and SHUTDOWN checkpoint every append logged.
pub const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// Why [`TailLog::sync`] failed: a write (the buffer is kept and written again next time) or
/// an fsync (what it covered may be lost).
#[derive(Debug)]
pub enum SyncFailure {
    /// Handing the buffer to the operating system failed.
    Write(std::io::Error),
    /// An fsync failed.
    Fsync(std::io::Error),
}

/// A stream named by database and key.
pub type StreamName = (u32, Bytes);

/// The key sets of the segments a checkpoint retires ([`TailLog::stale_strings`]).
#[derive(Default)]
pub struct StaleStrings(Vec<Arc<key_set::KeySet>>);

impl StaleStrings {
    /// Every key once, borrowed (a clone of each would give it a shared reference count).
    pub fn names(&self) -> Vec<&StreamName> {
        let mut out = Vec::new();
        for (i, set) in self.0.iter().enumerate() {
            let earlier = &self.0[..i];
            out.extend(
                set.iter()
                    .filter(|(db, key)| !earlier.iter().any(|e| e.contains(*db, key))),
            );
        }
        out
    }
}

/// The log: a buffer of records not yet handed to the OS, and the open segment.
pub struct TailLog {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Size at which a segment is closed ([`SEGMENT_BYTES`] unless changed).
    segment_limit: AtomicU64,
    /// Bytes the closed segments hold before [`TailLog::stale`] names them
    /// ([`CHECKPOINT_BYTES`] unless changed).
    checkpoint_bytes: AtomicU64,
    /// Held through a whole sync, so a sync that returns has seen every earlier one's files
    /// reach the disk (two syncs could otherwise split the closed segments between them).
    syncing: Mutex<()>,
    /// Held by [`TailLog::retire`] through its unlinks and by [`TailLog::replay_again`]
    /// through its reads, so that a replay reads the segments a retirement removes all or
    /// none. Either way it replays every record logged after some point, which is what
    /// re-applying group changes over fjall's newer records needs: with a segment left out
    /// between two it read, a change would stay in force without the later one that undid it
    /// (an acknowledged entry pending again, a group's last-delivered ID moved back).
    retiring: Mutex<()>,
}

struct Inner {
    buf: Vec<u8>,
    /// The open segment (shared so a sync can run without holding the lock).
    file: Arc<File>,
    /// Bytes of the open segment handed to the OS: where the next write goes.
    written: u64,
    /// Segments closed since the last sync, and whether the directory gained a name since:
    /// the next sync covers them, outside the lock, so no append waits on an fsync.
    unsynced: Vec<Arc<File>>,
    dir_unsynced: bool,
    segment: u64,
    segment_bytes: u64,
    /// Per segment not yet retired, oldest first (the open one last).
    dirty: VecDeque<Segment>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TailLog {
    /// Opens the log in `dir`, replaying what it holds through `apply`, and starts a new
    /// segment for what comes next.
    ///
    /// # Errors
    /// When the directory or a segment cannot be read or the new segment created.
    pub fn open(
        dir: &Path,
        apply: &mut dyn FnMut(Record<'_>) -> bool,
    ) -> std::io::Result<(TailLog, ReplayReport)> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            // The new directory's name must survive a crash, or its segments could vanish.
            if let Some(parent) = dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        let mut report = ReplayReport::default();
        let mut dirty: VecDeque<_> = replay(dir, apply, &mut report)?.into();
        let segment = dirty.back().map_or(1, |s| s.n + 1);
        let file = create_segment(dir, segment, SEGMENT_BYTES)?;
        dirty.push_back(Segment::new(segment));
        let log = TailLog {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                buf: Vec::with_capacity(segment::BUF_START),
                file: Arc::new(file),
                written: 0,
                unsynced: Vec::new(),
                dir_unsynced: true,
                segment,
                segment_bytes: 0,
                dirty,
            }),
            segment_limit: AtomicU64::new(SEGMENT_BYTES),
            checkpoint_bytes: AtomicU64::new(CHECKPOINT_BYTES),
            syncing: Mutex::new(()),
            retiring: Mutex::new(()),
        };
        Ok((log, report))
    }

    /// Replays every segment again (DEBUG RELOAD), after handing the buffer to the OS.
    ///
    /// # Errors
    /// When a segment cannot be read or the buffer written.
    pub fn replay_again(
        &self,
        apply: &mut dyn FnMut(Record<'_>) -> bool,
    ) -> std::io::Result<ReplayReport> {
        let _retiring = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
        self.write_out()?;
        let mut report = ReplayReport::default();
        replay(&self.dir, apply, &mut report)?;
        Ok(report)
    }

    /// Logs one append to stream `key`, to its last node or opening a new one, or creating the
    /// stream, with the IDMP addition it made and a created stream's IDMP settings (not yet in the OS's hands: see [`TailLog::write_out`]). `seen` is the segment
    /// the stream's previous
    /// append went to, as this call returned it (0 if unknown): the stream is listed among the
    /// segment's streams only when that changes. Returns the segment the append went to.
    ///
    /// # Errors
    /// When closing a full segment or opening the next one fails.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &self,
        db: u32,
        key: &[u8],
        incarnation: u64,
        new_node: bool,
        creates: bool,
        id: StreamId,
        fields: &[Bytes],
        idmp: Option<&Mutation>,
        idmp_config: Option<IdmpConfig>,
        seen: u64,
    ) -> std::io::Result<u64> {
        let mut flags = SHARED_ENCODING;
        if new_node {
            flags |= OPENED_NODE;
        }
        if creates {
            flags |= CREATED;
        }
        let min_created = if creates { incarnation } else { u64::MAX };
        self.log(db, key, incarnation, flags, seen, min_created, |buf| {
            put_append(buf, id, fields, new_node, idmp, idmp_config);
        })
    }

    /// Logs a change to stream `key`'s consumer groups alone (`changes`, all of them group
    /// changes); `seen` and the result as for [`TailLog::append`].
    ///
    /// # Errors
    /// When closing a full segment or opening the next one fails.
    pub fn log_group_changes(
        &self,
        db: u32,
        key: &[u8],
        incarnation: u64,
        changes: &[Mutation],
        seen: u64,
    ) -> std::io::Result<u64> {
        let flags = GROUP_CHANGES | SHARED_ENCODING;
        self.log(db, key, incarnation, flags, seen, u64::MAX, |buf| {
            put_group_changes(buf, changes);
        })
    }

    /// Logs one command's changes to strings and key deadlines of database `db` (`ops`,
    /// `count` of them) as one record numbered `number` (see [`strings`]). The keys are
    /// listed among the open segment's strings, for the checkpoint.
    ///
    /// # Errors
    /// As for [`TailLog::append`].
    pub fn log_strings<'a, I>(
        &self,
        db: u32,
        number: u64,
        count: usize,
        ops: I,
    ) -> std::io::Result<u64>
    where
        I: Iterator<Item = StringOp<'a>> + Clone,
    {
        let flags = STRINGS | SHARED_ENCODING;
        let listed = ops.clone();
        self.log_then(
            db,
            &[],
            number,
            flags,
            number,
            |buf| strings::put_strings(buf, count, ops),
            |open| {
                let keys = Arc::make_mut(&mut open.strings);
                for op in listed {
                    keys.insert(db, op.key());
                }
            },
        )
    }

    /// Frames one record, whose body `body` writes, and lists its stream among the open
    /// segment's; `min_created` is the incarnation it created (`u64::MAX`: none).
    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        db: u32,
        key: &[u8],
        incarnation: u64,
        flags: u8,
        seen: u64,
        min_created: u64,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> std::io::Result<u64> {
        self.log_then(db, key, incarnation, flags, min_created, body, |open| {
            if seen != open.n && !open.streams.contains(&Probe(db, key)) {
                open.streams.insert((db, Bytes::copy_from_slice(key)));
            }
        })
    }

    /// Frames one record, whose body `body` writes; `list` then names what it changed in
    /// the open segment. `min_created` is the lowest number a floor must cover while the
    /// segment is there (`u64::MAX`: none).
    #[allow(clippy::too_many_arguments)]
    fn log_then(
        &self,
        db: u32,
        key: &[u8],
        incarnation: u64,
        flags: u8,
        min_created: u64,
        body: impl FnOnce(&mut Vec<u8>),
        list: impl FnOnce(&mut Segment),
    ) -> std::io::Result<u64> {
        let mut g = lock(&self.inner);
        let inner = &mut *g;
        let start = inner.buf.len();
        inner.buf.extend_from_slice(&[0; HEADER]);
        put_head(&mut inner.buf, db, key, incarnation, flags);
        body(&mut inner.buf);
        let payload_len = inner.buf.len() - start - HEADER;
        let sum = checksum(&inner.buf[start + HEADER..]);
        inner.buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        inner.buf[start + 4..start + HEADER].copy_from_slice(&sum.to_le_bytes());
        inner.segment_bytes += (payload_len + HEADER) as u64;
        let segment = inner.segment;
        if let Some(open) = inner.dirty.back_mut() {
            open.min_created = open.min_created.min(min_created);
            list(open);
        }
        let limit = self.segment_limit.load(Ordering::Relaxed);
        if inner.segment_bytes >= limit
            && let Err(e) = rotate(&self.dir, inner, limit)
        {
            // The record is logged all the same: the open segment takes it (and the next
            // ones, past its allocated size) until a segment can be opened again, which the
            // next append tries. Writes are refused well before a full disk gets here.
            tracing::warn!("could not open the next tail-log segment: {e}");
        }
        Ok(segment)
    }

    /// The size at which a segment is closed.
    pub fn segment_limit(&self) -> u64 {
        self.segment_limit.load(Ordering::Relaxed)
    }

    /// Closes segments at `bytes` from now on.
    pub fn set_segment_limit(&self, bytes: u64) {
        self.segment_limit.store(bytes.max(1), Ordering::Relaxed);
    }

    /// Leaves closed segments to the checkpoint once they hold `bytes` (0: each at once).
    pub fn set_checkpoint_bytes(&self, bytes: u64) {
        self.checkpoint_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Closes the open segment if it holds anything, so the next checkpoint covers every
    /// append logged so far (SAVE).
    ///
    /// # Errors
    /// When writing it out or opening the next segment fails.
    pub fn close_segment(&self) -> std::io::Result<()> {
        let mut g = lock(&self.inner);
        if g.segment_bytes == 0 {
            return Ok(());
        }
        rotate(
            &self.dir,
            &mut g,
            self.segment_limit.load(Ordering::Relaxed),
        )
    }

    /// Hands every buffered record to the operating system (one write).
    ///
    /// # Errors
    /// When the write fails.
    pub fn write_out(&self) -> std::io::Result<()> {
        write_buffer(&mut lock(&self.inner))
    }

    /// Writes out and fsyncs the open segment, the segments closed since the last sync, and
    /// the directory if it gained a segment. Only the write holds the lock.
    ///
    /// # Errors
    /// When the write or an fsync fails (a failed write keeps the buffer for the next).
    pub fn sync(&self) -> Result<(), SyncFailure> {
        let _syncing = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let (files, dir_too) = {
            let mut g = lock(&self.inner);
            let inner = &mut *g;
            write_buffer(inner).map_err(SyncFailure::Write)?;
            let mut files = std::mem::take(&mut inner.unsynced);
            files.push(inner.file.clone());
            (files, std::mem::take(&mut inner.dir_unsynced))
        };
        for f in files {
            f.sync_data().map_err(SyncFailure::Fsync)?;
        }
        if dir_too {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(SyncFailure::Fsync)?;
        }
        Ok(())
    }

    /// The closed segments not yet retired: the newest one's number and every stream with
    /// appends in them, or None when only the open segment holds appends, or (unless `all`)
    /// when the closed ones hold fewer bytes than the checkpoint waits for.
    pub fn stale(&self, all: bool) -> Option<(u64, Vec<StreamName>)> {
        let g = lock(&self.inner);
        let closed = g.dirty.iter().take(g.dirty.len().saturating_sub(1));
        let upto = closed.clone().map(|s| s.n).max()?;
        let bytes: u64 = closed.clone().map(|s| s.bytes).sum();
        if !all && bytes < self.checkpoint_bytes.load(Ordering::Relaxed) {
            return None;
        }
        let mut names: HashSet<StreamName> = HashSet::new();
        for s in closed {
            names.extend(s.streams.iter().cloned());
        }
        Some((upto, names.into_iter().collect()))
    }

    /// The keys whose strings or deadlines the segments up to `upto` set (the checkpoint
    /// writes them as memory has them before it retires those segments). The closed
    /// segments' sets are shared, not copied, under the lock every write takes.
    pub fn stale_strings(&self, upto: u64) -> StaleStrings {
        let g = lock(&self.inner);
        StaleStrings(
            g.dirty
                .iter()
                .filter(|s| s.n <= upto && s.n != g.segment)
                .map(|s| s.strings.clone())
                .collect(),
        )
    }

    /// Whether a segment not yet retired holds a string record of key `key` of `db` (a
    /// deletion of the string must then leave a floor over it).
    pub fn has_strings(&self, db: u32, key: &[u8]) -> bool {
        let g = lock(&self.inner);
        g.dirty.iter().any(|s| s.strings.contains(db, key))
    }

    /// Whether the closed segments hold the bytes the background checkpoint waits for
    /// (what [`TailLog::stale`] checks unless `all`).
    pub fn checkpoint_due(&self) -> bool {
        let g = lock(&self.inner);
        let closed = g.dirty.len().saturating_sub(1);
        let bytes: u64 = g.dirty.iter().take(closed).map(|s| s.bytes).sum();
        closed > 0 && bytes >= self.checkpoint_bytes.load(Ordering::Relaxed)
    }

    /// The lowest incarnation of a stream created, or number of a string record, in a
    /// segment not yet retired (`u64::MAX`: none), so a deletion knows whether it must
    /// leave a floor.
    pub fn oldest_creation(&self) -> u64 {
        let g = lock(&self.inner);
        g.dirty
            .iter()
            .map(|s| s.min_created)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Deletes the closed segments up to `upto`: call once every stream [`TailLog::stale`]
    /// named has written its appends into fjall and fjall is synced. Returns
    /// [`TailLog::oldest_creation`] as the segments left have it.
    ///
    /// # Errors
    /// When a file cannot be removed.
    pub fn retire(&self, upto: u64) -> std::io::Result<u64> {
        let retiring = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
        let mut retired = Vec::new();
        let oldest = {
            let mut g = lock(&self.inner);
            while let Some(s) = g.dirty.front() {
                if s.n > upto || s.n == g.segment {
                    break;
                }
                retired.push(s.n);
                g.dirty.pop_front();
            }
            g.dirty
                .iter()
                .map(|s| s.min_created)
                .min()
                .unwrap_or(u64::MAX)
        };
        // Unlinked after the lock is released: an unlink can take milliseconds (ext4 mounted
        // with `discard` trims the freed blocks), and every XADD waits for this lock.
        for n in retired {
            match std::fs::remove_file(segment_path(&self.dir, n)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        drop(retiring);
        // The caller drops the deletion floors these segments needed next: were the unlinks
        // lost in a power failure, replay would find creations no floor covers any more.
        // Every time, not only after an unlink: an earlier call's fsync may have failed.
        File::open(&self.dir)?.sync_all()?;
        Ok(oldest)
    }

    /// Segments on disk and the bytes of their records (INFO).
    pub fn segments_on_disk(&self) -> (u64, u64) {
        let g = lock(&self.inner);
        let closed: u64 = g.dirty.iter().map(|s| s.bytes).sum();
        (g.dirty.len() as u64, closed + g.segment_bytes)
    }
}

impl Drop for TailLog {
    /// Gives the open segment back its unwritten room, so a restart reads only its records.
    fn drop(&mut self) {
        let g = lock(&self.inner);
        let _ = g.file.set_len(g.written);
    }
}

/// A borrowed stream name, to look up maps keyed by [`StreamName`] without allocating (an
/// append probes the dirty set; replay finds each record's stream). Hashes as `(u32, Bytes)`
/// does.
#[derive(Hash)]
pub(crate) struct Probe<'a>(pub u32, pub &'a [u8]);

impl hashbrown::Equivalent<StreamName> for Probe<'_> {
    fn equivalent(&self, k: &StreamName) -> bool {
        self.0 == k.0 && self.1 == &k.1[..]
    }
}
