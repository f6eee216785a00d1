//! CRC-64 with the Jones polynomial, reflected, as Redis computes it over DUMP payloads and
//! RDB files (initial value 0, no final xor).

/// The Jones polynomial, bit-reversed for the reflected (LSB-first) form.
const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

const fn table() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
}

static TABLE: [u64; 256] = table();

/// Continues `crc` over `bytes` (start with 0).
pub(crate) fn update(mut crc: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        crc = TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The checksum of `bytes`.
pub(crate) fn crc64(bytes: &[u8]) -> u64 {
    update(0, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_check_value() {
        // The value Redis's crc64 test asserts for "123456789".
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn update_is_incremental() {
        let whole = crc64(b"hello world");
        assert_eq!(update(crc64(b"hello "), b"world"), whole);
    }
}
