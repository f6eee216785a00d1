//! The registry: who is subscribed to what, in both directions.

use bytes::Bytes;
use hashbrown::HashMap;

use crate::encode::{encode_message, encode_pmessage, encode_smessage};
use crate::fanout::{Delivering, Fanout, LazyFrames, PublishOutcome};
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

    /// A client's channels, shard channels and patterns, each with whether it is a pattern
    /// (ACL SETUSER checks them against a user's new channel rules).
    pub fn subscriptions_of(&self, client: u64) -> Vec<(Bytes, bool)> {
        let Some(own) = self.clients.get(&client) else {
            return Vec::new();
        };
        let plain = own.channels.keys().chain(own.shard_channels.keys());
        plain
            .map(|c| (c.clone(), false))
            .chain(own.patterns.keys().map(|p| (p.clone(), true)))
            .collect()
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
        self.each_delivery(channel, payload, |sub, frame| {
            fanout.push(sub, frame.clone())
        });
        fanout
    }

    /// PUBLISH handed out at once, as [`Registry::publish`] then [`Fanout::deliver`] would,
    /// without collecting the deliveries first (a clone of each subscriber and frame).
    pub fn publish_now(&self, channel: &[u8], payload: &[u8]) -> PublishOutcome {
        let mut outcome = Delivering::default();
        self.each_delivery(channel, payload, |sub, frame| outcome.deliver(sub, frame));
        outcome.finish()
    }

    /// Calls `f` for every subscriber a PUBLISH reaches, in delivery order (channel
    /// subscribers in subscription order, then pattern by pattern), with its frame.
    fn each_delivery(&self, channel: &[u8], payload: &[u8], mut f: impl FnMut(&S, &Bytes)) {
        if let Some(subscribers) = self.channels.get(channel) {
            let mut frames = LazyFrames::default();
            for sub in subscribers.iter() {
                f(
                    sub,
                    frames.get(sub.protocol(), |p| encode_message(p, channel, payload)),
                );
            }
        }
        // Like Redis, every pattern is tried against every published channel.
        for (pattern, subscribers) in &self.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            let mut frames = LazyFrames::default();
            for sub in subscribers.iter() {
                let frame = frames.get(sub.protocol(), |p| {
                    encode_pmessage(p, pattern, channel, payload)
                });
                f(sub, frame);
            }
        }
    }

    /// SPUBLISH: collects an `smessage` for every subscriber of the shard channel (patterns
    /// never see shard messages).
    pub fn spublish(&self, channel: &[u8], payload: &[u8]) -> Fanout<S> {
        let mut fanout = Fanout::new();
        self.each_shard_delivery(channel, payload, |sub, frame| {
            fanout.push(sub, frame.clone())
        });
        fanout
    }

    /// SPUBLISH handed out at once (see [`Registry::publish_now`]).
    pub fn spublish_now(&self, channel: &[u8], payload: &[u8]) -> PublishOutcome {
        let mut outcome = Delivering::default();
        self.each_shard_delivery(channel, payload, |sub, frame| outcome.deliver(sub, frame));
        outcome.finish()
    }

    fn each_shard_delivery(&self, channel: &[u8], payload: &[u8], mut f: impl FnMut(&S, &Bytes)) {
        if let Some(subscribers) = self.shard_channels.get(channel) {
            let mut frames = LazyFrames::default();
            for sub in subscribers.iter() {
                f(
                    sub,
                    frames.get(sub.protocol(), |p| encode_smessage(p, channel, payload)),
                );
            }
        }
    }

    /// `PUBSUB CHANNELS [pattern]`: active channels (those with a subscriber), matching `pattern`
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

    /// `PUBSUB SHARDCHANNELS [pattern]`: active shard channels, matching `pattern` if given.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::encode::Protocol::{self, Resp2, Resp3};
    use crate::subscriber::tests::Inbox;

    fn sorted(mut names: Vec<Bytes>) -> Vec<Bytes> {
        names.sort();
        names
    }

    fn change(changed: bool, count: usize) -> SubscriptionChange {
        SubscriptionChange { changed, count }
    }

    fn left(list: &[Unsubscribed]) -> Vec<(&[u8], usize)> {
        list.iter().map(|u| (&u.name[..], u.count)).collect()
    }

    #[test]
    fn subscribe_counts_channels_and_patterns_together() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        assert_eq!(reg.subscribe(&a, b"x"), change(true, 1));
        assert_eq!(reg.subscribe(&a, b"y"), change(true, 2));
        assert_eq!(reg.subscribe(&a, b"x"), change(false, 2));
        assert_eq!(reg.psubscribe(&a, b"p*"), change(true, 3));
        assert_eq!(reg.psubscribe(&a, b"p*"), change(false, 3));
        assert_eq!(reg.subscription_count(1), 3);
        assert_eq!(reg.unsubscribe(1, b"x"), change(true, 2));
        assert_eq!(reg.unsubscribe(1, b"x"), change(false, 2));
        assert_eq!(reg.punsubscribe(1, b"nope"), change(false, 2));
        assert_eq!(reg.punsubscribe(1, b"p*"), change(true, 1));
        assert_eq!(reg.unsubscribe(1, b"y"), change(true, 0));
        assert!(reg.is_empty());
    }

    #[test]
    fn shard_channels_have_their_own_count_and_namespace() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp3);
        assert_eq!(reg.subscribe(&a, b"x"), change(true, 1));
        assert_eq!(reg.ssubscribe(&a, b"x"), change(true, 1));
        assert_eq!(reg.ssubscribe(&a, b"y"), change(true, 2));
        assert_eq!(reg.subscription_count(1), 1);
        assert_eq!(reg.shard_subscription_count(1), 2);
        assert_eq!(reg.numsub(b"x"), 1);
        assert_eq!(reg.shard_numsub(b"x"), 1);
        assert_eq!(reg.sunsubscribe(1, b"x"), change(true, 1));
        assert_eq!(reg.numsub(b"x"), 1);
        assert_eq!(reg.shard_numsub(b"x"), 0);
        assert_eq!(reg.shard_channel_count(), 1);
    }

    #[test]
    fn unsubscribing_an_unknown_client_reports_zero() {
        let mut reg: Registry<Inbox> = Registry::new();
        assert_eq!(reg.unsubscribe(9, b"x"), change(false, 0));
        assert_eq!(reg.sunsubscribe(9, b"x"), change(false, 0));
        assert!(reg.unsubscribe_all(9).is_empty());
        assert_eq!(reg.remove_client(9), 0);
        assert!(reg.is_empty());
    }

    #[test]
    fn unsubscribe_all_leaves_in_subscription_order_with_falling_counts() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        for name in [&b"c"[..], b"a", b"d", b"b"] {
            reg.subscribe(&a, name);
        }
        reg.psubscribe(&a, b"p1");
        reg.psubscribe(&a, b"p0");
        // Patterns still count while channels are left.
        let out = reg.unsubscribe_all(1);
        assert_eq!(
            left(&out),
            [(&b"c"[..], 5), (b"a", 4), (b"d", 3), (b"b", 2)]
        );
        assert!(reg.unsubscribe_all(1).is_empty());
        assert_eq!(reg.subscription_count(1), 2);
        assert_eq!(
            left(&reg.punsubscribe_all(1)),
            [(&b"p1"[..], 1), (b"p0", 0)]
        );
        assert!(reg.is_empty());
    }

    #[test]
    fn resubscribing_moves_a_name_to_the_end_of_the_order() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        reg.subscribe(&a, b"a");
        reg.subscribe(&a, b"b");
        reg.unsubscribe(1, b"a");
        reg.subscribe(&a, b"a");
        assert_eq!(left(&reg.unsubscribe_all(1)), [(&b"b"[..], 1), (b"a", 0)]);
    }

    #[test]
    fn sunsubscribe_all_leaves_only_shard_channels() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        reg.ssubscribe(&a, b"s1");
        reg.ssubscribe(&a, b"s2");
        reg.subscribe(&a, b"c");
        assert_eq!(
            left(&reg.sunsubscribe_all(1)),
            [(&b"s1"[..], 1), (b"s2", 0)]
        );
        assert_eq!(reg.subscription_count(1), 1);
        assert!(reg.is_subscribed(1));
        assert_eq!(reg.shard_channel_count(), 0);
    }

    #[test]
    fn entries_disappear_with_their_last_subscriber() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        let b = Inbox::new(2, Resp2);
        reg.subscribe(&a, b"x");
        reg.subscribe(&b, b"x");
        reg.psubscribe(&a, b"x*");
        reg.psubscribe(&b, b"x*");
        assert_eq!((reg.channel_count(), reg.numpat()), (1, 1));
        assert_eq!(reg.numsub(b"x"), 2);
        reg.unsubscribe(1, b"x");
        reg.punsubscribe(1, b"x*");
        assert_eq!((reg.channel_count(), reg.numpat()), (1, 1));
        assert!(!reg.is_subscribed(1));
        reg.unsubscribe(2, b"x");
        reg.punsubscribe(2, b"x*");
        assert_eq!((reg.channel_count(), reg.pattern_count()), (0, 0));
        assert_eq!(reg.numsub(b"x"), 0);
        assert!(reg.is_empty());
    }

    #[test]
    fn remove_client_leaves_nothing_behind() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        let b = Inbox::new(2, Resp3);
        for i in 0..50u32 {
            reg.subscribe(&a, format!("c{i}").as_bytes());
            reg.psubscribe(&a, format!("p{i}*").as_bytes());
            reg.ssubscribe(&a, format!("s{i}").as_bytes());
        }
        reg.subscribe(&b, b"c7");
        assert_eq!(reg.remove_client(1), 150);
        assert_eq!(reg.remove_client(1), 0);
        assert_eq!(reg.channels(None), [Bytes::from_static(b"c7")]);
        assert_eq!((reg.numpat(), reg.shard_channel_count()), (0, 0));
        assert_eq!(reg.remove_client(2), 1);
        assert!(reg.is_empty());
        assert!(reg.publish(b"c7", b"m").is_empty());
    }

    #[test]
    fn channel_listing_with_and_without_pattern() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        for name in [&b"news.tech"[..], b"news.art", b"sport", b""] {
            reg.subscribe(&a, name);
        }
        reg.ssubscribe(&a, b"news.shard");
        reg.psubscribe(&a, b"news.*");
        assert_eq!(reg.channels(None).len(), 4);
        assert_eq!(
            sorted(reg.channels(Some(b"news.*"))),
            [
                Bytes::from_static(b"news.art"),
                Bytes::from_static(b"news.tech")
            ]
        );
        assert_eq!(reg.channels(Some(b"*")).len(), 4);
        assert!(reg.channels(Some(b"x*")).is_empty());
        assert_eq!(
            reg.shard_channels(Some(b"news.*")),
            [Bytes::from_static(b"news.shard")]
        );
    }

    #[test]
    fn publish_counts_channel_and_every_matching_pattern() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        let b = Inbox::new(2, Resp2);
        reg.subscribe(&a, b"news.tech");
        reg.psubscribe(&a, b"news.*");
        reg.psubscribe(&a, b"*.tech");
        reg.psubscribe(&a, b"sport.*");
        reg.psubscribe(&b, b"news.*");
        let outcome = reg.publish(b"news.tech", b"hi").deliver();
        assert_eq!(outcome.receivers, 4);
        assert!(outcome.over_limit.is_empty());
        let got = a.frames();
        assert_eq!(got.len(), 3);
        // The channel's message comes first, then one pmessage per matching pattern.
        assert_eq!(
            &got[0][..],
            b"*3\r\n$7\r\nmessage\r\n$9\r\nnews.tech\r\n$2\r\nhi\r\n"
        );
        let mut patterns: Vec<&[u8]> = got[1..].iter().map(|f| &f[..]).collect();
        patterns.sort();
        assert_eq!(
            patterns,
            [
                &b"*4\r\n$8\r\npmessage\r\n$6\r\n*.tech\r\n$9\r\nnews.tech\r\n$2\r\nhi\r\n"[..],
                b"*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$9\r\nnews.tech\r\n$2\r\nhi\r\n",
            ]
        );
        assert_eq!(b.frames().len(), 1);
        assert_eq!(reg.publish(b"weather", b"x").receivers(), 0);
    }

    #[test]
    fn publish_does_not_reach_shard_subscribers_and_spublish_skips_patterns() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp3);
        reg.ssubscribe(&a, b"s");
        reg.psubscribe(&a, b"*");
        assert_eq!(reg.publish(b"s", b"1").deliver().receivers, 1);
        assert_eq!(reg.spublish(b"s", b"2").deliver().receivers, 1);
        assert_eq!(reg.spublish(b"other", b"3").receivers(), 0);
        let got = a.frames();
        assert_eq!(
            &got[0][..],
            b">4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\ns\r\n$1\r\n1\r\n"
        );
        assert_eq!(
            &got[1][..],
            b">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\n2\r\n"
        );
    }

    #[test]
    fn one_encoding_is_shared_per_protocol() {
        let mut reg = Registry::new();
        let subs = [
            Inbox::new(1, Resp2),
            Inbox::new(2, Resp3),
            Inbox::new(3, Resp2),
            Inbox::new(4, Resp3),
        ];
        for sub in &subs {
            reg.subscribe(sub, b"ch");
            reg.psubscribe(sub, b"c*");
            reg.ssubscribe(sub, b"ch");
        }
        assert_eq!(reg.publish(b"ch", b"payload").deliver().receivers, 8);
        assert_eq!(reg.spublish(b"ch", b"payload").deliver().receivers, 4);
        let frames: Vec<Vec<Bytes>> = subs.iter().map(Inbox::frames).collect();
        // Per subscriber: message, pmessage, smessage.
        #[allow(clippy::needless_range_loop)]
        for kind in 0..3 {
            // Same protocol: same memory. Different protocol: different frame.
            assert_eq!(frames[0][kind].as_ptr(), frames[2][kind].as_ptr());
            assert_eq!(frames[1][kind].as_ptr(), frames[3][kind].as_ptr());
            assert_ne!(frames[0][kind], frames[1][kind]);
        }
        assert_eq!(frames[0][0][0], b'*');
        assert_eq!(frames[1][0][0], b'>');
    }

    #[test]
    fn fanout_hands_out_shared_frames_before_delivery() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        let b = Inbox::new(2, Resp2);
        reg.subscribe(&a, b"ch");
        reg.subscribe(&b, b"ch");
        let fanout = reg.publish(b"ch", b"m");
        let [(first, x), (second, y)] = fanout.deliveries() else {
            panic!("expected two deliveries");
        };
        assert_eq!((first.id, second.id), (1, 2));
        assert_eq!(x.as_ptr(), y.as_ptr());
        // Nothing is delivered until asked.
        assert!(a.frames().is_empty());
        assert_eq!(fanout.deliver().receivers, 2);
        assert_eq!(a.frames().len(), 1);
    }

    /// Handing a publish out at once delivers the same frames, in the same order, with the
    /// same outcome, as collecting it first.
    #[test]
    fn publishing_now_matches_collecting_then_delivering() {
        let run = |now: bool| {
            let mut reg = Registry::new();
            let subs = [
                Inbox::new(1, Resp2),
                Inbox::with_limit(2, Resp3, 1),
                Inbox::new(3, Resp3),
            ];
            for sub in &subs {
                reg.subscribe(sub, b"ch");
                reg.psubscribe(sub, b"c*");
                reg.ssubscribe(sub, b"ch");
            }
            let outcomes = if now {
                [reg.publish_now(b"ch", b"m"), reg.spublish_now(b"ch", b"s")]
            } else {
                [
                    reg.publish(b"ch", b"m").deliver(),
                    reg.spublish(b"ch", b"s").deliver(),
                ]
            };
            (outcomes, subs.map(|s| s.frames()))
        };
        let (now, collected) = (run(true), run(false));
        assert_eq!(now, collected);
        assert_eq!(now.0[0].receivers, 6);
        assert_eq!(now.0[0].over_limit, [2]);
        assert_eq!(now.1[0].len(), 3);
    }

    #[test]
    fn over_limit_subscribers_are_reported_once_and_still_counted() {
        let mut reg = Registry::new();
        let fast = Inbox::new(1, Resp2);
        let slow = Inbox::with_limit(2, Resp2, 1);
        for sub in [&fast, &slow] {
            reg.subscribe(sub, b"ch");
            reg.psubscribe(sub, b"c*");
            reg.psubscribe(sub, b"*h");
        }
        let outcome = reg.publish(b"ch", b"m").deliver();
        assert_eq!(outcome.receivers, 6);
        assert_eq!(outcome.over_limit, [2]);
        assert_eq!(fast.frames().len(), 3);
        assert_eq!(slow.frames().len(), 1);
        // The registry keeps them; the server's disconnect path removes them.
        assert!(reg.is_subscribed(2));
        reg.remove_client(2);
        let outcome = reg.publish(b"ch", b"m").deliver();
        assert_eq!((outcome.receivers, outcome.over_limit.len()), (3, 0));
    }

    #[test]
    fn subscribers_receive_in_subscription_order() {
        let mut reg = Registry::new();
        let subs: Vec<Inbox> = [5, 3, 9, 1]
            .into_iter()
            .map(|id| Inbox::new(id, Resp2))
            .collect();
        for sub in &subs {
            reg.subscribe(sub, b"ch");
        }
        reg.unsubscribe(3, b"ch");
        let order: Vec<u64> = reg
            .publish(b"ch", b"m")
            .deliveries()
            .iter()
            .map(|(s, _)| s.id)
            .collect();
        assert_eq!(order, [5, 9, 1]);
    }

    #[test]
    fn names_are_binary_safe() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        reg.subscribe(&a, b"\x00\xff\r\n");
        reg.psubscribe(&a, b"\x00*");
        assert_eq!(reg.publish(b"\x00\xff\r\n", b"\r\n").deliver().receivers, 2);
        assert_eq!(
            &a.frames()[0][..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\n\x00\xff\r\n\r\n$2\r\n\r\n\r\n"
        );
    }

    #[test]
    fn stored_names_do_not_pin_the_callers_buffer() {
        let mut reg = Registry::new();
        let a = Inbox::new(1, Resp2);
        let read_buffer = Bytes::from(vec![b'x'; 4096]);
        let name = read_buffer.slice(0..3);
        reg.subscribe(&a, &name);
        let stored = reg.channels(None);
        assert_eq!(stored[0], name);
        assert_ne!(stored[0].as_ptr(), name.as_ptr());
    }

    #[test]
    fn registry_and_fanout_can_cross_threads_with_a_thread_safe_handle() {
        #[derive(Clone)]
        struct Handle(std::sync::Arc<std::sync::Mutex<Vec<Bytes>>>);
        impl Subscriber for Handle {
            fn id(&self) -> u64 {
                1
            }
            fn protocol(&self) -> Protocol {
                Resp2
            }
            fn deliver(&self, frame: &Bytes) -> crate::Delivery {
                match self.0.lock() {
                    Ok(mut queue) => {
                        queue.push(frame.clone());
                        crate::Delivery::Accepted
                    }
                    Err(_) => crate::Delivery::OverLimit,
                }
            }
        }
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Registry<Handle>>();
        send_sync::<Fanout<Handle>>();
    }
}
