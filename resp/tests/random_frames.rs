//! Randomized tests of the request reader: random requests, random corruption, random
//! chunking. The reader must never panic, must give the same answer however the bytes are
//! split across reads, and must return exactly the arguments of well-formed requests.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};

use brooklet_resp::{Limits, ProtocolError, RequestReader};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }
}

/// Everything the reader produced for a byte string fed in the given chunk sizes.
fn run(
    input: &[u8],
    chunks: &mut Lcg,
    whole: bool,
    limits: Limits,
) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
    let mut reader = RequestReader::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let n = if whole {
            input.len()
        } else {
            1 + chunks.next(64)
        };
        let end = (pos + n).min(input.len());
        buf.extend_from_slice(&input[pos..end]);
        pos = end;
        loop {
            match reader.next_request(&mut buf, limits) {
                Ok(Some(argv)) => out.push(argv),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn random_arg(rng: &mut Lcg) -> Vec<u8> {
    let len = match rng.next(4) {
        0 => 0,
        1 => rng.next(5),
        2 => rng.next(100),
        _ => rng.next(3000),
    };
    (0..len).map(|_| rng.next(256) as u8).collect()
}

#[test]
fn well_formed_multibulk_requests_parse_the_same_in_any_chunking() {
    let mut rng = Lcg(42);
    for _ in 0..300 {
        let requests: Vec<Vec<Vec<u8>>> = (0..1 + rng.next(8))
            .map(|_| (0..1 + rng.next(6)).map(|_| random_arg(&mut rng)).collect())
            .collect();
        let mut input = Vec::new();
        for r in &requests {
            input.extend_from_slice(format!("*{}\r\n", r.len()).as_bytes());
            for a in r {
                input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                input.extend_from_slice(a);
                input.extend_from_slice(b"\r\n");
            }
        }
        let (whole, err) = run(&input, &mut rng, true, Limits::default());
        assert!(err.is_none());
        let expected: Vec<Vec<Bytes>> = requests
            .iter()
            .map(|r| r.iter().map(|a| Bytes::copy_from_slice(a)).collect())
            .collect();
        assert_eq!(whole, expected);
        let (chunked, err) = run(&input, &mut rng, false, Limits::default());
        assert!(err.is_none());
        assert_eq!(chunked, expected);
    }
}

#[test]
fn corrupted_and_random_bytes_never_panic_and_chunking_does_not_change_the_outcome() {
    let mut rng = Lcg(7);
    let seeds: &[&[u8]] = &[
        b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n",
        b"PING\r\nECHO \"a b\" 'c'\r\n",
        b"*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n",
        b"*3\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n",
    ];
    for round in 0..3000 {
        let mut input = seeds[rng.next(seeds.len())].repeat(1 + rng.next(3));
        for _ in 0..rng.next(4) {
            let at = rng.next(input.len());
            match rng.next(3) {
                0 => input[at] = rng.next(256) as u8,
                1 => {
                    input.insert(at, b"*$\r\n-0123456789\"'\\ "[rng.next(19)]);
                }
                _ => {
                    input.remove(at);
                }
            }
        }
        if round % 10 == 0 {
            input = (0..rng.next(200)).map(|_| rng.next(256) as u8).collect();
        }
        let unauth = Limits {
            unauthenticated: round % 2 == 0,
            ..Limits::default()
        };
        let whole = run(&input, &mut rng, true, unauth);
        let chunked = run(&input, &mut rng, false, unauth);
        assert_eq!(
            whole,
            chunked,
            "round {round}: input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

/// Pipelines of requests of up to 20 arguments (a request of up to 16 that is already whole
/// in the buffer is cut in one piece, a longer or unfinished one argument by argument), with
/// bulks over `proto-max-bulk-len`, counts over the unauthenticated limit, and a malformed
/// request now and then: read whole and in random chunks, the outcome is the same, and a
/// pipeline read to its end gives exactly the requests sent.
#[test]
fn long_requests_and_limits_read_the_same_whole_and_chunked() {
    let mut rng = Lcg(99);
    for round in 0..300 {
        let limits = Limits {
            max_bulk_len: 40,
            unauthenticated: round % 5 == 0,
        };
        let mut input = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..rng.next(12) {
            let argc = 1 + rng.next(20);
            let argv: Vec<Bytes> = (0..argc)
                .map(|_| {
                    let len = rng.next(45);
                    (0..len).map(|_| b"ab\r\n*$1"[rng.next(7)]).collect()
                })
                .collect();
            input.extend_from_slice(format!("*{argc}\r\n").as_bytes());
            for a in &argv {
                input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                input.extend_from_slice(a);
                input.extend_from_slice(b"\r\n");
            }
            sent.push(argv);
        }
        match rng.next(7) {
            0 => input.extend_from_slice(b"*2\r\n$1\r\na\r\n:1\r\n"),
            1 => input.extend_from_slice(b"*1\r\n$-3\r\n"),
            2 => input.extend_from_slice(b"*x\r\n"),
            3 => input.extend_from_slice(b"*1\r\n$01\r\na\r\n"),
            4 => input.extend_from_slice(b"*01\r\n$1\r\na\r\n"),
            _ => {}
        }
        let whole = run(&input, &mut rng, true, limits);
        let chunked = run(&input, &mut rng, false, limits);
        assert_eq!(whole, chunked, "round {round}");
        assert!(whole.1.is_some() || whole.0 == sent, "round {round}");
    }
}
