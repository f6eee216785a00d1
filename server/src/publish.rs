//! Publishing: one message to every subscriber, and keyspace notifications built on it.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::config::ALL_EVENT_CLASSES;
use crate::keyspace::lock;
use crate::notify::EventClass;
use crate::state::Shared;

/// Publishes `payload` on `channel`; returns the number of receivers.
///
/// The registry lock is held while frames are handed out, so every subscriber sees concurrent
/// publishers' messages in the same order, as in Redis. Clients over their output limit are
/// disconnected afterwards.
pub fn publish(shared: &Arc<Shared>, channel: &[u8], payload: &[u8]) -> usize {
    let outcome = {
        let registry = lock(&shared.pubsub);
        registry.publish_now(channel, payload)
    };
    disconnect_over_limit(shared, &outcome.over_limit);
    outcome.receivers
}

/// Publishes `payload` on the shard channel `channel` (SPUBLISH); returns the number of
/// receivers. Patterns never see shard messages.
pub fn spublish(shared: &Arc<Shared>, channel: &[u8], payload: &[u8]) -> usize {
    let outcome = {
        let registry = lock(&shared.pubsub);
        registry.spublish_now(channel, payload)
    };
    disconnect_over_limit(shared, &outcome.over_limit);
    outcome.receivers
}

/// Closes clients that went over their pub/sub output buffer limit.
pub fn disconnect_over_limit(shared: &Arc<Shared>, ids: &[u64]) {
    for id in ids {
        if let Some(c) = shared.clients.get(*id) {
            // Two publishers may both find it over the limit: count and log it once.
            if c.killed.swap(true, Ordering::Relaxed) {
                continue;
            }
            tracing::warn!(client = id, addr = %c.addr, "client scheduled to be closed ASAP for overcoming of output buffer limits");
            shared
                .stats
                .client_output_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            c.kill();
        }
    }
}

/// Publishes the keyspace (`K`) and keyevent (`E`) notifications for `event` on `key`, when
/// `notify-keyspace-events` enables that class; `A` stands for every class.
pub fn keyspace_event(
    shared: &Arc<Shared>,
    class: EventClass,
    event: &str,
    db: usize,
    key: &Bytes,
) {
    keyspace_events(shared, db, key, [(class, event)]);
}

/// [`keyspace_event`] for several events on one key, in order, with one read of the
/// setting; with notifications off (the usual case) that read is all it does.
#[inline]
pub fn keyspace_events<'a>(
    shared: &Arc<Shared>,
    db: usize,
    key: &Bytes,
    events: impl IntoIterator<Item = (EventClass, &'a str)>,
) {
    let config = shared.config();
    if config.notify_keyspace_events.is_empty() {
        return;
    }
    for (class, event) in events {
        notify(shared, &config, class, event, db, key);
    }
}

/// One event, published as `config` says.
fn notify(
    shared: &Arc<Shared>,
    config: &crate::config::Config,
    class: EventClass,
    event: &str,
    db: usize,
    key: &Bytes,
) {
    if class == EventClass::New && !config.notify_new_keys {
        return;
    }
    let flags = &config.notify_keyspace_events;
    let letter = class.letter();
    let class_on = class == EventClass::New
        || flags.contains(letter)
        || (flags.contains('A') && ALL_EVENT_CLASSES.contains(letter));
    if !class_on {
        return;
    }
    if flags.contains('K') {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(key);
        publish(shared, &channel, event.as_bytes());
    }
    if flags.contains('E') {
        let channel = format!("__keyevent@{db}__:{event}");
        publish(shared, channel.as_bytes(), key);
    }
}
