//! One publish's deliveries, collected under the registry's lock and handed out after it.

use bytes::Bytes;

use crate::encode::Protocol;
use crate::subscriber::{Delivery, Subscriber};

/// The deliveries one PUBLISH or SPUBLISH produced: each receiver's handle paired with its
/// frame. Frames are shared: every receiver of the same kind and protocol holds the same
/// `Bytes`.
#[must_use = "a fanout does nothing until delivered"]
#[derive(Debug)]
pub struct Fanout<S> {
    deliveries: Vec<(S, Bytes)>,
}

/// What a delivered publish reports back to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Receivers as Redis counts them (PUBLISH's reply): one per delivery, so a client reached
    /// through the channel and two patterns counts three times; over-limit clients count too.
    pub receivers: usize,
    /// Ids of clients that answered [`Delivery::OverLimit`], ascending, each once. The registry
    /// keeps them subscribed: the server disconnects them, and its disconnect path calls
    /// [`Registry::remove_client`](crate::Registry::remove_client) like for any disconnect.
    pub over_limit: Vec<u64>,
}

impl<S: Subscriber> Fanout<S> {
    pub(crate) fn new() -> Self {
        Self {
            deliveries: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, subscriber: &S, frame: Bytes) {
        self.deliveries.push((subscriber.clone(), frame));
    }

    /// Number of deliveries (the receiver count PUBLISH replies with).
    pub fn receivers(&self) -> usize {
        self.deliveries.len()
    }

    /// Whether nobody receives this message.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }

    /// The (subscriber, frame) pairs in delivery order: channel subscribers in subscription
    /// order first, then pattern subscribers pattern by pattern.
    pub fn deliveries(&self) -> &[(S, Bytes)] {
        &self.deliveries
    }

    /// Hands every frame to its subscriber and reports the receiver count and who is over limit.
    pub fn deliver(self) -> PublishOutcome {
        let mut outcome = Delivering::default();
        for (subscriber, frame) in &self.deliveries {
            outcome.deliver(subscriber, frame);
        }
        outcome.finish()
    }
}

/// A publish being handed out, subscriber by subscriber, counting what [`PublishOutcome`]
/// reports.
#[derive(Default)]
pub(crate) struct Delivering {
    receivers: usize,
    over_limit: Vec<u64>,
}

impl Delivering {
    /// Hands `frame` to `subscriber`.
    pub(crate) fn deliver<S: Subscriber>(&mut self, subscriber: &S, frame: &Bytes) {
        self.receivers += 1;
        if subscriber.deliver(frame) == Delivery::OverLimit {
            self.over_limit.push(subscriber.id());
        }
    }

    /// The receiver count, and each client over its limit once, ascending.
    pub(crate) fn finish(mut self) -> PublishOutcome {
        self.over_limit.sort_unstable();
        self.over_limit.dedup();
        PublishOutcome {
            receivers: self.receivers,
            over_limit: self.over_limit,
        }
    }
}

/// One frame per protocol, encoded the first time a subscriber of that protocol needs it, so a
/// channel with only RESP2 subscribers never pays for a RESP3 encoding.
#[derive(Default)]
pub(crate) struct LazyFrames {
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl LazyFrames {
    pub(crate) fn get(
        &mut self,
        protocol: Protocol,
        encode: impl FnOnce(Protocol) -> Bytes,
    ) -> &Bytes {
        let slot = match protocol {
            Protocol::Resp2 => &mut self.resp2,
            Protocol::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| encode(protocol))
    }
}
