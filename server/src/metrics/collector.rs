//! The collector a scrape runs: the figures (`figures.rs`) encoded as Prometheus metric
//! families with prometheus-client, every name prefixed `brooklet_`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::figures::{self, Figures};
use crate::state::Shared;

/// Reads the figures on each scrape.
struct ServerCollector {
    shared: Arc<Shared>,
    /// The previous scrape's time and command count, for the command rate between scrapes.
    last: Mutex<Option<(Instant, u64)>>,
}

/// Encodes one unlabelled gauge.
fn gauge<N>(e: &mut DescriptorEncoder, name: &str, help: &str, v: N) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric,
{
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// Encodes one unlabelled counter (`name` gets `_total`).
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// Encodes a gauge family: one sample per label set.
fn gauges<L, N>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, N)>,
) -> std::fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
    ConstGauge<N>: EncodeMetric,
{
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes a counter family: one sample per label set.
fn counters<L>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> std::fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
{
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, v) in samples {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCollector")
    }
}

impl Collector for ServerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let f = Figures::now(&self.shared);
        let now = Instant::now();
        let rate = {
            let mut last = crate::keyspace::lock(&self.last);
            let rate = last.map_or(0.0, |(at, n)| {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    f.commands_processed.saturating_sub(n) as f64 / secs
                } else {
                    0.0
                }
            });
            *last = Some((now, f.commands_processed));
            rate
        };
        let m = &f.memory;
        let e = &mut e;
        gauge(
            e,
            "uptime_seconds",
            "Seconds since the server started.",
            f.uptime_seconds as i64,
        )?;
        gauge(
            e,
            "connected_clients",
            "Client connections open.",
            f.connected_clients as i64,
        )?;
        gauge(
            e,
            "blocked_clients",
            "Clients waiting in a blocking command or held by CLIENT PAUSE.",
            f.blocked_clients as i64,
        )?;
        counter(
            e,
            "commands_processed",
            "Commands run.",
            f.commands_processed,
        )?;
        gauge(
            e,
            "commands_per_second",
            "Commands run per second since the previous scrape (0 on the first).",
            rate,
        )?;
        counter(
            e,
            "connections_received",
            "Connections accepted.",
            f.connections_received,
        )?;
        counter(
            e,
            "rejected_connections",
            "Connections refused at maxclients.",
            f.rejected_connections,
        )?;
        counter(e, "error_replies", "Error replies sent.", f.error_replies)?;
        counter(
            e,
            "net_input_bytes",
            "Bytes read from clients.",
            f.net_input_bytes,
        )?;
        counter(
            e,
            "net_output_bytes",
            "Bytes written to clients.",
            f.net_output_bytes,
        )?;
        counter(
            e,
            "expired_keys",
            "Keys removed because their deadline passed.",
            f.expired_keys,
        )?;
        gauge(
            e,
            "memory_used_bytes",
            "Bytes allocated (used_memory).",
            m.total as i64,
        )?;
        gauge(
            e,
            "memory_peak_bytes",
            "Highest used_memory seen.",
            m.peak as i64,
        )?;
        gauge(
            e,
            "memory_rss_bytes",
            "The process's resident set.",
            m.rss as i64,
        )?;
        gauge(
            e,
            "memory_dataset_bytes",
            "Bytes of keys and values (MEMORY STATS dataset.bytes).",
            m.dataset() as i64,
        )?;
        gauges(
            e,
            "db_keys",
            "Keys per database.",
            f.dbs
                .iter()
                .map(|(db, keys, _)| ([("db", db.to_string())], *keys as i64)),
        )?;
        gauges(
            e,
            "db_keys_expiring",
            "Keys with a deadline per database.",
            f.dbs
                .iter()
                .map(|(db, _, exp)| ([("db", db.to_string())], *exp as i64)),
        )?;
        gauge(
            e,
            "disk_bytes",
            "Bytes of the data folder.",
            m.disk_bytes as i64,
        )?;
        gauge(
            e,
            "tail_log_bytes",
            "Bytes of records in the tail log, not yet checkpointed into the store.",
            m.tail_log_bytes as i64,
        )?;
        gauge(
            e,
            "tail_log_segments",
            "Tail-log segments on disk.",
            f.tail_log_segments as i64,
        )?;
        gauge(
            e,
            "memtable_bytes",
            "Bytes in the store's memtables.",
            m.memtable_bytes as i64,
        )?;
        gauge(
            e,
            "stream_cache_budget_bytes",
            "Node cache budget (stream-cache-bytes, 0 near maxmemory).",
            m.stream_cache_budget as i64,
        )?;
        counter(
            e,
            "stream_cache_hits",
            "Node reads served from memory.",
            m.cache_hits,
        )?;
        counter(
            e,
            "stream_cache_misses",
            "Node reads that went to disk.",
            m.cache_misses,
        )?;
        counter(
            e,
            "batches_committed",
            "Store batches committed.",
            f.batches_committed,
        )?;
        counter(
            e,
            "batches_durable",
            "Store batches known durable.",
            f.batches_durable,
        )?;
        counter(e, "fsyncs", "fsyncs done.", f.fsyncs)?;
        gauge(
            e,
            "checkpoint_failed",
            "1 when the last checkpoint failed.",
            i64::from(f.checkpoint_failed),
        )?;
        gauge(
            e,
            "store_failed",
            "1 while the store refuses writes.",
            i64::from(f.store_failed),
        )?;
        gauges(
            e,
            "client_pause_remaining_milliseconds",
            "Milliseconds left of a CLIENT PAUSE, labelled with what it holds back.",
            [([("actions", f.pause.0)], f.pause.1 as i64)],
        )?;
        gauge(
            e,
            "streams_not_reported",
            "Streams past the per-scrape limit, left out of the per-stream figures.",
            f.streams_left_out as i64,
        )?;
        encode_streams(e, &f)
    }
}

