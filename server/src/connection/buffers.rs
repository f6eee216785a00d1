//! The I/O-free half of a connection: the read buffer, cutting requests out of it, running
//! them, and the replies waiting to be written. TCP, TLS and the in-process session share it.

use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

use brooklet_resp::{Limits, RequestReader};

use crate::client::{Client, ClientHandle, Outbound, now_ms};
use crate::cmd::Outcome;
use crate::cmd::dispatch as cmd;
use crate::state::Shared;

/// Read buffer growth step.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// Buffer capacity an idle connection keeps; what a burst grew its buffers beyond is given
/// back once the burst is over.
const IDLE_CAPACITY: usize = 64 * 1024;

/// Why a connection loop ended.
pub(crate) enum End {
    /// Peer closed or the socket failed.
    Gone,
    /// We decided to close (QUIT, protocol error, kill, limit).
    Closed,
}

/// A connection's state apart from its socket: the read buffer and the request being cut out
/// of it, and the replies waiting to be written. The TCP connection below and an in-process
/// [`Session`](crate::embedded::Session) run requests through the same methods.
pub(crate) struct Buffers {
    /// Bytes read and not yet cut into requests.
    pub inbuf: BytesMut,
    /// Replies (and pub/sub frames) not yet written.
    pub out: BytesMut,
    /// The request reader, holding a request that arrived in part.
    pub(super) reader: RequestReader,
    /// Bytes of pub/sub frames moved into `out` and not yet written: they still count in the
    /// handle's `queued_bytes` (the output buffer limits see them) until the write completes.
    out_frames: usize,
    /// Bytes read into, or reserved in, `inbuf` since it was allocated: an upper bound on how
    /// far it may have grown, which its capacity does not show once requests were cut from it.
    pub(super) inbuf_used: usize,
    /// Whether this batch's commands left a subscriber with a backlog (see `serve`).
    pub(super) delivered: bool,
    /// Requests run since the connection last took this count.
    pub(super) ran: u32,
}

/// What one turn of the request loop did.
pub(crate) enum Step {
    /// No complete request is buffered.
    NeedMore,
    /// A request ran; the connection acts on its outcome.
    Ran(Outcome),
    /// The input broke the protocol: the error reply is in `out`, and the connection closes
    /// once it is written.
    ProtocolError,
}

impl Buffers {
    /// Empty buffers for a new connection.
    pub fn new() -> Self {
        Buffers {
            inbuf: BytesMut::with_capacity(READ_CHUNK),
            out: BytesMut::with_capacity(READ_CHUNK),
            reader: RequestReader::new(),
            out_frames: 0,
            inbuf_used: 0,
            delivered: false,
            ran: 0,
        }
    }

    /// Appends bytes received from the client to the read buffer.
    pub fn received(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
        self.inbuf_used += bytes.len();
    }

    /// Whether the read buffer ends in a request not yet complete.
    pub fn partial_request(&self) -> bool {
        !self.inbuf.is_empty() || self.reader.in_request()
    }

    /// Gives back what a burst (a long pipeline, a large value) grew the buffers to, once
    /// nothing is in flight: thousands of idle clients must not each keep the largest request
    /// and reply they ever had (Redis shrinks idle clients' query buffers for the same reason).
    /// A client that keeps sending large requests pays one allocation per burst.
    pub fn release_burst_capacity(&mut self) {
        if self.inbuf.is_empty() && !self.reader.in_request() && self.inbuf_used > IDLE_CAPACITY {
            self.inbuf = BytesMut::with_capacity(READ_CHUNK);
            self.inbuf_used = 0;
        }
        if self.out.is_empty() && self.out.capacity() > IDLE_CAPACITY {
            self.out = BytesMut::with_capacity(READ_CHUNK);
        }
    }

    /// Cuts the next complete request out of the read buffer and runs it, appending its reply
    /// (after any message queued for this client meanwhile) to `out`.
    pub fn run_next(
        &mut self,
        shared: &Arc<Shared>,
        client: &mut Client,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
    ) -> Result<Step, End> {
        let limits = Limits {
            max_bulk_len: shared.config().proto_max_bulk_len,
            unauthenticated: !client.authenticated && !shared.acl.default_open(),
        };
        let argv = match self.reader.next_request(&mut self.inbuf, limits) {
            Ok(Some(argv)) => argv,
            Ok(None) => {
                client.end_batch();
                return Ok(Step::NeedMore);
            }
            Err(e) => {
                let reply = brooklet_resp::Reply::error(e.to_string());
                cmd::write_reply(shared, client, &reply, &mut self.out);
                tracing::debug!(client = client.id(), "protocol error: {e}");
                return Ok(Step::ProtocolError);
            }
        };
        // Once per batch, as Redis sets it once per read.
        if client.clock.is_none() {
            client
                .handle
                .last_interaction_ms
                .store(now_ms(), Ordering::Relaxed);
        }
        // A kill (CLIENT KILL, shutdown) stops a pipeline between two commands.
        if client.handle.is_killed() {
            return Err(End::Closed);
        }
        self.run_request(shared, client, rx, argv)
    }

