//! Whether the store takes writes, and if not, why: a full disk (writes resume by themselves
//! once it has room) or a failed write, fsync or engine (writes stay refused until a
//! restart).
//!
//! Commands ask before they change anything ([`Health::admit`]), so a refused write never
//! reaches memory, readers or blocked clients. (A write that fails after it changed memory
//! is held back from readers instead: see [`crate::StoredStream::seq`].) The disk's free
//! space is watched rather than waited for: fjall poisons itself for good on the first write
//! it cannot make, and a change that reached memory and not the disk can only be held back
//! from readers until a restart.
//! Writes are therefore refused while the data directory's file system has less than the
//! reserve free (a tail-log segment, which is allocated whole when it opens, plus room for
//! fjall's journal and flushes), before any write meets ENOSPC.
//!
//! Which faults need a restart: after a failed fsync, Linux may have dropped the dirty pages
//! it could not write and marked them clean, so a later fsync succeeds without them
//! (PostgreSQL's "fsyncgate"); nothing written since the last good fsync can be trusted,
//! and only a restart, which reads back what is really on disk, is safe. A write that
//! failed for another reason than a full disk (EIO) is a failing device. fjall refuses every
//! write once one of its own failed. A full disk loses nothing: the failed write is kept and
//! made again, and new writes are refused only until the space comes back.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::error::StoreError;

/// Why the store refuses writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The data directory's file system is (nearly) full; writes resume once it has room.
    DiskFull,
    /// A write failed for another reason than a full disk (the device reported an error).
    WriteFailed,
    /// An fsync failed: what was written since the last good one may be lost.
    FsyncFailed,
    /// The storage engine (fjall) failed a write of its own and refuses every later one.
    EngineFailed,
}

impl FaultKind {
    /// The word INFO shows (`brooklet_store_status`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::DiskFull => "disk_full",
            FaultKind::WriteFailed => "write_failed",
            FaultKind::FsyncFailed => "fsync_failed",
            FaultKind::EngineFailed => "engine_failed",
        }
    }

    /// Whether writes stay refused until the server restarts.
    pub fn needs_restart(self) -> bool {
        self != FaultKind::DiskFull
    }

    fn code(self) -> u8 {
        match self {
            FaultKind::DiskFull => DISK_FULL,
            FaultKind::WriteFailed => 2,
            FaultKind::FsyncFailed => 3,
            FaultKind::EngineFailed => 4,
        }
    }
}

/// A fault and its cause, as a client's error reply and the log state it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFault {
    /// What failed.
    pub kind: FaultKind,
    /// The operating system's or engine's words, with what was being done.
    pub cause: String,
}

impl fmt::Display for StoreFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = &self.cause;
        match self.kind {
            FaultKind::DiskFull => write!(
                f,
                "the disk is full ({cause}); writes are refused until it has room again, then resume by themselves"
            ),
            FaultKind::WriteFailed => write!(
                f,
                "a write to the disk failed ({cause}); writes are refused until the server is restarted, since the device reported an error"
            ),
            FaultKind::FsyncFailed => write!(
                f,
                "fsync failed ({cause}); writes are refused until the server is restarted: after a failed fsync the kernel may have dropped the data it could not write, so only a restart, which reads back what is on disk, is safe"
            ),
            FaultKind::EngineFailed => write!(
                f,
                "the storage engine failed a write ({cause}); writes are refused until the server is restarted"
            ),
        }
    }
}

const OK: u8 = 0;
const DISK_FULL: u8 = 1;

/// Free space under which every write is refused, besides the open tail-log segment's
/// size: fjall's journal, and a flush of its memtables, must always find room.
const ENGINE_ROOM: u64 = 4 * 1024 * 1024;

/// Free space a consumer group's reads and acknowledgements still need on a full disk: their
/// records are a few hundred bytes, logged or in a small fjall batch.
const GROUP_ROOM: u64 = 1024 * 1024;

/// Within this much above the reserve, [`Health::admit`] asks the file system itself
/// instead of trusting the watcher's last look (up to 100 ms old).
const NEAR: u64 = 64 * 1024 * 1024;

