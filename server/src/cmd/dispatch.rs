//! Dispatch: the assembled command table, and running one request against it (the checks
//! every command gets from the table, MULTI queuing, serving blocked readers afterwards).

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use brooklet_resp::Reply;

use super::call::call;
use super::replication;
use super::table::flags;
use super::{
    CommandSpec, Commands, Ctx, Outcome, acl, client, command_docs, connection, dump, expire, keys,
    keys_move, latency, monitor, object, persist, pubsub, server, slowlog, stream, stream_group,
    stream_idmp, stream_info, stream_nack, stream_read, strings, tx,
};

use crate::client::{Client, ReplyMode};
use crate::per_thread;
use crate::state::Shared;

/// The process-wide command table.
pub fn table() -> &'static Commands {
    static TABLE: OnceLock<Commands> = OnceLock::new();
    TABLE.get_or_init(|| {
        Commands::build(
            &[
                connection::COMMANDS,
                client::COMMANDS,
                tx::COMMANDS,
                server::COMMANDS,
                keys::COMMANDS,
                strings::COMMANDS,
                expire::COMMANDS,
                persist::COMMANDS,
                stream::COMMANDS,
                stream_read::COMMANDS,
                stream_group::COMMANDS,
                stream_info::COMMANDS,
                stream_idmp::COMMANDS,
                pubsub::COMMANDS,
                // Last, so the fuzz seeds' command numbers stay as they were encoded.
                stream_nack::COMMANDS,
                keys_move::COMMANDS,
                object::COMMANDS,
                dump::COMMANDS,
                acl::COMMANDS,
                monitor::COMMANDS,
                slowlog::COMMANDS,
                latency::COMMANDS,
                replication::COMMANDS,
            ],
            command_docs::DOCS,
        )
    })
}

/// The ACL state of a server starting with `config` (without its ACL file, which
/// `acl::load_file_at_start` reads once the state is shared).
pub(crate) fn new_acl(config: &crate::config::Config) -> crate::acl::Acl {
    let table = table();
    let index =
        crate::acl::CommandIndex::new(table.entries.iter().map(|e| crate::acl::TableEntry {
            name: e.full_name.clone(),
            parent: e.parent,
            no_auth: e.spec.flags & flags::NO_AUTH != 0,
            categories: super::docs::derived_categories(e),
            key_specs: super::docs::derived_key_specs(e.spec),
        }));
    crate::acl::Acl::new(Arc::new(index), config.requirepass.as_deref())
}

/// Runs one request and appends its reply (if any) to `out`. `argv` is left for the caller
/// to reuse, or taken (left empty) when CLIENT PAUSE holds the command or MULTI queues it.
pub fn execute(
    shared: &Arc<Shared>,
    client: &mut Client,
    argv: &mut Vec<Bytes>,
    out: &mut bytes::BytesMut,
) -> Outcome {
    let (reply, outcome) = run(shared, client, argv);
    if let Some(reply) = reply {
        write_reply(shared, client, &reply, out);
    }
    outcome
}

/// Runs one command a replica's link received from its primary (see
/// `replication::replica`); its reply is left in `out` for the link to inspect.
pub fn execute_replicated(
    shared: &Arc<Shared>,
    client: &mut Client,
    mut argv: Vec<Bytes>,
    out: &mut bytes::BytesMut,
) {
    let _ = execute(shared, client, &mut argv, out);
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
    // Only ever filled when the reply above was dropped.
    if !client.silenced_pushes.is_empty() {
        out.extend_from_slice(&client.silenced_pushes);
        client.silenced_pushes.clear();
    }
}

