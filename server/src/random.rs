//! Cheap per-thread randomness for choices that need spread, not secrecy: where RANDOMKEY
//! starts looking, whether an LFU access counter grows.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

/// The next number of this thread: a per-thread counter hashed with the process's random
/// hash keys.
pub fn next_u64() -> u64 {
    std::thread_local!(static STATE: Cell<u64> = const { Cell::new(0) });
    let next = STATE.with(|s| {
        let v = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(v);
        v
    });
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(next);
    h.finish()
}

/// A number below `n` (0 when `n` is 0).
pub fn below(n: usize) -> usize {
    (next_u64() % n.max(1) as u64) as usize
}

/// A uniform draw in [0, 1).
pub fn unit() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_spread() {
        let mut seen = [false; 4];
        for _ in 0..1000 {
            seen[below(4)] = true;
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(seen, [true; 4]);
        assert_eq!(below(0), 0);
    }
}
