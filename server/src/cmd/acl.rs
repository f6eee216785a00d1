//! ACL: the command (SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI, CAT, LOG, GENPASS,
//! DRYRUN, SAVE, LOAD, HELP) and the check dispatch makes before every command, which logs
//! denials and answers them with Redis's NOPERM texts. The rules themselves are
//! `crate::acl`'s.

use bytes::Bytes;
use std::sync::Arc;

use brooklet_resp::{Args, Reply};

use super::table::flags::*;
use super::table::{container, simple};
use super::{CommandSpec, Ctx};
use crate::acl::log::Denied;
use crate::acl::{Denial, Reason, User, categories};
use crate::client::Client;
use crate::error::CommandError;
use crate::state::Shared;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[container(
    "acl",
    &[
        simple("cat", -2, LOADING, cat),
        simple("deluser", -3, ADMIN | LOADING, deluser),
        simple("dryrun", -4, ADMIN | LOADING, dryrun),
        simple("genpass", -2, LOADING, genpass),
        simple("getuser", 3, ADMIN | LOADING, getuser),
        simple("list", 2, ADMIN | LOADING, list),
        simple("load", 2, ADMIN | LOADING, load),
        simple("log", -2, ADMIN | LOADING, log),
        simple("save", 2, ADMIN | LOADING, save),
        simple("setuser", -3, ADMIN | LOADING, setuser),
        simple("users", 2, ADMIN | LOADING, users),
        simple("whoami", 2, LOADING, whoami),
        simple("help", 2, LOADING, help),
    ],
)];

/// ACL LOAD or SAVE without `aclfile`.
const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";
/// AUTH or HELLO AUTH refused.
pub(super) const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// The largest ACL GENPASS.
const GENPASS_MAX_BITS: i64 = 4096;

/// Reads `aclfile` at start-up; Err(Redis's text) aborts the start, as in Redis.
pub(crate) fn load_file_at_start(shared: &Shared) -> Result<(), String> {
    let (path, all_channels) = {
        let c = shared.config();
        (c.aclfile.clone(), c.acl_pubsub_allchannels)
    };
    let Some(path) = path else {
        return Ok(());
    };
    let users = crate::acl::file::load(&path, &shared.acl.index, all_channels)
        .map_err(|e| format!("Aborting startup because of ACL errors: {e}"))?;
    shared.acl.replace_all(users);
    Ok(())
}

/// Looks the client's user up again after a change to the users; a client whose user was
/// deleted is left unauthenticated as `default` (its connection is being closed).
#[cold]
fn refresh(shared: &Shared, client: &mut Client) {
    let epoch = shared.acl.epoch();
    match shared.acl.user(&client.user_name) {
        Some(u) => client.user = Some(u),
        None => {
            client.user_name = Bytes::from_static(b"default");
            client.user = Some(shared.acl.default_user());
            client.authenticated = false;
        }
    }
    client.acl_epoch = epoch;
}

/// The check before a command: None to run it, or the NOPERM error (logged). One load and
/// one flag for a user with every permission.
#[inline]
pub(super) fn refusal(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    argv: &[Bytes],
) -> Option<String> {
    let context = if client.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    check(shared, client, idx, argv, context, false)
}

/// Checks the command against the client's user (its rules picked up again if they
/// changed); the denial logged and worded for `context`.
#[inline]
fn check(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    argv: &[Bytes],
    context: &'static str,
    at_exec: bool,
) -> Option<String> {
    if client.acl_epoch != shared.acl.epoch() || client.user.is_none() {
        refresh(shared, client);
    }
    let user = client.user.as_ref()?;
    if user.unrestricted {
        return None;
    }
    let denial = user.check(&shared.acl.index, idx, argv).err()?;
    let user = user.clone();
    Some(deny(
        shared, client, &user, idx, argv, denial, context, at_exec,
    ))
}

