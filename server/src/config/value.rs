//! Parsing and showing directive values: integers, memory sizes, yes/no, and the directives
//! with a grammar of their own (`bind`, `client-output-buffer-limit`,
//! `notify-keyspace-events`).

use std::path::PathBuf;

use std::borrow::Cow;

use super::{Config, ConfigError, OutputLimit};

pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(super) fn parse_yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// An integer as Redis's string2ll reads it (no `+`, no leading zeros), within bounds.
pub(super) fn parse_range(v: &str, min: i64, max: i64) -> Result<i64, String> {
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

/// A byte count in the largest binary unit that divides it: `1mb`, `1kb`, `1000`.
pub(super) fn memory_text(n: u64) -> String {
    for (unit, size) in [("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
        if n != 0 && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// Redis's eviction policies that evict only keys with a TTL. Brooklet has none, so they
/// evict nothing and refuse writes over the limit, exactly as `noeviction` does, and as Redis
/// does under them when no key has a TTL: accepted, each with its own meaning intact.
const NON_EVICTING_POLICIES: &[&str] = &[
    "noeviction",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
];

/// Redis's policies that evict any key. Brooklet does not delete streams to make room (they
/// are the data, with their consumer groups); accepting these without evicting would change
/// what they promise, so they are refused.
const EVICTING_POLICIES: &[&str] = &["allkeys-lru", "allkeys-lfu", "allkeys-random"];

/// `maxmemory-policy`: one of Redis's policy names, in any case.
/// `latency-tracking-info-percentiles`: numbers from 0 to 100, as Redis's `%f` trimmed.
pub(super) fn percentiles_text(ps: &[f64]) -> String {
    ps.iter()
        .map(|p| {
            let s = format!("{p:.6}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads `latency-tracking-info-percentiles`: any number of percentiles, none included.
pub(super) fn set_percentiles(c: &mut Config, values: &[&str]) -> Result<(), Refused> {
    let mut ps = Vec::with_capacity(values.len());
    for v in values.iter().flat_map(|v| v.split_whitespace()) {
        let p: f64 = v.parse().map_err(|_| {
            Refused::Bad("Invalid latency-tracking-info-percentiles parameters".into())
        })?;
        if !(0.0..=100.0).contains(&p) {
            return Err(Refused::Bad(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            ));
        }
        ps.push(p);
    }
    c.latency_tracking_info_percentiles = ps;
    Ok(())
}

pub(super) fn set_maxmemory_policy(c: &mut Config, values: &[&str]) -> Result<(), Refused> {
    let v = one(values)?;
    if let Some(p) = NON_EVICTING_POLICIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(v))
    {
        c.maxmemory_policy = p;
        return Ok(());
    }
    if EVICTING_POLICIES.iter().any(|p| p.eq_ignore_ascii_case(v)) {
        return Err(Refused::Bad(
            "Brooklet never evicts keys: use noeviction (writes over maxmemory are refused)".into(),
        ));
    }
    Err(Refused::Bad(
        "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".into(),
    ))
}

/// `bind`: one or more addresses, kept as given.
pub(super) fn set_bind(c: &mut Config, values: &[&str]) -> Result<(), Refused> {
    if values.is_empty() {
        return Err(Refused::Count);
    }
    c.bind = values.iter().map(|v| v.to_string()).collect();
    Ok(())
}

/// A file directive's value: the empty string (Redis's way to unset it) is None.
pub(super) fn non_empty_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

pub(super) fn path_or_empty(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `notify-keyspace-events`: Redis's class letters, stored in Redis's canonical spelling.
pub(super) fn set_notify_keyspace_events(c: &mut Config, values: &[&str]) -> Result<(), Refused> {
    let v = one(values)?;
    if !v.chars().all(|c| "gx$lshzxeKEtmdnA".contains(c)) {
        return Err(Refused::Bad(
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into(),
        ));
    }
    c.notify_keyspace_events = canonical_keyspace_events(v);
    c.notify_new_keys = v.contains('n');
    Ok(())
}

/// The `notify-keyspace-events` classes `A` stands for (`m` key-miss and `n` new-key events
/// are not among them).
pub const ALL_EVENT_CLASSES: &str = "g$lshzxetd";

/// `notify-keyspace-events` as Redis stores and shows it (CONFIG GET): `A` when every class
/// of [`ALL_EVENT_CLASSES`] is on, else the classes in Redis's order, then `K`, `E` and `m`; any
/// order and repetition in, one spelling out ("EKA" and "AKE" both read back "AKE").
pub fn canonical_keyspace_events(flags: &str) -> String {
    let on = |c: char| flags.contains(c) || (flags.contains('A') && ALL_EVENT_CLASSES.contains(c));
    let mut out = String::new();
    if ALL_EVENT_CLASSES.chars().all(on) {
        // As in Redis, `n` is not shown next to `A` (no `n` event is published here anyway).
        out.push('A');
    } else {
        out.extend("g$lshzxetdn".chars().filter(|&c| on(c)));
    }
    out.extend("KEm".chars().filter(|&c| on(c)));
    out
}

/// `client-output-buffer-limit` as CONFIG GET shows it: every class, Redis's names.
pub(super) fn output_limits(c: &Config) -> String {
    let l = |o: &OutputLimit| format!("{} {} {}", o.hard, o.soft, o.soft_seconds);
    format!(
        "normal {} slave {} pubsub {}",
        l(&c.output_limit_normal),
        l(&c.output_limit_replica),
        l(&c.output_limit_pubsub)
    )
}

/// `client-output-buffer-limit`: `<class> <hard> <soft> <soft seconds>`, repeated.
pub(super) fn set_output_limits(c: &mut Config, values: &[&str]) -> Result<(), Refused> {
    // One value holding the whole spec (CONFIG SET) or the words themselves (a conf line).
    let words: Vec<&str> = if let [spec] = values {
        spec.split_whitespace().collect()
    } else {
        values.to_vec()
    };
    let refuse = |why: &'static str| Refused::Bad(why.into());
    // No words at all is accepted and changes nothing, as in Redis.
    if !words.len().is_multiple_of(4) {
        return Err(refuse(
            "Wrong number of arguments in buffer limit configuration.",
        ));
    }
    // Every class is checked before any is changed, as in Redis.
    let mut parsed = Vec::with_capacity(words.len() / 4);
    for spec in words.chunks(4) {
        let parse = |s: &str| {
            parse_memory(s).ok_or(refuse(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            ))
        };
        let slot: fn(&mut Config) -> &mut OutputLimit = match spec[0].to_ascii_lowercase().as_str()
        {
            "normal" => |c| &mut c.output_limit_normal,
            "pubsub" => |c| &mut c.output_limit_pubsub,
            "replica" | "slave" => |c| &mut c.output_limit_replica,
            _ => {
                return Err(refuse(
                    "Invalid client class specified in buffer limit configuration.",
                ));
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
        *slot(c) = limit;
    }
    Ok(())
}

/// Why a directive refused its values, before its name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Too many or too few values.
    Count,
    /// The value is not acceptable, with Redis's reason.
    Bad(Cow<'static, str>),
}

impl Refused {
    /// The error for directive `name`.
    pub(super) fn naming(self, name: &str) -> ConfigError {
        match self {
            Refused::Count => ConfigError::UnknownDirective(name.into()),
            Refused::Bad(reason) => ConfigError::BadValue {
                name: name.into(),
                reason: reason.into_owned(),
            },
        }
    }
}

impl From<String> for Refused {
    fn from(reason: String) -> Self {
        Refused::Bad(reason.into())
    }
}

/// The only value of a one-value directive.
pub(super) fn one<'a>(values: &[&'a str]) -> Result<&'a str, Refused> {
    match values {
        [v] => Ok(v),
        _ => Err(Refused::Count),
    }
}
