//! A stream value in RDB (types 15, 19 and 21: Redis 5 to 7.4) read into the [`Mutation`]
//! records that build the same stream from nothing: its entries node by node (each node
//! as Redis held it, tombstones included), its metadata, then each group with its
//! consumers and pending entries. Every count, ID order and cross-reference is checked, so
//! a damaged payload is refused before anything is built from it.

use std::collections::BTreeMap;

use bytes::Bytes;

use brooklet_streams::{Mutation, Stream, StreamId};

use super::RdbError;
use super::listpack::Elems;
use super::reader::{Reader, id_from_key};

/// Entry flags inside a node's listpack.
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// Which of Redis's stream encodings a value is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// RDB_TYPE_STREAM_LISTPACKS (Redis 5 and 6): no first ID, max-deleted ID,
    /// entries-added nor entries-read.
    V1,
    /// RDB_TYPE_STREAM_LISTPACKS_2 (Redis 7.0): those added.
    V2,
    /// RDB_TYPE_STREAM_LISTPACKS_3 (Redis 7.2 on): consumers' active time added.
    V3,
}

/// A stream read from RDB: the records that build it, in order.
#[derive(Debug)]
pub(crate) struct DecodedStream {
    /// Entries, deletions, metadata, groups, consumers, pending entries.
    pub(crate) muts: Vec<Mutation>,
    /// Groups whose entries-read Redis estimates when it loads them (type 15 stores none).
    estimate_entries_read: bool,
}

fn corrupt(what: &'static str) -> RdbError {
    RdbError::corrupt(what)
}

/// Reads one stream value of kind `kind` from `r`.
pub(crate) fn decode(r: &mut Reader<'_>, kind: StreamKind) -> Result<DecodedStream, RdbError> {
    let nodes = r.count()?;
    let mut muts = Vec::new();
    let mut nodes_out = Nodes::default();
    for _ in 0..nodes {
        let key = r.string()?;
        let master = id_from_key(&key)?;
        let lp = r.string()?;
        nodes_out.read(master, &lp, &mut muts)?;
    }
    let length = r.len()?;
    let last_id = StreamId::new(r.len()?, r.len()?);
    let (max_deleted_id, entries_added) = match kind {
        StreamKind::V1 => (StreamId::MIN, length),
        StreamKind::V2 | StreamKind::V3 => {
            // The first ID Brooklet derives from the entries, as Redis keeps it.
            let _first = (r.len()?, r.len()?);
            let max_deleted = StreamId::new(r.len()?, r.len()?);
            (max_deleted, r.len()?)
        }
    };
    if length != nodes_out.live {
        return Err(corrupt("stream length does not match its entries"));
    }
    // Fewer entries ever added than are there: lag and entries-read arithmetic would go
    // below zero.
    if entries_added < length {
        return Err(corrupt("stream entries-added is smaller than its length"));
    }
    if nodes_out.last.is_some_and(|l| l > last_id) {
        return Err(corrupt("stream last ID is smaller than an entry's"));
    }
    if !nodes_out.tombstones.is_empty() {
        muts.push(Mutation::EntriesDeleted {
            ids: std::mem::take(&mut nodes_out.tombstones),
        });
    }
    muts.push(Mutation::StreamMeta {
        last_id,
        entries_added,
        max_deleted_id,
    });
    let groups = r.count()?;
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..groups {
        let name = r.string()?;
        if !names.insert(name.clone()) {
            return Err(corrupt("duplicated consumer group name"));
        }
        read_group(r, kind, name, &mut muts)?;
    }
    Ok(DecodedStream {
        muts,
        estimate_entries_read: kind == StreamKind::V1,
    })
}

/// What the nodes read so far hold.
#[derive(Default)]
struct Nodes {
    last: Option<StreamId>,
    live: u64,
    tombstones: Vec<StreamId>,
}

