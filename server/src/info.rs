//! The sections of INFO, with Redis's field names.

use std::sync::atomic::AtomicBool;

/// Set by the binary when jemalloc is the global allocator, so `used_memory` can be read from
/// its statistics (in-process test servers run on the system allocator and report RSS).
static JEMALLOC: AtomicBool = AtomicBool::new(false);

/// Tells INFO that jemalloc is the global allocator.
pub fn allocator_is_jemalloc() {
    JEMALLOC.store(true, Ordering::Relaxed);
}

/// Turns jemalloc's background threads on or off (`jemalloc-bg-thread`, on by default as in
/// Redis). Freed memory goes back to the OS as it decays (jemalloc's `dirty_decay_ms`, 10 s);
/// without the background threads that decay is only acted on when the arena that freed the
/// memory allocates again, so a burst served by one worker thread could stay resident for as
/// long as that thread had nothing else to do.
pub fn set_background_threads(on: bool) {
    if JEMALLOC.load(Ordering::Relaxed)
        && let Err(e) = tikv_jemalloc_ctl::background_thread::write(on)
    {
        tracing::warn!("could not switch jemalloc's background threads: {e}");
    }
}

/// Bytes allocated by the server: jemalloc's count when it is the allocator, else RSS.
pub fn used_memory() -> (u64, &'static str) {
    if JEMALLOC.load(Ordering::Relaxed) {
        // The statistics are cached per epoch: advance it to read current figures.
        let _ = tikv_jemalloc_ctl::epoch::advance();
        if let Ok(n) = tikv_jemalloc_ctl::stats::allocated::read() {
            return (n as u64, "jemalloc");
        }
    }
    (resident_bytes(), "libc")
}

/// jemalloc's view of its memory, as Redis's INFO reports it.
struct AllocatorStats {
    /// Bytes handed out to the program.
    allocated: usize,
    /// Bytes in pages holding allocations (allocated plus fragmentation).
    active: usize,
    /// Bytes jemalloc holds in physical memory: active, metadata and freed pages not yet
    /// returned to the OS.
    resident: usize,
    /// Bytes of address space jemalloc kept after returning their pages to the OS.
    retained: usize,
}

/// jemalloc's allocated, active and resident bytes, when it is the allocator.
pub(crate) fn allocator_figures() -> Option<(u64, u64, u64)> {
    allocator_stats().map(|a| (a.allocated as u64, a.active as u64, a.resident as u64))
}

/// jemalloc's statistics, when it is the allocator.
fn allocator_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    if !JEMALLOC.load(Ordering::Relaxed) {
        return None;
    }
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()?,
        active: stats::active::read().ok()?,
        resident: stats::resident::read().ok()?,
        retained: stats::retained::read().ok()?,
    })
}

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::cmd::Ctx;

/// The Redis version Brooklet reports (INFO `redis_version`, HELLO `version`), so clients
/// enable the features they gate on it.
pub const REDIS_VERSION: &str = "8.10.0";

