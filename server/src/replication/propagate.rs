//! What goes into the change stream, always under the locks that ordered the change, so
//! the stream holds every key's changes in the order they were made.
//!
//! A stream's changes go as the `Mutation` records the command produced, the same records
//! the store logs and recovery replays, in one internal command:
//! `REPLSTREAM key <records> [event ...]` (the replica applies them with `Stream::apply`,
//! stores them as its own, publishes the events and wakes blocked readers). Every other
//! write goes as Redis propagates it: a deterministic command. String and deadline
//! commands are sent as the state they left (`SET key value`, `PEXPIREAT key ms`, `PERSIST
//! key`, `DEL key`), which makes relative times and computed values (EXPIRE, SETEX,
//! INCRBYFLOAT, GETEX) exact; the rest (DEL, RENAME, COPY, MOVE, SWAPDB, FLUSHDB,
//! FLUSHALL, PUBLISH) as they were sent, and APPEND and SETRANGE too: the bytes they write,
//! not the string they leave, which a replica's primary link finds as the primary left it. Those run under the exclusive gate while
//! replication is active, so nothing is propagated between their change and their record.

use bytes::Bytes;
use hashbrown::HashSet;

use super::backlog::encode_command;
use crate::keyspace::Value;
use crate::state::Shared;

/// The internal command carrying a stream's records.
pub const REPLSTREAM: &[u8] = b"REPLSTREAM";

/// Propagates the records `muts` of the stream `key` in database `db`, with the keyspace
/// events to publish on replicas (`new` first for a created key). Call under the key's
/// shard lock, after the store took the change.
pub fn stream_change(
    shared: &Shared,
    db: usize,
    key: &[u8],
    muts: &[brooklet_streams::Mutation],
    created: bool,
    events: &[Option<&'static str>],
) {
    let repl = &shared.repl;
    if !repl.is_active() || muts.is_empty() {
        return;
    }
    // The records are encoded into a buffer each thread keeps, and the command straight
    // into the backlog: nothing is allocated per change once the buffer has grown.
    BLOB.with_borrow_mut(|blob| {
        blob.clear();
        brooklet_persistence::encode_repl_changes(blob, muts);
        let head: [&[u8]; 3] = [REPLSTREAM, key, blob];
        let args = head
            .into_iter()
            .chain(created.then_some(&b"new"[..]))
            .chain(events.iter().flatten().map(|e| e.as_bytes()));
        repl.feed_command(Some(db), args);
        // A buffer grown by one huge change is not kept.
        if blob.capacity() > 1 << 20 {
            *blob = Vec::new();
        }
    });
}

std::thread_local!(static BLOB: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });

/// [`stream_change`] for a stream the command created: its IDMP settings (taken from the
/// primary's configuration, which a replica's may not share) go first.
pub fn stream_created(
    shared: &Shared,
    db: usize,
    key: &[u8],
    idmp: brooklet_streams::IdmpConfig,
    muts: &[brooklet_streams::Mutation],
    events: &[Option<&'static str>],
) {
    if !shared.repl.is_active() {
        return;
    }
    let mut all = Vec::with_capacity(muts.len() + 1);
    all.push(brooklet_streams::Mutation::IdmpConfigSet {
        duration: idmp.duration,
        maxsize: idmp.maxsize,
    });
    all.extend_from_slice(muts);
    stream_change(shared, db, key, &all, true, events);
}

/// Propagates the removal of `keys` of database `db` (expiry): `DEL` for each, as Redis
/// sends its replicas. Call under the keys' shard lock.
pub fn deleted(shared: &Shared, db: usize, keys: &[Bytes]) {
    if !shared.repl.is_active() || keys.is_empty() {
        return;
    }
    let mut frame = Vec::new();
    for k in keys {
        encode_command(&mut frame, &[b"DEL", k]);
    }
    shared.repl.feed(Some(db), &frame);
}

/// Whether a write command's changes reach the stream through [`stream_change`] (the
/// stream commands, whose handlers write through `Ctx::write_stream`), not as a command.
pub fn by_records(name: &str) -> bool {
    name.starts_with('x') || name == "replstream"
}

/// Whether a write command is propagated as sent.
fn verbatim(name: &str) -> bool {
    matches!(
        name,
        "append"
            | "del"
            | "unlink"
            | "rename"
            | "renamenx"
            | "setrange"
            | "copy"
            | "move"
            | "swapdb"
            | "flushdb"
            | "flushall"
            | "publish"
            | "spublish"
    )
}

/// Propagates a write command other than a stream command, after it ran: as sent, or as
/// the state of the keys it touched (`touched`, database and key).
pub fn command(shared: &Shared, db: usize, name: &str, argv: &[Bytes], touched: &[(usize, Bytes)]) {
    if !shared.repl.is_active() {
        return;
    }
    if verbatim(name) {
        if name != "publish"
            && name != "spublish"
            && touched.is_empty()
            && !name.starts_with("flush")
            && name != "swapdb"
        {
            return;
        }
        let args: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
        let mut frame = Vec::new();
        encode_command(&mut frame, &args);
        shared.repl.feed(Some(db), &frame);
        return;
    }
    // A key touched twice (MSET k a k b) is sent once, as it was left.
    let mut seen: HashSet<&(usize, Bytes)> = HashSet::with_capacity(touched.len());
    for t in touched {
        if !seen.insert(t) {
            continue;
        }
        let (kdb, key) = (t.0, &t.1);
        let mut frame = Vec::new();
        {
            let shard = shared.keyspace.db(kdb).lock(key);
            let deadline = shard.deadline(key).map(|d| d.to_string());
            match shard.get(key) {
                None => encode_command(&mut frame, &[b"DEL", key]),
                Some(Value::String(v, _, _)) => {
                    encode_command(&mut frame, &[b"SET", key, v]);
                    if let Some(d) = &deadline {
                        encode_command(&mut frame, &[b"PEXPIREAT", key, d.as_bytes()]);
                    }
                }
                // The value did not change (a write would have loaded it): the deadline did.
                Some(Value::Stream(..) | Value::StoredString(_)) => match &deadline {
                    Some(d) => encode_command(&mut frame, &[b"PEXPIREAT", key, d.as_bytes()]),
                    None => encode_command(&mut frame, &[b"PERSIST", key]),
                },
            }
            shared.repl.feed(Some(kdb), &frame);
        }
    }
}
