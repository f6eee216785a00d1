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
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (BLOCKING, "blocking"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MULTI, "no_multi"),
    (LOADING, "loading"),
    (MOVABLE_KEYS, "movablekeys"),
    (SKIP_SLOWLOG, "skip_slowlog"),
];

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// Categories derived from the group and flags, for a command `crate::acl::commands` has no
/// row for.
pub(super) fn derived_categories(entry: &Entry) -> u32 {
    use crate::acl::categories as c;
    let spec = entry.spec;
    let mut cats = 0;
    // A container has only its speed; SWAPDB, of the server group, changes keys.
    let swapdb = spec.name == "swapdb";
    if (entry.doc.group == "generic" && spec.subcommands.is_empty()) || swapdb {
        cats |= c::KEYSPACE;
    }
    match spec.flags & (WRITE | READONLY) {
        f if f & WRITE != 0 => cats |= c::WRITE,
        f if f & READONLY != 0 => cats |= c::READ,
        _ => {}
    }
    cats |= match entry.doc.group {
        "stream" => c::STREAM,
        "string" => c::STRING,
        "pubsub" => c::PUBSUB,
        "connection" => c::CONNECTION,
        "transactions" => c::TRANSACTION,
        _ => 0,
    };
    if spec.flags & ADMIN != 0 {
        cats |= c::ADMIN | c::DANGEROUS;
    }
    cats |= if spec.flags & FAST != 0 {
        c::FAST
    } else {
        c::SLOW
    };
    if swapdb {
        cats |= c::DANGEROUS;
    }
    if spec.flags & BLOCKING != 0 {
        cats |= c::BLOCKING;
    }
    cats
}

/// Redis's row for a command, if `crate::acl::commands` has one.
fn acl_row(entry: &Entry) -> Option<&'static crate::acl::commands::CommandAcl> {
    crate::acl::commands::COMMANDS
        .iter()
        .find(|r| r.name == entry.full_name)
}

/// A command's ACL categories, as COMMAND INFO lists them.
fn acl_categories(entry: &Entry) -> Vec<Reply> {
    let bits = acl_row(entry).map_or_else(|| derived_categories(entry), |r| r.categories);
    crate::acl::categories::names_of(bits)
        .map(|n| Reply::Simple(Bytes::from(format!("@{n}"))))
        .collect()
}

/// One key spec as COMMAND INFO shows it.
fn key_spec_reply(k: &crate::acl::KeySpec) -> Reply {
    use crate::acl::key_specs::{Begin, Find, flags};
    let kv = |k: &str, v: Reply| (bulk(k), v);
    let int = |n: i32| Reply::Int(n.into());
    let mut fields = Vec::new();
    if !k.notes.is_empty() {
        fields.push(kv("notes", bulk(k.notes)));
    }
    let names = flags::NAMES
        .iter()
        .filter(|(bit, _)| k.flags & bit != 0)
        .map(|(_, n)| Reply::simple(n))
        .collect();
    fields.push(kv("flags", Reply::Set(names)));
    let (kind, spec) = match k.begin {
        Begin::Index(i) => ("index", vec![kv("index", int(i))]),
        Begin::Keyword(word, from) => (
            "keyword",
            vec![kv("keyword", bulk(word)), kv("startfrom", int(from))],
        ),
        Begin::Unknown => ("unknown", Vec::new()),
    };
    fields.push(kv(
        "begin_search",
        Reply::Map(vec![kv("type", bulk(kind)), kv("spec", Reply::Map(spec))]),
    ));
    let (kind, spec) = match k.find {
        Find::Range(last, step, limit) => (
            "range",
            vec![
                kv("lastkey", int(last)),
                kv("keystep", int(step)),
                kv("limit", int(limit)),
            ],
        ),
        Find::Keynum(idx, first, step) => (
            "keynum",
            vec![
                kv("keynumidx", int(idx)),
                kv("firstkey", int(first)),
                kv("keystep", int(step)),
            ],
        ),
        Find::Unknown => ("unknown", Vec::new()),
    };
    fields.push(kv(
        "find_keys",
        Reply::Map(vec![kv("type", bulk(kind)), kv("spec", Reply::Map(spec))]),
    ));
    Reply::Map(fields)
}

