//! Consumer groups: the group, its consumers and pending-entry list (PEL), and the
//! group commands (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::entry::{Entry, MaybeEntry};
use crate::error::StreamError;
use crate::id::{GroupStartId, ReadId, StreamId};
use crate::mutation::Mutation;
use crate::stream::Stream;

/// A consumer group (Redis's streamCG).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Last ID delivered to the group with `>` (or set by SETID / XCLAIM LASTID).
    pub(crate) last_id: StreamId,
    /// Logical count of entries read by the group; `None` when unknown.
    pub(crate) entries_read: Option<u64>,
    /// Every entry delivered and not yet acknowledged, by ID.
    pub(crate) pel: BTreeMap<StreamId, PendingEntry>,
    /// Consumers by name, in byte order.
    pub(crate) consumers: BTreeMap<Bytes, Consumer>,
}

/// One pending entry (Redis's streamNACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// Consumer that owns the entry; always a key of the group's consumers.
    pub consumer: Bytes,
    /// Unix ms of the last delivery (idle time is now minus this).
    pub delivery_time: u64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer in a group (Redis's streamConsumer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms of the last attempted interaction (XREADGROUP, XCLAIM, XAUTOCLAIM).
    pub(crate) seen_time: u64,
    /// Unix ms of the last successful interaction (entries read into the PEL or
    /// claimed); `None` if never.
    pub(crate) active_time: Option<u64>,
    /// IDs this consumer owns in the group's PEL.
    pub(crate) pending: BTreeSet<StreamId>,
}

impl ConsumerGroup {
    /// Last delivered ID.
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// Entries read counter, `None` if unknown.
    pub fn entries_read(&self) -> Option<u64> {
        self.entries_read
    }

    /// The group's pending entries, by ID.
    pub fn pending(&self) -> &BTreeMap<StreamId, PendingEntry> {
        &self.pel
    }

    /// The group's consumers, by name.
    pub fn consumers(&self) -> &BTreeMap<Bytes, Consumer> {
        &self.consumers
    }
}

impl Consumer {
    /// Last attempted interaction, Unix ms.
    pub fn seen_time(&self) -> u64 {
        self.seen_time
    }

    /// Last successful interaction, Unix ms.
    pub fn active_time(&self) -> Option<u64> {
        self.active_time
    }

    /// IDs this consumer owns.
    pub fn pending(&self) -> &BTreeSet<StreamId> {
        &self.pending
    }
}

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
    /// Owner.
    pub consumer: Bytes,
    /// ms since last delivery (may be negative if the clock went back).
    pub idle_ms: i64,
    /// Deliveries.
    pub delivery_count: u64,
}

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

/// A map entry's stored key and value by borrowed name (BTreeMap has no
/// `get_key_value_mut`); the stored key is the shared `Bytes` records reuse.
fn key_value_mut<'a, V>(
    map: &'a mut BTreeMap<Bytes, V>,
    k: &[u8],
) -> Option<(&'a Bytes, &'a mut V)> {
    use std::ops::Bound::Included;
    map.range_mut::<[u8], _>((Included(k), Included(k))).next()
}

fn no_group(key: &[u8], group: &[u8]) -> StreamError {
    StreamError::NoGroup {
        key: Bytes::copy_from_slice(key),
        group: Bytes::copy_from_slice(group),
    }
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> StreamError {
    StreamError::NoKeyOrGroup {
        key: Bytes::copy_from_slice(key),
        group: Bytes::copy_from_slice(group),
    }
}

/// Validates ENTRIESREAD: `-1` (or absent) is unknown, other negatives are errors.
fn entries_read_arg(v: Option<i64>) -> Result<Option<u64>, StreamError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if n < 0 => Err(StreamError::EntriesReadInvalid),
        Some(n) => Ok(Some(n as u64)),
    }
}

impl Stream {
    /// The group with this name.
    pub fn group(&self, name: &[u8]) -> Option<&ConsumerGroup> {
        self.groups.get(name)
    }

