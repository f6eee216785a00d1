//! The tail log's record: its frame (length, checksum) and its payload, an append or a
//! list of group changes.

use bytes::Bytes;

use brooklet_streams::{Mutation, StreamId};

pub(super) const HEADER: usize = 12;

/// One logged append, as replay sees it.
pub struct Append<'a> {
    /// The stream's database.
    pub db: u32,
    /// The stream's key.
    pub key: &'a [u8],
    /// Which life of the key the stream was.
    pub incarnation: u64,
    /// Whether the entry opened a node.
    pub new_node: bool,
    /// Whether the entry created the stream.
    pub creates: bool,
    /// The entry's ID.
    pub id: StreamId,
    /// Fields and values, flattened.
    pub fields: Vec<Bytes>,
}

/// One logged change to a stream's consumer groups alone.
pub struct GroupChanges<'a> {
    /// The stream's database.
    pub db: u32,
    /// The stream's key.
    pub key: &'a [u8],
    /// Which life of the key the stream was.
    pub incarnation: u64,
    /// The changes, in order.
    pub changes: Vec<Mutation>,
}

/// A record, as replay sees it.
pub enum Record<'a> {
    /// An append (perhaps creating its stream).
    Append(Append<'a>),
    /// Changes to consumer groups.
    Groups(GroupChanges<'a>),
}

/// A checksum for torn-write detection (not against tampering): eight bytes at a time.
pub(super) fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }
    for &x in chunks.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 31)
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_u64(out, id.ms);
    put_u64(out, id.seq);
}

pub(super) fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
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
pub(super) fn put_group_change(out: &mut Vec<u8>, m: &Mutation) {
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

/// Reads records from the front of `buf`.
pub(super) struct Parser {
    pub(super) buf: Bytes,
    pub(super) pos: usize,
}

impl Parser {
    pub(super) fn u32(&mut self) -> Option<u32> {
        let v = u32::from_le_bytes(self.buf.get(self.pos..self.pos + 4)?.try_into().ok()?);
        self.pos += 4;
        Some(v)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        let v = u64::from_le_bytes(self.buf.get(self.pos..self.pos + 8)?.try_into().ok()?);
        self.pos += 8;
        Some(v)
    }

    pub(super) fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        let b = self.buf.slice(self.pos..end);
        self.pos = end;
        Some(b)
    }

    /// The next whole, intact record's payload, or None at the end or at a torn record.
    pub(super) fn record(&mut self) -> Option<Parser> {
        let len = self.u32()? as usize;
        let sum = self.u64()?;
        let end = self.pos.checked_add(len)?;
        let payload = self.buf.get(self.pos..end)?;
        if checksum(payload) != sum {
            return None;
        }
        let p = Parser {
            buf: self.buf.slice(self.pos..end),
            pos: 0,
        };
        self.pos = end;
        Some(p)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    /// A record's head: db, key, incarnation and flags.
    pub(super) fn head(&mut self) -> Option<(u32, Bytes, u64, u8)> {
        Some((self.u32()?, self.bytes()?, self.u64()?, self.u8()?))
    }

    /// An append's ID and fields.
    pub(super) fn append(&mut self) -> Option<(StreamId, Vec<Bytes>)> {
        let id = self.id()?;
        let n = self.u32()? as usize;
        let mut fields = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            fields.push(self.bytes()?);
        }
        Some((id, fields))
    }

    pub(super) fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.u64()?, self.u64()?))
    }

    pub(super) fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            _ => Some(Some(self.u64()?)),
        }
    }

    /// Group changes, as `put_group_change` wrote them.
    pub(super) fn group_changes(&mut self) -> Option<Vec<Mutation>> {
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
