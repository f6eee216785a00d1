//! LATENCY's event history and INFO latencystats' per-command histograms.
//!
//! Events (`command`, `fast-command`, and the store's fsyncs, checkpoints, purges...) are
//! kept as Redis keeps them: per event the all-time maximum and a ring of 160 samples, one
//! per second at most (the worst of that second), recorded only when at least
//! `latency-monitor-threshold` milliseconds.
//!
//! Per-command latencies go into HDR histograms (the `hdrhistogram` crate: the structure
//! Redis itself uses for latencystats, with its bounds, 1 ns to 1 s at two significant
//! digits, so percentiles match what Redis would report). They are kept in a few shards,
//! each a lock around one histogram per command; a thread always records into the same
//! shard, so the lock a command takes is, in practice, its own thread's and uncontended.
//! INFO and LATENCY HISTOGRAM merge the shards.

use hdrhistogram::Histogram;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::keyspace::lock;

/// Samples kept per event.
pub const HISTORY_LEN: usize = 160;
/// Shards of the command histograms (a power of two).
const SHARDS: usize = 8;
/// Smallest and largest recorded latency, nanoseconds (Redis's bounds).
const HIST_MIN_NS: u64 = 1;
const HIST_MAX_NS: u64 = 1_000_000_000;

/// One sample: unix seconds and milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds (0: an empty slot).
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

/// One event's history.
#[derive(Debug, Clone)]
pub struct EventHistory {
    samples: [Sample; HISTORY_LEN],
    /// The slot the next sample goes to.
    next: usize,
    /// The worst latency ever recorded.
    pub max: u64,
}

impl Default for EventHistory {
    fn default() -> Self {
        EventHistory {
            samples: [Sample::default(); HISTORY_LEN],
            next: 0,
            max: 0,
        }
    }
}

impl EventHistory {
    /// Records `latency` ms at unix second `now`: a second sample in the same second only
    /// raises that second's.
    fn add(&mut self, now: u64, latency: u64) {
        self.max = self.max.max(latency);
        let prev = (self.next + HISTORY_LEN - 1) % HISTORY_LEN;
        if self.samples[prev].time == now {
            self.samples[prev].latency = self.samples[prev].latency.max(latency);
            return;
        }
        self.samples[self.next] = Sample { time: now, latency };
        self.next = (self.next + 1) % HISTORY_LEN;
    }

    /// The newest sample.
    pub fn latest(&self) -> Sample {
        self.samples[(self.next + HISTORY_LEN - 1) % HISTORY_LEN]
    }

    /// The samples held, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        (0..HISTORY_LEN)
            .map(|i| self.samples[(self.next + i) % HISTORY_LEN])
            .filter(|s| s.time != 0)
            .collect()
    }
}

thread_local! {
    /// This thread's shard of the command histograms, assigned on first use.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Hands threads their shards in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn my_shard() -> usize {
    SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        s.get()
    })
}

/// One shard's histograms, by command index; None until the command is first recorded.
type CommandHistograms = Vec<Option<Box<Histogram<u64>>>>;

/// The latency monitor and the command histograms of one server.
pub struct LatencyMonitor {
    /// `latency-monitor-threshold`, milliseconds; 0 is off.
    threshold_ms: AtomicU64,
    /// `latency-tracking`.
    tracking: AtomicBool,
    events: Mutex<BTreeMap<&'static str, EventHistory>>,
    /// Per shard, per command index, the histogram (allocated on a command's first call).
    shards: Vec<Mutex<CommandHistograms>>,
}

impl std::fmt::Debug for LatencyMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyMonitor")
            .field("threshold_ms", &self.threshold_ms)
            .finish()
    }
}

