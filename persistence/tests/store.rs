//! The store against real directories: what is written comes back identical after a reopen.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use brooklet_persistence::{FsyncPolicy, Store, StoreError, StoredStream};
use brooklet_streams::{
    GroupStartId, IdSpec, Mutation, NodeLimits, ReadId, RefPolicy, Stream, StreamId, TrimArgs,
    TrimStrategy,
};

fn fields(i: u64) -> Vec<Bytes> {
    vec![Bytes::from("f"), Bytes::from(format!("value-{i}"))]
}

/// Runs `f` on the stream and writes what it did.
fn step(
    store: &Store,
    db: u32,
    key: &[u8],
    s: &mut StoredStream,
    f: impl FnOnce(&mut Stream, &mut Vec<Mutation>),
) {
    let mut muts = Vec::new();
    f(s, &mut muts);
    store.write_stream(db, key, s, &muts).unwrap();
}

fn reopen(dir: &std::path::Path) -> Vec<(u32, Bytes, StoredStream)> {
    let (_store, streams, _report) = Store::open(dir, FsyncPolicy::Always).unwrap();
    let mut v: Vec<_> = streams
        .into_iter()
        .map(|l| (l.db, l.key, l.stream))
        .collect();
    v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    v
}

#[test]
fn every_kind_of_change_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let limits = NodeLimits::default();
    let mut s = StoredStream::new();
    let mut other = StoredStream::new();
    {
        let (store, loaded, _) = Store::open(dir.path(), FsyncPolicy::Everysec).unwrap();
        assert!(loaded.is_empty());
        for i in 1..=350 {
            step(&store, 0, b"orders", &mut s, |s, out| {
                s.add(
                    IdSpec::Explicit(StreamId::new(i, 0)),
                    &fields(i),
                    None,
                    0,
                    &limits,
                    out,
                )
                .unwrap();
            });
        }
        step(&store, 0, b"orders", &mut s, |s, out| {
            s.create_group(b"workers", GroupStartId::Id(StreamId::MIN), None, out)
                .unwrap();
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            s.read_group(
                b"orders",
                b"workers",
                b"alice",
                ReadId::New,
                Some(20),
                false,
                1000,
                out,
            )
            .unwrap();
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            s.ack(b"workers", &[StreamId::new(1, 0), StreamId::new(2, 0)], out);
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            s.delete(&[StreamId::new(10, 0), StreamId::new(300, 0)], out)
                .unwrap();
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            let trim = TrimArgs {
                strategy: TrimStrategy::MaxLen(200),
                approx: true,
                limit: None,
                policy: RefPolicy::KeepRef,
            };
            s.trim(&trim, &limits, out).unwrap();
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            // An exact trim cuts into a node: its trimmed entries become tombstones.
            let trim = TrimArgs {
                strategy: TrimStrategy::MaxLen(190),
                approx: false,
                limit: None,
                policy: RefPolicy::KeepRef,
            };
            assert!(s.trim(&trim, &limits, out).unwrap() > 0);
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            s.create_group(b"gone", GroupStartId::Last, None, out)
                .unwrap();
        });
        step(&store, 0, b"orders", &mut s, |s, out| {
            assert!(s.destroy_group(b"gone", out));
        });
        // XADD MAXLEN 0 in another database: the entry it adds is trimmed in the same batch.
        step(&store, 5, b"orders", &mut other, |s, out| {
            let trim = TrimArgs {
                strategy: TrimStrategy::MaxLen(0),
                approx: false,
                limit: None,
                policy: RefPolicy::KeepRef,
            };
            s.add(
                IdSpec::Explicit(StreamId::new(9, 9)),
                &fields(9),
                Some(&trim),
                0,
                &limits,
                out,
            )
            .unwrap();
        });
        assert_eq!(other.len(), 0);
    }
    let loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 2);
    assert_eq!((loaded[0].0, &loaded[0].1[..]), (0, &b"orders"[..]));
    assert_eq!(loaded[0].2, s, "stream in db 0 differs after reopen");
    assert_eq!(loaded[1].0, 5);
    assert_eq!(
        loaded[1].2, other,
        "emptied stream in db 5 differs after reopen"
    );
}

#[test]
fn deleting_and_flushing_remove_everything_of_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let limits = NodeLimits::default();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        for (db, key) in [(0, &b"a"[..]), (0, b"ab"), (1, b"a")] {
            let mut s = StoredStream::new();
            step(&store, db, key, &mut s, |s, out| {
                s.add(
                    IdSpec::Explicit(StreamId::new(1, 1)),
                    &fields(1),
                    None,
                    0,
                    &limits,
                    out,
                )
                .unwrap();
                s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, out)
                    .unwrap();
            });
        }
        store.delete_stream(0, b"a", &StoredStream::new()).unwrap();
        let left = {
            drop(store);
            reopen(dir.path())
        };
        let names: Vec<_> = left.iter().map(|(db, k, _)| (*db, k.clone())).collect();
        assert_eq!(names, vec![(0, Bytes::from("ab")), (1, Bytes::from("a"))]);
    }
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        store.flush(Some(1), None::<&StoredStream>).unwrap();
    }
    assert_eq!(reopen(dir.path()).len(), 1);
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        store.flush(None, None::<&StoredStream>).unwrap();
        store.sync().unwrap();
    }
    assert!(reopen(dir.path()).is_empty());
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_first, _, _) = Store::open(dir.path(), FsyncPolicy::Everysec).unwrap();
    let err = Store::open(dir.path(), FsyncPolicy::Everysec)
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert!(
        err.to_string()
            .contains("in use by another brooklet-server")
    );
}

#[test]
fn a_newer_or_older_format_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_store, _, _) = Store::open(dir.path(), FsyncPolicy::Everysec).unwrap();
    }
    // Stamps the directory with a format version, through the engine itself.
    let stamp = |version: u32| {
        let db = fjall::Database::builder(dir.path().join("fjall"))
            .open()
            .unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("format", version.to_be_bytes()).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    };
    stamp(99);
    let err = Store::open(dir.path(), FsyncPolicy::Everysec)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            StoreError::NewerFormat {
                found: 99,
                supported: 10
            }
        ),
        "{err}"
    );
    // Formats 3, 4 and 5 differ only in what they never wrote (streams created in the tail
    // log, deletion floors, group changes in the tail log, purge markers), and format 6's
    // tail-log bodies are still read; format 7 differs only in trims' purge markers, which
    // it never wrote, format 8 only in released pending entries, stream records' IDMP
    // section, trims' ranges, strings and deadlines, which it never wrote, format 9 only in
    // APPEND's string change, which it never wrote: they open, and are stamped 10.
    for old in [3, 4, 5, 6, 7, 8, 9] {
        stamp(old);
        drop(Store::open(dir.path(), FsyncPolicy::Everysec).unwrap());
        let db = fjall::Database::builder(dir.path().join("fjall"))
            .open()
            .unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        assert_eq!(
            &meta.get("format").unwrap().unwrap()[..],
            10u32.to_be_bytes()
        );
    }
    // Format 2 logged no appends outside fjall and numbered no stream lives: reading it
    // as 10 would misread every stream record.
    stamp(2);
    let err = Store::open(dir.path(), FsyncPolicy::Everysec)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            StoreError::OlderFormat {
                found: 2,
                supported: 10
            }
        ),
        "{err}"
    );
}

