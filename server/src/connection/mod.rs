//! One task per connection: read, cut requests, execute them all, write the replies in one go.
//!
//! The loop is generic over the byte stream, so a TLS client (after its handshake) and a plain
//! one go through exactly the same code: limits, timeouts, blocking, pub/sub, CLIENT LIST.
//! The request loop without I/O is `buffers.rs`; a blocked command's wait is `blocked.rs`.

mod blocked;
mod buffers;

pub(crate) use blocked::Blocked;
use buffers::READ_CHUNK;
pub(crate) use buffers::{Buffers, End, Step};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::client::{Client, ClientHandle, Outbound, now_ms};
use crate::cmd::dispatch as cmd;
use crate::cmd::{BlockSpec, Outcome};
use crate::state::Shared;

/// Pending reply bytes at which replies are written before the rest of a pipeline runs.
const OUT_FLUSH_AT: usize = 256 * 1024;

/// What CLIENT LIST shows of a connection's socket, read from the TCP socket before TLS (if
/// any) wraps it.
pub struct SocketInfo {
    addr: std::net::SocketAddr,
    laddr: std::net::SocketAddr,
    fd: i64,
}

impl SocketInfo {
    /// The addresses and descriptor of an accepted socket; None when it is already gone.
    pub fn of(socket: &TcpStream) -> Option<Self> {
        Some(SocketInfo {
            addr: socket.peer_addr().ok()?,
            laddr: socket.local_addr().ok()?,
            fd: raw_fd(socket),
        })
    }
}

/// Serves one accepted connection, plain TCP or TLS, until it closes.
pub async fn serve<S>(shared: Arc<Shared>, socket: S, info: SocketInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = Arc::new(ClientHandle::new(
        shared.clients.next_id(),
        info.addr,
        info.laddr,
        info.fd,
        tx,
    ));
    shared
        .stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    let authenticated = shared.acl.default_open();
    let mut client = Client::new(handle.clone(), authenticated);
    shared.clients.insert(handle.clone());
    let mut conn = Conn {
        shared: &shared,
        socket,
        io: Buffers::new(),
    };
    // Even if a command panics and ends this task, the client must not stay registered
    // (a ghost in CLIENT LIST, subscriptions receiving messages nobody reads).
    let _registered = Registered {
        shared: shared.clone(),
        id: handle.id,
    };
    // The loop ends either way; how it ended changes nothing in the clean-up.
    let _ = conn.run(&mut client, &mut rx).await;
    cmd::disconnect_cleanup(&shared, &mut client);
}

/// Removes a client from the registry and the pub/sub registry when its task ends.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        crate::keyspace::lock(&self.shared.pubsub).remove_client(self.id);
        if self.shared.monitors.any() {
            self.shared.monitors.remove(self.id);
        }
        self.shared.clients.remove(self.id);
    }
}

