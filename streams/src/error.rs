//! The errors stream commands answer with; `Display` is Redis's exact error text.

use std::fmt;

use bytes::Bytes;

use crate::id::StreamId;

/// A stream command's error; its `Display` is the exact text Redis replies with,
/// error code prefix included (`ERR `, `BUSYGROUP `, `NOGROUP `).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// An ID argument that is not a valid stream ID.
    InvalidId,
    /// An exclusive start bound `(id` that cannot be incremented (`(MAX-MAX`).
    InvalidStartInterval,
    /// An exclusive end bound `(id` that cannot be decremented (`(0-0`).
    InvalidEndInterval,
    /// XADD with the explicit ID `0-0`.
    XAddZeroId,
    /// XADD with an explicit ID not above the stream's last ID.
    XAddIdTooSmall,
    /// The stream's last ID is `MAX-MAX`: no ID can follow it.
    IdsExhausted,
    /// `LIMIT` given with an exact (`=` or no modifier) trim.
    LimitWithoutApprox,
    /// XSETID below the stream's last live entry.
    SetIdBelowTop,
    /// XSETID ENTRIESADDED below the stream length.
    SetIdEntriesAddedBelowLength,
    /// XSETID below the MAXDELETEDID given with it.
    SetIdBelowGivenMaxDeleted,
    /// XSETID below the stream's current max-deleted-entry-id.
    SetIdBelowCurrentMaxDeleted,
    /// XSETID ENTRIESADDED negative.
    EntriesAddedNegative,
    /// ENTRIESREAD below -1.
    EntriesReadInvalid,
    /// XGROUP CREATE of a group that exists.
    BusyGroup,
    /// XGROUP SETID/DELCONSUMER/CREATECONSUMER, XINFO CONSUMERS on a missing group.
    NoGroup {
        /// The stream's key.
        key: Bytes,
        /// The group asked for.
        group: Bytes,
    },
    /// XPENDING/XCLAIM/XAUTOCLAIM on a missing key or group.
    NoKeyOrGroup {
        /// The stream's key.
        key: Bytes,
        /// The group asked for.
        group: Bytes,
    },
    /// XREADGROUP on a missing key or group.
    NoKeyOrGroupRead {
        /// The stream's key.
        key: Bytes,
        /// The group asked for.
        group: Bytes,
    },
    /// XGROUP (other than CREATE ... MKSTREAM) on a missing key.
    XGroupKeyMissing,
    /// XAUTOCLAIM COUNT outside 1..=i64::MAX/16.
    CountMustBePositive,
    /// XREADGROUP with the `$` ID.
    DollarInXReadGroup,
    /// XREADGROUP with the `+` ID.
    PlusInXReadGroup,
    /// XREAD with the `>` ID.
    GreaterInXRead,
    /// MAXLEN below zero.
    MaxLenNegative,
    /// LIMIT below zero.
    LimitNegative,
    /// XADD without field-value pairs, or an odd number of them.
    WrongArity(&'static str),
    /// A generic syntax error.
    Syntax,
    /// Entries evicted from memory could not be read back from storage.
    Storage(String),
    /// XIDMPRECORD naming an entry that is not in the stream.
    IdmpNoSuchEntry,
    /// XIDMPRECORD of a pair that already maps to another entry.
    IdmpConflict,
    /// XADD EXPECTLAST (a Brooklet extension) whose ID is not the stream's last
    /// generated ID, which it carries.
    LastIdConflict(StreamId),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StreamError::*;
        match self {
            InvalidId => f.write_str("ERR Invalid stream ID specified as stream command argument"),
            InvalidStartInterval => f.write_str("ERR invalid start ID for the interval"),
            InvalidEndInterval => f.write_str("ERR invalid end ID for the interval"),
            XAddZeroId => f.write_str("ERR The ID specified in XADD must be greater than 0-0"),
            XAddIdTooSmall => f.write_str(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
            IdsExhausted => f.write_str(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ),
            LimitWithoutApprox => {
                f.write_str("ERR syntax error, LIMIT cannot be used without the special ~ option")
            }
            SetIdBelowTop => f.write_str(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ),
            SetIdEntriesAddedBelowLength => f.write_str(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ),
            SetIdBelowGivenMaxDeleted => f.write_str(
                "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
            ),
            SetIdBelowCurrentMaxDeleted => f.write_str(
                "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
            ),
            EntriesAddedNegative => f.write_str("ERR entries_added must be positive"),
            EntriesReadInvalid => f.write_str("ERR value for ENTRIESREAD must be positive or -1"),
            BusyGroup => f.write_str("BUSYGROUP Consumer Group name already exists"),
            NoGroup { key, group } => write!(
                f,
                "NOGROUP No such consumer group '{}' for key name '{}'",
                Lossy(group),
                Lossy(key)
            ),
            NoKeyOrGroup { key, group } => write!(
                f,
                "NOGROUP No such key '{}' or consumer group '{}'",
                Lossy(key),
                Lossy(group)
            ),
            NoKeyOrGroupRead { key, group } => write!(
                f,
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                Lossy(key),
                Lossy(group)
            ),
            XGroupKeyMissing => f.write_str(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you \
                 may want to use the MKSTREAM option to create an empty stream automatically.",
            ),
            CountMustBePositive => f.write_str("ERR COUNT must be > 0"),
            DollarInXReadGroup => f.write_str(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                 history of this consumer by specifying a proper ID, or use the > ID to get new \
                 messages. The $ ID would just return an empty result set.",
            ),
            PlusInXReadGroup => f.write_str(
                "ERR The + ID is meaningless in the context of XREADGROUP: you want to read the \
                 history of this consumer by specifying a proper ID, or use the > ID to get new \
                 messages. The + ID would just return an empty result set.",
            ),
            GreaterInXRead => f.write_str(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP \
                 <group> <consumer> option.",
            ),
            MaxLenNegative => f.write_str("ERR The MAXLEN argument must be >= 0."),
            LimitNegative => f.write_str("ERR The LIMIT argument must be >= 0."),
            WrongArity(cmd) => write!(f, "ERR wrong number of arguments for '{cmd}' command"),
            Syntax => f.write_str("ERR syntax error"),
            Storage(why) => write!(f, "ERR failed to read stream entries from disk: {why}"),
            IdmpNoSuchEntry => {
                f.write_str("ERR The specified stream ID was deleted or doesn't exist")
            }
            LastIdConflict(id) => write!(f, "CONFLICT last ID is {id}"),
            IdmpConflict => f.write_str(
                "ERR The specified IDMP producer-id/idempotent-id pair maps to a different \
                 stream ID",
            ),
        }
    }
}

impl std::error::Error for StreamError {}

impl StreamError {
    /// The error code (first word of the text), as INFO errorstats counts it.
    pub fn code(&self) -> &'static str {
        match self {
            StreamError::BusyGroup => "BUSYGROUP",
            StreamError::NoGroup { .. }
            | StreamError::NoKeyOrGroup { .. }
            | StreamError::NoKeyOrGroupRead { .. } => "NOGROUP",
            _ => "ERR",
        }
    }
}

/// Names in error texts are client bytes; Redis prints them raw, we print valid UTF-8
/// as is and escape the rest so the text stays one line.
struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) => f.write_str(s),
            Err(_) => {
                for &b in self.0 {
                    if b.is_ascii_graphic() || b == b' ' {
                        write!(f, "{}", b as char)?;
                    } else {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}