/// Appends one INFO section (header included).
pub fn write_section(ctx: &Ctx<'_>, section: &str, out: &mut String) {
    let shared = ctx.shared;
    let config = shared.config();
    let stats = &shared.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    match section {
        "server" => {
            out.push_str("# Server\r\n");
            field(out, "redis_version", REDIS_VERSION);
            field(out, "brooklet_version", env!("CARGO_PKG_VERSION"));
            field(out, "redis_git_sha1", "00000000");
            field(out, "redis_git_dirty", 0);
            field(out, "redis_mode", "standalone");
            field(
                out,
                "os",
                format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            );
            field(out, "arch_bits", usize::BITS);
            field(out, "multiplexing_api", "tokio");
            field(out, "process_id", std::process::id());
            field(out, "process_supervised", "no");
            field(out, "run_id", &shared.run_id);
            // Redis reports the TLS port here when there is no plain one.
            let port = shared
                .plain_addr
                .or(shared.tls_addr)
                .map_or(0, |a| a.port());
            field(out, "tcp_port", port);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            field(out, "server_time_usec", now.as_micros());
            let up = shared.started.elapsed().as_secs();
            field(out, "uptime_in_seconds", up);
            field(out, "uptime_in_days", up / 86400);
            field(out, "hz", config.hz);
            field(out, "configured_hz", config.hz);
            field(
                out,
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            field(out, "io_threads_active", u8::from(config.io_threads > 1));
            // Redis numbers listeners by connection type (tcp 0, unix 1, tls 2) and lists the
            // ones that listen.
            for (name, key, addr) in [
                ("tcp", "listener0", shared.plain_addr),
                ("tls", "listener2", shared.tls_addr),
            ] {
                if let Some(addr) = addr {
                    let bind = addr.ip();
                    let port = addr.port();
                    field(out, key, format!("name={name},bind={bind},port={port}"));
                }
            }
        }
        "clients" => {
            out.push_str("# Clients\r\n");
            let all = shared.clients.all();
            field(out, "connected_clients", all.len());
            field(out, "cluster_connections", 0);
            field(out, "maxclients", config.maxclients);
            field(
                out,
                "blocked_clients",
                shared.blocking.blocked_clients.load(Ordering::Relaxed),
            );
            field(out, "tracking_clients", 0);
            field(
                out,
                "pubsub_clients",
                all.iter().filter(|c| c.is_pubsub()).count(),
            );
            field(
                out,
                "watching_clients",
                all.iter()
                    .filter(|c| c.watching.load(Ordering::Relaxed) > 0)
                    .count(),
            );
            field(
                out,
                "clients_in_timeout_table",
                all.iter()
                    .filter(|c| c.blocked.load(Ordering::Relaxed))
                    .count(),
            );
            field(
                out,
                "total_watched_keys",
                all.iter()
                    .map(|c| c.watching.load(Ordering::Relaxed))
                    .sum::<usize>(),
            );
            field(out, "total_blocking_keys", shared.blocking.blocking_keys());
            field(out, "total_blocking_keys_on_nokey", 0);
        }
        "memory" => {
            out.push_str("# Memory\r\n");
            let (used, allocator) = used_memory();
            let rss = resident_bytes();
            field(out, "used_memory", used);
            field(out, "used_memory_human", human(used));
            field(out, "used_memory_rss", rss);
            field(out, "used_memory_rss_human", human(rss));
            if let Some(a) = allocator_stats() {
                field(out, "allocator_allocated", a.allocated);
                field(out, "allocator_active", a.active);
                field(out, "allocator_resident", a.resident);
                field(out, "allocator_retained", a.retained);
            }
            field(out, "maxmemory", config.maxmemory);
            field(out, "maxmemory_human", human(config.maxmemory));
            field(out, "maxmemory_policy", config.maxmemory_policy);
            field(out, "mem_allocator", allocator);
            // Redis frees large values in the background; Brooklet removes a large deleted
            // stream's records from disk in the background (memory is freed at once).
            let (pending, done) = shared.store.purges();
            field(out, "lazyfree_pending_objects", pending);
            field(out, "lazyfreed_objects", done);
        }
        "persistence" => {
            out.push_str("# Persistence\r\n");
            let st = shared.store.stats();
            let rec = &shared.recovery;
            field(out, "loading", 0);
            field(out, "async_loading", 0);
            field(
                out,
                "rdb_changes_since_last_save",
                st.committed.saturating_sub(st.durable),
            );
            field(out, "rdb_bgsave_in_progress", 0);
            field(
                out,
                "rdb_last_save_time",
                shared.last_save.load(Ordering::Relaxed),
            );
            // SAVE and BGSAVE run the checkpoint, as does the background task.
            let checkpoint = if shared.store.checkpoint_failed() {
                "err"
            } else {
                "ok"
            };
            field(out, "rdb_last_bgsave_status", checkpoint);
            // Brooklet's meaning: every write is journaled to the fjall store, always on.
            field(out, "aof_enabled", 1);
            field(out, "aof_rewrite_in_progress", 0);
            field(
                out,
                "aof_last_write_status",
                if st.failed { "err" } else { "ok" },
            );
            // Why writes are refused (empty when they are not), and whether they come back
            // by themselves (disk_full) or need a restart (the other states).
            let fault = shared.store.fault();
            field(
                out,
                "brooklet_store_status",
                fault.as_ref().map_or("ok", |f| f.kind.as_str()),
            );
            field(
                out,
                "brooklet_store_error",
                fault.map(|f| f.to_string()).unwrap_or_default(),
            );
            field(out, "appendfsync", config.appendfsync.as_str());
            field(out, "brooklet_store_dir", config.dir.display());
            field(out, "brooklet_disk_bytes", st.disk_bytes);
            field(out, "brooklet_batches_committed", st.committed);
            field(out, "brooklet_batches_durable", st.durable);
            field(out, "brooklet_fsyncs", st.fsyncs);
            field(out, "brooklet_last_fsync_ms", st.last_fsync_ms);
            field(out, "brooklet_loaded_streams", rec.streams);
            field(out, "brooklet_loaded_entries", rec.entries);
            field(out, "brooklet_loaded_nodes", rec.nodes);
            field(out, "brooklet_loaded_tail_appends", rec.tail_applied);
            field(
                out,
                "brooklet_stream_cache_bytes",
                config.stream_cache_bytes,
            );
            field(out, "brooklet_stream_cache_hits", st.cache_hits);
            field(out, "brooklet_stream_cache_misses", st.nodes_read);
            field(out, "brooklet_entries_read_from_disk", st.entries_read);
            field(out, "brooklet_memtable_bytes", st.memtable_bytes);
            field(out, "brooklet_tables", st.tables);
            field(out, "brooklet_journals", st.journals);
            field(out, "brooklet_tail_log_segments", st.tail_segments);
            field(out, "brooklet_tail_log_bytes", st.tail_bytes);
            field(
                out,
                "brooklet_load_seconds",
                format!("{:.3}", rec.elapsed.as_secs_f64()),
            );
            field(
                out,
                "brooklet_torn_journal_bytes_dropped",
                rec.torn_journal_bytes,
            );
            field(
                out,
                "brooklet_torn_tail_log_bytes_dropped",
                rec.tail_torn_bytes,
            );
        }
        "stats" => {
            out.push_str("# Stats\r\n");
            field(
                out,
                "total_connections_received",
                load(&stats.connections_received),
            );
            field(
                out,
                "total_commands_processed",
                ctx.shared.command_stats.processed(),
            );
            field(out, "total_net_input_bytes", stats.net_input_bytes.total());
            field(
                out,
                "total_net_output_bytes",
                stats.net_output_bytes.total(),
            );
            field(
                out,
                "rejected_connections",
                load(&stats.rejected_connections),
            );
            field(out, "expired_keys", load(&stats.expired_keys));
            field(out, "evicted_keys", 0);
            field(
                out,
                "client_query_buffer_limit_disconnections",
                load(&stats.client_query_buffer_limit_disconnections),
            );
            field(
                out,
                "client_output_buffer_limit_disconnections",
                load(&stats.client_output_limit_disconnections),
            );
            field(out, "total_error_replies", load(&stats.total_error_replies));
            pubsub_stats(ctx, out);
            acl_stats(shared, out);
            crate::replication::info::stats(shared, out);
        }
        "replication" => crate::replication::info::section(shared, out),
        "cpu" => {
            out.push_str("# CPU\r\n");
            let (user, sys) = cpu_of("/proc/self/stat");
            field(out, "used_cpu_sys", format!("{sys:.6}"));
            field(out, "used_cpu_user", format!("{user:.6}"));
        }
        // No modules can be loaded: the section is there, as in Redis's INFO, and empty.
        "modules" => out.push_str("# Modules\r\n"),
        "cluster" => {
            out.push_str("# Cluster\r\n");
            field(out, "cluster_enabled", 0);
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for db in 0..shared.keyspace.count() {
                let n = shared.keyspace.db(db).len();
                let e = shared.keyspace.db(db).expiring();
                if n > 0 {
                    let _ = write!(out, "db{db}:keys={n},expires={e},avg_ttl=0,subexpiry=0\r\n");
                }
            }
        }
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            command_stats(ctx, out);
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (code, n) in stats.errors() {
                let _ = write!(out, "errorstat_{code}:count={n}\r\n");
            }
        }
        _ => {}
    }
}

