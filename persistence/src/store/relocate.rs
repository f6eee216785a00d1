//! A stream under another name (RENAME, RENAMENX, MOVE) or a copy of it under another
//! name (COPY); strings moved or copied (one record each).
//!
//! A stream's records are keyed by its name, so a new name rewrites them all: first the
//! stream's own batch takes out of the tail log whatever it still holds of the stream
//! (its appends, its dirty group and IDMP records), so that fjall holds the whole stream;
//! then one batch writes every record under the new name, removes the old ones (a move),
//! and leaves the old name a floor against its logged creation. Either batch is atomic: a
//! crash between the two leaves the stream complete under its old name. The second batch
//! numbers the stream anew, so nothing logged under either name in an earlier life applies
//! to it at replay. Its cost is one read and one write per record, in one batch: about a
//! second per million entries, during which the shards of both names stay locked.

use std::sync::atomic::Ordering;

use crate::codec::{encode_idmp, encode_stream};
use crate::error::StoreError;
use crate::keys::{db_prefix, stream_prefix};
use crate::purge::{Purge, purge_key};
use crate::stored::StoredStream;

use super::Store;
use super::delete::LAZY_PURGE_RECORDS;

/// Where a key goes: database and name.
pub type KeyName<'a> = (u32, &'a [u8]);

impl Store {
    /// Renames stream `from` (which `stream` is) to `to`, or moves it to another database;
    /// returns the sequence of the batch. A string at `to` is replaced; a stream there,
    /// `replaced`, only if [`Store::replaces_in_one_batch`] says so (the caller deletes
    /// another first). `deadline` is the key's deadline under its new name.
    ///
    /// # Errors
    /// When the engine refuses a batch; the stream is then still under `from` (its first
    /// batch may have written its logged changes into fjall, which changes nothing seen).
    pub fn move_stream(
        &self,
        from: KeyName<'_>,
        to: KeyName<'_>,
        stream: &mut StoredStream,
        deadline: Option<u64>,
        replaced: Option<&StoredStream>,
    ) -> Result<u64, StoreError> {
        let n = self.rewrite_stream(from, to, stream, deadline, true, replaced)?;
        stream.set_incarnation(n.1);
        stream.set_seq(n.0);
        // Its next logged record must list its new name among the open segment's streams,
        // or the checkpoint would retire that segment without writing the record.
        stream.set_log_segment(0);
        Ok(n.0)
    }

    /// Copies stream `from` (which `stream` is) to `to` (COPY), groups and all; returns the
    /// sequence of the batch and the copy, which has no entry source yet. What `to` may
    /// hold is as for [`Store::move_stream`].
    ///
    /// # Errors
    /// When the engine refuses a batch.
    pub fn copy_stream(
        &self,
        from: KeyName<'_>,
        to: KeyName<'_>,
        stream: &mut StoredStream,
        deadline: Option<u64>,
        replaced: Option<&StoredStream>,
    ) -> Result<(u64, StoredStream), StoreError> {
        let (seq, n) = self.rewrite_stream(from, to, stream, deadline, false, replaced)?;
        let mut copy = StoredStream::new();
        *copy.stream_mut() = stream.stream().clone();
        copy.set_incarnation(n);
        copy.set_stored();
        // Its pending records are in fjall under the new name: acknowledging one must write
        // the record's removal, not forget it as one fjall never had.
        copy.mark_groups_stored();
        copy.set_seq(seq);
        Ok((seq, copy))
    }

    /// Writes string `value` under `to` with `deadline`, replacing what is there (the
    /// stream `replaced`, if any, removed as DEL removes it), and removes `from` when
    /// `remove_from` (RENAME, MOVE, COPY of a string), as one batch.
    ///
    /// # Errors
    /// When the engine refuses the batch.
    pub fn move_string(
        &self,
        from: KeyName<'_>,
        to: KeyName<'_>,
        value: &[u8],
        deadline: Option<u64>,
        remove_from: bool,
        replaced: Option<&StoredStream>,
    ) -> Result<u64, StoreError> {
        let src = stream_prefix(from.0, from.1);
        let dst = stream_prefix(to.0, to.1);
        // A checkpoint batch holding either key's value, committed after this one, would
        // bring it back.
        self.wait_for_checkpoint();
        let fill = |batch: &mut fjall::OwnedWriteBatch, ks: &super::Keyspaces| {
            if remove_from {
                batch.remove(&ks.strings, src.clone());
                batch.remove(&ks.expires, src.clone());
                // Logged strings and deadlines of the old name must not bring it back.
                self.leave_floor(batch, &src);
            }
            batch.insert(&ks.strings, dst.as_slice(), value);
            match deadline {
                Some(ms) => batch.insert(&ks.expires, dst.as_slice(), ms.to_be_bytes()),
                None => batch.remove(&ks.expires, dst.clone()),
            }
        };
        match replaced {
            // The stream's removal and the string are one batch, as SET over a stream is.
            Some(stream) => self.remove_under_then(dst.clone(), [stream], fill),
            None => {
                let mut batch = self.batch();
                fill(&mut batch, &self.ks);
                // Nor may those logged before under the new name replay over this value.
                let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
                self.leave_floor(&mut batch, &dst);
                self.commit(batch)
            }
        }
    }

