//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};
use brooklet_streams::{DeadLetterConfig, GroupCounters, INFO_FULL_DEFAULT_COUNT, IdmpInfo};

use super::reply::{entries_reply, entry_reply, help_reply, id_reply, subcommand_syntax};
use super::stream::NO_SUCH_KEY;
use super::table::flags::*;
use super::table::{command, container, simple};
use super::{CommandSpec, Ctx};
use crate::client::now_ms;
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[container(
    "xinfo",
    &[
        command("consumers", 4, READONLY, (2, 2, 1), consumers),
        command("groups", 3, READONLY, (2, 2, 1), groups),
        command("stream", -3, READONLY, (2, 2, 1), stream),
        simple("help", 2, LOADING, help),
    ],
)];

const HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn help(_ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(help_reply("XINFO", HELP))
}

/// `no such key`, after the `keymiss` event the failed lookup publishes.
fn missing(ctx: &mut Ctx<'_>, key: &Bytes) -> CommandError {
    match ctx.key_miss(key) {
        Ok(()) => NO_SUCH_KEY,
        Err(e) => e,
    }
}

/// XINFO STREAM's arguments.
#[derive(Debug)]
pub(crate) struct XInfoStreamArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// FULL's entry count (`COUNT`, 0 for all) or None for the summary; an error here is
    /// reported only once the key was found, as Redis looks the key up first.
    pub full: Result<Option<usize>, CommandError>,
}

impl<'a> XInfoStreamArgs<'a> {
    /// # Format
    /// `STREAM key [FULL [COUNT count]]`, after XINFO: the subcommand is read too, as
    /// typed, for the error text.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let sub = args.next_bytes()?;
        let key = args.next_bytes()?;
        Ok(XInfoStreamArgs {
            key,
            full: parse_full(args, sub),
        })
    }
}

/// `[FULL [COUNT count]]`.
fn parse_full(args: &mut Args<'_>, sub: &[u8]) -> Result<Option<usize>, CommandError> {
    if args.is_empty() {
        return Ok(None);
    }
    if !args.eat_keyword("FULL") {
        return Err(subcommand_syntax("XINFO", sub));
    }
    let mut count = INFO_FULL_DEFAULT_COUNT;
    if !args.is_empty() {
        if args.remaining() != 2 || !args.eat_keyword("COUNT") {
            return Err(subcommand_syntax("XINFO", sub));
        }
        // A negative COUNT means the default, as in Redis; 0 means every entry.
        count = usize::try_from(args.next_i64()?).unwrap_or(INFO_FULL_DEFAULT_COUNT);
    }
    Ok(Some(count))
}

fn field(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::bulk(name), value)
}

/// A group's Brooklet fields, after Redis's own: its counters and dead-letter settings.
fn counter_fields(c: GroupCounters, dlq: Option<DeadLetterConfig>) -> [(Reply, Reply); 6] {
    let (key, max) = match dlq {
        Some(d) => (Reply::Bulk(d.key), int(d.max_deliveries)),
        None => (Reply::Null, Reply::Null),
    };
    [
        field("entries-delivered", int(c.delivered)),
        field("entries-acked", int(c.acked)),
        field("entries-nacked", int(c.nacked)),
        field("entries-dead-lettered", int(c.dead_lettered)),
        field("dlq-key", key),
        field("dlq-max-deliveries", max),
    ]
}

fn int(n: u64) -> Reply {
    Reply::Int(n as i64)
}

fn opt_int(n: Option<u64>) -> Reply {
    n.map_or(Reply::Null, int)
}

fn opt_signed(n: Option<i64>) -> Reply {
    n.map_or(Reply::Null, Reply::Int)
}

/// XINFO STREAM's IDMP fields (Redis 8.6), which follow `recorded-first-entry-id`.
fn idmp_fields(i: &IdmpInfo) -> [(Reply, Reply); 6] {
    [
        field("idmp-duration", int(u64::from(i.duration))),
        field("idmp-maxsize", int(u64::from(i.maxsize))),
        field("pids-tracked", int(i.pids_tracked)),
        field("iids-tracked", int(i.iids_tracked)),
        field("iids-added", int(i.iids_added)),
        field("iids-duplicates", int(i.iids_duplicates)),
    ]
}

