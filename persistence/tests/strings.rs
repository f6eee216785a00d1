//! Strings and key deadlines in the store: each write is read back after a reopen, a
//! deletion takes the deadline with it, a stream's deletion takes its deadline, and a
//! string replacing a stream leaves the string alone.

#![allow(clippy::unwrap_used)]

use brooklet_persistence::{Deadline, FsyncPolicy, LoadedKeys, Store, StoredStream};

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, FsyncPolicy::Everysec).unwrap().0
}

/// (db, key, value) and (db, key, deadline), sorted.
type Flat = (Vec<(u32, Vec<u8>, Vec<u8>)>, Vec<(u32, Vec<u8>, u64)>);

fn flat(k: LoadedKeys) -> Flat {
    let mut s: Vec<_> = k
        .strings
        .into_iter()
        .map(|s| (s.db, s.key.to_vec(), s.value.to_vec()))
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
    let (strings, deadlines) = flat(store.load_keys().unwrap());
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
    let (strings, deadlines) = flat(store.load_keys().unwrap());
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
    assert!(flat(store.load_keys().unwrap()).1.is_empty());
    store.set_deadline(0, b"t", Some(100)).unwrap();
    store
        .replace_stream_with_string(0, b"t", &stream, b"v", Some(200))
        .unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        flat(store.load_keys().unwrap()),
        (
            vec![(0, b"t".to_vec(), b"v".to_vec())],
            vec![(0, b"t".to_vec(), 200)]
        )
    );
}
