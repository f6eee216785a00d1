//! The INFO fields Redis 7.4 has beyond those `info.rs` writes, each with Redis's name and
//! unit and computed for real where Brooklet has the figure: sampled rates, hits and misses,
//! the memory peak and fragmentation, system memory, per-thread CPU, and the
//! `latencystats` section. Fields of features Brooklet lacks (Lua, functions, client-side
//! tracking, replication sync counters) are reported as the zero Redis reports while they
//! are unused; fork, copy-on-write and active defragmentation fields are left out, since
//! Brooklet never forks and jemalloc's defragmenter is not used (README, Operations).

use std::sync::atomic::Ordering;

use crate::cmd::Ctx;
use crate::info::{cpu_of, field, human};
use crate::instant_metrics::Metric;

/// Appends the extra fields of `section` (after the fields `info.rs` wrote), and the whole
/// `latencystats` section.
pub fn extra(ctx: &Ctx<'_>, section: &str, out: &mut String) {
    match section {
        "server" => server(out),
        "clients" => clients(ctx, out),
        "memory" => memory(ctx, out),
        "persistence" => persistence(ctx, out),
        "stats" => stats(ctx, out),
        "cpu" => cpu(out),
        "latencystats" => {
            out.push_str("# Latencystats\r\n");
            latencystats(ctx, out);
        }
        _ => {}
    }
}

fn server(out: &mut String) {
    field(out, "redis_build_id", "0");
    // Rust's Instant reads CLOCK_MONOTONIC.
    field(out, "monotonic_clock", "POSIX clock_gettime");
    field(out, "atomicvar_api", "c11-builtin");
    field(out, "gcc_version", "0.0.0");
    // Redis's LRU clock: seconds, in 24 bits.
    field(
        out,
        "lru_clock",
        (crate::client::now_ms() / 1000) & ((1 << 24) - 1),
    );
    field(out, "config_file", "");
}