    /// Runs one request already cut from the read buffer (or one CLIENT PAUSE held back),
    /// appending its reply to `out`.
    pub fn run_request(
        &mut self,
        shared: &Arc<Shared>,
        client: &mut Client,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
        mut argv: Vec<bytes::Bytes>,
    ) -> Result<Step, End> {
        // Only a subscriber is sent messages. Those queued before the command go before its
        // reply; those it caused (a PUBLISH to its own channel, a keyspace event it watches)
        // after the reply, or after the whole EXEC array, as Redis 7.2+ defers them. Not
        // after an UNSUBSCRIBE's (or RESET's) reply, though: a message that came while it
        // ran belongs to the subscription it ended, and a client out of pub/sub mode would
        // take it for the reply to its next command.
        let subscribed = client.handle.is_pubsub();
        let mut reply_at = None;
        if subscribed {
            self.queued_messages(rx, None)?;
            if argv
                .first()
                .is_some_and(|name| is_subscription_command(name))
            {
                reply_at = Some(self.out.len());
            }
        }
        let outcome = cmd::execute(shared, client, &mut argv, &mut self.out);
        self.reader.recycle(argv);
        self.ran = self.ran.saturating_add(1);
        if !matches!(outcome, Outcome::Continue) {
            client.end_batch();
        }
        if subscribed || client.handle.is_pubsub() {
            self.queued_messages(rx, reply_at)?;
        }
        self.delivered |= crate::subscriber::take_delivered();
        Ok(Step::Ran(outcome))
    }

    /// Moves the frames already queued for this client into `out`: at its end, or in front of
    /// the reply starting at `before`. A no-op (one failed `try_recv`) when nothing is queued.
    fn queued_messages(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
        before: Option<usize>,
    ) -> Result<(), End> {
        let Ok(mut msg) = rx.try_recv() else {
            return Ok(());
        };
        let reply = before.map(|at| self.out.split_off(at));
        loop {
            match msg {
                Outbound::Frame(frame) => {
                    self.out_frames += frame.len();
                    self.out.extend_from_slice(&frame);
                }
                Outbound::Kill => return Err(End::Closed),
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        if let Some(reply) = reply {
            self.out.unsplit(reply);
        }
        Ok(())
    }

    /// Appends a message sent from elsewhere, and every other one already queued, to `out`.
    pub fn outbound(
        &mut self,
        msg: Option<Outbound>,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
    ) -> Result<(), End> {
        let mut next = msg;
        loop {
            match next {
                Some(Outbound::Frame(frame)) => {
                    self.out_frames += frame.len();
                    self.out.extend_from_slice(&frame);
                }
                Some(Outbound::Kill) | None => return Err(End::Closed),
            }
            // Bound one batch so a flood cannot grow the write buffer without limit.
            if self.out.len() > 1 << 20 {
                return Ok(());
            }
            next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(_) => return Ok(()),
            };
        }
    }

    /// Counts `sent` bytes from the front of `out` as written: pub/sub frames leave the output
    /// limit's count as the socket takes them, so a client that keeps reading is never held to
    /// a batch it has not been sent yet.
    pub fn sent(&mut self, handle: &ClientHandle, sent: usize) {
        let frames = sent.min(self.out_frames);
        if frames > 0 {
            handle.queued_bytes.fetch_sub(frames, Ordering::Relaxed);
            self.out_frames -= frames;
        }
    }

    /// Closes a client whose unprocessed input passed `client-query-buffer-limit`.
    pub fn check_query_limit(&self, shared: &Shared) -> Result<(), End> {
        let limit = shared.config().client_query_buffer_limit;
        if (self.inbuf.len() + self.reader.buffered_bytes()) as u64 > limit {
            shared
                .stats
                .client_query_buffer_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("closing client that reached max query buffer length ({limit} bytes)");
            return Err(End::Closed);
        }
        Ok(())
    }
}

/// Whether a command ends subscriptions (its messages must not follow its reply).
fn is_subscription_command(name: &[u8]) -> bool {
    ["unsubscribe", "punsubscribe", "sunsubscribe", "reset"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
}