/// A key spec from a command's key positions, for a command `crate::acl::commands` has no
/// row for: read and written when it writes, read otherwise, so ACL checks every key it names.
pub(super) fn derived_key_specs(spec: &CommandSpec) -> Vec<crate::acl::KeySpec> {
    use crate::acl::key_specs::{Begin, Find, flags};
    if spec.first_key <= 0 {
        return Vec::new();
    }
    let access = if spec.flags & WRITE != 0 {
        flags::RW | flags::ACCESS | flags::UPDATE
    } else {
        flags::RO | flags::ACCESS
    };
    let last = if spec.last_key < 0 {
        spec.last_key
    } else {
        spec.last_key - spec.first_key
    };
    vec![crate::acl::KeySpec {
        flags: access,
        begin: Begin::Index(spec.first_key),
        find: Find::Range(last, spec.key_step, 0),
        notes: "",
    }]
}

/// A command's key specs: Redis's where the ACL table has the command, else derived from
/// its key positions.
pub(super) fn key_specs_of(entry: &Entry) -> std::borrow::Cow<'static, [crate::acl::KeySpec]> {
    match acl_row(entry) {
        Some(row) => std::borrow::Cow::Borrowed(row.key_specs),
        None => std::borrow::Cow::Owned(derived_key_specs(entry.spec)),
    }
}

fn key_specs(entry: &Entry) -> Reply {
    Reply::Array(key_specs_of(entry).iter().map(key_spec_reply).collect())
}

fn info_of(t: &Commands, entry: &Entry) -> Reply {
    let spec = entry.spec;
    // Redis's own flags and tips where Redis 7.0 has the command; else the table's flags.
    let (flags, tips) = match super::redis_info::redis_info(&entry.full_name) {
        Some((flags, tips)) => (
            flags.iter().map(|n| Reply::simple(n)).collect(),
            tips.iter().map(|t| bulk(t)).collect(),
        ),
        None => (
            FLAG_NAMES
                .iter()
                .filter(|(bit, _)| spec.flags & bit != 0)
                .map(|(_, n)| Reply::simple(n))
                .collect(),
            Vec::new(),
        ),
    };
    let subs = t.subcommands_of(spec).map(|e| info_of(t, e)).collect();
    Reply::Array(vec![
        bulk(&entry.full_name),
        Reply::Int(spec.arity.into()),
        Reply::Set(flags),
        Reply::Int(spec.first_key.into()),
        Reply::Int(spec.last_key.into()),
        Reply::Int(spec.key_step.into()),
        Reply::Set(acl_categories(entry)),
        Reply::Set(tips),
        key_specs(entry),
        Reply::Array(subs),
    ])
}

/// Turns a syntax line (`key [NOMKSTREAM] id field value [field value ...]`) into COMMAND DOCS
/// argument maps: UPPER words are tokens, lower words named values, `[...]` optional blocks,
/// `a|b` alternatives of one word each, `<a b | c>` alternatives of any arguments, and `...`
/// repeats what precedes it: `x ...` and `x [x ...]` mark `x` repeatable, and
/// `field value [field value ...]` makes `field value` one repeatable block, as Redis
/// documents XADD's pairs (redis-cli hints `field value [field value ...]` from it).
pub(super) fn arguments(syntax: &str) -> Vec<Reply> {
    // Each argument with the syntax text it came from, to recognise a repeated group.
    let mut out: Vec<(&str, Vec<(Reply, Reply)>)> = Vec::new();
    let mut rest = syntax.trim();
    while !rest.is_empty() {
        let (item, bracket, next) = match rest.as_bytes()[0] {
            open @ (b'[' | b'<') => {
                let close = if open == b'[' { b']' } else { b'>' };
                let end = matching(rest, open, close);
                (&rest[1..end], Some(open), rest.get(end + 1..).unwrap_or(""))
            }
            _ => {
                let end = rest.find(' ').unwrap_or(rest.len());
                (&rest[..end], None, &rest[end..])
            }
        };
        rest = next.trim_start();
        let item = item.trim();
        if item == "..." {
            if let Some((_, last)) = out.last_mut() {
                last.push(flag("multiple"));
            }
            continue;
        }
        if bracket == Some(b'[')
            && let Some(repeated) = item.strip_suffix("...").map(str::trim_end)
            && repeat_group(&mut out, repeated)
        {
            continue;
        }
        let mut arg = match bracket {
            Some(b'<') => one_of(item),
            _ => describe(item),
        };
        if bracket == Some(b'[') {
            arg.push(flag("optional"));
        }
        out.push((item, arg));
    }
    out.into_iter().map(|(_, arg)| Reply::Map(arg)).collect()
}