#[test]
fn always_makes_each_commit_durable_through_the_sync_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = Store::open(dir.path(), FsyncPolicy::Always).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    store.on_durable(Box::new(move |seq| {
        let _ = tx.send(seq);
    }));
    let mut s = StoredStream::new();
    let mut seq = 0;
    for i in 1..=5 {
        let mut out = Vec::new();
        s.add(
            IdSpec::Explicit(StreamId::new(i, 0)),
            &fields(i),
            None,
            0,
            &NodeLimits::default(),
            &mut out,
        )
        .unwrap();
        let before = seq;
        seq = store.write_stream(0, b"k", &mut s, &out).unwrap();
        // The stream keeps its last change's sequence: what a reply showing it waits for.
        assert!(seq > before);
        assert_eq!(s.seq(), seq);
    }
    // As a reply waiting for its write does.
    store.request_sync(seq);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.durable_seq() < seq {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            rx.recv_timeout(left).is_ok(),
            "sequence {seq} never became durable"
        );
    }
    assert!(store.stats().fsyncs >= 1);
    assert!(store.safe_seq() >= s.seq());
}

/// A small deterministic generator, so a failing seed can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Long random sequences of commands run twice: on a plain in-memory stream, and on a
/// stream backed by the store with a cache budget of zero, so every node but the tail is
/// evicted and read back from disk whenever a command needs it. Every reply must match,
/// and after each reopen the loaded stream must equal the in-memory one, entries included.
#[test]
fn random_command_sequences_reload_identically() {
    random_sequences_reload_identically(false);
}

/// The same with small tail-log segments, and checkpoints, reloads and XSETID among the
/// commands: what a reopen loads is what the commands left.
#[test]
fn random_commands_with_checkpoints_and_reloads_reload_identically() {
    random_sequences_reload_identically(true);
}

/// The driver of both tests above; `checkpoints` adds segments of a few hundred bytes and
/// the commands 11 (checkpoint), 12 (reload), 13-14 (XSETID, often below the last ID) and 15
/// (a checkpoint's piece, with plain appends between its building and its commit).
fn random_sequences_reload_identically(checkpoints: bool) {
    let limits = NodeLimits {
        max_entries: 7,
        max_bytes: 300,
    };
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Lcg(if checkpoints { seed * 7919 } else { seed });
        let mut mem = StoredStream::new();
        let mut next_ms = 1;
        for round in 0..4 {
            {
                let (store, loaded, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
                store.set_stream_cache_bytes(if seed % 2 == 0 { 0 } else { 200 });
                if checkpoints {
                    store.set_tail_segment_bytes(150 + 100 * (seed % 3));
                }
                let mut disk = match loaded.into_iter().next() {
                    Some(l) => l.stream,
                    None => {
                        let mut s = StoredStream::new();
                        s.attach_source(store.source(0, b"k"));
                        s
                    }
                };
                for i in 0..150 {
                    let ctx = format!("seed {seed} round {round} op {i}");
                    let op = rng.next(if checkpoints { 16 } else { 11 });
                    let arg = (rng.next(1 << 30), rng.next(1 << 30), rng.next(1 << 30));
                    if op <= 3 {
                        next_ms += 1 + rng.next(3);
                    }
                    if op == 11 {
                        if let Some((upto, _)) = store.stale_tail(true) {
                            store.flush_stream(0, b"k", &mut disk).unwrap();
                            store.retire_tail(upto).unwrap();
                        }
                        continue;
                    }
                    if op == 15 {
                        // A checkpoint's piece, up to a node boundary, with plain appends
                        // arriving between its building and its commit.
                        let max = 1 + arg.0 as usize % 20;
                        let pending = store.prepare_flush(0, [(&b"k"[..], &mut disk)], max);
                        for _ in 0..arg.1 % 3 {
                            next_ms += 1;
                            let id = IdSpec::Explicit(StreamId::new(next_ms, 0));
                            let f = fields(next_ms);
                            let mut muts = Vec::new();
                            let want = mem.add(id, &f, None, 0, &limits, &mut Vec::new());
                            let got = disk.add(id, &f, None, 0, &limits, &mut muts);
                            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{ctx}");
                            if let Ok(out) = got {
                                assert!(out.trimmed == 0 && muts.len() == 1, "{ctx}");
                                store.write_stream(0, b"k", &mut disk, &muts).unwrap();
                            }
                        }
                        if let Some(p) = pending {
                            let committed = p.commit();
                            disk.end_flush(committed.is_ok());
                            committed.unwrap();
                        }
                        continue;
                    }
                    if op == 12 {
                        let (loaded, _) = store.load_all().unwrap();
                        if let Some(l) = loaded.into_iter().next() {
                            disk = l.stream;
                            assert_eq!(disk, mem, "{ctx}: reloaded stream differs");
                        }
                        continue;
                    }
                    let run = |s: &mut StoredStream, out: &mut Vec<Mutation>| match op {
                        13 | 14 => {
                            let to = StreamId::new(arg.0 % (next_ms + 1), 0);
                            format!("{:?}", s.set_id(to, None, None, out))
                        }
                        _ => random_op(s, out, op, arg, next_ms, &limits),
                    };
                    let want = run(&mut mem, &mut Vec::new());
                    let mut muts = Vec::new();
                    let got = run(&mut disk, &mut muts);
                    store.write_stream(0, b"k", &mut disk, &muts).unwrap();
                    assert_eq!(got, want, "{ctx}: replies differ");
                }
                if !checkpoints {
                    assert!(
                        disk.resident_nodes() <= 3 || disk.node_count() < 4,
                        "seed {seed}: {} of {} nodes resident",
                        disk.resident_nodes(),
                        disk.node_count()
                    );
                }
                drop(store);
                drop(disk);
            }
            let mut loaded = reopen(dir.path());
            assert_eq!(loaded.len(), 1, "seed {seed} round {round}");
            let all = |s: &mut StoredStream| s.range(StreamId::MIN, StreamId::MAX, None, false);
            assert_eq!(
                all(&mut loaded[0].2),
                all(&mut mem),
                "seed {seed} round {round}: reloaded entries differ"
            );
            assert_eq!(
                loaded[0].2, mem,
                "seed {seed} round {round}: reloaded stream differs"
            );
        }
    }
}

