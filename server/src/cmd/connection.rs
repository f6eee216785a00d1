//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};

use super::table::flags::*;
use super::table::simple;
use super::{CommandSpec, Ctx};
use crate::error::CommandError;
use crate::info::REDIS_VERSION;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    simple("ping", -1, FAST | SUBSCRIBED, ping),
    simple("echo", 2, FAST, echo),
    simple("hello", -1, FAST | NO_AUTH, hello),
    simple("auth", -2, FAST | NO_AUTH, auth),
    simple("select", 2, FAST | LOADING, select),
    simple("quit", -1, FAST | NO_AUTH | SUBSCRIBED | NOT_QUEUED, quit),
    simple("reset", 1, FAST | NO_AUTH | SUBSCRIBED | NOT_QUEUED, reset),
];

fn ping(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 2 {
        return Err(CommandError::msg(
            "ERR wrong number of arguments for 'ping' command",
        ));
    }
    // A RESP2 subscriber gets a two-element array, as Redis does.
    if !ctx.client.resp3 && ctx.client.handle.is_pubsub() {
        let msg = argv.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(msg)]));
    }
    Ok(match argv.get(1) {
        Some(msg) => Reply::Bulk(msg.clone()),
        None => Reply::simple("PONG"),
    })
}

fn echo(_: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Bulk(argv[1].clone()))
}

fn auth(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (user, pass) = match argv {
        [_, pass] => (&b"default"[..], pass),
        [_, user, pass] => (&user[..], pass),
        _ => return Err(CommandError::syntax()),
    };
    if argv.len() == 2 && ctx.shared.acl.default_user().nopass {
        return Err(CommandError::msg(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    super::acl::authenticate(ctx, &argv[0], user, pass)?;
    Ok(Reply::Ok)
}

/// HELLO's arguments.
#[derive(Debug)]
pub(crate) struct HelloArgs {
    /// The protocol asked for: Some(true) for RESP3, Some(false) for RESP2.
    pub resp3: Option<bool>,
    /// AUTH username password.
    pub credentials: Option<(Bytes, Bytes)>,
    /// SETNAME clientname, already checked.
    pub name: Option<Bytes>,
}

impl HelloArgs {
    /// # Format
    /// `[protover [AUTH username password] [SETNAME clientname]]`, after the command name.
    pub fn parse(args: &mut Args<'_>) -> Result<Self, CommandError> {
        let mut resp3 = None;
        if let Some(v) = args.peek() {
            let ver = brooklet_resp::parse_int(v).ok_or(CommandError::msg(
                "ERR Protocol version is not an integer or out of range",
            ))?;
            args.next_bytes()?;
            resp3 = Some(match ver {
                2 => false,
                3 => true,
                _ => return Err(CommandError::msg("NOPROTO unsupported protocol version")),
            });
        }
        let mut credentials = None;
        let mut name = None;
        while let Some(opt) = args.peek() {
            if args.eat_keyword("AUTH") && args.remaining() >= 2 {
                credentials = Some((args.next_bytes()?.clone(), args.next_bytes()?.clone()));
            } else if args.eat_keyword("SETNAME") && args.remaining() >= 1 {
                // Checked as it is read, as Redis does: a bad name must not leave the
                // connection authenticated by an AUTH that came with it.
                let given = args.next_bytes()?;
                super::client::validate_name(given)?;
                name = Some(crate::keyspace::keep(given));
            } else {
                return Err(CommandError::text(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(opt)
                )));
            }
        }
        Ok(HelloArgs {
            resp3,
            credentials,
            name,
        })
    }
}

fn hello(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let HelloArgs {
        resp3,
        credentials,
        name,
    } = HelloArgs::parse(&mut Args::new(&argv[1..]))?;
    let resp3 = resp3.unwrap_or(ctx.client.resp3);
    if let Some((user, pass)) = &credentials {
        super::acl::authenticate(ctx, &argv[0], user, pass)?;
    }
    if !ctx.client.authenticated && !ctx.shared.acl.default_open() {
        return Err(CommandError::msg(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        super::client::lock_names(ctx).name = name;
    }
    ctx.client.set_resp3(resp3);
    let field = |k: &'static str, v: Reply| (Reply::bulk(k), v);
    Ok(Reply::Map(vec![
        field("server", Reply::bulk("redis")),
        field("version", Reply::bulk(REDIS_VERSION)),
        field("proto", Reply::Int(if resp3 { 3 } else { 2 })),
        field("id", Reply::Int(ctx.client.id() as i64)),
        field("mode", Reply::bulk("standalone")),
        field("role", Reply::bulk("master")),
        field("modules", Reply::Array(Vec::new())),
        field("brooklet_version", Reply::bulk(env!("CARGO_PKG_VERSION"))),
    ]))
}

fn select(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let idx = Args::new(&argv[1..]).next_i64()?;
    // Redis reads the index as a C int first.
    if i32::try_from(idx).is_err() {
        return Err(CommandError::msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if idx < 0 || idx as usize >= ctx.shared.keyspace.count() {
        return Err(CommandError::msg("ERR DB index is out of range"));
    }
    ctx.client.select(idx as usize);
    Ok(Reply::Ok)
}

fn quit(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    ctx.close = true;
    Ok(Reply::Ok)
}

fn reset(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    super::tx::discard_state(ctx);
    super::pubsub::unsubscribe_all(ctx);
    super::monitor::stop(ctx);
    ctx.client.select(0);
    ctx.client.set_resp3(false);
    ctx.client.reply_mode = crate::client::ReplyMode::On;
    let epoch = ctx.shared.acl.epoch();
    super::acl::become_user(ctx.client, ctx.shared.acl.default_user(), epoch);
    ctx.client.authenticated = ctx.shared.acl.default_open();
    super::client::lock_names(ctx).name = Bytes::new();
    Ok(Reply::simple("RESET"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::{argv, error_of};

    fn e(line: &str) -> String {
        let v = argv(line);
        error_of(HelloArgs::parse(&mut Args::new(&v)))
    }

    #[test]
    fn hello_options() {
        let v = argv("3 AUTH default secret SETNAME app");
        let a = HelloArgs::parse(&mut Args::new(&v)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.resp3, Some(true));
        assert_eq!(
            a.credentials,
            Some((Bytes::from("default"), Bytes::from("secret")))
        );
        assert_eq!(a.name.as_deref(), Some(&b"app"[..]));
        assert_eq!(e(""), "ok");
        assert_eq!(e("2"), "ok");
    }

    #[test]
    fn hello_errors_are_redis_texts() {
        assert_eq!(
            e("x"),
            "ERR Protocol version is not an integer or out of range"
        );
        assert_eq!(e("4"), "NOPROTO unsupported protocol version");
        assert_eq!(e("3 FOO"), "ERR Syntax error in HELLO option 'FOO'");
        assert_eq!(
            e("3 AUTH default"),
            "ERR Syntax error in HELLO option 'AUTH'"
        );
        assert_eq!(e("3 SETNAME"), "ERR Syntax error in HELLO option 'SETNAME'");
        let v = [Bytes::from("3"), Bytes::from("SETNAME"), Bytes::from("a b")];
        assert_eq!(
            error_of(HelloArgs::parse(&mut Args::new(&v))),
            "ERR Client names cannot contain spaces, newlines or special characters."
        );
    }
}
