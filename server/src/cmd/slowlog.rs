//! SLOWLOG GET / LEN / RESET / HELP over the slow log (`slowlog.rs`).

use bytes::Bytes;

use brooklet_resp::Reply;

use super::table::flags::*;
use super::table::{container, simple};
use super::{CommandSpec, Ctx};
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[container(
    "slowlog",
    &[
        simple("get", -2, ADMIN | LOADING, get),
        simple("len", 2, ADMIN | LOADING, len),
        simple("reset", 2, ADMIN | LOADING, reset),
        simple("help", 2, LOADING, help),
    ],
)];

/// Entries SLOWLOG GET returns without a count.
const DEFAULT_COUNT: usize = 10;

/// The refusal of a count that is no integer or is below -1.
const BAD_COUNT: &str = "ERR count should be greater than or equal to -1";

/// SLOWLOG GET's arguments: `[count]`, -1 for every entry.
#[derive(Debug, PartialEq, Eq)]
struct GetArgs {
    /// None: every entry.
    count: Option<usize>,
}

impl GetArgs {
    /// Parses what follows `SLOWLOG GET`.
    fn parse(rest: &[Bytes]) -> Result<Self, CommandError> {
        match rest {
            [] => Ok(GetArgs {
                count: Some(DEFAULT_COUNT),
            }),
            [n] => match brooklet_resp::parse_int(n) {
                Some(-1) => Ok(GetArgs { count: None }),
                Some(n) if n >= 0 => Ok(GetArgs {
                    count: Some(usize::try_from(n).unwrap_or(usize::MAX)),
                }),
                _ => Err(CommandError::msg(BAD_COUNT)),
            },
            // Redis answers a GET with extra arguments as it answers an unknown subcommand.
            _ => Err(CommandError::msg(
                "ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.",
            )),
        }
    }
}

fn get(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = GetArgs::parse(&argv[2..])?;
    let entries = ctx.shared.slowlog.newest(a.count.unwrap_or(usize::MAX));
    Ok(Reply::Array(
        entries
            .into_iter()
            .map(|e| {
                Reply::Array(vec![
                    Reply::Int(e.id as i64),
                    Reply::Int(e.time as i64),
                    Reply::Int(e.duration_us as i64),
                    Reply::Array(e.args.into_iter().map(Reply::Bulk).collect()),
                    Reply::bulk(e.addr),
                    Reply::Bulk(e.name),
                ])
            })
            .collect(),
    ))
}

fn len(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(Reply::Int(ctx.shared.slowlog.len() as i64))
}

fn reset(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    ctx.shared.slowlog.reset();
    Ok(Reply::Ok)
}

fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(super::reply::help_reply(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::argv;

    fn e(line: &str) -> String {
        match GetArgs::parse(&argv(line)) {
            Ok(a) => panic!("{a:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn get_counts() {
        assert_eq!(GetArgs::parse(&[]).ok(), Some(GetArgs { count: Some(10) }));
        assert_eq!(
            GetArgs::parse(&argv("-1")).ok(),
            Some(GetArgs { count: None })
        );
        assert_eq!(
            GetArgs::parse(&argv("0")).ok(),
            Some(GetArgs { count: Some(0) })
        );
        assert_eq!(e("-2"), BAD_COUNT);
        assert_eq!(e("x"), BAD_COUNT);
        assert_eq!(
            e("1 2"),
            "ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP."
        );
    }
}