impl LatencyMonitor {
    /// A monitor for a table of `commands` commands.
    pub fn new(commands: usize, threshold_ms: u64, tracking: bool) -> Self {
        LatencyMonitor {
            threshold_ms: AtomicU64::new(threshold_ms),
            tracking: AtomicBool::new(tracking),
            events: Mutex::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new((0..commands).map(|_| None).collect()))
                .collect(),
        }
    }

    /// Applies CONFIG SET.
    pub fn configure(&self, threshold_ms: u64, tracking: bool) {
        self.threshold_ms.store(threshold_ms, Ordering::Relaxed);
        self.tracking.store(tracking, Ordering::Relaxed);
    }

    /// `latency-monitor-threshold` in force (0: off).
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// Records an event that took `took`, if the monitor is on and it reached the threshold.
    #[inline]
    pub fn event(&self, name: &'static str, took: Duration) {
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        if threshold == 0 {
            return;
        }
        let ms = took.as_millis() as u64;
        if ms >= threshold {
            self.add_sample(name, unix_secs(), ms);
        }
    }

    /// Records a sample of `ms` at unix second `now` whatever the threshold (tests).
    #[cfg(test)]
    pub fn record_sample_at(&self, name: &'static str, now: u64, ms: u64) {
        self.add_sample(name, now, ms);
    }

    fn add_sample(&self, name: &'static str, now: u64, ms: u64) {
        lock(&self.events).entry(name).or_default().add(now, ms);
    }

    /// Every event's history, by name.
    pub fn events(&self) -> BTreeMap<&'static str, EventHistory> {
        lock(&self.events).clone()
    }

    /// One event's history.
    pub fn event_history(&self, name: &[u8]) -> Option<EventHistory> {
        lock(&self.events)
            .iter()
            .find(|(k, _)| k.as_bytes() == name)
            .map(|(_, v)| v.clone())
    }

    /// Forgets the named events (all with None); how many were forgotten.
    pub fn reset_events(&self, names: Option<&[bytes::Bytes]>) -> usize {
        let mut events = lock(&self.events);
        match names {
            None => {
                let n = events.len();
                events.clear();
                n
            }
            Some(names) => {
                let before = events.len();
                events.retain(|k, _| !names.iter().any(|n| n.as_ref() == k.as_bytes()));
                before - events.len()
            }
        }
    }

    /// Records calls as (command index, nanoseconds), under one lock of this thread's shard.
    /// Allocates only on a command's first call on that shard.
    fn record_commands(&self, samples: &[(u32, u32)]) {
        let mut shard = lock(&self.shards[my_shard()]);
        for &(idx, ns) in samples {
            let Some(slot) = shard.get_mut(idx as usize) else {
                continue;
            };
            let hist = slot.get_or_insert_with(|| Box::new(new_histogram()));
            hist.saturating_record(u64::from(ns));
        }
    }

    /// Command `idx`'s histogram, the shards merged; None if it was never recorded.
    pub fn command_histogram(&self, idx: usize) -> Option<Histogram<u64>> {
        let mut merged: Option<Histogram<u64>> = None;
        for shard in &self.shards {
            let shard = lock(shard);
            if let Some(Some(h)) = shard.get(idx) {
                match merged.as_mut() {
                    Some(m) => {
                        let _ = m.add(&**h);
                    }
                    None => merged = Some((**h).clone()),
                }
            }
        }
        merged.filter(|h| !h.is_empty())
    }

    /// Forgets every command's histogram (CONFIG RESETSTAT).
    pub fn reset_commands(&self) {
        for shard in &self.shards {
            for slot in lock(shard).iter_mut() {
                *slot = None;
            }
        }
    }
}

/// Seconds since the Unix epoch, a sample's time.
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A latency in nanoseconds within the histograms' bounds.
fn clamp_ns(took: Duration) -> u32 {
    (took.as_nanos() as u64).clamp(HIST_MIN_NS, HIST_MAX_NS) as u32
}

/// Calls a connection has answered but not yet put in the histograms.
const BATCH: usize = 32;

/// One connection's command latencies on their way to the histograms: put there a batch at
/// a time (when the connection's batch of requests ends, when full, or when dropped), so a
/// pipelined command takes no lock of its own.
#[derive(Default)]
pub struct LatencyBatch {
    /// The monitor the samples belong to, once one was taken.
    monitor: Option<Arc<LatencyMonitor>>,
    len: usize,
    samples: [(u32, u32); BATCH],
}

impl std::fmt::Debug for LatencyBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyBatch")
            .field("len", &self.len)
            .finish()
    }
}

impl LatencyBatch {
    /// Takes one call of command `idx` (when `latency-tracking` is on).
    #[inline]
    pub fn record(&mut self, monitor: &Arc<LatencyMonitor>, idx: usize, took: Duration) {
        if !monitor.tracking.load(Ordering::Relaxed) {
            return;
        }
        if !self
            .monitor
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, monitor))
        {
            self.flush();
            self.monitor = Some(monitor.clone());
        }
        self.samples[self.len] = (idx as u32, clamp_ns(took));
        self.len += 1;
        if self.len == BATCH {
            self.flush();
        }
    }

    /// Puts the samples taken in the histograms.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Some(m) = &self.monitor {
            m.record_commands(&self.samples[..self.len]);
        }
        self.len = 0;
    }
}

impl Drop for LatencyBatch {
    fn drop(&mut self) {
        self.flush();
    }
}

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; the fallback is never taken.
    Histogram::new_with_bounds(HIST_MIN_NS, HIST_MAX_NS, 2)
        .unwrap_or_else(|_| Histogram::new(2).unwrap_or_else(|_| unreachable!()))
}

/// The percentiles line of INFO latencystats for one histogram: `p50=1.003,p99=...`, values
/// in microseconds with three decimals.
pub fn percentiles_line(hist: &Histogram<u64>, percentiles: &[f64]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (i, p) in percentiles.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = hist.value_at_percentile(*p) as f64 / 1000.0;
        let _ = write!(out, "p{}={v:.3}", trim_percentile(*p));
    }
    out
}

