//! Feeding one replica, on the connection that sent PSYNC (or SYNC): the answer
//! (`+FULLRESYNC replid offset` and the snapshot as `$<len>\r\n<payload>`, or `+CONTINUE
//! replid`), then the change stream from the backlog as it grows, while the replica's
//! `REPLCONF ACK offset` lines are read back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Follower;
use crate::client::{ClientHandle, KIND_REPLICA, now_ms};
use crate::state::Shared;

/// How a PSYNC is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A full sync (SYNC, an unknown ID, or an offset the backlog no longer holds).
    Full {
        /// Whether the replica sent SYNC (answered without `+FULLRESYNC`).
        old_sync: bool,
    },
    /// Continue from this offset (the next byte the replica wants).
    Continue(u64),
}

/// The most bytes sent in one write.
const CHUNK: usize = 256 * 1024;

/// Decides how to answer `PSYNC replid offset` (`offset` the next byte the replica wants).
pub fn decide(shared: &Shared, replid: &[u8], offset: i64) -> Start {
    let ids = shared.repl.ids();
    let Ok(from) = u64::try_from(offset) else {
        return Start::Full { old_sync: false };
    };
    let ours = replid == ids.replid.as_bytes();
    let previous = replid == ids.replid2.as_bytes() && offset <= ids.second_offset;
    drop(ids);
    if (ours || previous) && shared.repl.is_active() && shared.repl.backlog().can_serve(from) {
        shared.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
        Start::Continue(from)
    } else {
        if replid != b"?" {
            shared.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
        Start::Full { old_sync: false }
    }
}

/// Serves the replica on `socket` until the link ends. `pending` holds bytes already read
/// after PSYNC (normally none).
pub async fn serve<S>(
    shared: &Arc<Shared>,
    socket: &mut S,
    handle: &Arc<ClientHandle>,
    start: Start,
    mut pending: BytesMut,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handle.kind.store(KIND_REPLICA, Ordering::Relaxed);
    let announced = shared
        .repl
        .announced()
        .remove(&handle.id)
        .unwrap_or_default();
    let follower = Arc::new(Follower {
        handle: handle.clone(),
        ip: announced.ip.unwrap_or_else(|| handle.addr.ip().to_string()),
        port: announced.port,
        ack: 0.into(),
        ack_ms: now_ms().into(),
        online: false.into(),
    });
    shared.repl.activate();
    shared.repl.add_follower(follower.clone());
    let ended = feed(shared, socket, &follower, start, &mut pending).await;
    if let Err(why) = ended {
        tracing::info!(
            "Connection with replica {}:{} lost: {why}",
            follower.ip,
            follower.port
        );
    }
    shared.repl.remove_follower(handle.id);
}

async fn feed<S>(
    shared: &Arc<Shared>,
    socket: &mut S,
    follower: &Arc<Follower>,
    start: Start,
    pending: &mut BytesMut,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (timeout, limit) = {
        let c = shared.config();
        (
            Duration::from_secs(c.repl.timeout.max(1) as u64),
            c.output_limit_replica,
        )
    };
    let mut soft_since: Option<std::time::Instant> = None;
    let mut next = match start {
        Start::Continue(from) => {
            let replid = shared.repl.ids().replid.clone();
            write(
                socket,
                format!("+CONTINUE {replid}\r\n").as_bytes(),
                timeout,
            )
            .await?;
            tracing::info!(
                "Partial resynchronization request from {}:{} accepted, from offset {from}",
                follower.ip,
                follower.port
            );
            from
        }
        Start::Full { old_sync } => {
            shared.repl.sync_full.fetch_add(1, Ordering::Relaxed);
            let shared2 = shared.clone();
            let (payload, offset) =
                tokio::task::spawn_blocking(move || super::snapshot::build(&shared2))
                    .await
                    .map_err(|e| format!("snapshot failed: {e}"))?;
            let replid = shared.repl.ids().replid.clone();
            if !old_sync {
                write(
                    socket,
                    format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes(),
                    timeout,
                )
                .await?;
            }
            tracing::info!(
                "Full resync of {}:{}: snapshot of {} bytes at offset {offset}",
                follower.ip,
                follower.port,
                payload.len()
            );
            write(
                socket,
                format!("${}\r\n", payload.len()).as_bytes(),
                timeout,
            )
            .await?;
            write(socket, &payload, timeout).await?;
            offset + 1
        }
    };
    follower.online.store(true, Ordering::Relaxed);
    follower.ack.store(next - 1, Ordering::Relaxed);
    let signal = &shared.repl.offset_signal;
    let mut reader = brooklet_resp::RequestReader::new();
    let handle = &follower.handle;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        if handle.is_killed() {
            return Err("killed".into());
        }
        let mut end = signal.get();
        check_limits(end, next, &limit, &mut soft_since)?;
        if next <= end {
            if !shared.repl.backlog().read_from(next, CHUNK, &mut chunk) {
                return Err("it fell behind the replication backlog".into());
            }
            // A replica that stops reading blocks this write: the limits are checked again
            // as the primary writes on, so they end the link, not only repl-timeout.
            let sent = write(socket, &chunk, timeout);
            tokio::pin!(sent);
            loop {
                tokio::select! {
                    r = &mut sent => {
                        r?;
                        break;
                    }
                    moved = signal.moved_from(end) => {
                        end = moved;
                        check_limits(end, next, &limit, &mut soft_since)?;
                    }
                    () = shared.stopping() => return Err("server stopping".into()),
                }
            }
            next += chunk.len() as u64;
            continue;
        }
        pending.reserve(4096);
        tokio::select! {
            _ = signal.moved_from(end) => {
                // Connections with requests ready run first, so one write carries what
                // they all add (as Redis writes to replicas once per event-loop turn),
                // not one write per command.
                tokio::task::yield_now().await;
            }
            () = shared.stopping() => return Err("server stopping".into()),
            n = socket.read_buf(pending) => {
                let n = n.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("replica closed the connection".into());
                }
                read_acks(shared, follower, &mut reader, pending)?;
            }
            () = handle.kill_signal.notified() => return Err("killed".into()),
        }
    }
}

