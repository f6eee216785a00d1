//! One encoding per record kind, shared by fjall's keyspaces and the tail log: a group,
//! consumer, pending-entry, entry, node or stream record is written by one function here
//! and read by one, whichever of the two holds it. Integers are big-endian (byte order is
//! numeric order), byte strings a u32 length and the bytes, optional numbers a presence
//! byte and the number.

use brooklet_streams::{
    DeadLetterConfig, GroupCounters, Idmp, Mutation, NodeMeta, RefPolicy, Retention, Stream,
    StreamId, StreamMeta,
};
use bytes::Bytes;

use crate::error::StoreError;

mod idmp;

use idmp::{IDMP_DUPLICATES, read_idmp};
pub use idmp::{encode_idmp, put_append_idmp, read_append_idmp};

/// Appends a u32.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a u64.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends an optional u64 (a presence byte, then the value).
pub fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_u64(out, v);
        }
        None => out.push(0),
    }
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Room for the few bytes a record writes after a value: without it a value that grows
    // the buffer to its exact size has the buffer doubled by the next byte.
    out.reserve(4 + b.len() + 32);
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

/// Appends an unsigned LEB128 varint (seven bits a byte, low first).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a byte string prefixed by its length as a varint.
pub fn put_short_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends an ID (ms, then seq).
pub fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_u64(out, id.ms);
    put_u64(out, id.seq);
}

/// Reads values written by the `put_` functions.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over a record of the named class (for error messages).
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(StoreError::Corrupt(format!(
                "truncated {} record",
                self.what
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a u32.
    pub fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(
            b.try_into()
                .map_err(|_| StoreError::Corrupt(self.what.into()))?,
        ))
    }

    /// Reads a u64.
    pub fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(
            b.try_into()
                .map_err(|_| StoreError::Corrupt(self.what.into()))?,
        ))
    }

    /// Reads an optional u64.
    pub fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(if self.u8()? == 1 {
            Some(self.u64()?)
        } else {
            None
        })
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a length-prefixed byte string, in place.
    pub fn slice(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// Reads a varint written by [`put_varint`].
    pub fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(StoreError::Corrupt(format!(
            "{} record's varint",
            self.what
        )))
    }

    /// Reads a byte string written by [`put_short_bytes`], in place.
    pub fn short_slice(&mut self) -> Result<&'a [u8], StoreError> {
        let len =
            usize::try_from(self.varint()?).map_err(|_| StoreError::Corrupt(self.what.into()))?;
        self.take(len)
    }

    /// Reads an ID.
    pub fn id(&mut self) -> Result<StreamId, StoreError> {
        Ok(StreamId::new(self.u64()?, self.u64()?))
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Flag bit: the entry opened a node.
pub const NEW_NODE: u8 = 1;
/// Flag bit: the entry was deleted (XDEL) but its node still holds its slot, as Redis's does.
pub const DELETED: u8 = 2;

/// Flags an encoded entry value deleted (a tombstone), in place.
pub fn mark_deleted(value: &mut [u8]) {
    if let Some(flags) = value.first_mut() {
        *flags |= DELETED;
    }
}

/// Appends an entry record: the flags byte, then the field/value count and each string.
pub fn put_entry<'a>(out: &mut Vec<u8>, fields: impl Iterator<Item = &'a [u8]>, new_node: bool) {
    out.push(if new_node { NEW_NODE } else { 0 });
    let count_at = out.len();
    put_u32(out, 0);
    let mut count: u32 = 0;
    for f in fields {
        put_bytes(out, f);
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
}

/// An entry record (see [`put_entry`]).
pub fn encode_entry(fields: &[Bytes], new_node: bool) -> Vec<u8> {
    let size: usize = fields.iter().map(|f| f.len() + 4).sum();
    let mut out = Vec::with_capacity(size + 5);
    put_entry(&mut out, fields.iter().map(|f| &f[..]), new_node);
    out
}

/// [`encode_entry`] from the fields as slices (a node's own bytes, at a checkpoint).
pub fn encode_entry_slices<'a>(fields: impl Iterator<Item = &'a [u8]>, new_node: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_entry(&mut out, fields, new_node);
    out
}

