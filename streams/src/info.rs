//! XINFO STREAM [FULL], XINFO GROUPS and XINFO CONSUMERS as typed results.

use std::collections::HashSet;

use bytes::Bytes;

use crate::entry::Entry;
use crate::error::StreamError;
use crate::group::{DeadLetterConfig, GroupCounters, idle_ms};
use crate::id::StreamId;
use crate::idmp::IdmpInfo;
use crate::stream::Stream;

/// XINFO STREAM FULL's default COUNT.
pub const INFO_FULL_DEFAULT_COUNT: usize = 10;

/// XINFO STREAM (without FULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// `length`.
    pub length: u64,
    /// `radix-tree-keys`: number of nodes.
    pub radix_tree_keys: u64,
    /// `radix-tree-nodes`: an estimate, see [`Stream::radix_tree_nodes`].
    pub radix_tree_nodes: u64,
    /// `last-generated-id`.
    pub last_generated_id: StreamId,
    /// `max-deleted-entry-id`.
    pub max_deleted_entry_id: StreamId,
    /// `entries-added`.
    pub entries_added: u64,
    /// `recorded-first-entry-id`.
    pub recorded_first_entry_id: StreamId,
    /// `idmp-duration` ... `iids-duplicates` (Redis 8.6), after `recorded-first-entry-id`.
    pub idmp: IdmpInfo,
    /// `groups`: number of groups.
    pub groups: u64,
    /// `first-entry` (nil when empty).
    pub first_entry: Option<Entry>,
    /// `last-entry` (nil when empty).
    pub last_entry: Option<Entry>,
}

/// XINFO STREAM FULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfoFull {
    /// `length`.
    pub length: u64,
    /// `radix-tree-keys`.
    pub radix_tree_keys: u64,
    /// `radix-tree-nodes` (estimate).
    pub radix_tree_nodes: u64,
    /// `last-generated-id`.
    pub last_generated_id: StreamId,
    /// `max-deleted-entry-id`.
    pub max_deleted_entry_id: StreamId,
    /// `entries-added`.
    pub entries_added: u64,
    /// `recorded-first-entry-id`.
    pub recorded_first_entry_id: StreamId,
    /// `idmp-duration` ... `iids-duplicates` (Redis 8.6), after `recorded-first-entry-id`.
    pub idmp: IdmpInfo,
    /// `entries`: the first COUNT entries.
    pub entries: Vec<Entry>,
    /// `groups`.
    pub groups: Vec<GroupInfoFull>,
}

/// One group in XINFO STREAM FULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoFull {
    /// `name`.
    pub name: Bytes,
    /// `last-delivered-id`.
    pub last_delivered_id: StreamId,
    /// `entries-read` (nil when unknown).
    pub entries_read: Option<u64>,
    /// `lag` (nil when unknown).
    pub lag: Option<i64>,
    /// `pel-count`.
    pub pel_count: u64,
    /// `nacked-count` (Redis 8.8): entries XNACK released and nobody claimed since.
    pub nacked_count: u64,
    /// `entries-delivered` ... `entries-dead-lettered` (Brooklet).
    pub counters: GroupCounters,
    /// `dlq-key` and `dlq-max-deliveries` (Brooklet; nil when the group has none).
    pub dead_letter: Option<DeadLetterConfig>,
    /// `pending`: the first COUNT pending entries.
    pub pending: Vec<FullPending>,
    /// `consumers`.
    pub consumers: Vec<ConsumerInfoFull>,
}

/// A group PEL row in XINFO STREAM FULL: `[id, consumer, delivery-time, count]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullPending {
    /// Entry ID.
    pub id: StreamId,
    /// Owner.
    pub consumer: Bytes,
    /// Last delivery, Unix ms.
    pub delivery_time: u64,
    /// Deliveries.
    pub delivery_count: u64,
}

/// One consumer in XINFO STREAM FULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerInfoFull {
    /// `name`.
    pub name: Bytes,
    /// `seen-time`, Unix ms.
    pub seen_time: u64,
    /// `active-time`, Unix ms; Redis prints -1 for never.
    pub active_time: Option<u64>,
    /// `pel-count`.
    pub pel_count: u64,
    /// `pending`: first COUNT rows `[id, delivery-time, count]`.
    pub pending: Vec<(StreamId, u64, u64)>,
}

/// One row of XINFO GROUPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// `name`.
    pub name: Bytes,
    /// `consumers`.
    pub consumers: u64,
    /// `pending`.
    pub pending: u64,
    /// `last-delivered-id`.
    pub last_delivered_id: StreamId,
    /// `entries-read` (nil when unknown).
    pub entries_read: Option<u64>,
    /// `lag` (nil when unknown).
    pub lag: Option<i64>,
    /// `entries-delivered` ... `entries-dead-lettered` (Brooklet).
    pub counters: GroupCounters,
    /// `dlq-key` and `dlq-max-deliveries` (Brooklet; nil when the group has none).
    pub dead_letter: Option<DeadLetterConfig>,
}

/// One row of XINFO CONSUMERS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// `name`.
    pub name: Bytes,
    /// `pending`.
    pub pending: u64,
    /// `idle`: ms since seen-time (0 if negative).
    pub idle_ms: i64,
    /// `inactive`: ms since active-time, -1 if never active.
    pub inactive_ms: i64,
}

