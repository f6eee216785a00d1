//! Replication settings (`replicaof`, `masterauth`, `repl-backlog-size`, ...), kept apart
//! from the other fields so the directives that hold them sit together.

use super::value::Refused;

/// What replication reads from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplConfig {
    /// `replicaof host port` given at start-up; None: a primary.
    pub replicaof: Option<(String, u16)>,
    /// `masterauth`: the password sent to the primary.
    pub masterauth: Option<String>,
    /// `masteruser`: the user AUTH names with `masterauth`.
    pub masteruser: Option<String>,
    /// `repl-backlog-size`, bytes.
    pub backlog_size: u64,
    /// `replica-read-only`.
    pub read_only: bool,
    /// `replica-priority` (Sentinel promotes the lowest above 0).
    pub priority: i64,
    /// `replica-announce-ip`.
    pub announce_ip: String,
    /// `replica-announce-port` (0: the listening port).
    pub announce_port: u16,
    /// `replica-announced`.
    pub announced: bool,
    /// `min-replicas-to-write`.
    pub min_replicas_to_write: i64,
    /// `min-replicas-max-lag`, seconds.
    pub min_replicas_max_lag: i64,
    /// `repl-ping-replica-period`, seconds.
    pub ping_period: i64,
    /// `repl-timeout`, seconds.
    pub timeout: i64,
}

/// `replicaof`'s value as CONFIG GET shows it.
pub(super) fn replicaof_text(c: &super::Config) -> String {
    match &c.repl.replicaof {
        Some((host, port)) => format!("{host} {port}"),
        None => String::new(),
    }
}

/// Sets `replicaof` from `host port`, `no one` or nothing.
pub(super) fn set_replicaof(c: &mut super::Config, v: &[&str]) -> Result<(), Refused> {
    let words: Vec<&str> = v.iter().flat_map(|w| w.split_whitespace()).collect();
    c.repl.replicaof = match words.as_slice() {
        [] => None,
        [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => None,
        [host, port] => {
            let port = port
                .parse::<u16>()
                .map_err(|_| Refused::Bad("Invalid master port".into()))?;
            Some(((*host).to_string(), port))
        }
        _ => return Err(Refused::Count),
    };
    Ok(())
}

/// An optional text setting: empty means unset.
pub(super) fn opt_text(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}
