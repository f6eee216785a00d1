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
//! (incarnation), so that creating streams costs no fjall batch each (XADD to 10,000 new
//! streams spent 13% of the server's CPU in fjall's memtable). Replay creates such a stream
//! unless fjall has the key or a deletion since killed that life of it: DEL and FLUSH leave
//! a floor (see `Store::delete_stream`) below which logged creations of the key are dead,
//! as long as a segment holding creations is not retired.
//!
//! A change to consumer groups alone (XREADGROUP, XACK, XCLAIM, ...) of a stream fjall holds
//! is logged here too (flag 4), as the list of its changes: committed to fjall one by one,
//! those batches waited for fjall's journal lock, which its flush worker holds through an
//! fsync of the journal (15-50 ms here, several times a second under benches/consume), and
//! took a fifth of the server's CPU there. The stream names the group, consumer and pending
//! records changed (`DirtyGroups`); the checkpoint, or the stream's next fjall batch, writes
//! them as memory has them then. Replay applies every logged group change of the stream's
//! life again, in order: each sets a record to a value or removes it (destroying a group
//! removes all of its own), so applying them over records that already hold some of them
//! ends in the same state.
//!
//! Record: payload length (u32), checksum of the payload (u64), payload: db (u32), key
//! (u32 length + bytes), incarnation (u64), flags (u8: 1 = the entry opened a node, 2 = it
//! created the stream, 4 = group changes), then for an append its ID ms and seq (u64 each),
//! field count (u32), then each field and value (u32 length + bytes); for group changes
//! their count (u32), then each as a tag byte and its fields (see `put_group_change`).
//! Integers are little-endian. A record whose length or checksum does not hold ends its
//! segment (a write torn by a crash).

use bytes::Bytes;
use hashbrown::HashSet;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use brooklet_streams::{Mutation, StreamId};

/// A segment past this many bytes is closed and a new one started; closed ones are retired
/// by the checkpoint once they hold [`CHECKPOINT_BYTES`]. When the checkpoint ran for each
/// closed segment, smaller segments cost XADD throughput (more, smaller checkpoints): XADD
/// -P16 to 10,000 streams ran at 110k-155k/s with 4 MiB, 170k-180k with 8 MiB, 171k-209k
/// with 16 MiB.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes of closed segments the background checkpoint waits for before it writes their
/// appends into fjall, as Redis waits for its AOF to reach `auto-aof-rewrite-min-size` (64
/// MB) before rewriting it: a burst of appends costs one write to the log each, and the
/// checkpoint's work (encoding, fjall's journal and memtable, compaction) comes later, in
/// fewer and larger batches. XADD -P16 to 10,000 streams: 195k/s with no checkpoint during
/// the run, against 144k-177k with one per 8 MiB segment (the checkpoint took 32% of the
/// server's CPU). The cost: a restart after a crash replays up to this much more of the log
/// (after SIGKILL, 800,000 small appends in 62 MB took 330-340 ms until PING), and the
/// appends not yet checkpointed stay in memory.
/// SAVE and SHUTDOWN checkpoint every append logged.
pub const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

const HEADER: usize = 12;

/// One logged append, as replay sees it.
pub struct Append<'a> {
    /// The stream's database.
    pub db: u32,
    /// The stream's key.
    pub key: &'a [u8],
    /// Which life of the key the stream was.
    pub incarnation: u64,
    /// Whether the entry opened a node.
    pub new_node: bool,
    /// Whether the entry created the stream.
    pub creates: bool,
    /// The entry's ID.
    pub id: StreamId,
    /// Fields and values, flattened.
    pub fields: Vec<Bytes>,
}

/// One logged change to a stream's consumer groups alone.
pub struct GroupChanges<'a> {
    /// The stream's database.
    pub db: u32,
    /// The stream's key.
    pub key: &'a [u8],
    /// Which life of the key the stream was.
    pub incarnation: u64,
    /// The changes, in order.
    pub changes: Vec<Mutation>,
}

