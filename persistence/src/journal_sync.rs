//! fsyncs fjall's active journal through a descriptor of our own.
//!
//! fjall holds its journal lock through `persist(SyncData)`, and every commit takes that lock:
//! while the sync thread's fsync ran, every XREADGROUP and XACK waited for it under its shard
//! lock, and the whole server stalled behind them (docs/performance.md, Storage). Here only
//! the hand-over of
//! fjall's write buffer to the OS (one `write`) happens under its lock; the fsync runs on a
//! second descriptor of the same file, which makes the same data durable, since fsync works
//! on the file and not on the descriptor.
//!
//! This relies on fjall's journal layout (3.x): the journals are `<engine dir>/<N>.jnl`, the
//! highest N is the one being written, and a journal is fsynced by fjall itself when it is
//! sealed (rotated), so a write that went to an older journal is on disk before a newer one
//! exists. When no journal is found the sync falls back to fjall's own locked fsync.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fjall::{Database, PersistMode};

use crate::error::StoreError;
use crate::health::{FaultKind, Health};

/// The engine directory and the journal file last opened in it.
pub(crate) struct JournalSync {
    dir: PathBuf,
    open: Mutex<Option<(u64, File)>>,
}

impl JournalSync {
    /// Syncs the journals of the fjall database stored in `dir`.
    pub fn new(dir: &Path) -> Self {
        JournalSync {
            dir: dir.to_path_buf(),
            open: Mutex::new(None),
        }
    }

    /// Makes every batch committed to `db` so far durable; a failure is recorded in `health`
    /// as a failed write (fjall's hand-over of its buffer; fjall then refuses every write)
    /// or a failed fsync.
    pub fn sync(&self, db: &Database, health: &Health) -> Result<(), StoreError> {
        let engine_failed = |e: fjall::Error, what: &str| {
            health.fail(FaultKind::EngineFailed, format!("{what}: {e}"));
            health.refusal()
        };
        db.persist(PersistMode::Buffer)
            .map_err(|e| engine_failed(e, "writing fjall's journal"))?;
        let locked_fsync = || {
            db.persist(PersistMode::SyncData).map_err(|e| {
                health.fail(
                    FaultKind::FsyncFailed,
                    format!("fsync of fjall's journal: {e}"),
                );
                health.refusal()
            })
        };
        let Some(active) = self.active_journal() else {
            return locked_fsync();
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let file = match open.take() {
            Some((id, f)) if id == active => f,
            _ => match File::open(self.dir.join(format!("{active}.jnl"))) {
                Ok(f) => f,
                // Sealed and deleted since the listing: a newer journal is active, and
                // sealing fsynced this one.
                Err(_) => return locked_fsync(),
            },
        };
        let synced = file.sync_data();
        *open = Some((active, file));
        synced.map_err(|e| {
            health.fail_io(&e, true, "fsync of fjall's journal");
            health.refusal()
        })
    }

    /// The number of the highest-numbered journal, the one fjall writes to.
    fn active_journal(&self) -> Option<u64> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                name.to_str()?.strip_suffix(".jnl")?.parse::<u64>().ok()
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout this module depends on: an upgrade of fjall that moves or renames its
    /// journals fails here instead of silently falling back to the locked fsync.
    #[test]
    fn finds_the_active_journal_of_a_fresh_database() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("fjall");
        let db = Database::builder(&dir).open().expect("open");
        let ks = db
            .keyspace("k", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        ks.insert("a", "b").expect("insert");
        let sync = JournalSync::new(&dir);
        assert!(sync.active_journal().is_some());
        sync.sync(&db, &Health::new(&dir, 1024)).expect("sync");
        assert!(sync.open.lock().expect("lock").is_some());
    }
}
