//! The registry: who is subscribed to what, in both directions.

use bytes::Bytes;
use hashbrown::HashMap;

use crate::encode::{encode_message, encode_pmessage, encode_smessage};
use crate::fanout::{Fanout, LazyFrames};
use crate::glob::glob_match;
use crate::subscriber::{Subscriber, SubscriberList};

/// The result of one subscribe or unsubscribe, as the confirmation frame needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionChange {
    /// Whether anything changed: a new subscription, or an existing one removed.
    pub changed: bool,
    /// The client's count after the change, the number its confirmation carries: channels plus
    /// patterns for (P)SUBSCRIBE/(P)UNSUBSCRIBE, shard channels for SSUBSCRIBE/SUNSUBSCRIBE.
    pub count: usize,
}

/// One subscription left by an unsubscribe-all, with the count to confirm it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The channel, pattern or shard channel left.
    pub name: Bytes,
    /// The client's count after leaving it (see [`SubscriptionChange::count`]).
    pub count: usize,
}

/// The three namespaces, which Redis keeps apart: `SUBSCRIBE a` and `SSUBSCRIBE a` are unrelated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// One client's side of the registry: what it is subscribed to, each name with a sequence
/// number so unsubscribe-all can answer in subscription order.
#[derive(Debug, Default)]
struct ClientSubscriptions {
    channels: HashMap<Bytes, u64>,
    patterns: HashMap<Bytes, u64>,
    shard_channels: HashMap<Bytes, u64>,
}

impl ClientSubscriptions {
    fn of(&mut self, kind: Kind) -> &mut HashMap<Bytes, u64> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }
}

/// Every channel, pattern and shard-channel subscription of the server, generic over the
/// server's subscriber handle `S`.
///
/// Both directions are indexed: name -> subscribers (for fan-out, in subscription order) and
/// client -> names (so unsubscribe-all and disconnect cost time proportional to that client's
/// own subscriptions). An entry disappears with its last subscriber, and a client with no
/// subscription left has no entry, so an idle registry holds nothing.
///
/// Names are copied on first subscription rather than kept as the caller's `Bytes`: a name
/// sliced out of a connection's read buffer would otherwise pin that whole buffer for as long
/// as the subscription lives.
///
/// # Locking
///
/// The registry does no locking of its own; the server keeps it behind one `std::sync::Mutex`
/// (no `.await` ever happens while holding it, so an async mutex would only add cost).
/// [`publish`](Self::publish) takes `&self` and does only lookups, pattern matching, the
/// encoding (one copy of the payload per protocol and kind) and handle clones; it returns a
/// [`Fanout`] to be delivered by the caller. Delivering under the lock (`publish(..).deliver()`
/// before unlocking) gives every subscriber the same global order of messages from concurrent
/// publishers, as Redis does, at the cost of a queue push per receiver inside the critical
/// section; delivering after unlocking shortens it further but two subscribers may then see two
/// concurrent publishers' messages interleaved differently (one publisher's own messages stay in
/// order either way). A single lock is used rather than shards because every publish must also
/// scan the patterns, which no channel shard owns.
#[derive(Debug)]
pub struct Registry<S> {
    channels: HashMap<Bytes, SubscriberList<S>>,
    patterns: HashMap<Bytes, SubscriberList<S>>,
    shard_channels: HashMap<Bytes, SubscriberList<S>>,
    clients: HashMap<u64, ClientSubscriptions>,
    /// Next subscription sequence number (orders a client's subscriptions).
    next_seq: u64,
}