/// One random command; its reply as text, so two runs can be compared.
fn random_op(
    s: &mut StoredStream,
    out: &mut Vec<Mutation>,
    op: u64,
    (a, b, c): (u64, u64, u64),
    next_ms: u64,
    limits: &NodeLimits,
) -> String {
    let pick = |x: u64| StreamId::new(x % (next_ms + 1), 0);
    match op {
        0..=3 => {
            let trim = match a % 4 {
                0 => Some(TrimArgs {
                    strategy: TrimStrategy::MaxLen(b % 40),
                    approx: c % 2 == 0,
                    limit: None,
                    policy: RefPolicy::KeepRef,
                }),
                _ => None,
            };
            let f = fields(c % 1000);
            let r = s.add(
                IdSpec::Explicit(StreamId::new(next_ms, 0)),
                &f,
                trim.as_ref(),
                0,
                limits,
                out,
            );
            format!("{r:?}")
        }
        4 => format!("{:?}", s.delete(&[pick(a), pick(b), pick(c)], out)),
        5 => {
            let trim = TrimArgs {
                strategy: TrimStrategy::MinId(pick(a)),
                approx: b % 2 == 0,
                limit: None,
                policy: RefPolicy::KeepRef,
            };
            format!("{:?}", s.trim(&trim, limits, out))
        }
        6 => format!(
            "{:?}",
            s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, out)
        ),
        7 => {
            let consumer = if a % 2 == 0 { &b"alice"[..] } else { b"bob" };
            // History reads (explicit IDs) read entries back by ID, new reads by range.
            let id = if b % 3 == 0 {
                ReadId::Id(StreamId::MIN)
            } else {
                ReadId::New
            };
            let r = s.read_group(
                b"k",
                b"g",
                consumer,
                id,
                Some(1 + c % 4),
                false,
                10 * next_ms,
                out,
            );
            format!("{r:?}")
        }
        8 => format!("{}", s.ack(b"g", &[pick(a), pick(b)], out)),
        9 => {
            let r = s.range(
                pick(a),
                pick(b).max(pick(a)),
                Some(1 + (c % 20) as usize),
                c % 2 == 0,
            );
            format!("{r:?}")
        }
        _ => {
            if a % 5 == 0 {
                format!("{}", s.destroy_group(b"g", out))
            } else {
                format!(
                    "{:?} {:?}",
                    s.info().map(|i| (i.first_entry, i.last_entry, i.length)),
                    s.first_id()
                )
            }
        }
    }
}

/// Disk usage follows the data: XDEL of a node's last live entry takes the node's tombstones
/// off disk with it, and a trim takes the nodes it drops.
#[test]
fn deleted_and_trimmed_nodes_leave_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let limits = NodeLimits::default();
    let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    let mut s = StoredStream::new();
    for i in 1..=300 {
        step(&store, 0, b"k", &mut s, |s, out| {
            s.add(
                IdSpec::Explicit(StreamId::new(i, 0)),
                &fields(i),
                None,
                0,
                &limits,
                out,
            )
            .unwrap();
        });
    }
    // Every append, the one that created the stream included, is in the tail log, not yet
    // in fjall.
    assert!(on_disk(&store).is_empty());
    store.flush_stream(0, b"k", &mut s).unwrap();
    assert_eq!(on_disk(&store).len(), 300);
    // Half of node 2 goes: its tombstones stay, as the node keeps their slots.
    let half: Vec<StreamId> = (101..=150).map(|i| StreamId::new(i, 0)).collect();
    step(&store, 0, b"k", &mut s, |s, out| {
        assert_eq!(s.delete(&half, out).unwrap(), 50);
    });
    let stored = on_disk(&store);
    assert_eq!(stored.len(), 300);
    assert_eq!(stored.iter().filter(|e| e.deleted).count(), 50);
    // The rest of node 2 goes: the node and all its 100 entries leave the disk.
    let rest: Vec<StreamId> = (151..=200).map(|i| StreamId::new(i, 0)).collect();
    step(&store, 0, b"k", &mut s, |s, out| {
        assert_eq!(s.delete(&rest, out).unwrap(), 50);
    });
    assert_eq!(on_disk(&store).len(), 200);
    assert!(s.node(StreamId::new(101, 0)).is_none());
    // A trim drops node 1 whole.
    step(&store, 0, b"k", &mut s, |s, out| {
        let trim = TrimArgs {
            strategy: TrimStrategy::MaxLen(100),
            approx: true,
            limit: None,
            policy: RefPolicy::KeepRef,
        };
        assert_eq!(s.trim(&trim, &limits, out).unwrap(), 100);
    });
    let stored = on_disk(&store);
    assert_eq!(stored.len(), 100);
    assert_eq!(stored[0].id, StreamId::new(201, 0));
    drop(store);
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    assert_eq!(loaded[0].2.node_count(), 1);
    let all = loaded[0]
        .2
        .range(StreamId::MIN, StreamId::MAX, None, false)
        .unwrap();
    assert_eq!(all.len(), 100);
}

/// Appends `ids` (ms values) to `s` and writes each one.
fn add_all(store: &Store, key: &[u8], s: &mut StoredStream, ids: impl IntoIterator<Item = u64>) {
    for i in ids {
        step(store, 0, key, s, |s, out| {
            s.add(
                IdSpec::Explicit(StreamId::new(i, 0)),
                &fields(i),
                None,
                0,
                &NodeLimits::default(),
                out,
            )
            .unwrap();
        });
    }
}

/// Every entry of stream `k` that fjall holds (tombstones included).
fn on_disk(store: &Store) -> Vec<brooklet_streams::StoredEntry> {
    store
        .source(0, b"k")
        .load(StreamId::MIN, StreamId::MAX)
        .unwrap()
}

fn ids_of(s: &mut StoredStream) -> Vec<u64> {
    s.range(StreamId::MIN, StreamId::MAX, None, false)
        .unwrap()
        .iter()
        .map(|e| e.id.ms)
        .collect()
}

