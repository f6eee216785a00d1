//! Counters behind INFO stats, commandstats and errorstats.

use hashbrown::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::keyspace::lock;
use crate::per_thread::{Counter, PerThread};

/// One command's counters in one thread slot (INFO commandstats).
#[derive(Debug, Default)]
pub struct CommandStats {
    /// Successful or failed executions.
    pub calls: AtomicU64,
    /// Microseconds spent executing.
    pub usec: AtomicU64,
    /// Refused before execution (arity, auth, subscribed mode...).
    pub rejected: AtomicU64,
    /// Executed and answered with an error.
    pub failed: AtomicU64,
}

/// One command's counters summed over the thread slots.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommandTotals {
    /// Successful or failed executions.
    pub calls: u64,
    /// Microseconds spent executing.
    pub usec: u64,
    /// Refused before execution.
    pub rejected: u64,
    /// Executed and answered with an error.
    pub failed: u64,
}

/// Every command's counters, indexed like the command table, per thread slot: commands
/// count on their thread's table, and INFO sums them less what they were at the last reset.
#[derive(Debug)]
pub struct CommandCounters {
    slots: PerThread<Box<[CommandStats]>>,
    base: Box<[CommandStats]>,
}

impl CommandCounters {
    /// Zeroed counters for `commands` table entries.
    pub fn new(commands: usize) -> Self {
        let table = || (0..commands).map(|_| CommandStats::default()).collect();
        CommandCounters {
            slots: PerThread::new(table),
            base: table(),
        }
    }

    /// This thread's counters of command `idx`, if the table has it.
    pub fn get(&self, idx: usize) -> Option<&CommandStats> {
        self.slots.mine().get(idx)
    }

    /// Command `idx`'s counters over every thread, since the last reset.
    pub fn totals(&self, idx: usize) -> CommandTotals {
        let Some(base) = self.base.get(idx) else {
            return CommandTotals::default();
        };
        let sum = self.sum(idx);
        let since = |now: u64, at: &AtomicU64| now.saturating_sub(at.load(Ordering::Acquire));
        CommandTotals {
            calls: since(sum.calls, &base.calls),
            usec: since(sum.usec, &base.usec),
            rejected: since(sum.rejected, &base.rejected),
            failed: since(sum.failed, &base.failed),
        }
    }

    fn sum(&self, idx: usize) -> CommandTotals {
        let mut t = CommandTotals::default();
        for s in self.slots.all().filter_map(|table| table.get(idx)) {
            t.calls += s.calls.load(Ordering::Relaxed);
            t.usec += s.usec.load(Ordering::Relaxed);
            t.rejected += s.rejected.load(Ordering::Relaxed);
            t.failed += s.failed.load(Ordering::Relaxed);
        }
        t
    }

    /// Commands executed, all together (INFO `total_commands_processed`).
    pub fn processed(&self) -> u64 {
        let calls =
            |table: &[CommandStats], order| table.iter().map(|s| s.calls.load(order)).sum::<u64>();
        let base = calls(&self.base, Ordering::Acquire);
        let now: u64 = self.slots.all().map(|t| calls(t, Ordering::Relaxed)).sum();
        now.saturating_sub(base)
    }

    /// CONFIG RESETSTAT: counters are kept by their threads without locked instructions
    /// (`per_thread::add`), so the reset records where they stand rather than zeroing them.
    pub fn reset(&self) {
        for (idx, base) in self.base.iter().enumerate() {
            let sum = self.sum(idx);
            base.calls.store(sum.calls, Ordering::Release);
            base.usec.store(sum.usec, Ordering::Release);
            base.rejected.store(sum.rejected, Ordering::Release);
            base.failed.store(sum.failed, Ordering::Release);
        }
    }
}

impl std::ops::Index<usize> for CommandCounters {
    type Output = CommandStats;

    fn index(&self, idx: usize) -> &CommandStats {
        &self.slots.mine()[idx]
    }
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: Counter,
    /// Bytes written to clients.
    pub net_output_bytes: Counter,
    /// Clients closed for exceeding an output buffer limit.
    pub client_output_limit_disconnections: AtomicU64,
    /// Clients closed for exceeding the query buffer limit.
    pub client_query_buffer_limit_disconnections: AtomicU64,
    /// Keys removed because their deadline passed (INFO `expired_keys`).
    pub expired_keys: AtomicU64,
    /// Error replies, counted as Redis counts `total_error_replies`.
    pub total_error_replies: AtomicU64,
    /// Lookups by read commands that found their key (INFO `keyspace_hits`).
    pub keyspace_hits: Counter,
    /// Lookups by read commands that found no key (INFO `keyspace_misses`).
    pub keyspace_misses: Counter,
    /// Reads from client sockets (INFO `total_reads_processed`).
    pub reads_processed: Counter,
    /// Writes to client sockets (INFO `total_writes_processed`).
    pub writes_processed: Counter,
    /// SAVE and BGSAVE runs (INFO `rdb_saves`).
    pub saves: AtomicU64,
    /// Error replies by their code (the first word), for INFO errorstats.
    errors: Mutex<HashMap<String, u64>>,
}

impl Stats {
    /// Counts an error reply under its code (`ERR`, `NOGROUP`, `WRONGTYPE` ...).
    pub fn count_error(&self, text: &[u8]) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let code = text.split(|&b| b == b' ').next().unwrap_or_default();
        let code = String::from_utf8_lossy(code).into_owned();
        *lock(&self.errors).entry(code).or_default() += 1;
    }

    /// Errors by code, sorted by code.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = lock(&self.errors)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.client_output_limit_disconnections,
            &self.client_query_buffer_limit_disconnections,
            &self.total_error_replies,
            &self.expired_keys,
            &self.saves,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        for c in [
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.reads_processed,
            &self.writes_processed,
        ] {
            c.reset();
        }
        lock(&self.errors).clear();
    }
}
