//! Consumer-group benchmark: producers XADD to one stream while consumers of one group loop
//! `XREADGROUP GROUP g cI COUNT 100 BLOCK 100 STREAMS s >` and XACK what they got, against any
//! Redis-protocol server on this machine.
//!
//! ```text
//! cargo bench --bench consume -- 127.0.0.1:6379 [--seconds 5] [--producers 2] [--window 16]
//!                                [--consumers 4] [--max-entries 5000000]
//!                                [--mode ack|claim|autoclaim|dlq] [--fail-percent 10] [--min-idle 100]
//!                                [--max-deliveries 3]
//! ```
//!
//! `--mode` chooses how failed deliveries come back. `ack` (the default) fails none. With the
//! other two, a first delivery fails for `--fail-percent` of the entries (chosen by ID, so the
//! same entries fail whatever the timing) and is redelivered to some consumer, which then
//! acknowledges it: `claim` hands a failure back with `XNACK key group FAIL` and reads with
//! `XREADGROUP ... CLAIM min-idle`, which takes NACKed and idle entries before new ones (Redis
//! 8.4 / 8.8); `autoclaim` leaves a failure pending and runs `XAUTOCLAIM key group c min-idle
//! 0-0 COUNT 100` before each `XREADGROUP ... >`, the pair that CLAIM replaces. `dlq` reads
//! as `claim` does, but an entry that fails fails on every delivery: the group has a
//! dead-letter stream (`XGROUP SETDLQ ... MAXDELIVERIES --max-deliveries`, a Brooklet
//! extension), and a thread reading it reports how long an entry took from its last failure
//! (its last XNACK) to its arrival there.
//!
//! Reports entries per second end to end (entries consumed and acknowledged, divided by the time
//! from the first XADD to the last delivery) and the p50/p99 latency from the moment a producer
//! wrote the XADD to the moment a consumer read the entry. Each entry carries its send time
//! (nanoseconds since an `Instant` shared by all threads of this process) in its one field, so
//! no clock is shared between processes. Each producer keeps `--window` XADDs in flight (writes
//! a batch, then reads its replies). Producing stops after `--seconds` or `--max-entries`,
//! whichever comes first; consumers then drain what is left, for at most 10 s. Only loopback
//! addresses are accepted. The last line (`result ...`) is for scripts (benches/compare).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const STREAM: &[u8] = b"consume-bench";
const GROUP: &[u8] = b"g";
/// `dlq`: the group's dead-letter stream.
const DLQ: &[u8] = b"consume-bench-dlq";
const DRAIN: Duration = Duration::from_secs(10);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

/// How failed deliveries are handed back and redelivered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Ack,
    Claim,
    AutoClaim,
    Dlq,
}

#[derive(Clone, Copy)]
struct Options {
    mode: Mode,
    fail_percent: u64,
    min_idle_ms: u64,
    max_deliveries: u64,
    addr: SocketAddr,
    seconds: u64,
    producers: usize,
    window: usize,
    consumers: usize,
    max_entries: u64,
}

fn number<T: std::str::FromStr>(v: Option<String>, name: &str) -> Result<T, String> {
    v.and_then(|v| v.parse().ok())
        .ok_or(format!("{name} takes a number"))
}

