//! Pub/sub fan-out benchmark: one publisher, 1, 10 and 100 subscribers, 64 B and 1 KiB
//! payloads, for a bounded time each, against any Redis-protocol server on this machine.
//!
//! ```text
//! cargo bench --bench fanout -- 127.0.0.1:6379 [--seconds 3] [--window 16] [--only 1x1024,10x64]
//!     [--rate N]
//! ```
//!
//! Reports delivered messages per second (summed over subscribers) and the p50/p99 latency
//! from the moment the publisher wrote a PUBLISH to the moment a subscriber read the message.
//! Each payload carries its send time, so the latency is measured per message without any
//! clock shared between processes. The publisher keeps `--window` PUBLISHes in flight (it
//! writes a batch, then reads its replies), so the server sees a steady pipelined load rather
//! than one round trip per message. Only loopback addresses are accepted.
//!
//! Without `--rate` the publisher goes as fast as the server answers, so a faster server also
//! carries more messages at once and its latency is measured under more load. `--rate N` paces
//! the publisher at N PUBLISHes per second (a window at a time), so two servers' latencies can
//! be compared at the same load.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const CHANNEL: &[u8] = b"fanout-bench";

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

struct Options {
    addr: SocketAddr,
    seconds: u64,
    window: usize,
    /// `(subscribers, payload bytes)` rows to run; all six when empty.
    only: Vec<(usize, usize)>,
    /// PUBLISHes per second to pace the publisher at; as fast as answered when None.
    rate: Option<u64>,
}

fn parse_options() -> Result<Options, String> {
    let mut addr = None;
    let mut seconds = 3;
    let mut window = 16;
    let mut only = Vec::new();
    let mut rate = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds takes a number")?;
            }
            "--window" => {
                window = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|w| *w > 0)
                    .ok_or("--window takes a positive number")?;
            }
            "--rate" => {
                rate = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|r| *r > 0)
                        .ok_or("--rate takes a positive number of PUBLISHes per second")?,
                );
            }
            "--only" => {
                let rows = args.next().ok_or("--only takes rows like 1x1024,10x64")?;
                for row in rows.split(',') {
                    let parsed = row
                        .split_once('x')
                        .and_then(|(s, p)| Some((s.parse().ok()?, p.parse().ok()?)));
                    only.push(parsed.ok_or(format!("--only: {row} is not SUBSCRIBERSxBYTES"))?);
                }
            }
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            other if addr.is_none() && !other.starts_with('-') => {
                addr = Some(brooklet::loopback_addr(other)?);
            }
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(Options {
        addr: addr.ok_or(
            "usage: fanout HOST:PORT [--seconds N] [--window N] [--only SxB,...] [--rate N]",
        )?,
        seconds,
        window,
        only,
        rate,
    })
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

/// Reads until `buf` ends with `suffix` (small replies whose last bytes are known).
fn read_until(s: &mut TcpStream, suffix: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(suffix) {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// What one subscriber saw.
struct Received {
    messages: u64,
    latencies_ns: Vec<u64>,
    error: Option<String>,
}

/// The exact bytes of one `message` frame before its payload.
fn message_prefix(payload_len: usize) -> Vec<u8> {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{}\r\n${payload_len}\r\n",
        CHANNEL.len(),
        String::from_utf8_lossy(CHANNEL)
    )
    .into_bytes()
}

/// Reads fixed-size message frames until `stop` is set and `expected` (once known) arrived.
fn subscriber(
    mut s: TcpStream,
    payload_len: usize,
    stop: Arc<AtomicBool>,
    expected: Arc<AtomicU64>,
) -> Received {
    let prefix = message_prefix(payload_len);
    let frame_len = prefix.len() + payload_len + 2;
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut got = Received {
        messages: 0,
        latencies_ns: Vec::new(),
        error: None,
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut idle_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Acquire) && got.messages >= expected.load(Ordering::Acquire) {
            return got;
        }
        match s.read(&mut buf[filled..]) {
            Ok(0) => {
                got.error = Some("connection closed by the server".into());
                return got;
            }
            Ok(n) => {
                idle_since = None;
                filled += n;
                let received = now_ns();
                let mut at = 0;
                while filled - at >= frame_len {
                    let frame = &buf[at..at + frame_len];
                    if !frame.starts_with(&prefix) {
                        got.error = Some("unexpected frame".into());
                        return got;
                    }
                    let mut ts = [0u8; 8];
                    ts.copy_from_slice(&frame[prefix.len()..prefix.len() + 8]);
                    got.latencies_ns
                        .push(received.saturating_sub(u64::from_le_bytes(ts)));
                    got.messages += 1;
                    at += frame_len;
                }
                buf.copy_within(at..filled, 0);
                filled -= at;
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if stop.load(Ordering::Acquire) {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(5) {
                        got.error = Some(format!(
                            "gave up waiting: {} of {} messages",
                            got.messages,
                            expected.load(Ordering::Acquire)
                        ));
                        return got;
                    }
                }
            }
            Err(e) => {
                got.error = Some(e.to_string());
                return got;
            }
        }
    }
}