/// The index of the bracket closing the one `s` starts with.
fn matching(s: &str, open: u8, close: u8) -> usize {
    let mut depth = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    s.len()
}

/// A `flags` field with one flag.
fn flag(name: &'static str) -> (Reply, Reply) {
    (bulk("flags"), Reply::Array(vec![Reply::simple(name)]))
}

/// `[x y ...]` right after the arguments `x y`: marks `x` repeatable, or folds `x y` into
/// one repeatable block. False when the arguments before are not `repeated`.
fn repeat_group<'s>(out: &mut Vec<(&'s str, Vec<(Reply, Reply)>)>, repeated: &'s str) -> bool {
    let words: Vec<&str> = repeated.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > out.len() {
        return false;
    }
    let first = out.len() - words.len();
    if !out[first..]
        .iter()
        .map(|(src, _)| *src)
        .eq(words.iter().copied())
    {
        return false;
    }
    if words.len() == 1 {
        out[first].1.push(flag("multiple"));
        return true;
    }
    let members: Vec<Reply> = out.drain(first..).map(|(_, arg)| Reply::Map(arg)).collect();
    let kv = |k: &str, v: Reply| (bulk(k), v);
    let name = words.join("_");
    out.push((
        repeated,
        vec![
            kv("name", bulk(&name)),
            kv("type", bulk("block")),
            kv("arguments", Reply::Array(members)),
            flag("multiple"),
        ],
    ));
    true
}