fn parse_options() -> Result<Options, String> {
    let mut addr = None;
    let mut o = Options {
        mode: Mode::Ack,
        fail_percent: 10,
        min_idle_ms: 100,
        max_deliveries: 3,
        addr: SocketAddr::from(([127, 0, 0, 1], 6379)),
        seconds: 5,
        producers: 2,
        window: 16,
        consumers: 4,
        max_entries: 5_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => o.seconds = number(args.next(), "--seconds")?,
            "--producers" => o.producers = number(args.next(), "--producers")?,
            "--window" => o.window = number(args.next(), "--window")?,
            "--consumers" => o.consumers = number(args.next(), "--consumers")?,
            "--max-entries" => o.max_entries = number(args.next(), "--max-entries")?,
            "--fail-percent" => o.fail_percent = number(args.next(), "--fail-percent")?,
            "--min-idle" => o.min_idle_ms = number(args.next(), "--min-idle")?,
            "--max-deliveries" => o.max_deliveries = number(args.next(), "--max-deliveries")?,
            "--mode" => {
                o.mode = match args.next().as_deref() {
                    Some("ack") => Mode::Ack,
                    Some("claim") => Mode::Claim,
                    Some("autoclaim") => Mode::AutoClaim,
                    Some("dlq") => Mode::Dlq,
                    _ => return Err("--mode takes ack, claim, autoclaim or dlq".into()),
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
    if o.producers == 0 || o.window == 0 || o.consumers == 0 {
        return Err("--producers, --window and --consumers must be positive".into());
    }
    if o.fail_percent > 100 {
        return Err("--fail-percent takes 0 to 100".into());
    }
    if o.mode == Mode::Ack {
        o.fail_percent = 0;
    }
    o.addr = addr.ok_or(
        "usage: consume HOST:PORT [--seconds N] [--producers N] [--window N] [--consumers N] \
         [--max-entries N] [--mode ack|claim|autoclaim|dlq] [--fail-percent N] [--min-idle MS] \
         [--max-deliveries N]",
    )?;
    Ok(o)
}

fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A RESP2 reply. (Payloads of some variants are only read through `Debug`, in error messages.)
#[derive(Debug)]
#[allow(dead_code)]
enum Value {
    Nil,
    Int(i64),
    Simple(Vec<u8>),
    Error(String),
    Bulk(Vec<u8>),
    Array(Vec<Value>),
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            reader: BufReader::with_capacity(1 << 16, s.try_clone()?),
            writer: s,
            line: Vec::new(),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        let mut out = Vec::new();
        command(&mut out, args);
        self.send(&out)?;
        self.read()
    }

    fn read(&mut self) -> std::io::Result<Value> {
        let bad = |what: &str| std::io::Error::other(format!("bad reply: {what}"));
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if !self.line.ends_with(b"\r\n") || self.line.len() < 3 {
            return Err(bad("truncated line"));
        }
        let body = &self.line[1..self.line.len() - 2];
        let int = |b: &[u8]| -> std::io::Result<i64> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("not a number"))
        };
        match self.line[0] {
            b'+' => Ok(Value::Simple(body.to_vec())),
            b'-' => Ok(Value::Error(String::from_utf8_lossy(body).into_owned())),
            b':' => Ok(Value::Int(int(body)?)),
            b'$' => {
                let len = int(body)?;
                if len < 0 {
                    return Ok(Value::Nil);
                }
                let mut data = vec![0u8; len as usize + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(len as usize);
                Ok(Value::Bulk(data))
            }
            b'*' => {
                let len = int(body)?;
                if len < 0 {
                    return Ok(Value::Nil);
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.read()?);
                }
                Ok(Value::Array(items))
            }
            _ => Err(bad("unknown type byte")),
        }
    }
}

struct Shared {
    produced: AtomicU64,
    consumed: AtomicU64,
    producing_done: AtomicBool,
    /// now_ns() of the last delivery seen by any consumer.
    last_delivery_ns: AtomicU64,
    /// `dlq`: now_ns() of each entry's last failure (its last XNACK), by ID.
    last_failure: std::sync::Mutex<std::collections::HashMap<Vec<u8>, u64>>,
    /// `dlq`: entries that reached the dead-letter stream.
    dead: AtomicU64,
}

