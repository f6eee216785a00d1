//! Time-based retention (a Brooklet extension, `XCFGSET key MAXAGE ms [policy]`): entries
//! whose ID time is older than the caller's clock minus the maximum age are removed, in
//! bounded slices, by an exact MINID trim under the stream's reference policy. The caller
//! (the server's retention task) runs one slice at a time under the stream's lock and
//! persists each slice's mutations like any trim's.

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::refs::RefPolicy;
use crate::stream::Stream;
use crate::trim::{TrimArgs, TrimStrategy};

/// Most live entries one slice removes (a slice may take one node more when a single node
/// holds more): whole cold nodes cost their record, so a slice is a split of the node map
/// and one batch whose records the purge thread removes past 4,096.
pub const SLICE_ENTRIES: u64 = 20_000;

/// A stream's retention setting; `max_age` 0 means none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// MAXAGE, milliseconds.
    pub max_age: u64,
    /// What becomes of the groups' references to what retention removes.
    pub policy: RefPolicy,
}

impl Retention {
    /// Whether retention is on.
    pub fn is_on(&self) -> bool {
        self.max_age > 0
    }

    /// The lowest ID retention keeps at `now_ms`: entries below it are expired.
    pub fn min_id(&self, now_ms: u64) -> StreamId {
        StreamId::new(now_ms.saturating_sub(self.max_age), 0)
    }
}

/// What one slice did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionSlice {
    /// Entries removed.
    pub removed: u64,
    /// Whether another slice may remove more now (the slice stopped at its limit).
    pub more: bool,
}

impl Stream {
    /// The retention setting (`max_age` 0: none).
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Sets the retention of a stream being created or loaded, recording nothing.
    pub fn init_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }

    /// XCFGSET MAXAGE: sets the retention; records it when it changed. A `max_age` of 0
    /// turns retention off (the policy is then KEEPREF, so an off setting has one form).
    pub fn set_retention(&mut self, retention: Retention, out: &mut Vec<Mutation>) -> bool {
        let retention = if retention.is_on() {
            retention
        } else {
            Retention::default()
        };
        if retention == self.retention {
            return false;
        }
        self.retention = retention;
        out.push(Mutation::RetentionSet {
            max_age: retention.max_age,
            policy: retention.policy,
        });
        true
    }

    /// Whether a slice at `now_ms` would find an expired live entry to look at (ACKED may
    /// still keep it). Cheap: no node is read.
    pub fn retention_due(&self, now_ms: u64) -> bool {
        self.retention.is_on() && self.length > 0 && self.first_id < self.retention.min_id(now_ms)
    }

    /// Removes at most about [`SLICE_ENTRIES`] expired entries at `now_ms`, as `XTRIM key
    /// MINID <now - max_age> <policy>` would, limited to whole nodes of that many entries
    /// (the node an exact trim cuts into is cut only once the nodes before it are gone).
    ///
    /// # Errors
    /// [`StreamError::Storage`] when a node the trim must look into cannot be read back;
    /// nothing changes then.
    pub fn retention_slice(
        &mut self,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<RetentionSlice, StreamError> {
        if !self.retention_due(now_ms) {
            return Ok(RetentionSlice::default());
        }
        let min = self.retention.min_id(now_ms);
        // A first node over the limit would stop every slice before it.
        let head = self.nodes.values().next().map_or(0, |n| n.live);
        let limit = SLICE_ENTRIES.max(head);
        let args = TrimArgs {
            strategy: TrimStrategy::MinId(min),
            approx: false,
            limit: Some(limit),
            policy: self.retention.policy,
        };
        let removed = self.trim_unchecked(&args, limit, out)?;
        Ok(RetentionSlice {
            removed,
            // Nothing removed means what is left is kept (ACKED): the next tick looks again.
            more: removed > 0 && self.retention_due(now_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;

    use super::*;
    use crate::id::IdSpec;
    use crate::node::NodeLimits;

    fn add(s: &mut Stream, ms: u64, seq: u64) {
        let fields = vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")];
        s.add(
            IdSpec::Explicit(StreamId::new(ms, seq)),
            &fields,
            None,
            0,
            &NodeLimits::default(),
            &mut Vec::new(),
        )
        .unwrap();
    }

    fn drain(s: &mut Stream, now: u64) -> (u64, usize) {
        let mut removed = 0;
        let mut slices = 0;
        loop {
            let mut out = Vec::new();
            let r = s.retention_slice(now, &mut out).unwrap();
            removed += r.removed;
            slices += 1;
            if !r.more {
                return (removed, slices);
            }
            assert!(slices < 10_000);
        }
    }

    #[test]
    fn setting_records_only_a_change_and_zero_means_off() {
        let mut s = Stream::new();
        let mut out = Vec::new();
        let on = Retention {
            max_age: 1000,
            policy: RefPolicy::Acked,
        };
        assert!(s.set_retention(on, &mut out));
        assert!(!s.set_retention(on, &mut out));
        assert_eq!(out.len(), 1);
        let off = Retention {
            max_age: 0,
            policy: RefPolicy::DelRef,
        };
        assert!(s.set_retention(off, &mut out));
        assert_eq!(s.retention(), Retention::default());
        let mut replayed = Stream::new();
        for m in &out {
            replayed.apply(m);
        }
        assert_eq!(replayed.retention(), s.retention());
    }

    #[test]
    fn slices_remove_exactly_the_expired_entries() {
        let mut s = Stream::new();
        for ms in 1..=50_000u64 {
            add(&mut s, ms, 0);
        }
        s.init_retention(Retention {
            max_age: 100,
            policy: RefPolicy::KeepRef,
        });
        // now 45_100: entries below 45_000-0 are expired.
        let (removed, slices) = drain(&mut s, 45_100);
        assert_eq!(removed, 44_999);
        assert!(slices >= 3, "{slices}");
        assert_eq!(s.first_id(), StreamId::new(45_000, 0));
        assert!(!s.retention_due(45_100));
        let (removed, _) = drain(&mut s, 1_000_000);
        assert_eq!(removed, 5_001);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn off_or_nothing_expired_removes_nothing() {
        let mut s = Stream::new();
        add(&mut s, 10, 0);
        let mut out = Vec::new();
        assert_eq!(s.retention_slice(1_000_000, &mut out).unwrap().removed, 0);
        s.init_retention(Retention {
            max_age: 100,
            policy: RefPolicy::KeepRef,
        });
        assert_eq!(s.retention_slice(105, &mut out).unwrap().removed, 0);
        assert!(out.is_empty());
        assert_eq!(s.retention_slice(111, &mut out).unwrap().removed, 1);
    }
}
