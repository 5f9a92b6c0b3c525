//! `KernelQueue`: the store, the run queue and the crank buffer, with the operations that
//! add work (spec §6.6) and settle promises (spec §5.5).
//!
//! Invariant: work a vat emits during its delivery goes to the crank buffer and reaches the
//! run queue only through [`KernelQueue::flush_buffer`] after the delivery succeeded;
//! [`KernelQueue::abort_crank`] drops it together with the store changes, then refreshes the
//! run queue's cached bounds.
//!
//! Invariant: a send that would wait on an unresolved promise is put on that promise's queue
//! when it is enqueued, not when it is routed; so no send in the run queue ever waits on a
//! promise, and a message sent through a promise can never overtake one sent through it
//! earlier that is already waiting (the two would otherwise meet in different queues).

use std::collections::BTreeSet;

use ocap_store::{KernelStore, Owner, PromiseState};
use ocap_types::{CapData, EndpointId, KPromiseId, KRef, Message, RunQueueItem};

use crate::error::{QueueError, ResolveError};
use crate::stored_queue::StoredQueue;

/// The name of the crank's start savepoint.
pub const START_SAVEPOINT: &str = "start";
const RUN_QUEUE: &str = "run";

/// Whether an effect is applied now or buffered until the crank succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Part of the delivery in progress: buffered, dropped if the crank aborts.
    Buffered,
    /// Applied at once (splats, terminations, work arriving between cranks).
    Immediate,
}

/// One promise to settle: the promise, rejected or not, and the value.
pub type KernelResolution = (KPromiseId, bool, CapData<KRef>);

/// The kernel's queues and the effects that feed them.
#[derive(Debug)]
pub struct KernelQueue {
    store: KernelStore,
    run_queue: StoredQueue<RunQueueItem>,
    buffer: Vec<RunQueueItem>,
    buffered_settled: Vec<KPromiseId>,
    settled: Vec<KPromiseId>,
}

impl KernelQueue {
    /// Wraps the store, creating the run queue if needed (in a transaction of its own).
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails.
    pub fn new(mut store: KernelStore) -> Result<Self, QueueError> {
        store.start_crank()?;
        let run_queue = StoredQueue::open(&mut store, RUN_QUEUE)?;
        store.end_crank()?;
        Ok(KernelQueue {
            store,
            run_queue,
            buffer: Vec::new(),
            buffered_settled: Vec::new(),
            settled: Vec::new(),
        })
    }

    /// The store, for reads.
    pub fn store(&self) -> &KernelStore {
        &self.store
    }

    /// The store, for writes.
    pub fn store_mut(&mut self) -> &mut KernelStore {
        &mut self.store
    }

    /// Gives the store back (for shutdown).
    pub fn into_store(self) -> KernelStore {
        self.store
    }

    /// Items waiting in the run queue.
    ///
    /// # Errors
    /// [`QueueError::StaleCache`] if a rollback was not followed by a refresh (a bug).
    pub fn run_queue_len(&self) -> Result<u64, QueueError> {
        self.run_queue.len(&self.store)
    }

    /// Opens a crank and takes its start savepoint.
    ///
    /// # Errors
    /// [`QueueError::Store`], e.g. when a crank is already open.
    pub fn start_crank(&mut self) -> Result<(), QueueError> {
        self.store.start_crank()?;
        self.store.savepoint(START_SAVEPOINT)?;
        Ok(())
    }

    /// Takes the next work item, in priority order (spec §6.3): a GC action, then a reap,
    /// then the head of the run queue. Consuming it is part of the crank.
    ///
    /// # Errors
    /// [`QueueError`] from the store or the queue.
    pub fn next_item(&mut self) -> Result<Option<RunQueueItem>, QueueError> {
        if let Some(item) = crate::gc::next_gc_item(&mut self.store)? {
            return Ok(Some(item));
        }
        if let Some(endpoint) = self.store.next_reap()? {
            return Ok(Some(RunQueueItem::BringOutYourDead { endpoint }));
        }
        self.dequeue()
    }

    /// Removes the next run-queue item.
    ///
    /// # Errors
    /// [`QueueError`] from the queue.
    pub fn dequeue(&mut self) -> Result<Option<RunQueueItem>, QueueError> {
        self.run_queue.pop(&mut self.store)
    }

    /// Rolls the crank back to its start: store changes, buffered work and settlements are
    /// gone, and every cache of stored state is refreshed.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the rollback fails.
    pub fn abort_crank(&mut self) -> Result<(), QueueError> {
        self.store.rollback_to(START_SAVEPOINT)?;
        self.buffer.clear();
        self.buffered_settled.clear();
        self.settled.clear();
        self.run_queue.refresh(&self.store)?;
        // Post-rollback steps (termination, GC) run in a fresh savepoint of the same crank.
        self.store.savepoint(START_SAVEPOINT)?;
        Ok(())
    }

    /// Moves the buffered work into the run queue, in the order it was emitted.
    ///
    /// # Errors
    /// [`QueueError`] from the queue.
    pub fn flush_buffer(&mut self) -> Result<(), QueueError> {
        for item in std::mem::take(&mut self.buffer) {
            self.run_queue.push(&mut self.store, &item)?;
        }
        self.settled.append(&mut self.buffered_settled);
        Ok(())
    }

