//! State every command reads or counts, kept per thread so that a command writes to no
//! shared cache line and takes no lock for it: counters are kept once per thread slot and
//! summed when read; a value read by every command (the configuration) is copied into each
//! thread and copied again only after the rare writer (CONFIG SET) changed it.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockWriteGuard};
use std::thread::LocalKey;

/// Slots: more than the worker threads of most machines; a total reads them all.
pub const SLOTS: usize = 8;

/// The last slot is shared by the threads beyond the others, which count in it with
/// atomic additions; every other slot belongs to one thread at a time.
const SHARED_SLOT: usize = SLOTS - 1;

/// Bit `i` set while slot `i` has an owner.
static TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A thread's slot, given back when the thread ends (its counts stay in it, and its next
/// owner goes on adding to them).
struct Lease {
    slot: Cell<usize>,
}

impl Lease {
    const UNSET: usize = usize::MAX;

    fn get(&self) -> usize {
        let n = self.slot.get();
        if n != Self::UNSET {
            return n;
        }
        let mut taken = TAKEN.load(Ordering::Relaxed);
        let n = loop {
            let free = (0..SHARED_SLOT).find(|i| taken & (1 << i) == 0);
            let Some(i) = free else {
                break SHARED_SLOT;
            };
            // Acquire: the counts the slot's last owner left are seen before adding to them.
            match TAKEN.compare_exchange_weak(
                taken,
                taken | (1 << i),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break i,
                Err(now) => taken = now,
            }
        };
        self.slot.set(n);
        n
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let n = self.slot.get();
        if n < SHARED_SLOT {
            // Release: the next owner sees this thread's last counts.
            TAKEN.fetch_and(!(1 << n), Ordering::Release);
        }
    }
}

thread_local! {
    static LEASE: Lease = const { Lease { slot: Cell::new(Lease::UNSET) } };
}

/// This thread's slot: its own while it lives, unless more threads than slots count, in
/// which case the extra ones share the last slot.
pub fn slot() -> usize {
    // A thread whose lease is already gone (counting from another thread-local's
    // destructor) uses the shared slot.
    LEASE.try_with(Lease::get).unwrap_or(SHARED_SLOT)
}

/// Adds `n` to `c`, a counter of this thread's slot ([`slot`]): a plain read and write when
/// the slot is this thread's alone, so counting takes no locked instruction.
pub fn add(c: &AtomicU64, n: u64) {
    bump(c, slot(), n);
}

fn bump(c: &AtomicU64, slot: usize, n: u64) {
    if slot == SHARED_SLOT {
        c.fetch_add(n, Ordering::Relaxed);
    } else {
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}

/// One slot's value, alone on its cache lines (128 bytes: adjacent-line prefetch pairs them).
#[repr(align(128))]
#[derive(Debug)]
struct Padded<T>(T);

/// A value per slot.
#[derive(Debug)]
pub struct PerThread<T> {
    slots: Box<[Padded<T>]>,
}

impl<T> PerThread<T> {
    /// Every slot made by `make`.
    pub fn new(mut make: impl FnMut() -> T) -> Self {
        PerThread {
            slots: (0..SLOTS).map(|_| Padded(make())).collect(),
        }
    }

    /// This thread's value.
    pub fn mine(&self) -> &T {
        &self.slots[slot()].0
    }

    /// Every slot's value.
    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|p| &p.0)
    }
}

/// A counter kept per slot, with the total a reset left as its base: a slot's owner adds
/// without a locked instruction, so a reset cannot zero the slots under it (an addition
/// in flight would write the old count back).
#[derive(Debug, Default)]
pub struct Counter {
    slots: PerThread<AtomicU64>,
    base: AtomicU64,
}

impl Counter {
    /// Adds `n` in this thread's slot.
    pub fn add(&self, n: u64) {
        let i = slot();
        bump(&self.slots.slots[i].0, i, n);
    }

    /// The sum over the slots since the last reset.
    pub fn total(&self) -> u64 {
        let base = self.base.load(Ordering::Acquire);
        self.sum().saturating_sub(base)
    }

