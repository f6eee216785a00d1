//! Where the server's memory goes, as MEMORY STATS, MEMORY DOCTOR and the metrics endpoint
//! report it: the allocator's figures, what Brooklet spends outside the data (client
//! buffers, the keyspace's tables) and the store's figures for what lives on disk.
//!
//! Everything here is read from counters and table sizes: no key is visited, so a report
//! costs the same whatever the dataset's size (one jemalloc epoch advance, one lock per
//! keyspace shard to read its table's capacity).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::keyspace::Value;
use crate::state::Shared;

/// The highest `used_memory` any reading saw (Redis's `stat_peak_memory`).
static PEAK: AtomicU64 = AtomicU64::new(0);

/// The latest reading's `used_memory` (0 before the first).
static LAST: AtomicU64 = AtomicU64::new(0);

/// `used_memory` once the server was set up, before the data was loaded.
static STARTUP: OnceLock<u64> = OnceLock::new();

/// Reads the memory in use and keeps the peak; the memory task calls it every tick, so
/// the peak is that of readings 100 ms apart (Redis samples it in its cron as well).
pub fn reading() -> u64 {
    let (used, _) = crate::info::used_memory();
    PEAK.fetch_max(used, Ordering::Relaxed);
    LAST.store(used, Ordering::Relaxed);
    used
}

/// The memory in use as the latest [`reading`] found it (at most a tick old while the
/// memory task runs), without a reading of its own: each reading advances jemalloc's
/// epoch, which merges every arena's statistics (about 0.8M instructions).
pub fn latest_reading() -> u64 {
    match LAST.load(Ordering::Relaxed) {
        0 => reading(),
        used => used,
    }
}

/// Records the memory in use before the data is loaded (Redis's `startup.allocated`); the
/// first server of a process sets it.
pub fn note_startup() {
    let _ = STARTUP.get_or_init(reading);
}

/// Bytes a key costs in its shard's table besides the key and value themselves: the slot
/// (key handle and value enum) and hashbrown's control byte.
const SLOT_BYTES: usize = std::mem::size_of::<(bytes::Bytes, Value)>() + 1;

/// One database's table overhead (MEMORY STATS `db.N`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbOverhead {
    /// The database's number.
    pub db: usize,
    /// Its keys' table slots (allocated capacity, not just the keys).
    pub main: u64,
    /// Its deadlines' tables.
    pub expires: u64,
    /// Keys in it.
    pub keys: u64,
}

/// The figures of MEMORY STATS, with Redis's meanings.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryReport {
    /// Highest `used_memory` seen.
    pub peak: u64,
    /// `used_memory` now.
    pub total: u64,
    /// `used_memory` at start-up, before the data was loaded.
    pub startup: u64,
    /// Bytes queued to normal clients and not yet written.
    pub clients_normal: u64,
    /// Connected clients.
    pub clients: u64,
    /// Databases holding keys.
    pub dbs: Vec<DbOverhead>,
    /// Keys over every database.
    pub keys: u64,
    /// The allocator: allocated, active, resident, muzzy (jemalloc's figures; on another
    /// allocator, `used_memory` and the process's RSS stand for them as in Redis).
    pub allocated: u64,
    /// Pages in use by allocations.
    pub active: u64,
    /// Pages the allocator holds in physical memory.
    pub resident: u64,
    /// Freed pages jemalloc has marked for the OS to reclaim lazily.
    pub muzzy: u64,
    /// The process's resident set.
    pub rss: u64,
    /// The store: bytes on disk, in the tail log, in the engine's memtables.
    pub disk_bytes: u64,
    /// Bytes of records in the tail log's segments.
    pub tail_log_bytes: u64,
    /// Bytes in the engine's memtables.
    pub memtable_bytes: u64,
    /// The node cache's budget (`stream-cache-bytes`, cut to 0 near `maxmemory`).
    pub stream_cache_budget: u64,
    /// Node reads served from memory and from disk.
    pub cache_hits: u64,
    /// Node reads that went to disk.
    pub cache_misses: u64,
}