/// The store's state of health, shared by writers, the sync thread (which watches the free
/// space) and the background threads.
pub(crate) struct Health {
    state: AtomicU8,
    fault: Mutex<Option<StoreFault>>,
    dir: PathBuf,
    /// Bytes that must stay free (see [`ENGINE_ROOM`]).
    reserve: AtomicU64,
    /// Free bytes at the last look.
    free: AtomicU64,
    /// Whether the last checkpoint failed (INFO `rdb_last_bgsave_status`).
    checkpoint_failed: std::sync::atomic::AtomicBool,
    /// A hand-over of the tail log failed for want of space and its records are still
    /// unwritten: writes resume only once they are written, whatever the free space says
    /// (a quota, or space the file system keeps back, can refuse a write it counts as free).
    unwritten: std::sync::atomic::AtomicBool,
}

impl Health {
    /// Healthy, watching the file system that holds `dir`, which must keep a segment of
    /// `segment_bytes` and the engine's room free.
    pub(crate) fn new(dir: &Path, segment_bytes: u64) -> Self {
        let h = Health {
            state: AtomicU8::new(OK),
            fault: Mutex::new(None),
            dir: dir.to_path_buf(),
            reserve: AtomicU64::new(0),
            free: AtomicU64::new(u64::MAX),
            checkpoint_failed: std::sync::atomic::AtomicBool::new(false),
            unwritten: std::sync::atomic::AtomicBool::new(false),
        };
        h.set_segment_bytes(segment_bytes);
        h
    }

    /// Follows a change of `tail-log-segment-bytes` (the server sets it once the store is
    /// open, before it takes commands), and looks at the free space against the new reserve:
    /// a start on a nearly full disk refuses writes from the first one.
    pub(crate) fn set_segment_bytes(&self, segment_bytes: u64) {
        let segment = segment_bytes.min(crate::tail_log::SEGMENT_BYTES);
        self.reserve
            .store(segment.saturating_add(ENGINE_ROOM), Ordering::Relaxed);
        self.watch_space();
    }

    /// Records how the last checkpoint ended.
    pub(crate) fn set_checkpoint_failed(&self, failed: bool) {
        self.checkpoint_failed.store(failed, Ordering::Relaxed);
    }

    /// Whether the last checkpoint failed.
    pub(crate) fn checkpoint_failed(&self) -> bool {
        self.checkpoint_failed.load(Ordering::Relaxed)
    }

    /// Bytes that must stay free.
    pub(crate) fn reserve(&self) -> u64 {
        self.reserve.load(Ordering::Relaxed)
    }

    /// Whether writes are taken.
    pub(crate) fn ok(&self) -> bool {
        self.state.load(Ordering::Acquire) == OK
    }

    /// Whether a fault that needs a restart happened.
    pub(crate) fn broken(&self) -> bool {
        self.state.load(Ordering::Acquire) > DISK_FULL
    }

