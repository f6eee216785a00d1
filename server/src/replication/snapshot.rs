//! A full sync's snapshot: every key as the commands that rebuild it, in Brooklet's own
//! format. The payload starts with [`MAGIC`], then RESP commands the replica applies
//! through its ordinary apply path: `SELECT db`; per stream `REPLSTREAM key <records>`
//! (one per node, then one with its groups, IDMP state, retention and metadata); per
//! string `SET key value`; per deadline `PEXPIREAT key ms`.
//!
//! It is taken without stopping the server: every shard of every database is locked, in
//! database then shard order (the order every command that holds several takes them in),
//! the offset is read while all are held, and then each shard is serialized and let go in
//! turn. A shard's state is therefore exactly its state at that offset, and a write to it
//! waits only until it is serialized; once let go, its changes go into the stream after the
//! offset. Writers to shards already serialized go on meanwhile. The exclusive gate is
//! held while the shards are being locked, so no write that propagates after it changed
//! memory (one that is not a stream command) is caught between the two.

use super::backlog::encode_command;
use super::propagate::REPLSTREAM;
use crate::keyspace::Value;
use crate::state::Shared;

/// The first bytes of a Brooklet snapshot: anything else is not a Brooklet primary's.
pub const MAGIC: &[u8] = b"BROOKLET-SNAPSHOT-1\r\n";

/// Builds the snapshot; returns it with the offset it answers to.
pub fn build(shared: &Shared) -> (Vec<u8>, u64) {
    // Held only while the shards are locked: a write that is not a stream command changes
    // memory and is propagated later under the exclusive gate, so none is half done here.
    let gate = shared.gate_exclusive();
    let mut shards = Vec::new();
    for db in 0..shared.keyspace.count() {
        let database = shared.keyspace.db(db);
        for idx in 0..database.shard_count() {
            shards.push((db, database.lock_shard(idx)));
        }
    }
    let offset = {
        let mut b = shared.repl.backlog();
        // The stream after the snapshot starts with a SELECT, whatever the replica's
        // database is when its load ends.
        b.last_db = None;
        b.end()
    };
    drop(gate);
    let mut out = MAGIC.to_vec();
    let mut selected = None;
    for (db, mut shard) in shards {
        let keys: Vec<crate::small_bytes::SmallBytes> = shard.keys().cloned().collect();
        for key in keys {
            if selected != Some(db) {
                encode_command(&mut out, &[b"SELECT", db.to_string().as_bytes()]);
                selected = Some(db);
            }
            let deadline = shard.deadline(&key);
            if let Err(e) = shard.load_string(&shared.store, db, &key) {
                tracing::error!(
                    "snapshot of string '{}' is incomplete: {e}",
                    String::from_utf8_lossy(&key)
                );
            }
            match shard.get_mut(&key) {
                Some(Value::String(v, _, _)) => encode_command(&mut out, &[b"SET", &key, v]),
                Some(Value::StoredString(_)) => continue,
                Some(Value::Stream(s, _)) => {
                    let rebuilt = s.rebuild_records(|muts| {
                        let mut blob = Vec::new();
                        brooklet_persistence::encode_repl_changes(&mut blob, muts);
                        encode_command(&mut out, &[REPLSTREAM, &key, &blob]);
                    });
                    if let Err(e) = rebuilt {
                        tracing::error!(
                            "snapshot of stream '{}' is incomplete: {e}",
                            String::from_utf8_lossy(&key)
                        );
                    }
                }
                None => continue,
            }
            if let Some(at) = deadline {
                encode_command(&mut out, &[b"PEXPIREAT", &key, at.to_string().as_bytes()]);
            }
        }
        // Let go: writes to this shard go on, into the stream after the offset.
        drop(shard);
    }
    (out, offset)
}
