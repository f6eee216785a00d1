//! Each record kind written and read back, and truncation detected.

#![allow(clippy::unwrap_used)]

use brooklet_streams::{DeadLetterConfig, GroupCounters, Mutation, NodeMeta, StreamId, StreamMeta};
use bytes::Bytes;

use super::*;

#[test]
fn entries_round_trip_and_truncation_is_detected() {
    let fields = vec![Bytes::from("f"), Bytes::from(""), Bytes::from("v\r\n\x00")];
    let enc = encode_entry(&fields, true);
    assert!(matches!(decode_entry(&enc), Ok((f, NEW_NODE)) if f == fields));
    assert!(decode_entry(&enc[..enc.len() - 1]).is_err());
}

#[test]
fn node_records_round_trip_and_truncation_is_detected() {
    let node = NodeMeta {
        master: StreamId::new(5, 0),
        last: StreamId::new(9, 3),
        live: 7,
        deleted: 2,
        first_live: StreamId::new(5, 1),
        last_live: StreamId::new(9, 2),
    };
    let enc = encode_node(&node);
    assert!(matches!(decode_node(node.master, &enc), Ok(n) if n == node));
    assert!(decode_node(node.master, &enc[..enc.len() - 1]).is_err());
}

#[test]
fn stream_records_round_trip() {
    let meta = StreamMeta {
        last_id: StreamId::new(9, 1),
        entries_added: 12,
        max_deleted_id: StreamId::new(3, 0),
    };
    // A record from before format 9 has no IDMP section.
    let enc = encode_stream(&meta, 77, &[]);
    assert_eq!(enc.len(), 48);
    assert!(matches!(decode_stream(&enc), Ok((m, 77, (None, r))) if m == meta && !r.is_on()));
    assert!(decode_stream(&enc[..47]).is_err());
}

/// A stream record's IDMP section and a logged append's IDMP parts come back as they went
/// in; a torn section is refused.
#[test]
fn idmp_round_trips() {
    use brooklet_streams::{Idmp, IdmpConfig, Iid, Mutation, auto_iid};
    let meta = StreamMeta {
        last_id: StreamId::new(9, 1),
        entries_added: 12,
        max_deleted_id: StreamId::MIN,
    };
    let config = IdmpConfig {
        duration: 7,
        maxsize: 3,
    };
    let idmp = Idmp::restore(
        config,
        5,
        2,
        vec![
            (
                Bytes::from("p1"),
                vec![
                    (Bytes::from("a"), StreamId::new(1, 0)),
                    (Bytes::from("b"), StreamId::new(2, 0)),
                ],
            ),
            (
                Bytes::from("\0p"),
                vec![(Bytes::new(), StreamId::new(3, 0))],
            ),
        ],
    );
    let enc = encode_stream(&meta, 4, &encode_idmp(&idmp));
    let Ok((m, 4, (Some(back), _))) = decode_stream(&enc) else {
        panic!("stream record with IDMP did not decode");
    };
    assert_eq!(m, meta);
    assert_eq!(back, idmp);
    assert!(decode_stream(&enc[..enc.len() - 1]).is_err());

    let fields = [Bytes::from("f"), Bytes::from("v")];
    let explicit = Mutation::IdmpAdded {
        pid: Iid::new(b"p"),
        iid: Iid::new(b"i"),
        id: StreamId::new(5, 5),
        added: 300,
        auto: false,
    };
    let auto = Mutation::IdmpAdded {
        pid: Iid::new(b"producer"),
        iid: Iid::new(&auto_iid(&fields)),
        id: StreamId::new(5, 5),
        added: u64::MAX,
        auto: true,
    };
    for (added, len) in [(&explicit, 1 + 2 + 2 + 2), (&auto, 1 + 9 + 10)] {
        let mut out = Vec::new();
        put_append_idmp(&mut out, Some(added), Some(config));
        assert_eq!(out.len(), 9 + len, "{added:?}");
        let mut r = Reader::new(&out, "test");
        let (m, c) = read_append_idmp(&mut r, StreamId::new(5, 5), &fields)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.as_ref(), Some(added));
        assert_eq!(c, Some(config));
        for cut in 1..out.len() - 9 {
            let mut r = Reader::new(&out[..out.len() - cut], "test");
            assert!(read_append_idmp(&mut r, StreamId::new(5, 5), &fields).is_err());
        }
    }
    // The first encoding (tag 0x31: u32 lengths, u64 count), as format 9 logs hold it.
    let mut old = vec![0x31];
    for b in [&b"p"[..], b"i"] {
        old.extend_from_slice(&(b.len() as u32).to_be_bytes());
        old.extend_from_slice(b);
    }
    old.extend_from_slice(&300u64.to_be_bytes());
    let mut r = Reader::new(&old, "test");
    let (m, c) =
        read_append_idmp(&mut r, StreamId::new(5, 5), &fields).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m, Some(explicit));
    assert_eq!(c, None);

    let dup = Mutation::IdmpDuplicates { count: 41 };
    let mut out = Vec::new();
    put_group_change(&mut out, &dup);
    let mut r = Reader::new(&out, "test");
    let back = read_group_change(&mut r, Bytes::copy_from_slice).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, dup);
}