/// A change to consumer groups alone writes their records and leaves the stream's logged
/// appends in the tail log; a reopen rebuilds the groups, the pending entries and the
/// entries they point at, as they were.
#[test]
fn group_changes_leave_logged_appends_to_the_tail_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        add_all(&store, b"k", &mut s, 1..=1);
        // The first group change of a stream the tail log created writes the stream (and
        // its appends) into fjall; later ones leave appends alone.
        step(&store, 0, b"k", &mut s, |s, out| {
            s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, out)
                .unwrap();
        });
        assert!(!s.has_unflushed());
        add_all(&store, b"k", &mut s, 2..=150);
        step(&store, 0, b"k", &mut s, |s, out| {
            let read = s.read_group(b"k", b"g", b"c", ReadId::New, Some(120), false, 1000, out);
            assert_eq!(read.unwrap().map(|v| v.len()), Some(120));
        });
        step(&store, 0, b"k", &mut s, |s, out| {
            assert_eq!(s.ack(b"g", &[StreamId::new(3, 0)], out), 1);
        });
        // Only the entry logged before the group was created is in fjall.
        assert_eq!(on_disk(&store).len(), 1);
        assert!(s.has_unflushed());
    }
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    assert_eq!(ids_of(&mut loaded[0].2), (1..=150).collect::<Vec<_>>());
}

/// Appends logged for a stream that was deleted since must not be replayed into a new
/// stream under the same key, even where their IDs would fit after its entries.
#[test]
fn a_deleted_streams_logged_appends_never_reach_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut old = StoredStream::new();
        // 1 opens the node (fjall), 2..=5 are plain appends (tail log only).
        add_all(&store, b"k", &mut old, 1..=5);
        store.delete_stream(0, b"k", &old).unwrap();
        let mut new = StoredStream::new();
        add_all(&store, b"k", &mut new, [1]);
        assert_ne!(new.incarnation(), old.incarnation());
    }
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(ids_of(&mut loaded[0].2), vec![1]);
}

/// Once the tail log has closed segments, the checkpoint writes the appends they hold into
/// fjall and deletes them; what a reopen then loads is the same, with only the open
/// segment replayed. A record torn by a crash ends the replay of its segment cleanly.
#[test]
fn closed_tail_segments_are_checkpointed_retired_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = StoredStream::new();
    let mut b = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        store.set_tail_segment_bytes(2000);
        add_all(&store, b"a", &mut a, 1..=250);
        add_all(&store, b"b", &mut b, 1..=30);
        let (upto, mut names) = store.stale_tail(true).expect("closed segments");
        names.sort();
        assert_eq!(names, vec![(0, Bytes::from("a")), (0, Bytes::from("b"))]);
        assert!(store.stats().tail_segments > 2);
        store.flush_stream(0, b"a", &mut a).unwrap();
        store.flush_stream(0, b"b", &mut b).unwrap();
        store.retire_tail(upto).unwrap();
        assert_eq!(store.stats().tail_segments, 1);
        assert!(store.stale_tail(true).is_none());
        // These stay in the open segment, for the replay.
        add_all(&store, b"a", &mut a, 251..=255);
    }
    let (store, loaded, report) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    assert_eq!(report.tail_applied, 5, "{report:?}");
    let mut loaded: Vec<_> = loaded.into_iter().map(|l| (l.key, l.stream)).collect();
    loaded.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(ids_of(&mut loaded[0].1), (1..=255).collect::<Vec<_>>());
    assert_eq!(ids_of(&mut loaded[1].1), (1..=30).collect::<Vec<_>>());
    assert_eq!(loaded[0].1, a);
    assert_eq!(loaded[1].1, b);
    drop(store);
    drop(loaded);
    // A torn write at the end of the newest segment: everything before it is kept.
    let tail_dir = dir.path().join("tail");
    let newest = std::fs::read_dir(&tail_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut data = std::fs::read(&newest).unwrap();
    data.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&newest, data).unwrap();
    let (_store, loaded, report) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    assert_eq!(report.tail_torn_bytes, 7, "{report:?}");
    let mut s = loaded.into_iter().find(|l| l.key == "a").unwrap().stream;
    assert_eq!(ids_of(&mut s), (1..=255).collect::<Vec<_>>());
}

/// XSETID may move an emptied stream's last ID back below entries that were logged as
/// plain appends and since trimmed away; a reopen must not replay those appends into it.
#[test]
fn trimmed_appends_stay_gone_after_xsetid_moves_the_last_id_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        // 1 opens the node (fjall), 2..=5 are plain appends (tail log only).
        add_all(&store, b"k", &mut s, 1..=5);
        step(&store, 0, b"k", &mut s, |s, out| {
            let trim = TrimArgs {
                strategy: TrimStrategy::MaxLen(0),
                approx: false,
                limit: None,
                policy: RefPolicy::KeepRef,
            };
            assert_eq!(s.trim(&trim, &NodeLimits::default(), out).unwrap(), 5);
        });
        step(&store, 0, b"k", &mut s, |s, out| {
            s.set_id(StreamId::new(1, 0), None, None, out).unwrap();
        });
        assert_eq!(s.len(), 0);
    }
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(ids_of(&mut loaded[0].2), Vec::<u64>::new());
    assert_eq!(loaded[0].2, s);
}

/// A trim reads only the records it newly drops; after XSETID moves an emptied stream's
/// last ID back below what earlier trims reached, entries added there and trimmed again
/// must still leave the disk.
#[test]
fn trims_after_xsetid_moves_below_an_earlier_trim_still_remove_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StoredStream::new();
    let max_len = |n| TrimArgs::exact(TrimStrategy::MaxLen(n));
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        add_all(&store, b"k", &mut s, 1..=300);
        // Exact trims one entry at a time, through node boundaries.
        for i in 301..=450 {
            step(&store, 0, b"k", &mut s, |s, out| {
                let id = IdSpec::Explicit(StreamId::new(i, 0));
                let limits = NodeLimits::default();
                s.add(id, &fields(i), Some(&max_len(100)), 0, &limits, out)
                    .unwrap();
            });
        }
        assert_eq!(ids_of(&mut s), (351..=450).collect::<Vec<_>>());
        assert_eq!(on_disk(&store).iter().filter(|e| !e.deleted).count(), 100);
        step(&store, 0, b"k", &mut s, |s, out| {
            assert_eq!(
                s.trim(&max_len(0), &NodeLimits::default(), out).unwrap(),
                100
            );
        });
        step(&store, 0, b"k", &mut s, |s, out| {
            s.set_id(StreamId::new(10, 0), None, None, out).unwrap();
        });
        // Below every earlier trim: written to fjall by a batch, then trimmed away.
        add_all(&store, b"k", &mut s, 20..=40);
        store.flush_stream(0, b"k", &mut s).unwrap();
        assert_eq!(on_disk(&store).len(), 21);
        step(&store, 0, b"k", &mut s, |s, out| {
            assert_eq!(
                s.trim(&max_len(5), &NodeLimits::default(), out).unwrap(),
                16
            );
        });
        assert_eq!(ids_of(&mut s), (36..=40).collect::<Vec<_>>());
        let live: Vec<u64> = on_disk(&store)
            .iter()
            .filter(|e| !e.deleted)
            .map(|e| e.id.ms)
            .collect();
        assert_eq!(live, (36..=40).collect::<Vec<_>>());
    }
    let mut loaded = reopen(dir.path());
    assert_eq!(ids_of(&mut loaded[0].2), (36..=40).collect::<Vec<_>>());
    assert_eq!(loaded[0].2, s);
}

