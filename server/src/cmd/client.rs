//! CLIENT and its subcommands.

use bytes::Bytes;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use brooklet_resp::{Args, Reply};

use super::table::flags::*;
use super::table::{container, simple};
use super::{CommandSpec, Commands, Ctx};
use crate::client::{ClientHandle, ClientNames, ReplyMode, now_ms};
use crate::error::CommandError;
use crate::keyspace::lock;
use crate::pause::PauseMode;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[container(
    "client",
    &[
        simple("id", 2, FAST, id),
        simple("setname", 3, FAST, setname),
        simple("getname", 2, FAST, getname),
        simple("list", -2, ADMIN, list),
        simple("info", 2, 0, info),
        simple("kill", -3, ADMIN, kill),
        simple("unblock", -3, ADMIN, unblock),
        simple("setinfo", 4, FAST, setinfo),
        simple("reply", 3, FAST, reply),
        simple("no-evict", 3, FAST, no_evict),
        simple("no-touch", 3, FAST, no_touch),
        simple("pause", -3, ADMIN, pause),
        simple("unpause", 2, ADMIN, unpause),
        simple("help", 2, FAST, help),
    ],
)];

/// Locks the calling client's names.
pub(crate) fn lock_names<'a>(ctx: &'a Ctx<'_>) -> MutexGuard<'a, ClientNames> {
    lock(&ctx.client.handle.names)
}

/// Locks a client's names.
pub(crate) fn lock_names_of(handle: &ClientHandle) -> MutexGuard<'_, ClientNames> {
    lock(&handle.names)
}

/// Refuses names with spaces, newlines or other special characters, as Redis does.
pub(crate) fn validate_name(name: &[u8]) -> Result<(), CommandError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CommandError::msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn id(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Int(ctx.client.id() as i64))
}

fn setname(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    validate_name(&argv[2])?;
    lock_names(ctx).name = crate::keyspace::keep(&argv[2]);
    Ok(Reply::Ok)
}

fn getname(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let name = lock_names(ctx).name.clone();
    Ok(if name.is_empty() {
        Reply::Null
    } else {
        Reply::Bulk(name)
    })
}

fn setinfo(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let value = crate::keyspace::keep(&argv[3]);
    if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CommandError::text(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(&argv[2]).to_ascii_lowercase()
        )));
    }
    let mut names = lock_names(ctx);
    if argv[2].eq_ignore_ascii_case(b"lib-name") {
        names.lib_name = value;
    } else if argv[2].eq_ignore_ascii_case(b"lib-ver") {
        names.lib_ver = value;
    } else {
        return Err(CommandError::text(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(&argv[2])
        )));
    }
    Ok(Reply::Ok)
}

fn reply(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mode = &argv[2];
    ctx.client.reply_mode = if mode.eq_ignore_ascii_case(b"on") {
        ReplyMode::On
    } else if mode.eq_ignore_ascii_case(b"off") {
        ReplyMode::Off
    } else if mode.eq_ignore_ascii_case(b"skip") {
        ReplyMode::Skip
    } else {
        return Err(CommandError::syntax());
    };
    Ok(Reply::Ok)
}

/// `ON` or `OFF`, in any case.
fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if arg.eq_ignore_ascii_case(b"on") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Ok(false)
    } else {
        Err(CommandError::syntax())
    }
}

/// CLIENT NO-EVICT: kept and shown (flag `e`); Brooklet never evicts clients.
fn no_evict(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let on = on_off(&argv[2])?;
    ctx.client.handle.no_evict.store(on, Ordering::Relaxed);
    Ok(Reply::Ok)
}

/// CLIENT NO-TOUCH: the client's commands, TOUCH aside, do not count as key accesses.
fn no_touch(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let on = on_off(&argv[2])?;
    ctx.client.handle.no_touch.store(on, Ordering::Relaxed);
    Ok(Reply::Ok)
}

/// CLIENT PAUSE's arguments.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PauseArgs {
    /// How long, in milliseconds.
    pub timeout_ms: u64,
    /// What it holds back (ALL unless WRITE is given).
    pub mode: PauseMode,
}

impl PauseArgs {
    /// # Format
    /// `timeout [WRITE|ALL]`, after CLIENT PAUSE. The mode is checked before the timeout,
    /// as Redis does.
    pub fn parse(args: &[Bytes]) -> Result<Self, CommandError> {
        let mode = match args.get(1) {
            None => PauseMode::All,
            Some(m) if m.eq_ignore_ascii_case(b"write") => PauseMode::Write,
            Some(m) if m.eq_ignore_ascii_case(b"all") => PauseMode::All,
            Some(_) => {
                return Err(CommandError::msg(
                    "ERR CLIENT PAUSE mode must be WRITE or ALL",
                ));
            }
        };
        let timeout = brooklet_resp::parse_int(&args[0]).ok_or(CommandError::msg(
            "ERR timeout is not an integer or out of range",
        ))?;
        if timeout < 0 {
            return Err(CommandError::msg("ERR timeout is negative"));
        }
        Ok(PauseArgs {
            timeout_ms: timeout as u64,
            mode,
        })
    }
}

