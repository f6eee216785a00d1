//! Key deadlines: removing a key whose deadline passed, lazily (a command about to touch it)
//! or actively (a background sweep, `expire_task.rs`).
//!
//! A removal is persisted under the shard lock like a DEL (a stream through
//! `Store::delete_stream`, a string with its deadline record), so a later write to the same
//! key always reaches the store after it.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::keyspace::{Shard, Value};
use crate::notify::EventClass;
use crate::publish::keyspace_event;
use crate::state::Shared;

pub use crate::client::now_ms;

/// What removing expired keys did: the keys removed and the store's sequence.
#[derive(Debug, Default)]
pub struct Expired {
    /// The keys removed.
    pub keys: Vec<Bytes>,
    /// The sequence of the last store write (0 = none).
    pub seq: u64,
}

/// Removes `key` of database `db` if its deadline passed at `now`; then publishes `expired`
/// and counts it. Returns the removal when there was one.
pub fn expire_if_due(shared: &Arc<Shared>, db: usize, key: &Bytes, now: u64) -> Option<Expired> {
    if shared.removals_held() {
        return None;
    }
    let database = shared.keyspace.db(db);
    let out = {
        let mut shard = database.lock(key);
        shard.due(key, now)?;
        remove_locked(shared, db, &mut shard, std::slice::from_ref(key))
    };
    announce(shared, db, &out);
    Some(out)
}

/// Removes up to `max` keys of shard `idx` of database `db` whose deadline passed at `now`;
/// publishes their events. The second value says whether due keys are left.
pub fn expire_due_in_shard(
    shared: &Arc<Shared>,
    db: usize,
    idx: usize,
    now: u64,
    max: usize,
) -> (Expired, bool) {
    if shared.removals_held() {
        return (Expired::default(), false);
    }
    let database = shared.keyspace.db(db);
    let (out, more) = {
        let mut shard = database.lock_shard(idx);
        let mut due = Vec::new();
        while due.len() < max {
            match shard.first_due(now) {
                Some(k) => {
                    // Off the deadline list now, so the loop moves on; removed below.
                    let k = k.to_bytes();
                    let delta = shard.set_deadline(&k, None);
                    database.note_deadlines(delta);
                    due.push(k);
                }
                None => break,
            }
        }
        let more = shard.first_due(now).is_some();
        let out = remove_taken(shared, db, &mut shard, &due);
        (out, more)
    };
    announce(shared, db, &out);
    (out, more)
}

/// Removes `keys` (each with a passed deadline) from a locked shard and from the store.
fn remove_locked(shared: &Shared, db: usize, shard: &mut Shard, keys: &[Bytes]) -> Expired {
    let database = shared.keyspace.db(db);
    for k in keys {
        let delta = shard.set_deadline(k, None);
        database.note_deadlines(delta);
    }
    remove_taken(shared, db, shard, keys)
}

/// Removes `keys`, whose deadlines are already gone, from a locked shard and the store.
fn remove_taken(shared: &Shared, db: usize, shard: &mut Shard, keys: &[Bytes]) -> Expired {
    let mut out = Expired::default();
    let mut strings: Vec<Bytes> = Vec::new();
    for k in keys {
        let Some(v) = shard.remove(k) else {
            continue;
        };
        if let Value::Stream(s, _) = &v {
            match shared.store.delete_stream(db as u32, k, s) {
                Ok(seq) => {
                    out.seq = out.seq.max(seq);
                    shared.keyspace.db(db).note_write(k, seq);
                }
                Err(e) => tracing::error!("removing an expired stream from the store: {e}"),
            }
        } else {
            strings.push(k.clone());
        }
        out.keys.push(k.clone());
    }
    if !strings.is_empty() {
        match shared
            .store
            .delete_strings(db as u32, strings.iter().map(|k| &k[..]))
        {
            Ok(seq) => {
                out.seq = out.seq.max(seq);
                for k in &strings {
                    shared.keyspace.db(db).note_write(k, seq);
                }
            }
            // The deadline is on disk: a restart removes these keys all the same.
            Err(e) => tracing::error!("removing expired strings from the store: {e}"),
        }
    }
    crate::replication::propagate::deleted(shared, db, &out.keys);
    // Counted under the shard lock, so INFO never shows fewer expired keys than DBSIZE and
    // KEYS show to be gone.
    shared
        .stats
        .expired_keys
        .fetch_add(out.keys.len() as u64, Ordering::Relaxed);
    out
}

/// Publishes the `expired` events of removed keys (no lock held).
fn announce(shared: &Arc<Shared>, db: usize, out: &Expired) {
    for k in &out.keys {
        keyspace_event(shared, EventClass::Expired, "expired", db, k);
    }
}
