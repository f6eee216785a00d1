//! The tail-log checkpoint's trigger: once closed tail-log segments hold
//! `tail-log-checkpoint-bytes` (and on SAVE and SHUTDOWN), the store writes the appends they
//! hold into fjall and deletes them (see `Store::checkpoint`). This module decides when, and
//! lends the store the keyspace, whose shard locks it visits each stream under.

use std::sync::Arc;
use std::time::Duration;

use brooklet_persistence::{KeyState, StoreError, StoredStream, StreamHost};

use crate::keyspace::Value;
use crate::state::Shared;

/// How often the checkpoint looks for closed segments.
const POLL: Duration = Duration::from_millis(100);

/// The longest wait between two tries of a failing checkpoint.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs checkpoints until shutdown begins.
pub async fn run(shared: Arc<Shared>) {
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // After a failed checkpoint, the wait before the next try (doubling up to
    // `MAX_BACKOFF`): the tail log keeps what it could not write, so nothing is lost by
    // waiting, and a disk that stays full is not asked every 100 ms.
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopping => return,
        }
        // While writes are refused, a checkpoint could only meet the same fault (and fjall,
        // which a full disk would poison for good, must not be written).
        if shared.store.fault().is_some() || !shared.store.checkpoint_due() {
            continue;
        }
        let s = shared.clone();
        let ran = tokio::task::spawn_blocking(move || s.store.checkpoint(&KeyspaceHost(&s), false));
        let failed = match ran.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("tail-log checkpoint failed: {e}")),
            Err(e) => Some(format!("tail-log checkpoint stopped: {e}")),
        };
        shared.store.note_checkpoint(failed.is_none());
        match failed {
            None => backoff = Duration::ZERO,
            Some(why) => {
                backoff = (backoff * 2).clamp(POLL, MAX_BACKOFF);
                tracing::error!("{why}; trying again in {} ms", backoff.as_millis());
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut stopping => return,
                }
            }
        }
    }
}

/// Writes every append in a closed segment into fjall, then retires the segments. Each batch
/// is built under its shards' locks, like a command, and under the shared gate, so never
/// call it inside a MULTI/EXEC or a DEBUG RELOAD (callers hold neither the gate nor a shard
/// lock: SAVE, which is refused inside MULTI, and shutdown).
pub fn checkpoint(shared: &Shared) -> Result<(), StoreError> {
    let done = shared.store.checkpoint(&KeyspaceHost(shared), true);
    shared.store.note_checkpoint(done.is_ok());
    done
}

/// Writes the streams whose group changes no log holds (an existing consumer's seen-time,
/// history re-reads) each in a batch of its own: DEBUG RELOAD, which replays the tail log,
/// calls it first under its exclusive gate, as Redis's reload saves them in its snapshot.
pub fn write_untracked(shared: &Shared) -> Result<(), StoreError> {
    shared.store.write_untracked(&KeyspaceHost(shared))
}

/// The keyspace, as the checkpoint visits it.
struct KeyspaceHost<'a>(&'a Shared);

impl KeyspaceHost<'_> {
    /// The shard of `key` in database `db`, locked (waiting for it when `wait`, else only
    /// briefly). `Err` carries what a visit returns without one: true when there is no such
    /// database (nothing to visit), false when the lock stayed taken.
    fn lock_for_visit(
        &self,
        db: u32,
        key: &[u8],
        wait: bool,
    ) -> Result<std::sync::MutexGuard<'_, crate::keyspace::Shard>, bool> {
        let Some(db) = usize::try_from(db)
            .ok()
            .filter(|&d| d < self.0.keyspace.count())
        else {
            return Err(true);
        };
        let db = self.0.keyspace.db(db);
        if wait {
            Ok(db.lock(key))
        } else {
            db.lock_briefly(key).ok_or(false)
        }
    }
}

impl StreamHost for KeyspaceHost<'_> {
    fn batch(&self, f: &mut dyn FnMut()) {
        // DEBUG RELOAD waits until the batch is done.
        let _gate = self.0.gate_shared();
        f();
    }

    fn visit(&self, db: u32, key: &[u8], wait: bool, f: &mut dyn FnMut(&mut StoredStream)) -> bool {
        let mut shard = match self.lock_for_visit(db, key, wait) {
            Ok(shard) => shard,
            Err(done) => return done,
        };
        if let Some(Value::Stream(s, _)) = shard.get_mut(key) {
            f(s);
        }
        true
    }

    fn visit_key(&self, db: u32, key: &[u8], wait: bool, f: &mut dyn FnMut(KeyState)) -> bool {
        let shard = match self.lock_for_visit(db, key, wait) {
            Ok(shard) => shard,
            Err(done) => return done,
        };
        let (string, string_on_disk) = match shard.get(key) {
            // Copied when small, as a reply's value is (`SmallBytes::to_bytes`).
            Some(Value::String(v, _, _)) => (Some(v.to_bytes()), false),
            Some(Value::StoredString(_)) => (None, true),
            _ => (None, false),
        };
        f(KeyState {
            string,
            string_on_disk,
            deadline: shard.deadline(key),
        });
        true
    }
}
