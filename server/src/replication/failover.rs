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

/// Where a failover stands (INFO `master_failover_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// None running.
    #[default]
    Idle,
    /// Writes held; waiting for a replica to acknowledge the whole stream.
    WaitingForSync,
    /// This server follows the target and waits for its answer to `PSYNC ... FAILOVER`.
    InProgress,
}

impl Phase {
    /// INFO's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Phase::Idle => "no-failover",
            Phase::WaitingForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

/// A failover under way.
#[derive(Debug, Clone, Default)]
pub struct Failover {
    /// Its phase.
    pub phase: Phase,
    /// The replica to switch to (TO host port), or the one found caught up.
    pub target: Option<(String, u16)>,
    /// Unix ms after which waiting gives up (TIMEOUT), if given.
    pub end_ms: Option<u64>,
    /// FORCE: switch at the timeout even if the target has not caught up.
    pub force: bool,
}

/// What FAILOVER asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// TO host port.
    pub target: Option<(String, u16)>,
    /// TIMEOUT, milliseconds.
    pub timeout_ms: Option<u64>,
    /// FORCE.
    pub force: bool,
}

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
    };
    shared.pause.hold_for_failover(true);
}

/// The cron's step: switches once a replica caught up, or gives up at the timeout.
pub fn update(shared: &Arc<Shared>) {
    let (target, end_ms, force) = {
        let f = shared.repl.failover();
        if f.phase != Phase::WaitingForSync {
            return;
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

/// Whether the link's PSYNC is a failover's (`PSYNC replid offset FAILOVER`).
pub fn in_progress(shared: &Shared) -> bool {
    shared.repl.failover().phase == Phase::InProgress
}

/// The target answered the failover's PSYNC: with `+CONTINUE` or `+FULLRESYNC` (`ok`) the
/// switch is done and writes are released (they now get `-READONLY`); anything else aborts.
pub fn answered(shared: &Shared, ok: bool) {
    if !in_progress(shared) {
        return;
    }
    if ok {
        clear(shared);
    } else {
        abort(shared, "Failover target rejected psync request");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_as_redis_words_them() {
        assert_eq!(Phase::Idle.word(), "no-failover");
        assert_eq!(Phase::WaitingForSync.word(), "waiting-for-sync");
        assert_eq!(Phase::InProgress.word(), "failover-in-progress");
    }
}
