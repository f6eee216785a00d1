//! State every command reads or counts, kept once per thread slot so that worker threads
//! serving commands at the same time do not write to one cache line on every command (a
//! shared `RwLock`'s reader count, a shared counter). Readers and counters use their
//! thread's slot; the rare writer (CONFIG SET) locks every slot, and a total sums them.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Slots: more than the worker threads of most machines, few enough that locking them all
/// stays cheap.
pub const SLOTS: usize = 8;

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's slot: handed out in turn as threads first ask.
pub fn slot() -> usize {
    SLOT.with(|s| {
        let mut n = s.get();
        if n == usize::MAX {
            n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
            s.set(n);
        }
        n
    })
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

/// A counter kept per slot.
pub type Counter = PerThread<AtomicU64>;

impl Counter {
    /// Adds `n` in this thread's slot.
    pub fn add(&self, n: u64) {
        self.mine().fetch_add(n, Ordering::Relaxed);
    }

    /// The sum over the slots.
    pub fn total(&self) -> u64 {
        self.all().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sets every slot to 0.
    pub fn reset(&self) {
        for c in self.all() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

impl Default for Counter {
    fn default() -> Self {
        PerThread::new(AtomicU64::default)
    }
}

/// A value read far more often than it changes: each slot holds a copy under its own lock.
/// A read locks this thread's copy; a write locks every copy and, when done, makes the others
/// like the first.
#[derive(Debug)]
pub struct ReadMostly<T: Clone> {
    copies: PerThread<RwLock<T>>,
}

impl<T: Clone> ReadMostly<T> {
    /// Every copy `value`.
    pub fn new(value: T) -> Self {
        ReadMostly {
            copies: PerThread::new(|| RwLock::new(value.clone())),
        }
    }

    /// This thread's copy, read-locked.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.copies.mine().read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every copy write-locked (in slot order, so two writers cannot deadlock); the value
    /// seen and changed is the first copy's.
    pub fn write(&self) -> WriteAll<'_, T> {
        WriteAll {
            guards: self
                .copies
                .all()
                .map(|l| l.write().unwrap_or_else(|p| p.into_inner()))
                .collect(),
        }
    }
}

/// Every copy of a [`ReadMostly`] locked; dropping it copies the first into the others.
pub struct WriteAll<'a, T: Clone> {
    guards: Vec<RwLockWriteGuard<'a, T>>,
}

impl<T: Clone> Deref for WriteAll<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guards[0]
    }
}

impl<T: Clone> DerefMut for WriteAll<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guards[0]
    }
}

impl<T: Clone> Drop for WriteAll<'_, T> {
    fn drop(&mut self) {
        if let Some((first, rest)) = self.guards.split_first_mut() {
            for g in rest {
                g.clone_from(first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Counts made on many threads add up, and a write is seen by every thread's copy.
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
    }
}
