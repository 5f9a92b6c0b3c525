//! `KernelState` (the store, the run queue and the crank buffer) and `Crank`, the token that
//! says a transaction is open: every change to kernel state goes through a `&mut Crank`,
//! as heed's writes go through a `&mut RwTxn`.
//!
//! Invariant: a [`Crank`] ends exactly once. [`Crank::commit`] keeps its changes;
//! [`Crank::abort`] and dropping it (an early `?` return, a panic) keep none, drop its
//! buffered work and refresh the run queue's cached bounds. So no error path can leave a
//! half-done transaction open or committed, and [`KernelState::transaction`] is the one
//! helper that host operations use.
//!
//! Invariant: work a vat emits during its delivery goes to the crank buffer and reaches the
//! run queue only through [`Crank::flush_buffer`] after the delivery succeeded;
//! [`Crank::rollback`] drops it together with the store changes, then refreshes the run
//! queue's cached bounds.
//!
//! Invariant: a send that would wait on an unresolved promise is put on that promise's queue
//! when it is enqueued, not when it is routed; so no send in the run queue ever waits on a
//! promise, and a message sent through a promise can never overtake one sent through it
//! earlier that is already waiting (the two would otherwise meet in different queues).

use ocap_store::{ChainEnd, GcKind, KernelStore, Owner, PromiseState, Savepoint, follow_promises};
use ocap_types::{CapData, EndpointId, KPromiseId, KRef, Message, RunQueueItem};

use crate::error::{QueueError, ResolveError};
use crate::gc::{CLEANUP_BUDGET, CleanupReport};
use crate::stored_queue::StoredQueue;

const RUN_QUEUE: &str = "run";

/// Whether an effect is applied now or buffered until the crank succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Part of the delivery in progress: buffered, dropped if the crank aborts.
    Buffered,
    /// Applied at once (splats, terminations, work arriving between cranks).
    Immediate,
}

/// One promise to settle, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelResolution {
    /// The promise.
    pub promise: KPromiseId,
    /// True to reject it, false to fulfil it.
    pub rejected: bool,
    /// Its value (the reason, when rejected).
    pub value: CapData<KRef>,
}

impl KernelResolution {
    /// Fulfils `promise` with `value`.
    pub fn fulfil(promise: KPromiseId, value: CapData<KRef>) -> Self {
        KernelResolution {
            promise,
            rejected: false,
            value,
        }
    }

    /// Rejects `promise` with `reason`.
    pub fn reject(promise: KPromiseId, reason: CapData<KRef>) -> Self {
        KernelResolution {
            promise,
            rejected: true,
            value: reason,
        }
    }
}

/// The kernel's persistent state and its queues. Outside a crank it can only be read;
/// [`KernelState::begin`] or [`KernelState::transaction`] opens one to change it.
#[derive(Debug)]
pub struct KernelState {
    store: KernelStore,
    run_queue: StoredQueue<RunQueueItem>,
    buffer: Vec<RunQueueItem>,
    buffered_settled: Vec<KPromiseId>,
    settled: Vec<KPromiseId>,
}

impl KernelState {
    /// Wraps the store, creating the run queue if needed (in a transaction of its own).
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails.
    pub fn new(store: KernelStore) -> Result<Self, QueueError> {
        KernelState::open(store, false)
    }

    /// Wraps the store after deleting every key of the kernel's state (spec §16.4 step 2),
    /// in the same transaction that creates the run queue anew: all or nothing.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails; it is then unchanged.
    pub fn reset(store: KernelStore) -> Result<Self, QueueError> {
        KernelState::open(store, true)
    }

