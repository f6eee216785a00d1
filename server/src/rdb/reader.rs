//! Reading RDB's primitives from a byte slice: lengths, strings (raw, integer-encoded,
//! LZF-compressed), millisecond times and raw stream IDs.

use bytes::Bytes;

use brooklet_streams::StreamId;

use super::RdbError;
use super::lzf;

/// Length encodings: the two top bits of the first byte.
const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_ENCVAL: u8 = 3;
/// Whole first bytes of the longer length forms.
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
/// Special string encodings (after `LEN_ENCVAL`).
const ENC_INT8: u64 = 0;
const ENC_INT16: u64 = 1;
const ENC_INT32: u64 = 2;
const ENC_LZF: u64 = 3;

/// A length, or a special string encoding.
enum Len {
    Plain(u64),
    Encoded(u64),
}

/// A cursor over RDB bytes; every read fails with [`RdbError::Truncated`] past the end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        let end = self.pos.checked_add(n).ok_or(RdbError::Truncated)?;
        let b = self.buf.get(self.pos..end).ok_or(RdbError::Truncated)?;
        self.pos = end;
        Ok(b)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A little-endian u32 (EXPIRETIME's seconds).
    pub(crate) fn u32_le(&mut self) -> Result<u32, RdbError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A millisecond time, stored little-endian in 8 bytes.
    pub(crate) fn millis(&mut self) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A stream ID stored raw: 16 bytes, milliseconds then sequence, big-endian.
    pub(crate) fn raw_id(&mut self) -> Result<StreamId, RdbError> {
        id_from_key(self.take(16)?)
    }

    fn len_or_encoding(&mut self) -> Result<Len, RdbError> {
        let first = self.u8()?;
        match first >> 6 {
            LEN_6BIT => Ok(Len::Plain(u64::from(first & 0x3f))),
            LEN_14BIT => Ok(Len::Plain(
                (u64::from(first & 0x3f) << 8) | u64::from(self.u8()?),
            )),
            LEN_ENCVAL => Ok(Len::Encoded(u64::from(first & 0x3f))),
            _ => match first {
                LEN_32BIT => Ok(Len::Plain(u64::from(u32::from_be_bytes(self.array()?)))),
                LEN_64BIT => Ok(Len::Plain(u64::from_be_bytes(self.array()?))),
                _ => Err(RdbError::corrupt("unknown length encoding")),
            },
        }
    }

    /// A length (a count, an ID part, a number).
    pub(crate) fn len(&mut self) -> Result<u64, RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(RdbError::corrupt("encoded value where a length belongs")),
        }
    }

    /// A length used as a count of things that follow, each taking at least one byte: a
    /// count the bytes left cannot hold is refused before anything is allocated for it.
    pub(crate) fn count(&mut self) -> Result<usize, RdbError> {
        let n = self.len()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or(RdbError::Truncated)
    }

    /// A string in any of its encodings, as bytes.
    pub(crate) fn string(&mut self) -> Result<Bytes, RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| RdbError::Truncated)?;
                Ok(Bytes::copy_from_slice(self.take(n)?))
            }
            Len::Encoded(ENC_INT8) => Ok(int_text(i64::from(self.u8()? as i8))),
            Len::Encoded(ENC_INT16) => Ok(int_text(i64::from(i16::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_INT32) => Ok(int_text(i64::from(i32::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_LZF) => {
                let clen = usize::try_from(self.len()?).map_err(|_| RdbError::Truncated)?;
                let len = usize::try_from(self.len()?).map_err(|_| RdbError::Truncated)?;
                let packed = self.take(clen)?;
                // An LZF stream expands at most about 264 times; a larger claim is corrupt,
                // refused before anything that size is allocated.
                if len > clen.saturating_mul(300) {
                    return Err(RdbError::corrupt("invalid LZF compressed string"));
                }
                lzf::decompress(packed, len)
                    .map(Bytes::from)
                    .ok_or(RdbError::corrupt("invalid LZF compressed string"))
            }
            Len::Encoded(_) => Err(RdbError::corrupt("unknown string encoding")),
        }
    }

    /// Skips a string without decoding it.
    pub(crate) fn skip_string(&mut self) -> Result<(), RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| RdbError::Truncated)?;
                self.take(n)?;
            }
            Len::Encoded(ENC_INT8) => {
                self.take(1)?;
            }
            Len::Encoded(ENC_INT16) => {
                self.take(2)?;
            }
            Len::Encoded(ENC_INT32) => {
                self.take(4)?;
            }
            Len::Encoded(ENC_LZF) => {
                let clen = usize::try_from(self.len()?).map_err(|_| RdbError::Truncated)?;
                self.len()?;
                self.take(clen)?;
            }
            Len::Encoded(_) => return Err(RdbError::corrupt("unknown string encoding")),
        }
        Ok(())
    }
}

/// A stream ID from its 16-byte big-endian form (a node's key, a PEL entry).
pub(crate) fn id_from_key(b: &[u8]) -> Result<StreamId, RdbError> {
    if b.len() != 16 {
        return Err(RdbError::corrupt(
            "stream node key entry is not the size of a stream ID",
        ));
    }
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&b[..8]);
    seq.copy_from_slice(&b[8..]);
    Ok(StreamId::new(
        u64::from_be_bytes(ms),
        u64::from_be_bytes(seq),
    ))
}

fn int_text(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_every_width() {
        let mut r = Reader::new(&[
            0x05, 0x41, 0x02, 0x80, 0, 1, 0, 0, 0x81, 0, 0, 0, 1, 0, 0, 0, 0,
        ]);
        assert_eq!(r.len().ok(), Some(5));
        assert_eq!(r.len().ok(), Some(0x102));
        assert_eq!(r.len().ok(), Some(0x10000));
        assert_eq!(r.len().ok(), Some(1 << 32));
        assert_eq!(r.len().err(), Some(RdbError::Truncated));
    }

    #[test]
    fn integer_encoded_strings_read_as_text() {
        let mut r = Reader::new(&[0xc0, 0xfe, 0xc1, 0x39, 0x30, 0xc2, 0x15, 0xcd, 0x5b, 0x07]);
        assert_eq!(&r.string().unwrap_or_default()[..], b"-2");
        assert_eq!(&r.string().unwrap_or_default()[..], b"12345");
        assert_eq!(&r.string().unwrap_or_default()[..], b"123456789");
    }

    #[test]
    fn a_count_larger_than_the_bytes_left_is_truncation() {
        let mut r = Reader::new(&[0x3f, 1, 2]);
        assert_eq!(r.count().err(), Some(RdbError::Truncated));
    }
}
