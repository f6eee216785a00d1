//! One value in RDB form: the DUMP payload (type byte, value, RDB version, CRC-64) written
//! and checked, values read by type, and the types Brooklet does not hold skipped.

use bytes::Bytes;

use brooklet_streams::{Stream, StreamError};

use super::reader::Reader;
use super::stream_decode::{self, DecodedStream, StreamKind};
use super::{RdbError, crc64, stream_encode, type_name, writer};

/// The RDB version DUMP writes: the newest Redis 7.0 reads.
pub(crate) const DUMP_VERSION: u16 = 10;
/// The newest RDB version RESTORE and `--import-rdb` read (Redis 7.4's); what a later one
/// adds is types Brooklet would refuse anyway.
pub(crate) const MAX_VERSION: u16 = 12;

pub(crate) const TYPE_STRING: u8 = 0;
const TYPE_MODULE: u8 = 6;
const TYPE_MODULE_2: u8 = 7;
const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;
const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// A value Brooklet holds, read from RDB.
#[derive(Debug)]
pub(crate) enum Value {
    /// A string.
    String(Bytes),
    /// A stream, as the records that build it.
    Stream(DecodedStream),
}

/// Why RESTORE refuses a payload (Redis's two errors).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// Too short, a newer RDB version, or a checksum that does not match.
    VersionOrChecksum,
    /// The value inside cannot be read.
    BadFormat(RdbError),
}

/// Checks a DUMP payload's footer and reads the value inside.
pub(crate) fn decode_payload(p: &[u8]) -> Result<Value, PayloadError> {
    let body = verify_payload(p)?;
    let mut r = Reader::new(body);
    let t = r.u8().map_err(PayloadError::BadFormat)?;
    read_value(t, &mut r).map_err(PayloadError::BadFormat)
}

