//! A stream as the records that rebuild it: what a replication full sync sends for each
//! stream, so the replica builds it through the same [`Stream::apply`] that replays a log.

use crate::error::StreamError;
use crate::id::StreamId;
use crate::iid::Iid;
use crate::mutation::Mutation;
use crate::stream::Stream;

impl Stream {
    /// Hands `emit` the records that, applied in order to an empty stream, rebuild this one:
    /// its entries node by node (tombstones as an append and a deletion, so the nodes come
    /// out the same), then its groups, consumers and pending entries (released ones in
    /// release order), IDMP state, retention and metadata. Nodes read back from storage are
    /// let go again after each batch.
    pub fn rebuild_records(
        &mut self,
        mut emit: impl FnMut(&[Mutation]),
    ) -> Result<(), StreamError> {
        let masters: Vec<StreamId> = self.nodes.keys().copied().collect();
        let mut batch = Vec::new();
        for master in masters {
            self.hydrate(master)?;
            if let Some(node) = self.nodes.get(&master) {
                let mut deleted = Vec::new();
                for e in node.iter(master) {
                    if e.is_deleted() {
                        deleted.push(e.id);
                    }
                    batch.push(Mutation::EntryAdded {
                        id: e.id,
                        fields: node.fields(&e),
                        new_node: e.id == master,
                    });
                }
                if !deleted.is_empty() {
                    batch.push(Mutation::EntriesDeleted { ids: deleted });
                }
            }
            emit(&batch);
            batch.clear();
            self.shed(None);
        }
        self.state_records(&mut batch);
        emit(&batch);
        Ok(())
    }

    /// Everything but the entries, as records (see [`Stream::rebuild_records`]).
    fn state_records(&self, out: &mut Vec<Mutation>) {
        for (name, g) in &self.groups {
            out.push(Mutation::GroupCreated {
                group: name.clone(),
                last_id: g.last_id,
                entries_read: g.entries_read,
            });
            for (cname, c) in &g.consumers {
                out.push(Mutation::ConsumerUpserted {
                    group: name.clone(),
                    consumer: cname.clone(),
                    seen_time: c.seen_time,
                    active_time: c.active_time,
                });
            }
            for (id, p) in &g.pel {
                if !g.is_nacked(id) {
                    out.push(Mutation::PendingUpserted {
                        group: name.clone(),
                        id: *id,
                        consumer: p.consumer.clone(),
                        delivery_time: p.delivery_time,
                        delivery_count: p.delivery_count,
                    });
                }
            }
            for id in g.nacked() {
                if let (Some(p), Some(seq)) = (g.pel.get(&id), g.nack_seq(&id)) {
                    out.push(Mutation::PendingNacked {
                        group: name.clone(),
                        id,
                        delivery_count: p.delivery_count,
                        seq,
                    });
                }
            }
            if g.counters != Default::default() {
                out.push(Mutation::GroupCounters {
                    group: name.clone(),
                    counters: g.counters,
                });
            }
            if g.dlq.is_some() {
                out.push(Mutation::GroupDlqSet {
                    group: name.clone(),
                    dlq: g.dlq.clone(),
                });
            }
        }
        let config = self.idmp.config();
        out.push(Mutation::IdmpConfigSet {
            duration: config.duration,
            maxsize: config.maxsize,
        });
        let added = self.idmp.added();
        for (pid, ids) in self.idmp.producers() {
            for (iid, id) in ids {
                out.push(Mutation::IdmpAdded {
                    pid: Iid::new(pid),
                    iid: iid.into(),
                    id,
                    added,
                    // The iid goes as it is: a rebuilt entry's fields are not at hand.
                    auto: false,
                });
            }
        }
        if self.idmp.duplicates() > 0 {
            out.push(Mutation::IdmpDuplicates {
                count: self.idmp.duplicates(),
            });
        }
        if self.retention.is_on() {
            out.push(Mutation::RetentionSet {
                max_age: self.retention.max_age,
                policy: self.retention.policy,
            });
        }
        out.push(Mutation::StreamMeta {
            last_id: self.last_id,
            entries_added: self.entries_added,
            max_deleted_id: self.max_deleted_id,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::id::IdSpec;
    use bytes::Bytes;

    #[test]
    fn rebuilt_stream_equals_the_original() {
        let mut s = Stream::new();
        let mut out = Vec::new();
        for i in 1..=300u64 {
            s.add(
                IdSpec::Explicit(StreamId::new(i, 0)),
                &[Bytes::from("f"), Bytes::from(format!("v{i}"))],
                None,
                0,
                &Default::default(),
                &mut out,
            )
            .unwrap();
        }
        s.delete(&[StreamId::new(5, 0), StreamId::new(150, 0)], &mut out)
            .unwrap();
        let mut copy = Stream::new();
        s.rebuild_records(|muts| {
            for m in muts {
                copy.apply(m);
            }
        })
        .unwrap();
        assert!(copy == s);
        assert_eq!(copy.len(), 298);
    }
}
