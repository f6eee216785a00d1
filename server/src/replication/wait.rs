//! WAIT and WAITAOF: a client waits until enough replicas acknowledged its writes (and,
//! for WAITAOF, the local disk holds them).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use brooklet_resp::Reply;

use super::WaitSpec;
use super::backlog::encode_command;
use crate::state::Shared;

/// WAIT / WAITAOF: waits until `spec.numreplicas` replicas acknowledged `spec.offset` (and,
/// for WAITAOF, the local disk holds `spec.seq`) or the timeout passes, asking the replicas
/// for an acknowledgement first; answers with the counts reached.
pub async fn wait(
    shared: &Arc<Shared>,
    client: &crate::client::ClientHandle,
    spec: WaitSpec,
) -> Reply {
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let repl = &shared.repl;
    // While writes are paused nothing may move the offset (a FAILOVER waits for a replica
    // to reach it): the replicas' own ACK every second answers, as in Redis.
    if repl.is_active()
        && !repl.followers().is_empty()
        && repl.acked(spec.offset) < spec.numreplicas
        && !shared.pause.in_force()
    {
        let mut frame = Vec::new();
        encode_command(&mut frame, &[b"REPLCONF", b"GETACK", b"*"]);
        repl.feed(None, &frame);
    }
    let local_wanted = spec.numlocal.is_some_and(|n| n > 0);
    if local_wanted {
        shared.store.request_sync(spec.seq);
    }
    loop {
        let notified = repl.acks.notified();
        let replicas_ok = repl.acked(spec.offset) >= spec.numreplicas;
        let local_ok = !local_wanted || shared.store.durable_seq() >= spec.seq;
        if replicas_ok && local_ok {
            break;
        }
        let pause = tokio::time::sleep(Duration::from_millis(20));
        match deadline {
            Some(d) => tokio::select! {
                () = notified => {}
                () = pause => {}
                () = tokio::time::sleep_until(d) => break,
            },
            None => tokio::select! {
                () = notified => {}
                () = pause => {}
            },
        }
        if shared.shutting_down.load(Ordering::Relaxed) || client.is_killed() {
            break;
        }
    }
    wait_now(shared, &spec)
}

/// WAIT / WAITAOF's answer as things stand.
pub fn wait_now(shared: &Shared, spec: &WaitSpec) -> Reply {
    let replicas = shared.repl.acked(spec.offset) as i64;
    match spec.numlocal {
        None => Reply::Int(replicas),
        Some(_) => {
            let local = i64::from(shared.store.durable_seq() >= spec.seq);
            Reply::Array(vec![Reply::Int(local), Reply::Int(replicas)])
        }
    }
}