/// Every kind of group change comes back as it went in, and a change that sets a record
/// carries that record exactly as fjall holds it.
#[test]
fn group_changes_round_trip_and_carry_fjall_records() {
    let g = Bytes::from("workers");
    let c = Bytes::from("alice");
    let id = StreamId::new(5, 2);
    let changes = [
        Mutation::GroupCreated {
            group: g.clone(),
            last_id: id,
            entries_read: Some(3),
        },
        Mutation::GroupUpdated {
            group: g.clone(),
            last_id: id,
            entries_read: None,
        },
        Mutation::GroupDestroyed { group: g.clone() },
        Mutation::ConsumerUpserted {
            group: g.clone(),
            consumer: c.clone(),
            seen_time: 10,
            active_time: Some(11),
        },
        Mutation::ConsumerDeleted {
            group: g.clone(),
            consumer: c.clone(),
        },
        Mutation::PendingUpserted {
            group: g.clone(),
            id,
            consumer: c.clone(),
            delivery_time: 12,
            delivery_count: 2,
        },
        Mutation::PendingRemoved {
            group: g.clone(),
            id,
        },
        Mutation::PendingNacked {
            group: g.clone(),
            id,
            delivery_count: i64::MAX as u64,
            seq: 41,
        },
        Mutation::GroupCounters {
            group: g.clone(),
            counters: GroupCounters {
                delivered: 9,
                acked: 4,
                nacked: 2,
                dead_lettered: 1,
            },
        },
        Mutation::GroupDlqSet {
            group: g.clone(),
            dlq: Some(DeadLetterConfig {
                key: Bytes::from("dlq"),
                max_deliveries: 5,
            }),
        },
        Mutation::GroupDlqSet {
            group: g.clone(),
            dlq: None,
        },
    ];
    for m in &changes {
        let mut out = Vec::new();
        put_group_change(&mut out, m);
        let mut r = Reader::new(&out, "change");
        assert_eq!(
            &read_group_change(&mut r, Bytes::copy_from_slice).unwrap(),
            m
        );
        assert!(r.is_empty());
        if let Some(value) = group_record_value(m) {
            assert!(out.ends_with(&value), "{m:?}");
        }
        assert!(
            read_group_change(
                &mut Reader::new(&out[..out.len() - 1], "change"),
                Bytes::copy_from_slice
            )
            .is_err()
        );
    }
}

