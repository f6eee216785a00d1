//! The Brooklet server: a Redis-protocol streams and pub/sub server.
//!
//! This crate owns the process side: configuration, the listener, one task per connection,
//! the command table and dispatch, authentication, blocking readers, INFO/CLIENT/CONFIG and
//! shutdown. Stream semantics live in `brooklet-streams`, the wire format in `brooklet-resp`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mut config = brooklet_server::Config::default();
//! config.port = 0;
//! let server = brooklet_server::start(config).await?;
//! println!("listening on {:?}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;

mod access;
mod acl;
mod blocking;
mod checkpoint;
mod client;
mod cmd;
mod connection;
mod deadlines;
pub mod embedded;
mod error;
mod expire_task;
mod expiry;
pub mod import;
pub mod info;
mod info_ops;
mod instant_metrics;
mod keyspace;
mod latency_graph;
mod latency_monitor;
mod mem_report;
mod memory;
mod memory_guard;
mod metrics;
mod monitor;
pub(crate) mod notify;
mod pause;
mod per_thread;
mod publish;
mod random;
mod rdb;
mod replication;
mod retention_set;
mod retention_task;
mod slowlog;
mod small_bytes;
mod state;
mod stats;
mod stats_task;
mod subscriber;
mod tls;
mod watch;

pub use config::{Config, Fsync, TlsAuthClients};
pub use tls::TlsConfigError;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use state::Shared;

/// How long shutdown waits for connections to finish their replies.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long shutdown waits for fjall to write its memtables out.
const MEMTABLE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address of the plain listener (with the real port when 0 was asked); None when
    /// serving TLS only.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.plain_addr
    }

    /// The address of the TLS listener; None without `tls-port`.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.shared.tls_addr
    }

    /// Stops accepting, closes every client after its replies in flight, and waits.
    pub async fn shutdown(self) {
        self.shared.begin_shutdown();
        let _ = self.task.await;
    }

    /// Waits until the server stops (SHUTDOWN, or a signal handled by the caller).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A handle on the shutdown trigger, for signal handlers.
    pub fn trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger(self.shared.clone())
    }
}

/// Starts shutdown from elsewhere (a signal handler).
#[derive(Clone)]
pub struct ShutdownTrigger(Arc<Shared>);

impl ShutdownTrigger {
    /// Begins a graceful shutdown.
    pub fn shutdown(&self) {
        self.0.begin_shutdown();
    }
}

/// Sockets bound by the caller, served by [`start_on`] instead of `port` and `tls-port`.
///
/// For embedding and tests: a caller that binds port 0 itself knows every port before the
/// server starts, and can have a plain and a TLS listener both on free ports.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The plain RESP listener.
    pub plain: Option<std::net::TcpListener>,
    /// The TLS listener, configured by the `tls-*` directives.
    pub tls: Option<std::net::TcpListener>,
}

/// Binds the listeners the configuration asks for and starts serving in the background.
///
/// `port` and `tls-port` are served side by side. As in Redis, `port 0` beside a `tls-port`
/// means TLS only; `port 0` alone picks a free port.
///
/// # Errors
/// When an address cannot be bound, the TLS files are unset or unusable (the message names the
/// directive and the file), or the data directory cannot be created or opened.
pub async fn start(config: Config) -> std::io::Result<ServerHandle> {
    // Checked before anything is bound or opened: a bad certificate path is a configuration
    // error, reported as such.
    let acceptor = tls_acceptor(&config, config.tls_port != 0)?;
    let host = config
        .bind
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let plain = if config.port != 0 || config.tls_port == 0 {
        Some(TcpListener::bind((host.as_str(), config.port)).await?)
    } else {
        None
    };
    let tls = match acceptor {
        Some(acceptor) => Some((
            TcpListener::bind((host.as_str(), config.tls_port)).await?,
            acceptor,
        )),
        None => None,
    };
    launch(config, plain, tls).await
}

