//! COMMAND and its subcommands: the command table described to clients (redis-cli reads its
//! hints from COMMAND DOCS).

use bytes::Bytes;

use brooklet_pubsub::glob_match;
use brooklet_resp::{Args, Reply};

use super::table::flags::*;
use super::{CommandSpec, Commands, Ctx};
use crate::error::CommandError;

type Entry = super::table::Entry<super::Handler>;

/// Flag bits and the names COMMAND INFO gives them.
const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (BLOCKING, "blocking"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MULTI, "no_multi"),
    (LOADING, "loading"),
    (MOVABLE_KEYS, "movablekeys"),
];

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// ACL categories derived from the group and flags, as Redis assigns them.
fn acl_categories(spec: &CommandSpec) -> Vec<Reply> {
    let mut cats = Vec::new();
    let mut add = |c: &'static str| cats.push(Reply::simple(c));
    match spec.flags & (WRITE | READONLY) {
        f if f & WRITE != 0 => add("@write"),
        f if f & READONLY != 0 => add("@read"),
        _ => {}
    }
    match spec.doc.group {
        "stream" => add("@stream"),
        "pubsub" => add("@pubsub"),
        "connection" => add("@connection"),
        "transactions" => add("@transaction"),
        "generic" => add("@keyspace"),
        _ => {}
    }
    if spec.flags & ADMIN != 0 {
        add("@admin");
        add("@dangerous");
    }
    add(if spec.flags & FAST != 0 {
        "@fast"
    } else {
        "@slow"
    });
    if spec.flags & BLOCKING != 0 {
        add("@blocking");
    }
    cats
}

