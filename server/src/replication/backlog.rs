//! The replication backlog: the last `repl-backlog-size` bytes of the change stream, by
//! offset, from which every replica is fed and a reconnecting replica continues.

use std::collections::VecDeque;

/// A ring of the stream's latest bytes. Offsets count bytes since the replication ID
/// began, as Redis's do: `end` is `master_repl_offset`, and the byte at offset `o`
/// (1-based) is held while `o >= first()`.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    cap: usize,
    end: u64,
    /// The database the stream last selected (a SELECT precedes a change to another).
    pub last_db: Option<usize>,
    /// Where a transaction's wrapping stands (see `Replication::begin_transaction`).
    pub tx: TxWrap,
}

/// A transaction's MULTI / EXEC around its changes in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxWrap {
    /// No transaction is running.
    #[default]
    None,
    /// One runs and has propagated nothing yet: MULTI goes before its first change.
    Pending,
    /// MULTI was sent: EXEC goes after its last change.
    Open,
}

impl Backlog {
    /// An empty backlog of `cap` bytes whose stream is at offset `end`.
    pub fn new(cap: usize, end: u64) -> Self {
        Backlog {
            buf: VecDeque::new(),
            cap: cap.max(1),
            end,
            last_db: None,
            tx: TxWrap::None,
        }
    }

    /// `master_repl_offset`.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The capacity (`repl_backlog_size`).
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Changes the capacity, dropping the oldest bytes beyond it.
    pub fn resize(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.trim();
    }

    /// The offset of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first(&self) -> u64 {
        self.end - self.buf.len() as u64 + 1
    }

    /// Appends bytes to the stream.
    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        self.end += bytes.len() as u64;
        self.trim();
    }

    fn trim(&mut self) {
        if self.buf.len() > self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
    }

    /// Whether a replica that wants the stream from offset `from` on can be fed from here.
    pub fn can_serve(&self, from: u64) -> bool {
        from >= self.first() && from <= self.end + 1
    }

    /// Up to `max` bytes from offset `from` on; None when they left the backlog.
    pub fn read_from(&self, from: u64, max: usize) -> Option<Vec<u8>> {
        if !self.can_serve(from) {
            return None;
        }
        let start = (from - self.first()) as usize;
        let n = (self.buf.len() - start).min(max);
        Some(self.buf.range(start..start + n).copied().collect())
    }
}

/// Appends a command in RESP's multibulk form.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn offsets_count_bytes_and_old_bytes_leave() {
        let mut b = Backlog::new(4, 10);
        assert_eq!(b.first(), 11);
        assert!(b.can_serve(11));
        assert!(!b.can_serve(12));
        b.append(b"abcdef");
        assert_eq!(b.end(), 16);
        assert_eq!(b.len(), 4);
        assert_eq!(b.first(), 13);
        assert_eq!(b.read_from(13, 100).unwrap(), b"cdef");
        assert_eq!(b.read_from(15, 1).unwrap(), b"e");
        assert_eq!(b.read_from(17, 10).unwrap(), b"");
        assert!(b.read_from(12, 10).is_none());
        assert!(b.read_from(18, 10).is_none());
    }

    #[test]
    fn commands_are_multibulk() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SELECT", b"1"]);
        assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n");
    }
}
