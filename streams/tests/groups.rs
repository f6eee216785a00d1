//! Consumer-group commands' edge cases, through the public API.
#![allow(clippy::unwrap_used)]

use brooklet_streams::*;
use bytes::Bytes;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn stream_with(n: u64) -> Stream {
    let mut s = Stream::new();
    for i in 1..=n {
        s.add(
            IdSpec::Explicit(id(i, 0)),
            &[b("f"), b(&i.to_string())],
            None,
            0,
            &NodeLimits::default(),
            &mut Vec::new(),
        )
        .unwrap();
    }
    s
}

fn read(
    s: &mut Stream,
    c: &str,
    rid: ReadId,
    count: Option<u64>,
    noack: bool,
    now: u64,
) -> Option<Vec<MaybeEntry>> {
    s.read_group(
        b"k",
        b"g",
        c.as_bytes(),
        rid,
        count,
        noack,
        now,
        &mut Vec::new(),
    )
    .unwrap()
}

fn ids(v: &[MaybeEntry]) -> Vec<u64> {
    v.iter().map(|e| e.id.ms).collect()
}

#[test]
fn xgroup_create_setid_destroy_and_consumers() {
    let mut s = stream_with(3);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Last, None, &mut out)
        .unwrap();
    assert_eq!(s.group(b"g").unwrap().last_id(), id(3, 0));
    assert_eq!(
        s.create_group(b"g", GroupStartId::Last, None, &mut out),
        Err(StreamError::BusyGroup)
    );
    assert_eq!(
        StreamError::BusyGroup.to_string(),
        "BUSYGROUP Consumer Group name already exists"
    );
    assert_eq!(
        s.create_group(b"h", GroupStartId::Last, Some(-2), &mut out),
        Err(StreamError::EntriesReadInvalid)
    );
    let e = s
        .set_group_id(b"k", b"nope", GroupStartId::Id(id(0, 0)), None, &mut out)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "NOGROUP No such consumer group 'nope' for key name 'k'"
    );
    s.set_group_id(b"k", b"g", GroupStartId::Id(id(1, 0)), Some(1), &mut out)
        .unwrap();
    assert_eq!(s.group(b"g").unwrap().entries_read(), Some(1));
    assert_eq!(s.create_consumer(b"k", b"g", b"c", 5, &mut out), Ok(true));
    assert_eq!(s.create_consumer(b"k", b"g", b"c", 6, &mut out), Ok(false));
    assert_eq!(s.group(b"g").unwrap().consumers()[&b("c")].seen_time(), 5);
    read(&mut s, "c", ReadId::New, None, false, 10).unwrap();
    assert_eq!(s.delete_consumer(b"k", b"g", b"c", &mut out), Ok(2));
    assert!(s.group(b"g").unwrap().pending().is_empty());
    assert_eq!(s.delete_consumer(b"k", b"g", b"c", &mut out), Ok(0));
    assert!(s.destroy_group(b"g", &mut out));
    assert!(!s.destroy_group(b"g", &mut out));
}

#[test]
fn xreadgroup_new_entries_fill_the_pel_and_advance_the_group() {
    let mut s = stream_with(5);
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut Vec::new())
        .unwrap();
    let r = read(&mut s, "alice", ReadId::New, Some(2), false, 100).unwrap();
    assert_eq!(ids(&r), vec![1, 2]);
    assert_eq!(r[0].fields, Some(vec![b("f"), b("1")]));
    let g = s.group(b"g").unwrap();
    assert_eq!(g.last_id(), id(2, 0));
    // entries-read was unknown; it is estimated from the first entry.
    assert_eq!(g.entries_read(), Some(2));
    assert_eq!(
        g.pending()[&id(1, 0)],
        PendingEntry {
            consumer: b("alice"),
            delivery_time: 100,
            delivery_count: 1
        }
    );
    let c = &g.consumers()[&b("alice")];
    assert_eq!((c.seen_time(), c.active_time()), (100, Some(100)));
    let r = read(&mut s, "bob", ReadId::New, None, true, 200).unwrap();
    assert_eq!(ids(&r), vec![3, 4, 5]);
    let g = s.group(b"g").unwrap();
    assert_eq!(g.pending().len(), 2, "NOACK leaves the PEL alone");
    assert_eq!(g.consumers()[&b("bob")].active_time(), None);
    assert_eq!(g.entries_read(), Some(5));
    // Nothing new: None, but the consumer is still created and seen.
    assert!(read(&mut s, "carol", ReadId::New, None, false, 300).is_none());
    assert_eq!(
        s.group(b"g").unwrap().consumers()[&b("carol")].seen_time(),
        300
    );
}

