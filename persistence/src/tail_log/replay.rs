//! Reading the segments back at start-up (and DEBUG RELOAD): every whole, intact record
//! handed to the caller, a torn tail measured and dropped.

use bytes::Bytes;
use std::path::Path;

use super::record::{
    Append, CREATED, GROUP_CHANGES, GroupChanges, OPENED_NODE, Parser, Record, STRINGS,
};
use super::segment::{Segment, segment_path, segments};
use super::strings::Strings;

/// What replay found in the segments.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayReport {
    /// Records read.
    pub records: u64,
    /// Records applied (the others were already in fjall or of a stream gone since).
    pub applied: u64,
    /// Bytes of segments read.
    pub bytes: u64,
    /// Bytes after a torn or corrupt record, dropped.
    pub torn_bytes: u64,
    /// Highest incarnation any record named.
    pub max_incarnation: u64,
}

/// Replays every segment in `dir`, oldest first; `apply` says whether it applied a record.
/// Returns, per segment, the streams it applied records to, the bytes of its records and
/// the streams it created.
pub(super) fn replay(
    dir: &Path,
    apply: &mut dyn FnMut(Record<'_>) -> bool,
    report: &mut ReplayReport,
) -> std::io::Result<Vec<Segment>> {
    let mut out = Vec::new();
    for n in segments(dir)? {
        // No segment listed above goes before it is read: see `TailLog::retiring`.
        let data = Bytes::from(std::fs::read(segment_path(dir, n))?);
        let mut seg = Segment::new(n);
        let mut p = Parser { buf: data, pos: 0 };
        let mut good = 0;
        while let Some(mut rec) = p.record() {
            let Some((db, key, incarnation, flags)) = rec.head() else {
                break;
            };
            let record = if flags & STRINGS != 0 {
                let Some(changes) = rec.strings() else {
                    break;
                };
                // Listed and counted whether applied or not: the checkpoint writes these
                // keys as memory has them before it retires the segment, and a deletion
                // leaves a floor over the record while the segment is there.
                seg.min_created = seg.min_created.min(incarnation);
                let listed = std::sync::Arc::make_mut(&mut seg.strings);
                for c in &changes {
                    listed.insert(db, &c.key);
                }
                Record::Strings(Strings {
                    db,
                    number: incarnation,
                    changes,
                })
            } else if flags & GROUP_CHANGES != 0 {
                let Some(changes) = rec.group_changes(flags) else {
                    break;
                };
                Record::Groups(GroupChanges {
                    db,
                    key: &key,
                    incarnation,
                    changes,
                })
            } else {
                let Some((id, fields, idmp, idmp_config)) = rec.append(flags) else {
                    break;
                };
                let creates = flags & CREATED != 0;
                if creates {
                    // Counted whether applied or not: the floors that keep a dead creation
                    // dead must stay until its segment is retired.
                    seg.min_created = seg.min_created.min(incarnation);
                }
                Record::Append(Append {
                    db,
                    key: &key,
                    incarnation,
                    new_node: flags & OPENED_NODE != 0,
                    creates,
                    id,
                    fields,
                    idmp,
                    idmp_config,
                })
            };
            good = p.pos;
            report.records += 1;
            report.max_incarnation = report.max_incarnation.max(incarnation);
            let applied = apply(record);
            if applied {
                report.applied += 1;
                if flags & STRINGS == 0 {
                    seg.streams.insert((db, key));
                }
            }
        }
        // Segments are created at their full size (see `create_segment`): the zeros past the
        // last record were never written, and only bytes written past it were torn.
        let torn = p.buf[good..]
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last as u64 + 1);
        report.torn_bytes += torn;
        report.bytes += good as u64 + torn;
        seg.bytes = good as u64;
        out.push(seg);
    }
    Ok(out)
}
