//! Redis's listpack: the byte layout a stream node is stored in inside RDB (a header with
//! the total size and element count, elements each with their encoding, data and
//! back-length, an end byte). Read element by element, with every size checked, and
//! written with the integer encodings Redis picks.

use super::RdbError;
use super::writer::canonical_i64;

const HEADER: usize = 6;
const END: u8 = 0xff;
/// The element count a header holds when the real count does not fit 16 bits.
const COUNT_UNKNOWN: u16 = u16::MAX;

fn bad() -> RdbError {
    RdbError::corrupt("stream listpack integrity check failed")
}

/// One element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Elem<'a> {
    /// The element as an integer; a string element where an integer belongs is corrupt.
    pub(crate) fn int(self) -> Result<i64, RdbError> {
        match self {
            Elem::Int(v) => Ok(v),
            Elem::Str(_) => Err(bad()),
        }
    }

    /// The element as bytes (an integer element as its decimal text).
    pub(crate) fn bytes(self) -> bytes::Bytes {
        match self {
            Elem::Int(v) => bytes::Bytes::from(v.to_string()),
            Elem::Str(s) => bytes::Bytes::copy_from_slice(s),
        }
    }
}

/// The elements of a listpack, in order, validated as they are read.
pub(crate) struct Elems<'a> {
    buf: &'a [u8],
    pos: usize,
    declared: Option<usize>,
    seen: usize,
}

impl<'a> Elems<'a> {
    /// Checks the header against `lp`'s size and returns a reader positioned on the first
    /// element.
    pub(crate) fn new(lp: &'a [u8]) -> Result<Self, RdbError> {
        if lp.len() < HEADER + 1 || lp[lp.len() - 1] != END {
            return Err(bad());
        }
        let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
        if total != lp.len() {
            return Err(bad());
        }
        let count = u16::from_le_bytes([lp[4], lp[5]]);
        Ok(Elems {
            buf: lp,
            pos: HEADER,
            declared: (count != COUNT_UNKNOWN).then_some(usize::from(count)),
            seen: 0,
        })
    }

    /// Whether the end byte is next.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.buf.len() - 1
    }

    /// The next element; corrupt past the end.
    pub(crate) fn next_elem(&mut self) -> Result<Elem<'a>, RdbError> {
        if self.at_end() {
            return Err(bad());
        }
        let start = self.pos;
        let b = self.buf;
        let at = |i: usize| b.get(i).copied().ok_or_else(bad);
        let first = at(start)?;
        let (elem, len) = if first & 0x80 == 0 {
            (Elem::Int(i64::from(first & 0x7f)), 1)
        } else if first & 0xc0 == 0x80 {
            let n = usize::from(first & 0x3f);
            (Elem::Str(self.slice(start + 1, n)?), 1 + n)
        } else if first & 0xe0 == 0xc0 {
            let raw = (u16::from(first & 0x1f) << 8) | u16::from(at(start + 1)?);
            // 13-bit two's complement.
            let v = if raw >= 1 << 12 {
                i64::from(raw) - (1 << 13)
            } else {
                i64::from(raw)
            };
            (Elem::Int(v), 2)
        } else if first & 0xf0 == 0xe0 {
            let n = (usize::from(first & 0x0f) << 8) | usize::from(at(start + 1)?);
            (Elem::Str(self.slice(start + 2, n)?), 2 + n)
        } else {
            match first {
                0xf0 => {
                    let l = self.slice(start + 1, 4)?;
                    let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
                    (Elem::Str(self.slice(start + 5, n)?), 5 + n)
                }
                0xf1 => {
                    let d = self.slice(start + 1, 2)?;
                    (Elem::Int(i64::from(i16::from_le_bytes([d[0], d[1]]))), 3)
                }
                0xf2 => {
                    let d = self.slice(start + 1, 3)?;
                    // Sign-extend 24 bits.
                    let v = i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8;
                    (Elem::Int(i64::from(v)), 4)
                }
                0xf3 => {
                    let d = self.slice(start + 1, 4)?;
                    (
                        Elem::Int(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]]))),
                        5,
                    )
                }
                0xf4 => {
                    let d = self.slice(start + 1, 8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(d);
                    (Elem::Int(i64::from_le_bytes(a)), 9)
                }
                _ => return Err(bad()),
            }
        };
        let back = backlen_size(len as u64);
        let backlen = self.slice(start + len, back)?;
        if decode_backlen(backlen) != Some(len as u64) {
            return Err(bad());
        }
        self.pos = start + len + back;
        if self.pos > self.buf.len() - 1 {
            return Err(bad());
        }
        self.seen += 1;
        Ok(elem)
    }

    /// Checks, once the last element was read, that the end byte follows and the header's
    /// count (when it has one) was right.
    pub(crate) fn finish(&self) -> Result<(), RdbError> {
        if !self.at_end() || self.declared.is_some_and(|n| n != self.seen) {
            return Err(bad());
        }
        Ok(())
    }

    fn slice(&self, from: usize, n: usize) -> Result<&'a [u8], RdbError> {
        let end = from.checked_add(n).ok_or_else(bad)?;
        // Nothing but the end byte may follow the last element.
        if end > self.buf.len() - 1 {
            return Err(bad());
        }
        Ok(&self.buf[from..end])
    }
}

