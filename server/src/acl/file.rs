//! The ACL file (`aclfile`): one `user <name> <rules...>` line per user, read whole and
//! applied all or nothing (ACL LOAD, start-up), written through a temporary file and a
//! rename (ACL SAVE), as Redis does.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::index::CommandIndex;
use super::rules::merge_selector_args;
use super::user::User;

/// Reads the users of the file at `path`: Err(Redis's text of every problem found) when it
/// cannot be read or a line is wrong, in which case nothing should change.
pub fn load(
    path: &Path,
    index: &CommandIndex,
    all_channels: bool,
) -> Result<BTreeMap<Bytes, Arc<User>>, String> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{shown}': {}",
            os_text(&e)
        )
    })?;
    let mut users: BTreeMap<Bytes, Arc<User>> = BTreeMap::new();
    let mut errors = String::new();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let line_no = i + 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let args: Vec<Bytes> = line
            .split(|&c| c == b' ')
            .filter(|a| !a.is_empty())
            .map(Bytes::copy_from_slice)
            .collect();
        if args.len() < 2 || args[0][..] != b"user"[..] {
            errors.push_str(&format!(
                "{shown}:{line_no} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = &args[1];
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {line_no}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let Ok(ops) = merge_selector_args(&args[2..]) else {
            errors.push_str(&format!(
                "{shown}:{line_no}: Unmatched parenthesis in selector definition."
            ));
            continue;
        };
        let mut user = User::new(index, name, all_channels);
        let mut syntax_error = false;
        for op in &ops {
            let op = op.trim_ascii();
            if let Err(e) = user.apply(index, op, all_channels) {
                if e == super::rules::RuleError::Unknown {
                    errors.push_str(&format!(
                        "{shown}:{line_no}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(op),
                        e.text()
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{shown}:{line_no}: {}. ", e.text()));
                    syntax_error = true;
                }
            }
        }
        user.refresh();
        users.insert(name.clone(), Arc::new(user));
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

/// Writes `users` to `path` (a temporary file beside it, fsynced, renamed over it).
pub fn save(path: &Path, users: &[Arc<User>]) -> std::io::Result<()> {
    let mut text = String::new();
    for u in users {
        text.push_str("user ");
        text.push_str(&String::from_utf8_lossy(&u.name));
        text.push(' ');
        text.push_str(&u.describe());
        text.push('\n');
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// An I/O error as strerror words it.
fn os_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips() {
        use super::super::index::TableEntry;
        let index = CommandIndex::new([TableEntry::named("get"), TableEntry::named("set")]);
        let dir = std::env::temp_dir().join(format!("brooklet-aclfile-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("users.acl");
        let mut u = User::new(&index, b"alice", false);
        for op in ["on", ">pw", "~a*", "%R~b*", "&c", "+get", "(+set ~s*)"] {
            assert!(u.apply(&index, op.as_bytes(), false).is_ok());
        }
        u.refresh();
        let users = vec![Arc::new(u), Arc::new(User::new_default(&index))];
        assert!(save(&path, &users).is_ok());
        let loaded = load(&path, &index, false).unwrap_or_else(|e| panic!("{e}"));
        let described: Vec<_> = loaded.values().map(|u| u.describe()).collect();
        let expected: Vec<_> = users.iter().map(|u| u.describe()).collect();
        assert_eq!(described, expected);
        std::fs::write(&path, "user bob on +nosuch\nbogus\n").unwrap_or_else(|e| panic!("{e}"));
        let err = load(&path, &index, false).err().unwrap_or_default();
        assert!(err.contains(
            ":1: Error in applying operation '+nosuch': Unknown command or category name in ACL. "
        ));
        assert!(err.contains(":2 should start with user keyword followed by the username. "));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
