//! Time-based retention (XCFGSET MAXAGE, a Brooklet extension): a background task removes
//! the entries older than each stream's MAXAGE. It visits only the streams in
//! [`crate::retention_set::RetentionSet`], and removes at most
//! [`brooklet_streams::SLICE_ENTRIES`] entries per shard lock (one exact MINID trim under
//! the stream's policy, persisted as a trim is: a large one leaves its records to the
//! purge thread), so no client waits long for it; a sweep stops after [`BUDGET`] and the
//! next starts almost at once while expired entries are left, so millions go in seconds.
//! Each slice publishes `xtrim`, as a trim does, and dirties the key's WATCHers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::now_ms;
use crate::notify::EventClass;
use crate::publish::keyspace_event;
use crate::state::Shared;

/// How often the task looks when nothing was left to remove.
const POLL: Duration = Duration::from_millis(100);

/// Pause between sweeps while expired entries are left, so commands get the shards.
const BUSY_POLL: Duration = Duration::from_millis(2);

/// Longest sweep.
const BUDGET: Duration = Duration::from_millis(25);

/// How long a stream whose expired entries were all kept (ACKED: a group still needs
/// them) is left alone: each look walks them again, as an XTRIM ACKED would.
const KEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Streams left alone until the given time (see [`KEPT_BACKOFF`]).
type Backoff = HashMap<(usize, Bytes), Instant>;

/// Runs sweeps until shutdown begins.
pub async fn run(shared: Arc<Shared>) {
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    let mut wait = POLL;
    let mut backoff = Backoff::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut stopping => return,
        }
        if shared.retention.is_empty() || shared.store.admit().is_err() {
            wait = POLL;
            continue;
        }
        let s = shared.clone();
        let (more, left) = tokio::task::spawn_blocking(move || {
            let more = sweep(&s, &mut backoff);
            (more, backoff)
        })
        .await
        .unwrap_or_default();
        backoff = left;
        wait = if more { BUSY_POLL } else { POLL };
    }
}

/// What one slice found.
enum Slice {
    /// The key is gone, holds no stream, or its retention is off: it left the set.
    Forgotten,
    /// Removed this many entries; `more` when another slice may remove more now; `kept`
    /// when expired entries are left that the policy keeps.
    Done {
        removed: u64,
        more: bool,
        kept: bool,
    },
}

/// One sweep over the set; true when it stopped with expired entries left.
fn sweep(shared: &Arc<Shared>, backoff: &mut Backoff) -> bool {
    let started = Instant::now();
    backoff.retain(|_, until| *until > started);
    for (db, key) in shared.retention.snapshot() {
        if backoff.contains_key(&(db, key.clone())) {
            continue;
        }
        loop {
            if shared.store.admit().is_err() {
                return false;
            }
            let slice = {
                // Nothing is removed between a transaction's commands.
                let _gate = shared.gate_shared();
                slice(shared, db, &key)
            };
            let more = match slice {
                Slice::Forgotten => false,
                Slice::Done {
                    removed,
                    more,
                    kept,
                } => {
                    if removed > 0 {
                        keyspace_event(shared, EventClass::Stream, "xtrim", db, &key);
                        shared.watches.touch(db, &key);
                    }
                    if kept {
                        backoff.insert((db, key.clone()), Instant::now() + KEPT_BACKOFF);
                    }
                    more
                }
            };
            if !more {
                break;
            }
            if started.elapsed() > BUDGET {
                return true;
            }
        }
    }
    false
}

/// Runs one slice on the stream at `key` of `db` under its shard lock.
fn slice(shared: &Arc<Shared>, db: usize, key: &Bytes) -> Slice {
    if db >= shared.keyspace.count() {
        shared.retention.remove(db, key);
        return Slice::Forgotten;
    }
    let mut shard = shared.keyspace.db(db).lock(key);
    // Matched, not read through `stream_mut`: the sweep is no access (OBJECT IDLETIME).
    let stream = match shard.get_mut(key) {
        Some(crate::keyspace::Value::Stream(s, _)) if s.retention().is_on() => s,
        _ => {
            shared.retention.remove(db, key);
            return Slice::Forgotten;
        }
    };
    // A replica's streams are trimmed by its primary's records.
    if shared.removals_held() {
        return Slice::Done {
            removed: 0,
            more: false,
            kept: false,
        };
    }
    let mut out = Vec::new();
    let result = stream.retention_slice(now_ms(), &mut out);
    // A slice that failed after changing memory is written all the same, as a command's.
    if !out.is_empty()
        && let Err(e) = shared.store.write_stream(db as u32, key, stream, &out)
    {
        tracing::warn!(
            "retention of stream '{}' could not be written: {e}",
            String::from_utf8_lossy(key)
        );
        return Slice::Done {
            removed: 0,
            more: false,
            kept: false,
        };
    }
    crate::replication::propagate::stream_change(shared, db, key, &out, false, &[Some("xtrim")]);
    if !out.is_empty() && !stream.has_source() {
        stream.attach_source(shared.store.source(db as u32, key));
    }
    let now = now_ms();
    match result {
        Ok(r) => Slice::Done {
            removed: r.removed,
            more: r.more,
            kept: !r.more && stream.retention_due(now),
        },
        Err(e) => {
            tracing::warn!(
                "retention of stream '{}' stopped: {e}",
                String::from_utf8_lossy(key)
            );
            Slice::Done {
                removed: 0,
                more: false,
                kept: false,
            }
        }
    }
}