#[test]
fn xreadgroup_history_returns_own_pending_with_nil_for_deleted() {
    let mut s = stream_with(4);
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut Vec::new())
        .unwrap();
    read(&mut s, "a", ReadId::New, Some(3), false, 10).unwrap();
    read(&mut s, "b", ReadId::New, None, false, 10).unwrap();
    s.delete(&[id(2, 0)], &mut Vec::new()).unwrap();
    let r = read(&mut s, "a", ReadId::Id(StreamId::MIN), None, false, 50).unwrap();
    assert_eq!(ids(&r), vec![1, 2, 3]);
    assert_eq!(r[1].fields, None);
    // History start is exclusive.
    let r = read(&mut s, "a", ReadId::Id(id(1, 0)), Some(1), false, 60).unwrap();
    assert_eq!(ids(&r), vec![2]);
    let g = s.group(b"g").unwrap();
    // Redis's streamReplyWithRangeFromConsumerPEL counts a re-read as a delivery.
    assert_eq!(g.pending()[&id(1, 0)].delivery_count, 2);
    assert_eq!(g.pending()[&id(1, 0)].delivery_time, 50);
    assert_eq!(g.pending()[&id(2, 0)].delivery_count, 1);
    assert_eq!(
        read(&mut s, "nobody", ReadId::Id(StreamId::MIN), None, false, 70),
        Some(vec![])
    );
}

#[test]
fn xreadgroup_errors() {
    let mut s = stream_with(1);
    let e = s
        .read_group(
            b"k",
            b"g",
            b"c",
            ReadId::New,
            None,
            false,
            0,
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option"
    );
    s.create_group(b"g", GroupStartId::Last, None, &mut Vec::new())
        .unwrap();
    let e = s
        .read_group(
            b"k",
            b"g",
            b"c",
            ReadId::Last,
            None,
            false,
            0,
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(e, StreamError::DollarInXReadGroup);
}

#[test]
fn xack_counts_repeated_ids_once() {
    let mut s = stream_with(3);
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut Vec::new())
        .unwrap();
    read(&mut s, "a", ReadId::New, None, false, 0).unwrap();
    assert_eq!(
        s.ack(b"g", &[id(1, 0), id(1, 0), id(9, 0)], &mut Vec::new()),
        1
    );
    assert_eq!(s.ack(b"nogroup", &[id(2, 0)], &mut Vec::new()), 0);
    let sum = s.pending_summary(b"k", b"g").unwrap();
    assert_eq!(
        sum,
        PendingSummary {
            count: 2,
            bounds: Some((id(2, 0), id(3, 0))),
            consumers: vec![(b("a"), 2)]
        }
    );
}

#[test]
fn xpending_extended_filters() {
    let mut s = stream_with(6);
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut Vec::new())
        .unwrap();
    read(&mut s, "a", ReadId::New, Some(3), false, 100).unwrap();
    read(&mut s, "b", ReadId::New, None, false, 200).unwrap();
    let args = |min_idle_ms, start, end, count, consumer: Option<&str>| PendingRangeArgs {
        min_idle_ms,
        start,
        end,
        count,
        consumer: consumer.map(b),
    };
    let r = s
        .pending_range(
            b"k",
            b"g",
            &args(0, StreamId::MIN, StreamId::MAX, 10, None),
            250,
        )
        .unwrap();
    assert_eq!(r.len(), 6);
    assert_eq!(
        r[0],
        PendingInfo {
            id: id(1, 0),
            consumer: b("a"),
            idle_ms: 150,
            delivery_count: 1
        }
    );
    let r = s
        .pending_range(
            b"k",
            b"g",
            &args(100, StreamId::MIN, StreamId::MAX, 10, None),
            250,
        )
        .unwrap();
    assert_eq!(r.len(), 3);
    let r = s
        .pending_range(b"k", b"g", &args(0, id(2, 0), id(4, 0), 10, Some("b")), 250)
        .unwrap();
    assert_eq!(r.iter().map(|p| p.id.ms).collect::<Vec<_>>(), vec![4]);
    let r = s
        .pending_range(
            b"k",
            b"g",
            &args(0, StreamId::MIN, StreamId::MAX, 2, None),
            250,
        )
        .unwrap();
    assert_eq!(r.len(), 2);
    assert!(
        s.pending_range(
            b"k",
            b"g",
            &args(0, StreamId::MIN, StreamId::MAX, 10, Some("zz")),
            250
        )
        .unwrap()
        .is_empty()
    );
    let e = s.pending_summary(b"k", b"x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "NOGROUP No such key 'k' or consumer group 'x'"
    );
}

