//! Consumer-group records whose changes the tail log holds but fjall does not yet.
//!
//! Storage logs a change to consumer groups alone (XREADGROUP, XACK, XCLAIM, ...) as one
//! record, and writes the group, consumer and pending records it touched later, in one batch:
//! as they are in memory by then. The stream keeps the names of those records here; what a
//! record holds is read from the stream's groups when it is written.

use bytes::Bytes;
use hashbrown::HashSet;

use brooklet_streams::{GroupCounters, Mutation, Stream, StreamId};

/// The group records changed since storage last wrote them.
#[derive(Clone, Debug, Default)]
pub(crate) struct DirtyGroups {
    /// Allocated once something is named: every stream carries one, and four empty sets
    /// would cost every stream their size.
    sets: Option<Box<Sets>>,
}

#[derive(Clone, Debug, Default)]
struct Sets {
    /// Groups whose own record changed.
    groups: HashSet<Bytes>,
    /// Groups destroyed: every consumer and pending record stored for them must go (the
    /// group may exist again since; its new records are named below).
    destroyed: HashSet<Bytes>,
    /// Consumers (group, name) whose record changed.
    consumers: HashSet<(Bytes, Bytes)>,
    /// Pending entries (group, ID) whose record changed.
    pending: HashSet<(Bytes, StreamId)>,
}

static EMPTY: std::sync::LazyLock<Sets> = std::sync::LazyLock::new(Sets::default);

impl DirtyGroups {
    /// Whether no record is named.
    pub fn is_empty(&self) -> bool {
        let s = self.sets();
        s.groups.is_empty()
            && s.destroyed.is_empty()
            && s.consumers.is_empty()
            && s.pending.is_empty()
    }

    fn sets(&self) -> &Sets {
        self.sets.as_deref().unwrap_or(&EMPTY)
    }

    fn sets_mut(&mut self) -> &mut Sets {
        self.sets.get_or_insert_with(Box::default)
    }

    /// Names the records `m` changes (other kinds of change name none).
    pub fn note(&mut self, m: &Mutation) {
        if !m.is_group_change() {
            return;
        }
        let s = self.sets_mut();
        match m {
            Mutation::GroupCreated { group, .. }
            | Mutation::GroupUpdated { group, .. }
            | Mutation::GroupCounters { group, .. }
            | Mutation::GroupDlqSet { group, .. } => {
                s.groups.insert(group.clone());
            }
            Mutation::GroupDestroyed { group } => {
                s.groups.insert(group.clone());
                s.destroyed.insert(group.clone());
            }
            Mutation::ConsumerUpserted {
                group, consumer, ..
            }
            | Mutation::ConsumerDeleted { group, consumer } => {
                s.consumers.insert((group.clone(), consumer.clone()));
            }
            Mutation::PendingUpserted { group, id, .. }
            | Mutation::PendingNacked { group, id, .. }
            | Mutation::PendingRemoved { group, id } => {
                s.pending.insert((group.clone(), *id));
            }
            _ => {}
        }
    }

    /// Stops naming pending entry `id` of `group` (its record was never written).
    pub fn forget_pending(&mut self, group: &Bytes, id: StreamId) {
        if let Some(s) = self.sets.as_mut() {
            s.pending.remove(&(group.clone(), id));
        }
    }

    /// Adds the records `other` names.
    pub fn merge(&mut self, other: DirtyGroups) {
        let Some(other) = other.sets else {
            return;
        };
        let s = self.sets_mut();
        s.groups.extend(other.groups);
        s.destroyed.extend(other.destroyed);
        s.consumers.extend(other.consumers);
        s.pending.extend(other.pending);
    }

    /// Records named, counted.
    pub fn len(&self) -> usize {
        let s = self.sets();
        s.groups.len() + s.destroyed.len() + s.consumers.len() + s.pending.len()
    }

    /// The named records as `stream` holds them now, as the changes that would write each
    /// one: destroyed groups first (`GroupDestroyed`: storage drops everything of theirs),
    /// then each record as an upsert where it exists and a removal where it does not (a
    /// group's `GroupUpdated` followed by what the rest of its record holds).
    pub fn current(&self, stream: &Stream) -> Vec<Mutation> {
        let mut out = Vec::with_capacity(self.len());
        let s = self.sets();
        for group in &s.destroyed {
            out.push(Mutation::GroupDestroyed {
                group: group.clone(),
            });
        }
        for group in &s.groups {
            match stream.group(group) {
                Some(g) => {
                    out.push(Mutation::GroupUpdated {
                        group: group.clone(),
                        last_id: g.last_id(),
                        entries_read: g.entries_read(),
                    });
                    // The record's later sections: storage appends them to the one above.
                    if g.counters() != GroupCounters::default() {
                        out.push(Mutation::GroupCounters {
                            group: group.clone(),
                            counters: g.counters(),
                        });
                    }
                    if let Some(d) = g.dead_letter() {
                        out.push(Mutation::GroupDlqSet {
                            group: group.clone(),
                            dlq: Some(d.clone()),
                        });
                    }
                }
                None if !s.destroyed.contains(group) => out.push(Mutation::GroupDestroyed {
                    group: group.clone(),
                }),
                None => {}
            }
        }
        for (group, consumer) in &s.consumers {
            let found = stream
                .group(group)
                .and_then(|g| g.consumers().get(consumer));
            out.push(match found {
                Some(c) => Mutation::ConsumerUpserted {
                    group: group.clone(),
                    consumer: consumer.clone(),
                    seen_time: c.seen_time(),
                    active_time: c.active_time(),
                },
                None => Mutation::ConsumerDeleted {
                    group: group.clone(),
                    consumer: consumer.clone(),
                },
            });
        }
        for (group, id) in &s.pending {
            let g = stream.group(group);
            let found = g.and_then(|g| g.pending().get(id));
            let nacked = g.and_then(|g| g.nack_seq(id));
            out.push(match (found, nacked) {
                (Some(p), Some(seq)) => Mutation::PendingNacked {
                    group: group.clone(),
                    id: *id,
                    delivery_count: p.delivery_count,
                    seq,
                },
                (Some(p), None) => Mutation::PendingUpserted {
                    group: group.clone(),
                    id: *id,
                    consumer: p.consumer.clone(),
                    delivery_time: p.delivery_time,
                    delivery_count: p.delivery_count,
                },
                (None, _) => Mutation::PendingRemoved {
                    group: group.clone(),
                    id: *id,
                },
            });
        }
        out
    }
}
