//! The tail-log checkpoint: once closed tail-log segments hold `tail-log-checkpoint-bytes`
//! (and on SAVE and SHUTDOWN), the appends they hold are written into fjall, in batches of
//! a shard's streams, and the segments are deleted, so the log stays bounded and start-up
//! replays little of it. Under the shard's lock a batch only
//! takes shared copies of the nodes holding its appends; it is encoded and committed after
//! the lock is let go (see `Store::prepare_flush`).

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use brooklet_persistence::{StoreError, StreamName};

use crate::keyspace::Value;
use crate::state::Shared;

/// Entries the checkpoint writes in one batch when they are ingested (a batch over many
/// streams goes through fjall's journal and holds fewer: see `Store::prepare_flush`): about
/// what a segment holds. Under the shard's lock a batch only takes shared copies of nodes,
/// whatever its size; each ingestion holds the lock every command's commit takes for a
/// fixed 4-9 ms (fsyncs of the table and of fjall's version), so few large ones stall
/// commands less than many small ones. Under benches/consume, 10,000-entry batches made
/// 55-66 ingestions in 8 s and 76-89 commits waited over 2 ms; 150,000-entry batches made
/// 5-6 ingestions and 27-30 such waits (17 with no checkpoint at all).
const CHUNK: usize = 150_000;

/// Pieces per shard before the checkpoint writes the rest in one, whatever its size or
/// spread: the segments are retired after it, so it must leave no logged append behind.
const CHUNKS_PER_SHARD: usize = 64;

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
fn flush_and_retire(
    shared: &Shared,
    (upto, names): (u64, Vec<StreamName>),
) -> Result<(), StoreError> {
    let _one_at_a_time = shared.store.checkpoint_guard();
    let mut by_shard: HashMap<(usize, usize), HashSet<Bytes>> = HashMap::new();
    for (db, key) in names {
        let Some(db_idx) = usize::try_from(db)
            .ok()
            .filter(|&d| d < shared.keyspace.count())
        else {
            continue;
        };
        let shard = shared.keyspace.db(db_idx).shard_of(&key);
        by_shard.entry((db_idx, shard)).or_default().insert(key);
    }
    for ((db_idx, shard_idx), keys) in by_shard {
        // DEBUG RELOAD waits until the shard is done.
        let _gate = shared.gate_shared();
        let db = shared.keyspace.db(db_idx);
        // Pieces of about CHUNK entries; a last, unbounded one ends a run that appends kept
        // ahead of. The shard's lock is held only while a piece is built and marked, not
        // while fjall takes it in.
        for round in 0..=CHUNKS_PER_SHARD {
            let max = if round == CHUNKS_PER_SHARD {
                usize::MAX
            } else {
                CHUNK
            };
            let pending = {
                let mut shard = db.lock_shard(shard_idx);
                let mut streams: Vec<_> = shard
                    .iter_mut()
                    .filter_map(|(k, v)| match v {
                        Value::Stream(s) if keys.contains(k) => Some((&k[..], &mut **s)),
                        _ => None,
                    })
                    .collect();
                // In the order of their keys in fjall (length, then bytes), so a piece's
                // entries go into the memtable's skiplist in ascending order and each insert
                // walks a path the one before left in cache.
                streams.sort_unstable_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
                shared.store.prepare_flush(db_idx as u32, streams, max)
            };
            let Some(mut pending) = pending else {
                break;
            };
            let (more, flushed) = (pending.more, std::mem::take(&mut pending.keys));
            let committed = pending.commit();
            let mut shard = db.lock_shard(shard_idx);
            for key in &flushed {
                // A stream deleted (and perhaps created again) since is not the one marked.
                if let Some(Value::Stream(s)) = shard.get_mut(key) {
                    s.end_flush(committed.is_ok());
                }
            }
            drop(shard);
            committed?;
            if !more {
                break;
            }
        }
    }
    shared.store.retire_tail(upto)
}
