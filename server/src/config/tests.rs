//! Unit tests of the directive table and of flags, files and CONFIG GET / SET over it.

#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;

fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn bad(name: &str, reason: &str) -> ConfigError {
    ConfigError::BadValue {
        name: name.into(),
        reason: reason.into(),
    }
}

#[test]
fn defaults_come_from_the_table_and_are_unchanged() {
    let c = Config::default();
    assert_eq!(c.bind, ["127.0.0.1"]);
    assert_eq!((c.port, c.tls_port), (6379, 0));
    assert_eq!(c.tls_cert_file, None);
    assert_eq!(c.tls_key_file, None);
    assert_eq!(c.tls_ca_cert_file, None);
    assert_eq!(c.tls_auth_clients, TlsAuthClients::Yes);
    assert_eq!(c.dir, std::path::PathBuf::from("./brooklet-data"));
    assert_eq!(c.requirepass, None);
    assert_eq!(c.appendfsync, Fsync::Everysec);
    assert_eq!(c.maxclients, 10_000);
    assert_eq!(c.loglevel, "notice");
    assert_eq!(c.databases, 16);
    assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
    assert_eq!(c.client_query_buffer_limit, 1024 * 1024 * 1024);
    assert_eq!(c.stream_node_max_entries, 100);
    assert_eq!(c.stream_node_max_bytes, 4096);
    assert_eq!(
        c.stream_cache_bytes,
        brooklet_persistence::DEFAULT_STREAM_CACHE_BYTES as u64
    );
    assert_eq!(
        c.tail_log_segment_bytes,
        brooklet_persistence::DEFAULT_TAIL_SEGMENT_BYTES
    );
    assert_eq!(
        c.tail_log_checkpoint_bytes,
        brooklet_persistence::DEFAULT_CHECKPOINT_BYTES
    );
    assert_eq!(c.notify_keyspace_events, "");
    assert!(!c.notify_new_keys);
    assert_eq!(c.output_limit_normal, OutputLimit::default());
    let limit = |hard: u64, soft: u64| OutputLimit {
        hard: hard << 20,
        soft: soft << 20,
        soft_seconds: 60,
    };
    assert_eq!(c.output_limit_pubsub, limit(32, 8));
    assert_eq!(c.output_limit_replica, limit(256, 64));
    assert_eq!(c.timeout, 0);
    assert!(c.protected_mode);
    assert!(c.jemalloc_bg_thread);
    assert_eq!(c.io_threads, DEFAULT_IO_THREADS);
    assert_eq!(c.enable_debug_command, "no");
    assert_eq!(c.tcp_keepalive, 300);
    assert_eq!(c.hz, 10);
    assert_eq!(c.stream_idmp_duration, 100);
    assert_eq!(c.stream_idmp_maxsize, 100);
}

#[test]
fn every_custom_default_parses() {
    for d in DIRECTIVES {
        if let Kind::Custom { default, .. } = d.kind {
            let mut c = Config::default();
            assert_eq!(d.set(&mut c, &[default]), Ok(()), "{}", d.name);
        }
    }
}

#[test]
fn config_get_lists_the_directives_in_their_former_order() {
    let listed: Vec<&str> = DIRECTIVES
        .iter()
        .filter(|d| d.get(&Config::default()).is_some())
        .map(|d| d.name)
        .collect();
    assert_eq!(
        listed,
        [
            "bind",
            "port",
            "tls-port",
            "tls-cert-file",
            "tls-key-file",
            "tls-ca-cert-file",
            "tls-auth-clients",
            "dir",
            "requirepass",
            "appendfsync",
            "appendonly",
            "save",
            "maxclients",
            "loglevel",
            "databases",
            "proto-max-bulk-len",
            "client-query-buffer-limit",
            "stream-node-max-entries",
            "stream-node-max-bytes",
            "stream-cache-bytes",
            "tail-log-segment-bytes",
            "tail-log-checkpoint-bytes",
            "notify-keyspace-events",
            "client-output-buffer-limit",
            "timeout",
            "protected-mode",
            "enable-debug-command",
            "tcp-keepalive",
            "hz",
            "maxmemory",
            "maxmemory-policy",
            "lfu-log-factor",
            "lfu-decay-time",
            "jemalloc-bg-thread",
            "io-threads",
            "stream-idmp-duration",
            "stream-idmp-maxsize",
            "stream-max-age",
            "aclfile",
            "acllog-max-len",
            "acl-pubsub-default",
            "metrics-port",
            "slowlog-log-slower-than",
            "slowlog-max-len",
            "latency-monitor-threshold",
            "latency-tracking",
            "latency-tracking-info-percentiles",
            "replicaof",
            "slaveof",
            "masterauth",
            "masteruser",
            "repl-backlog-size",
            "replica-read-only",
            "slave-read-only",
            "replica-priority",
            "slave-priority",
            "replica-announce-ip",
            "replica-announce-port",
            "replica-announced",
            "min-replicas-to-write",
            "min-replicas-max-lag",
            "repl-ping-replica-period",
            "repl-timeout",
        ]
    );
    for d in DIRECTIVES {
        assert_eq!(d.name, d.name.to_ascii_lowercase());
        assert_eq!(
            DIRECTIVES.iter().filter(|e| e.name == d.name).count(),
            1,
            "{} twice",
            d.name
        );
    }
}

