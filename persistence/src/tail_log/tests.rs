//! The tail log against real directories.

#![allow(clippy::unwrap_used)]

use super::*;
use brooklet_streams::Mutation;

fn no_replay(_: Record<'_>) -> bool {
    false
}

/// Closed segments wait for the checkpoint until they hold its bytes, counted again from
/// their records when a restart replays them; SAVE and SHUTDOWN (`all`) take any.
#[test]
fn closed_segments_are_stale_once_they_hold_the_checkpoint_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let append = |log: &TailLog, key: &[u8], ms: u64| {
        let fields = [Bytes::from("f"), Bytes::from(vec![b'v'; 100])];
        log.append(
            0,
            key,
            1,
            false,
            false,
            StreamId::new(ms, 0),
            &fields,
            None,
            None,
            0,
        )
        .unwrap();
    };
    let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
    log.set_segment_limit(1024);
    log.set_checkpoint_bytes(4096);
    assert!(log.stale(true).is_none(), "nothing is closed yet");
    append(&log, b"a", 1);
    log.close_segment().unwrap();
    assert!(log.stale(false).is_none());
    let (upto, names) = log.stale(true).unwrap();
    assert_eq!((upto, names), (1, vec![(0, Bytes::from("a"))]));
    // Segments close at 1 KiB: the closed ones pass 4 KiB within a few dozen appends.
    let mut ms = 1;
    while log.stale(false).is_none() {
        ms += 1;
        assert!(ms < 100, "never stale");
        append(&log, b"b", ms);
    }
    let closed = lock(&log.inner).dirty.len() as u64 - 1;
    assert!(closed >= 4, "{closed} closed segments");
    let (_, on_disk) = log.segments_on_disk();
    assert!(on_disk >= 4096, "{on_disk}");
    drop(log);
    let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
    log.set_checkpoint_bytes(4096);
    assert!(
        log.stale(false).is_some(),
        "replayed segments count their bytes"
    );
    log.set_checkpoint_bytes(1 << 20);
    assert!(log.stale(false).is_none());
}

#[test]
fn segments_are_sized_up_to_the_cap_and_records_go_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
    log.set_segment_limit(1 << 40);
    log.append(
        0,
        b"s",
        1,
        true,
        false,
        StreamId::new(1, 0),
        &[],
        None,
        None,
        0,
    )
    .unwrap();
    log.close_segment().unwrap();
    let sizes = |log: &TailLog| {
        let g = lock(&log.inner);
        (g.file.metadata().unwrap().len(), g.written)
    };
    assert_eq!(sizes(&log), (SEGMENT_BYTES, 0));
    // A record that does not fit in the sized part extends the file.
    let big = Bytes::from(vec![7u8; SEGMENT_BYTES as usize]);
    log.append(
        0,
        b"s",
        1,
        false,
        false,
        StreamId::new(2, 0),
        &[big.clone(), big],
        None,
        None,
        0,
    )
    .unwrap();
    log.write_out().unwrap();
    let (len, written) = sizes(&log);
    assert!(written > SEGMENT_BYTES && len == written, "{len} {written}");
    drop(log);
    // Reopened, every record replays and nothing is reported torn.
    let mut seen = 0;
    let (_log, report) = TailLog::open(dir.path(), &mut |_| {
        seen += 1;
        true
    })
    .unwrap();
    assert_eq!((seen, report.torn_bytes), (2, 0));
}

/// A record with a large value grows the buffer to about its size, not twice it, and the
/// buffer gives that room back once the record is written out.
#[test]
fn a_large_record_leaves_no_large_buffer_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
    // A full segment writes its buffer at once: this one stays open.
    log.set_segment_limit(1 << 40);
    let value = vec![1u8; 32 << 20];
    let op = StringOp::Set(b"k", &value, Deadline::Keep);
    log.log_strings(0, 1, 1, std::iter::once(op)).unwrap();
    let capacity = lock(&log.inner).buf.capacity();
    assert!(
        capacity >= value.len() && capacity < value.len() + (1 << 20),
        "{capacity}"
    );
    log.write_out().unwrap();
    assert_eq!(lock(&log.inner).buf.capacity(), segment::BUF_START);
}

/// What a replayed record held, owned.
#[derive(Debug, PartialEq)]
enum Seen {
    Append(u32, Vec<u8>, u64, bool, bool, StreamId, Vec<Bytes>),
    Groups(u32, Vec<u8>, u64, Vec<Mutation>),
}

