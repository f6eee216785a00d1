//! Counters behind INFO stats, commandstats and errorstats.

use hashbrown::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::keyspace::lock;

/// Per-command counters (INFO commandstats).
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

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Commands executed.
    pub commands_processed: AtomicU64,
    /// Connections refused at `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Clients closed for exceeding an output buffer limit.
    pub client_output_limit_disconnections: AtomicU64,
    /// Clients closed for exceeding the query buffer limit.
    pub client_query_buffer_limit_disconnections: AtomicU64,
    /// Keys removed because their deadline passed (INFO `expired_keys`).
    pub expired_keys: AtomicU64,
    /// Error replies, counted as Redis counts `total_error_replies`.
    pub total_error_replies: AtomicU64,
    /// Lookups by read commands that found their key (INFO `keyspace_hits`).
    pub keyspace_hits: AtomicU64,
    /// Lookups by read commands that found no key (INFO `keyspace_misses`).
    pub keyspace_misses: AtomicU64,
    /// Reads from client sockets (INFO `total_reads_processed`).
    pub reads_processed: AtomicU64,
    /// Writes to client sockets (INFO `total_writes_processed`).
    pub writes_processed: AtomicU64,
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
            &self.commands_processed,
            &self.rejected_connections,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.client_output_limit_disconnections,
            &self.client_query_buffer_limit_disconnections,
            &self.total_error_replies,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.reads_processed,
            &self.writes_processed,
            &self.saves,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        lock(&self.errors).clear();
    }
}