fn producer(opts: &Options, shared: &Shared, quota: u64, deadline: Instant) -> Result<(), String> {
    let mut conn = Conn::open(opts.addr).map_err(|e| e.to_string())?;
    let mut batch = Vec::new();
    let mut sent = 0u64;
    while sent < quota && Instant::now() < deadline {
        let n = (opts.window as u64).min(quota - sent);
        batch.clear();
        for _ in 0..n {
            let ts = now_ns().to_string();
            command(&mut batch, &[b"XADD", STREAM, b"*", b"t", ts.as_bytes()]);
        }
        conn.send(&batch).map_err(|e| e.to_string())?;
        for _ in 0..n {
            match conn.read().map_err(|e| e.to_string())? {
                Value::Bulk(_) => {}
                other => return Err(format!("unexpected XADD reply: {other:?}")),
            }
        }
        sent += n;
        shared.produced.fetch_add(n, Ordering::AcqRel);
    }
    Ok(())
}

struct Consumed {
    latencies_ns: Vec<u64>,
    error: Option<String>,
}

fn consumer(opts: &Options, shared: &Shared, index: usize) -> Consumed {
    let mut got = Consumed {
        latencies_ns: Vec::new(),
        error: None,
    };
    if let Err(e) = consume_loop(opts, shared, index, &mut got.latencies_ns) {
        got.error = Some(e);
    }
    got
}

/// Whether the first delivery of `id` fails: a fixed share of the entries, chosen by ID so
/// that every mode and run fails the same ones.
fn fails(id: &[u8], percent: u64) -> bool {
    // FNV-1a, for a spread over IDs that differ only in their last digits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % 100 < percent
}

/// One delivered entry.
struct Delivery {
    id: Vec<u8>,
    /// Whether nobody had it before (a new entry, not a claimed one).
    first: bool,
    /// The producer's send time it carries.
    sent_ns: Option<u64>,
}

/// An entry of a read reply: `[id, fields]`, or under CLAIM `[id, fields, idle, prior
/// deliveries]`, where 0 prior deliveries marks a new entry.
fn delivery(entry: Value, claimed: bool) -> Result<Delivery, String> {
    let Value::Array(e) = entry else {
        return Err("unexpected entry".into());
    };
    let mut e = e.into_iter();
    let Some(Value::Bulk(id)) = e.next() else {
        return Err("entry without an id".into());
    };
    let sent_ns = match e.next() {
        Some(Value::Array(mut f)) => match f.pop() {
            Some(Value::Bulk(ts)) => std::str::from_utf8(&ts).ok().and_then(|s| s.parse().ok()),
            _ => None,
        },
        _ => None,
    };
    let first = match (e.next(), e.next()) {
        (Some(Value::Int(_idle)), Some(Value::Int(prior))) => prior == 0,
        _ => !claimed,
    };
    Ok(Delivery { id, first, sent_ns })
}

/// The entries of an XREADGROUP reply (nil when it timed out).
fn read_reply(reply: Value, out: &mut Vec<Delivery>) -> Result<(), String> {
    let streams = match reply {
        Value::Nil => return Ok(()),
        Value::Array(streams) => streams,
        other => return Err(format!("unexpected XREADGROUP reply: {other:?}")),
    };
    for stream in streams {
        let Value::Array(mut pair) = stream else {
            return Err("unexpected stream element".into());
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            return Err("unexpected entry list".into());
        };
        for entry in entries {
            out.push(delivery(entry, false)?);
        }
    }
    Ok(())
}

