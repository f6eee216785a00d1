//! A user: its flags, hashed passwords and selectors (the root one, then those added with
//! `(...)`), the permission check Redis's ACLCheckAllUserCommandPerm makes, and the text
//! ACL LIST, GETUSER and the ACL file show of it.

use bytes::Bytes;

use super::index::{Channels, CommandIndex};
use super::key_specs::{flags as key, for_each_key};
use brooklet_pubsub::glob_match;

/// A key pattern may be read.
pub const READ: u8 = 1;
/// A key pattern may be written.
pub const WRITE: u8 = 2;
/// `~pattern`: both.
pub const READ_WRITE: u8 = READ | WRITE;

/// A key pattern and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// [`READ`], [`WRITE`] or both.
    pub perms: u8,
    /// The glob pattern.
    pub pattern: Bytes,
}

/// One set of permissions; a command runs when one of the user's selectors allows it.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Every command, and those added later.
    pub all_commands: bool,
    /// Set by `+@all` alone: rules are shown starting from `+@all` rather than `-@all`.
    pub future: bool,
    /// Every key (`allkeys`, `~*`).
    pub all_keys: bool,
    /// Every channel (`allchannels`, `&*`).
    pub all_channels: bool,
    /// One bit per command of the table.
    pub allowed: Vec<u64>,
    /// Commands allowed only with one of these first arguments (`+select|0`).
    pub first_args: Vec<(usize, Vec<Bytes>)>,
    /// Key patterns, in the order given.
    pub keys: Vec<KeyPattern>,
    /// Channel patterns, in the order given.
    pub channels: Vec<Bytes>,
    /// The command and category rules as applied, older repeats dropped (Redis 7.2's
    /// `command_rules`): what ACL LIST shows after `+@all` or `-@all`.
    pub command_rules: String,
}

impl Selector {
    /// A selector that allows nothing.
    pub fn new(index: &CommandIndex, all_channels: bool) -> Self {
        Selector {
            all_commands: false,
            future: false,
            all_keys: false,
            all_channels,
            allowed: vec![0; index.len().div_ceil(64).max(1)],
            first_args: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            command_rules: String::new(),
        }
    }

    /// Whether the command at `id` is allowed by its bit.
    #[inline]
    pub fn bit(&self, id: usize) -> bool {
        self.allowed
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Sets the bit of command `id`; clearing one ends `all_commands`.
    pub fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(w) = self.allowed.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
                self.all_commands = false;
            }
        }
    }

    fn key_allowed(&self, k: &[u8], spec_flags: u32) -> bool {
        if self.all_keys {
            return true;
        }
        let mut need = 0;
        if spec_flags & key::ACCESS != 0 {
            need |= READ;
        }
        if spec_flags & (key::INSERT | key::DELETE | key::UPDATE) != 0 {
            need |= WRITE;
        }
        self.keys
            .iter()
            .any(|p| p.perms & need == need && glob_match(&p.pattern, k))
    }

    fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p[..] == channel[..]
                } else {
                    glob_match(p, channel)
                }
            })
    }

    /// Redis's ACLSelectorCheckCmd.
    fn check(&self, index: &CommandIndex, id: usize, argv: &[Bytes]) -> Result<(), Denial> {
        let Some(cmd) = index.commands.get(id) else {
            return Err(Denial::command());
        };
        if !self.all_commands && !cmd.no_auth && !self.bit(id) {
            let arg = argv.get(if cmd.parent.is_some() { 2 } else { 1 });
            let first_arg_ok = arg.is_some_and(|a| {
                self.first_args
                    .iter()
                    .find(|(i, _)| *i == id)
                    .is_some_and(|(_, args)| args.iter().any(|x| x.eq_ignore_ascii_case(a)))
            });
            if !first_arg_ok {
                return Err(Denial::command());
            }
        }
        if !self.all_keys && !cmd.key_specs.is_empty() {
            let mut denied = None;
            for_each_key(&cmd.key_specs, argv, |pos, flags| {
                if denied.is_none()
                    && flags & key::NOT_KEY == 0
                    && !self.key_allowed(&argv[pos], flags)
                {
                    denied = Some(pos);
                }
            });
            if let Some(pos) = denied {
                return Err(Denial {
                    reason: Reason::Key,
                    pos,
                });
            }
        }
        if !self.all_channels {
            let (from, to, pattern) = match cmd.channels {
                Channels::None => return Ok(()),
                Channels::Publish => (1, 2.min(argv.len()), false),
                Channels::Subscribe => (1, argv.len(), false),
                Channels::Pattern => (1, argv.len(), true),
            };
            for (pos, channel) in argv.iter().enumerate().take(to).skip(from) {
                if !self.channel_allowed(channel, pattern) {
                    return Err(Denial {
                        reason: Reason::Channel,
                        pos,
                    });
                }
            }
        }
        Ok(())
    }

    /// The selector's rules as ACL LIST shows them: keys, channels, commands.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if self.all_keys {
            out.push_str("~* ");
        } else {
            for p in &self.keys {
                out.push_str(&pattern_text(p));
                out.push(' ');
            }
        }
        if self.all_channels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(c));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }

    /// The command rules alone (GETUSER's `commands`).
    pub fn describe_commands(&self) -> String {
        let mut out = String::from(if self.future { "+@all" } else { "-@all" });
        if !self.command_rules.is_empty() {
            out.push(' ');
            out.push_str(&self.command_rules);
        }
        out
    }

    /// The key patterns alone (GETUSER's `keys`).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let parts: Vec<_> = self.keys.iter().map(pattern_text).collect();
        parts.join(" ")
    }

    /// The channel patterns alone (GETUSER's `channels`).
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let parts: Vec<_> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        parts.join(" ")
    }
}

