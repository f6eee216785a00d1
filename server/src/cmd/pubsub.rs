//! Pub/sub: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB's introspection.
//!
//! The registry (`brooklet-pubsub`) decides who is subscribed to what and encodes the frames;
//! this file turns commands into registry calls and confirmations. A subscribe command with N
//! names answers with N confirmation frames, so the handlers return them all pre-encoded for
//! the client's protocol as one [`Reply::Raw`] (push frames in RESP3, arrays in RESP2).

use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;

use brooklet_pubsub::{Confirmation, Protocol, Registry, SubscriptionChange, Unsubscribed};
use brooklet_resp::Reply;

use super::reply::help_reply;
use super::table::flags::*;
use super::table::{command, container, simple};
use super::{CommandSpec, Ctx};
use crate::error::CommandError;
use crate::keyspace::lock;
use crate::subscriber::ClientSubscriber;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    simple("subscribe", -2, PUBSUB | SUBSCRIBED | LOADING, subscribe),
    simple(
        "unsubscribe",
        -1,
        PUBSUB | SUBSCRIBED | LOADING,
        unsubscribe,
    ),
    simple("psubscribe", -2, PUBSUB | SUBSCRIBED | LOADING, psubscribe),
    simple(
        "punsubscribe",
        -1,
        PUBSUB | SUBSCRIBED | LOADING,
        punsubscribe,
    ),
    command(
        "ssubscribe",
        -2,
        PUBSUB | SUBSCRIBED | LOADING,
        (1, -1, 1),
        ssubscribe,
    ),
    command(
        "sunsubscribe",
        -1,
        PUBSUB | SUBSCRIBED | LOADING,
        (1, -1, 1),
        sunsubscribe,
    ),
    simple("publish", 3, PUBSUB | FAST | LOADING, publish),
    command("spublish", 3, PUBSUB | FAST | LOADING, (1, 1, 1), spublish),
    container(
        "pubsub",
        &[
            simple("channels", -2, PUBSUB | LOADING, channels),
            simple("numsub", -2, PUBSUB | LOADING, numsub),
            simple("numpat", 2, PUBSUB | LOADING, numpat),
            simple("shardchannels", -2, PUBSUB | LOADING, shardchannels),
            simple("shardnumsub", -2, PUBSUB | LOADING, shardnumsub),
            simple("help", 2, LOADING, help),
        ],
    ),
];

/// Which of the three namespaces a command works on; indexes `ClientHandle::subs`.
#[derive(Clone, Copy)]
enum Kind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

impl Kind {
    fn subscribed(self) -> Confirmation {
        match self {
            Kind::Channel => Confirmation::Subscribe,
            Kind::Pattern => Confirmation::PSubscribe,
            Kind::Shard => Confirmation::SSubscribe,
        }
    }

    fn unsubscribed(self) -> Confirmation {
        match self {
            Kind::Channel => Confirmation::Unsubscribe,
            Kind::Pattern => Confirmation::PUnsubscribe,
            Kind::Shard => Confirmation::SUnsubscribe,
        }
    }
}

type Registered = Registry<ClientSubscriber>;

fn protocol(ctx: &Ctx<'_>) -> Protocol {
    if ctx.client.resp3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    }
}

fn subscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    subscribe_kind(ctx, Kind::Channel, &argv[1..])
}

fn psubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    subscribe_kind(ctx, Kind::Pattern, &argv[1..])
}

fn ssubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    subscribe_kind(ctx, Kind::Shard, &argv[1..])
}

fn unsubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    unsubscribe_kind(ctx, Kind::Channel, &argv[1..])
}

fn punsubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    unsubscribe_kind(ctx, Kind::Pattern, &argv[1..])
}

fn sunsubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    unsubscribe_kind(ctx, Kind::Shard, &argv[1..])
}

/// Subscribes to every name in order, one confirmation each with the running count.
fn subscribe_kind(ctx: &mut Ctx<'_>, kind: Kind, names: &[Bytes]) -> Result<Reply, CommandError> {
    let protocol = protocol(ctx);
    let me = ClientSubscriber {
        handle: ctx.client.handle.clone(),
        limits: ctx.shared.pubsub_limits.clone(),
    };
    let mut out = BytesMut::new();
    let mut added = 0;
    {
        let mut registry = lock(&ctx.shared.pubsub);
        for name in names {
            let change: SubscriptionChange = match kind {
                Kind::Channel => registry.subscribe(&me, name),
                Kind::Pattern => registry.psubscribe(&me, name),
                Kind::Shard => registry.ssubscribe(&me, name),
            };
            added += usize::from(change.changed);
            brooklet_pubsub::write_confirmation(
                &mut out,
                protocol,
                kind.subscribed(),
                Some(name),
                change.count,
            );
        }
        // The confirmations join the client's message queue while the registry is still
        // locked, so a message published right after the subscription queues behind them:
        // Redis never sends a channel's message before its `subscribe` reply, and sends it
        // whatever CLIENT REPLY says. Inside EXEC they stay part of EXEC's reply array.
        if ctx.client.in_exec {
            keep_if_silenced(ctx, &out);
        } else {
            ctx.client.handle.push_frame(out.split().freeze());
        }
    }
    ctx.client.handle.subs[kind as usize].fetch_add(added, Ordering::Relaxed);
    Ok(Reply::Raw(out.freeze()))
}