struct Outcome {
    published: u64,
    elapsed: Duration,
    delivered: u64,
    latencies_ns: Vec<u64>,
    errors: Vec<String>,
}

fn run(opts: &Options, subscribers: usize, payload_len: usize) -> std::io::Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let mut handles = Vec::new();
    for _ in 0..subscribers {
        let mut s = connect(opts.addr)?;
        s.write_all(&command(&[b"SUBSCRIBE", CHANNEL]))?;
        // Ready once its confirmation was read.
        read_until(&mut s, b":1\r\n")?;
        let (stop, expected) = (stop.clone(), expected.clone());
        handles.push(thread::spawn(move || {
            subscriber(s, payload_len, stop, expected)
        }));
    }

    let mut publisher = connect(opts.addr)?;
    let prefix = format!(
        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{}\r\n${payload_len}\r\n",
        CHANNEL.len(),
        String::from_utf8_lossy(CHANNEL)
    )
    .into_bytes();
    let mut message = prefix.clone();
    message.resize(prefix.len() + payload_len, b'x');
    message.extend_from_slice(b"\r\n");
    let reply = format!(":{subscribers}\r\n").into_bytes();
    let mut batch = Vec::with_capacity(message.len() * opts.window);
    let mut replies = vec![0u8; reply.len() * opts.window];

    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let mut published = 0u64;
    while Instant::now() < deadline {
        if let Some(rate) = opts.rate {
            let due = started + Duration::from_secs_f64(published as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        batch.clear();
        for _ in 0..opts.window {
            let ts = now_ns().to_le_bytes();
            message[prefix.len()..prefix.len() + 8].copy_from_slice(&ts);
            batch.extend_from_slice(&message);
        }
        publisher.write_all(&batch)?;
        publisher.read_exact(&mut replies)?;
        if !replies.chunks(reply.len()).all(|r| r == &reply[..]) {
            return Err(std::io::Error::other(format!(
                "unexpected PUBLISH reply: {:?}",
                String::from_utf8_lossy(&replies[..reply.len()])
            )));
        }
        published += opts.window as u64;
    }
    let elapsed = started.elapsed();
    expected.store(published, Ordering::Release);
    stop.store(true, Ordering::Release);

    let mut outcome = Outcome {
        published,
        elapsed,
        delivered: 0,
        latencies_ns: Vec::new(),
        errors: Vec::new(),
    };
    for h in handles {
        let got = h
            .join()
            .map_err(|_| std::io::Error::other("subscriber thread panicked"))?;
        outcome.delivered += got.messages;
        outcome.latencies_ns.extend(got.latencies_ns);
        outcome.errors.extend(got.error);
    }
    outcome.latencies_ns.sort_unstable();
    Ok(outcome)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn main() {
    let opts = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    base();
    let pace = match opts.rate {
        Some(rate) => format!("paced at {rate} PUBLISHes/s"),
        None => "unpaced".to_string(),
    };
    println!(
        "fan-out against {} ({} s per run, {} PUBLISHes in flight, {pace})",
        opts.addr, opts.seconds, opts.window
    );
    println!(
        "{:>5} {:>8} {:>12} {:>14} {:>10} {:>10}  notes",
        "subs", "payload", "published/s", "delivered/s", "p50 us", "p99 us"
    );
    for subscribers in [1, 10, 100] {
        for payload_len in [64, 1024] {
            if !opts.only.is_empty() && !opts.only.contains(&(subscribers, payload_len)) {
                continue;
            }
            match run(&opts, subscribers, payload_len) {
                Ok(o) => {
                    let secs = o.elapsed.as_secs_f64();
                    let lost = (o.published * subscribers as u64).saturating_sub(o.delivered);
                    let mut notes = String::new();
                    if lost > 0 {
                        notes.push_str(&format!("{lost} not delivered; "));
                    }
                    if let Some(e) = o.errors.first() {
                        notes.push_str(&format!(
                            "{} subscriber error(s), first: {e}",
                            o.errors.len()
                        ));
                    }
                    println!(
                        "{:>5} {:>8} {:>12.0} {:>14.0} {:>10.1} {:>10.1}  {}",
                        subscribers,
                        payload_len,
                        o.published as f64 / secs,
                        o.delivered as f64 / secs,
                        percentile(&o.latencies_ns, 0.50),
                        percentile(&o.latencies_ns, 0.99),
                        notes
                    );
                }
                Err(e) => println!("{subscribers:>5} {payload_len:>8}  failed: {e}"),
            }
        }
    }
}
