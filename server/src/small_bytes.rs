//! Keys and string values as the keyspace holds them: a short one inside the map's slot
//! (no allocation to make or keep, no pointer to follow on a lookup or a read), a longer
//! one as shared bytes.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

use brooklet_resp::{Reply, SHORT_BULK_MAX};

/// Up to this many bytes are held inline: what fits beside the tag in the room a `Bytes`
/// takes, so either form costs the same slot space.
pub const INLINE: usize = 22;

/// Up to this size the bytes are copied into a reply (or a checkpoint batch) rather than
/// shared: sharing bytes built from a `Vec` allocates a reference count for them on their
/// first share, which then stays with the key for its life.
const COPY_BELOW: usize = 128;

/// A key or a string value. It hashes, compares and orders as its bytes, so a map keyed by
/// it is looked up with a `&[u8]`.
#[derive(Debug, Clone)]
pub enum SmallBytes {
    /// Up to [`INLINE`] bytes, held here.
    Inline {
        /// How many of `data` are the value.
        len: u8,
        /// The bytes.
        data: [u8; INLINE],
    },
    /// Longer bytes.
    Shared(Bytes),
}

impl SmallBytes {
    /// A copy of `bytes` (a request's slice: bytes kept must not pin the whole read buffer
    /// they arrived in).
    pub fn copy_of(bytes: &[u8]) -> Self {
        match Self::inline(bytes) {
            Some(v) => v,
            None => SmallBytes::Shared(Bytes::copy_from_slice(bytes)),
        }
    }

    /// `bytes`, inline when short (the `Bytes` is then let go).
    pub fn from_bytes(bytes: Bytes) -> Self {
        match Self::inline(&bytes) {
            Some(v) => v,
            None => SmallBytes::Shared(bytes),
        }
    }

    fn inline(bytes: &[u8]) -> Option<Self> {
        (bytes.len() <= INLINE).then(|| {
            let mut data = [0u8; INLINE];
            data[..bytes.len()].copy_from_slice(bytes);
            SmallBytes::Inline {
                len: bytes.len() as u8,
                data,
            }
        })
    }

    /// The bytes for a reply or a batch: copied when small, shared when large.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SmallBytes::Shared(b) if b.len() >= COPY_BELOW => b.clone(),
            _ => Bytes::copy_from_slice(self),
        }
    }

    /// A bulk reply of the bytes: a short one held in the reply, without an allocation.
    pub fn to_reply(&self) -> Reply {
        if self.len() <= SHORT_BULK_MAX {
            Reply::short_bulk(self)
        } else {
            Reply::Bulk(self.to_bytes())
        }
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(bytes: &[u8]) -> Self {
        SmallBytes::copy_of(bytes)
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl Hash for SmallBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SmallBytes {}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl From<Bytes> for SmallBytes {
    fn from(bytes: Bytes) -> Self {
        SmallBytes::from_bytes(bytes)
    }
}

impl Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, data } => &data[..usize::from(*len)],
            SmallBytes::Shared(b) => b,
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
            let v = SmallBytes::copy_of(&bytes);
            assert_eq!(&v[..], &bytes[..]);
            assert_eq!(matches!(v, SmallBytes::Inline { .. }), n <= INLINE);
            assert_eq!(
                &SmallBytes::from_bytes(Bytes::from(bytes.clone()))[..],
                &bytes[..]
            );
            assert_eq!(&v.to_bytes()[..], &bytes[..]);
        }
        assert_eq!(
            std::mem::size_of::<SmallBytes>(),
            std::mem::size_of::<Bytes>()
        );
    }
}
