//! Access control lists as Redis 7 has them: users (`user.rs`), the rules that change them
//! (`rules.rs`), command categories (`categories.rs`), every command's categories and key
//! specs (`commands.rs`, `key_specs.rs`), the denial log (`log.rs`) and the ACL file
//! (`file.rs`). The ACL command itself is `cmd/acl.rs`; dispatch asks [`Acl`] before every
//! command.
//!
//! Knows nothing of the command table's type: the table is described to it once as a
//! [`CommandIndex`] (names, parents, categories, key specs), whose positions are the table's.

pub mod categories;
pub mod commands;
pub mod file;
pub mod index;
pub mod key_specs;
pub mod log;
pub mod rules;
pub mod user;

use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use index::{CommandIndex, TableEntry};
pub use key_specs::KeySpec;
pub use user::{Denial, Reason, User};

/// Every user, the denial log, and what connections check against.
pub struct Acl {
    /// The command table as ACL sees it.
    pub index: Arc<CommandIndex>,
    users: RwLock<BTreeMap<Bytes, Arc<User>>>,
    /// Raised by every change to a user; a connection whose copy is older looks its user up
    /// again before its next command, so the check costs one load while nothing changes.
    epoch: AtomicU64,
    /// Whether the `default` user is on and needs no password: connections start
    /// authenticated, and unauthenticated ones may run commands as it.
    default_open: AtomicBool,
    /// The denial log.
    pub log: Mutex<log::AclLog>,
}

impl Acl {
    /// The ACL of a server just started: the `default` user with every permission, with
    /// `requirepass` as its password when one is set.
    pub fn new(index: Arc<CommandIndex>, requirepass: Option<&[u8]>) -> Self {
        let default = User::new_default(&index);
        let acl = Acl {
            index,
            users: RwLock::new(BTreeMap::from([(
                Bytes::from_static(b"default"),
                Arc::new(default),
            )])),
            epoch: AtomicU64::new(1),
            default_open: AtomicBool::new(true),
            log: Mutex::new(log::AclLog::default()),
        };
        acl.set_default_password(requirepass);
        acl
    }

    /// The current epoch (see [`Acl::epoch`]'s field).
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Whether an unauthenticated connection runs commands as `default` without AUTH.
    #[inline]
    pub fn default_open(&self) -> bool {
        self.default_open.load(Ordering::Acquire)
    }

    /// A user by name.
    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.read().get(name).cloned()
    }

    /// The `default` user.
    pub fn default_user(&self) -> Arc<User> {
        match self.user(b"default") {
            Some(u) => u,
            None => Arc::new(User::new_default(&self.index)),
        }
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Bytes, Arc<User>>> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Bytes, Arc<User>>> {
        self.users.write().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self, users: &BTreeMap<Bytes, Arc<User>>) {
        let open = users
            .get(&b"default"[..])
            .is_some_and(|u| u.enabled && u.nopass);
        self.default_open.store(open, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// ACL SETUSER: applies `ops` to the user `name` (created when missing), all or nothing.
    /// Returns the user as it was before, None when it is new.
    pub fn set_user(
        &self,
        name: &[u8],
        ops: &[Bytes],
        all_channels: bool,
    ) -> Result<Option<Arc<User>>, String> {
        let ops = rules::merge_selector_args(ops).map_err(|at| {
            format!(
                "ERR Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(&ops[at])
            )
        })?;
        let mut users = self.write();
        let old = users.get(name).cloned();
        let mut next = match &old {
            Some(u) => (**u).clone(),
            None => User::new(&self.index, name, all_channels),
        };
        for op in &ops {
            next.apply(&self.index, op, all_channels).map_err(|e| {
                format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(op),
                    e.text()
                )
            })?;
        }
        next.refresh();
        users.insert(Bytes::copy_from_slice(name), Arc::new(next));
        self.changed(&users);
        Ok(old)
    }

    /// ACL DELUSER: removes the users named, returning those that existed.
    pub fn delete_users(&self, names: &[Bytes]) -> Vec<Arc<User>> {
        let mut users = self.write();
        let gone: Vec<_> = names.iter().filter_map(|n| users.remove(n)).collect();
        self.changed(&users);
        gone
    }

    /// Replaces every user (ACL LOAD, the ACL file at start-up); `default` is created with
    /// every permission when the new set lacks it.
    pub fn replace_all(&self, mut next: BTreeMap<Bytes, Arc<User>>) {
        next.entry(Bytes::from_static(b"default"))
            .or_insert_with(|| Arc::new(User::new_default(&self.index)));
        let mut users = self.write();
        *users = next;
        self.changed(&users);
    }

    /// `requirepass`: the `default` user's one password, or no password when None (Redis's
    /// ACLUpdateDefaultUserPassword).
    pub fn set_default_password(&self, pass: Option<&[u8]>) {
        let mut users = self.write();
        let mut next = users
            .get(&b"default"[..])
            .map(|u| (**u).clone())
            .unwrap_or_else(|| User::new_default(&self.index));
        next.passwords.clear();
        next.nopass = false;
        match pass {
            Some(p) => next.add_password(user::hash_password(p)),
            None => next.nopass = true,
        }
        next.refresh();
        users.insert(Bytes::from_static(b"default"), Arc::new(next));
        self.changed(&users);
    }

    /// Checks a user name and password: the user when they match and the user is on.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let user = self.user(name)?;
        (user.enabled && user.check_password(pass)).then_some(user)
    }
}
