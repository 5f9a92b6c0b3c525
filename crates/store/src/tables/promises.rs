//! Kernel promises: state, decider, subscribers, value, refcount (spec §5), and each
//! unresolved promise's message queue.

use ocap_types::{CapData, EndpointId, KPromiseId, KRef, Message};
use serde::{Deserialize, Serialize};

use super::{KernelStore, Owner, keys};
use crate::error::StoreError;

/// Where a promise stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn queue_name(id: KPromiseId) -> String {
    id.to_string()
}

impl KernelStore {
    /// Creates an unresolved promise with refcount 1 and an empty message queue.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn create_promise(&mut self, decider: Option<Owner>) -> Result<KPromiseId, StoreError> {
        let id = KPromiseId(self.allocate(keys::COUNTER_PROMISE.as_bytes())?);
        let record = PromiseRecord {
            state: PromiseState::Unresolved {
                decider,
                subscribers: Vec::new(),
            },
            refcount: 1,
        };
        self.put_promise(id, &record)?;
        self.queue_init(&queue_name(id))?;
        Ok(id)
    }

    /// The promise's record, `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn promise(&self, id: KPromiseId) -> Result<Option<PromiseRecord>, StoreError> {
        self.read_cbor("promises", &keys::promise(id))
    }

    /// The promise's record, or [`StoreError::NotFound`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn existing_promise(&self, id: KPromiseId) -> Result<PromiseRecord, StoreError> {
        self.promise(id)?.ok_or_else(|| StoreError::NotFound {
            what: format!("kernel promise {id}"),
        })
    }

    /// Writes the promise's record.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn put_promise(&mut self, id: KPromiseId, record: &PromiseRecord) -> Result<(), StoreError> {
        self.write_cbor(&keys::promise(id), record)
    }

    /// Sets the decider of an unresolved promise (a no-op on a settled one).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn set_decider(&mut self, id: KPromiseId, owner: Option<Owner>) -> Result<(), StoreError> {
        let mut record = self.existing_promise(id)?;
        if let PromiseState::Unresolved { decider, .. } = &mut record.state {
            *decider = owner;
            self.put_promise(id, &record)?;
        }
        Ok(())
    }

    /// Adds `ep` to the subscribers of an unresolved promise. Returns false (and changes
    /// nothing) if the promise is already settled.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown promise.
    pub fn add_subscriber(&mut self, id: KPromiseId, ep: EndpointId) -> Result<bool, StoreError> {
        let mut record = self.existing_promise(id)?;
        let PromiseState::Unresolved { subscribers, .. } = &mut record.state else {
            return Ok(false);
        };
        if let Err(pos) = subscribers.binary_search_by_key(&ep.to_string(), ToString::to_string)
        {
            subscribers.insert(pos, ep);
            self.put_promise(id, &record)?;
        }
        Ok(true)
    }

    /// Appends a message to an unresolved promise's queue.
    ///
    /// # Errors
    /// [`StoreError::DeletedQueue`] if the promise's queue is gone (it is settled).
    pub fn promise_queue_push(
        &mut self,
        id: KPromiseId,
        message: &Message<KRef>,
    ) -> Result<(), StoreError> {
        self.queue_push(&queue_name(id), &ocap_types::cbor::to_vec(message))
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
    ) -> Result<(Vec<Message<KRef>>, Vec<EndpointId>), StoreError> {
        let mut record = self.existing_promise(id)?;
        let subscribers = match &mut record.state {
            PromiseState::Unresolved { subscribers, .. } => std::mem::take(subscribers),
            _ => Vec::new(),
        };
        record.state = if rejected {
            PromiseState::Rejected(value)
        } else {
            PromiseState::Fulfilled(value)
        };
        self.put_promise(id, &record)?;
        let name = queue_name(id);
        let mut messages = Vec::new();
        while let Some(bytes) = self.queue_pop(&name)? {
            let message = ocap_types::cbor::from_slice(&bytes)
                .map_err(|e| StoreError::corrupt("promise queue", name.as_bytes(), e))?;
            messages.push(message);
        }
        self.queue_delete(&name)?;
        self.decref(KRef::Promise(id))?;
        Ok((messages, subscribers))
    }

    /// Deletes a promise record and its queue.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_promise(&mut self, id: KPromiseId) -> Result<(), StoreError> {
        self.queue_delete(&queue_name(id))?;
        self.kv.delete(&keys::promise(id))
    }
}
