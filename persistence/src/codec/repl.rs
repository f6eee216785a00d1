//! The replication encoding of a stream's changes: the `Mutation` records one command made,
//! in order, as a primary sends them to its replicas (wrapped in a RESP command) and as a
//! full sync's snapshot rebuilds each stream. Each change is a tag in 0xA0..=0xAF and its
//! fields; group changes reuse the tail log's group-change encoding after tag 0xA0.

use brooklet_streams::{Iid, Mutation, RefPolicy, StreamId};
use bytes::Bytes;

use super::{Reader, put_bytes, put_group_change, put_id, put_u32, put_u64, read_group_change};
use crate::error::StoreError;

const GROUP_CHANGE: u8 = 0xA0;
const ENTRY_ADDED: u8 = 0xA1;
const ENTRIES_DELETED: u8 = 0xA2;
const NODE_DROPPED: u8 = 0xA3;
const TRIMMED: u8 = 0xA4;
const ENTRIES_TRIMMED: u8 = 0xA5;
const NODES_TRIMMED: u8 = 0xA6;
const STREAM_META: u8 = 0xA7;
const IDMP_ADDED: u8 = 0xA8;
const IDMP_CONFIG: u8 = 0xA9;
const RETENTION: u8 = 0xAA;

fn put_ids(out: &mut Vec<u8>, ids: &[StreamId]) {
    put_u32(out, ids.len() as u32);
    for id in ids {
        put_id(out, *id);
    }
}

fn read_ids(r: &mut Reader<'_>) -> Result<Vec<StreamId>, StoreError> {
    let n = r.u32()? as usize;
    let mut ids = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        ids.push(r.id()?);
    }
    Ok(ids)
}

fn policy_byte(p: RefPolicy) -> u8 {
    match p {
        RefPolicy::KeepRef => 0,
        RefPolicy::DelRef => 1,
        RefPolicy::Acked => 2,
    }
}

/// Appends the replication encoding of `muts` to `out`. `DeadLettered` is left out: it
/// changes nothing when applied (the dead-letter stream's own append is sent with it).
pub fn encode_mutations(out: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        encode_one(out, m);
    }
}

fn encode_one(out: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::EntryAdded {
            id,
            fields,
            new_node,
        } => {
            out.push(ENTRY_ADDED);
            put_id(out, *id);
            out.push(u8::from(*new_node));
            put_u32(out, fields.len() as u32);
            for f in fields {
                put_bytes(out, f);
            }
        }
        Mutation::EntriesDeleted { ids } => {
            out.push(ENTRIES_DELETED);
            put_ids(out, ids);
        }
        Mutation::NodeDropped { master, last } => {
            out.push(NODE_DROPPED);
            put_id(out, *master);
            put_id(out, *last);
        }
        Mutation::Trimmed { through, dropped } => {
            out.push(TRIMMED);
            put_id(out, *through);
            put_u64(out, *dropped);
        }
        Mutation::EntriesTrimmed { ids } => {
            out.push(ENTRIES_TRIMMED);
            put_ids(out, ids);
        }
        Mutation::NodesTrimmed { nodes } => {
            out.push(NODES_TRIMMED);
            put_u32(out, nodes.len() as u32);
            for (first, last, slots) in nodes {
                put_id(out, *first);
                put_id(out, *last);
                put_u64(out, *slots);
            }
        }
        Mutation::StreamMeta {
            last_id,
            entries_added,
            max_deleted_id,
        } => {
            out.push(STREAM_META);
            put_id(out, *last_id);
            put_u64(out, *entries_added);
            put_id(out, *max_deleted_id);
        }
        // The iid always goes on the wire, IDMPAUTO's too (`auto` is for the tail log).
        Mutation::IdmpAdded {
            pid,
            iid,
            id,
            added,
            ..
        } => {
            out.push(IDMP_ADDED);
            put_bytes(out, pid);
            put_bytes(out, iid);
            put_id(out, *id);
            put_u64(out, *added);
        }
        Mutation::IdmpConfigSet { duration, maxsize } => {
            out.push(IDMP_CONFIG);
            put_u32(out, *duration);
            put_u32(out, *maxsize);
        }
        Mutation::RetentionSet { max_age, policy } => {
            out.push(RETENTION);
            put_u64(out, *max_age);
            out.push(policy_byte(*policy));
        }
        Mutation::DeadLettered(_) => {}
        group => {
            out.push(GROUP_CHANGE);
            put_group_change(out, group);
        }
    }
}

