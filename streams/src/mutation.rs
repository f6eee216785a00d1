//! Mutation records: every change of state a command makes, in order, so persistence
//! can journal them and [`Stream::apply`] can rebuild identical state from them.

use bytes::Bytes;

use crate::group::{Consumer, DeadLetter, DeadLetterConfig, GroupCounters, PendingEntry};
use crate::id::StreamId;
use crate::iid::Iid;
use crate::node::NodeLimits;
use crate::refs::RefPolicy;
use crate::stream::Stream;

/// One change of a stream's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// XADD appended an entry (and bumped length, entries-added, last-id); `new_node`
    /// records whether it opened a node, so replay rebuilds the same nodes whatever
    /// the node limits are at replay time.
    EntryAdded {
        /// The new entry's ID.
        id: StreamId,
        /// Fields and values, flattened.
        fields: Vec<Bytes>,
        /// Whether the entry opened a new node.
        new_node: bool,
    },
    /// XDEL deleted these IDs (all were live; max-deleted-id and first-id follow).
    EntriesDeleted {
        /// Deleted IDs, in command order.
        ids: Vec<StreamId>,
    },
    /// XDEL deleted the last live entry of a node, so the node and its tombstones went
    /// (follows the `EntriesDeleted` that did it).
    NodeDropped {
        /// The node's first entry.
        master: StreamId,
        /// Its last entry, tombstones included.
        last: StreamId,
    },
    /// A trim removed every live entry with ID `<= through` (and whole nodes ending
    /// at or before it).
    Trimmed {
        /// Highest ID (tombstones included) the trim dropped or flagged.
        through: StreamId,
        /// Entry slots (tombstones included) of the nodes it dropped whole: how much
        /// storage has to remove.
        dropped: u64,
    },
    /// A trim under ACKED flagged these live entries deleted past an entry it kept; their
    /// nodes stay (those it emptied and could take whole follow as `NodesTrimmed`), and
    /// max-deleted-id does not move (a trim is not XDEL).
    EntriesTrimmed {
        /// The IDs, ascending.
        ids: Vec<StreamId>,
    },
    /// A trim under ACKED took these nodes whole past an entry it kept: each node's first
    /// and last IDs (tombstones included) and its entry slots (how much storage has to
    /// remove).
    NodesTrimmed {
        /// The nodes, ascending.
        nodes: Vec<(StreamId, StreamId, u64)>,
    },
    /// XSETID set the stream's metadata.
    StreamMeta {
        /// last-generated-id.
        last_id: StreamId,
        /// entries-added.
        entries_added: u64,
        /// max-deleted-entry-id.
        max_deleted_id: StreamId,
    },
    /// XGROUP CREATE.
    GroupCreated {
        /// Group name.
        group: Bytes,
        /// last-delivered-id.
        last_id: StreamId,
        /// entries-read.
        entries_read: Option<u64>,
    },
    /// The group's last-delivered-id / entries-read changed.
    GroupUpdated {
        /// Group name.
        group: Bytes,
        /// last-delivered-id.
        last_id: StreamId,
        /// entries-read.
        entries_read: Option<u64>,
    },
    /// XGROUP DESTROY (consumers and PEL go with it).
    GroupDestroyed {
        /// Group name.
        group: Bytes,
    },
    /// A consumer was created or its times changed.
    ConsumerUpserted {
        /// Group name.
        group: Bytes,
        /// Consumer name.
        consumer: Bytes,
        /// seen-time.
        seen_time: u64,
        /// active-time.
        active_time: Option<u64>,
    },
    /// XGROUP DELCONSUMER (its pending entries were removed by preceding records).
    ConsumerDeleted {
        /// Group name.
        group: Bytes,
        /// Consumer name.
        consumer: Bytes,
    },
    /// A pending entry was created, re-delivered or moved to another consumer.
    PendingUpserted {
        /// Group name.
        group: Bytes,
        /// Entry ID.
        id: StreamId,
        /// Owner after the change.
        consumer: Bytes,
        /// Last delivery, Unix ms.
        delivery_time: u64,
        /// Deliveries.
        delivery_count: u64,
    },
    /// XNACK released a pending entry (or, with FORCE, made one): no owner, delivery time
    /// 0, at release position `seq` of the group's NACK zone (numbers grow with each
    /// release, so sorting by them restores the zone's order).
    PendingNacked {
        /// Group name.
        group: Bytes,
        /// Entry ID.
        id: StreamId,
        /// Deliveries.
        delivery_count: u64,
        /// Release position.
        seq: u64,
    },
    /// A pending entry left the PEL (XACK, deleted entry found by XCLAIM/XAUTOCLAIM,
    /// DELCONSUMER).
    PendingRemoved {
        /// Group name.
        group: Bytes,
        /// Entry ID.
        id: StreamId,
    },
    /// A group's lifetime totals changed (set to these values, so replaying it again
    /// changes nothing).
    GroupCounters {
        /// Group name.
        group: Bytes,
        /// The totals after the change.
        counters: GroupCounters,
    },
    /// XGROUP SETDLQ set (or, `None`, removed) the group's dead-letter stream.
    GroupDlqSet {
        /// Group name.
        group: Bytes,
        /// The settings after the change.
        dlq: Option<DeadLetterConfig>,
    },
    /// A pending entry was dead-lettered (the `PendingRemoved` before it took it out of the
    /// PEL). Replay changes nothing for it; it tells the server what to append to the
    /// dead-letter stream, and storage that this change and that append are one step.
    DeadLettered(Box<DeadLetter>),
    /// XADD IDMP / IDMPAUTO added an entry (the `EntryAdded` before it), or XIDMPRECORD
    /// mapped a pair to an entry: producer `pid`'s idempotent ID `iid` names entry `id`.
    IdmpAdded {
        /// Producer ID.
        pid: Iid,
        /// Idempotent ID.
        iid: Iid,
        /// The entry.
        id: StreamId,
        /// `iids-added` after the change.
        added: u64,
        /// Whether `iid` is IDMPAUTO's, derived from the entry's fields (a record may
        /// then leave it out).
        auto: bool,
    },
    /// XADD IDMP found a duplicate: `iids-duplicates` is now `count`. Set to a value, so
    /// it is logged like a group change and replaying it again changes nothing.
    IdmpDuplicates {
        /// `iids-duplicates`.
        count: u64,
    },
    /// XCFGSET changed the IDMP settings, forgetting every remembered ID.
    IdmpConfigSet {
        /// IDMP-DURATION, seconds.
        duration: u32,
        /// IDMP-MAXSIZE.
        maxsize: u32,
    },
    /// XCFGSET MAXAGE changed the stream's retention (`max_age` 0: off).
    RetentionSet {
        /// MAXAGE, milliseconds.
        max_age: u64,
        /// The reference policy retention removes under.
        policy: RefPolicy,
    },
}