impl MemoryReport {
    /// Takes the figures now.
    pub fn now(shared: &Shared) -> Self {
        let total = reading();
        let startup = STARTUP.get().copied().unwrap_or(0).min(total);
        let clients = shared.clients.all();
        let clients_normal = clients
            .iter()
            .map(|c| c.queued_bytes.load(Ordering::Relaxed) as u64)
            .sum();
        let mut dbs = Vec::new();
        for n in 0..shared.keyspace.count() {
            let db = shared.keyspace.db(n);
            let keys = db.len() as u64;
            if keys == 0 {
                continue;
            }
            let mut capacity = 0;
            for s in 0..db.shard_count() {
                capacity += db.lock_shard(s).capacity();
            }
            dbs.push(DbOverhead {
                db: n,
                main: (capacity * SLOT_BYTES) as u64,
                expires: (db.expiring() * crate::deadlines::DEADLINE_BYTES) as u64,
                keys,
            });
        }
        let keys = dbs.iter().map(|d| d.keys).sum();
        let rss = crate::info::resident_bytes();
        let (allocated, active, resident, muzzy) = match allocator_figures() {
            Some(a) => a,
            None => (total, total, rss, 0),
        };
        let st = shared.store.stats();
        MemoryReport {
            peak: PEAK.load(Ordering::Relaxed).max(total),
            total,
            startup,
            clients_normal,
            clients: clients.len() as u64,
            dbs,
            keys,
            allocated,
            active,
            resident,
            muzzy,
            rss,
            disk_bytes: st.disk_bytes,
            tail_log_bytes: st.tail_bytes,
            memtable_bytes: st.memtable_bytes,
            stream_cache_budget: shared
                .memory
                .cache_budget(shared.config().stream_cache_bytes)
                as u64,
            cache_hits: st.cache_hits,
            cache_misses: st.nodes_read,
        }
    }

    /// Everything that is not the dataset (Redis's `overhead.total`): start-up memory,
    /// client buffers, the keyspace's tables.
    pub fn overhead(&self) -> u64 {
        self.startup
            + self.clients_normal
            + self.dbs.iter().map(|d| d.main + d.expires).sum::<u64>()
    }

    /// Bytes of keys and values (Redis's `dataset.bytes`: allocated minus overhead).
    pub fn dataset(&self) -> u64 {
        self.total.saturating_sub(self.overhead())
    }

    /// `keys.bytes-per-key`: memory grown since start-up per key.
    pub fn bytes_per_key(&self) -> u64 {
        self.total
            .saturating_sub(self.startup)
            .checked_div(self.keys)
            .unwrap_or(0)
    }

    /// `dataset.percentage`: the dataset's share of the memory grown since start-up.
    pub fn dataset_percentage(&self) -> f64 {
        let net = self.total.saturating_sub(self.startup);
        if net == 0 {
            return 0.0;
        }
        self.dataset() as f64 * 100.0 / net as f64
    }

    /// `peak.percentage`: memory now as a share of the peak.
    pub fn peak_percentage(&self) -> f64 {
        self.total as f64 * 100.0 / self.peak.max(1) as f64
    }

    /// `allocator-fragmentation.ratio` and `.bytes`: active pages against allocations.
    pub fn allocator_frag(&self) -> (f64, i64) {
        ratio(self.active, self.allocated)
    }

    /// `allocator-rss.ratio` and `.bytes`: the allocator's resident pages against active ones.
    pub fn allocator_rss(&self) -> (f64, i64) {
        ratio(self.resident, self.active)
    }

    /// `rss-overhead.ratio` and `.bytes`: the process's RSS against the allocator's.
    pub fn rss_overhead(&self) -> (f64, i64) {
        ratio(self.rss, self.resident)
    }

    /// `fragmentation` and `.bytes`: the process's RSS against `used_memory`.
    pub fn fragmentation(&self) -> (f64, i64) {
        ratio(self.rss, self.total)
    }