/// Reads an entry record's flags and fields, each handed to `keep` to own.
pub fn read_entry(
    r: &mut Reader<'_>,
    keep: impl Fn(&[u8]) -> Bytes,
) -> Result<(Vec<Bytes>, u8), StoreError> {
    let flags = r.u8()?;
    let n = r.u32()? as usize;
    let mut fields = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        fields.push(keep(r.slice()?));
    }
    Ok((fields, flags))
}

/// Decodes an entry record into (fields, flags).
pub fn decode_entry(value: &[u8]) -> Result<(Vec<Bytes>, u8), StoreError> {
    read_entry(&mut Reader::new(value, "entry"), Bytes::copy_from_slice)
}

/// A node record: last ID, live and deleted counts, first and last live IDs.
pub fn encode_node(n: &NodeMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_id(&mut out, n.last);
    put_u64(&mut out, n.live);
    put_u64(&mut out, n.deleted);
    put_id(&mut out, n.first_live);
    put_id(&mut out, n.last_live);
    out
}

/// Reads a node record written by [`encode_node`] for the node starting at `master`.
pub fn decode_node(master: StreamId, value: &[u8]) -> Result<NodeMeta, StoreError> {
    let mut r = Reader::new(value, "node");
    Ok(NodeMeta {
        master,
        last: r.id()?,
        live: r.u64()?,
        deleted: r.u64()?,
        first_live: r.id()?,
        last_live: r.id()?,
    })
}

/// A stream record: last ID, entries-added, max-deleted ID and incarnation, then the
/// IDMP section `idmp` ([`encode_idmp`]; records written before format 9 end without one).
pub fn encode_stream(meta: &StreamMeta, incarnation: u64, idmp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + idmp.len());
    put_id(&mut out, meta.last_id);
    put_u64(&mut out, meta.entries_added);
    put_id(&mut out, meta.max_deleted_id);
    put_u64(&mut out, incarnation);
    out.extend_from_slice(idmp);
    out
}

/// What a stream record holds past its metadata and incarnation.
pub type StreamSections = (Option<Idmp>, Retention);

/// Reads a stream record written by [`encode_stream`]: its metadata, incarnation, IDMP
/// state (None in a record from before format 9) and retention (off when absent).
pub fn decode_stream(value: &[u8]) -> Result<(StreamMeta, u64, StreamSections), StoreError> {
    let mut r = Reader::new(value, "stream");
    let meta = StreamMeta {
        last_id: r.id()?,
        entries_added: r.u64()?,
        max_deleted_id: r.id()?,
    };
    let incarnation = r.u64()?;
    let idmp = if r.buf.is_empty() {
        None
    } else {
        Some(read_idmp(&mut r)?)
    };
    let mut retention = Retention::default();
    if !r.buf.is_empty() {
        if r.u8()? != RETENTION_SECTION {
            return Err(StoreError::Corrupt(
                "stream record's retention section".into(),
            ));
        }
        retention.max_age = r.u64()?;
        retention.policy = policy_of(r.u8()?)?;
    }
    Ok((meta, incarnation, (idmp, retention)))
}

/// Tag of a stream record's retention section (format 9, after the IDMP section; only
/// when retention is on).
const RETENTION_SECTION: u8 = 0x70;

/// The sections a stream record ends with, as `stream` has them now: the IDMP section
/// ([`encode_idmp`]), then, when retention is on, tag 0x70, MAXAGE (u64) and its policy
/// (u8: 0 KEEPREF, 1 DELREF, 2 ACKED).
pub fn encode_stream_sections(stream: &Stream) -> Vec<u8> {
    let mut out = encode_idmp(stream.idmp());
    let retention = stream.retention();
    if retention.is_on() {
        out.push(RETENTION_SECTION);
        put_u64(&mut out, retention.max_age);
        out.push(match retention.policy {
            RefPolicy::KeepRef => 0,
            RefPolicy::DelRef => 1,
            RefPolicy::Acked => 2,
        });
    }
    out
}

