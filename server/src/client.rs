//! Clients: the shared handle other tasks see (CLIENT LIST/KILL, pub/sub delivery) and the
//! connection-local state only the connection's own task touches.

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};

use crate::keyspace::lock;

/// Something sent to a connection's task from elsewhere.
#[derive(Debug)]
pub enum Outbound {
    /// Bytes already encoded for the client's protocol (a pub/sub message).
    Frame(Bytes),
    /// Close the connection (CLIENT KILL, output limit, shutdown).
    Kill,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The part of a client other tasks may read or signal.
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing client id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address the client connected to.
    pub laddr: SocketAddr,
    /// Socket file descriptor, for CLIENT LIST's `fd=`.
    pub fd: i64,
    /// When the connection was accepted.
    pub created: Instant,
    /// Milliseconds since the epoch of the last command.
    pub last_interaction_ms: AtomicU64,
    /// Selected database.
    pub db: AtomicUsize,
    /// Whether the client speaks RESP3.
    pub resp3: AtomicBool,
    /// Index in the command table of the last command run (`cmd=`), or usize::MAX.
    pub last_cmd: AtomicUsize,
    /// Bytes queued to this client from elsewhere and not yet written.
    pub queued_bytes: AtomicUsize,
    /// Channels + patterns subscribed (for `sub=`/`psub=`/`ssub=` and the pubsub flag).
    pub subs: [AtomicUsize; 3],
    /// Whether the client is inside MULTI (`multi=` shows the queue length).
    pub multi_len: AtomicUsize,
    /// Number of watched keys.
    pub watching: AtomicUsize,
    /// Whether the client is blocked on keys.
    pub blocked: AtomicBool,
    /// CLIENT NO-EVICT (flag `e`): shown only, Brooklet evicts no clients.
    pub no_evict: AtomicBool,
    /// CLIENT NO-TOUCH (flag `T`): its commands, TOUCH aside, leave keys' access history.
    pub no_touch: AtomicBool,
    /// Name, library name and version (CLIENT SETNAME / SETINFO).
    pub names: Mutex<ClientNames>,
    /// Channel into the connection's task.
    pub tx: mpsc::UnboundedSender<Outbound>,
    /// Set by [`kill`](Self::kill); the connection closes without draining its queue.
    pub killed: AtomicBool,
    /// Wakes the connection's task when it is killed, even while it waits on a slow socket.
    pub kill_signal: Notify,
    /// Milliseconds since the epoch when the queued output first went over the pub/sub soft
    /// limit, 0 while under it (Redis's `obuf_soft_limit_reached_time`).
    pub soft_limit_since_ms: AtomicU64,
    /// Whether the client is in MONITOR mode (CLIENT LIST's `O`; never closed for idleness).
    pub monitoring: AtomicBool,
    /// What the connection is to replication: [`KIND_NORMAL`], [`KIND_MASTER`] (this
    /// replica's link to its primary) or [`KIND_REPLICA`] (a replica fed by this server).
    pub kind: std::sync::atomic::AtomicU8,
}

/// [`ClientHandle::kind`] of an ordinary client.
pub const KIND_NORMAL: u8 = 0;
/// [`ClientHandle::kind`] of a replica's link to its primary.
pub const KIND_MASTER: u8 = 1;
/// [`ClientHandle::kind`] of a replica this server feeds.
pub const KIND_REPLICA: u8 = 2;

/// The client's self-reported names.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    /// CLIENT SETNAME.
    pub name: Bytes,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: Bytes,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: Bytes,
    /// The ACL user it is authenticated as; empty for `default`.
    pub user: Bytes,
}

