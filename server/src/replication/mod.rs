//! Replication as Redis does it: a primary feeds its replicas a full snapshot, then the
//! stream of its changes, RESP-framed and counted in bytes; replicas follow, read-only.
//!
//! - `backlog.rs`: the last `repl-backlog-size` bytes of the change stream, by offset.
//! - `propagate.rs`: what goes into the stream (a stream's `Mutation` records as an
//!   internal `REPLSTREAM` command; other writes as Redis-style deterministic commands).
//! - `snapshot.rs`: a full sync's snapshot, built from the keyspace.
//! - `primary.rs`: feeding one replica on the connection that asked for PSYNC.
//! - `replica.rs`: the replica's link to its primary (handshake, load, apply, ACK).
//! - `cron.rs`: the primary's PING every `repl-ping-replica-period`, and FAILOVER's steps.
//! - `failover.rs`: FAILOVER, the coordinated switch of primary and replica
//!   (`failover_state.rs`: its state).

pub mod backlog;
pub mod cron;
pub mod failover;
pub mod failover_state;
pub mod info;
pub mod primary;
pub mod propagate;
pub mod replica;
pub mod signal;
pub mod snapshot;
pub mod wait;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::client::ClientHandle;
use backlog::{Backlog, TxWrap};

/// Which side of replication this server is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A primary (Redis's `master`).
    Primary,
    /// A replica of `host:port`.
    Replica {
        /// The primary's host.
        host: String,
        /// The primary's port.
        port: u16,
    },
}

/// A replica's link to its primary, as INFO and ROLE show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; about to connect.
    Connect,
    /// Connecting or in the handshake.
    Connecting,
    /// Receiving the snapshot.
    Sync,
    /// Following the stream of changes.
    Connected,
}

impl LinkState {
    /// ROLE's word for it.
    pub fn role_word(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The replication IDs and the role, changed together.
#[derive(Debug, Clone)]
pub struct Ids {
    /// This server's role.
    pub role: Role,
    /// `master_replid`: the ID of the history this server's data follows.
    pub replid: String,
    /// `master_replid2`: the previous ID after a promotion, else 40 zeros.
    pub replid2: String,
    /// `second_repl_offset`: the offset up to which `replid2` is valid, else -1.
    pub second_offset: i64,
    /// Bumped on every REPLICAOF, so an old link's task knows it is no longer wanted.
    pub generation: u64,
}

/// A replica this server feeds.
#[derive(Debug)]
pub struct Follower {
    /// Its connection.
    pub handle: Arc<ClientHandle>,
    /// The address it announced (REPLCONF ip-address) or connected from.
    pub ip: String,
    /// The port it listens on (REPLCONF listening-port).
    pub port: u16,
    /// The offset it acknowledged last (REPLCONF ACK).
    pub ack: AtomicU64,
    /// When (unix ms) it last acknowledged.
    pub ack_ms: AtomicU64,
    /// Set once it is past its snapshot and follows the stream.
    pub online: AtomicBool,
}

/// What one connection said with REPLCONF before PSYNC.
#[derive(Debug, Clone, Default)]
pub struct Announced {
    /// REPLCONF listening-port.
    pub port: u16,
    /// REPLCONF ip-address.
    pub ip: Option<String>,
}

/// Replication's shared state.
pub struct Replication {
    ids: Mutex<Ids>,
    backlog: Mutex<Backlog>,
    /// Set once a replica asked to be fed (or after a promotion): writes are propagated into
    /// the backlog only then, as Redis creates its backlog with the first replica.
    active: AtomicBool,
    /// Whether the role is a replica (read on hot paths without the IDs' lock).
    replica: AtomicBool,
    /// `master_repl_offset` as of the last append; feeders wait on its changes.
    pub offset_signal: signal::OffsetSignal,
    /// Woken when a replica acknowledges (WAIT waits on it).
    pub acks: tokio::sync::Notify,
    /// The replicas being fed.
    followers: Mutex<Vec<Arc<Follower>>>,
    /// REPLCONF settings of connections that have not sent PSYNC yet, by client id.
    announced: Mutex<hashbrown::HashMap<u64, Announced>>,
    /// On a replica: the offset applied so far (`slave_repl_offset`).
    pub applied: AtomicU64,
    /// On a replica: the offset read so far (`slave_read_repl_offset`).
    pub read: AtomicU64,
    /// On a replica: the link's state.
    link: Mutex<LinkState>,
    /// On a replica: unix ms of the last byte from the primary.
    pub last_io_ms: AtomicU64,
    /// On a replica: unix ms the link went down (0 while up).
    pub down_since_ms: AtomicU64,
    /// On a replica: set while the link applies a command (a clean stop waits for it).
    pub link_busy: AtomicBool,
    /// Set by the cron while `min-replicas-to-write` is not met: writes are refused.
    pub too_few_replicas: AtomicBool,
    /// Full syncs served (INFO `sync_full`).
    pub sync_full: AtomicU64,
    /// Partial resyncs accepted (`sync_partial_ok`).
    pub sync_partial_ok: AtomicU64,
    /// Partial resyncs refused (`sync_partial_err`).
    pub sync_partial_err: AtomicU64,
    /// The FAILOVER under way, if any.
    failover: Mutex<failover_state::Failover>,
}

impl Replication {
    /// A primary with a fresh replication ID and no backlog yet.
    pub fn new(backlog_size: u64) -> Self {
        Replication {
            ids: Mutex::new(Ids {
                role: Role::Primary,
                replid: new_replid(),
                replid2: "0".repeat(40),
                second_offset: -1,
                generation: 0,
            }),
            backlog: Mutex::new(Backlog::new(backlog_size as usize, 0)),
            active: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            offset_signal: signal::OffsetSignal::default(),
            acks: tokio::sync::Notify::new(),
            followers: Mutex::new(Vec::new()),
            announced: Mutex::new(hashbrown::HashMap::new()),
            applied: AtomicU64::new(0),
            read: AtomicU64::new(0),
            link: Mutex::new(LinkState::Connect),
            last_io_ms: AtomicU64::new(0),
            down_since_ms: AtomicU64::new(crate::client::now_ms()),
            link_busy: AtomicBool::new(false),
            too_few_replicas: AtomicBool::new(false),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            failover: Mutex::new(failover_state::Failover::default()),
        }
    }

    /// The IDs and role.
    pub fn ids(&self) -> MutexGuard<'_, Ids> {
        crate::keyspace::lock(&self.ids)
    }

    /// The FAILOVER under way.
    pub fn failover(&self) -> MutexGuard<'_, failover_state::Failover> {
        crate::keyspace::lock(&self.failover)
    }

