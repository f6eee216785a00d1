//! Clients blocked on keys (XREAD / XREADGROUP with BLOCK).
//!
//! As in Redis, a blocked command is re-run when one of its keys changes; the handler resolved
//! `$` to a concrete ID before blocking, so the re-run can neither miss entries nor spin. The
//! re-run happens on the writer's task, after it released its locks, walking waiters in the
//! order they blocked, so the first blocked client is served first and one new entry goes to
//! one XREADGROUP consumer only. A waiter's reply slot is taken under its own mutex, both by the
//! writer serving it and by its own task timing out, so a wake-up is never lost to a timeout.

use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

use brooklet_resp::Reply;

use crate::keyspace::lock;

/// The answer to a blocked command, from whoever served it.
#[derive(Debug)]
pub struct Served {
    /// The reply to send.
    pub reply: Reply,
    /// Store sequence of the re-run's write (XREADGROUP's pending entries), 0 if none: under
    /// `appendfsync always` the reply waits until it is on disk.
    pub write_seq: u64,
    /// Whether the run that produced the reply counted the call already (a timeout or
    /// CLIENT UNBLOCK answers without a run: the call is counted when the reply is written).
    pub counted: bool,
    /// Whether the connection closes after this reply.
    pub close: bool,
}

/// One blocked command.
pub struct Waiter {
    /// The blocked client.
    pub client_id: u64,
    /// Its selected database.
    pub db: usize,
    /// Keys it waits on.
    pub keys: Vec<Bytes>,
    /// The command to re-run, with `$` already resolved.
    pub argv: Vec<Bytes>,
    /// Whether the client speaks RESP3.
    pub resp3: bool,
    /// What to answer when the timeout comes first (or CLIENT UNBLOCK ... TIMEOUT).
    pub timeout_reply: Reply,
    /// Where the reply goes; None once served or timed out.
    slot: Mutex<Option<oneshot::Sender<Served>>>,
}

impl Waiter {
    /// A waiter and the receiver its connection awaits.
    pub fn new(
        client_id: u64,
        db: usize,
        keys: Vec<Bytes>,
        argv: Vec<Bytes>,
        resp3: bool,
        timeout_reply: Reply,
    ) -> (Arc<Waiter>, oneshot::Receiver<Served>) {
        let (tx, rx) = oneshot::channel();
        let w = Waiter {
            client_id,
            db,
            keys,
            argv,
            resp3,
            timeout_reply,
            slot: Mutex::new(Some(tx)),
        };
        (Arc::new(w), rx)
    }

    /// Locks the reply slot; Some while the waiter still waits.
    pub fn slot(&self) -> MutexGuard<'_, Option<oneshot::Sender<Served>>> {
        lock(&self.slot)
    }
}

/// Waiters on one key, first blocked first.
type WaitQueue = VecDeque<Arc<Waiter>>;

/// Waiters by (database, key), each queue in blocking order.
#[derive(Default)]
pub struct Blocking {
    queues: Mutex<HashMap<(usize, Bytes), WaitQueue>>,
    /// Clients currently blocked (INFO `blocked_clients`).
    pub blocked_clients: AtomicUsize,
}

impl Blocking {
    /// Queues a waiter behind every earlier one on each of its keys.
    pub fn register(&self, waiter: &Arc<Waiter>) {
        let mut queues = lock(&self.queues);
        for key in &waiter.keys {
            queues
                .entry((waiter.db, key.clone()))
                .or_default()
                .push_back(waiter.clone());
        }
        self.blocked_clients.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes a waiter from every queue (after it was served, timed out or disconnected).
    pub fn unregister(&self, waiter: &Arc<Waiter>) {
        let mut queues = lock(&self.queues);
        let mut found = false;
        for key in &waiter.keys {
            let k = (waiter.db, key.clone());
            if let Some(q) = queues.get_mut(&k) {
                let before = q.len();
                q.retain(|w| !Arc::ptr_eq(w, waiter));
                found |= q.len() != before;
                if q.is_empty() {
                    queues.remove(&k);
                }
            }
        }
        if found {
            self.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Waiters on a key, first blocked first.
    pub fn waiters(&self, db: usize, key: &Bytes) -> Vec<Arc<Waiter>> {
        if self.blocked_clients.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        lock(&self.queues)
            .get(&(db, key.clone()))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// CLIENT UNBLOCK: answers client `id`'s blocked command now, with its timeout reply or
    /// with `error`; false if that client is not blocked. Its own task then leaves the queues.
    pub fn unblock(&self, id: u64, error: Option<&str>) -> bool {
        let waiter = lock(&self.queues)
            .values()
            .flat_map(|q| q.iter())
            .find(|w| w.client_id == id)
            .cloned();
        let Some(waiter) = waiter else {
            return false;
        };
        let Some(tx) = waiter.slot().take() else {
            return false;
        };
        let reply = match error {
            Some(text) => Reply::error(text.to_string()),
            None => waiter.timeout_reply.clone(),
        };
        let _ = tx.send(Served {
            reply,
            write_seq: 0,
            counted: false,
            close: false,
        });
        true
    }

    /// Answers every blocked command with `error` and closes its connection after the reply
    /// (Redis's `disconnectAllBlockedClients`, when a primary becomes a replica).
    pub fn unblock_all(&self, error: &str) {
        let waiters: Vec<Arc<Waiter>> = lock(&self.queues)
            .values()
            .flat_map(|q| q.iter().cloned())
            .collect();
        for w in waiters {
            if let Some(tx) = w.slot().take() {
                let _ = tx.send(Served {
                    reply: Reply::error(error.to_string()),
                    write_seq: 0,
                    counted: false,
                    close: true,
                });
            }
        }
    }

    /// Keys with at least one waiter (INFO `total_blocking_keys`).
    pub fn blocking_keys(&self) -> usize {
        lock(&self.queues).len()
    }
}