impl ClientHandle {
    /// The handle of a client just accepted (or of an in-process session), with `tx` the
    /// channel into the task that serves it.
    pub fn new(
        id: u64,
        addr: SocketAddr,
        laddr: SocketAddr,
        fd: i64,
        tx: mpsc::UnboundedSender<Outbound>,
    ) -> Self {
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_interaction_ms: AtomicU64::new(now_ms()),
            db: AtomicUsize::new(0),
            resp3: AtomicBool::new(false),
            last_cmd: AtomicUsize::new(usize::MAX),
            queued_bytes: AtomicUsize::new(0),
            subs: Default::default(),
            multi_len: AtomicUsize::new(0),
            watching: AtomicUsize::new(0),
            blocked: AtomicBool::new(false),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            names: Default::default(),
            tx,
            killed: AtomicBool::new(false),
            kill_signal: Notify::new(),
            soft_limit_since_ms: AtomicU64::new(0),
            monitoring: AtomicBool::new(false),
            kind: std::sync::atomic::AtomicU8::new(KIND_NORMAL),
        }
    }

    /// Whether this is a replica's link to its primary (its writes are the primary's).
    pub fn is_master_link(&self) -> bool {
        self.kind.load(Ordering::Relaxed) == KIND_MASTER
    }

    /// Queues pre-encoded bytes for this client; false when the connection is gone.
    pub fn push_frame(&self, frame: Bytes) -> bool {
        self.queued_bytes.fetch_add(frame.len(), Ordering::Relaxed);
        self.tx.send(Outbound::Frame(frame)).is_ok()
    }

    /// Asks the connection to close. A kill does not queue behind pending pub/sub frames: the
    /// flag and the signal reach a connection stuck writing to a client that does not read.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill_signal.notify_one();
        let _ = self.tx.send(Outbound::Kill);
    }

    /// Whether the connection was asked to close.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Whether the client is in pub/sub mode (any channel, pattern or shard channel).
    pub fn is_pubsub(&self) -> bool {
        self.subs.iter().any(|s| s.load(Ordering::Relaxed) > 0)
    }
}

/// Every connected client, by id.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    next_id: AtomicU64,
    /// Connected clients, kept apart from the map so the hot path reads one atomic.
    pub connected: AtomicUsize,
    /// Accepted TLS connections still in their handshake: not clients yet, but they count
    /// against `maxclients` (as in Redis) so a crowd of silent sockets cannot exceed it.
    pub handshaking: AtomicUsize,
    /// Refused TLS connections in the handshake that carries their refusal.
    pub tls_refusing: AtomicUsize,
}

impl ClientRegistry {
    /// A fresh client id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a client.
    pub fn insert(&self, client: Arc<ClientHandle>) {
        lock(&self.clients).insert(client.id, client);
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes a client.
    pub fn remove(&self, id: u64) {
        if lock(&self.clients).remove(&id).is_some() {
            self.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A snapshot of every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut v: Vec<_> = lock(&self.clients).values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// One client by id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        lock(&self.clients).get(&id).cloned()
    }
}

/// Redis's CLIENT REPLY modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent.
    On,
    /// Replies are dropped until ON.
    Off,
    /// The next command's reply is dropped.
    Skip,
    /// Set by SKIP: drop this command's reply, then back to On.
    SkipThis,
}

/// State of a MULTI block.
#[derive(Debug, Default)]
pub struct MultiState {
    /// Queued commands (full argv with the name).
    pub queue: Vec<(usize, Vec<Bytes>)>,
    /// Set when a command failed to queue: EXEC aborts.
    pub aborted: bool,
}

/// Connection-local client state: only the connection's task reads or writes it.
pub struct Client {
    /// The shared half.
    pub handle: Arc<ClientHandle>,
    /// Selected database.
    pub db: usize,
    /// Whether RESP3 is on.
    pub resp3: bool,
    /// Whether the client has authenticated (or no password is required).
    pub authenticated: bool,
    /// The ACL user it runs as.
    pub user_name: Bytes,
    /// That user's rules, as of `acl_epoch`; None until the first command looks them up.
    pub user: Option<Arc<crate::acl::User>>,
    /// The ACL epoch `user` was read at; a newer epoch means it must be read again.
    pub acl_epoch: u64,
    /// Inside MULTI when Some.
    pub multi: Option<MultiState>,
    /// Set while EXEC runs its queue.
    pub in_exec: bool,
    /// Keys watched, with the flag that a write to one of them raises.
    pub watched: Vec<(usize, Bytes)>,
    /// The last command name this client sent, as sent, with its index in the (static)
    /// command table: a pipeline of one command looks its name up once.
    pub last_command: LastCommand,
    /// The list a command's changed keys are gathered in ([`crate::cmd::Ctx::touched`]),
    /// empty, kept between commands so that a write does not allocate one.
    pub spare_touched: Vec<(usize, Bytes)>,
    /// Raised when a watched key changes.
    pub watch_dirty: Arc<AtomicBool>,
    /// CLIENT REPLY mode.
    pub reply_mode: ReplyMode,
    /// (Un)subscribe confirmations of the running command when CLIENT REPLY OFF or SKIP
    /// drops its reply: Redis sends them whatever the reply mode (they go out as pushes, in
    /// RESP2 too), so they are written in the dropped reply's place.
    pub silenced_pushes: BytesMut,
    /// Store sequence of this client's latest write; replies wait for it under `always`.
    pub write_seq: u64,
    /// When the previous command of the batch being run ended, where the next one's time
    /// starts, so a pipelined command costs one clock read, not two (clock reads are a
    /// visible share of a cheap command's CPU: docs/performance.md, Server); None once the
    /// connection has waited for anything since.
    pub clock: Option<Instant>,
    /// Latencies of the commands answered in this batch, for INFO latencystats.
    pub latency: crate::latency_monitor::LatencyBatch,
}

impl Client {
    /// Local state for a freshly accepted connection.
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        Client {
            handle,
            db: 0,
            resp3: false,
            authenticated,
            user_name: Bytes::from_static(b"default"),
            user: None,
            acl_epoch: 0,
            multi: None,
            in_exec: false,
            watched: Vec::new(),
            spare_touched: Vec::new(),
            last_command: LastCommand::default(),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            reply_mode: ReplyMode::On,
            silenced_pushes: BytesMut::new(),
            write_seq: 0,
            clock: None,
            latency: Default::default(),
        }
    }