/// Starts serving on sockets the caller bound; `port` and `tls-port` are not bound (CONFIG GET
/// still shows them, so callers set them to the ports they bound).
///
/// # Errors
/// As [`start`]; also when neither listener is given or a socket cannot be handed to tokio.
pub async fn start_on(config: Config, listeners: Listeners) -> std::io::Result<ServerHandle> {
    let acceptor = tls_acceptor(&config, listeners.tls.is_some())?;
    let adopt = |l: std::net::TcpListener| {
        l.set_nonblocking(true)?;
        TcpListener::from_std(l)
    };
    let plain = listeners.plain.map(adopt).transpose()?;
    // The acceptor is Some exactly when a TLS listener was given.
    let tls = listeners.tls.map(adopt).transpose()?.zip(acceptor);
    launch(config, plain, tls).await
}

/// The TLS listener's acceptor when `wanted`, with configuration errors as start-up errors.
fn tls_acceptor(
    config: &Config,
    wanted: bool,
) -> std::io::Result<Option<tokio_rustls::TlsAcceptor>> {
    if !wanted {
        return Ok(None);
    }
    tls::acceptor(config)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Opens the store and starts the accept loop on the bound listeners.
async fn launch(
    config: Config,
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
) -> std::io::Result<ServerHandle> {
    if plain.is_none() && tls.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "configured to not listen anywhere",
        ));
    }
    let plain_addr = plain.as_ref().map(TcpListener::local_addr).transpose()?;
    let tls_addr = tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
    std::fs::create_dir_all(&config.dir)?;
    let dir = config.dir.clone();
    let policy = state::fsync_policy(config.appendfsync);
    mem_report::note_startup();
    let opened =
        tokio::task::spawn_blocking(move || brooklet_persistence::Store::open(&dir, policy))
            .await
            .map_err(std::io::Error::other)?;
    let opened = opened.map_err(|e| std::io::Error::other(e.to_string()))?;
    let shared = install_store(config, plain_addr, tls_addr, opened);
    cmd::acl::load_file_at_start(&shared)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    info::set_background_threads(shared.config().jemalloc_bg_thread);
    {
        let config = shared.config();
        let outside = plain_addr
            .iter()
            .chain(tls_addr.iter())
            .any(|a| !a.ip().is_loopback());
        if config.protected_mode && config.requirepass.is_none() && outside {
            tracing::warn!(
                "protected mode is on and no password is set: clients from other hosts will be refused. Set requirepass, or start with --protected-mode no"
            );
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    if let Some(addr) = plain_addr {
        tracing::info!("Brooklet {version} listening on {addr}");
    }
    if let Some(addr) = tls_addr {
        tracing::info!("Brooklet {version} listening for TLS on {addr}");
    }
    let metrics_port = shared.config().metrics_port;
    if metrics_port != 0 {
        // Beside the RESP listener, on its address.
        let ip = plain_addr
            .or(tls_addr)
            .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip());
        let listener = TcpListener::bind((ip, metrics_port)).await?;
        tracing::info!(
            "Prometheus metrics at http://{}/metrics",
            listener.local_addr()?
        );
        tokio::spawn(metrics::serve(shared.clone(), listener));
    }
    tokio::spawn(checkpoint::run(shared.clone()));
    tokio::spawn(memory::run(shared.clone()));
    tokio::spawn(expire_task::run(shared.clone()));
    tokio::spawn(retention_task::run(shared.clone()));
    access::configure(&shared.config());
    tokio::spawn(stats_task::run(shared.clone()));
    tokio::spawn(replication::cron::run(shared.clone()));
    replication::replica::set_executor(cmd::dispatch::execute_replicated);
    replication::replica::start_configured(&shared);
    let task = tokio::spawn(accept_loop(shared.clone(), plain, tls));
    Ok(ServerHandle { shared, task })
}

/// What [`brooklet_persistence::Store::open`] returns.
type OpenedStore = (
    brooklet_persistence::Store,
    Vec<brooklet_persistence::LoadedStream>,
    brooklet_persistence::RecoveryReport,
);

