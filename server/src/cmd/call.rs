//! Running one handler: the EXEC gate, the timing and the counters around it. EXEC runs its
//! queue through here too, which is why this sits below the families.

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Instant;

use brooklet_resp::Reply;

use super::Ctx;
use super::table::flags;
use crate::per_thread;
use crate::replication::propagate;

/// Calls a handler with the gate, the timing and the counters around it.
pub fn call(ctx: &mut Ctx<'_>, idx: usize, argv: &[Bytes]) -> Reply {
    let entry = &ctx.commands.entries[idx];
    let Some(handler) = entry.spec.handler else {
        // A container called without a subcommand: its arity (-2) already refused that.
        return Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            entry.full_name
        ));
    };
    // Refused before it changes anything while the disk is full or after a failed write or
    // fsync, as Redis refuses writes with MISCONF: a refused write never reaches memory,
    // readers, watchers or blocked clients. Unlike Redis, consumers keep reading and
    // acknowledging on a full disk (their records are small), though not after a fault that
    // needs a restart.
    if entry.spec.flags & flags::WRITE != 0
        && let Err(e) = ctx.shared.store.admit()
        && !(is_group_read(&entry.full_name) && ctx.shared.store.admit_group_change().is_ok())
    {
        per_thread::add(&ctx.shared.command_stats[idx].rejected, 1);
        return super::store_error(e).into();
    }
    ctx.client.handle.last_cmd.store(idx, Ordering::Relaxed);
    let started = ctx.client.clock.take().unwrap_or_else(Instant::now);
    let keyed = entry.spec.flags & (flags::WRITE | flags::READONLY) != 0;
    // While replicas are fed, a write that is not a stream command (whose records are
    // propagated under its shard lock) runs alone and is propagated before the gate opens,
    // so the change stream holds every key's changes in the order they were made.
    let repl_plain = ctx.shared.repl.is_active()
        && entry.spec.flags & flags::WRITE != 0
        && !propagate::by_records(&entry.full_name);
    let publishes = matches!(entry.full_name.as_str(), "publish" | "spublish");
    // Watchers are dirtied before the gate is released, so an EXEC (which checks its flag
    // under the exclusive gate) can never run between this write and the dirtying.
    let result = {
        let shared = ctx.shared;
        let gated = !ctx.client.in_exec;
        let exclusive = entry.spec.flags & flags::EXCLUSIVE != 0;
        let _exclusive = (gated && (exclusive || repl_plain)).then(|| shared.gate_exclusive());
        let _shared = (gated && !exclusive && !repl_plain && keyed).then(|| shared.gate_shared());
        if keyed {
            expire_keys(ctx, entry.spec, argv);
        }
        // A CLIENT NO-TOUCH client leaves keys' access history alone, except by TOUCH.
        // While removals are held, a client reads keys whose deadline passed as gone; a
        // replica's primary link and writes on a writable replica see them until the
        // primary's DEL arrives.
        let hide = (keyed
            && shared.removals_held()
            && !(shared.repl.is_replica()
                && (entry.spec.flags & flags::WRITE != 0 || ctx.client.handle.is_master_link())))
        .then(crate::expiry::now_ms);
        let untouched =
            ctx.client.handle.no_touch.load(Ordering::Relaxed) && entry.full_name != "touch";
        let r = crate::keyspace::hiding_expired(hide, || {
            if untouched {
                crate::access::untouched(|| handler(ctx, argv))
            } else {
                handler(ctx, argv)
            }
        });
        if (repl_plain || publishes) && r.is_ok() {
            propagate::command(shared, ctx.client.db, &entry.full_name, argv, &ctx.touched);
        }
        touch_watchers(ctx);
        r
    };
    let stat = &ctx.shared.command_stats[idx];
    let ended = Instant::now();
    ctx.client.clock = Some(ended);
    let took = ended.duration_since(started);
    per_thread::add(&stat.usec, took.as_micros() as u64);
    super::observe::show_to_monitors(ctx, entry.spec, argv);
    // A command that blocks is one call however often it is re-run, counted when it
    // answers (Redis's updateStatsOnUnblock): here by the run that answers, or by
    // `dispatch::count_unblocked` for a timeout or CLIENT UNBLOCK.
    if ctx.block.is_none() {
        super::observe::answered(ctx, idx, entry.spec, argv, took);
        per_thread::add(&stat.calls, 1);
    }
    match result {
        Ok(reply) => reply,
        Err(e) => {
            per_thread::add(&stat.failed, 1);
            e.into()
        }
    }
}

