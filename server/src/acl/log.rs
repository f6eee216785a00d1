//! ACL LOG: the most recent denials, similar ones within a minute merged into one entry with
//! a count, as Redis keeps them.

use std::collections::VecDeque;

use super::user::Reason;

/// Entries closer than this (in milliseconds) with the same reason, context, object and
/// user are one entry.
const GROUPING_MS: u64 = 60_000;
/// How many recent entries a new denial is compared with.
const SCAN: usize = 10;

/// One denial, or a run of similar ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// How many denials it stands for.
    pub count: u64,
    /// Why.
    pub reason: Reason,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command, key or channel refused (for `auth`, the command as typed).
    pub object: Vec<u8>,
    /// The user refused (for `auth`, the name tried).
    pub username: Vec<u8>,
    /// The CLIENT LIST line of the client, as of the latest denial.
    pub client_info: String,
    /// Unique, increasing.
    pub entry_id: u64,
    /// Unix milliseconds of the first denial.
    pub created_ms: u64,
    /// Unix milliseconds of the latest denial.
    pub updated_ms: u64,
}

/// The log, newest first.
#[derive(Debug, Default)]
pub struct AclLog {
    entries: VecDeque<Entry>,
    next_id: u64,
    /// Denials of a command since start (INFO's `acl_access_denied_cmd`).
    pub denied_cmd: u64,
    /// Denials of a key.
    pub denied_key: u64,
    /// Denials of a channel.
    pub denied_channel: u64,
    /// Failed authentications.
    pub denied_auth: u64,
}

/// A denial to record.
pub struct Denied<'a> {
    /// Why.
    pub reason: Reason,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command, key or channel.
    pub object: &'a [u8],
    /// The user.
    pub username: &'a [u8],
    /// The client's CLIENT LIST line.
    pub client_info: String,
}

impl AclLog {
    /// Records a denial at `now_ms`, keeping at most `max_len` entries.
    pub fn add(&mut self, d: Denied<'_>, now_ms: u64, max_len: usize) {
        match d.reason {
            Reason::Command => self.denied_cmd += 1,
            Reason::Key => self.denied_key += 1,
            Reason::Channel => self.denied_channel += 1,
            Reason::Auth => self.denied_auth += 1,
        }
        let similar = self.entries.iter().take(SCAN).position(|e| {
            e.reason == d.reason
                && e.context == d.context
                && e.updated_ms.abs_diff(now_ms) <= GROUPING_MS
                && e.object == d.object
                && e.username == d.username
        });
        if let Some(at) = similar
            && let Some(mut e) = self.entries.remove(at)
        {
            e.count += 1;
            e.client_info = d.client_info;
            e.updated_ms = now_ms;
            self.entries.push_front(e);
            return;
        }
        let entry_id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(Entry {
            count: 1,
            reason: d.reason,
            context: d.context,
            object: d.object.to_vec(),
            username: d.username.to_vec(),
            client_info: d.client_info,
            entry_id,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        self.entries.truncate(max_len);
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }

    /// ACL LOG RESET.
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(object: &str) -> Denied<'_> {
        Denied {
            reason: Reason::Key,
            context: "toplevel",
            object: object.as_bytes(),
            username: b"u",
            client_info: "id=1".into(),
        }
    }

    #[test]
    fn similar_denials_merge_within_a_minute() {
        let mut log = AclLog::default();
        log.add(denied("k"), 1_000, 128);
        log.add(denied("k"), 2_000, 128);
        log.add(denied("other"), 3_000, 128);
        log.add(denied("k"), 50_000, 128);
        let e: Vec<_> = log.newest(10).map(|e| (e.count, e.entry_id)).collect();
        assert_eq!(e, [(3, 0), (1, 1)]);
        // A minute after the entry's latest denial, not its first, starts a new entry.
        log.add(denied("k"), 111_000, 128);
        assert_eq!(log.newest(10).count(), 3);
        log.add(denied("x"), 200_000, 2);
        assert_eq!(log.newest(10).count(), 2);
        assert_eq!(log.denied_key, 6);
    }
}
