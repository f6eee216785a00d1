//! Trimming (XTRIM, and XADD's MAXLEN/MINID options), exactly as Redis's streamTrim.

use crate::error::StreamError;
use crate::id::StreamId;
use crate::mutation::Mutation;
use crate::node::NodeLimits;
use crate::refs::RefPolicy;
use crate::stream::Stream;

/// What to trim to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Remove entries with IDs below this one.
    MinId(StreamId),
}

/// The trim options XADD and XTRIM share (Redis's streamAddTrimArgs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrimArgs {
    /// MAXLEN or MINID and its threshold.
    pub strategy: TrimStrategy,
    /// `~`: remove whole nodes only.
    pub approx: bool,
    /// `LIMIT n` (only with `~`; 0 = no limit). `None`: the default for the mode.
    pub limit: Option<u64>,
    /// KEEPREF (the default), DELREF or ACKED: what becomes of the groups' references to
    /// what the trim removes (Redis 8.2).
    pub policy: RefPolicy,
}

impl TrimArgs {
    /// Exact trim (`=` or no modifier), no limit.
    pub fn exact(strategy: TrimStrategy) -> TrimArgs {
        TrimArgs {
            strategy,
            approx: false,
            limit: None,
            policy: RefPolicy::KeepRef,
        }
    }

    /// Approximate trim (`~`) with the default limit.
    pub fn approx(strategy: TrimStrategy) -> TrimArgs {
        TrimArgs {
            strategy,
            approx: true,
            limit: None,
            policy: RefPolicy::KeepRef,
        }
    }

    /// Refuses LIMIT with an exact trim, as Redis does.
    ///
    /// # Errors
    /// [`StreamError::LimitWithoutApprox`].
    pub fn validate(&self) -> Result<(), StreamError> {
        if self.limit.is_some() && !self.approx {
            return Err(StreamError::LimitWithoutApprox);
        }
        Ok(())
    }

    /// The work limit Redis uses: LIMIT if given, else 100 x stream-node-max-entries
    /// (10000 if that is 0, at most 1000000) for `~`, unlimited (0) for exact trims.
    pub fn effective_limit(&self, limits: &NodeLimits) -> u64 {
        match (self.limit, self.approx) {
            (Some(l), _) => l,
            (None, true) => {
                let l = limits.max_entries.saturating_mul(100);
                if l == 0 { 10_000 } else { l.min(1_000_000) }
            }
            (None, false) => 0,
        }
    }
}

impl Stream {
    /// XTRIM (and XADD's trim step): returns the number of entries removed.
    ///
    /// # Errors
    /// [`StreamError::LimitWithoutApprox`]; [`StreamError::Storage`] when a node the trim
    /// must look into cannot be read back. Nothing changes on error.
    pub fn trim(
        &mut self,
        args: &TrimArgs,
        limits: &NodeLimits,
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        args.validate()?;
        self.trim_unchecked(args, args.effective_limit(limits), out)
    }

    /// [`Stream::trim`] without LIMIT's check, with `limit` the work limit (retention
    /// limits an exact trim, which XTRIM cannot).
    pub(crate) fn trim_unchecked(
        &mut self,
        args: &TrimArgs,
        limit: u64,
        out: &mut Vec<Mutation>,
    ) -> Result<u64, StreamError> {
        if args.policy != RefPolicy::KeepRef {
            return self.trim_with_policy(args, limit, out);
        }
        let plan = self.plan_trim(args, limit);
        if let Some(master) = plan.cut_into {
            self.hydrate(master)?;
        }
        let mut removed = 0u64;
        // Highest ID (tombstones included) of what was dropped or flagged: replaying
        // "drop/flag everything up to here" rebuilds the same nodes.
        let mut through: Option<StreamId> = None;
        // Entry slots (tombstones included) of the nodes dropped whole: what storage holds
        // of them, which decides whether it removes them at once or in the background.
        let mut dropped = 0u64;
        if plan.whole_nodes > 0 {
            let first_kept = self.nodes.keys().nth(plan.whole_nodes).copied();
            for node in self.remove_nodes_before(first_kept).into_values() {
                self.length -= node.live;
                removed += node.live;
                dropped += node.live + node.deleted;
                through = Some(node.last_id());
            }
        }
        if let Some(master) = plan.cut_into
            && let Some(node) = self.nodes.get_mut(&master)
        {
            // Flag entries inside the head node one by one. Only those the trim reaches are
            // read: XADD MAXLEN at a steady length flags one entry of a full node per call.
            let mut left = match args.strategy {
                TrimStrategy::MaxLen(max) => self.length.saturating_sub(max),
                TrimStrategy::MinId(_) => u64::MAX,
            };
            let mut raws = Vec::new();
            for e in node.iter(master) {
                let reached = match args.strategy {
                    TrimStrategy::MaxLen(_) => left == 0,
                    TrimStrategy::MinId(min) => e.id >= min,
                };
                if reached {
                    break;
                }
                left -= u64::from(!e.is_deleted());
                raws.push(e);
            }
            for e in raws {
                if !e.is_deleted() {
                    node.mark_deleted(master, &e);
                    self.length -= 1;
                    removed += 1;
                    through = Some(e.id);
                }
            }
        }
        self.refresh_first_id();
        if let Some(through) = through {
            out.push(Mutation::Trimmed { through, dropped });
        }
        self.shed(None);
        Ok(removed)
    }