/// A record, as replay sees it.
pub enum Record<'a> {
    /// An append (perhaps creating its stream).
    Append(Append<'a>),
    /// Changes to consumer groups.
    Groups(GroupChanges<'a>),
}

/// A stream named by database and key.
pub type StreamName = (u32, Bytes);

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

/// A segment not yet retired.
struct Segment {
    /// Its number.
    n: u64,
    /// The streams with appends in it.
    streams: HashSet<StreamName>,
    /// Bytes of its records (0 for the open segment until it closes).
    bytes: u64,
    /// The lowest incarnation of a stream it created (`u64::MAX`: none).
    min_created: u64,
}

impl Segment {
    fn new(n: u64) -> Self {
        Segment {
            n,
            streams: HashSet::new(),
            bytes: 0,
            min_created: u64::MAX,
        }
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:012}.log"))
}

/// Existing segments, oldest first.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// A checksum for torn-write detection (not against tampering): eight bytes at a time.
fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }
    for &x in chunks.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 31)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_u64(out, id.ms);
    put_u64(out, id.seq);
}

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_u64(out, v);
        }
        None => out.push(0),
    }
}

/// Encodes one group change: a tag (1 group created, 2 updated, 3 destroyed, 4 consumer
/// upserted, 5 deleted, 6 pending entry upserted, 7 removed), then its fields in order.
/// Other kinds of change are never logged this way and write nothing.
fn put_group_change(out: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::GroupCreated {
            group,
            last_id,
            entries_read,
        }
        | Mutation::GroupUpdated {
            group,
            last_id,
            entries_read,
        } => {
            out.push(if matches!(m, Mutation::GroupCreated { .. }) {
                1
            } else {
                2
            });
            put_bytes(out, group);
            put_id(out, *last_id);
            put_opt_u64(out, *entries_read);
        }
        Mutation::GroupDestroyed { group } => {
            out.push(3);
            put_bytes(out, group);
        }
        Mutation::ConsumerUpserted {
            group,
            consumer,
            seen_time,
            active_time,
        } => {
            out.push(4);
            put_bytes(out, group);
            put_bytes(out, consumer);
            put_u64(out, *seen_time);
            put_opt_u64(out, *active_time);
        }
        Mutation::ConsumerDeleted { group, consumer } => {
            out.push(5);
            put_bytes(out, group);
            put_bytes(out, consumer);
        }
        Mutation::PendingUpserted {
            group,
            id,
            consumer,
            delivery_time,
            delivery_count,
        } => {
            out.push(6);
            put_bytes(out, group);
            put_id(out, *id);
            put_bytes(out, consumer);
            put_u64(out, *delivery_time);
            put_u64(out, *delivery_count);
        }
        Mutation::PendingRemoved { group, id } => {
            out.push(7);
            put_bytes(out, group);
            put_id(out, *id);
        }
        _ => {}
    }
}

/// Reads records from the front of `buf`.
struct Parser {
    buf: Bytes,
    pos: usize,
}

