//! Brooklet's storage: the whole protocol that puts streams on disk and brings them back.
//! Nothing else in the workspace knows it; the server says "write this change" and
//! "checkpoint now", never how.
//!
//! # What it owns
//! - The data directory (see `LAYOUT.md` beside this file): one fjall database with a
//!   keyspace per class of record, and the tail log in front of it.
//! - One encoding per record kind (`codec`), used by fjall's keyspaces and the tail log
//!   alike; key layout (`keys`).
//! - Each stream's storage state ([`StoredStream`]: its incarnation, which appends and group
//!   records are only logged, what a checkpoint in flight holds), kept beside the
//!   [`Stream`](brooklet_streams::Stream) it describes, and the decision of what each
//!   command's changes become ([`Store::write_stream`]): one tail-log record (a plain append,
//!   a change to consumer groups alone) or one atomic fjall batch (anything else, with
//!   what the log held of the stream).
//! - The checkpoint ([`Store::checkpoint`]): logged changes written into fjall in key-ordered
//!   batches, then the log's segments retired. The streams stay in the caller's keyspace,
//!   which it lends through [`StreamHost`].
//! - Strings and key deadlines ([`Store::write_string`], [`Store::set_deadline`]): one
//!   record each in keyspaces of their own; a command that sets them is one tail-log record
//!   (the checkpoint writes the keys it names as the keyspace holds them, through
//!   [`StreamHost::visit_key`]), a deletion one fjall batch; all loaded at start, with the
//!   log's records over fjall's ([`Store::load_keys`]).
//! - Deletion (floors that keep a deleted stream's logged creation dead, purges of large
//!   streams in the background), compaction, the durability policy with group commit
//!   ([`FsyncPolicy`]), recovery at start ([`Store::open`]) and the numbers INFO shows.
//!
//! # Where the code is
//! `store/` holds the [`Store`] by concern: `open` (opening and recovery), `replay` (the tail
//! log applied to the loaded streams), `write`, `checkpoint`, `delete`, `stats`; `tail_log/`
//! the log by segment, record, replay, string records (`strings`) and the format-6 record
//! bodies (`legacy`); `stored/`
//! the per-stream state; `load` reads fjall's records at start-up, `purge` and `compaction`
//! run on threads of their own, `durability` and `journal_sync` fsync.
//!
//! # What it must not know
//! Sockets, commands, the protocol, the keyspace's shape and its locks (it reaches streams
//! only through [`StreamHost`] and the [`StoredStream`]s handed to it). It knows streams only
//! through `brooklet-streams`' public types and its [`Mutation`](brooklet_streams::Mutation)
//! records, applied with [`Stream::apply`](brooklet_streams::Stream::apply).
//!
//! A committed batch or logged record is in the operating system's buffers before the
//! command's reply (it survives a process crash); when it reaches the disk depends on the
//! [`FsyncPolicy`].

mod codec;
mod compaction;
mod durability;
mod error;
mod health;
mod journal_sync;
mod keys;
mod latency;
mod load;
mod purge;
mod repl_state;
mod source;
mod store;
mod stored;
mod tail_log;

pub use codec::repl::{
    decode_mutations as decode_repl_changes, encode_mutations as encode_repl_changes,
};
pub use durability::FsyncPolicy;
pub use error::StoreError;
pub use health::{FaultKind, StoreFault};
pub use latency::{OnLatency, events as latency_events};
pub use load::{LoadedStream, RecoveryReport};
pub use repl_state::ReplState;
pub use store::{
    DEFAULT_STREAM_CACHE_BYTES, Deadline, KeyState, LoadedDeadline, LoadedKeys, LoadedString,
    PendingFlush, Store, StoreStats, StreamChange, StreamHost, StringEdit,
};
pub use stored::StoredStream;
pub use tail_log::{
    CHECKPOINT_BYTES as DEFAULT_CHECKPOINT_BYTES, SEGMENT_BYTES as DEFAULT_TAIL_SEGMENT_BYTES,
    StreamName,
};