fn consume_loop(
    opts: &Options,
    shared: &Shared,
    index: usize,
    latencies: &mut Vec<u64>,
) -> Result<(), String> {
    let mut conn = Conn::open(opts.addr).map_err(|e| e.to_string())?;
    let name = format!("c{index}");
    let min_idle = opts.min_idle_ms.to_string();
    let mut read_args: Vec<&[u8]> = vec![b"XREADGROUP", b"GROUP", GROUP, name.as_bytes()];
    read_args.extend_from_slice(&[b"COUNT", b"100"]);
    if matches!(opts.mode, Mode::Claim | Mode::Dlq) {
        read_args.extend_from_slice(&[b"CLAIM", min_idle.as_bytes()]);
    }
    read_args.extend_from_slice(&[b"BLOCK", b"100", b"STREAMS", STREAM, b">"]);
    let mut read = Vec::new();
    command(&mut read, &read_args);
    let mut autoclaim = Vec::new();
    command(
        &mut autoclaim,
        &[
            b"XAUTOCLAIM",
            STREAM,
            GROUP,
            name.as_bytes(),
            min_idle.as_bytes(),
            b"0-0",
            b"COUNT",
            b"100",
        ],
    );
    let mut drain_deadline: Option<Instant> = None;
    let mut got: Vec<Delivery> = Vec::new();
    let mut acks: Vec<Vec<u8>> = Vec::new();
    let mut nacks: Vec<Vec<u8>> = Vec::new();
    loop {
        if shared.producing_done.load(Ordering::Acquire) {
            if shared.consumed.load(Ordering::Acquire) >= shared.produced.load(Ordering::Acquire) {
                return Ok(());
            }
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN);
            if Instant::now() > d {
                return Err("gave up draining after 10 s".into());
            }
        }
        got.clear();
        if opts.mode == Mode::AutoClaim {
            conn.send(&autoclaim).map_err(|e| e.to_string())?;
            match conn.read().map_err(|e| e.to_string())? {
                Value::Array(parts) => {
                    if let Some(Value::Array(entries)) = parts.into_iter().nth(1) {
                        for entry in entries {
                            got.push(delivery(entry, true)?);
                        }
                    }
                }
                other => return Err(format!("unexpected XAUTOCLAIM reply: {other:?}")),
            }
        }
        conn.send(&read).map_err(|e| e.to_string())?;
        let reply = conn.read().map_err(|e| e.to_string())?;
        let received = now_ns();
        read_reply(reply, &mut got)?;
        if got.is_empty() {
            continue;
        }
        shared
            .last_delivery_ns
            .fetch_max(received, Ordering::AcqRel);
        acks.clear();
        nacks.clear();
        for d in got.drain(..) {
            if (d.first || opts.mode == Mode::Dlq) && fails(&d.id, opts.fail_percent) {
                nacks.push(d.id);
                continue;
            }
            if let Some(sent) = d.sent_ns {
                latencies.push(received.saturating_sub(sent));
            }
            acks.push(d.id);
        }
        if opts.mode == Mode::Dlq && !nacks.is_empty() {
            let now = now_ns();
            let mut last = shared
                .last_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for id in &nacks {
                last.insert(id.clone(), now);
            }
        }
        if matches!(opts.mode, Mode::Claim | Mode::Dlq) && !nacks.is_empty() {
            let n = nacks.len().to_string();
            let mut args: Vec<&[u8]> = vec![b"XNACK", STREAM, GROUP, b"FAIL", b"IDS", n.as_bytes()];
            args.extend(nacks.iter().map(|i| i.as_slice()));
            if let Value::Error(e) = conn.call(&args).map_err(|e| e.to_string())? {
                return Err(format!("XNACK failed: {e}"));
            }
        }
        if acks.is_empty() {
            continue;
        }
        let mut args: Vec<&[u8]> = vec![b"XACK", STREAM, GROUP];
        args.extend(acks.iter().map(|i| i.as_slice()));
        // Fewer than sent when another consumer claimed an entry again (its idle time passed
        // min-idle before this consumer acknowledged it) and acknowledged it first.
        let acked = match conn.call(&args).map_err(|e| e.to_string())? {
            Value::Int(n) if n >= 0 && n as usize <= acks.len() => n as u64,
            other => return Err(format!("unexpected XACK reply: {other:?}")),
        };
        shared.consumed.fetch_add(acked, Ordering::AcqRel);
    }
}

