//! When committed batches reach the disk: the fsync policy and the group-commit thread.
//! Both logs are covered: fjall's journal and the tail log of plain appends.
//!
//! Writers commit their batch (a memory operation plus a write into the OS's buffers) inline
//! and get a sequence number. Under `always`, a writer then waits until the durable sequence
//! reaches its own: the sync thread reads the committed sequence, fsyncs once, and publishes
//! that sequence, so one fsync covers every batch committed while the previous one ran.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fjall::Database;

use crate::error::StoreError;
use crate::health::Health;
use crate::journal_sync::JournalSync;
use crate::latency::{LatencyHook, events};
use crate::tail_log::{SyncFailure, TailLog};

/// The durability policy (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A write's reply waits for the fsync that covers it.
    Always,
    /// fsync at least once a second (every 100 ms while writes arrive).
    Everysec,
    /// Leave it to the operating system.
    No,
}

impl FsyncPolicy {
    fn to_u8(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::Everysec => 1,
            FsyncPolicy::No => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::Everysec,
            _ => FsyncPolicy::No,
        }
    }
}

/// Called with the durable sequence after every fsync.
pub type OnDurable = Box<dyn Fn(u64) + Send + Sync>;

/// State shared by writers and the sync thread.
pub struct Durability {
    policy: AtomicU8,
    /// Highest sequence whose batch is committed.
    pub committed: AtomicU64,
    /// Highest sequence known to be on disk.
    pub durable: AtomicU64,
    /// Highest sequence known to be in the operating system's buffers (survives a crash of
    /// the process, not of the machine).
    pub in_os: AtomicU64,
    /// Unix ms of the last successful fsync (0 = none yet).
    pub last_fsync_ms: AtomicU64,
    /// Number of fsyncs done.
    pub fsyncs: AtomicU64,
    /// Whether writes are taken, and if not, why.
    pub(crate) health: Health,
    wanted: Mutex<u64>,
    wake: Condvar,
    stop: AtomicBool,
    on_durable: Mutex<Option<OnDurable>>,
    /// The second log every sync and hand-over covers, besides fjall's journal.
    tail: Arc<TailLog>,
    /// fsyncs fjall's journal without holding fjall's lock.
    journal: JournalSync,
    /// Whether fjall, or the tail log, took a write since the last sync began: a sync skips
    /// the log that took none (two fsyncs per round would halve group commit's rate when
    /// only XADDs arrive). Set after the write and before its sequence is published.
    fjall_dirty: AtomicBool,
    tail_dirty: AtomicBool,
    /// Held through a whole sync: a sync that skips a log relies on the one that cleared its
    /// flag having finished.
    syncing: Mutex<()>,
    /// Held through a hand-over of the tail log's buffer to the OS.
    handing_over: Mutex<()>,
    /// Where fsyncs, hand-overs and the background work's durations are reported.
    pub(crate) latency: Arc<LatencyHook>,
}

