//! Replication commands: REPLICAOF / SLAVEOF, REPLCONF, PSYNC / SYNC, ROLE, WAIT, WAITAOF,
//! and REPLSTREAM, the internal command that carries a stream's records from a primary to
//! its replicas (see `crate::replication`).

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Duration;

use brooklet_persistence::StoredStream;
use brooklet_resp::Reply;
use brooklet_streams::IdmpConfig;

use super::table::flags::*;
use super::table::simple;
use super::{CommandSpec, Ctx, Takeover, WaitSpec};
use crate::error::CommandError;
use crate::keyspace::Value;
use crate::notify::EventClass;
use crate::publish::keyspace_event;
use crate::replication::failover::{self, Phase, Request};
use crate::replication::primary::{Start, decide};
use crate::replication::{Role, replica};

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[
    // Sentinel sends SLAVEOF inside MULTI / EXEC with CONFIG REWRITE and CLIENT KILL.
    simple("replicaof", 3, ADMIN, replicaof),
    simple("slaveof", 3, ADMIN, replicaof),
    simple("replconf", -1, ADMIN | LOADING, replconf),
    simple("psync", -3, ADMIN | NO_MULTI, psync),
    simple("sync", 1, ADMIN | NO_MULTI, sync),
    simple("role", 1, FAST | LOADING, role),
    simple("wait", 3, 0, wait),
    simple("waitaof", 4, 0, waitaof),
    simple("failover", -1, ADMIN, failover),
    CommandSpec {
        name: "replstream",
        arity: -3,
        flags: WRITE,
        first_key: 1,
        last_key: 1,
        key_step: 1,
        handler: Some(replstream),
        subcommands: &[],
    },
];

/// REPLICAOF's target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    NoOne,
    Primary(String, u16),
}

fn parse_target(argv: &[Bytes]) -> Result<Target, CommandError> {
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        return Ok(Target::NoOne);
    }
    // Redis answers a port that is no number and one out of range alike.
    let port = std::str::from_utf8(&argv[2])
        .ok()
        .and_then(|p| p.parse::<i64>().ok())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(CommandError::msg("ERR Invalid master port"))?;
    Ok(Target::Primary(
        String::from_utf8_lossy(&argv[1]).into_owned(),
        port,
    ))
}

fn replicaof(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let shared = ctx.shared;
    if shared.repl.failover().phase != Phase::Idle {
        return Err(CommandError::msg(
            "ERR REPLICAOF not allowed while failing over.",
        ));
    }
    match parse_target(argv)? {
        Target::NoOne => {
            if shared.repl.is_replica() {
                replica::stop(shared);
                tracing::info!(
                    "MASTER MODE enabled (user request from id={})",
                    ctx.client.handle.id
                );
            }
            Ok(Reply::Ok)
        }
        Target::Primary(host, port) => {
            if let Role::Replica { host: h, port: p } = &shared.repl.ids().role
                && *h == host
                && *p == port
            {
                return Ok(Reply::simple("OK Already connected to specified master"));
            }
            shared.config_mut().repl.replicaof = Some((host.clone(), port));
            tracing::info!(
                "REPLICAOF {host}:{port} enabled (user request from id={})",
                ctx.client.handle.id
            );
            replica::start(shared, host, port);
            Ok(Reply::Ok)
        }
    }
}

fn replconf(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len().is_multiple_of(2) {
        return Err(CommandError::syntax());
    }
    let id = ctx.client.handle.id;
    for pair in argv[1..].chunks(2) {
        let (opt, value) = (&pair[0], &pair[1]);
        let lower = opt.to_ascii_lowercase();
        match lower.as_slice() {
            b"listening-port" => {
                let port = std::str::from_utf8(value)
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or(CommandError::msg(
                        "ERR value is not an integer or out of range",
                    ))?;
                ctx.shared.repl.announced().entry(id).or_default().port = port;
            }
            b"ip-address" => {
                ctx.shared.repl.announced().entry(id).or_default().ip =
                    Some(String::from_utf8_lossy(value).into_owned());
            }
            b"capa" | b"ack" | b"fack" | b"getack" | b"rdb-only" | b"rdb-filter-only"
            | b"rdb-channel" => {}
            b"brooklet-runid" => {
                if value[..] == *ctx.shared.run_id.as_bytes() {
                    return Err(CommandError::msg(
                        "ERR this is the same server: a server cannot replicate from itself",
                    ));
                }
            }
            _ => {
                return Err(CommandError::text(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(opt)
                )));
            }
        }
    }
    Ok(Reply::Ok)
}