fn pause(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 4 {
        return Err(super::reply::subcommand_syntax("CLIENT", &argv[1]));
    }
    let args = PauseArgs::parse(&argv[2..])?;
    let now = now_ms();
    let end = if args.timeout_ms == 0 {
        0
    } else {
        now.checked_add(args.timeout_ms)
            .filter(|end| *end <= i64::MAX as u64)
            .ok_or(CommandError::msg("ERR timeout is out of range"))?
    };
    ctx.shared.pause.pause(end, args.mode);
    Ok(Reply::Ok)
}

fn unpause(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    ctx.shared.pause.unpause();
    Ok(Reply::Ok)
}

fn info(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let mut line = describe(ctx.commands, &ctx.client.handle);
    line.push('\n');
    Ok(Reply::Verbatim("txt", Bytes::from(line)))
}

fn list(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let mut args = Args::new(&argv[2..]);
    let mut kind: Option<Bytes> = None;
    let mut ids: Option<Vec<u64>> = None;
    while !args.is_empty() {
        if args.eat_keyword("TYPE") {
            let t = args.next_bytes()?.to_ascii_lowercase();
            if !matches!(
                &t[..],
                b"normal" | b"master" | b"replica" | b"slave" | b"pubsub"
            ) {
                return Err(CommandError::text(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(&t)
                )));
            }
            kind = Some(Bytes::from(t));
        } else if args.eat_keyword("ID") {
            let mut v = Vec::new();
            while !args.is_empty() {
                let n = args
                    .next_i64()
                    .map_err(|_| CommandError::msg("ERR Invalid client ID"))?;
                v.push(n.max(0) as u64);
            }
            if v.is_empty() {
                return Err(CommandError::syntax());
            }
            ids = Some(v);
        } else {
            return Err(CommandError::syntax());
        }
    }
    let mut out = String::new();
    for c in ctx.shared.clients.all() {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        if let Some(k) = &kind {
            let pubsub = c.is_pubsub();
            let matches = match &k[..] {
                b"pubsub" => pubsub,
                b"normal" => !pubsub,
                _ => false,
            };
            if !matches {
                continue;
            }
        }
        out.push_str(&describe(ctx.commands, &c));
        out.push('\n');
    }
    Ok(Reply::Verbatim("txt", Bytes::from(out)))
}

/// One CLIENT LIST line, with Redis 7.4's fields in Redis's order.
pub(crate) fn describe(commands: &Commands, c: &ClientHandle) -> String {
    describe_with(|i| commands.entries.get(i).map(|e| e.full_name.as_str()), c)
}

/// One CLIENT LIST line, naming the last command by `name_of(table position)`.
pub(crate) fn describe_with<'n>(
    name_of: impl Fn(usize) -> Option<&'n str>,
    c: &ClientHandle,
) -> String {
    let names = lock(&c.names).clone();
    let now = now_ms();
    let idle = now.saturating_sub(c.last_interaction_ms.load(Ordering::Relaxed)) / 1000;
    let mut flags = String::new();
    if c.monitoring.load(Ordering::Relaxed) {
        flags.push('O');
    }
    if c.is_pubsub() {
        flags.push('P');
    }
    let multi_len = c.multi_len.load(Ordering::Relaxed);
    if multi_len > 0 {
        flags.push('x');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if c.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let last = c.last_cmd.load(Ordering::Relaxed);
    let cmd = name_of(last).unwrap_or("NULL");
    let omem = c.queued_bytes.load(Ordering::Relaxed);
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} watch={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&names.name),
        c.created.elapsed().as_secs(),
        idle,
        flags,
        c.db.load(Ordering::Relaxed),
        c.subs[0].load(Ordering::Relaxed),
        c.subs[1].load(Ordering::Relaxed),
        c.subs[2].load(Ordering::Relaxed),
        if multi_len > 0 { multi_len as i64 } else { -1 },
        c.watching.load(Ordering::Relaxed),
        omem,
        cmd,
        if names.user.is_empty() {
            "default".into()
        } else {
            String::from_utf8_lossy(&names.user)
        },
        if c.resp3.load(Ordering::Relaxed) {
            3
        } else {
            2
        },
        String::from_utf8_lossy(&names.lib_name),
        String::from_utf8_lossy(&names.lib_ver),
    )
}

