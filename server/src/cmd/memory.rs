//! MEMORY STATS, DOCTOR, MALLOC-STATS and PURGE (MEMORY USAGE, which looks at one key,
//! sits with OBJECT in `object.rs`).

use bytes::Bytes;

use brooklet_resp::Reply;

use super::Ctx;
use crate::error::CommandError;
use crate::mem_report::MemoryReport;

fn int(name: &'static str, v: u64) -> (Reply, Reply) {
    (
        Reply::Bulk(Bytes::from_static(name.as_bytes())),
        Reply::Int(i64::try_from(v).unwrap_or(i64::MAX)),
    )
}

fn signed(name: &'static str, v: i64) -> (Reply, Reply) {
    (
        Reply::Bulk(Bytes::from_static(name.as_bytes())),
        Reply::Int(v),
    )
}

fn double(name: &'static str, v: f64) -> (Reply, Reply) {
    (
        Reply::Bulk(Bytes::from_static(name.as_bytes())),
        Reply::Double(v),
    )
}

/// MEMORY STATS: Redis's fields in Redis's order (those of features Brooklet lacks, such
/// as replication or scripts, are 0), then Brooklet's own under `brooklet.`.
pub(crate) fn stats(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    let r = MemoryReport::now(ctx.shared);
    let mut m = vec![
        int("peak.allocated", r.peak),
        int("total.allocated", r.total),
        int("startup.allocated", r.startup),
        int("replication.backlog", 0),
        int("replica.fullsync.buffer", 0),
        int("clients.slaves", 0),
        int("clients.normal", r.clients_normal),
        int("cluster.links", 0),
        int("aof.buffer", 0),
        int("lua.caches", 0),
        int("functions.caches", 0),
        int("script.VMs", 0),
    ];
    for d in &r.dbs {
        m.push((
            Reply::bulk(format!("db.{}", d.db)),
            Reply::Map(vec![
                int("overhead.hashtable.main", d.main),
                int("overhead.hashtable.expires", d.expires),
            ]),
        ));
    }
    let lut: u64 = r.dbs.iter().map(|d| d.main).sum();
    let (afrag, afrag_bytes) = r.allocator_frag();
    let (arss, arss_bytes) = r.allocator_rss();
    let (rss_extra, rss_extra_bytes) = r.rss_overhead();
    let (frag, frag_bytes) = r.fragmentation();
    m.extend([
        int("overhead.db.hashtable.lut", lut),
        // hashbrown grows a table in one step: nothing is ever half rehashed.
        int("overhead.db.hashtable.rehashing", 0),
        int("overhead.total", r.overhead()),
        int("db.dict.rehashing.count", 0),
        int("keys.count", r.keys),
        int("keys.bytes-per-key", r.bytes_per_key()),
        int("dataset.bytes", r.dataset()),
        double("dataset.percentage", r.dataset_percentage()),
        double("peak.percentage", r.peak_percentage()),
        int("allocator.allocated", r.allocated),
        int("allocator.active", r.active),
        int("allocator.resident", r.resident),
        int("allocator.muzzy", r.muzzy),
        double("allocator-fragmentation.ratio", afrag),
        signed("allocator-fragmentation.bytes", afrag_bytes),
        double("allocator-rss.ratio", arss),
        signed("allocator-rss.bytes", arss_bytes),
        double("rss-overhead.ratio", rss_extra),
        signed("rss-overhead.bytes", rss_extra_bytes),
        double("fragmentation", frag),
        signed("fragmentation.bytes", frag_bytes),
        int("brooklet.disk.bytes", r.disk_bytes),
        int("brooklet.tail-log.bytes", r.tail_log_bytes),
        int("brooklet.memtable.bytes", r.memtable_bytes),
        int("brooklet.stream-cache.budget", r.stream_cache_budget),
        int("brooklet.stream-cache.hits", r.cache_hits),
        int("brooklet.stream-cache.misses", r.cache_misses),
    ]);
    Ok(Reply::Map(m))
}

/// MEMORY DOCTOR.
pub(crate) fn doctor(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    let report = MemoryReport::now(ctx.shared).doctor();
    Ok(Reply::Verbatim("txt", Bytes::from(report)))
}

/// MEMORY MALLOC-STATS: jemalloc's own statistics text when it is the allocator.
pub(crate) fn malloc_stats(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    if crate::info::used_memory().1 != "jemalloc" {
        return Ok(Reply::bulk("Stats not supported for the current allocator"));
    }
    let mut text = Vec::new();
    tikv_jemalloc_ctl::stats_print::stats_print(&mut text, Default::default())
        .map_err(|e| CommandError::text(format!("ERR {e}")))?;
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

/// MEMORY PURGE: has every jemalloc arena return its unused dirty and muzzy pages to the
/// OS now. Redis asks each arena to purge; the same happens here by setting each arena's
/// decay times to 0 (which purges at once) and back, since the purge call itself is not
/// reachable through safe bindings.
pub(crate) fn purge(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    use tikv_jemalloc_ctl::{Access, AsName};
    if crate::info::used_memory().1 != "jemalloc" {
        return Ok(Reply::Ok);
    }
    let arenas = tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0);
    for i in 0..arenas {
        for kind in ["dirty", "muzzy"] {
            let name = format!("arena.{i}.{kind}_decay_ms\0");
            let key = name.as_bytes().name();
            let Ok(before) = Access::<isize>::read(key) else {
                // An arena number never initialized: nothing to purge.
                continue;
            };
            let purged = key.write(0isize);
            let restored = key.write(before);
            if purged.is_err() || restored.is_err() {
                return Err(CommandError::msg("ERR Error purging dirty pages"));
            }
        }
    }
    Ok(Reply::Ok)
}
