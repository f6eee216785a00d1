//! What one scrape reports, read from memory: server counters, the memory report, the
//! store's figures, and per stream and consumer group their lengths, lag and counters.
//!
//! Cost of a scrape: every shard of every database is locked once, in turn, for the time it
//! takes to walk its table (strings are skipped at the price of one enum check each) and to
//! read each stream's metadata: its length, and per group the figures XINFO GROUPS shows
//! plus the first pending entry. No entry, node or disk record is read; a group's PEL is
//! never walked. At most [`MAX_STREAMS`] streams are reported; past that the scrape says how
//! many it left out.

use std::sync::atomic::Ordering;

use crate::keyspace::Value;
use crate::mem_report::MemoryReport;
use crate::state::Shared;

/// Streams one scrape reports at most, so a keyspace of many small streams cannot make a
/// scrape (and its reply) grow without bound.
pub const MAX_STREAMS: usize = 10_000;

/// A consumer group's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFigures {
    /// The group's name.
    pub name: String,
    /// Entries not yet delivered to the group (XINFO GROUPS `lag`); None when unknown.
    pub lag: Option<i64>,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// Consumers.
    pub consumers: u64,
    /// Seconds since the delivery of the pending entry with the lowest ID (0 without one).
    pub oldest_pending_idle_seconds: f64,
    /// Lifetime counters: delivered, acked, nacked, dead-lettered.
    pub delivered: u64,
    /// Entries acknowledged.
    pub acked: u64,
    /// Entries released by XNACK.
    pub nacked: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

/// A stream's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFigures {
    /// The database.
    pub db: usize,
    /// The key, as UTF-8 (invalid bytes replaced).
    pub key: String,
    /// Entries.
    pub length: u64,
    /// Its groups.
    pub groups: Vec<GroupFigures>,
}

/// One scrape's figures.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Where memory goes.
    pub memory: MemoryReport,
    /// Connected clients.
    pub connected_clients: u64,
    /// Clients blocked (XREAD BLOCK) or held by CLIENT PAUSE.
    pub blocked_clients: u64,
    /// Commands run since start (or CONFIG RESETSTAT).
    pub commands_processed: u64,
    /// Connections accepted.
    pub connections_received: u64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: u64,
    /// Keys removed at their deadline.
    pub expired_keys: u64,
    /// Error replies.
    pub error_replies: u64,
    /// Bytes read from and written to clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Per database: (number, keys, keys with a deadline), databases with keys only.
    pub dbs: Vec<(usize, u64, u64)>,
    /// The store's batches committed and known durable, fsyncs.
    pub batches_committed: u64,
    /// Batches known durable.
    pub batches_durable: u64,
    /// fsyncs done.
    pub fsyncs: u64,
    /// Tail-log segments on disk.
    pub tail_log_segments: u64,
    /// Whether the last checkpoint failed.
    pub checkpoint_failed: bool,
    /// Whether the store refuses writes.
    pub store_failed: bool,
    /// CLIENT PAUSE: what it holds back (`none`, `write`, `all`) and the milliseconds left.
    pub pause: (&'static str, u64),
    /// Streams reported, and how many more there were.
    pub streams: Vec<StreamFigures>,
    /// Streams past [`MAX_STREAMS`], not reported.
    pub streams_left_out: u64,
}

impl Figures {
    /// Reads the figures now (see the module's notes for the cost).
    pub fn now(shared: &Shared) -> Self {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let st = shared.store.stats();
        let stats = &shared.stats;
        let mut dbs = Vec::new();
        for n in 0..shared.keyspace.count() {
            let db = shared.keyspace.db(n);
            let keys = db.len() as u64;
            if keys > 0 {
                dbs.push((n, keys, db.expiring() as u64));
            }
        }
        let (streams, streams_left_out) = streams(shared, crate::client::now_ms());
        Figures {
            memory: MemoryReport::now(shared),
            connected_clients: shared.clients.all().len() as u64,
            blocked_clients: shared.blocking.blocked_clients.load(Ordering::Relaxed) as u64,
            commands_processed: shared.command_stats.processed(),
            connections_received: load(&stats.connections_received),
            rejected_connections: load(&stats.rejected_connections),
            expired_keys: load(&stats.expired_keys),
            error_replies: load(&stats.total_error_replies),
            net_input_bytes: stats.net_input_bytes.total(),
            net_output_bytes: stats.net_output_bytes.total(),
            uptime_seconds: shared.started.elapsed().as_secs(),
            dbs,
            batches_committed: st.committed,
            batches_durable: st.durable,
            fsyncs: st.fsyncs,
            tail_log_segments: st.tail_segments,
            checkpoint_failed: shared.store.checkpoint_failed(),
            store_failed: st.failed,
            pause: {
                let (_, actions, left) = shared.pause.describe(crate::client::now_ms());
                (actions, left)
            },
            streams,
            streams_left_out,
        }
    }
}

/// Pending entries looked at for the oldest delivery: those NACK released (delivery time
/// 0, no owner) are passed over, up to this many.
const PENDING_LOOKED_AT: usize = 64;

/// Every stream's figures, at most [`MAX_STREAMS`], and how many were left out.
fn streams(shared: &Shared, now_ms: u64) -> (Vec<StreamFigures>, u64) {
    let mut out = Vec::new();
    let mut left_out = 0u64;
    for n in 0..shared.keyspace.count() {
        let db = shared.keyspace.db(n);
        if db.len() == 0 {
            continue;
        }
        for s in 0..db.shard_count() {
            let shard = db.lock_shard(s);
            for (key, value) in shard.iter() {
                let Value::Stream(stream, _) = value else {
                    continue;
                };
                if out.len() >= MAX_STREAMS {
                    left_out += 1;
                    continue;
                }
                let groups = stream
                    .groups_info()
                    .into_iter()
                    .map(|g| {
                        let oldest = stream
                            .groups()
                            .get(&g.name)
                            .and_then(|cg| {
                                cg.pending()
                                    .values()
                                    .take(PENDING_LOOKED_AT)
                                    .find(|p| p.delivery_time > 0)
                                    .map(|p| now_ms.saturating_sub(p.delivery_time))
                            })
                            .unwrap_or(0);
                        GroupFigures {
                            name: String::from_utf8_lossy(&g.name).into_owned(),
                            lag: g.lag,
                            pending: g.pending,
                            consumers: g.consumers,
                            oldest_pending_idle_seconds: oldest as f64 / 1000.0,
                            delivered: g.counters.delivered,
                            acked: g.counters.acked,
                            nacked: g.counters.nacked,
                            dead_lettered: g.counters.dead_lettered,
                        }
                    })
                    .collect();
                out.push(StreamFigures {
                    db: n,
                    key: String::from_utf8_lossy(key).into_owned(),
                    length: stream.len(),
                    groups,
                });
            }
        }
    }
    (out, left_out)
}