/// The check a blocked command passes again each time a write may serve it: as Redis re-runs
/// it through its checks, rules changed while it waited apply.
pub(super) fn blocked_refusal(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    argv: &[Bytes],
) -> Option<String> {
    let user = super::client::lock_names_of(&client.handle).user.clone();
    if !user.is_empty() {
        client.user_name = user;
    }
    refusal(shared, client, idx, argv)
}

/// The check EXEC makes of each queued command as it reaches it: the rules may have changed
/// since the command was queued.
pub(super) fn refusal_at_exec(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    argv: &[Bytes],
) -> Option<String> {
    check(shared, client, idx, argv, "multi", true)
}

/// Logs a denial and words its error: NOPERM and Redis's text, or for a command queued in
/// MULTI and refused at EXEC, the text Redis gives there.
#[allow(clippy::too_many_arguments)]
pub(super) fn deny(
    shared: &Shared,
    client: &Client,
    user: &User,
    idx: usize,
    argv: &[Bytes],
    denial: Denial,
    context: &'static str,
    at_exec: bool,
) -> String {
    let name = &shared.acl.index.commands[idx].name;
    // Redis has made the refused command the client's last one by now (CLIENT LIST's `cmd=`).
    client
        .handle
        .last_cmd
        .store(idx, std::sync::atomic::Ordering::Relaxed);
    let object: &[u8] = match denial.reason {
        Reason::Command | Reason::Auth => name.as_bytes(),
        Reason::Key | Reason::Channel => argv.get(denial.pos).map_or(&[], |a| &a[..]),
    };
    log_denial(shared, client, denial.reason, context, object, &user.name);
    if at_exec {
        let why = match denial.reason {
            Reason::Command | Reason::Auth => "no permission to execute the command or subcommand",
            Reason::Key => "no permission to touch the specified keys",
            Reason::Channel => "no permission to access one of the channels used as arguments",
        };
        return format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
        );
    }
    format!("NOPERM {}", denial.message(&user.name, name, argv, false))
}

/// Adds an entry to ACL LOG.
pub(super) fn log_denial(
    shared: &Shared,
    client: &Client,
    reason: Reason,
    context: &'static str,
    object: &[u8],
    username: &[u8],
) {
    let max_len = shared.config().acllog_max_len;
    let names = &shared.acl.index.commands;
    let client_info =
        super::client::describe_with(|i| names.get(i).map(|c| c.name.as_str()), &client.handle);
    crate::keyspace::lock(&shared.acl.log).add(
        Denied {
            reason,
            context,
            object,
            username,
            client_info,
        },
        crate::client::now_ms(),
        max_len,
    );
}

/// AUTH and HELLO AUTH: checks the pair and makes the client that user, or logs the failure
/// (object: the command as typed) and refuses with WRONGPASS.
pub(super) fn authenticate(
    ctx: &mut Ctx<'_>,
    command: &Bytes,
    name: &[u8],
    pass: &[u8],
) -> Result<(), CommandError> {
    let epoch = ctx.shared.acl.epoch();
    let Some(user) = ctx.shared.acl.authenticate(name, pass) else {
        let context = if ctx.client.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        log_denial(ctx.shared, ctx.client, Reason::Auth, context, command, name);
        return Err(CommandError::msg(WRONGPASS));
    };
    become_user(ctx.client, user, epoch);
    ctx.client.authenticated = true;
    Ok(())
}

/// Makes the client run as `user` (AUTH, RESET).
pub(super) fn become_user(client: &mut Client, user: Arc<User>, epoch: u64) {
    client.user_name = user.name.clone();
    super::client::lock_names_of(&client.handle).user = user.name.clone();
    client.user = Some(user);
    client.acl_epoch = epoch;
}

fn users(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Array(
        ctx.shared
            .acl
            .users()
            .iter()
            .map(|u| Reply::Bulk(u.name.clone()))
            .collect(),
    ))
}