/// A percentile as Redis prints it: `%f` with trailing zeros (and a bare point) dropped.
fn trim_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

/// LATENCY HISTOGRAM's buckets for one histogram: (microseconds, cumulative count), on
/// power-of-two steps from 1024 ns, only where the count grew.
pub fn cumulative_buckets(hist: &Histogram<u64>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cumulative = 0;
    let mut previous = 0;
    for v in hist.iter_log(1024, 2.0) {
        cumulative += v.count_since_last_iteration();
        if cumulative > previous {
            out.push((
                hist.highest_equivalent(v.value_iterated_to() + 1) / 1000,
                cumulative,
            ));
        }
        previous = cumulative;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn samples_in_one_second_keep_the_worst() {
        let m = LatencyMonitor::new(1, 10, true);
        m.add_sample("command", 100, 20);
        m.add_sample("command", 100, 15);
        m.add_sample("command", 100, 30);
        m.add_sample("command", 101, 12);
        let e = m.event_history(b"command").unwrap();
        assert_eq!(
            e.samples(),
            [
                Sample {
                    time: 100,
                    latency: 30
                },
                Sample {
                    time: 101,
                    latency: 12
                }
            ]
        );
        assert_eq!(e.max, 30);
        assert_eq!(e.latest().latency, 12);
    }

    #[test]
    fn the_ring_keeps_160_samples() {
        let m = LatencyMonitor::new(1, 10, true);
        for t in 1..=200 {
            m.add_sample("x", t, t);
        }
        let s = m.event_history(b"x").unwrap().samples();
        assert_eq!(s.len(), HISTORY_LEN);
        assert_eq!(s[0].time, 41);
        assert_eq!(s[159].time, 200);
    }

    #[test]
    fn threshold_gates_events_and_reset_counts() {
        let m = LatencyMonitor::new(1, 0, true);
        m.event("command", Duration::from_secs(1));
        assert!(m.events().is_empty());
        m.configure(5, true);
        m.event("command", Duration::from_millis(4));
        assert!(m.events().is_empty());
        m.event("command", Duration::from_millis(5));
        m.event("fast-command", Duration::from_millis(9));
        assert_eq!(m.events().len(), 2);
        assert_eq!(m.reset_events(Some(&[bytes::Bytes::from("command")])), 1);
        assert_eq!(m.reset_events(None), 1);
    }

    #[test]
    fn command_histograms_and_percentiles() {
        let m = Arc::new(LatencyMonitor::new(3, 0, true));
        assert!(m.command_histogram(1).is_none());
        let mut batch = LatencyBatch::default();
        for us in 1..=100 {
            batch.record(&m, 1, Duration::from_micros(us));
        }
        batch.flush();
        let h = m.command_histogram(1).unwrap();
        assert_eq!(h.len(), 100);
        let line = percentiles_line(&h, &[50.0, 99.0, 99.9]);
        assert!(line.starts_with("p50=50."), "{line}");
        assert!(line.contains(",p99=99."), "{line}");
        assert!(line.contains(",p99.9=100."), "{line}");
        let buckets = cumulative_buckets(&h);
        assert_eq!(buckets.last().unwrap().1, 100);
        m.configure(0, false);
        batch.record(&m, 2, Duration::from_micros(1));
        batch.flush();
        assert!(m.command_histogram(2).is_none());
        m.reset_commands();
        assert!(m.command_histogram(1).is_none());
    }

    /// A connection's samples reach the histograms when its batch is flushed, when 32 are
    /// waiting, when it is dropped, and (to the monitor they belong to) when it moves to
    /// another server's monitor.
    #[test]
    fn batched_samples_reach_the_histograms() {
        let count = |m: &LatencyMonitor, idx| m.command_histogram(idx).map_or(0, |h| h.len());
        let m = Arc::new(LatencyMonitor::new(3, 0, true));
        let mut batch = LatencyBatch::default();
        batch.record(&m, 0, Duration::from_micros(5));
        assert_eq!(count(&m, 0), 0);
        batch.flush();
        assert_eq!(count(&m, 0), 1);
        for _ in 0..BATCH {
            batch.record(&m, 1, Duration::from_micros(5));
        }
        assert_eq!(count(&m, 1), BATCH as u64);
        let other = Arc::new(LatencyMonitor::new(3, 0, true));
        batch.record(&m, 2, Duration::from_micros(5));
        batch.record(&other, 2, Duration::from_micros(5));
        assert_eq!((count(&m, 2), count(&other, 2)), (1, 0));
        drop(batch);
        assert_eq!((count(&m, 2), count(&other, 2)), (1, 1));
    }

    #[test]
    fn percentile_labels() {
        assert_eq!(trim_percentile(50.0), "50");
        assert_eq!(trim_percentile(99.9), "99.9");
        assert_eq!(trim_percentile(99.99), "99.99");
    }
}
