//! Active expiry: a background sweep that removes keys whose deadline passed even when no
//! command touches them. Each step takes at most [`BATCH`] due keys of one shard under its
//! lock (found in deadline order, never by scanning), so a million keys expiring together
//! hold a shard's clients for one small batch at a time; a sweep stops after [`BUDGET`] and
//! the next starts at once while due keys are left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmd::dispatch::after_write;
use crate::expiry::{expire_due_in_shard, now_ms};
use crate::state::Shared;

/// How often the sweep looks for due keys when none were left.
const POLL: Duration = Duration::from_millis(100);

/// Pause between sweeps while due keys are left, so commands get the shards in between.
const BUSY_POLL: Duration = Duration::from_millis(5);

/// Keys removed under one shard lock.
const BATCH: usize = 64;

/// Longest sweep.
const BUDGET: Duration = Duration::from_millis(25);

/// Runs sweeps until shutdown begins.
pub async fn run(shared: Arc<Shared>) {
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    let mut wait = POLL;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut stopping => return,
        }
        let any = (0..shared.keyspace.count()).any(|db| shared.keyspace.db(db).expiring() > 0);
        if !any || shared.store.fault().is_some() {
            wait = POLL;
            continue;
        }
        let s = shared.clone();
        let more = tokio::task::spawn_blocking(move || sweep(&s))
            .await
            .unwrap_or(false);
        wait = if more { BUSY_POLL } else { POLL };
    }
}

/// One sweep over every database; true when it stopped with due keys left.
fn sweep(shared: &Arc<Shared>) -> bool {
    let started = Instant::now();
    for db in 0..shared.keyspace.count() {
        let database = shared.keyspace.db(db);
        if database.expiring() == 0 {
            continue;
        }
        for idx in 0..database.shard_count() {
            loop {
                let (out, more) = {
                    // Nothing expires between a transaction's commands.
                    let _gate = shared.gate_shared();
                    expire_due_in_shard(shared, db, idx, now_ms(), BATCH)
                };
                if !out.keys.is_empty() {
                    let touched: Vec<_> = out.keys.into_iter().map(|k| (db, k)).collect();
                    after_write(shared, &touched);
                }
                if !more {
                    break;
                }
                if started.elapsed() > BUDGET {
                    return true;
                }
            }
        }
    }
    false
}
