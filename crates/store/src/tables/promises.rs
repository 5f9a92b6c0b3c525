//! Kernel promises: state, decider, subscribers, value, refcount (spec §5), and each
//! unresolved promise's message queue.
//!
//! A promise is one key (schema version 8): its record `kpN` is its refcount, 4 bytes
//! little-endian, followed by its state ([`PromiseState`]'s encoding: a tag byte, then the
//! decider and subscribers, or the value). The count comes first so that a read of the
//! count alone takes 4 bytes and decodes nothing else, and a new count replaces those 4
//! bytes without re-encoding the state. Up to version 7 the count had a key of its own,
//! `kpN.rc`, and `kpN` held the state alone (`migrations/v8.rs` folds the two).
//!
//! An unresolved promise on which no message has ever waited is stored with the state tag
//! [`TAG_QUEUELESS`] instead of [`TAG_UNRESOLVED`] (same layout after the tag): settling it
//! then needs no lookup of a queue it cannot have (an LMDB miss per settle, most settles).
//! The first message queued on it rewrites the tag; a tag of [`TAG_UNRESOLVED`] only says
//! a queue may exist (records migrated from version 7 all say so). The audit reports a
//! queue of a promise whose record says it has none.

use ocap_types::{CapData, EndpointId, KPromiseId, KRef, Message};
use serde::{Deserialize, Serialize};

use super::codec::{Malformed, Reader, Writer};
use super::{KernelStore, Owner, keys};
use crate::error::{Record, StoreError};

/// Where a promise stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromiseState {
    /// Not settled: messages sent to it wait in its queue.
    Unresolved {
        /// The only party that may settle it; `None` for a host message's result.
        decider: Option<Owner>,
        /// Endpoints to notify, sorted, without duplicates.
        subscribers: Vec<EndpointId>,
    },
    /// Settled with a value.
    Fulfilled(CapData<KRef>),
    /// Settled with a rejection reason.
    Rejected(CapData<KRef>),
}

/// A kernel promise record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseRecord {
    /// State, decider, subscribers or value.
    pub state: PromiseState,
    /// Holds on the promise.
    pub refcount: u32,
}

impl PromiseRecord {
    /// The decider, if unresolved and decided by someone.
    pub fn decider(&self) -> Option<Owner> {
        match &self.state {
            PromiseState::Unresolved { decider, .. } => *decider,
            _ => None,
        }
    }

    /// True unless settled.
    pub fn is_unresolved(&self) -> bool {
        matches!(self.state, PromiseState::Unresolved { .. })
    }
}

/// Bytes of the refcount at the start of a promise's record.
const REFCOUNT_LEN: usize = 4;

/// The state tag of an unresolved promise that may have a message queue.
const TAG_UNRESOLVED: u8 = 0;
/// The state tag of an unresolved promise on which no message has ever waited: it has no
/// queue.
const TAG_QUEUELESS: u8 = 3;

/// A promise's record: `refcount` (u32 LE), then `state`'s encoding; an unresolved state
/// is tagged [`TAG_QUEUELESS`] if `queueless`.
fn encode_record(refcount: u32, state: &PromiseState, queueless: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(refcount);
    state.encode_into(&mut w, queueless);
    w.0
}

/// True if the record says no message has ever waited on its promise (an unresolved one).
fn record_queueless(bytes: &[u8]) -> bool {
    bytes.get(REFCOUNT_LEN) == Some(&TAG_QUEUELESS)
}

/// A record's two parts, unchecked: its refcount's bytes and its state's. A record holds
/// at least a state's tag byte after the count.
fn split_record(bytes: &[u8]) -> Result<([u8; REFCOUNT_LEN], &[u8]), Malformed> {
    match bytes.split_first_chunk::<REFCOUNT_LEN>() {
        Some((count, state)) if !state.is_empty() => Ok((*count, state)),
        _ => Err(Malformed("record truncated")),
    }
}

/// The refcount of a record, without decoding its state.
fn record_refcount(bytes: &[u8]) -> Result<u32, Malformed> {
    split_record(bytes).map(|(count, _)| u32::from_le_bytes(count))
}

/// The state of a record, without its refcount.
fn record_state(bytes: &[u8]) -> Result<PromiseState, Malformed> {
    PromiseState::decode(split_record(bytes)?.1)
}