    /// Ends the crank and returns the promises it settled (for host subscriptions, which
    /// fire only now that the crank is committed).
    ///
    /// # Errors
    /// [`QueueError::Store`] if the commit fails.
    pub fn end_crank(&mut self) -> Result<Vec<KPromiseId>, QueueError> {
        debug_assert!(self.buffer.is_empty(), "crank ended with unflushed work");
        self.buffer.clear();
        self.buffered_settled.clear();
        self.store.end_crank()?;
        Ok(std::mem::take(&mut self.settled))
    }

    fn append(&mut self, item: RunQueueItem, mode: Mode) -> Result<(), QueueError> {
        match mode {
            Mode::Buffered => {
                self.buffer.push(item);
                Ok(())
            }
            Mode::Immediate => self.run_queue.push(&mut self.store, &item),
        }
    }

    /// Queues a send, taking a hold on its target, result and every slot (spec §6.6). A send
    /// that would wait on an unresolved promise goes straight onto that promise's queue.
    ///
    /// # Errors
    /// [`QueueError`] from the store or the queue.
    pub fn enqueue_send(
        &mut self,
        target: KRef,
        message: Message<KRef>,
        mode: Mode,
    ) -> Result<(), QueueError> {
        self.store.incref(target)?;
        if let Some(result) = message.result {
            self.store.incref(result)?;
        }
        for slot in &message.methargs.slots {
            self.store.incref(*slot)?;
        }
        self.requeue_send(target, message, mode)
    }

    /// Puts a send back in line with the holds it already has (a message moved from a
    /// settled promise's queue): onto the queue of the unresolved promise it would wait on,
    /// else onto the run queue.
    ///
    /// # Errors
    /// [`QueueError`] from the store or the queue.
    pub fn requeue_send(
        &mut self,
        target: KRef,
        message: Message<KRef>,
        mode: Mode,
    ) -> Result<(), QueueError> {
        let Some(promise) = self.waiting_on(target)? else {
            return self.append(RunQueueItem::Send { target, message }, mode);
        };
        // Reached through promises fulfilled with promises (D11): the message comes back
        // targeting `promise` when it settles, so the item's hold moves there.
        if KRef::Promise(promise) != target {
            self.store.incref(KRef::Promise(promise))?;
            self.store.decref(target)?;
        }
        self.store.promise_queue_push(promise, &message)?;
        Ok(())
    }

    /// The unresolved promise a send to `target` would wait on: the target itself, or the
    /// end of a chain of promises each fulfilled with the next one (spec §8.1, D11). Anything
    /// else (an object, a rejected promise, a bad resolution, a cycle) is for the router to
    /// decide when the send is delivered, since revocation or termination may change it.
    fn waiting_on(&self, target: KRef) -> Result<Option<KPromiseId>, QueueError> {
        let mut seen = BTreeSet::new();
        let mut next = target;
        while let KRef::Promise(promise) = next {
            if !seen.insert(promise) {
                return Ok(None);
            }
            match self.store.promise_state(promise)? {
                Some(PromiseState::Unresolved { .. }) => return Ok(Some(promise)),
                Some(PromiseState::Fulfilled(value)) => match value.single_ref() {
                    Some(kref) => next = *kref,
                    None => return Ok(None),
                },
                Some(PromiseState::Rejected(_)) | None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Queues a notify of `promise` to `endpoint`, taking a hold on the promise.
    ///
    /// # Errors
    /// [`QueueError`] from the store or the queue.
    pub fn enqueue_notify(
        &mut self,
        endpoint: EndpointId,
        promise: KPromiseId,
        mode: Mode,
    ) -> Result<(), QueueError> {
        self.store.incref(KRef::Promise(promise))?;
        self.append(RunQueueItem::Notify { endpoint, promise }, mode)
    }

    /// Settles promises in order on behalf of `resolver` (spec §5.5). Each is fully applied
    /// before the next is checked; a refusal stops the batch (the caller rolls back).
    ///
    /// # Errors
    /// [`QueueError::Resolve`] when a promise is unknown, settled, or not decided by
    /// `resolver`; [`QueueError::Store`].
    pub fn resolve_promises(
        &mut self,
        resolver: Option<Owner>,
        resolutions: Vec<KernelResolution>,
        mode: Mode,
    ) -> Result<(), QueueError> {
        for (promise, rejected, value) in resolutions {
            let record = self
                .store
                .promise(promise)?
                .ok_or(ResolveError::Unknown(promise))?;
            let PromiseState::Unresolved { decider, .. } = record.state else {
                return Err(ResolveError::AlreadyResolved(promise).into());
            };
            if decider != resolver {
                return Err(ResolveError::NotDecider {
                    resolver: resolver.map_or_else(|| "none".to_owned(), |r| r.to_string()),
                    promise,
                    decider,
                }
                .into());
            }
            // The resolution's own holds (spec §14.2); never released, which keeps settled
            // values reachable for the host.
            self.store.incref(KRef::Promise(promise))?;
            for slot in &value.slots {
                self.store.incref(*slot)?;
            }
            let (messages, subscribers) = self.store.settle_promise(promise, rejected, value)?;
            for subscriber in subscribers {
                self.enqueue_notify(subscriber, promise, mode)?;
            }
            for message in messages {
                self.requeue_send(KRef::Promise(promise), message, mode)?;
            }
            match mode {
                Mode::Buffered => self.buffered_settled.push(promise),
                Mode::Immediate => self.settled.push(promise),
            }
        }
        Ok(())
    }
}