/// The checkpoint retires segments outside the gate that holds off DEBUG RELOAD, so a
/// reload may list a segment that is deleted before it reads it: its appends are in fjall
/// by then, and the reload must load everything rather than fail.
#[test]
fn a_reload_racing_a_retire_loads_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    store.set_tail_segment_bytes(100);
    // Commands and the checkpoint's flushes run under the gate; DEBUG RELOAD excludes them.
    let gate = std::sync::Mutex::new(());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut s = StoredStream::new();
            let mut next = 1;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let stale = {
                    let _g = gate.lock().unwrap_or_else(|p| p.into_inner());
                    // The stream stays short: each round starts it again.
                    if next > 100 {
                        store.delete_stream(0, b"k", &s).unwrap();
                        s = StoredStream::new();
                        next = 1;
                    }
                    add_all(&store, b"k", &mut s, next..next + 10);
                    next += 10;
                    let stale = store.stale_tail(true);
                    if stale.is_some() {
                        store.flush_stream(0, b"k", &mut s).unwrap();
                    }
                    stale
                };
                if let Some((upto, _)) = stale {
                    store.retire_tail(upto).unwrap();
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut result = Ok(());
        while result.is_ok() && std::time::Instant::now() < deadline {
            let _g = gate.lock().unwrap();
            result = store.load_all().map(|_| ());
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        result.unwrap();
    });
}

/// A checkpoint may write a long run of logged appends in pieces, each up to a node boundary
/// and committed after the stream's lock is let go; the stream's record then says what the
/// stream was at that point, so a reopen replays exactly the appends after it, and a later
/// change of another kind writes the rest.
#[test]
fn appends_written_in_pieces_reopen_whole() {
    let piece = |store: &Store, s: &mut StoredStream, max: usize| {
        let p = store.prepare_flush(0, [(&b"k"[..], &mut *s)], max).unwrap();
        let more = p.more;
        assert!(s.is_flushing());
        let committed = p.commit();
        s.end_flush(committed.is_ok());
        committed.unwrap();
        more
    };
    let dir = tempfile::tempdir().unwrap();
    let mut s = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        // Nodes of 100: 1-100, 101-200, 201-300, 301-350; all logged, none in fjall.
        add_all(&store, b"k", &mut s, 1..=350);
        assert!(on_disk(&store).is_empty());
        assert!(piece(&store, &mut s, 150));
        assert_eq!(on_disk(&store).len(), 200);
        assert!(s.has_unflushed());
    }
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    assert_eq!(ids_of(&mut loaded[0].2), (1..=350).collect::<Vec<_>>());
    assert_eq!(loaded[0].2.entries_added(), 350);
    // The loaded streams read their entries through the store, which holds the directory.
    drop(loaded);
    {
        let (store, streams, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut s = streams.into_iter().next().unwrap().stream;
        assert!(piece(&store, &mut s, 1));
        assert_eq!(on_disk(&store).len(), 300);
        // XDEL takes the rest of the logged appends with it.
        step(&store, 0, b"k", &mut s, |s, out| {
            assert_eq!(s.delete(&[StreamId::new(2, 0)], out).unwrap(), 1);
        });
        assert!(!s.has_unflushed());
        assert_eq!(on_disk(&store).len(), 350);
        // A piece that takes the rest leaves nothing unflushed.
        add_all(&store, b"k", &mut s, 351..=360);
        assert!(!piece(&store, &mut s, 1000));
        assert!(!s.has_unflushed() && !s.is_flushing());
        assert_eq!(on_disk(&store).len(), 360);
    }
    let mut loaded = reopen(dir.path());
    let want: Vec<u64> = (1..=360).filter(|&i| i != 2).collect();
    assert_eq!(ids_of(&mut loaded[0].2), want);
    assert_eq!(loaded[0].2.entries_added(), 360);
    assert_eq!(loaded[0].2.last_id(), StreamId::new(360, 0));
}

/// A checkpoint commits its batch after letting the stream's lock go; a change of another
/// kind to that stream made meanwhile must land after the batch, or the batch would bring
/// back what the change removed.
#[test]
fn a_change_made_while_a_checkpoint_batch_commits_lands_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut s = StoredStream::new();
        // 1 creates the stream (fjall); 2..=50 are logged appends.
        add_all(&store, b"k", &mut s, 1..=50);
        let s = std::sync::Mutex::new(s);
        let deleted = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let pending = {
                let mut g = s.lock().unwrap();
                store
                    .prepare_flush(0, [(&b"k"[..], &mut *g)], usize::MAX)
                    .unwrap()
            };
            let xdel = scope.spawn(|| {
                let mut g = s.lock().unwrap();
                step(&store, 0, b"k", &mut g, |s, out| {
                    assert_eq!(s.delete(&[StreamId::new(10, 0)], out).unwrap(), 1);
                });
                deleted.store(true, std::sync::atomic::Ordering::Release);
            });
            // Time for the XDEL to run into the wait (it must still be waiting after it).
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!deleted.load(std::sync::atomic::Ordering::Acquire));
            let committed = pending.commit();
            xdel.join().unwrap();
            s.lock().unwrap().end_flush(committed.is_ok());
            committed.unwrap();
        });
    }
    let mut loaded = reopen(dir.path());
    let want: Vec<u64> = (1..=50).filter(|&i| i != 10).collect();
    assert_eq!(ids_of(&mut loaded[0].2), want);
}

/// The same for DEL: the removal scans what fjall holds, so it must come after a checkpoint
/// batch of the stream that was being committed, or that batch would bring the stream back.
#[test]
fn a_delete_made_while_a_checkpoint_batch_commits_lands_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut s = StoredStream::new();
        add_all(&store, b"k", &mut s, 1..=50);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let pending = store
                .prepare_flush(0, [(&b"k"[..], &mut s)], usize::MAX)
                .unwrap();
            let del = scope.spawn(|| {
                store.delete_stream(0, b"k", &StoredStream::new()).unwrap();
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!done.load(std::sync::atomic::Ordering::Acquire));
            pending.commit().unwrap();
            del.join().unwrap();
        });
    }
    assert!(reopen(dir.path()).is_empty());
}

