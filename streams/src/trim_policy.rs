//! Trimming under a reference policy other than KEEPREF (Redis 8.2's DELREF and ACKED on
//! XTRIM and on XADD's trim), as Redis's `streamTrim` does it.
//!
//! Under these policies Redis ignores `~` (its LIMIT still applies) and walks the trimmed
//! nodes entry by entry: DELREF deletes every live entry the trim reaches and lets go of
//! every group's pending-list reference to it; ACKED skips an entry some group still needs
//! (not yet delivered to it, or pending in it) and goes on with the next one, so a MAXLEN
//! trim may reach past it. A node goes whole only when the trim was allowed to take all of
//! it (KEEPREF's rule) and every live entry in it went.
//!
//! Nodes are only read back where an entry may be kept (or, for DELREF, where a tombstone
//! may hide behind a pending reference): a node whose IDs every group has been delivered
//! and none holds pending goes on its record alone, like KEEPREF's whole nodes.
//!
//! Records: the nodes dropped from the head, and the entries flagged in the node after
//! them when none was skipped there, are one `Trimmed` (so a large trim leaves its
//! records to the purge thread, as KEEPREF's does); what ACKED removes past a kept entry is
//! an `EntriesTrimmed` and a `NodesTrimmed`; DELREF's released references are
//! `PendingRemoved` records.

use std::ops::Bound::{Excluded, Unbounded};

use bytes::Bytes;

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::refs::RefPolicy;
use crate::stream::Stream;
use crate::trim::{TrimArgs, TrimStrategy};

/// What the trim does to one node, decided before anything changes.
enum Step {
    /// Every live entry goes, and the node with them.
    Whole(StreamId),
    /// These live entries of the node go (in ID order); the node stays.
    Flag(StreamId, Vec<StreamId>),
}

impl Stream {
    /// XTRIM / XADD's trim under DELREF or ACKED (`limit` is the effective LIMIT);
    /// returns the number of entries removed.
    pub(crate) fn trim_with_policy(
        &mut self,
        args: &TrimArgs,
        limit: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        let acked = args.policy == RefPolicy::Acked;
        let steps = self.plan_policy_trim(args.strategy, limit, acked)?;
        if steps.is_empty() {
            return Ok(0);
        }
        // DELREF: the live entries going, as seen before they go.
        let unref = if acked {
            Vec::new()
        } else {
            self.referenced_live(&steps)
        };
        let removed = self.apply_steps(steps, acked, out);
        if !unref.is_empty() {
            let names: Vec<Bytes> = self.groups.keys().cloned().collect();
            for name in names {
                // Dropping a trimmed entry's references is no acknowledgement: not counted.
                self.unpend(&name, &unref, out);
            }
        }
        self.refresh_first_id();
        self.shed(None);
        Ok(removed)
    }

    /// Whether a group still needs `id` (ACKED keeps it): not delivered to every group, or
    /// pending in one.
    fn still_needed(&self, id: StreamId) -> bool {
        self.is_referenced(id)
    }

    /// Whether some group's pending list holds an ID in `from..=to`.
    fn pending_within(&self, from: StreamId, to: StreamId) -> bool {
        self.groups
            .values()
            .any(|g| g.pel.range(from..=to).next().is_some())
    }