fn pattern_text(p: &KeyPattern) -> String {
    let prefix = match p.perms {
        READ => "%R~",
        WRITE => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(&p.pattern))
}

/// Why a command was refused, ordered as Redis ranks them when picking one to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The command.
    Command = 1,
    /// A key.
    Key = 2,
    /// AUTH with a wrong password (only logged).
    Auth = 3,
    /// A channel.
    Channel = 4,
}

impl Reason {
    /// The name ACL LOG gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Auth => "auth",
            Reason::Channel => "channel",
        }
    }
}

/// A refusal: why, and the argument at fault (a key or channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub reason: Reason,
    /// The argument at fault, 0 for the command itself.
    pub pos: usize,
}

impl Denial {
    fn command() -> Self {
        Denial {
            reason: Reason::Command,
            pos: 0,
        }
    }

    /// The NOPERM reply's text after `NOPERM ` (`verbose` as ACL DRYRUN words it).
    pub fn message(&self, user: &[u8], command: &str, argv: &[Bytes], verbose: bool) -> String {
        let user = String::from_utf8_lossy(user);
        let arg = argv
            .get(self.pos)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default();
        match (self.reason, verbose) {
            (Reason::Command | Reason::Auth, _) => {
                format!("User {user} has no permissions to run the '{command}' command")
            }
            (Reason::Key, true) => {
                format!("User {user} has no permissions to access the '{arg}' key")
            }
            (Reason::Key, false) => "No permissions to access a key".into(),
            (Reason::Channel, true) => {
                format!("User {user} has no permissions to access the '{arg}' channel")
            }
            (Reason::Channel, false) => "No permissions to access a channel".into(),
        }
    }
}

/// A user.
#[derive(Debug, Clone)]
pub struct User {
    /// The name.
    pub name: Bytes,
    /// `on`: it may authenticate.
    pub enabled: bool,
    /// `nopass`: any password works.
    pub nopass: bool,
    /// `sanitize-payload` (Some(true)) or `skip-sanitize-payload` (Some(false)); RESTORE is
    /// not served, but the flag is kept and shown as Redis does.
    pub sanitize_payload: Option<bool>,
    /// SHA-256 hex digests of its passwords, in the order added.
    pub passwords: Vec<String>,
    /// The root selector first, then the others.
    pub selectors: Vec<Selector>,
    /// Every command, key and channel allowed by the root selector: no check needed.
    pub unrestricted: bool,
}

/// The SHA-256 hex digest Redis stores of a password.
pub fn hash_password(pass: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, pass);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two digests in time that does not depend on where they differ.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl User {
    /// A user just created: off, no password, no permissions.
    pub fn new(index: &CommandIndex, name: &[u8], all_channels: bool) -> Self {
        User {
            name: Bytes::copy_from_slice(name),
            enabled: false,
            nopass: false,
            sanitize_payload: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(index, all_channels)],
            unrestricted: false,
        }
    }

    /// The `default` user of a fresh server: on, no password, every permission.
    pub fn new_default(index: &CommandIndex) -> Self {
        let mut u = User::new(index, b"default", false);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            // These rules are valid whatever the table holds.
            let _ = u.apply(index, op.as_bytes(), false);
        }
        u.refresh();
        u
    }

    /// The root selector.
    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// Recomputes what is derived from the rules; call after applying them.
    pub fn refresh(&mut self) {
        let r = &self.selectors[0];
        self.unrestricted = r.all_commands && r.all_keys && r.all_channels;
    }

    /// Adds a password digest unless present; ends `nopass`.
    pub fn add_password(&mut self, digest: String) {
        if !self.passwords.contains(&digest) {
            self.passwords.push(digest);
        }
        self.nopass = false;
    }

    /// Whether `pass` is one of the user's passwords (any, under `nopass`).
    pub fn check_password(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let hashed = hash_password(pass);
        self.passwords
            .iter()
            .fold(false, |ok, p| ok | same_digest(p, &hashed))
    }

    /// Whether the user may run command `id` with `argv` (the name at 0): Ok, or the denial
    /// Redis would report (a command denial only when no selector got past the command).
    pub fn check(&self, index: &CommandIndex, id: usize, argv: &[Bytes]) -> Result<(), Denial> {
        if self.unrestricted {
            return Ok(());
        }
        let mut worst = Denial::command();
        for s in &self.selectors {
            match s.check(index, id, argv) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if d.reason > worst.reason || (d.reason == worst.reason && d.pos > worst.pos) {
                        worst = d;
                    }
                }
            }
        }
        Err(worst)
    }

    /// Whether some selector lets the user use `channel` (a pattern when `is_pattern`).
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.channel_allowed(channel, is_pattern))
    }

    /// Whether some selector allows every channel.
    pub fn all_channels(&self) -> bool {
        self.selectors.iter().any(|s| s.all_channels)
    }

    /// The flags GETUSER lists, in Redis's order.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize_payload {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The user's rules as ACL LIST and the ACL file show them (after `user <name> `).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for f in self.flag_names() {
            out.push_str(f);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        for (i, s) in self.selectors.iter().enumerate() {
            if i == 0 {
                out.push_str(&s.describe());
            } else {
                out.push_str(&format!(" ({})", s.describe()));
            }
        }
        out
    }
}
