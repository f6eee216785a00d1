//! Dead-lettering's side of the write sequence (`write.rs` runs it): a write to a stream
//! whose groups have dead-letter streams holds the shard locks of all of them, taken in
//! shard order (so two such writes never wait on each other in a circle), because the
//! command may move entries into one of them; the dead-letter entries are built here.

use std::sync::MutexGuard;

use bytes::Bytes;

use brooklet_streams::{DeadLetter, IdSpec, Mutation, NodeLimits, Stream, StreamError};

use crate::keyspace::{Db, Shard};

/// The shard locks of a stream and of its groups' dead-letter streams, in shard order.
pub(crate) struct DeadLetterLocks<'a> {
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
}

impl<'a> DeadLetterLocks<'a> {
    /// The locked shard that owns `key` (one of the keys the locks were taken for).
    pub(crate) fn shard(&mut self, db: &Db, key: &[u8]) -> Option<&mut Shard> {
        let idx = db.shard_of(key);
        self.guards
            .iter_mut()
            .find(|(i, _)| *i == idx)
            .map(|(_, g)| &mut **g)
    }

    fn holds(&self, idx: usize) -> bool {
        self.guards.iter().any(|(i, _)| *i == idx)
    }
}

/// The shards a write to `key` must hold: its own and its groups' dead-letter streams'.
/// None when the key is missing, not a stream, or no group has a dead-letter stream.
fn shards_for(db: &Db, shard: &Shard, key: &[u8]) -> Option<Vec<usize>> {
    let stream = shard.get(key)?.stream().ok()?;
    let mut idx: Vec<usize> = stream.dead_letter_keys().map(|k| db.shard_of(k)).collect();
    if idx.is_empty() {
        return None;
    }
    idx.push(db.shard_of(key));
    idx.sort_unstable();
    idx.dedup();
    Some(idx)
}

/// Whether `stream` has a group with a dead-letter stream (a write to it then goes
/// through [`lock_with_dead_letters`]).
pub(crate) fn has_dead_letters(stream: &Stream) -> bool {
    stream.dead_letter_keys().next().is_some()
}

/// Locks `key`'s shard and those of its dead-letter streams, in shard order. None when,
/// once locked, the key is missing, not a stream or without dead-letter streams: the
/// ordinary write sequence then applies.
pub(crate) fn lock_with_dead_letters<'a>(db: &'a Db, key: &[u8]) -> Option<DeadLetterLocks<'a>> {
    loop {
        let wanted = {
            let shard = db.lock(key);
            shards_for(db, &shard, key)?
        };
        let locks = DeadLetterLocks {
            guards: wanted.iter().map(|&i| (i, db.lock_shard(i))).collect(),
        };
        let own = db.shard_of(key);
        let (_, shard) = locks.guards.iter().find(|(i, _)| *i == own)?;
        // XGROUP SETDLQ may have run between the look and the locks.
        match shards_for(db, shard, key) {
            None => return None,
            Some(now) if now.iter().all(|i| locks.holds(*i)) => return Some(locks),
            Some(_) => {}
        }
    }
}

/// The dead-letter records among a command's changes.
pub(crate) fn dead_letters(muts: &[Mutation]) -> Vec<DeadLetter> {
    muts.iter()
        .filter_map(|m| match m {
            Mutation::DeadLettered(d) => Some((**d).clone()),
            _ => None,
        })
        .collect()
}

/// Appends each dead-lettered entry of stream `source` to `dlq` (auto IDs), recording the
/// appends in `out`.
///
/// # Errors
/// When the dead-letter stream cannot take an auto ID (its last ID is the largest there is).
pub(crate) fn append_dead_letters(
    dlq: &mut Stream,
    source: &Bytes,
    dead: &[DeadLetter],
    now_ms: u64,
    limits: &NodeLimits,
    out: &mut Vec<Mutation>,
) -> Result<(), StreamError> {
    for d in dead {
        dlq.add(
            IdSpec::Auto,
            &d.entry_fields(source),
            None,
            now_ms,
            limits,
            out,
        )?;
    }
    Ok(())
}
