//! Strings and key deadlines in the store: each write is read back after a reopen, a
//! deletion takes the deadline with it, a stream's deletion takes its deadline, and a
//! string replacing a stream leaves the string alone.

#![allow(clippy::unwrap_used)]

use brooklet_persistence::{Deadline, FsyncPolicy, Store, StoredStream, StringEdit};

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, FsyncPolicy::Everysec).unwrap().0
}

/// (db, key, value) and (db, key, deadline), sorted.
type Flat = (Vec<(u32, Vec<u8>, Vec<u8>)>, Vec<(u32, Vec<u8>, u64)>);

/// What `store` loads at start-up, with the values it left on disk read back.
fn loaded(store: &Store) -> Flat {
    let k = store.load_keys().unwrap();
    let mut s: Vec<_> = k
        .strings
        .into_iter()
        .map(|s| {
            let value = s
                .value
                .or_else(|| store.read_string(s.db, &s.key).unwrap())
                .expect("a string loaded without its value has a record");
            (s.db, s.key.to_vec(), value.to_vec())
        })
        .collect();
    let mut d: Vec<_> = k
        .deadlines
        .into_iter()
        .map(|d| (d.db, d.key.to_vec(), d.at_ms))
        .collect();
    s.sort();
    d.sort();
    (s, d)
}

#[test]
fn strings_and_deadlines_come_back_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.write_string(0, b"a", b"1", Deadline::Clear).unwrap();
        store
            .write_string(0, b"b", b"2", Deadline::At(5_000))
            .unwrap();
        store.write_string(0, b"b", b"3", Deadline::Keep).unwrap();
        store
            .write_string(1, b"a", b"db1", Deadline::At(7))
            .unwrap();
        store
            .write_string(1, b"a", b"db1", Deadline::Clear)
            .unwrap();
        store
            .write_strings(0, [(&b"m"[..], &b"x"[..], false), (b"b", b"4", false)])
            .unwrap();
        store
            .write_string(0, b"gone", b"v", Deadline::At(9))
            .unwrap();
        store.delete_strings(0, [&b"gone"[..]]).unwrap();
        store.set_deadline(0, b"a", Some(42)).unwrap();
        store.set_deadline(0, b"m", Some(43)).unwrap();
        store.set_deadline(0, b"m", None).unwrap();
    }
    let store = open(dir.path());
    let (strings, deadlines) = loaded(&store);
    assert_eq!(
        strings,
        vec![
            (0, b"a".to_vec(), b"1".to_vec()),
            (0, b"b".to_vec(), b"4".to_vec()),
            (0, b"m".to_vec(), b"x".to_vec()),
            (1, b"a".to_vec(), b"db1".to_vec()),
        ]
    );
    // MSET was told "b" had no deadline to remove: the caller's memory decides.
    assert_eq!(
        deadlines,
        vec![(0, b"a".to_vec(), 42), (0, b"b".to_vec(), 5_000)]
    );
    store.flush(Some(0), std::iter::empty()).unwrap();
    let (strings, deadlines) = loaded(&store);
    assert_eq!(strings, vec![(1, b"a".to_vec(), b"db1".to_vec())]);
    assert!(deadlines.is_empty());
}

#[test]
fn a_streams_deletion_takes_its_deadline_and_a_replacing_string_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let stream = StoredStream::new();
    store.set_deadline(0, b"s", Some(100)).unwrap();
    store.delete_stream(0, b"s", &stream).unwrap();
    assert!(loaded(&store).1.is_empty());
    store.set_deadline(0, b"t", Some(100)).unwrap();
    store
        .replace_stream_with_string(0, b"t", &stream, b"v", Some(200))
        .unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        loaded(&store),
        (
            vec![(0, b"t".to_vec(), b"v".to_vec())],
            vec![(0, b"t".to_vec(), 200)]
        )
    );
}

/// The keyspace as a test's memory holds it: (db, key) to (string value, deadline).
type Model = std::collections::BTreeMap<(u32, Vec<u8>), (Option<Vec<u8>>, Option<u64>)>;

/// A checkpoint's view of [`Model`]; after each of its batches it copies the data
/// directory, as a crash right then would leave it.
struct Host<'a> {
    model: &'a Model,
    dir: &'a std::path::Path,
    crashes: std::cell::RefCell<Vec<tempfile::TempDir>>,
}

impl brooklet_persistence::StreamHost for Host<'_> {
    fn batch(&self, f: &mut dyn FnMut()) {
        f();
        self.crashes.borrow_mut().push(copy_of(self.dir));
    }

    fn visit(&self, _: u32, _: &[u8], _: bool, _: &mut dyn FnMut(&mut StoredStream)) -> bool {
        true
    }

    fn visit_key(
        &self,
        db: u32,
        key: &[u8],
        _: bool,
        f: &mut dyn FnMut(brooklet_persistence::KeyState),
    ) -> bool {
        let (string, deadline) = self
            .model
            .get(&(db, key.to_vec()))
            .cloned()
            .unwrap_or_default();
        f(brooklet_persistence::KeyState {
            string: string.map(bytes::Bytes::from),
            string_on_disk: false,
            deadline,
        });
        true
    }
}