    /// All groups, by name.
    pub fn groups(&self) -> &BTreeMap<Bytes, ConsumerGroup> {
        &self.groups
    }

    /// XGROUP CREATE (the key exists or MKSTREAM created it).
    ///
    /// # Errors
    /// ENTRIESREAD below -1, BUSYGROUP.
    pub fn create_group(
        &mut self,
        name: &[u8],
        start: GroupStartId,
        entries_read: Option<i64>,
        out: &mut Vec<Mutation>,
    ) -> Result<(), StreamError> {
        let entries_read = entries_read_arg(entries_read)?;
        if self.groups.contains_key(name) {
            return Err(StreamError::BusyGroup);
        }
        let last_id = match start {
            GroupStartId::Id(id) => id,
            GroupStartId::Last => self.last_id,
        };
        let group = Bytes::copy_from_slice(name);
        self.groups.insert(
            group.clone(),
            ConsumerGroup {
                last_id,
                entries_read,
                ..Default::default()
            },
        );
        out.push(Mutation::GroupCreated {
            group,
            last_id,
            entries_read,
        });
        Ok(())
    }

    /// XGROUP SETID.
    ///
    /// # Errors
    /// ENTRIESREAD below -1, NOGROUP.
    pub fn set_group_id(
        &mut self,
        key: &[u8],
        name: &[u8],
        start: GroupStartId,
        entries_read: Option<i64>,
        out: &mut Vec<Mutation>,
    ) -> Result<(), StreamError> {
        let entries_read = entries_read_arg(entries_read)?;
        let last_id = match start {
            GroupStartId::Id(id) => id,
            GroupStartId::Last => self.last_id,
        };
        let (group, g) =
            key_value_mut(&mut self.groups, name).ok_or_else(|| no_group(key, name))?;
        g.last_id = last_id;
        g.entries_read = entries_read;
        out.push(Mutation::GroupUpdated {
            group: group.clone(),
            last_id,
            entries_read,
        });
        Ok(())
    }

    /// XGROUP DESTROY: true if the group existed.
    pub fn destroy_group(&mut self, name: &[u8], out: &mut Vec<Mutation>) -> bool {
        match self.groups.remove_entry(name) {
            Some((group, _)) => {
                out.push(Mutation::GroupDestroyed { group });
                true
            }
            None => false,
        }
    }

