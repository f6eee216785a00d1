//! A replica's link to its primary: connect, the handshake (PING, AUTH, REPLCONF
//! listening-port / capa, PSYNC), a full sync's snapshot or a continuation, then the
//! change stream, applied as the primary's commands (through the same dispatch as any
//! client's, as the master link, which READONLY does not refuse), with `REPLCONF ACK
//! offset` every second and on `REPLCONF GETACK`. A link that fails is retried every
//! second; nothing is changed before the primary proved to be a Brooklet server other
//! than this one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::LinkState;
use super::backlog::encode_command;
use super::failover_state::{Answer, Phase};
use crate::client::{Client, ClientHandle, KIND_MASTER, now_ms};
use crate::state::Shared;

/// Runs one command of the primary's as the master link (the dispatch's `execute`, handed
/// in at start-up: the command layer sits above this module), replies discarded.
pub type Exec = fn(&Arc<Shared>, &mut Client, Vec<Bytes>, &mut BytesMut);

static EXEC: std::sync::OnceLock<Exec> = std::sync::OnceLock::new();

/// Installs the executor the link runs the primary's commands with.
pub fn set_executor(exec: Exec) {
    let _ = EXEC.set(exec);
}

fn execute(shared: &Arc<Shared>, client: &mut Client, argv: Vec<Bytes>, out: &mut BytesMut) {
    if let Some(exec) = EXEC.get() {
        exec(shared, client, argv, out);
    }
}

/// How long connecting and each handshake step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes this server a replica of `host:port` and starts its link task. Clients blocked on
/// keys are answered with an error and disconnected, as Redis does: a replica's data moves
/// under them, and their XREADGROUP is refused here from now on.
pub fn start(shared: &Arc<Shared>, host: String, port: u16) {
    let generation = shared.repl.become_replica(host.clone(), port);
    shared.blocking.unblock_all(
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
    );
    // An in-process session without a runtime (the fuzzer's) has no task to run a link in.
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(run(shared.clone(), generation, host, port));
        }
        Err(_) => tracing::warn!("no runtime to run the link to {host}:{port} in"),
    }
}

/// Makes this replica a primary (REPLICAOF NO ONE, PSYNC FAILOVER, an aborted FAILOVER):
/// its link task ends, and its data goes on under a new replication ID.
pub fn stop(shared: &Shared) {
    let size = shared.config().repl.backlog_size;
    shared.repl.promote(size);
    shared.config_mut().repl.replicaof = None;
}

/// Whether the link task of `generation` is still wanted.
fn current(shared: &Shared, generation: u64) -> bool {
    shared.repl.ids().generation == generation && !shared.shutting_down.load(Ordering::Relaxed)
}

async fn run(shared: Arc<Shared>, generation: u64, host: String, port: u16) {
    while current(&shared, generation) {
        shared.repl.set_link(LinkState::Connecting);
        if let Err(e) = link(&shared, generation, &host, port).await {
            tracing::warn!("Replication from primary {host}:{port}: {e}; retrying in 1 second");
        }
        shared.repl.link_busy.store(false, Ordering::Relaxed);
        if !current(&shared, generation) {
            return;
        }
        shared.repl.set_link(LinkState::Connect);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shared.stopping() => return,
        }
    }
}

/// A connection to the primary during the handshake: requests out, lines back.
struct Wire {
    stream: TcpStream,
    buf: BytesMut,
}

impl Wire {
    async fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut frame = Vec::new();
        encode_command(&mut frame, args);
        timed(self.stream.write_all(&frame))
            .await?
            .map_err(|e| e.to_string())
    }

    /// The next line, without its CRLF; bare newlines (the primary's keep-alives while
    /// it prepares a snapshot) are skipped.
    async fn line(&mut self, timeout: Duration) -> Result<String, String> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(nl + 1);
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if text.is_empty() {
                    continue;
                }
                return Ok(text);
            }
            if self.buf.len() > 64 * 1024 {
                return Err("the primary sent an over-long line".into());
            }
            self.fill(timeout).await?;
        }
    }

    async fn fill(&mut self, timeout: Duration) -> Result<usize, String> {
        self.buf.reserve(16 * 1024);
        match tokio::time::timeout(timeout, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Err("timeout reading from the primary".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(0)) => Err("the primary closed the connection".into()),
            Ok(Ok(n)) => Ok(n),
        }
    }

    async fn command(&mut self, args: &[&[u8]]) -> Result<String, String> {
        self.send(args).await?;
        self.line(STEP_TIMEOUT).await
    }
}