fn backlen_size(l: u64) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// The back-length's value: 7 bits a byte, the most significant byte first, every byte
/// but the first with its top bit set.
fn decode_backlen(b: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate() {
        if (i == 0) == (byte & 0x80 != 0) {
            return None;
        }
        v = (v << 7) | u64::from(byte & 0x7f);
    }
    Some(v)
}

fn put_backlen(out: &mut Vec<u8>, l: u64) {
    let n = backlen_size(l);
    for i in (0..n).rev() {
        let byte = ((l >> (7 * i)) & 0x7f) as u8;
        out.push(if i == n - 1 { byte } else { byte | 0x80 });
    }
}

/// Builds a listpack element by element.
pub(crate) struct Builder {
    out: Vec<u8>,
    count: usize,
}

impl Builder {
    /// An empty listpack.
    pub(crate) fn new() -> Self {
        Builder {
            out: vec![0; HEADER],
            count: 0,
        }
    }

    /// Appends an integer in the smallest encoding that holds it.
    pub(crate) fn int(&mut self, v: i64) {
        let start = self.out.len();
        if (0..=127).contains(&v) {
            self.out.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v & 0x1fff) as u16;
            self.out.push(0xc0 | (u >> 8) as u8);
            self.out.push(u as u8);
        } else if let Ok(v) = i16::try_from(v) {
            self.out.push(0xf1);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            self.out.push(0xf2);
            self.out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(v) = i32::try_from(v) {
            self.out.push(0xf3);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            self.out.push(0xf4);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        let len = (self.out.len() - start) as u64;
        put_backlen(&mut self.out, len);
        self.count += 1;
    }

    /// Appends a string; one that reads as a canonical integer is stored as that integer,
    /// as Redis's listpack does.
    pub(crate) fn string(&mut self, s: &[u8]) {
        if let Some(v) = canonical_i64(s) {
            self.int(v);
            return;
        }
        let start = self.out.len();
        let n = s.len();
        if n < 64 {
            self.out.push(0x80 | n as u8);
        } else if n < 4096 {
            self.out.push(0xe0 | (n >> 8) as u8);
            self.out.push(n as u8);
        } else {
            self.out.push(0xf0);
            self.out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.out.extend_from_slice(s);
        let len = (self.out.len() - start) as u64;
        put_backlen(&mut self.out, len);
        self.count += 1;
    }

    /// The finished listpack.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.push(END);
        let total = self.out.len() as u32;
        self.out[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count)
            .ok()
            .filter(|&c| c != COUNT_UNKNOWN)
            .unwrap_or(COUNT_UNKNOWN);
        self.out[4..6].copy_from_slice(&count.to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -32768,
            32767,
            40000,
            -8_388_608,
            8_388_607,
            8_388_608,
            i32::MIN as i64,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ];
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let mut b = Builder::new();
        for v in ints {
            b.int(v);
        }
        b.string(b"field");
        b.string(&mid);
        b.string(&long);
        b.string(b"0042");
        let lp = b.finish();
        let mut e = Elems::new(&lp).unwrap_or_else(|e| panic!("{e:?}"));
        for v in ints {
            assert_eq!(e.next_elem().ok(), Some(Elem::Int(v)));
        }
        assert_eq!(e.next_elem().ok(), Some(Elem::Str(b"field")));
        assert_eq!(e.next_elem().ok(), Some(Elem::Str(&mid[..])));
        assert_eq!(e.next_elem().ok(), Some(Elem::Str(&long[..])));
        assert_eq!(e.next_elem().ok(), Some(Elem::Str(b"0042")));
        assert!(e.finish().is_ok());
    }

    #[test]
    fn canonical_integer_strings_become_integers() {
        let mut b = Builder::new();
        b.string(b"-17");
        let lp = b.finish();
        let mut e = Elems::new(&lp).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(e.next_elem().ok(), Some(Elem::Int(-17)));
    }

    #[test]
    fn damage_is_detected() {
        let mut b = Builder::new();
        b.string(b"hello");
        b.int(1000);
        let lp = b.finish();
        // Wrong total size.
        let mut short = lp.clone();
        short.pop();
        assert!(Elems::new(&short).is_err());
        // A damaged back-length.
        let mut bad_back = lp.clone();
        bad_back[HEADER + 6] ^= 0x01;
        let mut e = Elems::new(&bad_back).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(e.next_elem().is_err());
        // A count that does not match.
        let mut bad_count = lp;
        bad_count[4] = 3;
        let mut e = Elems::new(&bad_count).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(e.next_elem().is_ok() && e.next_elem().is_ok());
        assert!(e.finish().is_err());
    }
}
