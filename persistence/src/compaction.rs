//! Major compactions of the stream keyspaces, so tombstones and the data they cover leave
//! the disk (see [`crate::purge`] for when they are asked for).

use fjall::{Database, PersistMode};

use crate::store::Keyspaces;

/// How long a compaction waits for the memtables it rotated to be written out.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Major-compacts each stream keyspace, so tombstones and the data they cover leave the
/// disk. A failure is only logged: the data stays correct, only larger, and the next
/// request tries again. Returns false if `stop` said to stop first (it says so, too, when
/// the disk has no room: the caller asks again once it has).
pub(crate) fn compact(ks: &Keyspaces, db: &Database, stop: &dyn Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    match compact_stream_keyspaces(ks, db, stop) {
        Ok(true) => {
            tracing::info!(
                "compacted the stream keyspaces in {:.3} seconds",
                started.elapsed().as_secs_f64()
            );
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!("compacting the stream keyspaces failed: {e}");
            true
        }
    }
}

/// See [`compact`]; false if `stop` said to stop first.
fn compact_stream_keyspaces(
    ks: &Keyspaces,
    db: &Database,
    stop: &dyn Fn() -> bool,
) -> Result<bool, fjall::Error> {
    // A major compaction rewrites tables only: removals still in a memtable would outlive
    // it, with the data they cover. And it drops only what no sequence number below fjall's
    // garbage-collection watermark can see; the watermark moves when a memtable is rotated
    // (or every 10,000 snapshots), so one more rotation, of a memtable holding a write,
    // brings it up to now.
    let spaces: Vec<_> = ks.stream_records().into_iter().chain([&ks.meta]).collect();
    if !raise_watermark(ks, db, &spaces, stop)? {
        return Ok(false);
    }
    for space in ks.stream_records() {
        if stop() {
            return Ok(false);
        }
        space.major_compact()?;
    }
    // The tables compacted away are deleted with the last version that uses them, which a
    // tree lets go at its next change once the watermark has passed the compaction. A
    // second compaction is that change; it is cheap where little is left (a keyspace the
    // deletions emptied), and elsewhere the next flush of the keyspace does it.
    if !raise_watermark(ks, db, &spaces, stop)? {
        return Ok(false);
    }
    for space in ks.stream_records() {
        if stop() {
            return Ok(false);
        }
        if space.approximate_len() <= SECOND_PASS_MAX_ITEMS {
            space.major_compact()?;
        }
    }
    Ok(true)
}

/// A keyspace holding at most this many items is compacted a second time (see
/// [`compact_stream_keyspaces`]).
const SECOND_PASS_MAX_ITEMS: usize = 1_000_000;

/// Writes `compacted` into `meta`, rotates the memtables of `spaces` and waits for their
/// flushes: fjall's watermark then stands above every write made before; false if `stop`
/// said to stop first.
fn raise_watermark(
    ks: &Keyspaces,
    db: &Database,
    spaces: &[&fjall::Keyspace],
    stop: &dyn Fn() -> bool,
) -> Result<bool, fjall::Error> {
    // The batch below must not meet a full disk: fjall refuses every write once one failed.
    if stop() {
        return Ok(false);
    }
    let mut batch = db.batch().durability(Some(PersistMode::Buffer));
    batch.insert(&ks.meta, COMPACTED_KEY, now_ms().to_be_bytes());
    batch.commit()?;
    for space in spaces {
        space.rotate_memtable()?;
    }
    let deadline = std::time::Instant::now() + FLUSH_WAIT;
    while spaces.iter().any(|s| s.sealed_memtable_count() > 0) {
        if stop() {
            return Ok(false);
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!("compaction skipped: memtables not written out within {FLUSH_WAIT:?}");
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(true)
}

/// When the stream keyspaces were last compacted (unix ms, in `meta`): the write whose
/// rotation moves fjall's watermark, kept as a record an operator can read.
const COMPACTED_KEY: &[u8] = b"compacted";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