/// A byte count as Redis's `bytesToHuman` writes it.
pub(crate) fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}K", b as f64 / 1024.0),
        b => format!("{b}B"),
    }
}

/// Resident set size from /proc (0 where /proc is absent).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// User and system CPU seconds from a `/proc/.../stat` file (clock ticks of 1/100 s on Linux).
pub(crate) fn cpu_of(path: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (tick(11), tick(12))
}

/// The pub/sub counters of INFO stats.
pub(crate) fn pubsub_stats(ctx: &Ctx<'_>, out: &mut String) {
    let registry = crate::keyspace::lock(&ctx.shared.pubsub);
    field(out, "pubsub_channels", registry.channel_count());
    field(out, "pubsub_patterns", registry.pattern_count());
    field(out, "pubsubshard_channels", registry.shard_channel_count());
}

/// Appends `name:value\r\n`.
pub(crate) fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{name}:{value}\r\n");
}

/// Command names in table order with their counters, for INFO commandstats.
pub(crate) fn command_stats(ctx: &Ctx<'_>, out: &mut String) {
    for (i, e) in ctx.commands.entries.iter().enumerate() {
        let crate::stats::CommandTotals {
            calls,
            usec,
            rejected,
            failed,
        } = ctx.shared.command_stats.totals(i);
        if calls + rejected + failed == 0 {
            continue;
        }
        let per = if calls > 0 {
            usec as f64 / calls as f64
        } else {
            0.0
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
            e.full_name
        );
    }
}

/// INFO stats' ACL denial counters, as Redis names them.
fn acl_stats(shared: &crate::state::Shared, out: &mut String) {
    let log = crate::keyspace::lock(&shared.acl.log);
    field(out, "acl_access_denied_auth", log.denied_auth);
    field(out, "acl_access_denied_cmd", log.denied_cmd);
    field(out, "acl_access_denied_key", log.denied_key);
    field(out, "acl_access_denied_channel", log.denied_channel);
}

#[cfg(test)]
mod tests {
    /// The decay time set in `.cargo/config.toml` reaches the jemalloc this crate links.
    #[test]
    fn jemalloc_is_built_with_a_one_second_decay() {
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().unwrap_or_default();
        assert!(
            conf.contains("dirty_decay_ms:1000"),
            "malloc_conf is {conf:?}"
        );
    }
}
