//! XNACK (Redis 8.8): releasing pending entries back to their group without acknowledging
//! them.
//!
//! Redis looks the key and the group up before it reads any argument past the group, so
//! the parse keeps its error in the struct for after the lookup. Several of Redis's texts
//! here carry the `ERR` prefix twice on the wire: the message Redis passes already starts
//! with `ERR ` and its error reply adds the generic code in front of it.

use bytes::Bytes;

use brooklet_resp::{Args, Reply};
use brooklet_streams::{NackArgs, NackMode, StreamError, StreamId};

use super::stream::strict_id;
use super::table::command;
use super::table::flags::*;
use super::write::Missing;
use super::{CommandSpec, Ctx};
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[command("xnack", -7, WRITE | FAST, (1, 1, 1), xnack)];

/// XNACK's arguments.
#[derive(Debug)]
pub(crate) struct XNackArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The mode, IDs and options, or the first error Redis reports once it found the key
    /// and the group.
    pub nack: Result<NackArgs, CommandError>,
}

impl<'a> XNackArgs<'a> {
    /// # Format
    /// `key group SILENT|FAIL|FATAL IDS numids id [id ...] [RETRYCOUNT count] [FORCE]`,
    /// after the command name; `IDS`, `RETRYCOUNT` and `FORCE` may come in any order (a
    /// later `IDS` replaces an earlier one).
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        Ok(XNackArgs {
            key,
            group,
            nack: parse_nack(args),
        })
    }
}

fn twice_err(text: &str) -> CommandError {
    CommandError::text(format!("ERR ERR {text}"))
}

