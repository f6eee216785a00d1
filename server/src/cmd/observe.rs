//! What every command leaves for the operator once it ran: its line to the MONITOR clients,
//! its entry in the slow log, its latency sample and its place in the command's histogram.
//!
//! The cost to a command with nothing to report: one atomic load for the monitors, two for
//! the slow log, one for the latency monitor; its histogram sample waits in the connection's
//! batch, which takes one uncontended lock per 32 commands or per batch of requests
//! (`latency_monitor.rs`).

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use super::table::flags;
use super::{CommandSpec, Ctx};
use crate::client::Client;
use crate::state::Shared;

/// Records command `idx` (spec `spec`), which ran for `took` and has answered.
pub(super) fn answered(
    ctx: &mut Ctx<'_>,
    idx: usize,
    spec: &CommandSpec,
    argv: &[Bytes],
    took: Duration,
) {
    let shared = ctx.shared;
    let us = took.as_micros() as u64;
    // EXEC's commands are logged one by one, not EXEC as well (Redis's `skip_slowlog`).
    if spec.flags & flags::SKIP_SLOWLOG == 0 && shared.slowlog.wants(us) {
        let name = crate::keyspace::lock(&ctx.client.handle.names).name.clone();
        shared
            .slowlog
            .push(argv, us, ctx.client.handle.addr.to_string(), name);
    }
    let event = if spec.flags & flags::FAST != 0 {
        "fast-command"
    } else {
        "command"
    };
    shared.latency.event(event, took);
    ctx.client.latency.record(&shared.latency, idx, took);
}

/// Shows a command that ran to the monitors, unless it is an administrative one (which
/// Redis keeps from them) or a blocked command's re-run (shown when it first ran).
#[inline]
pub(super) fn show_to_monitors(ctx: &Ctx<'_>, spec: &CommandSpec, argv: &[Bytes]) {
    if !ctx.shared.monitors.any() || ctx.rerun || spec.flags & flags::ADMIN != 0 {
        return;
    }
    feed(ctx.shared, ctx.client, argv);
}

fn feed(shared: &Arc<Shared>, client: &Client, argv: &[Bytes]) {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let line = crate::monitor::line(micros, client.db, &client.handle.addr.to_string(), argv);
    let over = shared.monitors.feed(&line, &shared.normal_limits);
    if !over.is_empty() {
        crate::publish::disconnect_over_limit(shared, &over);
    }
}
