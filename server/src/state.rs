//! The state every connection shares.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use crate::blocking::Blocking;
use crate::client::ClientRegistry;
use crate::config::Config;
use crate::keyspace::Keyspace;
use crate::per_thread::{ReadMostly, WriteGuard};
use crate::stats::Stats;
use crate::watch::Watches;

/// Everything the server's tasks share.
pub struct Shared {
    /// Live configuration (CONFIG SET changes it), read by most commands.
    config: ReadMostly<Config>,
    /// All databases.
    pub keyspace: Keyspace,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// Counters.
    pub stats: Stats,
    /// Per-command counters, indexed like the command table.
    pub command_stats: crate::stats::CommandCounters,
    /// WATCHed keys.
    pub watches: Watches,
    /// Clients blocked on keys.
    pub blocking: Blocking,
    /// Channel, pattern and shard-channel subscriptions.
    pub pubsub: std::sync::Mutex<brooklet_pubsub::Registry<crate::subscriber::ClientSubscriber>>,
    /// The live `client-output-buffer-limit pubsub` every subscriber is held to.
    pub pubsub_limits: Arc<crate::subscriber::OutputLimits>,
    /// Commands that touch keys hold it shared; EXEC holds it exclusively so that a
    /// transaction runs without any other command in between.
    exec_gate: RwLock<()>,
    /// Set once shutdown has begun.
    pub shutting_down: AtomicBool,
    /// Turns true when shutdown begins; the accept loop and TLS handshakes in progress watch it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// When the server started.
    pub started: Instant,
    /// A random 40-hex-digit id for INFO `run_id`.
    pub run_id: String,
    /// The address the plain listener is bound to; None when serving TLS only.
    pub plain_addr: Option<std::net::SocketAddr>,
    /// The address the TLS listener is bound to; None without `tls-port`.
    pub tls_addr: Option<std::net::SocketAddr>,
    /// The fjall store every write goes to.
    pub store: brooklet_persistence::Store,
    /// The highest store sequence known to be on disk (group-commit waiters watch it).
    pub durable: tokio::sync::watch::Sender<u64>,
    /// Unix seconds of the last SAVE (or of start-up).
    pub last_save: std::sync::atomic::AtomicU64,
    /// What recovery found at start-up.
    pub recovery: brooklet_persistence::RecoveryReport,
    /// `maxmemory`: the limit and whether commands that add data are refused.
    pub memory: crate::memory_guard::MemoryGuard,
    /// The streams with a MAXAGE, which the retention task visits.
    pub retention: crate::retention_set::RetentionSet,
    /// CLIENT PAUSE.
    pub pause: crate::pause::Pause,
    /// Users, their permissions and the denial log.
    pub acl: crate::acl::Acl,
    /// Clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
    /// The live `client-output-buffer-limit normal`, which monitors are held to as their
    /// lines are queued.
    pub normal_limits: Arc<crate::subscriber::OutputLimits>,
    /// SLOWLOG.
    pub slowlog: crate::slowlog::SlowLog,
    /// LATENCY's events and the per-command histograms of INFO latencystats.
    pub latency: Arc<crate::latency_monitor::LatencyMonitor>,
    /// INFO's instantaneous rates and the memory peak.
    pub instant: crate::instant_metrics::InstantMetrics,
    /// Memory in use once the store was open and loaded (INFO `used_memory_startup`).
    pub used_memory_startup: std::sync::atomic::AtomicU64,
    /// Replication: role, IDs, backlog, the replicas fed or the link to the primary.
    pub repl: crate::replication::Replication,
}

impl Shared {
    /// Whether keys and entries past their deadline stay where they are for now: a replica's
    /// go when its primary says so, and during CLIENT PAUSE (or a FAILOVER's pause) nothing
    /// expires, as in Redis 7, so the data and the replication offset stand still. Commands
    /// read such keys as gone meanwhile ([`crate::keyspace::hiding_expired`]).
    pub fn removals_held(&self) -> bool {
        self.repl.is_replica() || self.pause.in_force()
    }