fn list(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Array(
        ctx.shared
            .acl
            .users()
            .iter()
            .map(|u| {
                Reply::bulk(format!(
                    "user {} {}",
                    String::from_utf8_lossy(&u.name),
                    u.describe()
                ))
            })
            .collect(),
    ))
}

fn whoami(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Bulk(ctx.client.user_name.clone()))
}

fn setuser(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let name = &argv[2];
    if name
        .iter()
        .any(|c| c.is_ascii_whitespace() || *c == 0 || *c == 0x0b)
    {
        return Err(CommandError::msg(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let all_channels = ctx.shared.config().acl_pubsub_allchannels;
    let old = ctx
        .shared
        .acl
        .set_user(name, &argv[3..], all_channels)
        .map_err(CommandError::text)?;
    if let (Some(old), Some(new)) = (old, ctx.shared.acl.user(name)) {
        kill_revoked_subscribers(ctx, &old, &new);
    }
    Ok(Reply::Ok)
}

/// Closes the user's subscribers whose channels or patterns the new rules no longer allow
/// (Redis's ACLKillPubsubClientsIfNeeded).
fn kill_revoked_subscribers(ctx: &mut Ctx<'_>, old: &User, new: &User) {
    if new.all_channels() {
        return;
    }
    let kept = !old.all_channels()
        && old.selectors.iter().all(|s| {
            s.channels
                .iter()
                .all(|c| new.selectors.iter().any(|n| n.channels.contains(c)))
        });
    if kept {
        return;
    }
    for handle in ctx.shared.clients.all() {
        if !handle.is_pubsub() || user_name_of(&handle) != new.name {
            continue;
        }
        let allowed = super::pubsub::subscriptions_of(ctx.shared, handle.id)
            .iter()
            .all(|(channel, is_pattern)| new.channel_allowed(channel, *is_pattern));
        if !allowed {
            if handle.id == ctx.client.id() {
                ctx.close = true;
            } else {
                handle.kill();
            }
        }
    }
}

fn deluser(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let names = &argv[2..];
    if names.iter().any(|n| n[..] == b"default"[..]) {
        return Err(CommandError::msg(
            "ERR The 'default' user cannot be removed",
        ));
    }
    let gone = ctx.shared.acl.delete_users(names);
    for u in &gone {
        kill_clients_of(ctx, &u.name);
    }
    Ok(Reply::Int(gone.len() as i64))
}

/// The user a connection runs as (`default` until it authenticates as another).
fn user_name_of(handle: &crate::client::ClientHandle) -> Bytes {
    let user = super::client::lock_names_of(handle).user.clone();
    if user.is_empty() {
        Bytes::from_static(b"default")
    } else {
        user
    }
}

/// Closes every connection authenticated as `name` (the caller's after its reply).
fn kill_clients_of(ctx: &mut Ctx<'_>, name: &[u8]) {
    for handle in ctx.shared.clients.all() {
        if user_name_of(&handle)[..] != name[..] {
            continue;
        }
        if handle.id == ctx.client.id() {
            ctx.close = true;
        } else {
            handle.kill();
        }
    }
}

fn getuser(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let Some(u) = ctx.shared.acl.user(&argv[2]) else {
        return Ok(Reply::Null);
    };
    let field = |k: &'static str, v: Reply| (Reply::bulk(k), v);
    let selector = |s: &crate::acl::user::Selector| {
        vec![
            field("commands", Reply::bulk(s.describe_commands())),
            field("keys", Reply::bulk(s.describe_keys())),
            field("channels", Reply::bulk(s.describe_channels())),
        ]
    };
    let mut fields = vec![
        field(
            "flags",
            Reply::Set(u.flag_names().into_iter().map(Reply::bulk).collect()),
        ),
        field(
            "passwords",
            Reply::Array(u.passwords.iter().map(|p| Reply::bulk(p.clone())).collect()),
        ),
    ];
    fields.extend(selector(u.root()));
    fields.push(field(
        "selectors",
        Reply::Array(
            u.selectors[1..]
                .iter()
                .map(|s| Reply::Map(selector(s)))
                .collect(),
        ),
    ));
    Ok(Reply::Map(fields))
}

fn cat(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    match argv.len() {
        2 => Ok(Reply::Array(
            categories::NAMES.iter().map(|n| Reply::bulk(*n)).collect(),
        )),
        3 => {
            let Some(bit) = categories::by_name(&argv[2]) else {
                let shown = &argv[2][..argv[2].len().min(128)];
                return Err(CommandError::text(format!(
                    "ERR Unknown category '{}'",
                    String::from_utf8_lossy(shown)
                )));
            };
            Ok(Reply::Array(
                ctx.shared
                    .acl
                    .index
                    .commands
                    .iter()
                    .filter(|c| c.categories & bit != 0)
                    .map(|c| Reply::bulk(c.name.clone()))
                    .collect(),
            ))
        }
        _ => Err(subcommand_syntax(argv)),
    }
}

/// Redis's reply to a known subcommand given the wrong arguments.
fn subcommand_syntax(argv: &[Bytes]) -> CommandError {
    CommandError::text(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(&argv[1])
    ))
}

/// ACL GENPASS's argument: the bits of randomness wanted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GenpassArgs {
    /// Bits, 1 to 4096.
    pub bits: i64,
}

impl GenpassArgs {
    /// # Format
    /// `[bits]`, after GENPASS.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        let bits = if args.remaining() == 0 {
            256
        } else {
            args.next_i64()?
        };
        args.finish()?;
        if bits <= 0 || bits > GENPASS_MAX_BITS {
            return Err(CommandError::text(format!(
                "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_MAX_BITS}"
            )));
        }
        Ok(GenpassArgs { bits })
    }
}

