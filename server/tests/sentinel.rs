//! Failover with stock `redis-sentinel`: a Brooklet primary, two Brooklet replicas and three
//! sentinels on loopback. Producers confirm each XADD with WAIT 1; the primary is killed
//! with SIGKILL; Sentinel promotes a replica; a client that asks the sentinels where the
//! primary is carries on; every confirmed entry is there with its group and pending list;
//! the old primary, restarted, is turned into a replica and converges.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Running};

const LIMIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One command on a fresh connection (a failover moves the primary between calls).
fn q(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut c = client.get_connection_with_timeout(Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn info(port: u16, field: &str) -> Option<String> {
    let v = q(port, &["INFO", "replication"]).ok()?;
    let prefix = format!("{field}:");
    text(&v)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|s| s.trim().to_string()))
}

fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn brooklet(port: u16, dir: &std::path::Path, extra: &[&str]) -> Running {
    let s = common::spawn(
        Command::new(BIN)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(extra),
        LIMIT,
    );
    s.child
}

/// Sentinel opens a new link at most once per ping period (1 s), and after a switch it counts
/// the new primary's silence from the switch: with `down-after-milliseconds` at 1000 a
/// sentinel whose reconnect waits out that period finds the primary it just chose "down" and
/// starts a second failover (seen here about one run in ten: the test then waits for a
/// primary that is a replica again). 3000 leaves that reconnect, on a loaded machine, two
/// seconds.
const DOWN_AFTER_MS: u32 = 3000;