/// Reads the replica's `REPLCONF ACK offset [FACK offset]` requests.
fn read_acks(
    shared: &Shared,
    follower: &Follower,
    reader: &mut brooklet_resp::RequestReader,
    buf: &mut BytesMut,
) -> Result<(), String> {
    let limits = brooklet_resp::Limits::default();
    while let Some(argv) = reader
        .next_request(buf, limits)
        .map_err(|e| format!("protocol error from replica: {e:?}"))?
    {
        if argv.len() >= 3
            && argv[0].eq_ignore_ascii_case(b"replconf")
            && argv[1].eq_ignore_ascii_case(b"ack")
            && let Some(off) = std::str::from_utf8(&argv[2])
                .ok()
                .and_then(|s| s.parse().ok())
        {
            follower.ack.store(off, Ordering::Relaxed);
            follower.ack_ms.store(now_ms(), Ordering::Relaxed);
            shared.repl.acks.notify_waiters();
        }
    }
    Ok(())
}

async fn write<S: AsyncWrite + Unpin>(
    socket: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, socket.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("writing to the replica timed out".into()),
    }
}

/// What the replica has yet to take (from `next` to the change stream's `end`) is its output
/// buffer: held to `client-output-buffer-limit replica` as Redis holds a replica's.
fn check_limits(
    end: u64,
    next: u64,
    limit: &crate::config::OutputLimit,
    soft_since: &mut Option<std::time::Instant>,
) -> Result<(), String> {
    let behind = (end + 1).saturating_sub(next);
    if limit.hard > 0 && behind > limit.hard {
        return Err(format!(
            "it is {behind} bytes behind, over the replica output buffer hard limit"
        ));
    }
    if limit.soft > 0 && behind > limit.soft {
        let since = *soft_since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed().as_secs() >= limit.soft_seconds {
            return Err(format!(
                "it stayed over the replica output buffer soft limit for {}s",
                limit.soft_seconds
            ));
        }
    } else {
        *soft_since = None;
    }
    Ok(())
}
