//! LATENCY LATEST / HISTORY / RESET / DOCTOR / HISTOGRAM / HELP over the latency monitor
//! (`latency_monitor.rs`): events recorded past `latency-monitor-threshold`, and the
//! per-command histograms kept while `latency-tracking` is on.

use bytes::Bytes;
use std::fmt::Write as _;

use brooklet_resp::Reply;

use super::table::flags::*;
use super::table::{container, simple};
use super::{CommandSpec, Ctx};
use crate::error::CommandError;
use crate::latency_monitor::{EventHistory, cumulative_buckets};

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[container(
    "latency",
    &[
        simple("latest", 2, ADMIN | LOADING, latest),
        simple("history", 3, ADMIN | LOADING, history),
        simple("reset", -2, ADMIN | LOADING, reset),
        simple("doctor", 2, ADMIN | LOADING, doctor),
        simple("graph", 3, ADMIN | LOADING, graph),
        simple("histogram", -2, ADMIN | LOADING, histogram),
        simple("help", 2, LOADING, help),
    ],
)];

fn latest(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let events = ctx.shared.latency.events();
    Ok(Reply::Array(
        events
            .into_iter()
            .map(|(name, e)| {
                let last = e.latest();
                Reply::Array(vec![
                    Reply::bulk(name),
                    Reply::Int(last.time as i64),
                    Reply::Int(last.latency as i64),
                    Reply::Int(e.max as i64),
                ])
            })
            .collect(),
    ))
}

fn history(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let samples = ctx
        .shared
        .latency
        .event_history(&argv[2])
        .map(|e| e.samples())
        .unwrap_or_default();
    Ok(Reply::Array(
        samples
            .into_iter()
            .map(|s| {
                Reply::Array(vec![
                    Reply::Int(s.time as i64),
                    Reply::Int(s.latency as i64),
                ])
            })
            .collect(),
    ))
}

fn graph(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let Some(e) = ctx.shared.latency.event_history(&argv[2]) else {
        return Err(CommandError::text(format!(
            "ERR No samples available for event '{}'",
            String::from_utf8_lossy(&argv[2])
        )));
    };
    let name = String::from_utf8_lossy(&argv[2]);
    let now = crate::client::now_ms() / 1000;
    Ok(Reply::Verbatim(
        "txt",
        Bytes::from(crate::latency_graph::render(&name, &e, now)),
    ))
}

fn reset(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let names = (argv.len() > 2).then(|| &argv[2..]);
    Ok(Reply::Int(ctx.shared.latency.reset_events(names) as i64))
}

