//! A blocked command (XREAD / XREADGROUP BLOCK) as its connection waits for it.

use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

use crate::blocking::{Served, Waiter};
use crate::client::Client;
use crate::cmd::BlockSpec;
use crate::cmd::dispatch as cmd;
use crate::state::Shared;

/// A blocked command waiting to be served.
pub(crate) struct Blocked {
    /// Its entry in the blocking queues.
    pub waiter: Arc<Waiter>,
    /// Where the writer that serves it sends the reply.
    pub reply_rx: oneshot::Receiver<Served>,
}

impl Blocked {
    /// Registers a command that found nothing, then re-runs it once: data may have arrived
    /// between the command's look and the registration.
    pub fn register(shared: &Arc<Shared>, client: &Client, spec: BlockSpec) -> Blocked {
        // Copied: a command blocked with BLOCK 0 may wait for as long as the connection lives.
        let keep = |args: Vec<bytes::Bytes>| args.iter().map(crate::keyspace::keep).collect();
        let (waiter, reply_rx) = Waiter::new(
            client.id(),
            client.db,
            keep(spec.keys),
            keep(spec.argv),
            client.resp3,
            spec.timeout_reply,
        );
        shared.blocking.register(&waiter);
        client.handle.blocked.store(true, Ordering::Relaxed);
        cmd::rerun_waiter(shared, &waiter);
        Blocked { waiter, reply_rx }
    }

    /// The timeout's answer, unless a writer served the waiter at the same moment (then its
    /// reply is already in the channel, and the caller takes that instead).
    pub fn time_out(&self) -> Option<Served> {
        self.waiter.slot().take().map(|_| Served {
            reply: self.waiter.timeout_reply.clone(),
            write_seq: 0,
            counted: false,
            close: false,
        })
    }

    /// Leaves every blocking queue, and answers with `served` if there is an answer (there is
    /// none when the client went away).
    pub fn finish(
        self,
        shared: &Shared,
        client: &mut Client,
        served: Option<Served>,
        out: &mut BytesMut,
    ) {
        self.waiter.slot().take();
        shared.blocking.unregister(&self.waiter);
        client.handle.blocked.store(false, Ordering::Relaxed);
        if let Some(served) = served {
            if !served.counted {
                let idx = client.handle.last_cmd.load(Ordering::Relaxed);
                let failed = matches!(served.reply, brooklet_resp::Reply::Error(_));
                cmd::count_unblocked(shared, idx, failed);
            }
            client.write_seq = client.write_seq.max(served.write_seq);
            cmd::write_reply(shared, client, &served.reply, out);
        }
    }
}
