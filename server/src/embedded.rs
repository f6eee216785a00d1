//! The server without its listener: requests in, reply bytes out, in this process.
//!
//! This exists for fuzzing (`fuzz/`) and for tests that need to run thousands of commands
//! without a socket. It is not a second implementation: an [`Embedded`] is the same shared state
//! [`start`](crate::start) builds (keyspace, fjall store, pub/sub registry, blocked clients),
//! and a [`Session`] is one client of it that runs what it is fed through the same request
//! reader, command table, dispatch and handlers as a connection (plain or TLS), with the same
//! request loop (the connection module's `Buffers`). What a socket adds is left out: there is no
//! reading, no writing and no waiting. A command that blocks (XREAD ... BLOCK) stays blocked
//! until another session's write serves it or [`Session::time_out`] ends the wait as its
//! timeout would, so nothing ever sleeps.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! let mut config = brooklet_server::Config::default();
//! config.dir = std::env::temp_dir().join("brooklet-embedded-demo");
//! let server = brooklet_server::embedded::Embedded::open(config)?;
//! let mut client = server.session();
//! client.feed(b"*1\r\n$4\r\nPING\r\n");
//! assert_eq!(&client.take_output()[..], b"+PONG\r\n");
//! # Ok(()) }
//! ```

use bytes::Bytes;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio::sync::oneshot::error::TryRecvError;

use crate::client::{Client, ClientHandle, Outbound};
use crate::cmd::Outcome;
use crate::config::Config;
use crate::connection::{Blocked, Buffers, Step};
use crate::state::Shared;

/// A server's state with no listener, serving in-process [`Session`]s.
pub struct Embedded {
    shared: Arc<Shared>,
    /// The configuration it was opened with, which [`restore_config`](Self::restore_config)
    /// puts back.
    initial: Config,
}

impl Embedded {
    /// Opens the store in `config.dir` and loads what it holds, as [`start`](crate::start)
    /// does, without binding a port.
    ///
    /// # Errors
    /// When the data directory cannot be created, is locked by another server, or cannot be
    /// read.
    pub fn open(config: Config) -> std::io::Result<Embedded> {
        std::fs::create_dir_all(&config.dir)?;
        let policy = crate::state::fsync_policy(config.appendfsync);
        let opened = brooklet_persistence::Store::open(&config.dir, policy)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // No listener: INFO and CONFIG GET show no port.
        let shared = crate::install_store(config.clone(), None, None, opened);
        Ok(Embedded {
            shared,
            initial: config,
        })
    }

    /// A new client, as if it had just connected from the loopback interface.
    pub fn session(&self) -> Session {
        let shared = &self.shared;
        let (tx, rx) = mpsc::unbounded_channel();
        let id = shared.clients.next_id();
        // A distinct made-up peer port per session, so CLIENT LIST and CLIENT KILL ADDR can
        // tell sessions apart as they tell connections apart.
        let port = (id % u64::from(u16::MAX - 1024)) as u16 + 1024;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let laddr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let handle = Arc::new(ClientHandle::new(id, addr, laddr, -1, tx));
        shared
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let authenticated = shared.acl.default_open();
        shared.clients.insert(handle.clone());
        Session {
            shared: shared.clone(),
            client: Client::new(handle, authenticated),
            rx,
            io: Buffers::new(),
            blocked: None,
            paused: None,
            closed: false,
        }
    }

    /// Puts the configuration back to what the state was opened with (CONFIG SET may have
    /// changed it), applied as CONFIG SET applies one, and lifts a CLIENT PAUSE (under ALL
    /// no client could).
    pub fn restore_config(&self) {
        let shared = &self.shared;
        shared.pause.unpause();
        // The live copies CONFIG SET updates besides the configuration itself.
        shared.pubsub_limits.set(&self.initial.output_limit_pubsub);
        shared
            .store
            .set_policy(crate::state::fsync_policy(self.initial.appendfsync));
        *shared.config_mut() = self.initial.clone();
    }
}

/// The full name of every command in the command table, as COMMAND LIST gives them, and of
/// every subcommand as `container|sub` (`xgroup|create`).
pub fn command_names() -> Vec<&'static str> {
    crate::cmd::dispatch::table()
        .entries
        .iter()
        .map(|e| e.full_name.as_str())
        .collect()
}

/// One in-process client of an [`Embedded`] server.
///
/// Bytes given to [`feed`](Self::feed) are what the client sends; [`take_output`](Self::take_output)
/// returns what the server would have written to it, replies and pub/sub messages alike.
pub struct Session {
    shared: Arc<Shared>,
    client: Client,
    rx: mpsc::UnboundedReceiver<Outbound>,
    io: Buffers,
    blocked: Option<Blocked>,
    /// A command CLIENT PAUSE holds back, run again on the next pump once the pause is over.
    paused: Option<(Vec<bytes::Bytes>, bool)>,
    closed: bool,
}

impl Session {
    /// The client id (CLIENT ID).
    pub fn id(&self) -> u64 {
        self.client.id()
    }