    fn open(mut store: KernelStore, reset: bool) -> Result<Self, QueueError> {
        store.start_crank()?;
        let opened = (|| {
            if reset {
                store.clear_all()?;
            }
            StoredQueue::open(&mut store, RUN_QUEUE)
        })();
        let run_queue = match opened {
            Ok(queue) => queue,
            Err(error) => {
                store.abort_crank()?;
                return Err(error);
            }
        };
        store.end_crank()?;
        Ok(KernelState {
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

    /// Items waiting in the run queue.
    ///
    /// # Errors
    /// [`QueueError::StaleCache`] if a rollback was not followed by a refresh (a bug).
    pub fn run_queue_len(&self) -> Result<u64, QueueError> {
        self.run_queue.len(&self.store)
    }

    /// Opens a crank (a transaction) and takes its start savepoint.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails.
    pub fn begin(&mut self) -> Result<Crank<'_>, QueueError> {
        self.store.start_crank()?;
        let start = match self.store.savepoint() {
            Ok(start) => start,
            Err(error) => {
                self.store.abort_crank()?;
                return Err(error.into());
            }
        };
        Ok(Crank {
            state: self,
            start,
            ended: false,
        })
    }

    /// Runs `f` in a transaction of its own (a host operation between cranks): on success
    /// its buffered work joins the run queue and it commits; on error nothing it did is
    /// kept. Returns `f`'s value and the promises the transaction settled.
    ///
    /// # Errors
    /// `f`'s error, or a store failure opening or committing the transaction.
    pub fn transaction<R, E: From<QueueError>>(
        &mut self,
        f: impl FnOnce(&mut Crank<'_>) -> Result<R, E>,
    ) -> Result<(R, Vec<KPromiseId>), E> {
        let mut crank = self.begin()?;
        // On error `crank` is dropped, which aborts it.
        let value = f(&mut crank)?;
        crank.flush_buffer()?;
        let settled = crank.commit()?;
        Ok((value, settled))
    }

    /// Commits and syncs every ended crank a group commit still holds.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the commit fails.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        Ok(self.store.kv_mut().flush()?)
    }

    /// Writes a consistent, compacted copy of the store into directory `dest` (missing or
    /// empty), after committing every ended crank; between cranks only.
    ///
    /// # Errors
    /// [`ocap_store::BackupError`] for a bad destination or a store failure.
    pub fn backup_to(&mut self, dest: &std::path::Path) -> Result<(), ocap_store::BackupError> {
        self.store.kv_mut().backup_to(dest)
    }

    /// Forgets what the ended crank left in memory (buffered work and settlements) and
    /// re-reads the run queue's bounds.
    fn forget_crank(&mut self) -> Result<(), QueueError> {
        self.buffer.clear();
        self.buffered_settled.clear();
        self.settled.clear();
        self.run_queue.refresh(&self.store)
    }
}

/// A point inside a crank to roll back to ([`Crank::savepoint`]): the store's changes and
/// the work buffered or settled since then.
#[derive(Debug, Clone, Copy)]
#[must_use = "a savepoint is only useful to roll back to"]
pub struct CrankSavepoint {
    store: Savepoint,
    buffered: usize,
    buffered_settled: usize,
    settled: usize,
}

/// An open crank: the right to change kernel state. Made by [`KernelState::begin`]; ended by
/// [`Crank::commit`] or [`Crank::abort`], or by dropping it, which aborts.
#[derive(Debug)]
pub struct Crank<'s> {
    state: &'s mut KernelState,
    start: Savepoint,
    ended: bool,
}

impl Crank<'_> {
    /// The store, for reads.
    pub fn store(&self) -> &KernelStore {
        &self.state.store
    }

    /// The store, for writes.
    pub fn store_mut(&mut self) -> &mut KernelStore {
        &mut self.state.store
    }

    /// Items waiting in the run queue.
    ///
    /// # Errors
    /// [`QueueError::StaleCache`] if a rollback was not followed by a refresh (a bug).
    pub fn run_queue_len(&self) -> Result<u64, QueueError> {
        self.state.run_queue_len()
    }

    /// Takes the next work item, in priority order (spec §6.3): a GC action, then a reap,
    /// then the head of the run queue. Consuming it is part of the crank.
    ///
    /// # Errors
    /// [`QueueError`] from the store or the queue.
    pub fn next_item(&mut self) -> Result<Option<RunQueueItem>, QueueError> {
        let state = &mut *self.state;
        if let Some(item) = crate::gc::next_gc_item(&mut state.store)? {
            return Ok(Some(item));
        }
        if let Some(endpoint) = state.store.next_reap()? {
            return Ok(Some(RunQueueItem::BringOutYourDead { endpoint }));
        }
        state.run_queue.pop(&mut state.store)
    }

    /// Rolls the crank back to its start: store changes, buffered work and settlements are
    /// gone, and every cache of stored state is refreshed. The crank stays open for the
    /// steps that follow a failed delivery (termination, GC), with a fresh start savepoint.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the rollback fails.
    pub fn rollback(&mut self) -> Result<(), QueueError> {
        self.state.store.rollback_to(self.start)?;
        self.state.forget_crank()?;
        self.start = self.state.store.savepoint()?;
        Ok(())
    }

    /// Marks the crank's state now, for [`Crank::rollback_to`].
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails.
    pub fn savepoint(&mut self) -> Result<CrankSavepoint, QueueError> {
        let state = &mut *self.state;
        Ok(CrankSavepoint {
            store: state.store.savepoint()?,
            buffered: state.buffer.len(),
            buffered_settled: state.buffered_settled.len(),
            settled: state.settled.len(),
        })
    }

