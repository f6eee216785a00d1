//! The command table and dispatch.
//!
//! Every command is described once in a static [`CommandSpec`] (name, arity, flags, key
//! positions, docs). [`execute`] checks arity, authentication, subscribed mode and MULTI
//! queuing from the table, for every command alike, before it calls the handler.

mod client;
mod connection;
pub use connection::REDIS_VERSION;
mod docs;
mod keys;
mod persist;
mod pubsub;
pub(crate) mod server;
pub(crate) use server as server_fields;
mod stream;
mod stream_group;
mod stream_info;
mod stream_read;
mod tx;

use bytes::Bytes;
use hashbrown::HashMap;
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use brooklet_resp::{ArgError, Reply};

use crate::client::{Client, ReplyMode};
use crate::state::Shared;

/// A handler: runs one command whose arity was already checked (`argv[0]` is the name).
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Result<Reply, CommandError>;

/// Command flags, named as COMMAND INFO names them.
pub mod flags {
    /// Changes data.
    pub const WRITE: u32 = 1;
    /// Reads data.
    pub const READONLY: u32 = 1 << 1;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 2;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 3;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 4;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 5;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 6;
    /// Refused inside MULTI.
    pub const NO_MULTI: u32 = 1 << 7;
    /// Allowed to a RESP2 client in subscribed mode.
    pub const SUBSCRIBED: u32 = 1 << 8;
    /// Runs at once even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const NOT_QUEUED: u32 = 1 << 9;
    /// Key positions are found by parsing (XREAD, XREADGROUP).
    pub const MOVABLE_KEYS: u32 = 1 << 10;
    /// Allowed while loading or stale (reported only).
    pub const LOADING: u32 = 1 << 11;
    /// Runs with every other keyed command held off, as EXEC does (FLUSHALL, DEBUG RELOAD).
    pub const EXCLUSIVE: u32 = 1 << 12;
}

/// Documentation of a command (COMMAND DOCS and redis-cli hints).
#[derive(Debug)]
pub struct Doc {
    /// Redis's command group.
    pub group: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// Argument syntax after the name: `UPPER` tokens, lower names, `[optional]`, `...`.
    pub syntax: &'static str,
}

impl Doc {
    /// Documentation of a command in `group`.
    pub const fn new(
        group: &'static str,
        summary: &'static str,
        since: &'static str,
        complexity: &'static str,
        syntax: &'static str,
    ) -> Doc {
        Doc {
            group,
            summary,
            since,
            complexity,
            syntax,
        }
    }
}

/// A command with a handler; `keys` is (first, last, step), (0, 0, 0) for none.
pub(crate) const fn command(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    handler: Handler,
    doc: Doc,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        handler: Some(handler),
        subcommands: &[],
        doc,
    }
}

/// A container (CLIENT, CONFIG, XGROUP...): its subcommands have the handlers.
pub(crate) const fn container(
    name: &'static str,
    subcommands: &'static [CommandSpec],
    doc: Doc,
) -> CommandSpec {
    CommandSpec {
        name,
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        key_step: 0,
        handler: None,
        subcommands,
        doc,
    }
}

/// A command with a handler and no key arguments.
pub(crate) const fn simple(
    name: &'static str,
    arity: i32,
    flags: u32,
    handler: Handler,
    doc: Doc,
) -> CommandSpec {
    command(name, arity, flags, (0, 0, 0), handler, doc)
}

/// One entry of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name (for a subcommand, just the subcommand's).
    pub name: &'static str,
    /// Redis arity: N exactly, -N at least N, counting the name.
    pub arity: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// First key position, 0 if none.
    pub first_key: i32,
    /// Last key position (-1 = last argument).
    pub last_key: i32,
    /// Step between keys.
    pub key_step: i32,
    /// The handler; None for a container whose subcommands have handlers.
    pub handler: Option<Handler>,
    /// Subcommands (CLIENT LIST, CONFIG GET...).
    pub subcommands: &'static [CommandSpec],
    /// Documentation.
    pub doc: Doc,
}

impl CommandSpec {
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

/// A command's full name and spec, as the flattened table holds them.
pub struct Entry {
    /// `xadd`, or `client|list` for a subcommand.
    pub full_name: String,
    /// The spec.
    pub spec: &'static CommandSpec,
    /// Index of the container for a subcommand.
    pub parent: Option<usize>,
}

/// The flattened table: commands then their subcommands, with a name index.
pub struct Table {
    /// Entries; indexes are stable for the life of the process.
    pub entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl Table {
    /// Looks a full name up, case-insensitively.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 48];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
        self.index.get(lower).copied()
    }