impl Mutation {
    /// Whether this changes consumer groups only (a group, a consumer or a pending entry),
    /// or is another record that sets a value and may be replayed again (the IDMP
    /// duplicates counter): storage logs these the same way.
    pub fn is_group_change(&self) -> bool {
        matches!(
            self,
            Mutation::IdmpDuplicates { .. }
                | Mutation::GroupCreated { .. }
                | Mutation::GroupUpdated { .. }
                | Mutation::GroupDestroyed { .. }
                | Mutation::ConsumerUpserted { .. }
                | Mutation::ConsumerDeleted { .. }
                | Mutation::PendingUpserted { .. }
                | Mutation::PendingNacked { .. }
                | Mutation::PendingRemoved { .. }
                | Mutation::GroupCounters { .. }
                | Mutation::GroupDlqSet { .. }
        )
    }
}

impl Stream {
    /// Replays one record. Records produced by this crate's commands, applied in order
    /// to an empty stream, rebuild identical state (nodes included); a record that does
    /// not fit the state (e.g. an unknown group) is ignored.
    pub fn apply(&mut self, m: &Mutation) {
        match m {
            Mutation::EntryAdded {
                id,
                fields,
                new_node,
            } => {
                if *id > self.last_id {
                    self.append(*id, fields, &NodeLimits::default(), Some(*new_node));
                }
            }
            Mutation::EntriesDeleted { ids } => {
                for &id in ids {
                    if let Some(node) = self.node_holding(id) {
                        // A replayed record has nothing to report an unreadable node to;
                        // the entry then stays, as it would had the record been lost.
                        let _ = self.hydrate(node.master);
                    }
                }
                self.delete_ids(ids);
            }
            // After XDEL, deleting the node's last live entry (the record before) already
            // dropped it; after a trim, this drops it.
            Mutation::NodeDropped { master, .. } => self.drop_node(*master),
            Mutation::EntriesTrimmed { ids } => self.trimmed_ids(ids),
            Mutation::NodesTrimmed { nodes } => {
                for (master, ..) in nodes {
                    self.drop_node(*master);
                }
            }
            Mutation::Trimmed { through, .. } => self.trim_through(*through),
            Mutation::StreamMeta {
                last_id,
                entries_added,
                max_deleted_id,
            } => {
                self.last_id = *last_id;
                self.entries_added = *entries_added;
                self.max_deleted_id = *max_deleted_id;
            }
            Mutation::GroupCreated {
                group,
                last_id,
                entries_read,
            }
            | Mutation::GroupUpdated {
                group,
                last_id,
                entries_read,
            } => {
                let g = self.groups.entry(group.clone()).or_default();
                g.last_id = *last_id;
                g.entries_read = *entries_read;
            }
            Mutation::GroupDestroyed { group } => {
                self.groups.remove(group);
            }
            Mutation::ConsumerUpserted {
                group,
                consumer,
                seen_time,
                active_time,
            } => {
                if let Some(g) = self.groups.get_mut(group) {
                    let c = g
                        .consumers
                        .entry(consumer.clone())
                        .or_insert_with(Consumer::default);
                    c.seen_time = *seen_time;
                    c.active_time = *active_time;
                }
            }
            Mutation::ConsumerDeleted { group, consumer } => {
                if let Some(g) = self.groups.get_mut(group)
                    && let Some(c) = g.consumers.remove(consumer)
                {
                    for id in c.pending {
                        g.pel.remove(&id);
                    }
                }
            }
            Mutation::PendingUpserted {
                group,
                id,
                consumer,
                delivery_time,
                delivery_count,
            } => {
                if let Some(g) = self.groups.get_mut(group) {
                    if let Some(prev) = g.pel.get(id)
                        && !g.nacked.remove(*id)
                        && prev.consumer != *consumer
                    {
                        let owner = prev.consumer.clone();
                        if let Some(c) = g.consumers.get_mut(&owner) {
                            c.pending.remove(id);
                        }
                    }
                    g.pel.insert(
                        *id,
                        PendingEntry {
                            consumer: consumer.clone(),
                            delivery_time: *delivery_time,
                            delivery_count: *delivery_count,
                        },
                    );
                    g.consumers
                        .entry(consumer.clone())
                        .or_insert_with(Consumer::default)
                        .pending
                        .insert(*id);
                }
            }
            Mutation::PendingNacked {
                group,
                id,
                delivery_count,
                seq,
            } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.apply_release(*id, *delivery_count, *seq);
                }
            }
            Mutation::PendingRemoved { group, id } => {
                if let Some(g) = self.groups.get_mut(group)
                    && let Some(nack) = g.pel.remove(id)
                    && !g.nacked.remove(*id)
                    && let Some(c) = g.consumers.get_mut(&nack.consumer)
                {
                    c.pending.remove(id);
                }
            }
            Mutation::GroupDlqSet { group, dlq } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.dlq = dlq.clone();
                }
            }
            Mutation::DeadLettered(_) => {}
            Mutation::GroupCounters { group, counters } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.counters = *counters;
                }
            }
            Mutation::IdmpAdded {
                pid,
                iid,
                id,
                added,
                ..
            } => self.idmp.apply_added(pid, iid, *id, *added),
            Mutation::IdmpDuplicates { count } => self.idmp.apply_duplicates(*count),
            Mutation::IdmpConfigSet { duration, maxsize } => {
                self.idmp.set_config(crate::idmp::IdmpConfig {
                    duration: *duration,
                    maxsize: *maxsize,
                });
            }
            Mutation::RetentionSet { max_age, policy } => {
                self.retention = crate::retention::Retention {
                    max_age: *max_age,
                    policy: *policy,
                };
            }
        }
    }
}