/// `<a b | c>`: a choice between argument lists (a list of several is a block), named
/// after its first alternative.
fn one_of(item: &str) -> Vec<(Reply, Reply)> {
    let kv = |k: &str, v: Reply| (bulk(k), v);
    let mut alternatives = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in item.char_indices() {
        match c {
            '[' | '<' => depth += 1,
            ']' | '>' => depth -= 1,
            '|' if depth == 0 => {
                alternatives.push(&item[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    alternatives.push(&item[start..]);
    let alts: Vec<Reply> = alternatives
        .into_iter()
        .map(|alt| {
            let mut args = arguments(alt);
            if args.len() == 1 {
                args.remove(0)
            } else {
                Reply::Map(describe(alt.trim()))
            }
        })
        .collect();
    let name = match alts.first() {
        Some(Reply::Map(fields)) => fields
            .iter()
            .find(|(k, _)| *k == bulk("name"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| bulk("")),
        _ => bulk(""),
    };
    vec![
        (bulk("name"), name),
        kv("type", bulk("oneof")),
        kv("arguments", Reply::Array(alts)),
    ]
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
        "key" | "newkey" | "source" | "destination" => "key",
        "count" | "timeout" | "milliseconds" | "index" | "numkeys" | "min-idle-time"
        | "duration" | "maxsize" | "db" | "destination-db" | "index1" | "index2" => "integer",
        _ => "string",
    };
    vec![kv("name", bulk(item)), kv("type", bulk(kind))]
}

fn docs_of(t: &Commands, entry: &Entry) -> Reply {
    let spec = entry.spec;
    let kv = |k: &str, v: Reply| (bulk(k), v);
    let mut fields = vec![
        kv("summary", bulk(entry.doc.summary)),
        kv("since", bulk(entry.doc.since)),
        kv("group", bulk(entry.doc.group)),
        kv("complexity", bulk(entry.doc.complexity)),
    ];
    if !entry.doc.syntax.is_empty() {
        fields.push(kv("arguments", Reply::Array(arguments(entry.doc.syntax))));
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
            // Redis matches without case; the names are lower case.
            pattern = Some(args.next_bytes()?.to_ascii_lowercase().into());
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
                acl_categories(e)
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
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full command.",
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
    use crate::cmd::command_docs::DOCS;
    use crate::cmd::dispatch::table;

    fn field<'a>(arg: &'a Reply, key: &str) -> Option<&'a Reply> {
        let Reply::Map(fields) = arg else {
            panic!("not a map: {arg:?}")
        };
        fields.iter().find(|(k, _)| *k == bulk(key)).map(|(_, v)| v)
    }

    fn flags(arg: &Reply) -> Vec<Reply> {
        let Reply::Map(fields) = arg else {
            panic!("not a map: {arg:?}")
        };
        fields
            .iter()
            .filter(|(k, _)| *k == bulk("flags"))
            .flat_map(|(_, v)| match v {
                Reply::Array(f) => f.clone(),
                other => panic!("flags {other:?}"),
            })
            .collect()
    }

    fn members(arg: &Reply) -> &[Reply] {
        match field(arg, "arguments") {
            Some(Reply::Array(a)) => a,
            other => panic!("no arguments: {other:?}"),
        }
    }

    #[test]
    fn syntax_lines_become_argument_maps() {
        // `field value [field value ...]` is one repeated block of two, as Redis documents
        // XADD (redis-cli hints `field value [field value ...]` from it).
        let args = arguments("key [NOMKSTREAM] id field value [field value ...]");
        assert_eq!(args.len(), 4);
        let last = &args[3];
        assert_eq!(field(last, "type"), Some(&bulk("block")));
        assert_eq!(flags(last), vec![Reply::simple("multiple")]);
        let pair = members(last);
        assert_eq!(pair.len(), 2);
        assert_eq!(field(&pair[0], "name"), Some(&bulk("field")));
        assert_eq!(field(&pair[1], "name"), Some(&bulk("value")));
    }

    #[test]
    fn one_repeated_word_is_marked_multiple() {
        let args = arguments("key [key ...]");
        assert_eq!(args.len(), 1);
        assert_eq!(flags(&args[0]), vec![Reply::simple("multiple")]);
        let args = arguments("channel ...");
        assert_eq!(flags(&args[0]), vec![Reply::simple("multiple")]);
    }

    #[test]
    fn angle_brackets_are_a_choice_of_argument_lists() {
        let args = arguments("<ip:port | <[ID client-id] | [USER username]> ...>");
        assert_eq!(args.len(), 1);
        assert_eq!(field(&args[0], "type"), Some(&bulk("oneof")));
        let alts = members(&args[0]);
        assert_eq!(alts.len(), 2);
        assert_eq!(field(&alts[0], "name"), Some(&bulk("ip:port")));
        assert_eq!(field(&alts[1], "type"), Some(&bulk("oneof")));
        assert_eq!(flags(&alts[1]), vec![Reply::simple("multiple")]);
        let filters = members(&alts[1]);
        assert_eq!(filters.len(), 2);
        assert_eq!(flags(&filters[0]), vec![Reply::simple("optional")]);
    }

    /// Every argument of every command has a name, recursively (CLIENT KILL once offered a
    /// choice of two empty strings).
    fn assert_named(command: &str, args: &[Reply]) {
        for arg in args {
            let name = field(arg, "name");
            assert!(
                name.is_some_and(|n| *n != bulk("")),
                "{command}: unnamed argument {arg:?}"
            );
            if let Some(Reply::Array(inner)) = field(arg, "arguments") {
                assert_named(command, inner);
            }
        }
    }

    #[test]
    fn every_documented_argument_is_named() {
        for doc in DOCS {
            assert_named(doc.name, &arguments(doc.syntax));
        }
    }

    #[test]
    fn every_command_has_documentation_and_every_documentation_a_command() {
        let t = table();
        for e in &t.entries {
            assert_eq!(e.doc.name, e.full_name, "{} is undocumented", e.full_name);
            assert!(!e.doc.group.is_empty(), "{}", e.full_name);
        }
        for doc in DOCS {
            assert!(
                t.find(doc.name.as_bytes()).is_some(),
                "{} is no command",
                doc.name
            );
        }
        assert_eq!(DOCS.len(), t.entries.len());
    }

    #[test]
    fn every_command_has_redis_categories_and_key_specs() {
        let missing: Vec<&str> = table()
            .entries
            .iter()
            .filter(|e| acl_row(e).is_none())
            .map(|e| e.full_name.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "add rows to server/src/acl/commands.rs for {missing:?}"
        );
        for e in &table().entries {
            let keyed = e.spec.first_key > 0 || e.spec.flags & MOVABLE_KEYS != 0;
            let specs = acl_row(e).map_or(0, |r| r.key_specs.len());
            assert_eq!(
                keyed,
                specs > 0,
                "{}: key positions and key specs",
                e.full_name
            );
        }
    }
}