#[cfg(unix)]
fn raw_fd(socket: &TcpStream) -> i64 {
    use std::os::fd::AsRawFd;
    i64::from(socket.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd(_: &TcpStream) -> i64 {
    -1
}

struct Conn<'a, S> {
    shared: &'a Arc<Shared>,
    socket: S,
    io: Buffers,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    async fn run(
        &mut self,
        client: &mut Client,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
    ) -> Result<(), End> {
        let handle = client.handle.clone();
        loop {
            if handle.is_killed() {
                return Err(End::Closed);
            }
            self.process(client, rx).await?;
            // A request cut short by the end of the read often has its rest already waiting
            // (a pipelined batch of large values arrives in pieces): reading it now sends the
            // replies of the whole batch in one write, as Redis, which reads later, does.
            while self.io.partial_request() && self.read_if_ready().await {
                self.io.check_query_limit(self.shared)?;
                self.process(client, rx).await?;
            }
            // Replies to a pipelined batch go out after the other connections' ready requests
            // have run, as Redis writes every client's replies at the end of its event-loop
            // turn: a client with many connections then wakes once for many replies, where
            // each wakeup costs the writer more than the rest of the write. A lone request is
            // answered at once: with nothing else ready the yield costs a poll of the I/O
            // driver, more than the wakeup it could save.
            let batch = std::mem::take(&mut self.io.ran) > 1;
            if batch {
                tokio::task::yield_now().await;
            }
            self.write_out(client, batch).await?;
            // A publisher whose next requests are already waiting would otherwise run on
            // before the subscribers it woke write a byte, and its messages would pile up
            // against their output limits. Redis writes to every client between two reads;
            // yielding lets the woken connections do the same.
            if std::mem::take(&mut self.io.delivered) {
                tokio::task::yield_now().await;
            }
            self.io.check_query_limit(self.shared)?;
            self.io.release_burst_capacity();
            let idle_limit = self.idle_limit(client);
            // A kill arrives on `rx` too (and sets the flag checked above); the signal is for
            // a connection stuck writing. Waiting on it here would cost a Notify registration
            // and removal, each under its lock, per request.
            tokio::select! {
                read = self.read_more() => read?,
                msg = rx.recv() => self.io.outbound(msg, rx)?,
                () = sleep_until(idle_limit) => {
                    if self.idle_limit(client).is_some_and(|t| t <= tokio::time::Instant::now()) {
                        tracing::debug!(client = client.id(), "closing idle client");
                        return Err(End::Closed);
                    }
                }
            }
        }
    }

    /// When this client, idle since its last command, reaches `timeout` (Redis's rule: blocked
    /// and subscribed clients are never closed for idleness); None without a timeout.
    fn idle_limit(&self, client: &Client) -> Option<tokio::time::Instant> {
        let timeout = self.shared.config().timeout;
        if timeout == 0
            || client.handle.is_pubsub()
            || client.handle.monitoring.load(Ordering::Relaxed)
        {
            return None;
        }
        let idle_ms =
            now_ms().saturating_sub(client.handle.last_interaction_ms.load(Ordering::Relaxed));
        let left = (timeout * 1000).saturating_sub(idle_ms);
        Some(tokio::time::Instant::now() + std::time::Duration::from_millis(left))
    }

    /// Executes every complete request in the read buffer, appending replies to `out`.
    async fn process(
        &mut self,
        client: &mut Client,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
    ) -> Result<(), End> {
        loop {
            let mut step = self.io.run_next(self.shared, client, rx)?;
            while let Step::Ran(Outcome::Paused { argv, write_like }) = step {
                self.flush(client).await?;
                self.wait_unpaused(client, write_like).await?;
                step = self.io.run_request(self.shared, client, rx, argv)?;
            }
            match step {
                Step::NeedMore => return Ok(()),
                Step::Ran(Outcome::Continue | Outcome::Paused { .. }) => {}
                Step::Ran(Outcome::Block(spec)) => self.block(client, rx, spec).await?,
                Step::Ran(Outcome::Wait(spec)) => {
                    self.flush(client).await?;
                    let reply =
                        crate::replication::wait::wait(self.shared, &client.handle, spec).await;
                    client.end_batch();
                    cmd::write_reply(self.shared, client, &reply, &mut self.io.out);
                }
                Step::Ran(Outcome::Replica(start)) => {
                    self.flush(client).await?;
                    let pending = std::mem::take(&mut self.io.inbuf);
                    let handle = client.handle.clone();
                    crate::replication::primary::serve(
                        self.shared,
                        &mut self.socket,
                        &handle,
                        start,
                        pending,
                    )
                    .await;
                    return Err(End::Closed);
                }
                Step::Ran(Outcome::Close) | Step::ProtocolError => {
                    self.flush(client).await?;
                    return Err(End::Closed);
                }
            }
            // A long pipeline of large replies is written as it grows: a client that does not
            // read then stalls its own connection (TCP backpressure) instead of growing memory.
            if self.io.out.len() >= OUT_FLUSH_AT {
                client.end_batch();
                self.flush(client).await?;
            }
        }
    }

    /// Waits while CLIENT PAUSE holds back a command (`write_like`: one a WRITE pause
    /// covers), counted as a blocked client as Redis counts a postponed one. Input that
    /// arrives meanwhile is buffered, under the query buffer limit.
    async fn wait_unpaused(&mut self, client: &Client, write_like: bool) -> Result<(), End> {
        let shared = self.shared;
        let handle = &client.handle;
        shared
            .blocking
            .blocked_clients
            .fetch_add(1, Ordering::Relaxed);
        handle.blocked.store(true, Ordering::Relaxed);
        let result = loop {
            let changed = shared.pause.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(end) = shared.pause.postpones(|| write_like) else {
                break Ok(());
            };
            let left = end.saturating_sub(now_ms());
            let until = tokio::time::Instant::now() + std::time::Duration::from_millis(left);
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(until) => {}
                () = handle.kill_signal.notified() => break Err(End::Closed),
                read = self.read_more() => {
                    if let Err(e) = read.and_then(|()| self.io.check_query_limit(shared)) {
                        break Err(e);
                    }
                }
            }
            if handle.is_killed() {
                break Err(End::Closed);
            }
        };
        handle.blocked.store(false, Ordering::Relaxed);
        shared
            .blocking
            .blocked_clients
            .fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// Waits for a blocked command to be served, to time out, or for the client to go away.
    async fn block(
        &mut self,
        client: &mut Client,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
        spec: BlockSpec,
    ) -> Result<(), End> {
        let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut blocked = Blocked::register(self.shared, client, spec);
        self.flush(client).await?;
        let result = loop {
            tokio::select! {
                served = &mut blocked.reply_rx => break Ok(served.ok()),
                _ = sleep_until(deadline) => {
                    if let Some(timed_out) = blocked.time_out() {
                        break Ok(Some(timed_out));
                    }
                    // Served at the same moment: the reply is already in the channel.
                    break Ok((&mut blocked.reply_rx).await.ok());
                }
                read = self.read_more() => {
                    if let Err(e) = read {
                        break Err(e);
                    }
                    if let Err(e) = self.io.check_query_limit(self.shared) {
                        break Err(e);
                    }
                }
                msg = rx.recv() => {
                    if let Err(e) = self.io.outbound(msg, rx) {
                        break Err(e);
                    }
                    if let Err(e) = self.flush(client).await {
                        break Err(e);
                    }
                }
            }
        };
        let (answer, end) = match result {
            Ok(answer) => (answer, Ok(())),
            Err(e) => (None, Err(e)),
        };
        let close = answer.as_ref().is_some_and(|a| a.close);
        blocked.finish(self.shared, client, answer, &mut self.io.out);
        if close {
            self.flush(client).await?;
            return Err(End::Closed);
        }
        end
    }

    async fn read_more(&mut self) -> Result<(), End> {
        let inbuf = &mut self.io.inbuf;
        let (len, free) = (inbuf.len(), inbuf.capacity() - inbuf.len());
        if len <= READ_CHUNK / 4 && free < READ_CHUNK - len {
            // What was read before has been cut into requests, but for a partial one: once
            // those requests are dropped, the partial one moves to the start of the buffer
            // without an allocation, and the read gets room for a whole pipelined batch, as
            // Redis reads 16 KiB at a time. Reads into the few KiB left at the end of the
            // buffer would split batches into more, smaller reads.
            inbuf.reserve(READ_CHUNK - len);
        } else if free < READ_CHUNK / 4 {
            let want = self
                .io
                .reader
                .bulk_bytes_wanted(inbuf)
                .unwrap_or(0)
                .clamp(READ_CHUNK, 1 << 20);
            inbuf.reserve(want);
            self.io.inbuf_used += want;
        }
        match self.socket.read_buf(&mut self.io.inbuf).await {
            Ok(0) | Err(_) => Err(End::Gone),
            Ok(n) => {
                self.io.inbuf_used += n;
                self.shared.stats.reads_processed.add(1);
                self.shared.stats.net_input_bytes.add(n as u64);
                Ok(())
            }
        }
    }

    /// Reads what the socket holds already, without waiting; whether that was anything. An
    /// end of input or an error is left for the next waiting read to meet, after the replies
    /// so far are written.
    async fn read_if_ready(&mut self) -> bool {
        let read = self.read_more();
        tokio::pin!(read);
        std::future::poll_fn(|cx| match read.as_mut().poll(cx) {
            std::task::Poll::Ready(r) => std::task::Poll::Ready(r.is_ok()),
            std::task::Poll::Pending => std::task::Poll::Ready(false),
        })
        .await
    }

    /// Writes `out`; a kill (CLIENT KILL, output limit, shutdown) interrupts a write that a
    /// client that stopped reading would otherwise hold up forever.
    ///
    /// `client-output-buffer-limit normal` applies to what the socket has not taken yet: at or
    /// above `hard`, or at or above `soft` for `soft_seconds`, the client is closed, as Redis
    /// closes it. Redis's default, `0 0 0`, sets no limit: a client that stops reading then
    /// only stalls itself, since its requests are no longer read either. Subscribers are held
    /// to the pubsub class as messages are queued for them instead.
    async fn flush(&mut self, client: &Client) -> Result<(), End> {
        self.write_out(client, false).await
    }

    /// [`Conn::flush`], told whether the other connections had their turn since this one's
    /// requests ran (the group commit in `wait_durable` then has what its own yield would
    /// gather).
    async fn write_out(&mut self, client: &Client, yielded: bool) -> Result<(), End> {
        if self.io.out.is_empty() {
            return Ok(());
        }
        self.wait_durable(client.write_seq, yielded).await?;
        let n = self.io.out.len();
        let handle = &client.handle;
        let limit = self.shared.config().output_limit_normal;
        let limited = !handle.is_pubsub() && (limit.hard > 0 || limit.soft > 0);
        let over = |pending: usize, bound: u64| bound > 0 && pending as u64 >= bound;
        let mut soft_deadline = None;
        let mut written = 0;
        while written < n {
            if limited && over(n - written, limit.hard) {
                return Err(self.output_limit_reached(client));
            }
            if limited && soft_deadline.is_none() && over(n - written, limit.soft) {
                let allowed = std::time::Duration::from_secs(limit.soft_seconds);
                soft_deadline = Some(tokio::time::Instant::now() + allowed);
            }
            // A subscriber over its soft limit is looked at again when its time is up, even
            // if no message comes to check it.
            let pubsub_deadline = if handle.is_pubsub() {
                self.shared
                    .pubsub_limits
                    .soft_deadline(&handle.soft_limit_since_ms)
            } else {
                None
            };
            // Biased, so a write that completes at once (the usual case) never registers
            // for the kill signal.
            let result = tokio::select! {
                biased;
                r = self.socket.write(&self.io.out[written..]) => r,
                () = handle.kill_signal.notified() => return Err(End::Closed),
                () = sleep_until(soft_deadline) => {
                    if over(n - written, limit.soft) {
                        return Err(self.output_limit_reached(client));
                    }
                    soft_deadline = None;
                    continue;
                }
                () = sleep_until(pubsub_deadline) => {
                    let used = handle.queued_bytes.load(Ordering::Relaxed) as u64;
                    if self
                        .shared
                        .pubsub_limits
                        .exceeded(used, &handle.soft_limit_since_ms)
                    {
                        crate::publish::disconnect_over_limit(self.shared, &[handle.id]);
                        return Err(End::Closed);
                    }
                    continue;
                }
            };
            let Ok(sent @ 1..) = result else {
                self.io.out.clear();
                return Err(End::Gone);
            };
            written += sent;
            self.io.sent(handle, sent);
            self.shared.stats.writes_processed.add(1);
            // Counted as the socket takes them, so INFO shows a stalled client's progress too.
            self.shared.stats.net_output_bytes.add(sent as u64);
        }
        // A TLS stream may keep the tail of the encrypted records when the socket was full;
        // only a flush sends it (a no-op on plain TCP).
        let flushed = tokio::select! {
            biased;
            r = self.socket.flush() => r,
            () = handle.kill_signal.notified() => return Err(End::Closed),
        };
        if flushed.is_err() {
            self.io.out.clear();
            return Err(End::Gone);
        }
        self.io.out.clear();
        Ok(())
    }

    /// Closes a normal client over its output buffer limit, counted as Redis counts it.
    fn output_limit_reached(&self, client: &Client) -> End {
        self.shared
            .stats
            .client_output_limit_disconnections
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            client = client.id(),
            "closing a client over its output buffer limit (client-output-buffer-limit normal)"
        );
        End::Closed
    }

    /// Holds replies back until the client's latest write, and the last change to every
    /// stream they show, is safe enough to acknowledge or show: in
    /// the operating system's buffers (survives a crash of the process), and under
    /// `appendfsync always` on disk. One write and one fsync cover every client waiting
    /// meanwhile (group commit); `yielded` says the others had their turn since this
    /// connection's requests ran.
    async fn wait_durable(&self, seq: u64, yielded: bool) -> Result<(), End> {
        let store = &self.shared.store;
        // Two atomic loads for the usual reader, whose streams' last changes are safe.
        if seq == 0 || seq <= store.safe_seq() {
            return Ok(());
        }
        if store.policy() != brooklet_persistence::FsyncPolicy::Always {
            if !yielded && store.in_os_seq() < seq {
                // Let the other connections with requests waiting run them first: one write
                // then hands all their appends to the OS, instead of one write per reply
                // (Redis writes its AOF once per event-loop turn for the same reason).
                tokio::task::yield_now().await;
            }
            // A full disk keeps the write, and it is handed over again once there is room
            // (the reply waits); after a fault that needs a restart it never will be.
            let mut pause = std::time::Duration::from_millis(10);
            loop {
                match store.flush_to_os(seq) {
                    Ok(()) => return Ok(()),
                    Err(e) if store.failed() => {
                        tracing::error!(
                            "closing a client whose replies wait for writes that could not be handed to the OS: {e}"
                        );
                        return Err(End::Closed);
                    }
                    Err(_) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(std::time::Duration::from_secs(1));
                    }
                }
            }
        }
        let mut durable = self.shared.durable.subscribe();
        if *durable.borrow() < seq {
            // As above: the other connections with requests waiting run them first, so the
            // fsync asked for next covers their writes too, as Redis fsyncs its AOF once per
            // event-loop turn.
            if !yielded {
                tokio::task::yield_now().await;
            }
            store.request_sync(seq);
        }
        loop {
            if *durable.borrow_and_update() >= seq {
                return Ok(());
            }
            if store.failed() {
                // Never acknowledge, or show, what may not be on disk: drop the connection
                // instead.
                tracing::error!(
                    "closing a client whose replies wait for writes that could not be made durable"
                );
                return Err(End::Closed);
            }
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(1), durable.changed()).await;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