/// XINFO STREAM: the stream's summary, or with FULL its entries, groups and consumers.
fn stream(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XInfoStreamArgs::parse(&mut Args::new(&argv[1..]))?;
    let key = a.key;
    let mut shard = ctx.db().lock(key);
    let Some(v) = shard.get_mut(key) else {
        drop(shard);
        return Err(missing(ctx, key));
    };
    let s = v.stream_mut()?;
    ctx.show(s)?;
    let full = a.full?;
    // Expired idempotent IDs are forgotten lazily; the counts must not include them.
    s.expire_idmp(now_ms());
    let Some(count) = full else {
        let i = s.info()?;
        let [d, m, p, t, a, u] = idmp_fields(&i.idmp);
        return Ok(Reply::Map(vec![
            field("length", int(i.length)),
            field("radix-tree-keys", int(i.radix_tree_keys)),
            field("radix-tree-nodes", int(i.radix_tree_nodes)),
            field("last-generated-id", id_reply(i.last_generated_id)),
            field("max-deleted-entry-id", id_reply(i.max_deleted_entry_id)),
            field("entries-added", int(i.entries_added)),
            field(
                "recorded-first-entry-id",
                id_reply(i.recorded_first_entry_id),
            ),
            d,
            m,
            p,
            t,
            a,
            u,
            field("groups", int(i.groups)),
            field(
                "first-entry",
                i.first_entry.map_or(Reply::Null, entry_reply),
            ),
            field("last-entry", i.last_entry.map_or(Reply::Null, entry_reply)),
        ]));
    };
    let i = s.info_full(count)?;
    let groups = i
        .groups
        .into_iter()
        .map(|g| {
            let pending = g
                .pending
                .into_iter()
                .map(|p| {
                    Reply::Array(vec![
                        id_reply(p.id),
                        Reply::Bulk(p.consumer),
                        int(p.delivery_time),
                        int(p.delivery_count),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .into_iter()
                .map(|c| {
                    let pending = c
                        .pending
                        .into_iter()
                        .map(|(id, time, n)| Reply::Array(vec![id_reply(id), int(time), int(n)]))
                        .collect();
                    Reply::Map(vec![
                        field("name", Reply::Bulk(c.name)),
                        field("seen-time", int(c.seen_time)),
                        field("active-time", c.active_time.map_or(Reply::Int(-1), int)),
                        field("pel-count", int(c.pel_count)),
                        field("pending", Reply::Array(pending)),
                    ])
                })
                .collect();
            let [cd, ca, cn, cx, dk, dm] = counter_fields(g.counters, g.dead_letter);
            Reply::Map(vec![
                field("name", Reply::Bulk(g.name)),
                field("last-delivered-id", id_reply(g.last_delivered_id)),
                field("entries-read", opt_int(g.entries_read)),
                field("lag", opt_signed(g.lag)),
                field("pel-count", int(g.pel_count)),
                field("nacked-count", int(g.nacked_count)),
                field("pending", Reply::Array(pending)),
                field("consumers", Reply::Array(consumers)),
                cd,
                ca,
                cn,
                cx,
                dk,
                dm,
            ])
        })
        .collect();
    let [d, m, p, t, a, u] = idmp_fields(&i.idmp);
    Ok(Reply::Map(vec![
        field("length", int(i.length)),
        field("radix-tree-keys", int(i.radix_tree_keys)),
        field("radix-tree-nodes", int(i.radix_tree_nodes)),
        field("last-generated-id", id_reply(i.last_generated_id)),
        field("max-deleted-entry-id", id_reply(i.max_deleted_entry_id)),
        field("entries-added", int(i.entries_added)),
        field(
            "recorded-first-entry-id",
            id_reply(i.recorded_first_entry_id),
        ),
        d,
        m,
        p,
        t,
        a,
        u,
        field("entries", entries_reply(i.entries)),
        field("groups", Reply::Array(groups)),
    ]))
}

/// XINFO GROUPS key
fn groups(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let key = &argv[2];
    let shard = ctx.db().lock(key);
    let Some(v) = shard.get(key) else {
        drop(shard);
        return Err(missing(ctx, key));
    };
    let s = v.stream()?;
    ctx.show(s)?;
    Ok(Reply::Array(
        s.groups_info()
            .into_iter()
            .map(|g| {
                let [cd, ca, cn, cx, dk, dm] = counter_fields(g.counters, g.dead_letter);
                Reply::Map(vec![
                    field("name", Reply::Bulk(g.name)),
                    field("consumers", int(g.consumers)),
                    field("pending", int(g.pending)),
                    field("last-delivered-id", id_reply(g.last_delivered_id)),
                    field("entries-read", opt_int(g.entries_read)),
                    field("lag", opt_signed(g.lag)),
                    cd,
                    ca,
                    cn,
                    cx,
                    dk,
                    dm,
                ])
            })
            .collect(),
    ))
}

/// XINFO CONSUMERS key group
fn consumers(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (key, group) = (&argv[2], &argv[3]);
    let shard = ctx.db().lock(key);
    let Some(v) = shard.get(key) else {
        drop(shard);
        return Err(missing(ctx, key));
    };
    let s = v.stream()?;
    ctx.show(s)?;
    let list = s.consumers_info(key, group, now_ms())?;
    Ok(Reply::Array(
        list.into_iter()
            .map(|c| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(c.name)),
                    field("pending", int(c.pending)),
                    field("idle", Reply::Int(c.idle_ms)),
                    field("inactive", Reply::Int(c.inactive_ms)),
                ])
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn full(line: &str) -> Result<Option<usize>, CommandError> {
        let v = argv(line);
        let a = XInfoStreamArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        a.full
    }

    #[test]
    fn xinfo_stream_options() {
        assert_eq!(full("STREAM s"), Ok(None));
        assert_eq!(full("STREAM s FULL"), Ok(Some(INFO_FULL_DEFAULT_COUNT)));
        assert_eq!(full("STREAM s full count 0"), Ok(Some(0)));
        assert_eq!(
            full("STREAM s FULL COUNT -5"),
            Ok(Some(INFO_FULL_DEFAULT_COUNT))
        );
        assert_eq!(
            error_of(full("STREAM s FULL COUNT x")),
            "ERR value is not an integer or out of range"
        );
        for line in ["stream s FOO", "stream s FULL FOO 1", "stream s FULL COUNT"] {
            assert_eq!(
                error_of(full(line)),
                "ERR unknown subcommand or wrong number of arguments for 'stream'. Try XINFO HELP.",
                "{line}"
            );
        }
    }
}