    /// Top-level commands, in table order.
    pub fn commands(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.parent.is_none())
    }
}

/// The process-wide command table.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let families: [&'static [CommandSpec]; 11] = [
            connection::COMMANDS,
            client::COMMANDS,
            tx::COMMANDS,
            server::COMMANDS,
            keys::COMMANDS,
            persist::COMMANDS,
            stream::COMMANDS,
            stream_read::COMMANDS,
            stream_group::COMMANDS,
            stream_info::COMMANDS,
            pubsub::COMMANDS,
        ];
        let mut entries = Vec::new();
        for spec in families.into_iter().flatten() {
            let parent = entries.len();
            entries.push(Entry {
                full_name: spec.name.to_string(),
                spec,
                parent: None,
            });
            for sub in spec.subcommands {
                entries.push(Entry {
                    full_name: format!("{}|{}", spec.name, sub.name),
                    spec: sub,
                    parent: Some(parent),
                });
            }
        }
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.full_name.clone(), i))
            .collect();
        Table { entries, index }
    })
}

/// A command's failure; `Display` is the exact error line Redis sends (without `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// A malformed argument.
    Arg(ArgError),
    /// `-WRONGTYPE`.
    WrongType,
    /// Any other error, with its full text.
    Other(Cow<'static, str>),
}

impl CommandError {
    /// An error with a fixed text.
    pub const fn msg(text: &'static str) -> Self {
        CommandError::Other(Cow::Borrowed(text))
    }

    /// An error with a formatted text.
    pub fn text(text: String) -> Self {
        CommandError::Other(Cow::Owned(text))
    }

    /// `ERR syntax error`.
    pub const fn syntax() -> Self {
        CommandError::Arg(ArgError::Syntax)
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Arg(e) => e.fmt(f),
            CommandError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CommandError::Other(t) => f.write_str(t),
        }
    }
}

impl From<ArgError> for CommandError {
    fn from(e: ArgError) -> Self {
        CommandError::Arg(e)
    }
}

impl From<CommandError> for Reply {
    fn from(e: CommandError) -> Self {
        Reply::error(e.to_string())
    }
}

/// What a command asks its connection to do after it ran.
pub enum Outcome {
    /// Nothing special.
    Continue,
    /// Wait for data on keys, then answer (the reply was not written yet).
    Block(BlockSpec),
    /// Close the connection once the replies written so far are sent.
    Close,
}

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

/// What a handler can reach: the shared state and its own client.
pub struct Ctx<'a> {
    /// Server-wide state.
    pub shared: &'a Arc<Shared>,
    /// The calling client's connection-local state.
    pub client: &'a mut Client,
    /// Keys this command changed (watchers are dirtied and waiters served afterwards).
    pub touched: Vec<(usize, Bytes)>,
    /// Set by a blocking command that found nothing and may block.
    pub block: Option<BlockSpec>,
    /// Set by QUIT or a kill of oneself.
    pub close: bool,
    /// Store sequence of this command's last write (0 = none): under `appendfsync always`
    /// its reply waits until the store says this sequence is on disk.
    pub write_seq: u64,
}

impl<'a> Ctx<'a> {
    /// A context for one command of `client`.
    pub fn new(shared: &'a Arc<Shared>, client: &'a mut Client) -> Self {
        Ctx {
            shared,
            client,
            touched: Vec::new(),
            write_seq: 0,
            block: None,
            close: false,
        }
    }

    /// The selected database.
    pub fn db(&self) -> &'a crate::keyspace::Db {
        self.shared.keyspace.db(self.client.db)
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