fn claim_args(min_idle_ms: i64, ids: Vec<StreamId>) -> ClaimArgs {
    ClaimArgs {
        min_idle_ms,
        ids,
        delivery_time: None,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: None,
    }
}

#[test]
fn xclaim_options() {
    let mut s = stream_with(5);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    read(&mut s, "a", ReadId::New, Some(4), false, 100).unwrap();
    // Not idle enough.
    let r = s
        .claim(
            b"k",
            b"g",
            b"b",
            &claim_args(1000, vec![id(1, 0)]),
            500,
            &mut out,
        )
        .unwrap();
    assert!(r.is_empty());
    let r = s
        .claim(
            b"k",
            b"g",
            b"b",
            &claim_args(300, vec![id(1, 0), id(2, 0)]),
            500,
            &mut out,
        )
        .unwrap();
    assert_eq!(r.ids(), vec![id(1, 0), id(2, 0)]);
    let g = s.group(b"g").unwrap();
    assert_eq!(
        g.pending()[&id(1, 0)],
        PendingEntry {
            consumer: b("b"),
            delivery_time: 500,
            delivery_count: 2
        }
    );
    assert_eq!(g.consumers()[&b("a")].pending().len(), 2);
    // JUSTID does not count a delivery; IDLE sets the delivery time back.
    let mut a = claim_args(0, vec![id(3, 0)]);
    a.just_id = true;
    a.delivery_time = Some(DeliveryTime::Idle(50));
    assert_eq!(
        s.claim(b"k", b"g", b"b", &a, 500, &mut out).unwrap(),
        Claimed::Ids(vec![id(3, 0)])
    );
    assert_eq!(
        s.group(b"g").unwrap().pending()[&id(3, 0)].delivery_count,
        1
    );
    assert_eq!(
        s.group(b"g").unwrap().pending()[&id(3, 0)].delivery_time,
        450
    );
    // RETRYCOUNT, TIME in the future becomes now, LASTID raises last-delivered.
    let mut a = claim_args(0, vec![id(4, 0)]);
    a.retry_count = Some(7);
    a.delivery_time = Some(DeliveryTime::Time(10_000));
    a.last_id = Some(id(9, 0));
    s.claim(b"k", b"g", b"b", &a, 500, &mut out).unwrap();
    let g = s.group(b"g").unwrap();
    assert_eq!(
        (
            g.pending()[&id(4, 0)].delivery_count,
            g.pending()[&id(4, 0)].delivery_time
        ),
        (7, 500)
    );
    assert_eq!(g.last_id(), id(9, 0));
    // FORCE creates a PEL entry for an existing, not pending entry; not for a missing one.
    let mut a = claim_args(0, vec![id(5, 0), id(77, 0)]);
    a.force = true;
    assert_eq!(
        s.claim(b"k", b"g", b"c", &a, 600, &mut out).unwrap().ids(),
        vec![id(5, 0)]
    );
    assert_eq!(
        s.group(b"g").unwrap().pending()[&id(5, 0)].delivery_count,
        2
    );
    // A deleted entry leaves the PEL and is not returned.
    s.delete(&[id(1, 0)], &mut out).unwrap();
    assert!(
        s.claim(
            b"k",
            b"g",
            b"c",
            &claim_args(0, vec![id(1, 0)]),
            700,
            &mut out
        )
        .unwrap()
        .is_empty()
    );
    assert!(!s.group(b"g").unwrap().pending().contains_key(&id(1, 0)));
    assert!(
        !s.group(b"g").unwrap().consumers()[&b("b")]
            .pending()
            .contains(&id(1, 0))
    );
    let e = s
        .claim(b"k", b"zz", b"c", &claim_args(0, vec![]), 0, &mut out)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "NOGROUP No such key 'k' or consumer group 'zz'"
    );
}