impl Parser {
    fn u32(&mut self) -> Option<u32> {
        let v = u32::from_le_bytes(self.buf.get(self.pos..self.pos + 4)?.try_into().ok()?);
        self.pos += 4;
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let v = u64::from_le_bytes(self.buf.get(self.pos..self.pos + 8)?.try_into().ok()?);
        self.pos += 8;
        Some(v)
    }

    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        let b = self.buf.slice(self.pos..end);
        self.pos = end;
        Some(b)
    }

    /// The next whole, intact record's payload, or None at the end or at a torn record.
    fn record(&mut self) -> Option<Parser> {
        let len = self.u32()? as usize;
        let sum = self.u64()?;
        let end = self.pos.checked_add(len)?;
        let payload = self.buf.get(self.pos..end)?;
        if checksum(payload) != sum {
            return None;
        }
        let p = Parser {
            buf: self.buf.slice(self.pos..end),
            pos: 0,
        };
        self.pos = end;
        Some(p)
    }

    fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    /// A record's head: db, key, incarnation and flags.
    fn head(&mut self) -> Option<(u32, Bytes, u64, u8)> {
        Some((self.u32()?, self.bytes()?, self.u64()?, self.u8()?))
    }

    /// An append's ID and fields.
    fn append(&mut self) -> Option<(StreamId, Vec<Bytes>)> {
        let id = self.id()?;
        let n = self.u32()? as usize;
        let mut fields = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            fields.push(self.bytes()?);
        }
        Some((id, fields))
    }

    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.u64()?, self.u64()?))
    }

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            _ => Some(Some(self.u64()?)),
        }
    }

    /// Group changes, as `put_group_change` wrote them.
    fn group_changes(&mut self) -> Option<Vec<Mutation>> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let m = match self.u8()? {
                1 => Mutation::GroupCreated {
                    group: self.bytes()?,
                    last_id: self.id()?,
                    entries_read: self.opt_u64()?,
                },
                2 => Mutation::GroupUpdated {
                    group: self.bytes()?,
                    last_id: self.id()?,
                    entries_read: self.opt_u64()?,
                },
                3 => Mutation::GroupDestroyed {
                    group: self.bytes()?,
                },
                4 => Mutation::ConsumerUpserted {
                    group: self.bytes()?,
                    consumer: self.bytes()?,
                    seen_time: self.u64()?,
                    active_time: self.opt_u64()?,
                },
                5 => Mutation::ConsumerDeleted {
                    group: self.bytes()?,
                    consumer: self.bytes()?,
                },
                6 => Mutation::PendingUpserted {
                    group: self.bytes()?,
                    id: self.id()?,
                    consumer: self.bytes()?,
                    delivery_time: self.u64()?,
                    delivery_count: self.u64()?,
                },
                7 => Mutation::PendingRemoved {
                    group: self.bytes()?,
                    id: self.id()?,
                },
                _ => return None,
            };
            out.push(m);
        }
        Some(out)
    }
}

/// What replay found in the segments.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayReport {
    /// Records read.
    pub records: u64,
    /// Records applied (the others were already in fjall or of a stream gone since).
    pub applied: u64,
    /// Bytes of segments read.
    pub bytes: u64,
    /// Bytes after a torn or corrupt record, dropped.
    pub torn_bytes: u64,
    /// Highest incarnation any record named.
    pub max_incarnation: u64,
}