fn histogram(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    // Shows this connection's earlier commands of the batch, as Redis would.
    ctx.client.latency.flush();
    let table = ctx.commands;
    let mut wanted: Vec<usize> = Vec::new();
    if argv.len() == 2 {
        wanted.extend(0..table.entries.len());
    }
    for name in &argv[2..] {
        let Some(idx) = table.find(name) else {
            continue;
        };
        wanted.push(idx);
        // A container stands for its subcommands, as in Redis.
        wanted.extend(
            table
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.parent == Some(idx))
                .map(|(i, _)| i),
        );
    }
    wanted.dedup();
    let mut out = Vec::new();
    for idx in wanted {
        let Some(h) = ctx.shared.latency.command_histogram(idx) else {
            continue;
        };
        let buckets = cumulative_buckets(&h)
            .into_iter()
            .map(|(us, n)| (Reply::Int(us as i64), Reply::Int(n as i64)))
            .collect();
        out.push((
            Reply::bulk(table.entries[idx].full_name.clone()),
            Reply::Map(vec![
                (Reply::bulk("calls"), Reply::Int(h.len() as i64)),
                (Reply::bulk("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    }
    Ok(Reply::Map(out))
}

fn doctor(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let threshold = ctx.shared.latency.threshold_ms();
    let events = ctx.shared.latency.events();
    Ok(Reply::Verbatim(
        "txt",
        Bytes::from(doctor_report(threshold, &events)),
    ))
}

/// LATENCY DOCTOR's report: per event its spikes and worst case, then what to look at.
fn doctor_report(
    threshold_ms: u64,
    events: &std::collections::BTreeMap<&'static str, EventHistory>,
) -> String {
    let mut out = String::new();
    if threshold_ms == 0 && events.is_empty() {
        out.push_str(
            "The latency monitor is off: nothing has been recorded. Turn it on with \
             CONFIG SET latency-monitor-threshold <milliseconds>; events that take at least \
             that long are then recorded.\n",
        );
        return out;
    }
    if events.is_empty() {
        let _ = writeln!(
            out,
            "No event has taken {threshold_ms} ms or more (latency-monitor-threshold) since \
             the monitor was turned on or last reset."
        );
        return out;
    }
    out.push_str("Latency spikes recorded, by event:\n\n");
    for (i, (name, e)) in events.iter().enumerate() {
        let samples = e.samples();
        let n = samples.len().max(1) as f64;
        let avg = samples.iter().map(|s| s.latency as f64).sum::<f64>() / n;
        let dev = samples
            .iter()
            .map(|s| (s.latency as f64 - avg).abs())
            .sum::<f64>()
            / n;
        let period = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) if samples.len() > 1 => {
                (b.time - a.time) as f64 / (samples.len() - 1) as f64
            }
            _ => 0.0,
        };
        let _ = writeln!(
            out,
            "{}. {name}: {} spikes (average {avg:.0} ms, mean deviation {dev:.0} ms, one every \
             {period:.1} s). Worst ever {} ms.",
            i + 1,
            samples.len(),
            e.max
        );
    }
    out.push_str("\nWhere to look:\n");
    for name in events.keys() {
        if let Some(hint) = advice(name) {
            let _ = writeln!(out, "- {name}: {hint}");
        }
    }
    out
}

/// What to look at for an event.
fn advice(event: &str) -> Option<&'static str> {
    Some(match event {
        "command" | "fast-command" => {
            "SLOWLOG GET shows the commands that took longest; commands over whole large \
             streams (XRANGE - + without COUNT, KEYS, XINFO STREAM FULL) block a client \
             thread for their whole run."
        }
        "aof-fsync-always" => {
            "replies under appendfsync always wait for the disk's fsync; a faster disk, or \
             appendfsync everysec, shortens it."
        }
        "brooklet-fsync" => {
            "background fsyncs this slow mean a busy or slow disk; replies under everysec do \
             not wait for them, but they show what appendfsync always would cost."
        }
        "aof-write" => {
            "handing the tail log to the operating system was slow: the disk's write-back \
             is saturated, or the machine is short of page cache."
        }
        "brooklet-checkpoint" => {
            "checkpoints write the tail log into the store in bulk; a smaller \
             tail-log-checkpoint-bytes makes each one shorter (and more frequent)."
        }
        "brooklet-compaction" => {
            "major compactions follow many removals or BGREWRITEAOF; they run on their own \
             thread, but compete with commands for the disk."
        }
        "brooklet-purge" => {
            "purges remove the records of deleted or trimmed streams in the background; they \
             compete with commands for the disk."
        }
        "brooklet-disk-read" => {
            "commands read entries no longer held in memory back from disk; a larger \
             stream-cache-bytes keeps more of each stream in memory."
        }
        _ => return None,
    })
}

fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    Ok(super::reply::help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctor_says_when_the_monitor_is_off_or_quiet() {
        let none = std::collections::BTreeMap::new();
        assert!(doctor_report(0, &none).contains("latency-monitor-threshold"));
        assert!(doctor_report(5, &none).starts_with("No event has taken 5 ms"));
    }

    #[test]
    fn every_brooklet_event_has_advice() {
        for e in [
            "command",
            "fast-command",
            "aof-fsync-always",
            "aof-write",
            "brooklet-fsync",
            "brooklet-checkpoint",
            "brooklet-compaction",
            "brooklet-purge",
            "brooklet-disk-read",
        ] {
            assert!(advice(e).is_some(), "{e}");
        }
    }
}
