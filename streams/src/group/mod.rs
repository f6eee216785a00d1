//! Consumer groups: the group, its consumers and pending-entry list (PEL), and the
//! group commands, one file per family: XGROUP's (`admin`), XREADGROUP (`read`), XACK and
//! XPENDING (`pending`), XCLAIM and XAUTOCLAIM (`claim`), XNACK and the NACK zone (`nack`),
//! dead-letter streams (`dlq`, a Brooklet extension).

mod admin;
mod claim;
mod dlq;
mod nack;
mod pending;
mod read;

pub use claim::{
    AUTOCLAIM_DEFAULT_COUNT, AutoClaimArgs, AutoClaimOutcome, ClaimArgs, ClaimRead, Claimed,
    DeliveryTime,
};
pub use dlq::{DeadLetter, DeadLetterConfig, DeadLetterReason};
pub use nack::{MAX_DELIVERIES, NackArgs, NackMode};
pub use pending::{PendingInfo, PendingRangeArgs, PendingSummary};

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::stream::Stream;

/// A consumer group (Redis's streamCG).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Last ID delivered to the group with `>` (or set by SETID / XCLAIM LASTID).
    pub(crate) last_id: StreamId,
    /// Logical count of entries read by the group; `None` when unknown.
    pub(crate) entries_read: Option<u64>,
    /// Every entry delivered and not yet acknowledged, by ID.
    pub(crate) pel: BTreeMap<StreamId, PendingEntry>,
    /// Consumers by name, in byte order.
    pub(crate) consumers: BTreeMap<Bytes, Consumer>,
    /// Pending entries XNACK released, in release order: exactly those without an owner.
    pub(crate) nacked: nack::NackZone,
    /// Lifetime totals (Brooklet's `entries-delivered` ... in XINFO GROUPS).
    pub(crate) counters: GroupCounters,
    /// XGROUP SETDLQ's dead-letter stream and delivery limit.
    pub(crate) dlq: Option<DeadLetterConfig>,
    /// Set only while a command runs whose dead-letter stream cannot take an entry: the
    /// group then delivers as if it had none.
    pub(crate) dlq_suspended: bool,
}

/// A group's lifetime totals, shown by XINFO GROUPS and XINFO STREAM FULL (a Brooklet
/// extension, named like Redis's `entries-added`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCounters {
    /// `entries-delivered`: every entry handed to a consumer with its fields, first
    /// delivery or repeated (XREADGROUP, history re-reads, XCLAIM, XAUTOCLAIM and
    /// XREADGROUP CLAIM without JUSTID); NOACK reads included.
    pub delivered: u64,
    /// `entries-acked`: pending entries XACK or XACKDEL acknowledged.
    pub acked: u64,
    /// `entries-nacked`: releases by XNACK.
    pub nacked: u64,
    /// `entries-dead-lettered`: pending entries moved to the group's dead-letter stream.
    pub dead_lettered: u64,
}

/// One pending entry (Redis's streamNACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// Consumer that owns the entry, a key of the group's consumers; empty for an entry
    /// XNACK released (see [`ConsumerGroup::is_nacked`]).
    pub consumer: Bytes,
    /// Unix ms of the last delivery (idle time is now minus this); 0 once released.
    pub delivery_time: u64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer in a group (Redis's streamConsumer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms of the last attempted interaction (XREADGROUP, XCLAIM, XAUTOCLAIM).
    pub(crate) seen_time: u64,
    /// Unix ms of the last successful interaction (entries read into the PEL or
    /// claimed); `None` if never.
    pub(crate) active_time: Option<u64>,
    /// IDs this consumer owns in the group's PEL.
    pub(crate) pending: BTreeSet<StreamId>,
}

impl ConsumerGroup {
    /// Last delivered ID.
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// Entries read counter, `None` if unknown.
    pub fn entries_read(&self) -> Option<u64> {
        self.entries_read
    }

    /// The group's pending entries, by ID.
    pub fn pending(&self) -> &BTreeMap<StreamId, PendingEntry> {
        &self.pel
    }