    fn sum(&self) -> u64 {
        self.slots.all().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Counts from 0 again.
    pub fn reset(&self) {
        self.base.store(self.sum(), Ordering::Release);
    }
}

impl<T: Default> Default for PerThread<T> {
    fn default() -> Self {
        PerThread::new(T::default)
    }
}

/// A value read far more often than it changes, read without a lock: each thread keeps its
/// own copy of the latest version and takes a new one only when a write has bumped the
/// version. A read is one plain atomic load and a compare; a write locks the value and bumps
/// the version before it lets go, so a thread that sees the new version reads the new value.
#[derive(Debug)]
pub struct ReadMostly<T> {
    /// Tells this value's copies from another's in the thread caches (one process may run
    /// several servers, as the tests do).
    id: u64,
    version: AtomicU64,
    value: RwLock<T>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A thread's copy of one [`ReadMostly`] value.
#[derive(Debug)]
pub struct Cached<T> {
    id: u64,
    version: u64,
    value: Rc<T>,
}

/// A type a [`ReadMostly`] can hold: it names the thread-local where each thread keeps its
/// copy (one per type, so a read finds it without a type check). Implemented with
/// `thread_cached!`.
pub trait ThreadCached: Clone + 'static {
    /// This thread's copy of the value it last read.
    fn cache() -> &'static LocalKey<RefCell<Option<Cached<Self>>>>;
}

/// Implements [`ThreadCached`] for a type. A thread that reads several values of the type in
/// turn (several servers in one test process) copies again on each switch, which is only
/// slower.
macro_rules! thread_cached {
    ($t:ty) => {
        impl $crate::per_thread::ThreadCached for $t {
            fn cache() -> &'static ::std::thread::LocalKey<
                ::std::cell::RefCell<Option<$crate::per_thread::Cached<$t>>>,
            > {
                ::std::thread_local! {
                    static CACHED: ::std::cell::RefCell<Option<$crate::per_thread::Cached<$t>>> =
                        const { ::std::cell::RefCell::new(None) };
                }
                &CACHED
            }
        }
    };
}

thread_cached!(crate::config::Config);

impl<T: ThreadCached> ReadMostly<T> {
    /// A value at its first version.
    pub fn new(value: T) -> Self {
        ReadMostly {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
            value: RwLock::new(value),
        }
    }

    /// The value as the last write left it.
    pub fn read(&self) -> Rc<T> {
        let version = self.version.load(Ordering::Acquire);
        T::cache().with(|cell| {
            if let Some(c) = cell.borrow().as_ref()
                && c.id == self.id
                && c.version == version
            {
                return c.value.clone();
            }
            let (version, value) = {
                let guard = self.value.read().unwrap_or_else(|p| p.into_inner());
                // Read under the lock: a writer bumps it before releasing, so this is the
                // version of what is copied.
                (self.version.load(Ordering::Acquire), Rc::new(guard.clone()))
            };
            *cell.borrow_mut() = Some(Cached {
                id: self.id,
                version,
                value: value.clone(),
            });
            value
        })
    }

    /// The value write-locked; the new version is published as the guard drops.
    pub fn write(&self) -> WriteGuard<'_, T> {
        WriteGuard {
            version: &self.version,
            guard: self.value.write().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

/// A [`ReadMostly`] value locked for writing; dropping it publishes the change.
pub struct WriteGuard<'a, T> {
    version: &'a AtomicU64,
    guard: RwLockWriteGuard<'a, T>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Runs before the guard field is dropped: the lock is still held.
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    thread_cached!(u32);

    /// Counts made on many threads add up, and a write is seen by every thread's next read.
    #[test]
    fn counters_sum_and_writes_reach_every_copy() {
        let counter = Arc::new(Counter::default());
        let value = Arc::new(ReadMostly::new(1u32));
        let threads: Vec<_> = (0..2 * SLOTS)
            .map(|_| {
                let (counter, value) = (counter.clone(), value.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.add(1);
                    }
                    *value.read()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("thread"), 1);
        }
        assert_eq!(counter.total(), 2000 * SLOTS as u64);
        *value.write() = 7;
        let seen: Vec<_> = (0..2 * SLOTS)
            .map(|_| {
                let value = value.clone();
                std::thread::spawn(move || *value.read())
            })
            .map(|t| t.join().expect("thread"))
            .collect();
        assert!(seen.iter().all(|&v| v == 7), "{seen:?}");
        counter.reset();
        assert_eq!(counter.total(), 0);
        counter.add(5);
        assert_eq!(counter.total(), 5);
    }

    /// Threads that end give their slot back; the next owner adds to what it left.
    #[test]
    fn slots_are_reused_without_losing_counts() {
        let counter = Arc::new(Counter::default());
        for _ in 0..4 * SLOTS {
            let counter = counter.clone();
            std::thread::spawn(move || counter.add(3))
                .join()
                .expect("thread");
        }
        assert_eq!(counter.total(), 12 * SLOTS as u64);
    }

    /// A thread that read a value (and holds a copy) reads the next version after a write,
    /// and two values read in turn on one thread each stay their own.
    #[test]
    fn a_cached_copy_is_replaced_after_a_write() {
        let (a, b) = (ReadMostly::new(1u32), ReadMostly::new(10u32));
        assert_eq!((*a.read(), *b.read()), (1, 10));
        let held = a.read();
        *a.write() = 2;
        assert_eq!((*a.read(), *b.read(), *held), (2, 10, 1));
        *b.write() = 20;
        assert_eq!((*b.read(), *a.read()), (20, 2));
    }
}