#[test]
fn xautoclaim_cursor_and_deleted() {
    let mut s = stream_with(10);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    read(&mut s, "a", ReadId::New, None, false, 100).unwrap();
    s.delete(&[id(2, 0), id(3, 0)], &mut out).unwrap();
    let args = AutoClaimArgs {
        min_idle_ms: 10,
        start: StreamId::MIN,
        count: 3,
        just_id: false,
    };
    let r = s
        .auto_claim(b"k", b"g", b"b", &args, 200, &mut out)
        .unwrap();
    // 1 claimed, 2 and 3 deleted: count 3 used up; the cursor is the next PEL entry.
    assert_eq!(r.claimed.ids(), vec![id(1, 0)]);
    assert_eq!(r.deleted, vec![id(2, 0), id(3, 0)]);
    assert_eq!(r.next, id(4, 0));
    let args = AutoClaimArgs {
        min_idle_ms: 10,
        start: r.next,
        count: 100,
        just_id: true,
    };
    let r = s
        .auto_claim(b"k", b"g", b"b", &args, 200, &mut out)
        .unwrap();
    assert_eq!(r.claimed.len(), 7);
    assert_eq!(r.next, StreamId::MIN);
    assert_eq!(
        s.group(b"g").unwrap().pending()[&id(4, 0)].delivery_count,
        1
    );
    let args = AutoClaimArgs {
        min_idle_ms: 0,
        start: StreamId::MIN,
        count: 0,
        just_id: false,
    };
    assert_eq!(
        s.auto_claim(b"k", b"g", b"b", &args, 200, &mut out)
            .unwrap_err()
            .to_string(),
        "ERR COUNT must be > 0"
    );
    // Idle filter: nothing idle yet, but attempts are spent and the cursor moves on.
    let args = AutoClaimArgs {
        min_idle_ms: 1000,
        start: StreamId::MIN,
        count: 1,
        just_id: false,
    };
    let r = s
        .auto_claim(b"k", b"g", b"c", &args, 250, &mut out)
        .unwrap();
    assert!(r.claimed.is_empty());
    assert_eq!(r.next, StreamId::MIN);
}

#[test]
fn lag_and_entries_read_follow_redis_rules() {
    let mut s = stream_with(5);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    let gi = &s.groups_info()[0];
    assert_eq!((gi.entries_read, gi.lag), (None, Some(5)));
    read(&mut s, "a", ReadId::New, Some(2), false, 0).unwrap();
    assert_eq!(s.groups_info()[0].lag, Some(3));
    // A tombstone after the group's position makes the lag unknown.
    s.delete(&[id(4, 0)], &mut out).unwrap();
    assert_eq!(s.groups_info()[0].lag, None);
    read(&mut s, "a", ReadId::New, None, false, 0).unwrap();
    let gi = &s.groups_info()[0];
    assert_eq!((gi.entries_read, gi.lag), (Some(5), Some(0)));
    s.create_group(b"h", GroupStartId::Last, None, &mut out)
        .unwrap();
    assert_eq!(s.groups_info()[1].lag, Some(0));
    // Empty never-used stream: lag 0.
    let mut e = Stream::new();
    e.create_group(b"g", GroupStartId::Last, None, &mut out)
        .unwrap();
    assert_eq!(e.groups_info()[0].lag, Some(0));
}

#[test]
fn entries_read_beyond_entries_added_is_capped_so_lag_is_zero() {
    // Redis 8: XADD e 1 a 1, XADD e 2 a 1, XGROUP CREATE e g 1 ENTRIESREAD 5 -> entries-read
    // 2, lag 0 (Redis 7.4 kept 5 and showed lag -3).
    let mut s = stream_with(2);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(id(1, 0)), Some(5), &mut out)
        .unwrap();
    assert_eq!(s.groups_info()[0].entries_read, Some(2));
    assert_eq!(s.groups_info()[0].lag, Some(0));
    assert_eq!(s.info_full(0).unwrap().groups[0].lag, Some(0));
    s.set_group_id(b"e", b"g", GroupStartId::Last, Some(9), &mut out)
        .unwrap();
    assert_eq!(s.groups_info()[0].entries_read, Some(2));
    assert_eq!(s.groups_info()[0].lag, Some(0));
    // Once the stream is empty the lag is 0, whatever the counter says.
    let mut e = stream_with(1);
    e.delete(&[id(1, 0)], &mut out).unwrap();
    e.create_group(b"g", GroupStartId::Id(StreamId::MIN), Some(5), &mut out)
        .unwrap();
    assert_eq!(e.groups_info()[0].lag, Some(0));
}