/// Replays every segment in `dir`, oldest first; `apply` says whether it applied a record.
/// Returns, per segment, the streams it applied records to, the bytes of its records and
/// the streams it created.
fn replay(
    dir: &Path,
    apply: &mut dyn FnMut(Record<'_>) -> bool,
    report: &mut ReplayReport,
) -> std::io::Result<Vec<Segment>> {
    let mut out = Vec::new();
    for n in segments(dir)? {
        // The checkpoint retires segments without excluding DEBUG RELOAD: one listed above
        // may be gone by now, and its appends are in fjall then.
        let data = match std::fs::read(segment_path(dir, n)) {
            Ok(d) => Bytes::from(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut seg = Segment::new(n);
        let mut p = Parser { buf: data, pos: 0 };
        let mut good = 0;
        while let Some(mut rec) = p.record() {
            let Some((db, key, incarnation, flags)) = rec.head() else {
                break;
            };
            let record = if flags & 4 != 0 {
                let Some(changes) = rec.group_changes() else {
                    break;
                };
                Record::Groups(GroupChanges {
                    db,
                    key: &key,
                    incarnation,
                    changes,
                })
            } else {
                let Some((id, fields)) = rec.append() else {
                    break;
                };
                let creates = flags & 2 != 0;
                if creates {
                    // Counted whether applied or not: the floors that keep a dead creation
                    // dead must stay until its segment is retired.
                    seg.min_created = seg.min_created.min(incarnation);
                }
                Record::Append(Append {
                    db,
                    key: &key,
                    incarnation,
                    new_node: flags & 1 != 0,
                    creates,
                    id,
                    fields,
                })
            };
            good = p.pos;
            report.records += 1;
            report.max_incarnation = report.max_incarnation.max(incarnation);
            let applied = apply(record);
            if applied {
                report.applied += 1;
                seg.streams.insert((db, key));
            }
        }
        // Segments are created at their full size (see `create_segment`): the zeros past the
        // last record were never written, and only bytes written past it were torn.
        let torn = p.buf[good..]
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last as u64 + 1);
        report.torn_bytes += torn;
        report.bytes += good as u64 + torn;
        seg.bytes = good as u64;
        out.push(seg);
    }
    Ok(out)
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
                buf: Vec::with_capacity(64 * 1024),
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
        self.write_out()?;
        let mut report = ReplayReport::default();
        replay(&self.dir, apply, &mut report)?;
        Ok(report)
    }

    /// Logs one append to stream `key`, to its last node or opening a new one, or creating the
    /// stream (not yet in the OS's hands: see [`TailLog::write_out`]). `seen` is the segment
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
        seen: u64,
    ) -> std::io::Result<u64> {
        let flags = u8::from(new_node) | (u8::from(creates) << 1);
        let min_created = if creates { incarnation } else { u64::MAX };
        self.log(db, key, incarnation, flags, seen, min_created, |buf| {
            put_id(buf, id);
            buf.extend_from_slice(&(fields.len() as u32).to_le_bytes());
            for f in fields {
                put_bytes(buf, f);
            }
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
        self.log(db, key, incarnation, 4, seen, u64::MAX, |buf| {
            buf.extend_from_slice(&(changes.len() as u32).to_le_bytes());
            for m in changes {
                put_group_change(buf, m);
            }
        })
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
        let mut g = lock(&self.inner);
        let inner = &mut *g;
        let start = inner.buf.len();
        inner.buf.extend_from_slice(&[0; HEADER]);
        inner.buf.extend_from_slice(&db.to_le_bytes());
        put_bytes(&mut inner.buf, key);
        inner.buf.extend_from_slice(&incarnation.to_le_bytes());
        inner.buf.push(flags);
        body(&mut inner.buf);
        let payload_len = inner.buf.len() - start - HEADER;
        let sum = checksum(&inner.buf[start + HEADER..]);
        inner.buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        inner.buf[start + 4..start + HEADER].copy_from_slice(&sum.to_le_bytes());
        inner.segment_bytes += (payload_len + HEADER) as u64;
        let segment = inner.segment;
        if let Some(open) = inner.dirty.back_mut() {
            open.min_created = open.min_created.min(min_created);
            if seen != segment && !open.streams.contains(&Probe(db, key)) {
                open.streams.insert((db, Bytes::copy_from_slice(key)));
            }
        }
        let limit = self.segment_limit.load(Ordering::Relaxed);
        if inner.segment_bytes >= limit {
            rotate(&self.dir, inner, limit)?;
        }
        Ok(segment)
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
    /// When the write or an fsync fails.
    pub fn sync(&self) -> std::io::Result<()> {
        let _syncing = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let (files, dir_too) = {
            let mut g = lock(&self.inner);
            let inner = &mut *g;
            write_buffer(inner)?;
            let mut files = std::mem::take(&mut inner.unsynced);
            files.push(inner.file.clone());
            (files, std::mem::take(&mut inner.dir_unsynced))
        };
        for f in files {
            f.sync_data()?;
        }
        if dir_too {
            File::open(&self.dir)?.sync_all()?;
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

    /// The lowest incarnation of a stream created in a segment not yet retired
    /// (`u64::MAX`: none), so a deletion knows whether it must leave a floor.
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
        // Unlinked after the lock is released: an unlink took 3-11 ms here (ext4 mounted with
        // `discard` trims the freed blocks), and every XADD waits for this lock.
        for n in retired {
            match std::fs::remove_file(segment_path(&self.dir, n)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
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

/// Hands the buffered records to the OS, at the open segment's written end.
fn write_buffer(inner: &mut Inner) -> std::io::Result<()> {
    if !inner.buf.is_empty() {
        inner.file.write_all_at(&inner.buf, inner.written)?;
        inner.written += inner.buf.len() as u64;
        inner.buf.clear();
    }
    Ok(())
}

/// Closes the full segment (written out; the next sync fsyncs it, and a retire always syncs
/// first) and opens the next, of `size` bytes.
fn rotate(dir: &Path, inner: &mut Inner, size: u64) -> std::io::Result<()> {
    write_buffer(inner)?;
    let next = inner.segment + 1;
    let file = Arc::new(create_segment(dir, next, size)?);
    let closed = std::mem::replace(&mut inner.file, file);
    inner.written = 0;
    inner.unsynced.push(closed);
    inner.dir_unsynced = true;
    if let Some(open) = inner.dirty.back_mut() {
        open.bytes = inner.segment_bytes;
    }
    inner.segment = next;
    inner.segment_bytes = 0;
    inner.dirty.push_back(Segment::new(next));
    Ok(())
}

/// Creates segment `n` at its full `size`, up to [`SEGMENT_BYTES`] (a sparse file, written
/// into from the start): an fdatasync after an append that grows a file must also commit its
/// new size, and on this machine's ext4 a write plus fdatasync took 310-330 us appending and
/// 205-235 us inside the file's size (`appendfsync always` waits for one per group of
/// replies). The cap keeps a replay after a crash, which reads a whole segment, from reading
/// gigabytes of zeros when `tail-log-segment-bytes` is set high; past it the file grows.
fn create_segment(dir: &Path, n: u64, size: u64) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(segment_path(dir, n))?;
    file.set_len(size.min(SEGMENT_BYTES))?;
    Ok(file)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn no_replay(_: Record<'_>) -> bool {
        false
    }

    /// Closed segments wait for the checkpoint until they hold its bytes, counted again from
    /// their records when a restart replays them; SAVE and SHUTDOWN (`all`) take any.
    #[test]
    fn closed_segments_are_stale_once_they_hold_the_checkpoint_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let append = |log: &TailLog, key: &[u8], ms: u64| {
            let fields = [Bytes::from("f"), Bytes::from(vec![b'v'; 100])];
            log.append(0, key, 1, false, false, StreamId::new(ms, 0), &fields, 0)
                .unwrap();
        };
        let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
        log.set_segment_limit(1024);
        log.set_checkpoint_bytes(4096);
        assert!(log.stale(true).is_none(), "nothing is closed yet");
        append(&log, b"a", 1);
        log.close_segment().unwrap();
        assert!(log.stale(false).is_none());
        let (upto, names) = log.stale(true).unwrap();
        assert_eq!((upto, names), (1, vec![(0, Bytes::from("a"))]));
        // Segments close at 1 KiB: the closed ones pass 4 KiB within a few dozen appends.
        let mut ms = 1;
        while log.stale(false).is_none() {
            ms += 1;
            assert!(ms < 100, "never stale");
            append(&log, b"b", ms);
        }
        let closed = lock(&log.inner).dirty.len() as u64 - 1;
        assert!(closed >= 4, "{closed} closed segments");
        let (_, on_disk) = log.segments_on_disk();
        assert!(on_disk >= 4096, "{on_disk}");
        drop(log);
        let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
        log.set_checkpoint_bytes(4096);
        assert!(
            log.stale(false).is_some(),
            "replayed segments count their bytes"
        );
        log.set_checkpoint_bytes(1 << 20);
        assert!(log.stale(false).is_none());
    }

    #[test]
    fn segments_are_sized_up_to_the_cap_and_records_go_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
        log.set_segment_limit(1 << 40);
        log.append(0, b"s", 1, true, false, StreamId::new(1, 0), &[], 0)
            .unwrap();
        log.close_segment().unwrap();
        let sizes = |log: &TailLog| {
            let g = lock(&log.inner);
            (g.file.metadata().unwrap().len(), g.written)
        };
        assert_eq!(sizes(&log), (SEGMENT_BYTES, 0));
        // A record that does not fit in the sized part extends the file.
        let big = Bytes::from(vec![7u8; SEGMENT_BYTES as usize]);
        log.append(
            0,
            b"s",
            1,
            false,
            false,
            StreamId::new(2, 0),
            &[big.clone(), big],
            0,
        )
        .unwrap();
        log.write_out().unwrap();
        let (len, written) = sizes(&log);
        assert!(written > SEGMENT_BYTES && len == written, "{len} {written}");
        drop(log);
        // Reopened, every record replays and nothing is reported torn.
        let mut seen = 0;
        let (_log, report) = TailLog::open(dir.path(), &mut |_| {
            seen += 1;
            true
        })
        .unwrap();
        assert_eq!((seen, report.torn_bytes), (2, 0));
    }
}
