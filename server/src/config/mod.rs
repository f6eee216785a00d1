//! Server configuration: defaults, `--directive value` flags, redis.conf-style files, and the
//! CONFIG GET / SET view of the same parameters under the same names.
//!
//! Every directive is described once, in [`DIRECTIVES`] (`table.rs`): its name, its kind of
//! value with bounds and default, whether CONFIG SET may change it, and how it is read from and
//! written to [`Config`]. Defaults, flags, config files and CONFIG GET / SET all go through that
//! table. Hot paths never see it: they read [`Config`]'s plain fields under the live config's
//! read lock.
//!
//! - `directive.rs`: the descriptor types and how each kind of value is parsed and shown.
//! - `table.rs`: the table itself.
//! - `value.rs`: value parsers shared by several directives (integers, memory sizes, ...).
//! - `file.rs`: command-line arguments and config files.
//! - `command.rs`: CONFIG GET's pattern matching and CONFIG SET's all-or-nothing changes.
//! - `help.rs`: `--help`, listed from the table.

mod command;
mod directive;
mod file;
mod help;
mod repl;
mod rewrite;
mod table;
#[cfg(test)]
mod tests;
mod value;

use std::fmt;
use std::path::PathBuf;

pub use command::SetError;
pub use directive::{Accepts, Directive, Kind};
pub use help::usage;
pub use repl::ReplConfig;
pub use rewrite::rewrite;
pub use table::{DEFAULT_IO_THREADS, DIRECTIVES};
pub use value::Refused;
pub use value::{ALL_EVENT_CLASSES, canonical_keyspace_events, parse_memory};

/// When the persistence layer fsyncs (Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before each write's reply, with group commit.
    Always,
    /// At least once a second (every 100 ms while writes arrive).
    Everysec,
    /// Left to the operating system.
    No,
}

impl Fsync {
    /// The directive's value as CONFIG GET and INFO show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// Whether TLS clients must present a certificate (`tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAuthClients {
    /// A certificate signed by `tls-ca-cert-file` is required (Redis's default).
    Yes,
    /// No certificate is asked for.
    No,
    /// A certificate is asked for; one is checked when given, none is also accepted.
    Optional,
}

impl TlsAuthClients {
    /// The directive's value as CONFIG GET shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::No => "no",
            TlsAuthClients::Optional => "optional",
        }
    }
}

/// Limits on a class of client's pending output (`client-output-buffer-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputLimit {
    /// Disconnect at once above this many bytes (0 = no limit).
    pub hard: u64,
    /// Disconnect when above this many bytes for `soft_seconds` (0 = no limit).
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

