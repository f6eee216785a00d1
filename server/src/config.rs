//! Server configuration: defaults, `--directive value` flags, redis.conf-style files, and the
//! CONFIG GET / SET view of the same parameters under the same names.

use std::fmt;
use std::path::PathBuf;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Disconnect at once above this many bytes (0 = no limit).
    pub hard: u64,
    /// Disconnect when above this many bytes for `soft_seconds` (0 = no limit).
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

/// Every configurable parameter, named as in redis.conf.
#[derive(Debug, Clone)]
pub struct Config {
    /// `bind`: addresses to listen on.
    pub bind: Vec<String>,
    /// `port`: plain TCP port. 0 beside a `tls-port` means no plain listener (TLS only, as in
    /// Redis); 0 without one picks a free port.
    pub port: u16,
    /// `tls-port`: TLS port; 0 (the default) means no TLS listener.
    pub tls_port: u16,
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
    /// `stream-cache-bytes`: node data each stream keeps in memory besides its newest node;
    /// older nodes are read back from disk when a command needs them.
    pub stream_cache_bytes: u64,
    /// `tail-log-segment-bytes`: size at which a tail-log segment is closed.
    pub tail_log_segment_bytes: u64,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".into()],
            port: 6379,
            tls_port: 0,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_cert_file: None,
            tls_auth_clients: TlsAuthClients::Yes,
            dir: PathBuf::from("./brooklet-data"),
            requirepass: None,
            appendfsync: Fsync::Everysec,
            maxclients: 10_000,
            loglevel: "notice".into(),
            databases: 16,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            stream_node_max_entries: 100,
            stream_node_max_bytes: 4096,
            stream_cache_bytes: brooklet_persistence::DEFAULT_STREAM_CACHE_BYTES as u64,
            tail_log_segment_bytes: brooklet_persistence::DEFAULT_TAIL_SEGMENT_BYTES,
            tail_log_checkpoint_bytes: brooklet_persistence::DEFAULT_CHECKPOINT_BYTES,
            notify_keyspace_events: String::new(),
            notify_new_keys: false,
            output_limit_normal: OutputLimit {
                hard: 0,
                soft: 0,
                soft_seconds: 0,
            },
            output_limit_pubsub: OutputLimit {
                hard: 32 * 1024 * 1024,
                soft: 8 * 1024 * 1024,
                soft_seconds: 60,
            },
            output_limit_replica: OutputLimit {
                hard: 256 * 1024 * 1024,
                soft: 64 * 1024 * 1024,
                soft_seconds: 60,
            },
            timeout: 0,
            protected_mode: true,
            jemalloc_bg_thread: true,
            io_threads: DEFAULT_IO_THREADS,
            enable_debug_command: "no".into(),
            tcp_keepalive: 300,
            hz: 10,
        }
    }
}

/// `io-threads` unless set: one thread serves every client, as in Redis (whose default is
/// also 1). On this 2-core machine, where the load generator needs the other core, a second
/// worker only added contention for the shard locks (a worker preempted while holding one
/// stalls the other): one worker did as well or better in every benchmark, XADD -P1 by about
/// 10%, and cut fan-out's p99 to 10 subscribers from 0.9-2.0 ms to 0.4-0.6 ms.
pub const DEFAULT_IO_THREADS: usize = 1;

/// Every parameter name CONFIG GET knows, in the order it lists them.
pub const PARAMETERS: &[&str] = &[
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
    "jemalloc-bg-thread",
    "io-threads",
];

/// Parameters that only take effect at start-up; CONFIG SET refuses them.
const IMMUTABLE: &[&str] = &[
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
    "appendonly",
    "daemonize",
    "io-threads",
];

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

