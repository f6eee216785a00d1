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
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;

mod blocking;
mod client;
mod cmd;
mod connection;
pub mod info;
mod keyspace;
pub(crate) mod notify;
mod state;
mod stats;
mod subscriber;
mod watch;

pub use config::{Config, Fsync};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use state::Shared;

/// How long shutdown waits for connections to finish their replies.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
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

/// Binds the listener and starts serving in the background.
///
/// # Errors
/// When the address cannot be bound or the data directory cannot be created.
pub async fn start(config: Config) -> std::io::Result<ServerHandle> {
    std::fs::create_dir_all(&config.dir)?;
    let host = config
        .bind
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let listener = TcpListener::bind((host.as_str(), config.port)).await?;
    let local_addr = listener.local_addr()?;
    let dir = config.dir.clone();
    let policy = state::fsync_policy(config.appendfsync);
    let opened =
        tokio::task::spawn_blocking(move || brooklet_persistence::Store::open(&dir, policy))
            .await
            .map_err(std::io::Error::other)?;
    let (store, loaded, report) = opened.map_err(|e| std::io::Error::other(e.to_string()))?;
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
        "DB loaded from disk: {} streams, {} entries, {} groups, {} pending entries in {:.3} seconds",
        report.streams,
        report.entries,
        report.groups,
        report.pending,
        report.elapsed.as_secs_f64()
    );
    let shared = Shared::new(config, local_addr, store, report);
    cmd::install_loaded(&shared, loaded);
    tracing::info!(
        "Brooklet {} listening on {local_addr}",
        env!("CARGO_PKG_VERSION")
    );
    let task = tokio::spawn(accept_loop(shared.clone(), listener));
    Ok(ServerHandle { shared, task })
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shared.shutdown.notified() => break,
        };
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        let Ok((socket, _)) = accepted else { continue };
        let maxclients = shared.config().maxclients;
        if shared.clients.connected.load(Ordering::Relaxed) >= maxclients {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(socket));
            continue;
        }
        connections.spawn(connection::serve(shared.clone(), socket));
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
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
    if let Err(e) = shared.store.sync() {
        tracing::error!("final fsync failed: {e}");
    }
    tracing::info!("Brooklet is now ready to exit, bye bye...");
}

async fn refuse(mut socket: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = socket
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = socket.shutdown().await;
}