/// Every configurable parameter, named as in redis.conf. The defaults, bounds and spellings
/// are those of [`DIRECTIVES`].
#[derive(Debug, Clone)]
pub struct Config {
    /// `bind`: addresses to listen on.
    pub bind: Vec<String>,
    /// `port`: plain TCP port. 0 beside a `tls-port` means no plain listener (TLS only, as in
    /// Redis); 0 without one picks a free port.
    pub port: u16,
    /// `tls-port`: TLS port; 0 (the default) means no TLS listener.
    pub tls_port: u16,
    /// `metrics-port` (a Brooklet extension): the Prometheus endpoint's port, on the RESP
    /// listener's address; 0 (the default) means none.
    pub metrics_port: u16,
    /// `tls-cert-file`: the server's certificate chain, PEM.
    pub tls_cert_file: Option<PathBuf>,
    /// `tls-key-file`: the private key of `tls-cert-file`, PEM.
    pub tls_key_file: Option<PathBuf>,
    /// `tls-ca-cert-file`: the CA certificates client certificates are checked against, PEM.
    pub tls_ca_cert_file: Option<PathBuf>,
    /// `tls-auth-clients`: whether TLS clients must present a certificate.
    pub tls_auth_clients: TlsAuthClients,
    /// `dir`: the data directory.
    pub dir: PathBuf,
    /// `requirepass`: password of the `default` user; None = no authentication.
    pub requirepass: Option<Vec<u8>>,
    /// `aclfile`: the ACL file ACL LOAD and SAVE use, read at start-up; None = none.
    pub aclfile: Option<PathBuf>,
    /// `acllog-max-len`: entries ACL LOG keeps.
    pub acllog_max_len: usize,
    /// `acl-pubsub-default allchannels`: new users may use every channel (Redis 7's default
    /// is `resetchannels`).
    pub acl_pubsub_allchannels: bool,
    /// `appendfsync`: durability policy.
    pub appendfsync: Fsync,
    /// `maxclients`: connected clients allowed at once.
    pub maxclients: usize,
    /// `loglevel`: debug, verbose, notice, warning or nothing.
    pub loglevel: String,
    /// `databases`: number of SELECT-able databases.
    pub databases: usize,
    /// `proto-max-bulk-len`: largest bulk string a client may send.
    pub proto_max_bulk_len: u64,
    /// `client-query-buffer-limit`: largest unprocessed input a client may accumulate.
    pub client_query_buffer_limit: u64,
    /// `stream-node-max-entries`: entries per stream node (0 = unlimited).
    pub stream_node_max_entries: u64,
    /// `stream-node-max-bytes`: bytes per stream node (0 = unlimited).
    pub stream_node_max_bytes: u64,
    /// `stream-idmp-duration`: a new stream's IDMP-DURATION, seconds.
    pub stream_idmp_duration: u32,
    /// `stream-idmp-maxsize`: a new stream's IDMP-MAXSIZE.
    pub stream_idmp_maxsize: u32,
    /// `stream-max-age` (a Brooklet extension): a new stream's MAXAGE, milliseconds (0:
    /// none), removed under KEEPREF.
    pub stream_max_age: u64,
    /// `stream-cache-bytes`: node data each stream keeps in memory besides its newest node;
    /// older nodes are read back from disk when a command needs them.
    pub stream_cache_bytes: u64,
    /// `tail-log-segment-bytes`: size at which a tail-log segment is closed.
    pub tail_log_segment_bytes: u64,
    /// `maxmemory`: bytes in use past which commands that add data are refused; 0 for none.
    pub maxmemory: u64,
    /// `maxmemory-policy`: `noeviction` or one of the `volatile-*` policies, which evict
    /// nothing here (no key has a TTL) and so behave as `noeviction`, as in Redis.
    pub maxmemory_policy: &'static str,
    /// `lfu-log-factor`: how slowly the access counter OBJECT FREQ reports grows.
    pub lfu_log_factor: i64,
    /// `lfu-decay-time`: minutes for the access counter to lose one.
    pub lfu_decay_time: i64,
    /// `tail-log-checkpoint-bytes`: bytes of closed segments the background checkpoint waits
    /// for before it writes their appends into fjall (start-up after a crash replays up to
    /// about this plus a segment).
    pub tail_log_checkpoint_bytes: u64,
    /// `notify-keyspace-events`: keyspace notification classes, Redis's flag letters.
    pub notify_keyspace_events: String,
    /// Whether `notify-keyspace-events` has `n` (new keys), which its canonical spelling
    /// leaves out next to `A` although the class stays on, as in Redis.
    pub notify_new_keys: bool,
    /// `client-output-buffer-limit` for normal clients.
    pub output_limit_normal: OutputLimit,
    /// `client-output-buffer-limit` for pub/sub clients.
    pub output_limit_pubsub: OutputLimit,
    /// `client-output-buffer-limit` for replicas: kept and shown as set, as Redis does,
    /// though Brooklet has no replicas to apply it to.
    pub output_limit_replica: OutputLimit,
    /// `timeout`: close idle clients after this many seconds (0 = never).
    pub timeout: u64,
    /// `protected-mode`: refuse non-loopback clients when no password is set.
    pub protected_mode: bool,
    /// `enable-debug-command`: no, yes or local.
    pub enable_debug_command: String,
    /// `tcp-keepalive`: seconds between keepalive probes (0 = off).
    pub tcp_keepalive: u64,
    /// `hz`: background task frequency, reported for compatibility.
    pub hz: u64,
    /// `jemalloc-bg-thread`: let jemalloc's background threads return freed memory to the OS.
    pub jemalloc_bg_thread: bool,
    /// `io-threads`: threads that serve clients (the runtime's workers); start-up only.
    pub io_threads: usize,
    /// The config file the server was started with (absolute), which CONFIG REWRITE
    /// rewrites; None when started without one.
    pub config_file: Option<PathBuf>,
    /// `slowlog-log-slower-than`: microseconds from which a command is logged; negative
    /// disables the slow log, 0 logs every command.
    pub slowlog_log_slower_than: i64,
    /// `slowlog-max-len`: entries the slow log keeps.
    pub slowlog_max_len: u64,
    /// `latency-monitor-threshold`: milliseconds from which LATENCY records an event; 0 is off.
    pub latency_monitor_threshold: u64,
    /// `latency-tracking`: per-command latency histograms (INFO latencystats).
    pub latency_tracking: bool,
    /// `latency-tracking-info-percentiles`: the percentiles INFO latencystats shows.
    pub latency_tracking_info_percentiles: Vec<f64>,
    /// Replication settings (`replicaof`, `masterauth`, `repl-backlog-size`, ...).
    pub repl: ReplConfig,
}