fn sentinel(port: u16, dir: &std::path::Path, primary: u16) -> Running {
    let conf = dir.join(format!("sentinel-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {primary} 2\nsentinel down-after-milliseconds mymaster {DOWN_AFTER_MS}\nsentinel failover-timeout mymaster 10000\nsentinel parallel-syncs mymaster 1\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("sentinel-{port}.log"))).unwrap();
    Running(
        Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn primary_port(sentinels: &[u16]) -> Option<u16> {
    for s in sentinels {
        if let Ok(redis::Value::Array(a)) =
            q(*s, &["SENTINEL", "get-master-addr-by-name", "mymaster"])
            && let Some(port) = a.get(1)
        {
            return text(port).parse().ok();
        }
    }
    None
}

fn array_len(v: redis::RedisResult<redis::Value>) -> usize {
    match v {
        Ok(redis::Value::Array(a)) => a.len(),
        _ => 0,
    }
}

#[test]
fn sentinel_fails_over_to_a_replica_and_nothing_confirmed_is_lost() {
    if Command::new("redis-sentinel")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("redis-sentinel is not installed: the failover test is skipped");
        return;
    }
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let (p0, p1, p2) = (ports[0], ports[1], ports[2]);
    let mut primary = brooklet(p0, dirs[0].path(), &[]);
    let of = p0.to_string();
    let _r1 = brooklet(p1, dirs[1].path(), &["--replicaof", "127.0.0.1", &of]);
    let _r2 = brooklet(p2, dirs[2].path(), &["--replicaof", "127.0.0.1", &of]);
    until("two replicas online", LIMIT, || {
        info(p0, "connected_slaves").as_deref() == Some("2")
    });
    let sports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _sentinels: Vec<Running> = sports
        .iter()
        .map(|s| sentinel(*s, dirs[3].path(), p0))
        .collect();
    until(
        "the sentinels to find the replicas and each other",
        LIMIT,
        || {
            sports.iter().all(|s| {
                array_len(q(*s, &["SENTINEL", "replicas", "mymaster"])) == 2
                    && array_len(q(*s, &["SENTINEL", "sentinels", "mymaster"])) == 2
            })
        },
    );

    // Producers: every XADD is confirmed by WAIT 1 before it counts.
    q(p0, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).unwrap();
    let mut confirmed = Vec::new();
    for i in 0..200 {
        let id = text(&q(p0, &["XADD", "s", "*", "n", &i.to_string()]).unwrap());
        let acked = match q(p0, &["WAIT", "1", "2000"]).unwrap() {
            redis::Value::Int(n) => n,
            v => panic!("WAIT: {v:?}"),
        };
        if acked >= 1 {
            confirmed.push(id);
        }
    }
    q(
        p0,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "50",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .unwrap();
    assert!(matches!(
        q(p0, &["WAIT", "2", "5000"]).unwrap(),
        redis::Value::Int(2)
    ));
    let pending_before = text(&q(p0, &["XPENDING", "s", "g"]).unwrap());
    assert_eq!(
        confirmed.len(),
        200,
        "every write was confirmed by a replica"
    );

    // SIGKILL the primary; Sentinel promotes a replica.
    primary.kill().unwrap();
    let _ = primary.wait();
    until("Sentinel to promote a replica", LIMIT, || {
        primary_port(&sports).is_some_and(|p| p != p0)
            && primary_port(&sports).is_some_and(|p| info(p, "role").as_deref() == Some("master"))
    });
    let new = primary_port(&sports).unwrap();
    assert!(new == p1 || new == p2);
    let other = if new == p1 { p2 } else { p1 };

    // The client found the new primary through the sentinels: everything confirmed is there.
    let ids = match q(new, &["XRANGE", "s", "-", "+"]).unwrap() {
        redis::Value::Array(entries) => entries
            .iter()
            .map(|e| match e {
                redis::Value::Array(pair) => text(&pair[0]),
                v => panic!("entry {v:?}"),
            })
            .collect::<Vec<_>>(),
        v => panic!("XRANGE: {v:?}"),
    };
    for id in &confirmed {
        assert!(
            ids.contains(id),
            "confirmed entry {id} is missing after the failover"
        );
    }
    assert_eq!(
        text(&q(new, &["XPENDING", "s", "g"]).unwrap()),
        pending_before
    );
    // It carries on, and the other replica follows the new primary.
    q(new, &["XADD", "s", "*", "after", "failover"]).unwrap();
    until("the other replica to follow the new primary", LIMIT, || {
        info(other, "master_port").is_some_and(|p| p == new.to_string())
            && info(other, "master_link_status").as_deref() == Some("up")
    });
    until(
        "WAIT 1 on the new primary",
        LIMIT,
        || matches!(q(new, &["WAIT", "1", "1000"]), Ok(redis::Value::Int(n)) if n >= 1),
    );

    // The old primary comes back and is turned into a replica of the new one.
    let _old = brooklet(p0, dirs[0].path(), &[]);
    until("the old primary to become a replica", LIMIT, || {
        info(p0, "role").as_deref() == Some("slave")
            && info(p0, "master_port").is_some_and(|p| p == new.to_string())
            && info(p0, "master_link_status").as_deref() == Some("up")
    });
    q(new, &["XADD", "s", "*", "after", "return"]).unwrap();
    until("the old primary to converge", LIMIT, || {
        let a = q(new, &["XLEN", "s"]).ok().map(|v| text(&v));
        let b = q(p0, &["XLEN", "s"]).ok().map(|v| text(&v));
        a.is_some() && a == b
    });
    assert_eq!(
        text(&q(p0, &["XPENDING", "s", "g"]).unwrap()),
        text(&q(new, &["XPENDING", "s", "g"]).unwrap())
    );
}

fn full(port: u16, key: &str) -> String {
    format!("{:?}", q(port, &["XINFO", "STREAM", key, "FULL"]).unwrap())
}

#[test]
fn a_replica_killed_with_sigkill_resyncs_and_converges() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (p0, p1) = (free_port(), free_port());
    let _primary = brooklet(p0, dirs[0].path(), &[]);
    let of = p0.to_string();
    let mut replica = brooklet(p1, dirs[1].path(), &["--replicaof", "127.0.0.1", &of]);
    q(p0, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).unwrap();
    for i in 0..100 {
        q(p0, &["XADD", "s", "*", "n", &i.to_string()]).unwrap();
    }
    q(
        p0,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "30",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .unwrap();
    until("the replica to acknowledge", LIMIT, || {
        matches!(q(p0, &["WAIT", "1", "1000"]), Ok(redis::Value::Int(1)))
    });
    replica.kill().unwrap();
    let _ = replica.wait();
    for i in 100..150 {
        q(p0, &["XADD", "s", "*", "n", &i.to_string()]).unwrap();
    }
    q(p0, &["XACK", "s", "g", "0-1"]).unwrap();
    let _replica = brooklet(p1, dirs[1].path(), &["--replicaof", "127.0.0.1", &of]);
    until("the restarted replica to converge", LIMIT, || {
        info(p1, "master_link_status").as_deref() == Some("up") && full(p0, "s") == full(p1, "s")
    });
}
