//! Reply shapes and errors more than one family uses.

use bytes::{Bytes, BytesMut};

use brooklet_resp::{ARRAY_HEADER_ROOM, Reply, write_array_header, write_bulk};
use brooklet_streams::{Entry, ID_TEXT_MAX, StreamId};

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
    let mut buf = [0u8; ID_TEXT_MAX];
    let n = id.write_text(&mut buf);
    Reply::short_bulk(&buf[..n])
}

// Stream entries are encoded as they are put in a reply, not built as a reply tree (two
// vectors and a reply per field for each entry) to be walked and freed: an entry reads the
// same in RESP2 and RESP3 but for the nil body of a deleted one, so the caller says which.

/// Writes one stream entry, `[id, [field, value, ...], n...]` (the body nil when `fields`
/// is None: a deleted entry read from a group's history).
pub(crate) fn put_entry(
    out: &mut BytesMut,
    id: StreamId,
    fields: Option<&[Bytes]>,
    extra: &[i64],
    resp3: bool,
) {
    write_array_header(out, 2 + extra.len());
    let mut text = [0u8; ID_TEXT_MAX];
    let n = id.write_text(&mut text);
    write_bulk(out, &text[..n]);
    match fields {
        Some(fields) => {
            write_array_header(out, fields.len());
            fields.iter().for_each(|f| write_bulk(out, f));
        }
        None => Reply::NullArray.encode(out, resp3),
    }
    extra.iter().for_each(|&n| Reply::Int(n).encode(out, resp3));
}

/// About the bytes an entry takes encoded, to size its reply's buffer in one allocation.
pub(crate) fn entry_size(fields: Option<&[Bytes]>) -> usize {
    80 + fields.map_or(0, |f| f.iter().map(|v| v.len() + 16).sum())
}

/// An array of `items`, each written by `put`, as one encoded reply sized by `size`.
pub(crate) fn encoded_array<T>(
    items: Vec<T>,
    size: impl Fn(&T) -> usize,
    mut put: impl FnMut(&mut BytesMut, T),
) -> Reply {
    let cap = ARRAY_HEADER_ROOM + items.iter().map(size).sum::<usize>();
    let mut out = BytesMut::with_capacity(cap);
    write_array_header(&mut out, items.len());
    items.into_iter().for_each(|i| put(&mut out, i));
    Reply::Raw(out.freeze())
}

/// One entry as `[id, [field, value, ...]]`.
pub(crate) fn entry_reply(e: Entry) -> Reply {
    let mut out = BytesMut::with_capacity(entry_size(Some(&e.fields)));
    put_entry(&mut out, e.id, Some(&e.fields), &[], false);
    Reply::Raw(out.freeze())
}

/// Entries as an array of `[id, fields]`.
pub(crate) fn entries_reply(entries: Vec<Entry>) -> Reply {
    encoded_array(
        entries,
        |e| entry_size(Some(&e.fields)),
        |out, e| put_entry(out, e.id, Some(&e.fields), &[], false),
    )
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