fn key_specs(spec: &CommandSpec) -> Reply {
    if spec.first_key <= 0 {
        return Reply::Array(Vec::new());
    }
    let flag = if spec.flags & WRITE != 0 { "RW" } else { "RO" };
    let kv = |k: &str, v: Reply| (bulk(k), v);
    Reply::Array(vec![Reply::Map(vec![
        kv("flags", Reply::Set(vec![Reply::simple(flag)])),
        kv(
            "begin_search",
            Reply::Map(vec![
                kv("type", bulk("index")),
                kv(
                    "spec",
                    Reply::Map(vec![kv("index", Reply::Int(spec.first_key.into()))]),
                ),
            ]),
        ),
        kv(
            "find_keys",
            Reply::Map(vec![
                kv("type", bulk("range")),
                kv(
                    "spec",
                    Reply::Map(vec![
                        kv(
                            "lastkey",
                            Reply::Int(
                                (if spec.last_key < 0 {
                                    spec.last_key
                                } else {
                                    spec.last_key - spec.first_key
                                })
                                .into(),
                            ),
                        ),
                        kv("keystep", Reply::Int(spec.key_step.into())),
                        kv("limit", Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

fn info_of(t: &Commands, entry: &Entry) -> Reply {
    let spec = entry.spec;
    let flags = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0)
        .map(|(_, n)| Reply::simple(n))
        .collect();
    let subs = t.subcommands_of(spec).map(|e| info_of(t, e)).collect();
    Reply::Array(vec![
        bulk(&entry.full_name),
        Reply::Int(spec.arity.into()),
        Reply::Set(flags),
        Reply::Int(spec.first_key.into()),
        Reply::Int(spec.last_key.into()),
        Reply::Int(spec.key_step.into()),
        Reply::Set(acl_categories(spec)),
        Reply::Array(Vec::new()),
        key_specs(spec),
        Reply::Array(subs),
    ])
}

/// Turns a syntax line (`key [NOMKSTREAM] id field value [field value ...]`) into COMMAND DOCS
/// argument maps: UPPER words are tokens, lower words named values, `[...]` optional blocks,
/// `a|b` alternatives and a trailing `...` marks the previous argument as repeatable.
fn arguments(syntax: &str) -> Vec<Reply> {
    let mut out: Vec<Vec<(Reply, Reply)>> = Vec::new();
    let mut rest = syntax.trim();
    while !rest.is_empty() {
        let (item, optional, next) = if let Some(inner) = rest.strip_prefix('[') {
            let mut depth = 1;
            let mut end = inner.len();
            for (i, c) in inner.char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            (&inner[..end], true, inner.get(end + 1..).unwrap_or(""))
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (&rest[..end], false, &rest[end..])
        };
        rest = next.trim_start();
        let item = item.trim();
        if item == "..." {
            if let Some(last) = out.last_mut() {
                last.push((bulk("flags"), Reply::Array(vec![Reply::simple("multiple")])));
            }
            continue;
        }
        // `[x ...]` after `x` repeats it: mark the earlier argument instead of adding a block.
        if optional
            && item.ends_with("...")
            && let Some(last) = out.last_mut()
        {
            last.push((bulk("flags"), Reply::Array(vec![Reply::simple("multiple")])));
            continue;
        }
        let mut arg = describe(item);
        if optional {
            arg.push((bulk("flags"), Reply::Array(vec![Reply::simple("optional")])));
        }
        out.push(arg);
    }
    out.into_iter().map(Reply::Map).collect()
}

fn describe(item: &str) -> Vec<(Reply, Reply)> {
    let kv = |k: &str, v: Reply| (bulk(k), v);
    let name = item
        .split(['|', ' '])
        .next()
        .unwrap_or(item)
        .to_ascii_lowercase();
    if item.contains(' ') {
        return vec![
            kv("name", bulk(&name)),
            kv("type", bulk("block")),
            kv("arguments", Reply::Array(arguments(item))),
        ];
    }
    if item.contains('|') {
        let alts = item.split('|').map(|a| Reply::Map(describe(a))).collect();
        return vec![
            kv("name", bulk(&name)),
            kv("type", bulk("oneof")),
            kv("arguments", Reply::Array(alts)),
        ];
    }
    if item.chars().any(|c| c.is_ascii_uppercase()) {
        return vec![
            kv("name", bulk(&name)),
            kv("type", bulk("pure-token")),
            kv("token", bulk(item)),
        ];
    }
    let kind = match item {
        "key" => "key",
        "count" | "timeout" | "milliseconds" | "index" | "numkeys" | "min-idle-time" => "integer",
        _ => "string",
    };
    vec![kv("name", bulk(item)), kv("type", bulk(kind))]
}

fn docs_of(t: &Commands, entry: &Entry) -> Reply {
    let spec = entry.spec;
    let kv = |k: &str, v: Reply| (bulk(k), v);
    let mut fields = vec![
        kv("summary", bulk(spec.doc.summary)),
        kv("since", bulk(spec.doc.since)),
        kv("group", bulk(spec.doc.group)),
        kv("complexity", bulk(spec.doc.complexity)),
    ];
    if !spec.doc.syntax.is_empty() {
        fields.push(kv("arguments", Reply::Array(arguments(spec.doc.syntax))));
    }
    let subs: Vec<(Reply, Reply)> = t
        .subcommands_of(spec)
        .map(|e| (bulk(&e.full_name), docs_of(t, e)))
        .collect();
    if !subs.is_empty() {
        fields.push(kv("subcommands", Reply::Map(subs)));
    }
    Reply::Map(fields)
}

pub(super) fn command_all(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let t = ctx.commands;
    Ok(Reply::Array(
        t.commands().map(|(_, e)| info_of(t, e)).collect(),
    ))
}

pub(super) fn count(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let t = ctx.commands;
    Ok(Reply::Int(t.commands().count() as i64))
}

pub(super) fn info(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let t = ctx.commands;
    if argv.len() == 2 {
        return Ok(Reply::Array(
            t.commands().map(|(_, e)| info_of(t, e)).collect(),
        ));
    }
    Ok(Reply::Array(
        argv[2..]
            .iter()
            .map(|n| {
                t.find(n)
                    .map(|i| info_of(t, &t.entries[i]))
                    .unwrap_or(Reply::Null)
            })
            .collect(),
    ))
}

pub(super) fn docs(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let t = ctx.commands;
    let pairs = if argv.len() == 2 {
        t.commands()
            .map(|(_, e)| (bulk(&e.full_name), docs_of(t, e)))
            .collect()
    } else {
        argv[2..]
            .iter()
            .filter_map(|n| t.find(n))
            .map(|i| {
                let e = &t.entries[i];
                (bulk(&e.full_name), docs_of(t, e))
            })
            .collect()
    };
    Ok(Reply::Map(pairs))
}

pub(super) fn list(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let t = ctx.commands;
    let mut args = Args::new(&argv[2..]);
    let mut pattern: Option<Bytes> = None;
    let mut category: Option<Bytes> = None;
    let mut module = false;
    if args.eat_keyword("FILTERBY") {
        if args.eat_keyword("PATTERN") {
            pattern = Some(args.next_bytes()?.clone());
        } else if args.eat_keyword("ACLCAT") {
            category = Some(args.next_bytes()?.to_ascii_lowercase().into());
        } else if args.eat_keyword("MODULE") {
            args.next_bytes()?;
            module = true;
        } else {
            return Err(CommandError::syntax());
        }
    }
    args.finish()?;
    let names = t
        .entries
        .iter()
        .filter(|_| !module)
        .filter(|e| {
            pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, e.full_name.as_bytes()))
        })
        .filter(|e| {
            category.as_ref().is_none_or(|c| {
                acl_categories(e.spec)
                    .iter()
                    .any(|r| matches!(r, Reply::Simple(s) if s[1..] == c[..]))
            })
        })
        .map(|e| bulk(&e.full_name))
        .collect();
    Ok(Reply::Array(names))
}

pub(super) fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(super::reply::help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_lines_become_argument_maps() {
        let args = arguments("key [NOMKSTREAM] id field value [field value ...]");
        assert_eq!(args.len(), 5);
        let Reply::Map(last) = &args[4] else {
            panic!("not a map")
        };
        assert!(last.iter().any(
            |(k, v)| *k == bulk("flags") && *v == Reply::Array(vec![Reply::simple("multiple")])
        ));
    }
}
