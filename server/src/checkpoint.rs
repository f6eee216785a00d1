//! The tail-log checkpoint: once closed tail-log segments hold `tail-log-checkpoint-bytes`
//! (and on SAVE and SHUTDOWN), the appends they hold are written into fjall, in batches of
//! streams taken in key order, and the segments are deleted, so the log stays bounded and
//! start-up replays little of it. Under a shard's lock a batch only takes shared copies of
//! the nodes holding a stream's appends; it is encoded and committed after the locks are
//! let go (see `Store::begin_flush`).

use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::Arc;
use std::time::Duration;

use brooklet_persistence::{Added, StoreError, StreamName};

use crate::keyspace::Value;
use crate::state::Shared;

/// Entries the checkpoint writes in one batch (ingested as a table unless it is small and
/// spread over many streams: see `PendingFlush::commit`): about what a segment holds.
/// Under a shard's lock a batch only takes shared copies of nodes,
/// whatever its size; each ingestion holds the lock every command's commit takes for a
/// fixed 4-9 ms (fsyncs of the table and of fjall's version), so few large ones stall
/// commands less than many small ones. Under benches/consume, 10,000-entry batches made
/// 55-66 ingestions in 8 s and 76-89 commits waited over 2 ms; 150,000-entry batches made
/// 5-6 ingestions and 27-30 such waits (17 with no checkpoint at all).
const CHUNK: usize = 150_000;

/// Batches per database after which each batch takes every stream it reaches whole,
/// whatever its size (only a busy shard ends it early), so that a checkpoint always ends; it
/// retires the segments after its last batch, so it must leave no logged append behind.
const MAX_BATCHES: usize = 256;

/// How often the checkpoint looks for closed segments.
const POLL: Duration = Duration::from_millis(100);

/// Runs checkpoints until shutdown begins.
pub async fn run(shared: Arc<Shared>) {
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopping => return,
        }
        let Some(stale) = shared.store.stale_tail(false) else {
            continue;
        };
        let s = shared.clone();
        match tokio::task::spawn_blocking(move || flush_and_retire(&s, stale)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("tail-log checkpoint failed: {e}"),
            Err(e) => tracing::error!("tail-log checkpoint stopped: {e}"),
        }
    }
}

/// Writes every stream with appends in a closed segment into fjall, then retires the
/// segments. Each batch is built under its shard's lock, like a command, and the whole shard
/// is done under the shared gate, so never inside a MULTI/EXEC or a DEBUG RELOAD (callers
/// hold neither the gate nor a shard lock: SAVE, which is refused inside MULTI, and the
/// background task).
pub fn checkpoint(shared: &Shared) -> Result<(), StoreError> {
    match shared.store.stale_tail(true) {
        Some(stale) => flush_and_retire(shared, stale),
        None => Ok(()),
    }
}

/// The checkpoint's work once [`brooklet_persistence::Store::stale_tail`] has named it: the
/// newest closed segment and the streams with appends in the closed segments.
///
/// Per database, the streams are taken in the order of their keys in fjall (length, then
/// bytes), across shards, into batches of about [`CHUNK`] entries: each batch's entries
/// come out sorted, and successive batches cover successive key ranges, so the tables
/// they are ingested as do not overlap one another (batches of one shard's streams each
/// spanned the whole key space, hash-spread, and each ingested table overlapped all the
/// others). Each stream is copied under its shard's lock, which is let go at once; the
/// batch is committed with no lock held, and every batch is done under the shared gate.
/// A batch also ends early at a shard that stays locked (see `Db::lock_briefly`).
fn flush_and_retire(
    shared: &Shared,
    (upto, names): (u64, Vec<StreamName>),
) -> Result<(), StoreError> {
    let _one_at_a_time = shared.store.checkpoint_guard();
    let mut by_db: HashMap<usize, Vec<Bytes>> = HashMap::new();
    for (db, key) in names {
        let Some(db_idx) = usize::try_from(db)
            .ok()
            .filter(|&d| d < shared.keyspace.count())
        else {
            continue;
        };
        by_db.entry(db_idx).or_default().push(key);
    }
    for (db_idx, mut keys) in by_db {
        keys.sort_unstable_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        let db = shared.keyspace.db(db_idx);
        let mut next = 0;
        for batch in 0.. {
            if next == keys.len() {
                break;
            }
            // Past MAX_BATCHES, batches are unbounded: a stream whose appends kept ahead of
            // the batches is then taken whole, so the checkpoint ends.
            let max = if batch >= MAX_BATCHES {
                usize::MAX
            } else {
                CHUNK
            };
            // DEBUG RELOAD waits until the batch is done.
            let _gate = shared.gate_shared();
            let mut pending = shared.store.begin_flush();
            while let Some(key) = keys.get(next) {
                // Once the batch holds a stream, a change to it waits for the batch under its
                // shard's lock: waiting for that lock then would never end, so a shard that
                // stays busy ends the batch.
                let shard = if pending.is_empty() {
                    Some(db.lock(key))
                } else {
                    db.lock_briefly(key)
                };
                let Some(mut shard) = shard else {
                    break;
                };
                let added = match shard.get_mut(key) {
                    Some(Value::Stream(s)) => pending.add(db_idx as u32, key, s, max),
                    _ => Added::Nothing,
                };
                if added == Added::Full {
                    // This stream may have appends left: the next batch starts with it.
                    break;
                }
                next += 1;
            }
            if pending.is_empty() {
                continue;
            }
            let flushed = std::mem::take(&mut pending.keys);
            let committed = pending.commit();
            for key in &flushed {
                // A stream deleted (and perhaps created again) since is not the one marked.
                if let Some(Value::Stream(s)) = db.lock(key).get_mut(key) {
                    s.end_flush(committed.is_ok());
                }
            }
            committed?;
        }
    }
    shared.store.retire_tail(upto)
}