    /// XGROUP CREATECONSUMER: true if created, false if it existed.
    ///
    /// # Errors
    /// NOGROUP.
    pub fn create_consumer(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<bool, StreamError> {
        let (gname, g) =
            key_value_mut(&mut self.groups, group).ok_or_else(|| no_group(key, group))?;
        if g.consumers.contains_key(consumer) {
            return Ok(false);
        }
        let name = Bytes::copy_from_slice(consumer);
        g.consumers.insert(
            name.clone(),
            Consumer {
                seen_time: now_ms,
                ..Default::default()
            },
        );
        out.push(Mutation::ConsumerUpserted {
            group: gname.clone(),
            consumer: name,
            seen_time: now_ms,
            active_time: None,
        });
        Ok(true)
    }

    /// XGROUP DELCONSUMER: returns how many pending entries the consumer had (they
    /// leave the PEL); 0 if there was no such consumer.
    ///
    /// # Errors
    /// NOGROUP.
    pub fn delete_consumer(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        let (gname, g) =
            key_value_mut(&mut self.groups, group).ok_or_else(|| no_group(key, group))?;
        let Some((cname, c)) = g.consumers.remove_entry(consumer) else {
            return Ok(0);
        };
        for id in &c.pending {
            g.pel.remove(id);
            out.push(Mutation::PendingRemoved {
                group: gname.clone(),
                id: *id,
            });
        }
        out.push(Mutation::ConsumerDeleted {
            group: gname.clone(),
            consumer: cname,
        });
        Ok(c.pending.len() as u64)
    }

    /// XREADGROUP for one stream. `>` delivers entries after the group's last
    /// delivered ID (adding them to the PEL unless `noack`); an explicit ID returns the
    /// consumer's own pending entries after it (deleted ones with a nil body).
    /// `count`: `None` or `Some(0)` means no limit. The consumer is created on first
    /// use and its seen-time set even when nothing is served.
    ///
    /// Returns `None` when `>` found nothing new (the caller blocks or omits the
    /// stream), `Some(entries)` otherwise (possibly empty for history reads).
    ///
    /// # Errors
    /// NOGROUP (with XREADGROUP's text), `$` as the ID.
    #[allow(clippy::too_many_arguments)]
    pub fn read_group(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        id: ReadId,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<Option<Vec<MaybeEntry>>, StreamError> {
        let after = match id {
            ReadId::Last => return Err(StreamError::DollarInXReadGroup),
            ReadId::LastEntry => return Err(StreamError::PlusInXReadGroup),
            // Redis encodes `>` as MAX-MAX, so that explicit ID means `>` too.
            ReadId::New | ReadId::Id(StreamId::MAX) => None,
            ReadId::Id(id) => Some(id),
        };
        if !self.groups.contains_key(group) {
            return Err(StreamError::NoKeyOrGroupRead {
                key: Bytes::copy_from_slice(key),
                group: Bytes::copy_from_slice(group),
            });
        }
        let limit = count.filter(|&c| c > 0).unwrap_or(u64::MAX);
        let (gname, cname) = self.touch_consumer(group, consumer, now_ms, out);
        match after {
            Some(after) => self
                .read_history(&gname, &cname, after, limit, now_ms, out)
                .map(Some),
            None => self.read_new(&gname, &cname, limit, noack, now_ms, out),
        }
    }

    /// Looks up or creates a consumer and sets its seen-time; returns the stored
    /// group and consumer names. The group must exist.
    fn touch_consumer(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> (Bytes, Bytes) {
        let Some((gname, g)) = key_value_mut(&mut self.groups, group) else {
            return (
                Bytes::copy_from_slice(group),
                Bytes::copy_from_slice(consumer),
            );
        };
        let (cname, c) = match key_value_mut(&mut g.consumers, consumer) {
            Some((cname, c)) => (cname.clone(), c),
            None => {
                let cname = Bytes::copy_from_slice(consumer);
                let c = g.consumers.entry(cname.clone()).or_default();
                (cname, c)
            }
        };
        c.seen_time = now_ms;
        out.push(Mutation::ConsumerUpserted {
            group: gname.clone(),
            consumer: cname.clone(),
            seen_time: c.seen_time,
            active_time: c.active_time,
        });
        (gname.clone(), cname)
    }

    fn read_history(
        &mut self,
        gname: &Bytes,
        cname: &Bytes,
        after: StreamId,
        limit: u64,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<Vec<MaybeEntry>, StreamError> {
        let Some(start) = after.next() else {
            return Ok(Vec::new());
        };
        let ids: Vec<StreamId> = match self.groups.get(gname).and_then(|g| g.consumers.get(cname)) {
            Some(c) => c
                .pending
                .range(start..)
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .copied()
                .collect(),
            None => Vec::new(),
        };
        let mut result = Vec::with_capacity(ids.len());
        for id in ids {
            let fields = self.get(id)?.map(|e| e.fields);
            if fields.is_some() {
                // Redis counts a history re-read as a delivery.
                if let Some(nack) = self.groups.get_mut(gname).and_then(|g| g.pel.get_mut(&id)) {
                    nack.delivery_time = now_ms;
                    nack.delivery_count += 1;
                    out.push(Mutation::PendingUpserted {
                        group: gname.clone(),
                        id,
                        consumer: nack.consumer.clone(),
                        delivery_time: nack.delivery_time,
                        delivery_count: nack.delivery_count,
                    });
                }
            }
            result.push(MaybeEntry { id, fields });
        }
        Ok(result)
    }

    fn read_new(
        &mut self,
        gname: &Bytes,
        cname: &Bytes,
        limit: u64,
        noack: bool,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<Option<Vec<MaybeEntry>>, StreamError> {
        let Some(last) = self.groups.get(gname).map(|g| g.last_id) else {
            return Ok(None);
        };
        // Served only if the stream has a live entry past the group's last ID.
        if self.last_live_id().is_none_or(|top| top <= last) {
            return Ok(None);
        }
        let count = usize::try_from(limit).ok();
        let entries = self.read_after(last, count)?;
        let mut result = Vec::with_capacity(entries.len());
        for e in entries {
            self.deliver(gname, cname, e.id, noack, now_ms, out);
            result.push(MaybeEntry {
                id: e.id,
                fields: Some(e.fields),
            });
        }
        if let Some(g) = self.groups.get(gname) {
            out.push(Mutation::GroupUpdated {
                group: gname.clone(),
                last_id: g.last_id,
                entries_read: g.entries_read,
            });
        }
        if !noack
            && !result.is_empty()
            && let Some(c) = self
                .groups
                .get_mut(gname)
                .and_then(|g| g.consumers.get_mut(cname))
        {
            c.active_time = Some(now_ms);
            out.push(Mutation::ConsumerUpserted {
                group: gname.clone(),
                consumer: cname.clone(),
                seen_time: c.seen_time,
                active_time: c.active_time,
            });
        }
        Ok(Some(result))
    }

    /// One entry delivered with `>`: advance the group and record the NACK.
    fn deliver(
        &mut self,
        gname: &Bytes,
        cname: &Bytes,
        id: StreamId,
        noack: bool,
        now_ms: u64,
        out: &mut Vec<Mutation>,
    ) {
        let estimate = self.estimate_entries_read(id);
        let entries_added = self.entries_added;
        let Some(last) = self.groups.get(gname).map(|g| g.last_id) else {
            return;
        };
        // Redis 7.4: the counter only moves on by one when nothing between the group's
        // last-delivered ID and the stream's end was deleted or trimmed away meanwhile.
        let counts_on = last >= self.first_id && !self.range_has_tombstones(last, None);
        let Some(g) = self.groups.get_mut(gname) else {
            return;
        };
        if id > g.last_id {
            match g.entries_read {
                Some(n) if counts_on => g.entries_read = Some(n + 1),
                _ if entries_added != 0 => g.entries_read = estimate,
                _ => {}
            }
            g.last_id = id;
        }
        if noack {
            return;
        }
        if let Some(prev) = g.pel.get(&id) {
            // SETID may make an entry pending for another consumer be delivered again.
            let owner = prev.consumer.clone();
            if let Some(c) = g.consumers.get_mut(&owner) {
                c.pending.remove(&id);
            }
        }
        g.pel.insert(
            id,
            PendingEntry {
                consumer: cname.clone(),
                delivery_time: now_ms,
                delivery_count: 1,
            },
        );
        if let Some(c) = g.consumers.get_mut(cname) {
            c.pending.insert(id);
        }
        out.push(Mutation::PendingUpserted {
            group: gname.clone(),
            id,
            consumer: cname.clone(),
            delivery_time: now_ms,
            delivery_count: 1,
        });
    }

    /// XACK: removes the IDs from the group's PEL; returns how many were pending
    /// (a repeated ID counts once). 0 if the group does not exist.
    pub fn ack(&mut self, group: &[u8], ids: &[StreamId], out: &mut Vec<Mutation>) -> u64 {
        let Some((gname, g)) = key_value_mut(&mut self.groups, group) else {
            return 0;
        };
        let mut acked = 0;
        for id in ids {
            if let Some(nack) = g.pel.remove(id) {
                if let Some(c) = g.consumers.get_mut(&nack.consumer) {
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
            let idle = idle_ms(now_ms, nack.delivery_time);
            if args.min_idle_ms != 0 && idle < args.min_idle_ms {
                continue;
            }
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
                // Deleted entries leave the PEL (Redis 7).
                if let Some(nack) = g.pel.remove(&id) {
                    if let Some(c) = g.consumers.get_mut(&nack.consumer) {
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
            if !forced && min_idle > 0 && idle_ms(now_ms, nack.delivery_time) < min_idle {
                continue;
            }
            if !forced
                && nack.consumer != cname
                && let Some(old) = g.consumers.get_mut(&nack.consumer)
            {
                old.pending.remove(&id);
            }
            nack.delivery_time = delivery_time;
            match args.retry_count {
                Some(n) if n >= 0 => nack.delivery_count = n as u64,
                _ if !args.just_id => nack.delivery_count += 1,
                _ => {}
            }
            nack.consumer = cname.clone();
            let (dt, dc) = (nack.delivery_time, nack.delivery_count);
            if let Some(c) = g.consumers.get_mut(&cname) {
                c.pending.insert(id);
                c.active_time = Some(now_ms);
            }
            out.push(Mutation::PendingUpserted {
                group: gname.clone(),
                id,
                consumer: cname.clone(),
                delivery_time: dt,
                delivery_count: dc,
            });
            match &mut claimed {
                Claimed::Ids(v) => v.push(id),
                Claimed::Entries(v) => v.push(entry),
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
            if min_idle > 0 && idle_ms(now_ms, nack.delivery_time) < min_idle {
                if id == StreamId::MAX {
                    break;
                }
                continue;
            }
            if nack.consumer != cname
                && let Some(old) = g.consumers.get_mut(&nack.consumer)
            {
                old.pending.remove(&id);
            }
            nack.delivery_time = now_ms;
            if !args.just_id {
                nack.delivery_count += 1;
            }
            nack.consumer = cname.clone();
            let dc = nack.delivery_count;
            if let Some(c) = g.consumers.get_mut(&cname) {
                c.pending.insert(id);
                c.active_time = Some(now_ms);
            }
            out.push(Mutation::PendingUpserted {
                group: gname.clone(),
                id,
                consumer: cname.clone(),
                delivery_time: now_ms,
                delivery_count: dc,
            });
            match &mut claimed {
                Claimed::Ids(v) => v.push(id),
                Claimed::Entries(v) => v.push(entry),
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

    /// True if a tombstone may lie in `start..=end` (Redis's streamRangeHasTombstones,
    /// which only knows the largest deleted ID).
    pub(crate) fn range_has_tombstones(&self, start: StreamId, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical read counter of `id`, when it can be known (Redis's
    /// streamEstimateDistanceFromFirstEverEntry); `None` when it cannot.
    pub(crate) fn estimate_entries_read(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        // Deletions after `id` make its distance from the first entry unknowable (7.4).
        if !id.is_zero() && id < self.max_deleted_id {
            return None;
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// The group's lag (Redis's streamCGLag): `None` when unknown. Negative when
    /// ENTRIESREAD was set above entries-added, as Redis reports it (a signed difference).
    pub(crate) fn group_lag(&self, g: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 || self.length == 0 {
            return Some(0);
        }
        // Everything left comes after the group and after every deletion: all of it is lag.
        if g.last_id < self.first_id && self.max_deleted_id < self.first_id {
            return Some(self.length as i64);
        }
        let lag = |read: u64| (self.entries_added as i64).wrapping_sub(read as i64);
        if let Some(read) = g.entries_read
            && !self.range_has_tombstones(g.last_id, None)
        {
            return Some(lag(read));
        }
        self.estimate_entries_read(g.last_id).map(lag)
    }
}

/// Idle time in ms; negative if the clock went back.
pub(crate) fn idle_ms(now_ms: u64, since: u64) -> i64 {
    (now_ms as i64).saturating_sub(since as i64)
}
