//! The readings behind `maxmemory` (Redis's `noeviction` policy): commands flagged `denyoom`
//! are refused with `-OOM` while the memory in use is over the limit.
//!
//! Reading jemalloc's statistics costs an epoch advance (a merge of every arena's counters),
//! so commands never read them: a task does every [`TICK`] and leaves its verdict in
//! [`MemoryGuard`](crate::memory_guard::MemoryGuard). Nodes older than a stream's newest are
//! a cache of what is on disk, so from [`SQUEEZE_PERCENT`] of the limit on the task empties
//! it, on a thread of its own while the readings go on: the `stream-cache-bytes` budget drops
//! to zero, logged appends are checkpointed into fjall (a node holding appends only the tail
//! log has cannot leave memory), and every stream sheds its cached nodes. What still counts
//! is what must stay in memory: stream and group metadata, newest nodes, client buffers, the
//! store's memtables and block cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::keyspace::Value;
use crate::state::Shared;

/// How often the memory in use is read against the limit (Redis's `hz` default of 10).
const TICK: Duration = Duration::from_millis(100);

/// Readings between two walks of every stream while memory stays near the limit.
const FREE_EVERY: u32 = 3;

/// The node cache is emptied once the memory in use passes this share of the limit (in
/// percent), so that it gives memory back before writes are refused.
const SQUEEZE_PERCENT: u64 = 90;

/// The node cache gets its budget back once the memory in use falls under this share of
/// the limit (in percent), so that it does not flap around the limit.
const RESTORE_PERCENT: u64 = 75;

/// Reads the memory in use against the limit every [`TICK`] until shutdown begins.
pub async fn run(shared: Arc<Shared>) {
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_free = 0;
    let freeing = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopping => return,
        }
        if check(&shared, since_free) && !freeing.swap(true, Ordering::Relaxed) {
            since_free = 0;
            // Emptying the cache walks every stream and may checkpoint: on a thread of its
            // own, while the readings (and refusals) go on.
            let (s, done) = (shared.clone(), freeing.clone());
            tokio::task::spawn_blocking(move || {
                free_cache(&s);
                done.store(false, Ordering::Relaxed);
            });
        } else {
            since_free = since_free.saturating_add(1);
        }
    }
}

/// One reading (an epoch advance and a counter of jemalloc's): records whether `denyoom`
/// commands are refused, cuts the node cache's budget once memory nears the limit and gives
/// it back once well under it. Returns whether the cache should be emptied now: when the
/// budget was just cut, and again every [`FREE_EVERY`] readings (`since_free`) while memory
/// stays near the limit (reads refill the cache meanwhile).
fn check(shared: &Shared, since_free: u32) -> bool {
    let guard = &shared.memory;
    let limit = guard.limit.load(Ordering::Relaxed);
    if limit == 0 {
        // Read anyway: the peak (MEMORY STATS, INFO) is kept from these readings.
        crate::mem_report::reading();
        guard.over.store(false, Ordering::Relaxed);
        if guard.squeezed.swap(false, Ordering::Relaxed) {
            restore_cache(shared);
        }
        return false;
    }
    let used = crate::mem_report::reading();
    let over = used > limit;
    if over != guard.over.swap(over, Ordering::Relaxed) {
        if over {
            tracing::warn!(
                "used memory {used} bytes is over maxmemory {limit}: commands that add data are refused (-OOM)"
            );
        } else {
            tracing::info!(
                "used memory {used} bytes is under maxmemory {limit} again: writes accepted"
            );
        }
    }
    if used > limit / 100 * SQUEEZE_PERCENT {
        let newly = !guard.squeezed.swap(true, Ordering::Relaxed);
        if newly {
            tracing::info!(
                "used memory {used} bytes is near maxmemory {limit}: stream nodes older than the newest are no longer cached"
            );
            shared.store.set_stream_cache_bytes(0);
        }
        return newly || since_free >= FREE_EVERY;
    }
    if used <= limit / 100 * RESTORE_PERCENT && guard.squeezed.swap(false, Ordering::Relaxed) {
        restore_cache(shared);
    }
    false
}

/// Gives the node cache its configured budget back.
fn restore_cache(shared: &Shared) {
    let bytes = shared.config().stream_cache_bytes;
    shared
        .store
        .set_stream_cache_bytes(usize::try_from(bytes).unwrap_or(usize::MAX));
}

/// Writes the logged appends into fjall, so the nodes holding them may leave memory, then
/// has every stream shed its cached nodes down to the (zero) budget.
fn free_cache(shared: &Shared) {
    // As SAVE does; a no-op when nothing is logged. Errors leave the appends in memory,
    // where they are still served from; the store reports the failure itself.
    let flushed = shared
        .store
        .close_tail_segment()
        .map_err(|e| e.to_string())
        .and_then(|()| crate::checkpoint::checkpoint(shared).map_err(|e| e.to_string()));
    if let Err(e) = flushed {
        tracing::warn!("checkpoint to free memory failed: {e}");
    }
    // Written strings sit in fjall's memtable too until it is flushed.
    if let Err(e) = shared.store.shed_string_memtable() {
        tracing::warn!("flushing the strings' memtable to free memory failed: {e}");
    }
    let ks = &shared.keyspace;
    for db in 0..ks.count() {
        ks.db(db).for_each_value_mut(|value| match value {
            Value::Stream(s, _) => s.shed_cache(),
            Value::String(..) | Value::StoredString(_) => {}
        });
    }
}