/// Removes the keys the command names whose deadline passed, before it looks at them
/// (Redis's lazy expiry): to the command they do not exist.
fn expire_keys(ctx: &mut Ctx<'_>, spec: &super::CommandSpec, argv: &[Bytes]) {
    let db = ctx.client.db;
    if ctx.shared.keyspace.db(db).expiring() == 0 {
        return;
    }
    let now = crate::expiry::now_ms();
    let (keys, step) = command_keys(spec, argv);
    for key in keys.iter().step_by(step) {
        if let Some(out) = crate::expiry::expire_if_due(ctx.shared, db, key, now) {
            ctx.write_seq = ctx.write_seq.max(out.seq);
            ctx.touched.push((db, key.clone()));
        }
    }
}

/// The arguments that hold a command's keys, and the step between keys: by its key
/// positions, or after STREAMS (XREAD, XREADGROUP).
pub(super) fn command_keys<'a>(
    spec: &super::CommandSpec,
    argv: &'a [Bytes],
) -> (&'a [Bytes], usize) {
    if spec.flags & flags::MOVABLE_KEYS != 0 {
        let Some(at) = argv.iter().position(|a| a.eq_ignore_ascii_case(b"streams")) else {
            return (&[], 1);
        };
        let rest = &argv[at + 1..];
        return (&rest[..rest.len() / 2], 1);
    }
    if spec.first_key <= 0 || spec.key_step <= 0 {
        return (&[], 1);
    }
    let first = spec.first_key as usize;
    let last = if spec.last_key < 0 {
        argv.len() as i64 + i64::from(spec.last_key)
    } else {
        i64::from(spec.last_key)
    };
    let last = (last.max(0) as usize).min(argv.len().saturating_sub(1));
    if first > last {
        return (&[], 1);
    }
    (&argv[first..=last], spec.key_step as usize)
}

/// Whether a command only changes consumer groups as a consumer does (admitted on a full
/// disk while a little room is left).
fn is_group_read(name: &str) -> bool {
    matches!(name, "xreadgroup" | "xack")
}

/// Marks the clients watching the keys this command changed.
fn touch_watchers(ctx: &Ctx<'_>) {
    for (db, key) in &ctx.touched {
        ctx.shared.watches.touch(*db, key);
    }
}

/// A check each queued command passes again as EXEC reaches it (ACL rules may have changed
/// since it was queued): Some(error) answers it instead of running it.
pub(crate) type ExecCheck =
    fn(&crate::state::Shared, &mut crate::client::Client, usize, &[Bytes]) -> Option<String>;

/// Runs a transaction's queued commands under the exclusive gate.
/// None when a watched key changed (checked under the gate, so no write can slip in after).
pub(crate) fn exec_queue(
    ctx: &mut Ctx<'_>,
    queue: Vec<(usize, Vec<Bytes>)>,
    check: ExecCheck,
) -> Option<Vec<Reply>> {
    let shared = ctx.shared;
    let mut replies = Vec::with_capacity(queue.len());
    let mut touched = Vec::new();
    let mut ready = Vec::new();
    {
        let _gate = shared.gate_exclusive();
        if ctx.client.watch_dirty.load(Ordering::Acquire) {
            return None;
        }
        ctx.client.in_exec = true;
        shared.repl.begin_transaction();
        for (idx, argv) in queue {
            let refused = check(shared, ctx.client, idx, &argv);
            let mut inner = Ctx::new(shared, ctx.commands, ctx.client);
            let reply = match refused {
                Some(e) => Reply::error(e),
                None => call(&mut inner, idx, &argv),
            };
            if let Reply::Error(text) = &reply {
                shared.stats.count_error(text);
            }
            touched.extend(inner.touched);
            ready.extend(inner.ready);
            ctx.close |= inner.close;
            ctx.write_seq = ctx.write_seq.max(inner.write_seq);
            replies.push(reply);
        }
        shared.repl.end_transaction();
        ctx.client.in_exec = false;
    }
    ctx.touched.extend(touched);
    ctx.ready.extend(ready);
    Some(replies)
}
