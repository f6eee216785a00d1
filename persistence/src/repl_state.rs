//! A replica's replication ID and offset, kept beside its data so that after a clean
//! restart it can ask its primary to continue (`PSYNC replid offset`) rather than resync.
//!
//! The file is written when the server stops cleanly, after the store's last sync, and
//! removed as soon as the replica applies a change again: an unclean stop leaves no file,
//! and the replica then resyncs in full, since its data may be behind the offset.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
const FILE: &str = "replication.state";

/// A replication ID and the offset the data directory's contents correspond to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplState {
    /// The primary's replication ID the data follows (40 hex digits).
    pub replid: String,
    /// The offset in that ID's stream of changes the data reflects.
    pub offset: u64,
}

impl ReplState {
    fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// The state a clean stop left in `dir`, if any (a malformed file counts as none).
    pub fn load(dir: &Path) -> Option<ReplState> {
        let text = std::fs::read_to_string(Self::path(dir)).ok()?;
        let mut parts = text.split_whitespace();
        let replid = parts.next()?.to_string();
        let offset = parts.next()?.parse().ok()?;
        (replid.len() == 40 && replid.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(ReplState { replid, offset })
    }

    /// Writes the state to `dir` durably (a temporary file, fsynced, renamed over).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{} {}", self.replid, self.offset)?;
        f.sync_all()?;
        std::fs::rename(&tmp, Self::path(dir))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes the state from `dir` (the data is about to move past it).
    pub fn clear(dir: &Path) {
        let _ = std::fs::remove_file(Self::path(dir));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn saved_state_loads_back_and_clear_removes_it() {
        let dir = std::env::temp_dir().join(format!("brooklet-repl-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(ReplState::load(&dir), None);
        let s = ReplState {
            replid: "a".repeat(40),
            offset: 42,
        };
        s.save(&dir).unwrap();
        assert_eq!(ReplState::load(&dir), Some(s));
        ReplState::clear(&dir);
        assert_eq!(ReplState::load(&dir), None);
        std::fs::write(dir.join(FILE), "short 1\n").unwrap();
        assert_eq!(ReplState::load(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