/// A value other than the default that the directive keeps, as CONFIG GET shows it back.
fn other_value(d: &Directive) -> Option<String> {
    Some(match &d.kind {
        Kind::Bool { default, .. } => if *default { "no" } else { "yes" }.into(),
        Kind::Int { max, .. } => max.to_string(),
        Kind::Port { .. } => "6380".into(),
        Kind::Memory { min, .. } => (min + (3 << 20)).to_string(),
        Kind::Enum {
            choices, default, ..
        } => choices.iter().find(|c| *c != default)?.to_string(),
        Kind::Text { .. } => "/some/thing".into(),
        Kind::Custom { .. } => match d.name {
            "bind" => "0.0.0.0 ::1".into(),
            "notify-keyspace-events" => "gKE".into(),
            "client-output-buffer-limit" => "normal 1 2 3 slave 4 5 6 pubsub 7 8 9".into(),
            "maxmemory-policy" => "volatile-lru".into(),
            "latency-tracking-info-percentiles" => "50 99.99".into(),
            "replicaof" | "slaveof" => "127.0.0.1 6380".into(),
            other => panic!("no test value for {other}"),
        },
        Kind::Ignored { .. } => return None,
    })
}

#[test]
fn every_directive_round_trips_through_set_and_get() {
    for d in DIRECTIVES {
        let mut c = Config::default();
        let shown = c.get(d.name);
        // The default as shown reads back to itself.
        if let Some(v) = &shown {
            let words: Vec<&str> = v.split_whitespace().collect();
            let values = if d.name == "bind" {
                words
            } else {
                vec![v.as_str()]
            };
            c.set(d.name, &values).unwrap();
            assert_eq!(c.get(d.name).as_ref(), Some(v), "{}", d.name);
        }
        match other_value(d) {
            Some(v) => {
                let words: Vec<&str> = v.split_whitespace().collect();
                let values = if d.name == "bind" {
                    words
                } else {
                    vec![v.as_str()]
                };
                c.set(&d.name.to_ascii_uppercase(), &values).unwrap();
                assert_eq!(c.get(d.name), Some(v.clone()), "{}", d.name);
                if d.mutable {
                    let next = Config::default().changed(&args(&[d.name, &v])).unwrap();
                    assert_eq!(next.get(d.name), Some(v), "{}", d.name);
                }
            }
            // An ignored directive takes a value and keeps showing the same.
            None => {
                c.set(d.name, &["no"]).unwrap();
                assert_eq!(c.get(d.name), shown, "{}", d.name);
            }
        }
    }
}

#[test]
fn every_choice_of_every_enum_round_trips() {
    for d in DIRECTIVES {
        if let Kind::Enum { choices, .. } = d.kind {
            let mut c = Config::default();
            for choice in choices {
                c.set(d.name, &[&choice.to_ascii_uppercase()]).unwrap();
                assert_eq!(c.get(d.name).as_deref(), Some(*choice), "{}", d.name);
            }
        }
    }
}

