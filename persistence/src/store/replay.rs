//! The tail log applied to the streams fjall holds at start-up (and DEBUG RELOAD).

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;

use crate::error::StoreError;
use crate::keys::stream_prefix;
use crate::load::{LoadedStream, RecoveryReport};
use crate::source::CacheMisses;
use crate::stored::StoredStream;
use crate::tail_log::{Probe, Record, StreamName};

use super::{Keyspaces, source};

/// Applies the tail log's records to the streams fjall holds, creating the streams it
/// created unless a deletion's floor says that life of the key is over.
pub(super) struct Replayer<'a> {
    streams: Vec<LoadedStream>,
    /// Where each stream sits in `streams`, by name.
    index: hashbrown::HashMap<StreamName, usize>,
    /// Deletion floors by the prefix they cover (a stream's, a database's, or empty).
    floors: hashbrown::HashMap<Vec<u8>, u64>,
    ks: &'a Keyspaces,
    budget: &'a Arc<AtomicUsize>,
    misses: &'a Arc<CacheMisses>,
}

impl<'a> Replayer<'a> {
    pub(super) fn new(
        ks: &'a Keyspaces,
        budget: &'a Arc<AtomicUsize>,
        misses: &'a Arc<CacheMisses>,
        mut streams: Vec<LoadedStream>,
    ) -> Result<Self, StoreError> {
        let floors = super::strings::read_floors(&ks.meta)?;
        for s in &mut streams {
            s.stream.set_stored();
            s.stream.mark_groups_stored();
        }
        let index = streams
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.db, s.key.clone()), i))
            .collect();
        Ok(Replayer {
            streams,
            index,
            floors,
            ks,
            budget,
            misses,
        })
    }

    /// The highest floor (0: none).
    pub(super) fn max_floor(&self) -> u64 {
        self.floors.values().copied().max().unwrap_or(0)
    }

    /// Whether a deletion ended the life `incarnation` of stream `key`.
    pub(super) fn dead(&self, db: u32, key: &[u8], incarnation: u64) -> bool {
        super::strings::covered(&self.floors, db, key, incarnation)
    }

    /// Applies one logged append if it belongs to the stream's life and is past what fjall
    /// holds of it (creating the stream if the record did and the key is free); the entry
    /// then counts as unflushed, as before the restart.
    pub(super) fn apply(&mut self, record: Record<'_>) -> bool {
        let a = match record {
            Record::Append(a) => a,
            // Strings are read over fjall's by `Store::load_keys`.
            Record::Strings(_) => return false,
            Record::Groups(g) => {
                return self
                    .index
                    .get(&Probe(g.db, g.key))
                    .and_then(|&i| self.streams.get_mut(i))
                    .is_some_and(|s| s.stream.replay_group_changes(g.incarnation, &g.changes));
            }
        };
        let i = match self.index.get(&Probe(a.db, a.key)) {
            Some(&i) => i,
            None if a.creates && !self.dead(a.db, a.key, a.incarnation) => {
                let key = Bytes::copy_from_slice(a.key);
                let mut stream = StoredStream::new();
                stream.attach_source(source(
                    self.ks,
                    self.budget,
                    self.misses,
                    stream_prefix(a.db, &key),
                ));
                stream.set_incarnation(a.incarnation);
                if let Some(config) = a.idmp_config {
                    stream.init_idmp_config(config);
                }
                self.index.insert((a.db, key.clone()), self.streams.len());
                self.streams.push(LoadedStream {
                    db: a.db,
                    key,
                    stream,
                });
                self.streams.len() - 1
            }
            None => return false,
        };
        self.streams[i].stream.replay_append(
            a.incarnation,
            a.id,
            a.fields,
            a.new_node,
            a.idmp.as_ref(),
        )
    }

    /// The streams, with the count in `report` including those the log created.
    pub(super) fn finish(self, report: &mut RecoveryReport) -> Vec<LoadedStream> {
        report.streams = self.streams.len() as u64;
        self.streams
    }
}