impl Config {
    /// Looks up a parameter's current value as CONFIG GET shows it.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "bind" => self.bind.join(" "),
            "port" => self.port.to_string(),
            "tls-port" => self.tls_port.to_string(),
            "tls-cert-file" => path_or_empty(&self.tls_cert_file),
            "tls-key-file" => path_or_empty(&self.tls_key_file),
            "tls-ca-cert-file" => path_or_empty(&self.tls_ca_cert_file),
            "tls-auth-clients" => self.tls_auth_clients.as_str().into(),
            "dir" => self.dir.display().to_string(),
            "requirepass" => self
                .requirepass
                .as_deref()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            "appendfsync" => match self.appendfsync {
                Fsync::Always => "always",
                Fsync::Everysec => "everysec",
                Fsync::No => "no",
            }
            .into(),
            // Every write is journaled by the store; there is no way to turn it off.
            "appendonly" => "yes".into(),
            "save" => String::new(),
            "maxclients" => self.maxclients.to_string(),
            "loglevel" => self.loglevel.clone(),
            "databases" => self.databases.to_string(),
            "proto-max-bulk-len" => self.proto_max_bulk_len.to_string(),
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "stream-node-max-entries" => self.stream_node_max_entries.to_string(),
            "stream-node-max-bytes" => self.stream_node_max_bytes.to_string(),
            "stream-cache-bytes" => self.stream_cache_bytes.to_string(),
            "tail-log-segment-bytes" => self.tail_log_segment_bytes.to_string(),
            "tail-log-checkpoint-bytes" => self.tail_log_checkpoint_bytes.to_string(),
            "notify-keyspace-events" => self.notify_keyspace_events.clone(),
            "client-output-buffer-limit" => {
                let l = |o: &OutputLimit| format!("{} {} {}", o.hard, o.soft, o.soft_seconds);
                format!(
                    "normal {} slave {} pubsub {}",
                    l(&self.output_limit_normal),
                    l(&self.output_limit_replica),
                    l(&self.output_limit_pubsub)
                )
            }
            "timeout" => self.timeout.to_string(),
            "protected-mode" => yes_no(self.protected_mode).into(),
            "jemalloc-bg-thread" => yes_no(self.jemalloc_bg_thread).into(),
            "io-threads" => self.io_threads.to_string(),
            "enable-debug-command" => self.enable_debug_command.clone(),
            "tcp-keepalive" => self.tcp_keepalive.to_string(),
            "hz" => self.hz.to_string(),
            "maxmemory" => "0".into(),
            _ => return None,
        })
    }

    /// Sets a parameter from its values (most take one; `bind` and `save` take several).
    pub fn set(&mut self, name: &str, values: &[&str]) -> Result<(), ConfigError> {
        let name = name.to_ascii_lowercase();
        let bad = |reason: &str| ConfigError::BadValue {
            name: name.clone(),
            reason: reason.into(),
        };
        let one = || match values {
            [v] => Ok(*v),
            _ => Err(ConfigError::UnknownDirective(name.clone())),
        };
        match name.as_str() {
            "bind" => {
                if values.is_empty() {
                    return Err(ConfigError::UnknownDirective(name));
                }
                self.bind = values.iter().map(|v| v.to_string()).collect();
            }
            "port" => {
                self.port = one()?
                    .parse()
                    .map_err(|_| bad("argument must be between 0 and 65535"))?
            }
            "tls-port" => {
                self.tls_port = one()?
                    .parse()
                    .map_err(|_| bad("argument must be between 0 and 65535"))?
            }
            "tls-cert-file" => self.tls_cert_file = non_empty_path(one()?),
            "tls-key-file" => self.tls_key_file = non_empty_path(one()?),
            "tls-ca-cert-file" => self.tls_ca_cert_file = non_empty_path(one()?),
            "tls-auth-clients" => {
                self.tls_auth_clients = match one()?.to_ascii_lowercase().as_str() {
                    "yes" => TlsAuthClients::Yes,
                    "no" => TlsAuthClients::No,
                    "optional" => TlsAuthClients::Optional,
                    _ => {
                        return Err(bad(
                            "argument(s) must be one of the following: no, yes, optional",
                        ));
                    }
                }
            }
            "dir" => self.dir = PathBuf::from(one()?),
            "requirepass" => {
                let v = one()?;
                self.requirepass = if v.is_empty() {
                    None
                } else {
                    Some(v.as_bytes().to_vec())
                };
            }
            "appendfsync" => {
                self.appendfsync = match one()?.to_ascii_lowercase().as_str() {
                    "always" => Fsync::Always,
                    "everysec" => Fsync::Everysec,
                    "no" => Fsync::No,
                    _ => {
                        return Err(bad(
                            "argument(s) must be one of the following: everysec, always, no",
                        ));
                    }
                }
            }
            "maxclients" => {
                self.maxclients = parse_range(one()?, 1, 1_000_000).map_err(|r| bad(&r))? as usize
            }
            "loglevel" => {
                let v = one()?.to_ascii_lowercase();
                if !["debug", "verbose", "notice", "warning", "nothing"].contains(&v.as_str()) {
                    return Err(bad(
                        "argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
                    ));
                }
                self.loglevel = v;
            }
            "databases" => {
                self.databases = parse_range(one()?, 1, 1_000_000).map_err(|r| bad(&r))? as usize
            }
            "io-threads" => {
                self.io_threads = parse_range(one()?, 1, 128).map_err(|r| bad(&r))? as usize
            }
            "proto-max-bulk-len" => {
                self.proto_max_bulk_len =
                    parse_memory(one()?).ok_or_else(|| bad("argument must be a memory value"))?;
                if self.proto_max_bulk_len < 1024 * 1024 {
                    return Err(bad("argument must be a memory value of at least 1mb"));
                }
            }
            "client-query-buffer-limit" => {
                self.client_query_buffer_limit =
                    parse_memory(one()?).ok_or_else(|| bad("argument must be a memory value"))?;
                if self.client_query_buffer_limit < 1024 * 1024 {
                    return Err(bad("argument must be a memory value of at least 1mb"));
                }
            }
            "stream-node-max-entries" => {
                self.stream_node_max_entries =
                    parse_range(one()?, 0, i64::MAX).map_err(|r| bad(&r))? as u64
            }
            "stream-node-max-bytes" => {
                self.stream_node_max_bytes =
                    parse_memory(one()?).ok_or_else(|| bad("argument must be a memory value"))?
            }
            "stream-cache-bytes" => {
                self.stream_cache_bytes =
                    parse_memory(one()?).ok_or_else(|| bad("argument must be a memory value"))?
            }
            "tail-log-segment-bytes" => {
                self.tail_log_segment_bytes = parse_memory(one()?)
                    .filter(|&n| n >= 1024)
                    .ok_or_else(|| bad("argument must be a memory value of at least 1kb"))?
            }
            "tail-log-checkpoint-bytes" => {
                self.tail_log_checkpoint_bytes =
                    parse_memory(one()?).ok_or_else(|| bad("argument must be a memory value"))?
            }
            "notify-keyspace-events" => {
                let v = one()?;
                if !v.chars().all(|c| "gx$lshzxeKEtmdnA".contains(c)) {
                    return Err(bad("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."));
                }
                self.notify_keyspace_events = crate::notify::canonical_keyspace_events(v);
                self.notify_new_keys = v.contains('n');
            }
            "client-output-buffer-limit" => self.set_output_limits(values).map_err(|r| bad(&r))?,
            "timeout" => {
                self.timeout =
                    parse_range(one()?, 0, i64::from(i32::MAX)).map_err(|r| bad(&r))? as u64
            }
            "protected-mode" => {
                self.protected_mode =
                    parse_yes_no(one()?).ok_or_else(|| bad("argument must be 'yes' or 'no'"))?
            }
            "jemalloc-bg-thread" => {
                self.jemalloc_bg_thread =
                    parse_yes_no(one()?).ok_or_else(|| bad("argument must be 'yes' or 'no'"))?
            }
            "enable-debug-command" => {
                let v = one()?.to_ascii_lowercase();
                if !["no", "yes", "local"].contains(&v.as_str()) {
                    return Err(bad(
                        "argument(s) must be one of the following: no, yes, local",
                    ));
                }
                self.enable_debug_command = v;
            }
            "tcp-keepalive" => {
                self.tcp_keepalive =
                    parse_range(one()?, 0, i64::from(i32::MAX)).map_err(|r| bad(&r))? as u64
            }
            "hz" => self.hz = parse_range(one()?, 1, 500).map_err(|r| bad(&r))? as u64,
            // Accepted so redis.conf files written for Redis load; Brooklet has no use for them.
            "appendonly" | "daemonize" => {
                parse_yes_no(one()?).ok_or_else(|| bad("argument must be 'yes' or 'no'"))?;
            }
            "save" => {}
            "maxmemory" => {
                parse_memory(one()?).ok_or_else(|| bad("argument must be a memory value"))?;
            }
            _ => return Err(ConfigError::UnknownDirective(name)),
        }
        Ok(())
    }

    /// The parameter's canonical name if CONFIG SET may change it: not unknown, not
    /// start-up only.
    pub fn settable(&self, name: &str) -> Result<String, ConfigError> {
        let lower = name.to_ascii_lowercase();
        if IMMUTABLE.contains(&lower.as_str()) {
            return Err(ConfigError::Immutable(lower));
        }
        if self.get(&lower).is_none() {
            return Err(ConfigError::UnknownDirective(lower));
        }
        Ok(lower)
    }

    fn set_output_limits(&mut self, values: &[&str]) -> Result<(), String> {
        // One value holding the whole spec (CONFIG SET) or the words themselves (a conf line).
        let words: Vec<&str> = if values.len() == 1 {
            values[0].split_whitespace().collect()
        } else {
            values.to_vec()
        };
        // No words at all is accepted and changes nothing, as in Redis.
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        // Every class is checked before any is changed, as in Redis.
        let mut parsed = Vec::with_capacity(words.len() / 4);
        for spec in words.chunks(4) {
            let parse = |s: &str| {
                parse_memory(s).ok_or(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
                )
            };
            let slot: fn(&mut Self) -> &mut OutputLimit =
                match spec[0].to_ascii_lowercase().as_str() {
                    "normal" => |c| &mut c.output_limit_normal,
                    "pubsub" => |c| &mut c.output_limit_pubsub,
                    "replica" | "slave" => |c| &mut c.output_limit_replica,
                    _ => {
                        return Err(
                            "Invalid client class specified in buffer limit configuration.".into(),
                        );
                    }
                };
            let limit = OutputLimit {
                hard: parse(spec[1])?,
                soft: parse(spec[2])?,
                soft_seconds: parse(spec[3])?,
            };
            parsed.push((slot, limit));
        }
        for (slot, limit) in parsed {
            *slot(self) = limit;
        }
        Ok(())
    }

    /// Reads a redis.conf-style file: one `directive value...` per line, `#` comments.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "Fatal error, can't open config file '{}': {e}",
                path.display()
            )
        })?;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_config_line(line).ok_or_else(|| {
                config_file_error(n + 1, raw, "Unbalanced quotes in configuration line")
            })?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            self.set(name, &values)
                .map_err(|e| config_file_error(n + 1, raw, &e.to_string()))?;
        }
        Ok(())
    }

    /// Applies `--directive value ...` command-line arguments (and `--config FILE`).
    pub fn apply_args(&mut self, args: &[String]) -> Result<(), String> {
        let mut i = 0;
        while i < args.len() {
            let Some(name) = args[i].strip_prefix("--") else {
                if i == 0 {
                    // A bare first argument is a config file, as with redis-server.
                    self.load_file(std::path::Path::new(&args[0]))?;
                    i += 1;
                    continue;
                }
                return Err(format!(
                    "Unexpected argument '{}': directives are written --name value",
                    args[i]
                ));
            };
            let mut j = i + 1;
            while j < args.len() && !args[j].starts_with("--") {
                j += 1;
            }
            let values: Vec<&str> = args[i + 1..j].iter().map(String::as_str).collect();
            if name == "config" {
                let [file] = values.as_slice() else {
                    return Err("--config takes one file name".into());
                };
                self.load_file(std::path::Path::new(file))?;
            } else {
                self.set(name, &values)
                    .map_err(|e| format!("Invalid argument --{name}: {e}"))?;
            }
            i = j;
        }
        Ok(())
    }
}

fn config_file_error(line_no: usize, line: &str, reason: &str) -> String {
    format!(
        "\n*** FATAL CONFIG FILE ERROR (Brooklet {}) ***\nReading the configuration file, at line {line_no}\n>>> '{line}'\n{reason}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Splits a config line on whitespace, honouring double and single quotes.
fn split_config_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == first => break,
                    '\\' if first == '"' => word.push(chars.next()?),
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

/// A file directive's value: the empty string (Redis's way to unset it) is None.
fn non_empty_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

fn path_or_empty(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn parse_yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// An integer as Redis's string2ll reads it (no `+`, no leading zeros), within bounds.
fn parse_range(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = brooklet_resp::parse_int(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "argument must be between {min} and {max} inclusive"
        ))
    }
}

/// Parses a memory value as redis.conf does: `1024`, `100k`, `1kb`, `32mb`, `1gb`.
pub fn parse_memory(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