fn clients(ctx: &Ctx<'_>, out: &mut String) {
    let most_queued = ctx
        .shared
        .clients
        .all()
        .iter()
        .map(|c| c.queued_bytes.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    field(out, "client_recent_max_input_buffer", 0);
    field(out, "client_recent_max_output_buffer", most_queued);
}

fn memory(ctx: &Ctx<'_>, out: &mut String) {
    let (used, _) = crate::info::used_memory();
    let rss = crate::info::resident_bytes();
    let instant = &ctx.shared.instant;
    instant.note_memory(used);
    let peak = instant.peak_memory.load(Ordering::Relaxed).max(used);
    field(out, "used_memory_peak", peak);
    field(out, "used_memory_peak_human", human(peak));
    field(
        out,
        "used_memory_peak_time",
        instant.peak_time_ms.load(Ordering::Relaxed) / 1000,
    );
    field(
        out,
        "used_memory_peak_perc",
        format!("{:.2}%", percent(used, peak)),
    );
    let startup = ctx.shared.used_memory_startup.load(Ordering::Relaxed);
    field(out, "used_memory_startup", startup);
    let dataset = used.saturating_sub(startup);
    field(out, "used_memory_overhead", startup);
    field(out, "used_memory_dataset", dataset);
    field(
        out,
        "used_memory_dataset_perc",
        format!("{:.2}%", percent(dataset, used)),
    );
    let total = total_system_memory();
    field(out, "total_system_memory", total);
    field(out, "total_system_memory_human", human(total));
    // No Lua and no functions: the zeros Redis shows before any script is loaded.
    for name in [
        "used_memory_lua",
        "used_memory_vm_eval",
        "used_memory_scripts_eval",
        "number_of_cached_scripts",
        "number_of_functions",
        "number_of_libraries",
        "used_memory_vm_functions",
        "used_memory_vm_total",
        "used_memory_functions",
        "used_memory_scripts",
    ] {
        field(out, name, 0);
    }
    field(out, "used_memory_lua_human", "0B");
    field(out, "used_memory_vm_total_human", "0B");
    field(out, "used_memory_scripts_human", "0B");
    if let Some(a) = crate::info::allocator_figures() {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (alloc, active, resident) = (a.0, a.1, a.2);
        field(
            out,
            "allocator_frag_ratio",
            format!("{:.2}", ratio(active, alloc)),
        );
        field(out, "allocator_frag_bytes", active as i64 - alloc as i64);
        field(
            out,
            "allocator_rss_ratio",
            format!("{:.2}", ratio(resident, active)),
        );
        field(out, "allocator_rss_bytes", resident as i64 - active as i64);
        field(
            out,
            "rss_overhead_ratio",
            format!("{:.2}", ratio(rss, resident)),
        );
        field(out, "rss_overhead_bytes", rss as i64 - resident as i64);
    }
    let frag = if used == 0 {
        0.0
    } else {
        rss as f64 / used as f64
    };
    field(out, "mem_fragmentation_ratio", format!("{frag:.2}"));
    field(out, "mem_fragmentation_bytes", rss as i64 - used as i64);
    field(out, "mem_not_counted_for_evict", 0);
    field(out, "mem_replication_backlog", 0);
    field(out, "mem_total_replication_buffers", 0);
    field(out, "mem_clients_slaves", 0);
    let queued: usize = ctx
        .shared
        .clients
        .all()
        .iter()
        .map(|c| c.queued_bytes.load(Ordering::Relaxed))
        .sum();
    field(out, "mem_clients_normal", queued);
    field(out, "mem_cluster_links", 0);
    field(out, "mem_aof_buffer", 0);
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn persistence(ctx: &Ctx<'_>, out: &mut String) {
    let rec = &ctx.shared.recovery;
    field(out, "current_save_keys_processed", 0);
    field(out, "current_save_keys_total", 0);
    field(out, "rdb_last_bgsave_time_sec", -1);
    field(out, "rdb_current_bgsave_time_sec", -1);
    field(
        out,
        "rdb_saves",
        ctx.shared.stats.saves.load(Ordering::Relaxed),
    );
    field(out, "rdb_last_load_keys_expired", 0);
    field(out, "rdb_last_load_keys_loaded", rec.streams);
    field(out, "aof_rewrite_scheduled", 0);
    field(out, "aof_last_rewrite_time_sec", -1);
    field(out, "aof_current_rewrite_time_sec", -1);
    field(out, "aof_last_bgrewrite_status", "ok");
    field(out, "aof_rewrites", 0);
    field(out, "aof_rewrites_consecutive_failures", 0);
}

fn stats(ctx: &Ctx<'_>, out: &mut String) {
    let shared = ctx.shared;
    let s = &shared.stats;
    let inst = &shared.instant;
    field(
        out,
        "instantaneous_ops_per_sec",
        inst.per_sec(Metric::Commands).round() as u64,
    );
    field(out, "total_net_repl_input_bytes", 0);
    field(out, "total_net_repl_output_bytes", 0);
    field(
        out,
        "instantaneous_input_kbps",
        format!("{:.2}", inst.per_sec(Metric::NetInput) / 1024.0),
    );
    field(
        out,
        "instantaneous_output_kbps",
        format!("{:.2}", inst.per_sec(Metric::NetOutput) / 1024.0),
    );
    field(out, "instantaneous_input_repl_kbps", "0.00");
    field(out, "instantaneous_output_repl_kbps", "0.00");
    field(out, "sync_full", 0);
    field(out, "sync_partial_ok", 0);
    field(out, "sync_partial_err", 0);
    field(out, "expired_stale_perc", "0.00");
    field(out, "expired_time_cap_reached_count", 0);
    field(out, "expire_cycle_cpu_milliseconds", 0);
    field(out, "evicted_clients", 0);
    field(out, "total_eviction_exceeded_time", 0);
    field(out, "current_eviction_exceeded_time", 0);
    field(out, "keyspace_hits", s.keyspace_hits.total());
    field(out, "keyspace_misses", s.keyspace_misses.total());
    field(out, "migrate_cached_sockets", 0);
    field(out, "slave_expires_tracked_keys", 0);
    field(out, "tracking_total_keys", 0);
    field(out, "tracking_total_items", 0);
    field(out, "tracking_total_prefixes", 0);
    field(out, "unexpected_error_replies", 0);
    field(out, "dump_payload_sanitizations", 0);
    field(out, "total_reads_processed", s.reads_processed.total());
    field(out, "total_writes_processed", s.writes_processed.total());
    field(out, "io_threaded_reads_processed", 0);
    field(out, "io_threaded_writes_processed", 0);
}

fn cpu(out: &mut String) {
    field(out, "used_cpu_sys_children", "0.000000");
    field(out, "used_cpu_user_children", "0.000000");
    // The thread that answers INFO is one of those that run commands: the closest there is
    // to Redis's main thread.
    let (user, sys) = cpu_of("/proc/thread-self/stat");
    field(out, "used_cpu_sys_main_thread", format!("{sys:.6}"));
    field(out, "used_cpu_user_main_thread", format!("{user:.6}"));
}

/// Physical memory of the machine, bytes (`/proc/meminfo`'s MemTotal).
fn total_system_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// INFO latencystats: per command called since the last reset, the configured percentiles
/// of its latency in microseconds.
fn latencystats(ctx: &Ctx<'_>, out: &mut String) {
    use std::fmt::Write as _;
    let percentiles = ctx
        .shared
        .config()
        .latency_tracking_info_percentiles
        .clone();
    for (idx, e) in ctx.commands.entries.iter().enumerate() {
        let Some(h) = ctx.shared.latency.command_histogram(idx) else {
            continue;
        };
        let line = crate::latency_monitor::percentiles_line(&h, &percentiles);
        let _ = write!(out, "latency_percentiles_usec_{}:{line}\r\n", e.full_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_memory_and_thread_cpu_are_read() {
        assert!(total_system_memory() > 0);
        let (user, sys) = cpu_of("/proc/thread-self/stat");
        assert!(user >= 0.0 && sys >= 0.0);
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(1, 0), 0.0);
    }
}