/// Records in fjall keyspace `keyspace` whose keys start with `prefix` (the store closed).
fn records(dir: &std::path::Path, keyspace: &str, prefix: &[u8]) -> usize {
    let db = fjall::Database::builder(dir.join("fjall")).open().unwrap();
    let ks = db
        .keyspace(keyspace, fjall::KeyspaceCreateOptions::default)
        .unwrap();
    ks.prefix(prefix).count()
}

/// Deletion floors left in the `meta` keyspace (see `Store::delete_stream`).
fn floors(dir: &std::path::Path) -> usize {
    records(dir, "meta", b"floor/")
}

/// Streams that the tail log created (their first XADD was logged, not written into fjall)
/// come back after a reopen. One deleted by DEL, FLUSHDB or FLUSHALL stays deleted, even
/// when a checkpoint had written it into fjall while its creation was still logged; one
/// created again under the same key comes back as the new one. Once the checkpoint retires
/// the segments holding the creations, the floors that kept them dead go too.
#[test]
fn streams_created_in_the_tail_log_reopen_and_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut kept = StoredStream::new();
    let mut again = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        add_all(&store, b"kept", &mut kept, 1..=3);
        let mut gone = StoredStream::new();
        add_all(&store, b"gone", &mut gone, 1..=3);
        store.flush_stream(0, b"gone", &mut gone).unwrap();
        assert!(gone.is_stored());
        store.delete_stream(0, b"gone", &gone).unwrap();
        let mut first = StoredStream::new();
        add_all(&store, b"again", &mut first, 1..=5);
        assert!(!first.is_stored());
        store.delete_stream(0, b"again", &first).unwrap();
        add_all(&store, b"again", &mut again, 7..=8);
        let mut other_db = StoredStream::new();
        step(&store, 1, b"kept", &mut other_db, |s, out| {
            s.add(
                IdSpec::Auto,
                &fields(1),
                None,
                5,
                &NodeLimits::default(),
                out,
            )
            .unwrap();
        });
        store.flush(Some(1), None::<&StoredStream>).unwrap();
    }
    let names = |loaded: &[(u32, Bytes, StoredStream)]| {
        loaded
            .iter()
            .map(|(db, k, _)| (*db, k.clone()))
            .collect::<Vec<_>>()
    };
    let loaded = reopen(dir.path());
    assert_eq!(
        names(&loaded),
        [(0, Bytes::from("again")), (0, Bytes::from("kept"))]
    );
    assert_eq!(loaded[0].2, again);
    assert_eq!(loaded[1].2, kept);
    drop(loaded);
    assert!(floors(dir.path()) > 0);
    let mut after = StoredStream::new();
    {
        // A reopened store numbers new streams above every floor, so FLUSHALL's floor
        // kills the streams logged before it and none created after.
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        store.flush(None, None::<&StoredStream>).unwrap();
        add_all(&store, b"after", &mut after, 1..=2);
        drop(store);
        let loaded = reopen(dir.path());
        assert_eq!(names(&loaded), [(0, Bytes::from("after"))]);
        assert_eq!(loaded[0].2, after);
        drop(loaded);
        // The checkpoint writes "after" into fjall and retires every segment.
        let (store, mut streams, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        store.close_tail_segment().unwrap();
        let (upto, named) = store.stale_tail(true).unwrap();
        assert_eq!(named, [(0, Bytes::from("after"))]);
        store
            .flush_stream(0, b"after", &mut streams[0].stream)
            .unwrap();
        store.retire_tail(upto).unwrap();
        drop(streams);
    }
    assert_eq!(floors(dir.path()), 0);
    let loaded = reopen(dir.path());
    assert_eq!(names(&loaded), [(0, Bytes::from("after"))]);
    assert_eq!(loaded[0].2, after);
}

/// Changes to consumer groups alone are logged in the tail log, not written into fjall; a
/// reopen replays them. The checkpoint writes the records they changed as memory has them:
/// an entry delivered and acknowledged between two checkpoints never reaches fjall, while
/// the acknowledgement of one fjall holds removes it there, so that once the segments are
/// retired a reopen still finds exactly the entries still pending.
#[test]
fn group_changes_are_logged_and_checkpointed_as_they_stand() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = StoredStream::new();
    let read = |store: &Store, s: &mut StoredStream, n: u64| {
        step(store, 0, b"k", s, |s, out| {
            let got = s.read_group(b"k", b"g", b"c", ReadId::New, Some(n), false, 1000, out);
            assert_eq!(got.unwrap().map(|v| v.len() as u64), Some(n));
        });
    };
    let ack = |store: &Store, s: &mut StoredStream, ids: std::ops::RangeInclusive<u64>| {
        let ids: Vec<StreamId> = ids.map(|i| StreamId::new(i, 0)).collect();
        step(store, 0, b"k", s, |s, out| {
            s.ack(b"g", &ids, out);
        });
    };
    let checkpoint = |store: &Store, s: &mut StoredStream| {
        store.close_tail_segment().unwrap();
        let (upto, _) = store.stale_tail(true).unwrap();
        store.flush_stream(0, b"k", s).unwrap();
        store.retire_tail(upto).unwrap();
    };
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        add_all(&store, b"k", &mut s, 1..=100);
        step(&store, 0, b"k", &mut s, |s, out| {
            s.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, out)
                .unwrap();
        });
        read(&store, &mut s, 30);
        ack(&store, &mut s, 1..=20);
    }
    // Nothing of the reads and acknowledgements reached fjall; the log brings them back.
    assert_eq!(records(dir.path(), "pending", b""), 0);
    let loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    drop(loaded);
    {
        let (store, mut streams, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut disk = streams.remove(0).stream;
        checkpoint(&store, &mut disk);
        // 21-30 are in fjall now; 31-60 are delivered and 31-50 acknowledged before the next
        // checkpoint, as is 21-25 of those fjall holds.
        read(&store, &mut disk, 30);
        ack(&store, &mut disk, 21..=25);
        ack(&store, &mut disk, 31..=50);
        checkpoint(&store, &mut disk);
        let mut model = Vec::new();
        s.read_group(
            b"k",
            b"g",
            b"c",
            ReadId::New,
            Some(30),
            false,
            1000,
            &mut model,
        )
        .unwrap();
        for ids in [21..=25, 31..=50] {
            let ids: Vec<StreamId> = ids.map(|i| StreamId::new(i, 0)).collect();
            s.ack(b"g", &ids, &mut model);
        }
        assert_eq!(disk, s);
        drop(streams);
    }
    assert_eq!(records(dir.path(), "pending", b""), 15);
    let loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    let pel: Vec<u64> = loaded[0].2.groups()[&Bytes::from("g")]
        .pending()
        .keys()
        .map(|id| id.ms)
        .collect();
    assert_eq!(pel, (26..=30).chain(51..=60).collect::<Vec<_>>());
}

