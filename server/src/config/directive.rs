//! What a directive is: its name, whether CONFIG SET may change it, and its kind of value,
//! which carries the bounds, the default, Redis's refusal texts and the way to the field of
//! [`Config`] that holds it.

use super::Config;
use super::value::{Refused, memory_text, one, parse_memory, parse_range, parse_yes_no, yes_no};

/// One configuration directive, as a row of [`DIRECTIVES`](super::DIRECTIVES).
pub struct Directive {
    /// The name in redis.conf, CONFIG GET / SET and `--name` flags, lower case.
    pub name: &'static str,
    /// Whether CONFIG SET may change it; the others only take effect at start-up.
    pub mutable: bool,
    /// Its kind of value, with default, validation and field access.
    pub kind: Kind,
}

/// A directive's kind of value. `get` reads the value from [`Config`], `set` writes an
/// already-validated one.
pub enum Kind {
    /// `yes` or `no`, in any case.
    Bool {
        default: bool,
        get: fn(&Config) -> bool,
        set: fn(&mut Config, bool),
    },
    /// An integer as Redis's string2ll reads it (no `+`, no leading zeros), in `min..=max`.
    Int {
        min: i64,
        max: i64,
        default: i64,
        get: fn(&Config) -> i64,
        set: fn(&mut Config, i64),
    },
    /// A TCP port, 0 to 65535.
    Port {
        default: u16,
        get: fn(&Config) -> u16,
        set: fn(&mut Config, u16),
    },
    /// A byte count with an optional unit (`1024`, `100k`, `1kb`, `32mb`, `1gb`), at least
    /// `min`; `unparsable` is the refusal of a value that is no memory value at all.
    Memory {
        min: u64,
        default: u64,
        unparsable: &'static str,
        get: fn(&Config) -> u64,
        set: fn(&mut Config, u64),
    },
    /// One word of `choices`, in any case; a refusal lists them in this order.
    Enum {
        choices: &'static [&'static str],
        default: &'static str,
        get: fn(&Config) -> &str,
        set: fn(&mut Config, &'static str),
    },
    /// Any text (a path, a password); the empty string usually unsets it.
    Text {
        default: &'static str,
        get: fn(&Config) -> String,
        set: fn(&mut Config, &str),
    },
    /// A value with a grammar of its own, possibly several words; `default` is written in it.
    Custom {
        default: &'static str,
        get: fn(&Config) -> String,
        set: fn(&mut Config, &[&str]) -> Result<(), Refused>,
    },
    /// Accepted (and checked) so redis.conf files written for Redis load, but without effect;
    /// CONFIG GET shows `shown`, or does not list the directive when that is None.
    Ignored {
        accepts: Accepts,
        shown: Option<&'static str>,
    },
}

/// What an ignored directive's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// `yes` or `no`.
    YesNo,
    /// `yes` or `no` in files and flags; CONFIG SET takes only `yes`, so a tool that turns
    /// the feature on goes on, and one that turns it off learns it cannot.
    YesNoOnlyYesLive,
    /// A memory value.
    Memory,
    /// Any words, or none.
    Anything,
}

const NOT_YES_NO: &str = "argument must be 'yes' or 'no'";

fn yes_or_no(v: &str) -> Result<bool, Refused> {
    parse_yes_no(v).ok_or(Refused::Bad(NOT_YES_NO.into()))
}

impl Directive {
    /// The current value as CONFIG GET shows it; None if CONFIG GET does not list it.
    pub fn get(&self, c: &Config) -> Option<String> {
        Some(match &self.kind {
            Kind::Bool { get, .. } => yes_no(get(c)).into(),
            Kind::Int { get, .. } => get(c).to_string(),
            Kind::Port { get, .. } => get(c).to_string(),
            Kind::Memory { get, .. } => get(c).to_string(),
            Kind::Enum { get, .. } => get(c).into(),
            Kind::Text { get, .. } | Kind::Custom { get, .. } => get(c),
            Kind::Ignored { shown, .. } => (*shown)?.into(),
        })
    }

    /// Validates `values` and, if they are acceptable, writes them into `c`; on a refusal
    /// `c` is unchanged.
    pub fn set(&self, c: &mut Config, values: &[&str]) -> Result<(), Refused> {
        match &self.kind {
            Kind::Bool { set, .. } => set(c, yes_or_no(one(values)?)?),
            Kind::Int { min, max, set, .. } => set(c, parse_range(one(values)?, *min, *max)?),
            Kind::Port { set, .. } => {
                // Read by Rust's integer parser, not string2ll, as Brooklet always has.
                let port = one(values)?
                    .parse()
                    .map_err(|_| Refused::Bad("argument must be between 0 and 65535".into()))?;
                set(c, port)
            }
            Kind::Memory {
                min,
                unparsable,
                set,
                ..
            } => {
                let n = parse_memory(one(values)?).ok_or(Refused::Bad((*unparsable).into()))?;
                if n < *min {
                    return Err(format!(
                        "argument must be a memory value of at least {}",
                        memory_text(*min)
                    )
                    .into());
                }
                set(c, n)
            }
            Kind::Enum { choices, set, .. } => {
                let v = one(values)?;
                let Some(choice) = choices.iter().find(|choice| choice.eq_ignore_ascii_case(v))
                else {
                    return Err(format!(
                        "argument(s) must be one of the following: {}",
                        choices.join(", ")
                    )
                    .into());
                };
                set(c, choice)
            }
            Kind::Text { set, .. } => set(c, one(values)?),
            Kind::Custom { set, .. } => set(c, values)?,
            Kind::Ignored { accepts, .. } => match accepts {
                Accepts::YesNo | Accepts::YesNoOnlyYesLive => {
                    yes_or_no(one(values)?)?;
                }
                Accepts::Memory => {
                    parse_memory(one(values)?)
                        .ok_or(Refused::Bad("argument must be a memory value".into()))?;
                }
                Accepts::Anything => {}
            },
        }
        Ok(())
    }

    /// [`set`](Self::set) as CONFIG SET does it: also refuses the values only a start-up
    /// file or flag may give.
    pub fn set_live(&self, c: &mut Config, values: &[&str]) -> Result<(), Refused> {
        if let Kind::Ignored {
            accepts: Accepts::YesNoOnlyYesLive,
            ..
        } = self.kind
            && values.first().and_then(|v| parse_yes_no(v)) == Some(false)
        {
            return Err(Refused::Bad(
                "argument must be 'yes': Brooklet journals every write and cannot turn that off"
                    .into(),
            ));
        }
        self.set(c, values)
    }

    /// Puts the directive's default into `c`.
    pub(super) fn reset(&self, c: &mut Config) {
        match &self.kind {
            Kind::Bool { default, set, .. } => set(c, *default),
            Kind::Int { default, set, .. } => set(c, *default),
            Kind::Port { default, set, .. } => set(c, *default),
            Kind::Memory { default, set, .. } => set(c, *default),
            Kind::Enum { default, set, .. } => set(c, default),
            Kind::Text { default, set, .. } => set(c, default),
            Kind::Custom { default, set, .. } => {
                // The table's own text: the unit tests parse every default.
                let applied = set(c, &[default]);
                debug_assert!(applied.is_ok(), "{}'s default is refused", self.name);
            }
            Kind::Ignored { .. } => {}
        }
    }
}
