//! CONFIG GET and CONFIG SET over the directive table, with Redis's matching rules and texts;
//! the command handlers only turn the results into replies and apply the new configuration.

use std::borrow::Cow;
use std::fmt;

use brooklet_pubsub::glob_match;
use bytes::Bytes;

use super::directive::Directive;
use super::value::Refused;
use super::{Config, ConfigError, DIRECTIVES, find_directive};

/// Why CONFIG SET refused its arguments; `Display` is Redis's error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// No such parameter (named as typed).
    Unknown(String),
    /// A start-up-only parameter (named as typed).
    Immutable(String),
    /// The same parameter twice (named as typed the second time).
    Duplicate(String),
    /// A value the parameter refuses (the parameter's own name).
    BadValue { name: &'static str, reason: String },
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = |f: &mut fmt::Formatter<'_>, name: &str, why: &str| {
            write!(
                f,
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            )
        };
        match self {
            SetError::Unknown(name) => write!(
                f,
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ),
            SetError::Immutable(name) => failed(f, name, "can't set immutable config"),
            SetError::Duplicate(name) => failed(f, name, "duplicate parameter"),
            SetError::BadValue { name, reason } => failed(f, name, reason),
        }
    }
}

impl std::error::Error for SetError {}

impl Config {
    /// CONFIG GET: `(name, value)` of every directive one of `patterns` matches (glob-style,
    /// any case), each directive once, in pattern order then table order. As in Redis, a
    /// plain name is answered as it was typed, a pattern with the directives' own names.
    pub fn matching(&self, patterns: &[Bytes]) -> Vec<(Bytes, String)> {
        let mut pairs = Vec::new();
        let mut listed: Vec<&'static str> = Vec::new();
        for pattern in patterns {
            let lower = pattern.to_ascii_lowercase();
            let exact = !lower.iter().any(|c| b"[*?".contains(c));
            for d in DIRECTIVES {
                let hit = if exact {
                    d.name.as_bytes() == lower
                } else {
                    glob_match(&lower, d.name.as_bytes())
                };
                if !hit || listed.contains(&d.name) {
                    continue;
                }
                if let Some(value) = d.get(self) {
                    listed.push(d.name);
                    let shown = if exact {
                        pattern.clone()
                    } else {
                        Bytes::from_static(d.name.as_bytes())
                    };
                    pairs.push((shown, value));
                }
            }
        }
        pairs
    }

    /// CONFIG SET: this configuration with `args` (name, value, name, value, ...) applied,
    /// all or nothing, as Redis applies a multi-parameter CONFIG SET. As in Redis every name
    /// is checked (unknown, start-up only, given twice) before any value.
    pub fn changed(&self, args: &[Bytes]) -> Result<Config, SetError> {
        let mut chosen: Vec<(&'static Directive, Cow<'_, str>)> = Vec::new();
        for pair in args.chunks_exact(2) {
            let typed = String::from_utf8_lossy(&pair[0]);
            let Some(d) = find_directive(&typed) else {
                return Err(SetError::Unknown(typed.into_owned()));
            };
            if !d.mutable {
                return Err(SetError::Immutable(typed.into_owned()));
            }
            if chosen.iter().any(|(seen, _)| seen.name == d.name) {
                return Err(SetError::Duplicate(typed.into_owned()));
            }
            chosen.push((d, String::from_utf8_lossy(&pair[1])));
        }
        let mut next = self.clone();
        for (d, value) in chosen {
            d.set_live(&mut next, &[&value]).map_err(|refused| {
                let reason = match refused {
                    Refused::Bad(reason) => reason.into_owned(),
                    // Every directive takes one value; kept for completeness.
                    Refused::Count => ConfigError::UnknownDirective(d.name.into()).to_string(),
                };
                SetError::BadValue {
                    name: d.name,
                    reason,
                }
            })?;
        }
        Ok(next)
    }
}