impl Default for Config {
    /// Every directive at the default its [`DIRECTIVES`] entry gives.
    fn default() -> Self {
        // Placeholders only: the loop below overwrites every field from the table.
        let mut config = Config {
            bind: Vec::new(),
            port: 0,
            tls_port: 0,
            metrics_port: 0,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_cert_file: None,
            tls_auth_clients: TlsAuthClients::Yes,
            dir: PathBuf::new(),
            requirepass: None,
            aclfile: None,
            acllog_max_len: 128,
            acl_pubsub_allchannels: false,
            appendfsync: Fsync::Everysec,
            maxclients: 0,
            loglevel: String::new(),
            databases: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            stream_node_max_entries: 0,
            stream_node_max_bytes: 0,
            stream_idmp_duration: 0,
            stream_idmp_maxsize: 0,
            stream_max_age: 0,
            stream_cache_bytes: 0,
            tail_log_segment_bytes: 0,
            maxmemory: 0,
            maxmemory_policy: "noeviction",
            lfu_log_factor: 0,
            lfu_decay_time: 0,
            tail_log_checkpoint_bytes: 0,
            notify_keyspace_events: String::new(),
            notify_new_keys: false,
            output_limit_normal: OutputLimit::default(),
            output_limit_pubsub: OutputLimit::default(),
            output_limit_replica: OutputLimit::default(),
            timeout: 0,
            protected_mode: false,
            enable_debug_command: String::new(),
            tcp_keepalive: 0,
            hz: 0,
            jemalloc_bg_thread: false,
            io_threads: 0,
            config_file: None,
            slowlog_log_slower_than: 0,
            slowlog_max_len: 0,
            latency_monitor_threshold: 0,
            latency_tracking: false,
            latency_tracking_info_percentiles: Vec::new(),
            repl: ReplConfig::default(),
        };
        for directive in DIRECTIVES {
            directive.reset(&mut config);
        }
        config
    }
}

/// Why a directive could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// No such parameter, or the wrong number of values.
    UnknownDirective(String),
    /// The value is not acceptable for the parameter.
    BadValue { name: String, reason: String },
    /// The parameter cannot be changed at run time.
    Immutable(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownDirective(name) => {
                write!(f, "Bad directive or wrong number of arguments: '{name}'")
            }
            ConfigError::BadValue { name, reason } => write!(f, "'{name}': {reason}"),
            ConfigError::Immutable(name) => write!(f, "'{name}' can't be set while running"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The directive named `name` (any case).
pub fn find_directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

impl Config {
    /// Looks up a parameter's current value as CONFIG GET shows it (`name` in lower case).
    pub fn get(&self, name: &str) -> Option<String> {
        DIRECTIVES
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.get(self))
    }

    /// Sets a parameter from its values (most take one; `bind` and `save` take several).
    pub fn set(&mut self, name: &str, values: &[&str]) -> Result<(), ConfigError> {
        let Some(d) = find_directive(name) else {
            return Err(ConfigError::UnknownDirective(name.to_ascii_lowercase()));
        };
        d.set(self, values)
            .map_err(|refused| refused.naming(d.name))
    }

    /// The parameter's canonical name if CONFIG SET may change it: not unknown, not
    /// start-up only.
    pub fn settable(&self, name: &str) -> Result<String, ConfigError> {
        match find_directive(name) {
            None => Err(ConfigError::UnknownDirective(name.to_ascii_lowercase())),
            Some(d) if !d.mutable => Err(ConfigError::Immutable(d.name.into())),
            Some(d) => Ok(d.name.into()),
        }
    }
}
