//! The replication backlog: the last `repl-backlog-size` bytes of the change stream, by
//! offset, from which every replica is fed and a reconnecting replica continues.

use bytes::BytesMut;

/// A ring of the stream's latest bytes. Offsets count bytes since the replication ID
/// began, as Redis's do: `end` is `master_repl_offset`, and the byte at offset `o`
/// (1-based) is held while `o >= first()`.
///
/// The ring is a plain buffer that fills up to its capacity and is then overwritten from
/// `oldest` on: appends and reads are one or two slice copies (a `VecDeque<u8>` extended
/// from a slice copies byte by byte).
#[derive(Debug)]
pub struct Backlog {
    ring: Vec<u8>,
    /// Where the oldest byte is once the ring is full (0 until then).
    oldest: usize,
    cap: usize,
    end: u64,
    /// The database the stream last selected (a SELECT precedes a change to another).
    pub last_db: Option<usize>,
    /// Where a transaction's wrapping stands (see `Replication::begin_transaction`).
    pub tx: TxWrap,
    /// Where [`Backlog::append_command`] encodes.
    scratch: BytesMut,
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
            ring: Vec::new(),
            oldest: 0,
            cap: cap.max(1),
            end,
            last_db: None,
            tx: TxWrap::None,
            scratch: BytesMut::new(),
        }
    }

    /// `master_repl_offset`.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// The capacity (`repl_backlog_size`).
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Changes the capacity, keeping the newest bytes that fit.
    pub fn resize(&mut self, cap: usize) {
        let cap = cap.max(1);
        let held = self.ring.len().min(cap);
        let mut kept = Vec::with_capacity(held);
        self.copy_out(self.ring.len() - held, held, &mut kept);
        self.ring = kept;
        self.oldest = 0;
        self.cap = cap;
    }

    /// The offset of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first(&self) -> u64 {
        self.end - self.ring.len() as u64 + 1
    }

    /// Appends bytes to the stream.
    pub fn append(&mut self, bytes: &[u8]) {
        self.end += bytes.len() as u64;
        let mut b = bytes;
        if b.len() >= self.cap {
            self.ring.clear();
            self.ring.extend_from_slice(&b[b.len() - self.cap..]);
            self.oldest = 0;
            return;
        }
        if self.ring.len() < self.cap {
            let n = (self.cap - self.ring.len()).min(b.len());
            self.ring.extend_from_slice(&b[..n]);
            b = &b[n..];
        }
        if b.is_empty() {
            return;
        }
        // Full: the new bytes overwrite the oldest ones.
        let first = (self.cap - self.oldest).min(b.len());
        self.ring[self.oldest..self.oldest + first].copy_from_slice(&b[..first]);
        let rest = &b[first..];
        self.ring[..rest.len()].copy_from_slice(rest);
        // b.len() < cap, so one subtraction wraps it (a division costs more on this path).
        self.oldest += b.len();
        if self.oldest >= self.cap {
            self.oldest -= self.cap;
        }
    }

    /// Appends a command in RESP's multibulk form, encoded in a buffer the backlog keeps
    /// (one copy into the ring, no allocation once it has grown).
    pub fn append_command(&mut self, args: &[&[u8]]) {
        self.append_args(args.iter().copied());
    }

    /// [`Backlog::append_command`] for arguments an iterator yields (counted first).
    pub fn append_args<'a>(&mut self, args: impl Iterator<Item = &'a [u8]> + Clone) {
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        encode_into(&mut frame, args);
        self.append(&frame);
        // A buffer grown by one huge command is not kept.
        if frame.capacity() <= 1 << 20 {
            self.scratch = frame;
        }
    }

    /// Whether a replica that wants the stream from offset `from` on can be fed from here.
    pub fn can_serve(&self, from: u64) -> bool {
        from >= self.first() && from <= self.end + 1
    }

    /// Copies up to `max` bytes from offset `from` on into `out` (cleared first); false when
    /// they left the backlog.
    pub fn read_from(&self, from: u64, max: usize, out: &mut Vec<u8>) -> bool {
        out.clear();
        if !self.can_serve(from) {
            return false;
        }
        let start = (from - self.first()) as usize;
        let n = (self.ring.len() - start).min(max);
        self.copy_out(start, n, out);
        true
    }

    /// Appends `n` bytes held, from the `start`-th oldest on, to `out`.
    fn copy_out(&self, start: usize, n: usize, out: &mut Vec<u8>) {
        let at = (self.oldest + start) % self.ring.len().max(1);
        let first = (self.ring.len() - at).min(n);
        out.extend_from_slice(&self.ring[at..at + first]);
        out.extend_from_slice(&self.ring[..n - first]);
    }
}

/// Appends a command in RESP's multibulk form (for the cold paths; the hot one encodes into
/// the backlog's own buffer, [`Backlog::append_command`]).
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut frame = BytesMut::new();
    encode_into(&mut frame, args.iter().copied());
    out.extend_from_slice(&frame);
}

fn encode_into<'a>(frame: &mut BytesMut, args: impl Iterator<Item = &'a [u8]> + Clone) {
    brooklet_resp::write_array_header(frame, args.clone().count());
    for a in args {
        brooklet_resp::write_bulk(frame, a);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_match_the_stream_across_the_ring_wrapping_around() {
        let mut b = Backlog::new(7, 0);
        let mut all = Vec::new();
        let mut out = Vec::new();
        for i in 0..300u32 {
            match i {
                100 => b.resize(5),
                150 => b.resize(13),
                _ => {}
            }
            // Pieces from empty to longer than the ring.
            let piece: Vec<u8> = (0..(i % 17)).map(|j| (i * 7 + j) as u8).collect();
            b.append(&piece);
            all.extend_from_slice(&piece);
            for from in b.first()..=b.end() + 1 {
                for max in [1, 3, 100] {
                    assert!(b.read_from(from, max, &mut out));
                    let at = (from - 1) as usize;
                    assert_eq!(out, all[at..(at + max).min(all.len())]);
                }
            }
        }
    }

    #[test]
    fn commands_are_encoded_alike_straight_into_the_backlog_or_into_a_frame() {
        let args: [&[u8]; 3] = [b"SET", b"", &[b'x'; 1234]];
        let mut frame = Vec::new();
        encode_command(&mut frame, &args);
        assert!(frame.starts_with(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$1234\r\nxxx"));
        let mut b = Backlog::new(1 << 20, 0);
        b.append_command(&args);
        assert_eq!(b.end(), frame.len() as u64);
        let mut out = Vec::new();
        assert!(b.read_from(1, usize::MAX, &mut out));
        assert_eq!(out, frame);
    }

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
        let mut out = Vec::new();
        assert!(b.read_from(13, 100, &mut out));
        assert_eq!(out, b"cdef");
        assert!(b.read_from(15, 1, &mut out));
        assert_eq!(out, b"e");
        assert!(b.read_from(17, 10, &mut out));
        assert_eq!(out, b"");
        assert!(!b.read_from(12, 10, &mut out));
        assert!(!b.read_from(18, 10, &mut out));
    }

    #[test]
    fn commands_are_multibulk() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SELECT", b"1"]);
        assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n");
    }
}
