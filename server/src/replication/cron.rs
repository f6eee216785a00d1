//! The primary's heartbeat: a PING into the change stream every
//! `repl-ping-replica-period` seconds while replicas are fed, so a replica can tell a
//! quiet primary from a dead link; and a FAILOVER's next step, every 100 ms.

use std::sync::Arc;
use std::time::Duration;

use super::backlog::encode_command;
use crate::state::Shared;

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut since_ping = 0i64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = shared.stopping() => return,
        }
        since_ping += 1;
        // Ticks are 100 ms; the period is in seconds.
        let tick_period = 10;
        let (period, size, min_write, max_lag) = {
            let c = shared.config();
            (
                c.repl.ping_period,
                c.repl.backlog_size,
                c.repl.min_replicas_to_write,
                c.repl.min_replicas_max_lag,
            )
        };
        let repl = &shared.repl;
        let too_few =
            min_write > 0 && !repl.is_replica() && repl.good_replicas(max_lag) < min_write as usize;
        repl.too_few_replicas
            .store(too_few, std::sync::atomic::Ordering::Relaxed);
        if repl.backlog().cap() != size as usize {
            repl.backlog().resize(size as usize);
        }
        super::failover::update(&shared);
        // A failover waits for a replica to reach the primary's offset: no PING moves it.
        let holding = repl.failover().phase == super::failover::Phase::WaitingForSync;
        if since_ping >= period * tick_period
            && repl.is_active()
            && !repl.followers().is_empty()
            && !holding
        {
            since_ping = 0;
            let mut frame = Vec::new();
            encode_command(&mut frame, &[b"PING"]);
            repl.feed(None, &frame);
        }
    }
}