    /// Removes the stream at `key` from the store (DEL, UNLINK); call with the shard lock held.
    pub fn persist_delete(
        &mut self,
        key: &[u8],
        gone: &crate::keyspace::Value,
    ) -> Result<(), CommandError> {
        let crate::keyspace::Value::Stream(stream) = gone;
        let seq = self
            .shared
            .store
            .delete_stream(self.client.db as u32, key, stream)
            .map_err(store_error)?;
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

/// Runs one request and appends its reply (if any) to `out`.
pub fn execute(
    shared: &Arc<Shared>,
    client: &mut Client,
    argv: Vec<Bytes>,
    out: &mut bytes::BytesMut,
) -> Outcome {
    let (reply, outcome) = run(shared, client, argv);
    if let Some(reply) = reply {
        write_reply(shared, client, &reply, out);
    }
    outcome
}

/// Encodes a reply honouring CLIENT REPLY and counts errors.
pub fn write_reply(shared: &Shared, client: &mut Client, reply: &Reply, out: &mut bytes::BytesMut) {
    if let Reply::Error(text) = reply {
        shared.stats.count_error(text);
    }
    match client.reply_mode {
        ReplyMode::On => reply.encode(out, client.resp3),
        ReplyMode::Off => {}
        ReplyMode::SkipThis => client.reply_mode = ReplyMode::On,
        // SKIP itself is answered by nobody; the next command's reply is dropped.
        ReplyMode::Skip => client.reply_mode = ReplyMode::SkipThis,
    }
}

fn run(shared: &Arc<Shared>, client: &mut Client, argv: Vec<Bytes>) -> (Option<Reply>, Outcome) {
    let table = table();
    let Some(mut idx) = table.find(&argv[0]) else {
        if let Some(m) = client.multi.as_mut() {
            m.aborted = true;
        }
        return (
            Some(Reply::Error(unknown_command(&argv))),
            Outcome::Continue,
        );
    };
    let mut spec = table.entries[idx].spec;
    if !spec.subcommands.is_empty() && argv.len() >= 2 {
        let mut full = table.entries[idx].full_name.as_bytes().to_vec();
        full.push(b'|');
        full.extend_from_slice(&argv[1]);
        match table.find(&full) {
            Some(sub) => {
                idx = sub;
                spec = table.entries[sub].spec;
            }
            None => {
                let mut e = b"ERR unknown subcommand '".to_vec();
                e.extend_from_slice(c_prefix(&argv[1], 128));
                e.extend_from_slice(b"'. Try ");
                e.extend_from_slice(argv[0].to_ascii_uppercase().as_slice());
                e.extend_from_slice(b" HELP.");
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                return (Some(Reply::Error(Bytes::from(e))), Outcome::Continue);
            }
        }
    }
    let stat = &shared.command_stats[idx];
    let refusal = precheck(shared, client, idx, spec, argv.len())
        .or_else(|| name_too_long(&table.entries[idx].full_name, &argv));
    if let Some(err) = refusal {
        stat.rejected.fetch_add(1, Ordering::Relaxed);
        if table.entries[idx].full_name == "exec" {
            // Redis aborts the transaction (in MULTI or not) when it refuses EXEC itself.
            tx::discard_state(&mut Ctx::new(shared, client));
            let why = err.strip_prefix("ERR ").unwrap_or(&err);
            return (
                Some(Reply::error(format!(
                    "EXECABORT Transaction discarded because of: {why}"
                ))),
                Outcome::Continue,
            );
        }
        if let Some(m) = client.multi.as_mut() {
            m.aborted = true;
        }
        return (Some(Reply::error(err)), Outcome::Continue);
    }
    if client.multi.is_some() && spec.flags & flags::NOT_QUEUED == 0 {
        if let Some(m) = client.multi.as_mut() {
            m.queue.push((idx, argv));
            client
                .handle
                .multi_len
                .store(m.queue.len(), Ordering::Relaxed);
        }
        return (Some(Reply::simple("QUEUED")), Outcome::Continue);
    }
    let mut ctx = Ctx::new(shared, client);
    let reply = call(&mut ctx, idx, &argv);
    let Ctx {
        touched,
        block,
        close,
        write_seq,
        ..
    } = ctx;
    client.write_seq = client.write_seq.max(write_seq);
    after_write(shared, &touched);
    if let Some(block) = block {
        return (None, Outcome::Block(block));
    }
    (
        Some(reply),
        if close {
            Outcome::Close
        } else {
            Outcome::Continue
        },
    )
}

/// Longest stream key, group or consumer name Brooklet accepts: the store's keys are built
/// from all three and fjall refuses keys over 64 KiB.
const MAX_NAME_LEN: usize = 16 * 1024;

/// Refuses stream commands whose key, group or consumer name the store could not hold. XADD's
/// later arguments are field values (stored as values, any size); every other stream
/// command's arguments are names, IDs, numbers or keywords.
fn name_too_long(full_name: &str, argv: &[Bytes]) -> Option<String> {
    if !full_name.starts_with('x') {
        return None;
    }
    let names = if full_name == "xadd" {
        &argv[1..argv.len().min(2)]
    } else {
        &argv[1..]
    };
    names.iter().any(|a| a.len() > MAX_NAME_LEN).then(|| {
        format!("ERR key, group or consumer name longer than {MAX_NAME_LEN} bytes (a Brooklet storage limit)")
    })
}

/// Checks arity, authentication and subscribed mode; Some(error text) refuses the command.
fn precheck(
    shared: &Shared,
    client: &Client,
    idx: usize,
    spec: &CommandSpec,
    argc: usize,
) -> Option<String> {
    let name = &table().entries[idx].full_name;
    if !spec.arity_ok(argc) {
        return Some(format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    if !client.authenticated && spec.flags & flags::NO_AUTH == 0 {
        return Some("NOAUTH Authentication required.".into());
    }
    if !client.resp3 && client.handle.is_pubsub() && spec.flags & flags::SUBSCRIBED == 0 {
        return Some(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
    }
    if client.multi.is_some() && spec.flags & flags::NO_MULTI != 0 {
        return Some("ERR Command not allowed inside a transaction".into());
    }
    let _ = shared;
    None
}

/// Calls a handler with the gate, the timing and the counters around it.
pub fn call(ctx: &mut Ctx<'_>, idx: usize, argv: &[Bytes]) -> Reply {
    let entry = &table().entries[idx];
    let Some(handler) = entry.spec.handler else {
        // A container called without a subcommand: its arity (-2) already refused that.
        return Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            entry.full_name
        ));
    };
    ctx.client.handle.last_cmd.store(idx, Ordering::Relaxed);
    let started = ctx.client.clock.take().unwrap_or_else(Instant::now);
    let keyed = entry.spec.flags & (flags::WRITE | flags::READONLY) != 0;
    // Watchers are dirtied before the gate is released, so an EXEC (which checks its flag
    // under the exclusive gate) can never run between this write and the dirtying.
    let result = {
        let shared = ctx.shared;
        let gated = !ctx.client.in_exec;
        let exclusive = entry.spec.flags & flags::EXCLUSIVE != 0;
        let _exclusive = (gated && exclusive).then(|| shared.gate_exclusive());
        let _shared = (gated && !exclusive && keyed).then(|| shared.gate_shared());
        let r = handler(ctx, argv);
        touch_watchers(ctx);
        r
    };
    let stat = &ctx.shared.command_stats[idx];
    stat.calls.fetch_add(1, Ordering::Relaxed);
    let ended = Instant::now();
    ctx.client.clock = Some(ended);
    stat.usec.fetch_add(
        ended.duration_since(started).as_micros() as u64,
        Ordering::Relaxed,
    );
    ctx.shared
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(reply) => reply,
        Err(e) => {
            stat.failed.fetch_add(1, Ordering::Relaxed);
            e.into()
        }
    }
}

/// Marks the clients watching the keys this command changed.
fn touch_watchers(ctx: &Ctx<'_>) {
    for (db, key) in &ctx.touched {
        ctx.shared.watches.touch(*db, key);
    }
}

/// After a command changed keys: dirty their watchers and serve clients blocked on them.
pub fn after_write(shared: &Arc<Shared>, touched: &[(usize, Bytes)]) {
    for (db, key) in touched {
        shared.watches.touch(*db, key);
        serve_blocked(shared, *db, key);
    }
}

/// Re-runs the commands blocked on a key, first blocked first, until one finds nothing.
pub fn serve_blocked(shared: &Arc<Shared>, db: usize, key: &Bytes) {
    for waiter in shared.blocking.waiters(db, key) {
        rerun_waiter(shared, &waiter);
    }
}

/// Re-runs one blocked command; answers and unblocks it when it found something.
pub fn rerun_waiter(shared: &Arc<Shared>, waiter: &Arc<crate::blocking::Waiter>) {
    let mut slot = waiter.slot();
    if slot.is_none() {
        return;
    }
    let Some(handle) = shared.clients.get(waiter.client_id) else {
        return;
    };
    let Some(idx) = table().find(&waiter.argv[0]) else {
        return;
    };
    let mut client = Client::new(handle, true);
    client.db = waiter.db;
    client.resp3 = waiter.resp3;
    let mut ctx = Ctx::new(shared, &mut client);
    let reply = call(&mut ctx, idx, &waiter.argv);
    let Ctx {
        touched,
        block,
        write_seq,
        ..
    } = ctx;
    for (db, key) in &touched {
        shared.watches.touch(*db, key);
    }
    if block.is_some() {
        return;
    }
    if let Some(tx) = slot.take() {
        let _ = tx.send(crate::blocking::Served { reply, write_seq });
    }
    drop(slot);
    shared.blocking.unregister(waiter);
}

/// Redis's text for an unknown command, with up to 128 characters of its arguments.
/// The bytes are Redis's own: arguments are quoted as C strings (`%.*s`), so each ends at
/// a NUL and at the 128 bytes the preview has room for, whatever their encoding.
fn unknown_command(argv: &[Bytes]) -> Bytes {
    let mut args = Vec::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(c_prefix(a, room));
        args.extend_from_slice(b"' ");
    }
    let mut e = b"ERR unknown command '".to_vec();
    e.extend_from_slice(c_prefix(&argv[0], 128));
    e.extend_from_slice(b"', with args beginning with: ");
    e.extend_from_slice(&args);
    Bytes::from(e)
}

/// At most `max` bytes of `a`, ending at its first NUL, as C's `%.*s` prints it.
fn c_prefix(a: &[u8], max: usize) -> &[u8] {
    let end = a.iter().position(|&b| b == 0).unwrap_or(a.len());
    &a[..end.min(max)]
}

/// Runs a transaction's queued commands under the exclusive gate.
/// None when a watched key changed (checked under the gate, so no write can slip in after).
pub(crate) fn exec_queue(ctx: &mut Ctx<'_>, queue: Vec<(usize, Vec<Bytes>)>) -> Option<Vec<Reply>> {
    let shared = ctx.shared;
    let mut replies = Vec::with_capacity(queue.len());
    let mut touched = Vec::new();
    {
        let _gate = shared.gate_exclusive();
        if ctx.client.watch_dirty.load(Ordering::Acquire) {
            return None;
        }
        ctx.client.in_exec = true;
        for (idx, argv) in queue {
            let mut inner = Ctx::new(shared, ctx.client);
            let reply = call(&mut inner, idx, &argv);
            if let Reply::Error(text) = &reply {
                shared.stats.count_error(text);
            }
            touched.extend(inner.touched);
            ctx.close |= inner.close;
            ctx.write_seq = ctx.write_seq.max(inner.write_seq);
            replies.push(reply);
        }
        ctx.client.in_exec = false;
    }
    ctx.touched.extend(touched);
    Some(replies)
}

/// A HELP reply: the header line, the given lines, and the HELP line, as Redis formats them.
pub(crate) fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(Bytes::from(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    out.extend(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::copy_from_slice(l.as_bytes()))),
    );
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Print this help."));
    Reply::Array(out)
}

