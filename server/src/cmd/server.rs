//! Server commands: INFO, CONFIG, DBSIZE, FLUSHALL, FLUSHDB, TIME, SHUTDOWN.

use bytes::Bytes;

use brooklet_resp::Reply;

use super::table::flags::*;
use super::table::{container, simple};
use super::{CommandSpec, Ctx};
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    simple("info", -1, LOADING, info),
    container(
        "config",
        &[
            simple("get", -3, ADMIN | LOADING, config_get),
            simple("set", -4, ADMIN | LOADING, config_set),
            simple("resetstat", 2, ADMIN | LOADING, config_resetstat),
            simple("rewrite", 2, ADMIN | LOADING, config_rewrite),
            simple("help", 2, LOADING, config_help),
        ],
    ),
    simple("dbsize", 1, READONLY | FAST, dbsize),
    simple("flushall", -1, WRITE | EXCLUSIVE, flushall),
    simple("flushdb", -1, WRITE | EXCLUSIVE, flushdb),
    simple("time", 1, FAST | LOADING, time),
    simple("shutdown", -1, ADMIN | NO_MULTI | LOADING, shutdown),
    CommandSpec {
        name: "command",
        arity: -1,
        flags: LOADING,
        first_key: 0,
        last_key: 0,
        key_step: 0,
        handler: Some(super::docs::command_all),
        subcommands: &[
            simple("count", 2, LOADING, super::docs::count),
            simple("docs", -2, LOADING, super::docs::docs),
            simple("info", -2, LOADING, super::docs::info),
            simple("list", -2, LOADING, super::docs::list),
            simple("getkeys", -4, LOADING, super::getkeys::getkeys),
            simple(
                "getkeysandflags",
                -4,
                LOADING,
                super::getkeys::getkeys_and_flags,
            ),
            simple("help", 2, LOADING, super::docs::help),
        ],
    },
];

fn dbsize(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    ctx.show_all()?;
    Ok(Reply::Int(ctx.db().len() as i64))
}

fn flush_mode(argv: &[Bytes]) -> Result<(), CommandError> {
    match argv {
        [_] => Ok(()),
        [_, m] if m.eq_ignore_ascii_case(b"async") || m.eq_ignore_ascii_case(b"sync") => Ok(()),
        _ => Err(CommandError::syntax()),
    }
}

/// Empties database `db` in memory (before the store: a checkpoint must not write a flushed
/// stream back), has the store remove them, and reports every removed key as changed.
fn flush_dbs(
    ctx: &mut Ctx<'_>,
    dbs: std::ops::Range<usize>,
    all: bool,
) -> Result<(), CommandError> {
    let mut removed = Vec::new();
    for db in dbs.clone() {
        removed.push(ctx.shared.keyspace.db(db).flush());
    }
    // Strings need no list: the store removes every string under the flushed prefix.
    let streams = removed.iter().flatten().filter_map(|(_, v)| match v {
        crate::keyspace::Value::Stream(s, _) => Some(&**s),
        crate::keyspace::Value::String(..) | crate::keyspace::Value::StoredString(_) => None,
    });
    let scope = (!all).then_some(dbs.start as u32);
    let seq = match ctx.shared.store.flush(scope, streams) {
        Ok(seq) => seq,
        Err(e) => {
            // The store still holds the streams: memory gets them back (where no write made a
            // new stream under the key meanwhile), so it does not run ahead of the disk.
            for (db, keys) in dbs.zip(removed) {
                let db = ctx.shared.keyspace.db(db);
                for (key, value) in keys {
                    db.lock(&key).entry(key.into()).or_insert(value);
                }
            }
            return Err(super::store_error(e));
        }
    };
    for db in dbs.clone() {
        ctx.shared.keyspace.db(db).note_removal_of_all(seq);
    }
    // Waiters on keys that never existed are left alone, as in Redis.
    for (db, keys) in dbs.zip(removed) {
        ctx.touched
            .extend(keys.into_iter().map(|(key, _)| (db, key)));
    }
    ctx.write_seq = ctx.write_seq.max(seq);
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    flush_mode(argv)?;
    flush_dbs(ctx, 0..ctx.shared.keyspace.count(), true)?;
    // fjall keeps memory for what was written until its tables are compacted with the
    // removal, and with nothing left that costs little: without it, a server that FLUSHALL
    // emptied could stay over `maxmemory` (a debug build held ~28 MB of 24 MB of deleted
    // strings for minutes). The removal is written out of the memtables first, so the
    // compaction sees it; FLUSHALL already holds every other command back meanwhile.
    if let Err(e) = ctx
        .shared
        .store
        .flush_memtables(std::time::Duration::from_secs(2))
    {
        tracing::warn!("FLUSHALL could not write the memtables out: {e}");
    }
    ctx.shared.store.request_compaction();
    Ok(Reply::Ok)
}