impl Durability {
    /// Fresh state under `policy`, covering the journal of the fjall database in
    /// `engine_dir` and `tail`.
    pub fn new(
        policy: FsyncPolicy,
        tail: Arc<TailLog>,
        engine_dir: &Path,
        latency: Arc<LatencyHook>,
    ) -> Arc<Self> {
        let data_dir = engine_dir.parent().unwrap_or(engine_dir);
        let health = Health::new(data_dir, tail.segment_limit());
        Arc::new(Durability {
            policy: AtomicU8::new(policy.to_u8()),
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            in_os: AtomicU64::new(0),
            last_fsync_ms: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            health,
            wanted: Mutex::new(0),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            on_durable: Mutex::new(None),
            tail,
            journal: JournalSync::new(engine_dir),
            fjall_dirty: AtomicBool::new(true),
            tail_dirty: AtomicBool::new(true),
            syncing: Mutex::new(()),
            handing_over: Mutex::new(()),
            latency,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// Changes the policy at run time (CONFIG SET appendfsync).
    pub fn set_policy(&self, p: FsyncPolicy) {
        self.policy.store(p.to_u8(), Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Registers the callback told of each new durable sequence.
    pub fn set_on_durable(&self, f: OnDurable) {
        *self.on_durable.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Asks the sync thread to make `seq` durable soon.
    pub fn request(&self, seq: u64) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if seq > *wanted {
            *wanted = seq;
            self.wake.notify_one();
        }
    }

    /// fsyncs now and publishes the durable sequence (SAVE, shutdown, the sync thread).
    pub fn sync_now(&self, db: &Database) -> Result<(), StoreError> {
        let _syncing = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        // A full disk does not stop a sync: the writes it covers were kept, and are made again.
        if self.health.broken() {
            return Err(self.health.refusal());
        }
        let target = self.committed.load(Ordering::SeqCst);
        let started = self.latency.start();
        // A flag seen clear here was cleared by an earlier sync that began after that write
        // went in, so the write is on disk, and its sequence (<= target) may be published.
        let fjall = self.fjall_dirty.swap(false, Ordering::SeqCst);
        let tail = self.tail_dirty.swap(false, Ordering::SeqCst);
        let synced = match (fjall, tail) {
            // Side by side: the second fdatasync would otherwise wait out the first's whole
            // device flush, and a reply under `always` waits for both.
            (true, true) => std::thread::scope(|s| {
                let tail = s.spawn(|| self.sync_tail());
                let journal = self.journal.sync(db, &self.health);
                let tail = tail.join().unwrap_or_else(|_| {
                    let e = std::io::Error::other("tail log sync panicked");
                    self.health.fail_io(&e, true, "fsync of the tail log");
                    Err(self.health.refusal())
                });
                journal.and(tail)
            }),
            (true, false) => self.journal.sync(db, &self.health),
            (false, true) => self.sync_tail(),
            (false, false) => Ok(()),
        };
        if let Err(e) = synced {
            // Whichever log failed is synced again next time (a full disk gets room back).
            self.fjall_dirty.fetch_or(fjall, Ordering::SeqCst);
            self.tail_dirty.fetch_or(tail, Ordering::SeqCst);
            return Err(e);
        }
        if fjall || tail {
            let event = if self.policy() == FsyncPolicy::Always {
                events::FSYNC_ALWAYS
            } else {
                events::FSYNC
            };
            self.latency.since(event, started);
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_fsync_ms.store(now, Ordering::Relaxed);
        self.durable.fetch_max(target, Ordering::AcqRel);
        self.in_os.fetch_max(target, Ordering::AcqRel);
        if let Some(f) = self
            .on_durable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f(self.durable.load(Ordering::Acquire));
        }
        Ok(())
    }

    /// Hands every committed batch to the operating system, if `seq` is not there yet.
    /// fjall's commits hand themselves over; the tail log's buffer is written here, once for
    /// every append logged meanwhile. Replies are sent after this, so a crash of the process
    /// loses nothing acknowledged whatever the policy.
    pub fn flush_to_os(&self, seq: u64) -> Result<(), StoreError> {
        if self.in_os.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        // One hand-over at a time. A write that failed keeps the buffer, and the next one
        // writes it again at the same offset, over whatever part of it reached the file.
        let _handing = self.handing_over.lock().unwrap_or_else(|p| p.into_inner());
        if self.in_os.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        if self.health.broken() {
            return Err(self.health.refusal());
        }
        let target = self.committed.load(Ordering::SeqCst);
        let started = self.latency.start();
        if let Err(e) = self.tail.write_out() {
            self.health.fail_io(&e, false, "writing the tail log");
            return Err(self.health.refusal());
        }
        self.latency.since(events::WRITE, started);
        self.health.written();
        self.in_os.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// Publishes the sequence of a write just made to fjall (`tail` false) or the tail log.
    pub fn publish(&self, tail: bool) -> u64 {
        if tail {
            self.tail_dirty.store(true, Ordering::SeqCst);
        } else {
            self.fjall_dirty.store(true, Ordering::SeqCst);
        }
        // Under `always` the fsync is asked for by whoever waits for it (a reply), once the
        // other ready clients have made their writes too, so one fsync covers them all.
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Stops the sync thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// The sync thread's loop: on request under `always`, every 100 ms while writes arrive
    /// under `everysec`. More often than Redis's once a second, because fjall fsyncs its
    /// journal under the lock every commit takes each time it flushes a memtable, and that
    /// fsync is short when little of the journal is left unsynced (figures in
    /// docs/performance.md, Storage); our own fsyncs hold no lock a command needs.
    pub fn run(self: Arc<Self>, db: Database) {
        let mut next_look = Instant::now();
        // Whether the last sync failed (a full disk, until it has room again).
        let mut failing = false;
        loop {
            {
                let wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
                let timeout = Duration::from_millis(100);
                if !failing && !self.health.broken() {
                    let idle = |w: &mut u64| {
                        !self.stop.load(Ordering::Acquire)
                            && *w <= self.durable.load(Ordering::Acquire)
                    };
                    let _unused = self.wake.wait_timeout_while(wanted, timeout, idle);
                } else {
                    // A sync that failed is tried again at the next look at the disk, not
                    // at once: a sequence stays wanted, and waking for it would spin.
                    let running = |_: &mut u64| !self.stop.load(Ordering::Acquire);
                    let _unused = self.wake.wait_timeout_while(wanted, timeout, running);
                }
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if Instant::now() >= next_look {
                self.health.watch_space();
                next_look = Instant::now() + Duration::from_millis(100);
            }
            // After a fault that needs a restart, stay quiet: it was logged, and every write
            // is refused.
            if self.health.broken() {
                continue;
            }
            let behind =
                self.committed.load(Ordering::Acquire) > self.durable.load(Ordering::Acquire);
            let wanted_now = *self.wanted.lock().unwrap_or_else(|p| p.into_inner())
                > self.durable.load(Ordering::Acquire);
            let due = match self.policy() {
                FsyncPolicy::Always => behind,
                FsyncPolicy::Everysec => behind,
                FsyncPolicy::No => wanted_now,
            };
            failing = due && self.sync_now(&db).is_err();
        }
    }

    /// Writes out and fsyncs the tail log, recording a failure as a fault.
    fn sync_tail(&self) -> Result<(), StoreError> {
        let synced = self.tail.sync();
        if let Err(SyncFailure::Fsync(_)) | Ok(()) = synced {
            // The buffer was written: only the fsync (if anything) failed.
            self.health.written();
        }
        synced.map_err(|f| {
            match f {
                SyncFailure::Write(e) => self.health.fail_io(&e, false, "writing the tail log"),
                SyncFailure::Fsync(e) => self.health.fail_io(&e, true, "fsync of the tail log"),
            }
            self.health.refusal()
        })
    }
}