async fn timed<F: Future>(f: F) -> Result<F::Output, String> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| "timeout talking to the primary".to_string())
}

async fn link(shared: &Arc<Shared>, generation: u64, host: &str, port: u16) -> Result<(), String> {
    let stream = timed(TcpStream::connect((host, port)))
        .await?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let mut wire = Wire {
        stream,
        buf: BytesMut::new(),
    };
    let (auth, user, announce_ip, announce_port, timeout) = {
        let c = shared.config();
        (
            c.repl.masterauth.clone(),
            c.repl.masteruser.clone(),
            c.repl.announce_ip.clone(),
            c.repl.announce_port,
            Duration::from_secs(c.repl.timeout.max(1) as u64),
        )
    };
    let pong = wire.command(&[b"PING"]).await?;
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") && !pong.starts_with("-NOPERM") {
        return Err(format!("the primary answered PING with {pong}"));
    }
    if let Some(pass) = &auth {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = &user {
            args.push(u.as_bytes());
        }
        args.push(pass.as_bytes());
        let r = wire.command(&args).await?;
        if r.starts_with('-') {
            return Err(format!("AUTH with masterauth failed: {r}"));
        }
    }
    let listening = if announce_port > 0 {
        announce_port
    } else {
        shared.plain_addr.map_or(0, |a| a.port())
    };
    let r = wire
        .command(&[
            b"REPLCONF",
            b"listening-port",
            listening.to_string().as_bytes(),
        ])
        .await?;
    if r.starts_with('-') {
        tracing::warn!("the primary refused REPLCONF listening-port: {r}");
    }
    if !announce_ip.is_empty() {
        wire.command(&[b"REPLCONF", b"ip-address", announce_ip.as_bytes()])
            .await?;
    }
    wire.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])
        .await?;
    let r = wire
        .command(&[b"REPLCONF", b"brooklet-runid", shared.run_id.as_bytes()])
        .await?;
    if r.contains("same server") {
        return Err(format!(
            "{host}:{port} is this server itself; a server cannot replicate from itself"
        ));
    }
    if r.starts_with('-') {
        return Err(format!(
            "{host}:{port} is not a Brooklet server (it answered REPLCONF brooklet-runid with {r}); only a Brooklet primary can be followed"
        ));
    }
    let (replid, applied) = {
        let ids = shared.repl.ids();
        (
            ids.replid.clone(),
            shared.repl.applied.load(Ordering::Relaxed),
        )
    };
    let next = (applied + 1).to_string();
    let mut psync: Vec<&[u8]> = vec![b"PSYNC", replid.as_bytes(), next.as_bytes()];
    // In a FAILOVER's last step the PSYNC says so; its outcome is left for the cron, which
    // ends the failover (`failover.rs`).
    let failover = shared.repl.failover().phase == Phase::InProgress;
    let report = |answer: Answer| {
        if failover {
            shared.repl.failover().answer = Some(answer);
        }
    };
    if failover {
        psync.push(b"FAILOVER");
    }
    if let Err(e) = wire.send(&psync).await {
        report(Answer::Refused("Write error to failover target"));
        return Err(e);
    }
    let answer = wire.line(STEP_TIMEOUT).await?;
    if answer.starts_with("+FULLRESYNC") || answer.starts_with("+CONTINUE") {
        report(Answer::Accepted);
    } else if failover {
        report(Answer::Refused("Failover target rejected psync request"));
        return Err(format!(
            "the failover target refused PSYNC FAILOVER: {answer}"
        ));
    }
    let words: Vec<&str> = answer.split_whitespace().collect();
    let handle = master_handle(shared, peer, local);
    let mut client = Client::new(handle.clone(), true);
    let _registered = Registered {
        shared: shared.clone(),
        id: handle.id,
    };
    match words.as_slice() {
        ["+FULLRESYNC", id, offset] => {
            let offset: u64 = offset
                .parse()
                .map_err(|_| format!("bad +FULLRESYNC offset in {answer}"))?;
            shared.repl.set_link(LinkState::Sync);
            let mut payload = read_snapshot(&mut wire, timeout).await?;
            if !payload.starts_with(super::snapshot::MAGIC) {
                return Err(format!(
                    "{host}:{port} sent a snapshot that is not in Brooklet's format (not a Brooklet primary?); the data here is left as it was"
                ));
            }
            if !current(shared, generation) {
                return Ok(());
            }
            shared.repl.link_busy.store(true, Ordering::Relaxed);
            // The data stops matching the old ID and offset as soon as the load begins: a
            // link lost (or a stop) in the middle must resync in full.
            shared.repl.ids().replid = super::new_replid();
            shared.repl.applied.store(0, Ordering::Relaxed);
            load_snapshot(
                shared,
                &mut client,
                payload.split_off(super::snapshot::MAGIC.len()),
            )?;
            {
                let mut ids = shared.repl.ids();
                ids.replid = (*id).to_string();
                ids.replid2 = "0".repeat(40);
                ids.second_offset = -1;
            }
            shared.repl.applied.store(offset, Ordering::Relaxed);
            shared.repl.read.store(offset, Ordering::Relaxed);
            shared.repl.link_busy.store(false, Ordering::Relaxed);
            tracing::info!(
                "MASTER <-> REPLICA sync: finished with success ({host}:{port}, offset {offset})"
            );
        }
        ["+CONTINUE", rest @ ..] => {
            if let Some(id) = rest.first()
                && *id != replid
            {
                let mut ids = shared.repl.ids();
                ids.replid2 = std::mem::replace(&mut ids.replid, (*id).to_string());
                ids.second_offset = applied as i64 + 1;
            }
            shared.repl.read.store(applied, Ordering::Relaxed);
            tracing::info!(
                "Successful partial resynchronization with primary {host}:{port} from offset {}",
                applied + 1
            );
        }
        _ => return Err(format!("unexpected answer to PSYNC: {answer}")),
    }
    shared.repl.set_link(LinkState::Connected);
    follow(shared, generation, &mut wire, &mut client, timeout).await
}

