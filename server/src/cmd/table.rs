//! The command table's shape: a [`CommandSpec`] per command (name, arity, flags, key
//! positions, handler) and the flattened, indexed [`Table`] built from them, each entry
//! joined with its [`Doc`] (the documentation lives apart, as data, in `command_docs.rs`).
//!
//! The handler type is a parameter, so this module knows nothing of the context handlers
//! run in: handlers and the commands that describe or run the table (COMMAND, EXEC, INFO)
//! all sit above it and reach the table through their context.

use hashbrown::HashMap;

/// Command flags, named as COMMAND INFO names them.
pub mod flags {
    /// Changes data.
    pub const WRITE: u32 = 1;
    /// Reads data.
    pub const READONLY: u32 = 1 << 1;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 2;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 3;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 4;
    /// O(1) or O(log N).
    pub const FAST: u32 = 1 << 5;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 6;
    /// Refused inside MULTI.
    pub const NO_MULTI: u32 = 1 << 7;
    /// Allowed to a RESP2 client in subscribed mode.
    pub const SUBSCRIBED: u32 = 1 << 8;
    /// Runs at once even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const NOT_QUEUED: u32 = 1 << 9;
    /// Key positions are found by parsing (XREAD, XREADGROUP).
    pub const MOVABLE_KEYS: u32 = 1 << 10;
    /// Allowed while loading or stale (reported only).
    pub const LOADING: u32 = 1 << 11;
    /// Runs with every other keyed command held off, as EXEC does (FLUSHALL, DEBUG RELOAD).
    pub const EXCLUSIVE: u32 = 1 << 12;
    /// May add data: refused while memory is over `maxmemory` (Redis's `denyoom`).
    pub const DENYOOM: u32 = 1 << 13;
    /// Not logged in the slow log (EXEC, whose commands are logged one by one). A high bit,
    /// so flags added elsewhere in the meantime do not collide with it.
    pub const SKIP_SLOWLOG: u32 = 1 << 30;
}

/// Documentation of a command (COMMAND DOCS and redis-cli hints).
#[derive(Debug)]
pub struct Doc {
    /// The full name: `xadd`, or `xgroup|create` for a subcommand.
    pub name: &'static str,
    /// Redis's command group.
    pub group: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// Argument syntax after the name, as redis.io writes it: `UPPER` tokens, lower names,
    /// `[optional]`, `a|b` and `<a b | c>` alternatives, `...` repeats what precedes it.
    pub syntax: &'static str,
}

/// What a command without an entry in the documentation reports.
const UNDOCUMENTED: Doc = Doc {
    name: "",
    group: "",
    summary: "",
    since: "",
    complexity: "",
    syntax: "",
};

/// A command with a handler; `keys` is (first, last, step), (0, 0, 0) for none.
pub(crate) const fn command<H: 'static>(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    handler: H,
) -> CommandSpec<H> {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        handler: Some(handler),
        subcommands: &[],
    }
}

/// A container (CLIENT, CONFIG, XGROUP...): its subcommands have the handlers.
pub(crate) const fn container<H: 'static>(
    name: &'static str,
    subcommands: &'static [CommandSpec<H>],
) -> CommandSpec<H> {
    CommandSpec {
        name,
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        key_step: 0,
        handler: None,
        subcommands,
    }
}

/// A command with a handler and no key arguments.
pub(crate) const fn simple<H: 'static>(
    name: &'static str,
    arity: i32,
    flags: u32,
    handler: H,
) -> CommandSpec<H> {
    command(name, arity, flags, (0, 0, 0), handler)
}

/// One entry of the command table, run by a handler of type `H`.
#[derive(Debug)]
pub struct CommandSpec<H: 'static> {
    /// Lower-case name (for a subcommand, just the subcommand's).
    pub name: &'static str,
    /// Redis arity: N exactly, -N at least N, counting the name.
    pub arity: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// First key position, 0 if none.
    pub first_key: i32,
    /// Last key position (-1 = last argument).
    pub last_key: i32,
    /// Step between keys.
    pub key_step: i32,
    /// The handler; None for a container whose subcommands have handlers.
    pub handler: Option<H>,
    /// Subcommands (CLIENT LIST, CONFIG GET...).
    pub subcommands: &'static [CommandSpec<H>],
}

impl<H> CommandSpec<H> {
    /// Whether `argc` arguments (the name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

/// A command's full name and spec, as the flattened table holds them.
pub struct Entry<H: 'static> {
    /// `xadd`, or `client|list` for a subcommand.
    pub full_name: String,
    /// The spec.
    pub spec: &'static CommandSpec<H>,
    /// Its documentation.
    pub doc: &'static Doc,
    /// Index of the container for a subcommand.
    pub parent: Option<usize>,
}

/// The flattened table: commands then their subcommands, with a name index.
pub struct Table<H: 'static> {
    /// Entries; indexes are stable for the life of the process.
    pub entries: Vec<Entry<H>>,
    /// Lower-case full names as bytes, so a lookup needs no UTF-8 check.
    index: HashMap<Box<[u8]>, usize>,
}

impl<H> Table<H> {
    /// Flattens `families` (each a list of commands) in order, every container followed by
    /// its subcommands, and gives each entry its documentation from `docs`.
    pub fn build(families: &[&'static [CommandSpec<H>]], docs: &'static [Doc]) -> Self {
        let doc_of = |full_name: &str| {
            docs.iter()
                .find(|d| d.name == full_name)
                .unwrap_or(&UNDOCUMENTED)
        };
        let mut entries = Vec::new();
        for spec in families.iter().copied().flatten() {
            let parent = entries.len();
            let full_name = spec.name.to_string();
            entries.push(Entry {
                doc: doc_of(&full_name),
                full_name,
                spec,
                parent: None,
            });
            for sub in spec.subcommands {
                let full_name = format!("{}|{}", spec.name, sub.name);
                entries.push(Entry {
                    doc: doc_of(&full_name),
                    full_name,
                    spec: sub,
                    parent: Some(parent),
                });
            }
        }
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.full_name.as_bytes().into(), i))
            .collect();
        Table { entries, index }
    }

    /// Looks a full name up, case-insensitively.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 48];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.index.get(&buf[..name.len()]).copied()
    }

    /// Top-level commands, in table order.
    pub fn commands(&self) -> impl Iterator<Item = (usize, &Entry<H>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.parent.is_none())
    }

    /// The subcommands of the container `spec`, in table order.
    pub fn subcommands_of<'t>(
        &'t self,
        spec: &'static CommandSpec<H>,
    ) -> impl Iterator<Item = &'t Entry<H>> {
        self.entries.iter().filter(move |e| {
            e.parent
                .is_some_and(|p| std::ptr::eq(self.entries[p].spec, spec))
        })
    }
}
