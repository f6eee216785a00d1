//! The tail log against real directories.

#![allow(clippy::unwrap_used)]

use super::*;

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
        log.append(0, key, 1, false, false, StreamId::new(ms, 0), &fields, 0)
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
    log.append(0, b"s", 1, true, false, StreamId::new(1, 0), &[], 0)
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
