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
//! An unresolved record also says what the kernel knows of it beyond its state, its
//! [`Facts`], in the state's tag: whether a message ever waited on it (if none did, it has
//! no queue, and settling it skips the lookup of one: an LMDB miss per settle, most
//! settles) and, if none did, which c-lists can hold it (none, or one endpoint's, whose id
//! follows the tag, 5 bytes as an owner is written), so that importing it into a vat that
//! cannot hold it skips the c-list lookup, another LMDB miss (a send's result, imported by
//! its receiver). A fact is only ever dropped, never assumed: the first message queued on the promise, or a
//! second endpoint's c-list entry, turns the record into one that knows less (tag `0`,
//! which records migrated from version 7 all carry, knows nothing). The audit checks both
//! facts.

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

/// State tags of an unresolved promise, by what its record knows ([`Facts`]); a settled
/// one's are 1 (fulfilled) and 2 (rejected).
const TAG_UNRESOLVED: u8 = 0;
const TAG_QUEUELESS: u8 = 3;
const TAG_UNHELD: u8 = 4;
const TAG_HELD_BY: u8 = 5;

/// What an unresolved promise's record knows beyond its state (module doc). A settled
/// promise's record knows nothing ([`Facts::None`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Facts {
    /// A queue may exist, and any c-list may hold the promise.
    None,
    /// No message ever waited on it, so it has no queue; any c-list may hold it.
    Queueless,
    /// No message ever waited on it, and no c-list holds it.
    Unheld,
    /// No message ever waited on it, and no c-list but this endpoint's holds it.
    HeldBy(EndpointId),
}

impl Facts {
    /// True if the record says the promise has no queue.
    pub(crate) fn queueless(self) -> bool {
        self != Facts::None
    }

    /// False if the record says `ep`'s c-list cannot hold the promise.
    pub(crate) fn may_be_held_by(self, ep: EndpointId) -> bool {
        match self {
            Facts::Unheld => false,
            Facts::HeldBy(holder) => holder == ep,
            Facts::None | Facts::Queueless => true,
        }
    }

    /// What is known once `ep`'s c-list holds the promise too.
    fn held_by(self, ep: EndpointId) -> Facts {
        match self {
            Facts::Unheld => Facts::HeldBy(ep),
            Facts::HeldBy(holder) if holder != ep => Facts::Queueless,
            other => other,
        }
    }
}

/// A promise's record: `refcount` (u32 LE), then `state`'s encoding with `facts` (which
/// only an unresolved state carries).
fn encode_record(refcount: u32, state: &PromiseState, facts: Facts) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(refcount);
    state.encode_into(&mut w, facts);
    w.0
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
    record_state_and_facts(bytes).map(|(state, _)| state)
}

/// The state of a record and its [`Facts`].
fn record_state_and_facts(bytes: &[u8]) -> Result<(PromiseState, Facts), Malformed> {
    PromiseState::decode_with_facts(split_record(bytes)?.1)
}

/// The holder that follows a [`TAG_HELD_BY`].
fn holder(r: &mut Reader<'_>) -> Result<EndpointId, Malformed> {
    match r.owner()? {
        Some(Owner::Endpoint(holder)) => Ok(holder),
        _ => Err(Malformed("holder is not an endpoint")),
    }
}

/// The [`Facts`] an unresolved state's `tag` carries (reading the holder that follows
/// [`TAG_HELD_BY`]), `None` for any other tag.
fn unresolved_facts(tag: u8, r: &mut Reader<'_>) -> Result<Option<Facts>, Malformed> {
    Ok(Some(match tag {
        TAG_UNRESOLVED => Facts::None,
        TAG_QUEUELESS => Facts::Queueless,
        TAG_UNHELD => Facts::Unheld,
        TAG_HELD_BY => Facts::HeldBy(holder(r)?),
        _ => return Ok(None),
    }))
}

/// A record's [`Facts`], read from its tag (and holder) without decoding the rest.
fn record_facts(bytes: &[u8]) -> Result<Facts, Malformed> {
    let (_, state) = split_record(bytes)?;
    let mut r = Reader(state);
    let tag = r.u8()?;
    match unresolved_facts(tag, &mut r)? {
        Some(facts) => Ok(facts),
        None if matches!(tag, 1 | 2) => Ok(Facts::None),
        None => Err(Malformed("bad promise state tag")),
    }
}

/// A promise's record decoded: its count, its state and what else it knows. What the
/// record cache (`counts.rs`) keeps of a promise.
#[derive(Debug, Clone)]
pub(crate) struct PromiseEntry {
    pub(crate) refcount: u32,
    pub(crate) state: PromiseState,
    pub(crate) facts: Facts,
}

impl PromiseEntry {
    /// The record's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_record(self.refcount, &self.state, self.facts)
    }

    fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let (state, facts) = record_state_and_facts(bytes)?;
        Ok(PromiseEntry {
            refcount: record_refcount(bytes)?,
            state,
            facts,
        })
    }
}