impl Nodes {
    /// Reads one node's listpack (master entry, then entries) into `muts`.
    fn read(
        &mut self,
        master: StreamId,
        lp: &[u8],
        muts: &mut Vec<Mutation>,
    ) -> Result<(), RdbError> {
        let mut e = Elems::new(lp)?;
        let count = e.next_elem()?.int()?;
        let deleted = e.next_elem()?.int()?;
        let nfields = e.next_elem()?.int()?;
        if count < 0 || deleted < 0 || nfields < 0 {
            return Err(corrupt("stream listpack integrity check failed"));
        }
        let mut master_fields = Vec::new();
        for _ in 0..nfields {
            master_fields.push(e.next_elem()?.bytes());
        }
        if e.next_elem()?.int()? != 0 {
            return Err(corrupt("stream listpack integrity check failed"));
        }
        if e.at_end() {
            return Err(corrupt("empty listpack inside stream"));
        }
        let (mut live, mut dead) = (0i64, 0i64);
        let mut first = true;
        while !e.at_end() {
            let flags = e.next_elem()?.int()?;
            let ms = master.ms.wrapping_add(e.next_elem()?.int()? as u64);
            let seq = master.seq.wrapping_add(e.next_elem()?.int()? as u64);
            let id = StreamId::new(ms, seq);
            let mut fields = Vec::new();
            let expected_count = if flags & FLAG_SAMEFIELDS != 0 {
                for f in &master_fields {
                    fields.push(f.clone());
                    fields.push(e.next_elem()?.bytes());
                }
                master_fields.len() as i64 + 3
            } else {
                let n = e.next_elem()?.int()?;
                if n < 0 {
                    return Err(corrupt("stream listpack integrity check failed"));
                }
                for _ in 0..n {
                    fields.push(e.next_elem()?.bytes());
                    fields.push(e.next_elem()?.bytes());
                }
                2 * n + 4
            };
            if e.next_elem()?.int()? != expected_count || fields.is_empty() {
                return Err(corrupt("stream listpack integrity check failed"));
            }
            if self.last.is_some_and(|l| id <= l) {
                return Err(corrupt("stream entries out of order"));
            }
            self.last = Some(id);
            if flags & FLAG_DELETED != 0 {
                dead += 1;
                self.tombstones.push(id);
            } else {
                live += 1;
            }
            muts.push(Mutation::EntryAdded {
                id,
                fields,
                new_node: first,
            });
            first = false;
        }
        e.finish()?;
        // Redis drops a node with its last live entry: one without any is damage.
        if live != count || dead != deleted || live == 0 {
            return Err(corrupt("stream listpack integrity check failed"));
        }
        self.live += live as u64;
        Ok(())
    }
}

/// A millisecond time as Brooklet keeps one (a negative one as 0).
fn unix_ms(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

/// Reads one group (after its name): last ID, entries-read, PEL, consumers.
fn read_group(
    r: &mut Reader<'_>,
    kind: StreamKind,
    group: Bytes,
    muts: &mut Vec<Mutation>,
) -> Result<(), RdbError> {
    let last_id = StreamId::new(r.len()?, r.len()?);
    let entries_read = match kind {
        StreamKind::V1 => None,
        // Redis stores "unknown" as -1.
        StreamKind::V2 | StreamKind::V3 => Some(r.len()?).filter(|&n| n != u64::MAX),
    };
    muts.push(Mutation::GroupCreated {
        group: group.clone(),
        last_id,
        entries_read,
    });
    // Each pending entry: delivery time and count, and its owner once consumers are read.
    let mut pel: BTreeMap<StreamId, (u64, u64, Option<Bytes>)> = BTreeMap::new();
    let pending = r.count()?;
    for _ in 0..pending {
        let id = r.raw_id()?;
        let time = unix_ms(r.millis()?);
        let count = r.len()?;
        if pel.insert(id, (time, count, None)).is_some() {
            return Err(corrupt(
                "duplicated global PEL entry loading stream consumer group",
            ));
        }
    }
    let consumers = r.count()?;
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..consumers {
        let name = r.string()?;
        if !names.insert(name.clone()) {
            return Err(corrupt("duplicate stream consumer detected"));
        }
        let seen = r.millis()?;
        // Before 7.2 only the seen time was kept; Redis takes it for the active time too.
        let active = match kind {
            StreamKind::V3 => r.millis()?,
            StreamKind::V1 | StreamKind::V2 => seen,
        };
        muts.push(Mutation::ConsumerUpserted {
            group: group.clone(),
            consumer: name.clone(),
            seen_time: unix_ms(seen),
            active_time: u64::try_from(active).ok(),
        });
        let owned = r.count()?;
        for _ in 0..owned {
            let id = r.raw_id()?;
            let Some(entry) = pel.get_mut(&id) else {
                return Err(corrupt("consumer entry not found in group global PEL"));
            };
            if entry.2.replace(name.clone()).is_some() {
                return Err(corrupt(
                    "duplicated consumer PEL entry loading a stream consumer group",
                ));
            }
        }
    }
    for (id, (delivery_time, delivery_count, owner)) in pel {
        let Some(consumer) = owner else {
            return Err(corrupt("stream CG PEL entry without consumer"));
        };
        muts.push(Mutation::PendingUpserted {
            group: group.clone(),
            id,
            consumer,
            delivery_time,
            delivery_count,
        });
    }
    Ok(())
}

impl DecodedStream {
    /// The stream these records build, and the records (with the entries-read Redis
    /// estimates at load filled in for type 15's groups).
    pub(crate) fn build(mut self) -> (Stream, Vec<Mutation>) {
        let mut stream = Stream::new();
        for m in &self.muts {
            stream.apply(m);
        }
        if self.estimate_entries_read {
            for m in &mut self.muts {
                if let Mutation::GroupCreated {
                    last_id,
                    entries_read,
                    ..
                } = m
                {
                    *entries_read = stream.estimate_entries_read(*last_id);
                    let fix = m.clone();
                    stream.apply(&fix);
                }
            }
        }
        (stream, self.muts)
    }
}
