//! XNACK (Redis 8.8): releasing pending entries back to the group without acknowledging
//! them, and the group's NACK zone that holds them.
//!
//! A released entry keeps its place in the group's PEL but loses its owner; its delivery
//! time becomes 0 and its delivery count follows the mode. Released entries wait in the
//! NACK zone in the order they were released (a release of an entry already there moves
//! it to the back). Only the claim paths hand them out again: XREADGROUP ... CLAIM serves
//! the zone first, in its order, then the longest idle entries; XCLAIM and XAUTOCLAIM take
//! them whatever their min-idle-time. Anything that gives the entry an owner again or
//! removes it from the PEL takes it out of the zone.

use std::collections::BTreeMap;

use bytes::Bytes;
use hashbrown::HashMap;

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::stream::Stream;

use super::{ConsumerGroup, DeadLetterReason, PendingEntry, key_value_mut, no_key_or_group};

/// The largest delivery count Redis keeps (LLONG_MAX): FATAL sets it, and a delivery of
/// an entry already there leaves it there.
pub const MAX_DELIVERIES: u64 = i64::MAX as u64;

/// A delivery count after one more delivery, stopping at [`MAX_DELIVERIES`].
pub(crate) fn bump(count: u64) -> u64 {
    if count >= MAX_DELIVERIES {
        count
    } else {
        count + 1
    }
}

/// How XNACK changes the delivery count of what it releases (when RETRYCOUNT is absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NackMode {
    /// The delivery did not count: one less (not below 0).
    Silent,
    /// The consumer failed it: unchanged.
    Fail,
    /// It must not be tried again: [`MAX_DELIVERIES`].
    Fatal,
}

/// XNACK's arguments after the key and group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NackArgs {
    /// SILENT, FAIL or FATAL.
    pub mode: NackMode,
    /// The IDs, in order (a repeated ID is released again, and counted again).
    pub ids: Vec<StreamId>,
    /// RETRYCOUNT: the delivery count to set, overriding the mode.
    pub retry_count: Option<u64>,
    /// FORCE: release IDs not pending as new, unowned pending entries (if the entry exists).
    pub force: bool,
}

impl NackArgs {
    /// The delivery count after release of an entry delivered `count` times.
    fn deliveries(&self, count: u64) -> u64 {
        match (self.retry_count, self.mode) {
            (Some(n), _) => n,
            (None, NackMode::Silent) => count.saturating_sub(1),
            (None, NackMode::Fail) => count,
            (None, NackMode::Fatal) => MAX_DELIVERIES,
        }
    }
}

/// A group's released entries in release order. Each carries a sequence number that
/// storage keeps with its pending record, so replay restores the order; only the order of
/// the IDs is state (two zones with the same order are equal whatever their numbers).
#[derive(Clone, Debug, Default)]
pub(crate) struct NackZone {
    /// Sequence number to ID, in release order.
    order: BTreeMap<u64, StreamId>,
    /// ID to its sequence number.
    seq_of: HashMap<StreamId, u64>,
    /// Number for the next release: above every number in the zone.
    next: u64,
}

impl PartialEq for NackZone {
    fn eq(&self, other: &Self) -> bool {
        self.order.values().eq(other.order.values())
    }
}

impl Eq for NackZone {}

impl NackZone {
    /// Moves `id` to the back of the zone (adding it if absent); returns its new number.
    pub(crate) fn push_back(&mut self, id: StreamId) -> u64 {
        let seq = self.next;
        self.place(id, seq);
        seq
    }

    /// Puts `id` at position `seq` (a replayed release), taking it from where it was.
    pub(crate) fn place(&mut self, id: StreamId, seq: u64) {
        self.remove(id);
        self.order.insert(seq, id);
        self.seq_of.insert(id, seq);
        self.next = self.next.max(seq.saturating_add(1));
    }

    /// Takes `id` out of the zone; whether it was there.
    pub(crate) fn remove(&mut self, id: StreamId) -> bool {
        match self.seq_of.remove(&id) {
            Some(seq) => {
                self.order.remove(&seq);
                true
            }
            None => false,
        }
    }

    /// Whether `id` is released.
    pub(crate) fn contains(&self, id: &StreamId) -> bool {
        self.seq_of.contains_key(id)
    }

    /// The number `id` was released under.
    pub(crate) fn seq(&self, id: &StreamId) -> Option<u64> {
        self.seq_of.get(id).copied()
    }

    /// Released IDs, first released first.
    pub(crate) fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.order.values().copied()
    }

    /// How many entries are released.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

impl ConsumerGroup {
    /// Whether pending entry `id` was released by XNACK and has no owner since.
    pub fn is_nacked(&self, id: &StreamId) -> bool {
        self.nacked.contains(id)
    }

    /// The release number of NACKed entry `id` (what storage keeps to restore the order).
    pub fn nack_seq(&self, id: &StreamId) -> Option<u64> {
        self.nacked.seq(id)
    }