    /// Whether a move or copy of stream `stream` (None: a string) to `to` replaces the
    /// stream `replaced` there in the same batch: both small enough for one batch and no
    /// purge pending under `to`. Otherwise the caller deletes `replaced` first.
    pub fn replaces_in_one_batch(
        &self,
        to: KeyName<'_>,
        replaced: &StoredStream,
        stream: Option<&StoredStream>,
    ) -> bool {
        let small = |s: &StoredStream| super::delete::stored_records(s) <= LAZY_PURGE_RECORDS;
        match stream {
            None => true,
            Some(s) => {
                small(s) && small(replaced) && !self.purges.overlaps(&stream_prefix(to.0, to.1))
            }
        }
    }

    /// The batches of a stream's move or copy (see the module's comment); returns the
    /// last one's sequence and the incarnation it gave the stream under `to`.
    fn rewrite_stream(
        &self,
        from: KeyName<'_>,
        to: KeyName<'_>,
        stream: &mut StoredStream,
        deadline: Option<u64>,
        remove_from: bool,
        replaced: Option<&StoredStream>,
    ) -> Result<(u64, u64), StoreError> {
        let src = stream_prefix(from.0, from.1);
        let dst = stream_prefix(to.0, to.1);
        // A purge under either name, of a deletion or of a trim of any life, would take
        // records this writes (or leave under the new name records it has yet to remove).
        self.purges.wait_clear(&src, None);
        self.purges.wait_clear(&dst, None);
        self.settle(from, stream)?;
        self.wait_for_checkpoint();
        let chunked = super::delete::stored_records(stream) > LAZY_PURGE_RECORDS;
        // Folded into the last batch only when nothing is chunked (see
        // `replaces_in_one_batch`, which the caller asked).
        let replaced = replaced.filter(|_| !chunked);
        if chunked {
            // Until the last batch names the stream under `to`, a start-up removes what
            // the earlier ones copied there, as it finishes a deletion's purge.
            let mut batch = self.batch();
            batch.insert(&self.ks.meta, purge_key(&dst), []);
            self.commit(batch)?;
        }
        let written = self.copy_records(
            &src,
            &dst,
            stream,
            deadline,
            remove_from,
            chunked,
            replaced.is_some(),
        );
        match written {
            Ok((seq, incarnation)) => {
                if chunked && remove_from {
                    self.purges.add(Purge::deleted(src));
                }
                Ok((seq, incarnation))
            }
            Err(e) => {
                if chunked {
                    self.purges.add(Purge::deleted(dst));
                }
                Err(e)
            }
        }
    }

    /// Copies every record of the settled stream under `src` to `dst`, in batches of
    /// [`LAZY_PURGE_RECORDS`] when `chunked`, and ends with the batch that names the stream
    /// under `dst` (its record, with a new incarnation, and its deadline), which also removes
    /// it from `src` when `remove_from`: at once, or, when `chunked`, its stream record and a
    /// purge marker for the rest, as a DEL of a large stream does. With `replace`, the
    /// records of the stream `dst` held go in that batch too.
    #[allow(clippy::too_many_arguments)]
    fn copy_records(
        &self,
        src: &[u8],
        dst: &[u8],
        stream: &StoredStream,
        deadline: Option<u64>,
        remove_from: bool,
        chunked: bool,
        replace: bool,
    ) -> Result<(u64, u64), StoreError> {
        let mut batch = self.batch();
        let mut in_batch = 0usize;
        let mut removed = 0u64;
        for ks in self.ks.stream_records() {
            let is_stream_record = std::ptr::eq(ks, &self.ks.streams);
            // The replaced stream's records that no copy overwrites: one key is never both
            // written and removed in a batch (fjall would keep both).
            let mut leftover = hashbrown::HashSet::new();
            if replace && !is_stream_record {
                for kv in ks.prefix(dst) {
                    leftover.insert(kv.key()?.to_vec());
                }
            }
            for kv in ks.prefix(src) {
                let (k, v) = kv.into_inner()?;
                if is_stream_record {
                    continue;
                }
                if remove_from && !chunked {
                    batch.remove(ks, k.to_vec());
                    removed += 1;
                }
                let mut nk = dst.to_vec();
                nk.extend_from_slice(&k[src.len()..]);
                leftover.remove(&nk);
                batch.insert(ks, nk, v.to_vec());
                in_batch += 1;
                if chunked && in_batch >= LAZY_PURGE_RECORDS {
                    self.commit(std::mem::replace(&mut batch, self.batch()))?;
                    in_batch = 0;
                }
            }
            removed += leftover.len() as u64;
            for k in leftover {
                batch.remove(ks, k);
            }
        }
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        // Strings and deadlines logged under the new name before the move must not replay
        // over the stream: a floor below the stream's new life, which its own later records
        // carry, so they still replay.
        self.leave_floor(&mut batch, dst);
        let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
        let record = encode_stream(&stream.meta(), incarnation, &encode_idmp(stream.idmp()));
        batch.insert(&self.ks.streams, dst, record);
        batch.remove(&self.ks.strings, dst.to_vec());
        match deadline {
            Some(ms) => batch.insert(&self.ks.expires, dst, ms.to_be_bytes()),
            None => batch.remove(&self.ks.expires, dst.to_vec()),
        }
        if chunked {
            batch.remove(&self.ks.meta, purge_key(dst));
        }
        if remove_from {
            batch.remove(&self.ks.streams, src.to_vec());
            batch.remove(&self.ks.expires, src.to_vec());
            if chunked {
                batch.insert(&self.ks.meta, purge_key(src), []);
            }
            // Logged appends of the stream under its old name, its creation included, must
            // not make a stream of that name at replay.
            self.leave_floor(&mut batch, src);
        }
        let seq = self.commit(batch)?;
        if removed > 0 {
            self.note_removed(removed);
        }
        Ok((seq, incarnation))
    }
}