#[test]
fn xinfo_views() {
    let mut s = stream_with(3);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    s.create_consumer(b"k", b"g", b"idle", 100, &mut out)
        .unwrap();
    read(&mut s, "a", ReadId::New, Some(2), false, 100).unwrap();
    let info = s.info().unwrap();
    assert_eq!((info.length, info.radix_tree_keys, info.groups), (3, 1, 1));
    // One key: a compressed root and a leaf, as Redis reports.
    assert_eq!(info.radix_tree_nodes, 2);
    assert_eq!(Stream::new().info().unwrap().radix_tree_nodes, 1);
    let mut two = stream_with(101);
    assert_eq!(two.info().unwrap().radix_tree_keys, 2);
    // Root (compressed prefix), the branch, and per key a compressed tail plus a leaf.
    assert_eq!(two.info().unwrap().radix_tree_nodes, 6);
    two.delete(&[id(101, 0)], &mut Vec::new()).unwrap();
    assert_eq!(two.info().unwrap().radix_tree_nodes, 2);
    assert_eq!(info.first_entry.unwrap().id, id(1, 0));
    assert_eq!(info.last_entry.unwrap().id, id(3, 0));
    assert_eq!(info.recorded_first_entry_id, id(1, 0));
    let c = s.consumers_info(b"k", b"g", 150).unwrap();
    assert_eq!(
        c[0],
        ConsumerInfo {
            name: b("a"),
            pending: 2,
            idle_ms: 50,
            inactive_ms: 50
        }
    );
    assert_eq!(
        c[1],
        ConsumerInfo {
            name: b("idle"),
            pending: 0,
            idle_ms: 50,
            inactive_ms: -1
        }
    );
    let full = s.info_full(1).unwrap();
    assert_eq!(full.entries.len(), 1);
    assert_eq!(full.groups[0].pel_count, 2);
    assert_eq!(full.groups[0].pending.len(), 1);
    assert_eq!(
        full.groups[0].consumers[0].pending,
        vec![(id(1, 0), 100, 1)]
    );
    assert_eq!(s.info_full(0).unwrap().entries.len(), 3);
    let e = s.consumers_info(b"k", b"zz", 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "NOGROUP No such consumer group 'zz' for key name 'k'"
    );
}

#[test]
fn replay_rebuilds_identical_state() {
    let mut s = Stream::new();
    let mut out = Vec::new();
    let limits = NodeLimits {
        max_bytes: 4096,
        max_entries: 4,
    };
    for i in 0..30u64 {
        s.add(
            IdSpec::Auto,
            &[b("f"), b(&i.to_string())],
            None,
            1000 + i / 2,
            &limits,
            &mut out,
        )
        .unwrap();
    }
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    s.read_group(b"k", b"g", b"a", ReadId::New, Some(10), false, 5, &mut out)
        .unwrap();
    s.delete(&[id(1000, 1), id(1003, 0)], &mut out).unwrap();
    s.trim(
        &TrimArgs::approx(TrimStrategy::MaxLen(20)),
        &limits,
        &mut out,
    )
    .unwrap();
    s.trim(
        &TrimArgs::exact(TrimStrategy::MinId(id(1005, 1))),
        &limits,
        &mut out,
    )
    .unwrap();
    s.claim(
        b"k",
        b"g",
        b"b",
        &claim_args(0, vec![id(1005, 1), id(1000, 0)]),
        9,
        &mut out,
    )
    .unwrap();
    s.set_id(id(2000, 0), Some(99), None, &mut out).unwrap();
    s.delete_consumer(b"k", b"g", b"a", &mut out).unwrap();
    let mut r = Stream::new();
    for m in &out {
        r.apply(m);
    }
    assert_eq!(r, s);
}

#[test]
fn a_deletion_past_the_group_makes_its_counter_unknown() {
    // Redis 7.4: entries 1..5, group at 0, one read, XDEL 2, another read: the group has
    // read 1 and 3 but not the deleted 2, which the old counting rule would miss.
    let mut s = stream_with(5);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    read(&mut s, "c", ReadId::New, Some(1), false, 0).unwrap();
    s.delete(&[id(2, 0)], &mut out).unwrap();
    read(&mut s, "c", ReadId::New, Some(1), false, 0).unwrap();
    let gi = &s.groups_info()[0];
    assert_eq!((gi.entries_read, gi.lag), (None, None));
}

