//! The command table as ACL sees it: each command's full name, container, categories, key
//! specs and channels, at the table's positions, so rules and checks index bitmaps by them.

use hashbrown::HashMap;

use super::commands;
use super::key_specs::KeySpec;

/// Which pub/sub channels a command names, for channel permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// None checked (UNSUBSCRIBE and the rest).
    None,
    /// The first argument, matched against the user's patterns (PUBLISH, SPUBLISH).
    Publish,
    /// Every argument, matched against the user's patterns (SUBSCRIBE, SSUBSCRIBE).
    Subscribe,
    /// Every argument, a pattern that must equal one of the user's (PSUBSCRIBE).
    Pattern,
}

/// What ACL needs to know of one command of the table.
#[derive(Debug)]
pub struct CommandInfo {
    /// Full name: `xadd`, `config|set`.
    pub name: String,
    /// Position of the container of a subcommand.
    pub parent: Option<usize>,
    /// Positions of a container's subcommands.
    pub children: Vec<usize>,
    /// Category bits.
    pub categories: u32,
    /// Key specs.
    pub key_specs: Vec<KeySpec>,
    /// Runs before authentication (AUTH, HELLO...): no user's rules refuse it.
    pub no_auth: bool,
    /// The channels it names.
    pub channels: Channels,
}

/// One entry of the command table, as the table knows it.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// Full name: `xadd`, `config|set`.
    pub name: String,
    /// Position of the container of a subcommand.
    pub parent: Option<usize>,
    /// Runs before authentication.
    pub no_auth: bool,
    /// Categories, used when `commands.rs` has no row for the command.
    pub categories: u32,
    /// Key specs, used when `commands.rs` has no row for the command.
    pub key_specs: Vec<KeySpec>,
}

impl TableEntry {
    /// An entry with no container, no keys and no categories (tests).
    pub fn named(name: &str) -> Self {
        TableEntry {
            name: name.to_string(),
            parent: None,
            no_auth: false,
            categories: 0,
            key_specs: Vec::new(),
        }
    }
}

/// The command table as ACL sees it, indexed like the table.
#[derive(Debug)]
pub struct CommandIndex {
    /// One per table entry.
    pub commands: Vec<CommandInfo>,
    by_name: HashMap<String, usize>,
}

impl CommandIndex {
    /// Describes a table, entry by entry in table order.
    pub fn new(entries: impl IntoIterator<Item = TableEntry>) -> Self {
        let mut commands: Vec<CommandInfo> = Vec::new();
        for TableEntry {
            name,
            parent,
            no_auth,
            categories,
            key_specs,
        } in entries
        {
            let row = commands::COMMANDS.iter().find(|r| r.name == name);
            let channels = match name.as_str() {
                "publish" | "spublish" => Channels::Publish,
                "subscribe" | "ssubscribe" => Channels::Subscribe,
                "psubscribe" => Channels::Pattern,
                _ => Channels::None,
            };
            if let Some(p) = parent {
                let at = commands.len();
                if let Some(c) = commands.get_mut(p) {
                    c.children.push(at);
                }
            }
            commands.push(CommandInfo {
                categories: row.map_or(categories, |r| r.categories),
                key_specs: row.map_or(key_specs, |r| r.key_specs.to_vec()),
                name,
                parent,
                children: Vec::new(),
                no_auth,
                channels,
            });
        }
        let by_name = commands
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        CommandIndex { commands, by_name }
    }

    /// A command by full name, any case.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.by_name.get(&lower).copied()
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}
