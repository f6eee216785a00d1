//! A stream written as RDB_TYPE_STREAM_LISTPACKS_2 (type 19), what Redis 7.0 writes and
//! every later Redis reads: each node as the listpack Redis would hold for it, keyed by its
//! first entry's ID, then the metadata, then the groups.
//!
//! What Redis's format has no place for is left out: IDMP state, retention, dead-letter
//! settings, group counters, and pending entries XNACK released (they have no owner, which
//! Redis requires of every pending entry).

use brooklet_streams::{StoredEntry, Stream, StreamError, StreamId};

use super::listpack::Builder;
use super::stream_decode::StreamKind;
use super::writer::{put_len, put_millis, put_raw_id, put_raw_string, put_string};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// Appends stream `s` in the layout of `kind` (the type byte is the caller's): DUMP writes
/// type 19; the others are written for tests of what Redis 6 and 7.2 write.
///
/// # Errors
/// When a node held only in storage cannot be read back.
pub(crate) fn encode(
    s: &mut Stream,
    out: &mut Vec<u8>,
    kind: StreamKind,
) -> Result<(), StreamError> {
    let nodes: Vec<_> = s.nodes().collect();
    put_len(out, nodes.len() as u64);
    for meta in nodes {
        let entries = s.node_entries(meta.master)?;
        let Some(first) = entries.first() else {
            return Err(StreamError::Storage(format!(
                "node {} holds no entries",
                meta.master
            )));
        };
        let mut key = Vec::with_capacity(16);
        put_raw_id(&mut key, first.id);
        put_raw_string(out, &key);
        put_string(out, &node_listpack(&entries, meta.live, meta.deleted));
    }
    let last = s.last_id();
    let first = s.first_id();
    let max_deleted = s.max_deleted_id();
    for n in [s.len(), last.ms, last.seq] {
        put_len(out, n);
    }
    if kind != StreamKind::V1 {
        for n in [
            first.ms,
            first.seq,
            max_deleted.ms,
            max_deleted.seq,
            s.entries_added(),
        ] {
            put_len(out, n);
        }
    }
    put_len(out, s.groups().len() as u64);
    for (name, g) in s.groups() {
        put_string(out, name);
        put_len(out, g.last_id().ms);
        put_len(out, g.last_id().seq);
        if kind != StreamKind::V1 {
            // Redis writes "unknown" as -1.
            put_len(out, g.entries_read().unwrap_or(u64::MAX));
        }
        let owned: Vec<_> = g
            .pending()
            .iter()
            .filter(|(_, p)| !p.consumer.is_empty())
            .collect();
        put_len(out, owned.len() as u64);
        for (id, p) in owned {
            put_raw_id(out, *id);
            put_millis(out, p.delivery_time as i64);
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers().len() as u64);
        for (cname, c) in g.consumers() {
            put_string(out, cname);
            put_millis(out, c.seen_time() as i64);
            if kind == StreamKind::V3 {
                put_millis(out, c.active_time().map_or(-1, |t| t as i64));
            }
            put_len(out, c.pending().len() as u64);
            for id in c.pending() {
                put_raw_id(out, *id);
            }
        }
    }
    Ok(())
}

/// The listpack Redis holds for a node of these entries (`live` and `deleted` counted).
fn node_listpack(entries: &[StoredEntry], live: u64, deleted: u64) -> Vec<u8> {
    let mut lp = Builder::new();
    let master = entries.first().map_or(StreamId::MIN, |e| e.id);
    let master_fields: Vec<&[u8]> = entries
        .first()
        .map(|e| e.fields.iter().step_by(2).map(|f| &f[..]).collect())
        .unwrap_or_default();
    lp.int(live as i64);
    lp.int(deleted as i64);
    lp.int(master_fields.len() as i64);
    for f in &master_fields {
        lp.string(f);
    }
    lp.int(0);
    for e in entries {
        let same = e.fields.len() == 2 * master_fields.len()
            && e.fields
                .iter()
                .step_by(2)
                .zip(&master_fields)
                .all(|(a, b)| &a[..] == *b);
        let mut flags = 0;
        if e.deleted {
            flags |= FLAG_DELETED;
        }
        if same {
            flags |= FLAG_SAMEFIELDS;
        }
        lp.int(flags);
        lp.int(e.id.ms.wrapping_sub(master.ms) as i64);
        lp.int(e.id.seq.wrapping_sub(master.seq) as i64);
        let n = (e.fields.len() / 2) as i64;
        if same {
            for v in e.fields.iter().skip(1).step_by(2) {
                lp.string(v);
            }
            lp.int(n + 3);
        } else {
            lp.int(n);
            for f in &e.fields {
                lp.string(f);
            }
            lp.int(2 * n + 4);
        }
    }
    lp.finish()
}