/// SETRANGE's edit of `v`: zero-filled up to `at` if shorter, then `patch` written there.
fn write_range(v: &mut Vec<u8>, at: usize, patch: &[u8]) {
    if v.len() < at + patch.len() {
        v.resize(at + patch.len(), 0);
    }
    v[at..at + patch.len()].copy_from_slice(patch);
}

/// Runs a checkpoint (`all`: of every closed segment) with `model` as memory; returns a
/// copy of the directory after each of its batches, as a crash then would leave it.
fn checkpoint_with_crashes(
    store: &Store,
    model: &Model,
    dir: &std::path::Path,
    all: bool,
) -> Vec<tempfile::TempDir> {
    let host = Host {
        model,
        dir,
        crashes: std::cell::RefCell::new(Vec::new()),
    };
    store.checkpoint(&host, all).unwrap();
    host.crashes.into_inner()
}

/// A copy of data directory `dir` as it is now (what a SIGKILL would leave: every file as
/// the operating system holds it).
fn copy_of(dir: &std::path::Path) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
    let out = tempfile::tempdir().unwrap();
    copy(dir, out.path());
    out
}

/// What the model says `load_keys` must return.
fn expected(model: &Model) -> Flat {
    let mut s = Vec::new();
    let mut d = Vec::new();
    for ((db, key), (value, deadline)) in model {
        if let Some(v) = value {
            s.push((*db, key.clone(), v.clone()));
        }
        if let Some(ms) = deadline {
            d.push((*db, key.clone(), *ms));
        }
    }
    (s, d)
}

