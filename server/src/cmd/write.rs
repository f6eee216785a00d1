//! The write sequence every stream write command shares: lock the key's shard, find (or
//! create) the stream, apply the command, persist what changed while the lock is still held
//! (so batches reach the store in the order the changes were made), release the lock, then
//! publish the keyspace events and mark the key changed, which dirties WATCHers and wakes
//! the clients blocked on it once the command returns.
//!
//! A handler is then a parse and one [`Ctx::write_stream`] call: the closure holds the
//! command's semantics and says, through [`Effects`], what the events are.

use bytes::Bytes;

use brooklet_persistence::{StoredStream, StreamChange};
use brooklet_streams::{IdmpConfig, Mutation, RefPolicy, Retention, Stream};

use super::Ctx;
use super::dead_letter::{
    DeadLetterLocks, append_dead_letters, dead_letters, has_dead_letters, lock_with_dead_letters,
};
use crate::error::CommandError;
use crate::keyspace::Value;
use crate::notify::EventClass;
use crate::publish::{keyspace_event, keyspace_events};
use crate::replication::propagate;
use crate::small_bytes::SmallBytes;

/// A write under dead-letter locks: the command's result, and the dead-letter key it
/// appended to (with whether that created it), if any.
type DeadLetterOutcome<T> = (Result<T, CommandError>, Option<(Bytes, bool)>);