    /// Undoes everything done since `savepoint`: store changes, buffered work and
    /// settlements; the run queue's cached bounds are re-read. The crank stays open.
    ///
    /// # Errors
    /// [`QueueError::Store`] for a savepoint no longer open (released by a rollback to an
    /// earlier one).
    pub fn rollback_to(&mut self, savepoint: CrankSavepoint) -> Result<(), QueueError> {
        let state = &mut *self.state;
        state.store.rollback_to(savepoint.store)?;
        state.buffer.truncate(savepoint.buffered);
        state.buffered_settled.truncate(savepoint.buffered_settled);
        state.settled.truncate(savepoint.settled);
        state.run_queue.refresh(&state.store)
    }

    /// Moves the buffered work into the run queue, in the order it was emitted.
    ///
    /// # Errors
    /// [`QueueError`] from the queue.
    pub fn flush_buffer(&mut self) -> Result<(), QueueError> {
        let state = &mut *self.state;
        for item in std::mem::take(&mut state.buffer) {
            state.run_queue.push(&mut state.store, &item)?;
        }
        state.settled.append(&mut state.buffered_settled);
        Ok(())
    }

    /// Ends the crank keeping its changes, and returns the promises it settled (for host
    /// subscriptions, which fire only now). Work still in the buffer is dropped: flush it
    /// first.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the commit fails; the crank has ended either way, and a
    /// failed commit is retried by the next one.
    pub fn commit(mut self) -> Result<Vec<KPromiseId>, QueueError> {
        self.ended = true;
        let state = &mut *self.state;
        debug_assert!(state.buffer.is_empty(), "crank ended with unflushed work");
        state.buffer.clear();
        state.buffered_settled.clear();
        state.store.end_crank()?;
        Ok(std::mem::take(&mut state.settled))
    }

    /// Ends the crank keeping none of its changes.
    ///
    /// # Errors
    /// [`QueueError`] if the store cannot be re-read afterwards.
    pub fn abort(mut self) -> Result<(), QueueError> {
        self.ended = true;
        self.state.store.abort_crank()?;
        self.state.forget_crank()
    }

    fn append(&mut self, item: RunQueueItem, mode: Mode) -> Result<(), QueueError> {
        match mode {
            Mode::Buffered => {
                self.state.buffer.push(item);
                Ok(())
            }
            Mode::Immediate => {
                let state = &mut *self.state;
                state.run_queue.push(&mut state.store, &item)
            }
        }
    }

    /// Queues a send, taking a hold on its target, result and every slot (spec §6.6), and
    /// counting it against its sender's queued messages until it leaves the queues. A send
    /// that would wait on an unresolved promise goes straight onto that promise's queue.
    ///
    /// # Errors
    /// [`QueueError`] from the store or the queue.
    pub fn enqueue_send(
        &mut self,
        target: KRef,
        message: Message<KRef>,
        sender: Option<EndpointId>,
        mode: Mode,
    ) -> Result<(), QueueError> {
        let store = self.store_mut();
        store.incref(target)?;
        if let Some(result) = message.result {
            store.incref(result)?;
        }
        for slot in &message.methargs.slots {
            store.incref(*slot)?;
        }
        if let Some(sender) = sender {
            store.count_queued(sender, true)?;
        }
        self.requeue_send(target, message, sender, mode)
    }

    /// End-of-crank garbage collection (spec §14.3): see the `gc` module.
    ///
    /// # Errors
    /// [`QueueError::Store`].
    pub fn collect_garbage(&mut self) -> Result<(), QueueError> {
        Ok(crate::gc::collect_garbage(self.store_mut())?)
    }

    /// One step of the cleanup of the oldest terminated vat (spec §12.5.5): at most
    /// [`CLEANUP_BUDGET`] of its c-list entries (exports orphaned, imports and promise
    /// entries released); the step that empties its c-list deletes its keys and takes it off
    /// the terminated list. `None` when no vat waits for cleanup.
    ///
    /// # Errors
    /// [`QueueError::Store`].
    pub fn cleanup_next_terminated(&mut self) -> Result<Option<CleanupReport>, QueueError> {
        Ok(crate::gc::cleanup_step(self.store_mut(), CLEANUP_BUDGET)?)
    }