#[test]
fn bad_values_are_refused_with_redis_texts() {
    let mut c = Config::default();
    let cases: &[(&str, &str, &str)] = &[
        ("protected-mode", "maybe", "argument must be 'yes' or 'no'"),
        ("appendonly", "1", "argument must be 'yes' or 'no'"),
        ("daemonize", "", "argument must be 'yes' or 'no'"),
        ("hz", "0", "argument must be between 1 and 500 inclusive"),
        ("hz", "+5", "argument couldn't be parsed into an integer"),
        ("hz", "05", "argument couldn't be parsed into an integer"),
        (
            "timeout",
            "-1",
            "argument must be between 0 and 2147483647 inclusive",
        ),
        (
            "stream-node-max-entries",
            "-1",
            "argument must be between 0 and 9223372036854775807 inclusive",
        ),
        ("port", "65536", "argument must be between 0 and 65535"),
        ("tls-port", "x", "argument must be between 0 and 65535"),
        ("maxmemory", "1tb", "argument must be a memory value"),
        (
            "stream-node-max-bytes",
            "-1",
            "argument must be a memory value",
        ),
        (
            "proto-max-bulk-len",
            "1000k",
            "argument must be a memory value of at least 1mb",
        ),
        (
            "proto-max-bulk-len",
            "big",
            "argument must be a memory value",
        ),
        (
            "tail-log-segment-bytes",
            "1023",
            "argument must be a memory value of at least 1kb",
        ),
        (
            "tail-log-segment-bytes",
            "big",
            "argument must be a memory value of at least 1kb",
        ),
        (
            "appendfsync",
            "sometimes",
            "argument(s) must be one of the following: everysec, always, no",
        ),
        (
            "loglevel",
            "loud",
            "argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
        ),
        (
            "tls-auth-clients",
            "maybe",
            "argument(s) must be one of the following: no, yes, optional",
        ),
        (
            "enable-debug-command",
            "always",
            "argument(s) must be one of the following: no, yes, local",
        ),
        (
            "notify-keyspace-events",
            "Kq",
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
        ),
        (
            "client-output-buffer-limit",
            "pubsub 1 2",
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            "client-output-buffer-limit",
            "normal 1 2 3 other 1 2 3",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "client-output-buffer-limit",
            "pubsub 1 x 3",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
    ];
    for (name, value, reason) in cases {
        let before = c.get(name);
        assert_eq!(
            c.set(name, &[value]),
            Err(bad(name, reason)),
            "{name} {value}"
        );
        assert_eq!(c.get(name), before, "{name} changed by a refused value");
    }
    // A refused client-output-buffer-limit changes no class, even those before the bad one.
    assert_eq!(
        c.get("client-output-buffer-limit").unwrap(),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    for (name, values) in [
        ("hz", &[][..]),
        ("hz", &["1", "2"][..]),
        ("bind", &[][..]),
        ("requirepass", &["a", "b"][..]),
        ("nosuch", &["1"][..]),
    ] {
        assert_eq!(
            c.set(name, values),
            Err(ConfigError::UnknownDirective(name.into()))
        );
    }
    assert_eq!(
        c.set("NoSuch", &["1"]).unwrap_err().to_string(),
        "Bad directive or wrong number of arguments: 'nosuch'"
    );
    // `save` takes any words, or none.
    c.set("save", &[]).unwrap();
    c.set("save", &["900", "1", "300", "10"]).unwrap();
}

#[test]
fn immutable_directives_are_refused_at_run_time() {
    let immutable: Vec<&str> = DIRECTIVES
        .iter()
        .filter(|d| !d.mutable)
        .map(|d| d.name)
        .collect();
    assert_eq!(
        immutable,
        [
            "bind",
            "port",
            "tls-port",
            "tls-cert-file",
            "tls-key-file",
            "tls-ca-cert-file",
            "tls-auth-clients",
            "dir",
            "databases",
            "enable-debug-command",
            "io-threads",
            "aclfile",
            "daemonize",
            "metrics-port",
            "replicaof",
            "slaveof",
        ]
    );
    let c = Config::default();
    for d in DIRECTIVES {
        let typed = d.name.to_ascii_uppercase();
        let value = c.get(d.name).unwrap_or_else(|| "no".into());
        let got = c.changed(&args(&[&typed, &value]));
        if d.mutable {
            assert!(got.is_ok(), "{}: {got:?}", d.name);
            assert_eq!(c.settable(&typed), Ok(d.name.to_string()));
        } else {
            assert_eq!(
                got.unwrap_err().to_string(),
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{typed}') - can't set immutable config"
                )
            );
            assert_eq!(
                c.settable(&typed),
                Err(ConfigError::Immutable(d.name.into()))
            );
        }
    }
}

#[test]
fn appendonly_is_set_to_yes_at_run_time_and_never_to_no() {
    let c = Config::default();
    assert!(c.changed(&args(&["appendonly", "YES"])).is_ok());
    assert_eq!(
        c.changed(&args(&["appendonly", "no"]))
            .unwrap_err()
            .to_string(),
        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be \
         'yes': Brooklet journals every write and cannot turn that off"
    );
    assert_eq!(
        c.changed(&args(&["appendonly", "maybe"]))
            .unwrap_err()
            .to_string(),
        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be \
         'yes' or 'no'"
    );
    // redis.conf files say `appendonly no` (Redis's default): they still load.
    let mut c = Config::default();
    c.set("appendonly", &["no"]).unwrap();
    assert_eq!(c.get("appendonly").as_deref(), Some("yes"));
}

#[test]
fn config_set_checks_every_name_before_any_value_and_applies_all_or_nothing() {
    let c = Config::default();
    let set = |words: &[&str]| {
        c.changed(&args(words))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        set(&["timeout", "abc", "nosuch", "1"]),
        Err("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'".into())
    );
    assert_eq!(
        set(&["hz", "x", "timeout", "1", "Timeout", "2"]),
        Err(
            "ERR CONFIG SET failed (possibly related to argument 'Timeout') - duplicate parameter"
                .into()
        )
    );
    assert_eq!(
        set(&["HZ", "20", "Timeout", "-1"]),
        Err("ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive".into())
    );
    let next = c
        .changed(&args(&["hz", "20", "appendfsync", "ALWAYS", "save", ""]))
        .unwrap();
    assert_eq!((next.hz, next.appendfsync), (20, Fsync::Always));
    assert_eq!((c.hz, c.appendfsync), (10, Fsync::Everysec));
}

#[test]
fn config_get_matches_patterns_once_each() {
    let c = Config::default();
    let get = |words: &[&str]| -> Vec<(String, String)> {
        c.matching(&args(words))
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n.to_vec()).unwrap(), v))
            .collect()
    };
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        get(&["MAXCLIENTS", "maxclients"]),
        [pair("MAXCLIENTS", "10000")]
    );
    assert_eq!(
        get(&["*port", "tls-*"]),
        [
            pair("port", "6379"),
            pair("tls-port", "0"),
            pair("metrics-port", "0"),
            pair("replica-announce-port", "0"),
            pair("tls-cert-file", ""),
            pair("tls-key-file", ""),
            pair("tls-ca-cert-file", ""),
            pair("tls-auth-clients", "yes"),
        ]
    );
    assert_eq!(get(&["daemonize", "nosuch", "x*"]), []);
    assert_eq!(get(&["*"]).len(), 63);
}

