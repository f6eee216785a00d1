//! Commands: one file per family (`stream.rs`, `stream_group.rs`, ...), each a list of
//! [`CommandSpec`]s with their handlers, and the context a handler runs in ([`Ctx`]).
//!
//! A handler parses its arguments into a typed struct (`XAddArgs::parse`), then applies it;
//! a stream write is one `Ctx::write_stream` call (`write.rs`), which runs the sequence
//! every write shares: lock, apply, persist, unlock, keyspace events, wake-ups.
//!
//! The modules form layers, each using only those below it: `table` (the table's shape),
//! this file (the handler context), `reply` (shared reply shapes), `write` (the write
//! sequence), `call` (running one handler), `command_docs` (every command's documentation,
//! as data), the families, and on top `dispatch`, which assembles the table and runs
//! requests: it checks arity, authentication, subscribed mode and MULTI queuing from the
//! table, for every command alike, before it calls the handler.

pub(crate) mod acl;
mod call;
mod client;
mod command_docs;
mod connection;
mod dead_letter;
pub(crate) mod dispatch;
mod docs;
mod dump;
mod expire;
mod getkeys;
mod keys;
mod keys_move;
mod latency;
mod long_double;
mod memory;
mod monitor;
mod object;
mod observe;
mod persist;
mod pubsub;
mod redis_info;
mod replication;
mod reply;
mod server;
mod slowlog;
mod stream;
mod stream_dlq;
mod stream_group;
mod stream_idmp;
mod stream_info;
mod stream_nack;
mod stream_read;
mod string_args;
mod string_edit;
mod string_write;
mod strings;
pub(crate) mod table;
mod tx;
mod write;

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use brooklet_resp::Reply;

use crate::client::Client;
use crate::error::CommandError;
use crate::state::Shared;

/// A handler: runs one command whose arity was already checked (`argv[0]` is the name).
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Result<Reply, CommandError>;

/// A command of this server's table.
pub type CommandSpec = table::CommandSpec<Handler>;

/// The command table of this server.
pub type Commands = table::Table<Handler>;

/// What a command asks its connection to do after it ran.
pub enum Outcome {
    /// Nothing special.
    Continue,
    /// Wait for data on keys, then answer (the reply was not written yet).
    Block(BlockSpec),
    /// Close the connection once the replies written so far are sent.
    Close,
    /// CLIENT PAUSE holds the command back: run it again once the pause is lifted or ends.
    Paused {
        /// The command, to run again.
        argv: Vec<Bytes>,
        /// Whether it writes or may propagate (what a WRITE pause holds back).
        write_like: bool,
    },
    /// The connection becomes a replica's feed (PSYNC, SYNC).
    Replica(crate::replication::primary::Start),
    /// Answer once replicas (and the local disk) acknowledged (WAIT, WAITAOF).
    Wait(WaitSpec),
}

/// What a command hands its connection instead of a reply.
#[derive(Debug)]
pub enum Takeover {
    /// Feed a replica on this connection.
    Replica(crate::replication::primary::Start),
    /// Wait for acknowledgements.
    Wait(WaitSpec),
}

pub use crate::replication::WaitSpec;

/// A blocking command that found nothing to return yet.
#[derive(Debug)]
pub struct BlockSpec {
    /// Keys whose change should re-run the command.
    pub keys: Vec<Bytes>,
    /// How long to wait; None waits forever (BLOCK 0).
    pub timeout: Option<Duration>,
    /// The command to re-run, with `$` resolved to concrete IDs.
    pub argv: Vec<Bytes>,
    /// What to answer on timeout.
    pub timeout_reply: Reply,
}

