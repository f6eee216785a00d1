//! The primary's heartbeat: a PING into the change stream every
//! `repl-ping-replica-period` seconds while replicas are fed, so a replica can tell a
//! quiet primary from a dead link.

use std::sync::Arc;
use std::time::Duration;

use super::backlog::encode_command;
use crate::state::Shared;

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut since_ping = 0i64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shared.stopping() => return,
        }
        since_ping += 1;
        let (period, size) = {
            let c = shared.config();
            (c.repl.ping_period, c.repl.backlog_size)
        };
        let repl = &shared.repl;
        if repl.backlog().cap() != size as usize {
            repl.backlog().resize(size as usize);
        }
        if since_ping >= period && repl.is_active() && !repl.followers().is_empty() {
            since_ping = 0;
            let mut frame = Vec::new();
            encode_command(&mut frame, &[b"PING"]);
            repl.feed(None, &frame);
        }
    }
}