/// [`execute`] without the reply's encoding.
fn run(
    shared: &Arc<Shared>,
    client: &mut Client,
    argv: &mut Vec<Bytes>,
) -> (Option<Reply>, Outcome) {
    let table = table();
    let found = client.last_command.get(&argv[0]).or_else(|| {
        let idx = table.find(&argv[0])?;
        client.last_command.set(&argv[0], idx);
        Some(idx)
    });
    let Some(mut idx) = found else {
        if let Some(m) = client.multi.as_mut() {
            m.aborted = true;
        }
        return (Some(Reply::Error(unknown_command(argv))), Outcome::Continue);
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
    let refusal = precheck(shared, client, idx, spec, argv)
        .or_else(|| name_too_long(&table.entries[idx].full_name, argv));
    if let Some(err) = refusal {
        per_thread::add(&stat.rejected, 1);
        if table.entries[idx].full_name == "exec" {
            // Redis aborts the transaction (in MULTI or not) when it refuses EXEC itself.
            tx::discard_state(&mut Ctx::new(shared, table, client));
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
    let name = &table.entries[idx].full_name;
    if shared
        .pause
        .postpones(|| write_like(client, spec, name))
        .is_some()
    {
        let write_like = write_like(client, spec, name);
        // CLIENT LIST shows the held command, as Redis does.
        client.handle.last_cmd.store(idx, Ordering::Relaxed);
        let argv = std::mem::take(argv);
        return (None, Outcome::Paused { argv, write_like });
    }
    if client.multi.is_some() && spec.flags & flags::NOT_QUEUED == 0 {
        if let Some(m) = client.multi.as_mut() {
            m.queue.push((idx, std::mem::take(argv)));
            client
                .handle
                .multi_len
                .store(m.queue.len(), Ordering::Relaxed);
        }
        return (Some(Reply::simple("QUEUED")), Outcome::Continue);
    }
    let mut ctx = Ctx::new(shared, table, client);
    let reply = call(&mut ctx, idx, argv);
    let Ctx {
        touched,
        ready,
        block,
        close,
        write_seq,
        takeover,
        ..
    } = ctx;
    client.write_seq = client.write_seq.max(write_seq);
    after_write(shared, &touched);
    keep_spare(client, touched);
    for (db, key) in &ready {
        serve_blocked(shared, *db, key);
    }
    match takeover {
        Some(super::Takeover::Replica(start)) => return (None, Outcome::Replica(start)),
        Some(super::Takeover::Wait(spec)) => return (None, Outcome::Wait(spec)),
        None => {}
    }
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

/// Gives the changed-keys list back to the client, emptied, for its next command; not one
/// a command over many keys grew (an idle client keeps no large buffer).
fn keep_spare(client: &mut Client, mut touched: Vec<(usize, Bytes)>) {
    if touched.capacity() <= 16 {
        touched.clear();
        client.spare_touched = touched;
    }
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

/// Checks arity, authentication, ACL permissions and subscribed mode, in Redis's order;
/// Some(error text) refuses the command.
fn precheck(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    spec: &CommandSpec,
    argv: &[Bytes],
) -> Option<String> {
    let argc = argv.len();
    let name = &table().entries[idx].full_name;
    if !spec.arity_ok(argc) {
        return Some(format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    if !client.authenticated && spec.flags & flags::NO_AUTH == 0 && !shared.acl.default_open() {
        return Some("NOAUTH Authentication required.".into());
    }
    if let Some(denied) = acl::refusal(shared, client, idx, argv) {
        return Some(denied);
    }
    if !client.resp3 && client.handle.is_pubsub() && spec.flags & flags::SUBSCRIBED == 0 {
        return Some(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
    }
    if client.multi.is_some() && spec.flags & flags::NO_MULTI != 0 {
        return Some("ERR Command not allowed inside a transaction".into());
    }
    if spec.flags & flags::WRITE != 0
        && !client.handle.is_master_link()
        && shared.repl.is_replica()
        && shared.config().repl.read_only
    {
        return Some("READONLY You can't write against a read only replica.".into());
    }
    if spec.flags & flags::WRITE != 0
        && shared
            .repl
            .too_few_replicas
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Some("NOREPLICAS Not enough good replicas to write.".into());
    }
    // A replica applies what its primary sends whatever its own memory, as Redis does.
    if shared.memory.is_over() && adds_data(client, spec, name) && !client.handle.is_master_link() {
        return Some(crate::memory_guard::OOM_ERROR.into());
    }
    // A write queued while writes are refused aborts the transaction, as in Redis (`call`
    // refuses the others, and those EXEC runs).
    if client.multi.is_some()
        && spec.flags & flags::WRITE != 0
        && let Err(e) = shared.store.admit()
    {
        return Some(super::store_error(e).to_string());
    }
    None
}

/// Whether a command is refused over `maxmemory`: a `denyoom` one, or EXEC of a transaction
/// holding one, as Redis decides.
fn adds_data(client: &Client, spec: &CommandSpec, name: &str) -> bool {
    if spec.flags & flags::DENYOOM != 0 {
        return true;
    }
    name == "exec"
        && client.multi.as_ref().is_some_and(|m| {
            m.queue
                .iter()
                .any(|(idx, _)| table().entries[*idx].spec.flags & flags::DENYOOM != 0)
        })
}

/// What a WRITE pause holds back (Redis's write and may-replicate commands): writes,
/// PUBLISH and SPUBLISH, and EXEC of a transaction holding one of them.
fn write_like(client: &Client, spec: &CommandSpec, name: &str) -> bool {
    let covered = |spec: &CommandSpec, name: &str| {
        spec.flags & flags::WRITE != 0 || matches!(name, "publish" | "spublish")
    };
    covered(spec, name)
        || (name == "exec"
            && client.multi.as_ref().is_some_and(|m| {
                m.queue.iter().any(|(idx, _)| {
                    let e = &table().entries[*idx];
                    covered(e.spec, &e.full_name)
                })
            }))
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

/// Counts the call of blocked command `idx` answered by its timeout or by CLIENT UNBLOCK
/// rather than by a run of it.
pub fn count_unblocked(shared: &Shared, idx: usize, failed: bool) {
    let Some(stat) = shared.command_stats.get(idx) else {
        return;
    };
    per_thread::add(&stat.calls, 1);
    if failed {
        per_thread::add(&stat.failed, 1);
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
    if let Some(e) = acl::blocked_refusal(shared, &mut client, idx, &waiter.argv) {
        per_thread::add(&shared.command_stats[idx].rejected, 1);
        if let Some(tx) = slot.take() {
            let _ = tx.send(crate::blocking::Served {
                reply: Reply::error(e),
                write_seq: 0,
                counted: true,
                close: false,
            });
        }
        drop(slot);
        shared.blocking.unregister(waiter);
        return;
    }
    let mut ctx = Ctx::new(shared, table(), &mut client);
    ctx.rerun = true;
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
    // In the histograms before the blocked client reads its reply.
    client.latency.flush();
    if let Some(tx) = slot.take() {
        let _ = tx.send(crate::blocking::Served {
            reply,
            write_seq,
            counted: true,
            close: false,
        });
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

/// Everything a closing connection leaves behind: watches, subscriptions, a MULTI.
pub(crate) fn disconnect_cleanup(shared: &Arc<Shared>, client: &mut Client) {
    let mut ctx = Ctx::new(shared, table(), client);
    tx::discard_state(&mut ctx);
    pubsub::unsubscribe_all(&mut ctx);
    monitor::stop(&ctx);
    shared.repl.announced().remove(&client.handle.id);
}
