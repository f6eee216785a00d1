//! Reply shapes and errors more than one family uses.

use bytes::Bytes;

use brooklet_resp::Reply;
use brooklet_streams::{Entry, StreamId};

use crate::error::CommandError;

/// A HELP reply: the header line, the given lines, and the HELP line, as Redis formats them.
pub(crate) fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(Bytes::from(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )))];
    out.extend(
        lines
            .iter()
            .map(|l| Reply::Simple(Bytes::copy_from_slice(l.as_bytes()))),
    );
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Print this help."));
    Reply::Array(out)
}

/// A stream ID as a bulk string.
pub(crate) fn id_reply(id: StreamId) -> Reply {
    let mut buf = [0u8; brooklet_streams::ID_TEXT_MAX];
    let n = id.write_text(&mut buf);
    Reply::short_bulk(&buf[..n])
}

/// Field-value pairs as a flat array.
pub(crate) fn fields_reply(fields: Vec<Bytes>) -> Reply {
    Reply::Array(fields.into_iter().map(Reply::Bulk).collect())
}

/// One entry as `[id, [field, value, ...]]`.
pub(crate) fn entry_reply(e: Entry) -> Reply {
    Reply::Array(vec![id_reply(e.id), fields_reply(e.fields)])
}

/// Entries as an array of `[id, fields]`.
pub(crate) fn entries_reply(entries: Vec<Entry>) -> Reply {
    Reply::Array(entries.into_iter().map(entry_reply).collect())
}

/// Redis's reply to a container's subcommand with the wrong arguments (`sub` as typed).
pub(crate) fn subcommand_syntax(container: &str, sub: &[u8]) -> CommandError {
    CommandError::text(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

/// Helpers for the parsers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use bytes::Bytes;

    use crate::error::CommandError;

    /// The arguments of a command line, split on spaces (the command name left out).
    pub(crate) fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// The error line a parse result carries, or "ok".
    pub(crate) fn error_of<T>(result: Result<T, CommandError>) -> String {
        match result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }
}