impl PromiseState {
    /// True unless settled.
    pub fn is_unresolved(&self) -> bool {
        matches!(self, PromiseState::Unresolved { .. })
    }

    /// The state's encoding alone: what a record holds after its refcount, and what `kpN`
    /// held up to schema version 7 (migration tests write old stores with it).
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w, Facts::None);
        w.0
    }

    /// Writes the state; an unresolved one with `facts` (module doc).
    fn encode_into(&self, w: &mut Writer, facts: Facts) {
        match self {
            PromiseState::Unresolved {
                decider,
                subscribers,
            } => {
                match facts {
                    Facts::None => w.u8(TAG_UNRESOLVED),
                    Facts::Queueless => w.u8(TAG_QUEUELESS),
                    Facts::Unheld => w.u8(TAG_UNHELD),
                    Facts::HeldBy(holder) => {
                        w.u8(TAG_HELD_BY);
                        w.owner(Some(Owner::Endpoint(holder)));
                    }
                }
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
        Self::decode_with_facts(bytes).map(|(state, _)| state)
    }

    /// Decodes a state's encoding and the [`Facts`] its tag carries.
    fn decode_with_facts(bytes: &[u8]) -> Result<(Self, Facts), Malformed> {
        let mut r = Reader(bytes);
        let tag = r.u8()?;
        let (state, facts) = match unresolved_facts(tag, &mut r)? {
            Some(facts) => {
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
                let state = PromiseState::Unresolved {
                    decider,
                    subscribers,
                };
                (state, facts)
            }
            None => match tag {
                1 => (PromiseState::Fulfilled(r.capdata()?), Facts::None),
                2 => (PromiseState::Rejected(r.capdata()?), Facts::None),
                _ => return Err(Malformed("bad promise state tag")),
            },
        };
        r.finish()?;
        Ok((state, facts))
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
        let entry = PromiseEntry {
            refcount,
            state,
            facts: Facts::Unheld,
        };
        self.kv.set_new(&keys::promise(id), &entry.encode())?;
        // Nearly every promise is changed in the crank that makes it (a hold, a holder):
        // cached as stored, that change needs no read of what was just written.
        let evicted = self.counts.add_stored_promise(id, entry);
        self.write_evicted(evicted)?;
        Ok(id)
    }

    /// The promise's record, `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn promise(&self, id: KPromiseId) -> Result<Option<PromiseRecord>, StoreError> {
        Ok(self.read_promise(id)?.map(|entry| PromiseRecord {
            state: entry.state,
            refcount: entry.refcount,
        }))
    }

    /// The promise's whole record as the crank left it: the record cache's (`counts.rs`),
    /// else the store's, decoded. `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub(crate) fn read_promise(&self, id: KPromiseId) -> Result<Option<PromiseEntry>, StoreError> {
        if let Some(entry) = self.counts.promise(id) {
            return Ok(Some(entry.clone()));
        }
        let key = keys::promise(id);
        match self.kv.get_ref(&key)? {
            None => Ok(None),
            Some(bytes) => PromiseEntry::decode(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt("promises", &key, e)),
        }
    }

    /// Writes the promise's whole record: into the record cache inside a crank (written
    /// back before a savepoint and at the end of the crank), to the store outside one (a
    /// write the store then refuses like any other) or when the cache is full.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub(crate) fn write_promise(
        &mut self,
        id: KPromiseId,
        entry: PromiseEntry,
    ) -> Result<(), StoreError> {
        if self.kv.in_crank() {
            let evicted = self.counts.set_promise(id, entry);
            self.write_evicted(evicted)
        } else {
            self.kv.set(&keys::promise(id), &entry.encode())
        }
    }

    /// Changes the promise's record by `change`, which says whether it changed anything:
    /// in place if the record cache holds it (no copy, no second search), else read,
    /// changed and written through the cache. Returns what `change` returned, `None` for
    /// an unknown promise.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub(crate) fn change_promise<R>(
        &mut self,
        id: KPromiseId,
        change: impl FnOnce(&mut PromiseEntry) -> (bool, R),
    ) -> Result<Option<R>, StoreError> {
        if self.kv.in_crank()
            && let Some((entry, written)) = self.counts.promise_mut(id)
        {
            let (changed, out) = change(entry);
            *written |= changed;
            return Ok(Some(out));
        }
        let Some(mut entry) = self.read_promise(id)? else {
            return Ok(None);
        };
        let (changed, out) = change(&mut entry);
        if changed {
            self.write_promise(id, entry)?;
        }
        Ok(Some(out))
    }

    /// What the promise's record knows beyond its state (module doc); [`Facts::None`] for
    /// an unknown promise.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub(crate) fn promise_facts(&self, id: KPromiseId) -> Result<Facts, StoreError> {
        if let Some(entry) = self.counts.promise(id) {
            return Ok(entry.facts);
        }
        let key = keys::promise(id);
        match self.kv.get_ref(&key)? {
            None => Ok(Facts::None),
            Some(bytes) => {
                record_facts(&bytes).map_err(|e| StoreError::corrupt("promises", &key, e))
            }
        }
    }

    /// False if the promise's record says `ep`'s c-list cannot hold it (module doc): the
    /// caller then needs no c-list lookup to know it is absent.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn clist_may_hold_promise(
        &self,
        ep: EndpointId,
        id: KPromiseId,
    ) -> Result<bool, StoreError> {
        Ok(self.promise_facts(id)?.may_be_held_by(ep))
    }

    /// Notes in the promise's record that `ep`'s c-list now holds it (every c-list entry of
    /// a promise is added through [`KernelStore::add_clist_entry`], which calls this).
    pub(crate) fn note_promise_holder(
        &mut self,
        id: KPromiseId,
        ep: EndpointId,
    ) -> Result<(), StoreError> {
        self.change_promise(id, |entry| {
            let now = entry.facts.held_by(ep);
            let changed = now != entry.facts;
            entry.facts = now;
            (changed, ())
        })?;
        Ok(())
    }

    /// The promise's state alone, `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn promise_state(&self, id: KPromiseId) -> Result<Option<PromiseState>, StoreError> {
        if let Some(entry) = self.counts.promise(id) {
            return Ok(Some(entry.state.clone()));
        }
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
    #[cfg(test)]
    pub(crate) fn promise_refcount(&self, id: KPromiseId) -> Result<Option<u32>, StoreError> {
        if let Some(entry) = self.counts.promise(id) {
            return Ok(Some(entry.refcount));
        }
        let key = keys::promise(id);
        match self.kv.get_ref(&key)? {
            None => Ok(None),
            Some(bytes) => record_refcount(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt("promises", &key, e)),
        }
    }

    /// Writes the promise's refcount into its record; a no-op for an unknown promise,
    /// which has no record to hold a count.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    #[cfg(test)]
    pub(crate) fn put_promise_refcount(
        &mut self,
        id: KPromiseId,
        count: u32,
    ) -> Result<(), StoreError> {
        let Some(mut entry) = self.read_promise(id)? else {
            return Ok(());
        };
        entry.refcount = count;
        self.write_promise(id, entry)
    }

    /// Writes the promise's state, keeping its refcount and, while it stays unresolved,
    /// what else its record knew (a settled record knows nothing more). Returns what the
    /// record knew.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise: a record written for it here would
    /// be overwritten by the one made when its id is allocated.
    fn put_promise_state(
        &mut self,
        id: KPromiseId,
        state: PromiseState,
    ) -> Result<Facts, StoreError> {
        let unresolved = state.is_unresolved();
        self.change_promise(id, |entry| {
            let facts = entry.facts;
            entry.state = state;
            if !unresolved {
                entry.facts = Facts::None;
            }
            (true, facts)
        })?
        .ok_or(StoreError::NotFound(Record::Promise(id)))
    }

    /// The promise's record, or [`StoreError::NotFound`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn existing_promise(&self, id: KPromiseId) -> Result<PromiseRecord, StoreError> {
        self.promise(id)?
            .ok_or_else(|| StoreError::NotFound(Record::Promise(id)))
    }

    /// Sets the decider of an unresolved promise (a no-op on a settled one).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn set_decider(&mut self, id: KPromiseId, owner: Option<Owner>) -> Result<(), StoreError> {
        self.change_promise(id, |entry| match &mut entry.state {
            PromiseState::Unresolved { decider, .. } if *decider != owner => {
                *decider = owner;
                (true, ())
            }
            _ => (false, ()),
        })?
        .ok_or(StoreError::NotFound(Record::Promise(id)))
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
        self.change_promise(id, |entry| {
            let PromiseState::Unresolved { subscribers, .. } = &mut entry.state else {
                return (false, false);
            };
            match subscribers.binary_search_by_key(&ep.to_string(), ToString::to_string) {
                Ok(_) => (false, true),
                Err(pos) => {
                    subscribers.insert(pos, ep);
                    (true, true)
                }
            }
        })?
        .ok_or(StoreError::NotFound(Record::Promise(id)))
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
        let unresolved = self.change_promise(id, |entry| {
            if !entry.state.is_unresolved() {
                return (false, false);
            }
            // From now on a queue may exist, and the record knows nothing more.
            let changed = entry.facts != Facts::None;
            entry.facts = Facts::None;
            (changed, true)
        })?;
        if unresolved != Some(true) {
            return Err(StoreError::DeletedQueue { name });
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
        // The decider baseline's release; both it and the new state change the one record
        // the crank's cache holds.
        self.decref(KRef::Promise(id))?;
        let queueless = self.put_promise_state(id, state)?.queueless();
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
