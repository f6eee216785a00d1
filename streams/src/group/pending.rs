//! XACK and XPENDING: acknowledging entries and reading the pending-entry list.

use bytes::Bytes;

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::stream::Stream;

use super::{idle_ms, key_value_mut, no_key_or_group};

/// XPENDING summary form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSummary {
    /// Entries in the group's PEL.
    pub count: u64,
    /// Smallest and largest pending IDs (`None` when the PEL is empty).
    pub bounds: Option<(StreamId, StreamId)>,
    /// Consumers with pending entries and their counts, by name.
    pub consumers: Vec<(Bytes, u64)>,
}

/// XPENDING extended form's arguments: `[IDLE min] start end count [consumer]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRangeArgs {
    /// Only entries idle at least this long (0: all).
    pub min_idle_ms: i64,
    /// Inclusive start (exclusive `(` already applied by the parser).
    pub start: StreamId,
    /// Inclusive end.
    pub end: StreamId,
    /// Maximum entries (negative counts are 0 in Redis).
    pub count: u64,
    /// Only this consumer's entries.
    pub consumer: Option<Bytes>,
}

/// One row of XPENDING's extended form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInfo {
    /// Entry ID.
    pub id: StreamId,
    /// Owner (empty for a NACKed entry).
    pub consumer: Bytes,
    /// ms since last delivery (0 if the clock went back); -1 for a NACKed entry.
    pub idle_ms: i64,
    /// Deliveries.
    pub delivery_count: u64,
}

impl Stream {
    /// XACK: removes the IDs from the group's PEL; returns how many were pending
    /// (a repeated ID counts once). 0 if the group does not exist.
    pub fn ack(&mut self, group: &[u8], ids: &[StreamId], out: &mut Vec<Mutation>) -> u64 {
        self.counting(group, out, |s, out| {
            let n = s.unpend(group, ids, out);
            if let Some(g) = s.groups.get_mut(group) {
                g.counters.acked += n;
            }
            n
        })
    }

    /// Removes the IDs from the group's PEL; how many were pending. Counts nothing: an
    /// acknowledgement counts them, a deletion's dropped references do not.
    pub(crate) fn unpend(
        &mut self,
        group: &[u8],
        ids: &[StreamId],
        out: &mut Vec<Mutation>,
    ) -> u64 {
        let Some((gname, g)) = key_value_mut(&mut self.groups, group) else {
            return 0;
        };
        let mut acked = 0;
        for id in ids {
            if let Some(nack) = g.pel.remove(id) {
                if !g.nacked.remove(*id)
                    && let Some(c) = g.consumers.get_mut(&nack.consumer)
                {
                    c.pending.remove(id);
                }
                out.push(Mutation::PendingRemoved {
                    group: gname.clone(),
                    id: *id,
                });
                acked += 1;
            }
        }
        acked
    }

    /// XPENDING key group (summary form).
    ///
    /// # Errors
    /// NOGROUP.
    pub fn pending_summary(&self, key: &[u8], group: &[u8]) -> Result<PendingSummary, StreamError> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| no_key_or_group(key, group))?;
        let bounds = match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(a), Some(b)) => Some((*a, *b)),
            _ => None,
        };
        let consumers = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(n, c)| (n.clone(), c.pending.len() as u64))
            .collect();
        Ok(PendingSummary {
            count: g.pel.len() as u64,
            bounds,
            consumers,
        })
    }

    /// XPENDING extended form.
    ///
    /// # Errors
    /// NOGROUP.
    pub fn pending_range(
        &self,
        key: &[u8],
        group: &[u8],
        args: &PendingRangeArgs,
        now_ms: u64,
    ) -> Result<Vec<PendingInfo>, StreamError> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| no_key_or_group(key, group))?;
        let mut out = Vec::new();
        if args.count == 0 || args.start > args.end {
            return Ok(out);
        }
        let ids: Box<dyn Iterator<Item = &StreamId>> = match &args.consumer {
            Some(name) => match g.consumers.get(name) {
                Some(c) => Box::new(c.pending.range(args.start..=args.end)),
                None => return Ok(out),
            },
            None => Box::new(g.pel.range(args.start..=args.end).map(|(id, _)| id)),
        };
        for id in ids {
            let Some(nack) = g.pel.get(id) else { continue };
            // A NACKed entry has no delivery to be idle since: -1, and IDLE keeps it.
            let idle = if g.nacked.contains(id) {
                -1
            } else {
                let idle = idle_ms(now_ms, nack.delivery_time);
                if args.min_idle_ms != 0 && idle < args.min_idle_ms {
                    continue;
                }
                idle.max(0)
            };
            out.push(PendingInfo {
                id: *id,
                consumer: nack.consumer.clone(),
                idle_ms: idle,
                delivery_count: nack.delivery_count,
            });
            if out.len() as u64 >= args.count {
                break;
            }
        }
        Ok(out)
    }
}