    /// Shared state for a server listening on `plain_addr` and `tls_addr`, counting calls of
    /// `commands` commands (the size of the command table).
    pub fn new(
        config: Config,
        commands: usize,
        plain_addr: Option<std::net::SocketAddr>,
        tls_addr: Option<std::net::SocketAddr>,
        store: brooklet_persistence::Store,
        recovery: brooklet_persistence::RecoveryReport,
        acl: crate::acl::Acl,
    ) -> Arc<Self> {
        let (durable, _) = tokio::sync::watch::channel(store.durable_seq());
        let notify = durable.clone();
        store.on_durable(Box::new(move |seq| {
            notify.send_replace(seq);
        }));
        let keyspace = Keyspace::new(config.databases);
        let repl = crate::replication::Replication::new(config.repl.backlog_size);
        let memory = crate::memory_guard::MemoryGuard::new(config.maxmemory);
        let pubsub_limits = Arc::new(crate::subscriber::OutputLimits::new(
            &config.output_limit_pubsub,
        ));
        let normal_limits = Arc::new(crate::subscriber::OutputLimits::new(
            &config.output_limit_normal,
        ));
        let slowlog = crate::slowlog::SlowLog::new(
            config.slowlog_log_slower_than,
            config.slowlog_max_len as usize,
        );
        let latency = Arc::new(crate::latency_monitor::LatencyMonitor::new(
            commands,
            config.latency_monitor_threshold,
            config.latency_tracking,
        ));
        let watcher = latency.clone();
        store.on_latency(Box::new(move |event, took| watcher.event(event, took)));
        store.watch_latency(config.latency_monitor_threshold > 0);
        Arc::new(Shared {
            config: ReadMostly::new(config),
            keyspace,
            clients: ClientRegistry::default(),
            stats: Stats::default(),
            command_stats: crate::stats::CommandCounters::new(commands),
            watches: Watches::default(),
            blocking: Blocking::default(),
            pubsub: Default::default(),
            pubsub_limits,
            exec_gate: RwLock::new(()),
            shutting_down: AtomicBool::new(false),
            shutdown: tokio::sync::watch::channel(false).0,
            started: Instant::now(),
            run_id: crate::replication::new_replid(),
            plain_addr,
            tls_addr,
            store,
            durable,
            last_save: std::sync::atomic::AtomicU64::new(crate::client::now_ms() / 1000),
            recovery,
            memory,
            retention: Default::default(),
            pause: Default::default(),
            acl,
            monitors: Default::default(),
            normal_limits,
            slowlog,
            latency,
            instant: Default::default(),
            used_memory_startup: Default::default(),
            repl,
        })
    }

    /// Reads the live configuration.
    pub fn config(&self) -> Rc<Config> {
        self.config.read()
    }

    /// Resolves once shutdown has begun (at once if it already has).
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            // An error means the sender is gone, which only happens as the server is dropped.
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// Changes the live configuration.
    pub fn config_mut(&self) -> WriteGuard<'_, Config> {
        self.config.write()
    }

    /// Held by every keyed command outside EXEC.
    pub fn gate_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.exec_gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held by EXEC for its whole queue.
    pub fn gate_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.exec_gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Begins shutdown: the listener stops and every connection is asked to close.
    pub fn begin_shutdown(&self) {
        if !self.shutting_down.swap(true, Ordering::SeqCst) {
            self.shutdown.send_replace(true);
            for c in self.clients.all() {
                c.kill();
            }
        }
    }
}

/// The store's fsync policy for a configured `appendfsync`.
pub fn fsync_policy(f: crate::config::Fsync) -> brooklet_persistence::FsyncPolicy {
    use brooklet_persistence::FsyncPolicy;
    match f {
        crate::config::Fsync::Always => FsyncPolicy::Always,
        crate::config::Fsync::Everysec => FsyncPolicy::Everysec,
        crate::config::Fsync::No => FsyncPolicy::No,
    }
}
