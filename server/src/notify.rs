//! Keyspace notification classes (`notify-keyspace-events`): which letters exist, what `A`
//! stands for, and how the setting reads back. Publishing the events is [`crate::publish`]'s.

/// The classes `A` stands for (`m` key-miss and `n` new-key events are not among them).
pub(crate) const ALL_CLASSES: &str = "g$lshzxetd";

/// `notify-keyspace-events` as Redis stores and shows it (CONFIG GET): `A` when every class
/// of [`ALL_CLASSES`] is on, else the classes in Redis's order, then `K`, `E` and `m`; any
/// order and repetition in, one spelling out ("EKA" and "AKE" both read back "AKE").
pub fn canonical_keyspace_events(flags: &str) -> String {
    let on = |c: char| flags.contains(c) || (flags.contains('A') && ALL_CLASSES.contains(c));
    let mut out = String::new();
    if ALL_CLASSES.chars().all(on) {
        // As in Redis, `n` is not shown next to `A` (no `n` event is published here anyway).
        out.push('A');
    } else {
        out.extend("g$lshzxetdn".chars().filter(|&c| on(c)));
    }
    out.extend("KEm".chars().filter(|&c| on(c)));
    out
}

/// Event classes of `notify-keyspace-events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// `g`: generic commands (DEL, RENAME...).
    Generic,
    /// `t`: stream commands.
    Stream,
    /// `n`: a key was created (`new`); not part of `A`.
    New,
    /// `m`: a read found no key (`keymiss`); not part of `A`.
    KeyMiss,
}

impl EventClass {
    /// The class's letter in `notify-keyspace-events`.
    pub(crate) fn letter(self) -> char {
        match self {
            EventClass::Generic => 'g',
            EventClass::Stream => 't',
            EventClass::New => 'n',
            EventClass::KeyMiss => 'm',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_keyspace_events as canon;

    #[test]
    fn keyspace_event_flags_read_back_as_redis_spells_them() {
        assert_eq!(canon("KEA"), "AKE");
        assert_eq!(canon("EgK"), "gKE");
        assert_eq!(canon("gE"), "gE");
        assert_eq!(canon("g$lshzxetdK"), "AK");
        assert_eq!(canon("ttK"), "tK");
        assert_eq!(canon("mK"), "Km");
        assert_eq!(canon("nA"), "A");
        assert_eq!(canon("ng"), "gn");
        assert_eq!(canon(""), "");
    }
}