/// What `Store` prefixes stream `key` of database `db` with.
fn prefix_of(db: u32, key: &[u8]) -> Vec<u8> {
    [
        &db.to_be_bytes()[..],
        &(key.len() as u32).to_be_bytes(),
        key,
    ]
    .concat()
}

/// DEL of a stream with many records in fjall leaves them to the purge thread. A stream
/// created again under its key waits for the purge, so the purge never takes the new
/// stream's records, even under the same IDs; once it ends, no record of the old one and
/// no purge marker is left.
#[test]
fn a_large_stream_is_purged_in_the_background_and_not_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let mut again = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut big = StoredStream::new();
        add_all(&store, b"big", &mut big, 1..=6000);
        store.flush_stream(0, b"big", &mut big).unwrap();
        store.delete_stream(0, b"big", &big).unwrap();
        add_all(&store, b"big", &mut again, 1..=2);
        store.flush_stream(0, b"big", &mut again).unwrap();
    }
    let prefix = prefix_of(0, b"big");
    assert_eq!(records(dir.path(), "entries", &prefix), 2);
    assert_eq!(records(dir.path(), "nodes", &prefix), 1);
    assert_eq!(records(dir.path(), "meta", b"purge/"), 0);
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(ids_of(&mut loaded[0].2), vec![1, 2]);
}

/// A purge the last run left unfinished (its marker, and records of a stream with no stream
/// record) is finished at start-up, before anything is loaded.
#[test]
fn a_purge_left_unfinished_is_finished_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut kept = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut big = StoredStream::new();
        add_all(&store, b"big", &mut big, 1..=300);
        store.flush_stream(0, b"big", &mut big).unwrap();
        add_all(&store, b"kept", &mut kept, 1..=3);
        store.flush_stream(0, b"kept", &mut kept).unwrap();
    }
    let prefix = prefix_of(0, b"big");
    {
        // What DEL's own batch does, with the purge not yet begun.
        let db = fjall::Database::builder(dir.path().join("fjall"))
            .open()
            .unwrap();
        let open = |name| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .unwrap()
        };
        let mut batch = db.batch();
        batch.remove(&open("streams"), prefix.clone());
        batch.insert(&open("meta"), [&b"purge/"[..], &prefix].concat(), []);
        // And the floor that keeps its creation, still in the tail log, dead.
        batch.insert(
            &open("meta"),
            [&b"floor/"[..], &prefix].concat(),
            1000u64.to_be_bytes(),
        );
        batch.commit().unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    assert_eq!(records(dir.path(), "entries", &prefix), 300);
    let loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].2, kept);
    drop(loaded);
    assert_eq!(records(dir.path(), "entries", &prefix), 0);
    assert_eq!(records(dir.path(), "nodes", &prefix), 0);
    assert_eq!(records(dir.path(), "meta", b"purge/"), 0);
}

/// FLUSHALL of streams with many records in fjall leaves them to the purge thread too; a
/// stream created after it waits for the purge, and only it is left.
#[test]
fn a_large_flush_is_purged_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut after = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut big = StoredStream::new();
        add_all(&store, b"big", &mut big, 1..=5000);
        store.flush_stream(0, b"big", &mut big).unwrap();
        let mut small = StoredStream::new();
        add_all(&store, b"small", &mut small, 1..=3);
        store.flush_stream(0, b"small", &mut small).unwrap();
        store.flush(None, [&big, &small]).unwrap();
        add_all(&store, b"big", &mut after, 1..=2);
        store.flush_stream(0, b"big", &mut after).unwrap();
    }
    assert_eq!(records(dir.path(), "entries", b""), 2);
    assert_eq!(records(dir.path(), "meta", b"purge/"), 0);
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(ids_of(&mut loaded[0].2), vec![1, 2]);
}

/// Bytes allocated to the files under `dir` (fjall's journal is created at its full size).
fn tree_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => tree_bytes(&e.path()),
                    Ok(m) => m.blocks() * 512,
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Deleting a large stream gives its disk space back: after the purge, the stream keyspaces
/// are compacted, so the tombstones and the data under them leave fjall's files (fjall's own
/// compaction had left both for good).
#[test]
fn deleting_a_large_stream_gives_its_disk_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let fjall_dir = dir.path().join("fjall");
    let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    let mut big = StoredStream::new();
    // Values that do not compress: fjall's blocks are LZ4-compressed.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 1..=20_000 {
        let value: Vec<u8> = (0..200)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (seed >> 56) as u8
            })
            .collect();
        step(&store, 0, b"big", &mut big, |s, out| {
            s.add(
                IdSpec::Explicit(StreamId::new(i, 0)),
                &[Bytes::from("f"), Bytes::from(value)],
                None,
                0,
                &NodeLimits::default(),
                out,
            )
            .unwrap();
        });
    }
    store.flush_stream(0, b"big", &mut big).unwrap();
    store.sync().unwrap();
    let full = tree_bytes(&fjall_dir);
    assert!(
        full > 2_000_000,
        "20,000 entries of 200 bytes took {full} bytes"
    );
    store.delete_stream(0, b"big", &big).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = tree_bytes(&fjall_dir);
        if now < full / 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fjall still holds {now} bytes of the {full} the deleted stream took"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A trim that drops more than a few thousand entries writes a floor (a `trim/` marker) in
/// its batch and leaves the records below it to the purge thread; reads never meet them,
/// the stream keeps taking appends and checkpoints meanwhile, and once the purge ends only
/// the node the trim cut into (its tombstones included) and the later ones are on disk.
#[test]
fn a_large_trim_leaves_its_records_to_the_purge_thread() {
    let dir = tempfile::tempdir().unwrap();
    let limits = NodeLimits::default();
    let mut s = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        add_all(&store, b"big", &mut s, 1..=6000);
        store.flush_stream(0, b"big", &mut s).unwrap();
        step(&store, 0, b"big", &mut s, |s, out| {
            let trim = TrimArgs::exact(TrimStrategy::MaxLen(50));
            assert_eq!(s.trim(&trim, &limits, out).unwrap(), 5950);
        });
        assert_eq!(ids_of(&mut s), (5951..=6000).collect::<Vec<_>>());
        add_all(&store, b"big", &mut s, 6001..=6010);
        store.flush_stream(0, b"big", &mut s).unwrap();
        // DEBUG RELOAD's path: it waits for the purges, then loads what fjall holds.
        let (mut loaded, _) = store.load_all().unwrap();
        assert_eq!(loaded[0].stream, s);
        assert_eq!(
            ids_of(&mut loaded[0].stream),
            (5951..=6010).collect::<Vec<_>>()
        );
        assert_eq!(store.purges().0, 0);
    }
    let prefix = prefix_of(0, b"big");
    assert_eq!(records(dir.path(), "entries", &prefix), 110);
    assert_eq!(records(dir.path(), "nodes", &prefix), 2);
    assert_eq!(records(dir.path(), "meta", b"trim/"), 0);
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    assert_eq!(ids_of(&mut loaded[0].2), (5951..=6010).collect::<Vec<_>>());
}

