//! Redis Streams for Brooklet: the data model and the semantics of every stream
//! command, as Redis 7.4 behaves (replies, error texts, edge cases).
//!
//! # What it owns
//! - [`StreamId`] and the ID forms commands take ([`IdSpec`], [`ReadId`],
//!   [`GroupStartId`], [`parse_range_start`], [`parse_range_end`]), parsed with Redis's
//!   rules and errors.
//! - [`Stream`]: entries packed compactly in nodes (delta-encoded IDs, field names
//!   shared with the node's first entry, tombstones flagged in place), nodes closing
//!   where Redis's listpacks would under [`NodeLimits`], and Redis's metadata
//!   (length, last-generated-id, first-id, max-deleted-entry-id, entries-added).
//! - Trimming ([`TrimArgs`]), consumer groups ([`ConsumerGroup`], [`Consumer`],
//!   [`PendingEntry`]) and XINFO's views ([`StreamInfo`], ...).
//! - [`ReadBudget`]: XREAD / XREADGROUP's MAXCOUNT and MAXSIZE, one budget over all the
//!   streams a read lists (an entry's cost in reply bytes comes from the caller).
//! - [`StreamError`], whose `Display` is Redis's exact error text.
//! - [`Mutation`]: every change a command makes, pushed in order into the caller's
//!   `Vec`, replayable with [`Stream::apply`] to rebuild identical state.
//!
//! # What it must not know
//! Sockets, RESP, tokio, keys and the keyspace, blocking, clocks and storage (entries
//! evicted from memory come back through the [`EntrySource`] trait, which persistence
//! implements). Commands
//! take typed arguments (the server parses argv), the current time as `now_ms`, and
//! the key name only to put it in error texts. Blocking readers are the server's:
//! this crate answers "nothing to serve" (`None` / empty) and the server waits.
//!
//! # Example
//! ```
//! use brooklet_streams::{IdSpec, NodeLimits, Stream, StreamId};
//! use bytes::Bytes;
//!
//! let mut s = Stream::new();
//! let mut journal = Vec::new();
//! let fields = [Bytes::from_static(b"temp"), Bytes::from_static(b"21")];
//! let added = s.add(IdSpec::Auto, &fields, None, 1_700_000_000_000, &NodeLimits::default(), &mut journal)?;
//! assert_eq!(added.id, StreamId::new(1_700_000_000_000, 0));
//! assert_eq!(s.range(StreamId::MIN, StreamId::MAX, None, false)?[0].fields, fields);
//!
//! let mut replica = Stream::new();
//! journal.iter().for_each(|m| replica.apply(m));
//! assert_eq!(replica, s);
//! # Ok::<(), brooklet_streams::StreamError>(())
//! ```

#![deny(unsafe_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod budget;
mod copy;
mod entry;
mod error;
mod group;
mod id;
mod idmp;
mod iid;
mod info;
mod listpack;
mod mutation;
mod node;
mod refs;
mod retention;
mod snapshot;
mod source;
mod stream;
mod trim;
mod trim_policy;

pub use budget::{EntryCost, ReadBudget};
pub use copy::{CopiedEntry, NodeCopies};
pub use entry::{Entry, MaybeEntry};
pub use error::StreamError;
pub use group::{
    AUTOCLAIM_DEFAULT_COUNT, AutoClaimArgs, AutoClaimOutcome, ClaimArgs, ClaimRead, Claimed,
    Consumer, ConsumerGroup, DeadLetter, DeadLetterConfig, DeadLetterReason, DeliveryTime,
    GroupCounters, MAX_DELIVERIES, NackArgs, NackMode, PendingEntry, PendingInfo, PendingRangeArgs,
    PendingSummary,
};
pub use id::{
    GroupStartId, ID_TEXT_MAX, IdSpec, ReadId, StreamId, parse_range_end, parse_range_start,
};
pub use idmp::{
    IDMP_DURATION_DEFAULT, IDMP_DURATION_MAX, IDMP_MAXSIZE_DEFAULT, IDMP_MAXSIZE_MAX, Idmp,
    IdmpAdd, IdmpConfig, IdmpInfo, IdmpKey, auto_iid,
};
pub use iid::Iid;
pub use info::{
    ConsumerInfo, ConsumerInfoFull, FullPending, GroupInfo, GroupInfoFull, INFO_FULL_DEFAULT_COUNT,
    StreamInfo, StreamInfoFull,
};
pub use mutation::Mutation;
pub use node::NodeLimits;
pub use refs::{REF_DELETED, REF_KEPT, REF_NOT_FOUND, RefPolicy};
pub use retention::{Retention, RetentionSlice, SLICE_ENTRIES};
pub use source::{EntrySource, NodeMeta, StoredEntry};
pub use stream::{AddOutcome, Stream, StreamMeta};
pub use trim::{TrimArgs, TrimStrategy};