impl Stream {
    /// Estimated `radix-tree-nodes`: the node count of the radix tree Redis would
    /// build over the 16-byte big-endian node keys. We model rax as a compressed trie
    /// (root, one node per branching prefix, one per key) where an edge leaving a
    /// branching node and longer than one byte costs one more (compressed) node, while
    /// a single-child node absorbs its edge. One key gives 2, as in Redis; for other
    /// shapes it is an estimate (rax's exact splitting is not reproduced).
    pub fn radix_tree_nodes(&self) -> u64 {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        if keys.is_empty() {
            return 1;
        }
        // Branching prefixes are the longest common prefixes of neighbouring keys.
        let mut branches: HashSet<(usize, [u8; 16])> = HashSet::new();
        for w in keys.windows(2) {
            let lcp = w[0]
                .iter()
                .zip(w[1].iter())
                .take_while(|(a, b)| a == b)
                .count();
            let mut p = [0u8; 16];
            p[..lcp].copy_from_slice(&w[0][..lcp]);
            branches.insert((lcp, p));
        }
        let root_is_branch = branches.contains(&(0, [0u8; 16]));
        let is_branch = |len: usize, full: &[u8; 16]| {
            if len == 0 {
                return root_is_branch;
            }
            let mut p = [0u8; 16];
            p[..len].copy_from_slice(&full[..len]);
            branches.contains(&(len, p))
        };
        // Parent of a trie node = its longest proper prefix that is a branch (or root).
        let edge_cost = |len: usize, full: &[u8; 16]| -> u64 {
            let parent = (1..len).rev().find(|&l| is_branch(l, full)).unwrap_or(0);
            u64::from(is_branch(parent, full) && len - parent > 1)
        };
        let mut nodes = 1u64;
        for (len, p) in branches.iter().filter(|(len, _)| *len > 0) {
            nodes += 1 + edge_cost(*len, p);
        }
        for k in &keys {
            nodes += 1 + edge_cost(16, k);
        }
        nodes
    }

    /// XINFO STREAM.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when the first entry cannot be read back from storage.
    pub fn info(&mut self) -> Result<StreamInfo, StreamError> {
        let first_entry = self.first_entry()?;
        let last_entry = self.last_entry()?;
        Ok(StreamInfo {
            length: self.length,
            radix_tree_keys: self.nodes.len() as u64,
            radix_tree_nodes: self.radix_tree_nodes(),
            last_generated_id: self.last_id,
            max_deleted_entry_id: self.max_deleted_id,
            entries_added: self.entries_added,
            recorded_first_entry_id: self.first_id,
            idmp: self.idmp.info(),
            groups: self.groups.len() as u64,
            first_entry,
            last_entry,
        })
    }

    /// XINFO STREAM FULL [COUNT n]: `count` 0 means everything.
    ///
    /// # Errors
    /// [`StreamError::Storage`] when entries cannot be read back from storage.
    pub fn info_full(&mut self, count: usize) -> Result<StreamInfoFull, StreamError> {
        let limit = if count == 0 { usize::MAX } else { count };
        let entries = self.range(StreamId::MIN, StreamId::MAX, Some(limit), false)?;
        let groups = self
            .groups
            .iter()
            .map(|(name, g)| GroupInfoFull {
                name: name.clone(),
                last_delivered_id: g.last_id,
                entries_read: g.entries_read,
                lag: self.group_lag(g),
                pel_count: g.pel.len() as u64,
                nacked_count: g.nacked_count(),
                counters: g.counters,
                dead_letter: g.dlq.clone(),
                pending: g
                    .pel
                    .iter()
                    .take(limit)
                    .map(|(id, p)| FullPending {
                        id: *id,
                        consumer: p.consumer.clone(),
                        delivery_time: p.delivery_time,
                        delivery_count: p.delivery_count,
                    })
                    .collect(),
                consumers: g
                    .consumers
                    .iter()
                    .map(|(cname, c)| ConsumerInfoFull {
                        name: cname.clone(),
                        seen_time: c.seen_time,
                        active_time: c.active_time,
                        pel_count: c.pending.len() as u64,
                        pending: c
                            .pending
                            .iter()
                            .take(limit)
                            .filter_map(|id| {
                                g.pel
                                    .get(id)
                                    .map(|p| (*id, p.delivery_time, p.delivery_count))
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Ok(StreamInfoFull {
            length: self.length,
            radix_tree_keys: self.nodes.len() as u64,
            radix_tree_nodes: self.radix_tree_nodes(),
            last_generated_id: self.last_id,
            max_deleted_entry_id: self.max_deleted_id,
            entries_added: self.entries_added,
            recorded_first_entry_id: self.first_id,
            idmp: self.idmp.info(),
            entries,
            groups,
        })
    }

    /// XINFO GROUPS.
    pub fn groups_info(&self) -> Vec<GroupInfo> {
        self.groups
            .iter()
            .map(|(name, g)| GroupInfo {
                name: name.clone(),
                consumers: g.consumers.len() as u64,
                pending: g.pel.len() as u64,
                last_delivered_id: g.last_id,
                entries_read: g.entries_read,
                lag: self.group_lag(g),
                counters: g.counters,
                dead_letter: g.dlq.clone(),
            })
            .collect()
    }

    /// XINFO CONSUMERS.
    ///
    /// # Errors
    /// NOGROUP.
    pub fn consumers_info(
        &self,
        key: &[u8],
        group: &[u8],
        now_ms: u64,
    ) -> Result<Vec<ConsumerInfo>, StreamError> {
        let g = self.groups.get(group).ok_or_else(|| StreamError::NoGroup {
            key: Bytes::copy_from_slice(key),
            group: Bytes::copy_from_slice(group),
        })?;
        Ok(g.consumers
            .iter()
            .map(|(name, c)| ConsumerInfo {
                name: name.clone(),
                pending: c.pending.len() as u64,
                idle_ms: idle_ms(now_ms, c.seen_time).max(0),
                inactive_ms: c.active_time.map_or(-1, |t| idle_ms(now_ms, t).max(0)),
            })
            .collect())
    }
}
