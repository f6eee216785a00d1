//! XREADGROUP: serving new entries and a consumer's own history, and recording deliveries.

use bytes::Bytes;

use crate::budget::ReadBudget;
use crate::entry::{Entry, MaybeEntry};
use crate::error::StreamError;
use crate::id::{ReadId, StreamId};
use crate::mutation::Mutation;
use crate::stream::Stream;

use super::{ClaimRead, DeadLetterReason, PendingEntry, key_value_mut};

impl Stream {
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
        self.read_group_within(key, group, consumer, id, count, noack, now_ms, None, out)
    }

    /// [`Stream::read_group`] under a reply budget shared with the command's other streams
    /// (XREADGROUP MAXCOUNT / MAXSIZE). An entry the budget leaves out is neither
    /// delivered nor re-delivered: it stays out of the PEL (`>`), and keeps its delivery
    /// time and count (history). A `>` read the budget leaves empty returns `None`.
    ///
    /// # Errors
    /// As [`Stream::read_group`].
    #[allow(clippy::too_many_arguments)]
    pub fn read_group_within(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        id: ReadId,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
        budget: Option<&mut ReadBudget>,
        out: &mut Vec<Mutation>,
    ) -> Result<Option<Vec<MaybeEntry>>, StreamError> {
        self.counting(group, out, |s, out| {
            s.read_group_counted(key, group, consumer, id, count, noack, now_ms, budget, out)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn read_group_counted(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        id: ReadId,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
        budget: Option<&mut ReadBudget>,
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
        let mut limit = count.filter(|&c| c > 0).unwrap_or(u64::MAX);
        if let Some(b) = budget.as_deref() {
            limit = b.limit(limit);
        }
        let (gname, cname) = self.touch_consumer(group, consumer, now_ms, out);
        match after {
            Some(after) => self
                .read_history(&gname, &cname, after, limit, now_ms, budget, out)
                .map(Some),
            None => self.read_new(&gname, &cname, limit, noack, now_ms, budget, out),
        }
    }

    /// `XREADGROUP ... CLAIM min-idle-time STREAMS key >` for one stream (Redis 8.4): pending
    /// entries of the group idle at least `min_idle_ms` are claimed for the consumer first
    /// (longest idle first, as XCLAIM claims them), then new entries fill what is left
    /// of `count`. NOACK applies to the new entries only. The budget covers both.
    ///
    /// Returns `None` when nothing was claimed and nothing new was found (the caller
    /// blocks or omits the stream).
    ///
    /// # Errors
    /// NOGROUP (with XREADGROUP's text).
    #[allow(clippy::too_many_arguments)]
    pub fn read_group_claim(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        min_idle_ms: u64,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
        budget: Option<&mut ReadBudget>,
        out: &mut Vec<Mutation>,
    ) -> Result<Option<Vec<ClaimRead>>, StreamError> {
        self.counting(group, out, |s, out| {
            s.read_group_claim_counted(
                key,
                group,
                consumer,
                min_idle_ms,
                count,
                noack,
                now_ms,
                budget,
                out,
            )
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn read_group_claim_counted(
        &mut self,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        min_idle_ms: u64,
        count: Option<u64>,
        noack: bool,
        now_ms: u64,
        mut budget: Option<&mut ReadBudget>,
        out: &mut Vec<Mutation>,
    ) -> Result<Option<Vec<ClaimRead>>, StreamError> {
        if !self.groups.contains_key(group) {
            return Err(StreamError::NoKeyOrGroupRead {
                key: Bytes::copy_from_slice(key),
                group: Bytes::copy_from_slice(group),
            });
        }
        let mut limit = count.filter(|&c| c > 0).unwrap_or(u64::MAX);
        if let Some(b) = budget.as_deref() {
            limit = b.limit(limit);
        }
        let (gname, cname) = self.touch_consumer(group, consumer, now_ms, out);
        let mut served = self.claim_idle(
            &gname,
            &cname,
            min_idle_ms,
            limit,
            now_ms,
            budget.as_deref_mut(),
            out,
        )?;
        let left = limit - served.len() as u64;
        if left > 0
            && budget.as_deref().is_none_or(|b| !b.exhausted())
            && let Some(new) = self.read_new(&gname, &cname, left, noack, now_ms, budget, out)?
        {
            served.extend(new.into_iter().filter_map(|e| {
                e.fields.map(|fields| ClaimRead {
                    entry: Entry { id: e.id, fields },
                    idle_ms: 0,
                    prior_deliveries: 0,
                })
            }));
        }
        Ok((!served.is_empty()).then_some(served))
    }

    /// Looks up or creates a consumer and sets its seen-time; returns the stored
    /// group and consumer names. The group must exist.
    pub(super) fn touch_consumer(
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

    #[allow(clippy::too_many_arguments)]
    fn read_history(
        &mut self,
        gname: &Bytes,
        cname: &Bytes,
        after: StreamId,
        limit: u64,
        now_ms: u64,
        mut budget: Option<&mut ReadBudget>,
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
            // Re-reading one's history is a redelivery: past the limit, it is dead-lettered.
            if fields.is_some()
                && let Some(g) = self.groups.get_mut(gname)
                && g.pel
                    .get(&id)
                    .is_some_and(|p| g.dead_letter_due(p.delivery_count))
            {
                g.dead_letter_entry(gname, id, fields, DeadLetterReason::MaxDeliveries, out);
                continue;
            }
            if let Some(b) = budget.as_deref_mut()
                && !b.admit(id, fields.as_deref())
            {
                break;
            }
            if fields.is_some() {
                // Redis counts a history re-read as a delivery.
                if let Some(g) = self.groups.get_mut(gname)
                    && let Some(nack) = g.pel.get_mut(&id)
                {
                    g.counters.delivered += 1;
                    nack.delivery_time = now_ms;
                    nack.delivery_count = super::nack::bump(nack.delivery_count);
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

    #[allow(clippy::too_many_arguments)]
    fn read_new(
        &mut self,
        gname: &Bytes,
        cname: &Bytes,
        limit: u64,
        noack: bool,
        now_ms: u64,
        budget: Option<&mut ReadBudget>,
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
        let mut entries = self.read_after(last, count)?;
        if let Some(b) = budget {
            // Charged before any delivery, so a left-out entry never reaches the PEL.
            b.take_entries(&mut entries);
            if entries.is_empty() {
                return Ok(None);
            }
        }
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
        g.counters.delivered += 1;
        if noack {
            return;
        }
        if let Some(prev) = g.pel.get(&id) {
            // SETID may make an entry pending for another consumer (or NACKed) be
            // delivered again.
            let owner = prev.consumer.clone();
            if !g.nacked.remove(id)
                && let Some(c) = g.consumers.get_mut(&owner)
            {
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
}