/// Unsubscribes from the given names, or from every name of the kind when none is given; with
/// nothing to leave it still confirms once, with a null name.
fn unsubscribe_kind(ctx: &mut Ctx<'_>, kind: Kind, names: &[Bytes]) -> Result<Reply, CommandError> {
    let protocol = protocol(ctx);
    let id = ctx.client.id();
    let confirmation = kind.unsubscribed();
    let mut out = BytesMut::new();
    let mut removed = 0;
    {
        let mut registry = lock(&ctx.shared.pubsub);
        if names.is_empty() {
            let left: Vec<Unsubscribed> = match kind {
                Kind::Channel => registry.unsubscribe_all(id),
                Kind::Pattern => registry.punsubscribe_all(id),
                Kind::Shard => registry.sunsubscribe_all(id),
            };
            removed = left.len();
            for u in &left {
                brooklet_pubsub::write_confirmation(
                    &mut out,
                    protocol,
                    confirmation,
                    Some(&u.name),
                    u.count,
                );
            }
            if left.is_empty() {
                let count = count_of(&registry, kind, id);
                brooklet_pubsub::write_confirmation(&mut out, protocol, confirmation, None, count);
            }
        } else {
            for name in names {
                let change = match kind {
                    Kind::Channel => registry.unsubscribe(id, name),
                    Kind::Pattern => registry.punsubscribe(id, name),
                    Kind::Shard => registry.sunsubscribe(id, name),
                };
                removed += usize::from(change.changed);
                brooklet_pubsub::write_confirmation(
                    &mut out,
                    protocol,
                    confirmation,
                    Some(name),
                    change.count,
                );
            }
        }
    }
    ctx.client.handle.subs[kind as usize].fetch_sub(removed, Ordering::Relaxed);
    keep_if_silenced(ctx, &out);
    Ok(Reply::Raw(out.freeze()))
}

/// Keeps a copy of confirmations whose reply CLIENT REPLY OFF or SKIP is about to drop:
/// Redis sends them anyway, as pushes (inside EXEC too, without EXEC's array around them),
/// so `write_reply` writes them in the dropped reply's place.
fn keep_if_silenced(ctx: &mut Ctx<'_>, frames: &[u8]) {
    if matches!(
        ctx.client.reply_mode,
        crate::client::ReplyMode::Off | crate::client::ReplyMode::SkipThis
    ) {
        ctx.client.silenced_pushes.extend_from_slice(frames);
    }
}

/// The count a confirmation of `kind` carries: channels plus patterns, or shard channels.
fn count_of(registry: &Registered, kind: Kind, id: u64) -> usize {
    match kind {
        Kind::Channel | Kind::Pattern => registry.subscription_count(id),
        Kind::Shard => registry.shard_subscription_count(id),
    }
}

fn publish(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let receivers = crate::publish::publish(ctx.shared, &argv[1], &argv[2]);
    Ok(Reply::Int(receivers as i64))
}

fn spublish(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let receivers = crate::publish::spublish(ctx.shared, &argv[1], &argv[2]);
    Ok(Reply::Int(receivers as i64))
}

/// Redis's answer to a PUBSUB subcommand given too many arguments.
fn wrong_args(argv: &[Bytes]) -> CommandError {
    super::reply::subcommand_syntax("PUBSUB", &argv[1])
}

fn channels(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 3 {
        return Err(wrong_args(argv));
    }
    let pattern = argv.get(2).map(|p| &p[..]);
    let names = lock(&ctx.shared.pubsub).channels(pattern);
    Ok(Reply::Array(names.into_iter().map(Reply::Bulk).collect()))
}

fn shardchannels(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 3 {
        return Err(wrong_args(argv));
    }
    let pattern = argv.get(2).map(|p| &p[..]);
    let names = lock(&ctx.shared.pubsub).shard_channels(pattern);
    Ok(Reply::Array(names.into_iter().map(Reply::Bulk).collect()))
}

/// `channel, count, ...` in the order asked, a flat array in RESP2 and RESP3 alike (as Redis).
fn numsub(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let registry = lock(&ctx.shared.pubsub);
    let mut out = Vec::with_capacity((argv.len() - 2) * 2);
    for channel in &argv[2..] {
        out.push(Reply::Bulk(channel.clone()));
        out.push(Reply::Int(registry.numsub(channel) as i64));
    }
    Ok(Reply::Array(out))
}

fn shardnumsub(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let registry = lock(&ctx.shared.pubsub);
    let mut out = Vec::with_capacity((argv.len() - 2) * 2);
    for channel in &argv[2..] {
        out.push(Reply::Bulk(channel.clone()));
        out.push(Reply::Int(registry.shard_numsub(channel) as i64));
    }
    Ok(Reply::Array(out))
}

fn numpat(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Int(lock(&ctx.shared.pubsub).numpat() as i64))
}

fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(help_reply(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}

/// Leaves every channel, pattern and shard channel of the calling client (RESET).
/// A client's channels and patterns, each with whether it is a pattern.
pub(crate) fn subscriptions_of(shared: &crate::state::Shared, client: u64) -> Vec<(Bytes, bool)> {
    crate::keyspace::lock(&shared.pubsub).subscriptions_of(client)
}

pub(crate) fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    let id = ctx.client.id();
    crate::keyspace::lock(&ctx.shared.pubsub).remove_client(id);
    for s in &ctx.client.handle.subs {
        s.store(0, Ordering::Relaxed);
    }
}