/// The policy a retention section's byte names.
fn policy_of(b: u8) -> Result<RefPolicy, StoreError> {
    match b {
        0 => Ok(RefPolicy::KeepRef),
        1 => Ok(RefPolicy::DelRef),
        2 => Ok(RefPolicy::Acked),
        _ => Err(StoreError::Corrupt(
            "stream record's retention policy".into(),
        )),
    }
}

/// Appends a group record: last-delivered ID, entries-read.
pub fn put_group(out: &mut Vec<u8>, last_id: StreamId, entries_read: Option<u64>) {
    put_id(out, last_id);
    put_opt_u64(out, entries_read);
}

/// Reads a group record (see [`put_group`]).
pub fn read_group(r: &mut Reader<'_>) -> Result<(StreamId, Option<u64>), StoreError> {
    Ok((r.id()?, r.opt_u64()?))
}

/// Tag of a group record's counters section (format 9), after its entries-read.
const GROUP_COUNTERS: u8 = 0x60;
/// Group-change tag of a group's counters.
const COUNTERS_CHANGE: u8 = 16;
/// Tag of a group record's dead-letter section (format 9).
const GROUP_DLQ: u8 = 0x61;
/// Group-change tag of a group's dead-letter settings.
const DLQ_CHANGE: u8 = 17;

/// Appends dead-letter settings: a presence byte, then the key and MAXDELIVERIES.
fn put_dlq(out: &mut Vec<u8>, dlq: Option<&DeadLetterConfig>) {
    match dlq {
        Some(d) => {
            out.push(1);
            put_bytes(out, &d.key);
            put_u64(out, d.max_deliveries);
        }
        None => out.push(0),
    }
}

fn read_dlq(
    r: &mut Reader<'_>,
    keep: impl Fn(&[u8]) -> Bytes,
) -> Result<Option<DeadLetterConfig>, StoreError> {
    Ok(if r.u8()? == 1 {
        Some(DeadLetterConfig {
            key: keep(r.slice()?),
            max_deliveries: r.u64()?,
        })
    } else {
        None
    })
}

/// Appends a group's counters: delivered, acked, nacked, dead-lettered (u64 each).
fn put_counters(out: &mut Vec<u8>, c: &GroupCounters) {
    put_u64(out, c.delivered);
    put_u64(out, c.acked);
    put_u64(out, c.nacked);
    put_u64(out, c.dead_lettered);
}

fn read_counters(r: &mut Reader<'_>) -> Result<GroupCounters, StoreError> {
    Ok(GroupCounters {
        delivered: r.u64()?,
        acked: r.u64()?,
        nacked: r.u64()?,
        dead_lettered: r.u64()?,
    })
}

/// Appends the sections a fjall group record carries after [`put_group`]'s fields (format
/// 9): the counters, tagged [`GROUP_COUNTERS`], when any is above 0, and the dead-letter
/// settings, tagged [`GROUP_DLQ`], when the group has them. Records without them read as
/// zeros and no dead-letter stream.
pub fn put_group_sections(
    out: &mut Vec<u8>,
    counters: &GroupCounters,
    dlq: Option<&DeadLetterConfig>,
) {
    if *counters != GroupCounters::default() {
        out.push(GROUP_COUNTERS);
        put_counters(out, counters);
    }
    if dlq.is_some() {
        out.push(GROUP_DLQ);
        put_dlq(out, dlq);
    }
}

/// Reads what [`put_group_sections`] wrote, up to the end of the record, as the changes
/// that set it for `group`.
pub fn read_group_sections(r: &mut Reader<'_>, group: &Bytes) -> Result<Vec<Mutation>, StoreError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        match r.u8()? {
            GROUP_COUNTERS => out.push(Mutation::GroupCounters {
                group: group.clone(),
                counters: read_counters(r)?,
            }),
            GROUP_DLQ => out.push(Mutation::GroupDlqSet {
                group: group.clone(),
                dlq: read_dlq(r, Bytes::copy_from_slice)?,
            }),
            _ => return Err(StoreError::Corrupt("group record's section".into())),
        }
    }
    Ok(out)
}