    /// The group's consumers, by name.
    pub fn consumers(&self) -> &BTreeMap<Bytes, Consumer> {
        &self.consumers
    }

    /// The group's lifetime totals.
    pub fn counters(&self) -> GroupCounters {
        self.counters
    }
}

impl Consumer {
    /// Last attempted interaction, Unix ms.
    pub fn seen_time(&self) -> u64 {
        self.seen_time
    }

    /// Last successful interaction, Unix ms.
    pub fn active_time(&self) -> Option<u64> {
        self.active_time
    }

    /// IDs this consumer owns.
    pub fn pending(&self) -> &BTreeSet<StreamId> {
        &self.pending
    }
}

/// A map entry's stored key and value by borrowed name (BTreeMap has no
/// `get_key_value_mut`); the stored key is the shared `Bytes` records reuse.
fn key_value_mut<'a, V>(
    map: &'a mut BTreeMap<Bytes, V>,
    k: &[u8],
) -> Option<(&'a Bytes, &'a mut V)> {
    use std::ops::Bound::Included;
    map.range_mut::<[u8], _>((Included(k), Included(k))).next()
}

fn no_group(key: &[u8], group: &[u8]) -> StreamError {
    StreamError::NoGroup {
        key: Bytes::copy_from_slice(key),
        group: Bytes::copy_from_slice(group),
    }
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> StreamError {
    StreamError::NoKeyOrGroup {
        key: Bytes::copy_from_slice(key),
        group: Bytes::copy_from_slice(group),
    }
}

/// Validates ENTRIESREAD: `-1` (or absent) is unknown, other negatives are errors.
fn entries_read_arg(v: Option<i64>) -> Result<Option<u64>, StreamError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if n < 0 => Err(StreamError::EntriesReadInvalid),
        Some(n) => Ok(Some(n as u64)),
    }
}

impl Stream {
    /// Runs `f` and then, if it changed the counters of `group`, records them once: a
    /// command's deliveries, acknowledgements and releases cost one record, not one each.
    pub(crate) fn counting<R>(
        &mut self,
        group: &[u8],
        out: &mut Vec<Mutation>,
        f: impl FnOnce(&mut Self, &mut Vec<Mutation>) -> R,
    ) -> R {
        let before = self.groups.get(group).map(|g| g.counters);
        let r = f(self, out);
        if let Some((name, g)) = self.groups.get_key_value(group)
            && before.is_some_and(|b| b != g.counters)
        {
            out.push(Mutation::GroupCounters {
                group: name.clone(),
                counters: g.counters,
            });
        }
        r
    }

    /// True if a tombstone may lie in `start..=end` (Redis's streamRangeHasTombstones,
    /// which only knows the largest deleted ID).
    pub(crate) fn range_has_tombstones(&self, start: StreamId, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical read counter of `id`, when it can be known (Redis's
    /// streamEstimateDistanceFromFirstEverEntry); `None` when it cannot.
    pub fn estimate_entries_read(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        // Deletions after `id` make its distance from the first entry unknowable (7.4).
        if !id.is_zero() && id < self.max_deleted_id {
            return None;
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// The group's lag (Redis's streamCGLag): `None` when unknown. Negative when
    /// ENTRIESREAD was set above entries-added, as Redis reports it (a signed difference).
    pub(crate) fn group_lag(&self, g: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 || self.length == 0 {
            return Some(0);
        }
        // Everything left comes after the group and after every deletion: all of it is lag.
        if g.last_id < self.first_id && self.max_deleted_id < self.first_id {
            return Some(self.length as i64);
        }
        let lag = |read: u64| (self.entries_added as i64).wrapping_sub(read as i64);
        if let Some(read) = g.entries_read
            && !self.range_has_tombstones(g.last_id, None)
        {
            return Some(lag(read));
        }
        self.estimate_entries_read(g.last_id).map(lag)
    }
}

/// Idle time in ms; negative if the clock went back.
pub(crate) fn idle_ms(now_ms: u64, since: u64) -> i64 {
    (now_ms as i64).saturating_sub(since as i64)
}