/// One filter of CLIENT KILL's new form; a client is killed when it passes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KillFilter {
    /// ID client-id.
    Id(u64),
    /// ADDR ip:port.
    Addr(Bytes),
    /// LADDR ip:port.
    LAddr(Bytes),
    /// TYPE normal (false) or pubsub (true).
    PubSub(bool),
    /// TYPE normal, master, replica or slave: the connection's replication kind
    /// (`crate::client::KIND_*`).
    Kind(u8),
    /// MAXAGE seconds: connected at least this long.
    MaxAge(i64),
    /// USER username: authenticated as this ACL user.
    User(Bytes),
}

impl KillFilter {
    fn admits(&self, c: &ClientHandle) -> bool {
        match self {
            KillFilter::Id(id) => c.id == *id,
            KillFilter::Addr(a) => c.addr.to_string().as_bytes() == &a[..],
            KillFilter::LAddr(a) => c.laddr.to_string().as_bytes() == &a[..],
            KillFilter::PubSub(want) => c.is_pubsub() == *want,
            KillFilter::Kind(k) => c.kind.load(std::sync::atomic::Ordering::Relaxed) == *k,
            KillFilter::MaxAge(secs) => c.created.elapsed().as_secs() as i64 >= *secs,
            KillFilter::User(name) => {
                let names = lock(&c.names);
                let user: &[u8] = if names.user.is_empty() {
                    b"default"
                } else {
                    &names.user
                };
                user == &name[..]
            }
        }
    }
}

/// CLIENT KILL's arguments.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientKillArgs {
    /// The old form, `ip:port`: answered OK or an error.
    Addr(Bytes),
    /// The new form: filters, and whether the caller is spared (SKIPME, default yes).
    Filters {
        filters: Vec<KillFilter>,
        skipme: bool,
    },
}

impl ClientKillArgs {
    /// # Format
    /// `ip:port` or `[ID client-id] [TYPE normal|master|replica|pubsub] [USER username]
    /// [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no] [MAXAGE maxage] ...`, after CLIENT KILL.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        if args.remaining() == 1 {
            return Ok(ClientKillArgs::Addr(args.next_bytes()?.clone()));
        }
        let mut filters = Vec::new();
        let mut skipme = true;
        while !args.is_empty() {
            let key = args.next_bytes()?.to_ascii_lowercase();
            let value = args.next_bytes()?.clone();
            match &key[..] {
                b"id" => {
                    let id = brooklet_resp::parse_int(&value)
                        .filter(|n| *n > 0)
                        .ok_or(CommandError::msg("ERR client-id should be greater than 0"))?
                        as u64;
                    filters.push(KillFilter::Id(id));
                }
                b"addr" => filters.push(KillFilter::Addr(value)),
                b"laddr" => filters.push(KillFilter::LAddr(value)),
                b"user" => filters.push(KillFilter::User(value)),
                b"type" => {
                    let filter = match &value.to_ascii_lowercase()[..] {
                        b"pubsub" => KillFilter::PubSub(true),
                        b"normal" => {
                            filters.push(KillFilter::Kind(crate::client::KIND_NORMAL));
                            KillFilter::PubSub(false)
                        }
                        b"master" => KillFilter::Kind(crate::client::KIND_MASTER),
                        b"replica" | b"slave" => KillFilter::Kind(crate::client::KIND_REPLICA),
                        _ => {
                            return Err(CommandError::text(format!(
                                "ERR Unknown client type '{}'",
                                String::from_utf8_lossy(&value)
                            )));
                        }
                    };
                    filters.push(filter);
                }
                b"skipme" => {
                    skipme = match &value.to_ascii_lowercase()[..] {
                        b"yes" => true,
                        b"no" => false,
                        _ => return Err(CommandError::syntax()),
                    }
                }
                b"maxage" => {
                    let secs = brooklet_resp::parse_int(&value).ok_or(CommandError::syntax())?;
                    filters.push(KillFilter::MaxAge(secs));
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        Ok(ClientKillArgs::Filters { filters, skipme })
    }
}

fn kill(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (filters, skipme) = match ClientKillArgs::parse(&mut Args::new(&argv[2..]))? {
        ClientKillArgs::Addr(addr) => {
            let target = ctx
                .shared
                .clients
                .all()
                .into_iter()
                .find(|c| c.addr.to_string().as_bytes() == &addr[..]);
            return match target {
                Some(c) => {
                    kill_one(ctx, &c);
                    Ok(Reply::Ok)
                }
                None => Err(CommandError::msg("ERR No such client")),
            };
        }
        ClientKillArgs::Filters { filters, skipme } => (filters, skipme),
    };
    for f in &filters {
        if let KillFilter::User(name) = f
            && ctx.shared.acl.user(name).is_none()
        {
            return Err(CommandError::text(format!(
                "ERR No such user '{}'",
                String::from_utf8_lossy(name)
            )));
        }
    }
    let me = ctx.client.id();
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        if skipme && c.id == me {
            continue;
        }
        if filters.iter().all(|f| f.admits(&c)) {
            kill_one(ctx, &c);
            killed += 1;
        }
    }
    Ok(Reply::Int(killed))
}