/// The payload without its footer, once the version and checksum are right.
fn verify_payload(p: &[u8]) -> Result<&[u8], PayloadError> {
    let Some(split) = p.len().checked_sub(10) else {
        return Err(PayloadError::VersionOrChecksum);
    };
    let (body, footer) = p.split_at(split);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > MAX_VERSION || crc64::crc64(&p[..p.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(body)
}

/// Reads a value of RDB type `t`.
pub(crate) fn read_value(t: u8, r: &mut Reader<'_>) -> Result<Value, RdbError> {
    let kind = match t {
        TYPE_STRING => return Ok(Value::String(r.string()?)),
        TYPE_STREAM_LISTPACKS => StreamKind::V1,
        TYPE_STREAM_LISTPACKS_2 => StreamKind::V2,
        TYPE_STREAM_LISTPACKS_3 => StreamKind::V3,
        _ if type_name(t) == "unknown" => return Err(RdbError::corrupt("unknown RDB type")),
        _ => return Err(RdbError::Unsupported(t)),
    };
    stream_decode::decode(r, kind).map(Value::Stream)
}

/// Skips a value of a type Brooklet does not hold (`t`, not a string or stream).
pub(crate) fn skip_value(t: u8, r: &mut Reader<'_>) -> Result<(), RdbError> {
    let strings = |r: &mut Reader<'_>, per: usize| -> Result<(), RdbError> {
        let n = r.count()?;
        for _ in 0..n * per {
            r.skip_string()?;
        }
        Ok(())
    };
    match t {
        1 | 2 | 14 => strings(r, 1),
        4 => strings(r, 2),
        3 => {
            let n = r.count()?;
            for _ in 0..n {
                r.skip_string()?;
                // A score as text: one length byte, or 253 to 255 for NaN and infinities.
                let len = r.u8()?;
                if len < 253 {
                    r.take(usize::from(len))?;
                }
            }
            Ok(())
        }
        5 => {
            let n = r.count()?;
            for _ in 0..n {
                r.skip_string()?;
                r.take(8)?;
            }
            Ok(())
        }
        9..=13 | 16 | 17 | 20 | 23 => r.skip_string(),
        18 => {
            let n = r.count()?;
            for _ in 0..n {
                r.len()?;
                r.skip_string()?;
            }
            Ok(())
        }
        22 | 24 => {
            if t == 24 {
                r.take(8)?;
            }
            let n = r.count()?;
            for _ in 0..n {
                r.len()?;
                r.skip_string()?;
                r.skip_string()?;
            }
            Ok(())
        }
        25 => {
            r.take(8)?;
            r.skip_string()
        }
        TYPE_MODULE_2 => {
            r.len()?;
            skip_module_opcodes(r)
        }
        TYPE_MODULE => Err(RdbError::corrupt(
            "module value in the pre-4.0 format, which cannot be skipped",
        )),
        _ => Err(RdbError::corrupt("unknown RDB type")),
    }
}

/// Skips a module's self-described values up to their end marker.
pub(crate) fn skip_module_opcodes(r: &mut Reader<'_>) -> Result<(), RdbError> {
    loop {
        match r.len()? {
            0 => return Ok(()),
            1 | 2 => {
                r.len()?;
            }
            3 => {
                r.take(4)?;
            }
            4 => {
                r.take(8)?;
            }
            5 => r.skip_string()?,
            _ => return Err(RdbError::corrupt("unknown module opcode")),
        }
    }
}

/// Appends the footer (version and checksum) that makes `body` a DUMP payload.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    let crc = crc64::crc64(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// DUMP of a string.
pub(crate) fn dump_string(v: &[u8]) -> Vec<u8> {
    let mut out = vec![TYPE_STRING];
    writer::put_string(&mut out, v);
    seal(out)
}

/// DUMP of a stream.
///
/// # Errors
/// When a node held only in storage cannot be read back.
pub(crate) fn dump_stream(s: &mut Stream) -> Result<Vec<u8>, StreamError> {
    dump_stream_as(s, StreamKind::V2)
}

/// A stream's payload in the layout of `kind` (DUMP writes type 19; tests the others).
fn dump_stream_as(s: &mut Stream, kind: StreamKind) -> Result<Vec<u8>, StreamError> {
    let t = match kind {
        StreamKind::V1 => TYPE_STREAM_LISTPACKS,
        StreamKind::V2 => TYPE_STREAM_LISTPACKS_2,
        StreamKind::V3 => TYPE_STREAM_LISTPACKS_3,
    };
    let mut out = vec![t];
    stream_encode::encode(s, &mut out, kind)?;
    Ok(seal(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brooklet_streams::{Mutation, StreamId};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// A payload Redis 7.0.15 wrote for `SET k hello` (DUMP k).
    const REDIS_STRING: &[u8] = b"\x00\x05hello\x0a\x00\x63\x72\xdf\x76\x65\x34\x20\x0a";

    #[test]
    fn reads_a_redis_string_payload() {
        match decode_payload(REDIS_STRING) {
            Ok(Value::String(v)) => assert_eq!(&v[..], b"hello"),
            other => panic!("{other:?}"),
        }
        assert_eq!(dump_string(b"hello"), REDIS_STRING);
    }

    #[test]
    fn damaged_or_short_payloads_are_refused() {
        let mut bad = REDIS_STRING.to_vec();
        bad[2] ^= 1;
        assert_eq!(
            decode_payload(&bad).err(),
            Some(PayloadError::VersionOrChecksum)
        );
        assert_eq!(
            decode_payload(&REDIS_STRING[..9]).err(),
            Some(PayloadError::VersionOrChecksum)
        );
        // A newer version than Brooklet reads.
        let mut newer = vec![0u8, 1, b'x'];
        newer.extend_from_slice(&13u16.to_le_bytes());
        let crc = crc64::crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_payload(&newer).err(),
            Some(PayloadError::VersionOrChecksum)
        );
        // A right checksum over a value that ends early.
        let short = seal(vec![0u8, 5, b'h']);
        assert_eq!(
            decode_payload(&short).err(),
            Some(PayloadError::BadFormat(RdbError::Truncated))
        );
        // A hash.
        let hash = seal(vec![4u8, 0]);
        assert_eq!(
            decode_payload(&hash).err(),
            Some(PayloadError::BadFormat(RdbError::Unsupported(4)))
        );
    }

    fn sample_stream() -> Stream {
        let mut muts = Vec::new();
        for (i, new_node) in [(1, true), (2, false), (3, false), (4, true), (5, false)] {
            let fields = if i == 3 {
                vec![b("other"), b("x"), b("n"), b("-12")]
            } else {
                vec![b("f"), b(&i.to_string()), b("g"), b("value")]
            };
            muts.push(Mutation::EntryAdded {
                id: StreamId::new(100, i),
                fields,
                new_node,
            });
        }
        muts.push(Mutation::EntriesDeleted {
            ids: vec![StreamId::new(100, 2)],
        });
        muts.push(Mutation::GroupCreated {
            group: b("g1"),
            last_id: StreamId::new(100, 4),
            entries_read: Some(4),
        });
        muts.push(Mutation::ConsumerUpserted {
            group: b("g1"),
            consumer: b("alice"),
            seen_time: 1_700_000_000_000,
            active_time: Some(1_700_000_000_000),
        });
        muts.push(Mutation::PendingUpserted {
            group: b("g1"),
            id: StreamId::new(100, 3),
            consumer: b("alice"),
            delivery_time: 1_700_000_000_123,
            delivery_count: 3,
        });
        let mut s = Stream::new();
        for m in &muts {
            s.apply(m);
        }
        s
    }

    #[test]
    fn a_stream_round_trips_through_its_payload() {
        let mut s = sample_stream();
        let payload = dump_stream(&mut s).unwrap_or_else(|e| panic!("{e}"));
        let Ok(Value::Stream(d)) = decode_payload(&payload) else {
            panic!("not a stream");
        };
        let (back, _) = d.build();
        assert_eq!(back, s);
        assert_eq!(back.node_count(), 2);
    }

    #[test]
    fn redis_6_and_7_2_layouts_are_read_as_redis_loads_them() {
        let mut s = sample_stream();
        // Type 21 keeps the active time.
        let p = dump_stream_as(&mut s, StreamKind::V3).unwrap_or_else(|e| panic!("{e}"));
        let Ok(Value::Stream(d)) = decode_payload(&p) else {
            panic!("not a stream");
        };
        assert_eq!(d.build().0, s);
        // Type 15 has no entries-added, max-deleted ID nor entries-read: Redis takes the
        // length, 0-0 and an estimate.
        let p = dump_stream_as(&mut s, StreamKind::V1).unwrap_or_else(|e| panic!("{e}"));
        let Ok(Value::Stream(d)) = decode_payload(&p) else {
            panic!("not a stream");
        };
        let (back, _) = d.build();
        assert_eq!(back.entries_added(), back.len());
        assert_eq!(back.max_deleted_id(), StreamId::MIN);
        let g = &back.groups()[&b("g1")];
        assert_eq!(g.entries_read(), back.estimate_entries_read(g.last_id()));
        assert_eq!(g.pending(), s.groups()[&b("g1")].pending());
    }

    /// A small deterministic generator, so a failing case can be replayed from its seed.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n.max(1)
        }
    }

    /// Random streams (node sizes, field sets, integer-looking and long values, deletions,
    /// groups, consumers, pending entries, unknown entries-read) survive every layout.
    #[test]
    fn random_streams_round_trip_in_every_layout() {
        for seed in 0..100u64 {
            let mut g = Lcg(seed);
            let mut muts = Vec::new();
            let entries = 1 + g.next(300);
            let mut ids = Vec::new();
            let (mut ms, mut seq) = (g.next(1 << 40), 0u64);
            for i in 0..entries {
                if g.next(3) == 0 {
                    ms += 1 + g.next(1000);
                    seq = 0;
                } else {
                    seq += 1 + g.next(3);
                }
                let id = StreamId::new(ms, seq);
                let nf = 1 + g.next(4);
                let fields = (0..nf)
                    .flat_map(|f| {
                        let name = if g.next(4) == 0 {
                            format!("x{f}")
                        } else {
                            format!("f{f}")
                        };
                        let value = match g.next(4) {
                            0 => (g.next(1 << 50) as i64 - (1 << 49)).to_string(),
                            1 => "v".repeat(g.next(5000) as usize),
                            2 => String::new(),
                            _ => format!("value-{i}"),
                        };
                        [b(&name), b(&value)]
                    })
                    .collect();
                muts.push(Mutation::EntryAdded {
                    id,
                    fields,
                    new_node: i == 0 || g.next(40) == 0,
                });
                ids.push(id);
            }
            let deleted: Vec<StreamId> = ids.iter().copied().filter(|_| g.next(5) == 0).collect();
            if !deleted.is_empty() {
                muts.push(Mutation::EntriesDeleted { ids: deleted });
            }
            for gi in 0..g.next(3) {
                let group = b(&format!("group{gi}"));
                let last_id = ids[g.next(ids.len() as u64) as usize];
                let entries_read = (g.next(2) == 0).then(|| g.next(entries));
                muts.push(Mutation::GroupCreated {
                    group: group.clone(),
                    last_id,
                    entries_read,
                });
                let consumers: Vec<Bytes> = (0..g.next(4)).map(|c| b(&format!("c{c}"))).collect();
                for c in &consumers {
                    let t = 1_700_000_000_000 + g.next(1 << 30);
                    muts.push(Mutation::ConsumerUpserted {
                        group: group.clone(),
                        consumer: c.clone(),
                        seen_time: t,
                        active_time: Some(t),
                    });
                }
                if consumers.is_empty() {
                    continue;
                }
                let pending: Vec<StreamId> =
                    ids.iter().copied().filter(|_| g.next(6) == 0).collect();
                for id in &pending {
                    muts.push(Mutation::PendingUpserted {
                        group: group.clone(),
                        id: *id,
                        consumer: consumers[g.next(consumers.len() as u64) as usize].clone(),
                        delivery_time: 1_700_000_000_000 + g.next(1 << 30),
                        delivery_count: 1 + g.next(10),
                    });
                }
            }
            let mut s = Stream::new();
            for m in &muts {
                s.apply(m);
            }
            for kind in [StreamKind::V2, StreamKind::V3] {
                let p = dump_stream_as(&mut s, kind).unwrap_or_else(|e| panic!("{e}"));
                let Ok(Value::Stream(d)) = decode_payload(&p) else {
                    panic!("seed {seed}: not read back");
                };
                assert_eq!(d.build().0, s, "seed {seed} {kind:?}");
            }
        }
    }

    /// Damaged bytes under a right checksum (a hostile client can send them) are refused or
    /// read, never a panic, and whatever is read builds a stream.
    #[test]
    fn damaged_stream_payloads_never_panic() {
        let mut s = sample_stream();
        let payload = dump_stream_as(&mut s, StreamKind::V3).unwrap_or_else(|e| panic!("{e}"));
        let body = &payload[..payload.len() - 10];
        let mut g = Lcg(7);
        for _ in 0..3000 {
            let mut bad = body.to_vec();
            for _ in 0..1 + g.next(3) {
                let at = g.next(bad.len() as u64) as usize;
                bad[at] = match g.next(3) {
                    0 => bad[at] ^ (1 << g.next(8)),
                    1 => 0xff,
                    _ => g.next(256) as u8,
                };
            }
            if let Ok(Value::Stream(d)) = decode_payload(&seal(bad)) {
                let (built, _) = d.build();
                let _ = built.len();
            }
        }
    }

    #[test]
    fn every_truncation_of_a_stream_payload_is_refused() {
        let mut s = sample_stream();
        let payload = dump_stream(&mut s).unwrap_or_else(|e| panic!("{e}"));
        let body = &payload[..payload.len() - 10];
        for cut in 1..body.len() {
            let short = seal(body[..cut].to_vec());
            assert!(
                matches!(decode_payload(&short), Err(PayloadError::BadFormat(_))),
                "cut at {cut} was read"
            );
        }
    }
}
