//! Format 6's record bodies, little-endian, which segments written before format 7 hold:
//! read at replay so those segments still replay (records say which layout they use with
//! their `SHARED_ENCODING` flag). Nothing writes them any more but the tests.

use bytes::Bytes;

use brooklet_streams::{Mutation, StreamId};

use super::record::Parser;

impl Parser {
    /// An append's ID and fields, as format 6 wrote them.
    pub(super) fn legacy_append(&mut self) -> Option<(StreamId, Vec<Bytes>)> {
        let id = self.id()?;
        let n = self.u32()? as usize;
        let mut fields = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            fields.push(self.bytes()?);
        }
        Some((id, fields))
    }

    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.u64()?, self.u64()?))
    }

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            _ => Some(Some(self.u64()?)),
        }
    }

    /// Group changes, as format 6 wrote them (see `tests::put_group_change`).
    pub(super) fn legacy_group_changes(&mut self) -> Option<Vec<Mutation>> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let m = match self.u8()? {
                1 => Mutation::GroupCreated {
                    group: self.bytes()?,
                    last_id: self.id()?,
                    entries_read: self.opt_u64()?,
                },
                2 => Mutation::GroupUpdated {
                    group: self.bytes()?,
                    last_id: self.id()?,
                    entries_read: self.opt_u64()?,
                },
                3 => Mutation::GroupDestroyed {
                    group: self.bytes()?,
                },
                4 => Mutation::ConsumerUpserted {
                    group: self.bytes()?,
                    consumer: self.bytes()?,
                    seen_time: self.u64()?,
                    active_time: self.opt_u64()?,
                },
                5 => Mutation::ConsumerDeleted {
                    group: self.bytes()?,
                    consumer: self.bytes()?,
                },
                6 => Mutation::PendingUpserted {
                    group: self.bytes()?,
                    id: self.id()?,
                    consumer: self.bytes()?,
                    delivery_time: self.u64()?,
                    delivery_count: self.u64()?,
                },
                7 => Mutation::PendingRemoved {
                    group: self.bytes()?,
                    id: self.id()?,
                },
                _ => return None,
            };
            out.push(m);
        }
        Some(out)
    }
}

/// Format 6's writers, to check that what they wrote still replays.
#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }

    pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn put_id(out: &mut Vec<u8>, id: StreamId) {
        put_u64(out, id.ms);
        put_u64(out, id.seq);
    }

    pub(crate) fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
        match v {
            Some(v) => {
                out.push(1);
                put_u64(out, v);
            }
            None => out.push(0),
        }
    }

    /// Encodes one group change: a tag (1 group created, 2 updated, 3 destroyed, 4 consumer
    /// upserted, 5 deleted, 6 pending entry upserted, 7 removed), then its fields in order.
    /// Other kinds of change are never logged this way and write nothing.
    pub(crate) fn put_group_change(out: &mut Vec<u8>, m: &Mutation) {
        match m {
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
                out.push(if matches!(m, Mutation::GroupCreated { .. }) {
                    1
                } else {
                    2
                });
                put_bytes(out, group);
                put_id(out, *last_id);
                put_opt_u64(out, *entries_read);
            }
            Mutation::GroupDestroyed { group } => {
                out.push(3);
                put_bytes(out, group);
            }
            Mutation::ConsumerUpserted {
                group,
                consumer,
                seen_time,
                active_time,
            } => {
                out.push(4);
                put_bytes(out, group);
                put_bytes(out, consumer);
                put_u64(out, *seen_time);
                put_opt_u64(out, *active_time);
            }
            Mutation::ConsumerDeleted { group, consumer } => {
                out.push(5);
                put_bytes(out, group);
                put_bytes(out, consumer);
            }
            Mutation::PendingUpserted {
                group,
                id,
                consumer,
                delivery_time,
                delivery_count,
            } => {
                out.push(6);
                put_bytes(out, group);
                put_id(out, *id);
                put_bytes(out, consumer);
                put_u64(out, *delivery_time);
                put_u64(out, *delivery_count);
            }
            Mutation::PendingRemoved { group, id } => {
                out.push(7);
                put_bytes(out, group);
                put_id(out, *id);
            }
            _ => {}
        }
    }

    /// An append's body as format 6 wrote it.
    pub(crate) fn put_append(out: &mut Vec<u8>, id: StreamId, fields: &[Bytes]) {
        put_id(out, id);
        out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        for f in fields {
            put_bytes(out, f);
        }
    }

    /// A group-changes body as format 6 wrote it.
    pub(crate) fn put_group_changes(out: &mut Vec<u8>, changes: &[Mutation]) {
        out.extend_from_slice(&(changes.len() as u32).to_le_bytes());
        for m in changes {
            put_group_change(out, m);
        }
    }
}
