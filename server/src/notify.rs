//! Keyspace notification classes (`notify-keyspace-events`). Which letters exist and how the
//! setting reads back is the config table's ([`crate::config::canonical_keyspace_events`]);
//! publishing the events is [`crate::publish`]'s.

/// Event classes of `notify-keyspace-events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// `g`: generic commands (DEL, RENAME...).
    Generic,
    /// `t`: stream commands.
    Stream,
    /// `$`: string commands.
    String,
    /// `x`: a key expired.
    Expired,
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
            EventClass::String => '$',
            EventClass::Expired => 'x',
            EventClass::New => 'n',
            EventClass::KeyMiss => 'm',
        }
    }
}