fn genpass(_: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 3 {
        return Err(subcommand_syntax(argv));
    }
    let GenpassArgs { bits } = GenpassArgs::parse(&mut Args::new(&argv[2..]))?;
    let chars = ((bits + 3) / 4) as usize;
    let mut random = vec![0u8; chars.div_ceil(2)];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| CommandError::msg("ERR failed to read random bytes"))?;
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    Ok(Reply::bulk(hex))
}

/// ACL LOG's argument.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LogArgs {
    /// Show this many entries, newest first.
    Show(usize),
    /// RESET.
    Reset,
}

impl LogArgs {
    /// # Format
    /// `[count | RESET]`, after LOG.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        if args.remaining() == 0 {
            return Ok(LogArgs::Show(10));
        }
        if args.eat_keyword("RESET") {
            return Ok(LogArgs::Reset);
        }
        let n = args.next_i64()?;
        Ok(LogArgs::Show(n.max(0) as usize))
    }
}

fn log(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 3 {
        return Err(subcommand_syntax(argv));
    }
    let count = match LogArgs::parse(&mut Args::new(&argv[2..]))? {
        LogArgs::Reset => {
            crate::keyspace::lock(&ctx.shared.acl.log).reset();
            return Ok(Reply::Ok);
        }
        LogArgs::Show(n) => n,
    };
    let now = crate::client::now_ms();
    let log = crate::keyspace::lock(&ctx.shared.acl.log);
    let field = |k: &'static str, v: Reply| (Reply::bulk(k), v);
    let entries = log
        .newest(count)
        .map(|e| {
            Reply::Map(vec![
                field("count", Reply::Int(e.count as i64)),
                field("reason", Reply::bulk(e.reason.as_str())),
                field("context", Reply::bulk(e.context)),
                field("object", Reply::Bulk(Bytes::copy_from_slice(&e.object))),
                field("username", Reply::Bulk(Bytes::copy_from_slice(&e.username))),
                field(
                    "age-seconds",
                    Reply::Double(now.saturating_sub(e.updated_ms) as f64 / 1000.0),
                ),
                field("client-info", Reply::bulk(e.client_info.clone())),
                field("entry-id", Reply::Int(e.entry_id as i64)),
                field("timestamp-created", Reply::Int(e.created_ms as i64)),
                field("timestamp-last-updated", Reply::Int(e.updated_ms as i64)),
            ])
        })
        .collect();
    Ok(Reply::Array(entries))
}

