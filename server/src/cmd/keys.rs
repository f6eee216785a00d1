//! Generic key commands: TYPE, DEL, UNLINK, EXISTS, KEYS, SCAN.

use bytes::Bytes;

use brooklet_pubsub::glob_match;
use brooklet_resp::{Args, Reply};

use super::table::command;
use super::table::flags::*;
use super::{CommandSpec, Ctx};
use crate::error::CommandError;
use crate::keyspace::keep;
use crate::notify::EventClass;
use crate::publish::keyspace_event;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    command("type", 2, READONLY | FAST, (1, 1, 1), type_cmd),
    command("del", -2, WRITE, (1, -1, 1), del),
    command("unlink", -2, WRITE | FAST, (1, -1, 1), del),
    command("exists", -2, READONLY | FAST, (1, -1, 1), exists),
    command("keys", 2, READONLY, (0, 0, 0), keys),
    command("scan", -2, READONLY, (0, 0, 0), scan),
];

fn type_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let name = {
        let shard = ctx.db().lock(&argv[1]);
        match shard.get(&argv[1]) {
            Some(v) => {
                ctx.show_value(&argv[1], v)?;
                Some(v.type_name())
            }
            None => None,
        }
    };
    if name.is_none() {
        ctx.key_miss(&argv[1])?;
    }
    Ok(Reply::simple(name.unwrap_or("none")))
}

fn del(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mut removed = 0;
    for key in &argv[1..] {
        {
            let db = ctx.db();
            let mut shard = db.lock(key);
            let deadline = shard.deadline(key);
            let Some((gone, delta)) = shard.remove_key(key) else {
                continue;
            };
            db.note_deadlines(delta);
            if let Err(e) = ctx.persist_delete(key, &gone) {
                // The store still holds the key: so does memory, as no reader saw it go.
                let k = keep(key);
                shard.insert(k.clone(), gone);
                db.note_deadlines(shard.set_deadline(&k, deadline));
                return Err(e);
            }
        }
        removed += 1;
        ctx.key_changed(key);
        keyspace_event(ctx.shared, EventClass::Generic, "del", ctx.client.db, key);
    }
    Ok(Reply::Int(removed))
}

fn exists(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mut found = 0;
    for key in &argv[1..] {
        let exists = {
            let shard = ctx.db().lock(key);
            match shard.get(key) {
                Some(v) => ctx.show_value(key, v).map(|()| true)?,
                None => false,
            }
        };
        if exists {
            found += 1;
        } else {
            ctx.key_miss(key)?;
        }
    }
    Ok(Reply::Int(found))
}

fn keys(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let pattern = &argv[1];
    let all = &pattern[..] == b"*";
    ctx.show_all()?;
    let mut out = Vec::new();
    ctx.db().for_each_live(crate::client::now_ms(), |k, _| {
        if all || glob_match(pattern, k) {
            out.push(Reply::Bulk(k.to_bytes()));
        }
    });
    Ok(Reply::Array(out))
}

/// SCAN's arguments.
#[derive(Debug)]
pub(crate) struct ScanArgs {
    /// Where the previous call stopped (0 to start).
    pub cursor: u64,
    /// MATCH pattern.
    pub pattern: Option<Bytes>,
    /// COUNT: how many slots to visit (default 10).
    pub count: usize,
    /// TYPE, lower-cased.
    pub kind: Option<Bytes>,
}

impl ScanArgs {
    /// # Format
    /// `cursor [MATCH pattern] [COUNT count] [TYPE type]`, after the command name.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        let cursor = std::str::from_utf8(args.next_bytes()?)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CommandError::msg("ERR invalid cursor"))?;
        let mut pattern: Option<Bytes> = None;
        let mut count = 10usize;
        let mut kind: Option<Bytes> = None;
        while !args.is_empty() {
            if args.eat_keyword("MATCH") {
                pattern = Some(args.next_bytes()?.clone());
            } else if args.eat_keyword("COUNT") {
                let n = args.next_i64()?;
                if n < 1 {
                    return Err(CommandError::syntax());
                }
                count = n as usize;
            } else if args.eat_keyword("TYPE") {
                kind = Some(args.next_bytes()?.to_ascii_lowercase().into());
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(ScanArgs {
            cursor,
            pattern,
            count,
            kind,
        })
    }
}

fn scan(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let ScanArgs {
        cursor,
        pattern,
        count,
        kind,
    } = ScanArgs::parse(&mut Args::new(&argv[1..]))?;
    ctx.show_all()?;
    let mut out = Vec::new();
    let now = crate::client::now_ms();
    let next = ctx.db().scan(cursor, count, |k, v, deadline| {
        if deadline.is_some_and(|at| at <= now) {
            return;
        }
        let type_ok = kind
            .as_ref()
            .is_none_or(|t| t[..] == *v.type_name().as_bytes());
        let match_ok = pattern.as_ref().is_none_or(|p| glob_match(p, k));
        if type_ok && match_ok {
            out.push(Reply::Bulk(k.to_bytes()));
        }
    });
    Ok(Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::Array(out),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn e(line: &str) -> String {
        let v = argv(line);
        error_of(ScanArgs::parse(&mut Args::new(&v)))
    }

    #[test]
    fn scan_options() {
        let v = argv("5 match a* COUNT 7 TYPE Stream");
        let a = ScanArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.cursor, 5);
        assert_eq!(a.pattern.as_deref(), Some(&b"a*"[..]));
        assert_eq!(a.count, 7);
        assert_eq!(a.kind.as_deref(), Some(&b"stream"[..]));
    }

    #[test]
    fn scan_errors_are_redis_texts() {
        assert_eq!(e("x"), "ERR invalid cursor");
        assert_eq!(e("18446744073709551616"), "ERR invalid cursor");
        assert_eq!(e("0 COUNT 0"), "ERR syntax error");
        assert_eq!(
            e("0 COUNT x"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(e("0 FOO"), "ERR syntax error");
        assert_eq!(e("0 MATCH"), "ERR syntax error");
    }
}