/// What a write does when its key does not exist. An error is built only when it is needed.
pub(crate) enum Missing<'e, T> {
    /// Start a new, empty stream; it is stored only if the command succeeds.
    Create,
    /// Answer with this value and change nothing.
    Reply(T),
    /// Publish `keymiss`, then answer with this value.
    MissReply(T),
    /// Fail with this error.
    Fail(&'e dyn Fn() -> CommandError),
    /// Publish `keymiss`, then fail with this error.
    MissFail(&'e dyn Fn() -> CommandError),
}

/// What a write asks for once the shard lock is released: its stream events, in order, and
/// whether watchers and blocked readers hear of the key. Recorded as the command goes, so a
/// command that fails after changing the stream still reports what it changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Effects {
    /// No command publishes more than two (XADD: `xadd`, then `xtrim`).
    events: [Option<&'static str>; 2],
    touched: bool,
    /// The changes are ones Redis does not count as writes (an existing consumer's
    /// seen-time, a history re-read's delivery time and count): not logged, not counted,
    /// written by the next checkpoint (see `Store::note_untracked`).
    untracked: bool,
    ready: bool,
}

impl Effects {
    /// Asks for the stream event `event` and for the key to be marked changed.
    pub(crate) fn changed(&mut self, event: &'static str) {
        self.announce(event);
        self.touched = true;
    }

    /// Says the changes are ones Redis neither counts as a write nor propagates.
    pub(crate) fn untracked(&mut self) {
        self.untracked = true;
    }

    /// Asks for the clients blocked on the key to be served again, without marking the key
    /// changed for its watchers.
    pub(crate) fn wake(&mut self) {
        self.ready = true;
    }

    /// Asks for the stream event `event` without marking the key changed (a consumer
    /// created on first use: Redis neither dirties WATCH nor wakes readers for it).
    pub(crate) fn announce(&mut self, event: &'static str) {
        let slot = self.events.iter_mut().find(|e| e.is_none());
        debug_assert!(slot.is_some(), "more than two events for one write");
        if let Some(slot) = slot {
            *slot = Some(event);
        }
    }
}

impl Ctx<'_> {
    /// Runs `apply` on the stream at `key` under its shard lock and persists the mutations
    /// it records, even when it fails (a command can fail after it changed the stream, for
    /// instance when a trim cannot read back an evicted node: what changed is written all
    /// the same). Then, unlocked, publishes `new` for a created key and the events `apply`
    /// recorded, and marks the key changed if asked.
    pub(crate) fn write_stream<T>(
        &mut self,
        key: &Bytes,
        missing: Missing<'_, T>,
        apply: impl FnOnce(&mut Stream, &mut Vec<Mutation>, &mut Effects) -> Result<T, CommandError>,
    ) -> Result<T, CommandError> {
        let mut effects = Effects::default();
        let mut out = Vec::new();
        let mut created = false;
        let mut dead_lettered = None;
        let result = loop {
            let mut shard = self.db().lock(key);
            // One lookup of the key on the hot path (an existing stream): with 10,000
            // streams each lookup is a cache miss or two.
            match shard.get_mut(key) {
                Some(v) => {
                    let stream = v.stream_mut()?;
                    if !has_dead_letters(stream) {
                        let result = apply(stream, &mut out, &mut effects);
                        let untracked = effects.untracked
                            && self.shared.store.note_untracked(
                                self.client.db as u32,
                                key,
                                stream,
                                &out,
                            );
                        if !untracked {
                            self.persist(key, stream, &out)?;
                        }
                        propagate::stream_change(
                            self.shared,
                            self.client.db,
                            key,
                            &out,
                            false,
                            &effects.events,
                        );
                        // The reply may show the stream as earlier commands left it (a read of
                        // history changes nothing): it waits for their changes too.
                        self.write_seq = self.write_seq.max(stream.seq());
                        break result;
                    }
                }
                None => {
                    let missed = match missing {
                        Missing::Create => None,
                        Missing::Reply(value) => return Ok(value),
                        Missing::Fail(e) => return Err(e()),
                        Missing::MissReply(value) => Some(Ok(value)),
                        Missing::MissFail(e) => Some(Err(e())),
                    };
                    if let Some(answer) = missed {
                        drop(shard);
                        self.key_miss(key)?;
                        return answer;
                    }
                    let mut stream = Box::new(StoredStream::new());
                    let config = self.shared.config();
                    stream.init_idmp_config(IdmpConfig {
                        duration: config.stream_idmp_duration,
                        maxsize: config.stream_idmp_maxsize,
                    });
                    let max_age = config.stream_max_age;
                    drop(config);
                    if max_age > 0 {
                        // Recorded, so the creation is a batch that writes the setting with
                        // the stream's record.
                        stream.set_retention(
                            Retention {
                                max_age,
                                policy: RefPolicy::KeepRef,
                            },
                            &mut out,
                        );
                    }
                    let value = apply(&mut stream, &mut out, &mut effects)?;
                    self.persist(key, &mut stream, &out)?;
                    propagate::stream_created(
                        self.shared,
                        self.client.db,
                        key,
                        stream.idmp().config(),
                        &out,
                        &effects.events,
                    );
                    if max_age > 0 {
                        self.shared.retention.add(self.client.db, key);
                    }
                    shard.insert(crate::keyspace::keep(key), Value::stream_value(stream));
                    created = true;
                    break Ok(value);
                }
            }
            // A group of this stream has a dead-letter stream: the command may move entries
            // into it, so it runs holding that stream's shard lock too.
            drop(shard);
            if let Some(locks) = lock_with_dead_letters(self.db(), key) {
                let (result, dlq) =
                    self.write_with_dead_letters(key, locks, apply, &mut out, &mut effects)?;
                dead_lettered = dlq;
                break result;
            }
        };
        let new = created.then_some((EventClass::New, "new"));
        let events = effects.events.into_iter().flatten();
        keyspace_events(
            self.shared,
            self.client.db,
            key,
            new.into_iter()
                .chain(events.map(|event| (EventClass::Stream, event))),
        );
        if effects.touched {
            self.key_changed(key);
        } else if effects.ready {
            self.ready.push((self.client.db, key.clone()));
        }
        if let Some((dlq_key, created)) = dead_lettered {
            self.stream_event("xdeadletter", key);
            if created {
                keyspace_event(
                    self.shared,
                    EventClass::New,
                    "new",
                    self.client.db,
                    &dlq_key,
                );
            }
            self.stream_event("xadd", &dlq_key);
            self.key_changed(&dlq_key);
        }
        result
    }

    /// [`Ctx::write_stream`] for a stream whose groups have dead-letter streams, under
    /// `locks`: runs `apply`, then appends what it dead-lettered to the dead-letter stream
    /// and stores both streams' changes as one batch. Returns the command's result and, if
    /// it dead-lettered anything, the dead-letter key and whether it was created.
    fn write_with_dead_letters<T>(
        &mut self,
        key: &Bytes,
        mut locks: DeadLetterLocks<'_>,
        apply: impl FnOnce(&mut Stream, &mut Vec<Mutation>, &mut Effects) -> Result<T, CommandError>,
        out: &mut Vec<Mutation>,
        effects: &mut Effects,
    ) -> Result<DeadLetterOutcome<T>, CommandError> {
        let db = self.db();
        // Out of the map while both are changed (the two may share a shard); no one else
        // sees the map meanwhile.
        let Some((src_key, mut src)) = locks.shard(db, key).and_then(|s| s.remove_entry(&key[..]))
        else {
            return Err(CommandError::msg(
                "ERR the dead-letter stream's shard is not locked",
            ));
        };
        let outcome = self.dead_letter_step(key, &mut locks, &mut src, apply, out, effects);
        if let Some(shard) = locks.shard(db, key) {
            shard.insert(src_key, src);
        }
        outcome
    }

    fn dead_letter_step<T>(
        &mut self,
        key: &Bytes,
        locks: &mut DeadLetterLocks<'_>,
        src: &mut Value,
        apply: impl FnOnce(&mut Stream, &mut Vec<Mutation>, &mut Effects) -> Result<T, CommandError>,
        out: &mut Vec<Mutation>,
        effects: &mut Effects,
    ) -> Result<DeadLetterOutcome<T>, CommandError> {
        let db = self.db();
        let stream = src.stream_mut()?;
        // A dead-letter key holding another type refuses the command before it changes
        // anything; a dead-letter stream that cannot take another auto ID suspends
        // dead-lettering into it for this command (its groups deliver as without one), so
        // the source never loses an entry the dead-letter stream cannot take.
        let mut full = Vec::new();
        for dlq_key in stream.dead_letter_keys() {
            if let Some(v) = locks.shard(db, dlq_key).and_then(|s| s.get(dlq_key))
                && v.stream()?.last_id() == brooklet_streams::StreamId::MAX
            {
                full.push(dlq_key.clone());
            }
        }
        if !full.is_empty() {
            stream.suspend_dead_letters(&full, true);
        }
        let result = apply(stream, out, effects);
        if !full.is_empty() {
            stream.suspend_dead_letters(&full, false);
        }
        let dead = dead_letters(out);
        let Some(dlq_key) = dead.first().map(|d| d.key.clone()) else {
            let untracked = effects.untracked
                && self
                    .shared
                    .store
                    .note_untracked(self.client.db as u32, key, stream, out);
            if !untracked {
                self.persist(key, stream, out)?;
            }
            propagate::stream_change(
                self.shared,
                self.client.db,
                key,
                out,
                false,
                &effects.events,
            );
            self.write_seq = self.write_seq.max(stream.seq());
            return Ok((result, None));
        };
        let Some(shard) = locks.shard(db, &dlq_key) else {
            return Err(CommandError::msg(
                "ERR the dead-letter stream's shard is not locked",
            ));
        };
        let (dkey, mut dval, created) = match shard.remove_entry(&dlq_key[..]) {
            Some((k, v)) => (k, v, false),
            None => {
                let mut fresh = Box::new(StoredStream::new());
                let config = self.shared.config();
                fresh.init_idmp_config(IdmpConfig {
                    duration: config.stream_idmp_duration,
                    maxsize: config.stream_idmp_maxsize,
                });
                drop(config);
                (
                    SmallBytes::copy_of(&dlq_key),
                    Value::stream_value(fresh),
                    true,
                )
            }
        };
        let stored =
            self.store_dead_letters(key, stream, out, (&dlq_key, created), &mut dval, &dead);
        if stored.is_ok() {
            let mut events = effects.events.to_vec();
            events.push(Some("xdeadletter"));
            propagate::stream_change(self.shared, self.client.db, key, out, false, &events);
        }
        if let Some(shard) = locks.shard(db, &dlq_key)
            && (!created || stored.is_ok())
        {
            shard.insert(dkey, dval);
        }
        stored?;
        Ok((result, Some((dlq_key, created))))
    }

    /// Appends `dead` to the dead-letter stream `dval` and stores it with the source's
    /// changes, as one batch; `created` says whether the dead-letter stream is new (its
    /// replicas publish `new` for it).
    fn store_dead_letters(
        &mut self,
        key: &Bytes,
        stream: &mut StoredStream,
        out: &[Mutation],
        (dlq_key, created): (&Bytes, bool),
        dval: &mut Value,
        dead: &[brooklet_streams::DeadLetter],
    ) -> Result<(), CommandError> {
        let dlq = dval.stream_mut()?;
        let mut dlq_out = Vec::with_capacity(dead.len());
        let limits = {
            let config = self.shared.config();
            brooklet_streams::NodeLimits {
                max_bytes: config.stream_node_max_bytes,
                max_entries: config.stream_node_max_entries,
            }
        };
        append_dead_letters(
            dlq,
            key,
            dead,
            crate::client::now_ms(),
            &limits,
            &mut dlq_out,
        )?;
        let db = self.client.db as u32;
        let seq = self
            .shared
            .store
            .write_streams(
                db,
                StreamChange {
                    key,
                    stream,
                    muts: out,
                },
                StreamChange {
                    key: dlq_key,
                    stream: dlq,
                    muts: &dlq_out,
                },
            )
            .map_err(super::store_error)?;
        self.write_seq = self.write_seq.max(seq);
        propagate::stream_change(
            self.shared,
            self.client.db,
            dlq_key,
            &dlq_out,
            created,
            &[Some("xadd")],
        );
        for (k, s) in [(&key[..], &mut *stream), (&dlq_key[..], dlq)] {
            if !s.has_source() {
                s.attach_source(self.shared.store.source(db, k));
            }
        }
        Ok(())
    }

    /// Publishes a stream keyspace event for `key` (call after the shard lock is released).
    pub(crate) fn stream_event(&self, event: &str, key: &Bytes) {
        keyspace_event(self.shared, EventClass::Stream, event, self.client.db, key);
    }

    /// Notes that the reply shows `key`, a string or a key's deadline (or says the key is
    /// missing): it waits until the last write of its shard that no stream tracks (a
    /// removal, a string, a deadline) is safe, as [`Ctx::show`] waits for a stream's. After
    /// a fault that needs a restart, a key whose shard's last such write never became safe
    /// is refused instead.
    pub(crate) fn show_key(&mut self, key: &[u8]) -> Result<(), CommandError> {
        self.shared.stats.keyspace_hits.add(1);
        self.wait_for_key(
            key,
            "A recent change of a key may not be on disk, so this key",
        )
    }

    /// Notes that the reply shows that `key`, holding `value`, exists (EXISTS, TYPE): it
    /// waits for the write that made it what it is, as [`Ctx::show`] and
    /// [`Ctx::show_key`] do.
    pub(crate) fn show_value(
        &mut self,
        key: &[u8],
        value: &crate::keyspace::Value,
    ) -> Result<(), CommandError> {
        match value {
            crate::keyspace::Value::Stream(s, _) => self.show(s),
            crate::keyspace::Value::String(..) | crate::keyspace::Value::StoredString(_) => {
                self.show_key(key)
            }
        }
    }

    /// Notes that the reply shows the key space as a whole (KEYS, SCAN, DBSIZE): it waits
    /// for every write committed so far, since any of them may have added or removed a key.
    pub(crate) fn show_all(&mut self) -> Result<(), CommandError> {
        let store = &self.shared.store;
        let seq = store.committed_seq();
        if seq > self.write_seq {
            if store.failed() && seq > store.safe_seq() {
                return Err(super::in_doubt_error(
                    store,
                    "A recent change may not be on disk, so the key space",
                ));
            }
            self.write_seq = seq;
        }
        Ok(())
    }

    /// [`Ctx::show_key`], with `what` the subject of the refusal's "is not shown".
    fn wait_for_key(&mut self, key: &[u8], what: &str) -> Result<(), CommandError> {
        let seq = self.db().key_seq(key);
        if seq > self.write_seq {
            let store = &self.shared.store;
            if store.failed() && seq > store.safe_seq() {
                return Err(super::in_doubt_error(store, what));
            }
            self.write_seq = seq;
        }
        Ok(())
    }

    /// Publishes the `keymiss` event of a command that found no key, whose reply waits as
    /// [`Ctx::show_key`] says.
    pub(crate) fn key_miss(&mut self, key: &Bytes) -> Result<(), CommandError> {
        self.shared.stats.keyspace_misses.add(1);
        self.wait_for_key(
            key,
            "A recent change of a key may not be on disk, so whether this key exists",
        )?;
        keyspace_event(
            self.shared,
            EventClass::KeyMiss,
            "keymiss",
            self.client.db,
            key,
        );
        Ok(())
    }
}
