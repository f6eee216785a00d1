//! An idempotent ID as IDMP state and its records hold it, and a producer ID as a record
//! holds it: inline when it is short (every IDMPAUTO ID, a UUID), so remembering or
//! recording one costs XADD IDMP no allocation.

use std::fmt;
use std::ops::Deref;

/// Bytes held inline: a UUID's 36 characters fit, and the whole value is 40 bytes.
const INLINE: usize = 38;

/// An idempotent ID's bytes.
#[derive(Clone)]
pub struct Iid(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Iid {
    /// A copy of `b`.
    pub fn new(b: &[u8]) -> Iid {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Iid(Repr::Inline {
                len: b.len() as u8,
                buf,
            })
        } else {
            Iid(Repr::Heap(b.into()))
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }
}

impl Deref for Iid {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for Iid {
    fn from(b: &[u8]) -> Iid {
        Iid::new(b)
    }
}

impl PartialEq for Iid {
    fn eq(&self, other: &Iid) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Iid {}

/// Shown as `bytes::Bytes` shows itself: `b"..."` with escapes.
impl fmt::Debug for Iid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.as_bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short and long IDs keep their bytes; equality is by bytes.
    #[test]
    fn holds_short_and_long_ids() {
        for n in [0usize, 1, 16, 36, INLINE, INLINE + 1, 300] {
            let b: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let iid = Iid::new(&b);
            assert_eq!(iid.as_bytes(), &b[..], "{n} bytes");
            assert_eq!(iid, Iid::from(&b[..]));
        }
        assert_ne!(Iid::new(b"a"), Iid::new(b"ab"));
        assert_eq!(format!("{:?}", Iid::new(b"a\"\n")), "b\"a\\\"\\n\"");
        assert_eq!(std::mem::size_of::<Iid>(), 40);
    }
}
