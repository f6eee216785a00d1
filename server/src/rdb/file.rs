//! A whole RDB file, walked key by key: the header and its checksum, the opcodes between
//! keys (databases, expiry times, idle times and frequencies, aux fields, functions and
//! module data, which are skipped), and every key with its value, read in full so that a
//! damaged value is found before anything is imported.

use bytes::Bytes;

use super::reader::Reader;
use super::value::{self, MAX_VERSION, Value};
use super::{RdbError, crc64};

const OP_SLOT_INFO: u8 = 0xf4;
const OP_FUNCTION2: u8 = 0xf5;
const OP_FUNCTION_PRE_GA: u8 = 0xf6;
const OP_MODULE_AUX: u8 = 0xf7;
const OP_FREQ: u8 = 0xf8;
const OP_IDLE: u8 = 0xf9;
const OP_AUX: u8 = 0xfa;
const OP_RESIZEDB: u8 = 0xfb;
const OP_EXPIRETIME_MS: u8 = 0xfc;
const OP_EXPIRETIME: u8 = 0xfd;
const OP_SELECTDB: u8 = 0xfe;
const OP_EOF: u8 = 0xff;

/// The oldest RDB version read (Redis 2.6's, the first with millisecond expiry times).
const MIN_VERSION: u16 = 1;
/// The first version that ends in a checksum.
const CHECKSUM_VERSION: u16 = 5;

/// One key of the file, with what the file says about it.
#[derive(Debug)]
pub(crate) struct Key<'a> {
    /// Its database.
    pub(crate) db: u64,
    /// Its name.
    pub(crate) name: Bytes,
    /// Its deadline, Unix milliseconds.
    pub(crate) expire_ms: Option<i64>,
    /// Its idle time in seconds (files written under an LRU policy).
    pub(crate) idle: Option<u64>,
    /// Its access frequency (files written under an LFU policy).
    pub(crate) freq: Option<u8>,
    /// Its RDB type.
    pub(crate) rdb_type: u8,
    /// Its value's bytes, after the name.
    pub(crate) value: &'a [u8],
    /// Its value, read (None for a type Brooklet does not hold).
    pub(crate) decoded: Option<Value>,
}

/// What a walk found besides keys.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// The file's RDB version.
    pub(crate) version: u16,
    /// Functions (Redis 7 libraries), skipped.
    pub(crate) functions: u64,
    /// Module aux sections, skipped.
    pub(crate) module_aux: u64,
}

/// Checks the magic, version and checksum of RDB file `bytes`; returns the version.
pub(crate) fn check_header(bytes: &[u8]) -> Result<u16, RdbError> {
    let magic = bytes.get(..9).ok_or(RdbError::Truncated)?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::corrupt(
            "wrong signature trying to load DB from file",
        ));
    }
    let version: u16 = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(RdbError::corrupt(
            "wrong signature trying to load DB from file",
        ))?;
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(RdbError::Corrupt(format!(
            "can't handle RDB format version {version}"
        )));
    }
    if version >= CHECKSUM_VERSION {
        let split = bytes
            .len()
            .checked_sub(8)
            .filter(|&s| s >= 10)
            .ok_or(RdbError::Truncated)?;
        let mut stored = [0u8; 8];
        stored.copy_from_slice(&bytes[split..]);
        let stored = u64::from_le_bytes(stored);
        // Zero: written with rdbchecksum off, nothing to check (as Redis loads it).
        if stored != 0 && crc64::crc64(&bytes[..split]) != stored {
            return Err(RdbError::corrupt(
                "wrong RDB checksum (the file is damaged or truncated)",
            ));
        }
    }
    Ok(version)
}

