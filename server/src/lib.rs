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
    store.set_stream_cache_bytes(usize::try_from(config.stream_cache_bytes).unwrap_or(usize::MAX));
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
        "DB loaded from disk: {} streams, {} entries in {} nodes (entries stay on disk), {} groups, {} pending entries in {:.3} seconds",
        report.streams,
        report.entries,
        report.nodes,
        report.groups,
        report.pending,
        report.elapsed.as_secs_f64()
    );
    let shared = Shared::new(config, local_addr, store, report);
    cmd::install_loaded(&shared, loaded);
    {
        let config = shared.config();
        if config.protected_mode && config.requirepass.is_none() && !local_addr.ip().is_loopback() {
            tracing::warn!(
                "protected mode is on and no password is set: clients from other hosts will be refused. Set requirepass, or start with --protected-mode no"
            );
        }
    }
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
        let Ok((socket, peer)) = accepted else {
            continue;
        };
        if protected_mode_refuses(&shared.config(), peer.ip()) {
            tracing::warn!(%peer, "refused a client from outside the loopback interface: protected mode is on and no password is set");
            tokio::spawn(refuse(socket, PROTECTED_MODE_DENIED));
            continue;
        }
        let maxclients = shared.config().maxclients;
        if shared.clients.connected.load(Ordering::Relaxed) >= maxclients {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(socket, b"-ERR max number of clients reached\r\n"));
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

/// Answers a refused connection with one error line and closes it.
async fn refuse(mut socket: tokio::net::TcpStream, error: &'static [u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = socket.write_all(error).await;
    let _ = socket.shutdown().await;
}

/// Redis's reply to a client refused by protected mode.
const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode, as Redis has it: with no password set, only loopback clients are served.
fn protected_mode_refuses(config: &Config, peer: std::net::IpAddr) -> bool {
    let peer = match peer {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(peer),
        v4 => v4,
    };
    config.protected_mode && config.requirepass.is_none() && !peer.is_loopback()
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
        assert!(protected_mode_refuses(&c, outside));
        assert!(!protected_mode_refuses(
            &c,
            std::net::Ipv4Addr::LOCALHOST.into()
        ));
        assert!(!protected_mode_refuses(
            &c,
            std::net::Ipv6Addr::LOCALHOST.into()
        ));
        assert!(!protected_mode_refuses(&c, mapped));
        c.requirepass = Some(b"pw".to_vec());
        assert!(!protected_mode_refuses(&c, outside));
        c.requirepass = None;
        c.protected_mode = false;
        assert!(!protected_mode_refuses(&c, outside));
    }
}