/// What a handler can reach: the shared state, the command table and its own client.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Arc<Shared>,
    /// The command table (COMMAND describes it, EXEC runs from it, INFO counts by it).
    pub commands: &'static Commands,
    /// The calling client's connection-local state.
    pub client: &'a mut Client,
    /// Keys this command changed (watchers are dirtied and waiters served afterwards).
    pub touched: Vec<(usize, Bytes)>,
    /// Keys whose blocked readers may now be served although the key did not change for
    /// its watchers (XNACK: Redis signals the key ready without dirtying WATCH).
    pub ready: Vec<(usize, Bytes)>,
    /// Set by a blocking command that found nothing and may block.
    pub block: Option<BlockSpec>,
    /// Set by QUIT or a kill of oneself.
    pub close: bool,
    /// This run re-runs a blocked command after a write to one of its keys.
    pub rerun: bool,
    /// Store sequence the reply waits for (0 = none): that of this command's last write,
    /// or of the last change to a stream it shows ([`Ctx::show`]). The reply is held until
    /// the store says the sequence is safe: on disk under `appendfsync always`, in the OS's
    /// hands otherwise.
    pub write_seq: u64,
    /// Set by PSYNC, SYNC, WAIT and WAITAOF: the connection acts on it instead of replying.
    pub takeover: Option<Takeover>,
}

impl<'a> Ctx<'a> {
    /// A context for one command of `client`.
    pub fn new(
        shared: &'a Arc<Shared>,
        commands: &'static Commands,
        client: &'a mut Client,
    ) -> Self {
        Ctx {
            shared,
            commands,
            touched: std::mem::take(&mut client.spare_touched),
            client,
            ready: Vec::new(),
            write_seq: 0,
            block: None,
            close: false,
            rerun: false,
            takeover: None,
        }
    }

    /// The selected database.
    pub fn db(&self) -> &'a crate::keyspace::Db {
        self.shared.keyspace.db(self.client.db)
    }

    /// `key`'s value in the locked `shard` of the selected database, read back first if it is
    /// a string start-up left on disk ([`crate::keyspace::Shard::load_string`]).
    pub fn load_string<'s>(
        &self,
        shard: &'s mut crate::keyspace::Shard,
        key: &[u8],
    ) -> Result<Option<&'s mut crate::keyspace::Value>, CommandError> {
        shard.load_string(&self.shared.store, self.client.db, key)
    }

    /// Writes a command's changes to the stream at `key` as one batch. Call it with the shard
    /// lock still held, so batches reach the store in the order the changes were made.
    ///
    /// A stream new to the store gets its entry source here: from then on its older nodes
    /// may leave memory, since the store holds them.
    pub fn persist(
        &mut self,
        key: &[u8],
        stream: &mut brooklet_persistence::StoredStream,
        muts: &[brooklet_streams::Mutation],
    ) -> Result<(), CommandError> {
        if muts.is_empty() {
            return Ok(());
        }
        let seq = self
            .shared
            .store
            .write_stream(self.client.db as u32, key, stream, muts)
            .map_err(store_error)?;
        self.write_seq = self.write_seq.max(seq);
        if !stream.has_source() {
            stream.attach_source(self.shared.store.source(self.client.db as u32, key));
        }
        Ok(())
    }

    /// Notes that the reply shows `stream` (its entries, length, groups or pending entries):
    /// the reply waits, as a write's does, until the stream's last change is safe, so no
    /// reader is shown a change the store could still lose (memory does not run ahead of
    /// disk for readers). After a fault that needs a restart, a stream whose last change
    /// never became safe is refused: a restart reads back what the disk holds of it.
    pub fn show(
        &mut self,
        stream: &brooklet_persistence::StoredStream,
    ) -> Result<(), CommandError> {
        self.shared.stats.keyspace_hits.add(1);
        let seq = stream.seq();
        if seq > self.write_seq {
            let store = &self.shared.store;
            if store.failed() && seq > store.safe_seq() {
                return Err(in_doubt_error(
                    store,
                    "This stream's last change may not be on disk, so it",
                ));
            }
            self.write_seq = seq;
        }
        Ok(())
    }

    /// Removes the key `key`, which held `gone`, from the store (DEL, UNLINK, a string
    /// overwriting a stream); call with the shard lock held.
    pub fn persist_delete(
        &mut self,
        key: &[u8],
        gone: &crate::keyspace::Value,
    ) -> Result<(), CommandError> {
        let db = self.client.db as u32;
        let seq = match gone {
            crate::keyspace::Value::Stream(stream, _) => {
                self.shared.store.delete_stream(db, key, stream)
            }
            crate::keyspace::Value::String(..) | crate::keyspace::Value::StoredString(_) => {
                self.shared.store.delete_strings(db, [key])
            }
        }
        .map_err(store_error)?;
        self.db().note_write(key, seq);
        self.write_seq = self.write_seq.max(seq);
        Ok(())
    }

    /// Records that `key` of the selected database changed.
    pub fn key_changed(&mut self, key: &Bytes) {
        self.touched.push((self.client.db, key.clone()));
    }

    /// Whether this command may block (not inside MULTI/EXEC, as in Redis).
    #[allow(dead_code)] // used by the blocking stream readers
    pub fn may_block(&self) -> bool {
        !self.client.in_exec
    }
}

