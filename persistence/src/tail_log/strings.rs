//! The tail log's string records (format 9; APPEND's and SETRANGE's changes format 10): one
//! record per command that sets strings or key deadlines (SET and its variants, MSET, INCR,
//! APPEND, SETRANGE, EXPIRE, PERSIST...), so replaying a record again over a state that
//! already holds it, or a later one, ends where the log ends.
//!
//! Most changes are a whole value: the last record for a key wins. APPEND's and SETRANGE's
//! are the bytes they wrote into a string that exists (a whole value each made building or
//! patching a large string cost its length per command in log bytes): APPEND's with the
//! length the string had before, SETRANGE's with the offset it wrote at. Replayed, an append
//! cuts the string to that length and adds its bytes; a range write zero-fills the string up
//! to its offset if shorter and writes its bytes there. Over a state that already holds
//! them, or later edits, the records that follow write the same bytes again and the string
//! ends where the log ends; a state that a later whole value or deletion of the key left
//! (which the rest of the log holds) is set right by that record. An append over a string
//! shorter than its length can only meet such a state, and is skipped.
//!
//! Body, after the record's head (whose key is empty and whose incarnation is the record's
//! number, taken from the counter stream creations number from, so a deletion's floor
//! covers every string record logged before it): the change count (u32), then each change
//! as a tag ([`SET`], [`DEADLINE`], [`APPEND`] or [`RANGE`]), the key (u32 length + bytes),
//! for [`SET`] the value (u32 length + bytes), for [`APPEND`] the length before and for
//! [`RANGE`] the offset (u64) then the bytes written (u32 length + bytes), then what happens
//! to the key's deadline ([`KEEP`], [`CLEAR`], or [`AT`] and the unix time in ms, u64).
//! Integers big-endian, as in [`crate::codec`].

use bytes::{Bytes, BytesMut};

use crate::codec::{self, Reader};
use crate::error::StoreError;

/// Tag: a string's new value, and what happens to its deadline.
pub(super) const SET: u8 = 0x80;
/// Tag: a key's deadline alone (string or stream).
pub(super) const DEADLINE: u8 = 0x81;
/// Deadline: left as it is.
const KEEP: u8 = 0x82;
/// Deadline: removed.
const CLEAR: u8 = 0x83;
/// Deadline: set, to the u64 that follows.
const AT: u8 = 0x84;
/// Tag: bytes appended to a string of the length that follows the key.
pub(super) const APPEND: u8 = 0x85;
/// Tag: bytes written into a string at the offset that follows the key.
pub(super) const RANGE: u8 = 0x86;

/// What a string write does to its key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Leave it as it is (SET KEEPTTL, APPEND, INCR, SETRANGE...).
    Keep,
    /// Remove it (a plain SET).
    Clear,
    /// Set it to this unix time in milliseconds.
    At(u64),
}

/// One change a string record makes, as written.
#[derive(Debug, Clone, Copy)]
pub enum StringOp<'a> {
    /// String `key` takes `value`; its deadline changes as said.
    Set(&'a [u8], &'a [u8], Deadline),
    /// The deadline of `key` (a string or a stream) changes as said.
    Deadline(&'a [u8], Deadline),
    /// String `key`, as long as the u64 says, gets the edit; its deadline stays.
    Edit(&'a [u8], u64, StringEdit<'a>),
}

/// What APPEND or SETRANGE writes into a string that exists: the one definition both the
/// command and replay apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringEdit<'a> {
    /// APPEND: the bytes go after the string.
    Append(&'a [u8]),
    /// SETRANGE: the bytes go at `at`, the string zero-filled up to it if shorter.
    Write {
        /// The offset.
        at: usize,
        /// The bytes.
        patch: &'a [u8],
    },
}

impl StringEdit<'_> {
    /// Where the edit's bytes end in a string `len` bytes long (saturating: what a length
    /// limit checks, Redis's offset plus length).
    pub fn end(self, len: usize) -> usize {
        match self {
            StringEdit::Append(add) => len.saturating_add(add.len()),
            StringEdit::Write { at, patch } => at.saturating_add(patch.len()),
        }
    }

    /// The string's length after the edit, from its length before.
    pub fn len_after(self, len: usize) -> usize {
        len.max(self.end(len))
    }

    /// Applies the edit to `buf`, which holds the `len`-byte string and has room for
    /// [`StringEdit::len_after`].
    pub fn apply(self, buf: &mut [u8], len: usize) {
        let (at, bytes) = match self {
            StringEdit::Append(add) => (len, add),
            StringEdit::Write { at, patch } => (at, patch),
        };
        if at > len {
            buf[len..at].fill(0);
        }
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Applies the edit to `v`, grown to the length it leaves.
    pub fn apply_to(self, v: &mut BytesMut) {
        let len = v.len();
        v.resize(self.len_after(len), 0);
        self.apply(v, len);
    }
}

impl<'a> StringOp<'a> {
    /// The key it changes.
    pub fn key(&self) -> &'a [u8] {
        match self {
            StringOp::Set(k, ..) | StringOp::Deadline(k, _) | StringOp::Edit(k, ..) => k,
        }
    }
}

/// One change of a string record, as replay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringChange {
    /// The key.
    pub key: Bytes,
    /// What happens to the string's value.
    pub value: ValueChange,
    /// What happens to the key's deadline.
    pub deadline: Deadline,
}