    /// Ends a batch of requests (the connection is about to wait for something): the next
    /// command's time starts from a fresh clock read, and this batch's latencies are put in
    /// the histograms.
    pub fn end_batch(&mut self) {
        self.clock = None;
        self.latency.flush();
    }

    /// The client id.
    pub fn id(&self) -> u64 {
        self.handle.id
    }

    /// Selects a database, mirroring it into the shared handle.
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.handle.db.store(db, Ordering::Relaxed);
    }

    /// Switches protocol, mirroring it into the shared handle.
    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
        self.handle.resp3.store(on, Ordering::Relaxed);
    }
}

/// A command name as a client sent it (up to 16 bytes) and where the command table has it.
#[derive(Debug, Clone, Copy)]
pub struct LastCommand {
    name: [u8; 16],
    /// Length of `name`; beyond its room, none is held.
    len: u8,
    idx: usize,
}

impl Default for LastCommand {
    fn default() -> Self {
        LastCommand {
            name: [0; 16],
            len: u8::MAX,
            idx: 0,
        }
    }
}

impl LastCommand {
    /// The index held for `name`, if it is the name last sent (byte for byte).
    pub fn get(&self, name: &[u8]) -> Option<usize> {
        (usize::from(self.len) == name.len() && self.name[..name.len()] == *name)
            .then_some(self.idx)
    }

    /// Holds `idx` for `name`, when it fits.
    pub fn set(&mut self, name: &[u8], idx: usize) {
        if let Some(room) = self.name.get_mut(..name.len()) {
            room.copy_from_slice(name);
            self.len = name.len() as u8;
            self.idx = idx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LastCommand;

    /// Only the exact name last held answers; a longer name than the room is never held.
    #[test]
    fn last_command_answers_only_its_own_name() {
        let mut last = LastCommand::default();
        assert_eq!(last.get(b""), None);
        last.set(b"GET", 7);
        assert_eq!(last.get(b"GET"), Some(7));
        assert_eq!(last.get(b"get"), None);
        assert_eq!(last.get(b"GETEX"), None);
        assert_eq!(last.get(b"GE"), None);
        last.set(b"xreadgroup", 9);
        assert_eq!(last.get(b"xreadgroup"), Some(9));
        assert_eq!(last.get(b"GET"), None);
        last.set(&[b'a'; 17], 3);
        assert_eq!(last.get(&[b'a'; 17]), None);
        assert_eq!(last.get(b"xreadgroup"), Some(9));
        last.set(&[b'b'; 16], 4);
        assert_eq!(last.get(&[b'b'; 16]), Some(4));
    }
}