/// Strings and deadlines logged in the tail log, some of them deleted or replaced by fjall
/// batches (DEL, a stream's deletion, a string replacing a stream, FLUSHDB) between their
/// records, or appended to, read back exactly after a crash at every point: before the
/// checkpoint, after each of its batches (segments not yet retired), after the retirement,
/// and with more records logged after it.
#[test]
fn logged_strings_replay_exactly_after_a_crash_at_every_checkpoint_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut model = Model::new();
    let set = |model: &mut Model, db: u32, key: &[u8], v: &[u8], d: Deadline| {
        store.write_string(db, key, v, d).unwrap();
        let slot = model.entry((db, key.to_vec())).or_default();
        slot.0 = Some(v.to_vec());
        match d {
            Deadline::Keep => {}
            Deadline::Clear => slot.1 = None,
            Deadline::At(ms) => slot.1 = Some(ms),
        }
    };
    set(&mut model, 0, b"a", b"1", Deadline::At(5_000));
    set(&mut model, 0, b"a", b"2", Deadline::Keep);
    set(&mut model, 0, b"b", b"x", Deadline::Clear);
    // A string deleted, then set again: the record before the deletion stays dead.
    set(&mut model, 0, b"c", b"old", Deadline::At(9_000));
    store.delete_strings(0, [&b"c"[..]]).unwrap();
    model.remove(&(0, b"c".to_vec()));
    set(&mut model, 0, b"c", b"new", Deadline::Keep);
    // Deleted and left deleted.
    set(&mut model, 0, b"d", b"gone", Deadline::At(1));
    store.delete_strings(0, [&b"d"[..]]).unwrap();
    model.remove(&(0, b"d".to_vec()));
    // A stream's logged deadline, then its deletion, then a string under its key.
    store.set_deadline(0, b"s", Some(100)).unwrap();
    store.delete_stream(0, b"s", &StoredStream::new()).unwrap();
    set(&mut model, 0, b"s", b"after", Deadline::Keep);
    // A string replacing a stream (one fjall batch) after logged records of the key.
    set(&mut model, 0, b"t", b"before", Deadline::At(50));
    store.delete_strings(0, [&b"t"[..]]).unwrap();
    store.set_deadline(0, b"t", Some(60)).unwrap();
    store
        .replace_stream_with_string(0, b"t", &StoredStream::new(), b"v", Some(200))
        .unwrap();
    model.insert((0, b"t".to_vec()), (Some(b"v".to_vec()), Some(200)));
    // MSET, EXPIRE and PERSIST.
    store
        .write_strings(0, [(&b"m"[..], &b"1"[..], false), (b"a", b"3", true)])
        .unwrap();
    model.insert((0, b"m".to_vec()), (Some(b"1".to_vec()), None));
    model.insert((0, b"a".to_vec()), (Some(b"3".to_vec()), None));
    store.set_deadline(0, b"m", Some(77)).unwrap();
    store.set_deadline(0, b"b", Some(88)).unwrap();
    store.set_deadline(0, b"b", None).unwrap();
    model.get_mut(&(0, b"m".to_vec())).unwrap().1 = Some(77);
    // A database flushed between records of its own.
    set(&mut model, 1, b"a", b"flushed", Deadline::At(10));
    store.flush(Some(1), std::iter::empty()).unwrap();
    model.remove(&(1, b"a".to_vec()));
    set(&mut model, 1, b"z", b"kept", Deadline::Keep);
    // APPENDs: to a string only the log holds, and many to one string, which replay
    // grows in place.
    let append = |model: &mut Model, db: u32, key: &[u8], tail: &[u8]| {
        let v = model
            .get_mut(&(db, key.to_vec()))
            .unwrap()
            .0
            .as_mut()
            .unwrap();
        store
            .edit_string(db, key, v.len() as u64, StringEdit::Append(tail))
            .unwrap();
        v.extend_from_slice(tail);
    };
    append(&mut model, 0, b"c", b"+1");
    set(&mut model, 0, b"log", b"", Deadline::Keep);
    for i in 0..2_000 {
        append(&mut model, 0, b"log", format!("line {i}\n").as_bytes());
    }
    // SETRANGEs: inside it, and past its end.
    let range = |model: &mut Model, db: u32, key: &[u8], at: usize, patch: &[u8]| {
        let v = model
            .get_mut(&(db, key.to_vec()))
            .unwrap()
            .0
            .as_mut()
            .unwrap();
        let edit = StringEdit::Write { at, patch };
        store.edit_string(db, key, v.len() as u64, edit).unwrap();
        write_range(v, at, patch);
    };
    range(&mut model, 0, b"log", 5, b"LINE");
    range(&mut model, 0, b"c", 10, b"far");
    // Every string record is acknowledged once in the OS's hands.
    store.flush_to_os(u64::MAX).unwrap();
    let mut crashes = vec![copy_of(dir.path())];
    assert_eq!(loaded(&store), expected(&model), "reload");
    store.close_tail_segment().unwrap();
    let mut batches = checkpoint_with_crashes(&store, &model, dir.path(), true);
    assert!(!batches.is_empty(), "the checkpoint wrote strings");
    crashes.append(&mut batches);
    crashes.push(copy_of(dir.path()));
    assert_eq!(store.stats().tail_segments, 1, "retired");
    assert_eq!(loaded(&store), expected(&model), "reload after");
    for (i, crash) in crashes.iter().enumerate() {
        let reopened = open(crash.path());
        assert_eq!(
            loaded(&reopened),
            expected(&model),
            "crash {i} of {}",
            crashes.len()
        );
    }
    // Records after the checkpoint, over what it wrote.
    set(&mut model, 0, b"a", b"4", Deadline::At(123));
    append(&mut model, 0, b"log", b"after the checkpoint");
    store.delete_strings(0, [&b"b"[..]]).unwrap();
    model.remove(&(0, b"b".to_vec()));
    store.flush_to_os(u64::MAX).unwrap();
    let crash = copy_of(dir.path());
    let reopened = open(crash.path());
    assert_eq!(loaded(&reopened), expected(&model));
    drop(reopened);
    // A checkpoint writes the string with those appends into fjall; a crash before it
    // retires their records replays them over that later value.
    append(&mut model, 0, b"log", b", and more");
    range(&mut model, 0, b"log", 0, b"FIRST");
    store.flush_to_os(u64::MAX).unwrap();
    store.close_tail_segment().unwrap();
    let batches = checkpoint_with_crashes(&store, &model, dir.path(), true);
    for (i, crash) in batches.iter().enumerate() {
        let reopened = open(crash.path());
        assert_eq!(
            loaded(&reopened),
            expected(&model),
            "second checkpoint, crash {i}"
        );
    }
    drop(store);
    assert_eq!(loaded(&open(dir.path())), expected(&model));
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

