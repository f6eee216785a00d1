//! ACL rules (`on`, `>pass`, `~pattern`, `+@read`, `-config|set`, `(...)`...) applied to a
//! user or a selector as Redis's ACLSetUser and ACLSetSelector apply them, with Redis's
//! error texts.

use bytes::Bytes;

use super::categories;
use super::index::CommandIndex;
use super::user::{KeyPattern, READ, READ_WRITE, Selector, User, WRITE, hash_password};

/// Why a rule was refused; [`RuleError::text`] is Redis's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// Not a rule, or a pattern with spaces.
    Syntax,
    /// `+name` / `-@name` naming no command or category.
    Unknown,
    /// A key pattern after `allkeys`.
    AfterAllKeys,
    /// A channel pattern after `allchannels`.
    AfterAllChannels,
    /// `<pass` or `!hash` of a password the user does not have.
    NoSuchPassword,
    /// `#hash` or `!hash` that is not 64 lower-case hex digits.
    BadHash,
    /// `+cmd|sub|arg`: a first argument of a subcommand.
    FirstArgOfSubcommand,
}

impl RuleError {
    /// Redis's text.
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
        }
    }
}

fn is(op: &[u8], word: &str) -> bool {
    op.eq_ignore_ascii_case(word.as_bytes())
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|c| c.is_ascii_whitespace() || *c == 0 || *c == 0x0b)
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Joins a selector given over several arguments (`(+get`, `~k*)`) into one, as Redis's
/// ACLMergeSelectorArguments does; Err(position) of an opening parenthesis never closed.
pub fn merge_selector_args(args: &[Bytes]) -> Result<Vec<Bytes>, usize> {
    let mut out = Vec::with_capacity(args.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, a) in args.iter().enumerate() {
        if let Some((_, buf)) = open.as_mut() {
            buf.push(b' ');
            buf.extend_from_slice(a);
            if a.last() == Some(&b')')
                && let Some((_, buf)) = open.take()
            {
                out.push(Bytes::from(buf));
            }
            continue;
        }
        if a.first() == Some(&b'(') && a.last() != Some(&b')') {
            open = Some((i, a.to_vec()));
            continue;
        }
        out.push(a.clone());
    }
    match open {
        Some((at, _)) => Err(at),
        None => Ok(out),
    }
}

impl User {
    /// Applies one rule (Redis's ACLSetUser); `all_channels` is `acl-pubsub-default`.
    pub fn apply(
        &mut self,
        index: &CommandIndex,
        op: &[u8],
        all_channels: bool,
    ) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        if is(op, "on") {
            self.enabled = true;
        } else if is(op, "off") {
            self.enabled = false;
        } else if is(op, "skip-sanitize-payload") {
            self.sanitize_payload = Some(false);
        } else if is(op, "sanitize-payload") {
            self.sanitize_payload = Some(true);
        } else if is(op, "nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is(op, "resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let digest = if op[0] == b'>' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            self.add_password(digest);
        } else if op[0] == b'<' || op[0] == b'!' {
            let digest = if op[0] == b'<' {
                hash_password(&op[1..])
            } else if valid_hash(&op[1..]) {
                String::from_utf8_lossy(&op[1..]).into_owned()
            } else {
                return Err(RuleError::BadHash);
            };
            let at = self
                .passwords
                .iter()
                .position(|p| *p == digest)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if op[0] == b'(' && op.last() == Some(&b')') {
            let mut s = Selector::new(index, all_channels);
            for part in op[1..op.len() - 1]
                .split(|c| c.is_ascii_whitespace())
                .filter(|p| !p.is_empty())
            {
                s.apply(index, part)?;
            }
            self.selectors.push(s);
        } else if is(op, "clearselectors") {
            self.selectors.truncate(1);
        } else if is(op, "reset") {
            for step in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(index, step.as_bytes(), all_channels)?;
            }
            if all_channels {
                self.apply(index, b"allchannels", all_channels)?;
            }
            for step in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(index, step.as_bytes(), all_channels)?;
            }
        } else {
            self.selectors[0].apply(index, op)?;
        }
        Ok(())
    }
}

