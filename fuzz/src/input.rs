//! Structured choices read out of a fuzzer's bytes.
//!
//! libFuzzer mutates bytes; reading choices from them front to back (which command, how many
//! arguments, which token) lets it reach deep states by flipping a few bytes. Running out of
//! bytes yields zeros, so every input decodes to something.

/// A cursor over the fuzzer's bytes.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0 when there are none left.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number in `0..n` (0 when `n` is 0 or 1).
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => usize::from(self.byte()) % n,
            _ => (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n,
        }
    }

    /// True one time in `n`, roughly.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// Up to `max` bytes, the count read first.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1).min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }

    /// Every byte not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// A deterministic stream of chunk sizes, so the same input is always split the same way.
pub struct Chunks(u64);

impl Chunks {
    /// Chunk sizes drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Chunks(seed | 1)
    }

    /// The next chunk size, in `1..=max`.
    pub fn next(&mut self, max: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        1 + ((self.0 >> 33) as usize) % max.max(1)
    }
}