    /// Cleans up every terminated vat completely, in this crank (the host's debug
    /// `collectGarbage`, subcluster termination). Returns how many vats were finished.
    ///
    /// # Errors
    /// [`QueueError::Store`].
    pub fn cleanup_all_terminated(&mut self) -> Result<usize, QueueError> {
        let mut finished = 0;
        while let Some(report) = self.cleanup_next_terminated()? {
            finished += usize::from(report.finished);
        }
        Ok(finished)
    }

    /// The bookkeeping after a GC item of `kind` was delivered to `ep` for `objects`
    /// (spec §10.1): dropped exports lose their reachable flag, retired imports their c-list
    /// entry.
    ///
    /// # Errors
    /// [`QueueError::Store`].
    pub fn after_gc_delivery(
        &mut self,
        ep: EndpointId,
        kind: GcKind,
        objects: &[KRef],
    ) -> Result<(), QueueError> {
        Ok(crate::gc::after_gc_delivery(
            self.store_mut(),
            ep,
            kind,
            objects,
        )?)
    }

    /// Releases the holds a queued send took (spec §6.6): on its target, its result and
    /// every slot; and takes it off its sender's queued-message count. Every path that takes a send off the queues for good (delivered, splat,
    /// discarded) calls this once.
    ///
    /// # Errors
    /// [`QueueError::Store`].
    pub fn release_send_holds(
        &mut self,
        target: KRef,
        message: &Message<KRef>,
        sender: Option<EndpointId>,
    ) -> Result<(), QueueError> {
        let store = self.store_mut();
        if let Some(sender) = sender {
            store.count_queued(sender, false)?;
        }
        store.decref(target)?;
        if let Some(result) = message.result {
            store.decref(result)?;
        }
        for slot in &message.methargs.slots {
            store.decref(*slot)?;
        }
        Ok(())
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
        sender: Option<EndpointId>,
        mode: Mode,
    ) -> Result<(), QueueError> {
        let Some(promise) = self.waiting_on(target)? else {
            let item = RunQueueItem::Send {
                target,
                message,
                sender,
            };
            return self.append(item, mode);
        };
        let store = self.store_mut();
        // Reached through promises fulfilled with promises (D11): the message comes back
        // targeting `promise` when it settles, so the item's hold moves there.
        if KRef::Promise(promise) != target {
            store.incref(KRef::Promise(promise))?;
            store.decref(target)?;
        }
        store.promise_queue_push(promise, &message, sender)?;
        Ok(())
    }

    /// The unresolved promise a send to `target` would wait on: the target itself, or the
    /// end of a chain of promises each fulfilled with the next one (spec §8.1, D11). Anything
    /// else (an object, a rejected promise, a bad resolution, a cycle) is for the router to
    /// decide when the send is delivered, since revocation or termination may change it.
    fn waiting_on(&self, target: KRef) -> Result<Option<KPromiseId>, QueueError> {
        let store = self.store();
        let end = follow_promises(target, |promise| store.promise_state(promise))?;
        Ok(match end {
            ChainEnd::Unresolved(promise) => Some(promise),
            _ => None,
        })
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
        self.store_mut().incref(KRef::Promise(promise))?;
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
        for KernelResolution {
            promise,
            rejected,
            value,
        } in resolutions
        {
            // The state alone: the refcount is not needed to check the decider.
            let state = self
                .store()
                .promise_state(promise)?
                .ok_or(ResolveError::Unknown(promise))?;
            let PromiseState::Unresolved {
                decider,
                subscribers,
            } = state
            else {
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
            let store = self.store_mut();
            // The value's holds (spec §14.2), released when the promise is collected. The
            // reference's never-released hold on the promise itself is not taken: a settled
            // promise is collected once nothing names it (a host's results are pinned).
            for slot in &value.slots {
                store.incref(*slot)?;
            }
            let (messages, subscribers) =
                store.settle_read_promise(promise, subscribers, rejected, value)?;
            for subscriber in subscribers {
                self.enqueue_notify(subscriber, promise, mode)?;
            }
            for waiting in messages {
                let target = KRef::Promise(promise);
                self.requeue_send(target, waiting.message, waiting.sender, mode)?;
            }
            match mode {
                Mode::Buffered => self.state.buffered_settled.push(promise),
                Mode::Immediate => self.state.settled.push(promise),
            }
        }
        Ok(())
    }
}

impl Drop for Crank<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // An error or panic left the crank open: keep none of it.
        let aborted = self
            .state
            .store
            .abort_crank()
            .map_err(QueueError::from)
            .and_then(|()| self.state.forget_crank());
        if let Err(error) = aborted {
            tracing::error!(%error, "could not abort an abandoned crank");
        }
    }
}