/// A pending record reads back as the change that wrote it: owned entries as they were
/// written before XNACK, released ones with their release position.
#[test]
fn pending_records_read_back_owned_or_released() {
    let g = Bytes::from("g");
    let id = StreamId::new(7, 1);
    for m in [
        Mutation::PendingUpserted {
            group: g.clone(),
            id,
            consumer: Bytes::from("c"),
            delivery_time: 5,
            delivery_count: 1,
        },
        Mutation::PendingNacked {
            group: g.clone(),
            id,
            delivery_count: 0,
            seq: 3,
        },
    ] {
        let value = group_record_value(&m).unwrap();
        let back = read_pending_change(
            &mut Reader::new(&value, "p"),
            g.clone(),
            id,
            Bytes::copy_from_slice,
        )
        .unwrap();
        assert_eq!(back, m);
        let mut bad = value.clone();
        if matches!(m, Mutation::PendingNacked { .. }) {
            let at = bad.len() - 9;
            bad[at] = 0x21;
            assert!(
                read_pending_change(
                    &mut Reader::new(&bad, "p"),
                    g.clone(),
                    id,
                    Bytes::copy_from_slice
                )
                .is_err()
            );
        }
    }
}

/// A group record's sections: none when the counters are all 0 (the record reads as one
/// written before them), otherwise tagged, and read back as the change that sets them.
#[test]
fn group_record_sections_round_trip() {
    let g = Bytes::from("g");
    let mut plain = Vec::new();
    put_group(&mut plain, StreamId::new(3, 0), Some(3));
    let mut zero = plain.clone();
    put_group_sections(&mut zero, &GroupCounters::default(), None);
    assert_eq!(zero, plain);
    let counters = GroupCounters {
        delivered: 7,
        acked: 3,
        nacked: 1,
        dead_lettered: 2,
    };
    let dlq = DeadLetterConfig {
        key: Bytes::from("dead"),
        max_deliveries: 3,
    };
    let mut full = plain.clone();
    put_group_sections(&mut full, &counters, Some(&dlq));
    let mut r = Reader::new(&full, "group");
    assert_eq!(read_group(&mut r).unwrap(), (StreamId::new(3, 0), Some(3)));
    assert_eq!(
        read_group_sections(&mut r, &g).unwrap(),
        [
            Mutation::GroupCounters {
                group: g.clone(),
                counters
            },
            Mutation::GroupDlqSet {
                group: g.clone(),
                dlq: Some(dlq)
            }
        ]
    );
    let mut r = Reader::new(&full[..full.len() - 1], "group");
    read_group(&mut r).unwrap();
    assert!(read_group_sections(&mut r, &g).is_err());
    let mut bad = plain.clone();
    bad.push(0x6f);
    let mut r = Reader::new(&bad, "group");
    read_group(&mut r).unwrap();
    assert!(read_group_sections(&mut r, &g).is_err());
}

#[test]
fn stream_record_retention_section_round_trips() {
    let meta = StreamMeta {
        last_id: StreamId::new(9, 1),
        entries_added: 3,
        max_deleted_id: StreamId::new(0, 0),
    };
    let mut s = Stream::new();
    // Off: the record ends with the IDMP section, as before.
    let off = encode_stream(&meta, 2, &encode_stream_sections(&s));
    assert_eq!(off, encode_stream(&meta, 2, &encode_idmp(s.idmp())));
    for policy in [RefPolicy::KeepRef, RefPolicy::DelRef, RefPolicy::Acked] {
        let want = Retention {
            max_age: 86_400_000,
            policy,
        };
        s.init_retention(want);
        let enc = encode_stream(&meta, 2, &encode_stream_sections(&s));
        let Ok((m, 2, (Some(_), got))) = decode_stream(&enc) else {
            panic!("stream record with retention did not decode");
        };
        assert_eq!((m, got), (meta, want));
        assert!(decode_stream(&enc[..enc.len() - 1]).is_err());
        let mut bad = enc.clone();
        *bad.last_mut().unwrap() = 9;
        assert!(decode_stream(&bad).is_err());
    }
}