/// `dlq`: reads the dead-letter stream as entries arrive, counting each as done, and
/// returns how long each took from its last failure to its arrival (nanoseconds).
fn dead_letters(opts: &Options, shared: &Shared) -> Result<Vec<u64>, String> {
    let mut conn = Conn::open(opts.addr).map_err(|e| e.to_string())?;
    let mut last = b"0-0".to_vec();
    let mut out = Vec::new();
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if shared.producing_done.load(Ordering::Acquire) {
            if shared.consumed.load(Ordering::Acquire) >= shared.produced.load(Ordering::Acquire) {
                return Ok(out);
            }
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN);
            if Instant::now() > d {
                return Err("gave up draining after 10 s".into());
            }
        }
        let args: [&[u8]; 8] = [
            b"XREAD", b"COUNT", b"100", b"BLOCK", b"100", b"STREAMS", DLQ, &last,
        ];
        let streams = match conn.call(&args).map_err(|e| e.to_string())? {
            Value::Nil => continue,
            Value::Array(streams) => streams,
            other => return Err(format!("unexpected XREAD reply: {other:?}")),
        };
        let arrived = now_ns();
        for stream in streams {
            let Value::Array(mut pair) = stream else {
                return Err("unexpected stream element".into());
            };
            let Some(Value::Array(entries)) = pair.pop() else {
                return Err("unexpected entry list".into());
            };
            for entry in entries {
                let Value::Array(mut e) = entry else {
                    return Err("unexpected entry".into());
                };
                let Some(Value::Array(fields)) = e.pop() else {
                    return Err("entry without fields".into());
                };
                let Some(Value::Bulk(id)) = e.pop() else {
                    return Err("entry without an id".into());
                };
                last = id;
                let source = fields.chunks(2).find_map(|kv| match kv {
                    [Value::Bulk(k), Value::Bulk(v)] if k.as_slice() == b"dlq-id" => Some(v),
                    _ => None,
                });
                if let Some(source) = source {
                    let failed = shared
                        .last_failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(source);
                    if let Some(at) = failed {
                        out.push(arrived.saturating_sub(at));
                    }
                }
                shared.dead.fetch_add(1, Ordering::AcqRel);
                shared.consumed.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn run(opts: &Options) -> Result<(), String> {
    let mut admin = Conn::open(opts.addr).map_err(|e| format!("connect: {e}"))?;
    admin
        .call(&[b"DEL", STREAM, DLQ])
        .map_err(|e| e.to_string())?;
    match admin
        .call(&[b"XGROUP", b"CREATE", STREAM, GROUP, b"$", b"MKSTREAM"])
        .map_err(|e| e.to_string())?
    {
        Value::Simple(_) => {}
        other => return Err(format!("XGROUP CREATE failed: {other:?}")),
    }
    if opts.mode == Mode::Dlq {
        let max = opts.max_deliveries.to_string();
        let args: [&[u8]; 7] = [
            b"XGROUP",
            b"SETDLQ",
            STREAM,
            GROUP,
            DLQ,
            b"MAXDELIVERIES",
            max.as_bytes(),
        ];
        match admin.call(&args).map_err(|e| e.to_string())? {
            Value::Simple(_) => {}
            other => return Err(format!("XGROUP SETDLQ failed: {other:?}")),
        }
    }

    let opts = Arc::new(*opts);
    let shared = Arc::new(Shared {
        produced: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        producing_done: AtomicBool::new(false),
        last_delivery_ns: AtomicU64::new(0),
        last_failure: std::sync::Mutex::new(std::collections::HashMap::new()),
        dead: AtomicU64::new(0),
    });
    let dlq_reader = (opts.mode == Mode::Dlq).then(|| {
        let (opts, shared) = (opts.clone(), shared.clone());
        thread::spawn(move || dead_letters(&opts, &shared))
    });
    let consumers: Vec<_> = (0..opts.consumers)
        .map(|i| {
            let (opts, shared) = (opts.clone(), shared.clone());
            thread::spawn(move || consumer(&opts, &shared, i))
        })
        .collect();
    // Let the consumers block before the first entry is written.
    thread::sleep(Duration::from_millis(50));

    let start_ns = now_ns();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let quota = opts.max_entries.div_ceil(opts.producers as u64);
    let producers: Vec<_> = (0..opts.producers)
        .map(|_| {
            let (opts, shared) = (opts.clone(), shared.clone());
            thread::spawn(move || producer(&opts, &shared, quota, deadline))
        })
        .collect();
    let mut errors = Vec::new();
    for p in producers {
        match p.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("producer: {e}")),
            Err(_) => errors.push("producer panicked".into()),
        }
    }
    let produce_secs = started.elapsed().as_secs_f64();
    shared.producing_done.store(true, Ordering::Release);
    let mut latencies = Vec::new();
    for c in consumers {
        match c.join() {
            Ok(got) => {
                latencies.extend(got.latencies_ns);
                errors.extend(got.error.map(|e| format!("consumer: {e}")));
            }
            Err(_) => errors.push("consumer panicked".into()),
        }
    }
    latencies.sort_unstable();
    let mut dlq_latencies = match dlq_reader.map(|t| t.join()) {
        None => Vec::new(),
        Some(Ok(Ok(l))) => l,
        Some(Ok(Err(e))) => {
            errors.push(format!("dead-letter reader: {e}"));
            Vec::new()
        }
        Some(Err(_)) => {
            errors.push("dead-letter reader panicked".into());
            Vec::new()
        }
    };
    dlq_latencies.sort_unstable();
    let _ = admin.call(&[b"DEL", STREAM, DLQ]);

    let produced = shared.produced.load(Ordering::Acquire);
    let consumed = shared.consumed.load(Ordering::Acquire);
    let end_ns = shared
        .last_delivery_ns
        .load(Ordering::Acquire)
        .max(start_ns + 1);
    let e2e_secs = (end_ns - start_ns) as f64 / 1e9;
    let eps = consumed as f64 / e2e_secs;
    let (p50, p99) = (
        percentile_us(&latencies, 0.50),
        percentile_us(&latencies, 0.99),
    );
    println!(
        "consume against {}: {} producers ({} XADDs in flight each), {} consumers, {} s, \
         mode {:?}, {}% of first deliveries fail, min-idle {} ms",
        opts.addr,
        opts.producers,
        opts.window,
        opts.consumers,
        opts.seconds,
        opts.mode,
        opts.fail_percent,
        opts.min_idle_ms
    );
    println!(
        "produced {produced} ({:.0}/s), consumed and acked {consumed} in {e2e_secs:.2} s \
         ({eps:.0}/s end to end), XADD-to-delivery p50 {p50:.1} us, p99 {p99:.1} us",
        produced as f64 / produce_secs
    );
    let dead = shared.dead.load(Ordering::Acquire);
    if opts.mode == Mode::Dlq {
        println!(
            "dead-lettered {dead} (max deliveries {}); last failure to dead-letter stream p50 \
             {:.1} us, p99 {:.1} us",
            opts.max_deliveries,
            percentile_us(&dlq_latencies, 0.50),
            percentile_us(&dlq_latencies, 0.99)
        );
    }
    for e in &errors {
        println!("error: {e}");
    }
    println!(
        "result entries_per_s={eps:.0} p50_us={p50:.1} p99_us={p99:.1} produced_per_s={:.0} \
         produced={produced} consumed={consumed} dead={dead} dlq_p50_us={:.1} \
         dlq_p99_us={:.1} errors={}",
        produced as f64 / produce_secs,
        percentile_us(&dlq_latencies, 0.50),
        percentile_us(&dlq_latencies, 0.99),
        errors.len()
    );
    Ok(())
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
    if let Err(e) = run(&opts) {
        eprintln!("consume: {e}");
        std::process::exit(1);
    }
}