/// The per-stream and per-group families.
fn encode_streams(e: &mut DescriptorEncoder, f: &Figures) -> std::fmt::Result {
    let stream_labels =
        |s: &figures::StreamFigures| [("db", s.db.to_string()), ("stream", s.key.clone())];
    gauges(
        e,
        "stream_length",
        "Entries in the stream.",
        f.streams
            .iter()
            .map(|s| (stream_labels(s), s.length as i64)),
    )?;
    gauges(
        e,
        "stream_groups",
        "Consumer groups of the stream.",
        f.streams
            .iter()
            .map(|s| (stream_labels(s), s.groups.len() as i64)),
    )?;
    let groups = || {
        f.streams.iter().flat_map(|s| {
            s.groups.iter().map(move |g| {
                (
                    [
                        ("db", s.db.to_string()),
                        ("stream", s.key.clone()),
                        ("group", g.name.clone()),
                    ],
                    g,
                )
            })
        })
    };
    gauges(
        e,
        "group_lag",
        "Entries not yet delivered to the group (XINFO GROUPS lag; absent when unknown).",
        groups().filter_map(|(l, g)| g.lag.map(|lag| (l, lag))),
    )?;
    gauges(
        e,
        "group_pending",
        "Entries delivered to the group and not acknowledged.",
        groups().map(|(l, g)| (l, g.pending as i64)),
    )?;
    gauges(
        e,
        "group_consumers",
        "Consumers of the group.",
        groups().map(|(l, g)| (l, g.consumers as i64)),
    )?;
    gauges(
        e,
        "group_oldest_pending_idle_seconds",
        "Seconds since the pending entry with the lowest ID was delivered (0 with none).",
        groups().map(|(l, g)| (l, g.oldest_pending_idle_seconds)),
    )?;
    counters(
        e,
        "group_entries_delivered",
        "Entries delivered to the group's consumers.",
        groups().map(|(l, g)| (l, g.delivered)),
    )?;
    counters(
        e,
        "group_entries_acked",
        "Entries the group acknowledged.",
        groups().map(|(l, g)| (l, g.acked)),
    )?;
    counters(
        e,
        "group_entries_nacked",
        "Entries released by XNACK.",
        groups().map(|(l, g)| (l, g.nacked)),
    )?;
    counters(
        e,
        "group_entries_dead_lettered",
        "Entries moved to the group's dead-letter stream.",
        groups().map(|(l, g)| (l, g.dead_lettered)),
    )
}

/// The registry a scrape encodes: Brooklet's collector, every name prefixed `brooklet_`.
pub fn registry(shared: Arc<Shared>) -> Registry {
    let mut registry = Registry::with_prefix("brooklet");
    registry.register_collector(Box::new(ServerCollector {
        shared,
        last: Mutex::new(None),
    }));
    registry
}

/// The scrape's text, in Prometheus's text format (version 0.0.4).
pub fn scrape(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; a collector's error would leave a partial text.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}
