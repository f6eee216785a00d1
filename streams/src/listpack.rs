//! Byte sizes of Redis's listpack encoding, so our nodes close where Redis's do.
//!
//! We do not store listpacks; we only need `lpBytes()` of the listpack Redis would have
//! built for the same node, because `stream-node-max-bytes` is compared against it.

/// Listpack header (total bytes u32 + element count u16) plus the end byte.
pub(crate) const HEADER_AND_END: u64 = 7;

/// Size of the back-length that follows an element whose encoding takes `l` bytes.
fn backlen_size(l: u64) -> u64 {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Encoded size (without back-length) of an integer element.
fn int_encoding_size(v: i64) -> u64 {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if i16::try_from(v).is_ok() {
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        4
    } else if i32::try_from(v).is_ok() {
        5
    } else {
        9
    }
}

/// Full size of an integer element.
pub(crate) fn int_elem(v: i64) -> u64 {
    let l = int_encoding_size(v);
    l + backlen_size(l)
}

/// Full size of a string element; strings that read as a canonical i64 are stored as
/// integers by listpack, exactly as `lpStringToInt64` decides.
pub(crate) fn str_elem(s: &[u8]) -> u64 {
    if let Some(v) = canonical_i64(s) {
        return int_elem(v);
    }
    let len = s.len() as u64;
    let l = if len < 64 {
        1 + len
    } else if len < 4096 {
        2 + len
    } else {
        5 + len
    };
    l + backlen_size(l)
}

/// Parses `s` as an i64 written canonically (no `+`, no leading zeros, no `-0`).
fn canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_listpack_encodings() {
        assert_eq!(int_elem(0), 2);
        assert_eq!(int_elem(127), 2);
        assert_eq!(int_elem(128), 3);
        assert_eq!(int_elem(-1), 3);
        assert_eq!(int_elem(5000), 4);
        assert_eq!(int_elem(1 << 40), 10);
        assert_eq!(str_elem(b"v"), 3);
        assert_eq!(str_elem(b"1"), 2);
        assert_eq!(str_elem(b"01"), 4);
        assert_eq!(str_elem(b"-0"), 4);
        assert_eq!(str_elem(&[b'a'; 63]), 65);
        assert_eq!(str_elem(&[b'a'; 64]), 67);
        assert_eq!(str_elem(&[b'a'; 200]), 204);
        assert_eq!(str_elem(b"-9223372036854775808"), 10);
        assert_eq!(str_elem(b"9223372036854775808"), 21);
    }
}