/// FAILOVER's arguments: ABORT, or a request.
#[derive(Debug, PartialEq, Eq)]
enum FailoverArgs {
    Abort,
    /// TO's port is kept as given: one no replica listens on is refused after the checks
    /// before it, as Redis orders them.
    Start(Request, Option<(String, i64)>),
}

fn parse_failover(argv: &[Bytes]) -> Result<FailoverArgs, CommandError> {
    if argv.len() == 2 && argv[1].eq_ignore_ascii_case(b"abort") {
        return Ok(FailoverArgs::Abort);
    }
    let integer = |a: &[u8]| {
        std::str::from_utf8(a)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(CommandError::msg(
                "ERR value is not an integer or out of range",
            ))
    };
    let mut req = Request::default();
    let mut to: Option<(String, i64)> = None;
    let mut j = 1;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let arg = &argv[j];
        if arg.eq_ignore_ascii_case(b"timeout") && left >= 1 && req.timeout_ms.is_none() {
            let ms = integer(&argv[j + 1])?;
            if ms <= 0 {
                return Err(CommandError::msg(
                    "ERR FAILOVER timeout must be greater than 0",
                ));
            }
            req.timeout_ms = Some(ms as u64);
            j += 2;
        } else if arg.eq_ignore_ascii_case(b"to") && left >= 2 && to.is_none() {
            let port = integer(&argv[j + 2])?;
            to = Some((String::from_utf8_lossy(&argv[j + 1]).into_owned(), port));
            j += 3;
        } else if arg.eq_ignore_ascii_case(b"force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(FailoverArgs::Start(req, to))
}

fn failover(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let shared = ctx.shared;
    let (mut req, to) = match parse_failover(argv)? {
        FailoverArgs::Abort => {
            if shared.repl.failover().phase == Phase::Idle {
                return Err(CommandError::msg("ERR No failover in progress."));
            }
            failover::abort(shared, "Failover manually aborted");
            return Ok(Reply::Ok);
        }
        FailoverArgs::Start(req, to) => (req, to),
    };
    if shared.repl.failover().phase != Phase::Idle {
        return Err(CommandError::msg("ERR FAILOVER already in progress."));
    }
    if shared.repl.is_replica() {
        return Err(CommandError::msg(
            "ERR FAILOVER is not valid when server is a replica.",
        ));
    }
    let followers = shared.repl.followers();
    if followers.is_empty() {
        return Err(CommandError::msg(
            "ERR FAILOVER requires connected replicas.",
        ));
    }
    if req.force && (req.timeout_ms.is_none() || to.is_none()) {
        return Err(CommandError::msg(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        ));
    }
    if let Some((host, port)) = to {
        let found = followers
            .iter()
            .find(|f| f.ip.eq_ignore_ascii_case(&host) && i64::from(f.port) == port)
            .ok_or(CommandError::msg(
                "ERR FAILOVER target HOST and PORT is not a replica.",
            ))?;
        if !found.online.load(Ordering::Relaxed) {
            return Err(CommandError::msg(
                "ERR FAILOVER target replica is not online.",
            ));
        }
        req.target = Some((host, found.port));
    }
    failover::begin(shared, req);
    Ok(Reply::Ok)
}

fn psync(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if argv.len() > 3 && argv[3].eq_ignore_ascii_case(b"failover") {
        take_over_from_primary(ctx, &argv[1])?;
    }
    refuse_while_failing_over(ctx)?;
    refuse_on_replica(ctx)?;
    let offset = std::str::from_utf8(&argv[2])
        .ok()
        .and_then(|o| o.parse::<i64>().ok())
        .ok_or(CommandError::msg(
            "ERR value is not an integer or out of range",
        ))?;
    let start = decide(ctx.shared, &argv[1], offset);
    ctx.takeover = Some(Takeover::Replica(start));
    Ok(Reply::Ok)
}

/// `PSYNC replid offset FAILOVER` from this replica's primary, in a FAILOVER's last step:
/// this replica becomes a primary if it follows that history, and then answers the PSYNC
/// as any primary would (from `replid2`, so the old primary continues).
fn take_over_from_primary(ctx: &Ctx<'_>, replid: &[u8]) -> Result<(), CommandError> {
    let shared = ctx.shared;
    tracing::warn!(
        "Failover request received for replid {}.",
        String::from_utf8_lossy(replid)
    );
    if !shared.repl.is_replica() {
        return Err(CommandError::msg(
            "ERR PSYNC FAILOVER can't be sent to a master.",
        ));
    }
    if shared.repl.ids().replid.as_bytes() != replid {
        return Err(CommandError::msg(
            "ERR PSYNC FAILOVER replid must match my replid.",
        ));
    }
    replica::stop(shared);
    tracing::info!(
        "MASTER MODE enabled (failover request from id={} addr={})",
        ctx.client.handle.id,
        ctx.client.handle.addr
    );
    Ok(())
}

/// A primary in the middle of a FAILOVER feeds no new replica.
fn refuse_while_failing_over(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    if ctx.shared.repl.failover().phase != Phase::Idle {
        return Err(CommandError::msg(
            "NOMASTERLINK Can't SYNC while failing over",
        ));
    }
    Ok(())
}

fn sync(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    refuse_while_failing_over(ctx)?;
    refuse_on_replica(ctx)?;
    ctx.takeover = Some(Takeover::Replica(Start::Full { old_sync: true }));
    Ok(Reply::Ok)
}

/// Brooklet replicas do not feed replicas of their own (no chained replication).
fn refuse_on_replica(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    if ctx.shared.repl.is_replica() {
        return Err(CommandError::msg(
            "ERR Brooklet replicas do not feed replicas of their own; replicate from the primary",
        ));
    }
    Ok(())
}

fn role(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let repl = &ctx.shared.repl;
    let role = repl.ids().role.clone();
    Ok(match role {
        Role::Primary => {
            let replicas = repl
                .followers()
                .iter()
                .filter(|f| f.online.load(Ordering::Relaxed))
                .map(|f| {
                    Reply::Array(vec![
                        Reply::bulk(f.ip.clone()),
                        Reply::bulk(f.port.to_string()),
                        Reply::bulk(f.ack.load(Ordering::Relaxed).to_string()),
                    ])
                })
                .collect();
            Reply::Array(vec![
                Reply::bulk("master"),
                Reply::Int(repl.offset() as i64),
                Reply::Array(replicas),
            ])
        }
        Role::Replica { host, port } => Reply::Array(vec![
            Reply::bulk("slave"),
            Reply::bulk(host),
            Reply::Int(i64::from(port)),
            Reply::bulk(repl.link().role_word()),
            Reply::Int(repl.applied.load(Ordering::Relaxed) as i64),
        ]),
    })
}

/// WAIT's and WAITAOF's timeout, milliseconds (0: none).
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let ms = std::str::from_utf8(arg)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(CommandError::msg(
            "ERR timeout is not an integer or out of range",
        ))?;
    if ms < 0 {
        return Err(CommandError::msg("ERR timeout is negative"));
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

fn parse_count(arg: &[u8]) -> Result<usize, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .map(|n| n.max(0) as usize)
        .ok_or(CommandError::msg(
            "ERR value is not an integer or out of range",
        ))
}

fn wait(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if ctx.shared.repl.is_replica() {
        return Err(CommandError::msg(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ));
    }
    let numreplicas = parse_count(&argv[1])?;
    let timeout = parse_timeout(&argv[2])?;
    let offset = ctx.shared.repl.offset();
    let acked = ctx.shared.repl.acked(offset);
    if acked >= numreplicas || ctx.client.in_exec {
        return Ok(Reply::Int(acked as i64));
    }
    ctx.takeover = Some(Takeover::Wait(WaitSpec {
        numreplicas,
        numlocal: None,
        timeout,
        offset,
        seq: 0,
    }));
    Ok(Reply::Ok)
}

fn waitaof(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let numlocal = parse_count(&argv[1])?;
    let numreplicas = parse_count(&argv[2])?;
    let timeout = parse_timeout(&argv[3])?;
    if ctx.shared.repl.is_replica() {
        return Err(CommandError::msg(
            "ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.",
        ));
    }
    let offset = ctx.shared.repl.offset();
    let seq = ctx.shared.store.committed_seq();
    ctx.takeover = Some(Takeover::Wait(WaitSpec {
        numreplicas,
        numlocal: Some(numlocal),
        timeout,
        offset,
        seq,
    }));
    Ok(Reply::Ok)
}

fn replstream(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    if !ctx.client.handle.is_master_link() {
        return Err(CommandError::msg(
            "ERR REPLSTREAM is only accepted from this replica's primary",
        ));
    }
    let key = &argv[1];
    let muts = brooklet_persistence::decode_repl_changes(&argv[2])
        .map_err(|e| CommandError::text(format!("ERR bad REPLSTREAM records: {e}")))?;
    let db = ctx.client.db;
    let created = {
        let mut shard = ctx.db().lock(key);
        match shard.get_mut(key) {
            Some(v) => {
                let stream = v.stream_mut()?;
                for m in &muts {
                    stream.apply(m);
                }
                ctx.persist(key, stream, &muts)?;
                if stream.retention().is_on() {
                    ctx.shared.retention.add(db, key);
                }
                false
            }
            None => {
                let mut stream = Box::new(StoredStream::new());
                let config = ctx.shared.config();
                stream.init_idmp_config(IdmpConfig {
                    duration: config.stream_idmp_duration,
                    maxsize: config.stream_idmp_maxsize,
                });
                drop(config);
                for m in &muts {
                    stream.apply(m);
                }
                ctx.persist(key, &mut stream, &muts)?;
                if stream.retention().is_on() {
                    ctx.shared.retention.add(db, key);
                }
                shard.insert(crate::keyspace::keep(key), Value::stream_value(stream));
                true
            }
        }
    };
    for event in &argv[3..] {
        if event[..] == *b"new" {
            keyspace_event(ctx.shared, EventClass::New, "new", db, key);
        } else if let Ok(e) = std::str::from_utf8(event) {
            ctx.stream_event(e, key);
        }
    }
    let _ = created;
    ctx.key_changed(key);
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn replicaof_targets_and_their_errors() {
        assert_eq!(
            parse_target(&args(&["replicaof", "NO", "one"])).unwrap(),
            Target::NoOne
        );
        assert_eq!(
            parse_target(&args(&["replicaof", "h", "7000"])).unwrap(),
            Target::Primary("h".into(), 7000)
        );
        assert_eq!(
            parse_target(&args(&["replicaof", "h", "x"]))
                .unwrap_err()
                .to_string(),
            "ERR Invalid master port"
        );
        assert_eq!(
            parse_target(&args(&["replicaof", "h", "70000"]))
                .unwrap_err()
                .to_string(),
            "ERR Invalid master port"
        );
    }

    #[test]
    fn wait_timeouts() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(parse_timeout(b"5").unwrap(), Some(Duration::from_millis(5)));
        assert_eq!(
            parse_timeout(b"-1").unwrap_err().to_string(),
            "ERR timeout is negative"
        );
        assert_eq!(
            parse_timeout(b"x").unwrap_err().to_string(),
            "ERR timeout is not an integer or out of range"
        );
        assert_eq!(parse_count(b"-3").unwrap(), 0);
    }
}