/// The shared state over an opened store, with what the store held loaded into the keyspace;
/// logs what recovery found.
fn install_store(
    config: Config,
    plain_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    opened: OpenedStore,
) -> Arc<Shared> {
    let (store, loaded, report) = opened;
    store.set_stream_cache_bytes(usize::try_from(config.stream_cache_bytes).unwrap_or(usize::MAX));
    store.set_tail_segment_bytes(config.tail_log_segment_bytes);
    store.set_checkpoint_bytes(config.tail_log_checkpoint_bytes);
    if report.torn_journal_bytes > 0 {
        tracing::warn!(
            "the journal ended in a torn or corrupt write: {} bytes dropped, state recovered up to the last complete batch",
            report.torn_journal_bytes
        );
    }
    tracing::info!(
        "store opened in {:.3} seconds ({} journal bytes replayed)",
        report.engine_open.as_secs_f64(),
        report.journal_replayed_bytes
    );
    tracing::info!(
        "DB loaded from disk: {} streams, {} entries in {} nodes (entries stay on disk), {} groups, {} pending entries in {:.3} seconds; tail log: {} appends replayed of {} records ({} bytes)",
        report.streams,
        report.entries,
        report.nodes,
        report.groups,
        report.pending,
        report.elapsed.as_secs_f64(),
        report.tail_applied,
        report.tail_records,
        report.tail_bytes
    );
    if report.tail_torn_bytes > 0 {
        tracing::warn!(
            "the tail log ended in a torn or corrupt write: {} bytes dropped, appends recovered up to the last complete record",
            report.tail_torn_bytes
        );
    }
    let commands = cmd::dispatch::table().entries.len();
    let acl = cmd::dispatch::new_acl(&config);
    let shared = Shared::new(config, commands, plain_addr, tls_addr, store, report, acl);
    cmd::install_loaded(&shared, loaded);
    shared
}

/// Accepts on both listeners in one loop, so shutdown, maxclients and protected mode are one
/// code path for both. TLS handshakes run in the connection's own task: a slow or silent
/// client never holds up the loop.
async fn accept_loop(
    shared: Arc<Shared>,
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let (tls_listener, acceptor) = match tls {
        Some((l, a)) => (Some(l), Some(a)),
        None => (None, None),
    };
    loop {
        let (accepted, is_tls) = tokio::select! {
            a = accept_on(plain.as_ref()) => (a, false),
            a = accept_on(tls_listener.as_ref()) => (a, true),
            () = shared.stopping() => break,
        };
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        let Ok((socket, peer)) = accepted else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let refusal = admission(&shared, peer);
        match (acceptor.as_ref().filter(|_| is_tls), refusal) {
            (None, Some(error)) => {
                tokio::spawn(refuse(socket, error));
            }
            (None, None) => {
                if let Some(info) = connection::SocketInfo::of(&socket) {
                    connections.spawn(connection::serve(shared.clone(), socket, info));
                }
            }
            // The refusal travels inside TLS, as Redis sends it, so the client can read it.
            (Some(acceptor), Some(error)) => {
                if shared.clients.tls_refusing.load(Ordering::Relaxed) >= MAX_TLS_REFUSALS {
                    continue;
                }
                let refusing = InFlight::new(&shared, |c| &c.tls_refusing);
                let acceptor = acceptor.clone();
                let stop = shared.stopping();
                tokio::spawn(async move {
                    if let Some(stream) = tls::handshake(&acceptor, socket, stop).await {
                        refuse(stream, error).await;
                    }
                    drop(refusing);
                });
            }
            (Some(acceptor), None) => {
                let Some(info) = connection::SocketInfo::of(&socket) else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                let pending = InFlight::new(&shared, |c| &c.handshaking);
                connections.spawn(async move {
                    let stop = shared.stopping();
                    let stream = tls::handshake(&acceptor, socket, stop).await;
                    drop(pending);
                    if let Some(stream) = stream {
                        connection::serve(shared, stream, info).await;
                    }
                });
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(plain);
    drop(tls_listener);
    for c in shared.clients.all() {
        c.kill();
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some connections did not close within {DRAIN_TIMEOUT:?}");
    }
    // The background checkpoint leaves up to `tail-log-checkpoint-bytes` of appends in the
    // tail log; written into fjall now, the next start need not replay them (replay costs far
    // more than opening the store: docs/performance.md, Storage).
    let checkpointed = shared
        .store
        .close_tail_segment()
        .and_then(|()| checkpoint::checkpoint(&shared));
    if let Err(e) = checkpointed {
        tracing::warn!("could not checkpoint the tail log: {e}; the next start replays it");
    }
    match shared.store.flush_memtables(MEMTABLE_FLUSH_TIMEOUT) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "memtables not written out within {MEMTABLE_FLUSH_TIMEOUT:?}: the next start replays more of the journal"
        ),
        Err(e) => tracing::warn!("could not write out the memtables: {e}"),
    }
    if let Err(e) = shared.store.sync() {
        tracing::error!("final fsync failed: {e}");
    } else {
        replication::replica::save_state(&shared);
    }
    tracing::info!("Brooklet is now ready to exit, bye bye...");
}

/// The next connection on `listener`; never resolves without one.
async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The error a new connection is refused with (protected mode, maxclients), or None.
fn admission(shared: &Shared, peer: SocketAddr) -> Option<&'static [u8]> {
    let config = shared.config();
    if protected_mode_refuses(&config, shared.acl.default_user().nopass, peer.ip()) {
        tracing::warn!(%peer, "refused a client from outside the loopback interface: protected mode is on and no password is set");
        return Some(PROTECTED_MODE_DENIED);
    }
    let clients = &shared.clients;
    let taken =
        clients.connected.load(Ordering::Relaxed) + clients.handshaking.load(Ordering::Relaxed);
    if taken >= config.maxclients {
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        return Some(b"-ERR max number of clients reached\r\n");
    }
    None
}

