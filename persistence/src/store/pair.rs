//! A change to two streams as one step: dead-lettering takes an entry out of a group's
//! pending list in one stream and appends it to another, and neither may survive a crash
//! without the other.

use brooklet_streams::Mutation;

use crate::error::StoreError;
use crate::keys::stream_prefix;
use crate::stored::StoredStream;

use super::Store;

/// One stream's part of a [`Store::write_streams`]: its key, its stored state after the
/// command, and the command's records for it.
pub struct StreamChange<'a> {
    /// The stream's key.
    pub key: &'a [u8],
    /// The stream, after the change.
    pub stream: &'a mut StoredStream,
    /// What changed.
    pub muts: &'a [Mutation],
}

impl Store {
    /// Writes the changes of two streams of database `db` (distinct keys) as one atomic
    /// fjall batch, each with what the tail log still holds of it, as if each were its own
    /// batch; returns its sequence, which both streams keep. The caller holds both streams'
    /// shard locks.
    ///
    /// # Errors
    /// When the engine refuses the batch; both streams are then in doubt, as
    /// [`Store::write_stream`] leaves one.
    pub fn write_streams(
        &self,
        db: u32,
        a: StreamChange<'_>,
        b: StreamChange<'_>,
    ) -> Result<u64, StoreError> {
        let (ta, fa) = self.take_for_batch(db, a.key, a.stream, a.muts, false);
        let (tb, fb) = self.take_for_batch(db, b.key, b.stream, b.muts, false);
        let written = (|| {
            let mut batch = self.batch();
            self.add_floors(&mut batch, &ta.floors);
            self.add_floors(&mut batch, &tb.floors);
            let ra = self.fill_batch(&mut batch, db, a.key, a.stream, a.muts, fa)?;
            if !ta.groups.is_empty() {
                let current = ta.groups.current(a.stream);
                self.add_group_records(&mut batch, &stream_prefix(db, a.key), &current)?;
            }
            let rb = self.fill_batch(&mut batch, db, b.key, b.stream, b.muts, fb)?;
            if !tb.groups.is_empty() {
                let current = tb.groups.current(b.stream);
                self.add_group_records(&mut batch, &stream_prefix(db, b.key), &current)?;
            }
            let seq = self.commit(batch)?;
            self.removed(ra);
            self.removed(rb);
            Ok(seq)
        })();
        let ok = written.is_ok();
        self.after_batch(db, a.key, a.stream, ta, ok);
        self.after_batch(db, b.key, b.stream, tb, ok);
        match &written {
            Ok(seq) => {
                a.stream.set_seq(*seq);
                b.stream.set_seq(*seq);
            }
            Err(e) => {
                let health = &self.durability.health;
                if !health.broken() {
                    health.fail(
                        crate::FaultKind::EngineFailed,
                        format!("storing a dead-letter step already made in memory: {e}"),
                    );
                }
                a.stream.set_in_doubt();
                b.stream.set_in_doubt();
            }
        }
        written
    }
}
