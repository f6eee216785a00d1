//! The table of every directive: the one place a directive's name, default, bounds, run-time
//! mutability and field are written down.

use std::path::PathBuf;

use super::directive::{Accepts, Directive, Kind};
use super::value::{
    non_empty_path, output_limits, path_or_empty, percentiles_text, set_bind, set_maxmemory_policy,
    set_notify_keyspace_events, set_output_limits, set_percentiles,
};
use super::{Fsync, TlsAuthClients};

/// `io-threads` unless set: one thread serves every client, as in Redis (whose default is
/// also 1). On a small machine a second worker mostly adds contention for the shard locks: a
/// worker preempted while holding one stalls the other (figures in docs/performance.md,
/// Configuration).
pub const DEFAULT_IO_THREADS: usize = 1;

/// The refusal of a value that is no memory value.
const NOT_MEMORY: &str = "argument must be a memory value";

const MB: u64 = 1024 * 1024;

/// Every directive, in the order CONFIG GET lists them.
pub static DIRECTIVES: &[Directive] = &[
    Directive {
        name: "bind",
        mutable: false,
        kind: Kind::Custom {
            default: "127.0.0.1",
            get: |c| c.bind.join(" "),
            set: set_bind,
        },
    },
    Directive {
        name: "port",
        mutable: false,
        kind: Kind::Port {
            default: 6379,
            get: |c| c.port,
            set: |c, v| c.port = v,
        },
    },
    Directive {
        name: "tls-port",
        mutable: false,
        kind: Kind::Port {
            default: 0,
            get: |c| c.tls_port,
            set: |c, v| c.tls_port = v,
        },
    },
    Directive {
        name: "tls-cert-file",
        mutable: false,
        kind: Kind::Text {
            default: "",
            get: |c| path_or_empty(&c.tls_cert_file),
            set: |c, v| c.tls_cert_file = non_empty_path(v),
        },
    },
    Directive {
        name: "tls-key-file",
        mutable: false,
        kind: Kind::Text {
            default: "",
            get: |c| path_or_empty(&c.tls_key_file),
            set: |c, v| c.tls_key_file = non_empty_path(v),
        },
    },
    Directive {
        name: "tls-ca-cert-file",
        mutable: false,
        kind: Kind::Text {
            default: "",
            get: |c| path_or_empty(&c.tls_ca_cert_file),
            set: |c, v| c.tls_ca_cert_file = non_empty_path(v),
        },
    },
    Directive {
        name: "tls-auth-clients",
        mutable: false,
        kind: Kind::Enum {
            choices: &["no", "yes", "optional"],
            default: "yes",
            get: |c| c.tls_auth_clients.as_str(),
            set: |c, v| {
                c.tls_auth_clients = match v {
                    "no" => TlsAuthClients::No,
                    "optional" => TlsAuthClients::Optional,
                    _ => TlsAuthClients::Yes,
                }
            },
        },
    },
    Directive {
        name: "dir",
        mutable: false,
        kind: Kind::Text {
            default: "./brooklet-data",
            get: |c| c.dir.display().to_string(),
            set: |c, v| c.dir = PathBuf::from(v),
        },
    },
    Directive {
        name: "requirepass",
        mutable: true,
        kind: Kind::Text {
            default: "",
            get: |c| {
                c.requirepass
                    .as_deref()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default()
            },
            set: |c, v| c.requirepass = (!v.is_empty()).then(|| v.as_bytes().to_vec()),
        },
    },
    Directive {
        name: "appendfsync",
        mutable: true,
        kind: Kind::Enum {
            choices: &["everysec", "always", "no"],
            default: "everysec",
            get: |c| c.appendfsync.as_str(),
            set: |c, v| {
                c.appendfsync = match v {
                    "always" => Fsync::Always,
                    "no" => Fsync::No,
                    _ => Fsync::Everysec,
                }
            },
        },
    },
    // Every write is journaled by the store; there is no way to turn it off. CONFIG SET
    // appendonly yes is a no-op so that tools enabling the AOF before a test or a backup go on.
    Directive {
        name: "appendonly",
        mutable: true,
        kind: Kind::Ignored {
            accepts: Accepts::YesNoOnlyYesLive,
            shown: Some("yes"),
        },
    },
    Directive {
        name: "save",
        mutable: true,
        kind: Kind::Ignored {
            accepts: Accepts::Anything,
            shown: Some(""),
        },
    },
    Directive {
        name: "maxclients",
        mutable: true,
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
            default: 10_000,
            get: |c| c.maxclients as i64,
            set: |c, v| c.maxclients = v as usize,
        },
    },
    Directive {
        name: "loglevel",
        mutable: true,
        kind: Kind::Enum {
            choices: &["debug", "verbose", "notice", "warning", "nothing"],
            default: "notice",
            get: |c| &c.loglevel,
            set: |c, v| c.loglevel = v.into(),
        },
    },
    Directive {
        name: "databases",
        mutable: false,
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
            default: 16,
            get: |c| c.databases as i64,
            set: |c, v| c.databases = v as usize,
        },
    },
    Directive {
        name: "proto-max-bulk-len",
        mutable: true,
        kind: Kind::Memory {
            min: MB,
            default: 512 * MB,
            unparsable: NOT_MEMORY,
            get: |c| c.proto_max_bulk_len,
            set: |c, v| c.proto_max_bulk_len = v,
        },
    },
    Directive {
        name: "client-query-buffer-limit",
        mutable: true,
        kind: Kind::Memory {
            min: MB,
            default: 1024 * MB,
            unparsable: NOT_MEMORY,
            get: |c| c.client_query_buffer_limit,
            set: |c, v| c.client_query_buffer_limit = v,
        },
    },
    Directive {
        name: "stream-node-max-entries",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            default: 100,
            get: |c| c.stream_node_max_entries as i64,
            set: |c, v| c.stream_node_max_entries = v as u64,
        },
    },
    Directive {
        name: "stream-node-max-bytes",
        mutable: true,
        kind: Kind::Memory {
            min: 0,
            default: 4096,
            unparsable: NOT_MEMORY,
            get: |c| c.stream_node_max_bytes,
            set: |c, v| c.stream_node_max_bytes = v,
        },
    },
    Directive {
        name: "stream-cache-bytes",
        mutable: true,
        kind: Kind::Memory {
            min: 0,
            default: brooklet_persistence::DEFAULT_STREAM_CACHE_BYTES as u64,
            unparsable: NOT_MEMORY,
            get: |c| c.stream_cache_bytes,
            set: |c, v| c.stream_cache_bytes = v,
        },
    },
    Directive {
        name: "tail-log-segment-bytes",
        mutable: true,
        kind: Kind::Memory {
            min: 1024,
            default: brooklet_persistence::DEFAULT_TAIL_SEGMENT_BYTES,
            // Unlike the other memory directives, it names its minimum even then.
            unparsable: "argument must be a memory value of at least 1kb",
            get: |c| c.tail_log_segment_bytes,
            set: |c, v| c.tail_log_segment_bytes = v,
        },
    },
    Directive {
        name: "tail-log-checkpoint-bytes",
        mutable: true,
        kind: Kind::Memory {
            min: 0,
            default: brooklet_persistence::DEFAULT_CHECKPOINT_BYTES,
            unparsable: NOT_MEMORY,
            get: |c| c.tail_log_checkpoint_bytes,
            set: |c, v| c.tail_log_checkpoint_bytes = v,
        },
    },
    Directive {
        name: "notify-keyspace-events",
        mutable: true,
        kind: Kind::Custom {
            default: "",
            get: |c| c.notify_keyspace_events.clone(),
            set: set_notify_keyspace_events,
        },
    },
    Directive {
        name: "client-output-buffer-limit",
        mutable: true,
        kind: Kind::Custom {
            default: "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60",
            get: output_limits,
            set: set_output_limits,
        },
    },
    Directive {
        name: "timeout",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 0,
            get: |c| c.timeout as i64,
            set: |c, v| c.timeout = v as u64,
        },
    },
    Directive {
        name: "protected-mode",
        mutable: true,
        kind: Kind::Bool {
            default: true,
            get: |c| c.protected_mode,
            set: |c, v| c.protected_mode = v,
        },
    },
    Directive {
        name: "enable-debug-command",
        mutable: false,
        kind: Kind::Enum {
            choices: &["no", "yes", "local"],
            default: "no",
            get: |c| &c.enable_debug_command,
            set: |c, v| c.enable_debug_command = v.into(),
        },
    },
    Directive {
        name: "tcp-keepalive",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 300,
            get: |c| c.tcp_keepalive as i64,
            set: |c, v| c.tcp_keepalive = v as u64,
        },
    },
    Directive {
        name: "hz",
        mutable: true,
        kind: Kind::Int {
            min: 1,
            max: 500,
            default: 10,
            get: |c| c.hz as i64,
            set: |c, v| c.hz = v as u64,
        },
    },
    Directive {
        name: "maxmemory",
        mutable: true,
        kind: Kind::Memory {
            min: 0,
            default: 0,
            unparsable: NOT_MEMORY,
            get: |c| c.maxmemory,
            set: |c, v| c.maxmemory = v,
        },
    },
    Directive {
        name: "maxmemory-policy",
        mutable: true,
        kind: Kind::Custom {
            default: "noeviction",
            get: |c| c.maxmemory_policy.to_string(),
            set: set_maxmemory_policy,
        },
    },
    Directive {
        name: "lfu-log-factor",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 10,
            get: |c| c.lfu_log_factor,
            set: |c, v| c.lfu_log_factor = v,
        },
    },
    Directive {
        name: "lfu-decay-time",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 1,
            get: |c| c.lfu_decay_time,
            set: |c, v| c.lfu_decay_time = v,
        },
    },
    Directive {
        name: "jemalloc-bg-thread",
        mutable: true,
        kind: Kind::Bool {
            default: true,
            get: |c| c.jemalloc_bg_thread,
            set: |c, v| c.jemalloc_bg_thread = v,
        },
    },
    Directive {
        name: "io-threads",
        mutable: false,
        kind: Kind::Int {
            min: 1,
            max: 128,
            default: DEFAULT_IO_THREADS as i64,
            get: |c| c.io_threads as i64,
            set: |c, v| c.io_threads = v as usize,
        },
    },
    Directive {
        name: "stream-idmp-duration",
        mutable: true,
        kind: Kind::Int {
            min: 1,
            max: brooklet_streams::IDMP_DURATION_MAX as i64,
            default: brooklet_streams::IDMP_DURATION_DEFAULT as i64,
            get: |c| i64::from(c.stream_idmp_duration),
            set: |c, v| c.stream_idmp_duration = v as u32,
        },
    },
    Directive {
        name: "stream-idmp-maxsize",
        mutable: true,
        kind: Kind::Int {
            min: 1,
            max: brooklet_streams::IDMP_MAXSIZE_MAX as i64,
            default: brooklet_streams::IDMP_MAXSIZE_DEFAULT as i64,
            get: |c| i64::from(c.stream_idmp_maxsize),
            set: |c, v| c.stream_idmp_maxsize = v as u32,
        },
    },
    // A Brooklet extension: a new stream's MAXAGE (XCFGSET), milliseconds; 0 is none.
    Directive {
        name: "stream-max-age",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            default: 0,
            get: |c| c.stream_max_age as i64,
            set: |c, v| c.stream_max_age = v as u64,
        },
    },
    Directive {
        name: "aclfile",
        mutable: false,
        kind: Kind::Text {
            default: "",
            get: |c| path_or_empty(&c.aclfile),
            set: |c, v| c.aclfile = non_empty_path(v),
        },
    },
    Directive {
        name: "acllog-max-len",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            default: 128,
            get: |c| c.acllog_max_len as i64,
            set: |c, v| c.acllog_max_len = usize::try_from(v).unwrap_or(usize::MAX),
        },
    },
    Directive {
        name: "acl-pubsub-default",
        mutable: true,
        kind: Kind::Enum {
            choices: &["resetchannels", "allchannels"],
            default: "resetchannels",
            get: |c| {
                if c.acl_pubsub_allchannels {
                    "allchannels"
                } else {
                    "resetchannels"
                }
            },
            set: |c, v| c.acl_pubsub_allchannels = v == "allchannels",
        },
    },
    // Brooklet never forks into the background; accepted so redis.conf files load.
    Directive {
        name: "daemonize",
        mutable: false,
        kind: Kind::Ignored {
            accepts: Accepts::YesNo,
            shown: None,
        },
    },
    Directive {
        name: "metrics-port",
        mutable: false,
        kind: Kind::Port {
            default: 0,
            get: |c| c.metrics_port,
            set: |c, v| c.metrics_port = v,
        },
    },
    Directive {
        name: "slowlog-log-slower-than",
        mutable: true,
        kind: Kind::Int {
            min: -1,
            max: i64::MAX,
            default: 10_000,
            get: |c| c.slowlog_log_slower_than,
            set: |c, v| c.slowlog_log_slower_than = v,
        },
    },
    Directive {
        name: "slowlog-max-len",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            default: 128,
            get: |c| c.slowlog_max_len as i64,
            set: |c, v| c.slowlog_max_len = v as u64,
        },
    },
    Directive {
        name: "latency-monitor-threshold",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            default: 0,
            get: |c| c.latency_monitor_threshold as i64,
            set: |c, v| c.latency_monitor_threshold = v as u64,
        },
    },
    Directive {
        name: "latency-tracking",
        mutable: true,
        kind: Kind::Bool {
            default: true,
            get: |c| c.latency_tracking,
            set: |c, v| c.latency_tracking = v,
        },
    },
    Directive {
        name: "latency-tracking-info-percentiles",
        mutable: true,
        kind: Kind::Custom {
            default: "50 99 99.9",
            get: |c| percentiles_text(&c.latency_tracking_info_percentiles),
            set: set_percentiles,
        },
    },
    // Replication (server/src/replication): Redis's names; `slaveof` and the `slave-`
    // spellings are Redis's aliases.
    Directive {
        name: "replicaof",
        mutable: false,
        kind: Kind::Custom {
            default: "",
            get: super::repl::replicaof_text,
            set: super::repl::set_replicaof,
        },
    },
    Directive {
        name: "slaveof",
        mutable: false,
        kind: Kind::Custom {
            default: "",
            get: super::repl::replicaof_text,
            set: super::repl::set_replicaof,
        },
    },
    Directive {
        name: "masterauth",
        mutable: true,
        kind: Kind::Text {
            default: "",
            get: |c| c.repl.masterauth.clone().unwrap_or_default(),
            set: |c, v| c.repl.masterauth = super::repl::opt_text(v),
        },
    },
    Directive {
        name: "masteruser",
        mutable: true,
        kind: Kind::Text {
            default: "",
            get: |c| c.repl.masteruser.clone().unwrap_or_default(),
            set: |c, v| c.repl.masteruser = super::repl::opt_text(v),
        },
    },
    Directive {
        name: "repl-backlog-size",
        mutable: true,
        kind: Kind::Memory {
            min: 1,
            default: MB,
            unparsable: NOT_MEMORY,
            get: |c| c.repl.backlog_size,
            set: |c, v| c.repl.backlog_size = v,
        },
    },
    Directive {
        name: "replica-read-only",
        mutable: true,
        kind: Kind::Bool {
            default: true,
            get: |c| c.repl.read_only,
            set: |c, v| c.repl.read_only = v,
        },
    },
    Directive {
        name: "slave-read-only",
        mutable: true,
        kind: Kind::Bool {
            default: true,
            get: |c| c.repl.read_only,
            set: |c, v| c.repl.read_only = v,
        },
    },
    Directive {
        name: "replica-priority",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 100,
            get: |c| c.repl.priority,
            set: |c, v| c.repl.priority = v,
        },
    },
    Directive {
        name: "slave-priority",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 100,
            get: |c| c.repl.priority,
            set: |c, v| c.repl.priority = v,
        },
    },
    Directive {
        name: "replica-announce-ip",
        mutable: true,
        kind: Kind::Text {
            default: "",
            get: |c| c.repl.announce_ip.clone(),
            set: |c, v| c.repl.announce_ip = v.to_string(),
        },
    },
    Directive {
        name: "replica-announce-port",
        mutable: true,
        kind: Kind::Port {
            default: 0,
            get: |c| c.repl.announce_port,
            set: |c, v| c.repl.announce_port = v,
        },
    },
    Directive {
        name: "replica-announced",
        mutable: true,
        kind: Kind::Bool {
            default: true,
            get: |c| c.repl.announced,
            set: |c, v| c.repl.announced = v,
        },
    },
    Directive {
        name: "min-replicas-to-write",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 0,
            get: |c| c.repl.min_replicas_to_write,
            set: |c, v| c.repl.min_replicas_to_write = v,
        },
    },
    Directive {
        name: "min-replicas-max-lag",
        mutable: true,
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
            default: 10,
            get: |c| c.repl.min_replicas_max_lag,
            set: |c, v| c.repl.min_replicas_max_lag = v,
        },
    },
    Directive {
        name: "repl-ping-replica-period",
        mutable: true,
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
            default: 10,
            get: |c| c.repl.ping_period,
            set: |c, v| c.repl.ping_period = v,
        },
    },
    Directive {
        name: "repl-timeout",
        mutable: true,
        kind: Kind::Int {
            min: 1,
            max: i32::MAX as i64,
            default: 60,
            get: |c| c.repl.timeout,
            set: |c, v| c.repl.timeout = v,
        },
    },
];