    /// The fault in force, if any.
    pub(crate) fn fault(&self) -> Option<StoreFault> {
        if self.ok() {
            return None;
        }
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Refuses a write before it changes anything: one atomic load while the disk has
    /// room to spare; near the reserve, a look at the file system's free space.
    pub(crate) fn admit(&self) -> Result<(), StoreError> {
        if self.state.load(Ordering::Acquire) == OK {
            if self.free.load(Ordering::Relaxed) > self.reserve().saturating_add(NEAR) {
                return Ok(());
            }
            self.watch_space();
            if self.ok() {
                return Ok(());
            }
        }
        Err(self.refusal())
    }

    /// Admits a change to consumer groups alone (XREADGROUP, XACK) on a full disk while
    /// [`GROUP_ROOM`] is still free, so consumers keep taking and acknowledging what is
    /// stored; refuses it like any write after a fault that needs a restart.
    pub(crate) fn admit_group_change(&self) -> Result<(), StoreError> {
        if self.state.load(Ordering::Acquire) == DISK_FULL
            && free_bytes(&self.dir).is_some_and(|free| free >= GROUP_ROOM)
        {
            return Ok(());
        }
        self.admit()
    }

    /// Checks the free space now (before a write into fjall, which a full disk would poison
    /// for good): refuses, and enters the disk-full state, below the reserve.
    pub(crate) fn ensure_room(&self) -> Result<(), StoreError> {
        self.watch_space();
        if self.ok() {
            Ok(())
        } else {
            Err(self.refusal())
        }
    }

    /// The error a refused write gets.
    pub(crate) fn refusal(&self) -> StoreError {
        match self.fault() {
            Some(f) => StoreError::Fault(f),
            None => StoreError::Fault(StoreFault {
                kind: FaultKind::WriteFailed,
                cause: "an earlier write failed".into(),
            }),
        }
    }

    /// Looks at the free space: enters the disk-full state below the reserve, and leaves it
    /// (writes resume) once there is room again, unless a write failed meanwhile.
    pub(crate) fn watch_space(&self) {
        let Some(free) = free_bytes(&self.dir) else {
            return;
        };
        self.free.store(free, Ordering::Relaxed);
        let reserve = self.reserve();
        let state = self.state.load(Ordering::Acquire);
        if free < reserve && state == OK {
            self.fail(
                FaultKind::DiskFull,
                format!(
                    "{} free in {}, Brooklet keeps {} free to stay consistent",
                    human(free),
                    self.dir.display(),
                    human(reserve)
                ),
            );
        } else if free >= reserve && state == DISK_FULL && !self.unwritten.load(Ordering::Acquire) {
            self.resume();
        }
    }

    /// Records a fault. A fault that needs a restart replaces a full disk, never the reverse.
    pub(crate) fn fail(&self, kind: FaultKind, cause: String) {
        let mut g = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.state.load(Ordering::Acquire);
        if current > DISK_FULL || (current == DISK_FULL && kind == FaultKind::DiskFull) {
            return;
        }
        let fault = StoreFault { kind, cause };
        if kind.needs_restart() {
            tracing::error!("refusing writes: {fault}");
        } else {
            tracing::warn!("refusing writes: {fault}");
        }
        *g = Some(fault);
        self.state.store(kind.code(), Ordering::Release);
    }

    /// Records a failed operation on a file, by what the error says: a full disk or quota,
    /// or (`fsync` says which) a failed write or fsync.
    pub(crate) fn fail_io(&self, e: &std::io::Error, fsync: bool, what: &str) {
        let kind = if is_disk_full(e) {
            if fsync {
                // Some file systems allocate at writeback: the pages that failed may be gone.
                FaultKind::FsyncFailed
            } else {
                FaultKind::DiskFull
            }
        } else if fsync {
            FaultKind::FsyncFailed
        } else {
            FaultKind::WriteFailed
        };
        if kind == FaultKind::DiskFull {
            self.unwritten.store(true, Ordering::Release);
        }
        self.fail(kind, format!("{what}: {e}"));
    }

    /// Notes that the tail log's records were all handed over (after a hand-over or sync
    /// that succeeded): a full disk may then clear. One load when nothing was pending.
    pub(crate) fn written(&self) {
        if self.unwritten.load(Ordering::Relaxed) {
            self.unwritten.store(false, Ordering::Release);
        }
    }

    /// Leaves the disk-full state.
    fn resume(&self) {
        let mut g = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        if self.state.load(Ordering::Acquire) != DISK_FULL {
            return;
        }
        *g = None;
        self.state.store(OK, Ordering::Release);
        tracing::warn!(
            "the data directory has room again ({} free): writes resume",
            human(self.free.load(Ordering::Relaxed))
        );
    }
}

/// Whether `e` says the disk (or the user's quota) is full.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Whether the engine's error `e` comes from a full disk.
pub(crate) fn is_engine_disk_full(e: &fjall::Error) -> bool {
    match e {
        fjall::Error::Io(e) => is_disk_full(e),
        // The engine's storage layer wraps the OS's error in a type of its own.
        other => {
            let text = format!("{other:?}");
            text.contains("StorageFull") || text.contains("QuotaExceeded")
        }
    }
}

/// Bytes an unprivileged process may still write on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// `n` bytes as INFO's `_human` fields say it.
fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_gives_way_to_a_fault_that_needs_a_restart_never_the_reverse() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let h = Health::new(tmp.path(), 1024);
        assert!(h.admit().is_ok());
        h.fail(FaultKind::DiskFull, "test".into());
        assert!(!h.ok() && !h.broken());
        h.fail(FaultKind::FsyncFailed, "EIO".into());
        assert!(h.broken());
        h.fail(FaultKind::DiskFull, "again".into());
        assert_eq!(h.fault().map(|f| f.kind), Some(FaultKind::FsyncFailed));
        // Room on disk does not bring writes back after a failed fsync.
        h.watch_space();
        let err = h.admit().expect_err("refused").to_string();
        assert!(err.contains("fsync failed (EIO)"), "{err}");
        assert!(err.contains("restarted"), "{err}");
    }

    #[test]
    fn a_full_disk_clears_once_there_is_room() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let h = Health::new(tmp.path(), 1024);
        h.fail(FaultKind::DiskFull, "test".into());
        let err = h.admit().expect_err("refused").to_string();
        assert!(err.contains("the disk is full"), "{err}");
        h.watch_space();
        assert!(h.ok(), "the temporary directory's disk has room");
    }
}