/// The snapshot after `+FULLRESYNC`: `$<len>\r\n` and that many bytes.
async fn read_snapshot(wire: &mut Wire, timeout: Duration) -> Result<BytesMut, String> {
    let header = wire.line(timeout).await?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad snapshot header from the primary: {header}"))?;
    wire.buf.reserve(len.saturating_sub(wire.buf.len()));
    while wire.buf.len() < len {
        wire.fill(timeout).await?;
    }
    Ok(wire.buf.split_to(len))
}

/// Replaces this server's data with the snapshot's.
fn load_snapshot(
    shared: &Arc<Shared>,
    client: &mut Client,
    payload: BytesMut,
) -> Result<(), String> {
    let mut out = BytesMut::new();
    execute(
        shared,
        client,
        vec![Bytes::from_static(b"FLUSHALL")],
        &mut out,
    );
    let mut buf = payload;
    let mut reader = brooklet_resp::RequestReader::new();
    let limits = brooklet_resp::Limits {
        max_bulk_len: u64::MAX,
        unauthenticated: false,
    };
    let mut n = 0u64;
    while let Some(argv) = reader
        .next_request(&mut buf, limits)
        .map_err(|e| format!("snapshot is malformed: {e:?}"))?
    {
        out.clear();
        execute(shared, client, argv, &mut out);
        if out.first() == Some(&b'-') {
            tracing::warn!(
                "applying the snapshot: {}",
                String::from_utf8_lossy(&out).trim_end()
            );
        }
        n += 1;
    }
    if !buf.is_empty() || reader.in_request() {
        return Err("snapshot ends inside a command".into());
    }
    tracing::info!("MASTER <-> REPLICA sync: loaded {n} snapshot records");
    client.db = 0;
    Ok(())
}