/// Segments written before format 7, whose bodies are little-endian, still replay, and
/// records of both layouts come back as they were logged.
#[test]
fn format_6_records_replay_beside_format_7_ones() {
    let dir = tempfile::tempdir().unwrap();
    let fields = vec![Bytes::from("f"), Bytes::from(""), Bytes::from("v\r\n")];
    let g = Bytes::from("g");
    let c = Bytes::from("alice");
    let id = StreamId::new(1, 0);
    let changes = vec![
        Mutation::GroupCreated {
            group: g.clone(),
            last_id: id,
            entries_read: Some(1),
        },
        Mutation::ConsumerUpserted {
            group: g.clone(),
            consumer: c.clone(),
            seen_time: 5,
            active_time: None,
        },
        Mutation::PendingUpserted {
            group: g.clone(),
            id,
            consumer: c.clone(),
            delivery_time: 6,
            delivery_count: 1,
        },
        Mutation::PendingRemoved {
            group: g.clone(),
            id,
        },
        Mutation::ConsumerDeleted {
            group: g.clone(),
            consumer: c,
        },
        Mutation::GroupUpdated {
            group: g.clone(),
            last_id: id,
            entries_read: None,
        },
        Mutation::GroupDestroyed { group: g },
    ];
    // Segment 1, as format 6 wrote it.
    let mut old = Vec::new();
    let frame = |seg: &mut Vec<u8>, flags: u8, body: &dyn Fn(&mut Vec<u8>)| {
        let mut payload = Vec::new();
        record::put_head(&mut payload, 3, b"k", 7, flags);
        body(&mut payload);
        seg.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        seg.extend_from_slice(&record::checksum(&payload).to_le_bytes());
        seg.extend_from_slice(&payload);
    };
    frame(&mut old, 1 | 2, &|b| {
        legacy::tests::put_append(b, id, &fields)
    });
    frame(&mut old, 4, &|b| {
        legacy::tests::put_group_changes(b, &changes)
    });
    std::fs::write(segment_path(dir.path(), 1), &old).unwrap();
    // Format 7 records after it, in the next segment.
    let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
    let next = StreamId::new(2, 0);
    log.append(3, b"k", 7, false, false, next, &fields, None, None, 0)
        .unwrap();
    log.log_group_changes(3, b"k", 7, &changes, 0).unwrap();
    log.write_out().unwrap();
    drop(log);
    let mut seen = Vec::new();
    let (_log, report) = TailLog::open(dir.path(), &mut |r| {
        seen.push(match r {
            Record::Append(a) => Seen::Append(
                a.db,
                a.key.to_vec(),
                a.incarnation,
                a.new_node,
                a.creates,
                a.id,
                a.fields,
            ),
            Record::Groups(g) => Seen::Groups(g.db, g.key.to_vec(), g.incarnation, g.changes),
            Record::Strings(_) => unreachable!("no string record was logged"),
        });
        true
    })
    .unwrap();
    assert_eq!((report.records, report.torn_bytes), (4, 0));
    let key = b"k".to_vec();
    assert_eq!(
        seen,
        [
            Seen::Append(3, key.clone(), 7, true, true, id, fields.clone()),
            Seen::Groups(3, key.clone(), 7, changes.clone()),
            Seen::Append(3, key.clone(), 7, false, false, next, fields),
            Seen::Groups(3, key, 7, changes),
        ]
    );
}

/// A replay (DEBUG RELOAD) racing the checkpoint's retirement of segments reads them all
/// or none: with one left out between two it read, a group change in the first would be
/// applied without the later one that undid it (an acknowledged entry pending again).
#[test]
fn a_replay_reads_the_segments_a_retirement_removes_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = TailLog::open(dir.path(), &mut no_replay).unwrap();
    for ms in 1..=5 {
        log.append(
            0,
            b"s",
            1,
            false,
            false,
            StreamId::new(ms, 0),
            &[],
            None,
            None,
            0,
        )
        .unwrap();
        if ms < 5 {
            log.close_segment().unwrap();
        }
    }
    let (retire, retiring) = std::sync::mpsc::channel();
    let (retired, done) = std::sync::mpsc::channel();
    let mut seen = Vec::new();
    std::thread::scope(|scope| {
        let log = &log;
        scope.spawn(move || {
            if retiring.recv().is_ok() {
                log.retire(4).unwrap();
                let _ = retired.send(());
            }
        });
        log.replay_again(&mut |r| {
            if let Record::Append(a) = r {
                if seen.is_empty() {
                    // The first segment is read: retire segments 1-4 now. The retirement
                    // waits for the replay, so its end is not awaited for ever.
                    retire.send(()).unwrap();
                    let _ = done.recv_timeout(std::time::Duration::from_millis(500));
                }
                seen.push(a.id.ms);
            }
            true
        })
        .unwrap();
    });
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    assert!(log.stale(true).is_none(), "segments 1-4 are retired");
}