    /// Whether the server closed this client (QUIT, a protocol error, CLIENT KILL, a limit).
    /// A closed session ignores what it is fed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a blocking command is waiting for data; later requests wait behind it, as on a
    /// connection.
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some() || self.paused.is_some()
    }

    /// Whether the client speaks RESP3 (after HELLO 3), which is how its replies are encoded.
    pub fn resp3(&self) -> bool {
        self.client.resp3
    }

    /// Receives `bytes` from the client and runs every request they complete.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.io.received(bytes);
        self.shared.stats.net_input_bytes.add(bytes.len() as u64);
        if self.io.check_query_limit(&self.shared).is_err() {
            self.close();
            return;
        }
        self.pump();
    }

    /// Ends the wait of a blocked command as its timeout would, then runs the requests that
    /// were waiting behind it. A no-op when nothing is blocked.
    pub fn time_out(&mut self) {
        if let Some(blocked) = self.blocked.take() {
            let mut blocked = blocked;
            // A writer may have served it at the same moment: then that reply stands.
            let served = blocked
                .time_out()
                .or_else(|| blocked.reply_rx.try_recv().ok());
            blocked.finish(&self.shared, &mut self.client, served, &mut self.io.out);
            self.pump();
        }
    }

    /// Everything the server wrote to this client since the last call: replies, and messages
    /// other sessions' commands queued for it. Replies of writes are handed out once the store
    /// has them as safely as `appendfsync` promises, as a connection holds them back until then.
    pub fn take_output(&mut self) -> Bytes {
        self.pump();
        if !self.closed && !self.io.out.is_empty() && !self.make_durable() {
            self.close();
        }
        let n = self.io.out.len();
        self.io.sent(&self.client.handle, n);
        self.shared.stats.net_output_bytes.add(n as u64);
        self.io.out.split().freeze()
    }

    /// Runs what can run: queued messages, a blocked command's answer, buffered requests.
    fn pump(&mut self) {
        if self.closed {
            return;
        }
        if self.client.handle.is_killed() || self.deliver_queued().is_err() {
            self.close();
            return;
        }
        if let Some(mut blocked) = self.blocked.take() {
            match blocked.reply_rx.try_recv() {
                Ok(served) => blocked.finish(
                    &self.shared,
                    &mut self.client,
                    Some(served),
                    &mut self.io.out,
                ),
                Err(TryRecvError::Empty) => {
                    self.blocked = Some(blocked);
                    return;
                }
                Err(TryRecvError::Closed) => {
                    blocked.finish(&self.shared, &mut self.client, None, &mut self.io.out)
                }
            }
        }
        let mut held = self.paused.take();
        loop {
            let step = match held.take() {
                Some((argv, write_like)) => {
                    if self.shared.pause.postpones(|| write_like).is_some() {
                        self.paused = Some((argv, write_like));
                        return;
                    }
                    self.io
                        .run_request(&self.shared, &mut self.client, &mut self.rx, argv)
                }
                None => self
                    .io
                    .run_next(&self.shared, &mut self.client, &mut self.rx),
            };
            match step {
                Ok(Step::Ran(Outcome::Paused { argv, write_like })) => {
                    held = Some((argv, write_like));
                }
                Ok(Step::NeedMore) => {
                    self.io.release_burst_capacity();
                    return;
                }
                Ok(Step::Ran(Outcome::Continue)) => {}
                Ok(Step::Ran(Outcome::Block(spec))) => {
                    let mut blocked = Blocked::register(&self.shared, &self.client, spec);
                    // Registering re-runs the command once; it may have been served at once.
                    match blocked.reply_rx.try_recv() {
                        Ok(served) => blocked.finish(
                            &self.shared,
                            &mut self.client,
                            Some(served),
                            &mut self.io.out,
                        ),
                        Err(_) => {
                            self.blocked = Some(blocked);
                            return;
                        }
                    }
                }
                // An in-process session has no socket to feed a replica on, and answers
                // WAIT at once with the replicas that already acknowledged.
                Ok(Step::Ran(Outcome::Wait(spec))) => {
                    let reply = crate::replication::wait::wait_now(&self.shared, &spec);
                    crate::cmd::dispatch::write_reply(
                        &self.shared,
                        &mut self.client,
                        &reply,
                        &mut self.io.out,
                    );
                }
                Ok(Step::Ran(Outcome::Close | Outcome::Replica(_)) | Step::ProtocolError)
                | Err(_) => {
                    self.close();
                    return;
                }
            }
        }
    }

    /// Moves the pub/sub frames other sessions queued for this client into its output.
    fn deliver_queued(&mut self) -> Result<(), crate::connection::End> {
        while let Ok(msg) = self.rx.try_recv() {
            self.io.outbound(Some(msg), &mut self.rx)?;
        }
        Ok(())
    }

    /// What a connection's `wait_durable` waits for, done at once: the store hands the
    /// client's writes to the OS, or under `appendfsync always` fsyncs them.
    fn make_durable(&self) -> bool {
        let seq = self.client.write_seq;
        let store = &self.shared.store;
        if seq == 0 {
            return true;
        }
        if store.policy() != brooklet_persistence::FsyncPolicy::Always {
            return store.flush_to_os(seq).is_ok();
        }
        *self.shared.durable.borrow() >= seq || store.sync().is_ok()
    }

    /// Closes the client: a blocked command is abandoned, the output stops growing.
    fn close(&mut self) {
        self.closed = true;
        if let Some(blocked) = self.blocked.take() {
            blocked.finish(&self.shared, &mut self.client, None, &mut self.io.out);
        }
    }
}

impl Drop for Session {
    /// What a connection leaves behind when it ends: watches, subscriptions, a MULTI, a
    /// blocked command, its place in the client registry.
    fn drop(&mut self) {
        self.close();
        crate::cmd::dispatch::disconnect_cleanup(&self.shared, &mut self.client);
        crate::keyspace::lock(&self.shared.pubsub).remove_client(self.client.id());
        self.shared.clients.remove(self.client.id());
    }
}