/// Refused TLS connections handshaking at once (to read their refusal inside TLS). Past it,
/// further refused TLS connections are closed at once: a flood over `maxclients` must not hold
/// an unbounded number of sockets for the handshake timeout.
const MAX_TLS_REFUSALS: usize = 64;

/// One TLS connection counted in a registry counter (`handshaking`, `tls_refusing`) until
/// dropped, however its task ends.
struct InFlight {
    shared: Arc<Shared>,
    counter: fn(&client::ClientRegistry) -> &std::sync::atomic::AtomicUsize,
}

impl InFlight {
    fn new(
        shared: &Arc<Shared>,
        counter: fn(&client::ClientRegistry) -> &std::sync::atomic::AtomicUsize,
    ) -> Self {
        counter(&shared.clients).fetch_add(1, Ordering::Relaxed);
        InFlight {
            shared: shared.clone(),
            counter,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        (self.counter)(&self.shared.clients).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers a refused connection with one error line and closes it.
async fn refuse<S: tokio::io::AsyncWrite + Unpin>(mut socket: S, error: &'static [u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = socket.write_all(error).await;
    let _ = socket.shutdown().await;
}

/// Redis's reply to a client refused by protected mode.
const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode, as Redis has it: while the `default` user needs no password (`nopass`),
/// only loopback clients are served.
fn protected_mode_refuses(config: &Config, nopass: bool, peer: std::net::IpAddr) -> bool {
    config.protected_mode && nopass && !peer.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_only_outside_clients_without_a_password() {
        let outside: std::net::IpAddr = "192.0.2.7"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let mut c = Config::default();
        assert!(protected_mode_refuses(&c, true, outside));
        assert!(!protected_mode_refuses(
            &c,
            true,
            std::net::Ipv4Addr::LOCALHOST.into()
        ));
        assert!(!protected_mode_refuses(
            &c,
            true,
            std::net::Ipv6Addr::LOCALHOST.into()
        ));
        assert!(!protected_mode_refuses(&c, true, mapped));
        assert!(!protected_mode_refuses(&c, false, outside));
        c.protected_mode = false;
        assert!(!protected_mode_refuses(&c, true, outside));
    }
}
