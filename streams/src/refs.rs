//! Reference policies (Redis 8.2): XDELEX and XACKDEL, deletions that say what becomes of
//! the consumer groups' references to the entries they delete.

use bytes::Bytes;

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::source::NodeMeta;
use crate::stream::Stream;

/// What a deletion does about consumer groups' references to an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefPolicy {
    /// Delete the entry, leave pending-list references as they are (the default).
    #[default]
    KeepRef,
    /// Delete the entry and remove it from every group's pending list.
    DelRef,
    /// Delete the entry only if no group still needs it.
    Acked,
}

/// Per-ID reply: deleted (XDELEX) or acknowledged (XACKDEL).
pub const REF_DELETED: i64 = 1;
/// Per-ID reply: no such entry (XDELEX) or not pending in the group (XACKDEL).
pub const REF_NOT_FOUND: i64 = -1;
/// Per-ID reply: kept under ACKED because a group still references it.
pub const REF_KEPT: i64 = 2;

/// What a deletion did, gathered so its records go out as XDEL's do: one
/// `EntriesDeleted`, then the nodes dropped, then the pending-list removals.
#[derive(Default)]
struct Deletion {
    deleted: Vec<StreamId>,
    dropped: Vec<NodeMeta>,
    unref: Vec<StreamId>,
}

impl Stream {
    /// Whether a group still needs `id` (Redis's `streamEntryIsReferenced`): some group
    /// has not been delivered it yet, or holds it pending.
    pub fn is_referenced(&self, id: StreamId) -> bool {
        self.groups
            .values()
            .any(|g| g.last_id < id || g.pel.contains_key(&id))
    }

    /// XDELEX: deletes the IDs under `policy`; one reply code per ID
    /// ([`REF_DELETED`], [`REF_NOT_FOUND`], [`REF_KEPT`]).
    ///
    /// # Errors
    /// [`StreamError::Storage`] when the nodes holding the IDs cannot be read back;
    /// nothing changes then.
    pub fn delete_ex(
        &mut self,
        ids: &[StreamId],
        policy: RefPolicy,
        out: &mut Vec<Mutation>,
    ) -> Result<Vec<i64>, StreamError> {
        self.hydrate_all(ids)?;
        let mut d = Deletion::default();
        let codes = ids
            .iter()
            .map(|&id| {
                if policy == RefPolicy::Acked && self.is_live(id) && self.is_referenced(id) {
                    return REF_KEPT;
                }
                let deleted = self.delete_one(id, &mut d);
                if policy == RefPolicy::DelRef {
                    // Even for an entry deleted before (KEEPREF, XDEL): its references go,
                    // as Redis cleans them whether or not the entry was still there.
                    d.unref.push(id);
                }
                if deleted { REF_DELETED } else { REF_NOT_FOUND }
            })
            .collect();
        self.finish_deletion(d, out);
        Ok(codes)
    }

    /// XACKDEL: acknowledges the IDs in `group`, then deletes them under `policy`; one
    /// reply code per ID ([`REF_DELETED`] once acknowledged, [`REF_NOT_FOUND`] when not
    /// pending in the group, [`REF_KEPT`] when acknowledged but still referenced). Every
    /// ID is [`REF_NOT_FOUND`] without the group.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when the nodes holding the IDs cannot be read back;
    /// nothing changes then.
    pub fn ack_delete(
        &mut self,
        group: &[u8],
        ids: &[StreamId],
        policy: RefPolicy,
        out: &mut Vec<Mutation>,
    ) -> Result<Vec<i64>, StreamError> {
        let Some(gname) = self.groups.get_key_value(group).map(|(k, _)| k.clone()) else {
            return Ok(vec![REF_NOT_FOUND; ids.len()]);
        };
        self.hydrate_all(ids)?;
        let before = self.groups.get(&gname).map(|g| g.counters);
        let mut d = Deletion::default();
        let mut codes = Vec::with_capacity(ids.len());
        for &id in ids {
            if self.unpend(&gname, &[id], out) == 0 {
                codes.push(REF_NOT_FOUND);
                continue;
            }
            if let Some(g) = self.groups.get_mut(&gname) {
                g.counters.acked += 1;
            }
            if policy == RefPolicy::Acked && self.is_live(id) && self.is_referenced(id) {
                codes.push(REF_KEPT);
                continue;
            }
            self.delete_one(id, &mut d);
            if policy == RefPolicy::DelRef {
                // The entry is gone (now or before): no group is left pointing at it.
                d.unref.push(id);
            }
            codes.push(REF_DELETED);
        }
        if let Some(g) = self.groups.get(&gname)
            && before != Some(g.counters)
        {
            out.push(Mutation::GroupCounters {
                group: gname.clone(),
                counters: g.counters,
            });
        }
        self.finish_deletion(d, out);
        Ok(codes)
    }