impl Selector {
    /// Applies one selector rule (Redis's ACLSetSelector).
    pub fn apply(&mut self, index: &CommandIndex, op: &[u8]) -> Result<(), RuleError> {
        if is(op, "allkeys") || op == b"~*" {
            self.all_keys = true;
            self.keys.clear();
        } else if is(op, "resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if is(op, "allchannels") || op == b"&*" {
            self.all_channels = true;
            self.channels.clear();
        } else if is(op, "resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is(op, "allcommands") || is(op, "+@all") {
            self.allowed.iter_mut().for_each(|w| *w = u64::MAX);
            self.all_commands = true;
            self.future = true;
            self.command_rules.clear();
            self.first_args.clear();
        } else if is(op, "nocommands") || is(op, "-@all") {
            self.allowed.iter_mut().for_each(|w| *w = 0);
            self.all_commands = false;
            self.future = false;
            self.command_rules.clear();
            self.first_args.clear();
        } else if op[0] == b'~' || op[0] == b'%' {
            self.add_key_pattern(op)?;
        } else if op[0] == b'&' {
            if self.all_channels {
                return Err(RuleError::AfterAllChannels);
            }
            if has_spaces(&op[1..]) {
                return Err(RuleError::Syntax);
            }
            let pattern = Bytes::copy_from_slice(&op[1..]);
            if !self.channels.contains(&pattern) {
                self.channels.push(pattern);
            }
            self.all_channels = false;
        } else if op.len() >= 2 && (op[0] == b'+' || op[0] == b'-') && op[1] == b'@' {
            let bit = categories::by_name(&op[2..]).ok_or(RuleError::Unknown)?;
            let allow = op[0] == b'+';
            self.update_rules(&String::from_utf8_lossy(&op[1..]), allow);
            for id in 0..index.len() {
                if index.commands[id].categories & bit != 0 {
                    self.change(index, id, allow);
                }
            }
        } else if op[0] == b'+' {
            self.allow_command(index, &op[1..])?;
        } else if op[0] == b'-' {
            let id = index.find(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change(index, id, false);
            let name = index.commands[id].name.clone();
            self.update_rules(&name, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::AfterAllKeys);
        }
        let (perms, offset) = if op[0] == b'%' {
            let mut perms = 0;
            let mut at = 1;
            loop {
                match op.get(at).map(u8::to_ascii_uppercase) {
                    Some(b'R') if perms & READ == 0 => perms |= READ,
                    Some(b'W') if perms & WRITE == 0 => perms |= WRITE,
                    Some(b'~') if perms != 0 => break (perms, at + 1),
                    _ => return Err(RuleError::Syntax),
                }
                at += 1;
            }
        } else {
            (READ_WRITE, 1)
        };
        let pattern = &op[offset..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|p| p.pattern[..] == pattern[..]) {
            Some(p) => p.perms |= perms,
            None => self.keys.push(KeyPattern {
                perms,
                pattern: Bytes::copy_from_slice(pattern),
            }),
        }
        self.all_keys = false;
        Ok(())
    }

    fn allow_command(&mut self, index: &CommandIndex, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let id = index.find(name).ok_or(RuleError::Unknown)?;
            self.change(index, id, true);
            let name = index.commands[id].name.clone();
            self.update_rules(&name, true);
            return Ok(());
        };
        let (head, sub) = (&name[..bar], &name[bar + 1..]);
        let id = index.find(head).ok_or(RuleError::Unknown)?;
        if index.commands[id].parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !index.commands[id].children.is_empty() {
            let sub_id = index.find(name).ok_or(RuleError::Unknown)?;
            self.change(index, sub_id, true);
        } else {
            tracing::warn!(
                "Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{})",
                String::from_utf8_lossy(name)
            );
            match self.first_args.iter_mut().find(|(i, _)| *i == id) {
                Some((_, args)) => {
                    if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                        args.push(Bytes::copy_from_slice(sub));
                    }
                }
                None => self
                    .first_args
                    .push((id, vec![Bytes::copy_from_slice(sub)])),
            }
        }
        self.update_rules(&String::from_utf8_lossy(name), true);
        Ok(())
    }

    /// Allows or blocks a command and, for a container, its subcommands (Redis's
    /// ACLChangeSelectorPerm).
    fn change(&mut self, index: &CommandIndex, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.first_args.retain(|(i, _)| *i != id);
        for &child in &index.commands[id].children {
            self.set_bit(child, allow);
        }
    }

    /// Records a command or category rule, dropping an earlier one for the same name or a
    /// subcommand of it (Redis's ACLUpdateCommandRules).
    fn update_rules(&mut self, rule: &str, allow: bool) {
        let rule = rule.to_ascii_lowercase();
        let kept: Vec<&str> = self
            .command_rules
            .split(' ')
            .filter(|r| !r.is_empty())
            .filter(|r| {
                let name = &r[1..];
                !(name == rule
                    || (name.len() > rule.len()
                        && name.starts_with(rule.as_str())
                        && name.as_bytes()[rule.len()] == b'|'))
            })
            .collect();
        let mut next = kept.join(" ");
        if !next.is_empty() {
            next.push(' ');
        }
        next.push(if allow { '+' } else { '-' });
        next.push_str(&rule);
        self.command_rules = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> CommandIndex {
        use super::super::categories::*;
        use super::super::index::TableEntry;
        let sub = |name: &str, parent: usize| TableEntry {
            parent: Some(parent),
            ..TableEntry::named(name)
        };
        CommandIndex::new([
            TableEntry::named("get"),
            TableEntry::named("set"),
            TableEntry::named("config"),
            sub("config|get", 2),
            sub("config|set", 2),
            TableEntry {
                categories: FAST,
                ..TableEntry::named("select")
            },
            TableEntry {
                no_auth: true,
                ..TableEntry::named("auth")
            },
            TableEntry {
                key_specs: vec![super::super::KeySpec {
                    flags: super::super::key_specs::flags::RW
                        | super::super::key_specs::flags::UPDATE,
                    begin: super::super::key_specs::Begin::Index(1),
                    find: super::super::key_specs::Find::Range(0, 1, 0),
                    notes: "",
                }],
                ..TableEntry::named("xnew")
            },
        ])
    }

    fn user(ops: &[&str]) -> Result<User, String> {
        let idx = index();
        let mut u = User::new(&idx, b"u", false);
        for op in ops {
            u.apply(&idx, op.as_bytes(), false)
                .map_err(|e| format!("{op}: {}", e.text()))?;
        }
        u.refresh();
        Ok(u)
    }

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect()
    }

    #[test]
    fn describes_as_redis_7_2() {
        let u = user(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.describe(), "off resetchannels -@all");
        let u = user(&[
            "on",
            ">p1",
            "~k*",
            "%R~r*",
            "&ch*",
            "+@read",
            "-get",
            "+config|get",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.describe(),
            "on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~k* %R~r* resetchannels &ch* -@all +@read -get +config|get"
        );
        let u = user(&["+config|get", "+config", "(+set ~s*)", "%RW~a", "%W~b"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.describe(),
            "off ~a %W~b resetchannels -@all +config (~s* resetchannels -@all +set)"
        );
        let u = user(&["reset"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.describe(), "off sanitize-payload resetchannels -@all");
    }

    #[test]
    fn errors_are_redis_texts() {
        let e = |ops: &[&str]| user(ops).err().unwrap_or_default();
        assert_eq!(e(&["%~a"]), "%~a: Syntax error");
        assert_eq!(e(&["bogus"]), "bogus: Syntax error");
        assert_eq!(
            e(&["+nosuch"]),
            "+nosuch: Unknown command or category name in ACL"
        );
        assert_eq!(
            e(&["-@nosuch"]),
            "-@nosuch: Unknown command or category name in ACL"
        );
        assert!(e(&["allkeys", "~a"]).contains("'allkeys' flag"));
        assert!(e(&["&*", "&a"]).contains("'allchannels' flag"));
        assert_eq!(
            e(&["<nope"]),
            "<nope: The password you are trying to remove from the user does not exist"
        );
        assert!(e(&["#abc"]).contains("exactly 64 characters"));
        assert_eq!(
            e(&["+config|get|x"]),
            "+config|get|x: Allowing first-arg of a subcommand is not supported"
        );
        assert_eq!(e(&["+get|"]), "+get|: Syntax error");
    }

    #[test]
    fn checks_commands_keys_and_first_args() {
        let idx = index();
        let u = user(&["+@all", "-config|set", "%R~r*", "-select", "+select|0"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(u.check(&idx, 3, &argv("config get x")).is_ok());
        assert_eq!(
            u.check(&idx, 4, &argv("config set x y"))
                .map_err(|d| d.reason),
            Err(super::super::Reason::Command)
        );
        assert!(u.check(&idx, 5, &argv("select 0")).is_ok());
        assert!(u.check(&idx, 5, &argv("select 1")).is_err());
        assert!(u.check(&idx, 6, &argv("auth x")).is_ok());
        // A command without a row in `commands.rs` is checked by the specs it was given.
        assert_eq!(
            u.check(&idx, 7, &argv("xnew r1")),
            Err(super::super::Denial {
                reason: super::super::Reason::Key,
                pos: 1
            })
        );
        let w = user(&["+@all", "%W~w*"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(w.check(&idx, 7, &argv("xnew w1")).is_ok());
    }

    #[test]
    fn merges_selectors_over_arguments() {
        let a = argv("on (+get ~k*) x");
        let merged = merge_selector_args(&[
            a[0].clone(),
            Bytes::from("(+get"),
            Bytes::from("~k*)"),
            a[3].clone(),
        ]);
        assert_eq!(
            merged,
            Ok(vec![
                Bytes::from("on"),
                Bytes::from("(+get ~k*)"),
                Bytes::from("x")
            ])
        );
        assert_eq!(merge_selector_args(&[Bytes::from("(+get")]), Err(0));
    }
}
