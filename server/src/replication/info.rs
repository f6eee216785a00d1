//! INFO's `# Replication` section, with Redis's field names (Sentinel reads them).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::{LinkState, Role};
use crate::client::now_ms;
use crate::state::Shared;

fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{name}:{value}\r\n");
}

/// Appends the `# Stats` fields replication owns: full syncs, and partial resyncs accepted
/// and refused.
pub fn stats(shared: &Shared, out: &mut String) {
    let r = &shared.repl;
    field(out, "sync_full", r.sync_full.load(Ordering::Relaxed));
    field(
        out,
        "sync_partial_ok",
        r.sync_partial_ok.load(Ordering::Relaxed),
    );
    field(
        out,
        "sync_partial_err",
        r.sync_partial_err.load(Ordering::Relaxed),
    );
}

/// Appends the section.
pub fn section(shared: &Shared, out: &mut String) {
    let repl = &shared.repl;
    let ids = repl.ids().clone();
    let (priority, read_only, announced) = {
        let c = shared.config();
        (c.repl.priority, c.repl.read_only, c.repl.announced)
    };
    out.push_str("# Replication\r\n");
    let now = now_ms();
    match &ids.role {
        Role::Primary => field(out, "role", "master"),
        Role::Replica { host, port } => {
            field(out, "role", "slave");
            field(out, "master_host", host);
            field(out, "master_port", port);
            let link = repl.link();
            let up = link == LinkState::Connected;
            field(out, "master_link_status", if up { "up" } else { "down" });
            let last_io = repl.last_io_ms.load(Ordering::Relaxed);
            let ago = if last_io == 0 {
                -1
            } else {
                (now.saturating_sub(last_io) / 1000) as i64
            };
            field(out, "master_last_io_seconds_ago", ago);
            field(
                out,
                "master_sync_in_progress",
                u8::from(link == LinkState::Sync),
            );
            field(
                out,
                "slave_read_repl_offset",
                repl.read.load(Ordering::Relaxed),
            );
            field(
                out,
                "slave_repl_offset",
                repl.applied.load(Ordering::Relaxed),
            );
            if !up {
                let since = repl.down_since_ms.load(Ordering::Relaxed);
                let secs = if since == 0 {
                    -1
                } else {
                    (now.saturating_sub(since) / 1000) as i64
                };
                field(out, "master_link_down_since_seconds", secs);
            }
            field(out, "slave_priority", priority);
            field(out, "slave_read_only", u8::from(read_only));
            field(out, "replica_announced", u8::from(announced));
        }
    }
    let followers: Vec<_> = repl
        .followers()
        .into_iter()
        .filter(|f| f.online.load(Ordering::Relaxed))
        .collect();
    field(out, "connected_slaves", followers.len());
    if matches!(ids.role, Role::Primary) {
        let (min_write, max_lag) = {
            let c = shared.config();
            (c.repl.min_replicas_to_write, c.repl.min_replicas_max_lag)
        };
        if min_write > 0 {
            let good = followers
                .iter()
                .filter(|f| {
                    now.saturating_sub(f.ack_ms.load(Ordering::Relaxed)) / 1000 <= max_lag as u64
                })
                .count();
            field(out, "min_slaves_good_slaves", good);
        }
    }
    for (i, f) in followers.iter().enumerate() {
        let lag = now.saturating_sub(f.ack_ms.load(Ordering::Relaxed)) / 1000;
        field(
            out,
            &format!("slave{i}"),
            format!(
                "ip={},port={},state=online,offset={},lag={lag}",
                f.ip,
                f.port,
                f.ack.load(Ordering::Relaxed)
            ),
        );
    }
    field(out, "master_failover_state", repl.failover().phase.word());
    field(out, "master_replid", &ids.replid);
    field(out, "master_replid2", &ids.replid2);
    field(out, "master_repl_offset", repl.offset());
    field(out, "second_repl_offset", ids.second_offset);
    let active = repl.is_active();
    let b = repl.backlog();
    field(out, "repl_backlog_active", u8::from(active));
    field(out, "repl_backlog_size", b.cap());
    field(
        out,
        "repl_backlog_first_byte_offset",
        if active { b.first() } else { 0 },
    );
    field(
        out,
        "repl_backlog_histlen",
        if active { b.len() } else { 0 },
    );
}
