//! XCLAIM and XAUTOCLAIM: moving pending entries between consumers.

use bytes::Bytes;

use crate::budget::ReadBudget;
use crate::entry::Entry;
use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::stream::Stream;

use super::nack::bump;
use super::{ConsumerGroup, DeadLetterReason, PendingEntry, idle_ms, no_key_or_group};

/// How XCLAIM sets the new delivery time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryTime {
    /// `IDLE ms`: now minus ms.
    Idle(i64),
    /// `TIME unix-ms`.
    Time(i64),
}

/// XCLAIM's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimArgs {
    /// Claim only entries idle at least this long (negative is 0).
    pub min_idle_ms: i64,
    /// IDs to claim, in order.
    pub ids: Vec<StreamId>,
    /// IDLE / TIME (the last one given wins); default now.
    pub delivery_time: Option<DeliveryTime>,
    /// RETRYCOUNT (negative means not given).
    pub retry_count: Option<i64>,
    /// FORCE: create PEL entries for existing entries not pending.
    pub force: bool,
    /// JUSTID: reply IDs only and leave delivery counts alone.
    pub just_id: bool,
    /// LASTID: raise the group's last delivered ID to this.
    pub last_id: Option<StreamId>,
}

/// Claimed entries as XCLAIM / XAUTOCLAIM reply with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// With JUSTID.
    Ids(Vec<StreamId>),
    /// Without JUSTID.
    Entries(Vec<Entry>),
}

impl Claimed {
    fn new(just_id: bool) -> Claimed {
        if just_id {
            Claimed::Ids(Vec::new())
        } else {
            Claimed::Entries(Vec::new())
        }
    }

    /// Number of claimed entries.
    pub fn len(&self) -> usize {
        match self {
            Claimed::Ids(v) => v.len(),
            Claimed::Entries(v) => v.len(),
        }
    }

    /// True if nothing was claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The claimed IDs.
    pub fn ids(&self) -> Vec<StreamId> {
        match self {
            Claimed::Ids(v) => v.clone(),
            Claimed::Entries(v) => v.iter().map(|e| e.id).collect(),
        }
    }
}

/// XAUTOCLAIM's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoClaimArgs {
    /// Claim only entries idle at least this long (negative is 0).
    pub min_idle_ms: i64,
    /// Scan the PEL from here (inclusive; exclusive `(` applied by the parser).
    pub start: StreamId,
    /// COUNT (default 100); must be in 1..=i64::MAX/16.
    pub count: i64,
    /// JUSTID.
    pub just_id: bool,
}

/// XAUTOCLAIM's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoClaimOutcome {
    /// Cursor for the next call (`0-0` when the scan is complete).
    pub next: StreamId,
    /// Claimed entries.
    pub claimed: Claimed,
    /// Pending IDs whose entries were gone; they left the PEL.
    pub deleted: Vec<StreamId>,
}

/// XAUTOCLAIM default COUNT.
pub const AUTOCLAIM_DEFAULT_COUNT: i64 = 100;
/// XAUTOCLAIM scans at most COUNT x this many PEL entries.
const AUTOCLAIM_ATTEMPTS_FACTOR: i64 = 10;