    /// Makes the nodes holding `ids` resident, so that what follows cannot fail halfway.
    fn hydrate_all(&mut self, ids: &[StreamId]) -> Result<(), StreamError> {
        for &id in ids {
            if let Some(node) = self.node_holding(id) {
                self.hydrate(node.master)?;
            }
        }
        Ok(())
    }

    /// Whether a live entry has `id` (its node must be resident).
    fn is_live(&self, id: StreamId) -> bool {
        self.nodes
            .range(..=id)
            .next_back()
            .is_some_and(|(&master, node)| node.find_live(master, id).is_some())
    }

    /// Deletes one entry into `d`; false if no live entry has the ID.
    fn delete_one(&mut self, id: StreamId, d: &mut Deletion) -> bool {
        let (deleted, dropped) = self.delete_ids(&[id]);
        d.dropped.extend(dropped);
        let hit = !deleted.is_empty();
        d.deleted.extend(deleted);
        hit
    }

    /// Removes the unreferenced IDs from every group's pending list and pushes the records
    /// of the whole deletion, in the order replay needs them.
    fn finish_deletion(&mut self, d: Deletion, out: &mut Vec<Mutation>) {
        if !d.deleted.is_empty() {
            out.push(Mutation::EntriesDeleted { ids: d.deleted });
        }
        for node in d.dropped {
            out.push(Mutation::NodeDropped {
                master: node.master,
                last: node.last,
            });
        }
        if !d.unref.is_empty() {
            let names: Vec<Bytes> = self.groups.keys().cloned().collect();
            for name in names {
                // Dropping a deleted entry's references is no acknowledgement: not counted.
                self.unpend(&name, &d.unref, out);
            }
        }
        self.shed(None);
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

    /// A stream with entries 1..=n and the given groups, each having read `read` entries
    /// into consumer `c`'s pending list.
    fn setup(n: u64, groups: &[(&str, u64)]) -> Stream {
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
        for (g, read) in groups {
            s.apply(&Mutation::GroupCreated {
                group: Bytes::from(g.to_string()),
                last_id: id(*read),
                entries_read: None,
            });
            for ms in 1..=*read {
                s.apply(&Mutation::PendingUpserted {
                    group: Bytes::from(g.to_string()),
                    id: id(ms),
                    consumer: Bytes::from("c"),
                    delivery_time: 0,
                    delivery_count: 1,
                });
            }
        }
        s
    }

    /// Replays `out` onto `before` and checks it gives `after`.
    fn replays(before: &Stream, out: &[Mutation], after: &Stream) {
        let mut r = before.clone();
        for m in out {
            r.apply(m);
        }
        assert!(r == *after, "replay differs");
    }

    fn pel_len(s: &Stream, g: &str) -> usize {
        s.group(g.as_bytes()).unwrap().pending().len()
    }

    #[test]
    fn xdelex_policies() {
        let before = setup(4, &[("g", 2)]);
        // KEEPREF: deleted, the reference stays.
        let mut s = before.clone();
        let mut out = Vec::new();
        let codes = s
            .delete_ex(&[id(1), id(9), id(1)], RefPolicy::KeepRef, &mut out)
            .unwrap();
        assert_eq!(codes, vec![1, -1, -1]);
        assert_eq!(s.len(), 3);
        assert_eq!(pel_len(&s, "g"), 2);
        replays(&before, &out, &s);
        // DELREF: deleted and gone from the PEL and the consumer.
        let mut s = before.clone();
        let mut out = Vec::new();
        let codes = s
            .delete_ex(&[id(1), id(3)], RefPolicy::DelRef, &mut out)
            .unwrap();
        assert_eq!(codes, vec![1, 1]);
        assert_eq!(pel_len(&s, "g"), 1);
        let g = s.group(b"g").unwrap();
        assert_eq!(g.consumers()[&Bytes::from("c")].pending().len(), 1);
        replays(&before, &out, &s);
        // DELREF of an entry deleted before still lets go of its references.
        let mut s = before.clone();
        s.delete(&[id(2)], &mut Vec::new()).unwrap();
        let deleted = s.clone();
        let mut out = Vec::new();
        let codes = s.delete_ex(&[id(2)], RefPolicy::DelRef, &mut out).unwrap();
        assert_eq!(codes, vec![-1]);
        assert_eq!(pel_len(&s, "g"), 1);
        replays(&deleted, &out, &s);
        // ACKED: pending (1) and undelivered (3) entries stay.
        let mut s = before.clone();
        s.ack(b"g", &[id(2)], &mut Vec::new());
        let acked = s.clone();
        let mut out = Vec::new();
        let codes = s
            .delete_ex(&[id(1), id(2), id(3), id(7)], RefPolicy::Acked, &mut out)
            .unwrap();
        assert_eq!(codes, vec![2, 1, 2, -1]);
        assert_eq!(s.len(), 3);
        replays(&acked, &out, &s);
    }

    #[test]
    fn xdelex_acked_without_groups_deletes() {
        let mut s = setup(2, &[]);
        let codes = s
            .delete_ex(&[id(1), id(2)], RefPolicy::Acked, &mut Vec::new())
            .unwrap();
        assert_eq!(codes, vec![1, 1]);
        assert!(s.is_empty());
    }

    #[test]
    fn xackdel_policies() {
        // Two groups that both read 1 and 2.
        let before = setup(3, &[("g1", 2), ("g2", 2)]);
        let mut s = before.clone();
        let mut out = Vec::new();
        let codes = s
            .ack_delete(b"g1", &[id(1), id(2), id(3)], RefPolicy::Acked, &mut out)
            .unwrap();
        assert_eq!(codes, vec![2, 2, -1]);
        assert_eq!((s.len(), pel_len(&s, "g1"), pel_len(&s, "g2")), (3, 0, 2));
        replays(&before, &out, &s);
        let mid = s.clone();
        let mut out = Vec::new();
        let codes = s
            .ack_delete(b"g2", &[id(1), id(2)], RefPolicy::Acked, &mut out)
            .unwrap();
        assert_eq!(codes, vec![1, 1]);
        assert_eq!((s.len(), pel_len(&s, "g2")), (1, 0));
        replays(&mid, &out, &s);

        // KEEPREF leaves g2's references; g2 can still acknowledge the deleted entries.
        let mut s = before.clone();
        let codes = s
            .ack_delete(b"g1", &[id(1), id(2)], RefPolicy::KeepRef, &mut Vec::new())
            .unwrap();
        assert_eq!(codes, vec![1, 1]);
        assert_eq!((s.len(), pel_len(&s, "g2")), (1, 2));
        let codes = s
            .ack_delete(b"g2", &[id(1), id(2)], RefPolicy::KeepRef, &mut Vec::new())
            .unwrap();
        assert_eq!(codes, vec![1, 1]);
        assert_eq!(pel_len(&s, "g2"), 0);

        // DELREF clears every group; then nothing is pending in g2.
        let mut s = before.clone();
        let mut out = Vec::new();
        let codes = s
            .ack_delete(b"g1", &[id(1), id(2)], RefPolicy::DelRef, &mut out)
            .unwrap();
        assert_eq!(codes, vec![1, 1]);
        assert_eq!((s.len(), pel_len(&s, "g1"), pel_len(&s, "g2")), (1, 0, 0));
        replays(&before, &out, &s);
        let codes = s
            .ack_delete(b"g2", &[id(1), id(2)], RefPolicy::DelRef, &mut Vec::new())
            .unwrap();
        assert_eq!(codes, vec![-1, -1]);

        // No such group: every ID -1, nothing changes.
        let mut s = before.clone();
        let mut out = Vec::new();
        let codes = s
            .ack_delete(b"nope", &[id(1)], RefPolicy::DelRef, &mut out)
            .unwrap();
        assert_eq!(codes, vec![-1]);
        assert!(out.is_empty() && s == before);
    }
}