fn kill_one(ctx: &mut Ctx<'_>, c: &ClientHandle) {
    if c.id == ctx.client.id() {
        // Killing oneself: Redis answers first, then closes.
        ctx.close = true;
    } else {
        c.kill();
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked (XREAD / XREADGROUP
/// BLOCK) and now has its answer, the timeout's or an UNBLOCKED error; else 0.
fn unblock(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 4 {
        return Err(super::reply::subcommand_syntax("CLIENT", &argv[1]));
    }
    let error = match argv.get(3) {
        None => None,
        Some(r) if r.eq_ignore_ascii_case(b"TIMEOUT") => None,
        Some(r) if r.eq_ignore_ascii_case(b"ERROR") => {
            Some("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        }
        Some(_) => {
            return Err(CommandError::msg(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    };
    let id = Args::new(&argv[2..3]).next_i64()?;
    let unblocked = u64::try_from(id).is_ok_and(|id| ctx.shared.blocking.unblock(id, error));
    Ok(Reply::Int(i64::from(unblocked)))
}

fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(super::reply::help_reply(
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
            "LIST [options ...]",
            "    Return information about client connections. Options: TYPE <type>, ID <id> [...].",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction (Brooklet evicts no clients).",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on (Brooklet keeps none).",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn e(line: &str) -> String {
        let v = argv(line);
        error_of(ClientKillArgs::parse(&mut Args::new(&v)))
    }

    #[test]
    fn client_kill_forms() {
        let v = argv("127.0.0.1:5000");
        assert_eq!(
            ClientKillArgs::parse(&mut Args::new(&v)),
            Ok(ClientKillArgs::Addr(Bytes::from("127.0.0.1:5000")))
        );
        let v = argv("id 7 TYPE pubsub USER default ADDR a:1 LADDR b:2 SKIPME no MAXAGE 5");
        assert_eq!(
            ClientKillArgs::parse(&mut Args::new(&v)),
            Ok(ClientKillArgs::Filters {
                filters: vec![
                    KillFilter::Id(7),
                    KillFilter::PubSub(true),
                    KillFilter::User(Bytes::from("default")),
                    KillFilter::Addr(Bytes::from("a:1")),
                    KillFilter::LAddr(Bytes::from("b:2")),
                    KillFilter::MaxAge(5),
                ],
                skipme: false,
            })
        );
        let v = argv("TYPE replica");
        assert_eq!(
            ClientKillArgs::parse(&mut Args::new(&v)),
            Ok(ClientKillArgs::Filters {
                filters: vec![KillFilter::Kind(crate::client::KIND_REPLICA)],
                skipme: true,
            })
        );
    }

    #[test]
    fn client_pause_arguments() {
        let p = |line: &str| PauseArgs::parse(&argv(line));
        assert_eq!(
            p("100"),
            Ok(PauseArgs {
                timeout_ms: 100,
                mode: PauseMode::All
            })
        );
        assert_eq!(p("0 write").map(|a| a.mode), Ok(PauseMode::Write));
        assert_eq!(p("5 ALL").map(|a| a.mode), Ok(PauseMode::All));
        let e = |line: &str| error_of(p(line));
        assert_eq!(e("100 read"), "ERR CLIENT PAUSE mode must be WRITE or ALL");
        assert_eq!(e("x read"), "ERR CLIENT PAUSE mode must be WRITE or ALL");
        assert_eq!(e("x"), "ERR timeout is not an integer or out of range");
        assert_eq!(
            e("1.5 write"),
            "ERR timeout is not an integer or out of range"
        );
        assert_eq!(e("-1"), "ERR timeout is negative");
    }

    #[test]
    fn client_kill_errors_are_redis_texts() {
        assert_eq!(e("ID 0"), "ERR client-id should be greater than 0");
        assert_eq!(e("ID x"), "ERR client-id should be greater than 0");
        assert_eq!(e("TYPE foo"), "ERR Unknown client type 'foo'");
        assert_eq!(e("SKIPME maybe"), "ERR syntax error");
        assert_eq!(e("MAXAGE x"), "ERR syntax error");
        assert_eq!(e("FOO 1"), "ERR syntax error");
        assert_eq!(e("ID 1 TYPE"), "ERR syntax error");
    }
}