    /// The backlog.
    pub fn backlog(&self) -> MutexGuard<'_, Backlog> {
        crate::keyspace::lock(&self.backlog)
    }

    /// Whether writes are propagated (a backlog exists and this is a primary).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether this server is a replica.
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// `master_repl_offset`: the backlog's end on a primary, the applied offset on a replica.
    pub fn offset(&self) -> u64 {
        if self.is_replica() {
            self.applied.load(Ordering::Relaxed)
        } else {
            self.backlog().end()
        }
    }

    /// Starts propagating writes, with the backlog beginning at the current offset.
    pub fn activate(&self) {
        if !self.active.load(Ordering::Relaxed) {
            let b = self.backlog();
            self.offset_signal.set(b.end());
            self.active.store(true, Ordering::Relaxed);
        }
    }

    /// Appends `frame` (one or more RESP commands for database `db`, or for none) to the
    /// stream: a SELECT goes first when the database changes.
    pub fn feed(&self, db: Option<usize>, frame: &[u8]) {
        self.feed_with(db, |b| b.append(frame));
    }

    /// [`Replication::feed`] for one command, encoded straight into the backlog.
    pub fn feed_command<'a>(
        &self,
        db: Option<usize>,
        args: impl Iterator<Item = &'a [u8]> + Clone,
    ) {
        self.feed_with(db, |b| b.append_args(args));
    }

    fn feed_with(&self, db: Option<usize>, write: impl FnOnce(&mut Backlog)) {
        let end = {
            let mut b = self.backlog();
            Self::before_change(&mut b, db);
            write(&mut b);
            b.end()
        };
        self.offset_signal.set(end);
    }

    /// What goes before a change: a transaction's MULTI, a SELECT of its database.
    fn before_change(b: &mut Backlog, db: Option<usize>) {
        if b.tx == TxWrap::Pending {
            b.append_command(&[b"MULTI"]);
            b.tx = TxWrap::Open;
        }
        if let Some(db) = db
            && b.last_db != Some(db)
        {
            b.append_command(&[b"SELECT", db.to_string().as_bytes()]);
            b.last_db = Some(db);
        }
    }

    /// A transaction (EXEC, under the exclusive gate) begins: its changes reach replicas
    /// inside MULTI / EXEC, as Redis wraps them, so a replica applies them at once. Nothing
    /// is sent for a transaction that changes nothing.
    pub fn begin_transaction(&self) {
        if self.is_active() {
            self.backlog().tx = TxWrap::Pending;
        }
    }

    /// The transaction ended: EXEC follows its changes, if it had any.
    pub fn end_transaction(&self) {
        let end = {
            let mut b = self.backlog();
            let open = b.tx == TxWrap::Open;
            b.tx = TxWrap::None;
            if !open {
                return;
            }
            b.append_command(&[b"EXEC"]);
            b.end()
        };
        self.offset_signal.set(end);
    }

    /// The replicas being fed.
    pub fn followers(&self) -> Vec<Arc<Follower>> {
        crate::keyspace::lock(&self.followers).clone()
    }

    /// Adds a replica being fed.
    pub fn add_follower(&self, f: Arc<Follower>) {
        crate::keyspace::lock(&self.followers).push(f);
    }

    /// Removes the replica on connection `id`.
    pub fn remove_follower(&self, id: u64) {
        crate::keyspace::lock(&self.followers).retain(|f| f.handle.id != id);
        self.acks.notify_waiters();
    }

    /// What connections announced with REPLCONF, by client id (kept until PSYNC).
    pub fn announced(&self) -> MutexGuard<'_, hashbrown::HashMap<u64, Announced>> {
        crate::keyspace::lock(&self.announced)
    }

    /// The replica link's state.
    pub fn link(&self) -> LinkState {
        *crate::keyspace::lock(&self.link)
    }

    /// Sets the replica link's state.
    pub fn set_link(&self, s: LinkState) {
        *crate::keyspace::lock(&self.link) = s;
        let now = crate::client::now_ms();
        if s == LinkState::Connected {
            self.down_since_ms.store(0, Ordering::Relaxed);
        } else if self.down_since_ms.load(Ordering::Relaxed) == 0 {
            self.down_since_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Replicas that acknowledged within the last `max_lag` seconds.
    pub fn good_replicas(&self, max_lag: i64) -> usize {
        let now = crate::client::now_ms();
        self.followers()
            .iter()
            .filter(|f| {
                f.online.load(Ordering::Relaxed)
                    && now.saturating_sub(f.ack_ms.load(Ordering::Relaxed)) / 1000
                        <= max_lag.max(0) as u64
            })
            .count()
    }

    /// Replicas whose last acknowledgement covers `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.followers()
            .iter()
            .filter(|f| f.online.load(Ordering::Relaxed) && f.ack.load(Ordering::Relaxed) >= offset)
            .count()
    }

    /// Turns this server into a replica of `host:port` (REPLICAOF, `replicaof`): stops
    /// propagating, drops the replicas it fed (they resync with their new primary) and
    /// returns the generation the link task runs under. `applied` is the offset its data
    /// reflects in the current replication ID (where a partial resync would continue).
    pub fn become_replica(&self, host: String, port: u16) -> u64 {
        let generation = {
            let mut ids = self.ids();
            if !matches!(ids.role, Role::Replica { .. }) {
                // The primary's own history is where a partial resync would continue.
                self.applied.store(self.backlog().end(), Ordering::Relaxed);
            }
            ids.role = Role::Replica { host, port };
            self.replica.store(true, Ordering::Relaxed);
            ids.generation += 1;
            ids.generation
        };
        self.active.store(false, Ordering::Relaxed);
        self.set_link(LinkState::Connect);
        for f in self.followers() {
            f.handle.kill();
        }
        generation
    }

    /// Promotes this replica to a primary (REPLICAOF NO ONE): a new replication ID, the old
    /// one kept as `master_replid2` up to the offset reached, so its former siblings can
    /// continue from it; the backlog starts at that offset.
    pub fn promote(&self, backlog_size: u64) {
        let mut ids = self.ids();
        if !matches!(ids.role, Role::Replica { .. }) {
            return;
        }
        let offset = self.applied.load(Ordering::Relaxed);
        ids.replid2 = std::mem::replace(&mut ids.replid, new_replid());
        ids.second_offset = offset as i64 + 1;
        ids.role = Role::Primary;
        self.replica.store(false, Ordering::Relaxed);
        ids.generation += 1;
        *self.backlog() = Backlog::new(backlog_size as usize, offset);
        drop(ids);
        self.offset_signal.set(offset);
        self.active.store(true, Ordering::Relaxed);
    }
}

/// A fresh 40-hex-digit ID (a replication ID, the run ID), from the process's randomness
/// (hash seeds are random per process).
pub fn new_replid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(48);
    while out.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

/// WAIT / WAITAOF waiting for acknowledgements.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    /// Replicas wanted.
    pub numreplicas: usize,
    /// WAITAOF's numlocal (None for WAIT).
    pub numlocal: Option<usize>,
    /// None: wait as long as it takes.
    pub timeout: Option<Duration>,
    /// The replication offset the replicas must have acknowledged.
    pub offset: u64,
    /// The store sequence the local disk must hold (WAITAOF).
    pub seq: u64,
}
