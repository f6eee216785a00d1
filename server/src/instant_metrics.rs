//! INFO's instantaneous figures (`instantaneous_ops_per_sec`, `instantaneous_input_kbps`,
//! ...), sampled as Redis samples them: every 100 ms (`stats_task.rs`) the rate since the
//! previous sample goes into a ring of 16, and INFO shows the ring's average (the last
//! 1.6 s); and `used_memory_peak`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::keyspace::lock;

/// Samples averaged.
const SAMPLES: usize = 16;

/// What is sampled, in INFO's order.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    /// Commands processed.
    Commands = 0,
    /// Bytes read from clients.
    NetInput = 1,
    /// Bytes written to clients.
    NetOutput = 2,
}

const METRICS: usize = 3;

#[derive(Debug, Default, Clone, Copy)]
struct Ring {
    last_at: Option<Instant>,
    last_value: u64,
    samples: [f64; SAMPLES],
    next: usize,
}

impl Ring {
    fn sample(&mut self, now: Instant, value: u64) {
        if let Some(at) = self.last_at {
            let secs = now.duration_since(at).as_secs_f64();
            let delta = value.saturating_sub(self.last_value) as f64;
            self.samples[self.next] = if secs > 0.0 { delta / secs } else { 0.0 };
            self.next = (self.next + 1) % SAMPLES;
        }
        self.last_at = Some(now);
        self.last_value = value;
    }

    fn average(&self) -> f64 {
        self.samples.iter().sum::<f64>() / SAMPLES as f64
    }
}

/// The rings, and the peak of `used_memory`.
#[derive(Debug, Default)]
pub struct InstantMetrics {
    rings: Mutex<[Ring; METRICS]>,
    /// The highest `used_memory` seen.
    pub peak_memory: AtomicU64,
    /// Unix ms when the peak was seen.
    pub peak_time_ms: AtomicU64,
}

impl InstantMetrics {
    /// Takes one sample of each metric.
    pub fn sample(&self, now: Instant, values: [u64; METRICS]) {
        let mut rings = lock(&self.rings);
        for (ring, v) in rings.iter_mut().zip(values) {
            ring.sample(now, v);
        }
    }

    /// The metric's rate per second, averaged over the ring.
    pub fn per_sec(&self, m: Metric) -> f64 {
        lock(&self.rings)[m as usize].average()
    }

    /// Raises the peak to `used` if it is higher.
    pub fn note_memory(&self, used: u64) {
        if self.peak_memory.fetch_max(used, Ordering::Relaxed) < used {
            self.peak_time_ms
                .store(crate::client::now_ms(), Ordering::Relaxed);
        }
    }

    /// CONFIG RESETSTAT: the rings start again.
    pub fn reset(&self) {
        *lock(&self.rings) = Default::default();
        self.peak_memory.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_averaged_over_16_samples() {
        let m = InstantMetrics::default();
        let t0 = Instant::now();
        m.sample(t0, [0, 0, 0]);
        // 100 commands and 1024 bytes in 100 ms: 1000/s and 10240 B/s, in one sample of 16.
        m.sample(t0 + std::time::Duration::from_millis(100), [100, 1024, 0]);
        assert!((m.per_sec(Metric::Commands) - 1000.0 / 16.0).abs() < 1e-6);
        assert!((m.per_sec(Metric::NetInput) - 10240.0 / 16.0).abs() < 1e-6);
        assert_eq!(m.per_sec(Metric::NetOutput), 0.0);
        m.reset();
        assert_eq!(m.per_sec(Metric::Commands), 0.0);
    }

    #[test]
    fn peak_only_rises() {
        let m = InstantMetrics::default();
        m.note_memory(10);
        m.note_memory(5);
        assert_eq!(m.peak_memory.load(Ordering::Relaxed), 10);
    }
}