/// Applies the change stream until the link fails or is no longer wanted.
async fn follow(
    shared: &Arc<Shared>,
    generation: u64,
    wire: &mut Wire,
    client: &mut Client,
    timeout: Duration,
) -> Result<(), String> {
    let mut reader = brooklet_resp::RequestReader::new();
    let limits = brooklet_resp::Limits {
        max_bulk_len: u64::MAX,
        unauthenticated: false,
    };
    let mut base = shared.repl.applied.load(Ordering::Relaxed);
    let mut consumed: u64 = 0;
    let mut out = BytesMut::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u32;
    let mut last_io = now_ms();
    let handle = client.handle.clone();
    send_ack(wire, base).await?;
    loop {
        let mut ack = false;
        loop {
            let before = wire.buf.len();
            let next = reader
                .next_request(&mut wire.buf, limits)
                .map_err(|e| format!("protocol error in the change stream: {e:?}"))?;
            consumed += (before - wire.buf.len()) as u64;
            let Some(argv) = next else { break };
            if !current(shared, generation) {
                return Ok(());
            }
            if argv.len() >= 2
                && argv[0].eq_ignore_ascii_case(b"replconf")
                && argv[1].eq_ignore_ascii_case(b"getack")
            {
                ack = true;
            } else if !argv[0].eq_ignore_ascii_case(b"ping") {
                shared.repl.link_busy.store(true, Ordering::Relaxed);
                out.clear();
                execute(shared, client, argv, &mut out);
                if out.starts_with(b"-MISCONF") || out.starts_with(b"-OOM") {
                    // Refused before it changed anything (a full disk, a failed fsync):
                    // the link ends here and continues from this command once it can.
                    shared.repl.link_busy.store(false, Ordering::Relaxed);
                    return Err(format!(
                        "this replica refused a change: {}",
                        String::from_utf8_lossy(&out).trim_end()
                    ));
                }
                shared.repl.link_busy.store(false, Ordering::Relaxed);
                if out.first() == Some(&b'-') {
                    tracing::warn!(
                        "a replicated command failed: {}",
                        String::from_utf8_lossy(&out).trim_end()
                    );
                }
            }
            // Inside a transaction nothing is applied until its EXEC: a link lost before
            // that continues from its MULTI, as Redis keeps the offset of the master client.
            if client.multi.is_none() {
                shared
                    .repl
                    .applied
                    .store(base + consumed, Ordering::Relaxed);
            }
        }
        if ack {
            send_ack(wire, shared.repl.applied.load(Ordering::Relaxed)).await?;
        }
        wire.buf.reserve(64 * 1024);
        tokio::select! {
            n = wire.stream.read_buf(&mut wire.buf) => {
                let n = n.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the primary closed the connection".into());
                }
                last_io = now_ms();
                shared.repl.last_io_ms.store(last_io, Ordering::Relaxed);
                shared.repl.read.fetch_add(n as u64, Ordering::Relaxed);
            }
            _ = tick.tick() => {
                if !current(shared, generation) {
                    return Ok(());
                }
                ticks += 1;
                if ticks.is_multiple_of(10) {
                    send_ack(wire, shared.repl.applied.load(Ordering::Relaxed)).await?;
                }
                if now_ms().saturating_sub(last_io) > timeout.as_millis() as u64 {
                    return Err("timeout: no data from the primary".into());
                }
            }
            () = handle.kill_signal.notified() => return Err("the link was killed".into()),
        }
        if handle.is_killed() {
            return Err("the link was killed".into());
        }
        // A full sync moved the base: never, once following; kept for clarity of offsets.
        let _ = &mut base;
    }
}

async fn send_ack(wire: &mut Wire, offset: u64) -> Result<(), String> {
    let off = offset.to_string();
    wire.send(&[b"REPLCONF", b"ACK", off.as_bytes(), b"FACK", off.as_bytes()])
        .await
}

/// The master link as a client (CLIENT LIST shows it; CLIENT KILL TYPE master ends it).
fn master_handle(
    shared: &Shared,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
) -> Arc<ClientHandle> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = Arc::new(ClientHandle::new(
        shared.clients.next_id(),
        peer,
        local,
        -1,
        tx,
    ));
    handle.kind.store(KIND_MASTER, Ordering::Relaxed);
    shared.clients.insert(handle.clone());
    handle
}

struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.clients.remove(self.id);
    }
}

/// On a clean stop of a replica: leaves its replication ID and offset beside its data.
pub fn save_state(shared: &Shared) {
    if !shared.repl.is_replica() {
        return;
    }
    // The link applies one command at a time; wait briefly for one in progress.
    for _ in 0..200 {
        if !shared.repl.link_busy.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if shared.repl.link_busy.load(Ordering::Relaxed) || shared.repl.link() == LinkState::Sync {
        return;
    }
    let ids = shared.repl.ids();
    let state = brooklet_persistence::ReplState {
        replid: ids.replid.clone(),
        offset: shared.repl.applied.load(Ordering::Relaxed),
    };
    let dir = shared.config().dir.clone();
    if let Err(e) = state.save(&dir) {
        tracing::warn!("could not save the replication state: {e}");
    }
}

/// At start-up with `replicaof` set: takes the state a clean stop left (and removes it, so
/// an unclean stop after this leaves none), then starts the link.
pub fn start_configured(shared: &Arc<Shared>) {
    let (target, dir) = {
        let c = shared.config();
        (c.repl.replicaof.clone(), c.dir.clone())
    };
    let Some((host, port)) = target else {
        return;
    };
    let saved = brooklet_persistence::ReplState::load(&dir);
    brooklet_persistence::ReplState::clear(&dir);
    let generation = shared.repl.become_replica(host.clone(), port);
    if let Some(s) = saved {
        shared.repl.ids().replid = s.replid;
        shared.repl.applied.store(s.offset, Ordering::Relaxed);
    }
    tokio::spawn(run(shared.clone(), generation, host, port));
}