/// Appends a consumer record: seen-time, active-time.
pub fn put_consumer(out: &mut Vec<u8>, seen_time: u64, active_time: Option<u64>) {
    put_u64(out, seen_time);
    put_opt_u64(out, active_time);
}

/// Reads a consumer record (see [`put_consumer`]).
pub fn read_consumer(r: &mut Reader<'_>) -> Result<(u64, Option<u64>), StoreError> {
    Ok((r.u64()?, r.opt_u64()?))
}

/// Appends a pending-entry record: consumer, delivery time, delivery count.
pub fn put_pending(out: &mut Vec<u8>, consumer: &[u8], delivery_time: u64, delivery_count: u64) {
    put_bytes(out, consumer);
    put_u64(out, delivery_time);
    put_u64(out, delivery_count);
}

/// Reads a pending-entry record (see [`put_pending`]), the consumer in place.
pub fn read_pending<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], u64, u64), StoreError> {
    Ok((r.slice()?, r.u64()?, r.u64()?))
}

/// Marks a pending-entry record as an entry XNACK released; its release position follows.
pub const NACKED: u8 = 0x20;

/// Appends the record of a pending entry XNACK released: a pending-entry record with no
/// consumer and delivery time 0, then [`NACKED`] and its release position. Records written
/// before XNACK end after the delivery count, so they read as owned entries.
pub fn put_nacked_pending(out: &mut Vec<u8>, delivery_count: u64, seq: u64) {
    put_pending(out, b"", 0, delivery_count);
    out.push(NACKED);
    put_u64(out, seq);
}

/// What a pending-entry record sets, as the change that writes it: `PendingNacked` for a
/// released entry, `PendingUpserted` otherwise.
pub fn read_pending_change(
    r: &mut Reader<'_>,
    group: Bytes,
    id: StreamId,
    keep: impl Fn(&[u8]) -> Bytes,
) -> Result<Mutation, StoreError> {
    let (consumer, delivery_time, delivery_count) = read_pending(r)?;
    if r.is_empty() {
        return Ok(Mutation::PendingUpserted {
            group,
            id,
            consumer: keep(consumer),
            delivery_time,
            delivery_count,
        });
    }
    if r.u8()? != NACKED {
        return Err(StoreError::Corrupt("unknown pending record".into()));
    }
    Ok(Mutation::PendingNacked {
        group,
        id,
        delivery_count,
        seq: r.u64()?,
    })
}

/// The value `m` writes into fjall for the group, consumer or pending record it sets
/// (None for a removal or another kind of change).
pub fn group_record_value(m: &Mutation) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match m {
        Mutation::GroupCreated {
            last_id,
            entries_read,
            ..
        }
        | Mutation::GroupUpdated {
            last_id,
            entries_read,
            ..
        } => put_group(&mut out, *last_id, *entries_read),
        Mutation::ConsumerUpserted {
            seen_time,
            active_time,
            ..
        } => put_consumer(&mut out, *seen_time, *active_time),
        Mutation::PendingUpserted {
            consumer,
            delivery_time,
            delivery_count,
            ..
        } => put_pending(&mut out, consumer, *delivery_time, *delivery_count),
        Mutation::PendingNacked {
            delivery_count,
            seq,
            ..
        } => put_nacked_pending(&mut out, *delivery_count, *seq),
        _ => return None,
    }
    Some(out)
}

