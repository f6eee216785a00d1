//! The server's side of the pub/sub registry: a client handle as a subscriber.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use brooklet_pubsub::{Delivery, Protocol, Subscriber};

use crate::client::ClientHandle;

/// A connected client as the pub/sub registry sees it.
#[derive(Clone, Debug)]
pub struct ClientSubscriber {
    /// The client.
    pub handle: Arc<ClientHandle>,
    /// Hard output limit in bytes at subscription time (0 = none).
    pub hard_limit: usize,
}

impl Subscriber for ClientSubscriber {
    fn id(&self) -> u64 {
        self.handle.id
    }

    fn protocol(&self) -> Protocol {
        if self.handle.resp3.load(Ordering::Relaxed) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    fn deliver(&self, frame: &Bytes) -> Delivery {
        let queued = self.handle.queued_bytes.load(Ordering::Relaxed);
        if self.hard_limit > 0 && queued + frame.len() > self.hard_limit {
            return Delivery::OverLimit;
        }
        if self.handle.push_frame(frame.clone()) {
            Delivery::Accepted
        } else {
            Delivery::OverLimit
        }
    }
}
