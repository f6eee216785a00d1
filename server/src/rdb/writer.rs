//! Writing RDB's primitives: lengths, strings (integer-encoded or LZF-compressed where Redis
//! would), millisecond times and raw stream IDs.

use brooklet_streams::StreamId;

use super::lzf;

/// Appends length `n` in its shortest form.
pub(crate) fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0x80);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a millisecond time (8 bytes, little-endian).
pub(crate) fn put_millis(out: &mut Vec<u8>, t: i64) {
    out.extend_from_slice(&t.to_le_bytes());
}

/// Appends a stream ID in its raw 16-byte big-endian form.
pub(crate) fn put_raw_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// Appends string `s` as Redis saves one: a canonical integer that fits 32 bits as an
/// integer, a string over 20 bytes LZF-compressed when that saves at least 4 bytes, any
/// other as its length and bytes.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11
        && let Some(v) = canonical_i64(s)
        && let Ok(v) = i32::try_from(v)
    {
        if let Ok(v) = i8::try_from(v) {
            out.push(0xc0);
            out.push(v as u8);
        } else if let Ok(v) = i16::try_from(v) {
            out.push(0xc1);
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.push(0xc2);
            out.extend_from_slice(&v.to_le_bytes());
        }
        return;
    }
    if s.len() > 20
        && let Some(packed) = lzf::compress(s)
    {
        out.push(0xc3);
        put_len(out, packed.len() as u64);
        put_len(out, s.len() as u64);
        out.extend_from_slice(&packed);
        return;
    }
    put_raw_string(out, s);
}

/// Appends string `s` as its length and bytes, never encoded (a node key, a listpack).
pub(crate) fn put_raw_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// `s` as an i64 when it is one written canonically (Redis's string2ll: no sign but a
/// leading `-`, no leading zeros, no `-0`, at most 20 bytes).
pub(crate) fn canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.first().is_none_or(|d| !(b'1'..=b'9').contains(d))
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::reader::Reader;

    fn round(s: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        put_string(&mut out, s);
        let back = Reader::new(&out)
            .string()
            .map(|b| b.to_vec())
            .unwrap_or_default();
        (out, back)
    }

    #[test]
    fn integers_are_encoded_as_redis_encodes_them() {
        assert_eq!(round(b"7").0, vec![0xc0, 7]);
        assert_eq!(round(b"-300").0, vec![0xc1, 0xd4, 0xfe]);
        assert_eq!(round(b"100000").0[0], 0xc2);
        // Not canonical, or past 32 bits: plain strings.
        assert_eq!(round(b"007").0, vec![3, b'0', b'0', b'7']);
        assert_eq!(round(b"-0").0, vec![2, b'-', b'0']);
        assert_eq!(round(b"4294967296").0[0], 10);
    }

    #[test]
    fn every_form_reads_back() {
        let long = b"compress me ".repeat(50);
        for s in [
            &b"x"[..],
            b"12",
            b"-2147483648",
            b"9223372036854775807",
            &long,
        ] {
            assert_eq!(round(s).1, s.to_vec());
        }
        assert_eq!(round(&long).0[0], 0xc3);
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0u64, 63, 64, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_len(&mut out, n);
            assert_eq!(Reader::new(&out).len().ok(), Some(n));
        }
    }
}