    /// Works the trim out node by node, as Redis's loop goes, reading back the nodes whose
    /// entries must be looked at; nothing changes but the node cache. Errors when such a
    /// node cannot be read back.
    fn plan_policy_trim(
        &mut self,
        strategy: TrimStrategy,
        limit: u64,
        acked: bool,
    ) -> Result<Vec<Step>, StreamError> {
        // The lowest ID some group has not been delivered yet starts past this.
        let delivered_to_all = if acked {
            self.groups.values().map(|g| g.last_id).min()
        } else {
            None
        };
        let delivered_to_all = delivered_to_all.unwrap_or(StreamId::MAX);
        let mut steps = Vec::new();
        let mut length = self.length;
        let mut deleted = 0u64;
        // A cursor rather than a list of every node: XADD's trim runs on every append and
        // mostly stops at the first node. Planning removes no node.
        let mut next = self.nodes.keys().next().copied();
        while let Some(master) = next {
            next = self
                .nodes
                .range((Excluded(master), Unbounded))
                .next()
                .map(|(k, _)| *k);
            let Some(node) = self.nodes.get(&master) else {
                continue;
            };
            let (live, last) = (node.live, node.last);
            if let TrimStrategy::MaxLen(max) = strategy
                && length <= max
            {
                break;
            }
            if limit != 0 && deleted + live > limit {
                break;
            }
            let eligible = match strategy {
                TrimStrategy::MaxLen(max) => length - live >= max,
                TrimStrategy::MinId(min) => last < min,
            };
            if acked && master > delivered_to_all {
                // Every live entry here is still to be delivered to some group: only a node
                // of tombstones alone can go.
                if live == 0 && eligible {
                    steps.push(Step::Whole(master));
                    continue;
                }
                if eligible {
                    continue;
                }
                break;
            }
            let all_go = !acked || (last <= delivered_to_all && !self.pending_within(master, last));
            if eligible && all_go {
                steps.push(Step::Whole(master));
                length -= live;
                deleted += live;
                continue;
            }
            self.hydrate(master)?;
            let Some(node) = self.nodes.get(&master) else {
                continue;
            };
            let mut going = Vec::new();
            for e in node.iter(master) {
                let stop = match strategy {
                    TrimStrategy::MaxLen(max) => length <= max,
                    TrimStrategy::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if e.is_deleted() || (acked && self.still_needed(e.id)) {
                    continue;
                }
                going.push(e.id);
                length -= 1;
            }
            deleted += going.len() as u64;
            if eligible && going.len() as u64 == live {
                steps.push(Step::Whole(master));
                continue;
            }
            if !going.is_empty() {
                steps.push(Step::Flag(master, going));
            }
            if !eligible {
                break;
            }
        }
        if !acked {
            self.hydrate_tombstoned_refs(&steps)?;
        }
        Ok(steps)
    }

    /// DELREF lets go only of references to live entries (a tombstone's stays, as in
    /// Redis): nodes going whole that hold tombstones and a pending ID are read back so
    /// that [`Self::referenced_live`] can tell.
    fn hydrate_tombstoned_refs(&mut self, steps: &[Step]) -> Result<(), StreamError> {
        for step in steps {
            if let Step::Whole(master) = *step
                && let Some(node) = self.nodes.get(&master)
                && node.deleted > 0
                && self.pending_within(master, node.last)
            {
                self.hydrate(master)?;
            }
        }
        Ok(())
    }

    /// The pending IDs (of any group) that are live entries the trim removes.
    fn referenced_live(&self, steps: &[Step]) -> Vec<StreamId> {
        let mut ids: Vec<StreamId> = Vec::new();
        for step in steps {
            match step {
                Step::Whole(master) => {
                    let Some(node) = self.nodes.get(master) else {
                        continue;
                    };
                    for g in self.groups.values() {
                        for &id in g.pel.range(*master..=node.last).map(|(id, _)| id) {
                            // Without tombstones every pending ID in the span is an entry.
                            if node.deleted == 0 || node.find_live(*master, id).is_some() {
                                ids.push(id);
                            }
                        }
                    }
                }
                Step::Flag(_, going) => {
                    for &id in going {
                        if self.groups.values().any(|g| g.pel.contains_key(&id)) {
                            ids.push(id);
                        }
                    }
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Carries the plan out and pushes its records; returns the entries removed.
    fn apply_steps(&mut self, steps: Vec<Step>, acked: bool, out: &mut Vec<Mutation>) -> u64 {
        let mut removed = 0u64;
        let mut steps = steps.into_iter().peekable();
        // Whole nodes from the head, then (if nothing was skipped there) the entries flagged
        // in the node after them: one `Trimmed`, which replays as it was done.
        let mut through: Option<StreamId> = None;
        let mut dropped = 0u64;
        while let Some(Step::Whole(master)) = steps.peek() {
            if self.nodes.keys().next() != Some(master) {
                break;
            }
            let master = *master;
            steps.next();
            if let Some(node) = self.remove_node(master) {
                self.length -= node.live;
                removed += node.live;
                dropped += node.live + node.deleted;
                through = Some(node.last);
            }
        }
        if let Some(Step::Flag(master, going)) = steps.peek()
            && self.nodes.keys().next() == Some(master)
            && self.is_prefix_of_live(*master, going)
        {
            let (master, going) = (*master, going.clone());
            steps.next();
            removed += self.flag(master, &going);
            through = going.last().copied().or(through);
        }
        if let Some(through) = through {
            out.push(Mutation::Trimmed { through, dropped });
        }
        // What is left (ACKED past an entry it kept): flags, then nodes gone.
        let mut flagged = Vec::new();
        let mut gone = Vec::new();
        for step in steps {
            match step {
                Step::Flag(master, going) => {
                    removed += self.flag(master, &going);
                    flagged.extend(going);
                }
                Step::Whole(master) => {
                    if let Some(node) = self.remove_node(master) {
                        self.length -= node.live;
                        removed += node.live;
                        gone.push((master, node.last, node.live + node.deleted));
                    }
                }
            }
        }
        debug_assert!(acked || (flagged.is_empty() && gone.is_empty()));
        if !flagged.is_empty() {
            out.push(Mutation::EntriesTrimmed { ids: flagged });
        }
        if !gone.is_empty() {
            out.push(Mutation::NodesTrimmed { nodes: gone });
        }
        removed
    }

    /// Whether `going` is every live entry of the (resident) node up to its last ID, which
    /// a `Trimmed` record replays exactly.
    fn is_prefix_of_live(&self, master: StreamId, going: &[StreamId]) -> bool {
        let Some((node, upto)) = self.nodes.get(&master).zip(going.last()) else {
            return false;
        };
        node.iter(master)
            .filter(|e| e.id <= *upto && !e.is_deleted())
            .map(|e| e.id)
            .eq(going.iter().copied())
    }

    /// Flags `ids` (live entries of the resident node at `master`) deleted; the node stays
    /// even when none is left live. Returns how many were flagged.
    fn flag(&mut self, master: StreamId, ids: &[StreamId]) -> u64 {
        let Some(node) = self.nodes.get_mut(&master) else {
            return 0;
        };
        let mut n = 0;
        for &id in ids {
            if let Some(e) = node.find_live(master, id) {
                node.mark_deleted(master, &e);
                n += 1;
            }
        }
        self.length -= n;
        n
    }

    /// Replays an `EntriesTrimmed` record: flags the IDs deleted where they are live,
    /// keeping their nodes (and max-deleted-id) as they are.
    pub(crate) fn trimmed_ids(&mut self, ids: &[StreamId]) {
        let mut i = 0;
        while i < ids.len() {
            let Some(node) = self.node_holding(ids[i]) else {
                i += 1;
                continue;
            };
            let j = i + ids[i..].iter().take_while(|id| **id <= node.last).count();
            // A replayed record has nothing to report an unreadable node to; its entries
            // then stay, as they would had the record been lost.
            if self.hydrate(node.master).is_ok() {
                self.flag(node.master, &ids[i..j]);
            }
            i = j.max(i + 1);
        }
        self.refresh_first_id();
    }

    /// Replays a `NodesTrimmed` (or `NodeDropped`) record: the node goes with its entries
    /// (a no-op after XDEL, whose deletion of the last live entry already dropped it).
    pub(crate) fn drop_node(&mut self, master: StreamId) {
        if let Some(node) = self.remove_node(master) {
            self.length -= node.live;
            self.refresh_first_id();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::id::IdSpec;
    use crate::node::NodeLimits;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    /// Entries 1..=n in nodes of `per_node` entries; group `g` delivered 1..=read to
    /// consumer `c`, then acknowledged `acked`.
    fn setup(n: u64, per_node: u64, read: u64, acked: &[u64]) -> Stream {
        let limits = NodeLimits {
            max_bytes: 1 << 20,
            max_entries: per_node,
        };
        let mut s = Stream::new();
        for ms in 1..=n {
            s.add(
                IdSpec::Explicit(id(ms)),
                &[Bytes::from("f"), Bytes::from("v")],
                None,
                0,
                &limits,
                &mut Vec::new(),
            )
            .unwrap();
        }
        s.apply(&Mutation::GroupCreated {
            group: Bytes::from("g"),
            last_id: id(read),
            entries_read: None,
        });
        for ms in 1..=read {
            s.apply(&Mutation::PendingUpserted {
                group: Bytes::from("g"),
                id: id(ms),
                consumer: Bytes::from("c"),
                delivery_time: 0,
                delivery_count: 1,
            });
        }
        let ids: Vec<StreamId> = acked.iter().map(|&ms| id(ms)).collect();
        s.ack(b"g", &ids, &mut Vec::new());
        s
    }

    fn args(strategy: TrimStrategy, approx: bool, policy: RefPolicy) -> TrimArgs {
        TrimArgs {
            strategy,
            approx,
            limit: None,
            policy,
        }
    }

    /// Trims a copy of `before`, checks that replaying its records gives the same stream,
    /// and returns it with the count removed and the records.
    fn trimmed(before: &Stream, a: TrimArgs) -> (Stream, u64, Vec<Mutation>) {
        let mut s = before.clone();
        let mut out = Vec::new();
        let n = s.trim(&a, &NodeLimits::default(), &mut out).unwrap();
        let mut r = before.clone();
        for m in &out {
            r.apply(m);
        }
        assert!(r == s, "replay differs: {out:?}");
        (s, n, out)
    }

    fn live(s: &mut Stream) -> Vec<u64> {
        s.range(StreamId::MIN, StreamId::MAX, None, false)
            .unwrap()
            .into_iter()
            .map(|e| e.id.ms)
            .collect()
    }

    fn pel(s: &Stream) -> Vec<u64> {
        s.group(b"g")
            .unwrap()
            .pending()
            .keys()
            .map(|i| i.ms)
            .collect()
    }

    #[test]
    fn acked_skips_what_a_group_needs_and_goes_on() {
        // 1, 4, 5 pending; 2, 3 acknowledged; 6..8 never delivered.
        let before = setup(8, 100, 5, &[2, 3]);
        let (mut s, n, out) = trimmed(
            &before,
            args(TrimStrategy::MaxLen(3), false, RefPolicy::Acked),
        );
        assert_eq!(n, 2);
        assert_eq!(live(&mut s), vec![1, 4, 5, 6, 7, 8]);
        assert_eq!(pel(&s), vec![1, 4, 5]);
        assert_eq!(s.max_deleted_id(), StreamId::MIN);
        assert!(matches!(out[..], [Mutation::EntriesTrimmed { .. }]));
        // MINID the same way; nothing delivered-but-unacknowledged goes.
        let (mut s, n, _) = trimmed(
            &before,
            args(TrimStrategy::MinId(id(7)), true, RefPolicy::Acked),
        );
        assert_eq!(n, 2);
        assert_eq!(live(&mut s), vec![1, 4, 5, 6, 7, 8]);
        // Everything acknowledged and delivered: like an exact trim, `~` ignored.
        let before = setup(8, 100, 8, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let (mut s, n, out) = trimmed(
            &before,
            args(TrimStrategy::MaxLen(3), true, RefPolicy::Acked),
        );
        assert_eq!(n, 5);
        assert_eq!(live(&mut s), vec![6, 7, 8]);
        assert!(matches!(out[..], [Mutation::Trimmed { .. }]));
    }

    #[test]
    fn acked_drops_whole_nodes_past_a_kept_entry() {
        // Nodes of 3: [1,2,3] [4,5,6] [7,8,9] [10]; 2 still pending.
        let before = setup(10, 3, 10, &[1, 3, 4, 5, 6, 7, 8, 9, 10]);
        let (mut s, n, out) = trimmed(
            &before,
            args(TrimStrategy::MaxLen(1), false, RefPolicy::Acked),
        );
        // The last node goes too: taking it whole still leaves MAXLEN entries.
        assert_eq!(n, 9);
        assert_eq!(live(&mut s), vec![2]);
        assert_eq!(s.node_count(), 1);
        assert!(
            matches!(
                &out[..],
                [Mutation::EntriesTrimmed { .. }, Mutation::NodesTrimmed { nodes }] if nodes.len() == 3
            ),
            "{out:?}"
        );
        // A limit stops it at a node boundary.
        let mut a = args(TrimStrategy::MaxLen(1), true, RefPolicy::Acked);
        a.limit = Some(4);
        let (mut s, n, _) = trimmed(&before, a);
        assert_eq!(n, 2);
        assert_eq!(live(&mut s), vec![2, 4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn acked_without_groups_trims_exactly() {
        let mut before = setup(10, 3, 0, &[]);
        before.apply(&Mutation::GroupDestroyed {
            group: Bytes::from("g"),
        });
        let (mut s, n, _) = trimmed(
            &before,
            args(TrimStrategy::MaxLen(4), true, RefPolicy::Acked),
        );
        assert_eq!(n, 6);
        assert_eq!(live(&mut s), vec![7, 8, 9, 10]);
    }

    #[test]
    fn delref_lets_go_of_live_entries_references_only() {
        let mut before = setup(10, 3, 6, &[]);
        // 2 deleted before (KEEPREF): its reference outlives a DELREF trim, as in Redis.
        before.delete(&[id(2)], &mut Vec::new()).unwrap();
        let (mut s, n, out) = trimmed(
            &before,
            args(TrimStrategy::MaxLen(3), true, RefPolicy::DelRef),
        );
        assert_eq!(n, 6);
        assert_eq!(live(&mut s), vec![8, 9, 10]);
        assert_eq!(pel(&s), vec![2]);
        let consumer = &s.group(b"g").unwrap().consumers()[&Bytes::from("c")];
        assert_eq!(consumer.pending().len(), 1);
        assert!(matches!(out[0], Mutation::Trimmed { .. }));
        // MINID inside a node.
        let (mut s, n, _) = trimmed(
            &before,
            args(TrimStrategy::MinId(id(5)), false, RefPolicy::DelRef),
        );
        assert_eq!(n, 3);
        assert_eq!(live(&mut s), vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(pel(&s), vec![2, 5, 6]);
    }

    #[test]
    fn acked_removes_an_all_tombstone_node_past_the_delivered_point() {
        // Nodes [1,2,3] [4,5,6] [7]; nothing delivered; 4..6 deleted (XDEL empties the node
        // and drops it, so build the tombstone node by a KEEPREF exact trim instead).
        let before = setup(7, 3, 0, &[]);
        let (after, _, _) = trimmed(
            &before,
            args(TrimStrategy::MinId(id(5)), false, RefPolicy::KeepRef),
        );
        let (mut s, n, _) = trimmed(
            &after,
            args(TrimStrategy::MaxLen(0), false, RefPolicy::Acked),
        );
        assert_eq!(n, 0);
        assert_eq!(live(&mut s), vec![5, 6, 7]);
    }
}