/// The error a client sees when the store refuses a write (as Redis's MISCONF for a failing AOF).
pub(crate) fn store_error(e: brooklet_persistence::StoreError) -> CommandError {
    // A refusal was logged once, when the fault began; each refused write is not.
    if !matches!(e, brooklet_persistence::StoreError::Fault(_)) {
        tracing::error!("write to the store failed: {e}");
    }
    CommandError::text(format!("MISCONF Errors writing to the data directory: {e}"))
}

/// The error a read gets, after a fault that needs a restart, when what it would show may
/// not be on disk (`what` says what, and is the subject of "is not shown").
pub(crate) fn in_doubt_error(store: &brooklet_persistence::Store, what: &str) -> CommandError {
    let fault = store
        .fault()
        .map_or_else(|| "a write failed".to_string(), |f| f.to_string());
    CommandError::text(format!(
        "MISCONF Errors writing to the data directory: {fault}. {what} is not shown until then"
    ))
}

/// Puts the streams recovered from the store into the keyspace (start-up, DEBUG RELOAD),
/// then the strings and deadlines. A key whose deadline passed while the server was down is
/// removed from the store instead, as is a deadline left without its key.
pub(crate) fn install_loaded(shared: &Shared, loaded: Vec<brooklet_persistence::LoadedStream>) {
    let fits = |db: usize, key: &[u8], what: &str| {
        let ok = db < shared.keyspace.count();
        if !ok {
            tracing::warn!(
                "{what} '{}' of database {db} is not loaded: only {} databases are configured",
                String::from_utf8_lossy(key),
                shared.keyspace.count()
            );
        }
        ok
    };
    for l in loaded {
        let db = l.db as usize;
        if !fits(db, &l.key, "stream") {
            continue;
        }
        let mut shard = shared.keyspace.db(db).lock(&l.key);
        if l.stream.retention().is_on() {
            shared.retention.add(db, &l.key);
        }
        shard.insert(
            l.key,
            crate::keyspace::Value::stream_value(Box::new(l.stream)),
        );
    }
    let keys = match shared.store.load_keys() {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!("loading strings and deadlines failed: {e}");
            return;
        }
    };
    for s in keys.strings {
        let db = s.db as usize;
        if fits(db, &s.key, "string") {
            shared.keyspace.db(db).lock(&s.key).insert(
                s.key,
                s.value.map_or(
                    crate::keyspace::Value::StoredString(crate::access::Access::new()),
                    |v| crate::keyspace::Value::string_value(v, crate::keyspace::StringForm::Whole),
                ),
            );
        }
    }
    let now = crate::client::now_ms();
    for d in keys.deadlines {
        let db = d.db as usize;
        if db >= shared.keyspace.count() {
            continue;
        }
        let database = shared.keyspace.db(db);
        let mut shard = database.lock(&d.key);
        let removed = if !shard.contains_key(&d.key) {
            shared.store.set_deadline(d.db, &d.key, None)
        } else if d.at_ms <= now {
            match shard.remove(&d.key) {
                Some(crate::keyspace::Value::Stream(s, _)) => {
                    shared.store.delete_stream(d.db, &d.key, &s)
                }
                _ => shared.store.delete_strings(d.db, [&d.key[..]]),
            }
        } else {
            let delta = shard.set_deadline(&d.key, Some(d.at_ms));
            database.note_deadlines(delta);
            Ok(0)
        };
        if let Err(e) = removed {
            tracing::error!("removing an expired key at start-up failed: {e}");
        }
    }
}
