//! fjall-backed persistence for Brooklet's streams.
//!
//! This crate owns the on-disk layout (see `LAYOUT.md` beside this file), the encoding of
//! stream entries and group state, the durability policy with group commit, and recovery at
//! start. It knows stream state only through `brooklet-streams`' public types and its
//! [`Mutation`](brooklet_streams::Mutation) records; it knows nothing of sockets, commands or
//! the protocol.
//!
//! Every command's changes are written as one fjall write batch ([`Store::write_stream`]), so
//! counters and pending lists can never drift apart after a crash. A committed batch is in
//! the operating system's buffers at once (it survives a process crash); when it reaches the
//! disk depends on the [`FsyncPolicy`].

mod codec;
mod compaction;
mod durability;
mod error;
mod journal_sync;
mod keys;
mod load;
mod purge;
mod source;
mod store;
mod stored;
mod tail_log;

pub use durability::FsyncPolicy;
pub use error::StoreError;
pub use load::{LoadedStream, RecoveryReport};
pub use store::{DEFAULT_STREAM_CACHE_BYTES, PendingFlush, Store, StoreStats, StreamHost};
pub use stored::StoredStream;
pub use tail_log::{
    CHECKPOINT_BYTES as DEFAULT_CHECKPOINT_BYTES, SEGMENT_BYTES as DEFAULT_TAIL_SEGMENT_BYTES,
    StreamName,
};
