//! The reply caps of XREAD / XREADGROUP `MAXCOUNT n MAXSIZE bytes` (Redis 8.10): one budget
//! shared by every stream a command lists, spent in the order the streams are listed.

use bytes::Bytes;

use crate::entry::Entry;
use crate::id::StreamId;

/// What one entry costs against MAXSIZE, in reply bytes: the caller knows the protocol.
/// `fields` is `None` for a deleted entry (a nil body in a history read).
pub type EntryCost = fn(StreamId, Option<&[Bytes]>) -> u64;

/// A read's budget over all its streams.
///
/// MAXCOUNT caps the entries of the whole reply; MAXSIZE is a soft cap on its bytes,
/// checked before each entry as Redis does: once what the reply holds reaches it, no
/// further entry is served, but an entry that starts below it is served whole. Neither
/// cap refuses the reply's first entry, so a reader always makes progress.
#[derive(Clone, Debug)]
pub struct ReadBudget {
    /// Entries still allowed by MAXCOUNT (`u64::MAX` without it).
    count_left: u64,
    /// MAXSIZE in bytes, 0 without it.
    max_size: u64,
    /// Reply bytes so far: committed streams' headers and every served entry.
    used: u64,
    /// The header of the stream being served, counted once its first entry is served.
    open_header: u64,
    /// Entries served so far, over all streams.
    served: u64,
    /// The cost of one entry.
    cost: EntryCost,
}

impl ReadBudget {
    /// A budget for `MAXCOUNT max_count MAXSIZE max_size` (0: that cap not given);
    /// `None` when neither is given, so reads without caps pay nothing for them.
    pub fn new(max_count: u64, max_size: u64, cost: EntryCost) -> Option<ReadBudget> {
        (max_count > 0 || max_size > 0).then_some(ReadBudget {
            count_left: if max_count > 0 { max_count } else { u64::MAX },
            max_size,
            used: 0,
            open_header: 0,
            served: 0,
            cost,
        })
    }

    /// Whether no further entry may be served: the remaining streams are skipped.
    pub fn exhausted(&self) -> bool {
        self.count_left == 0 || self.size_reached(0)
    }

    /// Starts serving a stream whose reply header (its key, framing) costs `header`
    /// bytes. The header counts from the stream's first served entry on; a stream that
    /// gets no entry adds nothing.
    pub fn open_stream(&mut self, header: u64) {
        self.open_header = header;
    }

    /// The largest number of entries the next stream may serve, given its own `limit`
    /// (COUNT; `u64::MAX` without it).
    pub fn limit(&self, limit: u64) -> u64 {
        limit.min(self.count_left)
    }

    /// Serves one entry if the budget allows it, and charges it.
    pub fn admit(&mut self, id: StreamId, fields: Option<&[Bytes]>) -> bool {
        if self.count_left == 0 || self.size_reached(self.open_header) {
            return false;
        }
        self.count_left -= 1;
        self.served += 1;
        self.used = self
            .used
            .saturating_add(std::mem::take(&mut self.open_header))
            .saturating_add((self.cost)(id, fields));
        true
    }

    /// Keeps the longest prefix of `entries` the budget allows (XREAD's entries are read
    /// before they are charged; nothing else depends on the ones dropped).
    pub fn take_entries(&mut self, entries: &mut Vec<Entry>) {
        let kept = entries
            .iter()
            .take_while(|e| self.admit(e.id, Some(&e.fields)))
            .count();
        entries.truncate(kept);
    }

    /// Entries served so far over all streams.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Reply bytes counted so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Whether MAXSIZE stops the next entry: only once something was served (the first
    /// entry of a reply is never refused), with `pending` bytes already in the reply.
    fn size_reached(&self, pending: u64) -> bool {
        self.max_size > 0 && self.served > 0 && self.used.saturating_add(pending) >= self.max_size
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Ten bytes per entry, whatever it holds.
    fn ten(_: StreamId, _: Option<&[Bytes]>) -> u64 {
        10
    }

    fn id(n: u64) -> StreamId {
        StreamId::new(n, 0)
    }

    fn entries(n: u64) -> Vec<Entry> {
        (1..=n)
            .map(|i| Entry {
                id: id(i),
                fields: vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")],
            })
            .collect()
    }

    #[test]
    fn no_caps_no_budget() {
        assert!(ReadBudget::new(0, 0, ten).is_none());
    }

    #[test]
    fn maxcount_spans_streams_in_order() {
        let mut b = ReadBudget::new(3, 0, ten).unwrap();
        assert_eq!(b.limit(2), 2);
        let mut first = entries(2);
        b.take_entries(&mut first);
        assert_eq!(first.len(), 2);
        assert_eq!(b.limit(2), 1);
        let mut second = entries(2);
        b.take_entries(&mut second);
        assert_eq!(second.len(), 1);
        assert!(b.exhausted());
        assert_eq!(b.served(), 3);
    }

    #[test]
    fn maxsize_is_checked_before_each_entry() {
        // 25 bytes: the third entry starts at 20 < 25 and is served whole (30 > 25).
        let mut b = ReadBudget::new(0, 25, ten).unwrap();
        let mut e = entries(5);
        b.take_entries(&mut e);
        assert_eq!(e.len(), 3);
        assert_eq!(b.used(), 30);
        assert!(b.exhausted());
        // Exactly reaching the cap stops too.
        let mut b = ReadBudget::new(0, 20, ten).unwrap();
        let mut e = entries(5);
        b.take_entries(&mut e);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn the_first_entry_is_never_refused() {
        let mut b = ReadBudget::new(0, 1, ten).unwrap();
        assert!(!b.exhausted());
        b.open_stream(100);
        assert!(b.admit(id(1), None));
        assert!(!b.admit(id(2), None));
        assert_eq!(b.used(), 110);
    }

    #[test]
    fn a_stream_header_counts_before_its_first_entry_and_only_if_served() {
        let mut b = ReadBudget::new(0, 25, ten).unwrap();
        b.open_stream(5);
        assert!(b.admit(id(1), None)); // 15
        b.open_stream(10);
        // 15 + 10 of the new stream's header reaches 25: the stream gets nothing...
        assert!(!b.admit(id(2), None));
        assert_eq!(b.used(), 15);
        // ...and its header is not counted, so a cheaper one still fits.
        b.open_stream(5);
        assert!(b.admit(id(3), None));
        assert_eq!(b.used(), 30);
    }
}
