//! Operators' commands: MEMORY STATS / DOCTOR / MALLOC-STATS / PURGE, COMMAND GETKEYS /
//! GETKEYSANDFLAGS / LIST FILTERBY, CLIENT PAUSE / UNPAUSE / NO-EVICT, CONFIG REWRITE, and
//! the Prometheus endpoint.

use brooklet::{TestServer, err, int, run};
use redis::Value;

/// The map a MEMORY STATS reply holds, whichever protocol carried it.
fn map_of(v: Value) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(a) => a
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Value::BulkString(b) => (String::from_utf8_lossy(&b).into_owned(), v),
            other => panic!("key {other:?}"),
        })
        .collect()
}

fn text_of(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        Value::SimpleString(s) => s,
        other => panic!("not text: {other:?}"),
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Int(n) => *n as f64,
        Value::Double(d) => *d,
        Value::BulkString(b) => String::from_utf8_lossy(b).parse().unwrap_or(f64::NAN),
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn memory_stats_fields_in_both_protocols() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        run(&mut c, &["XADD", "s", "*", "f", "v"]);
        run(&mut c, &["SET", "k", "v"]);
        let stats = map_of(run(&mut c, &["MEMORY", "STATS"]));
        let names: Vec<&str> = stats.iter().map(|(k, _)| k.as_str()).collect();
        for want in [
            "peak.allocated",
            "total.allocated",
            "startup.allocated",
            "replication.backlog",
            "clients.slaves",
            "clients.normal",
            "aof.buffer",
            "db.0",
            "overhead.total",
            "keys.count",
            "keys.bytes-per-key",
            "dataset.bytes",
            "dataset.percentage",
            "peak.percentage",
            "allocator.allocated",
            "fragmentation",
            "fragmentation.bytes",
            "brooklet.disk.bytes",
            "brooklet.tail-log.bytes",
            "brooklet.stream-cache.budget",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let get = |name: &str| {
            stats
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(number(&get("keys.count")), 2.0);
        assert!(number(&get("peak.allocated")) >= number(&get("total.allocated")));
        assert!(number(&get("peak.percentage")) <= 100.0);
        assert!(matches!(get("db.0"), Value::Map(_) | Value::Array(_)));
        run(&mut c, &["FLUSHALL"]);
    }
}

#[test]
fn memory_doctor_purge_malloc_stats_and_help() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let doctor = text_of(run(&mut c, &["MEMORY", "DOCTOR"]));
        assert!(doctor.starts_with("Hi Sam") || doctor.starts_with("Sam, I detected"));
        // The in-process server runs on the system allocator, as Redis built without jemalloc.
        assert_eq!(
            text_of(run(&mut c, &["MEMORY", "MALLOC-STATS"])),
            "Stats not supported for the current allocator"
        );
        assert_eq!(run(&mut c, &["MEMORY", "PURGE"]), Value::Okay);
        let help = match run(&mut c, &["MEMORY", "HELP"]) {
            Value::Array(a) => a.into_iter().map(text_of).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(help[1], "DOCTOR");
        assert!(help.iter().any(|l| l == "STATS"));
        assert_eq!(
            err(&mut c, &["MEMORY", "STATS", "x"]),
            "ERR wrong number of arguments for 'memory|stats' command"
        );
        assert_eq!(
            err(&mut c, &["MEMORY", "NOPE"]),
            "ERR unknown subcommand 'NOPE'. Try MEMORY HELP."
        );
        assert!(int(&mut c, &["DBSIZE"]) >= 0);
    }
}