/// Reads back what [`encode_mutations`] wrote.
pub fn decode_mutations(buf: &[u8]) -> Result<Vec<Mutation>, StoreError> {
    let mut r = Reader::new(buf, "replicated change");
    let keep = Bytes::copy_from_slice;
    let mut out = Vec::new();
    while !r.is_empty() {
        let m = match r.u8()? {
            GROUP_CHANGE => read_group_change(&mut r, keep)?,
            ENTRY_ADDED => {
                let id = r.id()?;
                let new_node = r.u8()? == 1;
                let n = r.u32()? as usize;
                let mut fields = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    fields.push(keep(r.slice()?));
                }
                Mutation::EntryAdded {
                    id,
                    fields,
                    new_node,
                }
            }
            ENTRIES_DELETED => Mutation::EntriesDeleted {
                ids: read_ids(&mut r)?,
            },
            NODE_DROPPED => Mutation::NodeDropped {
                master: r.id()?,
                last: r.id()?,
            },
            TRIMMED => Mutation::Trimmed {
                through: r.id()?,
                dropped: r.u64()?,
            },
            ENTRIES_TRIMMED => Mutation::EntriesTrimmed {
                ids: read_ids(&mut r)?,
            },
            NODES_TRIMMED => {
                let n = r.u32()? as usize;
                let mut nodes = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    nodes.push((r.id()?, r.id()?, r.u64()?));
                }
                Mutation::NodesTrimmed { nodes }
            }
            STREAM_META => Mutation::StreamMeta {
                last_id: r.id()?,
                entries_added: r.u64()?,
                max_deleted_id: r.id()?,
            },
            IDMP_ADDED => Mutation::IdmpAdded {
                pid: Iid::new(r.slice()?),
                iid: Iid::new(r.slice()?),
                id: r.id()?,
                added: r.u64()?,
                auto: false,
            },
            IDMP_CONFIG => Mutation::IdmpConfigSet {
                duration: r.u32()?,
                maxsize: r.u32()?,
            },
            RETENTION => Mutation::RetentionSet {
                max_age: r.u64()?,
                policy: super::policy_of(r.u8()?)?,
            },
            tag => {
                return Err(StoreError::Corrupt(format!(
                    "replicated change with unknown tag {tag:#x}"
                )));
            }
        };
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use brooklet_streams::{DeadLetterConfig, GroupCounters};

    #[test]
    fn every_replicated_change_round_trips_and_truncation_is_detected() {
        let g = Bytes::from("g");
        let id = StreamId::new(5, 1);
        let muts = vec![
            Mutation::EntryAdded {
                id,
                fields: vec![Bytes::from("f"), Bytes::from("v\r\n")],
                new_node: true,
            },
            Mutation::EntriesDeleted { ids: vec![id] },
            Mutation::NodeDropped {
                master: id,
                last: StreamId::new(6, 0),
            },
            Mutation::Trimmed {
                through: id,
                dropped: 3,
            },
            Mutation::EntriesTrimmed { ids: vec![id] },
            Mutation::NodesTrimmed {
                nodes: vec![(id, id, 2)],
            },
            Mutation::StreamMeta {
                last_id: id,
                entries_added: 9,
                max_deleted_id: id,
            },
            Mutation::GroupCreated {
                group: g.clone(),
                last_id: id,
                entries_read: Some(1),
            },
            Mutation::ConsumerUpserted {
                group: g.clone(),
                consumer: Bytes::from("c"),
                seen_time: 7,
                active_time: Some(8),
            },
            Mutation::PendingUpserted {
                group: g.clone(),
                id,
                consumer: Bytes::from("c"),
                delivery_time: 11,
                delivery_count: 2,
            },
            Mutation::PendingNacked {
                group: g.clone(),
                id,
                delivery_count: 2,
                seq: 4,
            },
            Mutation::GroupCounters {
                group: g.clone(),
                counters: GroupCounters {
                    delivered: 1,
                    acked: 2,
                    nacked: 3,
                    dead_lettered: 4,
                },
            },
            Mutation::GroupDlqSet {
                group: g.clone(),
                dlq: Some(DeadLetterConfig {
                    key: Bytes::from("dlq"),
                    max_deliveries: 3,
                }),
            },
            Mutation::IdmpAdded {
                pid: Iid::new(b"p"),
                iid: Iid::new(b"i"),
                id,
                added: 1,
                auto: false,
            },
            Mutation::IdmpDuplicates { count: 2 },
            Mutation::IdmpConfigSet {
                duration: 10,
                maxsize: 20,
            },
            Mutation::RetentionSet {
                max_age: 1000,
                policy: RefPolicy::Acked,
            },
            Mutation::PendingRemoved {
                group: g.clone(),
                id,
            },
            Mutation::ConsumerDeleted {
                group: g.clone(),
                consumer: Bytes::from("c"),
            },
            Mutation::GroupDestroyed { group: g },
        ];
        let mut enc = Vec::new();
        encode_mutations(&mut enc, &muts);
        assert_eq!(decode_mutations(&enc).unwrap(), muts);
        assert!(decode_mutations(&enc[..enc.len() - 1]).is_err());
        assert!(decode_mutations(&[0xAF]).is_err());
    }
}