/// A record's bytes with its refcount replaced by `refcount`, the state's bytes as they are
/// (the count cache's write-back: the state is neither decoded nor encoded).
fn with_refcount(bytes: &[u8], refcount: u32) -> Result<Vec<u8>, Malformed> {
    let (_, state) = split_record(bytes)?;
    let mut record = Vec::with_capacity(bytes.len());
    record.extend_from_slice(&refcount.to_le_bytes());
    record.extend_from_slice(state);
    Ok(record)
}

impl PromiseState {
    /// The state's encoding alone: what a record holds after its refcount, and what `kpN`
    /// held up to schema version 7 (migration tests write old stores with it).
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w, false);
        w.0
    }

    /// Writes the state; an unresolved one with the tag [`TAG_QUEUELESS`] if `queueless`.
    fn encode_into(&self, w: &mut Writer, queueless: bool) {
        match self {
            PromiseState::Unresolved {
                decider,
                subscribers,
            } => {
                w.u8(if queueless {
                    TAG_QUEUELESS
                } else {
                    TAG_UNRESOLVED
                });
                w.owner(*decider);
                w.u32(u32::try_from(subscribers.len()).expect("invariant: < 2^32 subscribers"));
                for ep in subscribers {
                    w.owner(Some(Owner::Endpoint(*ep)));
                }
            }
            PromiseState::Fulfilled(value) => {
                w.u8(1);
                w.capdata(value);
            }
            PromiseState::Rejected(value) => {
                w.u8(2);
                w.capdata(value);
            }
        }
    }

    /// Decodes a state's encoding (not a whole record: see [`record_state`]). Steps 2 → 3
    /// and 3 → 4 read version 2 and 3 records, which are this encoding alone, with it.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader(bytes);
        let state = match r.u8()? {
            TAG_UNRESOLVED | TAG_QUEUELESS => {
                let decider = r.owner()?;
                let n = r.u32()? as usize;
                if n > bytes.len() {
                    return Err(Malformed("subscriber count beyond record"));
                }
                let mut subscribers = Vec::with_capacity(n);
                for _ in 0..n {
                    match r.owner()? {
                        Some(Owner::Endpoint(ep)) => subscribers.push(ep),
                        _ => return Err(Malformed("subscriber is not an endpoint")),
                    }
                }
                PromiseState::Unresolved {
                    decider,
                    subscribers,
                }
            }
            1 => PromiseState::Fulfilled(r.capdata()?),
            2 => PromiseState::Rejected(r.capdata()?),
            _ => return Err(Malformed("bad promise state tag")),
        };
        r.finish()?;
        Ok(state)
    }
}

fn queue_name(id: KPromiseId) -> String {
    keys::part_text(KRef::Promise(id))
}

/// A message waiting in an unresolved promise's queue, and the endpoint that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingSend {
    /// The message.
    pub message: Message<KRef>,
    /// Its sender (`None` for the host's and services' sends), whose queued-message count
    /// it still adds to.
    pub sender: Option<EndpointId>,
}

impl WaitingSend {
    /// Decodes a promise-queue entry: a message's fields, plus its sender if it has one (so
    /// entries written before senders were recorded read as senderless).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, ocap_types::DecodeError> {
        let entry: WaitingEntryIn = ocap_types::cbor::from_slice(bytes)?;
        Ok(WaitingSend {
            message: Message {
                methargs: entry.methargs,
                result: entry.result,
            },
            sender: entry.sender,
        })
    }
}

/// A promise-queue entry as written: a [`Message`]'s fields and an optional sender.
#[derive(Serialize)]
struct WaitingEntryOut<'a> {
    methargs: &'a CapData<KRef>,
    result: Option<KRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<EndpointId>,
}

#[derive(Deserialize)]
struct WaitingEntryIn {
    methargs: CapData<KRef>,
    result: Option<KRef>,
    #[serde(default)]
    sender: Option<EndpointId>,
}

