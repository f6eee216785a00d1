//! A full sync's snapshot: every key as the commands that rebuild it, in Brooklet's own
//! format. The payload starts with [`MAGIC`], then RESP commands the replica applies
//! through its ordinary apply path: `SELECT db`; per stream `REPLSTREAM key <records>`
//! (one per node, then one with its groups, IDMP state, retention and metadata); per
//! string `SET key value`; per deadline `PEXPIREAT key ms`.
//!
//! It is taken under the exclusive gate, so no command runs while it is built and the
//! offset it answers to is exact: every change after it is in the stream that follows.
//! The background removals (expiry, retention) do not take the gate; what they change while
//! the snapshot is built is in the snapshot or not, and in the stream after it either way,
//! and both are idempotent (DEL of a missing key, a trim through an ID already trimmed).

use bytes::Bytes;

use super::backlog::encode_command;
use super::propagate::REPLSTREAM;
use crate::keyspace::Value;
use crate::state::Shared;

/// The first bytes of a Brooklet snapshot: anything else is not a Brooklet primary's.
pub const MAGIC: &[u8] = b"BROOKLET-SNAPSHOT-1\r\n";

/// Builds the snapshot; returns it with the offset it answers to.
pub fn build(shared: &Shared) -> (Vec<u8>, u64) {
    let _gate = shared.gate_exclusive();
    let offset = {
        let mut b = shared.repl.backlog();
        // The stream after the snapshot starts with a SELECT, whatever the replica's
        // database is when its load ends.
        b.last_db = None;
        b.end()
    };
    let mut out = MAGIC.to_vec();
    for db in 0..shared.keyspace.count() {
        let database = shared.keyspace.db(db);
        let mut selected = false;
        for idx in 0..database.shard_count() {
            let mut shard = database.lock_shard(idx);
            let keys: Vec<Bytes> = shard.keys().cloned().collect();
            for key in keys {
                if !selected {
                    encode_command(&mut out, &[b"SELECT", db.to_string().as_bytes()]);
                    selected = true;
                }
                let deadline = shard.deadline(&key);
                match shard.get_mut(&key) {
                    Some(Value::String(v)) => encode_command(&mut out, &[b"SET", &key, v]),
                    Some(Value::Stream(s)) => {
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
        }
    }
    (out, offset)
}