/// Random string writes, appends, deadline changes, deletions, stream deletions over the
/// same keys, database flushes and checkpoints (with small segments, so they retire some records and
/// not others), against a model: after every few steps a copy of the directory (a crash
/// then) and the store itself (DEBUG RELOAD) read back exactly what the model holds.
#[test]
fn random_string_writes_replay_exactly_after_crashes_and_checkpoints() {
    for seed in 1..=2u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.set_tail_segment_bytes(1024);
        let mut model = Model::new();
        let mut rng = Lcg(seed);
        let keys: Vec<Vec<u8>> = (0..12).map(|i| format!("k{i}").into_bytes()).collect();
        for step in 0..400u64 {
            let db = rng.next(2) as u32;
            let key = keys[rng.next(keys.len() as u64) as usize].clone();
            let name = (db, key.clone());
            let value = format!("v{step}").into_bytes();
            let deadline = match rng.next(3) {
                0 => Deadline::Keep,
                1 => Deadline::Clear,
                _ => Deadline::At(1_000 + step),
            };
            match rng.next(16) {
                12 | 13 if model.get(&name).is_some_and(|(v, _)| v.is_some()) => {
                    // APPEND: logged as the bytes added after the length the string had.
                    let slot = model.get_mut(&name).unwrap();
                    let v = slot.0.as_mut().unwrap();
                    store
                        .edit_string(db, &key, v.len() as u64, StringEdit::Append(&value))
                        .unwrap();
                    v.extend_from_slice(&value);
                }
                14 | 15 if model.get(&name).is_some_and(|(v, _)| v.is_some()) => {
                    // SETRANGE: inside the string, over its end, or past it (zero-filled).
                    let slot = model.get_mut(&name).unwrap();
                    let v = slot.0.as_mut().unwrap();
                    let at = rng.next(v.len() as u64 + 8) as usize;
                    let edit = StringEdit::Write { at, patch: &value };
                    store.edit_string(db, &key, v.len() as u64, edit).unwrap();
                    write_range(v, at, &value);
                }
                0..=4 => {
                    store.write_string(db, &key, &value, deadline).unwrap();
                    let slot = model.entry(name).or_default();
                    slot.0 = Some(value);
                    match deadline {
                        Deadline::Keep => {}
                        Deadline::Clear => slot.1 = None,
                        Deadline::At(ms) => slot.1 = Some(ms),
                    }
                }
                5 => {
                    let other = keys[rng.next(keys.len() as u64) as usize].clone();
                    let had = |k: &Vec<u8>| {
                        model
                            .get(&(db, k.clone()))
                            .is_some_and(|(_, d)| d.is_some())
                    };
                    let (h1, h2) = (had(&key), had(&other));
                    store
                        .write_strings(db, [(&key[..], &value[..], h1), (&other[..], b"m", h2)])
                        .unwrap();
                    model.insert(name, (Some(value), None));
                    model.insert((db, other), (Some(b"m".to_vec()), None));
                }
                6 | 7 if model.contains_key(&name) => {
                    let at = match deadline {
                        Deadline::At(ms) => Some(ms),
                        _ => None,
                    };
                    store.set_deadline(db, &key, at).unwrap();
                    model.get_mut(&name).unwrap().1 = at;
                }
                8 if model.get(&name).is_some_and(|(v, _)| v.is_some()) => {
                    store.delete_strings(db, [&key[..]]).unwrap();
                    model.remove(&name);
                }
                9 => {
                    // The key as a stream (its deadline logged), then deleted.
                    if model.get(&name).is_some_and(|(v, _)| v.is_some()) {
                        store.delete_strings(db, [&key[..]]).unwrap();
                    }
                    store.set_deadline(db, &key, Some(5)).unwrap();
                    store.delete_stream(db, &key, &StoredStream::new()).unwrap();
                    model.remove(&name);
                    if rng.next(2) == 0 {
                        // A string replacing that stream.
                        store
                            .replace_stream_with_string(
                                db,
                                &key,
                                &StoredStream::new(),
                                &value,
                                Some(9),
                            )
                            .unwrap();
                        model.insert(name, (Some(value), Some(9)));
                    }
                }
                10 if rng.next(8) == 0 => {
                    store.flush(Some(db), std::iter::empty()).unwrap();
                    model.retain(|(d, _), _| *d != db);
                }
                11 => {
                    // Every write so far acknowledged: in the OS's hands.
                    store.flush_to_os(u64::MAX).unwrap();
                    let all = rng.next(2) == 0;
                    let batches = checkpoint_with_crashes(&store, &model, dir.path(), all);
                    for (i, crash) in batches.iter().enumerate() {
                        let reopened = open(crash.path());
                        assert_eq!(
                            loaded(&reopened),
                            expected(&model),
                            "seed {seed} step {step}: crash after checkpoint batch {i}"
                        );
                    }
                }
                _ => {}
            }
            if step % 100 == 99 {
                store.flush_to_os(u64::MAX).unwrap();
                let crash = copy_of(dir.path());
                let reopened = open(crash.path());
                assert_eq!(
                    loaded(&reopened),
                    expected(&model),
                    "seed {seed} step {step}: crash"
                );
                drop(reopened);
                assert_eq!(
                    loaded(&store),
                    expected(&model),
                    "seed {seed} step {step}: reload"
                );
            }
        }
        drop(store);
        assert_eq!(
            loaded(&open(dir.path())),
            expected(&model),
            "seed {seed}: reopen"
        );
    }
}