    /// Works out a trim from node counts alone: how many head nodes go whole, and which
    /// node (if any) an exact trim then cuts into entry by entry.
    fn plan_trim(&self, args: &TrimArgs, limit: u64) -> TrimPlan {
        let mut plan = TrimPlan::default();
        let mut length = self.length;
        let mut removed = 0u64;
        for (&master, node) in &self.nodes {
            if let TrimStrategy::MaxLen(max) = args.strategy
                && length <= max
            {
                break;
            }
            if limit != 0 && removed + node.live > limit {
                break;
            }
            let remove_node = match args.strategy {
                TrimStrategy::MaxLen(max) => length - node.live >= max,
                TrimStrategy::MinId(min) => node.last_id() < min,
            };
            if remove_node {
                length -= node.live;
                removed += node.live;
                plan.whole_nodes += 1;
                continue;
            }
            if !args.approx {
                plan.cut_into = Some(master);
            }
            break;
        }
        plan
    }

    /// Replays a trim: drops head nodes whose last ID is `<= through` and flags live
    /// entries `<= through` in the next one.
    pub(crate) fn trim_through(&mut self, through: StreamId) {
        let first_kept = self
            .nodes
            .iter()
            .find(|(_, node)| node.last_id() > through)
            .map(|(&master, _)| master);
        for node in self.remove_nodes_before(first_kept).into_values() {
            self.length -= node.live;
        }
        if let Some(master) = first_kept
            && self.hydrate(master).is_ok()
            && let Some(node) = self.nodes.get_mut(&master)
        {
            let raws: Vec<_> = node.iter(master).take_while(|e| e.id <= through).collect();
            for e in raws {
                if !e.is_deleted() {
                    node.mark_deleted(master, &e);
                    self.length -= 1;
                }
            }
        }
        self.refresh_first_id();
    }
}

/// What a trim will do, decided before anything changes.
#[derive(Default)]
struct TrimPlan {
    /// Head nodes removed whole.
    whole_nodes: usize,
    /// The node an exact trim flags entries in, after the whole ones went.
    cut_into: Option<StreamId>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::id::IdSpec;

    fn filled(n: u64) -> Stream {
        let mut s = Stream::new();
        for i in 1..=n {
            s.add(
                IdSpec::Explicit(StreamId::new(i, 0)),
                &[Bytes::from_static(b"f"), Bytes::from_static(b"v")],
                None,
                0,
                &NodeLimits::default(),
                &mut Vec::new(),
            )
            .unwrap();
        }
        s
    }

    fn trim(s: &mut Stream, args: TrimArgs) -> u64 {
        s.trim(&args, &NodeLimits::default(), &mut Vec::new())
            .unwrap()
    }

    #[test]
    fn exact_maxlen_trims_to_the_entry() {
        let mut s = filled(250);
        assert_eq!(trim(&mut s, TrimArgs::exact(TrimStrategy::MaxLen(10))), 240);
        assert_eq!(s.len(), 10);
        assert_eq!(s.first_id(), StreamId::new(241, 0));
        assert_eq!(s.node_count(), 1);
    }

    #[test]
    fn approx_maxlen_removes_whole_nodes_only() {
        let mut s = filled(250);
        assert_eq!(
            trim(&mut s, TrimArgs::approx(TrimStrategy::MaxLen(10))),
            200
        );
        assert_eq!(s.len(), 50);
        assert_eq!(trim(&mut s, TrimArgs::approx(TrimStrategy::MaxLen(10))), 0);
        let mut s = filled(250);
        assert_eq!(trim(&mut s, TrimArgs::approx(TrimStrategy::MaxLen(160))), 0);
        assert_eq!(
            trim(&mut s, TrimArgs::approx(TrimStrategy::MaxLen(150))),
            100
        );
    }

    #[test]
    fn approx_limit_caps_the_work() {
        let mut s = filled(1000);
        let args = TrimArgs {
            strategy: TrimStrategy::MaxLen(0),
            approx: true,
            limit: Some(250),
            policy: RefPolicy::KeepRef,
        };
        assert_eq!(trim(&mut s, args), 200);
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 3,
        };
        assert_eq!(
            TrimArgs::approx(TrimStrategy::MaxLen(0)).effective_limit(&limits),
            300
        );
        let big = NodeLimits {
            max_bytes: 4096,
            max_entries: 1 << 40,
        };
        assert_eq!(
            TrimArgs::approx(TrimStrategy::MaxLen(0)).effective_limit(&big),
            1_000_000
        );
    }

    #[test]
    fn limit_needs_approx() {
        let mut s = filled(3);
        let args = TrimArgs {
            strategy: TrimStrategy::MaxLen(0),
            approx: false,
            limit: Some(5),
            policy: RefPolicy::KeepRef,
        };
        assert_eq!(
            s.trim(&args, &NodeLimits::default(), &mut Vec::new()),
            Err(StreamError::LimitWithoutApprox)
        );
        assert_eq!(
            StreamError::LimitWithoutApprox.to_string(),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
    }

    #[test]
    fn minid_exact_and_approx() {
        let mut s = filled(250);
        assert_eq!(
            trim(
                &mut s,
                TrimArgs::approx(TrimStrategy::MinId(StreamId::new(150, 0)))
            ),
            100
        );
        assert_eq!(
            trim(
                &mut s,
                TrimArgs::exact(TrimStrategy::MinId(StreamId::new(150, 0)))
            ),
            49
        );
        assert_eq!(s.first_id(), StreamId::new(150, 0));
        assert_eq!(s.len(), 101);
    }

    #[test]
    fn minid_can_leave_an_all_tombstone_node_like_redis() {
        let mut s = filled(5);
        s.delete(&[StreamId::new(5, 0)], &mut Vec::new()).unwrap();
        let removed = trim(
            &mut s,
            TrimArgs::exact(TrimStrategy::MinId(StreamId::new(5, 0))),
        );
        assert_eq!(removed, 4);
        assert_eq!(s.len(), 0);
        assert_eq!(s.node_count(), 1);
        assert_eq!(s.first_id(), StreamId::MIN);
    }
}