/// Leaves every channel, pattern and shard channel of the calling client (RESET).
pub(crate) fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    let id = ctx.client.id();
    crate::keyspace::lock(&ctx.shared.pubsub).remove_client(id);
    for s in &ctx.client.handle.subs {
        s.store(0, Ordering::Relaxed);
    }
}

/// Everything a closing connection leaves behind: watches, subscriptions, a MULTI.
pub(crate) fn disconnect_cleanup(shared: &Arc<Shared>, client: &mut Client) {
    let mut ctx = Ctx::new(shared, client);
    tx::discard_state(&mut ctx);
    unsubscribe_all(&mut ctx);
}

/// The pub/sub counters of INFO stats.
pub(crate) fn pubsub_stats(ctx: &Ctx<'_>, out: &mut String) {
    let registry = crate::keyspace::lock(&ctx.shared.pubsub);
    server::field(out, "pubsub_channels", registry.channel_count());
    server::field(out, "pubsub_patterns", registry.pattern_count());
    server::field(out, "pubsubshard_channels", registry.shard_channel_count());
}

/// The error a client sees when the store refuses a write (as Redis's MISCONF for a failing AOF).
pub(crate) fn store_error(e: brooklet_persistence::StoreError) -> CommandError {
    tracing::error!("write to the store failed: {e}");
    CommandError::text(format!("MISCONF Errors writing to the data directory: {e}"))
}

/// Puts the streams recovered from the store into the keyspace (start-up, DEBUG RELOAD).
pub(crate) fn install_loaded(shared: &Shared, loaded: Vec<brooklet_persistence::LoadedStream>) {
    for l in loaded {
        let db = l.db as usize;
        if db >= shared.keyspace.count() {
            tracing::warn!(
                "stream '{}' of database {db} is not loaded: only {} databases are configured",
                String::from_utf8_lossy(&l.key),
                shared.keyspace.count()
            );
            continue;
        }
        shared
            .keyspace
            .db(db)
            .lock(&l.key)
            .insert(l.key, crate::keyspace::Value::Stream(Box::new(l.stream)));
    }
}
