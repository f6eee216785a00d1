//! A string key's value as the keyspace holds it: a short one inside the map's slot (no
//! allocation to make, keep or follow on a read), a longer one as shared bytes.

use std::ops::Deref;

use bytes::Bytes;

/// Values up to this many bytes are held inline: what fits beside the tag in the room a
/// `Bytes` takes, so a value costs no more slot space either way.
pub const INLINE: usize = 22;

/// Values up to this size are copied into a reply (or a checkpoint batch) rather than
/// shared: sharing a value built from a `Vec` allocates a reference count for it on its
/// first share, which then stays with the key for its life.
const COPY_BELOW: usize = 128;

/// A string value.
#[derive(Debug, Clone)]
pub enum StrValue {
    /// Up to [`INLINE`] bytes, held here.
    Inline {
        /// How many of `data` are the value.
        len: u8,
        /// The bytes.
        data: [u8; INLINE],
    },
    /// A longer value.
    Shared(Bytes),
}

impl StrValue {
    /// A copy of `bytes` (the request's slice: a value kept must not pin the whole read
    /// buffer it arrived in).
    pub fn copy_of(bytes: &[u8]) -> Self {
        match Self::inline(bytes) {
            Some(v) => v,
            None => StrValue::Shared(Bytes::copy_from_slice(bytes)),
        }
    }

    /// `bytes`, inline when short (the `Bytes` is then let go).
    pub fn from_bytes(bytes: Bytes) -> Self {
        match Self::inline(&bytes) {
            Some(v) => v,
            None => StrValue::Shared(bytes),
        }
    }

    fn inline(bytes: &[u8]) -> Option<Self> {
        (bytes.len() <= INLINE).then(|| {
            let mut data = [0u8; INLINE];
            data[..bytes.len()].copy_from_slice(bytes);
            StrValue::Inline {
                len: bytes.len() as u8,
                data,
            }
        })
    }

    /// The value for a reply or a batch: copied when small, shared when large.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            StrValue::Shared(b) if b.len() >= COPY_BELOW => b.clone(),
            _ => Bytes::copy_from_slice(self),
        }
    }

    /// Bytes allocated for the value beyond the slot.
    pub fn heap_len(&self) -> usize {
        match self {
            StrValue::Inline { .. } => 0,
            StrValue::Shared(b) => b.len(),
        }
    }
}

impl From<Bytes> for StrValue {
    fn from(bytes: Bytes) -> Self {
        StrValue::from_bytes(bytes)
    }
}

impl Deref for StrValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            StrValue::Inline { len, data } => &data[..usize::from(*len)],
            StrValue::Shared(b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_inline_and_every_value_reads_back() {
        for n in [0, 1, INLINE, INLINE + 1, 200] {
            let bytes: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let v = StrValue::copy_of(&bytes);
            assert_eq!(&v[..], &bytes[..]);
            assert_eq!(matches!(v, StrValue::Inline { .. }), n <= INLINE);
            assert_eq!(
                &StrValue::from_bytes(Bytes::from(bytes.clone()))[..],
                &bytes[..]
            );
            assert_eq!(&v.to_bytes()[..], &bytes[..]);
        }
        assert_eq!(
            std::mem::size_of::<StrValue>(),
            std::mem::size_of::<Bytes>()
        );
    }
}