    /// NACKed entries, in the order claims serve them.
    pub fn nacked(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.nacked.ids()
    }

    /// How many entries are NACKed (XINFO STREAM FULL's `nacked-count`).
    pub fn nacked_count(&self) -> u64 {
        self.nacked.len() as u64
    }

    /// Releases pending entry `id` (which must be in the PEL): no owner, delivery time 0,
    /// `deliveries` deliveries, at the back of the zone. Returns the record to replay it.
    fn release(&mut self, gname: &Bytes, id: StreamId, deliveries: u64) -> Mutation {
        if let Some(p) = self.pel.get_mut(&id) {
            if !self.nacked.contains(&id)
                && let Some(owner) = self.consumers.get_mut(&p.consumer)
            {
                owner.pending.remove(&id);
            }
            *p = unowned(deliveries);
        }
        let seq = self.nacked.push_back(id);
        Mutation::PendingNacked {
            group: gname.clone(),
            id,
            delivery_count: deliveries,
            seq,
        }
    }

    /// Replays a release (see [`Mutation::PendingNacked`]).
    pub(crate) fn apply_release(&mut self, id: StreamId, deliveries: u64, seq: u64) {
        if let Some(p) = self.pel.get(&id)
            && !self.nacked.contains(&id)
            && let Some(owner) = self.consumers.get_mut(&p.consumer)
        {
            owner.pending.remove(&id);
        }
        self.pel.insert(id, unowned(deliveries));
        self.nacked.place(id, seq);
    }
}

/// A pending entry no consumer owns (what XNACK leaves).
fn unowned(deliveries: u64) -> PendingEntry {
    PendingEntry {
        consumer: Bytes::new(),
        delivery_time: 0,
        delivery_count: deliveries,
    }
}

impl Stream {
    /// XNACK: releases the pending entries `args.ids` of `group`; returns how many were
    /// released (a repeated ID counts each time; an ID neither pending nor, with FORCE,
    /// an existing entry is skipped).
    ///
    /// # Errors
    /// NOGROUP; [`StreamError::Storage`] when FORCE cannot read back whether an entry
    /// exists (what was released before stays released, and recorded).
    pub fn nack(
        &mut self,
        key: &[u8],
        group: &[u8],
        args: &NackArgs,
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        self.counting(group, out, |s, out| s.nack_counted(key, group, args, out))
    }