impl Store {
    /// Makes fjall hold all of stream `name`: its own batch takes what the tail log still
    /// holds of it (waiting for a checkpoint batch that holds it to commit first, which
    /// then leaves nothing for the checkpoint to end on it under a name it may no longer
    /// have).
    fn settle(&self, name: KeyName<'_>, stream: &mut StoredStream) -> Result<(), StoreError> {
        if stream.is_stored()
            && !stream.has_unflushed()
            && !stream.has_dirty_groups()
            && !stream.has_dirty_idmp()
            && !stream.is_flushing()
        {
            return Ok(());
        }
        self.write_own_batch_as(name.0, name.1, stream, &[], false)?;
        stream.end_flush(true);
        Ok(())
    }

    /// Swaps databases `a` and `b` (SWAPDB) in the store; `streams` are every stream of
    /// both, each under its name before the swap. Returns the batch's sequence, which each
    /// stream takes as its own.
    ///
    /// Each stream is first settled (see [`Store::settle`]); then one batch rewrites every
    /// record of both databases under the other's number, and leaves both databases a
    /// floor, so that no creation logged before the swap makes a stream at replay. Its
    /// cost is one read and one write per record of both databases.
    ///
    /// # Errors
    /// When the engine refuses a batch; nothing is swapped then.
    pub fn swap_dbs<'a>(
        &self,
        a: u32,
        b: u32,
        streams: impl IntoIterator<Item = (u32, &'a [u8], &'a mut StoredStream)>,
    ) -> Result<u64, StoreError> {
        let (pa, pb) = (db_prefix(a), db_prefix(b));
        self.purges.wait_overlaps(&pa);
        self.purges.wait_overlaps(&pb);
        let mut streams: Vec<_> = streams.into_iter().collect();
        for (db, key, s) in streams.iter_mut() {
            self.settle((*db, key), s)?;
        }
        self.wait_for_checkpoint();
        let mut batch = self.batch();
        let mut keyspaces: Vec<&fjall::Keyspace> = self.ks.stream_records().to_vec();
        keyspaces.push(&self.ks.strings);
        keyspaces.push(&self.ks.expires);
        for ks in keyspaces {
            let mut written = hashbrown::HashSet::new();
            let mut old = Vec::new();
            for (from, to) in [(&pa, &pb), (&pb, &pa)] {
                for kv in ks.prefix(from) {
                    let (k, v) = kv.into_inner()?;
                    let mut nk = to.clone();
                    nk.extend_from_slice(&k[from.len()..]);
                    batch.insert(ks, nk.clone(), v.to_vec());
                    written.insert(nk);
                    old.push(k.to_vec());
                }
            }
            // One key is never both written and removed in a batch: fjall would keep both.
            for k in old {
                if !written.contains(&k) {
                    batch.remove(ks, k);
                }
            }
        }
        let _floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        self.leave_floor(&mut batch, &pa);
        self.leave_floor(&mut batch, &pb);
        let seq = self.commit(batch)?;
        for (_, _, s) in streams {
            s.set_seq(seq);
            // As after a move: the next logged record lists the stream under its new name.
            s.set_log_segment(0);
        }
        Ok(seq)
    }
}