impl Stream {
    /// XCLAIM.
    ///
    /// # Errors
    /// NOGROUP.
    pub fn claim(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        args: &ClaimArgs,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<Claimed, StreamError> {
        self.counting(group, out, |s, out| {
            s.claim_counted(key, group, consumer, args, now_ms, out)
        })
    }

    fn claim_counted(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        args: &ClaimArgs,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<Claimed, StreamError> {
        if !self.groups.contains_key(group) {
            return Err(no_key_or_group(key, group));
        }
        let min_idle = args.min_idle_ms.max(0);
        let now = now_ms as i64;
        let delivery_time = match args.delivery_time {
            None => now_ms,
            Some(dt) => {
                let t = match dt {
                    DeliveryTime::Idle(idle) => now.saturating_sub(idle),
                    DeliveryTime::Time(t) => t,
                };
                // Bogus times become now rather than an error, as in Redis.
                if t < 0 || t > now { now_ms } else { t as u64 }
            }
        };
        let (gname, cname) = self.touch_consumer(group, consumer, now_ms, out);
        if let Some(last) = args.last_id
            && let Some(g) = self.groups.get_mut(&gname)
            && last > g.last_id
        {
            g.last_id = last;
            out.push(Mutation::GroupUpdated {
                group: gname.clone(),
                last_id: last,
                entries_read: g.entries_read,
            });
        }
        let mut claimed = Claimed::new(args.just_id);
        for &id in &args.ids {
            let entry = match self.get(id) {
                Ok(entry) => entry,
                Err(e) => {
                    // What was claimed before the failed read stays claimed, and recorded.
                    self.push_consumer_state(&gname, &cname, &claimed, out);
                    return Err(e);
                }
            };
            let Some(g) = self.groups.get_mut(&gname) else {
                break;
            };
            let Some(entry) = entry else {
                // Deleted entries leave the PEL (Redis 7), NACKed ones too.
                if let Some(nack) = g.pel.remove(&id) {
                    if !g.nacked.remove(id)
                        && let Some(c) = g.consumers.get_mut(&nack.consumer)
                    {
                        c.pending.remove(&id);
                    }
                    out.push(Mutation::PendingRemoved {
                        group: gname.clone(),
                        id,
                    });
                }
                continue;
            };
            let mut forced = false;
            if let std::collections::btree_map::Entry::Vacant(e) = g.pel.entry(id) {
                if !args.force {
                    continue;
                }
                // FORCE creates the NACK as a first delivery to nobody.
                e.insert(PendingEntry {
                    consumer: Bytes::new(),
                    delivery_time: now_ms,
                    delivery_count: 1,
                });
                forced = true;
            }
            let Some(nack) = g.pel.get_mut(&id) else {
                continue;
            };
            // An entry without an owner (forced or NACKed) is claimable whatever its idle time.
            if !forced
                && !g.nacked.contains(&id)
                && min_idle > 0
                && idle_ms(now_ms, nack.delivery_time) < min_idle
            {
                continue;
            }
            let before = nack.delivery_count;
            if !forced && g.dead_letter_due(before) {
                let fields = Some(entry.fields);
                g.dead_letter_entry(&gname, id, fields, DeadLetterReason::MaxDeliveries, out);
                continue;
            }
            let deliveries = match args.retry_count {
                Some(n) if n >= 0 => n as u64,
                _ if !args.just_id => bump(before),
                _ => before,
            };
            // A forced entry has no owner yet: taking it from its previous owner is a no-op.
            hand_over(
                g,
                &gname,
                &cname,
                id,
                delivery_time,
                deliveries,
                now_ms,
                out,
            );
            match &mut claimed {
                Claimed::Ids(v) => v.push(id),
                Claimed::Entries(v) => {
                    g.counters.delivered += 1;
                    v.push(entry)
                }
            }
        }
        self.push_consumer_state(&gname, &cname, &claimed, out);
        Ok(claimed)
    }

    /// Records the consumer's active-time after a successful claim.
    fn push_consumer_state(
        &self,
        gname: &Bytes,
        cname: &Bytes,
        claimed: &Claimed,
        out: &mut Vec<Mutation>,
    ) {
        if claimed.is_empty() {
            return;
        }
        if let Some(c) = self.groups.get(gname).and_then(|g| g.consumers.get(cname)) {
            out.push(Mutation::ConsumerUpserted {
                group: gname.clone(),
                consumer: cname.clone(),
                seen_time: c.seen_time,
                active_time: c.active_time,
            });
        }
    }

    /// XAUTOCLAIM.
    ///
    /// # Errors
    /// COUNT out of range (checked first, as Redis parses it first), NOGROUP.
    pub fn auto_claim(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        args: &AutoClaimArgs,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<AutoClaimOutcome, StreamError> {
        self.counting(group, out, |s, out| {
            s.auto_claim_counted(key, group, consumer, args, now_ms, out)
        })
    }

    fn auto_claim_counted(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        args: &AutoClaimArgs,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<AutoClaimOutcome, StreamError> {
        if args.count < 1 || args.count > i64::MAX / 16 {
            return Err(StreamError::CountMustBePositive);
        }
        if !self.groups.contains_key(group) {
            return Err(no_key_or_group(key, group));
        }
        let min_idle = args.min_idle_ms.max(0);
        let (gname, cname) = self.touch_consumer(group, consumer, now_ms, out);
        let mut count = args.count;
        let mut attempts = args.count.saturating_mul(AUTOCLAIM_ATTEMPTS_FACTOR);
        let mut claimed = Claimed::new(args.just_id);
        let mut deleted = Vec::new();
        let mut cursor = args.start;
        let mut next = StreamId::MIN;
        while let Some(g) = self.groups.get(&gname) {
            let Some(id) = g.pel.range(cursor..).next().map(|(id, _)| *id) else {
                break;
            };
            if attempts == 0 || count == 0 {
                next = id;
                break;
            }
            attempts -= 1;
            cursor = match id.next() {
                Some(n) => n,
                None => StreamId::MAX,
            };
            let entry = match self.get(id) {
                Ok(entry) => entry,
                Err(e) => {
                    self.push_consumer_state(&gname, &cname, &claimed, out);
                    return Err(e);
                }
            };
            let Some(g) = self.groups.get_mut(&gname) else {
                break;
            };
            let Some(entry) = entry else {
                if let Some(nack) = g.pel.remove(&id)
                    && !g.nacked.remove(id)
                    && let Some(c) = g.consumers.get_mut(&nack.consumer)
                {
                    c.pending.remove(&id);
                }
                out.push(Mutation::PendingRemoved {
                    group: gname.clone(),
                    id,
                });
                deleted.push(id);
                count -= 1;
                if id == StreamId::MAX {
                    break;
                }
                continue;
            };
            let Some(nack) = g.pel.get_mut(&id) else {
                continue;
            };
            if !g.nacked.contains(&id)
                && min_idle > 0
                && idle_ms(now_ms, nack.delivery_time) < min_idle
            {
                if id == StreamId::MAX {
                    break;
                }
                continue;
            }
            let before = nack.delivery_count;
            if g.dead_letter_due(before) {
                let fields = Some(entry.fields);
                g.dead_letter_entry(&gname, id, fields, DeadLetterReason::MaxDeliveries, out);
                // Counted as the deleted entries are, so one call's work stays bounded.
                count -= 1;
                if id == StreamId::MAX {
                    break;
                }
                continue;
            }
            let deliveries = if args.just_id { before } else { bump(before) };
            hand_over(g, &gname, &cname, id, now_ms, deliveries, now_ms, out);
            match &mut claimed {
                Claimed::Ids(v) => v.push(id),
                Claimed::Entries(v) => {
                    g.counters.delivered += 1;
                    v.push(entry)
                }
            }
            count -= 1;
            if id == StreamId::MAX {
                break;
            }
        }
        self.push_consumer_state(&gname, &cname, &claimed, out);
        Ok(AutoClaimOutcome {
            next,
            claimed,
            deleted,
        })
    }
}

/// One entry of an `XREADGROUP ... CLAIM` reply (Redis 8.4): claimed and new entries alike
/// carry how long ago they were last delivered and how often they were delivered before
/// this read; a new entry has 0 and 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRead {
    /// The entry.
    pub entry: Entry,
    /// Milliseconds since its previous delivery (0 for a new entry).
    pub idle_ms: u64,
    /// Deliveries before this one (0 for a new entry).
    pub prior_deliveries: u64,
}

impl Stream {
    /// The claim half of `XREADGROUP ... CLAIM min-idle-time`: moves to `cname` up to
    /// `limit` pending entries of the group idle at least `min_idle_ms`, NACKed entries
    /// first in NACK order (their delivery time is 0, as Redis's delivery-time list holds
    /// them at its head), then the longest idle, as XCLAIM would (delivery time now,
    /// count + 1). Pending entries whose stream entry is gone are skipped. The budget is
    /// charged before each claim, so an entry it leaves out keeps its owner and count.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn claim_idle(
        &mut self,
        gname: &Bytes,
        cname: &Bytes,
        min_idle_ms: u64,
        limit: u64,
        now_ms: u64,
        mut budget: Option<&mut ReadBudget>,
        out: &mut Vec<Mutation>,
    ) -> Result<Vec<ClaimRead>, StreamError> {
        let Some(g) = self.groups.get(gname) else {
            return Ok(Vec::new());
        };
        let min_idle = i64::try_from(min_idle_ms).unwrap_or(i64::MAX);
        let mut candidates: Vec<StreamId> = if idle_ms(now_ms, 0) >= min_idle {
            g.nacked.ids().collect()
        } else {
            Vec::new()
        };
        let mut idle: Vec<(u64, StreamId)> = g
            .pel
            .iter()
            .filter(|(id, p)| {
                !g.nacked.contains(id) && idle_ms(now_ms, p.delivery_time) >= min_idle
            })
            .map(|(id, p)| (p.delivery_time, *id))
            .collect();
        if candidates.is_empty() && idle.is_empty() {
            return Ok(Vec::new());
        }
        // Longest idle first; among equals, the lower ID first.
        idle.sort_unstable();
        candidates.extend(idle.into_iter().map(|(_, id)| id));
        let mut claimed = Vec::new();
        for id in candidates {
            if claimed.len() as u64 >= limit {
                break;
            }
            let entry = self.get(id)?;
            let Some(g) = self.groups.get_mut(gname) else {
                break;
            };
            // Unlike XAUTOCLAIM, a deleted entry is skipped and stays pending.
            let Some(entry) = entry else {
                continue;
            };
            if g.pel
                .get(&id)
                .is_some_and(|p| g.dead_letter_due(p.delivery_count))
            {
                let fields = Some(entry.fields);
                g.dead_letter_entry(gname, id, fields, DeadLetterReason::MaxDeliveries, out);
                continue;
            }
            if let Some(b) = budget.as_deref_mut()
                && !b.admit(id, Some(&entry.fields))
            {
                break;
            }
            let Some(nack) = g.pel.get_mut(&id) else {
                continue;
            };
            let idle = idle_ms(now_ms, nack.delivery_time).max(0) as u64;
            let prior_deliveries = nack.delivery_count;
            hand_over(
                g,
                gname,
                cname,
                id,
                now_ms,
                bump(prior_deliveries),
                now_ms,
                out,
            );
            g.counters.delivered += 1;
            claimed.push(ClaimRead {
                entry,
                idle_ms: idle,
                prior_deliveries,
            });
        }
        if !claimed.is_empty()
            && let Some(c) = self.groups.get(gname).and_then(|g| g.consumers.get(cname))
        {
            out.push(Mutation::ConsumerUpserted {
                group: gname.clone(),
                consumer: cname.clone(),
                seen_time: c.seen_time,
                active_time: c.active_time,
            });
        }
        Ok(claimed)
    }
}

/// Gives the pending entry `id` to consumer `cname` (off its previous owner's list, onto
/// `cname`'s, which is marked active) with this delivery time and count, and records it: what
/// XCLAIM, XAUTOCLAIM and XREADGROUP CLAIM do to each entry they claim.
#[allow(clippy::too_many_arguments)]
fn hand_over(
    g: &mut ConsumerGroup,
    gname: &Bytes,
    cname: &Bytes,
    id: StreamId,
    delivery_time: u64,
    delivery_count: u64,
    now_ms: u64,
    out: &mut Vec<Mutation>,
) {
    let Some(nack) = g.pel.get_mut(&id) else {
        return;
    };
    // A NACKed entry has no previous owner: it only leaves the NACK zone.
    if !g.nacked.remove(id)
        && nack.consumer != *cname
        && let Some(old) = g.consumers.get_mut(&nack.consumer)
    {
        old.pending.remove(&id);
    }
    nack.consumer = cname.clone();
    nack.delivery_time = delivery_time;
    nack.delivery_count = delivery_count;
    if let Some(c) = g.consumers.get_mut(cname) {
        c.pending.insert(id);
        c.active_time = Some(now_ms);
    }
    out.push(Mutation::PendingUpserted {
        group: gname.clone(),
        id,
        consumer: cname.clone(),
        delivery_time,
        delivery_count,
    });
}
