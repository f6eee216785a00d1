//! The tail-log checkpoint: once a tail-log segment is closed, the appends it holds are
//! written into fjall, one batch per keyspace shard, and the segment is deleted, so the log
//! stays small and start-up replays little of it. A shard's clients wait while its batch is
//! written (at most a segment's worth of entries).

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use brooklet_persistence::{StoreError, StreamName};

use crate::keyspace::Value;
use crate::state::Shared;

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
        let Some(stale) = shared.store.stale_tail() else {
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
/// segments. Each stream is written under its shard's lock, like a command, and under the
/// shared gate, so never inside a MULTI/EXEC or a DEBUG RELOAD (callers hold neither the gate
/// nor a shard lock: SAVE, which is refused inside MULTI, and the background task).
pub fn checkpoint(shared: &Shared) -> Result<(), StoreError> {
    match shared.store.stale_tail() {
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
    // One batch per shard: its streams are written under one lock and one commit.
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
        let _gate = shared.gate_shared();
        let mut shard = shared.keyspace.db(db_idx).lock_shard(shard_idx);
        let streams = shard.iter_mut().filter_map(|(k, v)| match v {
            Value::Stream(s) if keys.contains(k) => Some((&k[..], &mut **s)),
            _ => None,
        });
        shared.store.flush_streams(db_idx as u32, streams)?;
    }
    shared.store.retire_tail(upto)
}