#[test]
fn latency_percentiles_are_checked_as_redis_checks_them() {
    let c = Config::default();
    assert_eq!(c.latency_tracking_info_percentiles, [50.0, 99.0, 99.9]);
    let refused = |v: &str| {
        let c = Config::default();
        match c.changed(&args(&["latency-tracking-info-percentiles", v])) {
            Ok(_) => panic!("{v} accepted"),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(
        refused("50 101"),
        "ERR CONFIG SET failed (possibly related to argument 'latency-tracking-info-percentiles') - latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
    );
    assert_eq!(
        refused("abc"),
        "ERR CONFIG SET failed (possibly related to argument 'latency-tracking-info-percentiles') - Invalid latency-tracking-info-percentiles parameters"
    );
    let c = c
        .changed(&args(&["latency-tracking-info-percentiles", ""]))
        .unwrap();
    assert!(c.latency_tracking_info_percentiles.is_empty());
    assert_eq!(
        c.get("latency-tracking-info-percentiles").as_deref(),
        Some("")
    );
}

#[test]
fn flags_and_files_use_the_same_names() {
    let mut c = Config::default();
    c.apply_args(&[
        "--port".into(),
        "0".into(),
        "--appendfsync".into(),
        "always".into(),
    ])
    .unwrap();
    assert_eq!(c.port, 0);
    assert_eq!(c.appendfsync, Fsync::Always);
    let dir = std::env::temp_dir().join(format!("brooklet-conf-{}", std::process::id()));
    std::fs::write(&dir, "# comment\nport 7000\n\nbogus 1\n").unwrap();
    let err = c.load_file(&dir).unwrap_err();
    assert!(
        err.contains("at line 4") && err.contains("bogus 1"),
        "{err}"
    );
    assert_eq!(c.port, 7000);
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn tls_directives_round_trip_through_config_get() {
    let mut c = Config::default();
    assert_eq!(c.get("tls-port").unwrap(), "0");
    assert_eq!(c.get("tls-cert-file").unwrap(), "");
    assert_eq!(c.get("tls-auth-clients").unwrap(), "yes");
    c.apply_args(&[
        "--tls-port".into(),
        "6380".into(),
        "--tls-cert-file".into(),
        "/etc/brooklet/server.crt".into(),
        "--tls-key-file".into(),
        "/etc/brooklet/server.key".into(),
        "--tls-ca-cert-file".into(),
        "/etc/brooklet/ca.crt".into(),
        "--tls-auth-clients".into(),
        "OPTIONAL".into(),
    ])
    .unwrap();
    assert_eq!(c.tls_port, 6380);
    assert_eq!(c.get("tls-cert-file").unwrap(), "/etc/brooklet/server.crt");
    assert_eq!(c.get("tls-key-file").unwrap(), "/etc/brooklet/server.key");
    assert_eq!(c.get("tls-ca-cert-file").unwrap(), "/etc/brooklet/ca.crt");
    assert_eq!(c.tls_auth_clients, TlsAuthClients::Optional);
    assert_eq!(c.get("tls-auth-clients").unwrap(), "optional");
    assert!(matches!(
        c.set("tls-auth-clients", &["maybe"]),
        Err(ConfigError::BadValue { .. })
    ));
    c.set("tls-ca-cert-file", &[""]).unwrap();
    assert_eq!(c.tls_ca_cert_file, None);
    assert!(matches!(
        c.settable("tls-cert-file"),
        Err(ConfigError::Immutable(_))
    ));
}

#[test]
fn output_limits_and_memory_units() {
    let mut c = Config::default();
    let name = c.settable("client-output-buffer-limit").unwrap();
    c.set(&name, &["pubsub 1mb 512kb 10"]).unwrap();
    assert_eq!(
        c.output_limit_pubsub,
        OutputLimit {
            hard: 1 << 20,
            soft: 512 << 10,
            soft_seconds: 10
        }
    );
    assert!(
        c.get("client-output-buffer-limit")
            .unwrap()
            .contains("pubsub 1048576 524288 10")
    );
    // The replica class is kept as set; an empty value changes nothing.
    c.set(&name, &["replica 10 20 30"]).unwrap();
    c.set(&name, &[""]).unwrap();
    assert_eq!(
        c.get("client-output-buffer-limit").unwrap(),
        "normal 0 0 0 slave 10 20 30 pubsub 1048576 524288 10"
    );
    assert_eq!(parse_memory("1gb"), Some(1 << 30));
    assert_eq!(parse_memory("12x"), None);
    assert!(matches!(c.settable("port"), Err(ConfigError::Immutable(_))));
    assert!(matches!(
        c.settable("nope"),
        Err(ConfigError::UnknownDirective(_))
    ));
}

#[test]
fn keyspace_event_flags_read_back_as_redis_spells_them() {
    assert_eq!(canonical_keyspace_events("KEA"), "AKE");
    assert_eq!(canonical_keyspace_events("EgK"), "gKE");
    assert_eq!(canonical_keyspace_events("gE"), "gE");
    assert_eq!(canonical_keyspace_events("g$lshzxetdK"), "AK");
    assert_eq!(canonical_keyspace_events("ttK"), "tK");
    assert_eq!(canonical_keyspace_events("mK"), "Km");
    assert_eq!(canonical_keyspace_events("nA"), "A");
    assert_eq!(canonical_keyspace_events("ng"), "gn");
    assert_eq!(canonical_keyspace_events(""), "");
}

#[test]
fn maxmemory_takes_memory_units_and_policies_that_evict_nothing() {
    let mut c = Config::default();
    assert_eq!(c.get("maxmemory").as_deref(), Some("0"));
    assert_eq!(c.get("maxmemory-policy").as_deref(), Some("noeviction"));
    c.set("maxmemory", &["20mb"]).unwrap();
    assert_eq!(c.maxmemory, 20 << 20);
    assert_eq!(c.get("maxmemory").as_deref(), Some("20971520"));
    c.set("maxmemory", &["1g"]).unwrap();
    assert_eq!(c.maxmemory, 1_000_000_000);
    // Without TTLs the volatile policies evict nothing, as noeviction: accepted.
    for p in [
        "volatile-lru",
        "VOLATILE-LFU",
        "volatile-random",
        "volatile-ttl",
        "noeviction",
    ] {
        c.set("maxmemory-policy", &[p]).unwrap();
        assert_eq!(c.get("maxmemory-policy"), Some(p.to_ascii_lowercase()));
    }
    // Evicting any key would delete streams: refused, and the policy is unchanged.
    for p in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let e = c.set("maxmemory-policy", &[p]).unwrap_err().to_string();
        assert!(e.contains("never evicts keys"), "{e}");
        assert_eq!(c.get("maxmemory-policy").as_deref(), Some("noeviction"));
    }
    let e = c.set("maxmemory-policy", &["lru"]).unwrap_err().to_string();
    assert!(
        e.contains("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
        "{e}"
    );
}