fn flushdb(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    flush_mode(argv)?;
    let db = ctx.client.db;
    flush_dbs(ctx, db..db + 1, false)?;
    Ok(Reply::Ok)
}

fn time(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ]))
}

fn shutdown(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    for a in &argv[1..] {
        let ok = ["nosave", "save", "now", "force", "abort"]
            .iter()
            .any(|k| a.eq_ignore_ascii_case(k.as_bytes()));
        if !ok {
            return Err(CommandError::syntax());
        }
        if a.eq_ignore_ascii_case(b"abort") {
            return Err(CommandError::msg("ERR No shutdown in progress."));
        }
    }
    tracing::info!("user requested shutdown...");
    ctx.shared.begin_shutdown();
    ctx.close = true;
    // Redis answers a successful SHUTDOWN by closing the connection, with no reply.
    Ok(Reply::Raw(Bytes::new()))
}

fn config_get(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let pairs = ctx.shared.config().matching(&argv[2..]);
    Ok(Reply::Map(
        pairs
            .into_iter()
            .map(|(name, value)| (Reply::Bulk(name), Reply::bulk(value)))
            .collect(),
    ))
}

fn config_set(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if !argv.len().is_multiple_of(2) {
        return Err(CommandError::msg(
            "ERR wrong number of arguments for 'config|set' command",
        ));
    }
    let next = ctx
        .shared
        .config()
        .changed(&argv[2..])
        .map_err(|e| CommandError::text(e.to_string()))?;
    ctx.shared.pubsub_limits.set(&next.output_limit_pubsub);
    ctx.shared.normal_limits.set(&next.output_limit_normal);
    ctx.shared.slowlog.configure(
        next.slowlog_log_slower_than,
        usize::try_from(next.slowlog_max_len).unwrap_or(usize::MAX),
    );
    ctx.shared
        .latency
        .configure(next.latency_monitor_threshold, next.latency_tracking);
    ctx.shared
        .store
        .watch_latency(next.latency_monitor_threshold > 0);
    crate::info::set_background_threads(next.jemalloc_bg_thread);
    crate::access::configure(&next);
    ctx.shared
        .store
        .set_policy(crate::state::fsync_policy(next.appendfsync));
    ctx.shared
        .store
        .set_stream_cache_bytes(ctx.shared.memory.cache_budget(next.stream_cache_bytes));
    ctx.shared.memory.set_limit(next.maxmemory);
    if next.requirepass != ctx.shared.config().requirepass {
        // As in Redis, the `default` user's passwords become this one (none: `nopass`).
        ctx.shared
            .acl
            .set_default_password(next.requirepass.as_deref());
    }
    ctx.shared
        .store
        .set_tail_segment_bytes(next.tail_log_segment_bytes);
    ctx.shared
        .store
        .set_checkpoint_bytes(next.tail_log_checkpoint_bytes);
    *ctx.shared.config_mut() = next;
    Ok(Reply::Ok)
}

fn config_resetstat(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    // This connection's earlier commands of the batch are reset too, as in Redis.
    ctx.client.latency.flush();
    ctx.shared.stats.reset();
    ctx.shared.latency.reset_commands();
    ctx.shared.instant.reset();
    ctx.shared.command_stats.reset();
    Ok(Reply::Ok)
}

fn config_rewrite(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let config = ctx.shared.config().clone();
    match config.rewrite_file() {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Ok(Reply::Ok)
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CommandError::text(e))
        }
    }
}

fn config_help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(super::reply::help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}

/// INFO's sections in Redis's order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// What a bare INFO (or INFO default) leaves out.
fn not_default(section: &str) -> bool {
    section == "commandstats" || section == "latencystats"
}

fn info(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    // latencystats shows this connection's earlier commands of the batch, as Redis would.
    ctx.client.latency.flush();
    let mut wanted: Vec<&str> = Vec::new();
    let asked: Vec<String> = argv[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if asked.is_empty() {
        wanted.extend(SECTIONS.iter().filter(|s| !not_default(s)));
    }
    for a in &asked {
        match a.as_str() {
            "all" | "everything" => wanted.extend(SECTIONS),
            "default" => wanted.extend(SECTIONS.iter().filter(|s| !not_default(s))),
            other => wanted.extend(SECTIONS.iter().filter(|s| **s == other)),
        }
    }
    let mut out = String::new();
    for section in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        crate::info::write_section(ctx, section, &mut out);
        crate::info_ops::extra(ctx, section, &mut out);
    }
    Ok(Reply::Verbatim("txt", Bytes::from(out)))
}