/// XNACK's arguments after the group.
fn parse_nack(args: &mut Args<'_>) -> Result<NackArgs, CommandError> {
    let mode = args.next_bytes()?;
    let mode = if mode.eq_ignore_ascii_case(b"SILENT") {
        NackMode::Silent
    } else if mode.eq_ignore_ascii_case(b"FAIL") {
        NackMode::Fail
    } else if mode.eq_ignore_ascii_case(b"FATAL") {
        NackMode::Fatal
    } else {
        return Err(twice_err("mode must be SILENT, FAIL, or FATAL"));
    };
    let mut ids: Option<&[Bytes]> = None;
    let mut retry_count = None;
    let mut force = false;
    while let Some(opt) = args.peek() {
        let more = args.remaining() > 1;
        if more && args.eat_keyword("IDS") {
            let numids = args
                .next_i64()
                .ok()
                .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
                .ok_or(CommandError::msg("ERR numids must be a positive integer"))?;
            let rest = args.rest();
            let numids = usize::try_from(numids).unwrap_or(usize::MAX);
            if numids > rest.len() {
                return Err(twice_err("number of IDs doesn't match numids"));
            }
            ids = Some(&rest[..numids]);
            for _ in 0..numids {
                args.next_bytes()?;
            }
        } else if args.eat_keyword("FORCE") {
            force = true;
        } else if more && args.eat_keyword("RETRYCOUNT") {
            let n = args.next_i64()?;
            if n < 0 {
                return Err(twice_err("Invalid RETRYCOUNT value, must be >= 0"));
            }
            retry_count = Some(n as u64);
        } else {
            return Err(twice_err(&format!(
                "Unrecognized XNACK option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    let Some(ids) = ids else {
        return Err(twice_err("syntax error, expected IDS keyword"));
    };
    let ids = ids
        .iter()
        .map(|a| strict_id(a))
        .collect::<Result<Vec<StreamId>, _>>()?;
    Ok(NackArgs {
        mode,
        ids,
        retry_count,
        force,
    })
}

fn no_key_or_group(key: &Bytes, group: &Bytes) -> CommandError {
    StreamError::NoKeyOrGroup {
        key: key.clone(),
        group: group.clone(),
    }
    .into()
}

/// XNACK: how many entries were released. Like Redis, no keyspace event and no WATCH
/// change; readers blocked on the key are served again when something was released (a
/// released entry is claimable at once).
fn xnack(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XNackArgs::parse(&mut Args::new(&argv[1..]))?;
    let (key, group) = (a.key, a.group);
    let no_key = || no_key_or_group(key, group);
    let released = ctx.write_stream(key, Missing::Fail(&no_key), |s, out, fx| {
        if s.group(group).is_none() {
            return Err(no_key_or_group(key, group));
        }
        let released = s.nack(key, group, &a.nack?, out)?;
        if released > 0 {
            fx.wake();
        }
        Ok(released)
    })?;
    Ok(Reply::Int(released as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::reply::testing::argv;

    const BAD_ID: &str = "ERR Invalid stream ID specified as stream command argument";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    fn parse(line: &str) -> Result<NackArgs, String> {
        let v = argv(line);
        let a = XNackArgs::parse(&mut Args::new(&v)).map_err(|e| e.to_string())?;
        a.nack.map_err(|e| e.to_string())
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Ok(a) => panic!("{line}: parsed {a:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_modes_ids_and_options_in_any_order() {
        let a = parse("s g fail IDS 2 1-0 2 RETRYCOUNT 5 force").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.mode, NackMode::Fail);
        assert_eq!(a.ids, vec![StreamId::new(1, 0), StreamId::new(2, 0)]);
        assert_eq!(a.retry_count, Some(5));
        assert!(a.force);
        let a = parse("s g FATAL FORCE RETRYCOUNT 0 IDS 1 3-1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.mode, a.retry_count, a.force),
            (NackMode::Fatal, Some(0), true)
        );
        let a = parse("s g Silent IDS 1 1-1 IDS 1 2-2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.mode, a.ids),
            (NackMode::Silent, vec![StreamId::new(2, 2)])
        );
    }

    #[test]
    fn errors_are_redis_texts() {
        assert_eq!(
            err("s g BADMODE IDS 1 1-0"),
            "ERR ERR mode must be SILENT, FAIL, or FATAL"
        );
        let unknown = |o: &str| format!("ERR ERR Unrecognized XNACK option '{o}'");
        assert_eq!(err("s g FAIL BADOPT IDS 1 1-0"), unknown("BADOPT"));
        assert_eq!(err("s g FAIL IDS 1 1-0 BADOPT"), unknown("BADOPT"));
        assert_eq!(err("s g FAIL FATAL IDS 1 1-0"), unknown("FATAL"));
        assert_eq!(err("s g SILENT NOTIDS 1 1-0"), unknown("NOTIDS"));
        assert_eq!(err("s g FAIL IDS 1 1-0 RETRYCOUNT"), unknown("RETRYCOUNT"));
        assert_eq!(err("s g FAIL IDS 1 1-0 2-0"), unknown("2-0"));
        assert_eq!(err("s g FAIL FORCE IDS"), unknown("IDS"));
        assert_eq!(
            err("s g SILENT FORCE RETRYCOUNT 5"),
            "ERR ERR syntax error, expected IDS keyword"
        );
        for n in ["abc", "0", "-1", "2147483648"] {
            assert_eq!(
                err(&format!("s g SILENT IDS {n} 1-0")),
                "ERR numids must be a positive integer"
            );
        }
        assert_eq!(
            err("s g SILENT IDS 2 1-0"),
            "ERR ERR number of IDs doesn't match numids"
        );
        assert_eq!(err("s g FAIL IDS 1 not-a-valid-id"), BAD_ID);
        assert_eq!(err("s g FAIL IDS 1 +"), BAD_ID);
        assert_eq!(err("s g FAIL IDS 1 1-0 RETRYCOUNT abc"), NOT_INT);
        assert_eq!(
            err("s g FAIL IDS 1 1-0 RETRYCOUNT 99999999999999999999"),
            NOT_INT
        );
        assert_eq!(
            err("s g FAIL IDS 1 1-0 RETRYCOUNT -1"),
            "ERR ERR Invalid RETRYCOUNT value, must be >= 0"
        );
        // An option error comes before a bad ID, as Redis reads the IDs last.
        assert_eq!(err("s g FAIL IDS 1 bad FOO"), unknown("FOO"));
    }
}
