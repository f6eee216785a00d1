//! IDMP's records: the section a stream record ends with (a stream's settings and
//! remembered IDs), and what a logged append adds (the addition and, on a stream's first
//! append, its settings).

use brooklet_streams::{Idmp, IdmpConfig, Iid, Mutation, StreamId, auto_iid};
use bytes::Bytes;

use super::{Reader, put_bytes, put_id, put_short_bytes, put_u32, put_u64, put_varint};
use crate::error::StoreError;

/// Tag of a stream record's IDMP section.
const IDMP_SECTION: u8 = 0x30;
/// Tag of a logged append's IDMP addition (XADD IDMP / IDMPAUTO) as first written: the
/// producer and idempotent IDs (u32 length each) and iids-added (u64). Still read.
const IDMP_ADDED: u8 = 0x31;
/// Tag of a logged append's XADD IDMP addition: the producer and idempotent IDs and
/// iids-added, lengths and count as varints.
const IDMP_ADDED_SHORT: u8 = 0x33;
/// Tag of a logged append's XADD IDMPAUTO addition: the producer ID and iids-added as
/// [`IDMP_ADDED_SHORT`] has them; the idempotent ID is derived again from the entry's
/// fields ([`brooklet_streams::auto_iid`]).
const IDMP_ADDED_AUTO: u8 = 0x34;
/// Tag of a logged append's IDMP settings, on the append that created its stream.
const IDMP_CONFIG: u8 = 0x32;
/// Group-change tag of the IDMP duplicates counter (set to a value, logged like a group
/// change).
pub(super) const IDMP_DUPLICATES: u8 = 10;

/// A stream's IDMP state as its stream record ends: a tag, duration and maxsize (u32
/// each), iids-added and iids-duplicates, the producer count (u32), then each producer's
/// ID and its idempotent IDs oldest first (count, then each ID and its entry's ID).
pub fn encode_idmp(idmp: &Idmp) -> Vec<u8> {
    let mut out = Vec::with_capacity(29);
    out.push(IDMP_SECTION);
    let config = idmp.config();
    put_u32(&mut out, config.duration);
    put_u32(&mut out, config.maxsize);
    put_u64(&mut out, idmp.added());
    put_u64(&mut out, idmp.duplicates());
    let count_at = out.len();
    put_u32(&mut out, 0);
    let mut producers: u32 = 0;
    for (pid, ids) in idmp.producers() {
        producers += 1;
        put_bytes(&mut out, pid);
        let n_at = out.len();
        put_u32(&mut out, 0);
        let mut n: u32 = 0;
        for (iid, id) in ids {
            put_bytes(&mut out, iid);
            put_id(&mut out, id);
            n += 1;
        }
        out[n_at..n_at + 4].copy_from_slice(&n.to_be_bytes());
    }
    out[count_at..count_at + 4].copy_from_slice(&producers.to_be_bytes());
    out
}

/// Reads the IDMP section written by [`encode_idmp`].
pub(super) fn read_idmp(r: &mut Reader<'_>) -> Result<Idmp, StoreError> {
    if r.u8()? != IDMP_SECTION {
        return Err(StoreError::Corrupt("stream record's IDMP section".into()));
    }
    let config = IdmpConfig {
        duration: r.u32()?,
        maxsize: r.u32()?,
    };
    let added = r.u64()?;
    let duplicates = r.u64()?;
    let n = r.u32()? as usize;
    let mut producers = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let pid = Bytes::copy_from_slice(r.slice()?);
        let k = r.u32()? as usize;
        let mut ids = Vec::with_capacity(k.min(10_000));
        for _ in 0..k {
            let iid = Bytes::copy_from_slice(r.slice()?);
            ids.push((iid, r.id()?));
        }
        producers.push((pid, ids));
    }
    Ok(Idmp::restore(config, added, duplicates, producers))
}

/// Appends what a logged append adds to IDMP: the addition `added` (an
/// [`Mutation::IdmpAdded`]) and, on the append creating its stream, its settings.
pub fn put_append_idmp(out: &mut Vec<u8>, added: Option<&Mutation>, config: Option<IdmpConfig>) {
    if let Some(c) = config {
        out.push(IDMP_CONFIG);
        put_u32(out, c.duration);
        put_u32(out, c.maxsize);
    }
    // A logged addition is 0x31's size less the u32 lengths and most of the count: the
    // tail log fills, and checkpoints, no sooner than it must for IDMP's sake.
    if let Some(Mutation::IdmpAdded {
        pid,
        iid,
        added,
        auto,
        ..
    }) = added
    {
        out.push(if *auto {
            IDMP_ADDED_AUTO
        } else {
            IDMP_ADDED_SHORT
        });
        put_short_bytes(out, pid);
        if !*auto {
            put_short_bytes(out, iid);
        }
        put_varint(out, *added);
    }
}

/// Reads what [`put_append_idmp`] wrote after the append of entry `id` with `fields`, up
/// to the end.
pub fn read_append_idmp(
    r: &mut Reader<'_>,
    id: StreamId,
    fields: &[Bytes],
) -> Result<(Option<Mutation>, Option<IdmpConfig>), StoreError> {
    let mut added = None;
    let mut config = None;
    let logged = |pid: &[u8], iid: &[u8], count: u64, auto: bool| Mutation::IdmpAdded {
        pid: Iid::new(pid),
        iid: Iid::new(iid),
        id,
        added: count,
        auto,
    };
    while !r.buf.is_empty() {
        match r.u8()? {
            IDMP_CONFIG => {
                config = Some(IdmpConfig {
                    duration: r.u32()?,
                    maxsize: r.u32()?,
                })
            }
            // The arguments are read in order: pid, iid (but for IDMPAUTO), count.
            IDMP_ADDED => added = Some(logged(r.slice()?, r.slice()?, r.u64()?, false)),
            IDMP_ADDED_SHORT => {
                added = Some(logged(
                    r.short_slice()?,
                    r.short_slice()?,
                    r.varint()?,
                    false,
                ))
            }
            IDMP_ADDED_AUTO => {
                added = Some(logged(
                    r.short_slice()?,
                    &auto_iid(fields),
                    r.varint()?,
                    true,
                ))
            }
            _ => return Err(StoreError::Corrupt("logged append's IDMP".into())),
        }
    }
    Ok((added, config))
}