/// Walks every key of RDB file `bytes` in order, handing each to `each`; stops at the
/// first damaged byte or at the first error `each` returns.
pub(crate) fn walk<E: From<RdbError>>(
    bytes: &[u8],
    mut each: impl FnMut(Key<'_>) -> Result<(), E>,
) -> Result<Walked, E> {
    let version = check_header(bytes)?;
    let mut r = Reader::new(bytes);
    r.take(9).map_err(E::from)?;
    let mut walked = Walked {
        version,
        ..Walked::default()
    };
    let mut db = 0u64;
    let (mut expire, mut idle, mut freq) = (None, None, None);
    loop {
        let op = r.u8()?;
        match op {
            OP_EOF => break,
            OP_SELECTDB => db = r.len()?,
            OP_RESIZEDB => {
                r.len()?;
                r.len()?;
            }
            OP_EXPIRETIME_MS => expire = Some(r.millis()?),
            OP_EXPIRETIME => expire = Some(i64::from(r.u32_le()?) * 1000),
            OP_IDLE => idle = Some(r.len()?),
            OP_FREQ => freq = Some(r.u8()?),
            OP_AUX => {
                r.skip_string()?;
                r.skip_string()?;
            }
            OP_MODULE_AUX => {
                r.len()?;
                value::skip_module_opcodes(&mut r)?;
                walked.module_aux += 1;
            }
            OP_FUNCTION2 => {
                r.skip_string()?;
                walked.functions += 1;
            }
            OP_FUNCTION_PRE_GA => {
                return Err(RdbError::corrupt(
                    "functions in Redis 7.0's release-candidate format, which cannot be read",
                )
                .into());
            }
            OP_SLOT_INFO => {
                r.len()?;
                r.len()?;
                r.len()?;
            }
            t => {
                let name = r.string()?;
                let start = r.pos();
                let decoded = match value::read_value(t, &mut r) {
                    Ok(v) => Some(v),
                    Err(RdbError::Unsupported(_)) => {
                        let mut skip = Reader::new(bytes);
                        skip.take(start)?;
                        value::skip_value(t, &mut skip)?;
                        r = skip;
                        None
                    }
                    Err(e) => return Err(e.into()),
                };
                let value = &bytes[start..r.pos()];
                each(Key {
                    db,
                    name,
                    expire_ms: expire.take(),
                    idle: idle.take(),
                    freq: freq.take(),
                    rdb_type: t,
                    value,
                    decoded,
                })?;
            }
        }
    }
    let rest = r.remaining();
    let expected = if version >= CHECKSUM_VERSION { 8 } else { 0 };
    if rest != expected {
        return Err(RdbError::corrupt("unexpected data after the end of the file").into());
    }
    Ok(walked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::writer::{put_len, put_string};

    /// A version-10 file: aux fields, two databases, a string with a deadline, a list.
    fn sample() -> Vec<u8> {
        let mut f = b"REDIS0010".to_vec();
        f.push(OP_AUX);
        put_string(&mut f, b"redis-ver");
        put_string(&mut f, b"7.0.15");
        f.push(OP_SELECTDB);
        put_len(&mut f, 0);
        f.push(OP_RESIZEDB);
        put_len(&mut f, 2);
        put_len(&mut f, 1);
        f.push(OP_EXPIRETIME_MS);
        f.extend_from_slice(&1_900_000_000_000i64.to_le_bytes());
        f.push(0);
        put_string(&mut f, b"s");
        put_string(&mut f, b"hello");
        f.push(OP_SELECTDB);
        put_len(&mut f, 3);
        f.push(1);
        put_string(&mut f, b"l");
        put_len(&mut f, 2);
        put_string(&mut f, b"a");
        put_string(&mut f, b"b");
        f.push(OP_EOF);
        let crc = crc64::crc64(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    #[test]
    fn walks_keys_with_their_databases_and_deadlines() {
        let mut seen = Vec::new();
        let w = walk::<RdbError>(&sample(), |k| {
            seen.push((
                k.db,
                k.name.clone(),
                k.expire_ms,
                k.rdb_type,
                k.decoded.is_some(),
            ));
            Ok(())
        });
        assert_eq!(w.map(|w| w.version).ok(), Some(10));
        assert_eq!(
            seen,
            vec![
                (
                    0,
                    Bytes::from_static(b"s"),
                    Some(1_900_000_000_000),
                    0,
                    true
                ),
                (3, Bytes::from_static(b"l"), None, 1, false),
            ]
        );
    }

    #[test]
    fn damaged_and_truncated_files_are_refused() {
        let f = sample();
        let mut flipped = f.clone();
        flipped[30] ^= 0x20;
        assert!(walk::<RdbError>(&flipped, |_| Ok(())).is_err());
        for cut in [5, 9, 20, f.len() - 9, f.len() - 1] {
            assert!(
                walk::<RdbError>(&f[..cut], |_| Ok(())).is_err(),
                "cut {cut}"
            );
        }
        let mut wrong = f;
        wrong[..5].copy_from_slice(b"RADIS");
        assert!(check_header(&wrong).is_err());
    }
}
