//! What the registry needs from a subscriber, and the per-channel list of subscribers.

use bytes::Bytes;
use hashbrown::HashMap;

use crate::encode::Protocol;

/// A subscribed client as the registry sees it: a cheap handle (typically an `Arc` around the
/// client's outbound queue) that the server supplies and the registry clones into every list
/// the client joins.
pub trait Subscriber: Clone {
    /// The client's id, unique among live clients; the registry keys everything on it.
    fn id(&self) -> u64;

    /// The protocol the client speaks, so it gets the frame encoded for it.
    fn protocol(&self) -> Protocol;

    /// Queues one encoded frame for the client; must not block (it may run under the registry's
    /// lock). A handle that answered [`Delivery::OverLimit`] may be called again in the same
    /// publish (once per matching pattern) and should keep answering so.
    fn deliver(&self, frame: &Bytes) -> Delivery;
}

/// What a subscriber did with a frame it was handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued; the client will get it.
    Accepted,
    /// The client is over its output buffer limit and must be disconnected; the server decides
    /// the limit (and whether the frame was queued), the registry only reports the id.
    OverLimit,
}

/// The subscribers of one channel, pattern or shard channel, in subscription order, with O(1)
/// lookup and amortised O(1) removal by client id.
///
/// Slots of departed subscribers are left empty and compacted away once they outnumber the
/// live ones, so a mass disconnect costs O(subscribers) in total rather than per client, and
/// fan-out walks one contiguous `Vec`.
#[derive(Debug)]
pub(crate) struct SubscriberList<S> {
    slots: Vec<Option<S>>,
    /// Client id -> its index in `slots`.
    index: HashMap<u64, usize>,
}

impl<S: Subscriber> SubscriberList<S> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Appends `sub` unless a subscriber with its id is already in; returns whether it was added.
    pub(crate) fn insert(&mut self, sub: &S) -> bool {
        let id = sub.id();
        if self.index.contains_key(&id) {
            return false;
        }
        self.index.insert(id, self.slots.len());
        self.slots.push(Some(sub.clone()));
        true
    }

    /// Removes the subscriber with this id; returns whether it was in.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.index.remove(&id) else {
            return false;
        };
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = None;
        }
        if self.slots.len() >= 8 && self.index.len() * 2 < self.slots.len() {
            self.compact();
        }
        true
    }

    /// Number of subscribers.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no subscriber is left (the owner then drops the whole entry).
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Subscribers in subscription order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &S> {
        self.slots.iter().flatten()
    }

    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        for (slot, sub) in self.slots.iter().enumerate() {
            if let Some(sub) = sub {
                self.index.insert(sub.id(), slot);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// A test subscriber: records frames, reports over-limit past `limit` frames.
    #[derive(Clone, Debug)]
    pub(crate) struct Inbox {
        pub(crate) id: u64,
        pub(crate) protocol: Protocol,
        pub(crate) limit: usize,
        pub(crate) frames: Rc<RefCell<Vec<Bytes>>>,
    }

    impl Inbox {
        pub(crate) fn new(id: u64, protocol: Protocol) -> Self {
            Self::with_limit(id, protocol, usize::MAX)
        }

        pub(crate) fn with_limit(id: u64, protocol: Protocol, limit: usize) -> Self {
            Self {
                id,
                protocol,
                limit,
                frames: Rc::default(),
            }
        }

        pub(crate) fn frames(&self) -> Vec<Bytes> {
            self.frames.borrow().clone()
        }
    }

    impl Subscriber for Inbox {
        fn id(&self) -> u64 {
            self.id
        }

        fn protocol(&self) -> Protocol {
            self.protocol
        }

        fn deliver(&self, frame: &Bytes) -> Delivery {
            let mut frames = self.frames.borrow_mut();
            if frames.len() >= self.limit {
                return Delivery::OverLimit;
            }
            frames.push(frame.clone());
            Delivery::Accepted
        }
    }

    fn ids(list: &SubscriberList<Inbox>) -> Vec<u64> {
        list.iter().map(|s| s.id).collect()
    }

    #[test]
    fn keeps_subscription_order_and_rejects_duplicates() {
        let mut list = SubscriberList::new();
        for id in [3, 1, 2] {
            assert!(list.insert(&Inbox::new(id, Protocol::Resp2)));
        }
        assert!(!list.insert(&Inbox::new(1, Protocol::Resp2)));
        assert_eq!(ids(&list), [3, 1, 2]);
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn removal_survives_compaction_and_keeps_order() {
        let mut list = SubscriberList::new();
        for id in 0..100 {
            list.insert(&Inbox::new(id, Protocol::Resp2));
        }
        for id in (0..100).filter(|id| id % 3 != 0) {
            assert!(list.remove(id));
        }
        assert!(!list.remove(1));
        let expected: Vec<u64> = (0..100).filter(|id| id % 3 == 0).collect();
        assert_eq!(ids(&list), expected);
        assert!(list.slots.len() < 100, "compaction should have run");
        // Indexes still point at the right slots after compaction.
        for id in expected {
            assert!(list.remove(id));
        }
        assert!(list.is_empty());
        assert_eq!(list.iter().count(), 0);
    }
}