    fn nack_counted(
        &mut self,
        key: &[u8],
        group: &[u8],
        args: &NackArgs,
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        if !self.groups.contains_key(group) {
            return Err(no_key_or_group(key, group));
        }
        let mut released = 0;
        for &id in &args.ids {
            let pending = self
                .groups
                .get(group)
                .is_some_and(|g| g.pel.contains_key(&id));
            // FORCE makes a pending entry only for an entry the stream holds, as XCLAIM's.
            let forced = !pending && args.force && self.contains(id)?;
            if !pending && !forced {
                continue;
            }
            // FATAL sends the entry to the group's dead-letter stream at once, if it has one.
            let fatal_dlq = args.mode == NackMode::Fatal
                && self
                    .groups
                    .get(group)
                    .is_some_and(|g| g.dlq.is_some() && !g.dlq_suspended);
            let fields = if fatal_dlq {
                self.get(id)?.map(|e| e.fields)
            } else {
                None
            };
            let Some((gname, g)) = key_value_mut(&mut self.groups, group) else {
                break;
            };
            let before = match g.pel.get(&id) {
                Some(p) => p.delivery_count,
                None => {
                    g.pel.insert(id, unowned(0));
                    0
                }
            };
            if fatal_dlq {
                g.dead_letter_entry(gname, id, fields, DeadLetterReason::Fatal, out);
                released += 1;
                continue;
            }
            let record = g.release(gname, id, args.deliveries(before));
            g.counters.nacked += 1;
            out.push(record);
            released += 1;
        }
        Ok(released)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::id::IdSpec;
    use crate::id::ReadId;
    use crate::node::NodeLimits;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    /// Entries 1..=n, group `g` with consumer `c` having read all of them.
    fn setup(n: u64) -> Stream {
        let mut s = Stream::new();
        let mut out = Vec::new();
        for ms in 1..=n {
            s.add(
                IdSpec::Explicit(id(ms)),
                &[Bytes::from("f"), Bytes::from("v")],
                None,
                0,
                &NodeLimits::default(),
                &mut out,
            )
            .unwrap();
        }
        s.create_group(
            b"g",
            crate::id::GroupStartId::Id(StreamId::MIN),
            None,
            &mut out,
        )
        .unwrap();
        s.read_group(b"s", b"g", b"c", ReadId::New, None, false, 100, &mut out)
            .unwrap();
        s
    }

    fn args(mode: NackMode, ids: &[u64]) -> NackArgs {
        NackArgs {
            mode,
            ids: ids.iter().map(|&m| id(m)).collect(),
            retry_count: None,
            force: false,
        }
    }

    fn replays(before: &Stream, out: &[Mutation], after: &Stream) {
        let mut r = before.clone();
        for m in out {
            r.apply(m);
        }
        assert!(r == *after, "replay differs");
    }

    #[test]
    fn modes_set_the_delivery_count() {
        let before = setup(3);
        let mut s = before.clone();
        let mut out = Vec::new();
        assert_eq!(
            s.nack(b"s", b"g", &args(NackMode::Silent, &[1]), &mut out)
                .unwrap(),
            1
        );
        assert_eq!(
            s.nack(b"s", b"g", &args(NackMode::Fail, &[2]), &mut out)
                .unwrap(),
            1
        );
        assert_eq!(
            s.nack(b"s", b"g", &args(NackMode::Fatal, &[3]), &mut out)
                .unwrap(),
            1
        );
        let g = s.group(b"g").unwrap();
        let counts: Vec<u64> = g.pending().values().map(|p| p.delivery_count).collect();
        assert_eq!(counts, vec![0, 1, MAX_DELIVERIES]);
        assert!(
            g.pending()
                .values()
                .all(|p| p.consumer.is_empty() && p.delivery_time == 0)
        );
        assert!(g.consumers()[&Bytes::from("c")].pending().is_empty());
        assert_eq!(g.nacked_count(), 3);
        replays(&before, &out, &s);
        // SILENT does not go below 0; RETRYCOUNT overrides the mode.
        let mut out2 = Vec::new();
        s.nack(b"s", b"g", &args(NackMode::Silent, &[1]), &mut out2)
            .unwrap();
        assert_eq!(s.group(b"g").unwrap().pending()[&id(1)].delivery_count, 0);
        let mut a = args(NackMode::Fatal, &[1]);
        a.retry_count = Some(42);
        s.nack(b"s", b"g", &a, &mut out2).unwrap();
        assert_eq!(s.group(b"g").unwrap().pending()[&id(1)].delivery_count, 42);
    }

    #[test]
    fn order_is_release_order_and_a_release_again_moves_to_the_back() {
        let mut s = setup(4);
        let mut out = Vec::new();
        s.nack(b"s", b"g", &args(NackMode::Fail, &[3, 1, 2]), &mut out)
            .unwrap();
        s.nack(b"s", b"g", &args(NackMode::Fail, &[3]), &mut out)
            .unwrap();
        let g = s.group(b"g").unwrap();
        assert_eq!(g.nacked().collect::<Vec<_>>(), vec![id(1), id(2), id(3)]);
        // A duplicate counts twice.
        assert_eq!(
            s.nack(b"s", b"g", &args(NackMode::Fail, &[4, 4]), &mut out)
                .unwrap(),
            2
        );
    }

    #[test]
    fn not_pending_is_skipped_and_force_needs_the_entry() {
        let mut s = setup(2);
        let mut out = Vec::new();
        s.ack(b"g", &[id(1)], &mut out);
        assert_eq!(
            s.nack(b"s", b"g", &args(NackMode::Fail, &[1, 9]), &mut out)
                .unwrap(),
            0
        );
        let mut a = args(NackMode::Fail, &[1, 9]);
        a.force = true;
        let before = s.clone();
        let mut out = Vec::new();
        assert_eq!(s.nack(b"s", b"g", &a, &mut out).unwrap(), 1);
        let p = &s.group(b"g").unwrap().pending()[&id(1)];
        assert_eq!((p.delivery_count, p.delivery_time), (0, 0));
        replays(&before, &out, &s);
        assert!(matches!(
            s.nack(b"s", b"nope", &a, &mut out),
            Err(StreamError::NoKeyOrGroup { .. })
        ));
    }

    #[test]
    fn ack_and_claims_take_entries_out_of_the_zone() {
        let before = setup(3);
        let mut s = before.clone();
        let mut out = Vec::new();
        s.nack(b"s", b"g", &args(NackMode::Fail, &[1, 2, 3]), &mut out)
            .unwrap();
        s.ack(b"g", &[id(2)], &mut out);
        let claim = crate::group::ClaimArgs {
            min_idle_ms: 1_000_000,
            ids: vec![id(3)],
            delivery_time: None,
            retry_count: None,
            force: false,
            just_id: true,
            last_id: None,
        };
        // A NACKed entry is claimable whatever the min-idle-time.
        let claimed = s.claim(b"s", b"g", b"d", &claim, 200, &mut out).unwrap();
        assert_eq!(claimed.ids(), vec![id(3)]);
        let g = s.group(b"g").unwrap();
        assert_eq!(g.nacked().collect::<Vec<_>>(), vec![id(1)]);
        assert_eq!(g.pending()[&id(3)].consumer, Bytes::from("d"));
        replays(&before, &out, &s);
    }
}