/// Appends one group change as the tail log holds it: a tag (1 group created, 2 updated,
/// 3 destroyed, 4 consumer upserted, 5 deleted, 6 pending entry upserted, 7 removed,
/// 8 pending entry released by XNACK; 10, the IDMP duplicates counter, is followed by the
/// count alone; 16, a group's counters, by the group and the four counters; 17, a group's
/// dead-letter settings, by the group, a presence byte, the key and MAXDELIVERIES), the names and ID its fjall key holds (group, then consumer or pending ID),
/// then the record it sets, as fjall holds it. Other kinds of change write nothing.
pub fn put_group_change(out: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::IdmpDuplicates { count } => {
            out.push(IDMP_DUPLICATES);
            put_u64(out, *count);
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
            out.push(if matches!(m, Mutation::GroupCreated { .. }) {
                1
            } else {
                2
            });
            put_bytes(out, group);
            put_group(out, *last_id, *entries_read);
        }
        Mutation::GroupDestroyed { group } => {
            out.push(3);
            put_bytes(out, group);
        }
        Mutation::GroupCounters { group, counters } => {
            out.push(COUNTERS_CHANGE);
            put_bytes(out, group);
            put_counters(out, counters);
        }
        Mutation::GroupDlqSet { group, dlq } => {
            out.push(DLQ_CHANGE);
            put_bytes(out, group);
            put_dlq(out, dlq.as_ref());
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
            put_consumer(out, *seen_time, *active_time);
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
            put_pending(out, consumer, *delivery_time, *delivery_count);
        }
        Mutation::PendingRemoved { group, id } => {
            out.push(7);
            put_bytes(out, group);
            put_id(out, *id);
        }
        Mutation::PendingNacked {
            group,
            id,
            delivery_count,
            seq,
        } => {
            out.push(8);
            put_bytes(out, group);
            put_id(out, *id);
            put_nacked_pending(out, *delivery_count, *seq);
        }
        _ => {}
    }
}

/// Reads a group change written by [`put_group_change`], each name handed to `keep` to own.
pub fn read_group_change(
    r: &mut Reader<'_>,
    keep: impl Fn(&[u8]) -> Bytes,
) -> Result<Mutation, StoreError> {
    let tag = r.u8()?;
    if tag == IDMP_DUPLICATES {
        return Ok(Mutation::IdmpDuplicates { count: r.u64()? });
    }
    let group = keep(r.slice()?);
    Ok(match tag {
        1 | 2 => {
            let (last_id, entries_read) = read_group(r)?;
            if tag == 1 {
                Mutation::GroupCreated {
                    group,
                    last_id,
                    entries_read,
                }
            } else {
                Mutation::GroupUpdated {
                    group,
                    last_id,
                    entries_read,
                }
            }
        }
        3 => Mutation::GroupDestroyed { group },
        COUNTERS_CHANGE => Mutation::GroupCounters {
            group,
            counters: read_counters(r)?,
        },
        DLQ_CHANGE => Mutation::GroupDlqSet {
            group,
            dlq: read_dlq(r, keep)?,
        },
        4 => {
            let consumer = keep(r.slice()?);
            let (seen_time, active_time) = read_consumer(r)?;
            Mutation::ConsumerUpserted {
                group,
                consumer,
                seen_time,
                active_time,
            }
        }
        5 => Mutation::ConsumerDeleted {
            group,
            consumer: keep(r.slice()?),
        },
        6 => {
            let id = r.id()?;
            let (consumer, delivery_time, delivery_count) = read_pending(r)?;
            Mutation::PendingUpserted {
                group,
                id,
                consumer: keep(consumer),
                delivery_time,
                delivery_count,
            }
        }
        7 => Mutation::PendingRemoved { group, id: r.id()? },
        8 => {
            let id = r.id()?;
            let (_, _, delivery_count) = read_pending(r)?;
            if r.u8()? != NACKED {
                return Err(StoreError::Corrupt("unknown pending release".into()));
            }
            Mutation::PendingNacked {
                group,
                id,
                delivery_count,
                seq: r.u64()?,
            }
        }
        _ => return Err(StoreError::Corrupt("unknown group change".into())),
    })
}

#[cfg(test)]
mod tests;

pub mod repl;
