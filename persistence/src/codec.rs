//! Value encoding: fixed-width big-endian integers and u32-length-prefixed byte strings.

use brooklet_streams::{NodeMeta, StreamId};
use bytes::Bytes;

use crate::error::StoreError;

/// Builds a value.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// Appends a u64.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends an optional u64 (a presence byte, then the value).
    pub fn opt_u64(mut self, v: Option<u64>) -> Self {
        match v {
            Some(v) => {
                self.0.push(1);
                self.0.extend_from_slice(&v.to_be_bytes());
            }
            None => self.0.push(0),
        }
        self
    }

    /// Appends a byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// Appends a length-prefixed byte string.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
}

/// Reads a value written by [`Writer`].
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over a value of the named class (for error messages).
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(StoreError::Corrupt(format!(
                "truncated {} record",
                self.what
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a u64.
    pub fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(
            b.try_into()
                .map_err(|_| StoreError::Corrupt(self.what.into()))?,
        ))
    }

    /// Reads an optional u64.
    pub fn opt_u64(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(if self.u8()? == 1 {
            Some(self.u64()?)
        } else {
            None
        })
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<Bytes, StoreError> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes(
            len.try_into()
                .map_err(|_| StoreError::Corrupt(self.what.into()))?,
        ) as usize;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }
}

/// Flag bit: the entry opened a node.
pub const NEW_NODE: u8 = 1;
/// Flag bit: the entry was deleted (XDEL) but its node still holds its slot, as Redis's does.
pub const DELETED: u8 = 2;

/// Flags an encoded entry value deleted (a tombstone), in place.
pub fn mark_deleted(value: &mut [u8]) {
    if let Some(flags) = value.first_mut() {
        *flags |= DELETED;
    }
}

/// An entry value: the flags byte, then the field/value count and each string.
pub fn encode_entry(fields: &[Bytes], new_node: bool) -> Vec<u8> {
    let size: usize = fields.iter().map(|f| f.len() + 4).sum();
    encode_entry_into(
        Vec::with_capacity(size + 5),
        fields.iter().map(|f| &f[..]),
        new_node,
    )
}

/// [`encode_entry`] from the fields as slices (a node's own bytes, at a checkpoint).
pub fn encode_entry_slices<'a>(fields: impl Iterator<Item = &'a [u8]>, new_node: bool) -> Vec<u8> {
    encode_entry_into(Vec::with_capacity(64), fields, new_node)
}

fn encode_entry_into<'a>(
    buf: Vec<u8>,
    fields: impl Iterator<Item = &'a [u8]>,
    new_node: bool,
) -> Vec<u8> {
    let flags = if new_node { NEW_NODE } else { 0 };
    let mut w = Writer(buf).u8(flags);
    let count_at = w.0.len();
    w.0.extend_from_slice(&0u32.to_be_bytes());
    let mut count: u32 = 0;
    for f in fields {
        w = w.bytes(f);
        count += 1;
    }
    w.0[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
    w.0
}

/// Decodes an entry value into (fields, flags).
pub fn decode_entry(value: &[u8]) -> Result<(Vec<Bytes>, u8), StoreError> {
    let mut r = Reader::new(value, "entry");
    let flags = r.u8()?;
    let n = u32::from_be_bytes(
        r.take(4)?
            .try_into()
            .map_err(|_| StoreError::Corrupt("entry".into()))?,
    ) as usize;
    let mut fields = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        fields.push(r.bytes()?);
    }
    Ok((fields, flags))
}

/// A node record: last ID, live and deleted counts, first and last live IDs.
pub fn encode_node(n: &NodeMeta) -> Vec<u8> {
    Writer::default()
        .u64(n.last.ms)
        .u64(n.last.seq)
        .u64(n.live)
        .u64(n.deleted)
        .u64(n.first_live.ms)
        .u64(n.first_live.seq)
        .u64(n.last_live.ms)
        .u64(n.last_live.seq)
        .0
}

/// Reads a node record written by [`encode_node`] for the node starting at `master`.
pub fn decode_node(master: StreamId, value: &[u8]) -> Result<NodeMeta, StoreError> {
    let mut r = Reader::new(value, "node");
    Ok(NodeMeta {
        master,
        last: StreamId::new(r.u64()?, r.u64()?),
        live: r.u64()?,
        deleted: r.u64()?,
        first_live: StreamId::new(r.u64()?, r.u64()?),
        last_live: StreamId::new(r.u64()?, r.u64()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncation_is_detected() {
        let fields = vec![Bytes::from("f"), Bytes::from(""), Bytes::from("v\r\n\x00")];
        let enc = encode_entry(&fields, true);
        assert!(matches!(decode_entry(&enc), Ok((f, NEW_NODE)) if f == fields));
        assert!(decode_entry(&enc[..enc.len() - 1]).is_err());
    }

    #[test]
    fn node_records_round_trip_and_truncation_is_detected() {
        let node = NodeMeta {
            master: StreamId::new(5, 0),
            last: StreamId::new(9, 3),
            live: 7,
            deleted: 2,
            first_live: StreamId::new(5, 1),
            last_live: StreamId::new(9, 2),
        };
        let enc = encode_node(&node);
        assert!(matches!(decode_node(node.master, &enc), Ok(n) if n == node));
        assert!(decode_node(node.master, &enc[..enc.len() - 1]).is_err());
    }
}