impl KernelStore {
    /// Creates an unresolved promise with refcount 1 and an empty message queue.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn create_promise(&mut self, decider: Option<Owner>) -> Result<KPromiseId, StoreError> {
        self.create_held_promise(decider, 1)
    }

    /// Creates an unresolved promise pinned once (see [`KernelStore::pin_promise`]): a host
    /// message's result. The same stored state as [`KernelStore::create_promise`] followed
    /// by `pin_promise`, written without reading back the new id's records (the pin of a new
    /// id cannot exist either), which in a burst of host messages were LMDB lookups.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn create_pinned_promise(
        &mut self,
        decider: Option<Owner>,
    ) -> Result<KPromiseId, StoreError> {
        // One hold for being made, one for the pin.
        let id = self.create_held_promise(decider, 2)?;
        self.set_new_pin_count(KRef::Promise(id), 1)?;
        Ok(id)
    }

    fn create_held_promise(
        &mut self,
        decider: Option<Owner>,
        refcount: u32,
    ) -> Result<KPromiseId, StoreError> {
        let id = KPromiseId(self.allocate(keys::COUNTER_PROMISE.as_bytes())?);
        let state = PromiseState::Unresolved {
            decider,
            subscribers: Vec::new(),
        };
        // The message queue is created by the first message that waits on the promise: most
        // promises never have one. A new id: no record of it can exist.
        self.kv
            .set_new(&keys::promise(id), &encode_record(refcount, &state, true))?;
        Ok(id)
    }

    /// The promise's record, `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn promise(&self, id: KPromiseId) -> Result<Option<PromiseRecord>, StoreError> {
        Ok(self.promise_and_queueless(id)?.map(|(record, _)| record))
    }

    /// The promise's record, and whether it says no message has ever waited on the promise
    /// (module doc), `None` if unknown.
    fn promise_and_queueless(
        &self,
        id: KPromiseId,
    ) -> Result<Option<(PromiseRecord, bool)>, StoreError> {
        let key = keys::promise(id);
        let Some(bytes) = self.kv.get_ref(&key)? else {
            return Ok(None);
        };
        let corrupt = |e| StoreError::corrupt("promises", &key, e);
        let state = record_state(&bytes).map_err(corrupt)?;
        // The count cache is ahead of the stored count while it holds one.
        let refcount = match self.counts.promise(id) {
            Some(count) => count,
            None => record_refcount(&bytes).map_err(corrupt)?,
        };
        Ok(Some((
            PromiseRecord { state, refcount },
            record_queueless(&bytes),
        )))
    }

    /// True if the promise's record says no message has ever waited on it, so that it has
    /// no queue (module doc); false for an unknown promise.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub(crate) fn promise_queueless(&self, id: KPromiseId) -> Result<bool, StoreError> {
        Ok(self
            .kv
            .get_ref(&keys::promise(id))?
            .is_some_and(|bytes| record_queueless(&bytes)))
    }

    /// The promise's state alone, `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn promise_state(&self, id: KPromiseId) -> Result<Option<PromiseState>, StoreError> {
        let key = keys::promise(id);
        match self.kv.get_ref(&key)? {
            None => Ok(None),
            Some(bytes) => record_state(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt("promises", &key, e)),
        }
    }

    /// The promise's refcount alone (the cached one, else the record's first 4 bytes; the
    /// state is not decoded), `None` if unknown.
    pub(crate) fn promise_refcount(&self, id: KPromiseId) -> Result<Option<u32>, StoreError> {
        if let Some(count) = self.counts.promise(id) {
            return Ok(Some(count));
        }
        let key = keys::promise(id);
        match self.kv.get_ref(&key)? {
            None => Ok(None),
            Some(bytes) => record_refcount(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt("promises", &key, e)),
        }
    }

    /// Writes the promise's refcount into its record (the state's bytes as they are); a
    /// no-op for an unknown promise, which has no record to hold a count.
    pub(crate) fn put_promise_refcount(
        &mut self,
        id: KPromiseId,
        count: u32,
    ) -> Result<(), StoreError> {
        self.counts.forget(KRef::Promise(id));
        self.write_promise_refcount(id, count)
    }

    /// [`KernelStore::put_promise_refcount`] without touching the count cache (its
    /// write-back).
    pub(crate) fn write_promise_refcount(
        &mut self,
        id: KPromiseId,
        count: u32,
    ) -> Result<(), StoreError> {
        let key = keys::promise(id);
        let Some(bytes) = self.kv.get_ref(&key)? else {
            return Ok(());
        };
        let record =
            with_refcount(&bytes, count).map_err(|e| StoreError::corrupt("promises", &key, e))?;
        self.kv.set(&key, &record)
    }

    /// Writes the promise's state, keeping its refcount (the cached one if the cache holds
    /// it, which the record then holds too; 0 for a promise with no record yet) and whether
    /// a message ever waited on it. Returns whether the record said none ever had.
    fn put_promise_state(
        &mut self,
        id: KPromiseId,
        state: &PromiseState,
    ) -> Result<bool, StoreError> {
        let key = keys::promise(id);
        let (stored, queueless) = match self.kv.get_ref(&key)? {
            Some(bytes) => (
                Some(
                    record_refcount(&bytes)
                        .map_err(|e| StoreError::corrupt("promises", &key, e))?,
                ),
                record_queueless(&bytes),
            ),
            None => (None, false),
        };
        let refcount = self.counts.promise(id).or(stored).unwrap_or(0);
        self.kv
            .set(&key, &encode_record(refcount, state, queueless))?;
        self.counts.written_back(KRef::Promise(id));
        Ok(queueless)
    }

    /// The promise's record, or [`StoreError::NotFound`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn existing_promise(&self, id: KPromiseId) -> Result<PromiseRecord, StoreError> {
        self.promise(id)?
            .ok_or_else(|| StoreError::NotFound(Record::Promise(id)))
    }

    /// Writes the promise's record (keeping whether a message ever waited on it).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn put_promise(
        &mut self,
        id: KPromiseId,
        record: &PromiseRecord,
    ) -> Result<(), StoreError> {
        let queueless = self.promise_queueless(id)?;
        self.counts.forget(KRef::Promise(id));
        self.kv.set(
            &keys::promise(id),
            &encode_record(record.refcount, &record.state, queueless),
        )
    }

    /// Sets the decider of an unresolved promise (a no-op on a settled one).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn set_decider(&mut self, id: KPromiseId, owner: Option<Owner>) -> Result<(), StoreError> {
        let (mut record, queueless) = self.existing_promise_and_queueless(id)?;
        if let PromiseState::Unresolved { decider, .. } = &mut record.state
            && *decider != owner
        {
            *decider = owner;
            self.rewrite_promise(id, &record, queueless)?;
        }
        Ok(())
    }

    /// Writes back a record just read with [`KernelStore::promise`] whose state changed: its
    /// count is the current one, so a cached count stays right (the record holds it now),
    /// and the record is read once, not again for its count as `put_promise_state` would.
    fn rewrite_promise(
        &mut self,
        id: KPromiseId,
        record: &PromiseRecord,
        queueless: bool,
    ) -> Result<(), StoreError> {
        self.kv.set(
            &keys::promise(id),
            &encode_record(record.refcount, &record.state, queueless),
        )?;
        self.counts.written_back(KRef::Promise(id));
        Ok(())
    }

    fn existing_promise_and_queueless(
        &self,
        id: KPromiseId,
    ) -> Result<(PromiseRecord, bool), StoreError> {
        self.promise_and_queueless(id)?
            .ok_or_else(|| StoreError::NotFound(Record::Promise(id)))
    }

    fn existing_state(&self, id: KPromiseId) -> Result<PromiseState, StoreError> {
        self.promise_state(id)?
            .ok_or_else(|| StoreError::NotFound(Record::Promise(id)))
    }

    /// Adds `ep` to the subscribers of an unresolved promise. Returns false (and changes
    /// nothing) if the promise is already settled.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn add_subscriber(&mut self, id: KPromiseId, ep: EndpointId) -> Result<bool, StoreError> {
        let (mut record, queueless) = self.existing_promise_and_queueless(id)?;
        let PromiseState::Unresolved { subscribers, .. } = &mut record.state else {
            return Ok(false);
        };
        if let Err(pos) = subscribers.binary_search_by_key(&ep.to_string(), ToString::to_string) {
            subscribers.insert(pos, ep);
            self.rewrite_promise(id, &record, queueless)?;
        }
        Ok(true)
    }

    /// Appends a message to an unresolved promise's queue (created on first use).
    ///
    /// # Errors
    /// [`StoreError::DeletedQueue`] if the promise is settled or unknown.
    pub fn promise_queue_push(
        &mut self,
        id: KPromiseId,
        message: &Message<KRef>,
        sender: Option<EndpointId>,
    ) -> Result<(), StoreError> {
        let name = queue_name(id);
        let key = keys::promise(id);
        let Some(bytes) = self.kv.get_ref(&key)? else {
            return Err(StoreError::DeletedQueue { name });
        };
        if !matches!(
            record_state(&bytes).map_err(|e| StoreError::corrupt("promises", &key, e))?,
            PromiseState::Unresolved { .. }
        ) {
            return Err(StoreError::DeletedQueue { name });
        }
        if record_queueless(&bytes) {
            // From now on a queue may exist: the same record with the other tag (the count
            // in it is the stored one, which a cached count still overrides).
            let mut record = bytes.into_owned();
            record[REFCOUNT_LEN] = TAG_UNRESOLVED;
            self.kv.set(&key, &record)?;
        }
        self.queue_init(&name)?;
        let entry = WaitingEntryOut {
            methargs: &message.methargs,
            result: message.result,
            sender,
        };
        self.queue_push(&name, &ocap_types::cbor::to_vec(&entry))
    }

    /// Settles the promise: stores the value, drops decider and subscribers, releases the
    /// decider baseline hold, and deletes its queue. Returns the messages that were queued on
    /// it, in order, and the subscribers to notify. The caller checks who may settle it.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise; [`StoreError::Corrupt`] for a queued
    /// message that does not decode.
    pub fn settle_promise(
        &mut self,
        id: KPromiseId,
        rejected: bool,
        value: CapData<KRef>,
    ) -> Result<(Vec<WaitingSend>, Vec<EndpointId>), StoreError> {
        let subscribers = match self.existing_state(id)? {
            PromiseState::Unresolved { subscribers, .. } => subscribers,
            _ => Vec::new(),
        };
        self.settle_read_promise(id, subscribers, rejected, value)
    }

    /// [`KernelStore::settle_promise`] for a promise the caller has just read in this crank
    /// as unresolved with `subscribers`, its record not written since: the record is not
    /// read and decoded a second time (about 0.5k instructions a settle).
    ///
    /// # Errors
    /// As [`KernelStore::settle_promise`].
    pub fn settle_read_promise(
        &mut self,
        id: KPromiseId,
        subscribers: Vec<EndpointId>,
        rejected: bool,
        value: CapData<KRef>,
    ) -> Result<(Vec<WaitingSend>, Vec<EndpointId>), StoreError> {
        let state = if rejected {
            PromiseState::Rejected(value)
        } else {
            PromiseState::Fulfilled(value)
        };
        // The decider baseline's release first: the count is then cached, and the record
        // written once with it and the new state, not read again for the count and
        // rewritten with the new count at the write-back.
        self.decref(KRef::Promise(id))?;
        let queueless = self.put_promise_state(id, &state)?;
        let name = queue_name(id);
        let mut messages = Vec::new();
        // A promise no message ever waited on has no queue to look for (module doc).
        if !queueless && let Some(bounds) = self.queue_bounds_if_any(&name)? {
            for index in bounds.tail..bounds.head {
                let bytes = self.queue_take_entry(&name, index)?;
                messages.push(
                    WaitingSend::decode(&bytes)
                        .map_err(|e| StoreError::corrupt("promise queue", name.as_bytes(), e))?,
                );
            }
            self.queue_delete(&name)?;
        }
        Ok((messages, subscribers))
    }

    /// Deletes a promise record and its queue.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_promise(&mut self, id: KPromiseId) -> Result<(), StoreError> {
        self.queue_delete(&queue_name(id))?;
        self.delete_settled_promise(id)
    }

    /// Deletes the record of a settled promise, which has no queue: settling deleted it,
    /// and nothing queues on a settled promise. Collection deletes settled promises every
    /// few cranks; looking for the queue cost two LMDB misses each.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_settled_promise(&mut self, id: KPromiseId) -> Result<(), StoreError> {
        debug_assert!(
            matches!(self.queue_bounds(&queue_name(id)), Ok(None)),
            "a settled promise with a queue"
        );
        self.counts.forget(KRef::Promise(id));
        self.kv.delete(&keys::promise(id))
    }
}