fn dryrun(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let Some(user) = ctx.shared.acl.user(&argv[2]) else {
        return Err(CommandError::text(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(&argv[2])
        )));
    };
    let cmd_argv = &argv[3..];
    let table = ctx.commands;
    let not_found = || {
        CommandError::text(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&cmd_argv[0])
        ))
    };
    let mut idx = table.find(&cmd_argv[0]).ok_or_else(not_found)?;
    if !table.entries[idx].spec.subcommands.is_empty() && cmd_argv.len() >= 2 {
        let mut full = table.entries[idx].full_name.as_bytes().to_vec();
        full.push(b'|');
        full.extend_from_slice(&cmd_argv[1]);
        idx = table.find(&full).ok_or_else(not_found)?;
    }
    let entry = &table.entries[idx];
    if !entry.spec.arity_ok(cmd_argv.len()) {
        return Err(CommandError::text(format!(
            "ERR wrong number of arguments for '{}' command",
            entry.full_name
        )));
    }
    match user.check(&ctx.shared.acl.index, idx, cmd_argv) {
        Ok(()) => Ok(Reply::Ok),
        Err(d) => Ok(Reply::bulk(d.message(
            &user.name,
            &entry.full_name,
            cmd_argv,
            true,
        ))),
    }
}

fn load(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let (path, all_channels) = {
        let c = ctx.shared.config();
        (c.aclfile.clone(), c.acl_pubsub_allchannels)
    };
    let path = path.ok_or(CommandError::msg(NO_ACL_FILE))?;
    let users = crate::acl::file::load(&path, &ctx.shared.acl.index, all_channels)
        .map_err(|e| CommandError::text(format!("ERR {e}")))?;
    let before: Vec<Bytes> = ctx
        .shared
        .acl
        .users()
        .iter()
        .map(|u| u.name.clone())
        .filter(|n| n[..] != b"default"[..])
        .collect();
    ctx.shared.acl.replace_all(users);
    // As in Redis, every user but `default` is a new one: their connections are closed.
    for name in &before {
        kill_clients_of(ctx, name);
    }
    Ok(Reply::Ok)
}

fn save(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let path = ctx.shared.config().aclfile.clone();
    let path = path.ok_or(CommandError::msg(NO_ACL_FILE))?;
    crate::acl::file::save(&path, &ctx.shared.acl.users()).map_err(|e| {
        tracing::warn!("Saving the ACL file {}: {e}", path.display());
        CommandError::msg(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
        )
    })?;
    Ok(Reply::Ok)
}

fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(super::reply::help_reply(
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    #[test]
    fn genpass_arguments() {
        let parse = |line: &str| {
            let v = argv(line);
            GenpassArgs::parse(&mut Args::new(&v))
        };
        assert_eq!(parse("").ok(), Some(GenpassArgs { bits: 256 }));
        assert_eq!(parse("5").ok(), Some(GenpassArgs { bits: 5 }));
        let range = "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096";
        assert_eq!(error_of(parse("0")), range);
        assert_eq!(error_of(parse("4097")), range);
        assert_eq!(
            error_of(parse("x")),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn log_arguments() {
        let parse = |line: &str| {
            let v = argv(line);
            LogArgs::parse(&mut Args::new(&v))
        };
        assert_eq!(parse("").ok(), Some(LogArgs::Show(10)));
        assert_eq!(parse("reset").ok(), Some(LogArgs::Reset));
        assert_eq!(parse("-3").ok(), Some(LogArgs::Show(0)));
        assert_eq!(
            error_of(parse("x")),
            "ERR value is not an integer or out of range"
        );
    }
}
