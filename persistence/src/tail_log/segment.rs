//! The tail log's segment files: named by number, created at full size, closed when
//! full, deleted once the checkpoint has written what they hold.

use hashbrown::HashSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::key_set::KeySet;
use super::{Inner, SEGMENT_BYTES, StreamName};

/// A segment not yet retired.
pub(super) struct Segment {
    /// Its number.
    pub(super) n: u64,
    /// The streams with appends in it.
    pub(super) streams: HashSet<StreamName>,
    /// The keys whose string or deadline it sets (shared with the checkpoint once closed;
    /// the open segment's is never shared, so it changes in place).
    pub(super) strings: Arc<KeySet>,
    /// Bytes of its records (0 for the open segment until it closes).
    pub(super) bytes: u64,
    /// The lowest incarnation of a stream it created or number of a string record it holds
    /// (`u64::MAX`: none): a floor above it must stay while the segment does.
    pub(super) min_created: u64,
}

impl Segment {
    pub(super) fn new(n: u64) -> Self {
        Segment {
            n,
            streams: HashSet::new(),
            strings: Arc::default(),
            bytes: 0,
            min_created: u64::MAX,
        }
    }
}

pub(super) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:012}.log"))
}

/// Existing segments, oldest first.
pub(super) fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
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

/// Hands the buffered records to the OS, at the open segment's written end.
pub(super) fn write_buffer(inner: &mut Inner) -> std::io::Result<()> {
    if !inner.buf.is_empty() {
        inner.file.write_all_at(&inner.buf, inner.written)?;
        inner.written += inner.buf.len() as u64;
        inner.buf.clear();
        // One large value (a 512 MB SETRANGE) would otherwise leave its record's room held
        // for the life of the process.
        if inner.buf.capacity() > BUF_KEEP {
            inner.buf = Vec::with_capacity(BUF_START);
        }
    }
    Ok(())
}

/// The record buffer's capacity at start and after a write that found it oversized.
pub(super) const BUF_START: usize = 64 * 1024;

/// The most record buffer kept between writes: a pipelined batch of ordinary records fits.
const BUF_KEEP: usize = 4 << 20;

/// Closes the full segment (written out; the next sync fsyncs it, and a retire always syncs
/// first) and opens the next, of `size` bytes.
pub(super) fn rotate(dir: &Path, inner: &mut Inner, size: u64) -> std::io::Result<()> {
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
/// new size, which makes it markedly slower than one inside the file's size (`appendfsync
/// always` waits for one per group of replies). The cap keeps a replay after a crash, which reads a whole segment, from reading
/// gigabytes of zeros when `tail-log-segment-bytes` is set high; past it the file grows.
pub(super) fn create_segment(dir: &Path, n: u64, size: u64) -> std::io::Result<File> {
    let path = segment_path(dir, n);
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    // Allocated whole, so a write into it never meets a full disk: a record cut short there
    // could not be taken back from the readers who saw its entry (writes are refused while
    // less than a segment is free, so allocating one succeeds). Where the file system cannot
    // allocate ahead, or the disk is already full (a start on a full disk, which must still
    // serve reads), the segment is sparse, and a full disk is met by the write, which is
    // kept and made again.
    let len = size.min(SEGMENT_BYTES);
    let sized = match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e)
            if e == rustix::io::Errno::OPNOTSUPP
                || e == rustix::io::Errno::NOSYS
                || e == rustix::io::Errno::NOSPC
                || e == rustix::io::Errno::DQUOT =>
        {
            file.set_len(len)
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sized {
        // Not left behind half made: the next attempt creates it again.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(file)
}
