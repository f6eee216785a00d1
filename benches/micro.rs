//! criterion micro-benchmarks of the hot paths, in-process, no sockets:
//!
//! ```text
//! cargo bench --bench micro                 # all
//! cargo bench --bench micro -- decode       # those whose name contains `decode`
//! ```
//!
//! - `decode/resp2_array5`, `decode/inline`: the request reader cutting 100 requests (an
//!   `XADD s * f v` array of 5 bulks, or the same as an inline line) out of one buffer;
//! - `encode/xrange10_resp2`, `encode/xrange10_resp3`: encoding an XRANGE reply of 10 entries;
//! - `stream/xadd`: one auto-ID XADD of one field into a growing stream;
//! - `stream/xadd_idmp`, `stream/xadd_idmpauto`: the same with `IDMP p <new iid>` or
//!   `IDMPAUTO p` (a new value each time), so never a duplicate;
//! - `stream/xrange100`: XRANGE of 100 entries from the middle of a 10,000-entry stream;
//! - `stream/xreadgroup100`: XREADGROUP `>` COUNT 100 of a group with 100 new entries;
//! - `glob/*`: pub/sub pattern matching.

use std::hint::black_box;

use brooklet_pubsub::glob_match;
use brooklet_resp::{Limits, Reply, RequestReader};
use brooklet_streams::{GroupStartId, IdSpec, IdmpKey, NodeLimits, ReadId, Stream, StreamId};
use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const NOW_MS: u64 = 1_700_000_000_000;

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(100));
    let cases: [(&str, &[u8]); 2] = [
        (
            "resp2_array5",
            b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ),
        ("inline", b"XADD s * f v\r\n"),
    ];
    for (name, frame) in cases {
        let input: Vec<u8> = frame.repeat(100);
        g.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(&input[..]),
                |mut buf| {
                    let mut reader = RequestReader::new();
                    let mut n = 0;
                    while let Ok(Some(argv)) = reader.next_request(&mut buf, Limits::default()) {
                        n += argv.len();
                    }
                    assert_eq!(n, 500);
                    black_box(buf)
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

fn xrange_reply(n: usize) -> Reply {
    Reply::Array(
        (0..n)
            .map(|i| {
                Reply::Array(vec![
                    Reply::Bulk(Bytes::from(format!("{}-{i}", NOW_MS))),
                    Reply::Array(vec![
                        Reply::Bulk(Bytes::from_static(b"field")),
                        Reply::Bulk(Bytes::from_static(b"0123456789abcdef")),
                    ]),
                ])
            })
            .collect(),
    )
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let reply = xrange_reply(10);
    let mut out = BytesMut::with_capacity(4096);
    for (name, resp3) in [("xrange10_resp2", false), ("xrange10_resp3", true)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&reply).encode(&mut out, resp3);
                black_box(out.len())
            });
        });
    }
    g.finish();
}

fn filled(n: u64) -> Stream {
    let mut s = Stream::new();
    let mut journal = Vec::new();
    let fields = [
        Bytes::from_static(b"f"),
        Bytes::from_static(b"0123456789abcdef"),
    ];
    for i in 0..n {
        s.add(
            IdSpec::Explicit(StreamId::new(NOW_MS + i / 10, i % 10)),
            &fields,
            None,
            NOW_MS,
            &NodeLimits::default(),
            &mut journal,
        )
        .expect("xadd");
        journal.clear();
    }
    s
}

fn stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream");
    let limits = NodeLimits::default();
    let fields = [
        Bytes::from_static(b"f"),
        Bytes::from_static(b"0123456789abcdef"),
    ];
    g.bench_function("xadd", |b| {
        let mut s = Stream::new();
        let mut journal = Vec::new();
        b.iter(|| {
            // Start over now and then, so the stream's memory stays bounded.
            if s.len() >= 1_000_000 {
                s = Stream::new();
            }
            let added = s
                .add(IdSpec::Auto, &fields, None, NOW_MS, &limits, &mut journal)
                .expect("xadd");
            journal.clear();
            black_box(added.id)
        });
    });
    // XADD IDMP with a new iid each time (never a duplicate: the producer's oldest of 100
    // is evicted per add), and IDMPAUTO with a new value each time: what IDMP adds to
    // `xadd` is the difference.
    let iids: Vec<Vec<u8>> = (0..4096u64)
        .map(|i| format!("{:012}", i.wrapping_mul(2_654_435_761) % 1_000_000_000).into_bytes())
        .collect();
    let values: Vec<Bytes> = iids.iter().map(|v| Bytes::from(v.clone())).collect();
    for auto in [false, true] {
        let name = if auto { "xadd_idmpauto" } else { "xadd_idmp" };
        g.bench_function(name, |b| {
            let mut s = Stream::new();
            let mut journal = Vec::new();
            let mut n = 0usize;
            b.iter(|| {
                if s.len() >= 1_000_000 {
                    s = Stream::new();
                }
                n += 1;
                let fields = [Bytes::from_static(b"f"), values[n % values.len()].clone()];
                let key = if auto {
                    IdmpKey::Auto { pid: b"p" }
                } else {
                    IdmpKey::Explicit {
                        pid: b"p",
                        iid: &iids[n % iids.len()],
                    }
                };
                let added = s
                    .add_idempotent(
                        key,
                        IdSpec::Auto,
                        &fields,
                        None,
                        None,
                        NOW_MS,
                        &limits,
                        &mut journal,
                    )
                    .expect("xadd idmp");
                journal.clear();
                black_box(added)
            });
        });
    }

    let mut big = filled(10_000);
    let middle = StreamId::new(NOW_MS + 500, 0);
    g.throughput(Throughput::Elements(100));
    g.bench_function("xrange100", |b| {
        b.iter(|| {
            let got = big.range(black_box(middle), StreamId::MAX, Some(100), false);
            assert!(got.as_ref().is_ok_and(|g| g.len() == 100));
            got
        });
    });

    let mut base = filled(100);
    let mut journal = Vec::new();
    base.create_group(b"g", GroupStartId::Id(StreamId::MIN), None, &mut journal)
        .expect("create group");
    g.bench_function("xreadgroup100", |b| {
        b.iter_batched(
            || base.clone(),
            |mut s| {
                let mut journal = Vec::new();
                let got = s
                    .read_group(
                        b"s",
                        b"g",
                        b"c",
                        ReadId::New,
                        Some(100),
                        false,
                        NOW_MS,
                        &mut journal,
                    )
                    .expect("xreadgroup")
                    .expect("new entries");
                assert_eq!(got.len(), 100);
                (s, got, journal)
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn glob(c: &mut Criterion) {
    let mut g = c.benchmark_group("glob");
    let cases: [(&str, &[u8], &[u8]); 4] = [
        ("literal", b"news.sport", b"news.sport"),
        ("star_suffix", b"news.*", b"news.europe.sport.football"),
        ("classes", b"news.[a-e]*.sport?", b"news.europe.sports"),
        (
            "backtracking_miss",
            b"*a*a*a*a*b",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
    ];
    for (name, pattern, subject) in cases {
        g.bench_function(name, |b| {
            b.iter(|| glob_match(black_box(pattern), black_box(subject)));
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode, stream, glob);
criterion_main!(benches);
