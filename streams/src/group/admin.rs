//! XGROUP: creating and destroying groups and consumers, setting a group's last ID.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::StreamError;
use crate::id::GroupStartId;
use crate::mutation::Mutation;
use crate::stream::Stream;

use super::{Consumer, ConsumerGroup, entries_read_arg, key_value_mut, no_group};

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
        let entries_read = self.capped_entries_read(entries_read_arg(entries_read)?);
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
        let entries_read = self.capped_entries_read(entries_read_arg(entries_read)?);
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

    /// A group cannot have read more entries than were ever added: Redis 8 caps ENTRIESREAD
    /// at entries-added, so such a group's lag is 0 rather than a negative count.
    fn capped_entries_read(&self, entries_read: Option<u64>) -> Option<u64> {
        entries_read.map(|n| n.min(self.entries_added))
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
}
