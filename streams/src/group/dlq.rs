//! Dead-letter streams (a Brooklet extension): XGROUP SETDLQ gives a group a dead-letter
//! key and a delivery limit; a pending entry whose delivery count has reached the limit
//! leaves the PEL on its next redelivery (XCLAIM, XAUTOCLAIM, XREADGROUP CLAIM, a history
//! re-read) instead of being delivered, and XNACK FATAL sends it at once.
//!
//! This crate only takes the entry out of the PEL and records a
//! [`Mutation::DeadLettered`] carrying what the dead-letter entry holds; the server appends
//! it to the dead-letter stream and storage writes both streams in one atomic step.

use bytes::Bytes;

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::stream::Stream;

use super::{ConsumerGroup, key_value_mut, no_group};

/// A group's dead-letter settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterConfig {
    /// The stream dead-lettered entries are appended to (another key of the database).
    pub key: Bytes,
    /// MAXDELIVERIES: an entry delivered this many times is dead-lettered instead of being
    /// delivered again (at least 1).
    pub max_deliveries: u64,
}

/// Why an entry was dead-lettered (`dlq-reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Its delivery count reached MAXDELIVERIES.
    MaxDeliveries,
    /// XNACK ... FATAL.
    Fatal,
}

impl DeadLetterReason {
    /// The `dlq-reason` value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::MaxDeliveries => "maxdeliveries",
            DeadLetterReason::Fatal => "fatal",
        }
    }
}

/// One dead-lettered entry: what its dead-letter entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The group it left.
    pub group: Bytes,
    /// The dead-letter stream's key.
    pub key: Bytes,
    /// Its ID in the source stream.
    pub id: StreamId,
    /// Its owner when it was dead-lettered (empty for an entry XNACK had released).
    pub consumer: Bytes,
    /// Its delivery count then.
    pub deliveries: u64,
    /// Why.
    pub reason: DeadLetterReason,
    /// Its fields and values, flattened; `None` when the entry was deleted meanwhile.
    pub fields: Option<Vec<Bytes>>,
}

impl DeadLetter {
    /// The dead-letter entry's fields: the original pairs, then `dlq-stream`, `dlq-id`,
    /// `dlq-group`, `dlq-consumer`, `dlq-deliveries` and `dlq-reason`.
    pub fn entry_fields(&self, source_key: &[u8]) -> Vec<Bytes> {
        let original = self.fields.as_deref().unwrap_or(&[]);
        let mut out = Vec::with_capacity(original.len() + 12);
        out.extend_from_slice(original);
        let pairs: [(&'static str, Bytes); 6] = [
            ("dlq-stream", Bytes::copy_from_slice(source_key)),
            ("dlq-id", Bytes::from(self.id.to_string())),
            ("dlq-group", self.group.clone()),
            ("dlq-consumer", self.consumer.clone()),
            ("dlq-deliveries", Bytes::from(self.deliveries.to_string())),
            (
                "dlq-reason",
                Bytes::from_static(self.reason.as_str().as_bytes()),
            ),
        ];
        for (name, value) in pairs {
            out.push(Bytes::from_static(name.as_bytes()));
            out.push(value);
        }
        out
    }
}

impl ConsumerGroup {
    /// The group's dead-letter settings, if any.
    pub fn dead_letter(&self) -> Option<&DeadLetterConfig> {
        self.dlq.as_ref()
    }

    /// Whether a pending entry delivered `deliveries` times is dead-lettered rather than
    /// delivered again.
    pub(crate) fn dead_letter_due(&self, deliveries: u64) -> bool {
        !self.dlq_suspended
            && self
                .dlq
                .as_ref()
                .is_some_and(|d| deliveries >= d.max_deliveries)
    }

    /// Takes pending entry `id` out of the PEL (its owner's list and the NACK zone too) and
    /// records it dead-lettered; `fields` are the entry's, `None` if it was deleted. Does
    /// nothing without a dead-letter stream or when `id` is not pending.
    pub(crate) fn dead_letter_entry(
        &mut self,
        gname: &Bytes,
        id: StreamId,
        fields: Option<Vec<Bytes>>,
        reason: DeadLetterReason,
        out: &mut Vec<Mutation>,
    ) -> bool {
        let Some(key) = self.dlq.as_ref().map(|d| d.key.clone()) else {
            return false;
        };
        if self.dlq_suspended {
            return false;
        }
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if !self.nacked.remove(id)
            && let Some(c) = self.consumers.get_mut(&p.consumer)
        {
            c.pending.remove(&id);
        }
        self.counters.dead_lettered += 1;
        out.push(Mutation::PendingRemoved {
            group: gname.clone(),
            id,
        });
        out.push(Mutation::DeadLettered(Box::new(DeadLetter {
            group: gname.clone(),
            key,
            id,
            consumer: p.consumer,
            deliveries: p.delivery_count,
            reason,
            fields,
        })));
        true
    }
}

impl Stream {
    /// XGROUP SETDLQ: gives group `name` a dead-letter stream, or (`None`) takes it away.
    /// Entries already pending are judged by the new limit on their next redelivery.
    ///
    /// # Errors
    /// NOGROUP.
    pub fn set_group_dlq(
        &mut self,
        key: &[u8],
        name: &[u8],
        dlq: Option<DeadLetterConfig>,
        out: &mut Vec<Mutation>,
    ) -> Result<(), StreamError> {
        let (group, g) =
            key_value_mut(&mut self.groups, name).ok_or_else(|| no_group(key, name))?;
        g.dlq = dlq.clone();
        out.push(Mutation::GroupDlqSet {
            group: group.clone(),
            dlq,
        });
        Ok(())
    }

    /// Suspends (or resumes) dead-lettering into the streams `keys` for the groups that
    /// use them: while suspended they deliver as without a dead-letter stream. For the
    /// duration of one command whose dead-letter stream cannot take another entry.
    pub fn suspend_dead_letters(&mut self, keys: &[Bytes], on: bool) {
        for g in self.groups.values_mut() {
            if g.dlq.as_ref().is_some_and(|d| keys.contains(&d.key)) {
                g.dlq_suspended = on;
            }
        }
    }

    /// The keys of the dead-letter streams of this stream's groups.
    pub fn dead_letter_keys(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.groups
            .values()
            .filter_map(|g| g.dlq.as_ref().map(|d| &d.key))
    }
}