impl<S: Subscriber> Default for Registry<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Subscriber> Registry<S> {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            channels: HashMap::new(),
            patterns: HashMap::new(),
            shard_channels: HashMap::new(),
            clients: HashMap::new(),
            next_seq: 0,
        }
    }

    /// SUBSCRIBE to one channel; `count` is the client's channels plus patterns.
    pub fn subscribe(&mut self, subscriber: &S, channel: &[u8]) -> SubscriptionChange {
        self.add(Kind::Channel, subscriber, channel)
    }

    /// UNSUBSCRIBE from one channel; `count` is the client's channels plus patterns.
    pub fn unsubscribe(&mut self, client: u64, channel: &[u8]) -> SubscriptionChange {
        self.remove(Kind::Channel, client, channel)
    }

    /// UNSUBSCRIBE with no arguments: leaves every channel, in subscription order. Empty when
    /// there was none; Redis then still confirms once, with a null name and
    /// [`subscription_count`](Self::subscription_count).
    pub fn unsubscribe_all(&mut self, client: u64) -> Vec<Unsubscribed> {
        self.remove_all(Kind::Channel, client)
    }

    /// PSUBSCRIBE to one pattern; `count` is the client's channels plus patterns.
    pub fn psubscribe(&mut self, subscriber: &S, pattern: &[u8]) -> SubscriptionChange {
        self.add(Kind::Pattern, subscriber, pattern)
    }

    /// PUNSUBSCRIBE from one pattern (compared byte for byte, not matched).
    pub fn punsubscribe(&mut self, client: u64, pattern: &[u8]) -> SubscriptionChange {
        self.remove(Kind::Pattern, client, pattern)
    }

    /// PUNSUBSCRIBE with no arguments: leaves every pattern, in subscription order.
    pub fn punsubscribe_all(&mut self, client: u64) -> Vec<Unsubscribed> {
        self.remove_all(Kind::Pattern, client)
    }

    /// SSUBSCRIBE to one shard channel; `count` is the client's shard channels only.
    pub fn ssubscribe(&mut self, subscriber: &S, channel: &[u8]) -> SubscriptionChange {
        self.add(Kind::Shard, subscriber, channel)
    }

    /// SUNSUBSCRIBE from one shard channel; `count` is the client's shard channels only.
    pub fn sunsubscribe(&mut self, client: u64, channel: &[u8]) -> SubscriptionChange {
        self.remove(Kind::Shard, client, channel)
    }

    /// SUNSUBSCRIBE with no arguments: leaves every shard channel, in subscription order.
    pub fn sunsubscribe_all(&mut self, client: u64) -> Vec<Unsubscribed> {
        self.remove_all(Kind::Shard, client)
    }

    /// Removes every subscription of a disconnecting client, in time proportional to its own
    /// subscriptions; returns how many there were.
    pub fn remove_client(&mut self, client: u64) -> usize {
        let Some(mut own) = self.clients.remove(&client) else {
            return 0;
        };
        let mut removed = 0;
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let table = self.table(kind);
            for (name, _) in own.of(kind).drain() {
                detach(table, &name, client);
                removed += 1;
            }
        }
        removed
    }

    /// PUBLISH: collects a `message` for every subscriber of `channel` and a `pmessage` per
    /// matching pattern per subscriber of it, each frame encoded once per protocol.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> Fanout<S> {
        let mut fanout = Fanout::new();
        if let Some(subscribers) = self.channels.get(channel) {
            fanout.reserve(subscribers.len());
            let mut frames = LazyFrames::default();
            for sub in subscribers.iter() {
                let frame = frames.get(sub.protocol(), |p| encode_message(p, channel, payload));
                fanout.push(sub, frame);
            }
        }
        // Like Redis, every pattern is tried against every published channel.
        for (pattern, subscribers) in &self.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            fanout.reserve(subscribers.len());
            let mut frames = LazyFrames::default();
            for sub in subscribers.iter() {
                let frame = frames.get(sub.protocol(), |p| {
                    encode_pmessage(p, pattern, channel, payload)
                });
                fanout.push(sub, frame);
            }
        }
        fanout
    }

    /// SPUBLISH: collects an `smessage` for every subscriber of the shard channel (patterns
    /// never see shard messages).
    pub fn spublish(&self, channel: &[u8], payload: &[u8]) -> Fanout<S> {
        let mut fanout = Fanout::new();
        if let Some(subscribers) = self.shard_channels.get(channel) {
            fanout.reserve(subscribers.len());
            let mut frames = LazyFrames::default();
            for sub in subscribers.iter() {
                let frame = frames.get(sub.protocol(), |p| encode_smessage(p, channel, payload));
                fanout.push(sub, frame);
            }
        }
        fanout
    }

    /// PUBSUB CHANNELS [pattern]: active channels (those with a subscriber), matching `pattern`
    /// if given; order unspecified (sort outside the lock if wanted).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        names_matching(&self.channels, pattern)
    }

    /// PUBSUB NUMSUB for one channel: its number of subscribers (patterns not counted).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, SubscriberList::len)
    }

    /// PUBSUB NUMPAT: the number of distinct patterns subscribed to by anyone.
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }

    /// PUBSUB SHARDCHANNELS [pattern]: active shard channels, matching `pattern` if given.
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        names_matching(&self.shard_channels, pattern)
    }

    /// PUBSUB SHARDNUMSUB for one shard channel: its number of subscribers.
    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.shard_channels
            .get(channel)
            .map_or(0, SubscriberList::len)
    }

    /// INFO `pubsub_channels`: channels with at least one subscriber.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// INFO `pubsub_patterns`: distinct patterns (same as [`numpat`](Self::numpat)).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// INFO `pubsubshard_channels`: shard channels with at least one subscriber.
    pub fn shard_channel_count(&self) -> usize {
        self.shard_channels.len()
    }

    /// The client's channels plus patterns (the count (P)SUBSCRIBE confirmations carry).
    pub fn subscription_count(&self, client: u64) -> usize {
        self.clients
            .get(&client)
            .map_or(0, |c| c.count(Kind::Channel))
    }

    /// The client's shard channels (the count SSUBSCRIBE confirmations carry).
    pub fn shard_subscription_count(&self, client: u64) -> usize {
        self.clients
            .get(&client)
            .map_or(0, |c| c.count(Kind::Shard))
    }

    /// Whether the client has any subscription of any kind (RESP2's subscribed mode).
    pub fn is_subscribed(&self, client: u64) -> bool {
        self.clients.contains_key(&client)
    }

    /// Whether nothing at all is subscribed (no channel, pattern, shard channel or client entry).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.patterns.is_empty()
            && self.shard_channels.is_empty()
            && self.clients.is_empty()
    }

    fn table(&mut self, kind: Kind) -> &mut HashMap<Bytes, SubscriberList<S>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn add(&mut self, kind: Kind, subscriber: &S, name: &[u8]) -> SubscriptionChange {
        let client = subscriber.id();
        let own = self.clients.entry(client).or_default();
        if own.of(kind).contains_key(name) {
            return SubscriptionChange {
                changed: false,
                count: own.count(kind),
            };
        }
        // The registry's own copy, shared by both indexes (see the type's docs).
        let name = Bytes::copy_from_slice(name);
        own.of(kind).insert(name.clone(), self.next_seq);
        self.next_seq += 1;
        let count = own.count(kind);
        self.table(kind)
            .entry(name)
            .or_insert_with(SubscriberList::new)
            .insert(subscriber);
        SubscriptionChange {
            changed: true,
            count,
        }
    }

    fn remove(&mut self, kind: Kind, client: u64, name: &[u8]) -> SubscriptionChange {
        let Some(own) = self.clients.get_mut(&client) else {
            return SubscriptionChange {
                changed: false,
                count: 0,
            };
        };
        let changed = own.of(kind).remove(name).is_some();
        let count = own.count(kind);
        if own.is_empty() {
            self.clients.remove(&client);
        }
        if changed {
            detach(self.table(kind), name, client);
        }
        SubscriptionChange { changed, count }
    }

    fn remove_all(&mut self, kind: Kind, client: u64) -> Vec<Unsubscribed> {
        let Some(own) = self.clients.get_mut(&client) else {
            return Vec::new();
        };
        let mut names: Vec<(Bytes, u64)> = own.of(kind).drain().collect();
        let mut count = own.count(kind) + names.len();
        if own.is_empty() {
            self.clients.remove(&client);
        }
        names.sort_unstable_by_key(|&(_, seq)| seq);
        let table = self.table(kind);
        names
            .into_iter()
            .map(|(name, _)| {
                detach(table, &name, client);
                count -= 1;
                Unsubscribed { name, count }
            })
            .collect()
    }
}

/// Takes `client` off `name`'s list, dropping the entry with its last subscriber.
fn detach<S: Subscriber>(table: &mut HashMap<Bytes, SubscriberList<S>>, name: &[u8], client: u64) {
    if let Some(subscribers) = table.get_mut(name) {
        subscribers.remove(client);
        if subscribers.is_empty() {
            table.remove(name);
        }
    }
}

fn names_matching<S>(
    table: &HashMap<Bytes, SubscriberList<S>>,
    pattern: Option<&[u8]>,
) -> Vec<Bytes> {
    table
        .keys()
        .filter(|name| pattern.is_none_or(|pattern| glob_match(pattern, name)))
        .cloned()
        .collect()
}