    /// MEMORY DOCTOR's report, with Redis's texts for the findings that apply here (no
    /// replicas, no scripts).
    pub fn doctor(&self) -> String {
        const MB10: i64 = 10 << 20;
        if self.total < 5 * 1024 * 1024 {
            return DOCTOR_EMPTY.into();
        }
        let mut found: Vec<&str> = Vec::new();
        if self.peak as f64 / self.total as f64 > 1.5 {
            found.push(DOCTOR_PEAK);
        }
        let (frag, frag_bytes) = self.fragmentation();
        let high_frag = frag > 1.4 && frag_bytes > MB10;
        let (afrag, afrag_bytes) = self.allocator_frag();
        let high_alloc_frag = afrag > 1.1 && afrag_bytes > MB10;
        let (arss, arss_bytes) = self.allocator_rss();
        let high_alloc_rss = arss > 1.1 && arss_bytes > MB10;
        let (prss, prss_bytes) = self.rss_overhead();
        let high_proc_rss = prss > 1.1 && prss_bytes > MB10;
        let big_clients = self.clients_normal / self.clients.max(1) > 200 * 1024;
        let high_frag_text;
        if high_frag {
            high_frag_text = DOCTOR_HIGH_FRAG.replace("%s", crate::info::used_memory().1);
            found.push(&high_frag_text);
        }
        for (on, text) in [
            (high_alloc_frag, DOCTOR_ALLOC_FRAG),
            (high_alloc_rss, DOCTOR_ALLOC_RSS),
            (high_proc_rss, DOCTOR_PROC_RSS),
            (big_clients, DOCTOR_CLIENT_BUFFERS),
        ] {
            if on {
                found.push(text);
            }
        }
        if found.is_empty() {
            return DOCTOR_FINE.into();
        }
        let mut s = String::from(DOCTOR_FOUND);
        for f in found {
            s.push_str(f);
        }
        s.push_str(DOCTOR_END);
        s
    }
}

/// jemalloc's allocated, active, resident and muzzy bytes, when it is the allocator.
fn allocator_figures() -> Option<(u64, u64, u64, u64)> {
    use tikv_jemalloc_ctl::{Access, AsName, stats};
    if crate::info::used_memory().1 != "jemalloc" {
        return None;
    }
    // 4096 is jemalloc's MALLCTL_ARENAS_ALL: the figures summed over every arena.
    let pmuzzy: usize = b"stats.arenas.4096.pmuzzy\0".name().read().unwrap_or(0);
    let page: usize = b"arenas.page\0".name().read().unwrap_or(4096);
    Some((
        stats::allocated::read().ok()? as u64,
        stats::active::read().ok()? as u64,
        stats::resident::read().ok()? as u64,
        (pmuzzy * page) as u64,
    ))
}

/// `a / b` and `a - b`, as Redis computes its ratios (0 when `b` is 0).
fn ratio(a: u64, b: u64) -> (f64, i64) {
    let r = if b == 0 { 0.0 } else { a as f64 / b as f64 };
    (r, a as i64 - b as i64)
}

const DOCTOR_FINE: &str = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const DOCTOR_FOUND: &str =
    "Sam, I detected a few issues in this Redis instance memory implants:\n\n";
const DOCTOR_END: &str = "I'm here to keep you safe, Sam. I want to help you.\n";
const DOCTOR_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n";
const DOCTOR_HIGH_FRAG: &str = " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"%s\".\n\n";
const DOCTOR_ALLOC_FRAG: &str = " * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n";
const DOCTOR_ALLOC_RSS: &str = " * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n";
const DOCTOR_PROC_RSS: &str = " * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n";
const DOCTOR_CLIENT_BUFFERS: &str = " * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn report(total: u64, peak: u64, rss: u64) -> MemoryReport {
        MemoryReport {
            peak,
            total,
            startup: 1 << 20,
            clients_normal: 0,
            clients: 1,
            dbs: vec![DbOverhead {
                db: 0,
                main: 1000,
                expires: 0,
                keys: 10,
            }],
            keys: 10,
            allocated: total,
            active: total,
            resident: rss,
            muzzy: 0,
            rss,
            disk_bytes: 0,
            tail_log_bytes: 0,
            memtable_bytes: 0,
            stream_cache_budget: 0,
            cache_hits: 0,
            cache_misses: 0,
        }
    }

    #[test]
    fn doctor_texts_by_case() {
        assert_eq!(report(1 << 20, 1 << 20, 1 << 20).doctor(), DOCTOR_EMPTY);
        assert_eq!(report(64 << 20, 64 << 20, 64 << 20).doctor(), DOCTOR_FINE);
        let peaked = report(64 << 20, 128 << 20, 64 << 20).doctor();
        assert!(peaked.starts_with(DOCTOR_FOUND), "{peaked}");
        assert!(peaked.contains(" * Peak memory:"));
        assert!(peaked.ends_with(DOCTOR_END));
    }

    #[test]
    fn derived_figures() {
        let r = report(11 << 20, 22 << 20, 11 << 20);
        assert_eq!(r.overhead(), (1 << 20) + 1000);
        assert_eq!(r.dataset(), (11 << 20) - (1 << 20) - 1000);
        assert_eq!(r.bytes_per_key(), (10 << 20) / 10);
        assert!((r.peak_percentage() - 50.0).abs() < 1e-9);
        assert_eq!(ratio(0, 0), (0.0, 0));
    }
}