/// What a logged change does to a string's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueChange {
    /// Nothing: the deadline alone changes.
    Unchanged,
    /// The value becomes these bytes.
    Set(Bytes),
    /// The value, cut to `at` bytes, gets `tail` added (see the module's note).
    Append {
        /// The string's length before the append.
        at: u64,
        /// The bytes appended.
        tail: Bytes,
    },
    /// The value, zero-filled to `at` bytes if shorter, gets `patch` written at `at`.
    Range {
        /// The offset written at.
        at: u64,
        /// The bytes written.
        patch: Bytes,
    },
}

/// A string record, as replay sees it.
pub struct Strings {
    /// The keys' database.
    pub db: u32,
    /// The record's number: a deletion's floor above it covers it.
    pub number: u64,
    /// The changes, in order.
    pub changes: Vec<StringChange>,
}

fn put_deadline(out: &mut Vec<u8>, d: Deadline) {
    match d {
        Deadline::Keep => out.push(KEEP),
        Deadline::Clear => out.push(CLEAR),
        Deadline::At(ms) => {
            out.push(AT);
            codec::put_u64(out, ms);
        }
    }
}

fn read_deadline(r: &mut Reader<'_>) -> Result<Deadline, StoreError> {
    match r.u8()? {
        KEEP => Ok(Deadline::Keep),
        CLEAR => Ok(Deadline::Clear),
        AT => Ok(Deadline::At(r.u64()?)),
        t => Err(StoreError::Corrupt(format!(
            "string record deadline tag {t}"
        ))),
    }
}

/// Appends a string record's body: `count` changes, `ops`.
pub(super) fn put_strings<'a>(
    out: &mut Vec<u8>,
    count: usize,
    ops: impl Iterator<Item = StringOp<'a>>,
) {
    codec::put_u32(out, count as u32);
    for op in ops {
        match op {
            StringOp::Set(key, value, d) => {
                out.push(SET);
                codec::put_bytes(out, key);
                codec::put_bytes(out, value);
                put_deadline(out, d);
            }
            StringOp::Deadline(key, d) => {
                out.push(DEADLINE);
                codec::put_bytes(out, key);
                put_deadline(out, d);
            }
            StringOp::Edit(key, len, edit) => {
                let (tag, at, bytes) = match edit {
                    StringEdit::Append(tail) => (APPEND, len, tail),
                    StringEdit::Write { at, patch } => (RANGE, at as u64, patch),
                };
                out.push(tag);
                codec::put_bytes(out, key);
                codec::put_u64(out, at);
                codec::put_bytes(out, bytes);
                put_deadline(out, Deadline::Keep);
            }
        }
    }
}

/// Reads a string record's body (`body`, shared: values are slices of it).
pub(super) fn read_strings(body: &Bytes) -> Result<Vec<StringChange>, StoreError> {
    let mut r = Reader::new(body, "tail-log strings");
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let tag = r.u8()?;
        let key = body.slice_ref(r.slice()?);
        let value = match tag {
            SET => ValueChange::Set(body.slice_ref(r.slice()?)),
            DEADLINE => ValueChange::Unchanged,
            APPEND => ValueChange::Append {
                at: r.u64()?,
                tail: body.slice_ref(r.slice()?),
            },
            RANGE => ValueChange::Range {
                at: r.u64()?,
                patch: body.slice_ref(r.slice()?),
            },
            t => return Err(StoreError::Corrupt(format!("string record tag {t}"))),
        };
        let deadline = read_deadline(&mut r)?;
        out.push(StringChange {
            key,
            value,
            deadline,
        });
    }
    if !r.is_empty() {
        return Err(StoreError::Corrupt(
            "trailing bytes in a string record".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_back_as_written() {
        let ops = [
            StringOp::Set(b"a", b"1", Deadline::Keep),
            StringOp::Set(b"b", b"", Deadline::Clear),
            StringOp::Set(b"c", b"xyz", Deadline::At(42)),
            StringOp::Deadline(b"d", Deadline::At(7)),
            StringOp::Deadline(b"e", Deadline::Clear),
            StringOp::Edit(b"f", 3, StringEdit::Append(b"tail")),
            StringOp::Edit(
                b"g",
                2,
                StringEdit::Write {
                    at: 9,
                    patch: b"patch",
                },
            ),
        ];
        let mut out = Vec::new();
        put_strings(&mut out, ops.len(), ops.iter().copied());
        let read = read_strings(&Bytes::from(out.clone())).expect("a whole body reads");
        let want: Vec<_> = ops
            .iter()
            .map(|op| match *op {
                StringOp::Set(k, v, d) => (k.to_vec(), ValueChange::Set(Bytes::from(v)), d),
                StringOp::Deadline(k, d) => (k.to_vec(), ValueChange::Unchanged, d),
                StringOp::Edit(k, at, StringEdit::Append(tail)) => (
                    k.to_vec(),
                    ValueChange::Append {
                        at,
                        tail: Bytes::from(tail),
                    },
                    Deadline::Keep,
                ),
                StringOp::Edit(k, _, StringEdit::Write { at, patch }) => (
                    k.to_vec(),
                    ValueChange::Range {
                        at: at as u64,
                        patch: Bytes::from(patch),
                    },
                    Deadline::Keep,
                ),
            })
            .collect();
        let got: Vec<_> = read
            .iter()
            .map(|c| (c.key.to_vec(), c.value.clone(), c.deadline))
            .collect();
        assert_eq!(got, want);
        for cut in 0..out.len() {
            assert!(read_strings(&Bytes::copy_from_slice(&out[..cut])).is_err());
        }
    }
}