#[test]
fn a_trim_past_the_group_leaves_everything_left_as_lag() {
    // Redis 7.4: entries 1..5, group at 0, one read, XTRIM MAXLEN 1: lag 1 (only 5 is left);
    // reading it then gives entries-read 5 and lag 0.
    let mut s = stream_with(5);
    let mut out = Vec::new();
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut out)
        .unwrap();
    read(&mut s, "c", ReadId::New, Some(1), false, 0).unwrap();
    s.trim(
        &TrimArgs::exact(TrimStrategy::MaxLen(1)),
        &NodeLimits::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(s.groups_info()[0].lag, Some(1));
    read(&mut s, "c", ReadId::New, Some(1), false, 0).unwrap();
    let gi = &s.groups_info()[0];
    assert_eq!((gi.entries_read, gi.lag), (Some(5), Some(0)));
}

fn claim_read(
    s: &mut Stream,
    c: &str,
    min_idle: u64,
    count: Option<u64>,
    noack: bool,
    now: u64,
) -> Option<Vec<(u64, u64, u64)>> {
    s.read_group_claim(
        b"k",
        b"g",
        c.as_bytes(),
        min_idle,
        count,
        noack,
        now,
        None,
        &mut Vec::new(),
    )
    .unwrap()
    .map(|v| {
        v.iter()
            .map(|r| (r.entry.id.ms, r.idle_ms, r.prior_deliveries))
            .collect()
    })
}

#[test]
fn xreadgroup_claim_serves_idle_pending_first_longest_idle_first() {
    let mut s = stream_with(6);
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut Vec::new())
        .unwrap();
    // 1 and 2 delivered at 100, 3 at 50: 3 is the longest idle.
    read(&mut s, "a", ReadId::New, Some(2), false, 100);
    read(&mut s, "a", ReadId::New, Some(1), false, 50);
    // At 150 with min-idle 60: 3 (idle 100), then 1 and 2 (idle 50) are too recent.
    assert_eq!(
        claim_read(&mut s, "b", 60, Some(3), false, 150),
        Some(vec![(3, 100, 1), (4, 0, 0), (5, 0, 0)])
    );
    let g = s.group(b"g").unwrap();
    let p3 = &g.pending()[&id(3, 0)];
    assert_eq!(
        (&p3.consumer[..], p3.delivery_time, p3.delivery_count),
        (&b"b"[..], 150, 2)
    );
    assert!(g.consumers()[&b("a")].pending().contains(&id(1, 0)));
    assert!(!g.consumers()[&b("a")].pending().contains(&id(3, 0)));
    // COUNT is shared: both idle entries fill it, nothing new is read.
    assert_eq!(
        claim_read(&mut s, "c", 0, Some(2), false, 200),
        Some(vec![(1, 100, 1), (2, 100, 1)])
    );
    assert_eq!(s.group(b"g").unwrap().last_id(), id(5, 0));
    // NOACK leaves new entries out of the PEL but claimed ones change owner.
    assert_eq!(
        claim_read(&mut s, "d", 60, None, true, 400),
        Some(vec![
            (3, 250, 2),
            (4, 250, 1),
            (5, 250, 1),
            (1, 200, 2),
            (2, 200, 2),
            (6, 0, 0)
        ])
    );
    let g = s.group(b"g").unwrap();
    assert!(!g.pending().contains_key(&id(6, 0)));
    assert_eq!(g.consumers()[&b("d")].pending().len(), 5);
    // Nothing idle enough and nothing new: None, so the caller blocks.
    assert_eq!(claim_read(&mut s, "d", 1000, None, false, 401), None);
}

#[test]
fn xreadgroup_claim_skips_deleted_entries_and_respects_the_budget() {
    let mut s = stream_with(3);
    s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut Vec::new())
        .unwrap();
    read(&mut s, "a", ReadId::New, None, false, 10);
    assert_eq!(s.delete(&[id(1, 0)], &mut Vec::new()), Ok(1));
    fn one(_: StreamId, _: Option<&[Bytes]>) -> u64 {
        1
    }
    let mut budget = ReadBudget::new(1, 0, one);
    let got = s
        .read_group_claim(
            b"k",
            b"g",
            b"b",
            0,
            None,
            false,
            20,
            budget.as_mut(),
            &mut Vec::new(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].entry.id, id(2, 0));
    let g = s.group(b"g").unwrap();
    // The deleted entry stays pending for its owner; 3 was left out by MAXCOUNT.
    assert_eq!(&g.pending()[&id(1, 0)].consumer[..], b"a");
    assert_eq!(&g.pending()[&id(3, 0)].consumer[..], b"a");
    assert_eq!(g.pending()[&id(3, 0)].delivery_count, 1);
}
