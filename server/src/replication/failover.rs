//! FAILOVER (Redis 6.2's coordinated switch): the primary holds writes back, waits until a
//! replica acknowledged everything, then becomes that replica's replica with `PSYNC replid
//! offset FAILOVER`, which tells the replica to promote itself first; the old primary
//! continues from its own history (`+CONTINUE`), so neither side resyncs.
//!
//! The states are Redis's: `waiting-for-sync` until a replica caught up (checked by the
//! cron every 100 ms), `failover-in-progress` until the target answered the PSYNC. A
//! timeout aborts the first (FORCE switches anyway); an abort in the second makes this
//! server a primary again, under a new replication ID.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::client::now_ms;
use crate::state::Shared;

pub use super::failover_state::{Answer, Failover, Phase, Request};

/// Starts a failover: writes are held back from now on. The command checked the request.
pub fn begin(shared: &Shared, req: Request) {
    match &req.target {
        Some((host, port)) => tracing::info!("FAILOVER requested to {host}:{port}."),
        None => tracing::info!("FAILOVER requested to any replica."),
    }
    *shared.repl.failover() = Failover {
        phase: Phase::WaitingForSync,
        target: req.target,
        end_ms: req.timeout_ms.map(|t| now_ms().saturating_add(t)),
        force: req.force,
        answer: None,
    };
    shared.pause.hold_for_failover(true);
}

/// The cron's step: switches once a replica caught up, or gives up at the timeout; once
/// switched, ends the failover as the target answered (the link reports it).
pub fn update(shared: &Arc<Shared>) {
    let (target, end_ms, force) = {
        let mut f = shared.repl.failover();
        match (f.phase, f.answer.take()) {
            (Phase::WaitingForSync, _) => {}
            (Phase::InProgress, Some(Answer::Accepted)) => {
                drop(f);
                clear(shared);
                return;
            }
            (Phase::InProgress, Some(Answer::Refused(why))) => {
                drop(f);
                abort(shared, why);
                return;
            }
            _ => return,
        }
        (f.target.clone(), f.end_ms, f.force)
    };
    let offset = shared.repl.offset();
    let followers = shared.repl.followers();
    let synced = |f: &super::Follower| {
        f.online.load(Ordering::Relaxed) && f.ack.load(Ordering::Relaxed) == offset
    };
    let timed_out = end_ms.is_some_and(|end| end <= now_ms());
    let chosen = match &target {
        Some((host, port)) => {
            let named = followers
                .iter()
                .any(|f| f.ip.eq_ignore_ascii_case(host) && f.port == *port && synced(f));
            (named || (timed_out && force)).then(|| (host.clone(), *port))
        }
        None => followers
            .iter()
            .find(|f| synced(f))
            .map(|f| (f.ip.clone(), f.port)),
    };
    let Some((host, port)) = chosen else {
        if timed_out {
            abort(shared, "Replica never caught up before timeout");
        }
        return;
    };
    if timed_out && force {
        tracing::warn!("FAILOVER to {host}:{port} time out exceeded, failing over.");
    } else {
        tracing::info!("Failover target {host}:{port} is synced, failing over.");
    }
    {
        let mut f = shared.repl.failover();
        f.phase = Phase::InProgress;
        f.target = Some((host.clone(), port));
    }
    shared.config_mut().repl.replicaof = Some((host.clone(), port));
    super::replica::start(shared, host, port);
}

/// Gives the failover up (FAILOVER ABORT, a timeout, a refusal): a server that already
/// follows the target becomes a primary again, and writes are released.
pub fn abort(shared: &Shared, why: &str) {
    let (phase, target) = {
        let f = shared.repl.failover();
        (f.phase, f.target.clone())
    };
    match (phase, target) {
        (Phase::Idle, _) => return,
        (_, Some((host, port))) => tracing::warn!("FAILOVER to {host}:{port} aborted: {why}"),
        (_, None) => tracing::warn!("FAILOVER to any replica aborted: {why}"),
    }
    if phase == Phase::InProgress {
        super::replica::stop(shared);
    }
    clear(shared);
}

fn clear(shared: &Shared) {
    *shared.repl.failover() = Failover::default();
    shared.pause.hold_for_failover(false);
}
