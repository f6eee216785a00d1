//! COMMAND GETKEYS and COMMAND GETKEYSANDFLAGS: the keys a command would touch, found from
//! the command table's key positions (or after STREAMS for XREAD / XREADGROUP), as
//! dispatch finds them.

use bytes::Bytes;

use brooklet_resp::Reply;

use super::call::command_keys;
use super::table::flags::{MOVABLE_KEYS, WRITE};
use super::{Commands, Ctx};
use crate::acl::key_specs::flags as key_flags;
use crate::error::CommandError;

/// Why a command's keys could not be listed; `Display` is Redis's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GetKeysError {
    /// No such command or subcommand.
    Unknown,
    /// The command takes no keys.
    NoKeys,
    /// The arguments do not satisfy the command's arity.
    Arity,
    /// The keys could not be found in the arguments (XREAD without STREAMS and keys).
    BadArguments,
}

impl GetKeysError {
    fn text(self) -> &'static str {
        match self {
            GetKeysError::Unknown => "ERR Invalid command specified",
            GetKeysError::NoKeys => "ERR The command has no key arguments",
            GetKeysError::Arity => "ERR Invalid number of arguments specified for command",
            GetKeysError::BadArguments => "ERR Invalid arguments specified for command",
        }
    }
}

/// The keys of the command `argv` (its name first) and the command's index in `table`.
pub(crate) fn keys_of<'a>(
    table: &Commands,
    argv: &'a [Bytes],
) -> Result<(Vec<&'a Bytes>, usize), GetKeysError> {
    let mut idx = table.find(&argv[0]).ok_or(GetKeysError::Unknown)?;
    let mut spec = table.entries[idx].spec;
    // As Redis looks a command up: a container with a further argument means a subcommand.
    if !spec.subcommands.is_empty() && argv.len() >= 2 {
        let mut full = table.entries[idx].full_name.as_bytes().to_vec();
        full.push(b'|');
        full.extend_from_slice(&argv[1]);
        idx = table.find(&full).ok_or(GetKeysError::Unknown)?;
        spec = table.entries[idx].spec;
    }
    let movable = spec.flags & MOVABLE_KEYS != 0;
    if spec.first_key <= 0 && !movable {
        return Err(GetKeysError::NoKeys);
    }
    if !spec.arity_ok(argv.len()) {
        return Err(GetKeysError::Arity);
    }
    // After STREAMS, the first half of the arguments (rounded down) are keys; none found
    // (no STREAMS, or one argument after it) is an error, as in Redis.
    let (keys, step) = command_keys(spec, argv);
    let keys: Vec<&Bytes> = keys.iter().step_by(step).collect();
    if keys.is_empty() {
        return Err(GetKeysError::BadArguments);
    }
    Ok((keys, idx))
}

/// COMMAND GETKEYS command [arg ...].
pub(crate) fn getkeys(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let (keys, _) = keys_of(ctx.commands, &argv[2..]).map_err(|e| CommandError::msg(e.text()))?;
    Ok(Reply::Array(
        keys.into_iter().map(|k| Reply::Bulk(k.clone())).collect(),
    ))
}

/// COMMAND GETKEYSANDFLAGS command [arg ...]: each key with the flags of the key spec that
/// found it (those COMMAND INFO shows), as Redis finds them from the key specs.
pub(crate) fn getkeys_and_flags(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let argv = &argv[2..];
    let (keys, idx) = keys_of(ctx.commands, argv).map_err(|e| CommandError::msg(e.text()))?;
    let entry = &ctx.commands.entries[idx];
    let mut found = Vec::new();
    crate::acl::key_specs::for_each_key(&super::docs::key_specs_of(entry), argv, |pos, f| {
        found.push((&argv[pos], f));
    });
    // SET's spec has variable flags; Redis's setGetKeys settles them by the GET option.
    if entry.full_name == "set"
        && let Some((_, f)) = found.first_mut()
    {
        *f = if argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"GET")) {
            key_flags::RW | key_flags::ACCESS | key_flags::UPDATE
        } else {
            key_flags::OW | key_flags::UPDATE
        };
    }
    if found.is_empty() {
        // Specs that find nothing here (Redis's own logic finds these keys): read or write.
        let f = if entry.spec.flags & WRITE != 0 {
            key_flags::RW
        } else {
            key_flags::RO
        };
        found = keys.into_iter().map(|k| (k, f)).collect();
    }
    Ok(Reply::Array(
        found
            .into_iter()
            .map(|(k, f)| {
                let names = key_flags::NAMES
                    .iter()
                    .filter(|(bit, _)| f & bit != 0)
                    .map(|(_, n)| Reply::simple(n))
                    .collect();
                Reply::Array(vec![Reply::Bulk(k.clone()), Reply::Array(names)])
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::dispatch::table;
    use crate::cmd::reply::testing::argv;

    fn keys(line: &str) -> Result<Vec<String>, &'static str> {
        let v = argv(line);
        keys_of(table(), &v)
            .map(|(k, _)| {
                k.iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect()
            })
            .map_err(GetKeysError::text)
    }

    #[test]
    fn keys_by_position_and_after_streams() {
        assert_eq!(keys("SET k v EX 10"), Ok(vec!["k".into()]));
        assert_eq!(
            keys("DEL a b c"),
            Ok(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(keys("MSET a 1 b 2"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(
            keys("XREAD COUNT 2 STREAMS s1 s2 0 0"),
            Ok(vec!["s1".into(), "s2".into()])
        );
        assert_eq!(keys("XGROUP CREATE s g $"), Ok(vec!["s".into()]));
    }

    #[test]
    fn error_texts_are_redis() {
        assert_eq!(keys("NOSUCH k"), Err("ERR Invalid command specified"));
        assert_eq!(
            keys("XGROUP NOSUCH k"),
            Err("ERR Invalid command specified")
        );
        assert_eq!(keys("PING x"), Err("ERR The command has no key arguments"));
        assert_eq!(keys("XGROUP"), Err("ERR The command has no key arguments"));
        assert_eq!(
            keys("XGROUP HELP"),
            Err("ERR The command has no key arguments")
        );
        assert_eq!(
            keys("GET"),
            Err("ERR Invalid number of arguments specified for command")
        );
        assert_eq!(
            keys("GET a b"),
            Err("ERR Invalid number of arguments specified for command")
        );
        assert_eq!(keys("XREAD STREAMS s 0 1"), Ok(vec!["s".into()]));
        assert_eq!(
            keys("XREAD COUNT 1 STREAMS s"),
            Err("ERR Invalid arguments specified for command")
        );
        assert_eq!(
            keys("XREAD COUNT 1 s 0"),
            Err("ERR Invalid arguments specified for command")
        );
    }
}
