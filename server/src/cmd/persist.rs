//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, DEBUG RELOAD / LOADAOF.

use bytes::Bytes;
use std::sync::atomic::Ordering;

use brooklet_resp::Reply;

use super::table::flags::*;
use super::table::simple;
use super::{CommandSpec, Ctx, store_error};
use crate::client::now_ms;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    simple("save", 1, ADMIN | NO_MULTI, save),
    simple("bgsave", -1, ADMIN, bgsave),
    simple("bgrewriteaof", 1, ADMIN, bgrewriteaof),
    simple("lastsave", 1, FAST | LOADING, lastsave),
    simple("debug", -2, ADMIN | NO_MULTI | EXCLUSIVE, debug),
];

/// Writes every append still only in the tail log into fjall, then fsyncs everything, as
/// SAVE promises for Redis's snapshot: a restart then has nothing to replay. Takes the shared
/// gate per stream, so never call it under the exclusive one.
fn save_all(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    ctx.shared.store.close_tail_segment().map_err(store_error)?;
    crate::checkpoint::checkpoint(ctx.shared).map_err(store_error)?;
    sync(ctx)?;
    ctx.shared.stats.saves.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// fsyncs everything committed.
fn sync(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    ctx.shared.store.sync().map_err(store_error)?;
    ctx.shared
        .last_save
        .store(now_ms() / 1000, Ordering::Relaxed);
    Ok(())
}

fn save(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    save_all(ctx)?;
    Ok(Reply::Ok)
}

fn bgsave(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 2
        || argv
            .get(1)
            .is_some_and(|a| !a.eq_ignore_ascii_case(b"schedule"))
    {
        return Err(CommandError::syntax());
    }
    // The store has no snapshot to write: a checkpoint of the tail log (at most a segment or
    // two) and an fsync are all a save needs, and they are quick.
    save_all(ctx)?;
    Ok(Reply::simple("Background saving started"))
}

/// Redis rewrites its AOF to drop what deletions and trims left behind; the store's
/// counterpart is a major compaction of the stream keyspaces, run by the compaction thread.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    ctx.shared.store.request_compaction();
    Ok(Reply::simple(
        "Background append only file rewriting started",
    ))
}

fn lastsave(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Int(
        ctx.shared.last_save.load(Ordering::Relaxed) as i64
    ))
}

/// Whether DEBUG is enabled for this client (`enable-debug-command`: no, yes, local).
fn debug_allowed(ctx: &Ctx<'_>) -> bool {
    match ctx.shared.config().enable_debug_command.as_str() {
        "yes" => true,
        "local" => is_local_client(ctx.client.handle.addr.ip()),
        _ => false,
    }
}

/// Redis's `islocalClient`: 127.0.0.1 or ::1 exactly (protected mode admits all of 127/8;
/// `enable-debug-command local` does not).
fn is_local_client(ip: std::net::IpAddr) -> bool {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    }
}

fn debug(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if !debug_allowed(ctx) {
        return Err(CommandError::msg(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    let sub = argv[1].to_ascii_lowercase();
    match &sub[..] {
        b"reload" | b"loadaof" => {
            reload(ctx)?;
            Ok(Reply::Ok)
        }
        b"help" => Ok(super::reply::help_reply(
            "DEBUG",
            &[
                "RELOAD",
                "    fsync, drop every stream from memory and load them again from disk.",
                "LOADAOF",
                "    The same as RELOAD (the name Redis's own tests use).",
            ],
        )),
        _ => Err(CommandError::text(format!(
            "ERR unknown subcommand '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&argv[1])
        ))),
    }
}

/// Drops the in-memory state and loads it again from the store, in place. Runs under the
/// exclusive gate, so no other command sees the keyspace half-loaded. The tail log is not
/// checkpointed first: the reload replays it, as a restart would. Changes no log holds
/// (history re-reads) are written first, as Redis's reload saves them in its snapshot.
fn reload(ctx: &mut Ctx<'_>) -> Result<(), CommandError> {
    crate::checkpoint::write_untracked(ctx.shared).map_err(store_error)?;
    sync(ctx)?;
    let (loaded, report) = ctx.shared.store.load_all().map_err(store_error)?;
    for db in 0..ctx.shared.keyspace.count() {
        for (key, _) in ctx.shared.keyspace.db(db).flush() {
            ctx.touched.push((db, key));
        }
    }
    super::install_loaded(ctx.shared, loaded);
    tracing::info!(
        "DB reloaded by DEBUG RELOAD: {} streams, {} entries in {:.3} seconds",
        report.streams,
        report.entries,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_local_client;

    #[test]
    fn only_127_0_0_1_and_ipv6_loopback_are_local_for_debug() {
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_local_client(
                local.parse().unwrap_or_else(|_| panic!("{local}"))
            ));
        }
        for other in ["127.0.0.2", "10.0.0.1", "::2", "::ffff:127.0.0.2"] {
            assert!(!is_local_client(
                other.parse().unwrap_or_else(|_| panic!("{other}"))
            ));
        }
    }
}