/// A trim's purge the last run left unfinished (its marker, and the records below its
/// floor) goes on in the background after a restart, and loading skips the node records
/// below its floor: the trimmed entries never come back.
#[test]
fn a_trims_purge_left_unfinished_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let incarnation = {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut big = StoredStream::new();
        add_all(&store, b"big", &mut big, 1..=300);
        store.flush_stream(0, b"big", &mut big).unwrap();
        big.incarnation()
    };
    let prefix = prefix_of(0, b"big");
    {
        // The marker of a trim through entry 200 whose records are all still there.
        let db = fjall::Database::builder(dir.path().join("fjall"))
            .open()
            .unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let marker = [
            &b"trim/"[..],
            &prefix,
            &200u64.to_be_bytes(),
            &u64::MAX.to_be_bytes(),
        ]
        .concat();
        meta.insert(marker, incarnation.to_be_bytes()).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    assert_eq!(records(dir.path(), "entries", &prefix), 300);
    {
        let (store, mut loaded, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        assert_eq!(
            ids_of(&mut loaded[0].stream),
            (201..=300).collect::<Vec<_>>()
        );
        assert_eq!(loaded[0].stream.len(), 100);
        // DEBUG RELOAD's path waits for the purge.
        let (mut again, _) = store.load_all().unwrap();
        assert_eq!(again[0].stream, loaded[0].stream);
        assert_eq!(
            ids_of(&mut again[0].stream),
            (201..=300).collect::<Vec<_>>()
        );
    }
    assert_eq!(records(dir.path(), "entries", &prefix), 100);
    assert_eq!(records(dir.path(), "nodes", &prefix), 1);
    assert_eq!(records(dir.path(), "meta", b"trim/"), 0);
}

/// A new stream under the key of a large stream just deleted is created at once (its first
/// appends go to the tail log, which the purge never touches); its first batch of its own
/// waits for the purge, and neither the purge nor a reopen mixes the two lives.
#[test]
fn a_key_is_reused_at_once_after_a_large_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut again = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut big = StoredStream::new();
        add_all(&store, b"big", &mut big, 1..=20_000);
        store.flush_stream(0, b"big", &mut big).unwrap();
        store.delete_stream(0, b"big", &big).unwrap();
        add_all(&store, b"big", &mut again, 5..=7);
        assert_eq!(ids_of(&mut again), vec![5, 6, 7]);
        // XDEL: a batch of the new life's own, after the purge.
        step(&store, 0, b"big", &mut again, |s, out| {
            assert_eq!(s.delete(&[StreamId::new(6, 0)], out).unwrap(), 1);
        });
        add_all(&store, b"big", &mut again, 8..=9);
    }
    let prefix = prefix_of(0, b"big");
    assert_eq!(records(dir.path(), "meta", b"purge/"), 0);
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].2, again);
    assert_eq!(ids_of(&mut loaded[0].2), vec![5, 7, 8, 9]);
    drop(loaded);
    assert_eq!(records(dir.path(), "entries", &prefix), 3);
}

/// XSETID after a large trim may move the last ID back below the trim's floor; entries
/// added then have keys the trim's purge would take. Its batch (a new life of the stream)
/// waits for the purge, so they survive it and a reopen.
#[test]
fn entries_below_a_trims_floor_after_xsetid_survive_its_purge() {
    let dir = tempfile::tempdir().unwrap();
    let limits = NodeLimits::default();
    let mut s = StoredStream::new();
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        add_all(&store, b"k", &mut s, 1..=40_000);
        store.flush_stream(0, b"k", &mut s).unwrap();
        step(&store, 0, b"k", &mut s, |s, out| {
            let trim = TrimArgs::exact(TrimStrategy::MaxLen(0));
            assert_eq!(s.trim(&trim, &limits, out).unwrap(), 40_000);
        });
        step(&store, 0, b"k", &mut s, |s, out| {
            s.set_id(StreamId::new(1, 0), None, None, out).unwrap();
        });
        // XSETID's batch waited for the purge.
        assert_eq!(store.purges().0, 0);
        add_all(&store, b"k", &mut s, 2..=4);
        store.flush_stream(0, b"k", &mut s).unwrap();
        let (mut loaded, _) = store.load_all().unwrap();
        assert_eq!(ids_of(&mut loaded[0].stream), vec![2, 3, 4]);
    }
    let mut loaded = reopen(dir.path());
    assert_eq!(loaded[0].2, s);
    assert_eq!(ids_of(&mut loaded[0].2), vec![2, 3, 4]);
    drop(loaded);
    assert_eq!(records(dir.path(), "entries", &prefix_of(0, b"k")), 3);
}

/// A range an ACKED trim left to the purge thread (nodes taken whole past a node it kept)
/// that the last run did not finish: start-up loads the stream without the range's nodes,
/// keeps the nodes on both sides, and the purge removes exactly the range's records.
#[test]
fn a_trimmed_range_left_unfinished_is_skipped_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    let incarnation;
    {
        let (store, _, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
        let mut s = StoredStream::new();
        // Nodes [1..100] [101..200] [201..300].
        add_all(&store, b"s", &mut s, 1..=300);
        store.flush_stream(0, b"s", &mut s).unwrap();
        incarnation = s.incarnation();
    }
    let prefix = prefix_of(0, b"s");
    {
        // The marker the trim's batch writes: the life, then the range's first ID.
        let db = fjall::Database::builder(dir.path().join("fjall"))
            .open()
            .unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let id = |ms: u64| [ms.to_be_bytes(), 0u64.to_be_bytes()].concat();
        let key = [&b"trim/"[..], &prefix, &id(200)].concat();
        let value = [&incarnation.to_be_bytes()[..], &id(101)].concat();
        meta.insert(key, value).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let (store, streams, _) = Store::open(dir.path(), FsyncPolicy::No).unwrap();
    let mut s = streams.into_iter().next().unwrap().stream;
    assert_eq!(s.node_count(), 2);
    let want: Vec<u64> = (1..=100).chain(201..=300).collect();
    assert_eq!(ids_of(&mut s), want);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.purges().0 > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the purge never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop((store, s));
    assert_eq!(records(dir.path(), "entries", &prefix), 200);
    assert_eq!(records(dir.path(), "nodes", &prefix), 2);
    assert_eq!(records(dir.path(), "meta", b"trim/"), 0);
}
