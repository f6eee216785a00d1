//! The tail log's record: its frame (length, checksum, little-endian), its head (db, key,
//! incarnation, flags, little-endian) and its body, an append or a list of group changes,
//! in the record encodings fjall uses too ([`crate::codec`]).

use bytes::Bytes;

use brooklet_streams::{IdmpConfig, Mutation, StreamId};

use crate::codec::{self, Reader};

pub(super) const HEADER: usize = 12;

/// One logged append, as replay sees it.
pub struct Append<'a> {
    /// The stream's database.
    pub db: u32,
    /// The stream's key.
    pub key: &'a [u8],
    /// Which life of the key the stream was.
    pub incarnation: u64,
    /// Whether the entry opened a node.
    pub new_node: bool,
    /// Whether the entry created the stream.
    pub creates: bool,
    /// The entry's ID.
    pub id: StreamId,
    /// Fields and values, flattened.
    pub fields: Vec<Bytes>,
    /// The IDMP addition the append made (XADD IDMP / IDMPAUTO), if any.
    pub idmp: Option<Mutation>,
    /// The IDMP settings of the stream it created, if not the defaults.
    pub idmp_config: Option<IdmpConfig>,
}

/// One logged change to a stream's consumer groups alone.
pub struct GroupChanges<'a> {
    /// The stream's database.
    pub db: u32,
    /// The stream's key.
    pub key: &'a [u8],
    /// Which life of the key the stream was.
    pub incarnation: u64,
    /// The changes, in order.
    pub changes: Vec<Mutation>,
}

/// A record, as replay sees it.
pub enum Record<'a> {
    /// An append (perhaps creating its stream).
    Append(Append<'a>),
    /// Changes to consumer groups.
    Groups(GroupChanges<'a>),
    /// Strings and key deadlines set (format 9).
    Strings(super::strings::Strings),
}

/// A checksum for torn-write detection (not against tampering): eight bytes at a time.
pub(super) fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }
    for &x in chunks.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 31)
}

/// Flag: the entry opened a node.
pub(super) const OPENED_NODE: u8 = 1;
/// Flag: the entry created the stream.
pub(super) const CREATED: u8 = 2;
/// Flag: the record holds group changes, not an append.
pub(super) const GROUP_CHANGES: u8 = 4;
/// Flag: the body is in the shared record encodings ([`crate::codec`], format 7 on);
/// without it, format 6's little-endian layout (see [`super::legacy`]).
pub(super) const SHARED_ENCODING: u8 = 8;
/// Flag: the record sets strings or key deadlines (format 9, see [`super::strings`]).
pub(super) const STRINGS: u8 = 0x80;

/// Appends a record's head: db, key, incarnation and flags, little-endian as the frame is.
pub(super) fn put_head(out: &mut Vec<u8>, db: u32, key: &[u8], incarnation: u64, flags: u8) {
    out.extend_from_slice(&db.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&incarnation.to_le_bytes());
    out.push(flags);
}

/// Appends an append's body: its ID, then the entry record as fjall holds it, then what
/// it adds to IDMP ([`codec::put_append_idmp`]: nothing for a plain append).
pub(super) fn put_append(
    out: &mut Vec<u8>,
    id: StreamId,
    fields: &[Bytes],
    new_node: bool,
    idmp: Option<&Mutation>,
    idmp_config: Option<IdmpConfig>,
) {
    codec::put_id(out, id);
    codec::put_entry(out, fields.iter().map(|f| &f[..]), new_node);
    codec::put_append_idmp(out, idmp, idmp_config);
}

/// A logged append's ID, fields and IDMP parts.
pub(super) type AppendBody = (StreamId, Vec<Bytes>, Option<Mutation>, Option<IdmpConfig>);

/// Appends a group-changes body: their count, then each change (see
/// [`codec::put_group_change`]).
pub(super) fn put_group_changes(out: &mut Vec<u8>, changes: &[Mutation]) {
    codec::put_u32(out, changes.len() as u32);
    for m in changes {
        codec::put_group_change(out, m);
    }
}

/// Reads records from the front of `buf`.
pub(super) struct Parser {
    pub(super) buf: Bytes,
    pub(super) pos: usize,
}

impl Parser {
    pub(super) fn u32(&mut self) -> Option<u32> {
        let v = u32::from_le_bytes(self.buf.get(self.pos..self.pos + 4)?.try_into().ok()?);
        self.pos += 4;
        Some(v)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        let v = u64::from_le_bytes(self.buf.get(self.pos..self.pos + 8)?.try_into().ok()?);
        self.pos += 8;
        Some(v)
    }

    pub(super) fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        let b = self.buf.slice(self.pos..end);
        self.pos = end;
        Some(b)
    }

    /// The next whole, intact record's payload, or None at the end or at a torn record.
    pub(super) fn record(&mut self) -> Option<Parser> {
        let len = self.u32()? as usize;
        let sum = self.u64()?;
        let end = self.pos.checked_add(len)?;
        let payload = self.buf.get(self.pos..end)?;
        if checksum(payload) != sum {
            return None;
        }
        let p = Parser {
            buf: self.buf.slice(self.pos..end),
            pos: 0,
        };
        self.pos = end;
        Some(p)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    /// A record's head: db, key, incarnation and flags.
    pub(super) fn head(&mut self) -> Option<(u32, Bytes, u64, u8)> {
        Some((self.u32()?, self.bytes()?, self.u64()?, self.u8()?))
    }

    /// An append's ID and fields, from the rest of the record; its flags say how the body
    /// is encoded.
    pub(super) fn append(&mut self, flags: u8) -> Option<AppendBody> {
        if flags & SHARED_ENCODING == 0 {
            return self
                .legacy_append()
                .map(|(id, fields)| (id, fields, None, None));
        }
        let body = self.rest();
        let mut r = Reader::new(&body, "tail-log append");
        let id = r.id().ok()?;
        let (fields, _) = codec::read_entry(&mut r, |s| body.slice_ref(s)).ok()?;
        let (idmp, config) = codec::read_append_idmp(&mut r, id, &fields).ok()?;
        Some((id, fields, idmp, config))
    }

    /// Group changes, from the rest of the record; its flags say how the body is encoded.
    pub(super) fn group_changes(&mut self, flags: u8) -> Option<Vec<Mutation>> {
        if flags & SHARED_ENCODING == 0 {
            return self.legacy_group_changes();
        }
        let body = self.rest();
        let mut r = Reader::new(&body, "tail-log group changes");
        let n = r.u32().ok()? as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(codec::read_group_change(&mut r, |s| body.slice_ref(s)).ok()?);
        }
        Some(out)
    }

    /// A string record's changes, from the rest of the record.
    pub(super) fn strings(&mut self) -> Option<Vec<super::strings::StringChange>> {
        super::strings::read_strings(&self.rest()).ok()
    }

    /// What is left of the record.
    fn rest(&mut self) -> Bytes {
        let rest = self.buf.slice(self.pos.min(self.buf.len())..);
        self.pos = self.buf.len();
        rest
    }
}
