//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

use bytes::Bytes;
use std::sync::atomic::Ordering;

use brooklet_resp::Reply;

use super::table::command;
use super::table::flags::*;
use super::{CommandSpec, Ctx};
use crate::client::MultiState;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("multi", 1, FAST | NOT_QUEUED, (0, 0, 0), multi),
    command("exec", 1, NOT_QUEUED | SKIP_SLOWLOG, (0, 0, 0), exec),
    command("discard", 1, FAST | NOT_QUEUED, (0, 0, 0), discard),
    command("watch", -2, FAST | NOT_QUEUED, (1, -1, 1), watch),
    command("unwatch", 1, FAST, (0, 0, 0), unwatch),
];

fn multi(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    if ctx.client.multi.is_some() {
        return Err(CommandError::msg("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.client.handle.multi_len.store(0, Ordering::Relaxed);
    Ok(Reply::Ok)
}

fn exec(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let Some(state) = ctx.client.multi.take() else {
        return Err(CommandError::msg("ERR EXEC without MULTI"));
    };
    ctx.client.handle.multi_len.store(0, Ordering::Relaxed);
    if state.aborted {
        unwatch_all(ctx);
        return Err(CommandError::msg(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let replies = super::call::exec_queue(ctx, state.queue, super::acl::refusal_at_exec);
    unwatch_all(ctx);
    Ok(replies.map(Reply::Array).unwrap_or(Reply::NullArray))
}

fn discard(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    if ctx.client.multi.is_none() {
        return Err(CommandError::msg("ERR DISCARD without MULTI"));
    }
    discard_state(ctx);
    Ok(Reply::Ok)
}

/// Drops a MULTI in progress and every watch (DISCARD, RESET).
pub(crate) fn discard_state(ctx: &mut Ctx<'_>) {
    ctx.client.multi = None;
    ctx.client.handle.multi_len.store(0, Ordering::Relaxed);
    unwatch_all(ctx);
}

fn watch(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if ctx.client.multi.is_some() {
        return Err(CommandError::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in &argv[1..] {
        if ctx.client.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        let key = crate::keyspace::keep(key);
        ctx.shared
            .watches
            .watch(db, key.clone(), ctx.client.id(), &ctx.client.watch_dirty);
        ctx.client.watched.push((db, key));
    }
    ctx.client
        .handle
        .watching
        .store(ctx.client.watched.len(), Ordering::Relaxed);
    Ok(Reply::Ok)
}

fn unwatch(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    unwatch_all(ctx);
    Ok(Reply::Ok)
}

/// Forgets every watched key and clears the dirty flag.
pub(crate) fn unwatch_all(ctx: &mut Ctx<'_>) {
    let keys = std::mem::take(&mut ctx.client.watched);
    ctx.shared.watches.unwatch(ctx.client.id(), &keys);
    ctx.client.watch_dirty.store(false, Ordering::Release);
    ctx.client.handle.watching.store(0, Ordering::Relaxed);
}
